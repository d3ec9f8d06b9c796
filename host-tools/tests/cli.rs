//! End-to-end tests of the `sdedge` command line.
//!
//! Every failure must be exactly one `error: ...` line on stderr, exit code 1, nothing on
//! stdout, and the line must name the problem (the file, node, op or field at fault). A failed
//! `split` must never leave a bundle, a half-written file or a temporary file behind, nor touch
//! a bundle already at the output path.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use prost::Message;
use sdedge_runtime::format::{header, CHECKSUM, CHECKSUM_START};
use serde_json::Value;
use tempfile::TempDir;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::Framework;

/// Calibration images for tests that only need some valid bundle (the default takes longer).
const QUICK_CALIBRATION: &str = "200";

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/fmnist_resnet8_ee.onnx")
}

fn tmp() -> TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn sdedge<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_sdedge"))
        .args(args)
        .output()
        .expect("run sdedge")
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts a successful run and returns its stdout.
fn success(out: &Output) -> String {
    assert!(out.status.success(), "expected success, got {}", show(out));
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

/// Asserts the failure contract (exit code 1, nothing on stdout, exactly one line on stderr
/// starting with `error:`) and returns that line.
fn error_line(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit code 1: {}",
        show(out)
    );
    assert!(
        out.stdout.is_empty(),
        "stdout not empty on error: {}",
        show(out)
    );
    let stderr = String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr is not one line: {}", show(out));
    assert!(
        stderr.ends_with('\n'),
        "stderr line unterminated: {}",
        show(out)
    );
    assert!(
        lines[0].starts_with("error: "),
        "no `error: ` prefix: {}",
        show(out)
    );
    lines[0].to_string()
}

/// Asserts that `line` contains `path` as the user gave it.
fn assert_names(line: &str, path: &Path) {
    let p = path.display().to_string();
    assert!(line.contains(&p), "error does not name {p}: {line}");
}

/// Asserts that `line` says `phrase` (case-insensitive).
fn assert_says(line: &str, phrase: &str) {
    assert!(
        line.to_lowercase().contains(&phrase.to_lowercase()),
        "error does not say {phrase:?}: {line}"
    );
}

/// Names of the entries in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// The committed model at the protobuf level.
fn proto() -> ModelProto {
    tract_onnx::onnx()
        .proto_model_for_path(model())
        .expect("committed model decodes")
}

fn write_proto(dir: &Path, name: &str, p: &ModelProto) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, p.encode_to_vec()).expect("write model");
    path
}

/// The committed model with only its `main` output.
fn single_output_model(dir: &Path) -> PathBuf {
    let mut p = proto();
    let g = p.graph.as_mut().expect("graph");
    assert_eq!(g.output.len(), 3, "the committed model has three outputs");
    g.output.retain(|o| o.name == "main");
    assert_eq!(g.output.len(), 1);
    write_proto(dir, "single_output.onnx", &p)
}

/// The committed model with its first Relu replaced by `op`; returns the path and that node's
/// ONNX name.
fn model_with_op(dir: &Path, op: &str) -> (PathBuf, String) {
    let mut p = proto();
    let g = p.graph.as_mut().expect("graph");
    let node = g
        .node
        .iter_mut()
        .find(|n| n.op_type == "Relu")
        .expect("the committed model has a Relu");
    assert!(!node.name.is_empty(), "the Relu node has a name");
    node.op_type = op.to_string();
    let name = node.name.clone();
    let path = write_proto(dir, &format!("with_{op}.onnx"), &p);
    (path, name)
}

/// A valid bundle of the committed model (split once, shared by the tests).
fn valid_bundle() -> &'static [u8] {
    static BUNDLE: OnceLock<Vec<u8>> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let dir = tmp();
        let out = dir.path().join("model.sde");
        let o = sdedge([
            "split".as_ref(),
            model().as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--calibration-images".as_ref(),
            QUICK_CALIBRATION.as_ref(),
            "--json".as_ref(),
        ]);
        let report: Value = serde_json::from_str(&success(&o)).expect("split --json parses");
        let bytes = fs::read(&out).expect("split wrote the bundle");
        assert_eq!(report["bundle_bytes"].as_u64(), Some(bytes.len() as u64));
        assert_eq!(report["exits"].as_array().map(Vec::len), Some(3));
        assert_eq!(report["calibration_images"].as_u64(), Some(200));
        assert_eq!(
            listing(dir.path()),
            ["model.sde"],
            "split leaves only the bundle behind"
        );
        bytes
    })
}

