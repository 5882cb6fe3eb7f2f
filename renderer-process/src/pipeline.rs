//! The renderer's frame loop: receive, validate, import, wait, composite, present, release.
//!
//! A forwarding thread turns the launcher's channel ([`ipc_protocol::channel`]) into a crossbeam
//! channel, and a fence-waiter thread polls fences, so the loop waits on both at once and never
//! blocks on a fence: while a frame's fences are pending it still answers the launcher (pings,
//! slots, a new GPU process), and frames that come meanwhile wait their turn.
//!
//! Frames come from the launcher, which took them from the GPU process and checked them
//! ([`ipc_protocol::relay`]: epoch, order, generation, shape, buffers not held); releases go
//! back to the launcher, which hands them on. Nothing goes between this process and the GPU
//! process but the fds it takes. For each frame:
//!
//! 1. drop it if it comes from another GPU epoch or size generation than the current one;
//! 2. validate every layer's description (shape, then fds confined to the GPU's export window;
//!    [`crate::validate`]);
//! 3. import each buffer (cached per id) and fetch its fence, checking identities;
//! 4. wait on the fences with a deadline (on the waiter thread unless all have signalled
//!    already); a fence that times out leaves the layer's previous buffer on screen, the new one
//!    is released unused, and the launcher is told, since a GPU that stops signalling is hung;
//! 5. once every layer has a buffer of the current epoch whose fence was seen signalled,
//!    composite them into a free output slot, only where the frame differs from what the slot
//!    holds ([`crate::damage`]), and hand it to the launcher with the frame's damage;
//! 6. release every buffer that is no longer on screen.
//!
//! When the launcher replaces the GPU process (`NewGpu`), everything of the old epoch is dropped
//! at once: the pending frame, the import cache, the buffers on screen. The launcher keeps showing
//! the last composited frame until the new epoch's first complete frame, so nothing of a dead
//! process is ever composited and no frame is shown half-made.
//!
//! A rejected description drops the frame (the previous composite stays on screen), releases
//! its buffers and tells the launcher why (a fence that is no fence, as a claim the launcher
//! looks at itself); it never stops the loop.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{select, Receiver};
use ipc_protocol::channel::{self, Delivery, Sender};
use ipc_protocol::frame::{BufferKind, FenceKind};
use ipc_protocol::layers::{self as validate, LayersError};
use ipc_protocol::messages::{
    Fault, FaultPoint, FrameMsg, GpuLink, LauncherToRenderer, Presented, RendererStart,
    RendererStats, RendererToLauncher,
};
use ipc_protocol::{BufferId, FileId, RemoteFd};
use triptych_sys::poll::FenceWait;
use triptych_trace::{Args, InstantScope, Marker, Recorder, Stage};

use crate::composite::{composite_region, Layer};
use crate::damage::{output_damage, ContentDamage, Slots, Snapshot, View};
use crate::fetch::{fetch, Counters, FrameSource, Waitable};
use crate::import::{ImplicitError, ImportCache, ImportError};
use ipc_protocol::damage::Region;

use crate::output::{Output, SLOTS};

/// Trace events are shipped to the launcher once this many are buffered.
const TRACE_BATCH: usize = 512;

use crate::decide::Shown;
use crate::hooks::{Fetched, Hooks, Presented as HookPresented, Running};

/// A frame whose fences are being waited on.
#[derive(Debug)]
struct Pending {
    seq: u64,
    frame: u64,
    sent_ns: u64,
    fetched_ns: u64,
    /// Each layer, what it will show, and its fence as the description named it (for the
    /// launcher's own check if it times out).
    layers: Vec<(u32, Shown, RemoteFd)>,
    /// Each layer's content damage, as its description gave it (checked).
    damage: Vec<(u32, ContentDamage)>,
}

/// Commands from the launcher, with the fds attached to them.
type Commands = Receiver<Delivery<LauncherToRenderer>>;

/// What woke the loop.
enum Wake {
    Command(Option<Delivery<LauncherToRenderer>>),
    Fences(Option<WaitDone>),
}

/// A fence wait handed to the waiter thread.
struct WaitJob {
    seq: u64,
    fences: Vec<Waitable>,
    timeout: Duration,
}

/// The waiter's answer: which fences signalled in time.
struct WaitDone {
    seq: u64,
    ready: Result<Vec<bool>, String>,
    /// A fence was abandoned: its producer died without signalling it. The frame is dropped.
    dead: bool,
}

/// The current GPU process. Its fds are taken through `Pipeline::link`.
struct GpuSide {
    epoch: u64,
    pid: u32,
    window: (i32, i32),
    /// Violations of this GPU process reported to the launcher so far (at most
    /// [`MAX_VIOLATION_REPORTS`]; more are only counted).
    violations_reported: u32,
}

impl GpuSide {
    fn of(gpu: &GpuLink) -> Self {
        Self {
            epoch: gpu.epoch,
            pid: gpu.gpu_pid,
            window: gpu.gpu_window,
            violations_reported: 0,
        }
    }
}

/// Reports of a GPU process's broken fds sent to the launcher per GPU process: enough for the
/// launcher to look at one it can check, never a flood of its own making.
const MAX_VIOLATION_REPORTS: u32 = 4;

