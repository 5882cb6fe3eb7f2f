//! The end of a run: ask the renderer for its counters, shut both children down (killing what
//! does not exit in time), write the last frame and the trace, and complete the summary.

use std::time::Instant;

use anyhow::Context;
use ipc_protocol::frame::FenceKind;
use ipc_protocol::messages::{
    GpuToLauncher, LauncherToGpu, LauncherToRenderer, RendererToLauncher,
};

use super::{fd_count, fence_count, Supervisor, EXIT_GRACE};
use crate::chaos::{self, Plan};
use crate::summary::{Pids, RunSummary};
use ipc_protocol::Role;

impl Supervisor<'_> {
    /// Shuts everything down and completes the summary.
    pub(super) fn finish(&mut self, ok: bool) -> anyhow::Result<RunSummary> {
        // What each child's sandbox really is, read from /proc while both still run.
        if let Some(g) = &self.pair.gpu {
            self.jail.observe(Role::Gpu, g.child.proc.pid);
        }
        if let Some(r) = &self.pair.renderer {
            self.jail.observe(Role::Renderer, r.child.proc.pid);
        }
        self.summary.processes.fd_counts.launcher_at_end = fd_count(std::process::id());
        self.summary.processes.fd_counts.launcher_peak_rss_kib = peak_rss_kib();
        if let Some(r) = &self.pair.renderer {
            self.summary.processes.fd_counts.renderer_at_end = fd_count(r.child.proc.pid);
            self.summary.processes.fd_counts.renderer_fences_at_end = fence_count(r.child.proc.pid);
            // Counters first, then exits.
            let _ = r.child.commands.send(&LauncherToRenderer::Shutdown);
            let deadline = Instant::now() + EXIT_GRACE;
            loop {
                match r.events.recv_deadline(deadline) {
                    Ok(Ok((RendererToLauncher::Stats(s), _))) => {
                        self.summary.renderer = s;
                        break;
                    }
                    Ok(Ok((RendererToLauncher::Presented(p), _))) => {
                        // A frame composited after the last one asked for: hand it straight back.
                        let _ = r.child.commands.send(&LauncherToRenderer::SlotFree(p.slot));
                    }
                    Ok(Ok((RendererToLauncher::Trace(t), _))) => {
                        if self
                            .policing
                            .budgets
                            .renderer
                            .trace(&t, self.args.trace.is_some())
                            .is_ok()
                        {
                            self.tracing.traces.renderer.extend(t);
                        }
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) | Err(_) => {
                        tracing::warn!("the renderer sent no counters before exiting");
                        break;
                    }
                }
            }
        }
        if let Some(g) = &self.pair.gpu {
            let _ = g.child.commands.send(&LauncherToGpu::Shutdown);
        }
        let gpu_info = self.pair.gpu.as_ref().map(|g| g.info.clone());
        let pids = Pids {
            launcher: std::process::id(),
            gpu: self.pair.gpu.as_ref().map_or(0, |g| g.info.pid),
            renderer: self.pair.renderer.as_ref().map_or(0, |r| r.child.proc.pid),
        };
        if let Some(g) = &mut self.pair.gpu {
            if g.child.proc.wait_exit(EXIT_GRACE).is_none() {
                tracing::warn!(
                    pid = g.child.proc.pid,
                    "the GPU process did not exit in time; killing"
                );
                g.child.proc.kill();
            }
            while let Ok(Ok((m, _))) = g.events.try_recv() {
                if let GpuToLauncher::Trace(t) = m {
                    if self
                        .policing
                        .budgets
                        .gpu
                        .trace(&t, self.args.trace.is_some())
                        .is_ok()
                    {
                        self.tracing.traces.gpu.extend(t);
                    }
                }
            }
        }
        if let Some(r) = &mut self.pair.renderer {
            if r.child.proc.wait_exit(EXIT_GRACE).is_none() {
                tracing::warn!(
                    pid = r.child.proc.pid,
                    "the renderer did not exit in time; killing"
                );
                r.child.proc.kill();
            }
        }
        let s = &mut self.summary;
        s.processes.pids = pids;
        if let Some(info) = &gpu_info {
            s.paths.backend = info.backend.as_str().to_owned();
            s.paths.backend_reason = info.backend_reason.clone();
            s.paths.fence = match info.fence {
                FenceKind::EventFd => "eventfd".to_owned(),
                FenceKind::Pipe => "pipe".to_owned(),
                FenceKind::SyncFile => "sync_file".to_owned(),
            };
            s.paths.gl = info.gl.clone();
        }
        s.paths.transport = self.jail.transport().as_str().to_owned();
        match &self.display {
            Some(d) => {
                s.paths.present = d.d.presenter.describe().to_owned();
                s.paths.present_reason = d.d.presenter.reason();
            }
            None => s.paths.present = "headless: the last frame is written as a PNG".to_owned(),
        }
        s.sandbox = self.jail.summary();
        s.processes.child_stderr = crate::summary::ChildStderr {
            gpu: self.jail.stderr_counts(Role::Gpu),
            renderer: self.jail.stderr_counts(Role::Renderer),
        };
        s.sandbox.gpu_landlock = gpu_info.as_ref().map(|i| i.landlock.clone());
        let secs = self
            .metrics
            .first_present
            .map(|f| self.metrics.last_present.duration_since(f).as_secs_f64())
            .unwrap_or(0.0);
        s.frames.seconds = secs;
        s.frames.fps = if secs > 0.0 {
            (s.frames.count.saturating_sub(1)) as f64 / secs
        } else {
            0.0
        };
        s.latency.handoff = std::mem::take(&mut self.metrics.handoff).latency();
        s.latency.end_to_end = std::mem::take(&mut self.metrics.end_to_end).latency();
        s.latency.present = std::mem::take(&mut self.metrics.present_latency).latency();
        s.recovery.crashes = std::mem::take(&mut self.crashes);
        s.recovery.detection = std::mem::take(&mut self.metrics.detections).latency();
        s.recovery.restart_to_first_frame = std::mem::take(&mut self.metrics.recoveries).latency();
        s.recovery.fallbacks = std::mem::take(&mut self.fallbacks);
        self.chaos
            .fired
            .sort_by_key(|f| (f.frame, format!("{:?}{:?}", f.point, f.action)));
        self.chaos.fired.dedup();
        s.recovery.faults_fired = self.chaos.fired.iter().map(chaos::describe).collect();
        s.recovery.chaos_kills_planned = self.args.chaos.seed.map(|seed| {
            Plan::new(seed, self.args.chaos.kills, self.args.frames)
                .with_faults(&self.args.chaos.faults)
                .len()
        });
        let screen = self
            .pair
            .renderer
            .as_ref()
            .and_then(|r| r.screen.as_ref())
            .filter(|sc| sc.shown.is_some())
            .or(self.pair.old_screen.as_ref());
        // One copy of the slot on screen (memory the renderer can still write) is both checked
        // and written, so the file is the frame that was verified.
        let pixels = screen.and_then(|sc| sc.pixels());
        if ok && self.args.verify {
            if let (Some(pixels), Some(frame)) = (&pixels, self.summary.frames.last) {
                let (w, h) = screen.map_or(self.geometry.size, |sc| sc.shown_size());
                self.summary.verified = Some(crate::verify::check_run(
                    self.drawn.scene.as_deref(),
                    frame,
                    self.drawn.layers,
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
        if let Some(path) = &self.args.trace {
            self.write_trace(path)?;
        }
        Ok(self.summary.clone())
    }

    fn write_trace(&mut self, path: &std::path::Path) -> anyhow::Result<()> {
        self.summary.trace.dropped = crate::summary::TraceDropped {
            gpu: self.tracing.traces.gpu.dropped(),
            renderer: self.tracing.traces.renderer.dropped(),
        };
        // The drops are in the trace too, as counters on the launcher's track.
        self.tracing.rec.counter(
            "trace.gpu_events_dropped_by_launcher",
            self.tracing.traces.gpu.dropped() as f64,
        );
        self.tracing.rec.counter(
            "trace.renderer_events_dropped_by_launcher",
            self.tracing.traces.renderer.dropped() as f64,
        );
        let mut events = self.tracing.traces.gpu.take();
        events.extend(self.tracing.traces.renderer.take());
        events.extend(self.tracing.rec.drain());
        events.sort_by_key(|e| e.ts_ns);
        let mut procs = std::mem::take(&mut self.tracing.processes);
        // Only processes that recorded something, each pid once.
        procs.sort_by_key(|p| p.pid);
        procs.dedup_by_key(|p| p.pid);
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
