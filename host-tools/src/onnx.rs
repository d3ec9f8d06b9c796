//! ONNX frontend: loads a model with tract, declutters it (which folds batch norm into convs
//! and turns every exporter's graph into the same small set of ops) and translates it into
//! sdedge's IR. Exporter quirks stay here; nothing downstream sees ONNX.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, MaxPool, PoolSpec};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::nn::{DataFormat, Reduce, Reducer};
use tract_onnx::tract_core::ops::Downsample;

use crate::ir::{Exit, Graph, Node, Op, Tensor as IrTensor, TensorId, Window};

/// A loaded model: the IR, and tract's decluttered float model (batch 1) that it came from.
pub struct Loaded {
    pub graph: Graph,
    pub typed: TypedModel,
}

/// How a tract tensor's axes map onto an IR tensor's (h, w, c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Nchw,
    Nhwc,
    /// [1, C] with h = w = 1
    Vector,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    H,
    W,
    C,
}

/// The role of each tract axis of size > 1 (None for unit axes): enough to tell whether a
/// reshape or transpose keeps the data where the IR expects it.
type Roles = Vec<Option<Role>>;

/// What a tract outlet is, in IR terms.
#[derive(Debug, Clone)]
enum Value {
    Tensor(TensorId, Roles),
    /// Reduce<Sum> over H and W of an IR tensor; becomes GlobalAvgPool at the following Mul.
    SpatialSum(TensorId),
    /// Every stride-th row/column of an IR tensor (tract's form of a strided 1x1 conv input).
    Strided(TensorId, Roles, [usize; 2]),
}

pub fn load(path: &Path) -> Result<Loaded> {
    if !path.exists() {
        bail!("{}: no such file", path.display());
    }
    if path.is_dir() {
        bail!("{}: is a directory, not an ONNX file", path.display());
    }
    // A bundle given where the ONNX model belongs: say what it is and what reads it.
    let mut magic = [0u8; 4];
    let is_bundle = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == sdedge_runtime::format::MAGIC;
    if is_bundle {
        bail!(
            "{}: is an sdedge bundle, not an ONNX model (`sdedge simulate` reads bundles)",
            path.display()
        );
    }
    let mut model = tract_onnx::onnx()
        .model_for_path(path)
        .map_err(|e| anyhow!("{}: not a valid ONNX model: {e}", path.display()))?;
    let inputs = model.input_outlets()?.len();
    if inputs != 1 {
        bail!(
            "{}: the model has {inputs} inputs; sdedge takes models with one image input",
            path.display()
        );
    }
    let mut fact = model.input_fact(0)?.clone();
    if fact.shape.dims().count() != 4 {
        bail!(
            "{}: the input must be a 4-D image tensor (NHWC or NCHW), got {:?}",
            path.display(),
            fact.shape
        );
    }
    fact.shape.set_dim(0, 1.into());
    model.set_input_fact(0, fact)?;
    let typed = model
        .into_typed()
        .and_then(|m| m.into_decluttered())
        .map_err(|e| anyhow!("{}: tract could not analyse the model: {e}", path.display()))?;
    let graph = translate(&typed).with_context(|| path.display().to_string())?;
    Ok(Loaded { graph, typed })
}

fn shape_of(model: &TypedModel, o: OutletId) -> Result<Vec<usize>> {
    let fact = model.outlet_fact(o)?;
    fact.shape
        .as_concrete()
        .map(|s| s.to_vec())
        .ok_or_else(|| anyhow!("shape {:?} is not concrete", fact.shape))
}

fn layout_roles(layout: Layout) -> &'static [Option<Role>] {
    match layout {
        Layout::Nchw => &[None, Some(Role::C), Some(Role::H), Some(Role::W)],
        Layout::Nhwc => &[None, Some(Role::H), Some(Role::W), Some(Role::C)],
        Layout::Vector => &[None, Some(Role::C)],
    }
}

/// Roles of `shape` read in `layout` (None where the axis has size 1).
fn roles_for(shape: &[usize], layout: Layout) -> Option<Roles> {
    let r = layout_roles(layout);
    if shape.len() != r.len() || shape[0] != 1 {
        return None;
    }
    Some(
        shape
            .iter()
            .zip(r)
            .map(|(&d, &role)| if d == 1 { None } else { role })
            .collect(),
    )
}