/// The renderer's state.
pub struct Pipeline {
    gpu: GpuSide,
    /// The link to the GPU process (pidfd or SCM_RIGHTS socket at `GPU_LINK_FD`).
    link: crate::link::Link,
    width: u32,
    height: u32,
    /// The byte order the launcher asked the output in.
    order: crate::composite::OutputOrder,
    /// The opaque colour under every layer, R, G, B, A.
    backdrop: [u8; 4],
    /// The frame size's generation: frames of another are dropped, their buffers released.
    generation: u32,
    /// The largest frame the output slots hold.
    max: (u32, u32),
    layers: u32,
    fence_timeout: Duration,
    events: Sender<RendererToLauncher>,
    cache: ImportCache,
    output: Output,
    shown: BTreeMap<u32, Shown>,
    stats: RendererStats,
    faults: Vec<Fault>,
    rec: Recorder,
    pending: Option<Pending>,
    /// Frames from the launcher waiting their turn (while one waits on its fences), in order,
    /// each with when the launcher handed it on, and its buffers where the launcher vouched for
    /// it.
    queued: VecDeque<(FrameMsg, u64, Option<Vec<OwnedFd>>)>,
    seq: u64,
    waiter: crossbeam_channel::Sender<WaitJob>,
    waited: Receiver<WaitDone>,
    /// Fence waits of a sequence number below this are abandoned.
    cancel: Arc<AtomicU64>,
    /// Whether to composite only what changed (`RendererStart::damage`).
    damage: bool,
    /// The content damage of the buffers on screen, by layer, since the last present.
    content_damage: BTreeMap<u32, ContentDamage>,
    /// What the last presented frame showed; `None` before the first of this size and epoch.
    presented: Option<Snapshot>,
    /// The output slots' buffer age.
    slots: Slots,
    /// The launcher said `Shutdown` while the loop was waiting inside a frame.
    stopped: bool,
    /// Where a program built on the library acts (`crate::hooks`); nothing in the product.
    hooks: Box<dyn Hooks>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("epoch", &self.gpu.epoch)
            .field("gpu_pid", &self.gpu.pid)
            .finish()
    }
}

