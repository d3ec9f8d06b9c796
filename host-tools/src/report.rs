//! Printing results: aligned tables for people, JSON (`--json`) for scripts.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::boards::Board;
use crate::device::{LatencyReport, RunReport};
use crate::firmware::{Firmware, Memory};
use crate::ir::Graph;
use crate::pipeline::{SegmentReport, SplitReport};
use crate::simulate::{SimulateReport, TuneReport};
use crate::tune::Evaluation;

fn json<T: Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn mmacs(m: f64) -> String {
    format!("{:.3}M", m / 1e6)
}

fn segments_table(segs: &[SegmentReport]) {
    // Percentages are of the network without early exits (trunk + main head).
    let full = segs.iter().map(|s| s.macs - s.head_macs).sum::<u64>()
        + segs.last().map_or(0, |s| s.head_macs);
    let pct_of_full = |m: u64| 100.0 * m as f64 / full.max(1) as f64;
    println!(
        "{:<3} {:<7} {:>4} {:>9} {:>9} {:>15} {:>7} {:>9}  branch point (HxWxC)",
        "seg", "exit", "ops", "MACs", "head", "to exit", "params", "peak act"
    );
    for (k, s) in segs.iter().enumerate() {
        let branch = match (&s.branch_point, s.branch_shape) {
            (Some(name), Some([h, w, c])) => format!("{name} ({h}x{w}x{c})"),
            _ => "(main exit)".to_string(),
        };
        println!(
            "{:<3} {:<7} {:>4} {:>9} {:>9} {:>15} {:>7} {:>8}B  {}",
            k,
            s.exit,
            s.ops,
            mmacs(s.macs as f64),
            mmacs(s.head_macs as f64),
            format!(
                "{} ({:.0}%)",
                mmacs(s.cumulative_macs as f64),
                pct_of_full(s.cumulative_macs)
            ),
            s.params,
            s.peak_activation_bytes,
            branch
        );
    }
    println!(
        "without early exits (trunk + main head): {} MACs; \"to exit\" counts the earlier exits' heads too",
        mmacs(full as f64)
    );
}

pub fn inspect(
    model: &Path,
    g: &Graph,
    segs: &[SegmentReport],
    arena: usize,
    as_json: bool,
) -> Result<()> {
    if as_json {
        #[derive(Serialize)]
        struct Inspect<'a> {
            model: String,
            input: [usize; 3],
            segments: &'a [SegmentReport],
            arena_bytes: usize,
        }
        let t = &g.tensors[g.input];
        return json(&Inspect {
            model: model.display().to_string(),
            input: [t.h, t.w, t.c],
            segments: segs,
            arena_bytes: arena,
        });
    }
    let t = &g.tensors[g.input];
    println!(
        "{}: input {}x{}x{}, {} exits (depth order), {} ops",
        model.display(),
        t.h,
        t.w,
        t.c,
        segs.len(),
        g.nodes.len()
    );
    segments_table(segs);
    for s in segs.iter().skip(1) {
        println!("  {} starts from: {}", s.exit, s.carried_in.join(", "));
    }
    println!("int8 arena for the whole bundle: {arena} bytes");
    Ok(())
}

pub fn split(r: &SplitReport, as_json: bool) -> Result<()> {
    if as_json {
        return json(r);
    }
    println!(
        "{} -> {} ({} bytes, arena {} bytes, calibrated on {} training images)",
        r.model, r.bundle, r.bundle_bytes, r.arena_bytes, r.calibration_images
    );
    segments_table(&r.exits);
    let v = &r.validation;
    println!(
        "default thresholds ({} policy, tuned on {} validation images): {}",
        r.policy,
        r.validation_images,
        fmt_thresholds(&r.early_exit_thresholds)
    );
    validation_line(v);
    Ok(())
}

/// Early-exit thresholds, then the main exit (which always answers).
fn fmt_thresholds(early: &[f32]) -> String {
    let mut parts: Vec<String> = early.iter().map(|v| format!("{v:.4}")).collect();
    parts.push("(main: always)".into());
    parts.join(", ")
}

fn validation_line(v: &Evaluation) {
    println!(
        "  validation: accuracy {} (main exit alone {}, {:+.2} pp), exits taken {}, average {} MACs",
        pct(v.accuracy),
        pct(v.main_accuracy),
        100.0 * (v.accuracy - v.main_accuracy),
        v.exit_share
            .iter()
            .map(|s| pct(*s))
            .collect::<Vec<_>>()
            .join(" / "),
        mmacs(v.avg_macs)
    );
}

