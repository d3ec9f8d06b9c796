//! sdedge firmware for QEMU mps2-an386 (Cortex-M4F).
//!
//! Timing: QEMU does not model the DWT cycle counter, so segments are timed with SysTick on
//! the core clock (25 MHz) and QEMU runs with `-icount shift=N`: each instruction then
//! advances virtual time by 2^N ns, and ticks convert to instructions exactly
//! (instructions = ticks * 40 / 2^N). The 24-bit SysTick is extended by counting its wraps.
//! All output (defmt frames) goes to QEMU's stdout through semihosting; the exit code says
//! whether every input ran.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt_semihosting as _;
use sdedge_app::systick::SysTickClock;
use sdedge_app::{BoardInfo, TickUnit};

/// SysTick runs on the 25 MHz core clock of the mps2 boards.
const SYSTICK_HZ: u32 = 25_000_000;

#[entry]
fn main() -> ! {
    sdedge_app::paint_stack();
    let cp = cortex_m::Peripherals::take().unwrap();
    let mut clock = SysTickClock::start(cp.SYST);
    let board = BoardInfo {
        name: "qemu-mps2-an386",
        unit: TickUnit::Instructions,
        hz: SYSTICK_HZ,
    };
    sdedge_app::run_and_exit(&board, &mut clock)
}
