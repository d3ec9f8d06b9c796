//! The device's log: defmt frames decoded against the firmware ELF (defmt-decoder), or text
//! already decoded by probe-rs / defmt-print, parsed into sdedge's records (see
//! `boards/app/src/lib.rs` for the messages).

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use defmt_decoder::{DecodeError, Table};
use serde::Serialize;

/// What the board's clock counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TickUnit {
    Cycles,
    Instructions,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceResult {
    pub input: usize,
    pub exit: usize,
    pub class: usize,
    pub macs: u64,
    /// Raw clock ticks of each segment run.
    pub ticks: Vec<u64>,
    /// The answering exit's int8 logits.
    pub logits: Vec<i8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceLog {
    pub board: String,
    pub unit: TickUnit,
    /// Clock ticks per second.
    pub hz: u64,
    pub bundle_bytes: u64,
    pub arena_bytes: u64,
    pub inputs: usize,
    pub exits: usize,
    /// (trunk, head) MACs per segment.
    pub segment_macs: Vec<(u64, u64)>,
    pub results: Vec<DeviceResult>,
    /// Stack high-water mark (bytes), when the run completed.
    pub stack_bytes: Option<u64>,
    /// Runs in the log (one per firmware build: `run` spreads many inputs over batches) and
    /// how many of them logged their end.
    pub runs: usize,
    pub finished_runs: usize,
    pub errors: Vec<String>,
}

impl DeviceLog {
    /// Every run logged its end and every announced input has a result.
    pub fn is_complete(&self) -> bool {
        self.finished_runs == self.runs && self.results.len() == self.inputs
    }

    /// Why the log is incomplete, for a warning; None when it is complete.
    pub fn incompleteness(&self) -> Option<String> {
        (!self.is_complete()).then(|| {
            format!(
                "incomplete log: {} of {} inputs have a result and {} of {} runs logged their end (device stopped early, or the log was cut)",
                self.results.len(),
                self.inputs,
                self.finished_runs,
                self.runs
            )
        })
    }
}

/// Decodes raw defmt frames with the ELF's table, one message per frame.
pub fn decode(elf: &[u8], raw: &[u8]) -> Result<Vec<String>> {
    let table = Table::parse(elf)
        .map_err(|e| anyhow!("reading the defmt table: {e}"))?
        .context("the ELF has no defmt data (is it sdedge firmware?)")?;
    let mut decoder = table.new_stream_decoder();
    decoder.received(raw);
    let mut lines = Vec::new();
    loop {
        match decoder.decode() {
            Ok(frame) => lines.push(frame.display_message().to_string()),
            Err(DecodeError::UnexpectedEof) => break,
            Err(DecodeError::Malformed) => {
                if table.encoding().can_recover() {
                    lines.push("sdedge-error malformed defmt frame".into());
                    continue;
                }
                bail!(
                    "malformed defmt frame after {} frames (log and ELF do not match?)",
                    lines.len()
                );
            }
        }
    }
    Ok(lines)
}

/// `key=value` pairs of a message; list values keep their brackets.
fn fields(msg: &str) -> HashMap<&str, &str> {
    let mut out = HashMap::new();
    let mut rest = msg;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].rsplit(' ').next().unwrap_or("");
        let after = &rest[eq + 1..];
        let end = if after.starts_with('[') {
            after.find(']').map_or(after.len(), |i| i + 1)
        } else {
            after.find(' ').unwrap_or(after.len())
        };
        out.insert(key, &after[..end]);
        rest = &after[end..];
    }
    out
}

fn num<T: std::str::FromStr>(f: &HashMap<&str, &str>, key: &str, line: &str) -> Result<T> {
    f.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("device log: field {key} missing or bad in `{line}`"))
}

fn list<T: std::str::FromStr>(f: &HashMap<&str, &str>, key: &str, line: &str) -> Result<Vec<T>> {
    let v = f
        .get(key)
        .ok_or_else(|| anyhow!("device log: field {key} missing in `{line}`"))?;
    v.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| anyhow!("device log: bad {key} value {s:?}"))
        })
        .collect()
}

/// One `sdedge-result` record; inputs are numbered across batches from `batch_base`.
fn result(f: &HashMap<&str, &str>, line: &str, batch_base: usize) -> Result<DeviceResult> {
    Ok(DeviceResult {
        input: batch_base + num::<usize>(f, "input", line)?,
        exit: num(f, "exit", line)?,
        class: num(f, "class", line)?,
        macs: num(f, "macs", line)?,
        ticks: list(f, "ticks", line)?,
        logits: list(f, "logits", line)?,
    })
}

