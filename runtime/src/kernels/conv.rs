//! 2-D convolution, int8 NHWC (TFLite `reference_integer_ops::ConvPerChannel`).

use super::{
    check_act, check_axis, checked_mul, requantize, tap_range, ChannelQuant, KernelError, Requant,
};

/// Geometry of a 2-D convolution (batch 1, no dilation).
///
/// The output size and leading padding are explicit; the trailing padding is implied. Every
/// output window must overlap the image (`pad_top < k_h`, `(out_h - 1) * stride_h < in_h +
/// pad_top`, same for the width), which holds for TFLite SAME and VALID padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dShape {
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub out_c: usize,
    pub k_h: usize,
    pub k_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

/// Sum of `(x + input_offset) * w` over two equally long slices, wrapping on overflow
/// (impossible for valid models, see the module docs).
#[inline]
pub(crate) fn dot(x: &[i8], w: &[i8], input_offset: i32) -> i32 {
    x.iter().zip(w).fold(0i32, |acc, (&a, &b)| {
        acc.wrapping_add(
            i32::from(a)
                .wrapping_add(input_offset)
                .wrapping_mul(i32::from(b)),
        )
    })
}

/// 2-D convolution.
///
/// * `input`: `[in_h][in_w][in_c]`, `output`: `[out_h][out_w][out_c]`.
/// * `weights`: `[out_c][k_h][k_w][in_c]` int8, symmetric (zero point 0), per-output-channel
///   scale.
/// * `acc = bias[oc] + Σ (x + input_offset) * w` over the taps inside the image; taps in the
///   padding contribute 0, i.e. padding is the input zero point.
/// * `out = clamp(multiply_by_quantized_multiplier(acc, mult[oc], shift[oc]) + output_offset,
///   act_min, act_max)`.
///
/// Returns the number of multiply-accumulates of the dense formulation,
/// `out_h * out_w * out_c * k_h * k_w * in_c` (padding taps included; saturated at
/// `u32::MAX`).
///
/// Errors: [`KernelError::Shape`] for inconsistent geometry or activation range,
/// [`KernelError::Length`] if `input`, `weights`, `output` or a per-channel array does not
/// have the length implied by `s`.
pub fn conv2d(
    s: &Conv2dShape,
    q: &Requant,
    cq: ChannelQuant,
    input: &[i8],
    weights: &[i8],
    output: &mut [i8],
) -> Result<u32, KernelError> {
    check_act(q.act_min, q.act_max)?;
    check_axis(s.in_h, s.out_h, s.k_h, s.stride_h, s.pad_top)?;
    check_axis(s.in_w, s.out_w, s.k_w, s.stride_w, s.pad_left)?;
    if s.in_c == 0 || s.out_c == 0 {
        return Err(KernelError::Shape);
    }
    let in_len = checked_mul(checked_mul(s.in_h, s.in_w)?, s.in_c)?;
    let out_len = checked_mul(checked_mul(s.out_h, s.out_w)?, s.out_c)?;
    let row_len = checked_mul(s.k_w, s.in_c)?; // one kernel row of one output channel
    let filter_len = checked_mul(s.k_h, row_len)?; // one output channel
    let w_len = checked_mul(s.out_c, filter_len)?;
    if input.len() != in_len || output.len() != out_len || weights.len() != w_len {
        return Err(KernelError::Length);
    }
    cq.check(s.out_c)?;

    for oy in 0..s.out_h {
        let (ky0, ky1, iy0) = tap_range(oy, s.stride_h, s.pad_top, s.in_h, s.k_h);
        for ox in 0..s.out_w {
            let (kx0, kx1, ix0) = tap_range(ox, s.stride_w, s.pad_left, s.in_w, s.k_w);
            // The taps of one kernel row that fall inside the image are contiguous both in the
            // input (NHWC) and in the weights ([k_w][in_c] innermost).
            let span = (kx1 - kx0) * s.in_c;
            let out_base = (oy * s.out_w + ox) * s.out_c;
            for oc in 0..s.out_c {
                let mut acc = cq.bias.get(oc);
                let filter = oc * filter_len;
                for ky in ky0..ky1 {
                    let iy = iy0 + (ky - ky0);
                    let x_start = (iy * s.in_w + ix0) * s.in_c;
                    let w_start = filter + ky * row_len + kx0 * s.in_c;
                    acc = acc.wrapping_add(dot(
                        &input[x_start..x_start + span],
                        &weights[w_start..w_start + span],
                        q.input_offset,
                    ));
                }
                output[out_base + oc] = requantize(acc, cq.multiplier.get(oc), cq.shift.get(oc), q);
            }
        }
    }
    let macs = (out_len as u64).saturating_mul(filter_len as u64);
    Ok(u32::try_from(macs).unwrap_or(u32::MAX))
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

    struct Case {
        s: Conv2dShape,
        q: Requant,
        bias: Vec<i32>,
        mult: Vec<i32>,
        shift: Vec<i32>,
        input: Vec<i8>,
        weights: Vec<i8>,
    }

    impl Case {
        fn cq(&self) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
            (
                le_bytes(&self.bias),
                le_bytes(&self.mult),
                le_bytes(&self.shift),
            )
        }

        fn run(&self) -> Result<(u32, Vec<i8>), KernelError> {
            let (b, m, sh) = self.cq();
            let cq = ChannelQuant {
                bias: LeI32s(&b),
                multiplier: LeI32s(&m),
                shift: LeI32s(&sh),
            };
            let mut out = vec![0i8; self.s.out_h * self.s.out_w * self.s.out_c];
            let macs = conv2d(&self.s, &self.q, cq, &self.input, &self.weights, &mut out)?;
            Ok((macs, out))
        }

        /// Naive exact accumulator: the full 6-deep loop with explicit bounds checks and
        /// out-of-image taps reading the input zero point.
        fn naive_acc(&self, oy: usize, ox: usize, oc: usize) -> i64 {
            let s = &self.s;
            let zp_in = -(self.q.input_offset as i64);
            let mut acc = self.bias[oc] as i64;
            for ky in 0..s.k_h {
                for kx in 0..s.k_w {
                    for ic in 0..s.in_c {
                        let iy = (oy * s.stride_h + ky) as i64 - s.pad_top as i64;
                        let ix = (ox * s.stride_w + kx) as i64 - s.pad_left as i64;
                        let inside = iy >= 0 && iy < s.in_h as i64 && ix >= 0 && ix < s.in_w as i64;
                        let x = if inside {
                            self.input[((iy as usize * s.in_w + ix as usize) * s.in_c) + ic] as i64
                        } else {
                            zp_in
                        };
                        let w = self.weights[((oc * s.k_h + ky) * s.k_w + kx) * s.in_c + ic];
                        acc += (x + self.q.input_offset as i64) * w as i64;
                    }
                }
            }
            acc
        }

        /// Checks the kernel output exactly against the fixed-point requantization of the
        /// naive accumulator, and within 1 against float requantization. Returns how many
        /// outputs hit -128 and 127.
        fn check(&self) -> (usize, usize) {
            let s = &self.s;
            let (macs, out) = self.run().expect("valid case");
            assert_eq!(
                macs as usize,
                s.out_h * s.out_w * s.out_c * s.k_h * s.k_w * s.in_c
            );
            let (mut lo, mut hi) = (0, 0);
            for oy in 0..s.out_h {
                for ox in 0..s.out_w {
                    for oc in 0..s.out_c {
                        let acc = self.naive_acc(oy, ox, oc);
                        let acc32 = i32::try_from(acc).expect("test accumulators fit i32");
                        let exact =
                            (multiply_by_quantized_multiplier(acc32, self.mult[oc], self.shift[oc])
                                as i64
                                + self.q.output_offset as i64)
                                .clamp(self.q.act_min as i64, self.q.act_max as i64);
                        let got = out[(oy * s.out_w + ox) * s.out_c + oc];
                        assert_eq!(got as i64, exact, "{:?} at ({oy},{ox},{oc})", s);
                        let f = float_requant(
                            acc,
                            self.mult[oc],
                            self.shift[oc],
                            self.q.output_offset,
                            self.q.act_min,
                            self.q.act_max,
                        );
                        assert!((got as i32 - f).abs() <= 1, "float ref {f} vs {got}");
                        lo += usize::from(got == -128);
                        hi += usize::from(got == 127);
                    }
                }
            }
            (lo, hi)
        }
    }

    /// Random data for a geometry; `gain` scales the requantization multipliers (1.0 keeps
    /// typical outputs inside the int8 range, larger values saturate).
    fn random_case(rng: &mut Rng, s: Conv2dShape, gain: f64) -> Case {
        let zp_in = rng.range(-128, 127);
        let zp_out = rng.range(-128, 127);
        let (act_min, act_max) = rng.act_range(zp_out);
        let taps = (s.k_h * s.k_w * s.in_c) as f64;
        let mut mult = Vec::new();
        let mut shift = Vec::new();
        for _ in 0..s.out_c {
            // typical |acc| ~ sqrt(taps) * 100 * 74
            let real = gain * rng.log_uniform(0.25, 4.0) * 60.0 / (taps.sqrt() * 7400.0);
            let (m, sh) = quantize_multiplier(real);
            mult.push(m);
            shift.push(sh);
        }
        Case {
            s,
            q: Requant {
                input_offset: -zp_in,
                output_offset: zp_out,
                act_min,
                act_max,
            },
            bias: (0..s.out_c).map(|_| rng.range(-20_000, 20_000)).collect(),
            mult,
            shift,
            input: rng.i8s(s.in_h * s.in_w * s.in_c),
            weights: rng.i8s(s.out_c * s.k_h * s.k_w * s.in_c),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn shape(
        in_h: usize,
        in_w: usize,
        in_c: usize,
        out_c: usize,
        k_h: usize,
        k_w: usize,
        stride_h: usize,
        stride_w: usize,
        same_padding: bool,
    ) -> Conv2dShape {
        let pad = if same_padding { same } else { valid };
        let (out_h, pad_top) = pad(in_h, k_h, stride_h);
        let (out_w, pad_left) = pad(in_w, k_w, stride_w);
        Conv2dShape {
            in_h,
            in_w,
            in_c,
            out_h,
            out_w,
            out_c,
            k_h,
            k_w,
            stride_h,
            stride_w,
            pad_top,
            pad_left,
        }
    }

    #[test]
    fn conv_3x3_stride1_same() {
        let mut rng = Rng::new(10);
        for seed in 0..20 {
            let s = shape(5, 6, 3, 4, 3, 3, 1, 1, true);
            assert_eq!((s.out_h, s.out_w, s.pad_top, s.pad_left), (5, 6, 1, 1));
            random_case(&mut rng, s, 1.0 + seed as f64 * 0.2).check();
        }
    }

    #[test]
    fn conv_3x3_stride2_pad0_and_pad1() {
        let mut rng = Rng::new(11);
        // 8x8 SAME stride 2: pad_total 1 -> pad_top/left 0 (bottom/right 1).
        let s = shape(8, 8, 2, 5, 3, 3, 2, 2, true);
        assert_eq!((s.out_h, s.out_w, s.pad_top, s.pad_left), (4, 4, 0, 0));
        for _ in 0..20 {
            random_case(&mut rng, s, 1.0).check();
        }
        // 9x10 SAME stride 2: pad_top 1 (total 2), pad_left 0 (total 1).
        let s = shape(9, 10, 3, 2, 3, 3, 2, 2, true);
        assert_eq!((s.out_h, s.out_w, s.pad_top, s.pad_left), (5, 5, 1, 0));
        for _ in 0..20 {
            random_case(&mut rng, s, 1.0).check();
        }
    }

    #[test]
    fn conv_7x7_to_4x4_same_odd_sizes() {
        let mut rng = Rng::new(12);
        let s = shape(7, 7, 3, 3, 3, 3, 2, 2, true);
        assert_eq!((s.out_h, s.out_w, s.pad_top, s.pad_left), (4, 4, 1, 1));
        for _ in 0..20 {
            random_case(&mut rng, s, 1.0).check();
        }
        // 5x5 kernel, stride 2 on 7x7: pad_total 4 -> 2 on each side.
        let s = shape(7, 7, 2, 3, 5, 5, 2, 2, true);
        assert_eq!((s.out_h, s.out_w, s.pad_top, s.pad_left), (4, 4, 2, 2));
        for _ in 0..20 {
            random_case(&mut rng, s, 1.0).check();
        }
    }

    #[test]
    fn conv_1x1_stride2() {
        let mut rng = Rng::new(13);
        for (in_h, in_w) in [(7, 7), (8, 8), (1, 1), (3, 6)] {
            let s = shape(in_h, in_w, 4, 6, 1, 1, 2, 2, true);
            assert_eq!((s.pad_top, s.pad_left), (0, 0));
            for _ in 0..10 {
                random_case(&mut rng, s, 1.0).check();
            }
        }
    }

    #[test]
    fn conv_single_input_channel() {
        let mut rng = Rng::new(14);
        for s in [
            shape(6, 6, 1, 4, 3, 3, 1, 1, true),
            shape(7, 5, 1, 2, 3, 3, 2, 2, true),
            shape(6, 6, 1, 3, 3, 3, 1, 1, false),
            shape(1, 1, 1, 1, 1, 1, 1, 1, true),
            shape(1, 1, 1, 2, 3, 3, 1, 1, true), // 1x1 image, 3x3 kernel: one tap inside
        ] {
            for _ in 0..10 {
                random_case(&mut rng, s, 1.0).check();
            }
        }
    }

    #[test]
    fn conv_random_geometries() {
        let mut rng = Rng::new(15);
        for _ in 0..400 {
            let k_h = rng.usize_in(1, 5);
            let k_w = rng.usize_in(1, 5);
            let same_padding = rng.below(2) == 0;
            let min_h = if same_padding { 1 } else { k_h };
            let min_w = if same_padding { 1 } else { k_w };
            let s = shape(
                rng.usize_in(min_h, 9),
                rng.usize_in(min_w, 9),
                rng.usize_in(1, 5),
                rng.usize_in(1, 5),
                k_h,
                k_w,
                rng.usize_in(1, 3),
                rng.usize_in(1, 3),
                same_padding,
            );
            let gain = rng.log_uniform(0.1, 20.0);
            random_case(&mut rng, s, gain).check();
        }
    }

    #[test]
    fn conv_arbitrary_leading_padding() {
        // Non-SAME padding choices (e.g. all padding on the leading side) are valid as long as
        // every window overlaps the image.
        let mut rng = Rng::new(16);
        for _ in 0..200 {
            let k_h = rng.usize_in(1, 4);
            let k_w = rng.usize_in(1, 4);
            let in_h = rng.usize_in(1, 7);
            let in_w = rng.usize_in(1, 7);
            let stride_h = rng.usize_in(1, 3);
            let stride_w = rng.usize_in(1, 3);
            let pad_top = rng.usize_in(0, k_h - 1);
            let pad_left = rng.usize_in(0, k_w - 1);
            let out_h = rng.usize_in(1, (in_h + pad_top - 1) / stride_h + 1);
            let out_w = rng.usize_in(1, (in_w + pad_left - 1) / stride_w + 1);
            let s = Conv2dShape {
                in_h,
                in_w,
                in_c: rng.usize_in(1, 3),
                out_h,
                out_w,
                out_c: rng.usize_in(1, 3),
                k_h,
                k_w,
                stride_h,
                stride_w,
                pad_top,
                pad_left,
            };
            random_case(&mut rng, s, 1.0).check();
        }
    }

    #[test]
    fn conv_saturates_at_both_ends() {
        let mut rng = Rng::new(17);
        let s = shape(6, 6, 4, 8, 3, 3, 1, 1, true);
        let (mut lo, mut hi) = (0, 0);
        for _ in 0..10 {
            let mut c = random_case(&mut rng, s, 30.0);
            c.q.act_min = -128;
            c.q.act_max = 127;
            let (l, h) = c.check();
            lo += l;
            hi += h;
        }
        assert!(lo > 100 && hi > 100, "lo={lo} hi={hi}");
    }

    #[test]
    fn conv_extreme_values() {
        // All-extreme inputs/weights, extreme zero points, bias and multipliers: exact
        // against the reference (accumulators still fit i32).
        let mut rng = Rng::new(18);
        let s = shape(5, 5, 3, 4, 3, 3, 2, 2, true);
        for (x, w, zp_in) in [
            (-128i8, -128i8, 127),
            (127, -128, -128),
            (-128, 127, 127),
            (127, 127, -128),
        ] {
            let mut c = random_case(&mut rng, s, 1.0);
            c.input.iter_mut().for_each(|v| *v = x);
            c.weights.iter_mut().for_each(|v| *v = w);
            c.q.input_offset = -zp_in;
            c.bias = vec![i32::MAX / 2, i32::MIN / 2, 0, 1];
            c.mult = vec![i32::MAX, 1 << 30, i32::MAX, 0];
            c.shift = vec![-31, 0, 10, 5];
            c.check();
        }
    }

    #[test]
    fn conv_length_errors() {
        let mut rng = Rng::new(19);
        let c = random_case(&mut rng, shape(5, 5, 2, 3, 3, 3, 1, 1, true), 1.0);
        let (b, m, sh) = c.cq();
        let cq = ChannelQuant {
            bias: LeI32s(&b),
            multiplier: LeI32s(&m),
            shift: LeI32s(&sh),
        };
        let mut out = vec![0i8; 5 * 5 * 3];
        let q = &c.q;
        let s = &c.s;
        assert!(conv2d(s, q, cq, &c.input, &c.weights, &mut out).is_ok());
        let e = Err(KernelError::Length);
        assert_eq!(conv2d(s, q, cq, &c.input[1..], &c.weights, &mut out), e);
        assert_eq!(conv2d(s, q, cq, &c.input, &c.weights[1..], &mut out), e);
        assert_eq!(conv2d(s, q, cq, &c.input, &c.weights, &mut out[1..]), e);
        let mut big = vec![0i8; out.len() + 1];
        assert_eq!(conv2d(s, q, cq, &c.input, &c.weights, &mut big), e);
        let short = &b[..b.len() - 4];
        let odd = &b[..b.len() - 1];
        for bad in [short, odd] {
            let cq2 = ChannelQuant {
                bias: LeI32s(bad),
                ..cq
            };
            assert_eq!(conv2d(s, q, cq2, &c.input, &c.weights, &mut out), e);
            let cq2 = ChannelQuant {
                multiplier: LeI32s(bad),
                ..cq
            };
            assert_eq!(conv2d(s, q, cq2, &c.input, &c.weights, &mut out), e);
            let cq2 = ChannelQuant {
                shift: LeI32s(bad),
                ..cq
            };
            assert_eq!(conv2d(s, q, cq2, &c.input, &c.weights, &mut out), e);
        }
    }

    #[test]
    fn conv_shape_errors() {
        let mut rng = Rng::new(20);
        let c = random_case(&mut rng, shape(5, 5, 2, 3, 3, 3, 1, 1, true), 1.0);
        let (b, m, sh) = c.cq();
        let cq = ChannelQuant {
            bias: LeI32s(&b),
            multiplier: LeI32s(&m),
            shift: LeI32s(&sh),
        };
        let mut out = vec![0i8; 5 * 5 * 3];
        let base = c.s;
        let mutations: [fn(&mut Conv2dShape); 11] = [
            |s| s.stride_h = 0,
            |s| s.stride_w = 0,
            |s| s.k_h = 0,
            |s| s.in_c = 0,
            |s| s.out_c = 0,
            |s| s.out_h = 0,
            |s| s.out_h = 7, // last window would start below the image
            |s| s.out_w = 7,
            |s| s.pad_top = 3,
            |s| s.pad_left = 5,
            |s| s.in_w = usize::MAX,
        ];
        for mutate in mutations {
            let mut s = base;
            mutate(&mut s);
            assert_eq!(
                conv2d(&s, &c.q, cq, &c.input, &c.weights, &mut out),
                Err(KernelError::Shape),
                "{s:?}"
            );
        }
        for (lo, hi) in [(1, 0), (-129, 0), (0, 128)] {
            let q = Requant {
                act_min: lo,
                act_max: hi,
                ..c.q
            };
            assert_eq!(
                conv2d(&base, &q, cq, &c.input, &c.weights, &mut out),
                Err(KernelError::Shape)
            );
        }
    }

    #[test]
    fn conv_garbage_never_panics() {
        let mut rng = Rng::new(21);
        for _ in 0..3000 {
            let dim = |rng: &mut Rng| rng.usize_in(0, 6);
            let s = Conv2dShape {
                in_h: dim(&mut rng),
                in_w: dim(&mut rng),
                in_c: dim(&mut rng),
                out_h: dim(&mut rng),
                out_w: dim(&mut rng),
                out_c: dim(&mut rng),
                k_h: dim(&mut rng),
                k_w: dim(&mut rng),
                stride_h: dim(&mut rng),
                stride_w: dim(&mut rng),
                pad_top: dim(&mut rng),
                pad_left: dim(&mut rng),
            };
            let extreme = |rng: &mut Rng| match rng.below(3) {
                0 => rng.next_u32() as i32,
                1 => [i32::MIN, i32::MAX, 0, -1][rng.below(4) as usize],
                _ => rng.range(-200, 200),
            };
            let q = Requant {
                input_offset: extreme(&mut rng),
                output_offset: extreme(&mut rng),
                act_min: rng.range(-130, 130),
                act_max: rng.range(-130, 130),
            };
            let fuzz = |rng: &mut Rng, n: usize| {
                if rng.below(4) == 0 {
                    rng.usize_in(0, n + 2)
                } else {
                    n
                }
            };
            let in_n = fuzz(&mut rng, s.in_h * s.in_w * s.in_c);
            let w_n = fuzz(&mut rng, s.out_c * s.k_h * s.k_w * s.in_c);
            let out_n = fuzz(&mut rng, s.out_h * s.out_w * s.out_c);
            let ch = fuzz(&mut rng, s.out_c);
            let vals: Vec<i32> = (0..3 * ch).map(|_| extreme(&mut rng)).collect();
            let (b, m, sh) = (
                le_bytes(&vals[..ch]),
                le_bytes(&vals[ch..2 * ch]),
                le_bytes(&vals[2 * ch..]),
            );
            let cq = ChannelQuant {
                bias: LeI32s(&b),
                multiplier: LeI32s(&m),
                shift: LeI32s(&sh),
            };
            let input = rng.i8s(in_n);
            let weights = rng.i8s(w_n);
            let mut out = vec![0i8; out_n];
            let _ = conv2d(&s, &q, cq, &input, &weights, &mut out);
        }
    }
}
