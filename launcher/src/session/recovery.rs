//! A child died, hung or broke the protocol: reap it, drain what it sent before dying, record
//! the crash with its cause, apply the restart policy, and start its replacement.

use super::*;
use ipc_protocol::messages::FaultAction;

impl Supervisor<'_> {
    /// Records a crash of `role` (of `view`, for a renderer); the child is already reaped.
    pub(super) fn record_crash(
        &mut self,
        role: Role,
        pid: u32,
        cause: Cause,
        fault: Option<(u64, Fault)>,
        detected_ns: u64,
    ) -> usize {
        self.record_crash_of(role, None, pid, cause, fault, detected_ns)
    }

    /// [`Supervisor::record_crash`], naming `view` for a renderer's.
    pub(super) fn record_crash_of(
        &mut self,
        role: Role,
        view: Option<ViewId>,
        pid: u32,
        cause: Cause,
        fault: Option<(u64, Fault)>,
        detected_ns: u64,
    ) -> usize {
        let last_frame = match view.and_then(|v| self.view_index(v)) {
            Some(i) => self.views[i].last,
            None => self.summary.frames.last,
        };
        let cause = self
            .jail
            .reaped(pid, self.tracing.rec(), last_frame)
            .unwrap_or(cause);
        let kill = self.chaos.kill_time(pid);
        let since = fault.map(|(t, _)| t).or(kill);
        let record = CrashRecord {
            role,
            pid,
            cause: cause.clone(),
            at_s: self.started.elapsed().as_secs_f64(),
            last_frame,
            detection_us: self.metrics.detected(since, detected_ns),
            recovery_us: None,
            injected: fault
                .map(|(_, f)| crate::chaos::describe(&f))
                .or(kill.map(|_| "external SIGKILL".to_owned())),
            standby: false,
            replacement: None,
            view: view.map(|v| v.0),
        };
        tracing::warn!(role = %role, view = ?view.map(|v| v.0), pid, %cause, last_frame = ?record.last_frame, injected = ?record.injected, "child crashed; restarting it");
        let mut marks = vec![
            ("role", role.as_str().into()),
            ("pid", pid.to_string()),
            ("cause", cause.to_string()),
        ];
        if let Some(v) = view.filter(|v| *v != FIRST_VIEW) {
            marks.push(("view", v.0.to_string()));
        }
        self.tracing.instant(Marker::Crash, last_frame, &marks);
        if let Cause::SandboxViolation { syscall } = &cause {
            self.embedding.send(crate::embedding::Event::Violation {
                role,
                view,
                call: syscall.clone(),
            });
        }
        self.embedding.send(crate::embedding::Event::Crashed {
            role,
            view,
            cause: cause.to_string(),
        });
        self.crashes.push(record);
        self.crashes.len() - 1
    }

    /// The GPU process died or hung: reap it, record it, replace it.
    pub(super) fn gpu_down(&mut self, hung: Option<Cause>) -> anyhow::Result<()> {
        let detected_ns = triptych_trace::now_ns();
        let detected = Instant::now();
        // What the loop sent the other children goes out before the waits below.
        self.wake_children();
        let Some(mut g) = self.pair.gpu.take() else {
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
        g.child.wake_reader();
        g.drain_gone();
        // Everything it sent before dying (trace batches, the fault notice) is still readable:
        // the forwarding thread delivers it, then disconnects, once the socket reports the end.
        // It is dead, so this ends; at most FORWARD_QUEUE messages are waiting.
        while let Ok(Ok((m, _))) = g.events.recv_timeout(Duration::from_millis(500)) {
            match m {
                GpuToLauncher::FaultFired { at_ns, fault } if g.faults.contains(&fault) => {
                    self.chaos.fired(fault);
                    if fault.action != FaultAction::LateFences {
                        g.fault = Some((at_ns, fault));
                    }
                }
                // A breach by a process already dead changes nothing.
                GpuToLauncher::Trace(t) => {
                    let _ = self.child_trace(Who::Gpu, g.child.proc.pid, t);
                }
                // Frames it sent that were not handed on yet are never handed on: the renderer
                // could not take their fds from a dead process, and the replacement draws them
                // again.
                _ => {}
            }
        }
        let cause = hung.unwrap_or_else(|| exit_cause(st));
        let idx = self.record_crash(Role::Gpu, g.child.proc.pid, cause, g.fault, detected_ns);
        let why = self.crashes[idx].cause.to_string();
        self.gpu_decision(detected, &why)?;
        drop(g);
        let renderers: Vec<u32> = self
            .views
            .iter()
            .map(|v| v.renderer.as_ref().map_or(0, |r| r.child.proc.pid))
            .collect();
        let gpu = self.start_gpu_with_ladder(&renderers)?;
        self.tracing.instant(
            Marker::Restart,
            self.summary.frames.last,
            &[
                ("role", Role::Gpu.as_str().into()),
                ("pid", gpu.info.pid.to_string()),
                ("start", gpu.start_kind().into()),
            ],
        );
        self.crashes[idx].replacement = Some(gpu.start_kind().to_owned());
        for v in &mut self.views {
            let Some(r) = v.renderer.as_mut() else {
                continue;
            };
            if let Err(e) = self.jail.link_renderer(
                r.child.proc.pid,
                gpu.epoch,
                gpu.info.pid,
                gpu.progress.as_ref().map(|p| p.ro.as_fd()),
            ) {
                tracing::warn!(error = %e, "could not hand the renderer its link to the new GPU process");
            }
            let m = LauncherToRenderer::NewGpu(GpuLink {
                epoch: gpu.epoch,
                gpu_pid: gpu.info.pid,
                gpu_window: window_of(v.window),
            });
            if let Err(e) = r.child.commands.send(&m) {
                // A renderer that died meanwhile is replaced through its own pidfd.
                tracing::warn!(error = %e, "could not attach the renderer to the new GPU process");
                r.send_failed(e);
            }
        }
        self.display_gpu_started(gpu.epoch);
        self.pair.gpu = Some(gpu);
        self.pair.recovering(detected, idx);
        let now = Instant::now();
        for v in &self.views {
            self.liveness.progress(v.id, now);
        }
        Ok(())
    }

    /// `view`'s renderer died or hung: reap it, record it, replace it. Only the view is
    /// touched: every other view's renderer goes on presenting meanwhile.
    pub(super) fn renderer_down(
        &mut self,
        view: ViewId,
        hung: Option<Cause>,
    ) -> anyhow::Result<()> {
        let detected_ns = triptych_trace::now_ns();
        let detected = Instant::now();
        // What the loop sent the other children goes out before the waits below.
        self.wake_children();
        let Some(i) = self.view_index(view) else {
            return Ok(());
        };
        let Some(mut r) = self.views[i].renderer.take() else {
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
        r.child.wake_reader();
        r.drain_gone();
        while let Ok(Ok((m, _))) = r.events.recv_timeout(Duration::from_millis(500)) {
            match m {
                RendererToLauncher::FaultFired { at_ns, fault } if r.faults.contains(&fault) => {
                    self.chaos.fired(fault);
                    r.fault = Some((at_ns, fault));
                }
                RendererToLauncher::Trace(t) => {
                    let _ = self.child_trace(Who::Renderer(view), r.child.proc.pid, t);
                }
                _ => {}
            }
        }
        let cause = hung.unwrap_or_else(|| exit_cause(st));
        let idx = self.record_crash_of(
            Role::Renderer,
            Some(view),
            r.child.proc.pid,
            cause,
            r.fault,
            detected_ns,
        );
        self.views[i].restarts += 1;
        // Keep showing its last frame until the replacement presents.
        self.views[i].pair.keep_showing(r.screen.take());
        drop(r);
        if self.views[i].pair.gives_up(detected) {
            let history: Vec<String> = self
                .crashes
                .iter()
                .map(|c| format!("{:.3}s {} {} {}", c.at_s, c.role, c.pid, c.cause))
                .collect();
            let why = format!(
                "crashed more than {} times within {} s; crash history:\n  {}",
                self.args.supervision.max_crashes,
                self.args.supervision.restart_window_s,
                history.join("\n  ")
            );
            if view == FIRST_VIEW {
                bail!("the renderer {why}");
            }
            // Another view's renderer given up costs that view alone.
            self.retire_view(i, format!("its renderer {why}"));
            return Ok(());
        }
        let child = self.spawn_renderer()?;
        let link = RendererLink {
            renderer_pid: child.proc.pid,
            resume_from: self.views[i].resume_from(),
        };
        let gpu = self
            .pair
            .gpu
            .as_ref()
            .context("no GPU process while replacing the renderer")?;
        let page = gpu.page_for_renderer();
        let gpu = (gpu.epoch, gpu.info.pid);
        let renderer = self.start_renderer(i, child, gpu, page)?;
        if let Some(g) = &mut self.pair.gpu {
            if let Err(e) = self.jail.link_gpu(g.child.proc.pid, link.renderer_pid) {
                tracing::warn!(error = %e, "could not hand the GPU process its link to the new renderer");
            }
            if let Some(l) = g.links.iter_mut().find(|l| l.view == view) {
                l.starved_since = None;
                // It holds nothing yet, and the GPU process's frames are dropped until it says
                // it serves the new renderer.
                l.relay.new_renderer(link.renderer_pid, link.resume_from);
                // The new renderer's claims are looked at afresh: a replaced one cannot use up
                // the looks an honest one may need.
                l.looks = 0;
                // Frames vouched for on the old link mean nothing on the new one; the vouching
                // itself goes on, as it is about the GPU process.
                l.vouched_from = None;
                if let Some(v) = &l.vouch {
                    v.relinked(l.relay.link());
                }
            }
            match g.send_view(view, ViewCommand::NewRenderer(link)) {
                Ok(()) => {}
                Err(SendError::Full) => g.unread = true,
                Err(_) => tracing::warn!("the GPU process is gone too; it will be replaced"),
            }
        }
        let mut marks = vec![
            ("role", Role::Renderer.as_str().into()),
            ("pid", renderer.child.proc.pid.to_string()),
        ];
        if view != FIRST_VIEW {
            marks.push(("view", view.0.to_string()));
        }
        self.tracing
            .instant(Marker::Restart, self.views[i].last, &marks);
        self.views[i].renderer = Some(renderer);
        if view == FIRST_VIEW {
            self.summary.processes.fd_counts.renderer_at_10 = None;
        }
        self.views[i].pair.recovering(detected, idx);
        self.liveness.progress(view, Instant::now());
        Ok(())
    }
}

impl Supervisor<'_> {
    /// Gives view `i` up (its renderer crashed too often): the GPU process stops serving it,
    /// its last frame stays what the summary and its file show, and the run goes on with the
    /// others. The first view is never given up alone: the run ends with it.
    pub(super) fn retire_view(&mut self, i: usize, why: String) {
        let view = self.views[i].id;
        tracing::error!(view = view.0, %why, "a view is given up; the others go on");
        self.embedding.send(crate::embedding::Event::ViewGone {
            view,
            failed: Some(why.clone()),
        });
        self.embedding.forget(view);
        self.views[i].failed = Some(why);
        self.views[i].renderer = None;
        if let Some(g) = self.pair.gpu.as_mut() {
            if let Some(l) = g.link_mut(view) {
                l.removing = true;
            }
            if let Err(SendError::Full) = g.child.commands.send(&LauncherToGpu::RemoveView(view)) {
                g.unread = true;
            }
        }
        self.tracing.instant(
            Marker::Fallback,
            self.views[i].last,
            &[
                ("view", view.0.to_string()),
                ("given up", "renderer".into()),
            ],
        );
    }
}

pub(super) fn exit_cause(st: Option<std::process::ExitStatus>) -> Cause {
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
