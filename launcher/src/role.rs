//! One executable: an application's own executable started as the GPU process or the renderer.
//!
//! An application that embeds triptych ships one executable. Its `main` calls
//! [`run_child_if_asked`] before anything else; when the shell started that executable as one of
//! its children (the launcher passes the role as the first argument, [`ROLE_GPU`] or
//! [`ROLE_RENDERER`]) the call runs that role's whole process, the same library code as the
//! separate `triptych-gpu` and `triptych-renderer` binaries, and never returns; otherwise it
//! returns at once. The shell starts such children from `/proc/self/exe`, the very file this
//! process was started from (a file replaced on disk since cannot be slipped in), with the
//! confinement, environment allowlist and fd hygiene of the separate binaries.
//!
//! # Nothing may run before it
//!
//! A child's sandbox goes on after its start-up: what the process did before (the Rust runtime's
//! start-up, and whatever `main` did before the call) it keeps. A thread started before the call
//! would run the application's code inside the sandboxed child; a file opened would stay open in
//! it. So the call is the first statement of `main`, before logging, an async runtime, argument
//! parsing or a window. The drift test builds an application of exactly that shape and runs it
//! with the policies in learning mode: its children make no call the policies do not name.

use ipc_protocol::Role;

/// The first argument of a GPU process started from the application's executable.
pub const ROLE_GPU: &str = "--triptych-child=gpu";

/// The first argument of a renderer started from the application's executable.
pub const ROLE_RENDERER: &str = "--triptych-child=renderer";

/// The first argument that starts `role`.
pub(crate) fn flag(role: Role) -> &'static str {
    match role {
        Role::Gpu => ROLE_GPU,
        Role::Renderer => ROLE_RENDERER,
    }
}

/// The role this process was started in, if the launcher started it as a child.
pub fn started_as() -> Option<Role> {
    let first = std::env::args_os().nth(1)?;
    match first.to_str()? {
        ROLE_GPU => Some(Role::Gpu),
        ROLE_RENDERER => Some(Role::Renderer),
        _ => None,
    }
}

/// Runs the GPU process or the renderer when the shell started this executable as one, and
/// then exits (0 when the role ended cleanly, 1 when it failed, after logging why); returns at
/// once otherwise. Call it first thing in `main` (see the module's docs for why nothing may
/// come before it):
///
/// (Feature `children`, on by default.)
///
/// ```no_run
/// fn main() {
///     triptych::run_child_if_asked();
///     // The application: a window, a shell (`triptych::shell::ShellBuilder`), ...
/// }
/// ```
#[cfg(feature = "children")]
// The example's point is where the call stands: first in `main`.
#[allow(clippy::needless_doctest_main)]
pub fn run_child_if_asked() {
    let Some(role) = started_as() else {
        return;
    };
    ipc_protocol::logging::init("warn");
    let result = match role {
        Role::Gpu => gpu_process::start::run(Box::new(gpu_process::hooks::NoHooks)),
        Role::Renderer => renderer_process::start::run(Box::new(renderer_process::hooks::NoHooks)),
    };
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            tracing::error!(role = %role, error = format!("{e:#}"), "child process failed");
            std::process::exit(1)
        }
    }
}
