//! One run: start the children, wire their channels, drive frames to the end, shut down.
//!
//! Sequence:
//! 1. spawn the GPU process and the renderer; each joins through its own bootstrap server;
//! 2. create the frame and release channels between them and hand one end to each;
//! 3. start the GPU process first: if the backend asked for cannot work it fails here, at once,
//!    with the missing piece named;
//! 4. start the renderer with the GPU process's pid and export window; map its output;
//! 5. present every frame, handing back the slot it replaces;
//! 6. after the last frame, ask the renderer for its counters, then shut both down, waiting on
//!    their pidfds, and SIGKILL whatever does not exit in time.
//!
//! A child that exits early, a `Failed` message, or Ctrl-C ends the run with an error that says
//! which process did what; dropping the child handles kills and reaps them on every path.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use crossbeam_channel::{select, Receiver};
use ipc_channel::ipc;
use ipc_protocol::frame::FenceKind;
use ipc_protocol::messages::{
    BackendRequest, GpuInfo, GpuStart, GpuToLauncher, GpuToRenderer, LauncherToGpu,
    LauncherToRenderer, RendererStart, RendererToGpu, RendererToLauncher, Transport,
};
use nix::sys::signal::Signal;
use std::os::fd::AsFd;

use crate::child::{describe, ChildProc, Process};
use crate::cli::{Buffers, RunArgs};
use crate::present::Screen;
use crate::summary::{Latency, Pids, RunSummary};

type Gpu = ChildProc<LauncherToGpu, GpuToLauncher>;
type Renderer = ChildProc<LauncherToRenderer, RendererToLauncher>;

/// How long children get to exit after `Shutdown`.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// How long the GPU process gets to report that it started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn forward<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static>(
    name: String,
    rx: ipc::IpcReceiver<T>,
) -> anyhow::Result<Receiver<T>> {
    let (tx, out) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            while let Ok(m) = rx.recv() {
                if tx.send(m).is_err() {
                    break;
                }
            }
        })
        .with_context(|| format!("spawning {name}"))?;
    Ok(out)
}

/// A message that becomes readable when a child exits.
fn watch_exit(p: &Process) -> anyhow::Result<Receiver<()>> {
    let fd = triptych_sys::fd::dup_cloexec(p.pidfd.as_fd())?;
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name(format!("{}-exit", p.role))
        .spawn(move || {
            // A pidfd polls readable once its process has exited.
            if let Ok(triptych_sys::poll::WaitOutcome::Ready) = triptych_sys::poll::wait_readable(
                fd.as_fd(),
                Duration::from_secs(u64::from(u32::MAX)),
            ) {
                let _ = tx.send(());
            }
        })
        .context("spawning an exit watcher")?;
    Ok(rx)
}

fn fd_count_self() -> Option<usize> {
    triptych_sys::proc::fd_count(std::process::id()).ok()
}