/// Writes `bytes` as a bundle file in `dir`.
fn write_bundle(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).expect("write bundle");
    path
}

/// Recomputes the checksum of a patched bundle, as the writer does.
fn reseal(bytes: &mut [u8]) {
    let crc = CHECKSUM.checksum(&bytes[CHECKSUM_START..]);
    bytes[header::CHECKSUM..header::CHECKSUM + 4].copy_from_slice(&crc.to_le_bytes());
}

/// `simulate` on `bundle` with a small limit (a valid bundle would then run quickly).
fn simulate(bundle: &Path) -> Output {
    sdedge([
        "simulate".as_ref(),
        bundle.as_os_str(),
        "--limit".as_ref(),
        "10".as_ref(),
    ])
}

/// `simulate` on `bundle` with `--data data` (for tests where the data is at fault).
fn simulate_data(bundle: &Path, data: &Path) -> Output {
    sdedge([
        "simulate".as_ref(),
        bundle.as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
    ])
}

/// `split` of `model` to `out` with quick calibration and extra arguments.
fn split(model: &Path, out: &Path, extra: &[&OsStr]) -> Output {
    let mut args: Vec<&OsStr> = vec![
        "split".as_ref(),
        model.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--calibration-images".as_ref(),
        QUICK_CALIBRATION.as_ref(),
    ];
    args.extend_from_slice(extra);
    sdedge(args)
}

// 1. Missing files.

#[test]
fn inspect_missing_model_names_path() {
    let dir = tmp();
    let missing = dir.path().join("no_such_model.onnx");
    let line = error_line(&sdedge(["inspect".as_ref(), missing.as_os_str()]));
    assert_names(&line, &missing);
    assert_says(&line, "no such file");
}

#[test]
fn split_missing_model_names_path_and_writes_nothing() {
    let dir = tmp();
    let missing = dir.path().join("no_such_model.onnx");
    let out = dir.path().join("out.sde");
    let line = error_line(&split(&missing, &out, &[]));
    assert_names(&line, &missing);
    assert_says(&line, "no such file");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[test]
fn simulate_missing_bundle_names_path() {
    let dir = tmp();
    let missing = dir.path().join("no_such_bundle.sde");
    let line = error_line(&simulate(&missing));
    assert_names(&line, &missing);
    assert_says(&line, "no such file");
}

// 2. Files that are not ONNX.

#[test]
fn inspect_and_split_reject_non_onnx_files() {
    let dir = tmp();
    // Deterministic pseudo-random bytes (xorshift), so a failure reproduces.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let files = [
        ("random.onnx", random),
        (
            "notes.onnx",
            b"This is a text file, not a model.\nIt has two lines.\n".to_vec(),
        ),
        ("empty.onnx", Vec::new()),
    ];
    for (name, bytes) in files {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        let line = error_line(&sdedge(["inspect".as_ref(), path.as_os_str()]));
        assert_names(&line, &path);
        assert_says(&line, "not a valid ONNX model");

        let out = dir.path().join(format!("{name}.sde"));
        let line = error_line(&split(&path, &out, &[]));
        assert_names(&line, &path);
        assert_says(&line, "not a valid ONNX model");
        assert!(!out.exists(), "split of {name} wrote {}", out.display());
    }
}

// 3. A model with a single output.

#[test]
fn single_output_model_has_nothing_to_split() {
    let dir = tmp();
    let m = single_output_model(dir.path());

    let line = error_line(&sdedge(["inspect".as_ref(), m.as_os_str()]));
    assert_names(&line, &m);
    assert_says(&line, "nothing to split");
    assert_says(&line, "1 output");

    let out = dir.path().join("single.sde");
    let line = error_line(&split(&m, &out, &[]));
    assert_names(&line, &m);
    assert_says(&line, "nothing to split");
    assert_says(&line, "1 output");
    assert_eq!(
        listing(dir.path()),
        ["single_output.onnx"],
        "split wrote something"
    );
}

