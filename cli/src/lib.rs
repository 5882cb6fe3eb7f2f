//! `triptych-cli`: the `triptych` command line on the engine library (`triptych`): the
//! arguments and the [`triptych::config::RunConfig`] a run becomes ([`args`]), what the binary
//! does with them ([`command`]), its exit statuses ([`exit`]), the progress line of a headless
//! run on a terminal ([`progress`]), `triptych doctor` ([`doctor`]), `triptych
//! trace-summary` ([`trace_summary`]) and the window of `triptych run` ([`window`]). The engine knows nothing of
//! this crate, of `clap` or of terminals' command lines.

#![forbid(unsafe_code)]
// The internal items' docs name private parts too.
#![allow(rustdoc::private_intra_doc_links)]

pub mod args;
pub mod command;
pub mod control;
pub mod doctor;
pub mod exit;
pub mod progress;
pub mod trace_summary;
pub mod window;
