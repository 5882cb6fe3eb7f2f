//! The DMA-BUF backend: each pool buffer is a GL texture exported as a DMA-BUF, so the renderer
//! reads the very memory GL drew into. Zero copies.
//!
//! Allocation exports the texture once (`EGL_MESA_image_dma_buf_export`, see
//! [`GlContext::export_dmabuf`]); the fds stay valid while later frames are drawn into the same
//! texture. Only linear layouts are accepted, because the renderer reads on the CPU.
//!
//! Each frame's fence is a sync_file, made the best way the machine offers:
//!
//! 1. **native**: `EGL_ANDROID_native_fence_sync`, the driver's own fence for the draw, flushed
//!    and duplicated out with `eglDupNativeFenceFDANDROID`;
//! 2. **vgem**: on the vgem test device there is no GPU to fence, so this process makes the
//!    fence honest itself: before drawing it attaches a vgem write fence
//!    (`DRM_IOCTL_VGEM_FENCE_ATTACH`) and snapshots it as a sync_file
//!    (`DMA_BUF_IOCTL_EXPORT_SYNC_FILE`); only after `glFinish` returned does it signal the vgem
//!    fence (`DRM_IOCTL_VGEM_FENCE_SIGNAL`), so the sync_file really is unsignalled while
//!    rendering runs. The fence rides on a small *carrier* dumb buffer that belongs to the pool
//!    buffer, not on the pool buffer itself: Mesa's `kms_swrast` brackets its own CPU writes to an
//!    imported DMA-BUF with `DMA_BUF_IOCTL_SYNC`, which waits for every fence on that buffer, so a
//!    fence on the rendered buffer that is signalled only after rendering would stall rendering
//!    until vgem's 10-second fence timeout;
//! 3. **implicit**: after `glFlush`, the buffer's implicit fences snapshotted as a sync_file,
//!    for drivers that attach their work to the buffer's reservation object.
//!
//! Where the fences lie on a buffer (the vgem carrier, or the buffer's own implicit fences) and
//! the run wants fences without a file per frame ([`Exporter::use_progress`]), no sync_file is
//! made here at all: the frame names the buffer or its carrier ([`FenceKind::Implicit`]), which
//! stays in the export window for the buffer's life. The renderer takes it once with the buffer
//! and snapshots its fences itself for each frame, so no fd travels per frame. A native fence
//! stays a sync_file per frame: a driver need not attach its work to the buffer.
//!
//! See <https://docs.kernel.org/driver-api/dma-buf.html> and `include/uapi/linux/dma-buf.h`.

use std::os::fd::{AsFd, OwnedFd};

use ipc_protocol::damage::Region;
use ipc_protocol::frame::{BufferKind, FenceKind};
use ipc_protocol::{BufferId, DrmFormat, Plane};
use triptych_sys::dma_buf::{export_sync_file, SyncAccess};
use triptych_sys::drm::{DrmDevice, FenceId, GemHandle};
use triptych_sys::fd::ExportWindow;
use triptych_sys::mapping::{Access, Mapping};

use super::{
    place, remote, Backing, Buffer, ExportError, ExportedFence, Exporter, Signaller, Submission,
};
use crate::gl::{GlContext, Paint};

/// How the backend fences each frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FenceSource {
    /// `EGL_ANDROID_native_fence_sync`.
    Native,
    /// A vgem fence attached before drawing, signalled after `glFinish`.
    Vgem,
    /// The buffer's implicit fences after `glFlush`.
    Implicit,
}

impl FenceSource {
    /// A name for logs, summaries and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            FenceSource::Native => "sync_file (EGL_ANDROID_native_fence_sync)",
            FenceSource::Vgem => "sync_file (vgem fence, signalled after glFinish)",
            FenceSource::Implicit => {
                "sync_file (implicit fences via DMA_BUF_IOCTL_EXPORT_SYNC_FILE)"
            }
        }
    }
}

/// Per-buffer state of the DMA-BUF backend.
#[derive(Debug)]
pub struct DmabufBacking {
    /// The fence carrier on the vgem device (a 1x1 dumb buffer and its DMA-BUF), when fences
    /// come from vgem; its fd lies in the export window where fences are implicit.
    carrier: Option<(GemHandle, OwnedFd)>,
}

impl DmabufBacking {
    /// The fence carrier's DMA-BUF, if the buffer has one.
    pub fn carrier_file(&self) -> Option<&OwnedFd> {
        self.carrier.as_ref().map(|(_, fd)| fd)
    }
}

/// A vgem fence to signal once GL has finished.
#[derive(Debug)]
pub struct VgemFence {
    id: FenceId,
}