// 4. An op the runtime does not support.

#[test]
fn unsupported_op_is_named_with_its_node() {
    let dir = tmp();
    for op in ["Sigmoid", "Tanh"] {
        let (m, node) = model_with_op(dir.path(), op);

        let line = error_line(&sdedge(["inspect".as_ref(), m.as_os_str()]));
        assert_names(&line, &m);
        assert!(
            line.contains(&node),
            "error does not name node {node}: {line}"
        );
        assert!(line.contains(op), "error does not name op {op}: {line}");
        assert_says(&line, "not supported");

        let out = dir.path().join(format!("{op}.sde"));
        let line = error_line(&split(&m, &out, &[]));
        assert_names(&line, &m);
        assert!(
            line.contains(&node),
            "error does not name node {node}: {line}"
        );
        assert!(line.contains(op), "error does not name op {op}: {line}");
        assert!(!out.exists(), "split wrote {}", out.display());
    }
    let mut left = listing(dir.path());
    left.retain(|n| !n.ends_with(".onnx"));
    assert!(left.is_empty(), "split left {left:?}");
}

// 5. Damaged bundles.

#[test]
fn simulate_rejects_truncated_bundle() {
    let dir = tmp();
    let good = valid_bundle();
    for (name, len) in [
        ("half.sde", good.len() / 2),
        ("short_header.sde", 20),
        ("empty.sde", 0),
        ("one_byte_short.sde", good.len() - 1),
    ] {
        let b = write_bundle(dir.path(), name, &good[..len]);
        let line = error_line(&simulate(&b));
        assert_names(&line, &b);
        assert_says(&line, "truncated");
    }
}

#[test]
fn simulate_rejects_corrupted_bundle() {
    let dir = tmp();
    let mut bytes = valid_bundle().to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF; // not re-sealed
    let b = write_bundle(dir.path(), "corrupt.sde", &bytes);
    let line = error_line(&simulate(&b));
    assert_names(&line, &b);
    assert_says(&line, "checksum");

    // `tune` reads bundles the same way, and must not rewrite a corrupted one.
    let line = error_line(&sdedge(["tune".as_ref(), b.as_os_str()]));
    assert_names(&line, &b);
    assert_says(&line, "checksum");
    assert_eq!(fs::read(&b).unwrap(), bytes, "tune changed the bundle");
}

#[test]
fn simulate_rejects_wrong_magic() {
    let dir = tmp();
    let mut bytes = valid_bundle().to_vec();
    bytes[..4].copy_from_slice(b"ONNX");
    reseal(&mut bytes);
    let b = write_bundle(dir.path(), "magic.sde", &bytes);
    let line = error_line(&simulate(&b));
    assert_names(&line, &b);
    assert_says(&line, "magic");
    assert_says(&line, "not an sdedge bundle");

    // The ONNX model itself passed as a bundle, a likely slip.
    let line = error_line(&simulate(&model()));
    assert_names(&line, &model());
    assert_says(&line, "not an sdedge bundle");
}

#[test]
fn simulate_rejects_future_format_version() {
    let dir = tmp();
    let mut bytes = valid_bundle().to_vec();
    bytes[header::VERSION..header::VERSION + 2].copy_from_slice(&99u16.to_le_bytes());
    reseal(&mut bytes);
    let b = write_bundle(dir.path(), "future.sde", &bytes);
    let line = error_line(&simulate(&b));
    assert_names(&line, &b);
    assert_says(&line, "version 99");
}

// 6. Bad --data.

/// A folder that exists but holds no IDX files.
fn empty_data_dir(dir: &Path) -> PathBuf {
    let d = dir.join("no_idx_here");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("README.txt"), "not a data set\n").unwrap();
    d
}

#[test]
fn split_data_dir_without_idx_files() {
    let dir = tmp();
    let data = empty_data_dir(dir.path());
    let out = dir.path().join("out.sde");
    let line = error_line(&split(
        &model(),
        &out,
        &["--data".as_ref(), data.as_os_str()],
    ));
    assert_names(&line, &data);
    assert_says(&line, "no IDX file");
    assert!(!out.exists());
}

