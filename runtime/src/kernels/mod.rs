//! Portable reference int8 kernels with TFLite / CMSIS-NN compatible semantics.
//!
//! * Layout is NHWC with batch 1: element `(y, x, c)` of an `H x W x C` tensor is at
//!   `(y * W + x) * C + c`.
//! * Activations are int8 with a zero point; weights are symmetric int8 (zero point 0) with a
//!   per-output-channel scale, folded with the input/output scales into a fixed-point
//!   `(multiplier, shift)` pair per output channel (see [`crate::fixedpoint`]).
//! * No floating point in any kernel, no `unsafe`, no allocation.
//! * No panics on any input: every kernel first validates its parameters
//!   ([`KernelError::Shape`]) and the slice lengths against them ([`KernelError::Length`]);
//!   all indexing afterwards is provably in bounds.
//! * Accumulators are i32, as in TFLite and CMSIS-NN. For valid models they cannot overflow
//!   (an accumulator term is at most `255 * 128 < 2^15`, so more than 2^16 taps per output
//!   would be needed). The accumulation nevertheless uses `wrapping_add`/`wrapping_mul` so
//!   that a corrupt bundle (absurd offsets or sizes) can never trigger an overflow panic when
//!   overflow checks are enabled; results are then garbage but well defined.

mod add;
mod conv;
mod dense;
mod pool;

pub use add::{add, add_params, AddParams};
pub use conv::{conv2d, Conv2dShape};
pub use dense::dense;
pub use pool::{global_avg_pool, max_pool, PoolShape};

use crate::fixedpoint::multiply_by_quantized_multiplier;

/// Why a kernel refused to run. Kernels never panic; they return one of these instead.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelError {
    /// The parameters are inconsistent: a zero dimension or stride, output dimensions that do
    /// not match the input/kernel/padding (a window lying entirely in the padding), an
    /// activation range outside `[-128, 127]` or with `act_min > act_max`, or sizes whose
    /// products overflow `usize`.
    Shape,
    /// A slice (tensor, weights or per-channel parameters) has the wrong length.
    Length,
}

/// Little-endian `i32` values stored in a byte slice (read lazily from the bundle, so it may
/// be unaligned).
#[derive(Debug, Clone, Copy)]
pub struct LeI32s<'a>(pub &'a [u8]);

impl<'a> LeI32s<'a> {
    /// Number of whole `i32` values (`bytes / 4`).
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// `true` if there is no whole value.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i`. The caller guarantees `i < self.len()`; out of range it returns 0 rather
    /// than panicking.
    #[inline]
    pub fn get(&self, i: usize) -> i32 {
        let start = i.wrapping_mul(4);
        match self.0.get(start..start.wrapping_add(4)) {
            Some(&[b0, b1, b2, b3]) if i < self.len() => i32::from_le_bytes([b0, b1, b2, b3]),
            _ => 0,
        }
    }
}

/// Per-output-channel parameters; each array must hold exactly one value per output channel
/// (`4 * out_channels` bytes).
#[derive(Debug, Clone, Copy)]
pub struct ChannelQuant<'a> {
    /// i32 bias, in accumulator units (`s_in * s_w[oc]`).
    pub bias: LeI32s<'a>,
    /// Fixed-point multiplier of `s_in * s_w[oc] / s_out` (see
    /// [`crate::fixedpoint::quantize_multiplier`]).
    pub multiplier: LeI32s<'a>,
    /// Matching shift (positive = left).
    pub shift: LeI32s<'a>,
}

impl ChannelQuant<'_> {
    fn check(&self, channels: usize) -> Result<(), KernelError> {
        let bytes = checked_mul(channels, 4)?;
        if self.bias.0.len() != bytes
            || self.multiplier.0.len() != bytes
            || self.shift.0.len() != bytes
        {
            return Err(KernelError::Length);
        }
        Ok(())
    }
}

/// Activation quantization shared by conv, dense and average pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// Lower clamp (fused activation), within `[-128, 127]`.
    pub act_min: i32,
    /// Upper clamp (fused activation), within `[-128, 127]`, `>= act_min`.
    pub act_max: i32,
}

