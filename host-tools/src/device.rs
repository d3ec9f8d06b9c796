//! `sdedge build`, `run`, `flash` and `report`: firmware on a board (or QEMU), its log checked
//! against the host simulation, and latency and memory reports.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use sdedge_runtime::{Model, NoClock, Options};
use serde::Serialize;

use crate::boards::{self, Board, Runner};
use crate::data::{self, Split};
use crate::devicelog::{self, DeviceLog, TickUnit};
use crate::firmware::{self, Firmware, Memory};
use crate::simulate::read_bundle;

/// QEMU's -icount shift: each instruction advances virtual time by 2^6 ns, so SysTick's 40 ns
/// ticks resolve single instructions.
pub const ICOUNT_SHIFT: u32 = 6;

/// Quantized test images for the firmware, and their labels.
pub fn inputs(bundle: &[u8], data: &str, split: Split, limit: usize) -> Result<(Vec<i8>, Vec<u8>)> {
    let model = Model::parse(bundle).map_err(|e| anyhow!("{e}"))?;
    let ds = data::load(data, split)?.truncate(Some(limit));
    let n = model.input().map_err(|e| anyhow!("{e}"))?.len();
    let mut out = vec![0i8; ds.len() * n];
    for i in 0..ds.len() {
        model
            .quantize_u8_image(ds.image(i), &mut out[i * n..(i + 1) * n])
            .map_err(|e| anyhow!("image {i}: {e}"))?;
    }
    Ok((out, ds.labels))
}

/// Builds firmware after checking the model fits the board.
pub fn build(board: &Board, bundle_path: &Path, inputs: &[i8], out_dir: &Path) -> Result<Firmware> {
    let bundle = read_bundle(bundle_path)?;
    let model = Model::parse(&bundle).map_err(|e| anyhow!("{e}"))?;
    firmware::check_fit(
        board,
        bundle.len() as u64,
        inputs.len() as u64,
        model.arena_size() as u64,
    )?;
    firmware::build(board, bundle_path, inputs, out_dir)
}

/// Runs a built firmware and returns its log lines (decoded defmt messages).
pub fn execute(board: &Board, fw: &Firmware, timeout: Duration) -> Result<(Vec<String>, bool)> {
    firmware::check_tools(board, true)?;
    let mut cmd = match board.runner {
        Runner::Qemu { machine, cpu } => {
            let mut c = Command::new("qemu-system-arm");
            c.args([
                "-M", machine, "-cpu", cpu, "-display", "none", "-monitor", "none",
            ])
            .args([
                "-serial",
                "null",
                "-semihosting-config",
                "enable=on,target=native",
            ])
            .args([
                "-icount",
                &format!("shift={ICOUNT_SHIFT},sleep=off"),
                "-kernel",
            ])
            .arg(&fw.elf);
            c
        }
        Runner::ProbeRs { chip } => {
            let mut c = Command::new("probe-rs");
            c.args(["run", "--chip", chip]).arg(&fw.elf);
            c
        }
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the board runner")?;
    let mut stdout = child.stdout.take().context("runner stdout")?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let raw = reader
        .join()
        .map_err(|_| anyhow!("reading the runner's output"))?;
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    std::fs::write(fw.elf.with_extension("log"), &raw)?;
    let lines = match board.runner {
        Runner::Qemu { .. } => devicelog::decode(&std::fs::read(&fw.elf)?, &raw)?,
        Runner::ProbeRs { .. } => String::from_utf8_lossy(&raw)
            .lines()
            .map(String::from)
            .collect(),
    };
    match status {
        None => bail!(
            "{} did not finish within {} s (hung or faulted; log so far: {} lines)",
            board.name,
            timeout.as_secs(),
            lines.len()
        ),
        Some(s) if !s.success() => {
            let device_errors: Vec<&String> = lines
                .iter()
                .filter(|l| l.contains("sdedge-error"))
                .collect();
            let why = match device_errors.first() {
                Some(e) => e.to_string(),
                None => stderr.lines().last().unwrap_or("no output").to_string(),
            };
            bail!("{} exited with {s}: {why}", board.name)
        }
        Some(_) => Ok((lines, true)),
    }
}

/// One input where device and host disagree.
#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    pub input: usize,
    pub device: (usize, usize, Vec<i8>),
    pub host: (usize, usize, Vec<i8>),
}

