//! `sdedge`: host tools for early-exit networks on microcontrollers.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
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
        model: PathBuf,
        /// The main (deepest) exit, by output name; found automatically otherwise.
        #[arg(long)]
        main: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Quantize to int8, split into per-exit segments and write a bundle.
    Split {
        model: PathBuf,
        /// Output bundle (default: MODEL with extension .sde).
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[arg(long)]
        main: Option<String>,
        /// Data set for calibration (training split) and threshold tuning (validation split):
        /// `fashion-mnist` (Debian's dataset-fashion-mnist) or a folder of IDX files.
        #[arg(long, default_value = "fashion-mnist")]
        data: String,
        /// Training images used to calibrate activation ranges.
        #[arg(long, default_value_t = 2000)]
        calibration_images: usize,
        #[arg(long, value_enum, default_value = "entropy")]
        policy: Policy,
        /// Accuracy (percentage points) the default thresholds may lose against the main exit
        /// on the validation split.
        #[arg(long, default_value_t = 0.1)]
        max_drop: f64,
        #[arg(long)]
        json: bool,
    },
    /// Run the int8 runtime on a data set: per-exit exit rates and accuracy, MACs saved.
    Simulate {
        bundle: PathBuf,
        /// The float ONNX model, for float accuracy (default: the bundle's path with .onnx).
        #[arg(long)]
        onnx: Option<PathBuf>,
        #[arg(long, default_value = "fashion-mnist")]
        data: String,
        #[arg(long, value_enum, default_value = "test")]
        split: data::Split,
        /// Use only the first N images.
        #[arg(long)]
        limit: Option<usize>,
        /// Per-exit thresholds replacing the bundle's (comma-separated, one per exit).
        #[arg(long, value_delimiter = ',')]
        thresholds: Option<Vec<f32>>,
        #[arg(long, value_enum)]
        policy: Option<Policy>,
        #[arg(long)]
        json: bool,
    },
    /// Build firmware for a board with the bundle and test images embedded (ELF, .bin, .hex).
    Build {
        bundle: PathBuf,
        #[arg(long, value_parser = board_names())]
        board: String,
        #[arg(long, default_value = "fashion-mnist")]
        data: String,
        /// Test images embedded in the firmware.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Output folder for the ELF, .bin, .hex and inputs.
        #[arg(short, long, default_value = "target/firmware")]
        output: PathBuf,
    },
    /// Build, run on the board (QEMU: qemu-mps2-an386), check every result against the host
    /// simulation and report latency and memory.
    Run {
        bundle: PathBuf,
        #[arg(long, value_parser = board_names())]
        board: String,
        #[arg(long, default_value = "fashion-mnist")]
        data: String,
        #[arg(long, value_enum, default_value = "test")]
        split: data::Split,
        /// Test images to run.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(short, long, default_value = "target/firmware")]
        output: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Build and flash a real board with probe-rs, printing its log.
    Flash {
        bundle: PathBuf,
        #[arg(long, value_parser = board_names())]
        board: String,
        #[arg(long, default_value = "fashion-mnist")]
        data: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(short, long, default_value = "target/firmware")]
        output: PathBuf,
    },
    /// Latency and memory report from a device log (raw defmt bytes or decoded text).
    Report {
        log: PathBuf,
        /// The firmware ELF: decodes a raw defmt log and gives flash/RAM use.
        #[arg(long)]
        elf: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Choose per-exit thresholds on the validation split and store them in the bundle.
    Tune {
        bundle: PathBuf,
        #[arg(long, default_value = "fashion-mnist")]
        data: String,
        #[arg(long, value_enum, default_value = "entropy")]
        policy: Policy,
        /// Accuracy (percentage points) the thresholds may lose against the main exit.
        #[arg(long, default_value_t = 0.1)]
        max_drop: f64,
        #[arg(long)]
        json: bool,
    },
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
        Command::Build {
            bundle,
            board,
            data,
            limit,
            output,
        } => {
            let b = boards::find(&board)?;
            let bytes = simulate::read_bundle(&bundle)?;
            let (inputs, _) = device::inputs(&bytes, &data, data::Split::Test, limit)?;
            let fw = device::build(b, &bundle, &inputs, &output)?;
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
        Command::Flash {
            bundle,
            board,
            data,
            limit,
            output,
        } => {
            let b = boards::find(&board)?;
            if matches!(b.runner, boards::Runner::Qemu { .. }) {
                anyhow::bail!("--board {board} is emulated: use `sdedge run --board {board}`");
            }
            let bytes = simulate::read_bundle(&bundle)?;
            let (inputs, _) = device::inputs(&bytes, &data, data::Split::Test, limit)?;
            let fw = device::build(b, &bundle, &inputs, &output)?;
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
        Command::Report { log, elf, json } => {
            let (log, elf) = device::read_log(&log, elf.as_deref())?;
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