#[test]
fn simulate_data_dir_without_idx_files() {
    let dir = tmp();
    let data = empty_data_dir(dir.path());
    let b = write_bundle(dir.path(), "model.sde", valid_bundle());
    let line = error_line(&simulate_data(&b, &data));
    assert_names(&line, &data);
    assert_says(&line, "no IDX file");
}

#[test]
fn data_dir_that_does_not_exist() {
    let dir = tmp();
    let data = dir.path().join("does/not/exist");
    let out = dir.path().join("out.sde");
    let line = error_line(&split(
        &model(),
        &out,
        &["--data".as_ref(), data.as_os_str()],
    ));
    assert_names(&line, &data);
    assert_says(&line, "no such directory");
    assert!(!out.exists());

    let b = write_bundle(dir.path(), "model.sde", valid_bundle());
    let line = error_line(&simulate_data(&b, &data));
    assert_names(&line, &data);
    assert_says(&line, "no such directory");

    // A file where the folder belongs.
    let line = error_line(&simulate_data(&b, &b));
    assert_names(&line, &b);
    assert_says(&line, "is a file; expected the folder");
}

#[test]
fn data_file_that_is_not_idx_is_named() {
    let dir = tmp();
    let data = dir.path().join("bad_idx");
    fs::create_dir(&data).unwrap();
    let images = data.join("train-images-idx3-ubyte");
    fs::write(&images, "hello, not an IDX file\n").unwrap();
    let out = dir.path().join("out.sde");
    let line = error_line(&split(
        &model(),
        &out,
        &["--data".as_ref(), data.as_os_str()],
    ));
    assert_names(&line, &images);
    assert_says(&line, "not an IDX file");
    assert!(!out.exists());
}

// Options naming something that is not there.

#[test]
fn unknown_main_output_lists_the_outputs() {
    let line = error_line(&sdedge([
        "inspect".as_ref(),
        model().as_os_str(),
        "--main".as_ref(),
        "no_such_exit".as_ref(),
    ]));
    assert_names(&line, &model());
    assert_says(&line, "--main no_such_exit: no such output");
    assert_says(&line, "exit1, exit2, main");
}

/// `simulate BUNDLE --limit 10 --json` with extra arguments.
fn simulate_with(bundle: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&OsStr> = vec![
        "simulate".as_ref(),
        bundle.as_os_str(),
        "--limit".as_ref(),
        "10".as_ref(),
        "--json".as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    sdedge(args)
}

#[test]
fn simulate_takes_one_threshold_per_early_exit() {
    let dir = tmp();
    let b = write_bundle(dir.path(), "model.sde", valid_bundle());
    let line = error_line(&simulate_with(&b, &["--thresholds", "0.1"]));
    assert_says(
        &line,
        "--thresholds: expected 2 values (one per early exit)",
    );
    assert_says(&line, "3 exits, got 1");

    // Thresholds that let nothing leave early: everything reaches the main exit.
    let o = simulate_with(&b, &["--thresholds", "-1,-1"]);
    let r: Value = serde_json::from_str(&success(&o)).expect("simulate --json parses");
    let exits = r["exits"].as_array().expect("exits");
    let thresholds: Vec<Option<f64>> = exits.iter().map(|e| e["threshold"].as_f64()).collect();
    assert_eq!(thresholds, [Some(-1.0), Some(-1.0), None], "{r}");
    assert_eq!(exits[2]["share"].as_f64(), Some(1.0), "{r}");
    assert_eq!(r["split"], "test");
    assert_eq!(r["policy"], "entropy");
}

#[test]
fn simulate_with_another_policy_needs_thresholds_for_it() {
    let dir = tmp();
    let b = write_bundle(dir.path(), "model.sde", valid_bundle());
    let line = error_line(&simulate_with(&b, &["--policy", "max-prob"]));
    assert_says(&line, "--policy max-prob");
    assert_says(&line, "thresholds are for the entropy policy");
    // With thresholds for it, max-prob runs: a max softmax above 1 never happens.
    let o = simulate_with(&b, &["--policy", "max-prob", "--thresholds", "1.5,1.5"]);
    let r: Value = serde_json::from_str(&success(&o)).expect("simulate --json parses");
    assert_eq!(r["policy"], "max-prob");
    assert_eq!(r["exits"][2]["share"].as_f64(), Some(1.0), "{r}");
}

#[test]
fn tune_refuses_a_negative_budget_and_keeps_the_bundle() {
    let dir = tmp();
    let b = write_bundle(dir.path(), "model.sde", valid_bundle());
    let o = sdedge(["tune".as_ref(), b.as_os_str(), "--max-drop=-1".as_ref()]);
    // A bad option value is clap's error: exit code 2, with the reason.
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--max-drop") && err.contains("between 0 and 100"),
        "{err}"
    );
    assert_eq!(fs::read(&b).unwrap(), valid_bundle());
}

