//! The bundle format: the one contract between the host tools (writer) and the runtime (reader).
//!
//! Every constant and record layout lives here; `docs/bundle-format.md` describes the same
//! layout in prose. All integers are little-endian. A bundle is:
//!
//! ```text
//! header      HEADER_LEN bytes
//! tensors     n_tensors  * TENSOR_LEN bytes
//! ops         n_ops      * OP_LEN bytes
//! segments    n_segments * SEGMENT_LEN bytes
//! data        everything up to total_len: weights, biases, multipliers, shifts (4-byte aligned)
//! ```
//!
//! Offsets stored in op records point into the data section (relative to its start).

/// First four bytes of every bundle.
pub const MAGIC: [u8; 4] = *b"SDE\0";
/// Bumped on any incompatible change of the layout below.
pub const FORMAT_VERSION: u16 = 1;
/// Checksum over bytes `CHECKSUM_START..total_len`: CRC-32/ISO-HDLC (zlib's crc32).
pub const CHECKSUM: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
/// The checksum covers everything after the checksum field itself.
pub const CHECKSUM_START: usize = 16;

/// Most segments (= exits) a bundle may have; bounds the runtime's fixed-size reports.
pub const MAX_SEGMENTS: usize = 8;
/// Most classes an exit may have; bounds the exit policy's stack buffer.
pub const MAX_CLASSES: usize = 64;

pub const HEADER_LEN: usize = 48;
pub const TENSOR_LEN: usize = 16;
pub const OP_LEN: usize = 48;
pub const SEGMENT_LEN: usize = 16;

/// Header field offsets.
pub mod header {
    pub const MAGIC: usize = 0; // [u8; 4]
    pub const VERSION: usize = 4; // u16
    pub const HEADER_LEN: usize = 6; // u16, = super::HEADER_LEN
    pub const TOTAL_LEN: usize = 8; // u32, whole bundle
    pub const CHECKSUM: usize = 12; // u32
    pub const ARENA_SIZE: usize = 16; // u32, bytes the caller must provide
    pub const N_TENSORS: usize = 20; // u16
    pub const N_OPS: usize = 22; // u16
    pub const N_SEGMENTS: usize = 24; // u16
    pub const INPUT_TENSOR: usize = 26; // u16
    pub const NUM_CLASSES: usize = 28; // u16
    pub const FLAGS: usize = 30; // u16, reserved (0)
    pub const DATA_OFFSET: usize = 32; // u32, start of the data section
    pub const DATA_LEN: usize = 36; // u32
    pub const RESERVED: usize = 40; // 8 bytes, 0
}

/// Tensor record: where an activation lives in the arena and how it is quantized.
/// Shapes are HWC (batch 1); the arena layout is NHWC.
pub mod tensor {
    pub const ARENA_OFFSET: usize = 0; // u32
    pub const H: usize = 4; // u16
    pub const W: usize = 6; // u16
    pub const C: usize = 8; // u16
    pub const ZERO_POINT: usize = 10; // i16, within i8's range
    pub const SCALE: usize = 12; // f32 (used only by the exit policy and input quantization)
}

/// Op record: common fields, then kind-specific parameters starting at `PARAMS`.
pub mod op {
    pub const KIND: usize = 0; // u8, see OpKind
    pub const ACT_MIN: usize = 1; // i8, fused activation clamp
    pub const ACT_MAX: usize = 2; // i8
    pub const INPUT0: usize = 4; // u16 tensor index
    pub const INPUT1: usize = 6; // u16 tensor index (Add only, else 0xFFFF)
    pub const OUTPUT: usize = 8; // u16 tensor index
    pub const PARAMS: usize = 12;

    /// Conv2d / Dense parameters (Dense uses only the four data offsets).
    pub mod conv {
        use super::PARAMS;
        pub const K_H: usize = PARAMS; // u8
        pub const K_W: usize = PARAMS + 1; // u8
        pub const STRIDE_H: usize = PARAMS + 2; // u8
        pub const STRIDE_W: usize = PARAMS + 3; // u8
        pub const PAD_TOP: usize = PARAMS + 4; // u8
        pub const PAD_LEFT: usize = PARAMS + 5; // u8
        /// Data offsets (u32): int8 weights [out_c][k_h][k_w][in_c], then per output channel
        /// i32 bias, i32 multiplier, i32 shift.
        pub const WEIGHTS: usize = PARAMS + 8;
        pub const BIAS: usize = PARAMS + 12;
        pub const MULTIPLIER: usize = PARAMS + 16;
        pub const SHIFT: usize = PARAMS + 20;
    }

    /// Add parameters (i32 each); zero points come from the tensor records.
    pub mod add {
        use super::PARAMS;
        pub const LEFT_SHIFT: usize = PARAMS;
        pub const IN1_MULTIPLIER: usize = PARAMS + 4;
        pub const IN1_SHIFT: usize = PARAMS + 8;
        pub const IN2_MULTIPLIER: usize = PARAMS + 12;
        pub const IN2_SHIFT: usize = PARAMS + 16;
        pub const OUT_MULTIPLIER: usize = PARAMS + 20;
        pub const OUT_SHIFT: usize = PARAMS + 24;
    }

    /// MaxPool parameters (u8 each), same positions as conv's geometry.
    pub mod pool {
        pub use super::conv::{K_H, K_W, PAD_LEFT, PAD_TOP, STRIDE_H, STRIDE_W};
    }

    /// GlobalAvgPool parameters (i32 each).
    pub mod gap {
        use super::PARAMS;
        pub const MULTIPLIER: usize = PARAMS;
        pub const SHIFT: usize = PARAMS + 4;
    }
}

/// Segment record: a contiguous run of ops ending in an exit head.
pub mod segment {
    pub const FIRST_OP: usize = 0; // u16
    pub const N_OPS: usize = 2; // u16
    pub const EXIT_TENSOR: usize = 4; // u16, logits [1, 1, num_classes]
    pub const POLICY: usize = 6; // u8, see PolicyKind
    pub const THRESHOLD: usize = 8; // f32, default threshold of this exit
    /// u16: how many of the segment's last ops form the exit head (ops only this exit needs;
    /// 0 for the main exit, whose whole segment is the model's own path).
    pub const HEAD_OPS: usize = 12;
}

/// Marks an unused tensor slot in an op record.
pub const NO_TENSOR: u16 = 0xFFFF;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OpKind {
    Conv2d = 1,
    Dense = 2,
    Add = 3,
    MaxPool = 4,
    GlobalAvgPool = 5,
}

impl OpKind {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Conv2d,
            2 => Self::Dense,
            3 => Self::Add,
            4 => Self::MaxPool,
            5 => Self::GlobalAvgPool,
            _ => return None,
        })
    }
}

/// How an exit decides it is confident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PolicyKind {
    /// Exit when the softmax entropy (nats) is at most the threshold.
    Entropy = 0,
    /// Exit when the top softmax probability is at least the threshold.
    MaxProb = 1,
}

impl PolicyKind {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Entropy,
            1 => Self::MaxProb,
            _ => return None,
        })
    }
}

/// Little-endian field access that never panics: `None` when out of bounds.
pub(crate) fn read_u8(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

pub(crate) fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

pub(crate) fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn read_i32(b: &[u8], at: usize) -> Option<i32> {
    read_u32(b, at).map(|v| v as i32)
}

pub(crate) fn read_f32(b: &[u8], at: usize) -> Option<f32> {
    read_u32(b, at).map(f32::from_bits)
}
