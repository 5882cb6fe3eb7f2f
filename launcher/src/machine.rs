//! What this machine offers a run, as the engine finds it: the sandbox's layers and where the
//! command line's children are. `triptych doctor` (in `triptych-cli`) prints these; a run
//! decides by the same calls, so the two cannot disagree.

use std::path::PathBuf;

/// One finding: its name, whether it is as a run wants it, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was looked at (`userns`, `seccomp`, `transport`, ...).
    pub name: &'static str,
    /// Whether it is as a run wants it.
    pub ok: bool,
    /// What was found, and what a run does about it.
    pub detail: String,
}

/// The sandbox's layers on this machine: user and other namespaces, seccomp and its
/// user-notification reports, Landlock, the fd transport `auto` picks and why. Each is tried
/// on short-lived children, as a run tries them.
pub fn sandbox() -> Vec<Finding> {
    crate::jail::doctor_lines()
        .into_iter()
        .map(|(name, ok, detail)| Finding { name, ok, detail })
        .collect()
}

/// The environment a run's children get: this process's variables that the allowlist lets
/// through (the C library's, the GL drivers', the log filter), with the drivers' disk caches
/// off. `doctor` starts the GPU process for its EGL facts with exactly this, so its verdict is
/// the one a run's GPU process would reach.
pub fn child_environment() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    crate::child::environment()
}

/// Where `triptych run` takes its children from: `TRIPTYCH_BIN_DIR`, else next to the running
/// executable; checked to hold both binaries.
pub fn command_line_children_dir() -> anyhow::Result<PathBuf> {
    crate::child::command_line_children_dir()
}