#[test]
fn inspect_of_a_bundle_says_what_it_is() {
    let dir = tmp();
    let b = write_bundle(dir.path(), "model.sde", valid_bundle());
    let line = error_line(&sdedge(["inspect".as_ref(), b.as_os_str()]));
    assert_names(&line, &b);
    assert_says(&line, "is an sdedge bundle, not an ONNX model");
}

// 7. Nothing half-written.

#[test]
fn failed_split_leaves_no_file_and_no_temp_file() {
    let dir = tmp();
    let data = empty_data_dir(dir.path());
    let outdir = dir.path().join("out");
    fs::create_dir(&outdir).unwrap();
    let out = outdir.join("model.sde");
    let line = error_line(&split(
        &model(),
        &out,
        &["--data".as_ref(), data.as_os_str()],
    ));
    assert_says(&line, "no IDX file");
    assert!(listing(&outdir).is_empty(), "left {:?}", listing(&outdir));
}

#[test]
fn split_to_a_bad_output_path_is_refused_and_leaves_nothing() {
    let dir = tmp();
    let outdir = dir.path().join("out");
    fs::create_dir(&outdir).unwrap();
    // The output path is a folder: refused before the slow work.
    let out = outdir.join("model.sde");
    fs::create_dir(&out).unwrap();
    let line = error_line(&split(&model(), &out, &[]));
    assert_names(&line, &out);
    assert_says(&line, "is a folder");
    assert_eq!(listing(&outdir), ["model.sde"], "temp file left behind");
    assert!(listing(&out).is_empty());

    // The output folder does not exist: refused before the slow work.
    let out = dir.path().join("missing_dir").join("model.sde");
    let line = error_line(&split(&model(), &out, &[]));
    assert_names(&line, &out);
    assert_says(&line, "does not exist");
    assert_eq!(listing(dir.path()), ["out"]);
}

#[test]
fn failed_split_leaves_existing_bundle_unchanged() {
    let dir = tmp();
    let good = valid_bundle();
    let outdir = dir.path().join("out");
    fs::create_dir(&outdir).unwrap();
    let out = write_bundle(&outdir, "model.sde", good);
    let data = empty_data_dir(dir.path());
    let single = single_output_model(dir.path());
    let (sigmoid, _) = model_with_op(dir.path(), "Sigmoid");
    let missing = dir.path().join("missing.onnx");
    let missing_data = dir.path().join("missing_data");

    let failures: [(&Path, Vec<&OsStr>); 5] = [
        (&model(), vec!["--data".as_ref(), data.as_os_str()]),
        (&model(), vec!["--data".as_ref(), missing_data.as_os_str()]),
        (&single, vec![]),
        (&sigmoid, vec![]),
        (&missing, vec![]),
    ];
    for (m, extra) in &failures {
        error_line(&split(m, &out, extra));
        assert_eq!(
            fs::read(&out).unwrap(),
            good,
            "bundle changed by failed split of {m:?}"
        );
        assert_eq!(listing(&outdir), ["model.sde"], "split of {m:?} left files");
    }

    // A failing `tune` rewrites nothing either.
    let line = error_line(&sdedge([
        "tune".as_ref(),
        out.as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
    ]));
    assert_says(&line, "no IDX file");
    assert_eq!(
        fs::read(&out).unwrap(),
        good,
        "bundle changed by failed tune"
    );
    assert_eq!(listing(&outdir), ["model.sde"]);
}

