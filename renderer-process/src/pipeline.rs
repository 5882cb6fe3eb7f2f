//! The renderer's frame loop: receive, validate, import, wait, composite, present, release.
//!
//! Two forwarding threads turn the ipc-channel receivers (commands from the launcher, frames from
//! the GPU process) into crossbeam channels so the loop can wait on both at once. Everything else
//! happens on the main thread, in this order for each frame:
//!
//! 1. drop it if it comes from another GPU epoch than the current one;
//! 2. validate every layer's description (shape, then fds confined to the GPU's export window);
//! 3. import each buffer (cached per id) and fetch its fence, checking identities;
//! 4. wait on each fence with a deadline; a fence that times out leaves the layer's previous
//!    buffer on screen and the new one is released unused;
//! 5. composite the layers' current buffers into a free output slot and hand it to the launcher;
//! 6. release every buffer that is no longer on screen.
//!
//! A rejected description drops the frame (the previous composite stays on screen), releases
//! its buffers and tells the launcher why; it never stops the loop.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::{select, Receiver};
use ipc_channel::ipc::{IpcReceiver, IpcSender};
use ipc_protocol::frame::{BufferKind, FenceKind, MAX_PLANES};
use ipc_protocol::messages::{
    FrameMsg, GpuToRenderer, LauncherToRenderer, Presented, RendererStart, RendererStats,
    RendererToGpu, RendererToLauncher,
};
use ipc_protocol::{BufferId, FileId, RemoteFd};
use triptych_sys::poll::{wait_readable, WaitOutcome};

use crate::composite::{composite, Layer};
use crate::fetch::fetch;
use crate::import::ImportCache;
use crate::output::{Output, SLOTS};

/// The most layers a frame may have.
const MAX_LAYERS: usize = 16;

/// What is on screen for one layer.
#[derive(Clone, Copy, Debug)]
struct Shown {
    id: BufferId,
    placement: ipc_protocol::messages::LayerPlacement,
}

/// The renderer's state.
pub struct Pipeline {
    epoch: u64,
    gpu_pid: u32,
    window: (i32, i32),
    pidfd: OwnedFd,
    width: u32,
    height: u32,
    fence_timeout: Duration,
    frames: Option<IpcReceiver<GpuToRenderer>>,
    releases: IpcSender<RendererToGpu>,
    events: IpcSender<RendererToLauncher>,
    cache: ImportCache,
    output: Output,
    shown: BTreeMap<u32, Shown>,
    stats: RendererStats,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("epoch", &self.epoch)
            .field("gpu_pid", &self.gpu_pid)
            .finish()
    }
}

/// Why a frame was not composited.
#[derive(Debug, thiserror::Error)]
enum FrameError {
    #[error("frame has {0} layers, more than {MAX_LAYERS}")]
    TooManyLayers(usize),
    #[error("layers: layer {0} appears twice")]
    DuplicateLayer(u32),
    #[error("layers[{layer}].buffer: {source}")]
    Desc {
        layer: u32,
        source: ipc_protocol::DescError,
    },
    #[error("layers[{layer}]: {source}")]
    Import {
        layer: u32,
        source: crate::import::ImportError,
    },
    #[error("layers[{layer}].fence: {source}")]
    Fence { layer: u32, source: anyhow::Error },
}

fn forward<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static>(
    name: &str,
    rx: IpcReceiver<T>,
) -> anyhow::Result<Receiver<T>> {
    let (tx, out) = crossbeam_channel::bounded(64);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            // Ends when the peer disconnects (or sends garbage), or when the loop is gone.
            while let Ok(m) = rx.recv() {
                if tx.send(m).is_err() {
                    break;
                }
            }
        })
        .with_context(|| format!("spawning the {name} thread"))?;
    Ok(out)
}

impl Pipeline {
    /// Sets the pipeline up: pidfd of the GPU process, output buffer, and tells the launcher
    /// where the output is.
    pub fn new(
        start: RendererStart,
        events: IpcSender<RendererToLauncher>,
    ) -> anyhow::Result<Self> {
        let pidfd = triptych_sys::pidfd::pidfd_open(start.gpu_pid as i32)
            .with_context(|| format!("opening a pidfd of the GPU process {}", start.gpu_pid))?;
        let output =
            Output::new(start.width, start.height).context("creating the output buffer")?;
        let id = triptych_sys::fd::identity(output.fd.as_fd())?;
        events
            .send(RendererToLauncher::Output {
                fd: RemoteFd {
                    pid: std::process::id(),
                    fd: std::os::fd::AsRawFd::as_raw_fd(&output.fd),
                    identity: FileId {
                        dev: id.dev,
                        ino: id.ino,
                    },
                },
                slots: SLOTS,
                slot_bytes: output.slot_bytes as u64,
            })
            .context("telling the launcher where the output is")?;
        Ok(Self {
            epoch: start.epoch,
            gpu_pid: start.gpu_pid,
            window: start.gpu_window,
            pidfd,
            width: start.width,
            height: start.height,
            fence_timeout: Duration::from_millis(u64::from(start.fence_timeout_ms)),
            frames: Some(start.frames),
            releases: start.releases,
            events,
            cache: ImportCache::default(),
            output,
            shown: BTreeMap::new(),
            stats: RendererStats::default(),
        })
    }

