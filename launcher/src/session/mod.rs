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
mod display;
mod drive;
mod edit;
mod embed;
mod events;
mod fence_look;
mod finish;
mod gpu_intake;
mod overlay;
mod parts;
mod quiet;
mod recovery;
mod ringers;
mod slots;
mod spawn;
mod standby;
mod views;
mod vouch;

use ipc_protocol::frame::FenceKind;
use ipc_protocol::{rules, Role};

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use crossbeam_channel::{select, Receiver};
use ipc_protocol::channel::{Bell, Delivery, SendError};
use ipc_protocol::messages::{
    BackendRequest, Fault, GpuInfo, GpuLink, GpuPrepare, GpuStart, GpuToLauncher, LauncherToGpu,
    LauncherToRenderer, OutputOrder, RendererLink, RendererStart, RendererToLauncher, ViewCommand,
    ViewId, ViewStart,
};
use triptych_sys::signal::Signal;
use triptych_trace::{Marker, Recorder};

use crate::chaos::Plan;
use crate::child::{describe, signal_name, ChildProc, Process};
use crate::config::{Buffers, RunConfig};
use crate::crash::{Cause, CrashRecord, Decision};
use crate::present::Screen;
use crate::summary::RunSummary;
use parts::Who;

type GpuChild = ChildProc<LauncherToGpu, GpuToLauncher>;
type RendererChild = ChildProc<LauncherToRenderer, RendererToLauncher>;

use crate::embedding::FIRST_VIEW;

/// Export window `index`'s `[base, end)`.
fn window_of(index: u32) -> (i32, i32) {
    let w = triptych_sys::fd::ExportWindow::of_view(index)
        .unwrap_or(triptych_sys::fd::ExportWindow::GPU);
    (w.base, w.end())
}

