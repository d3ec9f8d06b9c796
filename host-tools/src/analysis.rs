//! Finding exits, the main exit, branch points and per-exit segments in an IR graph.

use std::collections::BTreeSet;

use anyhow::{bail, Result};

use crate::ir::{Graph, TensorId};

/// One exit in depth order, with the segment that ends in it.
#[derive(Debug, Clone)]
pub struct Segment {
    pub exit_name: String,
    pub exit_tensor: TensorId,
    /// The trunk tensor the exit head leaves from (None for the main exit).
    pub branch: Option<TensorId>,
    /// Nodes of this segment (trunk part then head), in execution order.
    pub nodes: Vec<usize>,
    /// Index in `nodes` where the exit head starts (nodes only this exit needs); equal to
    /// `nodes.len()` for the main exit.
    pub head_start: usize,
    /// Tensors computed by earlier segments that this or later segments still read: the
    /// state carried across the cut into this segment.
    pub carried_in: Vec<TensorId>,
}

/// How a graph splits into per-exit segments.
#[derive(Debug, Clone)]
pub struct Split {
    /// In depth order; the main exit is last.
    pub segments: Vec<Segment>,
}

/// Nodes needed to compute tensor `t`.
fn ancestors(g: &Graph, t: TensorId) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![t];
    while let Some(t) = stack.pop() {
        if let Some(p) = g.producer(t) {
            if seen.insert(p) {
                stack.extend(g.nodes[p].inputs.iter().copied());
            }
        }
    }
    seen
}

pub fn split(g: &Graph, main: Option<&str>) -> Result<Split> {
    if g.exits.len() < 2 {
        bail!(
            "the model has {} output; an early-exit model needs at least two (one per exit): nothing to split",
            g.exits.len()
        );
    }
    let anc: Vec<BTreeSet<usize>> = g.exits.iter().map(|e| ancestors(g, e.tensor)).collect();
    let main_idx = match main {
        Some(name) => match g.exits.iter().position(|e| e.name == name) {
            Some(i) => i,
            None => bail!(
                "--main {name}: no such output (outputs: {})",
                g.exits
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        // The deepest exit: the one that needs the most nodes.
        None => (0..g.exits.len())
            .max_by_key(|&i| (anc[i].len(), i))
            .unwrap_or(0),
    };
    let main_anc = &anc[main_idx];

    // Branch point of exit e: the latest trunk tensor (computed for the main exit too) that
    // feeds a node only exit e needs.
    let mut early = Vec::new();
    for (i, exit) in g.exits.iter().enumerate() {
        if i == main_idx {
            continue;
        }
        let own: BTreeSet<usize> = anc[i].difference(main_anc).copied().collect();
        if own.is_empty() {
            bail!(
                "output {} is computed inside the main exit's trunk, not by a head of its own; pass --main to choose another main exit",
                exit.name
            );
        }
        let branch = own
            .iter()
            .flat_map(|&n| g.nodes[n].inputs.iter().copied())
            .filter(|&t| t == g.input || g.producer(t).is_some_and(|p| main_anc.contains(&p)))
            .max_by_key(|&t| g.producer(t).map_or(-1, |p| p as i64));
        let Some(branch) = branch else {
            bail!(
                "output {} shares no tensor with the main exit's trunk: not a branch of it",
                exit.name
            );
        };
        early.push((i, branch));
    }
    early.sort_by_key(|&(_, b)| g.producer(b).map_or(-1, |p| p as i64));

    let mut done: BTreeSet<usize> = BTreeSet::new();
    let mut segments = Vec::new();
    let order: Vec<(usize, Option<TensorId>)> = early
        .iter()
        .map(|&(i, b)| (i, Some(b)))
        .chain([(main_idx, None)])
        .collect();
    for &(i, branch) in &order {
        // Trunk nodes (the main exit needs them too) first, then the head: the trunk never
        // reads the head, so this order is valid and the head is a contiguous tail.
        let (mut nodes, head): (Vec<usize>, Vec<usize>) = anc[i]
            .difference(&done)
            .copied()
            .partition(|n| main_anc.contains(n));
        let head_start = if i == main_idx {
            nodes.len() + head.len()
        } else {
            nodes.len()
        };
        nodes.extend(head);
        let before = done.clone();
        done.extend(nodes.iter().copied());
        // Tensors made before this segment and read by it or by any later one.
        let later: BTreeSet<usize> = (0..g.nodes.len()).filter(|n| !before.contains(n)).collect();
        let mut carried: Vec<TensorId> = later
            .iter()
            .flat_map(|&n| g.nodes[n].inputs.iter().copied())
            .filter(|&t| t == g.input || g.producer(t).is_some_and(|p| before.contains(&p)))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if before.is_empty() {
            carried = vec![g.input];
        }
        segments.push(Segment {
            exit_name: g.exits[i].name.clone(),
            exit_tensor: g.exits[i].tensor,
            branch,
            nodes,
            head_start,
            carried_in: carried,
        });
    }
    // Nodes no exit depends on are dropped: they are not in any segment.
    Ok(Split { segments })
}
