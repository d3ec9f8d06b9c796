//! The exit policy: is an exit's answer confident enough to stop?
//!
//! Exit heads give int8 logits; only these few values are dequantized to f32. Softmax, entropy
//! and the top probability use micromath's exp/ln, which are plain f32 arithmetic: host and
//! device (IEEE single precision, no fused multiply-add) get the same bits.

use micromath::F32Ext;

use crate::format::PolicyKind;

/// What one exit says about one input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExitScore {
    /// Arg-max of the int8 logits (lowest index on ties).
    pub class: usize,
    /// Top softmax probability.
    pub max_prob: f32,
    /// Softmax entropy in nats (0 = certain, ln(classes) = uniform).
    pub entropy: f32,
}

/// Scores int8 logits quantized with `scale` and `zero_point`. `logits` must not be empty.
pub fn score(logits: &[i8], scale: f32, zero_point: i32) -> ExitScore {
    let mut class = 0;
    let mut top = i8::MIN;
    for (i, &q) in logits.iter().enumerate() {
        if q > top {
            top = q;
            class = i;
        }
    }
    // Softmax relative to the top logit: e_i = exp(x_i - x_max) <= 1, sum >= 1, so nothing
    // overflows. Entropy = ln(sum) - sum(e_i * d_i) / sum with d_i = x_i - x_max, one ln only.
    let mut sum = 0.0f32;
    let mut weighted = 0.0f32;
    for &q in logits {
        let d = (i32::from(q) - i32::from(top)) as f32 * scale;
        // Called through the trait on purpose: an inherent f32::exp/ln (std on the host)
        // would differ from the device's micromath in the last bits.
        let e = F32Ext::exp(d);
        sum += e;
        weighted += e * d;
    }
    let _ = zero_point; // differences of logits do not depend on the zero point
    let entropy = (F32Ext::ln(sum) - weighted / sum).max(0.0);
    ExitScore {
        class,
        max_prob: 1.0 / sum,
        entropy,
    }
}

/// Does `score` pass `threshold` under `policy`?
pub fn is_confident(policy: PolicyKind, threshold: f32, score: &ExitScore) -> bool {
    match policy {
        PolicyKind::Entropy => score.entropy <= threshold,
        PolicyKind::MaxProb => score.max_prob >= threshold,
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn float_reference(logits: &[i8], scale: f32) -> (f64, f64) {
        let x: std::vec::Vec<f64> = logits.iter().map(|&q| q as f64 * scale as f64).collect();
        let m = x.iter().cloned().fold(f64::MIN, f64::max);
        let e: std::vec::Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let h = -e
            .iter()
            .map(|v| v / s)
            .map(|p| if p > 0.0 { p * p.ln() } else { 0.0 })
            .sum::<f64>();
        (1.0 / s, h)
    }

    #[test]
    fn matches_f64_softmax() {
        let cases: [[i8; 10]; 4] = [
            [10, -20, 30, 127, -128, 0, 5, 5, 60, 100],
            [0; 10],
            [-128, -128, -128, -128, -128, -128, -128, -128, -128, 127],
            [3, 1, 4, 1, 5, 9, 2, 6, 5, 3],
        ];
        for logits in cases {
            for scale in [0.01f32, 0.1, 0.25] {
                let s = score(&logits, scale, -3);
                let (p, h) = float_reference(&logits, scale);
                assert!(
                    (s.max_prob as f64 - p).abs() < 2e-3,
                    "{logits:?} {scale}: {} vs {p}",
                    s.max_prob
                );
                assert!(
                    (s.entropy as f64 - h).abs() < 5e-3,
                    "{logits:?} {scale}: {} vs {h}",
                    s.entropy
                );
            }
        }
    }

    #[test]
    fn uniform_logits_have_maximal_entropy_and_class_zero() {
        let s = score(&[7; 10], 0.1, 0);
        assert_eq!(s.class, 0);
        assert!((s.entropy - 10f32.ln()).abs() < 5e-3);
        assert!((s.max_prob - 0.1).abs() < 1e-3);
        assert!(!is_confident(PolicyKind::Entropy, 1.0, &s));
        assert!(is_confident(PolicyKind::Entropy, 2.5, &s));
        assert!(!is_confident(PolicyKind::MaxProb, 0.5, &s));
    }

    #[test]
    fn argmax_picks_first_of_ties() {
        assert_eq!(score(&[1, 9, 9, -4], 0.5, 0).class, 1);
    }
}
