//! The float reference: tract running the ONNX model, for calibration and for the float
//! accuracy that int8 results are compared against.

use anyhow::{anyhow, bail, Result};
use rayon::prelude::*;
use tract_onnx::prelude::*;

use crate::data::Dataset;
use crate::ir::Graph;

/// An optimized tract plan returning the chosen outlets for one image.
pub struct FloatModel {
    plan: Arc<TypedRunnableModel>,
    input_shape: Vec<usize>,
}

impl FloatModel {
    pub fn new(typed: &TypedModel, outputs: &[OutletId]) -> Result<FloatModel> {
        let mut m = typed.clone();
        m.select_output_outlets(outputs)?;
        let shape: Vec<usize> = m
            .input_fact(0)?
            .shape
            .as_concrete()
            .ok_or_else(|| anyhow!("input shape is not concrete"))?
            .to_vec();
        if shape.len() != 4 || (shape[1] != 1 && shape[3] != 1) {
            bail!("the float reference only feeds single-channel images, input is {shape:?}");
        }
        let plan = m.into_optimized()?.into_runnable()?;
        Ok(FloatModel {
            plan,
            input_shape: shape,
        })
    }

    /// Runs one 8-bit image (fed as pixel / 255) and returns every selected output as f32s.
    pub fn run(&self, pixels: &[u8]) -> Result<Vec<Vec<f32>>> {
        let x: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
        let t = Tensor::from_shape(&self.input_shape, &x)?;
        let out = self.plan.run(tvec!(t.into()))?;
        out.iter()
            .map(|v| {
                let v = v.cast_to::<f32>()?;
                Ok(v.to_plain_array_view::<f32>()?.iter().copied().collect())
            })
            .collect()
    }
}

/// Min and max of every IR tensor over the images (run in parallel).
pub fn calibrate(typed: &TypedModel, g: &Graph, data: &Dataset) -> Result<Vec<(f32, f32)>> {
    let outlets: Vec<OutletId> = g.tensors.iter().map(|t| t.outlet).collect();
    let fm = FloatModel::new(typed, &outlets)?;
    let init = || vec![(f32::INFINITY, f32::NEG_INFINITY); outlets.len()];
    (0..data.len())
        .into_par_iter()
        .try_fold(init, |mut acc, i| {
            for (r, v) in acc.iter_mut().zip(fm.run(data.image(i))?) {
                for x in v {
                    r.0 = r.0.min(x);
                    r.1 = r.1.max(x);
                }
            }
            Ok::<_, anyhow::Error>(acc)
        })
        .try_reduce(init, |a, b| {
            Ok(a.iter()
                .zip(&b)
                .map(|(x, y)| (x.0.min(y.0), x.1.max(y.1)))
                .collect())
        })
}

/// Arg-max of each exit's float logits for every image, and the time it took.
pub fn predict(
    typed: &TypedModel,
    g: &Graph,
    exits: &[usize],
    data: &Dataset,
) -> Result<(Vec<Vec<u8>>, std::time::Duration)> {
    let outlets: Vec<OutletId> = exits
        .iter()
        .map(|&e| g.tensors[g.exits[e].tensor].outlet)
        .collect();
    let fm = FloatModel::new(typed, &outlets)?;
    let start = std::time::Instant::now();
    let preds: Result<Vec<Vec<u8>>> = (0..data.len())
        .into_par_iter()
        .map(|i| {
            Ok(fm
                .run(data.image(i))?
                .iter()
                .map(|l| argmax(l) as u8)
                .collect())
        })
        .collect();
    Ok((preds?, start.elapsed()))
}

pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}
