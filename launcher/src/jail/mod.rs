//! The launcher's side of the sandbox: confining each child at spawn, handing over the links
//! between the children, hearing about violations, and saying which layers are really on.
//!
//! # Layers
//!
//! 1. **Credentials and namespaces**, set up between fork and exec ([`triptych_sys::jail`]):
//!    both children join one user namespace created for the run ([`triptych_sys::userns`]);
//!    each gets its own new network and IPC namespaces; both start with no capabilities (locked
//!    securebits, empty bounding set), even when the launcher runs as root. The launcher itself
//!    is not dumpable (`PR_SET_DUMPABLE` 0, set in `main`), so no process of its uid without
//!    `CAP_SYS_PTRACE` in the initial namespace can ptrace it or `pidfd_getfd` from it: the
//!    renderer cannot take the launcher's fds whatever it does. A layer the kernel does not allow
//!    here (user namespaces disabled, no privilege for network namespaces) is left out and the
//!    summary and `triptych doctor` say so.
//! 2. **Resource limits and seccomp**, which each child puts on itself once its bootstrap is
//!    done (`renderer-process/src/sandbox.rs`, `gpu-process/src/sandbox.rs`).
//!
//! # Fds each child inherits (at the numbers of [`triptych_sandbox::fds`])
//!
//! - the write end of a *report* pipe, used only where the kernel lacks seccomp user
//!   notification: the child's `SIGSYS` handler writes a record of a trapped call into it; a
//!   thread here reads it, logs `sandbox violation in <role>: <call>`, and keeps it for the trace
//!   and the summary. Where user notification works (every kernel from 5.7), violations come from
//!   the kernel instead: the child installs its allowlist with a listener and hands the listener
//!   over (`SandboxListener`) before anything else; a thread here reads each refused call from
//!   it, records it and kills the child. Anything written to the pipe then is a forgery, and
//!   costs the child its life as a protocol violation;
//! - one end of a *handover* socket: whenever a child is attached to a (new) peer, the link to
//!   that peer goes over it, before the ipc message that announces the peer
//!   ([`ipc_protocol::wire`]): to the renderer a pidfd of the GPU process (opened here, so
//!   the renderer never needs `pidfd_open`) or its end of an `SCM_RIGHTS` socket; to the GPU
//!   process its end of that socket.
//!
//! # Transport
//!
//! `--transport auto` takes `pidfd_getfd` when the same self-test that `triptych doctor` runs
//! ([`pidfd_self_test`]) shows that a confined child can take an fd from a confined sibling,
//! else `SCM_RIGHTS`, and says which and why.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::Receiver;
use ipc_protocol::bootstrap::CONTROL_FD;
use ipc_protocol::channel::Wire;
use ipc_protocol::messages::{Transport, ViolationReports};
use ipc_protocol::wire::{self, LinkKind};
use triptych_sandbox::fds::{HANDOVER_FD, REPORT_FD};
use triptych_sandbox::report::Violation;
use triptych_sys::jail::{Confinement, Namespaces};
use triptych_sys::seccomp::{TrapRecord, RECORD_LEN};
use triptych_sys::signal::Signal;
use triptych_trace::{Args, InstantScope, Marker, Recorder};

use crate::child::{ChildProc, Children};
use crate::config::{SandboxMode, Transport as TransportChoice};
use crate::crash::Cause;
use crate::summary::{RoleLayers, SandboxSummary};
use ipc_protocol::Role;

/// What `/proc/PID/fd/N` reads for a seccomp user-notification listener.
const LISTENER_LINK: &str = "anon_inode:seccomp notify";

mod layers;
mod learn;
mod observe;
mod reports;

pub use layers::{choose_transport, doctor_lines, Layers};
pub use observe::observe;
use reports::report_reader;

/// How long the report of a dead child may take to drain.
const REPORT_DRAIN: Duration = Duration::from_secs(2);

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    triptych_sys::fd::pipe_cloexec().context("creating a pipe")
}

fn seqpacket_pair() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    triptych_sys::socket::seqpacket_pair().context("creating a unix socket pair")
}

fn dup(fd: &OwnedFd) -> anyhow::Result<OwnedFd> {
    triptych_sys::fd::dup_cloexec(fd.as_fd()).context("duplicating an fd")
}

