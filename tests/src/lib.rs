//! Shared fixtures for the end-to-end tests: the committed model, split once per test binary.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sdedge::pipeline::{self, SplitOptions, SplitReport};
use sdedge_runtime::PolicyKind;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The committed self-distilled model.
pub fn committed_model() -> PathBuf {
    repo_root().join("models/fmnist_resnet8_ee.onnx")
}

pub struct Split {
    pub dir: tempfile::TempDir,
    pub bundle: PathBuf,
    pub report: SplitReport,
}

/// `sdedge split` of the committed model with the CLI's defaults, done once.
pub fn committed_split() -> &'static Split {
    static SPLIT: OnceLock<Split> = OnceLock::new();
    SPLIT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let bundle = dir.path().join("fmnist_resnet8_ee.sde");
        let opts = SplitOptions {
            main: None,
            data: "fashion-mnist",
            calibration_images: 2000,
            policy: PolicyKind::Entropy,
            max_drop: 0.001,
            tune_limit: None,
        };
        let report = pipeline::split(&committed_model(), &bundle, &opts).expect("split");
        Split {
            dir,
            bundle,
            report,
        }
    })
}