/// Runs the pipeline as `args` says, returning the summary.
pub fn run(args: &RunArgs, signals: &Receiver<Signal>) -> anyhow::Result<RunSummary> {
    let (width, height) = (args.size.width, args.size.height);
    let mut gpu: Gpu =
        ChildProc::spawn("gpu", "triptych-gpu", &[]).context("starting the GPU process")?;
    let mut renderer: Renderer =
        ChildProc::spawn("renderer", "triptych-renderer", &[]).context("starting the renderer")?;
    let gpu_events = forward(
        "gpu-events".into(),
        gpu.events.take().context("gpu events taken")?,
    )?;
    let renderer_events = forward(
        "renderer-events".into(),
        renderer.events.take().context("renderer events taken")?,
    )?;
    let gpu_exit = watch_exit(&gpu.proc)?;
    let renderer_exit = watch_exit(&renderer.proc)?;

    let (frames_tx, frames_rx) =
        ipc::channel::<GpuToRenderer>().context("creating the frame channel")?;
    let (releases_tx, releases_rx) =
        ipc::channel::<RendererToGpu>().context("creating the release channel")?;
    let backend = match args.buffers {
        Buffers::Auto => BackendRequest::Auto,
        Buffers::Shm => BackendRequest::Shm,
        Buffers::Dmabuf => BackendRequest::DmaBuf,
    };
    gpu.commands
        .send(LauncherToGpu::Start(GpuStart {
            epoch: 1,
            width,
            height,
            layers: args.layers,
            frames: args.frames,
            pool_per_layer: args.pool,
            backend,
            renderer_pid: renderer.proc.pid,
            to_renderer: frames_tx,
            releases: releases_rx,
        }))
        .context("starting the GPU process")?;
    let info: GpuInfo = {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            select! {
                recv(gpu_events) -> m => match m {
                    Ok(GpuToLauncher::Started(info)) => break info,
                    Ok(GpuToLauncher::Failed(e)) => bail!("the GPU process could not start: {e}"),
                    Ok(other) => bail!("the GPU process sent {other:?} before starting"),
                    Err(_) => {
                        let st = gpu.proc.wait_exit(Duration::from_secs(1));
                        bail!("the GPU process {} exited while starting ({})", gpu.proc.pid, describe(st));
                    }
                },
                recv(signals) -> s => bail!("interrupted by {:?} while starting", s.ok()),
                default(deadline.saturating_duration_since(Instant::now())) => {
                    bail!("the GPU process did not start within {START_TIMEOUT:?}")
                }
            }
        }
    };
    tracing::info!(backend = info.backend.as_str(), fence = ?info.fence, gl = %info.gl, reason = ?info.backend_reason, "GPU process started");
    renderer
        .commands
        .send(LauncherToRenderer::Start(RendererStart {
            epoch: 1,
            gpu_pid: info.pid,
            gpu_window: info.window,
            width,
            height,
            transport: Transport::Pidfd,
            fence_timeout_ms: args.fence_timeout_ms,
            frames: frames_rx,
            releases: releases_tx,
        }))
        .context("starting the renderer")?;

    let mut summary = RunSummary {
        width,
        height,
        layers: args.layers,
        backend: info.backend.as_str().to_owned(),
        backend_reason: info.backend_reason.clone(),
        fence: match info.fence {
            FenceKind::EventFd => "eventfd".to_owned(),
            FenceKind::SyncFile => "sync_file".to_owned(),
        },
        transport: Transport::Pidfd.as_str().to_owned(),
        gl: info.gl.clone(),
        pids: Pids {
            launcher: std::process::id(),
            gpu: gpu.proc.pid,
            renderer: renderer.proc.pid,
        },
        ..RunSummary::default()
    };
    let mut screen: Option<Screen> = None;
    let mut handoff = Vec::with_capacity(args.frames as usize);
    let mut end_to_end = Vec::with_capacity(args.frames as usize);
    let mut first_present: Option<Instant> = None;
    let mut last_present = Instant::now();

    while summary.frames < args.frames {
        select! {
            recv(renderer_events) -> m => match m {
                Ok(RendererToLauncher::Output { fd, slots, slot_bytes }) => {
                    screen = Some(Screen::attach(&renderer.proc.pidfd, fd, slots, slot_bytes, width, height)
                        .context("mapping the renderer's output")?);
                }
                Ok(RendererToLauncher::Presented(p)) => {
                    let now = triptych_trace::now_ns();
                    let screen = screen.as_mut().context("renderer presented before sharing its output")?;
                    if let Some(back) = screen.show(p.slot, p.frame)? {
                        renderer.commands.send(LauncherToRenderer::SlotFree(back)).context("returning a slot")?;
                    }
                    handoff.push(p.ready_ns.saturating_sub(p.sent_ns));
                    end_to_end.push(now.saturating_sub(p.sent_ns));
                    summary.frames += 1;
                    summary.last_frame = Some(p.frame);
                    last_present = Instant::now();
                    first_present.get_or_insert(last_present);
                    if summary.frames == 10 {
                        summary.fd_counts.launcher_at_10 = fd_count_self();
                        summary.fd_counts.renderer_at_10 = triptych_sys::proc::fd_count(renderer.proc.pid).ok();
                    }
                }
                Ok(RendererToLauncher::Rejected { frame, reason }) => {
                    tracing::warn!(frame, %reason, "the renderer rejected a frame");
                    summary.rejected.push(format!("frame {frame}: {reason}"));
                }
                Ok(RendererToLauncher::Failed(e)) => bail!("the renderer failed: {e}"),
                Ok(RendererToLauncher::Stats(s)) => summary.renderer = s,
                Err(_) => {
                    let st = renderer.proc.wait_exit(Duration::from_secs(1));
                    bail!("the renderer {} disconnected ({})", renderer.proc.pid, describe(st));
                }
            },
            recv(gpu_events) -> m => match m {
                Ok(GpuToLauncher::Finished { frames }) => tracing::debug!(frames, "GPU process rendered every frame"),
                Ok(GpuToLauncher::Failed(e)) => bail!("the GPU process failed: {e}"),
                Ok(GpuToLauncher::Started(_)) => tracing::warn!("the GPU process said Started twice"),
                Err(_) => {
                    let st = gpu.proc.wait_exit(Duration::from_secs(1));
                    bail!("the GPU process {} disconnected ({})", gpu.proc.pid, describe(st));
                }
            },
            recv(gpu_exit) -> _ => {
                let st = gpu.proc.wait_exit(Duration::from_secs(1));
                bail!("the GPU process {} exited during the run ({})", gpu.proc.pid, describe(st));
            }
            recv(renderer_exit) -> _ => {
                let st = renderer.proc.wait_exit(Duration::from_secs(1));
                bail!("the renderer {} exited during the run ({})", renderer.proc.pid, describe(st));
            }
            recv(signals) -> s => {
                tracing::warn!(signal = ?s.ok(), "interrupted: shutting down");
                break;
            }
        }
    }
    summary.fd_counts.launcher_at_end = fd_count_self();
    summary.fd_counts.renderer_at_end = triptych_sys::proc::fd_count(renderer.proc.pid).ok();

    // Counters first, then exits.
    let _ = renderer.commands.send(LauncherToRenderer::Shutdown);
    let deadline = Instant::now() + EXIT_GRACE;
    loop {
        match renderer_events.recv_deadline(deadline) {
            Ok(RendererToLauncher::Stats(s)) => {
                summary.renderer = s;
                break;
            }
            Ok(RendererToLauncher::Presented(p)) => {
                // A frame composited after the last one asked for: hand it straight back.
                let _ = renderer.commands.send(LauncherToRenderer::SlotFree(p.slot));
            }
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("the renderer sent no counters before exiting");
                break;
            }
        }
    }
    let _ = gpu.commands.send(LauncherToGpu::Shutdown);
    for p in [&mut renderer.proc, &mut gpu.proc] {
        let st = p.wait_exit(EXIT_GRACE);
        if st.is_none() {
            tracing::warn!(role = p.role, pid = p.pid, "did not exit in time; killing");
            p.kill();
        } else if !st.is_some_and(|s| s.success()) {
            tracing::warn!(
                role = p.role,
                pid = p.pid,
                status = describe(st),
                "exited abnormally at shutdown"
            );
        }
    }

    let secs = first_present
        .map(|f| last_present.duration_since(f).as_secs_f64())
        .unwrap_or(0.0);
    summary.seconds = secs;
    summary.fps = if secs > 0.0 {
        (summary.frames.saturating_sub(1)) as f64 / secs
    } else {
        0.0
    };
    summary.handoff = Latency::of(handoff);
    summary.end_to_end = Latency::of(end_to_end);
    if let Some(screen) = &screen {
        if screen.shown.is_some() {
            screen.write_png(&args.out)?;
            summary.out = Some(args.out.display().to_string());
        }
    }
    Ok(summary)
}