/// What the launcher heard about a child's sandbox.
#[derive(Debug)]
enum Report {
    /// A refused call, as the kernel (or, without user notification, the child) reported it.
    Violation(Violation),
    /// Something the child did to the reporting channel that the protocol does not allow.
    Forged(String),
}

/// A child's sandbox, as the launcher holds it.
#[derive(Debug)]
struct Held {
    role: Role,
    /// The launcher's end of the handover socket.
    handover: OwnedFd,
    /// Reports, until every reporting thread has ended.
    reports: Receiver<Report>,
    /// Where a listener thread sends its reports (dropped once one is started).
    report_tx: Option<crossbeam_channel::Sender<Report>>,
    /// A pidfd of the child, for the reporting threads to kill it with.
    pidfd: OwnedFd,
}

/// The sandbox of one run.
#[derive(Debug)]
pub struct Jail {
    layers: Layers,
    transport: Transport,
    transport_reason: String,
    children: HashMap<u32, Held>,
    spawned: HashMap<Role, u32>,
    /// SCM_RIGHTS sockets made for a (GPU process, renderer) pairing, one end not yet handed
    /// over, by renderer pid.
    waiting_gpu_end: HashMap<u32, OwnedFd>,
    waiting_renderer_end: HashMap<u32, OwnedFd>,
    violations: Vec<Violation>,
    observed: HashMap<&'static str, RoleLayers>,
    /// How violations reach the launcher, and why when not by the kernel.
    reports: ViolationReports,
    reports_reason: Option<String>,
    /// Enforcing, or learning (see [`learn`]).
    mode: SandboxMode,
    /// What the listeners learned, in learning mode.
    learned: learn::SharedLearned,
    /// What each role's processes wrote to stderr.
    stderr: HashMap<Role, std::sync::Arc<crate::child_log::Tally>>,
    /// How the children are started (their binaries checked when the run started).
    starts: Children,
    /// Whether renderers start as batch tasks ([`Jail::batch_renderers`]).
    batch_renderers: bool,
}

impl Jail {
    /// Finds out what the kernel allows and picks the transport. Learning mode needs seccomp
    /// user notification; without it, `Err` says so.
    /// `views`: how many renderers one GPU process serves.
    pub fn new(
        arg: TransportChoice,
        mode: SandboxMode,
        children: Children,
        views: usize,
    ) -> anyhow::Result<Jail> {
        let layers = Layers::find();
        if let Some(why) = &layers.userns_reason {
            tracing::warn!(%why, "children run without a user namespace of their own");
        }
        if let Some(why) = &layers.namespaces_reason {
            tracing::warn!(%why, "children share the launcher's network and IPC namespaces");
        }
        let (transport, transport_reason) = choose_transport(arg, &layers, views)?;
        tracing::info!(transport = transport.as_str(), reason = %transport_reason, "fd transport");
        let (reports, reports_reason) = match triptych_sys::notify::available() {
            Ok(()) => (ViolationReports::Notify, None),
            Err(why) => {
                tracing::warn!(%why, "sandbox violations are reported by the children themselves");
                (ViolationReports::Signal, Some(why))
            }
        };
        if mode == SandboxMode::Learn {
            if let Some(why) = &reports_reason {
                anyhow::bail!("--sandbox learn needs seccomp user notification: {why}");
            }
            tracing::warn!(
                "sandbox in learning mode: calls outside the policies are recorded and let run \
                 (all but process creation and signals to others), so seccomp confines next to \
                 nothing in this run"
            );
        }
        Ok(Jail {
            mode,
            starts: children,
            learned: Default::default(),
            stderr: HashMap::new(),
            reports,
            reports_reason,
            layers,
            transport,
            transport_reason,
            children: HashMap::new(),
            spawned: HashMap::new(),
            waiting_gpu_end: HashMap::new(),
            waiting_renderer_end: HashMap::new(),
            violations: Vec::new(),
            observed: HashMap::new(),
            batch_renderers: false,
        })
    }

