//! triptych's GPU process as a library: the binary `triptych-gpu` (`src/main.rs`) drives it.
//!
//! - [`gl`]: the headless OpenGL ES context, layer drawing, read-back, DMA-BUF export and fences.

pub mod gl;
