//! The GPU process's start: from joining the launcher to the frame loop.
//!
//! Sequence: join the launcher's channels and take its command stream
//! (`ipc_protocol::commands`), receive `Prepare`, create the GL context and the
//! exporter the launcher asked for (failing at once, with the missing piece named, when it
//! cannot work), put the sandbox on and report `Ready`; a standby waits there. Then receive
//! `Start` (the renderer, the size, the scene), report `Started`, then for each frame: take a
//! free pool buffer per layer (waiting for releases when there is none), draw the layer, send
//! the frame's descriptions to the renderer, and complete each layer's work, which signals its
//! fence. With a scene file,
//! its images follow `Start` and are read (`pread` on the fds handed over) and decoded, confined
//! (`scene.rs`).
//! In a window (`GpuStart::overlay`) every frame has one more layer after the scene's, the
//! overlay: its text comes in `Overlay` messages, is checked and rasterized here, inside the
//! sandbox (`triptych_scene::overlay`), uploaded once per new text and copied into the layer's
//! buffer, so an unchanged overlay damages nothing.
//! After the last frame it keeps serving releases until the launcher says `Shutdown`.
//!
//! This module is the start-up half ([`run`]): the channels, `Prepare`, the GL context and the
//! exporter, the sandbox, `Ready`, then `Start`, the scene's images, `Started`. The frame loop is
//! [`crate::frame_loop`]. `triptych-gpu --egl-facts` ([`egl_facts`]) prints the same choice of
//! exporter as JSON for `triptych doctor`.

use std::os::fd::{AsFd, OwnedFd};

use anyhow::{bail, Context};
use ipc_protocol::bootstrap;
use ipc_protocol::channel;
use ipc_protocol::messages::{
    BackendRequest, FaultPoint, GpuInfo, GpuPrepare, GpuToLauncher, LauncherToGpu,
};
use triptych_sys::fd::ExportWindow;

use crate::device::maybe_fire;
use crate::export::{self, shm::ShmExporter, Exporter};
use crate::frame_loop::{Drawing, Producer};
use crate::gl::{GlContext, PlatformRequest};
use crate::hooks::Hooks;

/// The role name: process name, policy name, span prefix, crash records.
pub const ROLE: &str = ipc_protocol::Role::Gpu.as_str();

