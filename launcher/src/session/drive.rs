//! The main loop: every child message, exit, corroboration verdict and heartbeat, until the last
//! frame is on screen; and who is to blame when nothing reaches the screen.

use super::*;

impl Supervisor<'_> {
    /// The main loop: until the last frame is on screen, or Ctrl-C.
    pub(super) fn drive(&mut self, signals: &Receiver<Signal>) -> anyhow::Result<()> {
        let heartbeat = Duration::from_millis(self.args.supervision.heartbeat_ms.max(10));
        let hang = Duration::from_millis(self.args.supervision.hang_timeout_ms.max(50));
        self.liveness.progress(Instant::now());
        while !self.run_over() {
            let wait = self
                .display_tick()
                .or_else(|| self.pacer_tick())
                .map_or(heartbeat, |tick| tick.min(heartbeat));
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
            let r_events = self
                .pair
                .renderer
                .as_ref()
                .map_or_else(crossbeam_channel::never, |r| r.events.clone());
            let r_exit = self
                .pair
                .renderer
                .as_ref()
                .map_or_else(crossbeam_channel::never, |r| r.exit.clone());
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
            // Each child's command stream: its sending thread ends when the child's end closes.
            let stream_end =
                |link: Option<&std::sync::Arc<ipc_protocol::commands::CommandLink>>| {
                    link.map_or_else(crossbeam_channel::never, |l| l.ended())
                };
            let gpu_stream =
                stream_end(self.pair.gpu.as_ref().and_then(|g| g.child.commands.link()));
            let r_stream = stream_end(
                self.pair
                    .renderer
                    .as_ref()
                    .and_then(|r| r.child.commands.link()),
            );
            let standby_stream = stream_end(
                self.pair
                    .standby
                    .as_ref()
                    .and_then(|w| w.child.commands.link()),
            );
            let checked = self.policing.verdicts();
            let looked = self.policing.look_verdicts();
            let vouched = self.policing.vouch_outcomes();
            select! {
                recv(r_events) -> m => match m {
                    Ok(d) => self.renderer_delivery(d)?,
                    Err(_) => self.channel_closed(Role::Renderer, &r_exit)?,
                },
                recv(gpu_events) -> m => match m {
                    Ok(d) => self.gpu_delivery(d)?,
                    Err(_) => self.channel_closed(Role::Gpu, &gpu_exit)?,
                },
                recv(gpu_exit) -> _ => self.gpu_down(None)?,
                recv(gpu_stream) -> _ => self.stream_closed(Role::Gpu, &gpu_exit)?,
                recv(r_stream) -> _ => self.stream_closed(Role::Renderer, &r_exit)?,
                recv(standby_stream) -> _ => {
                    let died = standby_exit.recv_timeout(Duration::from_millis(250)).is_ok();
                    self.standby_down((!died).then(|| {
                        "protocol violation: command stream: closed while the process lives on"
                            .to_owned()
                    }))?;
                }
                recv(standby_events) -> m => match m {
                    Ok(d) => self.standby_message(d)?,
                    // Its control socket closed: it is dying; its pidfd says how.
                    Err(_) => {
                        let _ = standby_exit.recv_timeout(Duration::from_millis(250));
                        self.standby_down(None)?;
                    }
                },
                recv(standby_exit) -> _ => self.standby_down(None)?,
                recv(r_exit) -> _ => self.renderer_down(None)?,
                recv(checked) -> v => if let Ok((claim, finding)) = v {
                    self.policing.verdict_taken();
                    self.fence_verdict(claim, finding)?;
                },
                recv(looked) -> v => if let Ok((epoch, verdict)) = v {
                    self.fence_look_verdict(epoch, verdict)?;
                },
                recv(vouched) -> v => if let Ok((epoch, link, outcome)) = v {
                    self.vouch_outcome(epoch, link, outcome)?;
                },
                recv(signals) -> s => {
                    tracing::warn!(signal = ?s.ok(), "interrupted: shutting down");
                    return Ok(());
                }
                recv(display_events) -> e => if let Ok(e) = e {
                    self.display_event(e)?;
                },
                recv(edits) -> e => match e {
                    Ok(e) => self.apply_edit(e)?,
                    Err(_) => self.edits.from = crossbeam_channel::never(),
                },
                recv(embed_control) -> c => match c {
                    Ok(c) => self.embed_control(c)?,
                    Err(_) => self.embedding.quit(),
                },
                default(wait) => {}
            }
            if self.pair.renderer.as_ref().is_some_and(|r| r.unread) {
                self.renderer_violation(rules::Breach::new(
                    "control socket",
                    "stopped reading the launcher's commands (its queue is full)",
                ))?;
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
                if let Some(r) = &mut self.pair.renderer {
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
            let silent = self
                .liveness
                .silent(Role::Gpu, Instant::now(), hang)
                .filter(|_| self.pair.gpu.is_some());
            if let Some(silent) = silent {
                self.gpu_down(Some(Cause::Hang {
                    silent_ms: silent.as_millis() as u64,
                }))?;
            }
            let silent = self
                .liveness
                .silent(Role::Renderer, Instant::now(), hang)
                .filter(|_| self.pair.renderer.is_some());
            if let Some(silent) = silent {
                self.renderer_down(Some(Cause::Hang {
                    silent_ms: silent.as_millis() as u64,
                }))?;
            }
            // Both answer, yet nothing reaches the screen: blame whoever holds things up.
            let stalled = self.liveness.stalled(Instant::now());
            if stalled > hang && self.pair.gpu.is_some() {
                self.stalled(stalled, hang)?;
            }
            self.standby_due()?;
            if let Some(o) = &mut self.observer {
                o.progress(self.summary.frames.count, self.crashes.len());
            }
        }
        Ok(())
    }

    /// Whether the run is over: headless, once the last frame is on screen; in a window, once
    /// the window is closed or `q` pressed (the last frame stays on screen until then).
    fn run_over(&self) -> bool {
        if self.embedding.quitting() {
            return true;
        }
        match &self.display {
            Some(s) => s.quit,
            None => self.summary.frames.last == Some(self.args.frames - 1) || self.last_dropped,
        }
    }

    /// A child's control socket closed. A dying child closes it a moment before its pidfd
    /// reports the exit; a child that closes it and lives on has broken the protocol.
    pub(super) fn channel_closed(&mut self, role: Role, exit: &Receiver<()>) -> anyhow::Result<()> {
        self.closed(role, exit, "control socket")
    }

    /// The launcher's command stream to `role` ended ([`ipc_protocol::commands`]): it closed
    /// its end, and is dying, or is to blame for closing it while it lives on.
    pub(super) fn stream_closed(&mut self, role: Role, exit: &Receiver<()>) -> anyhow::Result<()> {
        self.closed(role, exit, "command stream")
    }

    fn closed(&mut self, role: Role, exit: &Receiver<()>, what: &str) -> anyhow::Result<()> {
        let died = exit.recv_timeout(Duration::from_millis(250)).is_ok();
        let cause = (!died).then(|| Cause::ProtocolViolation {
            kind: what.to_owned(),
            what: "closed while the process lives on".to_owned(),
        });
        if role == Role::Gpu {
            self.gpu_down(cause)
        } else {
            self.renderer_down(cause)
        }
    }

    /// No frame reached the screen for `stalled` although both children answer. The launcher
    /// handed every frame and every release on itself ([`ipc_protocol::relay`]), so it knows
    /// who holds the work, without either child's word:
    /// 1. the renderer has held every buffer of a layer since before the stall (half the hang
    ///    timeout at least), each of a frame it answered or has had for longer than its fence
    ///    wait: it took frames and neither composited nor gave them back, and the GPU process
    ///    cannot render;
    /// 2. it holds every buffer of a layer, some of a frame it may still be waiting on the GPU
    ///    process's fences for: nobody yet, until that wait is over;
    /// 3. otherwise, once the GPU process has had a buffer of every layer free for half the hang
    ///    timeout too: if the renderer answered every frame since its last present with a
    ///    rejection (its word alone, which the launcher cannot check), a fresh renderer is tried
    ///    first, once per GPU process; otherwise (or if the fresh one rejects as well) the GPU
    ///    process stopped producing, or never said it serves a new renderer, and is stalled.
    pub(super) fn stalled(&mut self, stalled: Duration, hang: Duration) -> anyhow::Result<()> {
        let ms = stalled.as_millis() as u64;
        // Headless, nothing paces the GPU process: after a resize, the renderer drops the frames
        // made at the old size. Once every frame is made and none comes, the last ones were of
        // those: the run is over, and nobody is to blame.
        if self.display.is_none()
            && self.summary.frames.resizes > 0
            && self.pair.gpu.as_ref().is_some_and(|g| g.finished)
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
        let holder = self.pair.gpu.as_ref().map(|g| {
            let long = g.starved_since.is_some_and(|t| {
                t.elapsed() + Duration::from_millis(10) >= (hang / 2).min(stalled)
            });
            (
                g.relay.holder(Instant::now(), patience),
                long,
                g.starved_since,
            )
        });
        match holder {
            Some((ipc_protocol::relay::Holder::Renderer(layer), true, Some(since)))
                if self.pair.renderer.is_some() =>
            {
                let held_ms = since.elapsed().as_millis() as u64;
                return self.renderer_down(Some(Cause::ProtocolViolation {
                    kind: "Release".to_owned(),
                    what: format!(
                        "held every buffer of layer {layer} for {held_ms} ms without presenting (no frame for {ms} ms)"
                    ),
                }));
            }
            // The renderer holds every buffer of a layer, some of a frame it may still be
            // waiting on the GPU process's fences for: judged once that wait is over.
            Some((
                ipc_protocol::relay::Holder::Renderer(_) | ipc_protocol::relay::Holder::Undecided,
                _,
                _,
            )) if self.pair.renderer.is_some() => {
                return Ok(());
            }
            _ => {}
        }
        // The GPU process could render: it must have been able to for a while, not since a
        // release a moment ago.
        let free_long = self.pair.gpu.as_ref().is_some_and(|g| {
            g.free_since
                .is_some_and(|t| t.elapsed() + Duration::from_millis(10) >= (hang / 2).min(stalled))
        });
        if !free_long && self.pair.renderer.is_some() {
            return Ok(());
        }
        // Frames flowed, and the renderer answered every one of them with a rejection: its word
        // alone, which the launcher cannot check. A fresh renderer is tried first, once per GPU
        // process; if it rejects as well, the GPU process is the one stalled.
        let rejected = self.pair.renderer.as_ref().map_or(0, |r| r.rejected);
        let spared = self.pair.gpu.as_ref().is_some_and(|g| g.spared);
        if rejected > 0 && !spared && self.pair.renderer.is_some() {
            if let Some(g) = self.pair.gpu.as_mut() {
                g.spared = true;
            }
            tracing::warn!(
                rejected,
                ms,
                "the renderer rejected every frame of the stall by its word alone; a fresh renderer is tried before the GPU process is blamed"
            );
            return self.renderer_down(Some(Cause::Stalled { ms }));
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
                self.renderer_violation(rules::Breach::new("FenceTimeout", why))?;
            }
        }
        Ok(())
    }
}
