//! The segment executor: runs segment after segment and stops at the first confident exit.

use heapless::Vec;

use crate::format::{PolicyKind, MAX_SEGMENTS};
use crate::kernels::{self, AddParams, Conv2dShape, PoolShape, Requant};
use crate::model::{Model, Op, OpParams, TensorInfo};
use crate::policy::{self, ExitScore};
use crate::Error;

/// A free-running counter a board uses to time segments (DWT CYCCNT, SysTick, ...).
/// Differences are taken with wrapping arithmetic, so a 32-bit counter may wrap once.
pub trait Clock {
    fn now(&mut self) -> u32;
}

/// For callers that do not time anything.
pub struct NoClock;

impl Clock for NoClock {
    fn now(&mut self) -> u32 {
        0
    }
}

/// How to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'t> {
    /// Per-exit thresholds replacing the bundle's defaults (one per exit).
    pub thresholds: Option<&'t [f32]>,
    /// Replaces the bundle's policy kind for every exit.
    pub policy: Option<PolicyKind>,
    /// Run every segment and score every exit (for evaluation); the outcome is still the
    /// first confident exit, but `macs` counts the whole network.
    pub run_all: bool,
}

/// One exit's view of one input, passed to the observer as each exit is scored.
#[derive(Debug, Clone, Copy)]
pub struct ExitReport<'a> {
    pub exit: usize,
    pub score: ExitScore,
    pub confident: bool,
    /// The exit's int8 logits (valid until the observer returns).
    pub logits: &'a [i8],
    /// MACs spent so far, this segment included.
    pub macs: u64,
    /// Clock ticks this segment took (0 with [`NoClock`]).
    pub ticks: u32,
}

/// The answer for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Index of the exit that answered (the last exit when none was confident earlier).
    pub exit: usize,
    pub class: usize,
    pub score: ExitScore,
    /// MACs spent.
    pub macs: u64,
    /// Clock ticks per segment run.
    pub segment_ticks: Vec<u32, MAX_SEGMENTS>,
}

impl<'b> Model<'b> {
    /// Runs `input` (int8, quantized with the input tensor's scale and zero point, HWC) and
    /// calls `observe` for every exit scored.
    pub fn run<C: Clock, F: FnMut(&ExitReport)>(
        &self,
        input: &[i8],
        arena: &mut [u8],
        options: &Options,
        clock: &mut C,
        mut observe: F,
    ) -> Result<Outcome, Error> {
        if arena.len() < self.arena_size() {
            return Err(Error::ArenaTooSmall {
                needed: self.arena_size(),
                given: arena.len(),
            });
        }
        if let Some(t) = options.thresholds {
            if t.len() != self.num_exits() {
                return Err(Error::ThresholdCount {
                    expected: self.num_exits(),
                    given: t.len(),
                });
            }
        }
        let input_t = self.input()?;
        if input.len() != input_t.len() {
            return Err(Error::InputLength {
                expected: input_t.len(),
                given: input.len(),
            });
        }
        as_i8_mut(&mut arena[input_t.range()]).copy_from_slice(input);

        let mut macs = 0u64;
        let mut segment_ticks = Vec::new();
        let mut answer: Option<(usize, ExitScore)> = None;
        let last = self.num_exits() - 1;
        for k in 0..self.num_exits() {
            let seg = self.segment(k)?;
            let start = clock.now();
            for i in seg.ops.clone() {
                let op = self.op(i)?;
                execute(&op, arena)?;
                macs += op.macs();
            }
            let ticks = clock.now().wrapping_sub(start);
            // Capacity is MAX_SEGMENTS and the model has at most that many segments.
            let _ = segment_ticks.push(ticks);

            let logits = as_i8(&arena[seg.exit_tensor.range()]);
            let exit_t = seg.exit_tensor;
            let score = policy::score(logits, exit_t.scale, exit_t.zero_point);
            let threshold = options.thresholds.map_or(seg.threshold, |t| t[k]);
            let kind = options.policy.unwrap_or(seg.policy);
            let confident = policy::is_confident(kind, threshold, &score);
            observe(&ExitReport {
                exit: k,
                score,
                confident,
                logits,
                macs,
                ticks,
            });
            if answer.is_none() && (confident || k == last) {
                answer = Some((k, score));
                if !options.run_all {
                    break;
                }
            }
        }
        let (exit, score) = answer.ok_or(Error::Invalid("no exit answered"))?;
        Ok(Outcome {
            exit,
            class: score.class,
            score,
            macs,
            segment_ticks,
        })
    }

    /// Quantizes an 8-bit grayscale/RGB image (0..=255, HWC) for the input tensor, assuming
    /// the model takes pixel / 255.
    pub fn quantize_u8_image(&self, pixels: &[u8], out: &mut [i8]) -> Result<(), Error> {
        let t = self.input()?;
        if pixels.len() != t.len() || out.len() != t.len() {
            return Err(Error::InputLength {
                expected: t.len(),
                given: pixels.len(),
            });
        }
        for (o, &p) in out.iter_mut().zip(pixels) {
            *o = quantize(f32::from(p) / 255.0, &t);
        }
        Ok(())
    }
}

