//! sdedge firmware for Nordic nRF52840-DK (nRF52840, Cortex-M4F).
//!
//! Clock: the core always runs at 64 MHz; its source is switched to the 32 MHz crystal (HFXO)
//! so that cycles turn into seconds accurately (the internal HFINT is only good to a few
//! percent). The flash instruction cache, off after reset, is turned on: the counts are those
//! of a cached run, like the STM32's ART accelerator. Timing: DWT cycle counter. Output: defmt
//! over RTT, read by the on-board J-Link.
#![no_std]
#![no_main]

mod approtect;

use cortex_m_rt::entry;
use nrf52840_hal::{clocks::HFCLK_FREQ, pac, Clocks};
use sdedge_app::{BoardInfo, TickUnit};

#[entry]
fn main() -> ! {
    sdedge_app::paint_stack();
    let dp = pac::Peripherals::take().unwrap();
    let cp = cortex_m::Peripherals::take().unwrap();
    if approtect::keep_debug_open(&dp.FICR, &dp.UICR, &dp.NVMC) {
        cortex_m::peripheral::SCB::sys_reset();
    }
    dp.NVMC.icachecnf.write(|w| w.cacheen().enabled());
    // Blocks until the crystal runs (about 0.4 ms).
    let _clocks = Clocks::new(dp.CLOCK).enable_ext_hfosc();
    let mut clock = sdedge_app::dwt::DwtClock::start(cp.DCB, cp.DWT);
    let board = BoardInfo {
        name: "nrf52840-dk",
        unit: TickUnit::Cycles,
        hz: HFCLK_FREQ,
    };
    sdedge_app::rtt::wait_for_host(&mut clock, board.hz);
    sdedge_app::run_and_exit(&board, &mut clock)
}