/// Why a frame was not composited.
#[derive(Debug, thiserror::Error)]
enum FrameError {
    #[error(transparent)]
    Layers(#[from] LayersError),
    #[error("layers[{layer}]: {source}")]
    Import { layer: u32, source: ImportError },
    #[error("layers[{layer}].fence: {source}")]
    Fence { layer: u32, source: anyhow::Error },
    #[error("fds: {0}")]
    Transport(#[from] crate::link::LinkError),
    /// The fence taken is not a fence of the kind named: a lie of the GPU process, not a bad
    /// description.
    #[error("layers[{layer}].fence: {what}")]
    NotAFence { layer: u32, what: String },
}

/// Whether `fence`, as taken from the GPU process, is a file of the fence `kind` its description
/// names. A pipe fence is the read end of a FIFO; a sync_file and an eventfd are both anonymous
/// inodes, which `fstat` cannot tell apart (and this process may not `ioctl` them): those are
/// polled as they are, and one that cannot be is refused when it is.
fn fence_of_kind(fence: std::os::fd::BorrowedFd<'_>, kind: FenceKind) -> Result<(), String> {
    match kind {
        FenceKind::Pipe => match triptych_sys::fd::is_fifo(fence) {
            Ok(true) => Ok(()),
            Ok(false) => Err("a pipe fence that is no pipe".to_owned()),
            Err(e) => Err(format!("a pipe fence that cannot be examined: {e}")),
        },
        FenceKind::SyncFile | FenceKind::EventFd => Ok(()),
        FenceKind::Progress => Err("a progress fence is no file".to_owned()),
        FenceKind::Implicit => Err("implicit fences are no file of their own".to_owned()),
    }
}

/// Starts the fence waiter. A job whose `seq` is below `cancel` is abandoned within a few
/// milliseconds (its frame belongs to a GPU process that was replaced), so the fences of a dead
/// process never hold up the new one's frames.
fn spawn_waiter(
    cancel: Arc<AtomicU64>,
) -> anyhow::Result<(crossbeam_channel::Sender<WaitJob>, Receiver<WaitDone>)> {
    /// How often a wait looks at `cancel`; a fence that signals wakes it at once regardless.
    const SLICE: Duration = Duration::from_millis(5);
    let (job_tx, job_rx) = crossbeam_channel::unbounded::<WaitJob>();
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("fence-waiter".into())
        .spawn(move || {
            for job in job_rx {
                let deadline = Instant::now() + job.timeout;
                let mut ready = Ok(Vec::with_capacity(job.fences.len()));
                let mut abandoned = false;
                let mut dead = false;
                'fences: for fence in &job.fences {
                    loop {
                        if cancel.load(Ordering::Acquire) > job.seq {
                            abandoned = true;
                            break 'fences;
                        }
                        let left = deadline.saturating_duration_since(Instant::now());
                        let slice = left.min(SLICE);
                        match fence.wait(slice) {
                            Ok(FenceWait::Signalled) => {
                                if let Ok(r) = &mut ready {
                                    r.push(true);
                                }
                                break;
                            }
                            Ok(FenceWait::Abandoned) => {
                                // Its process died mid-render: the buffer holds whatever it held.
                                dead = true;
                                break 'fences;
                            }
                            Ok(FenceWait::TimedOut) if left <= slice => {
                                if let Ok(r) = &mut ready {
                                    r.push(false);
                                }
                                break;
                            }
                            Ok(FenceWait::TimedOut) => {}
                            Err(e) => {
                                ready = Err(e);
                                break 'fences;
                            }
                        }
                    }
                }
                // The fences close here, after the wait: a fence is per submission.
                drop(job.fences);
                if abandoned {
                    continue;
                }
                if done_tx
                    .send(WaitDone {
                        seq: job.seq,
                        ready,
                        dead,
                    })
                    .is_err()
                {
                    break;
                }
            }
        })
        .context("spawning the fence waiter")?;
    Ok((job_tx, done_rx))
}

/// Fires the fault due at `point` for `frame`, if any, telling the launcher first.
fn maybe_fire(
    faults: &mut Vec<Fault>,
    point: FaultPoint,
    frame: u64,
    events: &Sender<RendererToLauncher>,
) {
    // Renderer points have no fault that lets the process live on.
    let _ = ipc_protocol::fault::fire_due(faults, point, frame, |at_ns, fault| {
        let _ = events.send(&RendererToLauncher::FaultFired { at_ns, fault });
    });
}

impl Pipeline {
    /// Sets the pipeline up: output buffer, link to the GPU process, the sandbox
    /// ([`crate::sandbox::confine`]), and tells the launcher where the output is. Nothing from the
    /// GPU process is received before the sandbox is on.
    pub fn new(
        start: RendererStart,
        events: Sender<RendererToLauncher>,
        claimed: crate::sandbox::Claimed,
        mut hooks: Box<dyn Hooks>,
    ) -> anyhow::Result<Self> {
        let (max_w, max_h) = (
            start.max_width.max(start.width),
            start.max_height.max(start.height),
        );
        let output = Output::new(max_w, max_h).context("creating the output buffer")?;
        let hand_over = |listener: &OwnedFd| {
            events
                .send_with(&RendererToLauncher::SandboxListener, &[listener.as_fd()])
                .context("sending the listener")
        };
        let link_to_gpu = crate::sandbox::confine(
            claimed,
            &start,
            output.fd.as_fd(),
            hooks.as_mut(),
            hand_over,
        )?;
        let gpu = GpuSide::of(&start.gpu);
        let id = triptych_sys::fd::identity(output.fd.as_fd())?;
        let shared = RendererToLauncher::Output {
            generation: start.generation,
            fd: RemoteFd {
                pid: std::process::id(),
                fd: std::os::fd::AsRawFd::as_raw_fd(&output.fd),
                identity: FileId {
                    dev: id.dev,
                    ino: id.ino,
                },
            },
            slots: SLOTS,
            slot_bytes: output.slot_bytes as u64,
        };
        let shared = hooks.sharing_output(shared);
        events
            .send(&shared)
            .context("telling the launcher where the output is")?;
        hooks.running(Running {
            events: &events,
            epoch: gpu.epoch,
            generation: start.generation,
            gpu_window: gpu.window,
        });
        let cancel = Arc::new(AtomicU64::new(0));
        let (waiter, waited) = spawn_waiter(cancel.clone())?;
        let rec = if start.trace {
            Recorder::new(std::process::id())
        } else {
            Recorder::disabled()
        };
        Ok(Self {
            gpu,
            link: link_to_gpu,
            width: start.width,
            height: start.height,
            order: start.output_order,
            backdrop: start.backdrop,
            generation: start.generation,
            max: (max_w, max_h),
            layers: start.layers,
            fence_timeout: Duration::from_millis(u64::from(start.fence_timeout_ms)),
            events,
            cache: ImportCache::default(),
            output,
            shown: BTreeMap::new(),
            stats: RendererStats::default(),
            faults: start.faults,
            rec,
            pending: None,
            queued: VecDeque::new(),
            seq: 0,
            waiter,
            waited,
            cancel,
            damage: start.damage,
            content_damage: BTreeMap::new(),
            presented: None,
            slots: Slots::new(SLOTS as usize),
            stopped: false,
            hooks,
        })
    }

    /// Runs until the launcher says `Shutdown` or disappears.
    pub fn run(&mut self, commands: Commands) -> anyhow::Result<()> {
        loop {
            // While a frame waits on its fences, newer frames stay queued.
            while self.pending.is_none() && !self.stopped {
                let Some((msg, relayed_ns, vouched)) = self.queued.pop_front() else {
                    break;
                };
                self.frame(msg, relayed_ns, vouched, &commands)?;
            }
            if self.stopped {
                self.events.wake_owed();
                return Ok(());
            }
            // What this turn handed the launcher (a frame's `Presented` and its releases) wakes
            // its reader once, now that the turn is over.
            self.events.wake_owed();
            let waited = self.waited.clone();
            let wake = select! {
                recv(commands) -> c => Wake::Command(c.ok()),
                recv(waited) -> d => Wake::Fences(d.ok()),
            };
            // How long the loop is busy before it can listen again: it never waits on a fence,
            // so this stays far below any fence deadline (checked by the crash tests).
            let busy = Instant::now();
            match wake {
                Wake::Command(Some(Ok((c, fds)))) => {
                    if !self.command(c, fds)? {
                        self.events.wake_owed();
                        return Ok(());
                    }
                }
                Wake::Command(Some(Err(v))) => {
                    anyhow::bail!("a bad command from the launcher: {v}")
                }
                Wake::Command(None) => anyhow::bail!("the launcher disconnected"),
                Wake::Fences(Some(d)) => self.fences_done(d, &commands)?,
                Wake::Fences(None) => anyhow::bail!("the fence waiter stopped"),
            }
            if self.stopped {
                self.events.wake_owed();
                return Ok(());
            }
            let us = busy.elapsed().as_micros() as u64;
            self.stats.max_busy_us = self.stats.max_busy_us.max(us);
            if self.rec.len() >= TRACE_BATCH {
                self.ship_trace();
            }
        }
    }

