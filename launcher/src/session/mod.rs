//! One run: start the children, wire their channels, drive frames to the end, recover from any
//! child's crash or hang, shut down.
//!
//! Sequence:
//! 1. spawn the renderer and the GPU process; each joins through its own bootstrap server;
//! 2. create the frame and release channels between them and hand one end to each;
//! 3. start the GPU process first: if the backend asked for cannot work it fails here, at once,
//!    with the missing piece named;
//! 4. start the renderer with the GPU process's pid and export window; map its output;
//! 5. present every frame, handing back the slot it replaces, until the last frame is on screen;
//! 6. ask the renderer for its counters, shut both down, waiting on their pidfds, and SIGKILL
//!    whatever does not exit in time.
//!
//! Supervision runs alongside: a child's death is seen through its pidfd the moment it happens;
//! a hang through a missed heartbeat or, for the GPU process, a fence the renderer waited on in
//! vain. Either way the child is killed, reaped, recorded ([`crate::crash`]) and replaced:
//!
//! - a new GPU process gets the next epoch and resumes at the frame after the last one
//!   presented; the renderer drops everything of the old epoch; the screen keeps the last good
//!   frame meanwhile. Too many crashes step down the fallback ladder (dmabuf -> shm).
//! - a new renderer gets fresh channels; the GPU process frees every buffer the old one held and
//!   resumes at the frame after the last one presented; the launcher keeps showing the old
//!   renderer's last frame from the old output mapping until the new renderer presents.

mod corroborate;
mod events;
mod finish;
mod quiet;

use ipc_protocol::rules;

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use crossbeam_channel::{select, Receiver};
use ipc_protocol::channel::{Delivery, SendError};
use ipc_protocol::messages::{
    BackendRequest, Fault, FaultAction, FaultPoint, GpuInfo, GpuLink, GpuStart, GpuToLauncher,
    LauncherToGpu, LauncherToRenderer, RendererLink, RendererStart, RendererToLauncher,
};
use nix::sys::signal::Signal;
use triptych_trace::{Args, Event, InstantScope, Marker, ProcessInfo, Recorder};

use crate::chaos::Plan;
use crate::child::{describe, signal_name, ChildProc, Process};
use crate::cli::{Buffers, RunArgs};
use crate::crash::{Cause, CrashRecord, RestartPolicy};
use crate::present::Screen;
use crate::summary::RunSummary;

type GpuChild = ChildProc<LauncherToGpu, GpuToLauncher>;
type RendererChild = ChildProc<LauncherToRenderer, RendererToLauncher>;

/// How long children get to exit after `Shutdown`.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// How long the GPU process gets to report that it started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A message that arrives when a child exits.
fn watch_exit(p: &Process) -> anyhow::Result<Receiver<()>> {
    let fd = triptych_sys::fd::dup_cloexec(p.pidfd.as_fd())?;
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name(format!("{}-exit", p.role))
        .spawn(move || {
            // A pidfd polls readable once its process has exited.
            loop {
                match triptych_sys::poll::wait_readable(fd.as_fd(), Duration::from_secs(3600)) {
                    Ok(triptych_sys::poll::WaitOutcome::Ready) => {
                        let _ = tx.send(());
                        return;
                    }
                    Ok(triptych_sys::poll::WaitOutcome::TimedOut) => continue,
                    Err(_) => return,
                }
            }
        })
        .context("spawning an exit watcher")?;
    Ok(rx)
}

/// Open fds of `pid`, not counting fences: a renderer holds a frame's fences only while it
/// waits on them, so they come and go between samples. Fences are checked on their own: none may
/// be left once the last frame is on screen ([`fence_count`]).
fn fd_count(pid: u32) -> Option<usize> {
    let links = triptych_sys::proc::fd_links(pid).ok()?;
    Some(links.iter().filter(|(n, l)| !is_fence(*n, l)).count())
}

/// Whether fd `n` with `/proc` link `link` is a fence: a sync_file, an eventfd, or a pipe other
/// than stdio (which may be pipes to whoever started the launcher) and the sandbox's report
/// pipe.
fn is_fence(n: i32, link: &str) -> bool {
    link == "anon_inode:[eventfd]"
        || link == "anon_inode:sync_file"
        || (link.starts_with("pipe:[") && n > 2 && n != triptych_sandbox::fds::REPORT_FD)
}

/// Fence fds `pid` holds.
fn fence_count(pid: u32) -> Option<usize> {
    let links = triptych_sys::proc::fd_links(pid).ok()?;
    let fences: Vec<_> = links.iter().filter(|(n, l)| is_fence(*n, l)).collect();
    if !fences.is_empty() {
        tracing::debug!(pid, ?fences, "fence fds held");
    }
    Some(fences.len())
}

fn request_of(b: Buffers) -> BackendRequest {
    match b {
        Buffers::Auto => BackendRequest::Auto,
        Buffers::Shm => BackendRequest::Shm,
        Buffers::Dmabuf => BackendRequest::DmaBuf,
    }
}