/// How long children get to exit after `Shutdown`.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// How long the GPU process gets to report that it started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A message that arrives when a child exits; `bell` is rung as it is sent, for a main loop
/// asleep on the GPU process's ring (`session/gpu_intake.rs`).
fn watch_exit(p: &Process, bell: &Arc<Bell>) -> anyhow::Result<Receiver<()>> {
    let fd = triptych_sys::fd::dup_cloexec(p.pidfd.as_fd())?;
    let (tx, rx) = crossbeam_channel::bounded(1);
    let bell = bell.clone();
    std::thread::Builder::new()
        .name(format!("{}-exit", p.role))
        .spawn(move || {
            // A pidfd polls readable once its process has exited.
            loop {
                match triptych_sys::poll::wait_readable(fd.as_fd(), Duration::from_secs(3600)) {
                    Ok(triptych_sys::poll::WaitOutcome::Ready) => {
                        // Closed before the word goes out: once it is received, the fd is gone.
                        drop(fd);
                        let _ = tx.send(());
                        bell.ring();
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

fn request_name(r: BackendRequest) -> &'static str {
    match r {
        BackendRequest::Auto => "auto",
        BackendRequest::Shm => "shm",
        BackendRequest::DmaBuf => "dmabuf",
    }
}

/// Who fills a GPU process's channel.
pub(super) enum GpuIntake {
    /// A forwarding thread, to the end.
    Thread,
    /// A forwarding thread, until it hands the channel back: asked once, taken at a later turn.
    Handing {
        back: ipc_protocol::channel::Handback<GpuToLauncher>,
        asked: bool,
    },
    /// The main loop.
    Loop(ipc_protocol::channel::Polled<GpuToLauncher>),
}

/// A running GPU process and what the launcher knows of it.
struct Gpu {
    child: GpuChild,
    /// Its progress page, if it was given one.
    progress: Option<Page>,
    events: Receiver<Delivery<GpuToLauncher>>,
    /// Who fills `events`.
    intake: GpuIntake,
    exit: Receiver<()>,
    info: GpuInfo,
    epoch: u64,
    fault: Option<(u64, Fault)>,
    /// The faults it was asked to fire: any other it reports is a violation.
    faults: Vec<Fault>,
    presented: u64,
    /// A send to it found its queue full: it stopped reading its commands.
    unread: bool,
    /// It was the standby, promoted (not a cold start).
    promoted: bool,
    /// It was asked to keep its pipe fences outside the export windows
    /// ([`LauncherToGpu::PrivateFences`]) after the ping of this number: it answers commands
    /// in order, so a pong to a later ping before its answer is a refusal.
    private_asked: Option<u64>,
    /// It said it does.
    private_fences: bool,
    /// What the launcher knows of each view's frames from it, in the order of the run's views.
    links: Vec<Link>,
    /// Frames it produced, of every view, handed on.
    produced: u64,
}

/// What the launcher knows of one view's frames from the current GPU process: its relay and
/// what was found of the renderer and the process through it.
struct Link {
    view: ViewId,
    /// The view's export window's index in the process: no other view gets it until the
    /// process says it stopped serving the view (`Removed`).
    window: u32,
    /// Its frames handed on to the view's renderer, and the buffers the renderer holds
    /// ([`ipc_protocol::relay`]).
    relay: ipc_protocol::relay::Relay,
    /// Since when the renderer has held every buffer of a layer, if it does: the GPU process
    /// cannot render for the view meanwhile ([`ipc_protocol::relay::Relay::starved`]).
    starved_since: Option<Instant>,
    /// Since when it has had a buffer of every layer free, if it has.
    free_since: Option<Instant>,
    /// A renderer was replaced for rejecting every frame of a stall by its word alone: the next
    /// such stall of the view is the GPU process's (see `drive.rs`, `stalled`).
    spared: bool,
    /// It said it rendered every frame of the view.
    finished: bool,
    /// Looks at fences the view's renderer said were no fences, judged so far (at most
    /// [`MAX_FENCE_LOOKS`]).
    looks: u32,
    /// The view's frames are vouched for by the launcher ([`vouch`]): its renderer claimed the
    /// process broke one. One view's claims slow only that view's frames.
    vouch: Option<vouch::Vouch>,
    /// The first frame on the current renderer link that went to be vouched for: every frame
    /// from it on is (frames are numbered one after another on a link), so a claim about any
    /// of them, handed on yet or not, is the renderer's lie.
    vouched_from: Option<u64>,
    /// The scene file it has for the view (what it was started on, then the last edit sent).
    scene_had: Option<std::sync::Arc<crate::scene::LoadedScene>>,
    /// The edit sent to it that it has not drawn yet, and the last ping sent before it.
    edit_on_its_way: Option<(u64, u64)>,
    /// Frames of the view from it presented.
    presented: u64,
    /// It was told to stop serving the view, and has not said it stopped: the view's frames
    /// meanwhile are dropped.
    removing: bool,
    /// Frames of the view it produced, handed on.
    produced: u64,
    /// When a buffer of every layer of the view last became free: the process's frames of every
    /// view and of this one then (`Gpu::produced`, `Link::produced`).
    free_mark: (u64, u64),
}

impl Link {
    /// A fresh link of `view` (in export window `window`) over `relay`, the process having the
    /// scene `scene_had`.
    fn new(
        (view, window): (ViewId, u32),
        relay: ipc_protocol::relay::Relay,
        scene_had: Option<std::sync::Arc<crate::scene::LoadedScene>>,
    ) -> Link {
        Link {
            view,
            window,
            relay,
            starved_since: None,
            free_since: Some(Instant::now()),
            spared: false,
            finished: false,
            looks: 0,
            vouch: None,
            vouched_from: None,
            scene_had,
            edit_on_its_way: None,
            presented: 0,
            removing: false,
            produced: 0,
            free_mark: (0, 0),
        }
    }

    /// The buffers the renderer holds changed: whether it holds a whole layer's pool, and since
    /// when (`produced`: the process's frames of every view so far).
    fn held_changed(&mut self, produced: u64) {
        let now = Instant::now();
        if self.relay.starved().is_some() {
            self.starved_since = self.starved_since.or(Some(now));
            self.free_since = None;
        } else {
            self.starved_since = None;
            if self.free_since.is_none() {
                self.free_since = Some(now);
                self.free_mark = (produced, self.produced);
            }
        }
    }

    /// Frames of other views the process produced since a buffer of every layer of this one was
    /// free.
    fn others_since_free(&self, produced: u64) -> u64 {
        let (all, own) = self.free_mark;
        produced
            .saturating_sub(all)
            .saturating_sub(self.produced.saturating_sub(own))
    }
}

/// The renderer's claims of a fence that is no fence the launcher looks at, per view and GPU
/// process: a lie the look proves costs the process its life at the first; the rest are
/// counted.
const MAX_FENCE_LOOKS: u32 = 4;

impl Gpu {
    /// Sends `command` for `view`.
    fn send_view(&self, view: ViewId, command: ViewCommand) -> Result<(), SendError> {
        self.send_view_with(view, command, &[])
    }

    /// [`Gpu::send_view`], its wake-up of the process put off until the main loop's turn ends
    /// ([`Supervisor::wake_children`]).
    fn send_view_deferred(&self, view: ViewId, command: ViewCommand) -> Result<(), SendError> {
        self.child
            .commands
            .send_deferred(&LauncherToGpu::View { view, command })
    }

    /// [`Gpu::send_view`], its wake-up of the process left to the next one made: for what a
    /// paced process needs only with the next frame it is asked for
    /// ([`ipc_protocol::channel::Sender::send_lazy`]).
    fn send_view_lazy(&self, view: ViewId, command: ViewCommand) -> Result<(), SendError> {
        self.child
            .commands
            .send_lazy(&LauncherToGpu::View { view, command })
    }

    /// Sends `command` for `view`, with `fds`.
    fn send_view_with(
        &self,
        view: ViewId,
        command: ViewCommand,
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> Result<(), SendError> {
        self.child
            .commands
            .send_with(&LauncherToGpu::View { view, command }, fds)
    }

    /// What is known of `view`'s frames from it.
    fn link(&self, view: ViewId) -> Option<&Link> {
        self.links.iter().find(|l| l.view == view)
    }

    /// [`Gpu::link`], to change.
    fn link_mut(&mut self, view: ViewId) -> Option<&mut Link> {
        self.links.iter_mut().find(|l| l.view == view)
    }

    /// A copy of its progress page's read-only file, for a renderer's handover.
    fn page_for_renderer(&self) -> Option<OwnedFd> {
        let p = self.progress.as_ref()?;
        match triptych_sys::fd::dup_cloexec(p.ro.as_fd()) {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::warn!(error = %e, "could not copy the progress page for the renderer");
                None
            }
        }
    }

    /// How it started, as the trace and the crash records name it.
    fn start_kind(&self) -> &'static str {
        if self.promoted {
            "standby promoted"
        } else {
            "cold"
        }
    }
}

/// A GPU process spawned and sent `Prepare`, not yet started: the standby, warm and confined,
/// waiting for its promotion, or a cold start about to be sent `Start`.
/// A GPU process's fence progress page ([`ipc_protocol::progress`]): the read-only file the
/// launcher hands each renderer with its link, and the launcher's own read-only mapping, with
/// which it checks a renderer's fence claims and vouches for frames without taking a file.
#[derive(Debug)]
pub(crate) struct Page {
    ro: OwnedFd,
    reader: std::sync::Arc<ipc_protocol::progress::ProgressReader>,
}

pub(crate) struct WarmGpu {
    child: GpuChild,
    /// Its progress page, if it was given one.
    progress: Option<Page>,
    events: Receiver<Delivery<GpuToLauncher>>,
    /// The thread that fills `events`, to be asked for the channel once the process has
    /// started, in a run whose loop reads it itself ([`Supervisor::ring_sleep`]).
    handback: Option<ipc_protocol::channel::Handback<GpuToLauncher>>,
    exit: Receiver<()>,
    /// The rung it was prepared for.
    backend: BackendRequest,
    /// Its `Ready` report, once it came (listener adopted, fd table checked).
    ready: Option<GpuInfo>,
    /// When it was spawned.
    spawned: Instant,
    /// The last ping sent to it while it waits as a standby (0: none).
    pinged: u64,
    /// The last ping it answered.
    answered_seq: u64,
    /// When it last answered a ping, or became ready.
    answered: Instant,
}

/// One view: its own sandboxed renderer, drawing its own scene, with its own restart ladder;
/// every view's frames come from the one GPU process ([`Gpu::links`]).
struct View {
    id: ViewId,
    /// Its export window's index in the GPU process
    /// ([`triptych_sys::fd::ExportWindow::of_view`]).
    window: u32,
    /// The scene it draws.
    drawn: parts::Drawn,
    /// Its renderer, while one runs.
    renderer: Option<Renderer>,
    /// Its renderer's restart policy, the old output shown meanwhile, the recovery under way.
    pair: parts::ViewPair,
    /// Frames of it presented.
    presented: u64,
    /// The last one.
    last: Option<u64>,
    /// Its renderers' crashes.
    restarts: u32,
    /// The most of its buffers a renderer of it held at once.
    held_max: u64,
    /// When its first frame and its last were presented.
    shown: Option<(Instant, Instant)>,
    /// Where its last frame is written, without a window.
    out: std::path::PathBuf,
    /// Why it was given up, if it was (its renderer crashed too often).
    failed: Option<String>,
    /// What the user did to its layers with the pointer, in a window.
    input: parts::Input,
    /// Its frame size now, its generation, and the largest its output slots hold.
    geometry: parts::Geometry,
    /// Where the application placed it (`crate::shell::Shell::set_view_rect`); none: tiled,
    /// at the run's frame size.
    placed: Option<crate::embedding::ViewRect>,
}

impl View {
    /// The frame after its last one presented: where a new GPU process resumes it.
    fn resume_from(&self) -> u64 {
        self.last.map_or(0, |f| f + 1)
    }
}

/// A running renderer and what the launcher knows of it.
struct Renderer {
    child: RendererChild,
    events: Receiver<Delivery<RendererToLauncher>>,
    /// What fills `events` when the main loop reads the renderer's messages itself (a paced
    /// run); `None` when a thread forwards them.
    intake: Option<ipc_protocol::channel::Polled<RendererToLauncher>>,
    exit: Receiver<()>,
    screen: Option<Screen>,
    /// Which of its output's slots the launcher holds (made with `screen`).
    slots: Option<slots::Slots>,
    fault: Option<(u64, Fault)>,
    faults: Vec<Fault>,
    presented: u64,
    /// Frames it answered with a rejection (`Rejected`, `GpuViolation`) since it last presented
    /// one: its word alone.
    rejected: u64,
    unread: bool,
}

impl Renderer {
    /// Hands what is left of its messages to a forwarding thread, where the main loop read them
    /// itself, for a caller about to wait on `events`.
    fn forward_rest(&mut self) {
        if let Some(intake) = self.intake.take() {
            if let Err(e) = intake.forward() {
                // `events` disconnects: the waits on it end at once.
                tracing::warn!(error = %e, "could not forward a renderer's last messages");
            }
        }
    }

    /// Takes what is left of its messages at once where the main loop read them itself, the
    /// renderer being dead: a caller's wait on `events` then ends with what it left.
    fn drain_gone(&mut self) {
        if let Some(intake) = self.intake.take() {
            intake.drain_gone();
        }
    }

    fn send_failed(&mut self, e: SendError) {
        if matches!(e, SendError::Full) {
            self.unread = true;
        }
    }
}

/// The supervisor of one run.
struct Supervisor<'a> {
    args: &'a RunConfig,
    started: Instant,
    /// The GPU process, its restart ladder and the epoch.
    pair: parts::Pair,
    /// The views, the first first: each a renderer of its own, all served by the GPU process.
    views: Vec<View>,
    crashes: Vec<CrashRecord>,
    fallbacks: Vec<String>,
    summary: RunSummary,
    /// The timings the summary reports.
    metrics: parts::Metrics,
    /// The children's traces and the launcher's own.
    tracing: parts::Tracing,
    /// Pings, and when the run last got anywhere.
    liveness: parts::Liveness,
    /// The children's sandbox: confinement at spawn, link handovers, violations.
    jail: crate::jail::Jail,
    /// What children may send and claim, and what they have.
    policing: parts::Policing,
    /// Chaos mode's plan and what it did.
    chaos: parts::Chaos,
    /// The window, when the run has one.
    display: Option<display::Shown>,
    /// Without a window, frames paced to a rate (`RunConfig::fps`).
    pacer: Option<display::Pacer>,
    /// The frame size of the views the application has not placed (headless; a window's
    /// tiles are cells of its grid).
    size: (u32, u32),
    /// The largest frame any view's output slots hold.
    max_size: (u32, u32),
    /// Headless: the last frame was composited at a size no longer current, and dropped.
    last_dropped: bool,
    /// The application embedding this run, if one does (`crate::shell`).
    embedding: parts::Embedding,
    /// The application's edits of the scene, sent and not yet on screen.
    edits: edit::Edits,
    /// Whoever follows the run from outside the engine (a command line's progress line).
    observer: Option<Box<dyn RunObserver>>,
    /// What the launcher took from the children's mailboxes and sockets.
    mailbox_stats: std::sync::Arc<ipc_protocol::mailbox::MailboxStats>,
    /// What the launcher sent into the children's mailboxes, and announced on their sockets.
    mailbox_sent: std::sync::Arc<ipc_protocol::mailbox::MailboxStats>,
    /// Renderers whose messages the main loop read itself, and those a thread read
    /// (`paths.renderer_intake`).
    intakes: (u64, u64),
    /// GPU processes whose messages the main loop took over from their thread, and those a
    /// thread read to the end (`paths.gpu_intake`).
    gpu_intakes: (u64, u64),
    /// The renderers' scheduling policy (`paths.renderer_scheduling`): `None` before the first
    /// renderer is spawned, then `Ok` while every one runs as a batch task, or why the first
    /// that does not was left so.
    renderer_policy: Option<Result<(), String>>,
    /// Whether the main loop reads the GPU process's ring itself once it has started, and
    /// sleeps on it (`session/gpu_intake.rs`): a paced run without a window, with mailboxes, on a kernel
    /// that can wait on two futexes at once.
    ring_sleep: bool,
    /// Rung by what the loop must hear of at once while it sleeps on the GPU process's ring.
    bell: Arc<Bell>,
    /// Dropped with the run: the threads that ring the bell end ([`ringers::Ringers`]).
    _ringers_stop: crossbeam_channel::Sender<()>,
    /// Why a child's messages took the socket alone, where one's did (the latest reason).
    mailbox_off: Option<String>,
    /// Children whose mailboxes could not be made (their messages took the socket).
    mailbox_fallbacks: u32,
    /// Whether the trace was told that the mailboxes are off.
    mailbox_marked: bool,
    /// Frames presented, of every view.
    presented_all: u64,
    /// The number the next view added gets.
    next_view: u32,
    /// The summaries of views removed before the end (the first [`views::MAX_GONE`]).
    gone: Vec<crate::summary::ViewSummary>,
}

/// Keeps at most 32 notes of one kind.
fn push_bounded(v: &mut Vec<String>, note: String) {
    if v.len() < 32 {
        v.push(note);
    }
}

impl Supervisor<'_> {
    /// The first view, which every run has: the one a window, the pointer and the
    /// application's edits act on.
    fn first(&self) -> &View {
        &self.views[0]
    }

    /// Where the first view resumes.
    fn resume_from(&self) -> u64 {
        self.first().resume_from()
    }

    /// The index of view `id`, if the run has it.
    fn view_index(&self, id: ViewId) -> Option<usize> {
        self.views.iter().position(|v| v.id == id)
    }

    /// View `id`'s frame size generation now (0 for a view the run no longer has: nothing of
    /// it is shown).
    fn generation_of(&self, id: ViewId) -> u32 {
        self.view_index(id)
            .map_or(0, |i| self.views[i].geometry.generation())
    }

    /// A trace batch from `who`, process `pid`: kept as far as the child's budget allows
    /// ([`parts::Policing::trace`]); a batch over the budget's rate, or sent while no trace was
    /// asked for, is the child's breach.
    fn child_trace(
        &mut self,
        who: Who,
        pid: u32,
        events: Vec<triptych_trace::Event>,
    ) -> Result<(), rules::Breach> {
        if self
            .policing
            .trace(who, &events, self.args.trace.is_some())?
        {
            self.tracing.keep(who.role(), pid, who.view(), events);
        }
        Ok(())
    }

    /// Starts every view's renderer and a GPU process producing for them, each from the frame
    /// after its last one presented: at the start of the run, and for a new scene.
    fn start_pair(&mut self) -> anyhow::Result<()> {
        // A view given up stays given up: no renderer, not served.
        let mut children = Vec::with_capacity(self.views.len());
        for i in 0..self.views.len() {
            let child = match self.views[i].failed {
                None => Some(self.spawn_renderer()?),
                Some(_) => None,
            };
            children.push(child);
        }
        let pids: Vec<u32> = children
            .iter()
            .map(|c| c.as_ref().map_or(0, |c| c.proc.pid))
            .collect();
        let gpu = self.start_gpu_with_ladder(&pids)?;
        tracing::info!(backend = gpu.info.backend.as_str(), fence = ?gpu.info.fence, gl = %gpu.info.gl, reason = ?gpu.info.backend_reason, "GPU process started");
        for (i, child) in children.into_iter().enumerate() {
            let Some(child) = child else {
                continue;
            };
            let renderer =
                self.start_renderer(i, child, (gpu.epoch, gpu.info.pid), gpu.page_for_renderer())?;
            self.views[i].renderer = Some(renderer);
        }
        self.display_gpu_started(gpu.epoch);
        self.pair.gpu = Some(gpu);
        Ok(())
    }
}

/// Runs the pipeline as `args` says, returning the summary.
pub fn run(
    args: &RunConfig,
    signals: &Receiver<Signal>,
    display: Option<crate::window::Display>,
) -> anyhow::Result<RunSummary> {
    run_with(args, signals, display, None, None, None)
}

/// Follows a run from outside the engine, on the supervisor's thread: a command line's progress
/// line, for one. Every method has a default that does nothing; each must return at once.
pub trait RunObserver: Send {
    /// Called after every event the supervisor handles, with the frames presented and the
    /// restarts so far (a cheap call: an observer that draws rate-limits itself).
    fn progress(&mut self, _frames: u64, _restarts: usize) {}

    /// The run's loop has ended; the summary is being made.
    fn ended(&mut self) {}
}

/// [`run`], followed by `observer`.
pub fn run_observed(
    args: &RunConfig,
    signals: &Receiver<Signal>,
    display: Option<crate::window::Display>,
    observer: Box<dyn RunObserver>,
) -> anyhow::Result<RunSummary> {
    run_with(args, signals, display, None, Some(observer), None)
}

/// [`run_observed`], drawing the edits of the scene that arrive on `edits` as they come
/// (`triptych run --control`), each answered on `applied` once a frame that shows it is
/// presented.
pub fn run_edited(
    args: &RunConfig,
    signals: &Receiver<Signal>,
    observer: Box<dyn RunObserver>,
    edits: Receiver<crate::scene::Edit>,
    applied: crossbeam_channel::Sender<crate::scene::Applied>,
) -> anyhow::Result<RunSummary> {
    run_with(
        args,
        signals,
        None,
        None,
        Some(observer),
        Some((edits, applied)),
    )
}

/// Runs the pipeline for an application that embeds it (`crate::shell`): its events go to
/// `link`, its commands come from it; with `display`, frames go into the application's window.
pub(crate) fn run_embedded(
    args: &RunConfig,
    signals: &Receiver<Signal>,
    display: Option<crate::window::Display>,
    link: crate::embedding::Link,
) -> anyhow::Result<RunSummary> {
    let events = link.events.clone();
    let r = run_with(args, signals, display, Some(link), None, None);
    let _ = events.try_send(crate::embedding::Event::Finished);
    r
}

fn run_with(
    args: &RunConfig,
    signals: &Receiver<Signal>,
    display: Option<crate::window::Display>,
    embed: Option<crate::embedding::Link>,
    observer: Option<Box<dyn RunObserver>>,
    edits: Option<(
        Receiver<crate::scene::Edit>,
        crossbeam_channel::Sender<crate::scene::Applied>,
    )>,
) -> anyhow::Result<RunSummary> {
    // Whoever called, the configuration is checked and its scene file loaded before anything
    // starts (a caller that did so already has it loaded).
    let mut prepared;
    let unloaded = (args.scene.is_some() && args.loaded_scene.is_none())
        || args.loaded_views.len() != args.views.len();
    let args = if unloaded {
        prepared = args.clone();
        prepared.prepare()?;
        &prepared
    } else {
        args.check()?;
        args
    };
    // The application said how its children start, or they are the binaries the command line
    // finds; either way both are there before anything starts.
    let children = match &embed {
        Some(e) => e.children.clone(),
        None => crate::child::Children::Binaries(crate::child::command_line_children_dir()?),
    };
    let (width, height) = (args.size.width, args.size.height);
    let ladder = match args.buffers {
        Buffers::Auto => vec![BackendRequest::Auto, BackendRequest::Shm],
        Buffers::Dmabuf => vec![BackendRequest::DmaBuf, BackendRequest::Shm],
        Buffers::Shm => vec![BackendRequest::Shm],
    };
    let window = Duration::from_secs(args.supervision.restart_window_s);
    let plan = args
        .chaos
        .seed
        .map(|seed| Plan::new(seed, args.chaos.kills, args.frames))
        .unwrap_or_default()
        .with_faults(&args.chaos.faults);
    if args.chaos.seed.is_some() {
        tracing::info!(kills = plan.len(), "chaos mode");
    }
    let rec = if args.trace.is_some() {
        Recorder::new(std::process::id())
    } else {
        Recorder::disabled()
    };
    // In a window, every view is a tile of it, as large as the grid leaves of the largest
    // window.
    let grid = crate::window::Grid::for_views(
        u32::try_from(args.views.len().saturating_add(1)).unwrap_or(u32::MAX),
    );
    let max_size = match (&display, &embed) {
        (Some(d), _) => {
            let (mw, mh) = grid.tile(d.max);
            (mw.max(width), mh.max(height))
        }
        (None, Some(e)) => (e.max_size.0.max(width), e.max_size.1.max(height)),
        (None, None) => (width, height),
    };
    // Every layer's pool at the largest size, as the renderer may have to map it: a run that
    // could need more than the relay allows a GPU process is refused here, not blamed on the
    // GPU process mid-run.
    // A scene file's layers are as large as its rectangles (turned: their diagonal), whatever
    // the output's size.
    // Each view's renderer maps its own view's pools.
    let need = |scene: Option<&std::sync::Arc<crate::scene::LoadedScene>>| match scene {
        Some(s) => {
            crate::scene::mapping_need(&s.scene, args.pool, max_size, u32::from(display.is_some()))
        }
        None => u64::from(args.layers)
            .saturating_mul(u64::from(args.pool))
            .saturating_mul(u64::from(max_size.0) * u64::from(max_size.1) * 4),
    };
    let worst = args
        .loaded_views
        .iter()
        .map(|s| need(Some(s)))
        .fold(need(args.loaded_scene.as_ref()), u64::max);
    if worst > ipc_protocol::relay::MAP_BUDGET {
        anyhow::bail!(
            "{} layers in pools of {} at up to {}x{} could need the renderer to map {worst} bytes, more than the {} it may; use a smaller --pool or size",
            args.layers,
            args.pool,
            max_size.0,
            max_size.1,
            ipc_protocol::relay::MAP_BUDGET
        );
    }
    let scenes = std::iter::once(args.loaded_scene.clone())
        .chain(args.loaded_views.iter().cloned().map(Some))
        .collect::<Vec<_>>();
    let tiles: Vec<(ViewId, bool)> = (0u32..)
        .zip(&scenes)
        .map(|(n, s)| {
            (
                ViewId(n),
                parts::Drawn::new(s.clone(), args.layers).animates(),
            )
        })
        .collect();
    // An embedding application may add views up to the maximum while the run goes on, in a
    // window or not: the transport is chosen for as many.
    let views_n = match &embed {
        Some(_) => args
            .max_views
            .unwrap_or_else(crate::config::default_max_views) as usize,
        _ => args.views.len() + 1,
    };
    match (args.fps, display.is_some()) {
        (Some(fps), true) => {
            tracing::warn!(
                fps,
                "--fps paces runs without a window; the display paces this one"
            )
        }
        (Some(fps), false) => tracing::info!(fps, "frames paced without a window"),
        (None, _) => {}
    }
    // Paced without a window, the loop sleeps on the GPU process's ring, and what else it must
    // hear of at once rings its bell as it comes: children's exits (their watchers), the
    // application's edits and control, signals.
    let bell = Arc::new(Bell::default());
    let (ringers_stop, stop) = crossbeam_channel::bounded::<()>(0);
    let ringers = ringers::Ringers {
        bell: bell.clone(),
        stop,
    };
    let ring_sleep = args.fps.is_some()
        && display.is_none()
        && args.mailbox
        && ipc_protocol::channel::sleep_supported();
    if args.fps.is_some() && display.is_none() && args.mailbox && !ring_sleep {
        tracing::info!(
            "this kernel cannot wait on two futexes at once (futex_waitv, Linux 5.16): a thread reads the GPU process's messages"
        );
    }
    let belled_signals;
    let signals = if ring_sleep {
        belled_signals = ringers::belled("signals-bell", signals.clone(), &ringers)?;
        &belled_signals
    } else {
        signals
    };
    let mut embed = embed;
    let mut edits = edits;
    if ring_sleep {
        if let Some(e) = embed.as_mut() {
            let control = std::mem::replace(&mut e.control, crossbeam_channel::never());
            e.control = ringers::belled("control-bell", control, &ringers)?;
        }
        if let Some((from, to)) = edits.take() {
            edits = Some((ringers::belled("edits-bell", from, &ringers)?, to));
        }
    }
    let mut sv = Supervisor {
        args,
        started: Instant::now(),
        pair: parts::Pair::new(ladder, args.supervision.max_crashes, window),
        views: Vec::new(),
        crashes: Vec::new(),
        fallbacks: Vec::new(),
        summary: RunSummary {
            frames: crate::summary::Frames {
                width,
                height,
                layers: args.layers,
                paced_fps: args.fps.filter(|_| display.is_none()),
                ..Default::default()
            },
            damage: crate::summary::DamageSummary {
                on: !args.no_damage,
                ..Default::default()
            },
            ..RunSummary::default()
        },
        metrics: parts::Metrics::default(),
        tracing: parts::Tracing::new(rec),
        liveness: parts::Liveness::default(),
        jail: crate::jail::Jail::new(args.transport, args.sandbox, children, views_n)?,
        policing: parts::Policing::default(),
        chaos: parts::Chaos::new(plan),
        pacer: args
            .fps
            .filter(|_| display.is_none())
            .map(display::Pacer::new),
        display: display.map(|d| display::Shown::new(d, &tiles, grid.window((width, height)))),
        size: (width, height),
        max_size,
        last_dropped: false,
        embedding: parts::Embedding::new(embed),
        edits: edit::Edits::new(edits, args.loaded_scene.clone()),
        observer,
        mailbox_stats: Default::default(),
        mailbox_sent: Default::default(),
        intakes: (0, 0),
        gpu_intakes: (0, 0),
        renderer_policy: None,
        ring_sleep,
        bell: bell.clone(),
        _ringers_stop: ringers_stop,
        mailbox_off: (!args.mailbox).then(|| "turned off (--mailbox off)".to_owned()),
        mailbox_fallbacks: 0,
        mailbox_marked: false,
        presented_all: 0,
        next_view: 0,
        gone: Vec::new(),
    };
    if ring_sleep {
        sv.policing.ring_on_verdicts(&ringers)?;
    }
    sv.jail.batch_renderers(args.fps.is_some());
    for scene in scenes {
        let n = sv.next_view;
        // The first view is the run's own; the others are the ones listed, each maybe placed.
        let rect = n
            .checked_sub(1)
            .and_then(|k| args.view_rects.get(k as usize).copied().flatten());
        sv.views.push(sv.new_view(ViewId(n), n, scene, rect));
        sv.next_view += 1;
    }
    // In a window, the views the application placed lie where it said, and the others are
    // tiled; nothing of them has started yet.
    let all: Vec<ViewId> = sv.views.iter().map(|v| v.id).collect();
    sv.retile(&all);

    sv.start_pair()?;
    let result = sv.drive(signals);
    if let Some(o) = &mut sv.observer {
        o.ended();
    }
    let summary = sv.finish(result.is_ok());
    match (result, summary) {
        (Ok(()), summary) => summary,
        // A run that could not go on still says how far it got and what ended it.
        (Err(e), Ok(mut summary)) => {
            let message = format!("{e:#}");
            summary.failure = Some(message.clone());
            Err(RunFailed {
                message,
                summary: Box::new(summary),
            }
            .into())
        }
        (Err(e), Err(_)) => Err(e),
    }
}

/// A run that ended before its last frame: what ended it, and the summary of how far it got
/// (its `failure` says the same).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RunFailed {
    /// What ended the run, with its causes.
    pub message: String,
    /// The summary, up to the failure.
    pub summary: Box<RunSummary>,
}