// 8. Happy path.

#[test]
fn split_then_simulate_json() {
    let dir = tmp();
    let b = write_bundle(dir.path(), "model.sde", valid_bundle());
    let o = sdedge([
        "simulate".as_ref(),
        b.as_os_str(),
        "--onnx".as_ref(),
        model().as_os_str(),
        "--limit".as_ref(),
        "200".as_ref(),
        "--json".as_ref(),
    ]);
    let r: Value = serde_json::from_str(&success(&o)).expect("simulate --json parses");
    assert_eq!(r["images"].as_u64(), Some(200), "{r}");
    let exits = r["exits"].as_array().expect("exits");
    assert_eq!(exits.len(), 3, "{r}");
    let names: Vec<&str> = exits.iter().map(|e| e["exit"].as_str().unwrap()).collect();
    assert_eq!(names, ["exit1", "exit2", "main"]);
    let mut shares = 0.0;
    for e in exits {
        let int8 = e["int8_accuracy"].as_f64().expect("int8_accuracy");
        let float = e["float_accuracy"].as_f64().expect("float_accuracy");
        assert!(
            (int8 - float).abs() <= 0.05,
            "exit {}: int8 {int8} vs float {float}",
            e["exit"]
        );
        shares += e["share"].as_f64().expect("share");
    }
    assert!((shares - 1.0).abs() <= 1e-9, "shares sum to {shares}");
}

// 9. inspect --json.

#[test]
fn inspect_json_segments() {
    let o = sdedge(["inspect".as_ref(), model().as_os_str(), "--json".as_ref()]);
    let r: Value = serde_json::from_str(&success(&o)).expect("inspect --json parses");
    let segs = r["segments"].as_array().expect("segments");
    let names: Vec<&str> = segs.iter().map(|s| s["exit"].as_str().unwrap()).collect();
    assert_eq!(names, ["exit1", "exit2", "main"]);
    for (s, block) in segs.iter().zip(["block1_out", "block2_out"]) {
        let b = s["branch_point"].as_str().expect("branch point");
        assert!(
            b.contains(block),
            "branch point {b} of {} is not at {block}",
            s["exit"]
        );
    }
    assert!(segs[2]["branch_point"].is_null());
    let macs: Vec<u64> = segs
        .iter()
        .map(|s| s["cumulative_macs"].as_u64().unwrap())
        .collect();
    assert!(macs.windows(2).all(|w| w[0] < w[1]), "{macs:?}");
}

/// A folder holding a fake `rustup` that lists `targets` as installed, to be used as PATH.
fn fake_rustup(targets: &[&str]) -> TempDir {
    let dir = tmp();
    let script = dir.path().join("rustup");
    let list: String = targets.iter().map(|t| format!("echo {t}\n")).collect();
    fs::write(&script, format!("#!/bin/sh\n{list}exit 0\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn run_on_qemu_with_path(path: &Path) -> Output {
    let dir = tmp();
    let bundle = dir.path().join("model.sde");
    fs::write(&bundle, valid_bundle()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sdedge"))
        .args(["run", "--board", "qemu-mps2-an386", "--limit", "1"])
        .arg(&bundle)
        .arg("-o")
        .arg(dir.path().join("fw"))
        .env("PATH", path)
        .output()
        .expect("run sdedge")
}

#[test]
fn run_without_the_rust_target_names_the_rustup_command() {
    let bin = fake_rustup(&[]);
    let line = error_line(&run_on_qemu_with_path(bin.path()));
    assert_says(&line, "rustup target add thumbv7em-none-eabihf");
}

#[test]
fn run_without_qemu_names_the_install_command() {
    let bin = fake_rustup(&["thumbv7em-none-eabihf"]);
    let line = error_line(&run_on_qemu_with_path(bin.path()));
    assert_says(&line, "qemu-system-arm not found");
    assert_says(&line, "apt-get install qemu-system-arm");
}
