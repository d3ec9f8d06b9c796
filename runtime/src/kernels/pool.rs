//! Pooling kernels, int8 NHWC.

use super::{
    check_act, check_axis, checked_mul, clamp_to_i8, requantize, tap_range, KernelError, Requant,
};

/// Geometry of a pooling window (batch 1). Same validity rules as
/// [`Conv2dShape`](super::Conv2dShape): every window must overlap the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    pub in_h: usize,
    pub in_w: usize,
    /// Channels (same in and out).
    pub c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub k_h: usize,
    pub k_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

/// Max pooling (TFLite `reference_integer_ops::MaxPool`): input and output share the same
/// quantization; each output is the maximum over the window taps inside the image (padding
/// taps are ignored; every window has at least one), clamped to `[act_min, act_max]`.
///
/// `input`: `[in_h][in_w][c]`, `output`: `[out_h][out_w][c]`.
///
/// Errors: [`KernelError::Shape`] for inconsistent geometry or activation range,
/// [`KernelError::Length`] for wrong slice lengths.
pub fn max_pool(
    s: &PoolShape,
    act_min: i32,
    act_max: i32,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    check_act(act_min, act_max)?;
    check_axis(s.in_h, s.out_h, s.k_h, s.stride_h, s.pad_top)?;
    check_axis(s.in_w, s.out_w, s.k_w, s.stride_w, s.pad_left)?;
    if s.c == 0 {
        return Err(KernelError::Shape);
    }
    let in_len = checked_mul(checked_mul(s.in_h, s.in_w)?, s.c)?;
    let out_len = checked_mul(checked_mul(s.out_h, s.out_w)?, s.c)?;
    if input.len() != in_len || output.len() != out_len {
        return Err(KernelError::Length);
    }
    let c = s.c;
    for oy in 0..s.out_h {
        let (ky0, ky1, iy0) = tap_range(oy, s.stride_h, s.pad_top, s.in_h, s.k_h);
        for ox in 0..s.out_w {
            let (kx0, kx1, ix0) = tap_range(ox, s.stride_w, s.pad_left, s.in_w, s.k_w);
            let base = (oy * s.out_w + ox) * c;
            let out_px = &mut output[base..base + c];
            out_px.fill(i8::MIN);
            for iy in iy0..iy0 + (ky1 - ky0) {
                for ix in ix0..ix0 + (kx1 - kx0) {
                    let start = (iy * s.in_w + ix) * c;
                    for (o, &x) in out_px.iter_mut().zip(&input[start..start + c]) {
                        *o = (*o).max(x);
                    }
                }
            }
            for o in out_px.iter_mut() {
                *o = clamp_to_i8(i32::from(*o), act_min, act_max);
            }
        }
    }
    Ok(())
}

