//! triptych: a multi-process, sandboxed renderer for Linux, as a library.
//!
//! The launcher is the trusted parent: it spawns the GPU process (`triptych-gpu`) and the
//! renderer (`triptych-renderer`), bootstraps their channels, supervises them through pidfds,
//! restarts them when they crash, and presents the composited frames. The `triptych` binary
//! (crate `triptych-cli`) is a command line on this library; an application embeds the same
//! thing through [`shell`], configured by a plain [`config::RunConfig`]:
//!
//! ```no_run
//! use triptych::shell::{Event, ShellBuilder};
//!
//! let shell = ShellBuilder::new().size(320, 240).frames(60).spawn()?;
//! for event in shell.events() {
//!     match event {
//!         Event::Presented(f) => println!("frame {} is {}x{}", f.frame, f.width, f.height),
//!         Event::Crashed { role, cause, .. } => println!("{role} crashed: {cause}"),
//!         Event::Finished => break,
//!         _ => {}
//!     }
//! }
//! let summary = shell.wait()?;
//! println!("{} frames", summary.frames.count);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Modules: the configuration ([`config`]), the run loop (`session`), the children and their
//! sandbox (`child`, `jail`), what this machine offers them ([`machine`]), presentation
//! (`present`, [`window`]), the summary ([`summary`]). The command line (with `doctor` and
//! `trace-summary`) and the benchmarks are crates of their own (`triptych-cli`,
//! `triptych-bench`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// The internal modules' docs name their private parts; the public API's docs do not.
#![allow(rustdoc::private_intra_doc_links)]

mod chaos;
mod child;
pub mod child_log;
pub mod config;
mod crash;
#[doc(hidden)]
pub mod embedding;
mod jail;
pub mod machine;
mod present;
pub mod role;
pub mod scene;
#[doc(hidden)]
pub mod session;
pub mod shell;
#[doc(hidden)]
pub mod signals;
pub mod summary;
mod verify;
pub mod window;

#[cfg(feature = "children")]
pub use role::run_child_if_asked;
