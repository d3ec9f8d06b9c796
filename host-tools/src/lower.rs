//! Lowering a split, quantized IR graph to a bundle: op order, tensor numbering, arena plan.

use std::collections::HashMap;

use anyhow::{bail, Result};
use sdedge_runtime::PolicyKind;

use crate::analysis::Split;
use crate::arena::{self, Lifetime};
use crate::bundle::{BOp, BSegment, BTensor, BundleSpec};
use crate::ir::{Graph, TensorId};
use crate::quantize::{QNode, QParams};

/// The order ops run in and where their tensors live.
pub struct Schedule {
    /// IR node ids in run order (segment after segment).
    pub order: Vec<usize>,
    /// Op index range of each segment.
    pub segments: Vec<std::ops::Range<usize>>,
    /// Bundle tensor index of each IR tensor (input 0, op i's output i + 1).
    pub index: HashMap<TensorId, usize>,
    /// Per bundle tensor.
    pub lifetimes: Vec<Lifetime>,
    pub offsets: Vec<usize>,
    pub arena_size: usize,
}

impl Schedule {
    /// Peak bytes of live int8 activations while segment `k` runs.
    pub fn peak_bytes(&self, k: usize) -> usize {
        let r = &self.segments[k];
        // Step s is op s - 1 running; step 0 is the input being written.
        arena::peak_live(&self.lifetimes, r.start + 1..r.end + 1)
    }
}

pub fn schedule(g: &Graph, split: &Split) -> Result<Schedule> {
    let mut order = Vec::new();
    let mut segments = Vec::new();
    for s in &split.segments {
        let start = order.len();
        order.extend(s.nodes.iter().copied());
        segments.push(start..order.len());
    }
    let mut index = HashMap::from([(g.input, 0usize)]);
    for (i, &n) in order.iter().enumerate() {
        index.insert(g.nodes[n].output, i + 1);
    }
    // Step of op i is i + 1; the input is written at step 0.
    let mut lifetimes: Vec<Lifetime> = std::iter::once(g.input)
        .chain(order.iter().map(|&n| g.nodes[n].output))
        .enumerate()
        .map(|(i, t)| Lifetime {
            size: g.tensors[t].len(),
            first: i,
            last: i,
        })
        .collect();
    for (i, &n) in order.iter().enumerate() {
        for t in &g.nodes[n].inputs {
            let Some(&ti) = index.get(t) else {
                bail!(
                    "internal: node {} reads a tensor no segment computes",
                    g.nodes[n].name
                );
            };
            lifetimes[ti].last = lifetimes[ti].last.max(i + 1);
        }
    }
    // Exit logits stay live until their segment ends (the policy reads them then).
    for (k, s) in split.segments.iter().enumerate() {
        let ti = index[&s.exit_tensor];
        lifetimes[ti].last = lifetimes[ti].last.max(segments[k].end);
    }
    let (offsets, arena_size) = arena::plan(&lifetimes);
    Ok(Schedule {
        order,
        segments,
        index,
        lifetimes,
        offsets,
        arena_size,
    })
}

/// Builds the bundle contents (thresholds as given, one per exit).
pub fn bundle_spec(
    g: &Graph,
    split: &Split,
    sched: &Schedule,
    act: &[QParams],
    qnodes: &[QNode],
    policy: PolicyKind,
    thresholds: &[f32],
) -> Result<BundleSpec> {
    let num_classes = g.tensors[split.segments[0].exit_tensor].c;
    for s in &split.segments {
        if g.tensors[s.exit_tensor].c != num_classes {
            bail!(
                "exit {} has {} classes, exit {} has {num_classes}",
                s.exit_name,
                g.tensors[s.exit_tensor].c,
                split.segments[0].exit_name
            );
        }
    }
    let ir_tensors: Vec<TensorId> = std::iter::once(g.input)
        .chain(sched.order.iter().map(|&n| g.nodes[n].output))
        .collect();
    let tensors = ir_tensors
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let d = &g.tensors[t];
            BTensor {
                h: d.h,
                w: d.w,
                c: d.c,
                scale: act[t].scale,
                zero_point: act[t].zero_point,
                offset: sched.offsets[i],
            }
        })
        .collect();
    let ops = sched
        .order
        .iter()
        .map(|&n| BOp {
            node: qnodes[n].clone(),
            inputs: g.nodes[n].inputs.iter().map(|t| sched.index[t]).collect(),
        })
        .collect();
    let segments = split
        .segments
        .iter()
        .enumerate()
        .map(|(k, s)| BSegment {
            first_op: sched.segments[k].start,
            n_ops: sched.segments[k].len(),
            exit_tensor: sched.index[&s.exit_tensor],
            policy,
            threshold: thresholds[k],
            head_ops: s.nodes.len() - s.head_start,
        })
        .collect();
    Ok(BundleSpec {
        tensors,
        ops,
        segments,
        num_classes,
        arena_size: sched.arena_size,
    })
}