    /// Renderers spawned from now on start as batch tasks (`SCHED_BATCH`,
    /// [`triptych_sys::sched`]) where `on`: in a run paced by the launcher, where a renderer
    /// woken for a frame has the rest of the period to composite it. Without a pace the GPU
    /// process makes frames as fast as it can, and a renderer that waited for the scheduler's
    /// tick behind it would hold up every frame.
    pub fn batch_renderers(&mut self, on: bool) {
        self.batch_renderers = on;
    }

    /// How this run starts its children.
    pub fn children(&self) -> &Children {
        &self.starts
    }

    /// The transport of this run.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// How the children report violations.
    pub fn reports(&self) -> ViolationReports {
        self.reports
    }

    /// Whether child `pid` still has to hand over its listener (with user notification).
    pub fn awaits_listener(&self, pid: u32) -> bool {
        self.reports == ViolationReports::Notify
            && self
                .children
                .get(&pid)
                .is_some_and(|h| h.report_tx.is_some())
    }

    /// Takes child `pid`'s user-notification listener and starts reading it. `Err` names what
    /// makes the handover a protocol violation (a second one, a file that is no listener).
    pub fn adopt_listener(&mut self, pid: u32, fd: OwnedFd) -> Result<(), String> {
        if self.reports != ViolationReports::Notify {
            return Err("a listener although violations are reported by signal".into());
        }
        let held = self
            .children
            .get_mut(&pid)
            .ok_or_else(|| format!("a listener from process {pid}, which is not a child"))?;
        let link = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default();
        if link != LISTENER_LINK {
            return Err(format!(
                "a listener that is {link:?}, not a seccomp listener"
            ));
        }
        let tx = held
            .report_tx
            .take()
            .ok_or_else(|| "a second listener".to_owned())?;
        let role = held.role;
        if self.mode == SandboxMode::Learn {
            let learned = self.learned.clone();
            std::thread::Builder::new()
                .name(format!("{role}-{pid}-learn"))
                .spawn(move || learn::listen(role, pid, fd, learned))
                .map_err(|e| format!("spawning the listener thread: {e}"))?;
            return Ok(());
        }
        let pidfd = dup(&held.pidfd).map_err(|e| format!("{e:#}"))?;
        std::thread::Builder::new()
            .name(format!("{role}-{pid}-notify"))
            .spawn(move || {
                // One report per child: the first refused call ends it.
                if let Ok(mut r) = triptych_sys::notify::recv(fd.as_fd()) {
                    r.pid = pid;
                    let v = Violation::new(role.as_str(), r);
                    tracing::error!(pid, tid = r.tid, "{v}");
                    let _ = tx.send(Report::Violation(v));
                    let _ = triptych_sys::pidfd::pidfd_send_signal(pidfd.as_fd(), Signal::SIGKILL);
                }
                // The fds close before the channel: once `reaped` sees it disconnect, nothing of
                // the child is open here.
                drop(fd);
                drop(pidfd);
                drop(tx);
            })
            .map_err(|e| format!("spawning the listener thread: {e}"))?;
        Ok(())
    }

