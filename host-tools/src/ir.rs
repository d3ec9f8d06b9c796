//! sdedge's own small graph IR: what every ONNX exporter's graph is normalized to before
//! analysis, quantization and bundle writing. Float weights, HWC activations, batch 1.

use tract_onnx::prelude::OutletId;

pub type TensorId = usize;

#[derive(Debug, Clone)]
pub struct Tensor {
    /// The name users see (the ONNX tensor or node name it came from).
    pub name: String,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    /// Where tract computes this value in the float model (for calibration).
    pub outlet: OutletId,
}

impl Tensor {
    pub fn len(&self) -> usize {
        self.h * self.w * self.c
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Convolution/pool window geometry: the runtime's own type, so the IR, the bundle writer and
/// the bundle reader cannot disagree on it.
pub use sdedge_runtime::model::Window;

#[derive(Debug, Clone)]
pub enum Op {
    /// weights [out_c][k_h][k_w][in_c], bias [out_c]
    Conv {
        window: Window,
        weights: Vec<f32>,
        bias: Vec<f32>,
        relu: bool,
    },
    /// weights [out][in], bias [out]
    Dense {
        weights: Vec<f32>,
        bias: Vec<f32>,
        relu: bool,
    },
    Add {
        relu: bool,
    },
    MaxPool {
        window: Window,
    },
    GlobalAvgPool,
}

impl Op {
    pub fn relu(&self) -> bool {
        matches!(
            self,
            Op::Conv { relu: true, .. } | Op::Dense { relu: true, .. } | Op::Add { relu: true }
        )
    }

    pub fn params(&self) -> usize {
        match self {
            Op::Conv { weights, bias, .. } | Op::Dense { weights, bias, .. } => {
                weights.len() + bias.len()
            }
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<TensorId>,
    pub output: TensorId,
}

#[derive(Debug, Clone)]
pub struct Exit {
    pub name: String,
    pub tensor: TensorId,
}

#[derive(Debug, Clone)]
pub struct Graph {
    pub tensors: Vec<Tensor>,
    /// In a valid execution order.
    pub nodes: Vec<Node>,
    pub input: TensorId,
    /// In the ONNX model's output order.
    pub exits: Vec<Exit>,
}

impl Graph {
    pub fn macs(&self, node: &Node) -> u64 {
        let out = &self.tensors[node.output];
        match &node.op {
            Op::Conv { window, .. } => {
                let cin = self.tensors[node.inputs[0]].c;
                (out.len() * window.k_h * window.k_w * cin) as u64
            }
            Op::Dense { .. } => (out.len() * self.tensors[node.inputs[0]].len()) as u64,
            _ => 0,
        }
    }

    pub fn producer(&self, t: TensorId) -> Option<usize> {
        self.nodes.iter().position(|n| n.output == t)
    }
}
