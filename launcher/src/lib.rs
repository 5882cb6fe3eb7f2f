//! triptych: a multi-process, sandboxed renderer for Linux, as a library.
//!
//! The launcher is the trusted parent: it spawns the GPU process (`triptych-gpu`) and the
//! renderer (`triptych-renderer`), bootstraps their channels, supervises them through pidfds,
//! restarts them when they crash, and presents the composited frames. The `triptych` binary is
//! this library's command line; an application embeds the same thing through [`shell`]:
//!
//! ```no_run
//! use triptych::shell::{Event, ShellBuilder};
//!
//! let shell = ShellBuilder::new().size(320, 240).frames(60).spawn()?;
//! for event in shell.events() {
//!     match event {
//!         Event::Presented(f) => println!("frame {} is {}x{}", f.frame, f.width, f.height),
//!         Event::Crashed { role, cause } => println!("{role} crashed: {cause}"),
//!         Event::Finished => break,
//!         _ => {}
//!     }
//! }
//! let summary = shell.wait()?;
//! println!("{} frames", summary.frames);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Modules: the command line ([`cli`]), the run loop (`session`), the children and their
//! sandbox (`child`, `jail`), presentation (`present`, [`window`]), the summary ([`summary`]),
//! `doctor` and `trace_summary`. The benchmarks are a crate of their own (`triptych-bench`).

#![forbid(unsafe_code)]
// The internal modules' docs name their private parts; the public API's docs do not.
#![allow(rustdoc::private_intra_doc_links)]

mod chaos;
mod child;
pub mod child_log;
pub mod cli;
#[doc(hidden)]
pub mod command;
mod crash;
#[doc(hidden)]
pub mod doctor;
#[doc(hidden)]
pub mod exit;
mod jail;
mod present;
#[doc(hidden)]
pub mod progress;
pub mod scene;
#[doc(hidden)]
pub mod session;
pub mod shell;
#[doc(hidden)]
pub mod signals;
pub mod summary;
#[doc(hidden)]
pub mod trace_summary;
mod verify;
pub mod window;
