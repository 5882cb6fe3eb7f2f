//! Spawning a child process and joining it to the launcher's channels.
//!
//! Each child is a sibling binary of `triptych` (`triptych-gpu`, `triptych-renderer`), started
//! with its end of a fresh control socket at [`CONTROL_FD`] (placed by the caller's confinement,
//! `crate::jail`) and an environment built from an allowlist ([`ENV_ALLOWED`]), not inherited.
//! Between fork and exec it asks
//! for `SIGKILL` when the launcher's spawning thread dies (`PR_SET_PDEATHSIG`), then checks that
//! its parent is still the launcher, closing the race where the launcher died before the prctl.
//! Once spawned the launcher holds a pidfd of the child: it becomes readable when the child
//! exits, and signals sent through it cannot hit a recycled pid. A [`ChildProc`] that is dropped
//! kills and reaps its process, so no path out of the launcher leaves a child or a zombie.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use ipc_protocol::channel::{duplex, Receiver, Sender, Wire};
use triptych_sys::poll::{wait_readable, WaitOutcome};
use triptych_sys::signal::Signal;

/// Environment variables a child may inherit, by exact name or by prefix (ending in `_`):
/// what the GL stack, the C library's locale and logging need. Everything else the launcher
/// was started with stays behind.
pub const ENV_ALLOWED: &[&str] = &[
    "TRIPTYCH_",
    "RUST_BACKTRACE",
    "RUST_LOG",
    "LANG",
    "LC_",
    "TZ",
    "NO_COLOR",
    "LD_LIBRARY_PATH",
    "LIBGL_",
    "MESA_",
    "GALLIUM_",
    "LP_",
    "EGL_",
    "__EGL_",
    "__GLX_",
    "__GL_",
    "NVIDIA_",
    "GBM_",
    "VK_",
];

/// A child's whole environment: the variables of this process that [`env_allowed`] lets
/// through, and the drivers' disk caches turned off.
pub fn environment() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let mut env: Vec<_> = std::env::vars_os()
        .filter(|(k, _)| k.to_str().is_some_and(env_allowed))
        .collect();
    // Mesa's shader cache would write under $HOME; the children have none and open nothing.
    env.push(("MESA_SHADER_CACHE_DISABLE".into(), "true".into()));
    // Likewise NVIDIA's driver, which would write under $HOME/.nv.
    env.push(("__GL_SHADER_DISK_CACHE".into(), "0".into()));
    env
}

/// Whether `name` may pass to a child.
pub fn env_allowed(name: &str) -> bool {
    ENV_ALLOWED.iter().any(|a| {
        if a.ends_with('_') {
            name.starts_with(a)
        } else {
            name == *a
        }
    })
}

/// The children's directory, checked and made absolute (so a later restart does not resolve it
/// again against another working directory): `dir` holds both children's binaries, or the
/// error says which one it lacks and how to say where they are.
pub fn check_children_dir(dir: PathBuf) -> anyhow::Result<PathBuf> {
    let dir = std::path::absolute(&dir)
        .with_context(|| format!("the children's directory {}", dir.display()))?;
    for b in [
        ipc_protocol::Role::Gpu.binary(),
        ipc_protocol::Role::Renderer.binary(),
    ] {
        if !dir.join(b).is_file() {
            bail!(
                "{b} is not in {}: build the whole workspace (cargo build --workspace), or name the children's directory (TRIPTYCH_BIN_DIR, ShellBuilder::binaries)",
                dir.display()
            );
        }
    }
    Ok(dir)
}

/// How a run starts its children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Children {
    /// From this process's own executable (`/proc/self/exe`), in the role its first argument
    /// names ([`crate::role`]): an application that ships one executable.
    ThisExecutable,
    /// The separate `triptych-gpu` and `triptych-renderer` binaries in this directory (checked,
    /// absolute).
    Binaries(PathBuf),
}

impl Children {
    /// Which way, in words (the summary's `processes.children`).
    pub fn describe(&self) -> String {
        match self {
            Children::ThisExecutable => {
                "one executable: this process's own (/proc/self/exe), started in each role".into()
            }
            Children::Binaries(dir) => format!(
                "separate binaries: {} and {} in {}",
                ipc_protocol::Role::Gpu.binary(),
                ipc_protocol::Role::Renderer.binary(),
                dir.display()
            ),
        }
    }

