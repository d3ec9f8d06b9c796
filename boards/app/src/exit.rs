//! How the program ends, for `probe-rs run` and for a board running on its own.
//!
//! QEMU and `probe-rs run` return when the core halts on a semihosting SYS_EXIT: exit code 0
//! for success, non-zero otherwise (a plain `bkpt` counts as "CPU halted unexpectedly" for
//! probe-rs). Software on a Cortex-M0+ cannot tell whether a debugger is attached (DHCSR is not
//! readable from the core), so the exit is always tried: without a debugger its `bkpt`
//! escalates to a HardFault, which sees ENDED and sleeps instead of reporting a fault.
//!
//! This module also provides the firmware's HardFault and panic handlers: both log an
//! `sdedge-error` and end the run with a failure code, so a fault never hangs a QEMU run.

use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m_rt::{exception, ExceptionFrame};
use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};

static ENDED: AtomicBool = AtomicBool::new(false);

pub fn exit(success: bool) -> ! {
    ENDED.store(true, Ordering::SeqCst);
    debug::exit(if success { EXIT_SUCCESS } else { EXIT_FAILURE });
    sleep()
}

fn sleep() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    if ENDED.load(Ordering::SeqCst) {
        sleep()
    }
    defmt::error!("sdedge-error hardfault pc={=u32:#x}", frame.pc());
    exit(false)
}

#[defmt::panic_handler]
fn defmt_panic() -> ! {
    exit(false)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    defmt::error!("sdedge-error panic");
    exit(false)
}
