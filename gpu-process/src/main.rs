//! triptych's GPU process.
//!
//! Sequence: join the launcher's channels, receive `Start`, create the GL context and the
//! exporter the launcher asked for (failing at once, with the missing piece named, when it
//! cannot work), report what runs, then for each frame: take a free pool buffer per layer
//! (waiting for releases when there is none), draw the layer, send the frame's descriptions to
//! the renderer, and complete each layer's work, which signals its fence. After the last frame it
//! keeps serving releases until the launcher says `Shutdown`.

use std::time::Duration;

use anyhow::{bail, Context};
use crossbeam_channel::{select, Receiver};
use gpu_process::export::{self, shm::ShmExporter, Exporter};
use gpu_process::gl::{GlContext, PlatformRequest};
use gpu_process::pool::Pool;
use ipc_channel::ipc::{IpcReceiver, IpcSender};
use ipc_protocol::bootstrap::{self, IPC_FLAG};
use ipc_protocol::frame::BufferKind;
use ipc_protocol::messages::{
    BackendRequest, FrameMsg, GpuInfo, GpuStart, GpuToLauncher, GpuToRenderer, LauncherToGpu,
    LayerMsg, LayerPlacement, RendererToGpu,
};
use triptych_sys::fd::ExportWindow;

/// The role name: process name, policy name, span prefix, crash records.
const ROLE: &str = "gpu";

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRIPTYCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let result = if args.iter().any(|a| a == "--probe") {
        probe()
    } else {
        run(&args)
    };
    if let Err(e) = result {
        tracing::error!(role = ROLE, error = format!("{e:#}"), "GPU process failed");
        std::process::exit(1);
    }
}

