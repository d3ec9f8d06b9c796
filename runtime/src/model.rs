//! Reading and validating a bundle. Everything the executor will touch is checked here once,
//! so a corrupt or truncated bundle is an `Err` before any kernel runs; the executor still
//! decodes through the same checked readers, so nothing can read out of bounds either way.

use core::ops::Range;

use crate::format::{
    header, op, read_f32, read_i32, read_u16, read_u32, read_u8, segment, tensor, OpKind,
    PolicyKind, CHECKSUM, CHECKSUM_START, FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_CLASSES,
    MAX_SEGMENTS, NO_TENSOR, OP_LEN, SEGMENT_LEN, TENSOR_LEN,
};
use crate::kernels::{ChannelQuant, LeI32s};
use crate::Error;

/// One activation tensor: HWC shape, arena placement and quantization.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorInfo {
    pub offset: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub zero_point: i32,
    pub scale: f32,
}

impl TensorInfo {
    pub fn len(&self) -> usize {
        self.h * self.w * self.c
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Geometry shared by convolutions and pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub k_h: usize,
    pub k_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

/// Per-output-channel data of a Conv2d or Dense op, borrowed from the bundle.
#[derive(Clone, Copy)]
pub struct Weights<'b> {
    pub weights: &'b [i8],
    /// Bias and requantization per output channel, as the kernels take them.
    pub quant: ChannelQuant<'b>,
}

#[derive(Clone, Copy)]
pub enum OpParams<'b> {
    Conv2d(Window, Weights<'b>),
    Dense(Weights<'b>),
    /// left_shift, in1 (multiplier, shift), in2 (multiplier, shift), out (multiplier, shift)
    Add([i32; 7]),
    MaxPool(Window),
    GlobalAvgPool {
        multiplier: i32,
        shift: i32,
    },
}

/// A decoded op record.
#[derive(Clone, Copy)]
pub struct Op<'b> {
    pub kind: OpKind,
    pub act_min: i32,
    pub act_max: i32,
    pub inputs: [Option<TensorInfo>; 2],
    pub output: TensorInfo,
    pub params: OpParams<'b>,
}

impl Op<'_> {
    /// Multiply-accumulates this op performs (convolutions and dense layers; pools and adds
    /// count as zero, as in the usual MAC budgets).
    pub fn macs(&self) -> u64 {
        let input = match self.inputs[0] {
            Some(t) => t,
            None => return 0,
        };
        let out = self.output;
        match self.params {
            OpParams::Conv2d(win, _) => (out.len() as u64) * (win.k_h * win.k_w * input.c) as u64,
            OpParams::Dense(_) => (out.len() as u64) * input.len() as u64,
            _ => 0,
        }
    }
}

/// A run of ops that ends in an exit head.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    pub ops: Range<usize>,
    /// The exit head: the ops at the end of `ops` that only this exit needs.
    pub head: Range<usize>,
    pub exit_tensor: TensorInfo,
    pub policy: PolicyKind,
    pub threshold: f32,
}

/// A validated bundle, borrowed from flash or a file's bytes.
#[derive(Clone, Copy)]
pub struct Model<'b> {
    bytes: &'b [u8],
    data: &'b [u8],
    arena_size: usize,
    n_tensors: usize,
    n_ops: usize,
    n_segments: usize,
    input_tensor: usize,
    num_classes: usize,
}