pub fn simulate(r: &SimulateReport, as_json: bool) -> Result<()> {
    if as_json {
        return json(r);
    }
    println!(
        "{}: {} {} images, {} policy, thresholds {}",
        r.bundle,
        r.images,
        r.split,
        r.policy,
        fmt_thresholds(
            &r.exits
                .iter()
                .filter_map(|e| e.threshold)
                .collect::<Vec<_>>()
        )
    );
    println!(
        "{:<10} {:>9} {:>12} {:>14} {:>14} {:>16}",
        "exit", "leave here", "acc (taken)", "int8 (forced)", "float (tract)", "MACs to here"
    );
    for e in &r.exits {
        println!(
            "{:<10} {:>9} {:>12} {:>14} {:>14} {:>16}",
            e.exit,
            pct(e.share),
            e.accuracy_when_taken.map(pct).unwrap_or_else(|| "-".into()),
            pct(e.int8_accuracy),
            e.float_accuracy.map(pct).unwrap_or_else(|| "-".into()),
            format!(
                "{} ({:.0}%)",
                mmacs(e.cumulative_macs as f64),
                100.0 * e.cumulative_macs as f64 / r.full_macs as f64
            )
        );
    }
    println!(
        "early exit: accuracy {} (main exit alone {}, {:+.2} pp); average {} MACs of {} ({:.1}% fewer, {:.2}x speed-up)",
        pct(r.accuracy),
        pct(r.main_accuracy),
        100.0 * (r.accuracy - r.main_accuracy),
        mmacs(r.avg_macs),
        mmacs(r.full_macs as f64),
        100.0 * r.macs_saved,
        r.speedup
    );
    match r.tract_seconds {
        Some(t) => println!(
            "time ({} threads): sdedge runtime early exit {:.2} s, tract float ONNX {:.2} s (ratio {:.2})",
            r.threads,
            r.runtime_seconds,
            t,
            r.runtime_seconds / t
        ),
        None => println!("time ({} threads): sdedge runtime early exit {:.2} s (no ONNX given for float comparison)", r.threads, r.runtime_seconds),
    }
    Ok(())
}

pub fn tune(r: &TuneReport, as_json: bool) -> Result<()> {
    if as_json {
        return json(r);
    }
    println!(
        "{}: {} policy, thresholds {} (tuned on {} validation images)",
        r.bundle,
        r.policy,
        fmt_thresholds(&r.early_exit_thresholds),
        r.validation_images
    );
    let v = &r.validation;
    validation_line(v);
    Ok(())
}

pub fn built(board: &Board, fw: &Firmware, m: &Memory) {
    println!("{} ({}):", board.name, board.describe);
    println!(
        "  {}\n  {}\n  {}",
        fw.elf.display(),
        fw.bin.display(),
        fw.hex.display()
    );
    println!(
        "  flash {} of {} bytes ({:.0}%), static RAM {} of {} bytes (arena {})",
        m.flash,
        board.flash_bytes,
        100.0 * m.flash as f64 / board.flash_bytes as f64,
        m.ram_static,
        board.ram_bytes,
        m.arena
    );
}

pub fn latency(r: &LatencyReport, as_json: bool) -> Result<()> {
    if as_json {
        return json(r);
    }
    let unit = r.unit;
    let clock = r
        .clock_hz
        .map(|h| format!(" at {:.0} MHz", h as f64 / 1e6))
        .unwrap_or_else(|| " (QEMU -icount: instructions, not cycles)".into());
    println!("{}: {} inputs, {unit}{clock}", r.board, r.inputs);
    println!(
        "{:<8} {:>10} {:>6} {:>14} {:>12}",
        "segment",
        "MACs",
        "runs",
        format!("mean {unit}"),
        format!("{unit}/MAC")
    );
    for s in &r.segments {
        println!(
            "{:<8} {:>10} {:>6} {:>14.0} {:>12.2}",
            s.segment, s.macs, s.runs, s.mean, s.per_mac
        );
    }
    // Microseconds only where the ticks are real cycles at a known clock.
    let us_head = if r.clock_hz.is_some() { "µs" } else { "" };
    let head = format!(
        "{:<8} {:>8} {:>14} {:>10}",
        "exit",
        "taken",
        format!("mean {unit}"),
        us_head
    );
    println!("{}", head.trim_end());
    for e in &r.exits {
        let row = format!(
            "{:<8} {:>8} {:>14.0} {:>10}",
            e.exit,
            format!("{:.1}%", 100.0 * e.share),
            e.mean,
            e.micros.map(|u| format!("{u:.0}")).unwrap_or_default()
        );
        println!("{}", row.trim_end());
    }
    println!(
        "average per input {:.0} {unit}; every segment {:.0}; without early exits (est.) {:.0}: {:.2}x speed-up",
        r.average, r.all_segments, r.without_early_exits, r.speedup
    );
    if let Some(m) = &r.memory {
        let of = |v: Option<u64>| v.map(|b| format!(" of {b}")).unwrap_or_default();
        println!(
            "flash {} bytes{} (.text {}: sdedge runtime + app at most {}, runtime functions not inlined {}; .rodata {} incl. bundle {})",
            m.flash_total,
            of(m.board_flash),
            m.elf.text,
            m.elf.sdedge_text,
            m.elf.runtime_text,
            m.elf.rodata,
            m.bundle_bytes
        );
        println!(
            "RAM {} bytes{} (static {} incl. arena {}; stack high-water {})",
            m.ram_total,
            of(m.board_ram),
            m.elf.ram_static,
            m.elf.arena,
            m.stack_bytes
                .map(|s| s.to_string())
                .unwrap_or_else(|| "?".into())
        );
    }
    Ok(())
}

pub fn run(r: &RunReport, as_json: bool) -> Result<()> {
    if as_json {
        return json(r);
    }
    println!(
        "{}: {} inputs, {} identical to the host simulation (exit, class, logits), accuracy {}",
        r.board,
        r.inputs,
        r.matching,
        pct(r.accuracy)
    );
    for m in r.mismatches.iter().take(20) {
        println!(
            "  input {}: device exit {} class {} logits {:?}; host exit {} class {} logits {:?}",
            m.input, m.device.0, m.device.1, m.device.2, m.host.0, m.host.1, m.host.2
        );
    }
    println!(
        "firmware {}, log {} (`sdedge report {} --elf {}` prints the report below again)",
        r.elf.display(),
        r.log.display(),
        r.log.display(),
        r.elf.display()
    );
    latency(&r.latency, false)
}