    fn ship_trace(&mut self) {
        if self.rec.is_empty() {
            return;
        }
        let (batches, dropped) = channel::split_to_fit(self.rec.drain(), RendererToLauncher::Trace);
        if dropped > 0 {
            tracing::warn!(dropped, "trace events too large to ship were dropped");
        }
        for b in batches {
            if let Err(e) = self.events.send(&b) {
                tracing::warn!(error = %e, "could not ship trace events");
            }
        }
    }

    /// Handles a command; false means stop.
    fn command(&mut self, c: LauncherToRenderer, fds: Vec<OwnedFd>) -> anyhow::Result<bool> {
        match c {
            LauncherToRenderer::SlotFree(s) => {
                if !self.output.release(s) {
                    tracing::warn!(slot = s, "launcher freed a slot it did not hold");
                }
            }
            LauncherToRenderer::Ping(n) => {
                self.events
                    .send(&RendererToLauncher::Pong(n))
                    .context("answering a ping")?;
            }
            LauncherToRenderer::NewGpu(g) => self.switch_gpu(g)?,
            LauncherToRenderer::Frame { msg, relayed_ns } => {
                self.queued.push_back((msg, relayed_ns, None))
            }
            LauncherToRenderer::Vouched { msg, relayed_ns } => {
                self.queued.push_back((msg, relayed_ns, Some(fds)))
            }
            LauncherToRenderer::Shutdown => {
                self.stats.imports = self.cache.counters.imports;
                self.stats.import_hits = self.cache.counters.hits;
                self.ship_trace();
                self.events
                    .send(&RendererToLauncher::Stats(self.stats))
                    .context("sending final counters")?;
                return Ok(false);
            }
            LauncherToRenderer::Start(_) => tracing::warn!("a second Start was ignored"),
            LauncherToRenderer::Mailbox | LauncherToRenderer::Commands(_) => {
                tracing::warn!("a Mailbox or Commands after Start was ignored")
            }
            LauncherToRenderer::Resize(r) => {
                if r.width == 0 || r.height == 0 || r.width > self.max.0 || r.height > self.max.1 {
                    anyhow::bail!(
                        "a resize to {}x{}, beyond the output's {}x{}",
                        r.width,
                        r.height,
                        self.max.0,
                        self.max.1
                    );
                }
                tracing::info!(
                    width = r.width,
                    height = r.height,
                    generation = r.generation,
                    "resized"
                );
                self.hooks
                    .resizing(&self.events, self.gpu.epoch, self.generation);
                self.width = r.width;
                self.height = r.height;
                self.generation = r.generation;
                // Every slot's rows are laid out for the old width: composite them whole.
                self.slots.forget();
                self.presented = None;
                // A frame of the old size waiting for its fences is dropped with its buffers.
                if let Some(p) = self.pending.take() {
                    self.drop_pending(p);
                }
            }
        }
        Ok(true)
    }

    /// Drops everything of the old epoch and attaches to the new GPU process.
    fn switch_gpu(&mut self, g: GpuLink) -> anyhow::Result<()> {
        if g.epoch <= self.gpu.epoch {
            anyhow::bail!(
                "NewGpu with epoch {} after epoch {}",
                g.epoch,
                self.gpu.epoch
            );
        }
        self.link
            .attach(g.epoch, g.gpu_pid)
            .context("attaching to the new GPU process")?;
        let gpu = GpuSide::of(&g);
        tracing::info!(
            old = self.gpu.epoch,
            new = gpu.epoch,
            pid = gpu.pid,
            "switching to a new GPU process"
        );
        // The pending frame's wait is abandoned and its fences closed by the waiter.
        self.cancel.store(self.seq + 1, Ordering::Release);
        self.pending = None;
        // Frames of the old process not yet taken: nothing of theirs is given back (their ids
        // mean other buffers to the new process).
        self.stats.stale_dropped += self.queued.len() as u64;
        self.queued.clear();
        self.shown.clear();
        self.content_damage.clear();
        self.presented = None;
        self.cache.set_epoch(gpu.epoch);
        self.gpu = gpu;
        self.stats.gpu_switches += 1;
        Ok(())
    }

    /// Drops the frame waiting for its fences: the wait is abandoned (the waiter closes the
    /// fences) and its new buffers go back to the GPU process unshown.
    fn drop_pending(&mut self, p: Pending) {
        self.cancel.store(self.seq + 1, Ordering::Release);
        self.stats.stale_dropped += 1;
        for (_, shown, _) in p.layers {
            self.release(shown.epoch, shown.id);
        }
    }

    /// Releases the buffers `msg` names that this process does not use: neither on screen nor in
    /// the frame waiting for its fences. A description that is dropped (rejected, or a lie)
    /// never costs the GPU process its buffers, and never hands back one in use on its word.
    fn give_back(&mut self, msg: &FrameMsg) {
        let in_use: Vec<BufferId> = self
            .shown
            .values()
            .map(|s| s.id)
            .chain(
                self.pending
                    .iter()
                    .flat_map(|p| p.layers.iter().map(|(_, s, _)| s.id)),
            )
            .collect();
        for l in &msg.layers {
            if !in_use.contains(&l.buffer.id) {
                self.release(msg.epoch, l.buffer.id);
            }
        }
    }

