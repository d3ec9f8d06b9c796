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
    std::fs::write(out.join("bundle.sde"), &bundle).unwrap();
    std::fs::write(out.join("inputs.bin"), &inputs).unwrap();
    let config = format!(
        "/// Arena bytes the embedded bundle needs (from its header).\npub const ARENA_SIZE: usize = {arena};\n"
    );
    std::fs::write(Path::new(&out).join("config.rs"), config).unwrap();
}
