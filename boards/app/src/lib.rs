//! The board-agnostic part of sdedge's firmware.
//!
//! A board crate sets up its clocks, a [`Clock`] (DWT cycle counter on real boards, SysTick
//! under QEMU), a defmt transport, and calls [`run`]. The bundle and the inputs are embedded at
//! build time (see build.rs). Every result is logged as one defmt frame that the host decodes
//! against this ELF and compares with its own simulation:
//!
//! ```text
//! sdedge-start  board, clock unit, clock Hz, bundle bytes, arena bytes, inputs, exits
//! sdedge-segment index, trunk MACs, head MACs          (one per segment)
//! sdedge-result input, exit, class, macs, ticks per segment run, the answering exit's logits
//! sdedge-done   inputs, stack bytes used (painted high-water mark)
//! sdedge-error  input, error            (then the board exits with a failure code)
//! ```
#![no_std]

pub use sdedge_runtime::{Clock, Error, Model, NoClock, Options};

#[cfg(has_dwt)]
pub mod dwt;
pub mod exit;
pub mod inject;
#[cfg(feature = "rtt")]
pub mod rtt;
pub mod systick;

include!(concat!(env!("OUT_DIR"), "/config.rs"));

/// The bundle in flash.
pub static BUNDLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bundle.sde"));
/// Quantized inputs in flash, one after another (each as long as the model's input tensor).
pub static INPUTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/inputs.bin"));

/// What a board's clock counts.
#[derive(Clone, Copy, defmt::Format)]
pub enum TickUnit {
    /// Core clock cycles (DWT CYCCNT).
    Cycles,
    /// Instructions (QEMU with -icount; QEMU does not model cycles).
    Instructions,
}

/// Describes the board in the log so the host can label the figures.
pub struct BoardInfo {
    pub name: &'static str,
    pub unit: TickUnit,
    /// Clock ticks per second: the core clock for Cycles; for Instructions, the virtual-time
    /// clock the ticks count (QEMU's SysTick, 25 MHz), which the host turns into instructions.
    pub hz: u32,
}

/// Runs every embedded input and logs the results. Returns the number of inputs run.
pub fn run<C: Clock>(board: &BoardInfo, arena: &mut [u8], clock: &mut C) -> Result<u32, Error> {
    let model = match Model::parse(BUNDLE) {
        Ok(m) => m,
        Err(e) => {
            defmt::error!("sdedge-error input={=u32} {}", u32::MAX, e);
            return Err(e);
        }
    };
    let input_len = model.input()?.len();
    let n = INPUTS.len() / input_len;
    defmt::info!(
        "sdedge-start board={=str} unit={} hz={=u32} bundle={=u32} arena={=u32} inputs={=u32} exits={=u8}",
        board.name,
        board.unit,
        board.hz,
        BUNDLE.len() as u32,
        model.arena_size() as u32,
        n as u32,
        model.num_exits() as u8
    );
    for k in 0..model.num_exits() {
        let (trunk, head) = model.segment_macs(k)?;
        defmt::info!(
            "sdedge-segment index={=u8} trunk_macs={=u32} head_macs={=u32}",
            k as u8,
            trunk as u32,
            head as u32
        );
    }
    if let Some(fault) = INJECT_FAULT {
        inject::raise(fault);
    }
    for (i, raw) in INPUTS.chunks_exact(input_len).enumerate() {
        let input: &[i8] = bytemuck::cast_slice(raw);
        let mut logits = [0i8; sdedge_runtime::format::MAX_CLASSES];
        let mut n_logits = 0;
        let result = model.run(input, arena, &Options::default(), clock, |r| {
            // Keep the last scored exit's logits: that is the one that answered.
            n_logits = r.logits.len().min(logits.len());
            logits[..n_logits].copy_from_slice(&r.logits[..n_logits]);
        });
        match result {
            Ok(o) => defmt::info!(
                "sdedge-result input={=u32} exit={=u8} class={=u8} macs={=u32} ticks={=[?]} logits={=[?]}",
                i as u32,
                o.exit as u8,
                o.class as u8,
                o.macs as u32,
                o.segment_ticks.as_slice(),
                &logits[..n_logits]
            ),
            Err(e) => {
                defmt::error!("sdedge-error input={=u32} {}", i as u32, e);
                return Err(e);
            }
        }
    }
    Ok(n as u32)
}

/// The activation arena, sized exactly for the embedded bundle (in .bss).
static mut ARENA: [u8; ARENA_SIZE] = [0; ARENA_SIZE];

extern "C" {
    // cortex-m-rt's linker script: the end of static data and the top of the stack.
    static mut __sheap: u32;
    static _stack_start: u32;
}

/// Paints the free stack; call first thing in `main`, before any large frame.
#[inline(always)]
pub fn paint_stack() {
    let sp = cortex_m::register::msp::read() as usize;
    // SAFETY: from the end of static data to just below this frame is free stack.
    unsafe { stack::paint(core::ptr::addr_of_mut!(__sheap), sp) };
}

/// Runs every embedded input, logs the results and the stack high-water mark, and ends the
/// program with a success or failure code. Call once.
pub fn run_and_exit<C: Clock>(board: &BoardInfo, clock: &mut C) -> ! {
    // SAFETY: the only reference to ARENA, taken once (this function never returns).
    let arena = unsafe { &mut *core::ptr::addr_of_mut!(ARENA) };
    let Ok(n) = run(board, arena, clock) else {
        exit::exit(false)
    };
    let top = core::ptr::addr_of!(_stack_start) as usize;
    // SAFETY: the painted region is readable RAM.
    let used = unsafe { stack::used(core::ptr::addr_of!(__sheap), top) };
    done(n, used);
    exit::exit(true)
}

/// Logs the end of the run with the stack high-water mark the board measured.
pub fn done(inputs: u32, stack_used: u32) {
    defmt::info!("sdedge-done inputs={=u32} stack={=u32}", inputs, stack_used);
}

/// Stack painting: fill the free stack with a pattern at boot, find the deepest overwritten
/// word after the run. `bottom`/`top` come from the linker (cortex-m-rt's `__sheap` and
/// `_stack_start`); `sp` is the current stack pointer.
pub mod stack {
    const PAINT: u32 = 0x5EDE_5EDE;

    /// # Safety
    /// `bottom..sp - margin` must be unused RAM (the free stack below the current frame).
    pub unsafe fn paint(bottom: *mut u32, sp: usize) {
        let mut p = bottom;
        while (p as usize) + 256 < sp {
            p.write_volatile(PAINT);
            p = p.add(1);
        }
    }

    /// Bytes of stack used since [`paint`]: from `top` down to the lowest overwritten word.
    ///
    /// # Safety
    /// `bottom..top` must be readable RAM.
    pub unsafe fn used(bottom: *const u32, top: usize) -> u32 {
        let mut p = bottom;
        while (p as usize) < top && p.read_volatile() == PAINT {
            p = p.add(1);
        }
        (top - p as usize) as u32
    }
}
