//! Writing bundles. The layout and constants come from `sdedge_runtime::format`, so the writer
//! and the runtime's reader cannot drift apart.

use std::path::Path;

use anyhow::{bail, Context, Result};
use sdedge_runtime::format::{
    header, op, segment, tensor, OpKind, PolicyKind, CHECKSUM, CHECKSUM_START, FORMAT_VERSION,
    HEADER_LEN, MAGIC, NO_TENSOR, OP_LEN, SEGMENT_LEN, TENSOR_LEN,
};

use crate::quantize::{ChannelParams, QNode, QOp};

/// A tensor record: index 0 is the model input; op i writes tensor i + 1.
#[derive(Debug, Clone)]
pub struct BTensor {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub scale: f32,
    pub zero_point: i32,
    pub offset: usize,
}

#[derive(Debug, Clone)]
pub struct BOp {
    pub node: QNode,
    pub inputs: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct BSegment {
    pub first_op: usize,
    pub n_ops: usize,
    pub exit_tensor: usize,
    pub policy: PolicyKind,
    pub threshold: f32,
    pub head_ops: usize,
}

pub struct BundleSpec {
    pub tensors: Vec<BTensor>,
    pub ops: Vec<BOp>,
    pub segments: Vec<BSegment>,
    pub num_classes: usize,
    pub arena_size: usize,
}

fn put_u16(b: &mut [u8], at: usize, v: usize) -> Result<()> {
    let v = u16::try_from(v).with_context(|| format!("value {v} does not fit the bundle's u16"))?;
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    Ok(())
}

fn put_u32(b: &mut [u8], at: usize, v: usize) -> Result<()> {
    let v = u32::try_from(v).with_context(|| format!("value {v} does not fit the bundle's u32"))?;
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    Ok(())
}

fn put_i32(b: &mut [u8], at: usize, v: i32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u8(b: &mut [u8], at: usize, v: usize) -> Result<()> {
    b[at] = u8::try_from(v).with_context(|| format!("value {v} does not fit the bundle's u8"))?;
    Ok(())
}

/// The data section: blobs appended 4-byte aligned.
#[derive(Default)]
struct Data(Vec<u8>);

impl Data {
    fn push(&mut self, bytes: &[u8]) -> usize {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        let at = self.0.len();
        self.0.extend_from_slice(bytes);
        at
    }

    fn push_i32s(&mut self, v: &[i32]) -> usize {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push(&bytes)
    }

    fn push_weights(&mut self, rec: &mut [u8], w: &[i8], ch: &ChannelParams) -> Result<()> {
        let bytes: Vec<u8> = w.iter().map(|&x| x as u8).collect();
        let wo = self.push(&bytes);
        put_u32(rec, op::conv::WEIGHTS, wo)?;
        let b = self.push_i32s(&ch.bias);
        put_u32(rec, op::conv::BIAS, b)?;
        let m = self.push_i32s(&ch.multiplier);
        put_u32(rec, op::conv::MULTIPLIER, m)?;
        let s = self.push_i32s(&ch.shift);
        put_u32(rec, op::conv::SHIFT, s)
    }
}

fn put_window(rec: &mut [u8], w: &crate::ir::Window) -> Result<()> {
    put_u8(rec, op::conv::K_H, w.k_h)?;
    put_u8(rec, op::conv::K_W, w.k_w)?;
    put_u8(rec, op::conv::STRIDE_H, w.stride_h)?;
    put_u8(rec, op::conv::STRIDE_W, w.stride_w)?;
    put_u8(rec, op::conv::PAD_TOP, w.pad_top)?;
    put_u8(rec, op::conv::PAD_LEFT, w.pad_left)
}

pub fn encode(spec: &BundleSpec) -> Result<Vec<u8>> {
    let n_t = spec.tensors.len();
    let n_o = spec.ops.len();
    let n_s = spec.segments.len();
    if n_t != n_o + 1 {
        bail!("internal: {n_t} tensors for {n_o} ops");
    }
    let data_offset = HEADER_LEN + n_t * TENSOR_LEN + n_o * OP_LEN + n_s * SEGMENT_LEN;
    let mut tables = vec![0u8; data_offset];
    let mut data = Data::default();

    for (i, t) in spec.tensors.iter().enumerate() {
        let r = &mut tables[HEADER_LEN + i * TENSOR_LEN..][..TENSOR_LEN];
        put_u32(r, tensor::ARENA_OFFSET, t.offset)?;
        put_u16(r, tensor::H, t.h)?;
        put_u16(r, tensor::W, t.w)?;
        put_u16(r, tensor::C, t.c)?;
        r[tensor::ZERO_POINT..tensor::ZERO_POINT + 2]
            .copy_from_slice(&(t.zero_point as i16).to_le_bytes());
        r[tensor::SCALE..tensor::SCALE + 4].copy_from_slice(&t.scale.to_le_bytes());
    }
    let ops_at = HEADER_LEN + n_t * TENSOR_LEN;
    for (i, o) in spec.ops.iter().enumerate() {
        let r = &mut tables[ops_at + i * OP_LEN..][..OP_LEN];
        r[op::ACT_MIN] = o.node.act_min as i8 as u8;
        r[op::ACT_MAX] = o.node.act_max as i8 as u8;
        put_u16(r, op::INPUT0, o.inputs[0])?;
        let in1 = o.inputs.get(1).copied().unwrap_or(usize::from(NO_TENSOR));
        put_u16(r, op::INPUT1, in1)?;
        put_u16(r, op::OUTPUT, i + 1)?;
        let kind = match &o.node.op {
            QOp::Conv {
                window,
                weights,
                channels,
            } => {
                put_window(r, window)?;
                data.push_weights(r, weights, channels)?;
                OpKind::Conv2d
            }
            QOp::Dense { weights, channels } => {
                data.push_weights(r, weights, channels)?;
                OpKind::Dense
            }
            QOp::Add(p) => {
                for (k, v) in p.iter().enumerate() {
                    put_i32(r, op::add::LEFT_SHIFT + 4 * k, *v);
                }
                OpKind::Add
            }
            QOp::MaxPool { window } => {
                put_window(r, window)?;
                OpKind::MaxPool
            }
            QOp::GlobalAvgPool { multiplier, shift } => {
                put_i32(r, op::gap::MULTIPLIER, *multiplier);
                put_i32(r, op::gap::SHIFT, *shift);
                OpKind::GlobalAvgPool
            }
        };
        r[op::KIND] = kind as u8;
    }
    let segs_at = ops_at + n_o * OP_LEN;
    for (k, s) in spec.segments.iter().enumerate() {
        let r = &mut tables[segs_at + k * SEGMENT_LEN..][..SEGMENT_LEN];
        put_u16(r, segment::FIRST_OP, s.first_op)?;
        put_u16(r, segment::N_OPS, s.n_ops)?;
        put_u16(r, segment::EXIT_TENSOR, s.exit_tensor)?;
        r[segment::POLICY] = s.policy as u8;
        r[segment::THRESHOLD..segment::THRESHOLD + 4].copy_from_slice(&s.threshold.to_le_bytes());
        put_u16(r, segment::HEAD_OPS, s.head_ops)?;
    }
    let h = &mut tables[..HEADER_LEN];
    h[header::MAGIC..header::MAGIC + 4].copy_from_slice(&MAGIC);
    put_u16(h, header::VERSION, usize::from(FORMAT_VERSION))?;
    put_u16(h, header::HEADER_LEN, HEADER_LEN)?;
    put_u32(h, header::ARENA_SIZE, spec.arena_size)?;
    put_u16(h, header::N_TENSORS, n_t)?;
    put_u16(h, header::N_OPS, n_o)?;
    put_u16(h, header::N_SEGMENTS, n_s)?;
    put_u16(h, header::INPUT_TENSOR, 0)?;
    put_u16(h, header::NUM_CLASSES, spec.num_classes)?;
    put_u32(h, header::DATA_OFFSET, data_offset)?;
    put_u32(h, header::DATA_LEN, data.0.len())?;
    let mut bytes = tables;
    bytes.extend_from_slice(&data.0);
    let total = bytes.len();
    put_u32(&mut bytes, header::TOTAL_LEN, total)?;
    seal(&mut bytes);
    Ok(bytes)
}

/// Recomputes the checksum after any change.
pub fn seal(bytes: &mut [u8]) {
    let crc = CHECKSUM.checksum(&bytes[CHECKSUM_START..]);
    bytes[header::CHECKSUM..header::CHECKSUM + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Rewrites the exit policy and thresholds of an already valid bundle.
pub fn set_thresholds(bytes: &mut [u8], policy: PolicyKind, thresholds: &[f32]) -> Result<()> {
    let model = sdedge_runtime::Model::parse(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    if thresholds.len() != model.num_exits() {
        bail!(
            "{} thresholds for a bundle with {} exits",
            thresholds.len(),
            model.num_exits()
        );
    }
    let n_t = model.num_ops() + 1;
    let segs_at = HEADER_LEN + n_t * TENSOR_LEN + model.num_ops() * OP_LEN;
    for (k, t) in thresholds.iter().enumerate() {
        let at = segs_at + k * SEGMENT_LEN;
        bytes[at + segment::POLICY] = policy as u8;
        bytes[at + segment::THRESHOLD..at + segment::THRESHOLD + 4]
            .copy_from_slice(&t.to_le_bytes());
    }
    seal(bytes);
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, renamed over the
/// target only once complete, so a failed run never leaves a half-written bundle behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}
