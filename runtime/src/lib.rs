//! sdedge-runtime: runs an int8 early-exit network, split into per-exit segments by the
//! `sdedge` host tool, from a bundle in memory and one caller-provided arena.
//!
//! `#![no_std]`, no allocator. The same code runs on the host (simulation) and on Cortex-M,
//! so both give identical results bit for bit.
//!
//! ```text
//! let model = Model::parse(BUNDLE)?;           // checks magic, version, checksum, every record
//! let mut arena = [0u8; ARENA];                 // at least model.arena_size() bytes
//! let out = model.run(&input, &mut arena, &Options::default(), &mut NoClock, |_| {})?;
//! // out.exit, out.class, out.score, out.macs
//! ```
#![no_std]

pub mod engine;
pub mod format;
pub mod model;
pub mod policy;

pub use engine::{Clock, ExitReport, NoClock, Options, Outcome};
pub use format::{OpKind, PolicyKind};
pub use model::{Model, SegmentInfo, TensorInfo};
pub use policy::ExitScore;

/// Everything that can go wrong reading or running a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The bundle does not start with [`format::MAGIC`].
    BadMagic,
    /// The bundle was written for another format version.
    UnsupportedVersion(u16),
    /// The bundle ends before the named part.
    Truncated(&'static str),
    /// The stored checksum does not match the bytes.
    ChecksumMismatch,
    /// An op kind this runtime does not know.
    UnsupportedOp(u8),
    /// A record is inconsistent; the text names the field.
    Invalid(&'static str),
    /// The caller's arena is smaller than the bundle needs.
    ArenaTooSmall { needed: usize, given: usize },
    /// The caller's input has the wrong number of values.
    InputLength { expected: usize, given: usize },
    /// Per-exit thresholds given for the wrong number of exits.
    ThresholdCount { expected: usize, given: usize },
    /// A kernel rejected its operands (cannot happen for a validated bundle).
    Kernel(kernels::KernelError),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::BadMagic => write!(f, "not an sdedge bundle (bad magic)"),
            Error::UnsupportedVersion(v) => write!(
                f,
                "bundle format version {v} is not supported (this runtime reads version {})",
                format::FORMAT_VERSION
            ),
            Error::Truncated(what) => write!(f, "bundle is truncated ({what})"),
            Error::ChecksumMismatch => write!(f, "bundle checksum mismatch (corrupted bundle)"),
            Error::UnsupportedOp(k) => write!(f, "bundle has an unknown op kind {k}"),
            Error::Invalid(what) => write!(f, "invalid bundle: {what}"),
            Error::ArenaTooSmall { needed, given } => {
                write!(f, "arena too small: needs {needed} bytes, got {given}")
            }
            Error::InputLength { expected, given } => {
                write!(f, "input has {given} values, the model takes {expected}")
            }
            Error::ThresholdCount { expected, given } => {
                write!(f, "{given} thresholds given for {expected} exits")
            }
            Error::Kernel(e) => write!(f, "kernel rejected its operands: {e:?}"),
        }
    }
}
pub mod fixedpoint;
pub mod kernels;