    /// The command that starts `role`, before its arguments, environment and confinement.
    fn command(&self, role: ipc_protocol::Role) -> Command {
        match self {
            Children::Binaries(dir) => Command::new(dir.join(role.binary())),
            Children::ThisExecutable => {
                // The running executable itself, whatever its name on disk now says; argv[0]
                // names the role, as the separate binary's name would.
                let mut cmd = Command::new("/proc/self/exe");
                cmd.arg0(role.binary()).arg(crate::role::flag(role));
                cmd
            }
        }
    }
}

/// Where the children were put, if `TRIPTYCH_BIN_DIR` says (an empty value says nothing).
fn named_children_dir() -> Option<PathBuf> {
    std::env::var_os("TRIPTYCH_BIN_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// This executable's directory.
fn own_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this executable's path")?;
    Ok(exe
        .parent()
        .context("this executable's path has no directory")?
        .to_path_buf())
}

/// Where the command line's children are: `TRIPTYCH_BIN_DIR` (where a package installs them
/// apart from the launcher), else next to this executable, and nowhere else. Checked
/// ([`check_children_dir`]).
pub fn command_line_children_dir() -> anyhow::Result<PathBuf> {
    check_children_dir(match named_children_dir() {
        Some(d) => d,
        None => own_dir()?,
    })
}

/// How an application's shell starts its children: from the directory it named
/// (`ShellBuilder::binaries`) or `TRIPTYCH_BIN_DIR` names, checked; else, with the `children`
/// feature, from its own executable ([`crate::role`]); else from the binaries found by
/// [`find_children_dir`].
pub fn application_children(named: Option<PathBuf>) -> anyhow::Result<Children> {
    if let Some(d) = named.or_else(named_children_dir) {
        return check_children_dir(d).map(Children::Binaries);
    }
    if cfg!(feature = "children") {
        Ok(Children::ThisExecutable)
    } else {
        find_children_dir().map(Children::Binaries)
    }
}

/// Where an application's children are when it did not say: `TRIPTYCH_BIN_DIR`, else next to
/// its executable, else in that directory's parent (an example of this workspace sits in
/// `target/<profile>/examples`, the binaries in `target/<profile>`). Checked
/// ([`check_children_dir`]).
pub fn find_children_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = named_children_dir() {
        return check_children_dir(d);
    }
    let here = own_dir()?;
    let has = |d: &std::path::Path| d.join(ipc_protocol::Role::Gpu.binary()).is_file();
    let found = match here.parent() {
        Some(parent) if !has(&here) && has(parent) => parent.to_path_buf(),
        _ => here,
    };
    check_children_dir(found)
}

/// A child process: killed and reaped when dropped.
#[derive(Debug)]
pub struct Process {
    /// The role name.
    pub role: ipc_protocol::Role,
    /// Its pid.
    pub pid: u32,
    /// A pidfd of it.
    pub pidfd: OwnedFd,
    child: Child,
    status: Option<ExitStatus>,
    /// A word once the launcher's end of its stderr pipe is closed (the child and every copy of
    /// its end gone, and what it wrote logged).
    pub stderr_closed: crossbeam_channel::Receiver<()>,
}

impl Process {
    /// Waits up to `timeout` for the child to exit and reaps it.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.status {
            return Some(s);
        }
        if let Ok(WaitOutcome::Ready) = wait_readable(self.pidfd.as_fd(), timeout) {
            if let Ok(s) = self.child.wait() {
                self.status = Some(s);
            }
        }
        self.status
    }

    /// Sends `signal` through the pidfd (no effect once the child is reaped).
    pub fn signal(&self, signal: Signal) {
        if self.status.is_none() {
            if let Err(e) = triptych_sys::pidfd::pidfd_send_signal(self.pidfd.as_fd(), signal) {
                tracing::debug!(role = %self.role, pid = self.pid, error = %e, "signal not delivered");
            }
        }
    }

    /// Kills the child with SIGKILL through its pidfd and reaps it.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        self.signal(Signal::SIGKILL);
        self.wait_exit(Duration::from_secs(5))
    }

    /// Kills the child for a breach found in what it sent, and reaps it. Returns whether it had
    /// ended on its own before the kill reached it (by an exit, or a signal other than
    /// `SIGKILL`): a child that crashes while the launcher takes an fd from it, say, makes the
    /// take fail, and its death explains the breach. Its pidfd reports the exit a moment after
    /// the kernel stops lending its fds, so a look at the pidfd alone can come too early.
    pub fn kill_for_breach(&mut self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        self.kill()
            .is_some_and(|s| s.signal() != Some(Signal::SIGKILL as i32))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill();
        }
    }
}