    /// The GPU process's fds broke `msg`'s description: the frame is dropped, counted and
    /// reported to the launcher, as a claim it can look at a few times per GPU process
    /// ([`MAX_VIOLATION_REPORTS`]; `fence_of_layer` names the layer whose fence is no fence),
    /// then as a plain rejection. The report comes before the buffers it named that are not in
    /// use go back ([`Pipeline::give_back`]): the launcher takes a buffer given back before its
    /// frame is answered for a frame dropped unseen.
    fn gpu_violation(&mut self, msg: &FrameMsg, fence_of_layer: Option<u32>, what: String) {
        self.stats.gpu_violations += 1;
        self.stats.rejected += 1;
        let frame = msg.frame;
        let report = if self.gpu.violations_reported < MAX_VIOLATION_REPORTS {
            self.gpu.violations_reported += 1;
            tracing::warn!(gpu_pid = self.gpu.pid, frame, %what, "the GPU process's fds break its description; dropped");
            RendererToLauncher::GpuViolation {
                epoch: self.gpu.epoch,
                frame,
                fence_of_layer,
                what,
            }
        } else {
            RendererToLauncher::Rejected {
                epoch: self.gpu.epoch,
                frame,
                reason: what,
            }
        };
        let _ = self.events.send(&report);
        self.give_back(msg);
    }

    /// Steps 1 to 4 for frame `msg`, handed on at `relayed_ns`; `vouched`, its buffers when the
    /// launcher vouched for it.
    fn frame(
        &mut self,
        msg: FrameMsg,
        relayed_ns: u64,
        vouched: Option<Vec<OwnedFd>>,
        commands: &Commands,
    ) -> anyhow::Result<()> {
        let received_ns = triptych_trace::now_ns();
        if msg.epoch != self.gpu.epoch {
            // The launcher hands on only the current process's frames, after `NewGpu`: one of
            // another epoch is nobody's to composite or to give back.
            self.stats.stale_dropped += 1;
            tracing::warn!(
                frame = msg.frame,
                epoch = msg.epoch,
                current = self.gpu.epoch,
                "a frame of another GPU process than the current one was dropped"
            );
            return Ok(());
        }
        if msg.generation != self.generation {
            // Rendered for another size: never composited, its buffers go straight back.
            self.stats.stale_dropped += 1;
            tracing::debug!(
                generation = msg.generation,
                current = self.generation,
                frame = msg.frame,
                "dropped a frame of another size"
            );
            for l in &msg.layers {
                self.release(msg.epoch, l.buffer.id);
            }
            return Ok(());
        }
        if let Some(reason) = self.hooks.rejects(&msg) {
            self.stats.rejected += 1;
            self.events
                .send(&RendererToLauncher::Rejected {
                    epoch: msg.epoch,
                    frame: msg.frame,
                    reason,
                })
                .context("reporting a rejected frame")?;
            self.give_back(&msg);
            return Ok(());
        }
        self.cache.set_epoch(self.gpu.epoch);
        // From the launcher's hand-on (its `relay` span ends there) to here.
        self.rec.record_span(
            Stage::Receive,
            Some(msg.frame),
            relayed_ns.min(received_ns),
            received_ns,
            Args::new(),
        );
        let (fetched, damage) = match self.prepare(&msg, vouched) {
            Ok(f) => f,
            Err(FrameError::NotAFence { layer, what }) => {
                self.gpu_violation(
                    &msg,
                    Some(layer),
                    format!("frame {}: layers[{layer}].fence: {what}", msg.frame),
                );
                return Ok(());
            }
            Err(e) => {
                self.stats.rejected += 1;
                tracing::warn!(frame = msg.frame, error = %e, "rejected a frame description");
                // The answer first, then its buffers back: none of them will be shown.
                self.events
                    .send(&RendererToLauncher::Rejected {
                        epoch: msg.epoch,
                        frame: msg.frame,
                        reason: e.to_string(),
                    })
                    .context("reporting a rejected frame")?;
                self.give_back(&msg);
                return Ok(());
            }
        };
        let cache = &self.cache;
        self.hooks.fetched(Fetched {
            events: &self.events,
            msg: &msg,
            layers: &fetched,
            buffer: &|id| cache.get(id).map(|i| i.fd.as_fd()),
            link: &self.link,
        });
        let fetched_ns = triptych_trace::now_ns();
        self.rec.record_span(
            Stage::FdFetch,
            Some(msg.frame),
            received_ns,
            fetched_ns,
            Args::new(),
        );
        maybe_fire(
            &mut self.faults,
            FaultPoint::RendererFenceWait,
            msg.frame,
            &self.events,
        );
        self.seq += 1;
        let mut layers = Vec::with_capacity(fetched.len());
        let mut fences = Vec::with_capacity(fetched.len());
        let mut all_ready = true;
        for (layer, shown, fence) in fetched {
            let named = msg
                .layers
                .iter()
                .find(|l| l.layer == layer)
                .map(|l| l.buffer.fence.fd)
                .context("a fetched layer that the description does not name")?;
            layers.push((layer, shown, named));
            // A vouched frame's fences were seen signalled by the launcher.
            let Some(fence) = fence else {
                continue;
            };
            let first = match fence.wait(Duration::ZERO) {
                Ok(w) => w,
                Err(e) => {
                    // A fence that cannot be polled: of the GPU process's making (it is the
                    // file it exported), so its lie; nothing of the frame is composited.
                    self.gpu_violation(
                        &msg,
                        Some(layer),
                        format!(
                            "frame {}: layers[{layer}].fence cannot be polled: {e}",
                            msg.frame
                        ),
                    );
                    return Ok(());
                }
            };
            // Abandoned ones too go to the waiter, which drops the frame.
            if first != FenceWait::Signalled {
                self.stats.fences_pending += 1;
                all_ready = false;
            }
            fences.push(fence);
        }
        let pending = Pending {
            seq: self.seq,
            frame: msg.frame,
            sent_ns: msg.sent_ns,
            fetched_ns,
            layers,
            damage,
        };
        if all_ready {
            drop(fences);
            let n = pending.layers.len();
            return self.finish(pending, vec![true; n], commands);
        }
        self.waiter
            .send(WaitJob {
                seq: pending.seq,
                fences,
                timeout: self.fence_timeout,
            })
            .context("handing fences to the waiter")?;
        self.pending = Some(pending);
        Ok(())
    }

