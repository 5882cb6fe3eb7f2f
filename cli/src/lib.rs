//! `triptych-cli`: the `triptych` command line on the engine library (`triptych`): the
//! arguments and the [`triptych::config::RunConfig`] a run becomes ([`args`]), what the binary
//! does with them ([`command`]) and its exit statuses ([`exit`]). The engine knows nothing of
//! this crate, of `clap` or of terminals' command lines.

#![forbid(unsafe_code)]

pub mod args;
pub mod command;
pub mod exit;