fn dims_in(shape: &[usize], layout: Layout) -> Option<(usize, usize, usize)> {
    match (layout, shape) {
        (Layout::Nchw, [1, c, h, w]) => Some((*h, *w, *c)),
        (Layout::Nhwc, [1, h, w, c]) => Some((*h, *w, *c)),
        (Layout::Vector, [1, c]) => Some((1, 1, *c)),
        _ => None,
    }
}

struct Translator<'m> {
    model: &'m TypedModel,
    g: Graph,
    values: HashMap<OutletId, Value>,
    /// How many tract nodes read each outlet (to know when a ReLU or bias can be fused).
    readers: HashMap<OutletId, usize>,
}

fn translate(model: &TypedModel) -> Result<Graph> {
    let input = model.input_outlets()?[0];
    let mut readers = HashMap::new();
    for n in model.nodes() {
        for i in &n.inputs {
            *readers.entry(*i).or_insert(0) += 1;
        }
    }
    for o in model.output_outlets()? {
        *readers.entry(*o).or_insert(0) += 1;
    }
    let mut t = Translator {
        model,
        g: Graph {
            tensors: vec![],
            nodes: vec![],
            input: 0,
            exits: vec![],
        },
        values: HashMap::new(),
        readers,
    };
    let shape = shape_of(model, input)?;
    // An image input: NHWC when the last axis is the (small) channel axis, else NCHW.
    let layout = match shape.as_slice() {
        [1, _, _, c] if *c <= 4 => Layout::Nhwc,
        _ => Layout::Nchw,
    };
    let (h, w, c) = dims_in(&shape, layout)
        .ok_or_else(|| anyhow!("input shape {shape:?} is not an image batch of one"))?;
    t.g.tensors.push(IrTensor {
        name: model.node(input.node).name.clone(),
        h,
        w,
        c,
        outlet: input,
    });
    let roles = roles_for(&shape, layout).context("input roles")?;
    t.values.insert(input, Value::Tensor(0, roles));

    for id in model.eval_order()? {
        let node = model.node(id);
        if node.inputs.is_empty() {
            continue; // the source, and consts (read through their consumers)
        }
        t.node(node).with_context(|| {
            format!(
                "node {} (op {}) is not supported by the sdedge runtime",
                node.name,
                node.op.name()
            )
        })?;
    }
    for (i, o) in model.output_outlets()?.iter().enumerate() {
        let name = model
            .outlet_label(*o)
            .map(str::to_string)
            .unwrap_or_else(|| model.node(o.node).name.clone());
        let tensor = match t.view(*o) {
            Ok((tid, Layout::Vector)) => tid,
            _ => bail!("output {i} ({name}) is not the logits vector of a dense layer"),
        };
        t.g.exits.push(Exit { name, tensor });
    }
    Ok(t.g)
}