/// Runs the host simulation on the same inputs and compares exit, class and logits.
pub fn compare(bundle: &[u8], inputs: &[i8], log: &DeviceLog) -> Result<Vec<Mismatch>> {
    let model = Model::parse(bundle).map_err(|e| anyhow!("{e}"))?;
    let n = model.input().map_err(|e| anyhow!("{e}"))?.len();
    let count = inputs.len() / n;
    if log.results.len() != count {
        bail!(
            "the device reported {} results for {count} inputs",
            log.results.len()
        );
    }
    let mut arena = vec![0u8; model.arena_size()];
    let mut out = Vec::new();
    for (i, d) in log.results.iter().enumerate() {
        let mut logits = Vec::new();
        let o = model
            .run(
                &inputs[i * n..(i + 1) * n],
                &mut arena,
                &Options::default(),
                &mut NoClock,
                |r| logits = r.logits.to_vec(),
            )
            .map_err(|e| anyhow!("host, input {i}: {e}"))?;
        let host = (o.exit, o.class, logits);
        let device = (d.exit, d.class, d.logits.clone());
        if d.input != i || host != device {
            out.push(Mismatch {
                input: i,
                device,
                host,
            });
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct SegmentLatency {
    pub segment: usize,
    pub macs: u64,
    pub runs: usize,
    /// Mean instructions (QEMU) or cycles (real boards) of this segment.
    pub mean: f64,
    pub per_mac: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExitLatency {
    pub exit: usize,
    pub taken: usize,
    pub share: f64,
    /// Mean instructions or cycles of inputs answered here.
    pub mean: f64,
    /// Microseconds at the board's clock (cycles only).
    pub micros: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    pub board: String,
    /// "instructions" under QEMU, "cycles" on real boards.
    pub unit: &'static str,
    pub clock_hz: Option<u64>,
    pub inputs: usize,
    pub segments: Vec<SegmentLatency>,
    pub exits: Vec<ExitLatency>,
    /// Mean per input with early exit.
    pub average: f64,
    /// Every segment run (all exits evaluated).
    pub all_segments: f64,
    /// Estimated network without early exits: each segment's mean scaled by its trunk share
    /// of MACs, plus the main segment.
    pub without_early_exits: f64,
    pub speedup: f64,
    pub memory: Option<MemoryReport>,
    /// False when the log ends before its runs did (see [`DeviceLog::incompleteness`]).
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    pub elf: Memory,
    pub bundle_bytes: u64,
    pub stack_bytes: Option<u64>,
    pub flash_total: u64,
    pub ram_total: u64,
    pub board_flash: Option<u64>,
    pub board_ram: Option<u64>,
}

/// Clock ticks to the reported unit.
fn to_units(log: &DeviceLog, ticks: u64) -> f64 {
    match log.unit {
        TickUnit::Cycles => ticks as f64,
        TickUnit::Instructions => {
            ticks as f64 * (1e9 / log.hz as f64) / f64::from(1u32 << ICOUNT_SHIFT)
        }
    }
}

pub fn latency(log: &DeviceLog, elf: Option<&[u8]>) -> Result<LatencyReport> {
    if log.results.is_empty() {
        bail!("the device log has no results");
    }
    let n_seg = log.exits.max(log.segment_macs.len());
    let mut sums = vec![(0f64, 0usize); n_seg];
    let mut exits = vec![(0usize, 0f64); n_seg];
    for r in &log.results {
        let mut total = 0.0;
        for (k, &t) in r.ticks.iter().enumerate().take(n_seg) {
            let u = to_units(log, t);
            sums[k].0 += u;
            sums[k].1 += 1;
            total += u;
        }
        if r.exit < n_seg {
            exits[r.exit].0 += 1;
            exits[r.exit].1 += total;
        }
    }
    let segments: Vec<SegmentLatency> = (0..n_seg)
        .map(|k| {
            let macs = log.segment_macs.get(k).map_or(0, |m| m.0 + m.1);
            let mean = if sums[k].1 > 0 {
                sums[k].0 / sums[k].1 as f64
            } else {
                0.0
            };
            SegmentLatency {
                segment: k,
                macs,
                runs: sums[k].1,
                mean,
                per_mac: if macs > 0 { mean / macs as f64 } else { 0.0 },
            }
        })
        .collect();
    let n = log.results.len() as f64;
    let hz = (log.unit == TickUnit::Cycles).then_some(log.hz);
    let exit_rows = exits
        .iter()
        .enumerate()
        .map(|(k, &(taken, sum))| {
            let mean = if taken > 0 { sum / taken as f64 } else { 0.0 };
            ExitLatency {
                exit: k,
                taken,
                share: taken as f64 / n,
                mean,
                micros: hz.map(|h| mean / h as f64 * 1e6),
            }
        })
        .collect();
    let average = exits.iter().map(|e| e.1).sum::<f64>() / n;
    let all_segments: f64 = segments.iter().map(|s| s.mean).sum();
    let without: f64 = segments
        .iter()
        .enumerate()
        .map(|(k, s)| match log.segment_macs.get(k) {
            Some(&(trunk, head)) if k + 1 < n_seg && trunk + head > 0 => {
                s.mean * trunk as f64 / (trunk + head) as f64
            }
            _ => s.mean,
        })
        .sum();
    let memory = match elf {
        Some(elf) => {
            let m = firmware::memory(elf)?;
            let board = boards::find(&log.board).ok();
            Some(MemoryReport {
                flash_total: m.flash,
                ram_total: m.ram_static + log.stack_bytes.unwrap_or(0),
                bundle_bytes: log.bundle_bytes,
                stack_bytes: log.stack_bytes,
                board_flash: board.map(|b| b.flash_bytes),
                board_ram: board.map(|b| b.ram_bytes),
                elf: m,
            })
        }
        None => None,
    };
    Ok(LatencyReport {
        board: log.board.clone(),
        unit: match log.unit {
            TickUnit::Cycles => "cycles",
            TickUnit::Instructions => "instructions",
        },
        clock_hz: hz,
        inputs: log.results.len(),
        segments,
        exits: exit_rows,
        average,
        all_segments,
        without_early_exits: without,
        speedup: if average > 0.0 {
            without / average
        } else {
            0.0
        },
        memory,
        complete: log.is_complete(),
    })
}

/// Reads a device log: raw defmt bytes (decoded with the ELF) or decoded text.
pub fn read_log(path: &Path, elf: Option<&Path>) -> Result<(DeviceLog, Option<Vec<u8>>)> {
    let raw = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let elf_bytes = match elf {
        Some(p) => {
            let bytes =
                std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?;
            let mem = firmware::memory(&bytes).with_context(|| p.display().to_string())?;
            Some((bytes, mem))
        }
        None => None,
    };
    let text = std::str::from_utf8(&raw).ok();
    let lines = match (text, &elf_bytes, elf) {
        (Some(t), _, _) if t.contains("sdedge-start") => t.lines().map(String::from).collect(),
        (_, Some((bytes, _)), Some(elf)) => devicelog::decode(bytes, &raw)
            .with_context(|| format!("{}: decoding with {}", path.display(), elf.display()))?,
        (Some(_), _, _) => bail!(
            "{}: not an sdedge device log (no sdedge-start line; a raw defmt log needs --elf FIRMWARE)",
            path.display()
        ),
        (None, _, _) => bail!(
            "{}: a binary defmt log needs the firmware to decode it: pass --elf FIRMWARE",
            path.display()
        ),
    };
    let log = devicelog::parse(&lines).with_context(|| path.display().to_string())?;
    if let (Some((_, mem)), Some(elf)) = (&elf_bytes, elf) {
        check_elf_matches(&log, mem).with_context(|| {
            format!(
                "{} does not belong to the log {}",
                elf.display(),
                path.display()
            )
        })?;
    }
    Ok((log, elf_bytes.map(|(bytes, _)| bytes)))
}

/// The ELF must be the firmware that wrote the log: same board, same arena.
fn check_elf_matches(log: &DeviceLog, m: &Memory) -> Result<()> {
    let board = m
        .board
        .context("it is not sdedge firmware (no board entry point in its symbols)")?;
    if board != log.board {
        bail!("it is firmware for {board}, the log is from {}", log.board);
    }
    if m.arena != log.arena_bytes {
        bail!(
            "its arena is {} bytes, the log's model needs {}",
            m.arena,
            log.arena_bytes
        );
    }
    Ok(())
}

#[derive(Serialize)]
pub struct RunReport {
    pub board: String,
    pub elf: PathBuf,
    /// The decoded log of every batch (text; `sdedge report` reads it).
    pub log: PathBuf,
    pub inputs: usize,
    /// Firmware builds the inputs were spread over (flash holds a limited number).
    pub batches: usize,
    /// Device answers equal to the host simulation's (exit, class and logits).
    pub matching: usize,
    pub mismatches: Vec<Mismatch>,
    pub accuracy: f64,
    pub latency: LatencyReport,
}

pub fn run(
    board_name: &str,
    bundle_path: &Path,
    data: &str,
    split: Split,
    limit: usize,
    out_dir: &Path,
) -> Result<RunReport> {
    let board = boards::find(board_name)?;
    firmware::check_tools(board, true)?;
    let bundle = read_bundle(bundle_path)?;
    let (inputs, labels) = inputs(&bundle, data, split, limit)?;
    if labels.is_empty() {
        bail!("no inputs to run");
    }
    let input_len = inputs.len() / labels.len();
    // Inputs are embedded in flash; more than fit run in equal batches, one firmware each.
    let room = board
        .flash_bytes
        .saturating_sub(bundle.len() as u64 + firmware::CODE_RESERVE)
        / input_len as u64;
    let room = (room as usize).max(1);
    let batches = labels.len().div_ceil(room);
    let per_batch = labels.len().div_ceil(batches);
    let mut lines = Vec::new();
    let mut fw = None;
    for chunk in inputs.chunks(per_batch * input_len) {
        let built = build(board, bundle_path, chunk, out_dir)?;
        // About 0.1 s of QEMU per input at most for this model class, plus start-up.
        let timeout = Duration::from_secs(30 + (chunk.len() / input_len) as u64 / 5);
        let (batch_lines, _) = execute(board, &built, timeout)?;
        lines.extend(batch_lines);
        fw = Some(built);
    }
    let fw = fw.context("no firmware built")?;
    let log_path = fw.elf.with_extension("txt");
    std::fs::write(&log_path, lines.join("\n"))?;
    let log = devicelog::parse(&lines)?;
    if !log.errors.is_empty() {
        bail!("{}: {}", board.name, log.errors[0]);
    }
    let mismatches = compare(&bundle, &inputs, &log)?;
    let right = log
        .results
        .iter()
        .zip(&labels)
        .filter(|(r, &l)| r.class == usize::from(l))
        .count();
    let elf = std::fs::read(&fw.elf)?;
    Ok(RunReport {
        board: board.name.to_string(),
        log: log_path,
        elf: fw.elf,
        inputs: labels.len(),
        batches,
        matching: labels.len() - mismatches.len(),
        mismatches,
        accuracy: right as f64 / labels.len().max(1) as f64,
        latency: latency(&log, Some(&elf))?,
    })
}
