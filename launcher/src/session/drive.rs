//! The main loop: every child message, exit, corroboration verdict and heartbeat, until the last
//! frame of every view is on screen; and who is to blame when nothing of a view reaches the
//! screen.

use crossbeam_channel::Select;
use ipc_protocol::messages::ViewId;

use super::*;

/// What the loop waits on for one view's renderer: its events, its exit, the end of its
/// command stream.
struct RendererWatch {
    view: ViewId,
    events: Receiver<Delivery<RendererToLauncher>>,
    exit: Receiver<()>,
    stream: Receiver<()>,
}

/// Messages of one child already waiting that the loop handles in the turn of the first, before
/// it looks at anything else (a burst: a frame's releases and its `Presented`, or the frames of
/// several views).
pub(super) const DRAIN: u32 = 16;

/// Rounds of [`Supervisor::poll_renderers`] more in a turn of the main loop while a renderer has
/// more waiting: at most `(1 + POLL_ROUNDS) * DRAIN` messages of one renderer before the loop
/// looks at anything else.
const POLL_ROUNDS: u32 = 7;

/// Turns of the main loop, each with a message ready, after which the children are woken for
/// what was sent to them even though more messages wait ([`Supervisor::wake_children`]).
const WAKE_EVERY: u32 = 16;

impl Supervisor<'_> {
    /// Wakes every child the loop sent a message to without waking it (the steady path's
    /// frames, releases, slots and frame requests, [`ipc_protocol::channel::Sender::send_deferred`]):
    /// one wake-up for a burst of messages to one process instead of one each.
    pub(super) fn wake_children(&self) {
        if let Some(g) = &self.pair.gpu {
            g.child.commands.wake_owed();
        }
        for r in self.views.iter().filter_map(|v| v.renderer.as_ref()) {
            r.child.commands.wake_owed();
        }
    }

    /// Wakes every child asleep over a message sent to it lazily before `t`
    /// ([`ipc_protocol::channel::Sender::send_lazy`]).
    pub(super) fn wake_lazy_before(&self, t: Instant) {
        if let Some(g) = &self.pair.gpu {
            g.child.commands.wake_lazy_before(t);
        }
        for r in self.views.iter().filter_map(|v| v.renderer.as_ref()) {
            r.child.commands.wake_lazy_before(t);
        }
    }

    /// Handles up to [`DRAIN`] messages waiting in `events`, the GPU process's, while that
    /// process is still the one serving the run.
    pub(super) fn drain_gpu(
        &mut self,
        events: &Receiver<Delivery<GpuToLauncher>>,
    ) -> anyhow::Result<()> {
        let epoch = self.pair.gpu.as_ref().map(|g| g.epoch);
        for _ in 0..DRAIN {
            if epoch.is_none() || self.pair.gpu.as_ref().map(|g| g.epoch) != epoch {
                break;
            }
            match events.try_recv() {
                Ok(d) => self.gpu_delivery(d)?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Handles up to `most` messages waiting from `r`'s renderer, while it is still its view's
    /// renderer. Returns whether its channel was found disconnected (the renderer still its
    /// view's).
    fn drain_renderer(&mut self, r: &RendererWatch, most: usize) -> anyhow::Result<bool> {
        let pid_of = |s: &Self| {
            s.view_index(r.view)
                .and_then(|i| s.views[i].renderer.as_ref())
                .map(|x| x.child.proc.pid)
        };
        let pid = pid_of(self);
        for _ in 0..most {
            if pid.is_none() || pid_of(self) != pid {
                break;
            }
            match r.events.try_recv() {
                Ok(d) => self.renderer_delivery(r.view, d)?,
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return Ok(true),
            }
        }
        Ok(false)
    }

    /// Hands each renderer whose messages the loop reads itself and that still has more waiting
    /// after a turn's rounds to a forwarding thread of its own, as in a run that is not paced:
    /// it sends more than the loop takes in a turn, and is read as fast as it sends (and judged
    /// by its budget) without holding up the loop.
    fn forward_floods(&mut self) {
        for v in &mut self.views {
            let Some(r) = v.renderer.as_mut() else {
                continue;
            };
            if !r.intake.as_ref().is_some_and(|i| i.behind()) {
                continue;
            }
            tracing::info!(
                view = v.id.0,
                renderer = r.child.proc.pid,
                "the renderer sends more than a turn of the loop takes: a thread reads it from now on"
            );
            r.forward_rest();
            self.intakes.0 = self.intakes.0.saturating_sub(1);
            self.intakes.1 += 1;
        }
    }

    /// Reads and handles what the renderers the loop reads itself
    /// ([`ipc_protocol::channel::Polled`]) have sent since it last looked: up to [`DRAIN`]
    /// messages of each, the first renderer looked at another each turn, so that one that keeps
    /// its ring full delays the others and the loop's other work by a few messages at most.
    /// Returns whether any may have more waiting (the loop then does not sleep).
    fn poll_renderers(&mut self, now: Instant, turn: usize) -> anyhow::Result<bool> {
        let mut polled: Vec<ViewId> = self
            .views
            .iter()
            .filter(|v| v.renderer.as_ref().is_some_and(|r| r.intake.is_some()))
            .map(|v| v.id)
            .collect();
        if !polled.is_empty() {
            let first = turn % polled.len();
            polled.rotate_left(first);
        }
        let mut more = false;
        for view in polled {
            let Some(r) = self
                .view_index(view)
                .and_then(|i| self.views[i].renderer.as_mut())
            else {
                continue;
            };
            let Some(intake) = r.intake.as_mut() else {
                continue;
            };
            more |= intake.poll(now, DRAIN as usize);
            let watch = RendererWatch {
                view,
                events: r.events.clone(),
                exit: r.exit.clone(),
                stream: crossbeam_channel::never(),
            };
            if self.drain_renderer(&watch, DRAIN as usize)? {
                self.channel_closed(Who::Renderer(view), &watch.exit)?;
            }
        }
        Ok(more)
    }

    /// The main loop: until the last frame of every view is on screen, or Ctrl-C.
    pub(super) fn drive(&mut self, signals: &Receiver<Signal>) -> anyhow::Result<()> {
        let heartbeat = Duration::from_millis(self.args.supervision.heartbeat_ms.max(10));
        let hang = Duration::from_millis(self.args.supervision.hang_timeout_ms.max(50));
        let now = Instant::now();
        for v in &self.views {
            self.liveness.progress(v.id, now);
        }
        // Each child's command stream: its sending thread ends when the child's end closes.
        let stream_end = |link: Option<&std::sync::Arc<ipc_protocol::commands::CommandLink>>| {
            link.map_or_else(crossbeam_channel::never, |l| l.ended())
        };
        let mut busy_turns = 0;
        let mut turn = 0usize;
        while !self.run_over() {
            turn = turn.wrapping_add(1);
            // Read before anything is looked at: whatever rings the bell after this ends the
            // turn's sleep on the GPU process's ring, or keeps it from beginning.
            let rung = self.bell.rung();
            let mut gpu_more = self.poll_gpu(Instant::now())?;
            let mut backlog = self.poll_renderers(Instant::now(), turn)?;
            // A child that has more waiting is read on, a few rounds (every renderer's turn
            // in each), before the loop looks at anything else: it is read as fast as a thread
            // would read it, and judged by its budget if it sends past it.
            for _ in 0..POLL_ROUNDS {
                if !(backlog || gpu_more) || self.run_over() {
                    break;
                }
                if gpu_more {
                    gpu_more = self.poll_gpu(Instant::now())?;
                }
                if backlog {
                    backlog = self.poll_renderers(Instant::now(), turn)?;
                }
            }
            if gpu_more {
                self.forward_gpu_flood();
            }
            if backlog {
                self.forward_floods();
            }
            if self.run_over() {
                break;
            }
            let mut wait = self
                .display_tick()
                .or_else(|| self.pacer_tick())
                .map_or(heartbeat, |tick| tick.min(heartbeat));
            if self.pair.gpu.as_ref().is_some_and(|g| g.handing_back()) {
                wait = wait.min(gpu_intake::HANDBACK_LOOK);
            }
            let display_events = self
                .display
                .as_ref()
                .map_or_else(crossbeam_channel::never, |s| s.d.events.clone());
            let embed_control = self.embedding.control();
            let edits = self.edits.from.clone();
            let gpu_events = self
                .pair
                .gpu
                .as_ref()
                .map_or_else(crossbeam_channel::never, |g| g.events.clone());
            let gpu_exit = self
                .pair
                .gpu
                .as_ref()
                .map_or_else(crossbeam_channel::never, |g| g.exit.clone());
            let standby_events = self
                .pair
                .standby
                .as_ref()
                .map_or_else(crossbeam_channel::never, |w| w.events.clone());
            let standby_exit = self
                .pair
                .standby
                .as_ref()
                .map_or_else(crossbeam_channel::never, |w| w.exit.clone());
            let gpu_stream =
                stream_end(self.pair.gpu.as_ref().and_then(|g| g.child.commands.link()));
            let standby_stream = stream_end(
                self.pair
                    .standby
                    .as_ref()
                    .and_then(|w| w.child.commands.link()),
            );
            let renderers: Vec<RendererWatch> = self
                .views
                .iter()
                .filter_map(|v| {
                    let r = v.renderer.as_ref()?;
                    Some(RendererWatch {
                        view: v.id,
                        // What the loop reads itself, it does not wait for.
                        events: if r.intake.is_some() {
                            crossbeam_channel::never()
                        } else {
                            r.events.clone()
                        },
                        exit: r.exit.clone(),
                        stream: stream_end(r.child.commands.link()),
                    })
                })
                .collect();
            let checked = self.policing.verdicts();
            let looked = self.policing.look_verdicts();
            let vouched = self.policing.vouch_outcomes();
            let mut sel = Select::new();
            let op_gpu_events = sel.recv(&gpu_events);
            let op_gpu_exit = sel.recv(&gpu_exit);
            let op_gpu_stream = sel.recv(&gpu_stream);
            let op_standby_stream = sel.recv(&standby_stream);
            let op_standby_events = sel.recv(&standby_events);
            let op_standby_exit = sel.recv(&standby_exit);
            let op_checked = sel.recv(&checked);
            let op_looked = sel.recv(&looked);
            let op_vouched = sel.recv(&vouched);
            let op_signals = sel.recv(signals);
            let op_display = sel.recv(&display_events);
            let op_edits = sel.recv(&edits);
            let op_embed = sel.recv(&embed_control);
            let op_renderers: Vec<(usize, usize, usize)> = renderers
                .iter()
                .map(|r| (sel.recv(&r.events), sel.recv(&r.exit), sel.recv(&r.stream)))
                .collect();
            // What the loop sends on the steady path wakes its child once the loop has nothing
            // more to do, or after `WAKE_EVERY` turns in a row.
            let ready = match sel.try_select() {
                Ok(op) if busy_turns < WAKE_EVERY => {
                    busy_turns += 1;
                    Some(op)
                }
                ready => {
                    busy_turns = 0;
                    self.wake_children();
                    match ready {
                        Ok(op) => Some(op),
                        // A renderer with messages still waiting: another turn at once.
                        Err(_) if backlog => None,
                        // Where the loop reads the GPU process's ring, it sleeps there (and on
                        // its bell); the next turn looks at whatever woke it.
                        Err(_) if self.sleep_on_gpu(rung, wait) => None,
                        Err(_) => sel.select_timeout(wait).ok(),
                    }
                }
            };
            if let Some(op) = ready {
                let k = op.index();
                if k == op_gpu_events {
                    match op.recv(&gpu_events) {
                        Ok(d) => {
                            self.gpu_delivery(d)?;
                            self.drain_gpu(&gpu_events)?;
                        }
                        Err(_) => self.channel_closed(Who::Gpu, &gpu_exit)?,
                    }
                } else if k == op_gpu_exit {
                    let _ = op.recv(&gpu_exit);
                    self.gpu_down(None)?;
                } else if k == op_gpu_stream {
                    let _ = op.recv(&gpu_stream);
                    self.stream_closed(Who::Gpu, &gpu_exit)?;
                } else if k == op_standby_stream {
                    let _ = op.recv(&standby_stream);
                    let died = standby_exit
                        .recv_timeout(Duration::from_millis(250))
                        .is_ok();
                    self.standby_down((!died).then(|| {
                        "protocol violation: command stream: closed while the process lives on"
                            .to_owned()
                    }))?;
                } else if k == op_standby_events {
                    match op.recv(&standby_events) {
                        Ok(d) => self.standby_message(d)?,
                        // Its control socket closed: it is dying; its pidfd says how.
                        Err(_) => {
                            let _ = standby_exit.recv_timeout(Duration::from_millis(250));
                            self.standby_down(None)?;
                        }
                    }
                } else if k == op_standby_exit {
                    let _ = op.recv(&standby_exit);
                    self.standby_down(None)?;
                } else if k == op_checked {
                    if let Ok((claim, finding)) = op.recv(&checked) {
                        self.policing.verdict_taken(claim.view);
                        self.fence_verdict(claim, finding)?;
                    }
                } else if k == op_looked {
                    if let Ok((epoch, verdict)) = op.recv(&looked) {
                        self.fence_look_verdict(epoch, verdict)?;
                    }
                } else if k == op_vouched {
                    if let Ok((epoch, view, link, outcome)) = op.recv(&vouched) {
                        self.vouch_outcome(epoch, view, link, outcome)?;
                    }
                } else if k == op_signals {
                    let s = op.recv(signals);
                    tracing::warn!(signal = ?s.ok(), "interrupted: shutting down");
                    return Ok(());
                } else if k == op_display {
                    if let Ok(e) = op.recv(&display_events) {
                        self.display_event(e)?;
                    }
                } else if k == op_edits {
                    match op.recv(&edits) {
                        Ok(e) => self.apply_edit(e)?,
                        Err(_) => self.edits.from = crossbeam_channel::never(),
                    }
                } else if k == op_embed {
                    match op.recv(&embed_control) {
                        Ok(c) => self.embed_control(c)?,
                        Err(_) => self.embedding.quit(),
                    }
                } else if let Some(j) = op_renderers
                    .iter()
                    .position(|(e, x, s)| k == *e || k == *x || k == *s)
                {
                    let r = &renderers[j];
                    let (e, x, _) = op_renderers[j];
                    let who = Who::Renderer(r.view);
                    if k == e {
                        match op.recv(&r.events) {
                            Ok(d) => {
                                self.renderer_delivery(r.view, d)?;
                                self.drain_renderer(r, DRAIN as usize)?;
                            }
                            Err(_) => self.channel_closed(who, &r.exit)?,
                        }
                    } else if k == x {
                        let _ = op.recv(&r.exit);
                        self.renderer_down(r.view, None)?;
                    } else {
                        let _ = op.recv(&r.stream);
                        self.stream_closed(who, &r.exit)?;
                    }
                } else {
                    // Every operation added is matched above.
                    tracing::error!(index = k, "a select operation with no handler");
                }
            }
            let unread: Vec<ViewId> = self
                .views
                .iter()
                .filter(|v| v.renderer.as_ref().is_some_and(|r| r.unread))
                .map(|v| v.id)
                .collect();
            for view in unread {
                self.renderer_violation(
                    view,
                    rules::Breach::new(
                        "control socket",
                        "stopped reading the launcher's commands (its queue is full)",
                    ),
                )?;
            }
            if self.pair.gpu.as_ref().is_some_and(|g| g.unread) {
                self.gpu_violation(rules::Breach::new(
                    "control socket",
                    "stopped reading the launcher's commands (its queue is full)",
                ))?;
            }
            // Heartbeats.
            if let Some(seq) = self.liveness.ping_due(Instant::now(), heartbeat) {
                if let Some(g) = &mut self.pair.gpu {
                    if let Err(SendError::Full) = g.child.commands.send(&LauncherToGpu::Ping(seq)) {
                        g.unread = true;
                    }
                }
                for r in self.views.iter_mut().filter_map(|v| v.renderer.as_mut()) {
                    if let Err(e) = r.child.commands.send(&LauncherToRenderer::Ping(seq)) {
                        r.send_failed(e);
                    }
                }
                if let Some(w) = self.pair.standby.as_mut().filter(|w| w.ready.is_some()) {
                    match w.child.commands.send(&LauncherToGpu::Ping(seq)) {
                        Ok(()) => w.pinged = seq,
                        Err(SendError::Full) => {
                            self.standby_down(Some(
                                "protocol violation: control socket: stopped reading the launcher's commands (its queue is full)".to_owned(),
                            ))?;
                        }
                        // Gone: its exit says how.
                        Err(_) => {}
                    }
                }
            }
            let now = Instant::now();
            let silent = self
                .liveness
                .silent(Who::Gpu, now, hang)
                .filter(|_| self.pair.gpu.is_some());
            if let Some(silent) = silent {
                self.gpu_down(Some(Cause::Hang {
                    silent_ms: silent.as_millis() as u64,
                }))?;
            }
            let ids: Vec<ViewId> = self.views.iter().map(|v| v.id).collect();
            for view in ids {
                let running = self
                    .view_index(view)
                    .is_some_and(|i| self.views[i].renderer.is_some());
                let silent = self
                    .liveness
                    .silent(Who::Renderer(view), now, hang)
                    .filter(|_| running);
                if let Some(silent) = silent {
                    self.renderer_down(
                        view,
                        Some(Cause::Hang {
                            silent_ms: silent.as_millis() as u64,
                        }),
                    )?;
                }
                // Its children answer, yet nothing of it reaches the screen: blame whoever
                // holds it up.
                let stalled = self.liveness.stalled(view, now);
                if stalled > hang && self.pair.gpu.is_some() && !self.view_done(view) {
                    self.stalled(view, stalled, hang)?;
                }
            }
            self.standby_due()?;
            if let Some(o) = &mut self.observer {
                o.progress(self.summary.frames.count, self.crashes.len());
            }
        }
        Ok(())
    }

    /// Whether `view`'s last frame is on screen (a headless run's view has nothing more to
    /// show).
    fn view_done(&self, view: ViewId) -> bool {
        self.view_index(view).is_none_or(|i| {
            let v = &self.views[i];
            v.failed.is_some() || (self.display.is_none() && v.last == Some(self.args.frames - 1))
        })
    }

    /// Whether the run is over: headless, once the last frame of every view is on screen; in a
    /// window, once the window is closed or `q` pressed (the last frame stays on screen until
    /// then).
    fn run_over(&self) -> bool {
        if self.embedding.quitting() {
            return true;
        }
        match &self.display {
            Some(s) => s.quit,
            None => {
                self.last_dropped
                    || self
                        .views
                        .iter()
                        .all(|v| v.failed.is_some() || v.last == Some(self.args.frames - 1))
            }
        }
    }

    /// A child's control socket closed. A dying child closes it a moment before its pidfd
    /// reports the exit; a child that closes it and lives on has broken the protocol.
    pub(super) fn channel_closed(&mut self, who: Who, exit: &Receiver<()>) -> anyhow::Result<()> {
        self.closed(who, exit, "control socket")
    }

    /// The launcher's command stream to `who` ended ([`ipc_protocol::commands`]): it closed its
    /// end, and is dying, or is to blame for closing it while it lives on.
    pub(super) fn stream_closed(&mut self, who: Who, exit: &Receiver<()>) -> anyhow::Result<()> {
        self.closed(who, exit, "command stream")
    }

    fn closed(&mut self, who: Who, exit: &Receiver<()>, what: &str) -> anyhow::Result<()> {
        let died = exit.recv_timeout(Duration::from_millis(250)).is_ok();
        let cause = (!died).then(|| Cause::ProtocolViolation {
            kind: what.to_owned(),
            what: "closed while the process lives on".to_owned(),
        });
        match who {
            Who::Gpu => self.gpu_down(cause),
            Who::Renderer(view) => self.renderer_down(view, cause),
        }
    }

    /// No frame of `view` reached the screen for `stalled` although its children answer. The
    /// launcher handed every frame and every release on itself ([`ipc_protocol::relay`]), so it
    /// knows who holds the work, without either child's word:
    /// 1. the view's renderer has held every buffer of a layer since before the stall (half the
    ///    hang timeout at least), each of a frame it answered or has had for longer than its
    ///    fence wait: it took frames and neither composited nor gave them back, and the GPU
    ///    process cannot render for the view;
    /// 2. it holds every buffer of a layer, some of a frame it may still be waiting on the GPU
    ///    process's fences for: nobody yet, until that wait is over;
    /// 3. otherwise, once the GPU process has had a buffer of every layer of the view free for
    ///    half the hang timeout too: if the renderer answered every frame since its last present
    ///    with a rejection (its word alone, which the launcher cannot check), a fresh renderer is
    ///    tried first, once per view and GPU process; otherwise (or if the fresh one rejects as
    ///    well) the GPU process stopped producing, or never said it serves a new renderer, and
    ///    is stalled.
    pub(super) fn stalled(
        &mut self,
        view: ViewId,
        stalled: Duration,
        hang: Duration,
    ) -> anyhow::Result<()> {
        let ms = stalled.as_millis() as u64;
        let Some(i) = self.view_index(view) else {
            return Ok(());
        };
        let link = self.pair.gpu.as_ref().and_then(|g| g.link(view));
        // Headless, nothing paces the GPU process: after a resize, the renderer drops the frames
        // made at the old size. Once every frame is made and none comes, the last ones were of
        // those: the run is over, and nobody is to blame.
        if self.display.is_none()
            && self.views[i].geometry.generation() > 0
            && link.is_some_and(|l| l.finished)
        {
            tracing::info!(
                last_frame = ?self.summary.frames.last,
                "the last frames were made at a size no longer current and dropped; the run is over"
            );
            self.last_dropped = true;
            return Ok(());
        }
        // The renderer may hold a frame unanswered for its fence wait, and the launcher's own
        // look at a timed-out fence after it.
        let fence_wait = Duration::from_millis(u64::from(self.args.fence_timeout_ms));
        let patience = fence_wait + Duration::from_secs(1);
        let holder = link.map(|l| {
            let long = l.starved_since.is_some_and(|t| {
                t.elapsed() + Duration::from_millis(10) >= (hang / 2).min(stalled)
            });
            (
                l.relay.holder(Instant::now(), patience),
                long,
                l.starved_since,
            )
        });
        let has_renderer = self.views[i].renderer.is_some();
        match holder {
            Some((ipc_protocol::relay::Holder::Renderer(layer), true, Some(since)))
                if has_renderer =>
            {
                let held_ms = since.elapsed().as_millis() as u64;
                return self.renderer_down(
                    view,
                    Some(Cause::ProtocolViolation {
                        kind: "Release".to_owned(),
                        what: format!(
                            "held every buffer of layer {layer} for {held_ms} ms without presenting (no frame for {ms} ms)"
                        ),
                    }),
                );
            }
            // The renderer holds every buffer of a layer, some of a frame it may still be
            // waiting on the GPU process's fences for: judged once that wait is over.
            Some((
                ipc_protocol::relay::Holder::Renderer(_) | ipc_protocol::relay::Holder::Undecided,
                _,
                _,
            )) if has_renderer => {
                return Ok(());
            }
            _ => {}
        }
        // The GPU process could render for the view: it must have been able to for a while, not
        // since a release a moment ago.
        let free_long = link.is_some_and(|l| {
            l.free_since
                .is_some_and(|t| t.elapsed() + Duration::from_millis(10) >= (hang / 2).min(stalled))
        });
        if !free_long && has_renderer {
            return Ok(());
        }
        // Several views share the process: one that made frames of other views since this one's
        // buffers were free is busy, not stalled, while it may still be giving costlier views
        // their share (it may pass a view over for `FAIR_TURNS` frames of each other view, and
        // one round more while several are overdue); one that made none at all is stalled.
        let busy = self.pair.gpu.as_ref().and_then(|g| {
            let l = g.link(view)?;
            let round = g.links.len() as u64;
            let others = l.others_since_free(g.produced);
            // And the frames of the others the process made before it heard of the release:
            // at most a pool's worth of each.
            let most = (rules::FAIR_TURNS + 2 + u64::from(self.args.pool)).saturating_mul(round);
            (round > 1 && others > 0 && others < most).then_some(others)
        });
        if let Some(others) = busy {
            tracing::debug!(
                view = view.0,
                others,
                ms,
                "no frame of the view, while the GPU process draws the others' in turn: busy, not stalled"
            );
            return Ok(());
        }
        // Frames flowed, and the renderer answered every one of them with a rejection: its word
        // alone, which the launcher cannot check. A fresh renderer is tried first, once per
        // view and GPU process; if it rejects as well, the GPU process is the one stalled.
        let rejected = self.views[i].renderer.as_ref().map_or(0, |r| r.rejected);
        let spared = link.is_some_and(|l| l.spared);
        if rejected > 0 && !spared && has_renderer {
            if let Some(l) = self.pair.gpu.as_mut().and_then(|g| g.link_mut(view)) {
                l.spared = true;
            }
            tracing::warn!(
                view = view.0,
                rejected,
                ms,
                "the renderer rejected every frame of the stall by its word alone; a fresh renderer is tried before the GPU process is blamed"
            );
            return self.renderer_down(view, Some(Cause::Stalled { ms }));
        }
        self.gpu_down(Some(Cause::Stalled { ms }))
    }

    /// The launcher's own check of a renderer's fence-timeout claim came back.
    pub(super) fn fence_verdict(
        &mut self,
        claim: corroborate::Claim,
        finding: corroborate::Finding,
    ) -> anyhow::Result<()> {
        use corroborate::Finding;
        match finding {
            Finding::Hung => {
                if self
                    .pair
                    .gpu
                    .as_ref()
                    .is_some_and(|g| g.epoch == claim.epoch)
                {
                    self.gpu_down(Some(Cause::FenceTimeout {
                        frame: claim.frame,
                        layer: claim.layer,
                    }))?;
                }
            }
            Finding::Refuted(why) => {
                self.policing.note("refuted-fence-timeout", || {
                    tracing::warn!(frame = claim.frame, layer = claim.layer, %why, "the renderer's fence timeout is refuted; nobody is blamed")
                });
                self.summary.trust.refuted_fence_timeouts += 1;
            }
            Finding::Bogus(why) => {
                // Only the renderer that claimed it: one replaced since is gone already.
                let same = self
                    .pair
                    .gpu
                    .as_ref()
                    .filter(|g| g.epoch == claim.epoch)
                    .and_then(|g| g.link(claim.view))
                    .is_some_and(|l| l.relay.link() == claim.link);
                if same {
                    self.renderer_violation(claim.view, rules::Breach::new("FenceTimeout", why))?;
                }
            }
        }
        Ok(())
    }
}