/// A running child and its channels.
#[derive(Debug)]
pub struct ChildProc<C, E> {
    /// The process.
    pub proc: Process,
    /// Commands go here; a send never waits (a child that stops reading is seen at once).
    pub commands: Sender<C>,
    /// Events come from here (taken by the event loop).
    pub events: Option<Receiver<E>>,
    /// The reader of its mailbox to the launcher, to wake once it is known dead, so that the
    /// reader sees its end at once ([`ipc_protocol::mailbox::MailboxWaker`]).
    pub waker: Option<ipc_protocol::mailbox::MailboxWaker>,
}

impl<C, E> ChildProc<C, E> {
    /// Wakes the reader of its mailbox to the launcher: call once the child is dead.
    pub fn wake_reader(&self) {
        if let Some(w) = &self.waker {
            w.wake();
        }
    }
}

impl<C: ipc_protocol::bootstrap::Stream, E: Wire> ChildProc<C, E> {
    /// Starts `role` as `children` says, talking over `control` (the launcher's end of the pair
    /// whose other end `setup` places at `CONTROL_FD`), with `setup` applied to the command
    /// first: its `pre_exec` hooks (the sandbox's confinement, `crate::jail`) run before the
    /// parent-death hook below. What it writes to stderr is counted in `stderr_tally`.
    pub fn spawn_with(
        children: &Children,
        role: ipc_protocol::Role,
        control: OwnedFd,
        extra_args: &[String],
        stderr_tally: std::sync::Arc<crate::child_log::Tally>,
        setup: impl FnOnce(&mut Command),
    ) -> anyhow::Result<Self> {
        let launcher_pid = std::process::id();
        let mut cmd = children.command(role);
        // Its stderr is read by the launcher and quarantined (`crate::child_log`).
        cmd.args(extra_args)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .env_clear()
            .envs(environment());
        // The parent-death guard runs after the caller's confinement (its own pre_exec steps).
        setup(&mut cmd);
        triptych_sys::jail::Confinement::new()
            .die_with_parent(launcher_pid)
            .install(&mut cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting the {role} process ({})", children.describe()))?;
        // The child's end went with the command's confinement; dropping `cmd` closes ours.
        drop(cmd);
        let pid = child.id();
        let stderr_closed = match child.stderr.take() {
            None => crossbeam_channel::never(),
            Some(stderr) => match crate::child_log::spawn_reader(role, pid, stderr, stderr_tally) {
                Ok(closed) => closed,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e).with_context(|| {
                        format!("reading the stderr of the {role} process {pid}")
                    });
                }
            },
        };
        let pidfd = match triptych_sys::pidfd::pidfd_open(pid as i32) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e)
                    .with_context(|| format!("opening a pidfd of the {role} process {pid}"));
            }
        };
        let proc = Process {
            role,
            pid,
            pidfd,
            child,
            status: None,
            stderr_closed,
        };
        let (commands, events) = duplex::<C, E>(control, true);
        // Its commands go over ipc-channel from now on: the token first, on the socket.
        let commands = match ipc_protocol::bootstrap::open_stream(commands, role.as_str()) {
            Ok(c) => c,
            Err(e) => {
                let mut proc = proc;
                proc.kill();
                return Err(e).with_context(|| format!("the {role} process {pid}'s commands"));
            }
        };
        Ok(ChildProc {
            proc,
            commands,
            events: Some(events),
            waker: None,
        })
    }
}

/// Describes an exit status: the code, or the signal.
pub fn describe(status: Option<ExitStatus>) -> String {
    match status {
        None => "still running".to_owned(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (_, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
            _ => format!("{s}"),
        },
    }
}

/// The name of a signal number.
pub fn signal_name(sig: i32) -> &'static str {
    triptych_sys::signal::name(sig)
}