fn field<T>(v: Option<T>, what: &'static str) -> Result<T, Error> {
    v.ok_or(Error::Truncated(what))
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

impl<'b> Model<'b> {
    /// Checks magic, version, length, checksum and every record; never panics.
    pub fn parse(bytes: &'b [u8]) -> Result<Self, Error> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated("header"));
        }
        if bytes[header::MAGIC..header::MAGIC + 4] != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = field(read_u16(bytes, header::VERSION), "version")?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        if field(read_u16(bytes, header::HEADER_LEN), "header")? as usize != HEADER_LEN {
            return Err(Error::Invalid("header length"));
        }
        let total = field(read_u32(bytes, header::TOTAL_LEN), "header")? as usize;
        if total != bytes.len() {
            return Err(if total > bytes.len() {
                Error::Truncated("bundle shorter than its header says")
            } else {
                Error::Invalid("bundle longer than its header says")
            });
        }
        let stored = field(read_u32(bytes, header::CHECKSUM), "header")?;
        if CHECKSUM.checksum(&bytes[CHECKSUM_START..]) != stored {
            return Err(Error::ChecksumMismatch);
        }
        let u16_at = |at| field(read_u16(bytes, at), "header").map(usize::from);
        let n_tensors = u16_at(header::N_TENSORS)?;
        let n_ops = u16_at(header::N_OPS)?;
        let n_segments = u16_at(header::N_SEGMENTS)?;
        let data_offset = field(read_u32(bytes, header::DATA_OFFSET), "header")? as usize;
        let data_len = field(read_u32(bytes, header::DATA_LEN), "header")? as usize;
        let tables_end =
            HEADER_LEN + n_tensors * TENSOR_LEN + n_ops * OP_LEN + n_segments * SEGMENT_LEN;
        let data = data_offset
            .checked_add(data_len)
            .filter(|&end| data_offset >= tables_end && end <= bytes.len())
            .map(|end| &bytes[data_offset..end])
            .ok_or(Error::Invalid("data section"))?;
        let model = Model {
            bytes,
            data,
            arena_size: field(read_u32(bytes, header::ARENA_SIZE), "header")? as usize,
            n_tensors,
            n_ops,
            n_segments,
            input_tensor: u16_at(header::INPUT_TENSOR)?,
            num_classes: u16_at(header::NUM_CLASSES)?,
        };
        model.validate()?;
        Ok(model)
    }

    pub fn arena_size(&self) -> usize {
        self.arena_size
    }

    pub fn num_exits(&self) -> usize {
        self.n_segments
    }

    pub fn num_ops(&self) -> usize {
        self.n_ops
    }

    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Total bundle size in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    pub fn input(&self) -> Result<TensorInfo, Error> {
        self.tensor(self.input_tensor)
    }

    pub fn tensor(&self, i: usize) -> Result<TensorInfo, Error> {
        if i >= self.n_tensors {
            return Err(Error::Invalid("tensor index"));
        }
        let at = HEADER_LEN + i * TENSOR_LEN;
        let r = |o| field(read_u16(self.bytes, at + o), "tensor table").map(usize::from);
        let zp = field(
            read_u16(self.bytes, at + tensor::ZERO_POINT),
            "tensor table",
        )? as i16;
        let t = TensorInfo {
            offset: field(
                read_u32(self.bytes, at + tensor::ARENA_OFFSET),
                "tensor table",
            )? as usize,
            h: r(tensor::H)?,
            w: r(tensor::W)?,
            c: r(tensor::C)?,
            zero_point: i32::from(zp),
            scale: field(read_f32(self.bytes, at + tensor::SCALE), "tensor table")?,
        };
        if !(-128..=127).contains(&t.zero_point) {
            return Err(Error::Invalid("tensor zero point"));
        }
        if t.is_empty() || t.offset.saturating_add(t.len()) > self.arena_size {
            return Err(Error::Invalid("tensor outside the arena"));
        }
        Ok(t)
    }

    fn data_slice(&self, offset: u32, len: usize) -> Result<&'b [u8], Error> {
        let start = offset as usize;
        start
            .checked_add(len)
            .and_then(|end| self.data.get(start..end))
            .ok_or(Error::Invalid("op data outside the data section"))
    }

    /// Decodes op `i`, checking its tensors, geometry and data ranges.
    pub fn op(&self, i: usize) -> Result<Op<'b>, Error> {
        if i >= self.n_ops {
            return Err(Error::Invalid("op index"));
        }
        let at = HEADER_LEN + self.n_tensors * TENSOR_LEN + i * OP_LEN;
        let rec = self
            .bytes
            .get(at..at + OP_LEN)
            .ok_or(Error::Truncated("op table"))?;
        let kind = OpKind::from_u8(rec[op::KIND]).ok_or(Error::UnsupportedOp(rec[op::KIND]))?;
        let act_min = i32::from(rec[op::ACT_MIN] as i8);
        let act_max = i32::from(rec[op::ACT_MAX] as i8);
        if act_min > act_max {
            return Err(Error::Invalid("activation range"));
        }
        let tensor_at = |o| -> Result<Option<TensorInfo>, Error> {
            match field(read_u16(rec, o), "op table")? {
                NO_TENSOR => Ok(None),
                t => self.tensor(usize::from(t)).map(Some),
            }
        };
        let input0 = tensor_at(op::INPUT0)?.ok_or(Error::Invalid("op without input"))?;
        let input1 = tensor_at(op::INPUT1)?;
        // Ops run in order and op i writes tensor i + 1 (tensor 0 is the model input), so an
        // input index <= i means "already computed".
        let out_index = field(read_u16(rec, op::OUTPUT), "op table")? as usize;
        if out_index != i + 1 {
            return Err(Error::Invalid("op output is not the next tensor"));
        }
        for t in [op::INPUT0, op::INPUT1] {
            let idx = field(read_u16(rec, t), "op table")?;
            if idx != NO_TENSOR && usize::from(idx) > i {
                return Err(Error::Invalid("op reads a tensor not yet computed"));
            }
        }
        let output = self.tensor(out_index)?;
        for inp in [Some(input0), input1].into_iter().flatten() {
            if overlaps(&inp.range(), &output.range()) {
                return Err(Error::Invalid("op output overlaps its input in the arena"));
            }
        }
        let u8_at = |o| usize::from(rec[o]);
        let i32_at = |o| field(read_i32(rec, o), "op table");
        let u32_at = |o| field(read_u32(rec, o), "op table");
        let window = || -> Result<Window, Error> {
            let w = Window {
                k_h: u8_at(op::conv::K_H),
                k_w: u8_at(op::conv::K_W),
                stride_h: u8_at(op::conv::STRIDE_H),
                stride_w: u8_at(op::conv::STRIDE_W),
                pad_top: u8_at(op::conv::PAD_TOP),
                pad_left: u8_at(op::conv::PAD_LEFT),
            };
            if w.k_h == 0 || w.k_w == 0 || w.stride_h == 0 || w.stride_w == 0 {
                return Err(Error::Invalid("zero kernel or stride"));
            }
            Ok(w)
        };
        let weights = |n_weights: usize, out_c: usize| -> Result<Weights<'b>, Error> {
            let w = self.data_slice(u32_at(op::conv::WEIGHTS)?, n_weights)?;
            Ok(Weights {
                weights: bytemuck::cast_slice(w),
                quant: ChannelQuant {
                    bias: LeI32s(self.data_slice(u32_at(op::conv::BIAS)?, out_c * 4)?),
                    multiplier: LeI32s(self.data_slice(u32_at(op::conv::MULTIPLIER)?, out_c * 4)?),
                    shift: LeI32s(self.data_slice(u32_at(op::conv::SHIFT)?, out_c * 4)?),
                },
            })
        };
        let params = match kind {
            OpKind::Conv2d => {
                let win = window()?;
                let n = output.c * win.k_h * win.k_w * input0.c;
                OpParams::Conv2d(win, weights(n, output.c)?)
            }
            OpKind::Dense => {
                if output.h != 1 || output.w != 1 {
                    return Err(Error::Invalid("dense output must be 1x1xN"));
                }
                OpParams::Dense(weights(output.c * input0.len(), output.c)?)
            }
            OpKind::Add => {
                let b = input1.ok_or(Error::Invalid("add needs two inputs"))?;
                if b.len() != input0.len() || output.len() != input0.len() {
                    return Err(Error::Invalid("add operands differ in shape"));
                }
                let mut p = [0i32; 7];
                for (k, v) in p.iter_mut().enumerate() {
                    *v = i32_at(op::add::LEFT_SHIFT + 4 * k)?;
                }
                OpParams::Add(p)
            }
            OpKind::MaxPool => {
                if output.c != input0.c {
                    return Err(Error::Invalid("max pool changes channels"));
                }
                OpParams::MaxPool(window()?)
            }
            OpKind::GlobalAvgPool => {
                if output.h != 1 || output.w != 1 || output.c != input0.c {
                    return Err(Error::Invalid("global average pool must give 1x1xC"));
                }
                OpParams::GlobalAvgPool {
                    multiplier: i32_at(op::gap::MULTIPLIER)?,
                    shift: i32_at(op::gap::SHIFT)?,
                }
            }
        };
        Ok(Op {
            kind,
            act_min,
            act_max,
            inputs: [Some(input0), input1],
            output,
            params,
        })
    }

    pub fn segment(&self, k: usize) -> Result<SegmentInfo, Error> {
        if k >= self.n_segments {
            return Err(Error::Invalid("segment index"));
        }
        let at = HEADER_LEN + self.n_tensors * TENSOR_LEN + self.n_ops * OP_LEN + k * SEGMENT_LEN;
        let first = field(
            read_u16(self.bytes, at + segment::FIRST_OP),
            "segment table",
        )?;
        let n = field(read_u16(self.bytes, at + segment::N_OPS), "segment table")?;
        let exit = field(
            read_u16(self.bytes, at + segment::EXIT_TENSOR),
            "segment table",
        )?;
        let policy = field(read_u8(self.bytes, at + segment::POLICY), "segment table")?;
        let head = field(
            read_u16(self.bytes, at + segment::HEAD_OPS),
            "segment table",
        )?;
        if head > n {
            return Err(Error::Invalid("exit head longer than its segment"));
        }
        let end = usize::from(first) + usize::from(n);
        Ok(SegmentInfo {
            ops: usize::from(first)..end,
            head: end - usize::from(head)..end,
            exit_tensor: self.tensor(usize::from(exit))?,
            policy: PolicyKind::from_u8(policy).ok_or(Error::Invalid("exit policy"))?,
            threshold: field(
                read_f32(self.bytes, at + segment::THRESHOLD),
                "segment table",
            )?,
        })
    }

    /// Multiply-accumulates of segment `k`: (trunk part, exit head).
    pub fn segment_macs(&self, k: usize) -> Result<(u64, u64), Error> {
        let seg = self.segment(k)?;
        let (mut trunk, mut head) = (0, 0);
        for i in seg.ops {
            let m = self.op(i)?.macs();
            if seg.head.contains(&i) {
                head += m;
            } else {
                trunk += m;
            }
        }
        Ok((trunk, head))
    }

    /// MACs of the network without early exits: every trunk part plus the main exit's segment.
    pub fn main_path_macs(&self) -> Result<u64, Error> {
        let mut macs = 0;
        for k in 0..self.n_segments {
            let (trunk, head) = self.segment_macs(k)?;
            macs += trunk + if k + 1 == self.n_segments { head } else { 0 };
        }
        Ok(macs)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.n_segments == 0 || self.n_segments > MAX_SEGMENTS {
            return Err(Error::Invalid("number of exits"));
        }
        if self.num_classes < 2 || self.num_classes > MAX_CLASSES {
            return Err(Error::Invalid("number of classes"));
        }
        if self.n_tensors != self.n_ops + 1 || self.input_tensor != 0 {
            return Err(Error::Invalid("tensor table does not match the ops"));
        }
        self.input()?;
        for i in 0..self.n_ops {
            let o = self.op(i)?;
            // Nothing run between a tensor's producer and a later reader may overwrite it.
            for (slot, inp) in o.inputs.iter().enumerate() {
                if inp.is_some() {
                    let idx = self.input_index(i, slot)?;
                    self.check_alive(idx, i)?;
                }
            }
        }
        let mut next = 0;
        for k in 0..self.n_segments {
            let seg = self.segment(k)?;
            if seg.ops.start != next || seg.ops.is_empty() || seg.ops.end > self.n_ops {
                return Err(Error::Invalid("segments must cover the ops in order"));
            }
            next = seg.ops.end;
            let exit = seg.exit_tensor;
            if exit.h != 1 || exit.w != 1 || exit.c != self.num_classes {
                return Err(Error::Invalid("exit tensor is not 1x1xclasses"));
            }
            let at = HEADER_LEN + self.n_tensors * TENSOR_LEN + self.n_ops * OP_LEN;
            let exit_idx = field(
                read_u16(self.bytes, at + k * SEGMENT_LEN + segment::EXIT_TENSOR),
                "segment table",
            )? as usize;
            if exit_idx == 0 || !seg.ops.contains(&(exit_idx - 1)) {
                return Err(Error::Invalid("exit tensor not produced by its segment"));
            }
            // The logits must survive until the policy reads them at the segment's end.
            self.check_alive(exit_idx, seg.ops.end)?;
            if seg.threshold.is_nan() {
                return Err(Error::Invalid("exit threshold"));
            }
        }
        if next != self.n_ops {
            return Err(Error::Invalid("segments must cover the ops in order"));
        }
        Ok(())
    }

    fn input_index(&self, op_i: usize, slot: usize) -> Result<usize, Error> {
        let at = HEADER_LEN + self.n_tensors * TENSOR_LEN + op_i * OP_LEN;
        let o = if slot == 0 { op::INPUT0 } else { op::INPUT1 };
        field(read_u16(self.bytes, at + o), "op table").map(usize::from)
    }

    /// Tensor `t` (written by op t-1) must not be overwritten by ops t..until.
    fn check_alive(&self, t: usize, until: usize) -> Result<(), Error> {
        let range = self.tensor(t)?.range();
        for j in t..until {
            if overlaps(&range, &self.tensor(j + 1)?.range()) {
                return Err(Error::Invalid("arena plan overwrites a live tensor"));
            }
        }
        Ok(())
    }
}
