//! What the producer side exports for the cross-process measurements, made the way the GPU
//! process makes it.
//!
//! - Three layer buffers of a 1920x1080 frame, sized as the scene sizes them (layer 0 the whole
//!   frame, the panels a quarter each): sealed memfds (`DRM_FORMAT_ABGR8888`, linear, rows tightly
//!   packed), exactly what the shm backend allocates.
//! - One eventfd fence per layer, signalled once, so every poll finds it ready (level-triggered),
//!   and a progress page whose points stand for fences where the measurement asks for them
//!   ([`FenceMode::Progress`](super::control::FenceMode::Progress)), stored as each message is
//!   made.
//! - A batch of [`FD_BATCH`] more eventfds for the per-fd comparison of `pidfd_getfd` and
//!   `SCM_RIGHTS`.
//!
//! Every fd is moved into the export window ([`ExportWindow::GPU`]) and described by number and
//! identity, as the GPU process describes its exports, so the consumer's checks (window, pid,
//! identity, extent, seals) all run for real. [`Fixture::message`] builds the
//! `GpuToRenderer::Frame` of one frame; bumping the generation ([`Fixture::next_generation`])
//! makes every layer a new buffer id, which the consumer must import afresh.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::Context;
use ipc_protocol::frame::{BufferKind, FenceKind, DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_LINEAR};
use ipc_protocol::messages::{
    FrameMsg, LauncherToRenderer, LayerMsg, LayerPlacement, RendererToLauncher,
};
use ipc_protocol::progress::ProgressWriter;
use ipc_protocol::{BufferId, DrmFormat, Fence, FileId, Frame, Plane, RemoteFd};
use triptych_sys::eventfd::EventFence;
use triptych_sys::fd::ExportWindow;

/// Frame width of every frame-sized measurement.
pub const WIDTH: u32 = 1920;
/// Frame height of every frame-sized measurement.
pub const HEIGHT: u32 = 1080;
/// Bytes of one 1080p RGBA frame.
pub const FRAME_BYTES: usize = WIDTH as usize * HEIGHT as usize * 4;
/// Layers per handoff message.
pub const LAYERS: u32 = 3;
/// fds moved per round trip in the per-fd comparison.
pub const FD_BATCH: usize = 32;
/// The epoch every message carries.
pub const EPOCH: u64 = 1;

/// One layer's exported files.
#[derive(Debug)]
struct LayerFiles {
    buffer: OwnedFd,
    fence: OwnedFd,
    width: u32,
    height: u32,
}

/// The producer's exports.
#[derive(Debug)]
pub struct Fixture {
    layers: Vec<LayerFiles>,
    /// The progress page, as the launcher makes one for a GPU process: this process writes it.
    progress: ProgressWriter,
    /// The same page, read-only, for the peer.
    progress_ro: OwnedFd,
    batch: Vec<OwnedFd>,
    generation: u32,
    pid: u32,
}

fn remote(pid: u32, fd: &OwnedFd) -> anyhow::Result<RemoteFd> {
    let id = triptych_sys::fd::identity(fd.as_fd())?;
    Ok(RemoteFd {
        pid,
        fd: fd.as_raw_fd(),
        identity: FileId {
            dev: id.dev,
            ino: id.ino,
        },
    })
}

fn signalled_fence() -> anyhow::Result<OwnedFd> {
    let fence = EventFence::new().context("creating an eventfd fence")?;
    fence.signal().context("signalling an eventfd fence")?;
    ExportWindow::GPU
        .place(fence.as_fd())
        .context("moving a fence into the export window")
}

impl Fixture {
    /// Creates the buffers and fences, in the export window.
    pub fn new() -> anyhow::Result<Fixture> {
        let mut layers = Vec::new();
        for l in 0..LAYERS {
            let (width, height) = triptych_scene::layer_size(l, WIDTH, HEIGHT);
            let size = u64::from(width) * u64::from(height) * 4;
            let name =
                std::ffi::CString::new(format!("triptych-bench-{l}")).context("memfd name")?;
            let memfd = triptych_sys::memfd::create_sealed(&name, size)
                .with_context(|| format!("creating layer {l}'s {size}-byte buffer"))?;
            let buffer = ExportWindow::GPU
                .place(memfd.as_fd())
                .context("moving a buffer into the export window")?;
            layers.push(LayerFiles {
                buffer,
                fence: signalled_fence()?,
                width,
                height,
            });
        }
        let batch = (0..FD_BATCH)
            .map(|_| signalled_fence())
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (rw, progress_ro) =
            ipc_protocol::progress::create("triptych-bench-progress").context("progress page")?;
        let progress = ProgressWriter::attach(rw).context("mapping the progress page")?;
        Ok(Fixture {
            layers,
            progress,
            progress_ro,
            batch,
            generation: 1,
            pid: std::process::id(),
        })
    }

