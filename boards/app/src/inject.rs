//! Deliberate faults for the host's tests (`SDEDGE_INJECT_FAULT` at build time): they prove a
//! HardFault, a panic or a hang on the device ends the run with a failure, never a stuck CI job.
//! A normal build has `INJECT_FAULT = None` and this code is not linked.

#[derive(Clone, Copy)]
pub enum Fault {
    /// An undefined instruction: a UsageFault, escalated to HardFault (not enabled separately).
    HardFault,
    Panic,
    /// Spins forever: only the host's timeout ends the run.
    Hang,
}

pub fn raise(fault: Fault) -> ! {
    match fault {
        Fault::HardFault => cortex_m::asm::udf(),
        Fault::Panic => panic!("injected"),
        Fault::Hang => loop {
            cortex_m::asm::nop();
        },
    }
}