    fn fences_done(&mut self, done: WaitDone, commands: &Commands) -> anyhow::Result<()> {
        let Some(p) = self.pending.take_if(|p| p.seq == done.seq) else {
            // The answer for a frame dropped by a GPU switch.
            return Ok(());
        };
        if done.dead {
            // Never composited: its layers may hold an older frame's pixels (a torn frame).
            tracing::warn!(
                frame = p.frame,
                "a fence of the frame was abandoned (its GPU process died); the frame is dropped"
            );
            self.stats.abandoned_frames += 1;
            // The answer first, then its buffers back.
            let _ = self.events.send(&RendererToLauncher::Rejected {
                epoch: self.gpu.epoch,
                frame: p.frame,
                reason: "a fence was abandoned: its writer closed it unsignalled".into(),
            });
            self.drop_pending(p);
            return Ok(());
        }
        let ready = match done.ready {
            Ok(r) => r,
            Err(e) => anyhow::bail!("waiting on the fences of frame {}: {e}", p.frame),
        };
        self.finish(p, ready, commands)
    }

    /// Steps 2 and 3: returns each layer's new buffer with its fetched fence (none for a frame
    /// the launcher vouched for, whose buffers are `vouched`, one per layer), and its content
    /// damage.
    #[allow(clippy::type_complexity)]
    fn prepare(
        &mut self,
        msg: &FrameMsg,
        vouched: Option<Vec<OwnedFd>>,
    ) -> Result<
        (
            Vec<(u32, Shown, Option<Waitable>)>,
            Vec<(u32, ContentDamage)>,
        ),
        FrameError,
    > {
        // A vouched frame's fences are not taken: the launcher saw them signalled (and keeps
        // them outside the window, where this process cannot reach).
        let fences = match vouched {
            Some(_) => ipc_protocol::frame::FencePlace::Unchecked,
            None => ipc_protocol::frame::FencePlace::InWindow,
        };
        let ends = validate::layers_with(msg, self.layers, self.gpu.pid, self.gpu.window, fences)?;
        // Checked by `validate::layers`: inside each buffer, relative to an earlier frame.
        let damage = msg
            .layers
            .iter()
            .map(|l| {
                let region = ipc_protocol::damage::Region::of(l.damage.iter().copied());
                let since = l.damage_since;
                (l.layer, ContentDamage { since, region })
            })
            .collect();
        let mut out = Vec::with_capacity(msg.layers.len());
        if vouched.is_some() {
            self.stats.vouched_frames += 1;
        }
        let mut vouched = vouched.map(Vec::into_iter);
        let page = self.link.progress().cloned();
        let mut src = match vouched {
            Some(_) => {
                self.link.discard(msg.epoch, msg.frame);
                None
            }
            None => Some(self.link.frame(msg.epoch, msg.frame, self.fence_timeout)?),
        };
        let mut via_launcher = 0;
        let mut progress_fences = 0;
        let mut implicit_fences = 0;
        for (l, end) in msg.layers.iter().zip(&ends) {
            let layer = l.layer;
            let fence = match (&mut vouched, &mut src) {
                (Some(fds), _) => {
                    // Each layer's buffer from its own fd (two layers may name one number).
                    let fd = fds.next().ok_or_else(|| FrameError::Fence {
                        layer,
                        source: anyhow::anyhow!("a vouched frame came without this layer's buffer"),
                    })?;
                    let number = l.buffer.planes.first().map_or(-1, |p| p.fd.fd);
                    let mut one = FrameSource::Received(
                        std::iter::once((number, fd)).collect(),
                        Counters::default(),
                    );
                    self.cache
                        .get_or_import(&mut one, &l.buffer, *end)
                        .map_err(|source| FrameError::Import { layer, source })?;
                    via_launcher += one.counters().via_other;
                    None
                }
                (None, Some(src)) => {
                    self.cache
                        .get_or_import(src, &l.buffer, *end)
                        .map_err(|source| FrameError::Import { layer, source })?;
                    if l.buffer.fence.kind == FenceKind::Progress {
                        // No file to take: a number in the page the launcher handed over.
                        let page = page.as_ref().ok_or_else(|| FrameError::NotAFence {
                            layer,
                            what: "a progress fence from a GPU process that was given no progress page".into(),
                        })?;
                        let id = l.buffer.fence.fd.identity;
                        if id != page.identity() {
                            return Err(FrameError::NotAFence {
                                layer,
                                what: format!(
                                    "a progress fence naming file {}:{}, not its progress page",
                                    id.dev, id.ino
                                ),
                            });
                        }
                        progress_fences += 1;
                        Some(Waitable::Point(page.clone(), l.buffer.fence.point))
                    } else if l.buffer.fence.kind == FenceKind::Implicit {
                        // No file per frame: the fences of a DMA-BUF held since the import.
                        let sync =
                            self.cache
                                .implicit_fence(src, &l.buffer)
                                .map_err(|e| match e {
                                    ImplicitError::NotAFence(what) => {
                                        FrameError::NotAFence { layer, what }
                                    }
                                    other => FrameError::Fence {
                                        layer,
                                        source: other.into(),
                                    },
                                })?;
                        implicit_fences += 1;
                        Some(Waitable::Fd(sync))
                    } else {
                        let fence = fetch(src, "fence", &l.buffer.fence.fd).map_err(|e| {
                            FrameError::Fence {
                                layer,
                                source: e.into(),
                            }
                        })?;
                        fence_of_kind(fence.as_fd(), l.buffer.fence.kind)
                            .map_err(|what| FrameError::NotAFence { layer, what })?;
                        Some(Waitable::Fd(fence))
                    }
                }
                (None, None) => {
                    return Err(FrameError::Fence {
                        layer,
                        source: anyhow::anyhow!("no source for the frame's fds"),
                    })
                }
            };
            match l.buffer.kind {
                BufferKind::DmaBuf => self.stats.dmabuf_layers += 1,
                BufferKind::Shm => self.stats.shm_layers += 1,
            }
            let shown = Shown {
                id: l.buffer.id,
                epoch: msg.epoch,
                placement: l.placement,
                signalled: false,
                frame: msg.frame,
            };
            out.push((layer, shown, fence));
        }
        let c = src.map(|s| s.counters()).unwrap_or_default();
        self.stats.fetched.buffers_via_pidfd += c.buffers_via_pidfd;
        self.stats.fetched.fences_via_pidfd += c.fences_via_pidfd;
        self.stats.fetched.fences_progress += progress_fences;
        self.stats.fetched.fences_implicit += implicit_fences;
        self.stats.fetched.fds_via_other += c.via_other + via_launcher;
        Ok((out, damage))
    }

