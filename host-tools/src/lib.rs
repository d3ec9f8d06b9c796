//! sdedge host tools as a library: the `sdedge` binary is a thin CLI over these modules, and
//! the end-to-end tests in `tests/` drive them directly.

pub mod analysis;
pub mod arena;
pub mod boards;
pub mod bundle;
pub mod data;
pub mod device;
pub mod devicelog;
pub mod eval;
pub mod firmware;
pub mod float;
pub mod ir;
pub mod lower;
pub mod onnx;
pub mod pipeline;
pub mod quantize;
pub mod report;
pub mod simulate;
pub mod tune;