/// The DMA-BUF backend.
#[derive(Debug)]
pub struct DmabufExporter {
    fences: FenceSource,
    vgem: Option<DrmDevice>,
    /// Frames name the buffer (or its carrier) whose implicit fences are theirs, instead of a
    /// sync_file each ([`FenceKind::Implicit`]).
    implicit: bool,
}

/// A 1x1 dumb buffer on `dev` and its DMA-BUF, to carry vgem fences.
fn carrier(dev: &DrmDevice) -> Result<(GemHandle, OwnedFd), triptych_sys::drm::DrmError> {
    let dumb = dev.create_dumb(1, 1, 32)?;
    let fd = dev.prime_export(dumb.handle, triptych_sys::drm::PrimeAccess::ReadWrite)?;
    Ok((dumb.handle, fd))
}

/// Finds the vgem device's primary node, if any.
fn open_vgem() -> Option<DrmDevice> {
    triptych_sys::proc::dri_nodes()
        .into_iter()
        .filter(|p| p.contains("/card"))
        .filter_map(|p| DrmDevice::open(std::path::Path::new(&p)).ok())
        .find(|d| d.driver_name().is_ok_and(|n| n == "vgem"))
}

impl DmabufExporter {
    /// Checks that DMA-BUF export works on `gl`'s display: the extension is offered, a test
    /// texture exports linear, this process can map it, and some fence mechanism exists.
    /// The error names the missing piece.
    pub fn new(gl: &mut GlContext) -> Result<Self, ExportError> {
        let info = gl.info();
        if !info.has_display_extension("EGL_MESA_image_dma_buf_export") {
            return Err(ExportError::Unavailable(format!(
                "the EGL display ({}, {}) does not offer EGL_MESA_image_dma_buf_export{}",
                info.platform,
                info.gl_renderer,
                if triptych_sys::proc::dri_nodes().is_empty() {
                    "; there is no /dev/dri device"
                } else {
                    ""
                }
            )));
        }
        let native = info.android_native_fence_sync;
        let probe = gl.create_exportable_target(4, 4)?;
        let export = gl.export_dmabuf(&probe)?;
        let plane = export
            .planes
            .first()
            .ok_or_else(|| ExportError::Unavailable("export gave no planes".into()))?;
        let size = triptych_sys::fd::seek_size(plane.fd.as_fd())?;
        Mapping::new(plane.fd.as_fd(), size as usize, Access::Read).map_err(|e| {
            ExportError::Unavailable(format!(
                "an exported DMA-BUF cannot be mapped for CPU reads: {e}"
            ))
        })?;
        let vgem = open_vgem();
        let fences = if native {
            FenceSource::Native
        } else if let Some(v) = &vgem {
            carrier(v)
                .map_err(|e| ExportError::Unavailable(format!("no vgem fence carrier: {e}")))?;
            FenceSource::Vgem
        } else {
            export_sync_file(plane.fd.as_fd(), SyncAccess::Read).map_err(|e| {
                ExportError::Unavailable(format!(
                    "no fence mechanism: EGL_ANDROID_native_fence_sync is not offered, no vgem device, and {e}"
                ))
            })?;
            FenceSource::Implicit
        };
        tracing::info!(fences = fences.as_str(), "DMA-BUF export available");
        Ok(Self {
            fences,
            vgem: if fences == FenceSource::Vgem {
                vgem
            } else {
                None
            },
            implicit: false,
        })
    }

    /// How frames are fenced.
    pub fn fence_source(&self) -> FenceSource {
        self.fences
    }

    /// The fence of a submission whose fences lie on `holder` (the buffer, or its carrier):
    /// `holder` itself where fences are implicit, otherwise a snapshot of them as a sync_file
    /// placed in `window`.
    fn fence_on(
        &self,
        holder: &OwnedFd,
        window: ExportWindow,
    ) -> Result<ExportedFence, ExportError> {
        if self.implicit {
            return Ok(ExportedFence::InBuffer(remote(holder)?));
        }
        let sync = export_sync_file(holder.as_fd(), SyncAccess::Read)
            .map_err(|e| ExportError::Kernel(format!("exporting the buffer's sync_file: {e}")))?;
        Ok(ExportedFence::File(place(sync, window)?))
    }
}

impl Exporter for DmabufExporter {
    fn kind(&self) -> BufferKind {
        BufferKind::DmaBuf
    }

    fn fence_kind(&self) -> FenceKind {
        if self.implicit {
            FenceKind::Implicit
        } else {
            FenceKind::SyncFile
        }
    }

