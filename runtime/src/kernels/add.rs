//! Elementwise int8 addition with rescaling (TFLite `reference_ops::Add` for int8,
//! CMSIS-NN `arm_elementwise_add_s8`).

use super::{check_act, clamp_to_i8, KernelError};
use crate::fixedpoint::{
    multiply_by_quantized_multiplier_smaller_than_one_exp, quantize_multiplier,
    saturating_left_shift,
};

/// Integer parameters of a quantized Add, as computed by TFLite's `Prepare` (see
/// [`add_params`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddParams {
    /// Headroom shift applied to both inputs (20 for int8).
    pub left_shift: i32,
    /// `-zero_point` of input 1.
    pub in1_offset: i32,
    pub in1_multiplier: i32,
    /// `<= 0` for valid parameters.
    pub in1_shift: i32,
    /// `-zero_point` of input 2.
    pub in2_offset: i32,
    pub in2_multiplier: i32,
    /// `<= 0` for valid parameters.
    pub in2_shift: i32,
    /// Output zero point.
    pub out_offset: i32,
    pub out_multiplier: i32,
    /// `<= 0` for valid parameters.
    pub out_shift: i32,
    /// Activation clamp, within `[-128, 127]`.
    pub act_min: i32,
    pub act_max: i32,
}

/// Host-side helper computing [`AddParams`] from real scales and zero points exactly like
/// TFLite's `Prepare`: `left_shift = 20`, `twice_max = 2 * max(s1, s2)`,
/// `real_in1 = s1 / twice_max`, `real_in2 = s2 / twice_max`,
/// `real_out = twice_max / (2^20 * s_out)`, each quantized with
/// [`quantize_multiplier`](crate::fixedpoint::quantize_multiplier).
///
/// Scales must be positive and finite (otherwise the multipliers degrade to 0, see
/// `quantize_multiplier`). `real_out` is below 1 for any sane scales
/// (`s_out > 2 * max(s1, s2) / 2^20`); if it is not, the positive shift is still handled by
/// [`add`].
#[allow(clippy::too_many_arguments)]
pub fn add_params(
    s1: f64,
    zp1: i32,
    s2: f64,
    zp2: i32,
    s_out: f64,
    zp_out: i32,
    act_min: i32,
    act_max: i32,
) -> AddParams {
    const LEFT_SHIFT: i32 = 20;
    let twice_max = 2.0 * if s1 > s2 { s1 } else { s2 };
    let (in1_multiplier, in1_shift) = quantize_multiplier(s1 / twice_max);
    let (in2_multiplier, in2_shift) = quantize_multiplier(s2 / twice_max);
    let (out_multiplier, out_shift) =
        quantize_multiplier(twice_max / (f64::from(1u32 << LEFT_SHIFT) * s_out));
    AddParams {
        left_shift: LEFT_SHIFT,
        in1_offset: zp1.wrapping_neg(),
        in1_multiplier,
        in1_shift,
        in2_offset: zp2.wrapping_neg(),
        in2_multiplier,
        in2_shift,
        out_offset: zp_out,
        out_multiplier,
        out_shift,
        act_min,
        act_max,
    }
}