    /// Steps 4 to 6 for a frame whose fence outcomes are known.
    fn finish(&mut self, p: Pending, ready: Vec<bool>, commands: &Commands) -> anyhow::Result<()> {
        let ready_ns = triptych_trace::now_ns();
        self.rec.record_span(
            Stage::FenceWait,
            Some(p.frame),
            p.fetched_ns,
            ready_ns,
            Args::new(),
        );
        // The layers that take their new buffer bring its content damage along.
        for ((layer, _, _), ok) in p.layers.iter().zip(&ready) {
            if *ok {
                if let Some((_, d)) = p.damage.iter().find(|(l, _)| l == layer) {
                    self.content_damage.insert(*layer, d.clone());
                }
            }
        }
        let frame_layers = p
            .layers
            .into_iter()
            .zip(ready)
            .map(|((layer, s, named), ok)| (layer, s, named, ok));
        let settled = crate::decide::settle(&mut self.shown, frame_layers, self.gpu.epoch);
        for (layer, s, named) in settled.timed_out {
            self.stats.fence_timeouts += 1;
            tracing::warn!(
                frame = p.frame,
                layer,
                timeout_ms = self.fence_timeout.as_millis() as u64,
                "fence did not signal in time; the layer keeps its previous buffer"
            );
            let mut args = Args::new();
            args.insert("layer".into(), layer.into());
            self.rec.instant(
                Marker::FenceTimeout,
                InstantScope::Process,
                Some(p.frame),
                args,
            );
            let _ = self.events.send(&RendererToLauncher::FenceTimeout {
                epoch: s.epoch,
                frame: p.frame,
                layer,
                fence: named,
            });
        }
        // Settled buffers belong to this GPU process; one that replaces it while the frame waits
        // for a slot (in `present`) never lent them, and is never told to free its own.
        let epoch = self.gpu.epoch;
        if settled.present {
            self.present(p.frame, p.sent_ns, ready_ns, commands)?;
        } else {
            // A layer has nothing to show yet (its first buffer's fence timed out): the frame
            // is answered before its buffers go back.
            let _ = self.events.send(&RendererToLauncher::Rejected {
                epoch,
                frame: p.frame,
                reason: "a layer has no buffer to show: its fence timed out".into(),
            });
        }
        for id in settled.release {
            self.release(epoch, id);
        }
        Ok(())
    }

