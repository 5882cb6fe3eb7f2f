//! The GPU process's start: from joining the launcher to the frame loop.
//!
//! Sequence: join the launcher's channels, receive `Start`, create the GL context and the
//! exporter the launcher asked for (failing at once, with the missing piece named, when it
//! cannot work), report what runs, then for each frame: take a free pool buffer per layer
//! (waiting for releases when there is none), draw the layer, send the frame's descriptions to
//! the renderer, and complete each layer's work, which signals its fence. With a scene file,
//! its images follow `Start` and are read before the sandbox and decoded after it (`scene.rs`).
//! In a window (`GpuStart::overlay`) every frame has one more layer after the scene's, the
//! overlay: its text comes in `Overlay` messages, is checked and rasterized here, inside the
//! sandbox (`triptych_scene::overlay`), uploaded once per new text and copied into the layer's
//! buffer, so an unchanged overlay damages nothing.
//! After the last frame it keeps serving releases until the launcher says `Shutdown`.
//!
//! This module is the start-up half ([`run`]): the channels, `Start`, the scene's images, the GL
//! context and the exporter, the sandbox, `Started`. The frame loop is
//! [`crate::frame_loop`]. `triptych-gpu --egl-facts` ([`egl_facts`]) prints the same choice of
//! exporter as JSON for `triptych doctor`.

use std::os::fd::{AsFd, OwnedFd};

use anyhow::{bail, Context};
use ipc_protocol::bootstrap;
use ipc_protocol::channel;
use ipc_protocol::messages::{
    BackendRequest, FaultPoint, GpuInfo, GpuStart, GpuToLauncher, LauncherToGpu,
};
use triptych_sys::fd::ExportWindow;

use crate::export::{self, shm::ShmExporter, Exporter};
use crate::frame_loop::{maybe_fire, Drawing, Producer};
use crate::gl::{GlContext, PlatformRequest};
use crate::hooks::Hooks;

/// The role name: process name, policy name, span prefix, crash records.
pub const ROLE: &str = ipc_protocol::Role::Gpu.as_str();