fn request_name(r: BackendRequest) -> &'static str {
    match r {
        BackendRequest::Auto => "auto",
        BackendRequest::Shm => "shm",
        BackendRequest::DmaBuf => "dmabuf",
    }
}

/// A running GPU process and what the launcher knows of it.
struct Gpu {
    child: GpuChild,
    events: Receiver<Delivery<GpuToLauncher>>,
    exit: Receiver<()>,
    info: GpuInfo,
    epoch: u64,
    last_pong: Instant,
    fault: Option<(u64, Fault)>,
    /// The faults it was asked to fire: any other it reports is a violation.
    faults: Vec<Fault>,
    presented: u64,
    /// Since when it says it waits for releases, if it does.
    starved_since: Option<Instant>,
    /// A send to it found its queue full: it stopped reading its commands.
    unread: bool,
}

/// A running renderer and what the launcher knows of it.
struct Renderer {
    child: RendererChild,
    events: Receiver<Delivery<RendererToLauncher>>,
    exit: Receiver<()>,
    screen: Option<Screen>,
    last_pong: Instant,
    fault: Option<(u64, Fault)>,
    faults: Vec<Fault>,
    presented: u64,
    unread: bool,
    /// A duplicate of its end of the peer socket: frames queued there unread are the kernel's
    /// evidence that it stopped taking frames.
    peer_end: Option<OwnedFd>,
}

impl Renderer {
    fn send_failed(&mut self, e: SendError) {
        if matches!(e, SendError::Full) {
            self.unread = true;
        }
    }
}

/// The budgets of the current children.
#[derive(Debug, Default)]
struct Budgets {
    gpu: rules::Budget,
    renderer: rules::Budget,
}

/// A recovery in progress: a replacement has been started, its first frame is awaited.
struct Recovery {
    role: &'static str,
    detected: Instant,
    record: usize,
}

/// The supervisor of one run.
struct Supervisor<'a> {
    args: &'a RunArgs,
    started: Instant,
    ladder: Vec<BackendRequest>,
    rung: usize,
    gpu_policy: RestartPolicy,
    renderer_policy: RestartPolicy,
    epoch: u64,
    gpu: Option<Gpu>,
    renderer: Option<Renderer>,
    /// The previous renderer's output, shown until the new renderer presents.
    old_screen: Option<Screen>,
    plan: Plan,
    fired: Vec<Fault>,
    kill_times: Vec<(u32, u64)>,
    crashes: Vec<CrashRecord>,
    recovery: Option<Recovery>,
    recoveries: Vec<u64>,
    detections: Vec<u64>,
    fallbacks: Vec<String>,
    summary: RunSummary,
    handoff: Vec<u64>,
    end_to_end: Vec<u64>,
    first_present: Option<Instant>,
    last_present: Instant,
    rec: Recorder,
    events: Vec<Event>,
    processes: Vec<ProcessInfo>,
    ping_seq: u64,
    last_ping: Instant,
    /// The last time a frame reached the screen or a child was (re)started.
    last_progress: Instant,
    /// The children's sandbox: confinement at spawn, link handovers, violations.
    jail: crate::jail::Jail,
    /// What was produced and presented, in order.
    frames: rules::Frames,
    budgets: Budgets,
    quiet: quiet::Quiet,
    /// Fence-timeout claims being checked.
    checks: corroborate::Checks,
    /// The GPU process reported a renderer violation; acted on in the main loop.
    pending_renderer_breach: Option<rules::Breach>,
    /// A GPU violation found while handling a renderer message; acted on in the main loop.
    pending_gpu_breach: Option<rules::Breach>,
}

/// Keeps at most 32 notes of one kind.
fn push_bounded(v: &mut Vec<String>, note: String) {
    if v.len() < 32 {
        v.push(note);
    }
}

