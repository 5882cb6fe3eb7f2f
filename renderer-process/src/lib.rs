//! The renderer's reusable parts, shared by the `triptych-renderer` binary and by the launcher's
//! benchmarks, which must time the very calls the renderer makes rather than copies of them.
//!
//! In the order a frame meets them:
//!
//! - [`validate`]: the check of a frame's layers and buffer descriptions before anything is
//!   fetched;
//! - [`fetch`]: taking a described fd from the GPU process ([`fetch::FrameSource`]: pidfd or
//!   `SCM_RIGHTS`) and checking its identity;
//! - [`import`]: the import cache, which fetches, measures, checks and maps each buffer once per
//!   buffer id;
//! - [`composite`]: the CPU compositor (premultiplied OVER of the layers into an output frame).
//!
//! What only a running renderer needs stays private to the binary: the link to the GPU process
//! and its handover, the frame loop with its fence waiter, the output slots, the sandbox and, in
//! debug builds, the escape tests' probes and the hostile renderer.
#![forbid(unsafe_code)]

pub mod composite;
pub mod damage;
pub mod decide;
pub mod fetch;
pub mod hooks;
pub mod import;
pub mod link;
pub mod output;
pub mod pipeline;
pub mod sandbox;
pub mod start;
pub mod validate;
