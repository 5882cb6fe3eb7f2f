//! Spawning a child process and joining it to the launcher's channels.
//!
//! Each child is a sibling binary of `triptych` (`triptych-gpu`, `triptych-renderer`), started
//! with the name of a fresh `IpcOneShotServer` on its command line. Between fork and exec it asks
//! for `SIGKILL` when the launcher's spawning thread dies (`PR_SET_PDEATHSIG`), then checks that
//! its parent is still the launcher, closing the race where the launcher died before the prctl.
//! Once spawned the launcher holds a pidfd of the child: it becomes readable when the child
//! exits, and signals sent through it cannot hit a recycled pid. A [`ChildProc`] that is dropped
//! kills and reaps its process, so no path out of the launcher leaves a child or a zombie.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver, IpcSender};
use ipc_protocol::bootstrap::{Hello, IPC_FLAG};
use serde::{de::DeserializeOwned, Serialize};
use triptych_sys::poll::{wait_readable, WaitOutcome};

/// How long a child has to connect after it was started.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The path of the sibling binary `name`.
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the launcher's own path")?;
    let dir = exe
        .parent()
        .context("the launcher's path has no directory")?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} not found next to {}: build the whole workspace (cargo build --workspace)",
            name,
            exe.display()
        );
    }
    Ok(path)
}

/// A child process: killed and reaped when dropped.
#[derive(Debug)]
pub struct Process {
    /// The role name.
    pub role: &'static str,
    /// Its pid.
    pub pid: u32,
    /// A pidfd of it.
    pub pidfd: OwnedFd,
    child: Child,
    status: Option<ExitStatus>,
}

impl Process {
    /// Whether the child has exited (without reaping it).
    pub fn exited(&self) -> bool {
        self.status.is_some()
            || matches!(
                wait_readable(self.pidfd.as_fd(), Duration::ZERO),
                Ok(WaitOutcome::Ready)
            )
    }

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
    pub fn signal(&self, signal: i32) {
        if self.status.is_none() {
            if let Err(e) = triptych_sys::pidfd::pidfd_send_signal(self.pidfd.as_fd(), signal) {
                tracing::debug!(role = self.role, pid = self.pid, error = %e, "signal not delivered");
            }
        }
    }

    /// Kills the child with SIGKILL through its pidfd and reaps it.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        self.signal(libc::SIGKILL);
        self.wait_exit(Duration::from_secs(5))
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
pub struct ChildProc<C: Serialize, E: Serialize> {
    /// The process.
    pub proc: Process,
    /// Commands go here.
    pub commands: IpcSender<C>,
    /// Events come from here (taken by the event loop).
    pub events: Option<IpcReceiver<E>>,
}

impl<C, E> ChildProc<C, E>
where
    C: Serialize + DeserializeOwned + Send + 'static,
    E: Serialize + DeserializeOwned + Send + 'static,
{
    /// Starts `binary` in role `role` and waits for it to connect, with `setup` applied to the
    /// command first: its `pre_exec` hooks (the sandbox's confinement, `crate::jail`) run before
    /// the parent-death hook below.
    pub fn spawn_with(
        role: &'static str,
        binary: &str,
        extra_args: &[String],
        setup: impl FnOnce(&mut Command),
    ) -> anyhow::Result<Self> {
        let path = sibling(binary)?;
        let (server, name) =
            IpcOneShotServer::<Hello<C, E>>::new().context("creating the bootstrap server")?;
        let launcher_pid = std::process::id();
        let mut cmd = Command::new(&path);
        cmd.arg(IPC_FLAG)
            .arg(&name)
            .args(extra_args)
            .stdin(Stdio::null());
        setup(&mut cmd);
        // SAFETY: the closure runs between fork and exec in the child and only calls prctl and
        // getppid, both async-signal-safe, and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                triptych_sys::prctl::set_pdeathsig(libc::SIGKILL)
                    .map_err(|e| std::io::Error::from_raw_os_error(e.errno as i32))?;
                if nix::unistd::getppid().as_raw() as u32 != launcher_pid {
                    // The launcher is already gone: do not run orphaned.
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting the {role} process {}", path.display()))?;
        let pid = child.id();
        let pidfd = match triptych_sys::pidfd::pidfd_open(pid as i32) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e)
                    .with_context(|| format!("opening a pidfd of the {role} process {pid}"));
            }
        };
        let mut proc = Process {
            role,
            pid,
            pidfd,
            child,
            status: None,
        };
        // Accept on a thread so that a child that dies before connecting is noticed.
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name(format!("{role}-accept"))
            .spawn(move || {
                let _ = tx.send(server.accept());
            })
            .context("spawning the accept thread")?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let hello = loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(Ok((_rx, hello))) => break hello,
                Ok(Err(e)) => bail!("the {role} process {pid} sent a bad hello: {e}"),
                Err(_) => {}
            }
            if proc.exited() {
                let st = proc.wait_exit(Duration::from_secs(1));
                bail!(
                    "the {role} process {pid} exited before connecting ({})",
                    describe(st)
                );
            }
            if Instant::now() > deadline {
                bail!("the {role} process {pid} did not connect within {CONNECT_TIMEOUT:?}");
            }
        };
        if hello.role != role {
            bail!(
                "the {role} process {pid} introduced itself as {:?}",
                hello.role
            );
        }
        Ok(ChildProc {
            proc,
            commands: hello.commands,
            events: Some(hello.events),
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
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str())
        .unwrap_or("unknown")
}
