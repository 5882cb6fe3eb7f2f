//! What the launcher does with each message a child sends: every one is checked
//! ([`super::rules`]) before it changes anything, and a message that breaks the rules costs the
//! sender its life (`protocol violation`), never the run. A view's renderer speaks only of its
//! own view: whatever it names (a buffer, a frame, a fence, a slot) is looked up in that view's
//! relay and output, so naming another view's is naming nothing it was given.

use std::time::{Duration, Instant};

use ipc_protocol::channel::{Delivery, SendError};
use ipc_protocol::messages::{
    FaultAction, FrameMsg, GpuToLauncher, LauncherToGpu, LauncherToRenderer, RendererToLauncher,
    ViewCommand, ViewId,
};
use triptych_trace::{Args, Stage};

use super::parts::Who;
use super::{fd_count, window_of, Supervisor, FIRST_VIEW};
use crate::chaos::Target;
use crate::crash::Cause;
use crate::present::Screen;
use ipc_protocol::rules::{self, Breach};
use ipc_protocol::Role;

impl Supervisor<'_> {
    /// One delivery from the GPU process's control socket.
    pub(super) fn gpu_delivery(&mut self, d: Delivery<GpuToLauncher>) -> anyhow::Result<()> {
        let verdict = match d {
            Ok((m, _)) => self.gpu_event(m),
            Err(v) => Err(Breach::new("message", v.to_string())),
        };
        match verdict {
            Ok(()) => Ok(()),
            Err(b) => self.gpu_violation(b),
        }
    }

    /// One delivery from `view`'s renderer's control socket.
    pub(super) fn renderer_delivery(
        &mut self,
        view: ViewId,
        d: Delivery<RendererToLauncher>,
    ) -> anyhow::Result<()> {
        let verdict = match d {
            Ok((m, fds)) => self.renderer_event(view, m, fds),
            Err(v) => Err(Breach::new("message", v.to_string())),
        };
        match verdict {
            Ok(()) => Ok(()),
            Err(b) => self.renderer_violation(view, b),
        }
    }

    /// The GPU process broke the protocol: it is taken to be compromised, and killed. A breach
    /// by a process that had ended on its own before the kill reached it (its output fd could
    /// not be taken as it crashed, say) is its death's consequence, not a violation: it is
    /// recorded by how it died ([`crate::child::Process::kill_for_breach`]).
    pub(super) fn gpu_violation(&mut self, b: Breach) -> anyhow::Result<()> {
        if self
            .pair
            .gpu
            .as_mut()
            .is_some_and(|g| g.child.proc.kill_for_breach())
        {
            tracing::debug!(kind = b.kind, what = %b.what, "breach by a GPU process that had died on its own");
            return self.gpu_down(None);
        }
        tracing::warn!(kind = b.kind, what = %b.what, "protocol violation by the GPU process");
        self.gpu_down(Some(Cause::ProtocolViolation {
            kind: b.kind.to_owned(),
            what: b.what,
        }))
    }

    /// `view`'s renderer says frame `frame` of the GPU process of `epoch` named, as `layer`'s
    /// fence, a file that is no fence. The launcher knows which fd that frame named (it handed
    /// the frame on), and looks at it itself a few times per view and GPU process
    /// ([`super::fence_look`]); a claim it does not look at is counted.
    fn fence_claim(&mut self, view: ViewId, epoch: u64, frame: u64, layer: u32, what: &str) {
        use super::fence_look::FenceToLook;
        let window = self
            .view_index(view)
            .map(|i| window_of(self.views[i].window));
        let started = self
            .pair
            .gpu
            .as_mut()
            .filter(|g| g.epoch == epoch)
            .and_then(|g| {
                let kind = g.info.fence;
                let link = g
                    .link_mut(view)
                    .filter(|l| l.looks < super::MAX_FENCE_LOOKS)?;
                let fence = link.relay.fence(frame, layer)?.clone();
                link.looks += 1;
                let look = FenceToLook {
                    epoch,
                    frame,
                    fence,
                    window: window?,
                    kind,
                };
                Some(self.policing.look_at_fence(&g.child.proc.pidfd, look))
            });
        if started != Some(true) {
            self.summary.trust.fence_claims_unlooked += 1;
            super::push_bounded(
                &mut self.summary.trust.uncorroborated,
                format!(
                    "renderer says the GPU process's frame {frame} broke its description: {what}"
                ),
            );
        }
    }

    /// What the launcher's look at a fence of the GPU process of `epoch` showed.
    pub(super) fn fence_look_verdict(
        &mut self,
        epoch: u64,
        verdict: super::fence_look::Verdict,
    ) -> anyhow::Result<()> {
        use super::fence_look::Verdict;
        if self.pair.gpu.as_ref().is_none_or(|g| g.epoch != epoch) {
            // About a process replaced since: its death is recorded already.
            return Ok(());
        }
        match verdict {
            Verdict::Lied(why) => {
                self.summary.trust.proven_gpu_lies += 1;
                self.gpu_violation(Breach::new("Frame", why))
            }
            Verdict::Refuted(why) => {
                self.summary.trust.refuted_fence_claims += 1;
                self.policing.note("refuted-fence-claim", || {
                    tracing::warn!(%why, "the renderer's claim of a fence that is no fence is refuted; nobody is blamed")
                });
                Ok(())
            }
        }
    }

    /// `view`'s renderer broke the protocol: it is taken to be compromised, and killed (but see
    /// [`Supervisor::gpu_violation`] for a renderer that had died on its own).
    pub(super) fn renderer_violation(&mut self, view: ViewId, b: Breach) -> anyhow::Result<()> {
        let dead = self
            .view_index(view)
            .and_then(|i| self.views[i].renderer.as_mut())
            .is_some_and(|r| r.child.proc.kill_for_breach());
        if dead {
            tracing::debug!(kind = b.kind, what = %b.what, "breach by a renderer that had died on its own");
            return self.renderer_down(view, None);
        }
        tracing::warn!(view = view.0, kind = b.kind, what = %b.what, "protocol violation by the renderer");
        self.renderer_down(
            view,
            Some(Cause::ProtocolViolation {
                kind: b.kind.to_owned(),
                what: b.what,
            }),
        )
    }

    /// A frame of `view` from the GPU process: checked against the view's relay
    /// ([`ipc_protocol::relay::Relay::frame`]), counted as produced, and handed on to the
    /// view's renderer, which holds its buffers from now on. A lie in it is seen here, by the
    /// launcher itself, and costs the GPU process its life.
    fn relay_frame(&mut self, view: ViewId, msg: FrameMsg) -> Result<(), Breach> {
        use ipc_protocol::relay::Handed;
        let generation = self.generation_of(view);
        let Some(g) = self.pair.gpu.as_mut() else {
            return Ok(());
        };
        let produced = g.produced;
        let Some(link) = g.link_mut(view).filter(|l| !l.removing) else {
            // A view being removed: what the process sent before it heard is dropped.
            return Ok(());
        };
        let Some(i) = self.views.iter().position(|v| v.id == view) else {
            return Err(Breach::new(
                "Frame",
                format!("a frame of {view}, which it was never given"),
            ));
        };
        let handed = link
            .relay
            .frame(&msg, generation, Instant::now())
            .inspect_err(|_| {
                self.summary.trust.proven_gpu_lies += 1;
            })?;
        if handed == Handed::Dropped {
            return Ok(());
        }
        link.produced += 1;
        link.held_changed(produced + 1);
        let held = link.relay.held() as u64;
        g.produced += 1;
        self.views[i].held_max = self.views[i].held_max.max(held);
        self.policing.produced(view, msg.frame, self.args.frames)?;
        if view == FIRST_VIEW {
            // The update on its way has arrived once a frame draws it: the next may go.
            self.edit_arrived(Some(msg.scene_version), None);
        }
        let Some(g) = self.pair.gpu.as_mut() else {
            return Ok(());
        };
        // Pipe fences are vouched for only once the GPU process keeps them private: one in the
        // window may have had its signal read away by the renderer, which would decide nothing.
        // Until then frames go on as before, and a claim about one is counted only.
        let fences_safe = g.info.fence != ipc_protocol::frame::FenceKind::Pipe || g.private_fences;
        let pidfd = &g.child.proc.pidfd;
        let Some(link) = g.links.iter_mut().find(|l| l.view == view) else {
            return Ok(());
        };
        if let Some(v) = link.vouch.as_ref().filter(|_| fences_safe) {
            let link_no = link.relay.link();
            link.vouched_from = link.vouched_from.or(Some(msg.frame));
            link.relay.held_by_launcher(msg.frame);
            let sent =
                triptych_sys::fd::dup_cloexec(std::os::fd::AsFd::as_fd(pidfd)).is_ok_and(|pidfd| {
                    v.submit(super::vouch::Job {
                        pidfd,
                        msg,
                        link: link_no,
                    })
                });
            if !sent {
                // No fd or no thread left (neither can be, short of exhaustion or a panic): the
                // frame is lost, and the stall check finds the process whose frames stopped.
                tracing::error!("a frame of the GPU process could not be vouched for; dropped");
            }
            return Ok(());
        }
        if let Some(r) = self.views[i].renderer.as_mut() {
            let (frame, sent_ns) = (msg.frame, msg.sent_ns);
            let relayed_ns = triptych_trace::now_ns();
            if let Err(e) = r
                .child
                .commands
                .send_deferred(&LauncherToRenderer::Frame { msg, relayed_ns })
            {
                r.send_failed(e);
            }
            self.relayed(view, frame, sent_ns, relayed_ns, false);
        }
        Ok(())
    }

    /// The `relay` span of frame `frame` of `view`: from the GPU process's send (as it says; no
    /// later than the hand-on) to the launcher's hand-on at `relayed_ns`.
    fn relayed(&mut self, view: ViewId, frame: u64, sent_ns: u64, relayed_ns: u64, vouched: bool) {
        let rec = self.tracing.rec();
        if rec.is_enabled() {
            let mut args = Args::new();
            if vouched {
                args.insert("vouched".into(), true.into());
            }
            if view != FIRST_VIEW {
                args.insert(triptych_trace::VIEW_ARG.into(), view.0.into());
            }
            rec.record_span(
                Stage::Relay,
                Some(frame),
                sent_ns.min(relayed_ns),
                relayed_ns,
                args,
            );
        }
    }

    /// `view`'s renderer claimed that the GPU process of `epoch` broke frame `frame`. A claim
    /// about a frame the launcher vouches for is a lie, and costs the renderer; any other about
    /// the current process starts the launcher vouching for the view's frames from now on
    /// ([`super::vouch`]), once.
    fn claim(
        &mut self,
        view: ViewId,
        kind: &'static str,
        epoch: u64,
        frame: u64,
    ) -> Result<(), Breach> {
        let last_sent = self.liveness.last_sent();
        let Some(g) = self.pair.gpu.as_mut().filter(|g| g.epoch == epoch) else {
            return Ok(());
        };
        let fence_kind = g.info.fence;
        let Some(link) = g.links.iter_mut().find(|l| l.view == view) else {
            return Ok(());
        };
        if frame >= link.relay.next() {
            return Err(Breach::new(
                kind,
                format!("frame {frame}, which was never handed to it"),
            ));
        }
        if link.vouched_from.is_some_and(|first| frame >= first) {
            self.summary.trust.refuted_vouched_claims += 1;
            return Err(Breach::new(
                kind,
                format!(
                    "frame {frame}, which the launcher vouched for: its buffers taken from the GPU process and checked by the launcher, its fences seen signalled"
                ),
            ));
        }
        if link.vouch.is_some() {
            return Ok(());
        }
        let started = self.vouch_for(view);
        let Some(g) = self.pair.gpu.as_mut() else {
            return Ok(());
        };
        if started
            && fence_kind == ipc_protocol::frame::FenceKind::Pipe
            && g.private_asked.is_none()
        {
            // A pipe fence's signal can be read away by whoever holds it: from now on only
            // the GPU process and the launcher may.
            g.private_asked = Some(last_sent);
            if let Err(SendError::Full) = g.child.commands.send(&LauncherToGpu::PrivateFences) {
                g.unread = true;
            }
        }
        let pid = g.child.proc.pid;
        if started {
            self.summary.trust.vouched_gpus += 1;
            tracing::warn!(gpu_pid = pid, view = view.0, frame, "the renderer claims the GPU process broke a frame: from now on the launcher takes and checks each of its frames' buffers and fences itself, for the renderer's view, and hands the buffers on (a slower path)");
            self.tracing.instant(
                triptych_trace::Marker::Fallback,
                Some(frame),
                &[
                    ("path", "vouched frames".to_owned()),
                    ("gpu_pid", pid.to_string()),
                    ("view", view.0.to_string()),
                ],
            );
        } else {
            tracing::error!(
                gpu_pid = pid,
                "could not start vouching for the GPU process's frames; claims stay counted only"
            );
        }
        Ok(())
    }

    /// Starts vouching for `view`'s frames from the current GPU process ([`super::vouch`]),
    /// unless it does already; whether it does now.
    fn vouch_for(&mut self, view: ViewId) -> bool {
        let timeout = Duration::from_millis(u64::from(self.args.fence_timeout_ms));
        let sender = self.policing.vouch_sender();
        let Some(g) = self.pair.gpu.as_mut() else {
            return false;
        };
        let (epoch, kind) = (g.epoch, g.info.fence);
        let page = g.progress.as_ref().map(|p| p.reader.clone());
        let Some(link) = g.links.iter_mut().find(|l| l.view == view) else {
            return false;
        };
        if link.vouch.is_none() {
            link.vouch = super::vouch::Vouch::start(
                epoch,
                view,
                link.relay.link(),
                kind,
                page,
                timeout,
                sender,
            );
        }
        link.vouch.is_some()
    }

    /// What the launcher's vouching for a frame of `view` from the GPU process of `epoch`,
    /// handed on to renderer link `link`, found.
    pub(super) fn vouch_outcome(
        &mut self,
        epoch: u64,
        view: ViewId,
        link: u64,
        outcome: super::vouch::Outcome,
    ) -> anyhow::Result<()> {
        use super::vouch::Outcome;
        let current = self
            .pair
            .gpu
            .as_ref()
            .filter(|g| g.epoch == epoch)
            .and_then(|g| g.link(view))
            .is_some_and(|l| l.relay.link() == link);
        if !current {
            // About a process replaced since (its death is recorded already), or a frame for a
            // renderer replaced since, whose fds the process may have closed and reused since
            // (nobody's to show or to judge).
            return Ok(());
        }
        match outcome {
            Outcome::Lied { why } => {
                self.summary.trust.proven_gpu_lies += 1;
                self.gpu_violation(Breach::new("Frame", why))
            }
            Outcome::Gone => Ok(()),
            Outcome::Hung { frame, layer } => {
                self.gpu_down(Some(Cause::FenceTimeout { frame, layer }))
            }
            Outcome::Vouched { msg, buffers } => {
                if let Some(l) = self.pair.gpu.as_mut().and_then(|g| g.link_mut(view)) {
                    l.relay.reached_renderer(msg.frame, Instant::now());
                }
                self.summary.trust.vouched_frames += 1;
                let r = self
                    .view_index(view)
                    .and_then(|i| self.views[i].renderer.as_mut());
                if let Some(r) = r {
                    use std::os::fd::AsFd;
                    let fds: Vec<_> = buffers.iter().map(|b| b.as_fd()).collect();
                    let (frame, sent_ns) = (msg.frame, msg.sent_ns);
                    let relayed_ns = triptych_trace::now_ns();
                    if let Err(e) = r
                        .child
                        .commands
                        .send_with(&LauncherToRenderer::Vouched { msg, relayed_ns }, &fds)
                    {
                        r.send_failed(e);
                    }
                    self.relayed(view, frame, sent_ns, relayed_ns, true);
                }
                Ok(())
            }
        }
    }

    /// `view`'s renderer gives a buffer back: checked against what it holds and the frames it
    /// has answered ([`ipc_protocol::relay::Relay::release`]) and handed on to the GPU process
    /// for that view. A buffer of another view is one it was never handed.
    fn relay_release(
        &mut self,
        view: ViewId,
        epoch: u64,
        buffer: ipc_protocol::BufferId,
    ) -> Result<(), Breach> {
        let generation = self.generation_of(view);
        let Some(g) = self.pair.gpu.as_mut() else {
            return Ok(());
        };
        let Some(link) = g.links.iter_mut().find(|l| l.view == view) else {
            return Ok(());
        };
        if !link.relay.release(epoch, buffer, generation)? {
            return Ok(());
        }
        link.held_changed(g.produced);
        // Paced, a buffer back is needed only for a frame asked for later, whose request wakes
        // the process.
        let sent = if self.pacer.is_some() {
            g.send_view_lazy(view, ViewCommand::Release(buffer))
        } else {
            g.send_view_deferred(view, ViewCommand::Release(buffer))
        };
        if let Err(SendError::Full) = sent {
            g.unread = true;
        }
        Ok(())
    }

    fn gpu_event(&mut self, m: GpuToLauncher) -> Result<(), Breach> {
        use ipc_protocol::channel::Wire;
        self.policing.message(Who::Gpu, m.kind(), Instant::now())?;
        let kind = m.kind();
        // A message about a view the process was never given is a lie.
        let served = |sv: &Self, view: ViewId| {
            let given = sv.pair.gpu.as_ref().is_some_and(|g| g.link(view).is_some());
            if given {
                Ok(())
            } else {
                Err(Breach::new(
                    kind,
                    format!("{view}, which it was never given"),
                ))
            }
        };
        match m {
            GpuToLauncher::Pong(n) => {
                if let Some(asked) = self
                    .pair
                    .gpu
                    .as_ref()
                    .filter(|g| !g.private_fences)
                    .and_then(|g| g.private_asked)
                    .filter(|asked| n > *asked)
                {
                    return Err(Breach::new(
                        "PrivateFences",
                        format!("answered ping {n}, sent after PrivateFences (after ping {asked}), and not PrivateFences"),
                    ));
                }
                if let Some(us) = self.liveness.pong(Who::Gpu, n, Instant::now())? {
                    self.summary.latency.gpu_ping_max_us =
                        self.summary.latency.gpu_ping_max_us.max(us);
                }
                self.edit_arrived(None, Some(n));
            }
            GpuToLauncher::Frame { view, msg } => {
                served(self, view)?;
                self.relay_frame(view, msg)?
            }
            GpuToLauncher::PrivateFences => {
                if let Some(g) = &mut self.pair.gpu {
                    if g.private_asked.is_none() || g.private_fences {
                        return Err(Breach::new(
                            "PrivateFences",
                            "an answer to no request to keep fences private",
                        ));
                    }
                    g.private_fences = true;
                    for l in &mut g.links {
                        l.relay.fences_private();
                    }
                    // Every view's fences leave the export windows, where no renderer can
                    // take them any more: each view's frames are vouched for from now on (the
                    // launcher sees their fences signalled and hands the buffers on), whichever
                    // view's claim asked for it.
                    let views: Vec<ViewId> = g
                        .links
                        .iter()
                        .filter(|l| l.vouch.is_none())
                        .map(|l| l.view)
                        .collect();
                    for view in views {
                        if !self.vouch_for(view) {
                            tracing::error!(
                                view = view.0,
                                "could not start vouching for a view's frames"
                            );
                        }
                    }
                }
            }
            GpuToLauncher::Serving { view, renderer } => {
                served(self, view)?;
                if let Some(l) = self
                    .pair
                    .gpu
                    .as_mut()
                    .and_then(|g| g.link_mut(view))
                    .filter(|l| !l.removing)
                {
                    l.relay.serving(renderer)?;
                    // Served from now on: the view's wait for its first frame starts here (a
                    // process adds many views one after another).
                    self.liveness.progress(view, Instant::now());
                }
            }
            GpuToLauncher::Finished { view, frames } => {
                served(self, view)?;
                tracing::debug!(
                    view = view.0,
                    frames,
                    "GPU process rendered every frame of a view"
                );
                if let Some(l) = self.pair.gpu.as_mut().and_then(|g| g.link_mut(view)) {
                    l.finished = true;
                }
            }
            GpuToLauncher::Removed(view) => {
                served(self, view)?;
                let Some(g) = self.pair.gpu.as_mut() else {
                    return Ok(());
                };
                if !g.link(view).is_some_and(|l| l.removing) {
                    return Err(Breach::new(
                        "Removed",
                        format!("{view}, which was never removed"),
                    ));
                }
                g.links.retain(|l| l.view != view);
                tracing::info!(view = view.0, "the GPU process no longer serves the view");
            }
            GpuToLauncher::Failed(e) => {
                let e = crate::child_log::escape_clipped(&e);
                self.policing.note(
                    "gpu-failed",
                    || tracing::error!(error = %e, "the GPU process failed"),
                );
            }
            GpuToLauncher::Started(_) => {
                return Err(Breach::new("Started", "sent a second time"));
            }
            GpuToLauncher::Ready(_) => {
                return Err(Breach::new("Ready", "after Started"));
            }
            GpuToLauncher::SandboxListener => {
                return Err(Breach::new("SandboxListener", "after Started"));
            }
            GpuToLauncher::CommandsAt(_) => {
                return Err(Breach::new("CommandsAt", "after Started"));
            }
            GpuToLauncher::FaultFired { at_ns, fault } => {
                let planned = self.pair.gpu.as_ref().map_or(&[][..], |g| &g.faults[..]);
                rules::fault(&fault, planned)?;
                self.chaos.fired(fault);
                // Late fences are a slow frame, not a crash: nothing to attribute one to.
                if let Some(g) = self
                    .pair
                    .gpu
                    .as_mut()
                    .filter(|_| fault.action != FaultAction::LateFences)
                {
                    g.fault = Some((at_ns, fault));
                }
            }
            GpuToLauncher::Trace(t) => {
                let pid = self.pair.gpu.as_ref().map_or(0, |g| g.child.proc.pid);
                self.child_trace(Who::Gpu, pid, t)?
            }
        }
        Ok(())
    }

    fn renderer_event(
        &mut self,
        view: ViewId,
        m: RendererToLauncher,
        mut fds: Vec<std::os::fd::OwnedFd>,
    ) -> Result<(), Breach> {
        use ipc_protocol::channel::Wire;
        let who = Who::Renderer(view);
        self.policing.message(who, m.kind(), Instant::now())?;
        let Some(i) = self.view_index(view) else {
            return Ok(());
        };
        let (width, height) = self.max_size;
        let geometry = self.views[i].geometry.clone();
        // Before anything else, it names the server of its command stream; once.
        let link = self.views[i]
            .renderer
            .as_ref()
            .and_then(|r| r.child.commands.link().cloned());
        let named = link.as_ref().is_none_or(|l| l.connected());
        match (&m, named) {
            (RendererToLauncher::CommandsAt(_), true) => {
                return Err(Breach::new("CommandsAt", "sent a second time"));
            }
            (RendererToLauncher::CommandsAt(name), false) => {
                ipc_protocol::commands::check_name(name)
                    .map_err(|what| Breach::new("CommandsAt", what))?;
                if let Some(l) = &link {
                    l.connect(name.clone())
                        .map_err(|e| Breach::new("CommandsAt", e.to_string()))?;
                }
                return Ok(());
            }
            (other, false) => {
                return Err(Breach::new(other.kind(), "before CommandsAt"));
            }
            _ => {}
        }
        match m {
            RendererToLauncher::CommandsAt(_) => {}
            RendererToLauncher::Output {
                generation,
                fd,
                slots,
                slot_bytes,
            } => {
                let Some(r) = self.views[i].renderer.as_mut() else {
                    return Ok(());
                };
                if r.screen.is_some() {
                    return Err(Breach::new("Output", "sent a second time"));
                }
                // The generation the renderer was started with: a resize may have come since,
                // and reaches it as a command after this.
                geometry.check_output(generation)?;
                if self.jail.awaits_listener(r.child.proc.pid) {
                    return Err(Breach::new("Output", "before the sandbox listener"));
                }
                self.jail
                    .check_no_kept_listener(r.child.proc.pid)
                    .map_err(|what| Breach::new("SandboxListener", what))?;
                let order = if self.display.is_some() {
                    ipc_protocol::messages::OutputOrder::Bgra
                } else {
                    ipc_protocol::messages::OutputOrder::Rgba
                };
                let screen = Screen::attach(
                    &r.child.proc.pidfd,
                    fd,
                    slots,
                    slot_bytes,
                    width,
                    height,
                    order,
                )
                .map_err(|e| Breach::new("Output", format!("{e:#}")))?;
                let dup = screen.dup_fd();
                let n_slots = screen.slots();
                let pid = r.child.proc.pid;
                r.screen = Some(screen);
                let mode = match self.display.as_ref().map(|s| &s.d.presenter) {
                    Some(p) if p.completes() => super::slots::Mode::Completes,
                    Some(p) if p.releases() => super::slots::Mode::Releases,
                    _ => super::slots::Mode::Immediate,
                };
                r.slots = Some(super::slots::Slots::new(n_slots, mode));
                if self.display.is_some() {
                    let attached = dup
                        .map_err(anyhow::Error::from)
                        .and_then(|fd| self.display_attach(view, pid, fd, n_slots));
                    match attached {
                        Ok(()) => {}
                        Err(e) if view == FIRST_VIEW => {
                            tracing::error!(error = %format!("{e:#}"), "the display server could not attach the output");
                            if let Some(s) = self.display.as_mut() {
                                s.quit = true;
                            }
                        }
                        // Another view's surface could not be made (no subsurfaces, a child
                        // window refused): that view alone is given up, the others go on.
                        Err(e) => {
                            let why = format!("the display server could not show it: {e:#}");
                            if let Some(r) = self.views[i].renderer.take() {
                                let last = self.views[i].last;
                                self.end_renderer(r, Instant::now(), last);
                            }
                            self.retire_view(i, why);
                        }
                    }
                }
            }
            RendererToLauncher::Presented(p) => self.present(i, p)?,
            RendererToLauncher::SandboxListener => {
                let Some(pid) = self.views[i].renderer.as_ref().map(|r| r.child.proc.pid) else {
                    return Ok(());
                };
                let fd = fds
                    .pop()
                    .ok_or_else(|| Breach::new("SandboxListener", "no fd"))?;
                self.jail
                    .adopt_listener(pid, fd)
                    .map_err(|what| Breach::new("SandboxListener", what))?;
            }
            RendererToLauncher::Rejected {
                epoch,
                frame,
                reason,
            } => {
                self.claim(view, "Rejected", epoch, frame)?;
                self.rejected(i, Some(epoch), frame);
                let reason = crate::child_log::escape_clipped(&reason);
                // The renderer's word about the GPU process's description: logged, and from now
                // on the launcher vouches for that process's frames of the view (`claim`),
                // nothing more.
                self.policing.note(
                    "rejected",
                    || tracing::warn!(view = view.0, frame, %reason, "the renderer rejected a frame"),
                );
                if self.summary.trust.rejected.len() < MAX_KEPT_NOTES {
                    self.summary
                        .trust
                        .rejected
                        .push(format!("frame {frame}: {reason}"));
                }
            }
            RendererToLauncher::GpuViolation {
                epoch,
                frame,
                fence_of_layer,
                what,
            } => {
                self.claim(view, "GpuViolation", epoch, frame)?;
                self.rejected(i, Some(epoch), frame);
                let what = crate::child_log::escape_clipped(&what);
                self.policing.note("gpu-violation-claim", || {
                    tracing::warn!(view = view.0, frame, %what, "the renderer reports a frame whose fds break its description")
                });
                match fence_of_layer {
                    Some(layer) => self.fence_claim(view, epoch, frame, layer, &what),
                    None => super::push_bounded(
                        &mut self.summary.trust.uncorroborated,
                        format!("renderer says the GPU process's frame {frame} broke its description: {what}"),
                    ),
                }
            }
            RendererToLauncher::Release { epoch, buffer } => {
                self.relay_release(view, epoch, buffer)?
            }
            RendererToLauncher::Failed(e) => {
                let e = crate::child_log::escape_clipped(&e);
                self.policing.note(
                    "renderer-failed",
                    || tracing::error!(view = view.0, error = %e, "the renderer failed"),
                )
            }
            RendererToLauncher::Stats(s) => {
                if view == FIRST_VIEW {
                    self.summary.renderer = s;
                }
            }
            RendererToLauncher::Pong(n) => {
                if let Some(us) = self.liveness.pong(who, n, Instant::now())? {
                    self.summary.latency.renderer_ping_max_us =
                        self.summary.latency.renderer_ping_max_us.max(us);
                }
            }
            RendererToLauncher::FenceTimeout {
                epoch,
                frame,
                layer,
                fence,
            } => {
                // A claim against the GPU process, about a fence of a frame the launcher handed
                // on (`claim` refuses one never handed on or vouched for): naming another fd than
                // that frame did is the renderer's lie; otherwise it is checked against the fence
                // itself.
                self.claim(view, "FenceTimeout", epoch, frame)?;
                let window = window_of(self.views[i].window);
                let Some(g) = self.pair.gpu.as_mut().filter(|g| g.epoch == epoch) else {
                    return Ok(());
                };
                let (kind, progress) =
                    (g.info.fence, g.progress.as_ref().map(|p| p.reader.clone()));
                let Some(link) = g.links.iter_mut().find(|l| l.view == view) else {
                    return Ok(());
                };
                // Whatever edit that frame drew, a layer of it keeps an older buffer: it does
                // not show the edit whole, and answers none.
                link.relay.kept_old(frame);
                if layer >= link.relay.layers() {
                    return Err(Breach::new(
                        "FenceTimeout",
                        format!("layer {layer}, which no frame has"),
                    ));
                }
                if let Some(named) = link.relay.fence(frame, layer).filter(|f| f.fd != fence) {
                    return Err(Breach::new(
                        "FenceTimeout",
                        format!(
                            "frame {frame}, layer {layer}: names fd {}, where the frame named fd {}",
                            fence.fd, named.fd.fd
                        ),
                    ));
                }
                let point = link.relay.fence(frame, layer).map(|f| f.point);
                let link = link.relay.link();
                self.policing.check_fence(
                    &g.child.proc.pidfd,
                    super::corroborate::Claim {
                        view,
                        link,
                        epoch,
                        frame,
                        layer,
                        fence,
                        window,
                        kind,
                        progress: progress.map(|p| (p, point)),
                    },
                    claim_grace(self.args.fence_timeout_ms),
                );
            }
            RendererToLauncher::FaultFired { at_ns, fault } => {
                let planned = self.views[i]
                    .renderer
                    .as_ref()
                    .map_or(&[][..], |r| &r.faults[..]);
                rules::fault(&fault, planned)?;
                self.chaos.fired(fault);
                if let Some(r) = &mut self.views[i].renderer {
                    r.fault = Some((at_ns, fault));
                }
            }
            RendererToLauncher::Trace(t) => {
                let pid = self.views[i]
                    .renderer
                    .as_ref()
                    .map_or(0, |r| r.child.proc.pid);
                self.child_trace(who, pid, t)?
            }
        }
        Ok(())
    }

    /// Hands output slot `slot` straight back to view `i`'s renderer, its frame never shown
    /// (the slot must be one that exists).
    fn hand_back_unshown(&mut self, i: usize, slot: u32) -> Result<(), Breach> {
        let Some(r) = self.views.get_mut(i).and_then(|v| v.renderer.as_mut()) else {
            return Ok(());
        };
        r.slots
            .as_ref()
            .ok_or_else(|| Breach::new("Presented", "a frame before the output was shared"))?
            .check(slot)
            .map_err(|e| Breach::new("Presented", e.to_string()))?;
        if let Err(e) = r
            .child
            .commands
            .send_deferred(&LauncherToRenderer::SlotFree(slot))
        {
            r.send_failed(e);
        }
        Ok(())
    }

    /// View `i`'s renderer answered `frame` with a rejection, its word alone.
    fn rejected(&mut self, i: usize, epoch: Option<u64>, frame: u64) {
        if let Some(r) = self.views.get_mut(i).and_then(|v| v.renderer.as_mut()) {
            r.rejected += 1;
        }
        self.answered(i, epoch, frame);
    }

    /// View `i`'s renderer answered `frame` (of the GPU process of `epoch`, or of the current
    /// one). Returns the scene version the frame drew, when the launcher handed it on.
    fn answered(&mut self, i: usize, epoch: Option<u64>, frame: u64) -> Option<u64> {
        let view = self.views.get(i)?.id;
        self.pair
            .gpu
            .as_mut()
            .filter(|g| epoch.is_none_or(|e| e == g.epoch))
            .and_then(|g| g.link_mut(view))
            .and_then(|l| l.relay.answered(frame))
    }

    /// View `i`'s renderer presented frame `p`.
    fn present(&mut self, i: usize, p: ipc_protocol::messages::Presented) -> Result<(), Breach> {
        let view = self.views[i].id;
        let first = view == FIRST_VIEW;
        let geometry = self.views[i].geometry.clone();
        let version = self.answered(i, Some(p.epoch), p.frame);
        // Headless, nothing paces the GPU process: any frame it made before it heard of a
        // resize may come, and is dropped.
        let floor = self.display.as_ref().map_or(u64::MAX, |s| s.floor(view));
        let judged = geometry.judge(p.generation, p.frame, floor)?;
        if judged == super::slots::Judged::Drop {
            // Composited before the renderer heard of the resize: of the old size, never shown,
            // and only for frames asked for before the resize.
            self.hand_back_unshown(i, p.slot)?;
            self.summary.frames.dropped_for_resize += 1;
            if first && self.display.is_none() && p.frame.checked_add(1) == Some(self.args.frames) {
                self.last_dropped = true;
            }
            return Ok(());
        }
        if self.policing.superseded(view, p.frame, p.epoch) {
            // A dead GPU process's frame that was still on its way when its replacement was told
            // to resume from it: the replacement draws it again, so this one is never shown (the
            // screen would go back in time when the replacement's own arrived).
            self.hand_back_unshown(i, p.slot)?;
            self.summary.frames.superseded += 1;
            return Ok(());
        }
        let now = triptych_trace::now_ns();
        let Some(r) = self.views[i].renderer.as_mut() else {
            return Ok(());
        };
        let Some(screen) = r.screen.as_mut() else {
            return Err(Breach::new(
                "Presented",
                "a frame before the output was shared",
            ));
        };
        let Some(slots) = r.slots.as_mut() else {
            return Err(Breach::new(
                "Presented",
                "a frame before the output was shared",
            ));
        };
        // The slot first (nothing changes if it is bad), then the damage, then the frame's
        // order.
        slots
            .check(p.slot)
            .map_err(|e| Breach::new("Presented", e.to_string()))?;
        // The damage lies inside the frame; a display server is shown only what it names, so
        // a lying renderer garbles only its own output.
        let (damage, output_px) = geometry.check_presented(&p.damage, p.composited_px)?;
        self.policing.presented(view, p.frame, p.epoch)?;
        self.summary
            .damage
            .add(damage.area(), p.composited_px, output_px);
        screen
            .show(p.slot, p.frame, geometry.size())
            .map_err(|e| Breach::new("Presented", format!("{e:#}")))?;
        if self.display.is_none() {
            let freed = slots
                .put(p.slot, p.frame)
                .map_err(|e| Breach::new("Presented", e.to_string()))?;
            // Paced, a slot back is needed only for a frame asked for after this one was
            // shown, whose relay wakes the renderer.
            let paced = self.pacer.is_some();
            for back in freed {
                let msg = LauncherToRenderer::SlotFree(back);
                let sent = if paced {
                    r.child.commands.send_lazy(&msg)
                } else {
                    r.child.commands.send_deferred(&msg)
                };
                if let Err(e) = sent {
                    r.send_failed(e);
                }
            }
        }
        r.presented += 1;
        r.rejected = 0;
        let renderer_pid = r.child.proc.pid;
        let renderer_presented = r.presented;
        let v = &mut self.views[i];
        v.presented += 1;
        v.last = Some(p.frame);
        let at = Instant::now();
        v.shown = Some(v.shown.map_or((at, at), |(first, _)| (first, at)));
        v.pair.forget_old_screen();
        let view_recovered = v.pair.recovered();
        if first {
            self.edit_presented(version, p.frame);
        }
        // A frame event dropped (the application fell behind) leaves the view's next one's
        // damage relative to a frame the application never saw: that one is damaged whole.
        if let Some(event) = self.embedding.frame_event(view) {
            let (width, height) = geometry.size();
            let frame_damage = if event.whole {
                vec![ipc_protocol::damage::Rect::full(width, height)]
            } else {
                damage.rects().to_vec()
            };
            let v = &self.views[i];
            let pixels = if event.pixels {
                v.renderer
                    .as_ref()
                    .and_then(|r| r.screen.as_ref())
                    .and_then(|sc| sc.pixels())
            } else {
                None
            };
            // Edits are the first view's.
            let edit = if first {
                version.unwrap_or(self.edits.shown())
            } else {
                0
            };
            self.embedding.send(crate::embedding::Event::Presented(
                crate::embedding::PresentedFrame::new(
                    (view, p.frame),
                    geometry.size(),
                    (v.drawn.scene_id(), geometry.generation(), edit),
                    frame_damage,
                    pixels,
                ),
            ));
        }
        if self.display.is_some() {
            if let Err(e) = self.display_put(view, p.slot, p.frame, p.generation, &damage) {
                tracing::error!(error = %format!("{e:#}"), "presenting into the window failed");
                if let Some(s) = self.display.as_mut() {
                    s.quit = true;
                }
            }
        }
        let mut args = Args::new();
        args.insert("damaged_px".into(), damage.area().into());
        args.insert("output_px".into(), output_px.into());
        if !first {
            args.insert(triptych_trace::VIEW_ARG.into(), view.0.into());
        }
        self.tracing.rec().record_span(
            Stage::Present,
            Some(p.frame),
            p.composited_ns,
            triptych_trace::now_ns(),
            args,
        );
        // From every layer's fence signalled (the GPU done) to the frame handed over: to the
        // display server in a window, to the output (the PNG's slot) headless.
        let at = Instant::now();
        let present_ns =
            self.metrics
                .presented((p.sent_ns, p.ready_ns), now, triptych_trace::now_ns(), at);
        if let Some(s) = self.display.as_mut() {
            s.overlay.presented(present_ns);
        }
        if first {
            self.summary.frames.count += 1;
            self.summary.frames.last = Some(p.frame);
            if renderer_presented == 10 {
                self.summary.processes.fd_counts.renderer_at_10 = fd_count(renderer_pid);
            }
        }
        self.presented_all += 1;
        self.liveness.progress(view, at);
        if self.presented_all == 10 {
            self.summary.processes.fd_counts.launcher_at_10 = fd_count(std::process::id());
        }
        if let Some(g) = &mut self.pair.gpu {
            if g.epoch == p.epoch {
                g.presented += 1;
                if let Some(l) = g.link_mut(view) {
                    l.presented += 1;
                }
            }
        }
        // A GPU process's recovery ends with its replacement's frame, never a frame of the dead
        // one still on its way; a renderer's with its replacement's first frame.
        let current = self.pair.gpu.as_ref().is_some_and(|g| g.epoch == p.epoch);
        for rc in self
            .pair
            .recovered(current)
            .into_iter()
            .chain(view_recovered)
        {
            let us = self.metrics.recovered(rc.detected, Instant::now());
            if let Some(c) = self.crashes.get_mut(rc.record) {
                c.recovery_us = Some(us as f64);
            }
            tracing::info!(
                role = %rc.role,
                view = view.0,
                recovery_us = us,
                frame = p.frame,
                "recovered: first frame from the replacement"
            );
            if rc.role == Role::Gpu && self.pair.gpu.as_ref().is_some_and(|g| g.promoted) {
                self.standby_promotion_landed();
            }
        }
        if !first {
            return Ok(());
        }
        // Chaos: kills from outside, once their frame is on screen (the first view's).
        // One at a time, and only into a process that is running normally (not already hit by
        // an injected fault or a kill), so that every kill is one crash.
        let gpu = self
            .pair
            .gpu
            .as_ref()
            .filter(|g| g.fault.is_none() && g.presented > 0)
            .map(|g| &g.child.proc);
        let renderer = self.views[i]
            .renderer
            .as_ref()
            .filter(|r| r.fault.is_none() && r.presented > 0)
            .map(|r| &r.child.proc);
        let running = |t: Target| {
            match t {
                Target::Gpu => gpu,
                Target::Renderer => renderer,
            }
            .map(|pr| pr.pid)
        };
        if let Some(pid) = self
            .chaos
            .kill_due(p.frame, triptych_trace::now_ns(), running)
        {
            if let Some(proc) = gpu.into_iter().chain(renderer).find(|pr| pr.pid == pid) {
                proc.signal(triptych_sys::signal::Signal::SIGKILL);
                self.summary.recovery.external_kills += 1;
            }
        }
        Ok(())
    }
}

/// How long the launcher itself still waits on a fence the renderer says timed out: a quarter
/// of the renderer's deadline, between 50 ms and 1 s. Short, so that the two waits together stay
/// below vgem's own 10 s fence timeout for deadlines up to 8 s; long enough for a fence that was
/// about to signal when the renderer gave up.
fn claim_grace(fence_timeout_ms: u32) -> Duration {
    Duration::from_millis(u64::from(fence_timeout_ms / 4).clamp(50, 1000))
}

/// Notes of one kind kept in the summary at most (the rest are counted in the log).
const MAX_KEPT_NOTES: usize = 32;