    /// Checks that child `pid`, which handed its listener over before this call's message, kept
    /// no seccomp notification fd of its own: a kept copy would let its threads read and answer
    /// the notifications of its own refused calls. `Err` names the fd found; a table that cannot
    /// be read proves nothing either way and is logged, not held against the child.
    pub fn check_no_kept_listener(&self, pid: u32) -> Result<(), String> {
        if self.reports != ViolationReports::Notify {
            return Ok(());
        }
        // Every thread's table: one made without CLONE_FILES (before the filter, which refuses
        // that) would hold fds of its own.
        let tids = triptych_sys::proc::threads(pid).unwrap_or_else(|_| vec![pid]);
        for tid in tids {
            let links = match triptych_sys::proc::task_fd_links(pid, tid) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(pid, tid, error = %e, "could not read a thread's fd table to check it kept no seccomp listener");
                    continue;
                }
            };
            if let Some((n, _)) = links.iter().find(|(_, link)| link == LISTENER_LINK) {
                return Err(format!(
                    "kept a copy of its seccomp listener (fd {n} of thread {tid}) after handing it over"
                ));
            }
        }
        Ok(())
    }

    /// Spawns `binary` as `role`, confined, with its report pipe and handover socket.
    pub fn spawn<C, E>(&mut self, role: Role) -> anyhow::Result<ChildProc<C, E>>
    where
        C: ipc_protocol::bootstrap::Stream,
        E: Wire,
    {
        let (report_r, report_w) = pipe()?;
        let (handover, child_end) = seqpacket_pair()?;
        let (control, child_control) = seqpacket_pair()?;
        let confinement = self
            .layers
            .confinement()?
            .inherit(report_w, REPORT_FD)?
            .inherit(child_end, HANDOVER_FD)?
            .inherit(child_control, CONTROL_FD)?;
        // A renderer is woken for each frame handed on to it: under SCHED_BATCH it does not
        // preempt the launcher's turn (`triptych_sys::sched`), in a paced run.
        let confinement = if role == Role::Renderer && self.batch_renderers {
            confinement.batch_scheduling()
        } else {
            confinement
        };
        let count = self.spawned.entry(role).or_insert(0);
        let first = *count == 0;
        *count += 1;
        let tally = self.stderr.entry(role).or_default().clone();
        let child = ChildProc::spawn_with(&self.starts, role, control, &[], tally, move |cmd| {
            confinement.install(cmd);
            if role == Role::Renderer {
                // One malloc arena: glibc shrinks a thread's own arena through a check that
                // opens /proc/sys/vm/overcommit_memory the first time, a call the renderer's
                // policy refuses. Messages its reader threads allocate and its loop frees (a
                // flood of them from a hostile GPU process) would make it shrink one.
                cmd.env("MALLOC_ARENA_MAX", "1");
            }
            if !first {
                // A replacement runs clean: it keeps no TRIPTYCH_ variable but the log filter,
                // so whatever such a variable asked of the first process of its role (the
                // tests' adversaries read theirs there) is not asked again.
                for (k, _) in std::env::vars_os() {
                    if k.to_str()
                        .is_some_and(|k| k.starts_with("TRIPTYCH_") && k != "TRIPTYCH_LOG")
                    {
                        cmd.env_remove(k);
                    }
                }
            }
        })?;
        let (tx, reports) = crossbeam_channel::unbounded();
        let pidfd = dup(&child.proc.pidfd)?;
        report_reader(
            role,
            child.proc.pid,
            report_r,
            self.reports,
            tx.clone(),
            dup(&pidfd)?,
        )?;
        self.children.insert(
            child.proc.pid,
            Held {
                role,
                handover,
                reports,
                report_tx: Some(tx),
                pidfd,
            },
        );
        Ok(child)
    }

    fn handover(&self, pid: u32) -> anyhow::Result<&OwnedFd> {
        self.children
            .get(&pid)
            .map(|h| &h.handover)
            .with_context(|| format!("no handover socket for process {pid}"))
    }

    /// Before the GPU process `gpu_pid` is told about renderer `renderer_pid` (`Start`,
    /// `NewRenderer`): hands it its end of their `SCM_RIGHTS` socket, if that transport runs.
    pub fn link_gpu(&mut self, gpu_pid: u32, renderer_pid: u32) -> anyhow::Result<()> {
        if self.transport != Transport::ScmRights {
            return Ok(());
        }
        let end = match self.waiting_gpu_end.remove(&renderer_pid) {
            Some(e) => e,
            None => {
                let (g, r) = seqpacket_pair()?;
                self.waiting_renderer_end.insert(renderer_pid, r);
                g
            }
        };
        wire::send_handover(
            self.handover(gpu_pid)?.as_fd(),
            LinkKind::FdSocket,
            u64::from(renderer_pid),
            end.as_fd(),
            None,
        )
        .with_context(|| {
            format!("handing the GPU process {gpu_pid} its socket to renderer {renderer_pid}")
        })
    }

    /// Before renderer `renderer_pid` is told about GPU process `gpu_pid` of `epoch` (`Start`,
    /// `NewGpu`): hands it a pidfd of the GPU process, or its end of their `SCM_RIGHTS` socket.
    pub fn link_renderer(
        &mut self,
        renderer_pid: u32,
        epoch: u64,
        gpu_pid: u32,
        progress: Option<BorrowedFd<'_>>,
    ) -> anyhow::Result<()> {
        let (kind, fd) = match self.transport {
            Transport::Pidfd => {
                // The GPU process is our unreaped child: its pid cannot have been reused.
                let pidfd = triptych_sys::pidfd::pidfd_open(gpu_pid as i32)
                    .with_context(|| format!("opening a pidfd of the GPU process {gpu_pid}"))?;
                (LinkKind::GpuPidfd, pidfd)
            }
            Transport::ScmRights => {
                let end = match self.waiting_renderer_end.remove(&renderer_pid) {
                    Some(e) => e,
                    None => {
                        let (g, r) = seqpacket_pair()?;
                        self.waiting_gpu_end.insert(renderer_pid, g);
                        r
                    }
                };
                (LinkKind::FdSocket, end)
            }
        };
        wire::send_handover(
            self.handover(renderer_pid)?.as_fd(),
            kind,
            epoch,
            fd.as_fd(),
            progress,
        )
        .with_context(|| {
            format!("handing renderer {renderer_pid} its link to GPU process {gpu_pid}")
        })
    }

    /// After process `pid` died and was reaped: its violations, logged already, are recorded as
    /// trace instants and kept for the summary. Returns the cause of death they show: the first
    /// violation's call, or a forged report.
    pub fn reaped(&mut self, pid: u32, rec: &Recorder, frame: Option<u64>) -> Option<Cause> {
        let mut held = self.children.remove(&pid)?;
        held.report_tx = None;
        self.waiting_gpu_end.remove(&pid);
        self.waiting_renderer_end.remove(&pid);
        let deadline = std::time::Instant::now() + REPORT_DRAIN;
        let mut first = None;
        while let Ok(r) = held.reports.recv_deadline(deadline) {
            match r {
                Report::Violation(v) => {
                    let mut args = Args::new();
                    args.insert("role".into(), held.role.as_str().into());
                    args.insert("pid".into(), pid.to_string().into());
                    args.insert("call".into(), v.call().into());
                    rec.instant(Marker::SandboxViolation, InstantScope::Global, frame, args);
                    first.get_or_insert_with(|| Cause::SandboxViolation { syscall: v.call() });
                    self.violations.push(v);
                }
                Report::Forged(what) => {
                    first.get_or_insert(Cause::ProtocolViolation {
                        kind: "sandbox report".to_owned(),
                        what,
                    });
                }
            }
        }
        first
    }

    /// Reads what the sandbox of each running child really is, from `/proc`.
    pub fn observe(&mut self, role: Role, pid: u32) {
        match observe(pid) {
            Ok(l) => {
                self.observed.insert(role.as_str(), l);
            }
            Err(e) => {
                tracing::debug!(role = %role, pid, error = %e, "could not read the sandbox state")
            }
        }
    }

    /// What `role`'s processes wrote to stderr so far.
    pub fn stderr_counts(&self, role: Role) -> crate::child_log::StderrCounts {
        self.stderr
            .get(&role)
            .map(|t| t.counts())
            .unwrap_or_default()
    }

    /// The summary of the run's sandbox.
    pub fn summary(&mut self) -> SandboxSummary {
        // Violations of children still running (none in a clean run) are counted too.
        for held in self.children.values() {
            while let Ok(r) = held.reports.try_recv() {
                if let Report::Violation(v) = r {
                    self.violations.push(v);
                }
            }
        }
        let (learned, learned_overflow) = match self.learned.lock() {
            Ok(l) => (l.calls(), l.overflow),
            Err(p) => (p.get_ref().calls(), p.get_ref().overflow),
        };
        SandboxSummary {
            mode: match self.mode {
                SandboxMode::Enforce => "enforce",
                SandboxMode::Learn => "learn",
            }
            .to_owned(),
            learned,
            learned_overflow,
            gpu_landlock: None,
            transport_reason: self.transport_reason.clone(),
            user_namespace: self.layers.userns.is_some(),
            user_namespace_reason: self.layers.userns_reason.clone(),
            namespaces_reason: self.layers.namespaces_reason.clone(),
            renderer: self.observed.get(triptych_sandbox::renderer::ROLE).cloned(),
            gpu: self.observed.get(triptych_sandbox::gpu::ROLE).cloned(),
            violations: self.violations.iter().map(|v| v.to_string()).collect(),
            violation_reports: self.reports.as_str().to_owned(),
            violation_reports_reason: self.reports_reason.clone(),
        }
    }
}
