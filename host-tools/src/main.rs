//! `sdedge`: host tools for early-exit networks on microcontrollers.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use sdedge::{boards, data, device, pipeline, report, simulate};
use sdedge_runtime::PolicyKind;

#[derive(Parser)]
#[command(
    name = "sdedge",
    version,
    about = "Split, quantize and simulate early-exit networks for microcontrollers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Policy {
    /// Exit when the softmax entropy is at most the threshold.
    Entropy,
    /// Exit when the top softmax probability is at least the threshold.
    MaxProb,
}

impl From<Policy> for PolicyKind {
    fn from(p: Policy) -> PolicyKind {
        match p {
            Policy::Entropy => PolicyKind::Entropy,
            Policy::MaxProb => PolicyKind::MaxProb,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Show exits, branch points and per-segment cost of an ONNX model.
    Inspect {
        /// A branched ONNX model: one graph output (logits) per exit.
        model: PathBuf,
        /// The main (deepest) exit, by output name; found automatically otherwise.
        #[arg(long)]
        main: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Quantize to int8, split into per-exit segments and write a bundle.
    Split {
        /// A branched ONNX model: one graph output (logits) per exit.
        model: PathBuf,
        /// Output bundle (default: MODEL with extension .sde).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The main (deepest) exit, by output name; found automatically otherwise.
        #[arg(long)]
        main: Option<String>,
        /// Data set for calibration (training split) and threshold tuning (validation split):
        /// `fashion-mnist` (Debian's dataset-fashion-mnist) or a folder of IDX files.
        #[arg(long, default_value = "fashion-mnist")]
        data: String,
        /// Training images used to calibrate activation ranges.
        #[arg(long, default_value_t = 2000)]
        calibration_images: usize,
        /// How an exit measures its confidence.
        #[arg(long, value_enum, default_value = "entropy")]
        policy: Policy,
        /// Accuracy (percentage points, >= 0) the default thresholds may lose against the main
        /// exit on the validation split.
        #[arg(long, default_value_t = 0.1, value_parser = percentage_points)]
        max_drop: f64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the int8 runtime on a data set: per-exit exit rates and accuracy, MACs saved.
    Simulate {
        /// A bundle written by `sdedge split`.
        bundle: PathBuf,
        /// The float ONNX model, for float accuracy (default: the bundle's path with .onnx).
        #[arg(long)]
        onnx: Option<PathBuf>,
        /// `fashion-mnist` (Debian's dataset-fashion-mnist) or a folder of IDX files.
        #[arg(long, default_value = "fashion-mnist")]
        data: String,
        #[arg(long, value_enum, default_value = "test")]
        split: data::Split,
        /// Use only the first N images.
        #[arg(long)]
        limit: Option<usize>,
        /// Thresholds replacing the bundle's: one per early exit, comma-separated.
        #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
        thresholds: Option<Vec<f32>>,
        /// Confidence measure (default: the bundle's; another one needs --thresholds).
        #[arg(long, value_enum)]
        policy: Option<Policy>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Build firmware for a board with the bundle and test images embedded (ELF, .bin, .hex).
    Build(FirmwareArgs),
    /// Build and run on a board (qemu-mps2-an386 under QEMU, a real board through probe-rs),
    /// check every result against the host simulation, report latency and memory.
    Run {
        /// A bundle written by `sdedge split`.
        bundle: PathBuf,
        #[arg(long, value_parser = board_names())]
        board: String,
        /// `fashion-mnist` (Debian's dataset-fashion-mnist) or a folder of IDX files.
        #[arg(long, default_value = "fashion-mnist")]
        data: String,
        #[arg(long, value_enum, default_value = "test")]
        split: data::Split,
        /// Images of the split to run (more than fit in flash run in batches).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Output folder for the firmware and the device log.
        #[arg(short, long, default_value = "target/firmware")]
        output: PathBuf,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Build and flash a real board with probe-rs, print its log's latency and memory report
    /// (`run` does the same and also checks the results against the host).
    Flash(FirmwareArgs),
    /// Latency and memory report from a device log (raw defmt bytes or decoded text).
    Report {
        /// The device log: decoded text (`BOARD.txt` from `run`/`flash`, probe-rs output) or
        /// raw defmt bytes (`BOARD.log`, needs --elf).
        log: PathBuf,
        /// The firmware ELF that wrote the log: decodes a raw defmt log and gives flash/RAM use.
        #[arg(long)]
        elf: Option<PathBuf>,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Choose per-exit thresholds on the validation split and store them in the bundle.
    Tune {
        /// A bundle written by `sdedge split` (rewritten in place).
        bundle: PathBuf,
        /// `fashion-mnist` (Debian's dataset-fashion-mnist) or a folder of IDX files.
        #[arg(long, default_value = "fashion-mnist")]
        data: String,
        /// How an exit measures its confidence.
        #[arg(long, value_enum, default_value = "entropy")]
        policy: Policy,
        /// Accuracy (percentage points, >= 0) the thresholds may lose against the main exit.
        #[arg(long, default_value_t = 0.1, value_parser = percentage_points)]
        max_drop: f64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// What `build` and `flash` put into a firmware.
#[derive(Args)]
struct FirmwareArgs {
    /// A bundle written by `sdedge split`.
    bundle: PathBuf,
    #[arg(long, value_parser = board_names())]
    board: String,
    /// `fashion-mnist` (Debian's dataset-fashion-mnist) or a folder of IDX files.
    #[arg(long, default_value = "fashion-mnist")]
    data: String,
    /// Test images embedded in the firmware.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Output folder for the ELF, .bin, .hex, the inputs and (after flash) the device log.
    #[arg(short, long, default_value = "target/firmware")]
    output: PathBuf,
}

/// Builds the firmware `a` describes, with the first `a.limit` test images embedded.
fn build_firmware(a: &FirmwareArgs, board: &boards::Board) -> Result<sdedge::firmware::Firmware> {
    let bytes = simulate::read_bundle(&a.bundle)?;
    let (inputs, _) = device::inputs(&bytes, &a.data, data::Split::Test, a.limit)?;
    device::build(board, &a.bundle, &inputs, &a.output)
}

/// A non-negative number of percentage points.
fn percentage_points(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("{v} is not between 0 and 100 percentage points"));
    }
    Ok(v)
}

fn board_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(boards::BOARDS.iter().map(|b| b.name))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect { model, main, json } => {
            let (loaded, split, sched) = pipeline::analyse(&model, main.as_deref())?;
            let segs = pipeline::segment_reports(&loaded.graph, &split, &sched);
            report::inspect(&model, &loaded.graph, &segs, sched.arena_size, json)
        }
        Command::Split {
            model,
            output,
            main,
            data,
            calibration_images,
            policy,
            max_drop,
            json,
        } => {
            let out = output.unwrap_or_else(|| model.with_extension("sde"));
            let opts = pipeline::SplitOptions {
                main: main.as_deref(),
                data: &data,
                calibration_images,
                policy: policy.into(),
                max_drop: max_drop / 100.0,
                tune_limit: None,
            };
            let r = pipeline::split(&model, &out, &opts)?;
            report::split(&r, json)
        }
        Command::Simulate {
            bundle,
            onnx,
            data,
            split,
            limit,
            thresholds,
            policy,
            json,
        } => {
            let opts = simulate::SimulateOptions {
                onnx,
                data: &data,
                split,
                limit,
                thresholds,
                policy: policy.map(Into::into),
            };
            let r = simulate::simulate(&bundle, &opts)?;
            report::simulate(&r, json)
        }
        Command::Build(a) => {
            let b = boards::find(&a.board)?;
            let fw = build_firmware(&a, b)?;
            let elf = std::fs::read(&fw.elf)?;
            let mem = sdedge::firmware::memory(&elf)?;
            report::built(b, &fw, &mem);
            Ok(())
        }
        Command::Run {
            bundle,
            board,
            data,
            split,
            limit,
            output,
            json,
        } => {
            let r = device::run(&board, &bundle, &data, split, limit, &output)?;
            if r.inputs < limit {
                eprintln!(
                    "note: --limit {limit}: the {split} split has {} images; ran all of them",
                    r.inputs
                );
            }
            report::run(&r, json)?;
            if !r.mismatches.is_empty() {
                anyhow::bail!(
                    "{} of {} inputs differ between {} and the host simulation",
                    r.mismatches.len(),
                    r.inputs,
                    r.board
                );
            }
            Ok(())
        }
        Command::Flash(a) => {
            let b = boards::find(&a.board)?;
            if matches!(b.runner, boards::Runner::Qemu { .. }) {
                let board = &a.board;
                anyhow::bail!("--board {board} is emulated: use `sdedge run --board {board}`");
            }
            // Before the build: without probe-rs there is nothing to flash with.
            sdedge::firmware::check_tools(b, true)?;
            let fw = build_firmware(&a, b)?;
            let timeout = std::time::Duration::from_secs(120);
            let (lines, _) = device::execute(b, &fw, timeout)?;
            let log_path = fw.elf.with_extension("txt");
            std::fs::write(&log_path, lines.join("\n"))?;
            let log = sdedge::devicelog::parse(&lines)?;
            let elf = std::fs::read(&fw.elf)?;
            report::latency(&device::latency(&log, Some(&elf))?, false)?;
            println!("log saved to {}", log_path.display());
            Ok(())
        }
        Command::Report {
            log: log_path,
            elf,
            json,
        } => {
            let (log, elf) = device::read_log(&log_path, elf.as_deref())?;
            if let Some(why) = log.incompleteness() {
                eprintln!("warning: {}: {why}", log_path.display());
            }
            report::latency(&device::latency(&log, elf.as_deref())?, json)
        }
        Command::Tune {
            bundle,
            data,
            policy,
            max_drop,
            json,
        } => {
            let r = simulate::tune_bundle(&bundle, &data, policy.into(), max_drop / 100.0)?;
            report::tune(&r, json)
        }
    }
}

fn main() -> ExitCode {
    // `sdedge ... | head` ends quietly, like other Unix tools, instead of panicking on a
    // closed stdout (Rust ignores SIGPIPE by default).
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the outermost context first, then its causes.
            let msg = e
                .chain()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