/// Parses messages (from [`decode`] or a text log: anything before `sdedge-` on a line, such
/// as a level or timestamp, is skipped).
pub fn parse(lines: &[String]) -> Result<DeviceLog> {
    let mut log: Option<DeviceLog> = None;
    // Index of the first result of the current run: inputs are numbered across runs.
    let mut batch_base = 0;
    for (i, raw) in lines.iter().enumerate() {
        let Some(at) = raw.find("sdedge-") else {
            continue;
        };
        let line = raw[at..].trim();
        let f = fields(line);
        let kind = line.split(' ').next().unwrap_or("");
        if let (Some(l), "sdedge-start") = (log.as_mut(), kind) {
            // A further run (a batch of more inputs): its results follow the earlier ones.
            if f.get("board").copied() != Some(l.board.as_str()) {
                bail!("device log: runs of different boards mixed: `{line}`");
            }
            l.inputs += num::<usize>(&f, "inputs", line)?;
            l.runs += 1;
            batch_base = l.results.len();
            continue;
        }
        if kind == "sdedge-start" {
            let unit = match f.get("unit").copied() {
                Some("Cycles") => TickUnit::Cycles,
                Some("Instructions") => TickUnit::Instructions,
                other => bail!("device log: unknown clock unit {other:?}"),
            };
            log = Some(DeviceLog {
                board: f.get("board").unwrap_or(&"?").to_string(),
                unit,
                hz: num(&f, "hz", line)?,
                bundle_bytes: num(&f, "bundle", line)?,
                arena_bytes: num(&f, "arena", line)?,
                inputs: num(&f, "inputs", line)?,
                exits: num(&f, "exits", line)?,
                segment_macs: vec![],
                results: vec![],
                stack_bytes: None,
                runs: 1,
                finished_runs: 0,
                errors: vec![],
            });
            continue;
        }
        let Some(l) = log.as_mut() else {
            if kind == "sdedge-error" {
                bail!("device: {line}");
            }
            continue;
        };
        match kind {
            "sdedge-segment" => {
                // Later runs (batches) repeat the same segments.
                let index: usize = num(&f, "index", line)?;
                if index == l.segment_macs.len() {
                    l.segment_macs
                        .push((num(&f, "trunk_macs", line)?, num(&f, "head_macs", line)?));
                }
            }
            "sdedge-result" => {
                match result(&f, line, batch_base) {
                    Ok(r) => l.results.push(r),
                    // A log cut mid-line: the rest is missing, which makes it incomplete.
                    Err(_) if i + 1 == lines.len() => break,
                    Err(e) => return Err(e),
                }
            }
            "sdedge-done" => {
                let s: u64 = num(&f, "stack", line)?;
                l.stack_bytes = Some(l.stack_bytes.map_or(s, |t| t.max(s)));
                l.finished_runs += 1;
            }
            "sdedge-error" => l.errors.push(line.to_string()),
            _ => {}
        }
    }
    log.context("the log has no sdedge-start record (not an sdedge firmware log?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_with_prefixes_and_lists() {
        let lines: Vec<String> = [
            "INFO  sdedge-start board=nucleo-f411re unit=Cycles hz=100000000 bundle=103112 arena=15680 inputs=2 exits=3",
            "sdedge-segment index=0 trunk_macs=1016064 head_macs=226112",
            "0.1 INFO sdedge-result input=0 exit=1 class=9 macs=2166304 ticks=[10, 20] logits=[-3, 4, -128, 127]",
            "sdedge-result input=1 exit=0 class=2 macs=1242176 ticks=[11] logits=[1]",
            "sdedge-done inputs=2 stack=1024",
        ]
        .map(String::from)
        .to_vec();
        let log = parse(&lines).unwrap();
        assert_eq!(log.unit, TickUnit::Cycles);
        assert_eq!(log.hz, 100_000_000);
        assert_eq!(log.segment_macs, vec![(1_016_064, 226_112)]);
        assert_eq!(log.results.len(), 2);
        assert_eq!(log.results[0].ticks, vec![10, 20]);
        assert_eq!(log.results[0].logits, vec![-3, 4, -128, 127]);
        assert_eq!(log.results[1].exit, 0);
        assert_eq!(log.stack_bytes, Some(1024));
        assert!(log.is_complete());
        // Cut after the first result, or in the middle of the second: one input and the end
        // are missing.
        let mut cut_mid_line = lines[..4].to_vec();
        cut_mid_line[3].truncate(30);
        for cut in [&lines[..3], &cut_mid_line[..]] {
            let cut = parse(cut).unwrap();
            assert!(!cut.is_complete());
            let why = cut.incompleteness().unwrap();
            assert!(
                why.contains("1 of 2 inputs") && why.contains("0 of 1 runs"),
                "{why}"
            );
        }
        // A bad line that is not the last one is an error, not a cut.
        let mut bad = lines.clone();
        bad[2] = "sdedge-result input=0 exit=x".into();
        assert!(parse(&bad).is_err());
    }

    #[test]
    fn a_log_without_start_is_refused() {
        let e = parse(&["hello".to_string()]).unwrap_err();
        assert!(e.to_string().contains("sdedge-start"));
    }
}