    /// Composites what is on screen into a free slot and hands it to the launcher.
    fn present(
        &mut self,
        frame: u64,
        sent_ns: u64,
        ready_ns: u64,
        commands: &Commands,
    ) -> anyhow::Result<()> {
        let (epoch_before, generation_before) = (self.gpu.epoch, self.generation);
        let slot = loop {
            if let Some(s) = self.output.take_free() {
                break s;
            }
            // Every slot is with the launcher: wait for one back (commands only; the launcher
            // hands a slot back as soon as it shows the next frame).
            match commands.recv_timeout(Duration::from_secs(5)) {
                Ok(Err(v)) => anyhow::bail!("a bad command from the launcher: {v}"),
                Ok(Ok((c, fds))) => {
                    if !self.command(c, fds)? {
                        // Told to stop (counters sent already): a clean end, the frame unshown.
                        self.stopped = true;
                        return Ok(());
                    }
                }
                Err(_) => anyhow::bail!("no output slot came back from the launcher within 5 s"),
            }
        };
        let epoch = self.gpu.epoch;
        // A command handled while waiting for the slot (a new GPU process, a resize) has
        // dropped what this frame was made of: presenting now would show a frame that is not
        // the one named (the backdrop alone, or layers of another size).
        if (epoch, self.generation) != (epoch_before, generation_before) {
            self.output.release(slot);
            self.stats.stale_dropped += 1;
            return Ok(());
        }
        let (damage, region);
        {
            // CPU reads of a DMA-BUF are bracketed with DMA_BUF_IOCTL_SYNC so the exporter's
            // caches and fences are honoured; the guards end the access when dropped.
            let mut access = Vec::new();
            let mut layers: Vec<Layer<'_>> = Vec::with_capacity(self.shown.len());
            let mut views = BTreeMap::new();
            for (index, s) in &self.shown {
                if !s.signalled || s.epoch != epoch {
                    self.stats.stale_composited += 1;
                    continue;
                }
                let Some(imp) = self.cache.get(s.id) else {
                    self.stats.stale_composited += 1;
                    continue;
                };
                if imp.shape.kind == BufferKind::DmaBuf {
                    match triptych_sys::dma_buf::CpuAccess::begin(
                        imp.fd.as_fd(),
                        triptych_sys::dma_buf::SyncAccess::Read,
                    ) {
                        Ok(a) => access.push(a),
                        Err(e) => {
                            tracing::warn!(slot = s.id.slot, error = %e, "DMA_BUF_IOCTL_SYNC start failed; layer skipped");
                            continue;
                        }
                    }
                }
                views.insert(
                    *index,
                    View {
                        x: s.placement.x,
                        y: s.placement.y,
                        w: imp.shape.width,
                        h: imp.shape.height,
                        z: s.placement.z,
                        opacity: s.placement.opacity,
                        content: (s.epoch, s.frame),
                    },
                );
                layers.push(Layer {
                    pixels: imp.plane_bytes(),
                    stride: imp.shape.stride as usize,
                    width: imp.shape.width,
                    height: imp.shape.height,
                    fourcc: imp.shape.format.fourcc,
                    x: s.placement.x,
                    y: s.placement.y,
                    z: s.placement.z,
                    opacity: s.placement.opacity,
                });
            }
            let (w, h) = (self.width, self.height);
            let now = Snapshot {
                width: w,
                height: h,
                layers: views,
            };
            damage = if self.damage {
                output_damage(self.presented.as_ref(), &now, &self.content_damage)
            } else {
                Region::full(w, h)
            };
            self.content_damage.clear();
            self.presented = Some(now);
            region = if self.damage {
                self.slots.present(slot, damage.clone(), w, h)
            } else {
                Region::full(w, h)
            };
            let out = self.output.slot_mut(slot);
            composite_region(out, w, h, &mut layers, &region, self.order, self.backdrop);
            drop(layers);
            for a in access {
                if let Err(e) = a.end() {
                    tracing::warn!(error = %e, "DMA_BUF_IOCTL_SYNC end failed");
                }
            }
        }
        maybe_fire(
            &mut self.faults,
            FaultPoint::RendererComposite,
            frame,
            &self.events,
        );
        let composited_ns = triptych_trace::now_ns();
        let output_px = u64::from(self.width) * u64::from(self.height);
        let mut args = Args::new();
        args.insert("damaged_px".into(), damage.area().into());
        args.insert("composited_px".into(), region.area().into());
        args.insert("output_px".into(), output_px.into());
        self.rec
            .record_span(Stage::Composite, Some(frame), ready_ns, composited_ns, args);
        self.stats.frames += 1;
        self.stats.composited_px += region.area();
        self.stats.output_px += output_px;
        self.events
            .send_deferred(&RendererToLauncher::Presented(Presented {
                frame,
                generation: self.generation,
                epoch,
                slot,
                sent_ns,
                ready_ns,
                composited_ns,
                damage: damage.rects().to_vec(),
                composited_px: region.area(),
            }))
            .context("handing a frame to the launcher")?;
        self.hooks.presented(HookPresented {
            events: &self.events,
            epoch,
            generation: self.generation,
            slot,
            frame,
        });
        Ok(())
    }

    /// Gives `buffer` of the GPU process of `epoch` back to it, through the launcher. A buffer
    /// of a GPU process since replaced is nobody's to free: its ids mean other buffers to the
    /// replacement, which a release in its epoch would free while they are in use (a torn
    /// frame).
    fn release(&mut self, epoch: u64, buffer: BufferId) {
        if epoch != self.gpu.epoch {
            return;
        }
        if !self.hooks.releases(buffer) {
            return;
        }
        let start = Instant::now();
        if let Err(e) = self.events.send_deferred(&RendererToLauncher::Release {
            epoch: self.gpu.epoch,
            buffer,
        }) {
            tracing::debug!(slot = buffer.slot, error = %e, "could not release a buffer to the GPU process");
        }
        if self.rec.is_enabled() {
            let end = triptych_trace::now_ns();
            let start_ns = end.saturating_sub(start.elapsed().as_nanos() as u64);
            self.rec
                .record_span(Stage::Release, None, start_ns, end, Args::new());
        }
    }
}