impl Supervisor<'_> {
    fn trace_instant(&self, marker: Marker, frame: Option<u64>, args: &[(&str, String)]) {
        let mut a = Args::new();
        for (k, v) in args {
            a.insert((*k).to_owned(), v.clone().into());
        }
        self.rec.instant(marker, InstantScope::Global, frame, a);
    }

    fn faults_for(&self, faults: &[Fault]) -> Vec<Fault> {
        faults
            .iter()
            .filter(|f| !self.fired.contains(f))
            .copied()
            .collect()
    }

    fn resume_from(&self) -> u64 {
        self.summary.last_frame.map_or(0, |f| f + 1)
    }

    /// Spawns a GPU process for the current rung, producing for `link`, and waits for it to
    /// start. Returns the error text when it failed to start.
    fn start_gpu(
        &mut self,
        link: RendererLink,
        gpu_end: OwnedFd,
    ) -> anyhow::Result<Result<Gpu, (u32, String)>> {
        self.epoch += 1;
        let request = self.ladder[self.rung];
        let mut child: GpuChild = self
            .jail
            .spawn("gpu", "triptych-gpu")
            .context("starting the GPU process")?;
        let pid = child.proc.pid;
        self.processes.push(ProcessInfo {
            pid,
            name: format!("gpu (epoch {})", self.epoch),
            threads: vec![],
        });
        let events = ipc_protocol::channel::forward(
            &format!("gpu-{pid}-events"),
            child.events.take().context("gpu events taken")?,
        )?;
        let exit = watch_exit(&child.proc)?;
        self.budgets.gpu = rules::Budget::default();
        self.frames.new_epoch(self.epoch, self.resume_from());
        let mut faults = self.faults_for(&self.plan.gpu);
        if self.args.crash_gpu_on_start_with.map(request_of) == Some(request) {
            faults.push(Fault {
                frame: 0,
                point: FaultPoint::GpuStartup,
                action: FaultAction::Abort,
            });
        }
        if let Err(e) = self.jail.link_gpu(pid, link.renderer_pid) {
            // It died already: the loop below sees it disconnect and reports that.
            tracing::warn!(error = %e, "could not hand the GPU process its link to the renderer");
        }
        let transport = self.jail.transport();
        let sent_faults = faults.clone();
        let start = LauncherToGpu::Start(GpuStart {
            epoch: self.epoch,
            width: self.args.size.width,
            height: self.args.size.height,
            layers: self.args.layers,
            frames: self.args.frames,
            first_frame: self.resume_from(),
            pool_per_layer: self.args.pool,
            backend: request,
            renderer: link,
            transport,
            faults,
            trace: self.args.trace.is_some(),
            reports: self.jail.reports(),
        });
        if let Err(e) = child.commands.send_with(&start, &[gpu_end.as_fd()]) {
            // It died already: the loop below sees it disconnect and reports that.
            tracing::warn!(error = %e, "could not send Start to the GPU process");
        }
        drop(gpu_end);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            select! {
                recv(events) -> m => match m {
                    Ok(Ok((GpuToLauncher::SandboxListener, mut fds))) => {
                        let adopted = fds.pop().ok_or_else(|| "no fd".to_owned()).and_then(|fd| self.jail.adopt_listener(pid, fd));
                        if let Err(what) = adopted {
                            child.proc.kill();
                            return Ok(Err((pid, format!("protocol violation: SandboxListener: {what}"))));
                        }
                    }
                    Ok(Ok((GpuToLauncher::Started(info), _))) => {
                        if info.window.0 >= info.window.1 || info.pid != pid {
                            child.proc.kill();
                            return Ok(Err((pid, format!("protocol violation: Started: pid {} window {:?}", info.pid, info.window))));
                        }
                        if self.jail.awaits_listener(pid) {
                            child.proc.kill();
                            return Ok(Err((pid, "protocol violation: Started: before its sandbox listener".to_owned())));
                        }
                        if let Some(reason) = &info.backend_reason {
                            self.trace_instant(Marker::Fallback, None, &[("from", "dmabuf".into()), ("to", info.backend.as_str().into()), ("why", reason.clone())]);
                        }
                        return Ok(Ok(Gpu { child, events, exit, info, epoch: self.epoch, last_pong: Instant::now(), fault: None, faults: sent_faults, presented: 0, starved_since: None, unread: false }));
                    }
                    Ok(Ok((GpuToLauncher::Failed(e), _))) => return Ok(Err((pid, e))),
                    Ok(Ok((GpuToLauncher::FaultFired { fault, .. }, _))) if sent_faults.contains(&fault) => self.fired.push(fault),
                    Ok(Ok((GpuToLauncher::Trace(t), _))) => {
                        if let Ok(true) = self.budgets.gpu.trace(&t, self.args.trace.is_some()) {
                            self.events.extend(t);
                        }
                    }
                    Ok(Ok((other, _))) => {
                        child.proc.kill();
                        return Ok(Err((pid, format!("protocol violation: {} before Started", ipc_protocol::channel::Wire::kind(&other)))));
                    }
                    Ok(Err(v)) => {
                        child.proc.kill();
                        return Ok(Err((pid, format!("protocol violation: {v}"))));
                    }
                    Err(_) => {
                        let st = child.proc.wait_exit(Duration::from_secs(1));
                        return Ok(Err((pid, format!("exited while starting ({})", describe(st)))));
                    }
                },
                default(deadline.saturating_duration_since(Instant::now())) => {
                    child.proc.kill();
                    return Ok(Err((pid, format!("did not start within {START_TIMEOUT:?}"))));
                }
            }
        }
    }

    /// Starts a GPU process, stepping down the ladder while it keeps failing to start.
    fn start_gpu_with_ladder(
        &mut self,
        make_link: &mut dyn FnMut() -> anyhow::Result<(RendererLink, GpuLinkEnds)>,
    ) -> anyhow::Result<(Gpu, GpuLinkEnds)> {
        loop {
            let (link, mut ends) = make_link()?;
            let gpu_end = ends.gpu.take().context("link made without a GPU end")?;
            match self.start_gpu(link, gpu_end)? {
                Ok(g) => return Ok((g, ends)),
                Err((pid, why)) => {
                    let now = Instant::now();
                    if self.args.buffers == Buffers::Dmabuf
                        && self.rung == 0
                        && self.crashes.is_empty()
                        && !why.contains("exited")
                    {
                        // `--buffers dmabuf` that cannot work is a configuration error, not a crash.
                        bail!("the GPU process could not start: {why}");
                    }
                    let fallback = match why.strip_prefix("protocol violation: ") {
                        Some(what) => Cause::ProtocolViolation {
                            kind: "start".to_owned(),
                            what: what.to_owned(),
                        },
                        None => Cause::Exited {
                            code: None,
                            signal: None,
                        },
                    };
                    let cause = self
                        .jail
                        .reaped(pid, &self.rec, self.summary.last_frame)
                        .unwrap_or(fallback);
                    let record = CrashRecord {
                        role: "gpu",
                        pid,
                        cause,
                        at_s: self.started.elapsed().as_secs_f64(),
                        last_frame: self.summary.last_frame,
                        detection_us: None,
                        recovery_us: None,
                        injected: None,
                    };
                    tracing::warn!(pid, %why, "the GPU process failed to start");
                    self.trace_instant(
                        Marker::Crash,
                        self.summary.last_frame,
                        &[("role", "gpu".into()), ("why", why.clone())],
                    );
                    self.crashes.push(record);
                    if self.gpu_policy.crashed(now) {
                        self.step_down(&why)?;
                    }
                }
            }
        }
    }

    /// Moves to the next rung of the GPU fallback ladder, or fails with the crash history.
    fn step_down(&mut self, why: &str) -> anyhow::Result<()> {
        if self.rung + 1 >= self.ladder.len() {
            let history: Vec<String> = self
                .crashes
                .iter()
                .map(|c| {
                    format!(
                        "{:.3}s {} {} {} (last frame {:?})",
                        c.at_s, c.role, c.pid, c.cause, c.last_frame
                    )
                })
                .collect();
            bail!(
                "the GPU process crashed more than {} times within {} s on every rung of the fallback ladder ({}); last: {why}; crash history:\n  {}",
                self.args.max_crashes,
                self.args.restart_window_s,
                self.ladder.iter().map(|r| request_name(*r)).collect::<Vec<_>>().join(" -> "),
                history.join("\n  ")
            );
        }
        let from = request_name(self.ladder[self.rung]);
        self.rung += 1;
        let to = request_name(self.ladder[self.rung]);
        let msg = format!(
            "GPU process crashed more than {} times within {} s with --buffers {from}; falling back to {to}",
            self.args.max_crashes, self.args.restart_window_s
        );
        tracing::warn!("{msg}");
        self.trace_instant(
            Marker::Fallback,
            self.summary.last_frame,
            &[("from", from.into()), ("to", to.into())],
        );
        self.fallbacks.push(msg);
        self.gpu_policy.reset();
        Ok(())
    }
}