/// Elementwise `output = a + b` in the quantized domain (same shapes, no broadcasting):
///
/// ```text
/// shifted_i = (x_i + in_i_offset) * 2^left_shift
/// scaled_i  = mbqm_smaller_than_one_exp(shifted_i, in_i_multiplier, in_i_shift)
/// out       = clamp(mbqm_smaller_than_one_exp(scaled_1 + scaled_2, out_multiplier, out_shift)
///                   + out_offset, act_min, act_max)
/// ```
///
/// Bit-exact with TFLite for valid parameters. Where TFLite would overflow (only possible
/// with corrupt parameters) the shifts and sums saturate instead; a negative `left_shift` is
/// treated as 0.
///
/// Errors: [`KernelError::Shape`] for an invalid activation range, [`KernelError::Length`]
/// unless `a`, `b` and `output` all have the same length.
pub fn add(p: &AddParams, a: &[i8], b: &[i8], output: &mut [i8]) -> Result<(), KernelError> {
    check_act(p.act_min, p.act_max)?;
    if a.len() != output.len() || b.len() != output.len() {
        return Err(KernelError::Length);
    }
    let scale = |x: i8, offset: i32, multiplier: i32, shift: i32| {
        let shifted = saturating_left_shift(i32::from(x).wrapping_add(offset), p.left_shift);
        multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, multiplier, shift)
    };
    for ((out, &x1), &x2) in output.iter_mut().zip(a).zip(b) {
        let s1 = scale(x1, p.in1_offset, p.in1_multiplier, p.in1_shift);
        let s2 = scale(x2, p.in2_offset, p.in2_multiplier, p.in2_shift);
        let raw = multiply_by_quantized_multiplier_smaller_than_one_exp(
            s1.saturating_add(s2),
            p.out_multiplier,
            p.out_shift,
        )
        .saturating_add(p.out_offset);
        *out = clamp_to_i8(raw, p.act_min, p.act_max);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::testutil::*;
    use super::*;
    use crate::fixedpoint::{rounding_divide_by_pot, saturating_rounding_doubling_high_mul};
    use std::vec;

    /// TFLite's formula written out with the gemmlowp primitives (valid params only).
    fn tflite_ref(p: &AddParams, x1: i8, x2: i8) -> i8 {
        let mbqm_lt1 = |x: i32, m: i32, s: i32| {
            assert!(s <= 0);
            rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, m), -s)
        };
        let a = (x1 as i32 + p.in1_offset) * (1 << p.left_shift);
        let b = (x2 as i32 + p.in2_offset) * (1 << p.left_shift);
        let sum =
            mbqm_lt1(a, p.in1_multiplier, p.in1_shift) + mbqm_lt1(b, p.in2_multiplier, p.in2_shift);
        let out = mbqm_lt1(sum, p.out_multiplier, p.out_shift) + p.out_offset;
        out.clamp(p.act_min, p.act_max) as i8
    }

    #[test]
    fn add_matches_f64_within_one_and_tflite_exactly() {
        let mut rng = Rng::new(40);
        let (mut lo, mut hi) = (0, 0);
        for _ in 0..2000 {
            let s1 = rng.log_uniform(1e-3, 0.5);
            let s2 = if rng.below(4) == 0 {
                s1
            } else {
                rng.log_uniform(1e-3, 0.5)
            };
            let s_out = rng.log_uniform(0.3, 3.0) * (s1 + s2) * 0.5;
            let (zp1, zp2, zp_out) = (
                rng.range(-128, 127),
                rng.range(-128, 127),
                rng.range(-128, 127),
            );
            let (act_min, act_max) = rng.act_range(zp_out);
            let p = add_params(s1, zp1, s2, zp2, s_out, zp_out, act_min, act_max);
            assert!(p.in1_shift <= 0 && p.in2_shift <= 0 && p.out_shift <= 0);
            let n = rng.usize_in(0, 64);
            let a = rng.i8s(n);
            let b = rng.i8s(n);
            let mut out = vec![0i8; n];
            add(&p, &a, &b, &mut out).unwrap();
            for i in 0..n {
                let real =
                    ((a[i] as i32 - zp1) as f64 * s1 + (b[i] as i32 - zp2) as f64 * s2) / s_out;
                let want =
                    (real.round() as i64 + zp_out as i64).clamp(act_min as i64, act_max as i64);
                assert!(
                    (out[i] as i64 - want).abs() <= 1,
                    "a={} b={} got={} want={want} {p:?}",
                    a[i],
                    b[i],
                    out[i]
                );
                assert_eq!(out[i], tflite_ref(&p, a[i], b[i]));
                lo += usize::from(out[i] == -128);
                hi += usize::from(out[i] == 127);
            }
        }
        assert!(lo > 100 && hi > 100, "lo={lo} hi={hi}");
    }

    #[test]
    fn add_equal_scales_is_exact_integer_add() {
        let p = add_params(0.05, 0, 0.05, 0, 0.05, 0, -128, 127);
        assert_eq!(p.left_shift, 20);
        assert_eq!((p.in1_multiplier, p.in1_shift), (1 << 30, 0));
        assert_eq!((p.out_multiplier, p.out_shift), (1 << 30, -18));
        let mut a = [0i8; 256];
        let mut b = [0i8; 256];
        for i in 0..256 {
            a[i] = i as u8 as i8;
            b[i] = (i as u8).wrapping_mul(37) as i8;
        }
        let mut out = [0i8; 256];
        add(&p, &a, &b, &mut out).unwrap();
        for i in 0..256 {
            assert_eq!(out[i] as i32, (a[i] as i32 + b[i] as i32).clamp(-128, 127));
        }
        // Extreme inputs and zero points: full-scale saturation.
        let mut out = [0i8; 2];
        let p = add_params(0.1, -128, 0.1, -128, 0.1, 0, -128, 127);
        add(&p, &[127, -128], &[127, -128], &mut out).unwrap();
        assert_eq!(out, [127, 0]);
        let p = add_params(0.1, 127, 0.1, 127, 0.1, 0, -128, 127);
        add(&p, &[-128, 127], &[-128, 127], &mut out).unwrap();
        assert_eq!(out, [-128, 0]);
        let p = add_params(0.1, -128, 0.1, 127, 0.1, 0, -128, 127);
        add(&p, &[127, -128], &[-128, 127], &mut out).unwrap();
        assert_eq!(out, [0, 0]);
    }

    #[test]
    fn add_errors_and_garbage() {
        let p = add_params(0.1, 1, 0.2, 2, 0.3, 3, -128, 127);
        let mut out = [0i8; 3];
        assert_eq!(add(&p, &[1, 2, 3], &[4, 5, 6], &mut out), Ok(()));
        assert_eq!(
            add(&p, &[1, 2], &[4, 5, 6], &mut out),
            Err(KernelError::Length)
        );
        assert_eq!(
            add(&p, &[1, 2, 3], &[4, 5], &mut out),
            Err(KernelError::Length)
        );
        assert_eq!(
            add(&p, &[1, 2], &[4, 5], &mut out),
            Err(KernelError::Length)
        );
        assert_eq!(add(&p, &[], &[], &mut []), Ok(()));
        let bad = AddParams {
            act_min: 0,
            act_max: -1,
            ..p
        };
        assert_eq!(
            add(&bad, &[1, 2, 3], &[4, 5, 6], &mut out),
            Err(KernelError::Shape)
        );
        let bad = AddParams { act_max: 128, ..p };
        assert_eq!(
            add(&bad, &[1, 2, 3], &[4, 5, 6], &mut out),
            Err(KernelError::Shape)
        );
        // Degenerate scales: no panic, multipliers become 0.
        let z = add_params(0.0, 0, f64::NAN, 0, -1.0, 0, -128, 127);
        assert_eq!(add(&z, &[1, 2, 3], &[4, 5, 6], &mut out), Ok(()));

        let mut rng = Rng::new(41);
        let any = |rng: &mut Rng| match rng.below(3) {
            0 => rng.next_u32() as i32,
            1 => [i32::MIN, i32::MAX, 0, -1, 31, 32, -32][rng.below(7) as usize],
            _ => rng.range(-40, 40),
        };
        for _ in 0..5000 {
            let p = AddParams {
                left_shift: any(&mut rng),
                in1_offset: any(&mut rng),
                in1_multiplier: any(&mut rng),
                in1_shift: any(&mut rng),
                in2_offset: any(&mut rng),
                in2_multiplier: any(&mut rng),
                in2_shift: any(&mut rng),
                out_offset: any(&mut rng),
                out_multiplier: any(&mut rng),
                out_shift: any(&mut rng),
                act_min: -128,
                act_max: 127,
            };
            let a = rng.i8s(8);
            let b = rng.i8s(8);
            assert_eq!(add(&p, &a, &b, &mut [0i8; 8]), Ok(()));
        }
    }
}
