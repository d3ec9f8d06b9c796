//! Choosing per-exit thresholds on held-out data: the fewest average MACs whose accuracy is
//! within a budget of the main exit's.

use sdedge_runtime::PolicyKind;
use serde::Serialize;

use crate::eval::{AllExits, ExitRecord};

/// The policy as the command line spells it (`--policy`).
pub fn policy_name(policy: PolicyKind) -> &'static str {
    match policy {
        PolicyKind::Entropy => "entropy",
        PolicyKind::MaxProb => "max-prob",
    }
}

/// Outcome of a set of thresholds on a labelled set.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub accuracy: f64,
    /// Accuracy of the main exit alone on the same inputs (the reference for the budget).
    pub main_accuracy: f64,
    pub avg_macs: f64,
    /// Share of inputs answered by each exit.
    pub exit_share: Vec<f64>,
    /// Accuracy of each exit on the inputs it answered (None when it answered none).
    pub exit_accuracy: Vec<Option<f64>>,
}

/// The policy's notion of "uncertain": lower passes. Entropy as is; max-prob negated.
fn uncertainty(policy: PolicyKind, r: &ExitRecord) -> f32 {
    match policy {
        PolicyKind::Entropy => r.entropy,
        PolicyKind::MaxProb => -r.max_prob,
    }
}

fn threshold_from_uncertainty(policy: PolicyKind, u: f32) -> f32 {
    match policy {
        PolicyKind::Entropy => u,
        PolicyKind::MaxProb => -u,
    }
}

/// Which exit answers given stored thresholds: the same test as the runtime's policy.
pub fn answering_exit(policy: PolicyKind, thresholds: &[f32], recs: &[ExitRecord]) -> usize {
    let last = recs.len() - 1;
    (0..last)
        .find(|&k| {
            uncertainty(policy, &recs[k]) <= threshold_from_uncertainty(policy, thresholds[k])
        })
        .unwrap_or(last)
}

pub fn evaluate(
    all: &AllExits,
    labels: &[u8],
    policy: PolicyKind,
    thresholds: &[f32],
) -> Evaluation {
    let n_exits = all.cumulative_macs.len();
    let mut answered = vec![0usize; n_exits];
    let mut right = vec![0usize; n_exits];
    let mut macs = 0f64;
    let mut main_right = 0usize;
    for (recs, &label) in all.records.iter().zip(labels) {
        main_right += usize::from(recs[n_exits - 1].class == label);
        let k = answering_exit(policy, thresholds, recs);
        answered[k] += 1;
        right[k] += usize::from(recs[k].class == label);
        macs += all.cumulative_macs[k] as f64;
    }
    let n = labels.len().max(1) as f64;
    Evaluation {
        accuracy: right.iter().sum::<usize>() as f64 / n,
        main_accuracy: main_right as f64 / n,
        avg_macs: macs / n,
        exit_share: answered.iter().map(|&a| a as f64 / n).collect(),
        exit_accuracy: answered
            .iter()
            .zip(&right)
            .map(|(&a, &r)| (a > 0).then(|| r as f64 / a as f64))
            .collect(),
    }
}

/// Thresholds (one per exit; the main exit's is unused) minimising average MACs with accuracy
/// at least the main exit's minus `max_drop` (a fraction, 0.005 = 0.5 pp). Coordinate descent
/// over each exit's observed uncertainty quantiles, starting from "never exit early".
pub fn tune(
    all: &AllExits,
    labels: &[u8],
    policy: PolicyKind,
    max_drop: f64,
) -> (Vec<f32>, Evaluation) {
    let n_exits = all.cumulative_macs.len();
    let never = match policy {
        PolicyKind::Entropy => -1.0,
        PolicyKind::MaxProb => 2.0,
    };
    let mut best = vec![never; n_exits];
    let main_only = evaluate(all, labels, policy, &best);
    let floor = main_only.accuracy - max_drop;
    let candidates: Vec<Vec<f32>> = (0..n_exits.saturating_sub(1))
        .map(|k| {
            let mut u: Vec<f32> = all
                .records
                .iter()
                .map(|r| uncertainty(policy, &r[k]))
                .collect();
            u.sort_by(f32::total_cmp);
            let mut c: Vec<f32> = (0..=200)
                .map(|q| u[(q * (u.len() - 1)) / 200])
                .map(|x| threshold_from_uncertainty(policy, x))
                .collect();
            c.dedup();
            c.push(never);
            c
        })
        .collect();
    let mut best_eval = main_only;
    for _pass in 0..4 {
        let mut changed = false;
        for k in 0..n_exits - 1 {
            for &c in &candidates[k] {
                let mut t = best.clone();
                t[k] = c;
                let e = evaluate(all, labels, policy, &t);
                let better = e.accuracy >= floor
                    && (e.avg_macs < best_eval.avg_macs
                        || (e.avg_macs == best_eval.avg_macs && e.accuracy > best_eval.accuracy));
                if better {
                    best = t;
                    best_eval = e;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    (best, best_eval)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(class: u8, entropy: f32) -> ExitRecord {
        ExitRecord {
            class,
            entropy,
            max_prob: 1.0 - entropy / 3.0,
        }
    }

    #[test]
    fn tuning_keeps_accuracy_and_exits_confident_correct_inputs_early() {
        // Exit 0 is right and sure on images 0..6, wrong and unsure on 6..10.
        let mut records = Vec::new();
        let mut labels = Vec::new();
        for i in 0..10u8 {
            let early = if i < 6 { rec(i % 3, 0.1) } else { rec(9, 2.0) };
            records.push(vec![early, rec(i % 3, 0.0)]);
            labels.push(i % 3);
        }
        let all = AllExits {
            records,
            cumulative_macs: vec![100, 300],
        };
        let (t, e) = tune(&all, &labels, PolicyKind::Entropy, 0.0);
        assert_eq!(e.accuracy, 1.0);
        assert_eq!(e.exit_share, vec![0.6, 0.4]);
        assert!((e.avg_macs - (0.6 * 100.0 + 0.4 * 300.0)).abs() < 1e-9);
        assert!(t[0] >= 0.1 && t[0] < 2.0);
        // Allowing a 40 pp drop lets every input leave early.
        let (_, e) = tune(&all, &labels, PolicyKind::Entropy, 0.4);
        assert_eq!(e.exit_share[0], 1.0);
        let (_, e) = tune(&all, &labels, PolicyKind::MaxProb, 0.0);
        assert_eq!(e.exit_share, vec![0.6, 0.4]);
    }
}