/// `--egl-facts`: print the EGL facts as JSON on stdout (used by `triptych doctor`).
pub fn egl_facts() -> anyhow::Result<()> {
    let report = match GlContext::new(PlatformRequest::Auto) {
        Ok(mut gl) => {
            // The same selection a run makes, so doctor cannot disagree with it.
            let auto = match choose_exporter(BackendRequest::Auto, &mut gl) {
                Ok((e, reason)) => serde_json::json!({
                    "backend": e.kind().as_str(),
                    "fence": e.fence_kind().as_str(),
                    "fence_detail": e.fence_detail(),
                    "reason": reason,
                }),
                Err(e) => serde_json::json!({ "backend": null, "reason": format!("{e:#}") }),
            };
            serde_json::json!({ "ok": true, "info": gl.info(), "auto": auto })
        }
        Err(e) => serde_json::json!({ "ok": false, "error": e.to_string() }),
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{report}").context("writing the probe report")?;
    Ok(())
}

/// Raises the soft fd limit so the export window's numbers can be used.
fn raise_fd_limit() -> anyhow::Result<()> {
    use triptych_sys::rlimit::{self, Resource};
    let need = ExportWindow::GPU.end() as u64 + 64;
    let (soft, hard) = rlimit::get(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    if soft < need {
        if hard < need {
            bail!("RLIMIT_NOFILE hard limit {hard} is below the {need} the export window needs");
        }
        rlimit::set(Resource::RLIMIT_NOFILE, need, hard).context("raising RLIMIT_NOFILE")?;
    }
    Ok(())
}

/// Picks the exporter for `request`, with the reason when it is not the fast path.
fn choose_exporter(
    request: BackendRequest,
    gl: &mut GlContext,
) -> anyhow::Result<(Box<dyn Exporter>, Option<String>)> {
    match request {
        BackendRequest::Shm => Ok((Box::new(ShmExporter), None)),
        BackendRequest::DmaBuf => match export::dmabuf::DmabufExporter::new(gl) {
            Ok(e) => Ok((Box::new(e), None)),
            Err(e) => bail!("--buffers dmabuf cannot work here: {e}"),
        },
        BackendRequest::Auto => match export::dmabuf::DmabufExporter::new(gl) {
            Ok(e) => Ok((Box::new(e), None)),
            Err(e) => {
                let reason = format!("DMA-BUF export unavailable: {e}");
                tracing::warn!(%reason, "falling back to shm buffers");
                Ok((Box::new(ShmExporter), Some(reason)))
            }
        },
    }
}

/// Runs the GPU process: start-up, then the frame loop until the launcher says `Shutdown`. The
/// product passes [`crate::hooks::NoHooks`].
pub fn run(mut hooks: Box<dyn Hooks>) -> anyhow::Result<()> {
    // Before anything else: the fixed fds, the SIGSYS reporter.
    let claimed = crate::sandbox::startup().context("sandbox start-up")?;
    triptych_sys::prctl::set_name(ROLE).context("naming the process")?;
    let (mut commands, events) =
        bootstrap::join::<LauncherToGpu, GpuToLauncher>(ROLE).context("joining the launcher")?;
    let (start, mut fds) = commands
        .recv()
        .context("waiting for Start from the launcher")?;
    let peer = fds.pop();
    let start = match start {
        LauncherToGpu::Start(s) => s,
        LauncherToGpu::Shutdown => return Ok(()),
        other => bail!("expected Start from the launcher, got {other:?}"),
    };
    maybe_fire(
        &mut start.faults.clone(),
        FaultPoint::GpuStartup,
        start.first_frame,
        &events,
    );
    // A scene file's images follow `Start`; their bytes are read now, decoded once sandboxed.
    let received = match &start.scene {
        None => None,
        Some(s) => {
            let next = || commands.recv().context("receiving a scene image");
            match crate::scene::receive(s, next) {
                Ok(r) => Some(r),
                Err(e) => {
                    let _ = events.send(&GpuToLauncher::Failed(format!("{e:#}")));
                    return Err(e);
                }
            }
        }
    };
    match setup(&start) {
        Ok((mut gl, exporter, reason)) => {
            let gl_line = {
                let i = gl.info();
                format!("{} on {} ({})", i.gl_renderer, i.platform, i.egl_vendor)
            };
            let info = GpuInfo {
                pid: std::process::id(),
                backend: exporter.kind(),
                backend_reason: reason,
                fence: exporter.fence_kind(),
                gl: gl_line,
                window: (ExportWindow::GPU.base, ExportWindow::GPU.end()),
                landlock: claimed.landlock.clone(),
            };
            // The driver is up: the sandbox goes on before anything is reported or rendered.
            let hand_over = |listener: &OwnedFd| {
                events
                    .send_with(&GpuToLauncher::SandboxListener, &[listener.as_fd()])
                    .context("sending the listener")
            };
            let fds = match crate::sandbox::confine(claimed, &start, hooks.as_mut(), hand_over) {
                Ok(f) => f,
                Err(e) => {
                    let _ = events.send(&GpuToLauncher::Failed(format!("{e:#}")));
                    return Err(e);
                }
            };
            let (w, h) = (start.width, start.height);
            let scene = received.map(|r| crate::scene::prepare(r, &mut gl, w, h));
            let scene = match scene.transpose() {
                Ok(s) => s,
                Err(e) => {
                    let _ = events.send(&GpuToLauncher::Failed(format!("{e:#}")));
                    return Err(e);
                }
            };
            events
                .send(&GpuToLauncher::Started(info.clone()))
                .context("reporting the start")?;
            let commands = channel::forward("launcher-rx", commands)?;
            let drawing = Drawing {
                gl,
                exporter,
                scene,
            };
            let mut producer = Producer::new(start, peer, drawing, events, fds, hooks)?;
            producer.running(&info);
            let result = producer.run(&commands);
            producer.ship_trace();
            result
        }
        Err(e) => {
            let _ = events.send(&GpuToLauncher::Failed(format!("{e:#}")));
            Err(e)
        }
    }
}

fn setup(start: &GpuStart) -> anyhow::Result<(GlContext, Box<dyn Exporter>, Option<String>)> {
    raise_fd_limit()?;
    crate::sandbox::name_ptracer(start.renderer.renderer_pid)?;
    let mut gl = GlContext::new(PlatformRequest::Auto).context("creating the GL context")?;
    let (exporter, reason) = choose_exporter(start.backend, &mut gl)?;
    Ok((gl, exporter, reason))
}
