//! Starting children: a GPU process for the current rung of the fallback ladder (stepping down
//! while it keeps failing to start), and a renderer. The two share no socket: every frame and
//! every release goes through the launcher ([`ipc_protocol::relay`]). With user notification, a
//! child must hand over its sandbox listener before it reports anything else.

use super::*;

/// Who reads what a child sends ([`Supervisor::mailboxes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reading {
    /// A forwarding thread.
    Thread,
    /// The main loop itself.
    Loop,
    /// A forwarding thread, until the main loop asks for it back.
    ThreadUntilAsked,
}

/// What a child sends, as the main loop takes it: the channel, and what fills it when the loop
/// reads the child itself, or will.
type Intake<T> = (Receiver<Delivery<T>>, ReadBy<T>);

/// What fills a child's channel, where it is not a thread for good.
pub(super) enum ReadBy<T> {
    /// A forwarding thread.
    Thread,
    /// The main loop ([`ipc_protocol::channel::Polled`]).
    Loop(ipc_protocol::channel::Polled<T>),
    /// A forwarding thread that hands the channel back when asked.
    ThreadUntilAsked(ipc_protocol::channel::Handback<T>),
}

impl Supervisor<'_> {
    /// Spawns a GPU process for the current rung and sends it `Prepare`: it makes its GL context
    /// and exporter, puts its sandbox on and reports `Ready`, then waits for `Start`. Used for a
    /// cold start (followed at once by `Start`) and for the standby (kept warm until promoted).
    pub(super) fn prepare_gpu(&mut self, standby: bool) -> anyhow::Result<WarmGpu> {
        let backend = self.pair.backend();
        let mut child: GpuChild = self
            .jail
            .spawn(Role::Gpu)
            .context("starting the GPU process")?;
        let pid = child.proc.pid;
        let what = if standby { " (standby)" } else { "" };
        self.tracing.started(pid, format!("{}{what}", Role::Gpu));
        // The start-up waits block on its channel, so a thread reads it; in a paced run the main
        // loop takes it over once the process has started ([`gpu_intake`]).
        let reading = if self.ring_sleep {
            Reading::ThreadUntilAsked
        } else {
            Reading::Thread
        };
        let (events, read_by) = self.mailboxes(
            &format!("gpu-{pid}-events"),
            &mut child.commands,
            &mut child.waker,
            LauncherToGpu::Mailbox,
            child.events.take().context("gpu events taken")?,
            reading,
        )?;
        let handback = match read_by {
            ReadBy::ThreadUntilAsked(h) => Some(h),
            ReadBy::Thread | ReadBy::Loop(_) => None,
        };
        let progress = self.progress_page(pid, &mut child.commands);
        let exit = watch_exit(&child.proc, &self.bell)?;
        let prepare = LauncherToGpu::Prepare(GpuPrepare {
            backend,
            reports: self.jail.reports(),
        });
        if let Err(e) = child.commands.send(&prepare) {
            // It died already: whoever waits on it sees it disconnect and reports that.
            tracing::warn!(error = %e, "could not send Prepare to the GPU process");
        }
        Ok(WarmGpu {
            child,
            progress,
            events,
            handback,
            exit,
            backend,
            ready: None,
            spawned: Instant::now(),
            pinged: 0,
            answered_seq: 0,
            answered: Instant::now(),
        })
    }

    /// What a GPU process sent before `Started`: its listener, `Ready`, and once it was sent
    /// `Start` (`started`), trace batches and fault notices. `Err` is why it must die: anything
    /// else, or a `Ready` that fails the checks. A standby has been told nothing, so it has
    /// nothing to trace and no fault to fire: three messages, then only the answers to the pings
    /// it is sent once ready.
    pub(super) fn warm_message(
        &mut self,
        w: &mut WarmGpu,
        d: Delivery<GpuToLauncher>,
        faults: &[Fault],
        started: bool,
    ) -> Result<(), String> {
        let pid = w.child.proc.pid;
        let named = w.child.commands.link().is_none_or(|l| l.connected());
        match d {
            Ok((GpuToLauncher::CommandsAt(name), _)) => {
                if named {
                    return Err("protocol violation: CommandsAt: sent a second time".to_owned());
                }
                ipc_protocol::commands::check_name(&name)
                    .map_err(|what| format!("protocol violation: CommandsAt: {what}"))?;
                if let Some(l) = w.child.commands.link() {
                    l.connect(name)
                        .map_err(|e| format!("protocol violation: CommandsAt: {e}"))?;
                }
                Ok(())
            }
            // Before anything else, it names the server of its command stream.
            Ok((other, _)) if !named => Err(format!(
                "protocol violation: {} before CommandsAt",
                ipc_protocol::channel::Wire::kind(&other)
            )),
            Ok((GpuToLauncher::SandboxListener, mut fds)) => fds
                .pop()
                .ok_or_else(|| "no fd".to_owned())
                .and_then(|fd| self.jail.adopt_listener(pid, fd))
                .map_err(|what| format!("protocol violation: SandboxListener: {what}")),
            Ok((GpuToLauncher::Ready(info), _)) => {
                if w.ready.is_some() {
                    return Err("protocol violation: Ready: sent a second time".to_owned());
                }
                self.check_gpu_info(pid, &info, "Ready")?;
                if info.fence == FenceKind::Progress && w.progress.is_none() {
                    return Err(
                        "protocol violation: Ready: progress fences, without a progress page"
                            .to_owned(),
                    );
                }
                w.ready = Some(info);
                Ok(())
            }
            // A ready standby answers the pings sent to it, each once, in order (the last may
            // come after its promotion).
            Ok((GpuToLauncher::Pong(n), _)) if w.ready.is_some() => {
                if n == 0 || n > w.pinged || n <= w.answered_seq {
                    return Err(format!(
                        "protocol violation: Pong: an answer to ping {n}; it was sent up to {} and answered up to {}",
                        w.pinged, w.answered_seq
                    ));
                }
                w.answered_seq = n;
                w.answered = Instant::now();
                Ok(())
            }
            Ok((GpuToLauncher::Failed(e), _)) => Err(crate::child_log::escape_str(&e)),
            Ok((GpuToLauncher::FaultFired { fault, .. }, _)) if faults.contains(&fault) => {
                self.chaos.fired(fault);
                Ok(())
            }
            Ok((GpuToLauncher::Trace(t), _)) if started => self
                .child_trace(Who::Gpu, pid, t)
                .map_err(|b| format!("protocol violation: {}: {}", b.kind, b.what)),
            Ok((other, _)) => Err(format!(
                "protocol violation: {} before Started",
                ipc_protocol::channel::Wire::kind(&other)
            )),
            Err(v) => Err(format!("protocol violation: {v}")),
        }
    }

    /// The checks of a GPU process's `Ready` or `Started` report: bounded, its own pid, sent
    /// after its listener, and no copy of the listener kept.
    fn check_gpu_info(&mut self, pid: u32, info: &GpuInfo, kind: &str) -> Result<(), String> {
        if let Err(what) = info.check() {
            return Err(format!("protocol violation: {kind}: {what}"));
        }
        if info.pid != pid {
            return Err(format!("protocol violation: {kind}: pid {}", info.pid));
        }
        if self.jail.awaits_listener(pid) {
            return Err(format!(
                "protocol violation: {kind}: before its sandbox listener"
            ));
        }
        if let Err(what) = self.jail.check_no_kept_listener(pid) {
            return Err(format!("protocol violation: SandboxListener: {what}"));
        }
        Ok(())
    }

    /// Makes GPU process `pid`'s fence progress page and hands it over, read-write, where shm
    /// fences are points of one (`RunConfig::progress_fences`). `None` (and pipe fences) if
    /// the page cannot be made, which is logged and shown in the summary's fence kind.
    fn progress_page(
        &mut self,
        pid: u32,
        commands: &mut ipc_protocol::channel::Sender<LauncherToGpu>,
    ) -> Option<Page> {
        if !self.args.progress_fences {
            return None;
        }
        let made = ipc_protocol::progress::create(&format!("triptych-gpu-{pid}-progress"))
            .and_then(|(rw, ro)| {
                let reader = ipc_protocol::progress::ProgressReader::attach(ro.as_fd())?;
                Ok((rw, ro, reader))
            });
        let (rw, ro, reader) = match made {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "no progress page: this GPU process's shm fences are pipes");
                return None;
            }
        };
        if let Err(e) = commands.send_with(&LauncherToGpu::Progress, &[rw.as_fd()]) {
            // It died already: whoever waits on it sees it disconnect and reports that.
            tracing::warn!(error = %e, "could not hand the GPU process its progress page");
        }
        Some(Page {
            ro,
            reader: std::sync::Arc::new(reader),
        })
    }

    /// The GPU process to start now: the standby, promoted, when one of the current rung is
    /// warm and alive; otherwise a new one (a cold start). A standby of another rung is shut
    /// down: the ladder stepped down since it was made.
    fn gpu_to_start(&mut self) -> anyhow::Result<(WarmGpu, bool)> {
        if let Some(w) = self.pair.standby.take() {
            if !w.exit.is_empty() {
                // It died just now: its death is recorded like any standby's.
                self.pair.standby = Some(w);
                self.standby_down(None)?;
            } else if w.backend == self.pair.backend() {
                return Ok((w, true));
            } else {
                self.retire_standby(w, "the fallback ladder stepped down since it was made");
            }
        }
        Ok((self.prepare_gpu(false)?, false))
    }

    /// What a GPU process is told of view `i` (at index `i` of the run's views), whose renderer
    /// is `renderer_pid`: its size, scene and pool, from the frame after its last one presented.
    pub(super) fn view_start(&self, i: usize, renderer_pid: u32) -> Option<ViewStart> {
        let v = self.views.get(i)?;
        let (width, height) = v.geometry.size();
        let first_frame = v.resume_from();
        Some(ViewStart {
            view: v.id,
            window: v.window,
            width,
            height,
            layers: v.drawn.layers(),
            frames: self.args.frames,
            first_frame,
            paced: self.display.is_some() || self.pacer.is_some(),
            generation: v.geometry.generation(),
            moves: v.input.moves().offsets,
            pool_per_layer: self.args.pool,
            renderer: RendererLink {
                renderer_pid,
                resume_from: first_frame,
            },
            damage: !self.args.no_damage,
            scene: v.drawn.start(),
            // A window's frames have the overlay above the scene's layers.
            overlay: self.display.is_some(),
            scene_version: v.drawn.version(),
        })
    }

    /// Sends view `i`'s scene images, then the application's pixels, on `commands`: they follow
    /// its `Start` or `AddView`, on every start (restarts too).
    pub(super) fn send_view_scene(
        &self,
        i: usize,
        commands: &ipc_protocol::channel::Sender<LauncherToGpu>,
    ) -> anyhow::Result<()> {
        let Some(v) = self.views.get(i) else {
            return Ok(());
        };
        let scene = v.drawn.scene().cloned();
        for (layer, fd) in scene.iter().flat_map(|s| &s.images) {
            let msg = LauncherToGpu::View {
                view: v.id,
                command: ViewCommand::SceneImage { layer: *layer },
            };
            if let Err(e) = commands.send_with(&msg, &[fd.as_fd()]) {
                tracing::warn!(error = %e, layer, "could not send a scene image to the GPU process");
            }
        }
        for (slot, image) in scene.iter().flat_map(|s| s.pixels()) {
            let fd = crate::scene::sealed_memfd("pixels", &image.pixels)
                .context("a memfd for a pixels layer's pixels")?;
            let msg = LauncherToGpu::View {
                view: v.id,
                command: ViewCommand::Pixels(ipc_protocol::messages::PixelsUpdate {
                    version: v.drawn.version(),
                    slot,
                    x: 0,
                    y: 0,
                    width: image.width,
                    height: image.height,
                }),
            };
            if let Err(e) = commands.send_with(&msg, &[fd.as_fd()]) {
                tracing::warn!(error = %e, slot, "could not send a pixels layer's pixels to the GPU process");
            }
        }
        Ok(())
    }

    /// The launcher's link to view `i`'s frames from GPU process `pid` of `epoch`, served to
    /// `renderer_pid`: its relay, expecting `Serving` first.
    pub(super) fn new_link(
        &self,
        i: usize,
        epoch: u64,
        pid: u32,
        info: &GpuInfo,
        progress: Option<&Page>,
        renderer_pid: u32,
    ) -> Option<Link> {
        let v = self.views.get(i)?;
        // The overlay is one more layer, in a window.
        let layers = v.drawn.layers() + u32::from(self.display.is_some());
        let first = v.resume_from();
        let mut relay = ipc_protocol::relay::Relay::new(
            epoch,
            pid,
            window_of(v.window),
            layers,
            self.args.pool,
            first,
        );
        // Its first answer is `Serving`, for the view `Start` or `AddView` gave it.
        relay.new_renderer(renderer_pid, first);
        relay.scene_started(v.drawn.version());
        relay.fence_kind(info.fence);
        if info.fence == FenceKind::Progress {
            relay.progress_page(progress.map(|p| p.reader.identity()));
        }
        Some(Link::new((v.id, v.window), relay, v.drawn.scene().cloned()))
    }

    /// Spawns a GPU process for the current rung (or promotes the standby), producing for the
    /// run's views, whose renderers are `renderers` (in the order of the views), and waits for
    /// it to start. Returns the error text when it failed to start.
    pub(super) fn start_gpu(
        &mut self,
        renderers: &[u32],
    ) -> anyhow::Result<Result<Gpu, (u32, String)>> {
        let (mut warm, promoted) = self.gpu_to_start()?;
        let epoch = self.pair.next_epoch();
        let request = warm.backend;
        let pid = warm.child.proc.pid;
        self.pair.started(promoted);
        if promoted {
            self.pair.last_promoted = Some(pid);
        }
        tracing::info!(
            pid,
            epoch,
            promoted,
            ready = warm.ready.is_some(),
            views = self.views.len(),
            "starting a GPU process"
        );
        self.policing.gpu_started(Instant::now());
        for v in &self.views {
            self.policing.view_epoch(v.id, epoch, v.resume_from());
        }
        let faults = self.chaos.gpu_faults();
        let first_renderer = renderers.first().copied().unwrap_or(0);
        if let Err(e) = self.jail.link_gpu(pid, first_renderer) {
            // It died already: the loop below sees it disconnect and reports that.
            tracing::warn!(error = %e, "could not hand the GPU process its link to the renderer");
        }
        let transport = self.jail.transport();
        let sent_faults = faults.clone();
        let Some(view) = self.view_start(0, first_renderer) else {
            bail!("a run without a view");
        };
        let start = LauncherToGpu::Start(GpuStart {
            epoch,
            backend: request,
            transport,
            faults,
            trace: self.args.trace.is_some(),
            reports: self.jail.reports(),
            view,
        });
        if let Err(e) = warm.child.commands.send(&start) {
            // It died already: the loop below sees it disconnect and reports that.
            tracing::warn!(error = %e, "could not send Start to the GPU process");
        }
        self.send_view_scene(0, &warm.child.commands)?;
        let deadline = Instant::now() + START_TIMEOUT;
        let events = warm.events.clone();
        loop {
            select! {
                recv(events) -> m => match m {
                    Ok(Ok((GpuToLauncher::Started(info), _))) => {
                        let checked = match &warm.ready {
                            None => Err("protocol violation: Started: before Ready".to_owned()),
                            Some(ready) if *ready != info => Err("protocol violation: Started: not what Ready reported".to_owned()),
                            Some(_) => self.check_gpu_info(pid, &info, "Started"),
                        };
                        if let Err(why) = checked {
                            warm.child.proc.kill();
                            return Ok(Err((pid, why)));
                        }
                        if let Some(reason) = &info.backend_reason {
                            self.tracing.instant(Marker::Fallback, None, &[("from", "dmabuf".into()), ("to", info.backend.as_str().into()), ("why", reason.clone())]);
                        }
                        if let Some(why) = file_fence_reason(&info, self.args.progress_fences) {
                            tracing::info!(fence = info.fence.as_str(), why, "each layer's fence is a file taken per frame");
                            self.tracing.instant(Marker::Fallback, None, &[("from", "fences without a file per frame".into()), ("to", info.fence.as_str().into()), ("why", why.into())]);
                        }
                        // Its claim of how many windows it has: too few is a failed start of
                        // this process (on the ladder), never the run's end.
                        if let Some(v) = self
                            .views
                            .iter()
                            .find(|v| v.failed.is_none() && v.window >= info.views)
                        {
                            warm.child.proc.kill();
                            let why = format!(
                                "has room for {} views' export windows (its RLIMIT_NOFILE), and {} needs window {}",
                                info.views, v.id, v.window
                            );
                            return Ok(Err((pid, why)));
                        }
                        self.liveness.started(Who::Gpu, Instant::now());
                        let WarmGpu { child, progress, events, handback, exit, .. } = warm;
                        let intake = match handback {
                            Some(back) => GpuIntake::Handing { back, asked: false },
                            None => {
                                self.gpu_intakes.1 += 1;
                                GpuIntake::Thread
                            }
                        };
                        let mut links = Vec::with_capacity(self.views.len());
                        for (i, renderer_pid) in renderers.iter().copied().enumerate() {
                            // A view given up is served no more.
                            if self.views[i].failed.is_some() {
                                continue;
                            }
                            if let Some(link) = self.new_link(i, epoch, info.pid, &info, progress.as_ref(), renderer_pid) {
                                links.push(link);
                            }
                            if i == 0 {
                                continue;
                            }
                            // The other views, each added with its scene.
                            if let Err(e) = self.jail.link_gpu(pid, renderer_pid) {
                                tracing::warn!(error = %e, "could not hand the GPU process its link to a renderer");
                            }
                            if let Some(view) = self.view_start(i, renderer_pid) {
                                if let Err(e) = child.commands.send(&LauncherToGpu::AddView(view)) {
                                    tracing::warn!(error = %e, "could not add a view to the GPU process");
                                }
                                self.send_view_scene(i, &child.commands)?;
                            }
                        }
                        return Ok(Ok(Gpu { child, progress, events, intake, exit, info, epoch, fault: None, faults: sent_faults, presented: 0, unread: false, promoted, private_asked: None, private_fences: false, links, produced: 0 }));
                    }
                    Ok(d) => {
                        if let Err(why) = self.warm_message(&mut warm, d, &sent_faults, true) {
                            warm.child.proc.kill();
                            return Ok(Err((pid, why)));
                        }
                    }
                    Err(_) => {
                        let st = warm.child.proc.wait_exit(Duration::from_secs(1));
                        return Ok(Err((pid, format!("exited while starting ({})", describe(st)))));
                    }
                },
                default(deadline.saturating_duration_since(Instant::now())) => {
                    warm.child.proc.kill();
                    return Ok(Err((pid, format!("did not start within {START_TIMEOUT:?}"))));
                }
            }
        }
    }

    /// Starts a GPU process producing for the run's views, whose renderers are `renderers`,
    /// each from the frame after its last one presented, stepping down the ladder while it
    /// keeps failing to start.
    pub(super) fn start_gpu_with_ladder(&mut self, renderers: &[u32]) -> anyhow::Result<Gpu> {
        loop {
            match self.start_gpu(renderers)? {
                Ok(g) => return Ok(g),
                Err((pid, why)) => {
                    let now = Instant::now();
                    if self.args.buffers == Buffers::Dmabuf
                        && self.pair.on_first_rung()
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
                        .reaped(pid, self.tracing.rec(), self.summary.frames.last)
                        .unwrap_or(fallback);
                    let promoted_failed = self.pair.last_promoted.take() == Some(pid);
                    if promoted_failed {
                        self.pair.standby_stats.deaths += 1;
                    }
                    let record = CrashRecord {
                        role: Role::Gpu,
                        pid,
                        cause,
                        at_s: self.started.elapsed().as_secs_f64(),
                        last_frame: self.summary.frames.last,
                        detection_us: None,
                        recovery_us: None,
                        injected: None,
                        // A promoted standby that failed its start is a standby's failure.
                        standby: promoted_failed,
                        replacement: None,
                        view: None,
                    };
                    tracing::warn!(pid, %why, "the GPU process failed to start");
                    self.tracing.instant(
                        Marker::Crash,
                        self.summary.frames.last,
                        &[("role", Role::Gpu.as_str().into()), ("why", why.clone())],
                    );
                    self.embedding.send(crate::embedding::Event::Crashed {
                        role: Role::Gpu,
                        view: None,
                        cause: why.clone(),
                    });
                    self.crashes.push(record);
                    self.gpu_decision(now, &why)?;
                }
            }
        }
    }

    /// A GPU process crashed at `now` (`why`): restart it on the same rung, step down the
    /// fallback ladder, or, with the ladder exhausted, fail with the crash history.
    pub(super) fn gpu_decision(&mut self, now: Instant, why: &str) -> anyhow::Result<()> {
        match self.pair.gpu_crashed(now) {
            Decision::Restart => Ok(()),
            Decision::StepDown { from, to } => {
                let (from, to) = (request_name(from), request_name(to));
                let msg = format!(
                    "GPU process crashed more than {} times within {} s with --buffers {from}; falling back to {to}",
                    self.args.supervision.max_crashes, self.args.supervision.restart_window_s
                );
                tracing::warn!("{msg}");
                self.tracing.instant(
                    Marker::Fallback,
                    self.summary.frames.last,
                    &[("from", from.into()), ("to", to.into())],
                );
                self.embedding
                    .send(crate::embedding::Event::Fallback(msg.clone()));
                self.fallbacks.push(msg);
                Ok(())
            }
            Decision::GiveUp => {
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
                    self.args.supervision.max_crashes,
                    self.args.supervision.restart_window_s,
                    self.pair.ladder(),
                    history.join("\n  ")
                );
            }
        }
    }

    /// Sets up a child's channels with the launcher: hands it its two mailboxes
    /// ([`ipc_protocol::mailbox`]) in the `mailbox` message on `commands`, which from then on
    /// writes through the outgoing one, and starts forwarding what it sends, read through the
    /// incoming one, by whom `reading` says: with [`Reading::Loop`], no thread forwards it and
    /// the main loop reads it itself ([`ipc_protocol::channel::Polled`], returned beside the
    /// channel it fills). With the mailboxes off or not to be had, both directions take the
    /// socket alone (the reason kept for the summary and marked in the trace), forwarded.
    fn mailboxes<C, T>(
        &mut self,
        name: &str,
        commands: &mut ipc_protocol::channel::Sender<C>,
        waker: &mut Option<ipc_protocol::mailbox::MailboxWaker>,
        mailbox: C,
        rx: ipc_protocol::channel::Receiver<T>,
        reading: Reading,
    ) -> anyhow::Result<Intake<T>>
    where
        C: ipc_protocol::channel::Wire,
        T: ipc_protocol::channel::Wire + Send + 'static,
    {
        if !self.args.mailbox {
            self.mark_socket_events(true);
            return Ok((ipc_protocol::channel::forward(name, rx)?, ReadBy::Thread));
        }
        let made = ipc_protocol::mailbox::create(c"triptych-mailbox-in").and_then(|incoming| {
            ipc_protocol::mailbox::create_outgoing(c"triptych-mailbox-out").map(|o| (incoming, o))
        });
        match made {
            Ok(((reader, in_memfd), (mut writer, out_memfd))) => {
                writer.count_into(self.mailbox_sent.clone());
                // Without it, a dead child's end would be seen only at the reader's next look.
                *waker = ipc_protocol::mailbox::MailboxWaker::new(&in_memfd)
                    .inspect_err(|e| tracing::debug!(error = %e, "no waker for a mailbox"))
                    .ok();
                let fds = [in_memfd.as_fd(), out_memfd.as_fd()];
                if let Err(e) = commands.send_with(&mailbox, &fds) {
                    // Its death, if that is why, is seen through its pidfd and handled there.
                    tracing::warn!(error = %e, child = name, "could not hand a child its mailboxes");
                }
                // No other clone of the sender exists yet: every later message goes through
                // the mailbox.
                *commands = commands.clone().with_mailbox(writer);
                let rx = rx.with_mailbox(reader, self.mailbox_stats.clone());
                match reading {
                    Reading::Loop => {
                        let (intake, events) = ipc_protocol::channel::polled(name, rx);
                        Ok((events, ReadBy::Loop(intake)))
                    }
                    Reading::ThreadUntilAsked => {
                        let (events, back) = ipc_protocol::channel::forward_handing_back(name, rx)?;
                        Ok((events, ReadBy::ThreadUntilAsked(back)))
                    }
                    Reading::Thread => {
                        Ok((ipc_protocol::channel::forward(name, rx)?, ReadBy::Thread))
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, child = name, "no mailbox: the child's messages take the socket");
                self.mailbox_off = Some(format!("{name}: {e}"));
                self.mailbox_fallbacks += 1;
                self.mark_socket_events(false);
                Ok((ipc_protocol::channel::forward(name, rx)?, ReadBy::Thread))
            }
        }
    }

    /// Marks in the trace that a child's messages take the socket, and why: each child whose
    /// mailboxes could not be made, or once for a run with them turned off (`off`).
    fn mark_socket_events(&mut self, off: bool) {
        if off && std::mem::replace(&mut self.mailbox_marked, true) {
            return;
        }
        let why = self.mailbox_off.clone().unwrap_or_default();
        self.tracing.instant(
            Marker::Fallback,
            None,
            &[
                ("from", "mailbox".into()),
                ("to", "socket".into()),
                ("why", why),
            ],
        );
    }

    pub(super) fn spawn_renderer(&mut self) -> anyhow::Result<RendererChild> {
        let mut r: RendererChild = self
            .jail
            .spawn(Role::Renderer)
            .context("starting the renderer")?;
        self.tracing.started(r.proc.pid, Role::Renderer.to_string());
        // In a paced run its confinement asked for SCHED_BATCH (`triptych_sys::sched`,
        // `Jail::batch_renderers`); a kernel that refused it leaves the renderer as fast, and
        // the launcher's wake-ups of it dearer. The pid is the child's until the launcher reaps
        // it.
        use triptych_sys::sched::{policy_of, Policy};
        let asked = self.args.fps.is_some();
        let policy = if asked {
            match policy_of(r.proc.pid) {
                Ok(Policy::Batch) => Ok(()),
                Ok(p) => Err(format!("it runs under {p}")),
                Err(e) => Err(format!("its policy could not be read: {e}")),
            }
        } else {
            Err("the run is not paced".to_owned())
        };
        match (&self.renderer_policy, policy) {
            (None, Err(why)) if !asked => self.renderer_policy = Some(Err(why)),
            (None | Some(Ok(())), Err(why)) => {
                tracing::warn!(
                    pid = r.proc.pid,
                    why,
                    "a renderer does not run as a batch task (SCHED_BATCH): a frame's wake-up of it may switch the launcher out"
                );
                self.renderer_policy = Some(Err(why));
            }
            (None, Ok(())) => self.renderer_policy = Some(Ok(())),
            _ => {}
        }
        // Events are forwarded by the caller.
        let _ = &mut r;
        Ok(r)
    }

    /// Starts `child` as the renderer of view `i`, taking frames from the GPU process of
    /// `gpu` (epoch, pid) through `page`.
    pub(super) fn start_renderer(
        &mut self,
        i: usize,
        mut child: RendererChild,
        gpu: (u64, u32),
        page: Option<OwnedFd>,
    ) -> anyhow::Result<Renderer> {
        let (epoch, gpu_pid) = gpu;
        let (view, gpu_window, layers, backdrop, geometry) = match self.views.get(i) {
            Some(v) => (
                v.id,
                window_of(v.window),
                v.drawn.layers(),
                v.drawn.backdrop(),
                v.geometry.clone(),
            ),
            None => bail!("no view {i} to start a renderer for"),
        };
        let page = page.as_ref().map(AsFd::as_fd);
        if let Err(e) = self
            .jail
            .link_renderer(child.proc.pid, epoch, gpu_pid, page)
        {
            // Its death, if that is why, is seen through its pidfd and handled there.
            tracing::warn!(error = %e, "could not hand the renderer its link to the GPU process");
        }
        // A paced run's loop wakes at least once a period: it reads the renderers' messages
        // itself, so that a renderer's frame costs the launcher no wake-up of its own.
        let (events, intake) = self.mailboxes(
            &format!("renderer-{}-events", child.proc.pid),
            &mut child.commands,
            &mut child.waker,
            LauncherToRenderer::Mailbox,
            child.events.take().context("renderer events taken")?,
            if self.pacer.is_some() {
                Reading::Loop
            } else {
                Reading::Thread
            },
        )?;
        let intake = match intake {
            ReadBy::Loop(p) => Some(p),
            ReadBy::Thread | ReadBy::ThreadUntilAsked(_) => None,
        };
        if intake.is_some() {
            self.intakes.0 += 1;
        } else {
            self.intakes.1 += 1;
        }
        let exit = watch_exit(&child.proc, &self.bell)?;
        let now = Instant::now();
        self.policing.renderer_started(view, now);
        self.liveness.started(Who::Renderer(view), now);
        // Injected faults are the first view's renderer's.
        let faults = if view == FIRST_VIEW {
            self.chaos.renderer_faults()
        } else {
            Vec::new()
        };
        let start = LauncherToRenderer::Start(RendererStart {
            gpu: GpuLink {
                epoch,
                gpu_pid,
                gpu_window,
            },
            // The overlay's layer too, in a window.
            layers: layers + u32::from(self.display.is_some()),
            faults: faults.clone(),
            trace: self.args.trace.is_some(),
            width: geometry.size().0,
            height: geometry.size().1,
            max_width: geometry.max_size().0,
            max_height: geometry.max_size().1,
            damage: !self.args.no_damage,
            generation: geometry.generation(),
            transport: self.jail.transport(),
            fence_timeout_ms: self.args.fence_timeout_ms,
            reports: self.jail.reports(),
            output_order: if self.display.is_some() {
                OutputOrder::Bgra
            } else {
                OutputOrder::Rgba
            },
            backdrop,
        });
        if let Err(e) = child.commands.send(&start) {
            // Its death, if that is why, is seen through its pidfd and handled there.
            tracing::warn!(error = %e, "could not start the renderer");
        }
        Ok(Renderer {
            child,
            events,
            intake,
            exit,
            screen: None,
            slots: None,
            fault: None,
            faults,
            presented: 0,
            rejected: 0,
            unread: false,
        })
    }
}

