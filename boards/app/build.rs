//! Embeds the bundle and the inputs named by SDEDGE_BUNDLE and SDEDGE_INPUTS (set by
//! `sdedge build` / `sdedge run`), and sizes the arena from the bundle header.

use std::path::{Path, PathBuf};

fn read(var: &str) -> (PathBuf, Vec<u8>) {
    println!("cargo:rerun-if-env-changed={var}");
    let path = match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "{var} is not set: build firmware with `sdedge build --board BOARD MODEL.sde` (or set {var}=PATH)"
        ),
    };
    println!("cargo:rerun-if-changed={}", path.display());
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{var}={}: {e}", path.display()));
    (path, bytes)
}

fn main() {
    // The DWT cycle counter exists on ARMv7-M/ARMv8-M mainline, not on ARMv6-M (Cortex-M0+).
    println!("cargo::rustc-check-cfg=cfg(has_dwt)");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7") || target.starts_with("thumbv8m.main") {
        println!("cargo:rustc-cfg=has_dwt");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let (bundle_path, bundle) = read("SDEDGE_BUNDLE");
    let (_, inputs) = read("SDEDGE_INPUTS");
    if bundle.len() < 48 || &bundle[..4] != b"SDE\0" {
        panic!(
            "SDEDGE_BUNDLE={}: not an sdedge bundle",
            bundle_path.display()
        );
    }
    let arena = u32::from_le_bytes(bundle[16..20].try_into().unwrap());
    // Test hook: lets the host's tests prove that a fault on the device ends the run.
    println!("cargo:rerun-if-env-changed=SDEDGE_INJECT_FAULT");
    let fault = match std::env::var("SDEDGE_INJECT_FAULT")
        .unwrap_or_default()
        .as_str()
    {
        "" => "None",
        "hardfault" => "Some(crate::inject::Fault::HardFault)",
        "panic" => "Some(crate::inject::Fault::Panic)",
        "hang" => "Some(crate::inject::Fault::Hang)",
        other => panic!("SDEDGE_INJECT_FAULT={other}: expected hardfault, panic or hang"),
    };
    std::fs::write(out.join("bundle.sde"), &bundle).unwrap();
    std::fs::write(out.join("inputs.bin"), &inputs).unwrap();
    let config = format!(
        "/// Arena bytes the embedded bundle needs (from its header).\npub const ARENA_SIZE: usize = {arena};\n\
         /// A fault to raise after the start line (tests only; see inject.rs).\n\
         pub const INJECT_FAULT: Option<crate::inject::Fault> = {fault};\n"
    );
    std::fs::write(Path::new(&out).join("config.rs"), config).unwrap();
}
