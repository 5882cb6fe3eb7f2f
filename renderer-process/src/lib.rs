//! The renderer: the `triptych-renderer` binary's whole run ([`start::run`]), and its reusable
//! parts, which the benchmarks (`triptych-bench`) call too, since they must time the very calls
//! the renderer makes rather than copies of them.
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
//! The run itself: the start-up ([`start`]), the link to the GPU process and its handover
//! ([`link`]), the sandbox's sequence ([`sandbox`]), the frame loop with its fence waiter
//! ([`pipeline`], its decisions in [`decide`]), the output slots ([`output`]), and the points
//! where a program built on this library may act ([`hooks`]; the binary passes none).
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
pub use ipc_protocol::layers as validate;