/// Round half away from zero, then clamp to int8 (as TFLite's input quantization).
fn quantize(x: f32, t: &TensorInfo) -> i8 {
    let v = x / t.scale;
    let r = if v >= 0.0 {
        (v + 0.5) as i32
    } else {
        (v - 0.5) as i32
    };
    (r + t.zero_point).clamp(-128, 127) as i8
}

fn as_i8(b: &[u8]) -> &[i8] {
    bytemuck::cast_slice(b)
}

fn as_i8_mut(b: &mut [u8]) -> &mut [i8] {
    bytemuck::cast_slice_mut(b)
}

/// An op's inputs (read-only) and output (writable), all borrowed from the arena.
type ArenaViews<'a> = ([Option<&'a [i8]>; 2], &'a mut [i8]);

/// Borrows the op's output mutably and its inputs immutably from one arena. The model's
/// validation guarantees the output does not overlap the inputs.
fn split_arena<'a>(
    arena: &'a mut [u8],
    inputs: [Option<&TensorInfo>; 2],
    output: &TensorInfo,
) -> Result<ArenaViews<'a>, Error> {
    let out = output.range();
    let (before, rest) = arena.split_at_mut(out.start);
    let (out_bytes, after) = rest.split_at_mut(out.end - out.start);
    let (before, after): (&'a [u8], &'a [u8]) = (before, after);
    let pick = |t: Option<&TensorInfo>| -> Result<Option<&'a [i8]>, Error> {
        let Some(t) = t else { return Ok(None) };
        let r = t.range();
        let bytes = if r.end <= out.start {
            before.get(r)
        } else if r.start >= out.end {
            after.get(r.start - out.end..r.end - out.end)
        } else {
            None
        };
        bytes
            .map(|b| Some(as_i8(b)))
            .ok_or(Error::Invalid("op output overlaps its input in the arena"))
    };
    Ok(([pick(inputs[0])?, pick(inputs[1])?], as_i8_mut(out_bytes)))
}

fn execute(op: &Op, arena: &mut [u8]) -> Result<(), Error> {
    let [Some(a), b] = op.inputs else {
        return Err(Error::Invalid("op without input"));
    };
    let out = op.output;
    let ([Some(x), y], o) = split_arena(arena, [Some(&a), b.as_ref()], &out)? else {
        return Err(Error::Invalid("op without input"));
    };
    let requant = Requant {
        input_offset: -a.zero_point,
        output_offset: out.zero_point,
        act_min: op.act_min,
        act_max: op.act_max,
    };
    let result = match op.params {
        OpParams::Conv2d(win, w) => {
            let shape = Conv2dShape {
                in_h: a.h,
                in_w: a.w,
                in_c: a.c,
                out_h: out.h,
                out_w: out.w,
                out_c: out.c,
                k_h: win.k_h,
                k_w: win.k_w,
                stride_h: win.stride_h,
                stride_w: win.stride_w,
                pad_top: win.pad_top,
                pad_left: win.pad_left,
            };
            kernels::conv2d(&shape, &requant, w.quant, x, w.weights, o).map(|_| ())
        }
        OpParams::Dense(w) => {
            kernels::dense(a.len(), out.c, &requant, w.quant, x, w.weights, o).map(|_| ())
        }
        OpParams::Add(p) => {
            let (Some(y), Some(b)) = (y, b) else {
                return Err(Error::Invalid("add needs two inputs"));
            };
            let params = AddParams {
                left_shift: p[0],
                in1_offset: -a.zero_point,
                in1_multiplier: p[1],
                in1_shift: p[2],
                in2_offset: -b.zero_point,
                in2_multiplier: p[3],
                in2_shift: p[4],
                out_offset: out.zero_point,
                out_multiplier: p[5],
                out_shift: p[6],
                act_min: op.act_min,
                act_max: op.act_max,
            };
            kernels::add(&params, x, y, o)
        }
        OpParams::MaxPool(win) => {
            let shape = PoolShape {
                in_h: a.h,
                in_w: a.w,
                c: a.c,
                out_h: out.h,
                out_w: out.w,
                k_h: win.k_h,
                k_w: win.k_w,
                stride_h: win.stride_h,
                stride_w: win.stride_w,
                pad_top: win.pad_top,
                pad_left: win.pad_left,
            };
            kernels::max_pool(&shape, op.act_min, op.act_max, x, o)
        }
        OpParams::GlobalAvgPool { multiplier, shift } => {
            kernels::global_avg_pool(a.h, a.w, a.c, multiplier, shift, &requant, x, o)
        }
    };
    result.map_err(Error::Kernel)
}
