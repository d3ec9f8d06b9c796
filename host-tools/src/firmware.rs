//! Building firmware for a board (cargo in `boards/`), checking it fits, and reading its ELF.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind};
use serde::Serialize;

use crate::boards::{Board, Runner};

/// Flash kept for code and tables when checking a model fits before building (the runtime,
/// app and HAL are about 20-40 KiB in release builds).
pub const CODE_RESERVE: u64 = 48 * 1024;
/// RAM kept for the stack and static data when checking a model fits before building.
pub const STACK_RESERVE: u64 = 8 * 1024;

/// The `boards/` workspace: $SDEDGE_BOARDS_DIR, else the one next to this crate's sources.
pub fn boards_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("SDEDGE_BOARDS_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards"),
    };
    if !dir.join("Cargo.toml").is_file() {
        bail!(
            "{}: no boards workspace there (set SDEDGE_BOARDS_DIR to sdedge's boards/ folder)",
            dir.display()
        );
    }
    Ok(dir.canonicalize()?)
}

/// Checks the tools a board needs, with the command that installs what is missing.
pub fn check_tools(board: &Board, running: bool) -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == board.target)
        })
        .unwrap_or(false);
    if !installed {
        bail!(
            "the Rust target {} for {} is not installed: run `rustup target add {}`",
            board.target,
            board.name,
            board.target
        );
    }
    if running {
        let (tool, install) = match board.runner {
            Runner::Qemu { .. } => ("qemu-system-arm", "sudo apt-get install qemu-system-arm"),
            Runner::ProbeRs { .. } => ("probe-rs", "cargo install probe-rs-tools --locked"),
        };
        let found = Command::new(tool).arg("--version").output().is_ok();
        if !found {
            bail!("{tool} not found: install it with `{install}`");
        }
    }
    Ok(())
}

/// Refuses, with the numbers, a model that cannot fit the board.
pub fn check_fit(board: &Board, bundle: u64, inputs: u64, arena: u64) -> Result<()> {
    let flash = bundle + inputs + CODE_RESERVE;
    if flash > board.flash_bytes {
        bail!(
            "the model does not fit {}: flash needs at least {flash} bytes (bundle {bundle} + inputs {inputs} + code {CODE_RESERVE}), the board has {}",
            board.name,
            board.flash_bytes
        );
    }
    let ram = arena + STACK_RESERVE;
    if ram > board.ram_bytes {
        bail!(
            "the model does not fit {}: RAM needs at least {ram} bytes (arena {arena} + stack and statics {STACK_RESERVE}), the board has {}",
            board.name,
            board.ram_bytes
        );
    }
    Ok(())
}

pub struct Firmware {
    pub elf: PathBuf,
    pub bin: PathBuf,
    pub hex: PathBuf,
}

/// A deliberate fault compiled into the firmware, raised after its start line: for tests that
/// prove a fault on the device ends the run with a failure.
#[derive(Clone, Copy, Debug)]
pub enum InjectFault {
    HardFault,
    Panic,
    Hang,
}

impl InjectFault {
    fn env_value(self) -> &'static str {
        match self {
            InjectFault::HardFault => "hardfault",
            InjectFault::Panic => "panic",
            InjectFault::Hang => "hang",
        }
    }
}

/// Builds `board`'s firmware with `bundle` and `inputs` embedded; copies the ELF, a raw .bin
/// and an Intel .hex into `out_dir`.
pub fn build(board: &Board, bundle: &Path, inputs: &[i8], out_dir: &Path) -> Result<Firmware> {
    build_with_fault(board, bundle, inputs, out_dir, None)
}

/// [`build`], with a deliberate fault compiled in.
pub fn build_with_fault(
    board: &Board,
    bundle: &Path,
    inputs: &[i8],
    out_dir: &Path,
    fault: Option<InjectFault>,
) -> Result<Firmware> {
    // Builds of one board share cargo's output path: one at a time, or one build's ELF could be
    // copied out as another's.
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    check_tools(board, false)?;
    let dir = boards_dir()?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let inputs_path = out_dir.join(format!("{}-inputs.bin", board.name));
    let raw: Vec<u8> = inputs.iter().map(|&v| v as u8).collect();
    std::fs::write(&inputs_path, raw)?;
    let bundle = bundle
        .canonicalize()
        .with_context(|| format!("{}: cannot read", bundle.display()))?;
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "-p",
            board.package,
            "--target",
            board.target,
        ])
        .current_dir(&dir)
        // The firmware workspace has its own target dir and flags.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env("SDEDGE_BUNDLE", &bundle)
        .env("SDEDGE_INPUTS", inputs_path.canonicalize()?)
        // Always set, so a stray variable in the user's environment cannot leak in.
        .env(
            "SDEDGE_INJECT_FAULT",
            fault.map_or("", InjectFault::env_value),
        )
        .output()
        .context("running cargo to build the firmware")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if let Some(line) = err
            .lines()
            .find(|l| l.contains("will not fit in region") || l.contains("overflowed by"))
        {
            bail!(
                "the firmware does not fit {} ({} bytes flash, {} bytes RAM): linker says: {}",
                board.name,
                board.flash_bytes,
                board.ram_bytes,
                line.trim().trim_start_matches("rust-lld: error: ")
            );
        }
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        bail!(
            "building firmware for {} failed:\n{}",
            board.name,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let built = dir
        .join("target")
        .join(board.target)
        .join("release")
        .join(board.package);
    let elf = out_dir.join(format!("{}.elf", board.name));
    std::fs::copy(&built, &elf).with_context(|| format!("copying {}", built.display()))?;
    let data = std::fs::read(&elf)?;
    let image = flash_image(&data)?;
    let bin = elf.with_extension("bin");
    std::fs::write(&bin, &image.1)?;
    let hex = elf.with_extension("hex");
    std::fs::write(&hex, intel_hex(image.0, &image.1))?;
    Ok(Firmware { elf, bin, hex })
}