/// The two ends of a peer socket between a GPU process and a renderer, each kept until it is
/// handed over, and a duplicate of the renderer's end the launcher keeps as evidence.
struct GpuLinkEnds {
    gpu: Option<OwnedFd>,
    renderer: OwnedFd,
    renderer_dup: OwnedFd,
}

fn new_link(renderer_pid: u32, resume_from: u64) -> anyhow::Result<(RendererLink, GpuLinkEnds)> {
    let (gpu, renderer) =
        ipc_protocol::channel::socket_pair().context("creating the peer socket")?;
    let renderer_dup = triptych_sys::fd::dup_cloexec(renderer.as_fd())?;
    Ok((
        RendererLink {
            renderer_pid,
            resume_from,
        },
        GpuLinkEnds {
            gpu: Some(gpu),
            renderer,
            renderer_dup,
        },
    ))
}

impl Supervisor<'_> {
    fn spawn_renderer(&mut self) -> anyhow::Result<RendererChild> {
        let mut r: RendererChild = self
            .jail
            .spawn("renderer", "triptych-renderer")
            .context("starting the renderer")?;
        self.processes.push(ProcessInfo {
            pid: r.proc.pid,
            name: "renderer".into(),
            threads: vec![],
        });
        // Events are forwarded by the caller.
        let _ = &mut r;
        Ok(r)
    }

    fn start_renderer(
        &mut self,
        mut child: RendererChild,
        gpu: (u64, u32, (i32, i32)),
        ends: GpuLinkEnds,
    ) -> anyhow::Result<Renderer> {
        let (epoch, gpu_pid, gpu_window) = gpu;
        if let Err(e) = self.jail.link_renderer(child.proc.pid, epoch, gpu_pid) {
            // Its death, if that is why, is seen through its pidfd and handled there.
            tracing::warn!(error = %e, "could not hand the renderer its link to the GPU process");
        }
        let events = ipc_protocol::channel::forward(
            &format!("renderer-{}-events", child.proc.pid),
            child.events.take().context("renderer events taken")?,
        )?;
        let exit = watch_exit(&child.proc)?;
        self.budgets.renderer = rules::Budget::default();
        let faults = self.faults_for(&self.plan.renderer);
        let start = LauncherToRenderer::Start(RendererStart {
            gpu: GpuLink {
                epoch,
                gpu_pid,
                gpu_window,
            },
            layers: self.args.layers,
            faults: faults.clone(),
            trace: self.args.trace.is_some(),
            width: self.args.size.width,
            height: self.args.size.height,
            transport: self.jail.transport(),
            fence_timeout_ms: self.args.fence_timeout_ms,
            reports: self.jail.reports(),
        });
        if let Err(e) = child.commands.send_with(&start, &[ends.renderer.as_fd()]) {
            // Its death, if that is why, is seen through its pidfd and handled there.
            tracing::warn!(error = %e, "could not start the renderer");
        }
        Ok(Renderer {
            child,
            events,
            exit,
            screen: None,
            last_pong: Instant::now(),
            fault: None,
            faults,
            presented: 0,
            unread: false,
            peer_end: Some(ends.renderer_dup),
        })
    }

    /// Records a crash of `role`; the child is already reaped.
    fn record_crash(
        &mut self,
        role: &'static str,
        pid: u32,
        cause: Cause,
        fault: Option<(u64, Fault)>,
        detected_ns: u64,
    ) -> usize {
        let cause = self
            .jail
            .reaped(pid, &self.rec, self.summary.last_frame)
            .unwrap_or(cause);
        let kill = self
            .kill_times
            .iter()
            .position(|(p, _)| *p == pid)
            .map(|i| self.kill_times.remove(i).1);
        let since = fault.map(|(t, _)| t).or(kill);
        let record = CrashRecord {
            role,
            pid,
            cause: cause.clone(),
            at_s: self.started.elapsed().as_secs_f64(),
            last_frame: self.summary.last_frame,
            detection_us: since.map(|t| detected_ns.saturating_sub(t) as f64 / 1000.0),
            recovery_us: None,
            injected: fault
                .map(|(_, f)| crate::chaos::describe(&f))
                .or(kill.map(|_| "external SIGKILL".to_owned())),
        };
        if let Some(t) = since {
            self.detections.push(detected_ns.saturating_sub(t));
        }
        tracing::warn!(role, pid, %cause, last_frame = ?record.last_frame, injected = ?record.injected, "child crashed; restarting it");
        self.trace_instant(
            Marker::Crash,
            self.summary.last_frame,
            &[
                ("role", role.into()),
                ("pid", pid.to_string()),
                ("cause", cause.to_string()),
            ],
        );
        self.crashes.push(record);
        self.crashes.len() - 1
    }

    /// The GPU process died or hung: reap it, record it, replace it.
    fn gpu_down(&mut self, hung: Option<Cause>) -> anyhow::Result<()> {
        let detected_ns = triptych_trace::now_ns();
        let detected = Instant::now();
        let Some(mut g) = self.gpu.take() else {
            return Ok(());
        };
        if hung.is_some() {
            g.child.proc.kill();
        }
        let st = g
            .child
            .proc
            .wait_exit(Duration::from_secs(2))
            .or_else(|| g.child.proc.kill());
        // Everything it sent before dying (trace batches, the fault notice) is still readable:
        // the forwarding thread delivers it, then disconnects, once the socket reports the end.
        // It is dead, so this ends; at most FORWARD_QUEUE messages are waiting.
        while let Ok(Ok((m, _))) = g.events.recv_timeout(Duration::from_millis(500)) {
            match m {
                GpuToLauncher::FaultFired { at_ns, fault } if g.faults.contains(&fault) => {
                    self.fired.push(fault);
                    g.fault = Some((at_ns, fault));
                }
                GpuToLauncher::Trace(t) => {
                    if let Ok(true) = self.budgets.gpu.trace(&t, self.args.trace.is_some()) {
                        self.events.extend(t);
                    }
                }
                // Frames it sent before dying may still be presented by the renderer.
                GpuToLauncher::Produced { frame } => {
                    let _ = self.frames.produced(frame, self.args.frames);
                }
                _ => {}
            }
        }
        let cause = hung.unwrap_or_else(|| exit_cause(st));
        let idx = self.record_crash("gpu", g.child.proc.pid, cause, g.fault, detected_ns);
        if self.gpu_policy.crashed(detected) {
            let why = self.crashes[idx].cause.to_string();
            self.step_down(&why)?;
        }
        drop(g);
        let renderer_pid = self.renderer.as_ref().map_or(0, |r| r.child.proc.pid);
        let resume = self.resume_from();
        let mut mk = || new_link(renderer_pid, resume);
        let (gpu, ends) = self.start_gpu_with_ladder(&mut mk)?;
        self.trace_instant(
            Marker::Restart,
            self.summary.last_frame,
            &[("role", "gpu".into()), ("pid", gpu.info.pid.to_string())],
        );
        if let Some(r) = &mut self.renderer {
            if let Err(e) = self
                .jail
                .link_renderer(r.child.proc.pid, gpu.epoch, gpu.info.pid)
            {
                tracing::warn!(error = %e, "could not hand the renderer its link to the new GPU process");
            }
            let m = LauncherToRenderer::NewGpu(GpuLink {
                epoch: gpu.epoch,
                gpu_pid: gpu.info.pid,
                gpu_window: gpu.info.window,
            });
            if let Err(e) = r.child.commands.send_with(&m, &[ends.renderer.as_fd()]) {
                // A renderer that died meanwhile is replaced through its own pidfd.
                tracing::warn!(error = %e, "could not attach the renderer to the new GPU process");
                r.send_failed(e);
            }
            r.peer_end = Some(ends.renderer_dup);
        }
        self.gpu = Some(gpu);
        self.recovery = Some(Recovery {
            role: "gpu",
            detected,
            record: idx,
        });
        self.last_progress = Instant::now();
        Ok(())
    }

    /// The renderer died or hung: reap it, record it, replace it.
    fn renderer_down(&mut self, hung: Option<Cause>) -> anyhow::Result<()> {
        let detected_ns = triptych_trace::now_ns();
        let detected = Instant::now();
        let Some(mut r) = self.renderer.take() else {
            return Ok(());
        };
        if hung.is_some() {
            r.child.proc.kill();
        }
        let st = r
            .child
            .proc
            .wait_exit(Duration::from_secs(2))
            .or_else(|| r.child.proc.kill());
        while let Ok(Ok((m, _))) = r.events.recv_timeout(Duration::from_millis(500)) {
            match m {
                RendererToLauncher::FaultFired { at_ns, fault } if r.faults.contains(&fault) => {
                    self.fired.push(fault);
                    r.fault = Some((at_ns, fault));
                }
                RendererToLauncher::Trace(t) => {
                    if let Ok(true) = self.budgets.renderer.trace(&t, self.args.trace.is_some()) {
                        self.events.extend(t);
                    }
                }
                _ => {}
            }
        }
        let cause = hung.unwrap_or_else(|| exit_cause(st));
        let idx = self.record_crash("renderer", r.child.proc.pid, cause, r.fault, detected_ns);
        if self.renderer_policy.crashed(detected) {
            let history: Vec<String> = self
                .crashes
                .iter()
                .map(|c| format!("{:.3}s {} {} {}", c.at_s, c.role, c.pid, c.cause))
                .collect();
            bail!(
                "the renderer crashed more than {} times within {} s; crash history:\n  {}",
                self.args.max_crashes,
                self.args.restart_window_s,
                history.join("\n  ")
            );
        }
        // Keep showing its last frame until the replacement presents.
        if let Some(s) = r.screen.take() {
            if s.shown.is_some() {
                self.old_screen = Some(s);
            }
        }
        drop(r);
        let child = self.spawn_renderer()?;
        let (link, mut ends) = new_link(child.proc.pid, self.resume_from())?;
        let gpu_end = ends.gpu.take().context("link made without a GPU end")?;
        let gpu = self
            .gpu
            .as_ref()
            .context("no GPU process while replacing the renderer")?;
        let gpu = (gpu.epoch, gpu.info.pid, gpu.info.window);
        let renderer = self.start_renderer(child, gpu, ends)?;
        if let Some(g) = &mut self.gpu {
            if let Err(e) = self.jail.link_gpu(g.child.proc.pid, link.renderer_pid) {
                tracing::warn!(error = %e, "could not hand the GPU process its link to the new renderer");
            }
            g.starved_since = None;
            match g
                .child
                .commands
                .send_with(&LauncherToGpu::NewRenderer(link), &[gpu_end.as_fd()])
            {
                Ok(()) => {}
                Err(SendError::Full) => g.unread = true,
                Err(_) => tracing::warn!("the GPU process is gone too; it will be replaced"),
            }
        }
        self.trace_instant(
            Marker::Restart,
            self.summary.last_frame,
            &[
                ("role", "renderer".into()),
                ("pid", renderer.child.proc.pid.to_string()),
            ],
        );
        self.renderer = Some(renderer);
        self.summary.fd_counts.renderer_at_10 = None;
        self.recovery = Some(Recovery {
            role: "renderer",
            detected,
            record: idx,
        });
        self.last_progress = Instant::now();
        Ok(())
    }
}

