//! `sdedge simulate` and `sdedge tune`: the runtime crate on real data, next to tract's float
//! results for the same images.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use sdedge_runtime::{Model, Options, PolicyKind};
use serde::Serialize;

use crate::data::{self, Split};
use crate::eval;
use crate::tune::{self, Evaluation};
use crate::{bundle, float, pipeline};

pub struct SimulateOptions<'a> {
    pub onnx: Option<PathBuf>,
    pub data: &'a str,
    pub split: Split,
    pub limit: Option<usize>,
    pub thresholds: Option<Vec<f32>>,
    pub policy: Option<PolicyKind>,
}

#[derive(Serialize)]
pub struct ExitRow {
    pub exit: String,
    /// Share of inputs that leave at this exit.
    pub share: f64,
    /// Accuracy on the inputs that leave here.
    pub accuracy_when_taken: Option<f64>,
    /// Accuracy of this exit on every input (all segments run).
    pub int8_accuracy: f64,
    /// Float accuracy of this exit from tract on the ONNX model.
    pub float_accuracy: Option<f64>,
    pub cumulative_macs: u64,
    /// None for the main exit, which always answers.
    pub threshold: Option<f32>,
}

#[derive(Serialize)]
pub struct SimulateReport {
    pub bundle: String,
    pub onnx: Option<String>,
    pub split: Split,
    pub images: usize,
    pub policy: String,
    pub exits: Vec<ExitRow>,
    pub accuracy: f64,
    pub main_accuracy: f64,
    pub avg_macs: f64,
    /// MACs of the model without early exits (trunk and main head only).
    pub full_macs: u64,
    /// 1 - avg / full.
    pub macs_saved: f64,
    pub speedup: f64,
    pub threads: usize,
    /// Wall time of the runtime's early-exit pass.
    pub runtime_seconds: f64,
    /// Wall time of tract running the float ONNX (all exits) on the same images.
    pub tract_seconds: Option<f64>,
}

pub fn read_bundle(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    Model::parse(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(bytes)
}

fn stored_thresholds(model: &Model) -> Result<(PolicyKind, Vec<f32>)> {
    let segs: Vec<_> = (0..model.num_exits())
        .map(|k| model.segment(k))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("{e}"))?;
    Ok((segs[0].policy, segs.iter().map(|s| s.threshold).collect()))
}

