//! sdedge firmware for ST NUCLEO-F411RE (STM32F411RE, Cortex-M4F).
//!
//! Clock: 100 MHz (the F411's maximum) from the 16 MHz HSI through the PLL. The HSI is used
//! rather than the ST-LINK's 8 MHz MCO on OSC_IN because the MCO link depends on the board
//! revision and solder bridges, and cycle counts do not depend on the clock's accuracy (±1%
//! for the HSI, which only matters when cycles are turned into seconds).
//! Timing: DWT cycle counter. Output: defmt over RTT, read by the debug probe.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use sdedge_app::{BoardInfo, TickUnit};
use stm32f4xx_hal::{pac, prelude::*, rcc::Config};

const SYSCLK_HZ: u32 = 100_000_000;

#[entry]
fn main() -> ! {
    sdedge_app::paint_stack();
    let dp = pac::Peripherals::take().unwrap();
    let cp = cortex_m::Peripherals::take().unwrap();
    // The HAL also sets the flash wait states and turns on the ART accelerator (prefetch,
    // instruction and data caches), which the cycle counts therefore include.
    let rcc = dp.RCC.freeze(Config::hsi().sysclk(SYSCLK_HZ.Hz()));
    let mut clock = sdedge_app::dwt::DwtClock::start(cp.DCB, cp.DWT);
    let board = BoardInfo {
        name: "nucleo-f411re",
        unit: TickUnit::Cycles,
        // What the HAL actually configured, not what was asked for.
        hz: rcc.clocks.sysclk().raw(),
    };
    sdedge_app::rtt::wait_for_host(&mut clock, board.hz);
    sdedge_app::run_and_exit(&board, &mut clock)
}