fn exit_cause(st: Option<std::process::ExitStatus>) -> Cause {
    use std::os::unix::process::ExitStatusExt;
    match st {
        Some(s) => Cause::Exited {
            code: s.code(),
            signal: s.signal().map(|n| signal_name(n).to_owned()),
        },
        None => Cause::Exited {
            code: None,
            signal: None,
        },
    }
}

/// Runs the pipeline as `args` says, returning the summary.
pub fn run(args: &RunArgs, signals: &Receiver<Signal>) -> anyhow::Result<RunSummary> {
    let (width, height) = (args.size.width, args.size.height);
    let ladder = match args.buffers {
        Buffers::Auto => vec![BackendRequest::Auto, BackendRequest::Shm],
        Buffers::Dmabuf => vec![BackendRequest::DmaBuf, BackendRequest::Shm],
        Buffers::Shm => vec![BackendRequest::Shm],
    };
    let window = Duration::from_secs(args.restart_window_s);
    let plan = args
        .chaos
        .map(|seed| Plan::new(seed, args.chaos_kills, args.frames))
        .unwrap_or_default()
        .with_faults(&args.faults);
    if args.chaos.is_some() {
        tracing::info!(kills = plan.len(), "chaos mode");
    }
    let rec = if args.trace.is_some() {
        Recorder::new(std::process::id())
    } else {
        Recorder::disabled()
    };
    let mut sv = Supervisor {
        args,
        started: Instant::now(),
        ladder,
        rung: 0,
        gpu_policy: RestartPolicy::new(args.max_crashes, window),
        renderer_policy: RestartPolicy::new(args.max_crashes, window),
        epoch: 0,
        gpu: None,
        renderer: None,
        old_screen: None,
        plan,
        fired: Vec::new(),
        kill_times: Vec::new(),
        crashes: Vec::new(),
        recovery: None,
        recoveries: Vec::new(),
        detections: Vec::new(),
        fallbacks: Vec::new(),
        summary: RunSummary {
            width,
            height,
            layers: args.layers,
            ..RunSummary::default()
        },
        handoff: Vec::with_capacity(args.frames as usize),
        end_to_end: Vec::with_capacity(args.frames as usize),
        first_present: None,
        last_present: Instant::now(),
        rec,
        events: Vec::new(),
        processes: vec![ProcessInfo {
            pid: std::process::id(),
            name: "launcher".into(),
            threads: vec![],
        }],
        ping_seq: 0,
        last_ping: Instant::now(),
        last_progress: Instant::now(),
        jail: crate::jail::Jail::new(args.transport),
        frames: rules::Frames::default(),
        budgets: Budgets::default(),
        quiet: quiet::Quiet::default(),
        checks: corroborate::Checks::default(),
        pending_renderer_breach: None,
        pending_gpu_breach: None,
    };
    let renderer_child = sv.spawn_renderer()?;
    let renderer_pid = renderer_child.proc.pid;
    let mut mk = || new_link(renderer_pid, 0);
    let (gpu, ends) = sv.start_gpu_with_ladder(&mut mk)?;
    tracing::info!(backend = gpu.info.backend.as_str(), fence = ?gpu.info.fence, gl = %gpu.info.gl, reason = ?gpu.info.backend_reason, "GPU process started");
    let renderer = sv.start_renderer(
        renderer_child,
        (gpu.epoch, gpu.info.pid, gpu.info.window),
        ends,
    )?;
    sv.gpu = Some(gpu);
    sv.renderer = Some(renderer);
    let result = sv.drive(signals);
    let summary = sv.finish(result.is_ok());
    result.and(summary)
}