    /// Makes every layer's buffer id new, so the next message must be imported afresh.
    pub fn next_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1).max(1);
    }

    /// The progress page, read-only, as the peer is handed it.
    pub fn progress_page(&self) -> BorrowedFd<'_> {
        self.progress_ro.as_fd()
    }

    /// The description of frame `frame`, sent now, with the current generation; with
    /// `progress`, each layer's fence is the next point of the progress page, stored at once
    /// (the work is done, as the eventfds are signalled once).
    pub fn message(&mut self, frame: u64, progress: bool) -> anyhow::Result<LauncherToRenderer> {
        let page = self.progress.identity();
        let mut points = Vec::with_capacity(self.layers.len());
        for _ in &self.layers {
            points.push(if progress {
                self.progress.next_point()
            } else {
                0
            });
        }
        if let Some(last) = points.last().filter(|p| **p > 0) {
            self.progress.publish(*last);
        }
        let layers = self
            .layers
            .iter()
            .zip(0u32..)
            .zip(points)
            .map(|((files, l), point)| {
                let p = triptych_scene::placement(frame, l, LAYERS, WIDTH, HEIGHT);
                Ok(LayerMsg {
                    layer: l,
                    placement: LayerPlacement {
                        x: p.x,
                        y: p.y,
                        z: p.z,
                        opacity: p.opacity,
                    },
                    buffer: Frame {
                        id: BufferId {
                            slot: l,
                            generation: self.generation,
                        },
                        kind: BufferKind::Shm,
                        format: DrmFormat {
                            fourcc: DRM_FORMAT_ABGR8888,
                            modifier: DRM_FORMAT_MOD_LINEAR,
                        },
                        width: files.width,
                        height: files.height,
                        planes: vec![Plane {
                            fd: remote(self.pid, &files.buffer)?,
                            offset: 0,
                            stride: files.width * 4,
                        }],
                        fence: if point > 0 {
                            Fence {
                                kind: FenceKind::Progress,
                                fd: RemoteFd {
                                    pid: self.pid,
                                    fd: -1,
                                    identity: page,
                                },
                                point,
                            }
                        } else {
                            Fence {
                                kind: FenceKind::EventFd,
                                fd: remote(self.pid, &files.fence)?,
                                point: 0,
                            }
                        },
                    },
                    damage: Vec::new(),
                    damage_since: None,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // As the launcher hands a GPU process's frame on to the renderer.
        let now = triptych_trace::now_ns();
        Ok(LauncherToRenderer::Frame {
            msg: FrameMsg {
                epoch: EPOCH,
                generation: 0,
                frame,
                sent_ns: now,
                scene_version: 0,
                layers,
            },
            relayed_ns: now,
        })
    }

    /// The batch's fd numbers, as the consumer names them to `pidfd_getfd`.
    pub fn batch_numbers(&self) -> Vec<i32> {
        self.batch.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// The batch's fds, as `SCM_RIGHTS` attaches them.
    pub fn batch_fds(&self) -> Vec<BorrowedFd<'_>> {
        self.batch.iter().map(AsFd::as_fd).collect()
    }
}

/// Bytes the channel puts on the wire for `msg`: one datagram holding its postcard encoding,
/// nothing more ([`ipc_protocol::channel`]). This is the byte count the bare-socket baselines
/// send.
pub fn wire_bytes<T: serde::Serialize>(msg: &T) -> anyhow::Result<usize> {
    let body = postcard::to_stdvec(msg).context("encoding a message to count its bytes")?;
    Ok(body.len())
}

/// A representative release message, for its byte count.
pub fn release_message() -> RendererToLauncher {
    RendererToLauncher::Release {
        epoch: EPOCH,
        buffer: BufferId {
            slot: 0,
            generation: 1,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_passes_the_renderers_checks() {
        let mut fx = Fixture::new().expect("fixture");
        let LauncherToRenderer::Frame { msg, .. } = fx.message(5, false).expect("message") else {
            panic!("not a frame");
        };
        // With progress fences: points of the page, above each other, reached already.
        let LauncherToRenderer::Frame { msg: pointed, .. } = fx.message(6, true).expect("message")
        else {
            panic!("not a frame");
        };
        let page =
            ipc_protocol::progress::ProgressReader::attach(fx.progress_page()).expect("page");
        let points: Vec<u64> = pointed
            .layers
            .iter()
            .map(|l| l.buffer.fence.point)
            .collect();
        assert_eq!(points, [1, 2, 3]);
        assert!(points.iter().all(|p| page.signalled(*p)));
        for l in &pointed.layers {
            assert_eq!(l.buffer.fence.kind, FenceKind::Progress);
            assert_eq!(l.buffer.fence.fd.identity, page.identity());
        }
        assert_eq!(msg.layers.len(), LAYERS as usize);
        let w = ExportWindow::GPU;
        for l in &msg.layers {
            let ends = l.buffer.validate_shape().expect("shape");
            l.buffer
                .validate_remote(std::process::id(), w.base, w.end())
                .expect("remote");
            assert_eq!(
                ends[0],
                u64::from(l.buffer.width) * u64::from(l.buffer.height) * 4
            );
        }
        assert_eq!(
            (msg.layers[0].buffer.width, msg.layers[0].buffer.height),
            (WIDTH, HEIGHT)
        );
        assert_eq!(fx.batch_numbers().len(), FD_BATCH);
        assert!(fx.batch_numbers().iter().all(|&n| w.contains(n)));
        let bytes = wire_bytes(&LauncherToRenderer::Frame { msg, relayed_ns: 1 }).expect("bytes");
        assert!(bytes > 100, "{bytes}");
    }
}