/// Global average pooling over `h * w` per channel with requantization (input and output
/// scales may differ):
/// `acc = Σ_{y,x} (input[y][x][ch] + input_offset)` and
/// `out = clamp(multiply_by_quantized_multiplier(acc, multiplier, shift) + output_offset,
/// act_min, act_max)`, where the host computes
/// `(multiplier, shift) = quantize_multiplier(s_in / (s_out * h * w))`.
///
/// `input`: `[h][w][c]`, `output`: `[c]`.
///
/// Errors: [`KernelError::Shape`] for a zero dimension or invalid activation range,
/// [`KernelError::Length`] for wrong slice lengths.
#[allow(clippy::too_many_arguments)]
pub fn global_avg_pool(
    h: usize,
    w: usize,
    c: usize,
    multiplier: i32,
    shift: i32,
    q: &Requant,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), KernelError> {
    check_act(q.act_min, q.act_max)?;
    if h == 0 || w == 0 || c == 0 {
        return Err(KernelError::Shape);
    }
    let in_len = checked_mul(checked_mul(h, w)?, c)?;
    if input.len() != in_len || output.len() != c {
        return Err(KernelError::Length);
    }
    for (ch, out) in output.iter_mut().enumerate() {
        let acc = input[ch..].iter().step_by(c).fold(0i32, |acc, &x| {
            acc.wrapping_add(i32::from(x).wrapping_add(q.input_offset))
        });
        *out = requantize(acc, multiplier, shift, q);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::testutil::*;
    use super::*;
    use crate::fixedpoint::{multiply_by_quantized_multiplier, quantize_multiplier};
    use std::vec;
    use std::vec::Vec;

    fn naive_max_pool(s: &PoolShape, lo: i32, hi: i32, input: &[i8]) -> Vec<i8> {
        let mut out = Vec::new();
        for oy in 0..s.out_h {
            for ox in 0..s.out_w {
                for ch in 0..s.c {
                    let mut m: Option<i8> = None;
                    for ky in 0..s.k_h {
                        for kx in 0..s.k_w {
                            let iy = (oy * s.stride_h + ky) as i64 - s.pad_top as i64;
                            let ix = (ox * s.stride_w + kx) as i64 - s.pad_left as i64;
                            if iy < 0 || ix < 0 || iy >= s.in_h as i64 || ix >= s.in_w as i64 {
                                continue;
                            }
                            let v = input[(iy as usize * s.in_w + ix as usize) * s.c + ch];
                            m = Some(m.map_or(v, |m| m.max(v)));
                        }
                    }
                    out.push((m.expect("window overlaps image") as i32).clamp(lo, hi) as i8);
                }
            }
        }
        out
    }

    fn pool_shape(
        in_h: usize,
        in_w: usize,
        c: usize,
        k: usize,
        stride: usize,
        same_padding: bool,
    ) -> PoolShape {
        let pad = if same_padding { same } else { valid };
        let (out_h, pad_top) = pad(in_h, k, stride);
        let (out_w, pad_left) = pad(in_w, k, stride);
        PoolShape {
            in_h,
            in_w,
            c,
            out_h,
            out_w,
            k_h: k,
            k_w: k,
            stride_h: stride,
            stride_w: stride,
            pad_top,
            pad_left,
        }
    }

    #[test]
    fn max_pool_matches_naive() {
        let mut rng = Rng::new(50);
        let mut shapes = vec![
            pool_shape(8, 8, 3, 2, 2, false),
            pool_shape(7, 7, 2, 2, 2, false),
            pool_shape(7, 7, 2, 2, 2, true),
            pool_shape(7, 9, 4, 3, 2, true),
            pool_shape(6, 6, 1, 3, 1, true),
            pool_shape(1, 1, 5, 3, 2, true),
        ];
        for _ in 0..300 {
            let k_h = rng.usize_in(1, 4);
            let k_w = rng.usize_in(1, 4);
            let in_h = rng.usize_in(1, 9);
            let in_w = rng.usize_in(1, 9);
            let stride_h = rng.usize_in(1, 3);
            let stride_w = rng.usize_in(1, 3);
            let pad_top = rng.usize_in(0, k_h - 1);
            let pad_left = rng.usize_in(0, k_w - 1);
            shapes.push(PoolShape {
                in_h,
                in_w,
                c: rng.usize_in(1, 5),
                out_h: rng.usize_in(1, (in_h + pad_top - 1) / stride_h + 1),
                out_w: rng.usize_in(1, (in_w + pad_left - 1) / stride_w + 1),
                k_h,
                k_w,
                stride_h,
                stride_w,
                pad_top,
                pad_left,
            });
        }
        for s in shapes {
            for _ in 0..5 {
                let zp = rng.range(-128, 127);
                let (lo, hi) = rng.act_range(zp);
                let input = rng.i8s(s.in_h * s.in_w * s.c);
                let mut out = vec![0i8; s.out_h * s.out_w * s.c];
                max_pool(&s, lo, hi, &input, &mut out).unwrap();
                assert_eq!(out, naive_max_pool(&s, lo, hi, &input), "{s:?}");
            }
        }
    }

    #[test]
    fn max_pool_all_padding_corner_and_extremes() {
        // All -128 input with SAME padding: padding must not inject zeros.
        let s = pool_shape(3, 3, 2, 3, 2, true);
        let input = [-128i8; 18];
        let mut out = [0i8; 8];
        max_pool(&s, -128, 127, &input, &mut out).unwrap();
        assert_eq!(out, [-128i8; 8]);
        let input = [127i8; 18];
        max_pool(&s, -128, 127, &input, &mut out).unwrap();
        assert_eq!(out, [127i8; 8]);
        max_pool(&s, -5, 6, &input, &mut out).unwrap();
        assert_eq!(out, [6i8; 8]);
    }

    #[test]
    fn max_pool_errors() {
        let s = pool_shape(4, 4, 2, 2, 2, false);
        let input = [0i8; 32];
        let mut out = [0i8; 8];
        assert_eq!(max_pool(&s, -128, 127, &input, &mut out), Ok(()));
        assert_eq!(
            max_pool(&s, -128, 127, &input[1..], &mut out),
            Err(KernelError::Length)
        );
        assert_eq!(
            max_pool(&s, -128, 127, &input, &mut out[1..]),
            Err(KernelError::Length)
        );
        assert_eq!(
            max_pool(&s, 1, 0, &input, &mut out),
            Err(KernelError::Shape)
        );
        assert_eq!(
            max_pool(&s, -129, 0, &input, &mut out),
            Err(KernelError::Shape)
        );
        let mutations: [fn(&mut PoolShape); 7] = [
            |s| s.c = 0,
            |s| s.stride_h = 0,
            |s| s.k_w = 0,
            |s| s.out_h = 3,
            |s| s.pad_left = 2,
            |s| s.in_h = 0,
            |s| s.stride_w = usize::MAX,
        ];
        for m in mutations {
            let mut bad = s;
            m(&mut bad);
            assert_eq!(
                max_pool(&bad, -128, 127, &input, &mut out),
                Err(KernelError::Shape),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn global_avg_pool_matches_reference() {
        let mut rng = Rng::new(51);
        for _ in 0..2000 {
            let h = rng.usize_in(1, 12);
            let w = rng.usize_in(1, 12);
            let c = rng.usize_in(1, 8);
            let (zp_in, zp_out) = (rng.range(-128, 127), rng.range(-128, 127));
            let (act_min, act_max) = rng.act_range(zp_out);
            let s_in = rng.log_uniform(1e-3, 1.0);
            let s_out = s_in * rng.log_uniform(0.05, 2.0);
            let (m, sh) = quantize_multiplier(s_in / (s_out * (h * w) as f64));
            let q = Requant {
                input_offset: -zp_in,
                output_offset: zp_out,
                act_min,
                act_max,
            };
            let input = rng.i8s(h * w * c);
            let mut out = vec![0i8; c];
            global_avg_pool(h, w, c, m, sh, &q, &input, &mut out).unwrap();
            for ch in 0..c {
                let mut acc = 0i64;
                for y in 0..h {
                    for x in 0..w {
                        acc += input[(y * w + x) * c + ch] as i64 - zp_in as i64;
                    }
                }
                let exact = (multiply_by_quantized_multiplier(acc as i32, m, sh) as i64
                    + zp_out as i64)
                    .clamp(act_min as i64, act_max as i64);
                assert_eq!(out[ch] as i64, exact);
                let mean = s_in * acc as f64 / (h * w) as f64;
                let want = ((mean / s_out).round() as i64 + zp_out as i64)
                    .clamp(act_min as i64, act_max as i64);
                assert!(
                    (out[ch] as i64 - want).abs() <= 1,
                    "got {} want {want}",
                    out[ch]
                );
            }
        }
    }

    #[test]
    fn global_avg_pool_identity_and_errors() {
        // Same scale, same zero point: the average of a constant plane is that constant.
        let (m, sh) = quantize_multiplier(1.0 / 9.0);
        let q = Requant {
            input_offset: 5,
            output_offset: -5,
            act_min: -128,
            act_max: 127,
        };
        let mut out = [0i8; 2];
        for v in [-128i8, -1, 0, 77, 127] {
            let input = [v; 18];
            global_avg_pool(3, 3, 2, m, sh, &q, &input, &mut out).unwrap();
            assert_eq!(out, [v; 2]);
        }
        let input = [0i8; 18];
        let e = Err(KernelError::Length);
        assert_eq!(
            global_avg_pool(3, 3, 2, m, sh, &q, &input[1..], &mut out),
            e
        );
        assert_eq!(
            global_avg_pool(3, 3, 2, m, sh, &q, &input, &mut out[1..]),
            e
        );
        assert_eq!(global_avg_pool(3, 3, 3, m, sh, &q, &input, &mut out), e);
        let s = Err(KernelError::Shape);
        assert_eq!(global_avg_pool(0, 3, 2, m, sh, &q, &[], &mut out), s);
        assert_eq!(global_avg_pool(3, 3, 0, m, sh, &q, &[], &mut []), s);
        assert_eq!(
            global_avg_pool(usize::MAX, 3, 2, m, sh, &q, &input, &mut out),
            s
        );
        let bad = Requant {
            act_min: 100,
            act_max: 99,
            ..q
        };
        assert_eq!(global_avg_pool(3, 3, 2, m, sh, &bad, &input, &mut out), s);
        // Corrupt parameters: no panic.
        let wild = Requant {
            input_offset: i32::MAX,
            output_offset: i32::MIN,
            ..q
        };
        assert_eq!(
            global_avg_pool(3, 3, 2, i32::MIN, i32::MAX, &wild, &[127; 18], &mut out),
            Ok(())
        );
        assert_eq!(
            global_avg_pool(3, 3, 2, i32::MAX, i32::MIN, &wild, &[127; 18], &mut out),
            Ok(())
        );
    }
}