/// `--egl-facts`: print the EGL facts as JSON on stdout (used by `triptych doctor`), with the
/// memory this process holds once its GL context and exporter are made (`memory`: `VmRSS` and
/// `Pss` in KiB), which is what a warm standby GPU process holds.
pub fn egl_facts() -> anyhow::Result<()> {
    let report = match GlContext::new(PlatformRequest::Auto) {
        Ok(mut gl) => {
            // The same selection a run makes, so doctor cannot disagree with it.
            let mut chosen = choose_exporter(BackendRequest::Auto, &mut gl);
            if let Ok((e, _)) = &mut chosen {
                // As a run does by default (`--progress-fences on`): a page made here as the
                // launcher makes one, so a machine where none can be made shows pipe fences.
                let page = ipc_protocol::progress::create("triptych-doctor-progress")
                    .and_then(|(rw, _ro)| ipc_protocol::progress::ProgressWriter::attach(rw));
                if let Ok(w) = page {
                    e.use_progress(w);
                }
            }
            let auto = match &chosen {
                Ok((e, reason)) => serde_json::json!({
                    "backend": e.kind().as_str(),
                    "fence": e.fence_kind().as_str(),
                    "fence_detail": e.fence_detail(),
                    "reason": reason,
                }),
                Err(e) => serde_json::json!({ "backend": null, "reason": format!("{e:#}") }),
            };
            // What a warm standby holds: this process with its GL context and exporter made,
            // nothing drawn yet (taken while both are alive, as they are in a standby).
            let memory = match triptych_sys::proc::memory_kib(std::process::id()) {
                Ok((rss, pss)) => serde_json::json!({ "rss_kib": rss, "pss_kib": pss }),
                Err(e) => serde_json::json!({
                    "rss_kib": null,
                    "pss_kib": null,
                    "error": e.to_string(),
                }),
            };
            drop(chosen);
            serde_json::json!({ "ok": true, "info": gl.info(), "auto": auto, "memory": memory })
        }
        Err(e) => serde_json::json!({ "ok": false, "error": e.to_string() }),
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{report}").context("writing the probe report")?;
    Ok(())
}

/// Fd numbers kept free above the last export window, for the process's other files.
const SPARE_FDS: u64 = 64;

/// Raises the soft fd limit so the export windows' numbers can be used: as many views' windows
/// as the hard limit allows, up to [`ExportWindow::MAX_VIEWS`]. Returns how many fit (at least
/// the first view's, or an error naming the limit).
fn raise_fd_limit() -> anyhow::Result<u32> {
    use triptych_sys::rlimit::{self, Resource};
    let last = ExportWindow::of_view(ExportWindow::MAX_VIEWS - 1).unwrap_or(ExportWindow::GPU);
    let want = last.end() as u64 + SPARE_FDS;
    let least = ExportWindow::GPU.end() as u64 + SPARE_FDS;
    let (soft, hard) = rlimit::get(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    if hard < least {
        bail!("RLIMIT_NOFILE hard limit {hard} is below the {least} the export window needs");
    }
    let soft = if soft < want {
        let raised = want.min(hard);
        rlimit::set(Resource::RLIMIT_NOFILE, raised, hard).context("raising RLIMIT_NOFILE")?;
        raised
    } else {
        soft
    };
    let views = ExportWindow::views_below(soft, SPARE_FDS);
    if views < ExportWindow::MAX_VIEWS {
        tracing::info!(
            views,
            hard,
            "RLIMIT_NOFILE leaves room for fewer views than the most a GPU process serves"
        );
    }
    Ok(views)
}

/// Picks the exporter for `request`, with the reason when it is not the fast path.
fn choose_exporter(
    request: BackendRequest,
    gl: &mut GlContext,
) -> anyhow::Result<(Box<dyn Exporter>, Option<String>)> {
    match request {
        BackendRequest::Shm => Ok((Box::new(ShmExporter::default()), None)),
        BackendRequest::DmaBuf => match export::dmabuf::DmabufExporter::new(gl) {
            Ok(e) => Ok((Box::new(e), None)),
            Err(e) => bail!("--buffers dmabuf cannot work here: {e}"),
        },
        BackendRequest::Auto => match export::dmabuf::DmabufExporter::new(gl) {
            Ok(e) => Ok((Box::new(e), None)),
            Err(e) => {
                let reason = format!("DMA-BUF export unavailable: {e}");
                tracing::warn!(%reason, "falling back to shm buffers");
                Ok((Box::new(ShmExporter::default()), Some(reason)))
            }
        },
    }
}

/// Runs the GPU process: start-up, then the frame loop until the launcher says `Shutdown`. The
/// product passes [`crate::hooks::NoHooks`].
///
/// Two halves, so that the launcher can keep a standby warm: `Prepare` (the GL context, the
/// exporter, the sandbox, then `Ready`) needs nothing of the run; `Start` (the renderer, the
/// size, the scene) may come much later, and everything it brings is handled confined.
pub fn run(mut hooks: Box<dyn Hooks>) -> anyhow::Result<()> {
    // Before anything else: the launcher's command stream, which comes over ipc-channel and is
    // met at a socket in the file system (`ipc_protocol::commands`), so before Landlock.
    let (commands, events) =
        bootstrap::join::<LauncherToGpu, GpuToLauncher>(ROLE).context("joining the launcher")?;
    let mut commands = bootstrap::take_stream(commands, &events, GpuToLauncher::CommandsAt)
        .context("taking the launcher's command stream")?;
    // Then the fixed fds, Landlock, the SIGSYS reporter.
    let claimed = crate::sandbox::startup().context("sandbox start-up")?;
    triptych_sys::prctl::set_name(ROLE).context("naming the process")?;
    // The mailbox first, where the launcher keeps one; then Prepare.
    let mut events = events;
    let mut progress = None;
    let prepare = loop {
        let (msg, mut fds) = commands
            .recv()
            .context("waiting for Prepare from the launcher")?;
        match msg {
            LauncherToGpu::Mailbox => {
                let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
                hooks.mailboxes(&borrowed);
                (events, commands) = ipc_protocol::channel::attach_mailboxes(
                    std::mem::take(&mut fds),
                    events,
                    commands,
                )
                .context("taking the mailboxes the launcher handed over")?;
            }
            LauncherToGpu::Progress => {
                let page = fds
                    .pop()
                    .context("the progress page came without its file")?;
                hooks.progress_page(page.as_fd());
                progress = Some(
                    ipc_protocol::progress::ProgressWriter::attach(page)
                        .context("mapping the progress page the launcher handed over")?,
                );
            }
            LauncherToGpu::Prepare(p) => break p,
            LauncherToGpu::Shutdown => return Ok(()),
            other => bail!("expected Prepare from the launcher, got {other:?}"),
        }
    };
    let failed = |e: anyhow::Error| {
        let _ = events.send(&GpuToLauncher::Failed(format!("{e:#}")));
        e
    };
    let (mut gl, mut exporter, reason, windows) = setup(prepare).map_err(failed)?;
    // Fences as points of the progress page, where the backend's fences are CPU fences.
    if let Some(page) = progress.filter(|_| hooks.progress_fences()) {
        if exporter.use_progress(page) {
            tracing::debug!("fences are points of the progress page");
        }
    }
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
        window: (
            ExportWindow::GPU.base,
            ExportWindow::of_view(windows - 1)
                .unwrap_or(ExportWindow::GPU)
                .end(),
        ),
        views: windows,
        landlock: claimed.landlock.clone(),
    };
    // The driver is up: the sandbox goes on before anything is reported, received or rendered.
    let hand_over = |listener: &OwnedFd| {
        events
            .send_with(&GpuToLauncher::SandboxListener, &[listener.as_fd()])
            .context("sending the listener")
    };
    let confined =
        crate::sandbox::confine(claimed, prepare, hooks.as_mut(), hand_over).map_err(failed)?;
    events
        .send(&GpuToLauncher::Ready(info.clone()))
        .context("reporting the sandbox on")?;
    hooks.prepared(&events);
    // Warm and confined: a standby waits here until it is promoted (or told to shut down),
    // answering the launcher's pings meanwhile.
    let (start, _) = loop {
        match commands
            .recv()
            .context("waiting for Start from the launcher")?
        {
            (LauncherToGpu::Ping(n), _) => events
                .send(&GpuToLauncher::Pong(n))
                .context("answering a ping")?,
            other => break other,
        }
    };
    let start = match start {
        LauncherToGpu::Start(s) => s,
        LauncherToGpu::Shutdown => return Ok(()),
        other => bail!("expected Start from the launcher, got {other:?}"),
    };
    if start.backend != prepare.backend || start.reports != prepare.reports {
        return Err(failed(anyhow::anyhow!(
            "Start asks for backend {:?} with {:?} reports, but this process was prepared for {:?} with {:?}",
            start.backend,
            start.reports,
            prepare.backend,
            prepare.reports
        )));
    }
    maybe_fire(
        &mut start.faults.clone(),
        FaultPoint::GpuStartup,
        start.view.first_frame,
        &events,
    );
    // A scene file's images follow `Start`: their bytes are read, then decoded (confined).
    let view = start.view.view;
    let received = match &start.view.scene {
        None => None,
        Some(s) => {
            let next = || match commands.recv().context("receiving a scene image")? {
                (LauncherToGpu::View { view: v, command }, fds) if v == view => Ok((command, fds)),
                (other, _) => {
                    bail!("expected the images of {view} from the launcher, got {other:?}")
                }
            };
            Some(crate::scene::receive(s, next).map_err(failed)?)
        }
    };
    let handover = crate::sandbox::attach(confined, &start, hooks.as_mut()).map_err(failed)?;
    let (w, h) = (start.view.width, start.view.height);
    let scene = received.map(|r| crate::scene::prepare(r, &mut gl, w, h));
    let scene = scene.transpose().map_err(failed)?;
    events
        .send(&GpuToLauncher::Started(info.clone()))
        .context("reporting the start")?;
    let commands = channel::forward("launcher-rx", commands)?;
    let drawing = Drawing {
        gl,
        exporter,
        scene,
    };
    let mut producer = Producer::new(start, drawing, events, handover, hooks, windows)?;
    producer.running(&info);
    let result = producer.run(&commands);
    producer.ship_trace();
    result
}

/// The GL context and the exporter `prepare` asks for, why the exporter is not the fast path
/// (when it is not), and how many views' export windows the fd limit leaves room for.
type Setup = (GlContext, Box<dyn Exporter>, Option<String>, u32);

fn setup(prepare: GpuPrepare) -> anyhow::Result<Setup> {
    let windows = raise_fd_limit()?;
    // Yama's scope is read while files can still be opened; the renderer is named at `Start`.
    crate::sandbox::read_yama_scope();
    let mut gl = GlContext::new(PlatformRequest::Auto).context("creating the GL context")?;
    let (mut exporter, reason) = choose_exporter(prepare.backend, &mut gl)?;
    warm_up(&mut gl, exporter.as_mut()).context("warming the driver up")?;
    Ok((gl, exporter, reason, windows))
}

/// Draws one small layer of the built-in scene through `exporter`, completes it and lets it go:
/// the driver's first-use costs (compiling its clear and read-back paths, the first buffer's
/// allocation and mapping) are paid at `Prepare`, so that a promoted standby's first frame costs
/// what any frame costs.
fn warm_up(gl: &mut GlContext, exporter: &mut dyn Exporter) -> anyhow::Result<()> {
    let (w, h) = (64, 64);
    let id = ipc_protocol::frame::BufferId {
        slot: u32::MAX,
        generation: 0,
    };
    let mut buf = exporter.allocate(gl, id, ExportWindow::GPU, w, h)?;
    let paint = crate::gl::Paint::Rects(triptych_scene::layer_content(0, 0, w, h));
    let all = ipc_protocol::damage::Region::full(w, h);
    let mut sub = exporter.render(gl, &mut buf, &paint, &all)?;
    exporter.complete(gl, &mut buf, &mut sub)?;
    Ok(())
}
