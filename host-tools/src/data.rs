//! Fashion-MNIST (and MNIST-format) data sets from IDX files, gzipped or not.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where Debian's `dataset-fashion-mnist` package installs the IDX files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";
pub const INSTALL_HINT: &str = "sudo apt-get install dataset-fashion-mnist";

/// Images of one split, row-major 8-bit pixels, and their labels.
pub struct Dataset {
    pub rows: usize,
    pub cols: usize,
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.images[i * n..(i + 1) * n]
    }

    /// Keeps images `range` only.
    pub fn slice(mut self, range: std::ops::Range<usize>) -> Dataset {
        let n = self.rows * self.cols;
        self.images = self.images[range.start * n..range.end * n].to_vec();
        self.labels = self.labels[range].to_vec();
        self
    }

    pub fn truncate(self, limit: Option<usize>) -> Dataset {
        match limit {
            Some(l) if l < self.len() => self.slice(0..l),
            _ => self,
        }
    }
}

/// The splits of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The first 55,000 images of the training file (calibration).
    Train,
    /// The last 5,000 images of the training file: held out from training, used to tune.
    Val,
    /// The 10,000 test images.
    Test,
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        })
    }
}

/// Images at the end of the training file held out for validation (as the model recipe does).
pub const VAL_SIZE: usize = 5000;

/// Resolves `--data`: the name `fashion-mnist` means Debian's install location.
pub fn resolve(data: &str) -> PathBuf {
    if data == "fashion-mnist" {
        PathBuf::from(DEBIAN_FASHION_MNIST)
    } else {
        PathBuf::from(data)
    }
}

pub fn load(data: &str, split: Split) -> Result<Dataset> {
    let dir = resolve(data);
    if !dir.is_dir() {
        if data == "fashion-mnist" {
            bail!(
                "Fashion-MNIST not found at {}: install it with `{}` or pass --data PATH",
                dir.display(),
                INSTALL_HINT
            );
        }
        if dir.exists() {
            bail!(
                "--data {}: is a file; expected the folder that holds the IDX files",
                dir.display()
            );
        }
        bail!("--data {}: no such directory", dir.display());
    }
    let prefix = match split {
        Split::Train | Split::Val => "train",
        Split::Test => "t10k",
    };
    let images = read_idx(&find(&dir, &format!("{prefix}-images-idx3-ubyte"))?, 3)?;
    let labels = read_idx(&find(&dir, &format!("{prefix}-labels-idx1-ubyte"))?, 1)?;
    if images.dims[0] != labels.dims[0] {
        bail!(
            "{}: {} images but {} labels",
            dir.display(),
            images.dims[0],
            labels.dims[0]
        );
    }
    if let Some(&bad) = labels.data.iter().find(|&&l| l > 9) {
        bail!("{}: label {bad} is out of range 0..=9", dir.display());
    }
    let ds = Dataset {
        rows: images.dims[1],
        cols: images.dims[2],
        images: images.data,
        labels: labels.data,
    };
    let n = ds.len();
    Ok(match split {
        Split::Test => ds,
        _ if n <= VAL_SIZE => bail!("{}: training file has only {n} images", dir.display()),
        Split::Train => ds.slice(0..n - VAL_SIZE),
        Split::Val => ds.slice(n - VAL_SIZE..n),
    })
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "--data {}: no IDX file {stem}[.gz] there (expected the Fashion-MNIST files; `{}` installs them)",
        dir.display(),
        INSTALL_HINT
    )
}

struct Idx {
    dims: Vec<usize>,
    data: Vec<u8>,
}

/// Reads an unsigned-byte IDX file with `rank` dimensions.
fn read_idx(path: &Path, rank: usize) -> Result<Idx> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{}: bad gzip data", path.display()))?;
        out
    } else {
        raw
    };
    let header = 4 + 4 * rank;
    if bytes.len() < header || bytes[0] != 0 || bytes[1] != 0 {
        bail!("{}: not an IDX file", path.display());
    }
    if bytes[2] != 0x08 || usize::from(bytes[3]) != rank {
        bail!(
            "{}: IDX type 0x{:02x} rank {}, expected unsigned bytes of rank {rank}",
            path.display(),
            bytes[2],
            bytes[3]
        );
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let n: usize = dims.iter().product();
    if bytes.len() != header + n {
        bail!(
            "{}: IDX header says {n} values, file holds {}",
            path.display(),
            bytes.len() - header
        );
    }
    Ok(Idx {
        dims,
        data: bytes[header..].to_vec(),
    })
}
