//! Post-training int8 quantization (TFLite semantics): per-channel symmetric weights,
//! per-tensor asymmetric activations from calibration ranges, int32 biases, and integer
//! requantization parameters (fixed-point multiplier + shift).

use sdedge_runtime::fixedpoint::quantize_multiplier;
use sdedge_runtime::kernels::add_params;

use crate::ir::{Graph, Op, TensorId, Window};

/// Quantization of one activation tensor: real = scale * (q - zero_point).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
}

impl QParams {
    /// Asymmetric int8 covering [min, max] (widened to include 0, as TFLite does, so that
    /// zero padding is exact).
    pub fn from_range(min: f32, max: f32) -> QParams {
        let (min, max) = (min.min(0.0) as f64, max.max(0.0) as f64);
        let span = (max - min).max(1e-8);
        let scale = span / 255.0;
        let zp = (-128.0 - min / scale).round().clamp(-128.0, 127.0) as i32;
        QParams {
            scale: scale as f32,
            zero_point: zp,
        }
    }

    /// The input convention of sdedge models: pixel / 255 in [0, 1], so q = pixel - 128.
    pub fn unit_input() -> QParams {
        QParams {
            scale: 1.0 / 255.0,
            zero_point: -128,
        }
    }
}

/// An int8 op ready for the bundle.
#[derive(Debug, Clone)]
pub enum QOp {
    Conv {
        window: Window,
        weights: Vec<i8>,
        channels: ChannelParams,
    },
    Dense {
        weights: Vec<i8>,
        channels: ChannelParams,
    },
    /// left_shift, in1 (multiplier, shift), in2 (multiplier, shift), out (multiplier, shift)
    Add([i32; 7]),
    MaxPool {
        window: Window,
    },
    GlobalAvgPool {
        multiplier: i32,
        shift: i32,
    },
}

#[derive(Debug, Clone, Default)]
pub struct ChannelParams {
    pub bias: Vec<i32>,
    pub multiplier: Vec<i32>,
    pub shift: Vec<i32>,
}

#[derive(Debug, Clone)]
pub struct QNode {
    pub op: QOp,
    pub act_min: i32,
    pub act_max: i32,
}

/// Per-tensor activation quantization from calibration ranges. MaxPool outputs share their
/// input's parameters (max commutes with the affine map), so the pool needs no requantization.
pub fn activation_params(g: &Graph, ranges: &[(f32, f32)]) -> Vec<QParams> {
    let mut q: Vec<QParams> = ranges
        .iter()
        .map(|&(lo, hi)| QParams::from_range(lo, hi))
        .collect();
    q[g.input] = QParams::unit_input();
    for n in &g.nodes {
        if let Op::MaxPool { .. } = n.op {
            q[n.output] = q[n.inputs[0]];
        }
    }
    q
}

/// Symmetric per-output-channel int8 weights: returns (q, scale per channel).
fn quantize_weights(w: &[f32], out_c: usize) -> (Vec<i8>, Vec<f64>) {
    let per = w.len() / out_c;
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(out_c);
    for ch in w.chunks(per) {
        let max = ch.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        let s = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(
            ch.iter()
                .map(|&v| (v as f64 / s).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (q, scales)
}

fn channel_params(bias: &[f32], s_in: f64, s_w: &[f64], s_out: f64) -> ChannelParams {
    let mut p = ChannelParams::default();
    for (&b, &sw) in bias.iter().zip(s_w) {
        let s_acc = s_in * sw;
        p.bias.push(
            (b as f64 / s_acc)
                .round()
                .clamp(i32::MIN as f64, i32::MAX as f64) as i32,
        );
        let (m, sh) = quantize_multiplier(s_acc / s_out);
        p.multiplier.push(m);
        p.shift.push(sh);
    }
    p
}

fn clamp_range(relu: bool, out: QParams) -> (i32, i32) {
    if relu {
        (out.zero_point.max(-128), 127)
    } else {
        (-128, 127)
    }
}

/// Quantizes every node of `g` given the activation parameters of its tensors.
pub fn quantize(g: &Graph, act: &[QParams]) -> Vec<QNode> {
    let s = |t: TensorId| act[t].scale as f64;
    g.nodes
        .iter()
        .map(|n| {
            let out = act[n.output];
            let (act_min, act_max) = clamp_range(n.op.relu(), out);
            let op = match &n.op {
                Op::Conv {
                    window,
                    weights,
                    bias,
                    ..
                } => {
                    let (w, sw) = quantize_weights(weights, bias.len());
                    QOp::Conv {
                        window: *window,
                        weights: w,
                        channels: channel_params(bias, s(n.inputs[0]), &sw, s(n.output)),
                    }
                }
                Op::Dense { weights, bias, .. } => {
                    let (w, sw) = quantize_weights(weights, bias.len());
                    QOp::Dense {
                        weights: w,
                        channels: channel_params(bias, s(n.inputs[0]), &sw, s(n.output)),
                    }
                }
                Op::Add { .. } => {
                    let (a, b) = (act[n.inputs[0]], act[n.inputs[1]]);
                    let p = add_params(
                        a.scale as f64,
                        a.zero_point,
                        b.scale as f64,
                        b.zero_point,
                        out.scale as f64,
                        out.zero_point,
                        act_min,
                        act_max,
                    );
                    QOp::Add([
                        p.left_shift,
                        p.in1_multiplier,
                        p.in1_shift,
                        p.in2_multiplier,
                        p.in2_shift,
                        p.out_multiplier,
                        p.out_shift,
                    ])
                }
                Op::MaxPool { window } => QOp::MaxPool { window: *window },
                Op::GlobalAvgPool => {
                    let t = &g.tensors[n.inputs[0]];
                    let (multiplier, shift) =
                        quantize_multiplier(s(n.inputs[0]) / (s(n.output) * (t.h * t.w) as f64));
                    QOp::GlobalAvgPool { multiplier, shift }
                }
            };
            QNode {
                op,
                act_min,
                act_max,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_includes_zero_and_maps_ends() {
        let q = QParams::from_range(0.0, 6.0);
        assert_eq!(q.zero_point, -128);
        assert!(((127 - q.zero_point) as f32 * q.scale - 6.0).abs() < 1e-5);
        let q = QParams::from_range(-1.0, 3.0);
        // The ends map to -128 and 127 up to the rounding of the zero point.
        let real = |v: i32| (v - q.zero_point) as f32 * q.scale;
        assert!((real(-128) + 1.0).abs() <= q.scale / 2.0 + 1e-6);
        assert!((real(127) - 3.0).abs() <= q.scale / 2.0 + 1e-6);
    }

    #[test]
    fn per_channel_weights_use_full_range() {
        let (q, s) = quantize_weights(&[0.5, -1.0, 0.25, 0.0, 2.0, -2.0], 2);
        assert_eq!(q, vec![64, -127, 32, 0, 127, -127]);
        assert!((s[0] - 1.0 / 127.0).abs() < 1e-12 && (s[1] - 2.0 / 127.0).abs() < 1e-12);
    }
}