impl Translator<'_> {
    fn konst(&self, o: OutletId) -> Option<Arc<Tensor>> {
        self.model.outlet_fact(o).ok()?.konst.clone()
    }

    fn konst_f32(&self, o: OutletId) -> Result<Vec<f32>> {
        let c = self.konst(o).context("operand is not constant")?;
        let c = c.cast_to::<f32>()?;
        Ok(c.to_plain_array_view::<f32>()?.iter().copied().collect())
    }

    fn value(&self, o: OutletId) -> Result<Value> {
        self.values
            .get(&o)
            .cloned()
            .ok_or_else(|| anyhow!("its input {o:?} is not something sdedge can compute"))
    }

    /// The IR tensor behind `o` and the layout its tract shape is in.
    fn view(&self, o: OutletId) -> Result<(TensorId, Layout)> {
        let Value::Tensor(x, roles) = self.value(o)? else {
            bail!("a spatial sum or strided view used other than as global pooling or a 1x1 conv");
        };
        let shape = shape_of(self.model, o)?;
        let t = &self.g.tensors[x];
        [Layout::Nchw, Layout::Nhwc, Layout::Vector]
            .into_iter()
            .find(|&l| {
                roles_for(&shape, l).as_ref() == Some(&roles)
                    && dims_in(&shape, l) == Some((t.h, t.w, t.c))
            })
            .map(|l| (x, l))
            .ok_or_else(|| {
                anyhow!("tensor of shape {shape:?} is in a layout sdedge does not support")
            })
    }

    fn add_node(
        &mut self,
        node: &TypedNode,
        op: Op,
        inputs: Vec<TensorId>,
        layout: Layout,
    ) -> Result<()> {
        let out = OutletId::new(node.id, 0);
        let shape = shape_of(self.model, out)?;
        let (h, w, c) = dims_in(&shape, layout)
            .ok_or_else(|| anyhow!("output shape {shape:?} is not a {layout:?} tensor"))?;
        let tid = self.g.tensors.len();
        self.g.tensors.push(IrTensor {
            name: user_name(node),
            h,
            w,
            c,
            outlet: out,
        });
        self.g.nodes.push(Node {
            name: user_name(node),
            op,
            inputs,
            output: tid,
        });
        let roles = roles_for(&shape, layout).context("output roles")?;
        self.values.insert(out, Value::Tensor(tid, roles));
        Ok(())
    }

    fn node(&mut self, node: &TypedNode) -> Result<()> {
        let out = OutletId::new(node.id, 0);
        if let Some(conv) = node.op_as::<Conv>() {
            return self.conv(node, conv);
        }
        if let Some(pool) = node.op_as::<MaxPool>() {
            let (x, layout) = self.view(node.inputs[0])?;
            let window = self.window(&pool.pool_spec, x, layout)?;
            return self.add_node(node, Op::MaxPool { window }, vec![x], layout);
        }
        if let Some(red) = node.op_as::<Reduce>() {
            let (x, layout) = self.view(node.inputs[0])?;
            let spatial: Vec<usize> = match layout {
                Layout::Nchw => vec![2, 3],
                Layout::Nhwc => vec![1, 2],
                Layout::Vector => vec![],
            };
            let mut axes = red.axes.to_vec();
            axes.sort();
            if red.reducer != Reducer::Sum || axes != spatial {
                bail!("only a sum over the spatial axes (global average pooling) is supported");
            }
            self.values.insert(out, Value::SpatialSum(x));
            return Ok(());
        }
        if let Some(ds) = node.op_as::<Downsample>() {
            return self.downsample(node, ds);
        }
        if let Some(einsum) = node.op_as::<EinSum>() {
            return self.einsum(node, einsum);
        }
        if let Some(axis) = node.op_as::<AxisOp>() {
            return self.axis_op(node, axis);
        }
        if let Some(bin) = node.op_as::<TypedBinOp>() {
            return self.binary(node, bin.0.name());
        }
        bail!("op {} has no int8 kernel in the runtime", node.op.name())
    }

    fn window(&self, spec: &PoolSpec, x: TensorId, layout: Layout) -> Result<Window> {
        let want = match layout {
            Layout::Nchw => DataFormat::NCHW,
            Layout::Nhwc => DataFormat::NHWC,
            Layout::Vector => bail!("a window op on a vector"),
        };
        if spec.data_format != want {
            bail!(
                "data format {:?} does not match the tensor's {layout:?} layout",
                spec.data_format
            );
        }
        if spec.dilations().iter().any(|&d| d != 1) {
            bail!("dilated windows are not supported");
        }
        if spec.kernel_shape.len() != 2 {
            bail!("only 2-D windows are supported");
        }
        let t = &self.g.tensors[x];
        let pads = spec.computed_padding(&[t.h, t.w]);
        let strides = spec.strides();
        Ok(Window {
            k_h: spec.kernel_shape[0],
            k_w: spec.kernel_shape[1],
            stride_h: strides[0],
            stride_w: strides[1],
            pad_top: pads[0].pad_before,
            pad_left: pads[1].pad_before,
        })
    }

    fn conv(&mut self, node: &TypedNode, conv: &Conv) -> Result<()> {
        if conv.q_params.is_some() {
            bail!("the model is already quantized; sdedge takes float models");
        }
        if conv.group != 1 {
            bail!(
                "grouped/depthwise convolution (group {}) has no kernel yet",
                conv.group
            );
        }
        let (x, layout) = self.view(node.inputs[0])?;
        let window = self.window(&conv.pool_spec, x, layout)?;
        let kernel = self
            .konst(node.inputs[1])
            .context("conv weights are not constant")?;
        let k = kernel.cast_to::<f32>()?;
        let k = k.to_plain_array_view::<f32>()?;
        let (kh, kw) = (window.k_h, window.k_w);
        let (cin, cout) = (self.g.tensors[x].c, conv.output_channels());
        // Reorder to [out][kh][kw][in].
        let mut weights = Vec::with_capacity(cout * kh * kw * cin);
        for o in 0..cout {
            for y in 0..kh {
                for xk in 0..kw {
                    for i in 0..cin {
                        weights.push(match conv.kernel_fmt {
                            KernelFormat::OIHW => k[[o, i, y, xk]],
                            KernelFormat::HWIO => k[[y, xk, i, o]],
                            KernelFormat::OHWI => k[[o, y, xk, i]],
                        });
                    }
                }
            }
        }
        let bias = match node.inputs.get(2) {
            Some(b) => {
                let v = self.konst_f32(*b).context("conv bias is not constant")?;
                if v.len() == 1 {
                    vec![v[0]; cout]
                } else {
                    v
                }
            }
            None => vec![0.0; cout],
        };
        if bias.len() != cout {
            bail!("bias has {} values for {cout} channels", bias.len());
        }
        let op = Op::Conv {
            window,
            weights,
            bias,
            relu: false,
        };
        self.add_node(node, op, vec![x], layout)
    }

    fn downsample(&mut self, node: &TypedNode, ds: &Downsample) -> Result<()> {
        let (x, mut roles, mut stride) = match self.value(node.inputs[0])? {
            Value::Tensor(x, r) => (x, r, [1, 1]),
            Value::Strided(x, r, s) => (x, r, s),
            Value::SpatialSum(_) => bail!("downsampling a pooled tensor"),
        };
        if ds.modulo != 0 || ds.stride < 1 {
            bail!(
                "downsampling with offset {} / stride {} (only a plain stride is supported)",
                ds.modulo,
                ds.stride
            );
        }
        match roles.get(ds.axis).copied().flatten() {
            Some(Role::H) => stride[0] *= ds.stride as usize,
            Some(Role::W) => stride[1] *= ds.stride as usize,
            _ => bail!("downsampling axis {} is not a spatial axis", ds.axis),
        }
        // The downsampled axis keeps its role (it is still > 1 or becomes a unit axis).
        let shape = shape_of(self.model, OutletId::new(node.id, 0))?;
        if shape[ds.axis] == 1 {
            roles[ds.axis] = None;
        }
        self.values
            .insert(OutletId::new(node.id, 0), Value::Strided(x, roles, stride));
        Ok(())
    }

    /// EinSum is either a dense layer ([1, K] x [K, N]) or, on an NCHW tensor, a 1x1 conv
    /// (possibly on a downsampled input: a strided 1x1 conv).
    fn einsum(&mut self, node: &TypedNode, einsum: &EinSum) -> Result<()> {
        if einsum.q_params.is_some() {
            bail!("the model is already quantized; sdedge takes float models");
        }
        let (ins, outs) = einsum.axes.to_strs();
        if ins.len() != 2 || outs.len() != 1 {
            bail!("einsum {} is not a dense layer or 1x1 conv", einsum.axes);
        }
        let (a, b, c) = (&ins[0], &ins[1], &outs[0]);
        let contracted: Vec<char> = a
            .chars()
            .filter(|ch| b.contains(*ch) && !c.contains(*ch))
            .collect();
        if contracted.len() != 1 || b.chars().count() != 2 {
            bail!("einsum {} is not a dense layer or 1x1 conv", einsum.axes);
        }
        let k_in_a = a.chars().position(|ch| ch == contracted[0]).unwrap_or(0);
        let k_in_b = b.chars().position(|ch| ch == contracted[0]).unwrap_or(0);
        let w = self
            .konst(node.inputs[1])
            .context("the weights are not constant")?;
        let w = w.cast_to::<f32>()?;
        let wv = w.to_plain_array_view::<f32>()?;
        let (kdim, ndim) = (wv.shape()[k_in_b], wv.shape()[1 - k_in_b]);
        let mut weights = Vec::with_capacity(kdim * ndim);
        for n in 0..ndim {
            for k in 0..kdim {
                weights.push(if k_in_b == 0 { wv[[k, n]] } else { wv[[n, k]] });
            }
        }
        let out_shape = shape_of(self.model, OutletId::new(node.id, 0))?;
        let (x, stride, in_shape) = match self.value(node.inputs[0])? {
            Value::Strided(x, _, s) => (x, s, None),
            Value::Tensor(..) => {
                let (x, layout) = self.view(node.inputs[0])?;
                (x, [1, 1], Some(layout))
            }
            Value::SpatialSum(_) => bail!("a spatial sum without its mean scale"),
        };
        let t = &self.g.tensors[x];
        if kdim != t.c {
            bail!(
                "weights take {kdim} inputs, the tensor has {} channels",
                t.c
            );
        }
        if out_shape.len() == 2 {
            // Dense: every axis but the contracted one must be a unit axis.
            if stride != [1, 1] || t.h != 1 || t.w != 1 {
                bail!("a dense layer on a spatial tensor (use global pooling first)");
            }
            let op = Op::Dense {
                weights,
                bias: vec![0.0; ndim],
                relu: false,
            };
            return self.add_node(node, op, vec![x], Layout::Vector);
        }
        // 1x1 conv, NCHW: contracted axis is the channel axis (1), output channels at 1.
        if in_shape.is_some_and(|l| l != Layout::Nchw) || k_in_a != 1 || out_shape.len() != 4 {
            bail!("einsum {} is not a 1x1 convolution over NCHW", einsum.axes);
        }
        let window = Window {
            k_h: 1,
            k_w: 1,
            stride_h: stride[0],
            stride_w: stride[1],
            pad_top: 0,
            pad_left: 0,
        };
        let op = Op::Conv {
            window,
            weights,
            bias: vec![0.0; ndim],
            relu: false,
        };
        self.add_node(node, op, vec![x], Layout::Nchw)
    }

    /// Reshapes, squeezes and axis moves: the IR tensor is unchanged, only how tract indexes
    /// it. Accepted when every non-unit axis keeps its role (H, W or C) and order.
    fn axis_op(&mut self, node: &TypedNode, op: &AxisOp) -> Result<()> {
        let Value::Tensor(x, mut roles) = self.value(node.inputs[0])? else {
            bail!("reshaping a pooled or strided tensor");
        };
        let after = shape_of(self.model, OutletId::new(node.id, 0))?;
        match op {
            AxisOp::Add(i) if *i <= roles.len() => roles.insert(*i, None),
            AxisOp::Rm(i) if *i < roles.len() => {
                roles.remove(*i);
            }
            AxisOp::Move(from, to) if *from < roles.len() && *to < roles.len() => {
                let r = roles.remove(*from);
                roles.insert(*to, r);
            }
            _ => {
                // A general reshape: the non-unit axes must stay in order with their sizes.
                let before = shape_of(self.model, node.inputs[0])?;
                let kept: Vec<(usize, Option<Role>)> = before
                    .iter()
                    .zip(&roles)
                    .filter(|(&d, _)| d != 1)
                    .map(|(&d, &r)| (d, r))
                    .collect();
                let sizes: Vec<usize> = after.iter().copied().filter(|&d| d != 1).collect();
                if kept.iter().map(|k| k.0).collect::<Vec<_>>() != sizes {
                    bail!("reshape {before:?} -> {after:?} reorders data (e.g. flattening a spatial tensor); use global pooling before the dense layer");
                }
                let mut it = kept.into_iter();
                roles = after
                    .iter()
                    .map(|&d| {
                        if d == 1 {
                            None
                        } else {
                            it.next().and_then(|k| k.1)
                        }
                    })
                    .collect();
            }
        }
        for (d, r) in after.iter().zip(roles.iter_mut()) {
            if *d == 1 {
                *r = None;
            }
        }
        self.values
            .insert(OutletId::new(node.id, 0), Value::Tensor(x, roles));
        Ok(())
    }

    fn binary(&mut self, node: &TypedNode, name: &str) -> Result<()> {
        let out = OutletId::new(node.id, 0);
        let consts: Vec<bool> = node
            .inputs
            .iter()
            .map(|i| self.konst(*i).is_some())
            .collect();
        let var: Vec<usize> = (0..node.inputs.len()).filter(|&i| !consts[i]).collect();
        match (name, var.as_slice()) {
            // ReLU = max(x, 0), fused into the op that produced x.
            ("Max", [i]) => {
                if self
                    .konst_f32(node.inputs[1 - i])?
                    .iter()
                    .any(|&v| v != 0.0)
                {
                    bail!("max with a non-zero constant (only ReLU is supported)");
                }
                let (x, _) = self.view(node.inputs[*i])?;
                self.fuse_relu(node.inputs[*i], x)?;
                let v = self.value(node.inputs[*i])?;
                self.values.insert(out, v);
                self.follow(x, node);
                Ok(())
            }
            // A bias after a conv or dense layer (tract splits them off some exports).
            ("Add", [i]) => {
                let (x, _) = self.view(node.inputs[*i])?;
                let cv = self.konst_f32(node.inputs[1 - i])?;
                let p = self.sole_producer(node.inputs[*i], x)?;
                match &mut self.g.nodes[p].op {
                    Op::Dense {
                        bias, relu: false, ..
                    }
                    | Op::Conv {
                        bias, relu: false, ..
                    } if cv.len() == bias.len() || cv.len() == 1 => {
                        for (k, b) in bias.iter_mut().enumerate() {
                            *b += cv[if cv.len() == 1 { 0 } else { k }];
                        }
                    }
                    _ => bail!(
                        "adding a constant is only supported as the bias of a conv or dense layer"
                    ),
                }
                let v = self.value(node.inputs[*i])?;
                self.values.insert(out, v);
                self.follow(x, node);
                Ok(())
            }
            // Residual connection.
            ("Add", [_, _]) => {
                let (a, la) = self.view(node.inputs[0])?;
                let (b, lb) = self.view(node.inputs[1])?;
                let (ta, tb) = (&self.g.tensors[a], &self.g.tensors[b]);
                if la != lb || (ta.h, ta.w, ta.c) != (tb.h, tb.w, tb.c) {
                    bail!("adding tensors of different shapes (broadcasting) is not supported");
                }
                self.add_node(node, Op::Add { relu: false }, vec![a, b], la)
            }
            // Mean = spatial sum * 1/(H*W): global average pooling.
            ("Mul", [i]) => {
                let Value::SpatialSum(x) = self.value(node.inputs[*i])? else {
                    bail!("multiplying by a constant is only supported as the mean of a global average pool");
                };
                let cv = self.konst_f32(node.inputs[1 - i])?;
                let t = &self.g.tensors[x];
                let want = 1.0 / (t.h * t.w) as f32;
                if cv.len() != 1 || (cv[0] - want).abs() > want * 1e-5 {
                    bail!("a spatial sum scaled by {cv:?}, not by 1/(H*W) = {want}");
                }
                let shape = shape_of(self.model, out)?;
                let layout = [Layout::Vector, Layout::Nchw, Layout::Nhwc]
                    .into_iter()
                    .find(|&l| dims_in(&shape, l) == Some((1, 1, t.c)))
                    .context("pooled shape")?;
                self.add_node(node, Op::GlobalAvgPool, vec![x], layout)
            }
            _ => bail!("op {name} with these operands has no int8 kernel in the runtime"),
        }
    }

    /// `x` is now computed at `node`'s output (a ReLU or bias was fused): calibrate there, and
    /// name it after the layer users know (e.g. `block1_out`).
    fn follow(&mut self, x: TensorId, node: &TypedNode) {
        let t = &mut self.g.tensors[x];
        t.outlet = OutletId::new(node.id, 0);
        t.name = user_name(node);
    }

    /// The IR node that produced `x`, if `outlet` (its current tract outlet) has one reader.
    fn sole_producer(&self, outlet: OutletId, x: TensorId) -> Result<usize> {
        if self.readers.get(&outlet).copied().unwrap_or(0) != 1 {
            bail!("cannot fuse: the tensor before it is also read elsewhere");
        }
        self.g
            .producer(x)
            .ok_or_else(|| anyhow!("cannot fuse into the model input"))
    }

    fn fuse_relu(&mut self, outlet: OutletId, x: TensorId) -> Result<()> {
        let p = self.sole_producer(outlet, x)?;
        match &mut self.g.nodes[p].op {
            Op::Conv { relu, .. } | Op::Dense { relu, .. } | Op::Add { relu } if !*relu => {
                *relu = true;
                Ok(())
            }
            _ => bail!("ReLU is only supported right after a conv, dense or add"),
        }
    }
}

/// A node's name as the ONNX file has it: tract's declutter renames the nodes it rewrites
/// (an ONNX `Relu` becomes a `Max` named `.../Relu.low`).
fn user_name(node: &TypedNode) -> String {
    node.name
        .strip_suffix(".low")
        .unwrap_or(&node.name)
        .to_string()
}