/// `--probe`: print the EGL facts as JSON on stdout (used by `triptych doctor`).
fn probe() -> anyhow::Result<()> {
    let report = match GlContext::new(PlatformRequest::Auto) {
        Ok(mut gl) => {
            // The same selection a run makes, so doctor cannot disagree with it.
            let auto = match choose_exporter(BackendRequest::Auto, &mut gl) {
                Ok((e, reason)) => serde_json::json!({
                    "backend": e.kind().as_str(),
                    "fence": format!("{:?}", e.fence_kind()),
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

fn forward<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static>(
    name: &str,
    rx: IpcReceiver<T>,
) -> anyhow::Result<Receiver<T>> {
    let (tx, out) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            while let Ok(m) = rx.recv() {
                if tx.send(m).is_err() {
                    break;
                }
            }
        })
        .with_context(|| format!("spawning the {name} thread"))?;
    Ok(out)
}

/// Raises the soft fd limit so the export window's numbers can be used.
fn raise_fd_limit() -> anyhow::Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let need = ExportWindow::GPU.end() as u64 + 64;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    if soft < need {
        if hard < need {
            bail!("RLIMIT_NOFILE hard limit {hard} is below the {need} the export window needs");
        }
        setrlimit(Resource::RLIMIT_NOFILE, need, hard).context("raising RLIMIT_NOFILE")?;
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

fn run(args: &[String]) -> anyhow::Result<()> {
    triptych_sys::prctl::set_name(ROLE).context("naming the process")?;
    let name = args
        .iter()
        .position(|a| a == IPC_FLAG)
        .and_then(|i| args.get(i + 1))
        .with_context(|| {
            format!("missing {IPC_FLAG} NAME: the GPU process is started by the launcher")
        })?;
    let (commands, events) = bootstrap::join::<LauncherToGpu, GpuToLauncher>(name, ROLE)
        .context("joining the launcher")?;
    let start = match commands
        .recv()
        .context("waiting for Start from the launcher")?
    {
        LauncherToGpu::Start(s) => s,
        LauncherToGpu::Shutdown => return Ok(()),
    };
    match setup(&start) {
        Ok((gl, exporter, reason)) => {
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
            };
            events
                .send(GpuToLauncher::Started(info))
                .context("reporting the start")?;
            let commands = forward("launcher-rx", commands)?;
            let mut producer = Producer::new(start, gl, exporter, events)?;
            producer.run(&commands)
        }
        Err(e) => {
            let _ = events.send(GpuToLauncher::Failed(format!("{e:#}")));
            Err(e)
        }
    }
}

fn setup(start: &GpuStart) -> anyhow::Result<(GlContext, Box<dyn Exporter>, Option<String>)> {
    raise_fd_limit()?;
    if triptych_sys::proc::yama_ptrace_scope().is_some_and(|s| s >= 1) {
        triptych_sys::prctl::set_ptracer(start.renderer_pid).with_context(|| {
            format!(
                "naming the renderer {} as ptracer for Yama",
                start.renderer_pid
            )
        })?;
    }
    let mut gl = GlContext::new(PlatformRequest::Auto).context("creating the GL context")?;
    let (exporter, reason) = choose_exporter(start.backend, &mut gl)?;
    Ok((gl, exporter, reason))
}

struct Producer {
    start: GpuStart,
    gl: GlContext,
    exporter: Box<dyn Exporter>,
    events: IpcSender<GpuToLauncher>,
    releases: Receiver<RendererToGpu>,
    pool: Pool,
}

impl Producer {
    fn new(
        mut start: GpuStart,
        gl: GlContext,
        exporter: Box<dyn Exporter>,
        events: IpcSender<GpuToLauncher>,
    ) -> anyhow::Result<Self> {
        // The release receiver moves to its thread; leave a closed placeholder behind.
        let (_, placeholder) =
            ipc_channel::ipc::channel::<RendererToGpu>().context("creating a channel")?;
        let releases = forward(
            "releases-rx",
            std::mem::replace(&mut start.releases, placeholder),
        )?;
        let pool = Pool::new(start.layers, start.pool_per_layer);
        Ok(Self {
            start,
            gl,
            exporter,
            events,
            releases,
            pool,
        })
    }

    fn release(&mut self, m: RendererToGpu) {
        let RendererToGpu::Release { epoch, buffer } = m;
        if epoch != self.start.epoch {
            tracing::warn!(epoch, "release for another epoch ignored");
            return;
        }
        if let Err(e) = self.pool.release(buffer) {
            tracing::warn!(error = %e, "the renderer released a buffer it did not hold");
        }
    }

    /// Waits until `layer` has a free slot; false if the launcher asked to shut down.
    fn wait_free(
        &mut self,
        layer: u32,
        commands: &Receiver<LauncherToGpu>,
    ) -> anyhow::Result<Option<u32>> {
        loop {
            if let Some(s) = self.pool.free_slot(layer) {
                return Ok(Some(s));
            }
            select! {
                recv(self.releases) -> m => match m {
                    Ok(m) => self.release(m),
                    Err(_) => bail!("the renderer disconnected while every buffer of layer {layer} was in flight"),
                },
                recv(commands) -> c => match c {
                    Ok(LauncherToGpu::Shutdown) | Err(_) => return Ok(None),
                    Ok(LauncherToGpu::Start(_)) => tracing::warn!("a second Start was ignored"),
                },
            }
        }
    }

    fn run(&mut self, commands: &Receiver<LauncherToGpu>) -> anyhow::Result<()> {
        let (w, h, n) = (self.start.width, self.start.height, self.start.layers);
        for frame in 0..self.start.frames {
            while let Ok(m) = self.releases.try_recv() {
                self.release(m);
            }
            if let Ok(c) = commands.try_recv() {
                if matches!(c, LauncherToGpu::Shutdown) {
                    return Ok(());
                }
            }
            let mut layers = Vec::with_capacity(n as usize);
            let mut used = Vec::with_capacity(n as usize);
            for layer in 0..n {
                let Some(slot) = self.wait_free(layer, commands)? else {
                    return Ok(());
                };
                let id = self.pool.id(slot);
                let (lw, lh) = triptych_scene::layer_size(layer, w, h);
                let s = self.pool.slot_mut(slot).context("pool slot vanished")?;
                if s.buffer.is_none() {
                    s.buffer = Some(
                        self.exporter
                            .allocate(&mut self.gl, id, lw, lh)
                            .context("allocating a buffer")?,
                    );
                }
                let buf = s.buffer.as_mut().context("buffer just allocated")?;
                let content = triptych_scene::layer_content(frame, layer, w, h);
                let sub = self
                    .exporter
                    .render(&mut self.gl, buf, &content)
                    .context("rendering a layer")?;
                let desc = export::describe(
                    buf,
                    self.exporter.kind(),
                    self.exporter.fence_kind(),
                    &sub.fence,
                )?;
                s.in_flight = Some(sub);
                let p = triptych_scene::placement(frame, layer, n, w, h);
                layers.push(LayerMsg {
                    layer,
                    placement: LayerPlacement {
                        x: p.x,
                        y: p.y,
                        z: p.z,
                        opacity: p.opacity,
                    },
                    buffer: desc,
                });
                used.push(slot);
            }
            let msg = FrameMsg {
                epoch: self.start.epoch,
                frame,
                sent_ns: triptych_trace::now_ns(),
                layers,
            };
            self.start
                .to_renderer
                .send(GpuToRenderer::Frame(msg))
                .context("sending a frame to the renderer")?;
            for slot in used {
                let s = self.pool.slot_mut(slot).context("pool slot vanished")?;
                if let (Some(buf), Some(sub)) = (s.buffer.as_mut(), s.in_flight.as_mut()) {
                    self.exporter
                        .complete(&mut self.gl, buf, sub)
                        .context("completing a layer")?;
                }
            }
        }
        let _ = self.events.send(GpuToLauncher::Finished {
            frames: self.start.frames,
        });
        debug_assert!(
            self.exporter.kind() == BufferKind::Shm || self.exporter.kind() == BufferKind::DmaBuf
        );
        // Keep the buffers alive for the renderer until the launcher ends the run.
        loop {
            select! {
                recv(self.releases) -> m => match m {
                    Ok(m) => self.release(m),
                    Err(_) => self.releases = crossbeam_channel::never(),
                },
                recv(commands) -> c => match c {
                    Ok(LauncherToGpu::Shutdown) | Err(_) => return Ok(()),
                    Ok(LauncherToGpu::Start(_)) => tracing::warn!("a second Start was ignored"),
                },
                default(Duration::from_secs(3600)) => {}
            }
        }
    }
}
