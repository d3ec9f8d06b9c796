//! A 32-bit [`Clock`] from SysTick on the core clock, for cores without a DWT cycle counter
//! (Cortex-M0+) and for QEMU, which does not model DWT (under `-icount`, SysTick ticks count
//! instructions).
//!
//! SysTick is 24 bits wide and counts down; it is extended to 32 bits by counting its wraps
//! in the SysTick exception (this module defines that handler). The 32-bit result wraps,
//! which the runtime's wrapping differences absorb.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::Clock;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;

const RELOAD: u32 = 0x00FF_FFFF;
static WRAPS: AtomicU32 = AtomicU32::new(0);

/// Only one may exist: it owns SysTick and its exception.
pub struct SysTickClock;

impl SysTickClock {
    pub fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        // CVR reads 0 from the clear until the next tick loads RELOAD, without a wrap being
        // counted: a reading in that window would be one wrap ahead of the next one.
        while SYST::get_current() == 0 {}
        // The handle is dropped: only CVR is read from here on.
        SysTickClock
    }
}

impl Clock for SysTickClock {
    fn now(&mut self) -> u32 {
        loop {
            let before = WRAPS.load(Ordering::Acquire);
            let cvr = SYST::get_current();
            let pending = SCB::is_pendst_pending();
            if WRAPS.load(Ordering::Acquire) != before {
                continue;
            }
            // A wrap that happened before `cvr` was read but whose exception has not run yet
            // (latency, or a caller with interrupts masked) is still pending: count it. CVR
            // just below RELOAD tells it apart from a wrap that happened after the read.
            let wraps = if pending && cvr > RELOAD / 2 {
                before.wrapping_add(1)
            } else {
                before
            };
            return wraps.wrapping_mul(RELOAD + 1).wrapping_add(RELOAD - cvr);
        }
    }
}

#[exception]
fn SysTick() {
    // thumbv6m has no atomic read-modify-write; a load and a store are enough because this
    // handler is the only writer and cannot preempt itself.
    WRAPS.store(
        WRAPS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Release,
    );
}