/// Why GPU process `info`'s fences are each a file taken per frame (a sync_file or a pipe),
/// where the run would have them without one; `None` where they need no file.
fn file_fence_reason(info: &GpuInfo, progress_fences: bool) -> Option<&'static str> {
    match info.fence {
        FenceKind::Progress | FenceKind::Implicit => None,
        _ if !progress_fences => Some("--progress-fences off"),
        FenceKind::SyncFile => Some(
            "the driver's native fence, which it need not attach to the buffer's implicit fences",
        ),
        FenceKind::Pipe | FenceKind::EventFd => {
            Some("no progress page could be made for the GPU process")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_file_per_frame_says_why() {
        let mut info = GpuInfo {
            pid: 1,
            backend: ipc_protocol::frame::BufferKind::DmaBuf,
            backend_reason: None,
            fence: FenceKind::Implicit,
            gl: String::new(),
            window: (512, 768),
            views: 1,
            landlock: Default::default(),
        };
        assert_eq!(file_fence_reason(&info, true), None);
        info.fence = FenceKind::SyncFile;
        assert!(file_fence_reason(&info, true).is_some_and(|w| w.contains("native fence")));
        assert_eq!(
            file_fence_reason(&info, false),
            Some("--progress-fences off")
        );
        info.fence = FenceKind::Progress;
        assert_eq!(file_fence_reason(&info, false), None);
        info.fence = FenceKind::Pipe;
        assert!(file_fence_reason(&info, true).is_some_and(|w| w.contains("progress page")));
    }
}
