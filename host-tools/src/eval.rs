//! Running the int8 runtime (the same code the device runs) over a data set.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use sdedge_runtime::{Model, NoClock, Options};

use crate::data::Dataset;

/// What one exit said about one image when every segment was run.
#[derive(Debug, Clone, Copy)]
pub struct ExitRecord {
    pub class: u8,
    pub entropy: f32,
    pub max_prob: f32,
}

/// Every exit's answer for every image (`records[image][exit]`).
pub struct AllExits {
    pub records: Vec<Vec<ExitRecord>>,
    /// MACs spent up to and including each exit's segment.
    pub cumulative_macs: Vec<u64>,
}

/// The early-exit answer for every image, as the device would give it.
pub struct EarlyExit {
    pub exit: Vec<u8>,
    pub class: Vec<u8>,
    pub macs: Vec<u64>,
    pub elapsed: Duration,
}

pub fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn quantized(model: &Model, pixels: &[u8]) -> Result<Vec<i8>> {
    let mut q = vec![0i8; pixels.len()];
    model
        .quantize_u8_image(pixels, &mut q)
        .map_err(|e| anyhow!("{e}"))?;
    Ok(q)
}

/// Runs every segment of every image and records each exit's score.
pub fn run_all(bundle: &[u8], data: &Dataset, bar: &ProgressBar) -> Result<AllExits> {
    let model = Model::parse(bundle).map_err(|e| anyhow!("{e}"))?;
    let opts = Options {
        run_all: true,
        ..Options::default()
    };
    let records: Result<Vec<(Vec<ExitRecord>, Vec<u64>)>> = (0..data.len())
        .into_par_iter()
        .map_init(
            || vec![0u8; model.arena_size()],
            |arena, i| {
                let input = quantized(&model, data.image(i))?;
                let mut rec = Vec::with_capacity(model.num_exits());
                let mut macs = Vec::with_capacity(model.num_exits());
                model
                    .run(&input, arena, &opts, &mut NoClock, |r| {
                        rec.push(ExitRecord {
                            class: r.score.class as u8,
                            entropy: r.score.entropy,
                            max_prob: r.score.max_prob,
                        });
                        macs.push(r.macs);
                    })
                    .map_err(|e| anyhow!("image {i}: {e}"))?;
                bar.inc(1);
                Ok((rec, macs))
            },
        )
        .collect();
    let records = records?;
    bar.finish_and_clear();
    let cumulative_macs = records.first().map(|r| r.1.clone()).unwrap_or_default();
    Ok(AllExits {
        records: records.into_iter().map(|r| r.0).collect(),
        cumulative_macs,
    })
}

/// Runs the model as the device does: stop at the first confident exit.
pub fn run_early_exit(
    bundle: &[u8],
    data: &Dataset,
    options: &Options,
    bar: &ProgressBar,
) -> Result<EarlyExit> {
    let model = Model::parse(bundle).map_err(|e| anyhow!("{e}"))?;
    let start = Instant::now();
    let out: Result<Vec<(u8, u8, u64)>> = (0..data.len())
        .into_par_iter()
        .map_init(
            || vec![0u8; model.arena_size()],
            |arena, i| {
                let input = quantized(&model, data.image(i))?;
                let o = model
                    .run(&input, arena, options, &mut NoClock, |_| {})
                    .map_err(|e| anyhow!("image {i}: {e}"))?;
                bar.inc(1);
                Ok((o.exit as u8, o.class as u8, o.macs))
            },
        )
        .collect();
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    let out = out?;
    Ok(EarlyExit {
        exit: out.iter().map(|o| o.0).collect(),
        class: out.iter().map(|o| o.1).collect(),
        macs: out.iter().map(|o| o.2).collect(),
        elapsed,
    })
}
