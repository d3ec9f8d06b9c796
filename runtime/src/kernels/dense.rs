//! Fully connected layer, int8 (TFLite `reference_integer_ops::FullyConnected` with
//! per-channel quantization).

use super::conv::dot;
use super::{check_act, checked_mul, requantize, ChannelQuant, KernelError, Requant};

/// Fully connected layer: `weights` is `[out_n][in_n]` int8 (symmetric, per-output-channel
/// scale); for each output `o`,
/// `acc = bias[o] + Σ_i (input[i] + input_offset) * weights[o][i]` and
/// `out = clamp(multiply_by_quantized_multiplier(acc, mult[o], shift[o]) + output_offset,
/// act_min, act_max)`.
///
/// Returns the number of multiply-accumulates, `in_n * out_n` (saturated at `u32::MAX`).
///
/// Errors: [`KernelError::Shape`] if `in_n` or `out_n` is 0 or the activation range is
/// invalid; [`KernelError::Length`] if `input.len() != in_n`, `weights.len() != in_n * out_n`,
/// `output.len() != out_n` or a per-channel array does not hold `out_n` values.
pub fn dense(
    in_n: usize,
    out_n: usize,
    q: &Requant,
    cq: ChannelQuant,
    input: &[i8],
    weights: &[i8],
    output: &mut [i8],
) -> Result<u32, KernelError> {
    check_act(q.act_min, q.act_max)?;
    if in_n == 0 || out_n == 0 {
        return Err(KernelError::Shape);
    }
    let w_len = checked_mul(in_n, out_n)?;
    if input.len() != in_n || output.len() != out_n || weights.len() != w_len {
        return Err(KernelError::Length);
    }
    cq.check(out_n)?;
    for (o, (out, row)) in output
        .iter_mut()
        .zip(weights.chunks_exact(in_n))
        .enumerate()
    {
        let acc = cq.bias.get(o).wrapping_add(dot(input, row, q.input_offset));
        *out = requantize(acc, cq.multiplier.get(o), cq.shift.get(o), q);
    }
    Ok(u32::try_from(w_len).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::testutil::*;
    use super::super::LeI32s;
    use super::*;
    use crate::fixedpoint::{multiply_by_quantized_multiplier, quantize_multiplier};
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn dense_matches_naive_reference() {
        let mut rng = Rng::new(30);
        let (mut lo, mut hi) = (0, 0);
        for case in 0..300 {
            let in_n = rng.usize_in(1, 300);
            let out_n = rng.usize_in(1, 20);
            let zp_in = rng.range(-128, 127);
            let zp_out = rng.range(-128, 127);
            let (act_min, act_max) = rng.act_range(zp_out);
            let q = Requant {
                input_offset: -zp_in,
                output_offset: zp_out,
                act_min,
                act_max,
            };
            let gain = if case % 3 == 0 { 30.0 } else { 1.0 };
            let bias: Vec<i32> = (0..out_n).map(|_| rng.range(-50_000, 50_000)).collect();
            let (mult, shift): (Vec<i32>, Vec<i32>) = (0..out_n)
                .map(|_| {
                    quantize_multiplier(
                        gain * rng.log_uniform(0.25, 4.0) * 60.0 / ((in_n as f64).sqrt() * 7400.0),
                    )
                })
                .unzip();
            let input = rng.i8s(in_n);
            let weights = rng.i8s(in_n * out_n);
            let (b, m, sh) = (le_bytes(&bias), le_bytes(&mult), le_bytes(&shift));
            let cq = ChannelQuant {
                bias: LeI32s(&b),
                multiplier: LeI32s(&m),
                shift: LeI32s(&sh),
            };
            let mut out = vec![0i8; out_n];
            let macs = dense(in_n, out_n, &q, cq, &input, &weights, &mut out).unwrap();
            assert_eq!(macs as usize, in_n * out_n);
            for o in 0..out_n {
                let mut acc = bias[o] as i64;
                for i in 0..in_n {
                    acc += (input[i] as i64 - zp_in as i64) * weights[o * in_n + i] as i64;
                }
                let exact = (multiply_by_quantized_multiplier(acc as i32, mult[o], shift[o])
                    as i64
                    + zp_out as i64)
                    .clamp(act_min as i64, act_max as i64);
                assert_eq!(out[o] as i64, exact);
                let f = float_requant(acc, mult[o], shift[o], zp_out, act_min, act_max);
                assert!((out[o] as i32 - f).abs() <= 1);
                lo += usize::from(out[o] == -128);
                hi += usize::from(out[o] == 127);
            }
        }
        assert!(lo > 20 && hi > 20, "lo={lo} hi={hi}");
    }

    #[test]
    fn dense_errors() {
        let q = Requant {
            input_offset: 3,
            output_offset: -2,
            act_min: -128,
            act_max: 127,
        };
        let b = le_bytes(&[1, 2, 3]);
        let m = le_bytes(&[1 << 30; 3]);
        let sh = le_bytes(&[-3; 3]);
        let cq = ChannelQuant {
            bias: LeI32s(&b),
            multiplier: LeI32s(&m),
            shift: LeI32s(&sh),
        };
        let input = [1i8, 2, 3, 4];
        let weights = [1i8; 12];
        let mut out = [0i8; 3];
        assert_eq!(dense(4, 3, &q, cq, &input, &weights, &mut out), Ok(12));
        let e = Err(KernelError::Length);
        assert_eq!(dense(4, 3, &q, cq, &input[1..], &weights, &mut out), e);
        assert_eq!(dense(4, 3, &q, cq, &input, &weights[1..], &mut out), e);
        assert_eq!(dense(4, 3, &q, cq, &input, &weights, &mut out[1..]), e);
        assert_eq!(dense(3, 4, &q, cq, &input[1..], &weights, &mut [0i8; 4]), e);
        let cq2 = ChannelQuant {
            shift: LeI32s(&sh[..8]),
            ..cq
        };
        assert_eq!(dense(4, 3, &q, cq2, &input, &weights, &mut out), e);
        let cq2 = ChannelQuant {
            bias: LeI32s(&b[..11]),
            ..cq
        };
        assert_eq!(dense(4, 3, &q, cq2, &input, &weights, &mut out), e);
        let cq2 = ChannelQuant {
            multiplier: LeI32s(&[]),
            ..cq
        };
        assert_eq!(dense(4, 3, &q, cq2, &input, &weights, &mut out), e);
        let s = Err(KernelError::Shape);
        assert_eq!(dense(0, 3, &q, cq, &[], &[], &mut out), s);
        assert_eq!(dense(4, 0, &q, cq, &input, &[], &mut []), s);
        assert_eq!(dense(usize::MAX, 2, &q, cq, &input, &weights, &mut out), s);
        let bad = Requant {
            act_min: 10,
            act_max: 9,
            ..q
        };
        assert_eq!(dense(4, 3, &bad, cq, &input, &weights, &mut out), s);
    }

    #[test]
    fn dense_garbage_never_panics() {
        let mut rng = Rng::new(31);
        for _ in 0..2000 {
            let in_n = rng.usize_in(1, 40);
            let out_n = rng.usize_in(1, 8);
            let q = Requant {
                input_offset: rng.next_u32() as i32,
                output_offset: rng.next_u32() as i32,
                act_min: -128,
                act_max: 127,
            };
            let vals: Vec<i32> = (0..3 * out_n).map(|_| rng.next_u32() as i32).collect();
            let (b, m, sh) = (
                le_bytes(&vals[..out_n]),
                le_bytes(&vals[out_n..2 * out_n]),
                le_bytes(&vals[2 * out_n..]),
            );
            let cq = ChannelQuant {
                bias: LeI32s(&b),
                multiplier: LeI32s(&m),
                shift: LeI32s(&sh),
            };
            let mut out = vec![0i8; out_n];
            let r = dense(
                in_n,
                out_n,
                &q,
                cq,
                &rng.i8s(in_n),
                &rng.i8s(in_n * out_n),
                &mut out,
            );
            assert!(r.is_ok());
        }
    }
}
