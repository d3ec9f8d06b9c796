//! sdedge firmware for the Raspberry Pi Pico (RP2040, dual Cortex-M0+; core 0 only).
//!
//! Clock: 125 MHz system clock from the PLL on the Pico's 12 MHz crystal (the HAL's
//! `init_clocks_and_plls`). Timing: SysTick on the core clock (sdedge_app::systick; the M0+ has no
//! DWT cycle counter). Code and the embedded bundle run from QSPI flash through the 16 KiB XIP
//! cache, so the counts include cache misses. Output: defmt over RTT, read by the SWD probe.
#![no_std]
#![no_main]

mod boot2;

use rp2040_hal::{clocks::init_clocks_and_plls, pac, Clock as _, Watchdog};
use sdedge_app::{BoardInfo, TickUnit};

const XOSC_HZ: u32 = 12_000_000;

// The HAL's entry also releases the SIO spinlocks, one of which backs its critical-section
// implementation and may still be held after a debugger reset.
#[rp2040_hal::entry]
fn main() -> ! {
    sdedge_app::paint_stack();
    let mut dp = pac::Peripherals::take().unwrap();
    let cp = cortex_m::Peripherals::take().unwrap();
    let mut watchdog = Watchdog::new(dp.WATCHDOG);
    let Ok(clocks) = init_clocks_and_plls(
        XOSC_HZ,
        dp.XOSC,
        dp.CLOCKS,
        dp.PLL_SYS,
        dp.PLL_USB,
        &mut dp.RESETS,
        &mut watchdog,
    ) else {
        defmt::error!("sdedge-error clocks");
        sdedge_app::exit::exit(false)
    };
    let mut clock = sdedge_app::systick::SysTickClock::start(cp.SYST);
    let board = BoardInfo {
        name: "rp-pico",
        unit: TickUnit::Cycles,
        // What the HAL actually configured (125 MHz).
        hz: clocks.system_clock.freq().to_Hz(),
    };
    sdedge_app::rtt::wait_for_host(&mut clock, board.hz);
    sdedge_app::run_and_exit(&board, &mut clock)
}
