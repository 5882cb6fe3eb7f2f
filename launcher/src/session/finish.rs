//! The end of a run: ask each view's renderer for its counters, shut every child down (killing
//! what does not exit in time), write each view's last frame and the trace, and complete the
//! summary.

use std::time::Instant;

use anyhow::Context;
use ipc_protocol::messages::{
    GpuToLauncher, LauncherToGpu, LauncherToRenderer, RendererToLauncher,
};

use super::parts::Who;
use super::{fd_count, fence_count, Supervisor, EXIT_GRACE, FIRST_VIEW};
use crate::chaos::Plan;
use crate::summary::{Pids, RunSummary, ViewSummary};
use ipc_protocol::Role;

impl Supervisor<'_> {
    /// Shuts everything down and completes the summary.
    pub(super) fn finish(&mut self, ok: bool) -> anyhow::Result<RunSummary> {
        // Nothing of the loop reads the GPU process any more: a thread does, so that what it
        // sends while the end's waits go on is taken and its ring never fills.
        if let Some(g) = &mut self.pair.gpu {
            g.forward_rest();
        }
        // The standby goes first, so that the end's fd count is the run's own, as the one after
        // the tenth frame is (the standby is made only after it).
        let standby_pid = self.pair.standby.as_ref().map_or(0, |w| w.child.proc.pid);
        if let Some(w) = self.pair.standby.take() {
            self.retire_standby(w, "the run is over");
        }
        // What each child's sandbox really is, read from /proc while both still run.
        if let Some(g) = &self.pair.gpu {
            self.jail.observe(Role::Gpu, g.child.proc.pid);
        }
        if let Some(r) = &self.views[0].renderer {
            self.jail.observe(Role::Renderer, r.child.proc.pid);
        }
        self.summary.processes.fd_counts.launcher_at_end = fd_count(std::process::id());
        self.summary.processes.fd_counts.launcher_peak_rss_kib = peak_rss_kib();
        if let Some(r) = &self.views[0].renderer {
            self.summary.processes.fd_counts.renderer_at_end = fd_count(r.child.proc.pid);
            self.summary.processes.fd_counts.renderer_fences_at_end = fence_count(r.child.proc.pid);
        }
        // Read while every child still runs.
        let ms = |pid: u32| {
            triptych_sys::proc::cpu_ns(pid)
                .ok()
                .flatten()
                .map(|ns| ns as f64 / 1e6)
        };
        self.summary.processes.cpu_ms.gpu = self.pair.gpu.as_ref().and_then(|g| ms(g.info.pid));
        let mut rss = Vec::with_capacity(self.views.len());
        for v in &self.views {
            let pid = v.renderer.as_ref().map(|r| r.child.proc.pid);
            let mem = pid.and_then(|p| triptych_sys::proc::memory_kib(p).ok().and_then(|m| m.0));
            rss.push((mem, pid.and_then(ms)));
            // Counters first, then exits: every renderer is asked at once, and all are waited
            // for against one deadline.
            if let Some(r) = &v.renderer {
                let _ = r.child.commands.send(&LauncherToRenderer::Shutdown);
            }
        }
        let deadline = Instant::now() + EXIT_GRACE;
        for i in 0..self.views.len() {
            self.renderer_counters(i, deadline);
        }
        if let Some(g) = &self.pair.gpu {
            let _ = g.child.commands.send(&LauncherToGpu::Shutdown);
        }
        let gpu_info = self.pair.gpu.as_ref().map(|g| g.info.clone());
        let pids = Pids {
            launcher: std::process::id(),
            gpu: self.pair.gpu.as_ref().map_or(0, |g| g.info.pid),
            renderer: self.views[0]
                .renderer
                .as_ref()
                .map_or(0, |r| r.child.proc.pid),
            standby: standby_pid,
        };
        if let Some(g) = &mut self.pair.gpu {
            if g.child.proc.wait_exit(EXIT_GRACE).is_none() {
                tracing::warn!(
                    pid = g.child.proc.pid,
                    "the GPU process did not exit in time; killing"
                );
                g.child.proc.kill();
            }
            g.child.wake_reader();
            g.forward_rest();
            // What it sent before it exited (its last trace batches), up to the end of its
            // channel: the forwarding thread may still be taking it off the ring and the socket.
            let deadline = Instant::now() + EXIT_GRACE;
            loop {
                match g.events.recv_deadline(deadline) {
                    Ok(Ok((GpuToLauncher::Trace(t), _))) => {
                        if self
                            .policing
                            .trace(Who::Gpu, &t, self.args.trace.is_some())
                            .is_ok()
                        {
                            self.tracing.keep(Role::Gpu, g.child.proc.pid, None, t);
                        }
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) | Err(_) => break,
                }
            }
        }
        // One deadline for every renderer, which were all asked to exit at once.
        let exits = Instant::now() + EXIT_GRACE;
        for r in self.views.iter_mut().filter_map(|v| v.renderer.as_mut()) {
            super::views::exit_or_kill(r, exits);
        }
        let s = &mut self.summary;
        s.processes.pids = pids;
        if let Some(info) = &gpu_info {
            s.paths.backend = info.backend.as_str().to_owned();
            s.paths.backend_reason = info.backend_reason.clone();
            s.paths.fence = info.fence.as_str().to_owned();
            s.paths.gl = info.gl.clone();
        }
        s.paths.transport = self.jail.transport().as_str().to_owned();
        s.paths.child_events = if !self.args.mailbox {
            "socket".to_owned()
        } else if self.mailbox_fallbacks == 0 {
            "mailbox".to_owned()
        } else {
            format!(
                "mailbox, but the socket for {} children",
                self.mailbox_fallbacks
            )
        };
        s.paths.child_events_reason = self.mailbox_off.clone();
        s.paths.mailbox_records = self
            .mailbox_stats
            .records
            .load(std::sync::atomic::Ordering::Relaxed);
        s.paths.mailbox_on_socket = self
            .mailbox_stats
            .on_socket
            .load(std::sync::atomic::Ordering::Relaxed);
        s.paths.mailbox_sent_records = self
            .mailbox_sent
            .records
            .load(std::sync::atomic::Ordering::Relaxed);
        s.paths.mailbox_sent_on_socket = self
            .mailbox_sent
            .on_socket
            .load(std::sync::atomic::Ordering::Relaxed);
        s.paths.mailbox_sent_wakes = self
            .mailbox_sent
            .wakes
            .load(std::sync::atomic::Ordering::Relaxed);
        s.paths.mailbox_woken = self
            .mailbox_stats
            .wakes
            .load(std::sync::atomic::Ordering::Relaxed);
        let intake = |(loop_read, thread_read): (u64, u64)| {
            match (loop_read, thread_read) {
                (0, _) => "thread",
                (_, 0) => "polled",
                _ => "mixed",
            }
            .to_owned()
        };
        s.paths.renderer_intake = intake(self.intakes);
        s.paths.gpu_intake = intake(self.gpu_intakes);
        s.paths.renderer_scheduling = match &self.renderer_policy {
            None => "none".to_owned(),
            Some(Ok(())) => "batch".to_owned(),
            Some(Err(why)) => format!("not batch: {why}"),
        };
        match &self.display {
            Some(d) => {
                s.paths.present = d.d.presenter.describe().to_owned();
                s.paths.present_reason = d.d.presenter.reason();
            }
            None => s.paths.present = "headless: the last frame is written as a PNG".to_owned(),
        }
        s.sandbox = self.jail.summary();
        s.processes.children = self.jail.children().describe();
        s.processes.child_stderr = crate::summary::ChildStderr {
            gpu: self.jail.stderr_counts(Role::Gpu),
            renderer: self.jail.stderr_counts(Role::Renderer),
        };
        s.sandbox.gpu_landlock = gpu_info.as_ref().map(|i| i.landlock.clone());
        let timings = std::mem::take(&mut self.metrics).timings();
        let secs = timings.seconds;
        s.frames.seconds = secs;
        s.frames.fps = if secs > 0.0 {
            (s.frames.count.saturating_sub(1)) as f64 / secs
        } else {
            0.0
        };
        s.latency.handoff = timings.handoff;
        s.latency.end_to_end = timings.end_to_end;
        s.latency.present = timings.present_latency;
        s.recovery.crashes = std::mem::take(&mut self.crashes);
        s.recovery.standby = self.pair.standby_stats.clone();
        s.recovery.standby.enabled = self.args.supervision.standby;
        s.recovery.detection = timings.detection;
        s.recovery.restart_to_first_frame = timings.restart_to_first_frame;
        s.recovery.fallbacks = std::mem::take(&mut self.fallbacks);
        s.recovery.faults_fired = self.chaos.fired_described();
        s.recovery.chaos_kills_planned = self.args.chaos.seed.map(|seed| {
            Plan::new(seed, self.args.chaos.kills, self.args.frames)
                .with_faults(&self.args.chaos.faults)
                .len()
        });
        let screen = self.views[0]
            .renderer
            .as_ref()
            .and_then(|r| r.screen.as_ref())
            .filter(|sc| sc.shown.is_some())
            .or(self.views[0].pair.old_screen());
        // One copy of the slot on screen (memory the renderer can still write) is both checked
        // and written, so the file is the frame that was verified.
        let pixels = screen.and_then(|sc| sc.pixels());
        if ok && self.args.verify {
            if let (Some(pixels), Some(frame)) = (&pixels, self.summary.frames.last) {
                let (w, h) = screen.map_or(self.views[0].geometry.size(), |sc| sc.shown_size());
                // The scene the last frame presented shows: an edit sent after it is not in it.
                self.summary.verified = Some(crate::verify::check_run(
                    self.edits.shown_scene().map(|s| &**s),
                    frame,
                    self.views[0].drawn.layers(),
                    w,
                    h,
                    pixels,
                ));
            }
        }
        if ok {
            if let (Some(screen), Some(pixels)) = (screen, &pixels) {
                screen.write_png_of(pixels, &self.args.out)?;
                self.summary.frames.out = Some(self.args.out.display().to_string());
            }
        }
        self.summary.views = std::mem::take(&mut self.gone);
        for (i, rss) in rss.into_iter().enumerate() {
            let view = self.view_summary(i, ok, rss)?;
            self.summary.views.push(view);
        }
        self.summary.views.sort_by_key(|v| v.view);
        if let Some(path) = &self.args.trace {
            self.write_trace(path)?;
        }
        self.summary.processes.cpu_ms.launcher = triptych_sys::proc::cpu_ns(std::process::id())
            .ok()
            .flatten()
            .map(|ns| ns as f64 / 1e6);
        Ok(self.summary.clone())
    }

    /// Takes view `i`'s renderer's final counters (the first view's are the summary's
    /// `renderer`), asked for with `Shutdown`, until `deadline`, and what it sends meanwhile.
    pub(super) fn renderer_counters(&mut self, i: usize, deadline: Instant) {
        let view = self.views[i].id;
        let Some(r) = self.views[i].renderer.as_mut() else {
            return;
        };
        r.forward_rest();
        let r = &*r;
        loop {
            match r.events.recv_deadline(deadline) {
                Ok(Ok((RendererToLauncher::Stats(s), _))) => {
                    if view == FIRST_VIEW {
                        self.summary.renderer = s;
                    }
                    break;
                }
                Ok(Ok((RendererToLauncher::Presented(p), _))) => {
                    // A frame composited after the last one asked for: hand it straight back.
                    let _ = r.child.commands.send(&LauncherToRenderer::SlotFree(p.slot));
                }
                Ok(Ok((RendererToLauncher::Trace(t), _))) => {
                    if self
                        .policing
                        .trace(Who::Renderer(view), &t, self.args.trace.is_some())
                        .is_ok()
                    {
                        self.tracing
                            .keep(Role::Renderer, r.child.proc.pid, Some(view), t);
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!(
                        view = view.0,
                        "the renderer sent no counters before exiting"
                    );
                    break;
                }
            }
        }
    }

    /// View `i`'s part of the summary (its renderer's resident memory at the end `rss`);
    /// without a window, and for a run that reached its end (`ok`), another view than the
    /// first writes its last frame to its own file and, with `--verify`, has it checked.
    pub(super) fn view_summary(
        &mut self,
        i: usize,
        ok: bool,
        (rss, cpu_ms): (Option<u64>, Option<f64>),
    ) -> anyhow::Result<ViewSummary> {
        let v = &self.views[i];
        let layers = v.drawn.layers() + u32::from(self.display.is_some());
        let mut s = ViewSummary {
            view: v.id.0,
            scene: v.drawn.scene().map(|sc| match &sc.start.source {
                ipc_protocol::messages::SceneSource::File { name, .. } => name.clone(),
                ipc_protocol::messages::SceneSource::Builtin => {
                    "the built-in scene file".to_owned()
                }
            }),
            frames: v.presented,
            last: v.last,
            restarts: v.restarts,
            renderer_pid: v.renderer.as_ref().map_or(0, |r| r.child.proc.pid),
            renderer_rss_kib: rss,
            renderer_cpu_ms: cpu_ms,
            seconds: v
                .shown
                .map_or(0.0, |(first, last)| (last - first).as_secs_f64()),
            held_max: v.held_max,
            pool_buffers: u64::from(layers) * u64::from(self.args.pool),
            out: None,
            verified: None,
            failed: v.failed.clone(),
            removed: false,
            width: v.geometry.size().0,
            height: v.geometry.size().1,
            placed: v.placed.map(|r| [r.x, r.y]),
        };
        if v.id == FIRST_VIEW {
            s.out = self.summary.frames.out.clone();
            s.verified = self.summary.verified.clone();
            return Ok(s);
        }
        if !ok || self.display.is_some() {
            return Ok(s);
        }
        let screen = v
            .renderer
            .as_ref()
            .and_then(|r| r.screen.as_ref())
            .filter(|sc| sc.shown.is_some())
            .or(v.pair.old_screen());
        let Some(screen) = screen else {
            return Ok(s);
        };
        let Some(pixels) = screen.pixels() else {
            return Ok(s);
        };
        if let (true, Some(frame)) = (self.args.verify, v.last) {
            let (w, h) = screen.shown_size();
            s.verified = Some(crate::verify::check_run(
                v.drawn.scene().map(|sc| &**sc),
                frame,
                v.drawn.layers(),
                w,
                h,
                &pixels,
            ));
        }
        screen.write_png_of(&pixels, &v.out)?;
        s.out = Some(v.out.display().to_string());
        Ok(s)
    }

    fn write_trace(&mut self, path: &std::path::Path) -> anyhow::Result<()> {
        self.summary.trace.dropped = crate::summary::TraceDropped {
            gpu: self.tracing.dropped(Role::Gpu),
            renderer: self.tracing.dropped(Role::Renderer),
        };
        // The drops are in the trace too, as counters on the launcher's track.
        let (events, procs) = self.tracing.take();
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        triptych_trace::write_chrome_json(&events, &procs, std::io::BufWriter::new(file))
            .with_context(|| format!("writing the trace to {}", path.display()))?;
        self.summary.trace.path = Some(path.display().to_string());
        self.summary.trace.events = events.len();
        Ok(())
    }
}

/// This process's peak resident memory in KiB (`VmHWM` in `/proc/self/status`).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