pub fn simulate(path: &Path, opts: &SimulateOptions) -> Result<SimulateReport> {
    let bytes = read_bundle(path)?;
    let model = Model::parse(&bytes).map_err(|e| anyhow!("{e}"))?;
    let (stored_policy, stored) = stored_thresholds(&model)?;
    let policy = opts.policy.unwrap_or(stored_policy);
    let n_exits = model.num_exits();
    let thresholds = match &opts.thresholds {
        // One per early exit; a value for the main exit (which always answers) is allowed and
        // ignored.
        Some(t) if t.len() == n_exits - 1 || t.len() == n_exits => {
            let mut t = t.clone();
            t.resize(n_exits, stored[n_exits - 1]);
            t
        }
        Some(t) => bail!(
            "--thresholds: expected {} values (one per early exit) for a bundle with {n_exits} exits, got {}",
            n_exits - 1,
            t.len()
        ),
        // The bundle's thresholds mean something only for the policy they were tuned for.
        None if policy != stored_policy => bail!(
            "--policy {}: the bundle's thresholds are for the {} policy; give --thresholds too, or re-tune with `sdedge tune BUNDLE --policy {}`",
            tune::policy_name(policy),
            tune::policy_name(stored_policy),
            tune::policy_name(policy)
        ),
        None => stored,
    };
    let data = data::load(opts.data, opts.split)?.truncate(opts.limit);
    if data.is_empty() {
        bail!("no images to simulate");
    }

    let all = eval::run_all(&bytes, &data, &eval::progress(data.len(), "all exits"))?;
    let run_opts = Options {
        thresholds: Some(&thresholds),
        policy: Some(policy),
        run_all: false,
    };
    let early = eval::run_early_exit(
        &bytes,
        &data,
        &run_opts,
        &eval::progress(data.len(), "early exit"),
    )?;
    // The early-exit run must agree with the all-exits run image by image: same code, same
    // arithmetic, only the stopping point differs.
    for (i, recs) in all.records.iter().enumerate() {
        let k = tune::answering_exit(policy, &thresholds, recs);
        if early.exit[i] as usize != k || early.class[i] != recs[k].class {
            bail!("internal: image {i} answered by exit {} in early-exit mode but {k} when all exits run", early.exit[i]);
        }
    }
    let ev: Evaluation = tune::evaluate(&all, &data.labels, policy, &thresholds);

    // Float accuracy from tract on the ONNX model, exits in the same depth order.
    let onnx = opts.onnx.clone().or_else(|| {
        let p = path.with_extension("onnx");
        p.exists().then_some(p)
    });
    let (float_acc, tract_seconds) = match &onnx {
        Some(p) => {
            let (loaded, split, _) = pipeline::analyse(p, None)?;
            if split.segments.len() != model.num_exits() {
                bail!(
                    "{} has {} exits but the bundle has {}: not the model it was split from",
                    p.display(),
                    split.segments.len(),
                    model.num_exits()
                );
            }
            let order: Vec<usize> = split
                .segments
                .iter()
                .map(|s| {
                    loaded
                        .graph
                        .exits
                        .iter()
                        .position(|e| e.tensor == s.exit_tensor)
                        .unwrap_or(0)
                })
                .collect();
            let (preds, elapsed) = float::predict(&loaded.typed, &loaded.graph, &order, &data)?;
            let acc = (0..order.len())
                .map(|k| accuracy(preds.iter().map(|p| p[k]), &data.labels))
                .collect::<Vec<_>>();
            let names: Vec<String> = split.segments.iter().map(|s| s.exit_name.clone()).collect();
            (Some((acc, names)), Some(elapsed.as_secs_f64()))
        }
        None => (None, None),
    };

    // The baseline is the network without early exits: trunk + main head, no side heads.
    let full_macs = model.main_path_macs().map_err(|e| anyhow!("{e}"))?;
    let exits = (0..n_exits)
        .map(|k| ExitRow {
            exit: float_acc
                .as_ref()
                .map(|(_, n)| n[k].clone())
                .unwrap_or_else(|| {
                    if k + 1 == n_exits {
                        "main".into()
                    } else {
                        format!("exit{}", k + 1)
                    }
                }),
            share: ev.exit_share[k],
            accuracy_when_taken: ev.exit_accuracy[k],
            int8_accuracy: accuracy(all.records.iter().map(|r| r[k].class), &data.labels),
            float_accuracy: float_acc.as_ref().map(|(a, _)| a[k]),
            cumulative_macs: all.cumulative_macs[k],
            threshold: (k + 1 < n_exits).then_some(thresholds[k]),
        })
        .collect::<Vec<_>>();
    let avg_macs = early.macs.iter().sum::<u64>() as f64 / data.len() as f64;
    Ok(SimulateReport {
        bundle: path.display().to_string(),
        onnx: onnx.map(|p| p.display().to_string()),
        split: opts.split,
        images: data.len(),
        policy: tune::policy_name(policy).to_string(),
        main_accuracy: exits[n_exits - 1].int8_accuracy,
        exits,
        accuracy: accuracy(early.class.iter().copied(), &data.labels),
        avg_macs,
        full_macs,
        macs_saved: 1.0 - avg_macs / full_macs as f64,
        speedup: full_macs as f64 / avg_macs,
        threads: rayon::current_num_threads(),
        runtime_seconds: early.elapsed.as_secs_f64(),
        tract_seconds,
    })
}

fn accuracy(pred: impl Iterator<Item = u8>, labels: &[u8]) -> f64 {
    let right = pred.zip(labels).filter(|(p, l)| p == *l).count();
    right as f64 / labels.len().max(1) as f64
}

#[derive(Serialize)]
pub struct TuneReport {
    pub bundle: String,
    pub policy: String,
    /// One per early exit, in depth order (the main exit always answers): the values
    /// `simulate --thresholds` takes.
    pub early_exit_thresholds: Vec<f32>,
    pub validation_images: usize,
    pub validation: Evaluation,
}

/// Re-tunes a bundle's thresholds on the validation split and rewrites it in place.
pub fn tune_bundle(
    path: &Path,
    data: &str,
    policy: PolicyKind,
    max_drop: f64,
) -> Result<TuneReport> {
    let mut bytes = read_bundle(path)?;
    let val = data::load(data, Split::Val)?;
    let all = eval::run_all(&bytes, &val, &eval::progress(val.len(), "tuning"))?;
    let (thresholds, validation) = tune::tune(&all, &val.labels, policy, max_drop);
    bundle::set_thresholds(&mut bytes, policy, &thresholds)?;
    bundle::write_atomic(path, &bytes)?;
    Ok(TuneReport {
        bundle: path.display().to_string(),
        policy: tune::policy_name(policy).to_string(),
        early_exit_thresholds: thresholds[..thresholds.len() - 1].to_vec(),
        validation_images: val.len(),
        validation,
    })
}
