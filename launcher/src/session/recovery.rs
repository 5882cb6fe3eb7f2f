//! A child died, hung or broke the protocol: reap it, drain what it sent before dying, record
//! the crash with its cause, apply the restart policy, and start its replacement.

use super::*;
use ipc_protocol::messages::FaultAction;

impl Supervisor<'_> {
    /// Records a crash of `role`; the child is already reaped.
    pub(super) fn record_crash(
        &mut self,
        role: Role,
        pid: u32,
        cause: Cause,
        fault: Option<(u64, Fault)>,
        detected_ns: u64,
    ) -> usize {
        let cause = self
            .jail
            .reaped(pid, self.tracing.rec(), self.summary.frames.last)
            .unwrap_or(cause);
        let kill = self.chaos.kill_time(pid);
        let since = fault.map(|(t, _)| t).or(kill);
        let record = CrashRecord {
            role,
            pid,
            cause: cause.clone(),
            at_s: self.started.elapsed().as_secs_f64(),
            last_frame: self.summary.frames.last,
            detection_us: self.metrics.detected(since, detected_ns),
            recovery_us: None,
            injected: fault
                .map(|(_, f)| crate::chaos::describe(&f))
                .or(kill.map(|_| "external SIGKILL".to_owned())),
            standby: false,
            replacement: None,
        };
        tracing::warn!(role = %role, pid, %cause, last_frame = ?record.last_frame, injected = ?record.injected, "child crashed; restarting it");
        self.tracing.instant(
            Marker::Crash,
            self.summary.frames.last,
            &[
                ("role", role.as_str().into()),
                ("pid", pid.to_string()),
                ("cause", cause.to_string()),
            ],
        );
        if let Cause::SandboxViolation { syscall } = &cause {
            self.embedding.send(crate::embedding::Event::Violation {
                role,
                call: syscall.clone(),
            });
        }
        self.embedding.send(crate::embedding::Event::Crashed {
            role,
            cause: cause.to_string(),
        });
        self.crashes.push(record);
        self.crashes.len() - 1
    }

    /// The GPU process died or hung: reap it, record it, replace it.
    pub(super) fn gpu_down(&mut self, hung: Option<Cause>) -> anyhow::Result<()> {
        let detected_ns = triptych_trace::now_ns();
        let detected = Instant::now();
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
                    let _ = self.child_trace(Role::Gpu, t);
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
        let renderer_pid = self.pair.renderer.as_ref().map_or(0, |r| r.child.proc.pid);
        let resume = self.resume_from();
        let gpu = self.start_gpu_with_ladder(renderer_pid, resume)?;
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
        if let Some(r) = &mut self.pair.renderer {
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
                gpu_window: window_of(VIEW_WINDOW),
            });
            if let Err(e) = r.child.commands.send(&m) {
                // A renderer that died meanwhile is replaced through its own pidfd.
                tracing::warn!(error = %e, "could not attach the renderer to the new GPU process");
                r.send_failed(e);
            }
        }
        let first = self.resume_from();
        self.display_gpu_started(gpu.epoch, first);
        self.pair.gpu = Some(gpu);
        self.pair.recovering(Role::Gpu, detected, idx);
        self.liveness.progress(Instant::now());
        Ok(())
    }

    /// The renderer died or hung: reap it, record it, replace it.
    pub(super) fn renderer_down(&mut self, hung: Option<Cause>) -> anyhow::Result<()> {
        let detected_ns = triptych_trace::now_ns();
        let detected = Instant::now();
        let Some(mut r) = self.pair.renderer.take() else {
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
        while let Ok(Ok((m, _))) = r.events.recv_timeout(Duration::from_millis(500)) {
            match m {
                RendererToLauncher::FaultFired { at_ns, fault } if r.faults.contains(&fault) => {
                    self.chaos.fired(fault);
                    r.fault = Some((at_ns, fault));
                }
                RendererToLauncher::Trace(t) => {
                    let _ = self.child_trace(Role::Renderer, t);
                }
                _ => {}
            }
        }
        let cause = hung.unwrap_or_else(|| exit_cause(st));
        let idx = self.record_crash(
            Role::Renderer,
            r.child.proc.pid,
            cause,
            r.fault,
            detected_ns,
        );
        if self.pair.renderer_gives_up(detected) {
            let history: Vec<String> = self
                .crashes
                .iter()
                .map(|c| format!("{:.3}s {} {} {}", c.at_s, c.role, c.pid, c.cause))
                .collect();
            bail!(
                "the renderer crashed more than {} times within {} s; crash history:\n  {}",
                self.args.supervision.max_crashes,
                self.args.supervision.restart_window_s,
                history.join("\n  ")
            );
        }
        // Keep showing its last frame until the replacement presents.
        self.pair.keep_showing(r.screen.take());
        drop(r);
        let child = self.spawn_renderer()?;
        let link = RendererLink {
            renderer_pid: child.proc.pid,
            resume_from: self.resume_from(),
        };
        let gpu = self
            .pair
            .gpu
            .as_ref()
            .context("no GPU process while replacing the renderer")?;
        let page = gpu.page_for_renderer();
        let gpu = (gpu.epoch, gpu.info.pid, window_of(VIEW_WINDOW));
        let renderer = self.start_renderer(child, gpu, page)?;
        if let Some(g) = &mut self.pair.gpu {
            if let Err(e) = self.jail.link_gpu(g.child.proc.pid, link.renderer_pid) {
                tracing::warn!(error = %e, "could not hand the GPU process its link to the new renderer");
            }
            g.starved_since = None;
            // It holds nothing yet, and the GPU process's frames are dropped until it says it
            // serves the new renderer.
            g.relay.new_renderer(link.renderer_pid, link.resume_from);
            // The new renderer's claims are looked at afresh: a replaced one cannot use up the
            // looks an honest one may need.
            g.looks = 0;
            // Frames vouched for on the old link mean nothing on the new one; the vouching
            // itself goes on, as it is about the GPU process.
            g.vouched_from = None;
            if let Some(v) = &g.vouch {
                v.relinked(g.relay.link());
            }
            match g.send_view(ViewCommand::NewRenderer(link)) {
                Ok(()) => {}
                Err(SendError::Full) => g.unread = true,
                Err(_) => tracing::warn!("the GPU process is gone too; it will be replaced"),
            }
        }
        self.tracing.instant(
            Marker::Restart,
            self.summary.frames.last,
            &[
                ("role", Role::Renderer.as_str().into()),
                ("pid", renderer.child.proc.pid.to_string()),
            ],
        );
        self.pair.renderer = Some(renderer);
        self.summary.processes.fd_counts.renderer_at_10 = None;
        self.pair.recovering(Role::Renderer, detected, idx);
        self.liveness.progress(Instant::now());
        Ok(())
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
