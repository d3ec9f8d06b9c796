//! Core clock cycles from the DWT cycle counter (CYCCNT), on Cortex-M3/M4/M7 (not M0+).

use cortex_m::peripheral::{DCB, DWT};

use crate::Clock;

/// Reads CYCCNT: 32 bits of core cycles, wrapping every 2^32 / f seconds (43 s at 100 MHz),
/// which the runtime's wrapping differences absorb as long as one segment runs for less.
pub struct DwtClock;

impl DwtClock {
    /// Takes DCB and DWT by value so that nothing else reconfigures the counter.
    pub fn start(mut dcb: DCB, mut dwt: DWT) -> Self {
        // TRCENA gates the whole DWT block; without it CYCCNT reads 0 unless a debugger set it.
        dcb.enable_trace();
        dwt.set_cycle_count(0);
        dwt.enable_cycle_counter();
        DwtClock
    }
}

impl Clock for DwtClock {
    fn now(&mut self) -> u32 {
        DWT::cycle_count()
    }
}