pub(crate) fn check_act(act_min: i32, act_max: i32) -> Result<(), KernelError> {
    if act_min < i32::from(i8::MIN) || act_max > i32::from(i8::MAX) || act_min > act_max {
        return Err(KernelError::Shape);
    }
    Ok(())
}

#[inline]
pub(crate) fn checked_mul(a: usize, b: usize) -> Result<usize, KernelError> {
    a.checked_mul(b).ok_or(KernelError::Shape)
}

/// Clamps to `[act_min, act_max]` (already validated to lie within the i8 range).
#[inline]
pub(crate) fn clamp_to_i8(v: i32, act_min: i32, act_max: i32) -> i8 {
    v.max(act_min).min(act_max) as i8
}

/// `clamp(multiply_by_quantized_multiplier(acc, mult, shift) + output_offset)`.
#[inline]
pub(crate) fn requantize(acc: i32, mult: i32, shift: i32, q: &Requant) -> i8 {
    let v = multiply_by_quantized_multiplier(acc, mult, shift).saturating_add(q.output_offset);
    clamp_to_i8(v, q.act_min, q.act_max)
}

/// Validates one spatial axis of a windowed op (conv / pool): all sizes non-zero, and every
/// output window overlaps the image (the first window does not lie entirely in the leading
/// padding, `pad < k`, and the last one starts inside the image,
/// `(out - 1) * stride - pad < in`). The trailing padding is implied.
pub(crate) fn check_axis(
    in_n: usize,
    out_n: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> Result<(), KernelError> {
    if in_n == 0 || out_n == 0 || k == 0 || stride == 0 || pad >= k {
        return Err(KernelError::Shape);
    }
    let last_origin = checked_mul(out_n - 1, stride)?;
    let limit = in_n.checked_add(pad).ok_or(KernelError::Shape)?;
    if last_origin >= limit {
        return Err(KernelError::Shape);
    }
    Ok(())
}

/// For output index `o` on an axis validated by [`check_axis`]: the half-open range of
/// kernel taps `[k0, k1)` that fall inside the image, and the image coordinate of tap `k0`.
/// The range is never empty.
#[inline]
pub(crate) fn tap_range(
    o: usize,
    stride: usize,
    pad: usize,
    in_n: usize,
    k: usize,
) -> (usize, usize, usize) {
    let origin = o * stride; // in padded coordinates; < in_n + pad (validated)
    let k0 = pad.saturating_sub(origin);
    let k1 = k.min(in_n + pad - origin);
    (k0, k1, origin + k0 - pad)
}

#[cfg(test)]
pub(crate) mod testutil {
    extern crate std;
    use std::vec::Vec;

    /// Tiny deterministic xorshift64* PRNG.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        pub(crate) fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        pub(crate) fn next_u32(&mut self) -> u32 {
            (self.next_u64() >> 32) as u32
        }
        /// Uniform in `0..n` (n > 0; modulo bias is irrelevant here).
        pub(crate) fn below(&mut self, n: u32) -> u32 {
            self.next_u32() % n
        }
        /// Uniform in `lo..=hi`.
        pub(crate) fn range(&mut self, lo: i32, hi: i32) -> i32 {
            lo + (self.next_u64() % ((hi as i64 - lo as i64 + 1) as u64)) as i32
        }
        pub(crate) fn usize_in(&mut self, lo: usize, hi: usize) -> usize {
            lo + (self.next_u64() % ((hi - lo + 1) as u64)) as usize
        }
        pub(crate) fn i8(&mut self) -> i8 {
            self.next_u32() as i8
        }
        pub(crate) fn i8s(&mut self, n: usize) -> Vec<i8> {
            (0..n).map(|_| self.i8()).collect()
        }
        /// Uniform in `[0, 1)`.
        pub(crate) fn unit_f64(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
        /// Log-uniform in `[lo, hi]`.
        pub(crate) fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
            lo * (hi / lo).powf(self.unit_f64())
        }
        /// A random activation range: none, ReLU-like or ReLU6-like around `zp`.
        pub(crate) fn act_range(&mut self, zp: i32) -> (i32, i32) {
            match self.below(3) {
                0 => (-128, 127),
                1 => (zp, 127),
                _ => (zp, (zp + self.range(0, 100)).min(127)),
            }
        }
    }

    pub(crate) fn le_bytes(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// Float requantization reference: `clamp(round(acc * m * 2^(shift - 31)) + zp)` with
    /// rounding half away from zero.
    pub(crate) fn float_requant(acc: i64, m: i32, shift: i32, zp: i32, lo: i32, hi: i32) -> i32 {
        let real = m as f64 * (2f64).powi(shift - 31);
        let v = (acc as f64 * real).round() as i64 + zp as i64;
        v.clamp(lo as i64, hi as i64) as i32
    }

    /// Output size and leading padding for TFLite SAME padding.
    pub(crate) fn same(in_n: usize, k: usize, stride: usize) -> (usize, usize) {
        let out = in_n.div_ceil(stride);
        let total = ((out - 1) * stride + k).saturating_sub(in_n);
        (out, total / 2)
    }

    /// Output size for TFLite VALID padding (requires `in_n >= k`).
    pub(crate) fn valid(in_n: usize, k: usize, stride: usize) -> (usize, usize) {
        ((in_n - k) / stride + 1, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn le_i32s_reads_unaligned_and_never_panics() {
        let bytes = [
            0xAAu8, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x80, 7,
        ];
        let v = LeI32s(&bytes[1..]);
        assert_eq!(v.len(), 3);
        assert!(!v.is_empty());
        assert_eq!(v.get(0), 1);
        assert_eq!(v.get(1), -1);
        assert_eq!(v.get(2), i32::MIN);
        assert_eq!(v.get(3), 0);
        assert_eq!(v.get(usize::MAX), 0);
        assert_eq!(v.get(usize::MAX / 4 + 1), 0);
        assert!(LeI32s(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn check_axis_rules() {
        assert_eq!(check_axis(5, 5, 3, 1, 1), Ok(()));
        assert_eq!(check_axis(5, 5, 3, 1, 3), Err(KernelError::Shape)); // pad >= k
                                                                        // last window starts on the last row (implied trailing padding 2 < k): accepted
        assert_eq!(check_axis(5, 6, 3, 1, 1), Ok(()));
        assert_eq!(check_axis(5, 7, 3, 1, 1), Err(KernelError::Shape)); // last window outside
        assert_eq!(check_axis(5, 3, 3, 2, 0), Ok(()));
        assert_eq!(check_axis(5, 4, 3, 2, 0), Err(KernelError::Shape));
        assert_eq!(check_axis(5, 5, 3, 0, 1), Err(KernelError::Shape));
        assert_eq!(check_axis(0, 1, 1, 1, 0), Err(KernelError::Shape));
        assert_eq!(check_axis(5, 0, 1, 1, 0), Err(KernelError::Shape));
        assert_eq!(check_axis(5, 1, 0, 1, 0), Err(KernelError::Shape));
        assert_eq!(check_axis(5, 3, 1, usize::MAX, 0), Err(KernelError::Shape));
        assert_eq!(check_axis(usize::MAX, 1, 2, 1, 1), Err(KernelError::Shape));
        // every SAME/VALID configuration is accepted
        for in_n in 1..20 {
            for k in 1..6 {
                for stride in 1..4 {
                    let (o, p) = same(in_n, k, stride);
                    assert_eq!(
                        check_axis(in_n, o, k, stride, p),
                        Ok(()),
                        "{in_n} {k} {stride}"
                    );
                    if in_n >= k {
                        let (o, p) = valid(in_n, k, stride);
                        assert_eq!(check_axis(in_n, o, k, stride, p), Ok(()));
                    }
                }
            }
        }
    }

    #[test]
    fn check_act_rules() {
        assert_eq!(check_act(-128, 127), Ok(()));
        assert_eq!(check_act(5, 5), Ok(()));
        assert_eq!(check_act(6, 5), Err(KernelError::Shape));
        assert_eq!(check_act(-129, 0), Err(KernelError::Shape));
        assert_eq!(check_act(0, 128), Err(KernelError::Shape));
    }
}