    /// Runs until the launcher says `Shutdown` or disappears.
    pub fn run(&mut self, commands: IpcReceiver<LauncherToRenderer>) -> anyhow::Result<()> {
        let commands = forward("launcher-rx", commands)?;
        let frames_rx = self.frames.take().context("frame channel already taken")?;
        let mut frames = forward("gpu-rx", frames_rx)?;
        loop {
            select! {
                recv(commands) -> cmd => match cmd {
                    Ok(c) => if !self.command(c)? { return Ok(()) },
                    Err(_) => anyhow::bail!("the launcher disconnected"),
                },
                recv(frames) -> msg => match msg {
                    Ok(GpuToRenderer::Frame(f)) => self.frame(f, &commands)?,
                    Err(_) => {
                        tracing::warn!(gpu_pid = self.gpu_pid, "the GPU process disconnected; keeping the last frame");
                        frames = crossbeam_channel::never();
                    }
                },
            }
        }
    }

    /// Handles a command; false means stop.
    fn command(&mut self, c: LauncherToRenderer) -> anyhow::Result<bool> {
        match c {
            LauncherToRenderer::SlotFree(s) => {
                if !self.output.release(s) {
                    tracing::warn!(slot = s, "launcher freed a slot it did not hold");
                }
                Ok(true)
            }
            LauncherToRenderer::Shutdown => {
                self.stats.imports = self.cache.counters.imports;
                self.stats.import_hits = self.cache.counters.hits;
                self.stats.buffers_via_pidfd = self.cache.counters.imports;
                self.events
                    .send(RendererToLauncher::Stats(self.stats))
                    .context("sending final counters")?;
                Ok(false)
            }
            LauncherToRenderer::Start(_) => {
                tracing::warn!("a second Start was ignored");
                Ok(true)
            }
        }
    }

    fn frame(
        &mut self,
        msg: FrameMsg,
        commands: &Receiver<LauncherToRenderer>,
    ) -> anyhow::Result<()> {
        if msg.epoch != self.epoch {
            tracing::debug!(
                epoch = msg.epoch,
                current = self.epoch,
                "dropped a frame of another epoch"
            );
            return Ok(());
        }
        self.cache.set_epoch(self.epoch);
        match self.prepare(&msg) {
            Ok(ready) => self.present(&msg, ready, commands),
            Err(e) => {
                self.stats.rejected += 1;
                tracing::warn!(frame = msg.frame, error = %e, "rejected a frame description");
                // None of this frame's buffers will be shown: give them all back.
                let shown: Vec<BufferId> = self.shown.values().map(|s| s.id).collect();
                for l in &msg.layers {
                    if !shown.contains(&l.buffer.id) {
                        self.release(l.buffer.id);
                    }
                }
                self.events
                    .send(RendererToLauncher::Rejected {
                        frame: msg.frame,
                        reason: e.to_string(),
                    })
                    .context("reporting a rejected frame")
            }
        }
    }