    fn fence_detail(&self) -> &'static str {
        match (self.implicit, self.fences) {
            (true, FenceSource::Vgem) => {
                "implicit fences of the buffer's carrier (vgem fence, signalled after glFinish)"
            }
            (true, _) => "implicit fences of the buffer itself",
            (false, s) => s.as_str(),
        }
    }

    fn use_progress(&mut self, page: ipc_protocol::progress::ProgressWriter) -> bool {
        // The page is for CPU fences; a DMA-BUF's fences lie on the buffer already.
        drop(page);
        self.implicit = matches!(self.fences, FenceSource::Vgem | FenceSource::Implicit);
        self.implicit
    }

    fn allocate(
        &mut self,
        gl: &mut GlContext,
        id: BufferId,
        window: ExportWindow,
        width: u32,
        height: u32,
    ) -> Result<Buffer, ExportError> {
        // Storage allocated as a linear DMA-BUF and imported, so the export always shares it.
        let target = gl.create_exportable_target(width, height)?;
        let export = gl.export_dmabuf(&target)?;
        let mut planes = Vec::with_capacity(export.planes.len());
        for p in export.planes {
            planes.push(Plane {
                fd: place(p.fd, window)?,
                offset: p.offset,
                stride: p.stride,
            });
        }
        let carrier = match &self.vgem {
            Some(v) => {
                let (handle, fd) = carrier(v).map_err(|e| {
                    ExportError::Kernel(format!("fence carrier for buffer {}: {e}", id.slot))
                })?;
                // Named by every frame of this buffer where fences are implicit.
                let fd = if self.implicit {
                    place(fd, window)?
                } else {
                    fd
                };
                Some((handle, fd))
            }
            None => None,
        };
        Ok(Buffer {
            id,
            window,
            width,
            height,
            format: DrmFormat {
                fourcc: export.fourcc,
                modifier: export.modifier,
            },
            planes,
            target,
            backing: Backing::DmaBuf(DmabufBacking { carrier }),
        })
    }

    fn render(
        &mut self,
        gl: &mut GlContext,
        buf: &mut Buffer,
        content: &Paint,
        region: &Region,
    ) -> Result<Submission, ExportError> {
        let plane_fd = buf
            .planes
            .first()
            .map(|p| &p.fd)
            .ok_or_else(|| ExportError::Kernel("buffer has no planes".into()))?;
        match self.fences {
            FenceSource::Native => {
                gl.paint_in(&buf.target, content, region)?;
                let fence = gl.native_fence()?;
                Ok(Submission {
                    fence: ExportedFence::File(place(fence.into_fd(), buf.window)?),
                    signal: Signaller::Driver,
                    deferred: None,
                    region: region.clone(),
                })
            }
            FenceSource::Vgem => {
                let (
                    Some(dev),
                    Backing::DmaBuf(DmabufBacking {
                        carrier: Some((handle, carrier_fd)),
                    }),
                ) = (&self.vgem, &buf.backing)
                else {
                    return Err(ExportError::Kernel(
                        "vgem fencing without a fence carrier".into(),
                    ));
                };
                let id = dev.vgem_fence_attach(*handle, true).map_err(|e| {
                    ExportError::Kernel(format!(
                        "attaching a vgem fence to buffer {}: {e}",
                        buf.id.slot
                    ))
                })?;
                let fence = self.fence_on(carrier_fd, buf.window)?;
                // The drawing itself happens in `complete`, after the description went out:
                // the fence is unsignalled for the whole of the rendering.
                Ok(Submission {
                    fence,
                    signal: Signaller::Vgem(VgemFence { id }),
                    deferred: Some(content.clone()),
                    region: region.clone(),
                })
            }
            FenceSource::Implicit => {
                gl.paint_in(&buf.target, content, region)?;
                gl.flush()?;
                let fence = self.fence_on(plane_fd, buf.window)?;
                Ok(Submission {
                    fence,
                    signal: Signaller::Driver,
                    deferred: None,
                    region: region.clone(),
                })
            }
        }
    }

    fn complete(
        &mut self,
        gl: &mut GlContext,
        buf: &mut Buffer,
        sub: &mut Submission,
    ) -> Result<(), ExportError> {
        if let Some(content) = sub.deferred.take() {
            gl.paint_in(&buf.target, &content, &sub.region)?;
        }
        // Signalling consumes the vgem fence; what stays behind has nothing left to signal.
        match std::mem::replace(&mut sub.signal, Signaller::Driver) {
            Signaller::Vgem(f) => {
                gl.finish()?;
                let dev = self
                    .vgem
                    .as_ref()
                    .ok_or_else(|| ExportError::Kernel("vgem device gone".into()))?;
                let raw = f.id.raw();
                dev.vgem_fence_signal(f.id).map_err(|e| {
                    ExportError::Kernel(format!("signalling vgem fence {raw}: {e}"))
                })?;
                Ok(())
            }
            Signaller::Driver => Ok(gl.flush()?),
            Signaller::Pipe(_) | Signaller::Progress(_) => Err(ExportError::Kernel(
                "DMA-BUF backend given a CPU fence".into(),
            )),
        }
    }
}
