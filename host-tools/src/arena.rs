//! Arena planning: where each activation lives in the runtime's one buffer.
//!
//! Ops run in a fixed order, so each tensor is live from the op that writes it to the last op
//! that reads it (an exit's logits until its segment ends, when the policy reads them).
//! Tensors are placed largest first at the lowest 4-byte-aligned offset that does not overlap
//! any tensor whose lifetime intersects (TFLite's greedy-by-size planner).

/// A tensor to place: its size and the inclusive range of op steps it is live for.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    pub size: usize,
    pub first: usize,
    pub last: usize,
}

pub const ALIGN: usize = 4;

fn align(x: usize) -> usize {
    x.div_ceil(ALIGN) * ALIGN
}

/// Returns each tensor's offset and the arena size (the exact end of the highest tensor).
pub fn plan(tensors: &[Lifetime]) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(tensors[i].size), i));
    let mut offsets = vec![0usize; tensors.len()];
    let mut placed: Vec<usize> = Vec::new();
    for &i in &order {
        let t = tensors[i];
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| tensors[j].first <= t.last && t.first <= tensors[j].last)
            .map(|&j| (offsets[j], offsets[j] + tensors[j].size))
            .collect();
        busy.sort();
        let mut at = 0;
        for (start, end) in busy {
            if at + t.size <= start {
                break;
            }
            at = at.max(align(end));
        }
        offsets[i] = at;
        placed.push(i);
    }
    let size = tensors
        .iter()
        .zip(&offsets)
        .map(|(t, o)| o + t.size)
        .max()
        .unwrap_or(0);
    (offsets, size)
}

/// Peak bytes of simultaneously live tensors at any step in `steps` (a lower bound on the
/// arena, reported per segment).
pub fn peak_live(tensors: &[Lifetime], steps: std::ops::Range<usize>) -> usize {
    steps
        .map(|s| {
            tensors
                .iter()
                .filter(|t| t.first <= s && s <= t.last)
                .map(|t| t.size)
                .sum()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlap(a: (usize, usize), b: (usize, usize)) -> bool {
        a.0 < b.1 && b.0 < a.1
    }

    #[test]
    fn live_tensors_never_share_bytes_and_dead_ones_are_reused() {
        // A chain with a skip connection: t0 -> t1 -> t2, add(t2, t0) -> t3.
        let ts = [
            Lifetime {
                size: 100,
                first: 0,
                last: 3,
            },
            Lifetime {
                size: 50,
                first: 1,
                last: 2,
            },
            Lifetime {
                size: 50,
                first: 2,
                last: 3,
            },
            Lifetime {
                size: 10,
                first: 3,
                last: 3,
            },
        ];
        let (off, size) = plan(&ts);
        for i in 0..ts.len() {
            for j in 0..i {
                let live = ts[i].first <= ts[j].last && ts[j].first <= ts[i].last;
                if live {
                    assert!(!overlap(
                        (off[i], off[i] + ts[i].size),
                        (off[j], off[j] + ts[j].size)
                    ));
                }
            }
            assert_eq!(off[i] % ALIGN, 0);
        }
        // Peak is t0 + t1 + t2 = 200 (steps 2); t2 starts at 152 (150 aligned up to 4).
        assert_eq!(peak_live(&ts, 0..4), 200);
        assert_eq!(size, 202);
    }
}