impl Supervisor<'_> {
    /// The main loop: until the last frame is on screen, or Ctrl-C.
    fn drive(&mut self, signals: &Receiver<Signal>) -> anyhow::Result<()> {
        let heartbeat = Duration::from_millis(self.args.heartbeat_ms.max(10));
        let hang = Duration::from_millis(self.args.hang_timeout_ms.max(50));
        self.last_progress = Instant::now();
        while self.summary.last_frame != Some(self.args.frames - 1) {
            let gpu_events = self
                .gpu
                .as_ref()
                .map_or_else(crossbeam_channel::never, |g| g.events.clone());
            let gpu_exit = self
                .gpu
                .as_ref()
                .map_or_else(crossbeam_channel::never, |g| g.exit.clone());
            let r_events = self
                .renderer
                .as_ref()
                .map_or_else(crossbeam_channel::never, |r| r.events.clone());
            let r_exit = self
                .renderer
                .as_ref()
                .map_or_else(crossbeam_channel::never, |r| r.exit.clone());
            let checked = self.checks.done.clone();
            select! {
                recv(r_events) -> m => match m {
                    Ok(d) => self.renderer_delivery(d)?,
                    Err(_) => self.channel_closed("renderer", &r_exit)?,
                },
                recv(gpu_events) -> m => match m {
                    Ok(d) => self.gpu_delivery(d)?,
                    Err(_) => self.channel_closed("gpu", &gpu_exit)?,
                },
                recv(gpu_exit) -> _ => self.gpu_down(None)?,
                recv(r_exit) -> _ => self.renderer_down(None)?,
                recv(checked) -> v => if let Ok((claim, finding)) = v {
                    self.checks.finished();
                    self.fence_verdict(claim, finding)?;
                },
                recv(signals) -> s => {
                    tracing::warn!(signal = ?s.ok(), "interrupted: shutting down");
                    return Ok(());
                }
                default(heartbeat) => {}
            }
            if let Some(b) = self.pending_gpu_breach.take() {
                self.gpu_violation(b)?;
            }
            if let Some(b) = self.pending_renderer_breach.take() {
                self.renderer_violation(b)?;
            }
            if self.renderer.as_ref().is_some_and(|r| r.unread) {
                self.renderer_violation(rules::Breach::new(
                    "control socket",
                    "stopped reading the launcher's commands (its queue is full)",
                ))?;
            }
            if self.gpu.as_ref().is_some_and(|g| g.unread) {
                self.gpu_violation(rules::Breach::new(
                    "control socket",
                    "stopped reading the launcher's commands (its queue is full)",
                ))?;
            }
            // Heartbeats.
            if self.last_ping.elapsed() >= heartbeat {
                self.ping_seq += 1;
                self.last_ping = Instant::now();
                if let Some(g) = &mut self.gpu {
                    if let Err(SendError::Full) =
                        g.child.commands.send(&LauncherToGpu::Ping(self.ping_seq))
                    {
                        g.unread = true;
                    }
                }
                if let Some(r) = &mut self.renderer {
                    if let Err(e) = r
                        .child
                        .commands
                        .send(&LauncherToRenderer::Ping(self.ping_seq))
                    {
                        r.send_failed(e);
                    }
                }
            }
            if let Some(silent) = self
                .gpu
                .as_ref()
                .map(|g| g.last_pong.elapsed())
                .filter(|s| *s > hang)
            {
                self.gpu_down(Some(Cause::Hang {
                    silent_ms: silent.as_millis() as u64,
                }))?;
            }
            if let Some(silent) = self
                .renderer
                .as_ref()
                .map(|r| r.last_pong.elapsed())
                .filter(|s| *s > hang)
            {
                self.renderer_down(Some(Cause::Hang {
                    silent_ms: silent.as_millis() as u64,
                }))?;
            }
            // Both answer, yet nothing reaches the screen: blame whoever holds things up.
            let stalled = self.last_progress.elapsed();
            if stalled > hang && self.gpu.is_some() {
                self.stalled(stalled, hang)?;
            }
        }
        Ok(())
    }

    /// A child's control socket closed. A dying child closes it a moment before its pidfd
    /// reports the exit; a child that closes it and lives on has broken the protocol.
    fn channel_closed(&mut self, role: &'static str, exit: &Receiver<()>) -> anyhow::Result<()> {
        let died = exit.recv_timeout(Duration::from_millis(250)).is_ok();
        let cause = (!died).then(|| Cause::ProtocolViolation {
            kind: "control socket".to_owned(),
            what: "closed while the process lives on".to_owned(),
        });
        if role == "gpu" {
            self.gpu_down(cause)
        } else {
            self.renderer_down(cause)
        }
    }

    /// No frame reached the screen for `stalled` although both children answer. Blame goes by
    /// what the kernel shows, then by what the GPU process says about its pool:
    /// 1. frames queued unread at the renderer's end of the peer socket: the renderer stopped
    ///    taking frames;
    /// 2. the GPU process has waited for releases since before the stall began: the renderer is
    ///    withholding its buffers;
    /// 3. otherwise the GPU process stopped producing.
    fn stalled(&mut self, stalled: Duration, hang: Duration) -> anyhow::Result<()> {
        let ms = stalled.as_millis() as u64;
        let unread = self
            .renderer
            .as_ref()
            .and_then(|r| r.peer_end.as_ref())
            .and_then(|fd| triptych_sys::scm::queued_bytes(fd.as_fd()).ok())
            .unwrap_or(0);
        if unread > 0 {
            return self.renderer_down(Some(Cause::ProtocolViolation {
                kind: "peer socket".to_owned(),
                what: format!("left {unread} bytes of frames unread for {ms} ms"),
            }));
        }
        let starved = self
            .gpu
            .as_ref()
            .and_then(|g| g.starved_since)
            .is_some_and(|t| t.elapsed() + Duration::from_millis(10) >= hang.min(stalled));
        if starved && self.renderer.is_some() {
            return self.renderer_down(Some(Cause::ProtocolViolation {
                kind: "Release".to_owned(),
                what: format!("held every buffer of a layer for {ms} ms"),
            }));
        }
        self.gpu_down(Some(Cause::Stalled { ms }))
    }

    /// The launcher's own check of a renderer's fence-timeout claim came back.
    fn fence_verdict(
        &mut self,
        claim: corroborate::Claim,
        finding: corroborate::Finding,
    ) -> anyhow::Result<()> {
        use corroborate::Finding;
        match finding {
            Finding::Hung => {
                if self.gpu.as_ref().is_some_and(|g| g.epoch == claim.epoch) {
                    self.gpu_down(Some(Cause::FenceTimeout {
                        frame: claim.frame,
                        layer: claim.layer,
                    }))?;
                }
            }
            Finding::Refuted(why) => {
                tracing::warn!(frame = claim.frame, layer = claim.layer, %why, "the renderer's fence timeout is refuted; nobody is blamed");
                self.summary.refuted_fence_timeouts += 1;
            }
            Finding::Bogus(why) => {
                self.renderer_violation(rules::Breach::new("FenceTimeout", why))?;
            }
        }
        Ok(())
    }
}
