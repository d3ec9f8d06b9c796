//! Fixed-point requantization math with TFLite / gemmlowp / CMSIS-NN semantics.
//!
//! Every function here is total: it returns a defined value for every input and never panics,
//! even with overflow checks enabled. Where TFLite has undefined behaviour (signed overflow,
//! shift amounts out of range) the behaviour chosen here is documented on the function; on the
//! inputs TFLite itself accepts the results are bit-exact with the TFLite reference kernels.
//!
//! Only [`quantize_multiplier`] uses floating point; it is a host-side helper (computing the
//! integer parameters from real scales) and is not needed by the kernels.

/// gemmlowp `SaturatingRoundingDoublingHighMul`: the high 32 bits of `2 * a * b`, rounded to
/// nearest with ties towards +infinity, i.e. `floor((a * b + 2^30) / 2^31)`.
///
/// The only overflowing case, `a == b == i32::MIN`, saturates to `i32::MAX`.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // |ab| <= 2^62 - 2^31 here, so `ab + nudge` cannot overflow and the quotient fits in i32.
    // Rust's `/` truncates towards zero exactly like C++'s, as gemmlowp requires.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// Rounding arithmetic right shift on an `i64`, rounding half away from zero.
/// `exponent` is clamped to `0..=63`.
#[inline]
fn rounding_divide_by_pot_i64(x: i64, exponent: i32) -> i64 {
    let exponent = exponent.clamp(0, 63) as u32;
    let mask: i64 = ((1u64 << exponent) - 1) as i64;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i64::from(x < 0);
    (x >> exponent) + i64::from(remainder > threshold)
}

/// gemmlowp `RoundingDivideByPOT`: `x / 2^exponent`, rounded to nearest, ties away from zero.
///
/// The meaningful range of `exponent` is `0..=31` (as in gemmlowp). Outside of it the
/// function stays exact rather than hitting undefined behaviour: a negative exponent is
/// treated as 0, and exponents above 31 divide exactly (so e.g. `i32::MIN >> 32` rounds to -1
/// and everything else to 0).
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    // |x / 2^e| <= 2^31 rounds back into i32 range: for e = 0 it is x itself, for e >= 1 the
    // magnitude is at most 2^30.
    rounding_divide_by_pot_i64(i64::from(x), exponent) as i32
}

/// `x * 2^shift` saturated to the i32 range (`shift` clamped to `0..=32`, which already
/// saturates every non-zero `x`).
#[inline]
pub(crate) fn saturating_left_shift(x: i32, shift: i32) -> i32 {
    let shift = shift.clamp(0, 32) as u32;
    // |x| <= 2^31 and shift <= 32: the product is at most 2^63 in magnitude, and the only
    // value of that magnitude (-2^63) is representable.
    let v = i64::from(x) * (1i64 << shift);
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// TFLite reference `MultiplyByQuantizedMultiplier` (double rounding):
/// `rounding_divide_by_pot(srdhm(x * 2^left_shift, multiplier), right_shift)` with
/// `left_shift = max(shift, 0)` and `right_shift = max(-shift, 0)`.
///
/// Approximates `x * multiplier * 2^(shift - 31)`. TFLite computes `x * (1 << left_shift)` in
/// 32 bits, which is undefined on overflow; here it is computed in 64 bits and saturated to
/// the i32 range (identical whenever TFLite's product does not overflow). Right shifts beyond
/// 31 are computed exactly (see [`rounding_divide_by_pot`]).
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left_shift = if shift > 0 { shift } else { 0 };
    let right_shift = if shift > 0 { 0 } else { shift.saturating_neg() };
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(saturating_left_shift(x, left_shift), multiplier),
        right_shift,
    )
}

/// TFLite `MultiplyByQuantizedMultiplierSmallerThanOneExp`:
/// `rounding_divide_by_pot(srdhm(x, multiplier), -shift)`, defined for `shift <= 0`.
///
/// For `shift <= 0` this is exactly [`multiply_by_quantized_multiplier`], which is what it
/// delegates to; a positive `shift` (never produced for multipliers < 1) therefore gets the
/// saturating left-shift semantics of that function instead of undefined behaviour.
#[inline]
pub fn multiply_by_quantized_multiplier_smaller_than_one_exp(
    x: i32,
    multiplier: i32,
    shift: i32,
) -> i32 {
    multiply_by_quantized_multiplier(x, multiplier, shift)
}