    /// Steps 2 to 4: returns the layers whose new buffers are ready, with their placements.
    fn prepare(&mut self, msg: &FrameMsg) -> Result<Vec<(u32, Shown)>, FrameError> {
        if msg.layers.len() > MAX_LAYERS {
            return Err(FrameError::TooManyLayers(msg.layers.len()));
        }
        let mut ends = Vec::with_capacity(msg.layers.len());
        for (i, l) in msg.layers.iter().enumerate() {
            if msg.layers[..i].iter().any(|o| o.layer == l.layer) {
                return Err(FrameError::DuplicateLayer(l.layer));
            }
            let layer = l.layer;
            let e = l
                .buffer
                .validate_shape()
                .map_err(|source| FrameError::Desc { layer, source })?;
            debug_assert!(e.len() <= MAX_PLANES);
            l.buffer
                .validate_remote(self.gpu_pid, self.window.0, self.window.1)
                .map_err(|source| FrameError::Desc { layer, source })?;
            ends.push(e[0]);
        }
        let mut fences = Vec::with_capacity(msg.layers.len());
        for (l, end) in msg.layers.iter().zip(&ends) {
            let layer = l.layer;
            self.cache
                .get_or_import(&self.pidfd, &l.buffer, *end)
                .map_err(|source| FrameError::Import { layer, source })?;
            let fence =
                fetch(&self.pidfd, "fence", &l.buffer.fence.fd).map_err(|e| FrameError::Fence {
                    layer,
                    source: e.into(),
                })?;
            self.stats.fences_via_pidfd += 1;
            match l.buffer.kind {
                BufferKind::DmaBuf => self.stats.dmabuf_layers += 1,
                BufferKind::Shm => self.stats.shm_layers += 1,
            }
            fences.push((l, fence));
        }
        let mut ready = Vec::with_capacity(fences.len());
        for (l, fence) in fences {
            let layer = l.layer;
            let first =
                wait_readable(fence.as_fd(), Duration::ZERO).map_err(|e| FrameError::Fence {
                    layer,
                    source: e.into(),
                })?;
            let outcome = if first == WaitOutcome::Ready {
                WaitOutcome::Ready
            } else {
                self.stats.fences_pending += 1;
                wait_readable(fence.as_fd(), self.fence_timeout).map_err(|e| FrameError::Fence {
                    layer,
                    source: e.into(),
                })?
            };
            debug_assert!(matches!(
                l.buffer.fence.kind,
                FenceKind::EventFd | FenceKind::SyncFile
            ));
            match outcome {
                WaitOutcome::Ready => {
                    ready.push((
                        layer,
                        Shown {
                            id: l.buffer.id,
                            placement: l.placement,
                        },
                    ));
                }
                WaitOutcome::TimedOut => {
                    self.stats.fence_timeouts += 1;
                    tracing::warn!(
                        frame = msg.frame,
                        layer,
                        timeout_ms = self.fence_timeout.as_millis() as u64,
                        "fence did not signal in time; the layer keeps its previous buffer"
                    );
                    self.release(l.buffer.id);
                }
            }
            // The fence fd closes here: a fence is per submission.
        }
        Ok(ready)
    }

    /// Steps 5 and 6.
    fn present(
        &mut self,
        msg: &FrameMsg,
        ready: Vec<(u32, Shown)>,
        commands: &Receiver<LauncherToRenderer>,
    ) -> anyhow::Result<()> {
        let ready_ns = triptych_trace::now_ns();
        let mut replaced = Vec::new();
        for (layer, s) in ready {
            if let Some(old) = self.shown.insert(layer, s) {
                if old.id != s.id {
                    replaced.push(old.id);
                }
            }
        }
        let slot = loop {
            if let Some(s) = self.output.take_free() {
                break s;
            }
            // Every slot is with the launcher: wait for one back (commands only).
            match commands.recv() {
                Ok(c) => {
                    if !self.command(c)? {
                        anyhow::bail!("shutdown while waiting for an output slot");
                    }
                }
                Err(_) => anyhow::bail!("the launcher disconnected"),
            }
        };
        {
            let mut layers: Vec<Layer<'_>> = Vec::with_capacity(self.shown.len());
            for s in self.shown.values() {
                let Some(imp) = self.cache.get(s.id) else {
                    continue;
                };
                layers.push(Layer {
                    pixels: imp.plane_bytes(),
                    stride: imp.shape.stride as usize,
                    width: imp.shape.width,
                    height: imp.shape.height,
                    fourcc: imp.shape.format.fourcc,
                    x: s.placement.x,
                    y: s.placement.y,
                    z: s.placement.z,
                    opacity: s.placement.opacity,
                });
            }
            let (w, h) = (self.width, self.height);
            let out = self.output.slot_mut(slot);
            composite(out, w, h, &mut layers);
        }
        let composited_ns = triptych_trace::now_ns();
        self.stats.frames += 1;
        self.events
            .send(RendererToLauncher::Presented(Presented {
                frame: msg.frame,
                epoch: msg.epoch,
                slot,
                sent_ns: msg.sent_ns,
                ready_ns,
                composited_ns,
            }))
            .context("handing a frame to the launcher")?;
        for id in replaced {
            self.release(id);
        }
        Ok(())
    }

    fn release(&mut self, buffer: BufferId) {
        if let Err(e) = self.releases.send(RendererToGpu::Release {
            epoch: self.epoch,
            buffer,
        }) {
            tracing::warn!(slot = buffer.slot, error = %e, "could not release a buffer to the GPU process");
        }
    }
}
