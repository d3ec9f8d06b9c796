//! `sdedge split`: ONNX -> IR -> split -> calibrate -> quantize -> arena plan -> tune -> bundle.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use sdedge_runtime::PolicyKind;
use serde::Serialize;

use crate::analysis::{self, Split};
use crate::data::{self, Dataset};
use crate::eval;
use crate::float;
use crate::ir::Graph;
use crate::lower::{self, Schedule};
use crate::onnx::{self, Loaded};
use crate::quantize;
use crate::tune::{self, Evaluation};
use crate::{bundle, ir};

pub struct SplitOptions<'a> {
    pub main: Option<&'a str>,
    pub data: &'a str,
    pub calibration_images: usize,
    pub policy: PolicyKind,
    /// Accuracy the tuned thresholds may lose against the main exit on validation data.
    pub max_drop: f64,
    /// Use only this many validation images to tune.
    pub tune_limit: Option<usize>,
}

/// What `split` made, for printing and JSON.
#[derive(Serialize)]
pub struct SplitReport {
    pub model: String,
    pub bundle: String,
    pub bundle_bytes: usize,
    pub arena_bytes: usize,
    pub calibration_images: usize,
    pub exits: Vec<SegmentReport>,
    /// One per early exit, in depth order (the main exit always answers): the values
    /// `simulate --thresholds` takes.
    pub early_exit_thresholds: Vec<f32>,
    pub policy: String,
    pub validation: Evaluation,
    pub validation_images: usize,
}

/// One segment as `inspect` and `split` show it.
#[derive(Serialize, Clone)]
pub struct SegmentReport {
    pub exit: String,
    /// Where the exit head leaves the trunk (None for the main exit).
    pub branch_point: Option<String>,
    pub branch_shape: Option<[usize; 3]>,
    /// Trunk tensors computed before this segment that it (or a later one) reads.
    pub carried_in: Vec<String>,
    pub ops: usize,
    /// Segment MACs, exit head included.
    pub macs: u64,
    /// MACs of the exit head alone (0 for the main exit).
    pub head_macs: u64,
    pub cumulative_macs: u64,
    pub params: usize,
    pub peak_activation_bytes: usize,
}

pub fn segment_reports(g: &Graph, split: &Split, sched: &Schedule) -> Vec<SegmentReport> {
    let mut cumulative = 0;
    split
        .segments
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let macs: u64 = s.nodes.iter().map(|&n| g.macs(&g.nodes[n])).sum();
            let head_macs: u64 = s.nodes[s.head_start..]
                .iter()
                .map(|&n| g.macs(&g.nodes[n]))
                .sum();
            cumulative += macs;
            let shape = |t: ir::TensorId| [g.tensors[t].h, g.tensors[t].w, g.tensors[t].c];
            SegmentReport {
                exit: s.exit_name.clone(),
                branch_point: s.branch.map(|b| g.tensors[b].name.clone()),
                branch_shape: s.branch.map(shape),
                carried_in: s
                    .carried_in
                    .iter()
                    .map(|&t| g.tensors[t].name.clone())
                    .collect(),
                ops: s.nodes.len(),
                macs,
                head_macs,
                cumulative_macs: cumulative,
                params: s.nodes.iter().map(|&n| g.nodes[n].op.params()).sum(),
                peak_activation_bytes: sched.peak_bytes(k),
            }
        })
        .collect()
}

/// Loads and analyses a model (no data needed).
pub fn analyse(model: &Path, main: Option<&str>) -> Result<(Loaded, Split, Schedule)> {
    let loaded = onnx::load(model)?;
    let split =
        analysis::split(&loaded.graph, main).map_err(|e| anyhow!("{}: {e}", model.display()))?;
    let sched = lower::schedule(&loaded.graph, &split)?;
    Ok((loaded, split, sched))
}

pub fn split(model: &Path, out: &Path, opts: &SplitOptions) -> Result<SplitReport> {
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir.filter(|d| !d.is_dir()) {
        bail!(
            "{}: output folder {} does not exist",
            out.display(),
            dir.display()
        );
    }
    if out.is_dir() {
        bail!(
            "{}: is a folder; give the bundle's file name, e.g. {}",
            out.display(),
            out.join("model.sde").display()
        );
    }
    let (loaded, split, sched) = analyse(model, opts.main)?;
    let g = &loaded.graph;
    // Check the data before the slow work, so a bad --data fails fast.
    let calib = data::load(opts.data, data::Split::Train)?;
    let calib: Dataset = calib.truncate(Some(opts.calibration_images));
    let val = data::load(opts.data, data::Split::Val)?.truncate(opts.tune_limit);
    let ranges = float::calibrate(&loaded.typed, g, &calib)?;
    let act = quantize::activation_params(g, &ranges);
    let qnodes = quantize::quantize(g, &act);

    // First a bundle with "never exit early", run on validation data to choose thresholds.
    let never = vec![f32::INFINITY; split.segments.len()];
    let spec = lower::bundle_spec(g, &split, &sched, &act, &qnodes, opts.policy, &never)?;
    let mut bytes = bundle::encode(&spec)?;
    let bar = eval::progress(val.len(), "tuning");
    let all = eval::run_all(&bytes, &val, &bar)?;
    let (thresholds, validation) = tune::tune(&all, &val.labels, opts.policy, opts.max_drop);
    bundle::set_thresholds(&mut bytes, opts.policy, &thresholds)?;
    // The bundle must read back: the writer and the runtime share one format definition,
    // and this proves it for this file before anything is written.
    sdedge_runtime::Model::parse(&bytes)
        .map_err(|e| anyhow!("internal: bundle does not parse: {e}"))?;
    bundle::write_atomic(out, &bytes)?;

    Ok(SplitReport {
        model: model.display().to_string(),
        bundle: out.display().to_string(),
        bundle_bytes: bytes.len(),
        arena_bytes: spec.arena_size,
        calibration_images: calib.len(),
        exits: segment_reports(g, &split, &sched),
        early_exit_thresholds: thresholds[..thresholds.len() - 1].to_vec(),
        policy: tune::policy_name(opts.policy).to_string(),
        validation,
        validation_images: val.len(),
    })
}