/// TFLite `QuantizeMultiplier`: returns `(multiplier, shift)` with `multiplier` in
/// `[2^30, 2^31)` (or 0) such that `real ≈ multiplier * 2^(shift - 31)`.
///
/// Like TFLite: `real = q * 2^shift` with `q` in `[0.5, 1)` (frexp), `multiplier =
/// round(q * 2^31)`; if the rounding reaches `2^31` it is halved and `shift` incremented; if
/// `shift < -31` the multiplier underflows to `(0, 0)`.
///
/// Inputs TFLite rejects are mapped to `(0, 0)` (a multiplier of zero): `real == 0`,
/// negative values, NaN and infinities. Implemented without `std` (no `frexp`/`round`):
/// normalization by exact multiplications/divisions by 2, rounding as `(x + 0.5)` truncated,
/// which equals round-half-away-from-zero for `x` in `[2^30, 2^31)`: adding 0.5 is exact
/// unless the sum reaches 2^31, and then the correctly rounded result is 2^31 as well.
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    // `is_finite` is false for NaN and the infinities.
    if !real.is_finite() || real <= 0.0 {
        return (0, 0);
    }
    let mut q = real;
    let mut shift: i32 = 0;
    while q >= 1.0 {
        q /= 2.0;
        shift += 1;
    }
    while q < 0.5 {
        // Anything below 2^-33 underflows even after the rounding fixup (which raises the
        // shift by at most one); stop early instead of walking down to subnormals.
        if shift < -33 {
            return (0, 0);
        }
        q *= 2.0;
        shift -= 1;
    }
    let mut q_fixed = (q * 2_147_483_648.0 + 0.5) as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    // q_fixed is in [2^30, 2^31) here.
    (q_fixed as i32, shift)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::kernels::testutil::Rng;

    /// Independent reference for srdhm: floor((a*b + 2^30) / 2^31), saturated.
    fn ref_srdhm(a: i32, b: i32) -> i32 {
        let ab = a as i128 * b as i128;
        let r = (ab + (1i128 << 30)).div_euclid(1i128 << 31);
        r.clamp(i32::MIN as i128, i32::MAX as i128) as i32
    }

    /// Independent reference: sign(x) * round_half_up(|x| / 2^e) == half away from zero.
    fn ref_rdbp(x: i64, e: u32) -> i64 {
        let mag = (x as i128).abs();
        let r = if e == 0 {
            mag
        } else {
            (mag + (1i128 << (e - 1))) >> e
        };
        (if x < 0 { -r } else { r }) as i64
    }

    /// Reference for the whole requantization, in i128 and f64-free.
    fn ref_mbqm(x: i32, m: i32, shift: i32) -> i32 {
        let (ls, rs) = if shift > 0 { (shift, 0) } else { (0, -shift) };
        let y = ((x as i128) << ls.min(40)).clamp(i32::MIN as i128, i32::MAX as i128) as i32;
        let t = ref_srdhm(y, m);
        ref_rdbp(t as i64, rs as u32) as i32
    }

    fn interesting_i32(rng: &mut Rng) -> i32 {
        const EDGES: [i32; 10] = [
            i32::MIN,
            i32::MIN + 1,
            i32::MAX,
            i32::MAX - 1,
            0,
            1,
            -1,
            1 << 30,
            -(1 << 30),
            (1 << 30) + 1,
        ];
        match rng.below(4) {
            0 => EDGES[rng.below(EDGES.len() as u32) as usize],
            1 => rng.next_u32() as i32 >> rng.below(31),
            _ => rng.next_u32() as i32,
        }
    }

    #[test]
    fn srdhm_edges() {
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MAX),
            -i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MAX, i32::MAX),
            i32::MAX - 1
        );
        assert_eq!(saturating_rounding_doubling_high_mul(0, i32::MIN), 0);
        // 1 * 2^30 * 2 / 2^32 = 0.5 -> 1 (ties up); -0.5 -> 0 (ties up as well).
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
    }

    #[test]
    fn srdhm_random_matches_reference() {
        let mut rng = Rng::new(1);
        for _ in 0..200_000 {
            let a = interesting_i32(&mut rng);
            let b = interesting_i32(&mut rng);
            assert_eq!(
                saturating_rounding_doubling_high_mul(a, b),
                ref_srdhm(a, b),
                "a={a} b={b}"
            );
        }
    }

    #[test]
    fn rdbp_edges() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(-3, 1), -2);
        assert_eq!(rounding_divide_by_pot(3, 1), 2);
        assert_eq!(rounding_divide_by_pot(-4, 2), -1);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(-5, 2), -1);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 0), i32::MIN);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 0), i32::MAX);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        assert_eq!(rounding_divide_by_pot(i32::MIN + 1, 31), -1);
        assert_eq!(rounding_divide_by_pot(-(1 << 30), 31), -1);
        assert_eq!(rounding_divide_by_pot(-(1 << 30) + 1, 31), 0);
        assert_eq!(rounding_divide_by_pot(1 << 30, 31), 1);
        assert_eq!(rounding_divide_by_pot((1 << 30) - 1, 31), 0);
        // Out-of-range exponents: defined, exact, no panic.
        assert_eq!(rounding_divide_by_pot(7, -3), 7);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 32), -1);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 32), 0);
        assert_eq!(rounding_divide_by_pot(i32::MIN, i32::MAX), 0);
        assert_eq!(rounding_divide_by_pot(i32::MAX, i32::MIN), i32::MAX);
    }

    #[test]
    fn rdbp_random_matches_reference() {
        let mut rng = Rng::new(2);
        for _ in 0..200_000 {
            let x = interesting_i32(&mut rng);
            let e = rng.below(32) as i32;
            assert_eq!(
                rounding_divide_by_pot(x, e) as i64,
                ref_rdbp(x as i64, e as u32),
                "x={x} e={e}"
            );
            // Also against f64 (exact for these magnitudes): ties away from zero.
            let f = (x as f64 / (2f64).powi(e)).round();
            assert_eq!(rounding_divide_by_pot(x, e) as f64, f, "x={x} e={e}");
        }
    }

    #[test]
    fn mbqm_random_matches_reference_including_extremes() {
        let mut rng = Rng::new(3);
        for _ in 0..200_000 {
            let x = interesting_i32(&mut rng);
            let m = interesting_i32(&mut rng);
            let shift = match rng.below(3) {
                0 => rng.below(80) as i32 - 40,
                1 => [i32::MIN, i32::MAX, -31, 31, 32, -32, 0][rng.below(7) as usize],
                _ => rng.below(20) as i32 - 15,
            };
            assert_eq!(
                multiply_by_quantized_multiplier(x, m, shift),
                ref_mbqm(x, m, shift.clamp(-63, 63)),
                "x={x} m={m} shift={shift}"
            );
            if shift <= 0 {
                assert_eq!(
                    multiply_by_quantized_multiplier_smaller_than_one_exp(x, m, shift),
                    multiply_by_quantized_multiplier(x, m, shift)
                );
            }
        }
    }

    #[test]
    fn mbqm_extremes() {
        // The left shift saturates *before* the multiply (TFLite would overflow there), so
        // `x * 1.0` expressed as (2^30, shift 1) only round-trips for |x| < 2^30.
        assert_eq!(
            multiply_by_quantized_multiplier(i32::MAX, 1 << 30, 1),
            1 << 30
        );
        assert_eq!(
            multiply_by_quantized_multiplier(i32::MIN, 1 << 30, 1),
            -(1 << 30)
        );
        assert_eq!(
            multiply_by_quantized_multiplier(i32::MIN, i32::MIN, 0),
            i32::MAX
        );
        assert_eq!(multiply_by_quantized_multiplier(i32::MIN, i32::MIN, -31), 1);
        assert_eq!(multiply_by_quantized_multiplier(i32::MIN, i32::MIN, -32), 0);
        assert_eq!(
            multiply_by_quantized_multiplier(i32::MIN, i32::MAX, 31),
            -i32::MAX
        );
        assert_eq!(
            multiply_by_quantized_multiplier(i32::MIN, i32::MAX, 0),
            -i32::MAX
        );
        assert_eq!(
            multiply_by_quantized_multiplier(1, i32::MAX, 31),
            i32::MAX - 1
        );
        assert_eq!(
            multiply_by_quantized_multiplier(-1, i32::MAX, 40),
            -i32::MAX
        );
        assert_eq!(
            multiply_by_quantized_multiplier(i32::MIN, 1 << 30, i32::MIN),
            0
        );
        assert_eq!(
            multiply_by_quantized_multiplier(i32::MAX, i32::MAX, i32::MAX),
            i32::MAX - 1
        );
        assert_eq!(multiply_by_quantized_multiplier(0, i32::MAX, i32::MAX), 0);
        // multiplier 2^30 with shift 1 is exactly 1.0; with shift 0 it is 0.5 and the
        // rounding is srdhm's (ties towards +infinity).
        for x in [-(1 << 30) + 1, -12345, -3, -1, 0, 1, 3, 999, (1 << 30) - 1] {
            assert_eq!(multiply_by_quantized_multiplier(x, 1 << 30, 1), x);
            let half = (x + 1).div_euclid(2);
            assert_eq!(multiply_by_quantized_multiplier(x, 1 << 30, 0), half, "{x}");
        }
    }

    #[test]
    fn quantize_multiplier_exact_cases() {
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        assert_eq!(quantize_multiplier(-0.0), (0, 0));
        assert_eq!(quantize_multiplier(-0.5), (0, 0));
        assert_eq!(quantize_multiplier(f64::NAN), (0, 0));
        assert_eq!(quantize_multiplier(f64::INFINITY), (0, 0));
        assert_eq!(quantize_multiplier(f64::NEG_INFINITY), (0, 0));
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        assert_eq!(quantize_multiplier(0.75), (3 << 29, 0));
        assert_eq!(quantize_multiplier(0.25), (1 << 30, -1));
        assert_eq!(quantize_multiplier(4.0), (1 << 30, 3));
        // Rounds up to 2^31: fixup halves and bumps the shift.
        assert_eq!(quantize_multiplier(1.0 - 1e-12), (1 << 30, 1));
        // Smallest non-underflowing values.
        assert_eq!(quantize_multiplier(0.5f64.powi(32)), (1 << 30, -31));
        assert_eq!(quantize_multiplier(0.5f64.powi(33)), (0, 0));
        assert_eq!(
            quantize_multiplier(0.5f64.powi(32) * (1.0 - 1e-12)),
            (1 << 30, -31)
        );
        assert_eq!(quantize_multiplier(0.5f64.powi(32) * 0.75), (0, 0));
        assert_eq!(quantize_multiplier(f64::MIN_POSITIVE / 1024.0), (0, 0));
        // f64::MAX = (1 - 2^-53) * 2^1024 rounds up to 2^31 and takes the fixup.
        assert_eq!(quantize_multiplier(f64::MAX), (1 << 30, 1025));
    }

    #[test]
    fn quantize_multiplier_random_relative_error() {
        let mut rng = Rng::new(4);
        for _ in 0..100_000 {
            // log-uniform in [2^-31, 2^20]
            let r = (2f64).powf(rng.unit_f64() * 51.0 - 31.0);
            let (m, s) = quantize_multiplier(r);
            assert!((1 << 30..=i32::MAX).contains(&m), "r={r} m={m}");
            let back = m as f64 * (2f64).powi(s - 31);
            assert!(
                ((back - r) / r).abs() <= 0.5f64.powi(31),
                "r={r} m={m} s={s}"
            );
        }
    }

    #[test]
    fn mbqm_with_quantized_multiplier_matches_f64_within_one() {
        let mut rng = Rng::new(5);
        for _ in 0..200_000 {
            // reals log-uniform in [1e-6, 4]
            let r = 1e-6 * (4e6f64).powf(rng.unit_f64());
            let acc = match rng.below(3) {
                0 => rng.below(2001) as i32 - 1000,
                1 => (rng.next_u32() as i32) >> rng.below(28).max(4),
                _ => (rng.next_u32() as i32) >> 4, // |acc| < 2^27: acc * 4 fits in i32
            };
            let (m, s) = quantize_multiplier(r);
            let got = multiply_by_quantized_multiplier(acc, m, s) as f64;
            let want = (acc as f64 * r).round();
            assert!(
                (got - want).abs() <= 1.0,
                "acc={acc} r={r} got={got} want={want}"
            );
        }
    }
}
