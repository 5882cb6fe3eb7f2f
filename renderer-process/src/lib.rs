//! The renderer's reusable parts, shared by the `triptych-renderer` binary and by the launcher's
//! benchmarks, which must time the very compositor the renderer runs rather than a copy of it.
//!
//! - [`composite`]: the CPU compositor (premultiplied OVER of the layers into an output frame).
//!
//! Everything else of the renderer (fetching, the import cache, the frame loop, the output slots)
//! stays private to the binary.
#![forbid(unsafe_code)]

pub mod composite;