/// The bytes loaded into flash (loadable segments by physical address, gaps zero-filled) and
/// their start address.
pub fn flash_image(elf: &[u8]) -> Result<(u64, Vec<u8>)> {
    use object::read::elf::{ElfFile32, ProgramHeader};
    let file = ElfFile32::<object::Endianness>::parse(elf)
        .map_err(|e| anyhow!("not a 32-bit ELF file: {e}"))?;
    let endian = file.endian();
    // Load (physical) addresses: .data's initial values are stored in flash after .rodata.
    let mut parts: Vec<(u64, &[u8])> = Vec::new();
    for ph in file.elf_program_headers() {
        if ph.p_type(endian) == object::elf::PT_LOAD && ph.p_filesz(endian) > 0 {
            let data = ph
                .data(endian, file.data())
                .map_err(|_| anyhow!("bad ELF program header"))?;
            parts.push((u64::from(ph.p_paddr(endian)), data));
        }
    }
    let start = parts
        .iter()
        .map(|p| p.0)
        .min()
        .context("ELF has nothing to load")?;
    let end = parts
        .iter()
        .map(|p| p.0 + p.1.len() as u64)
        .max()
        .unwrap_or(start);
    let mut image = vec![0u8; (end - start) as usize];
    for (addr, data) in parts {
        let at = (addr - start) as usize;
        image[at..at + data.len()].copy_from_slice(data);
    }
    Ok((start, image))
}

/// Intel HEX with extended linear address records.
fn intel_hex(start: u64, data: &[u8]) -> String {
    let mut out = String::new();
    let record = |out: &mut String, kind: u8, addr: u16, bytes: &[u8]| {
        let mut sum = bytes.len() as u8;
        sum = sum
            .wrapping_add((addr >> 8) as u8)
            .wrapping_add(addr as u8)
            .wrapping_add(kind);
        let mut line = format!(":{:02X}{:04X}{:02X}", bytes.len(), addr, kind);
        for b in bytes {
            sum = sum.wrapping_add(*b);
            line.push_str(&format!("{b:02X}"));
        }
        line.push_str(&format!("{:02X}\n", sum.wrapping_neg()));
        out.push_str(&line);
    };
    let mut upper = u32::MAX;
    for (i, chunk) in data.chunks(16).enumerate() {
        let addr = start as u32 + (i * 16) as u32;
        if addr >> 16 != upper {
            upper = addr >> 16;
            record(&mut out, 4, 0, &(upper as u16).to_be_bytes());
        }
        record(&mut out, 0, addr as u16, chunk);
    }
    record(&mut out, 1, 0, &[]);
    out
}

/// Flash and RAM use of a firmware ELF.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// .vector_table + .text + .rodata + .data's load image (+ boot sectors).
    pub flash: u64,
    pub text: u64,
    pub rodata: u64,
    /// Code of sdedge-runtime's functions that stayed functions under LTO (with micromath and
    /// crc), without what was inlined into the firmware's main.
    pub runtime_text: u64,
    /// `runtime_text` plus the firmware's main, into which LTO inlines the app, the executor
    /// and most kernels (board start-up included): an upper bound on sdedge's code.
    pub sdedge_text: u64,
    /// .data + .bss + .uninit (the arena is in .bss).
    pub ram_static: u64,
    pub arena: u64,
    /// The board the firmware was built for, from its board crate's entry point symbol
    /// (`<board crate>::__cortex_m_rt_main`, kept in the symbol table of release builds).
    pub board: Option<&'static str>,
}

pub fn memory(elf: &[u8]) -> Result<Memory> {
    let file = object::File::parse(elf).map_err(|e| anyhow!("not an ELF file: {e}"))?;
    let mut m = Memory {
        flash: 0,
        text: 0,
        rodata: 0,
        runtime_text: 0,
        sdedge_text: 0,
        ram_static: 0,
        arena: 0,
        board: None,
    };
    for s in file.sections() {
        let name = s.name().unwrap_or("");
        let size = s.size();
        match s.kind() {
            SectionKind::UninitializedData | SectionKind::UninitializedTls => m.ram_static += size,
            SectionKind::Data | SectionKind::Tls => {
                m.ram_static += size;
                m.flash += size;
            }
            SectionKind::Text | SectionKind::ReadOnlyData | SectionKind::ReadOnlyString => {
                m.flash += size;
                if name == ".text" {
                    m.text = size;
                }
                if name == ".rodata" {
                    m.rodata = size;
                }
            }
            _ => {}
        }
    }
    for sym in file.symbols() {
        let name = sym.name().unwrap_or("");
        if sym.kind() == object::SymbolKind::Text {
            let runtime = ["sdedge_runtime", "micromath", "crc"]
                .iter()
                .any(|k| name.contains(k));
            if runtime {
                m.runtime_text += sym.size();
            }
            if runtime || name.contains("sdedge_app") || name.contains("__cortex_m_rt_main") {
                m.sdedge_text += sym.size();
            }
            if name.contains("__cortex_m_rt_main") {
                m.board = crate::boards::BOARDS
                    .iter()
                    .find(|b| name.contains(&b.package.replace('-', "_")))
                    .map(|b| b.name);
            }
        }
        if sym.kind() == object::SymbolKind::Data && name.contains("ARENA") {
            m.arena = m.arena.max(sym.size());
        }
    }
    Ok(m)
}
