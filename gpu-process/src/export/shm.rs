//! The shm backend: sealed memfds filled from GL by read-back, with pipe fences.
//!
//! Each pool buffer is a memfd of `width * height * 4` bytes (RGBA8, `DRM_FORMAT_ABGR8888`,
//! linear, rows tightly packed), sealed against shrinking and growing. This process maps it
//! writable first and then adds `F_SEAL_FUTURE_WRITE`, so its own mapping stays writable while
//! no new writable mapping (nor `write(2)`) is possible: the renderer can only map it read-only.
//! A frame is drawn into the buffer's GL texture; the description goes out with the read end of a
//! fresh pipe as its fence; then `glReadPixels` copies the texture into the memfd and, once it
//! has returned (the pixels are in memory), one byte is written and the write end closed, so the
//! read end reports data and end of file from then on. A process that dies mid-render closes its
//! write end too, but writes no byte: the reader sees end of file alone, an abandoned fence, and
//! never mistakes it for a signal (`triptych_sys::poll::wait_signalled`). A reader cannot signal
//! such a fence (it holds no write end); a reader that reads the byte away only makes its own
//! signalled fence look abandoned, which costs it that frame and blames nobody (the launcher
//! counts an abandoned fence as signalled when it checks a timeout claim). This is one
//! copy more than the DMA-BUF path and the reason that path exists.

use std::ffi::CString;
use std::os::fd::AsFd;

use ipc_protocol::damage::Region;
use ipc_protocol::frame::{BufferKind, FenceKind, DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_LINEAR};
use ipc_protocol::{BufferId, DrmFormat, Plane};
use triptych_sys::fd::ExportWindow;
use triptych_sys::mapping::{Access, Mapping};

use super::{place, Backing, Buffer, ExportError, ExportedFence, Exporter, Signaller, Submission};
use crate::gl::{GlContext, Paint};
use ipc_protocol::progress::ProgressWriter;

/// The shm backend.
#[derive(Debug, Default)]
pub struct ShmExporter {
    /// Fence read ends stay outside the export window, where the renderer cannot take them
    /// ([`Exporter::keep_fences_private`]).
    private_fences: bool,
    /// The progress page, once the launcher handed one over: fences are its points.
    progress: Option<ProgressWriter>,
}

impl Exporter for ShmExporter {
    fn kind(&self) -> BufferKind {
        BufferKind::Shm
    }

    fn keep_fences_private(&mut self) -> bool {
        self.private_fences = true;
        true
    }

    fn fence_kind(&self) -> FenceKind {
        if self.progress.is_some() {
            FenceKind::Progress
        } else {
            FenceKind::Pipe
        }
    }

    fn fence_detail(&self) -> &'static str {
        if self.progress.is_some() {
            "progress page (a point stored once glReadPixels returned, futex wake)"
        } else {
            "pipe (write end closed after glReadPixels returned)"
        }
    }

    fn use_progress(&mut self, page: ProgressWriter) -> bool {
        self.progress = Some(page);
        true
    }

    fn frame_completed(&mut self) {
        if let Some(p) = &mut self.progress {
            p.wake();
        }
    }

    fn allocate(
        &mut self,
        gl: &mut GlContext,
        id: BufferId,
        window: ExportWindow,
        width: u32,
        height: u32,
    ) -> Result<Buffer, ExportError> {
        let stride = width * 4;
        let size = u64::from(stride) * u64::from(height);
        let name =
            CString::new(format!("triptych-shm-{}.{}", id.slot, id.generation)).unwrap_or_default();
        let memfd = triptych_sys::memfd::create_for_export(&name, size)?;
        let map = Mapping::new(memfd.as_fd(), size as usize, Access::ReadWrite)?;
        triptych_sys::memfd::seal_future_write(memfd.as_fd())?;
        let fd = place(memfd, window)?;
        let target = gl.create_target(width, height)?;
        Ok(Buffer {
            id,
            window,
            width,
            height,
            format: DrmFormat {
                fourcc: DRM_FORMAT_ABGR8888,
                modifier: DRM_FORMAT_MOD_LINEAR,
            },
            planes: vec![Plane {
                fd,
                offset: 0,
                stride,
            }],
            target,
            backing: Backing::Shm(map),
        })
    }

    fn render(
        &mut self,
        gl: &mut GlContext,
        buf: &mut Buffer,
        content: &Paint,
        region: &Region,
    ) -> Result<Submission, ExportError> {
        gl.paint_in(&buf.target, content, region)?;
        if let Some(p) = &mut self.progress {
            let point = p.next_point();
            return Ok(Submission {
                fence: ExportedFence::Point {
                    point,
                    page: p.identity(),
                },
                signal: Signaller::Progress(point),
                deferred: None,
                region: region.clone(),
            });
        }
        let (read, write) = triptych_sys::fd::pipe_cloexec()?;
        // The read end is the fence; whoever holds it could read the signal away.
        let exported = if self.private_fences {
            read
        } else {
            place(read, buf.window)?
        };
        Ok(Submission {
            fence: ExportedFence::File(exported),
            signal: Signaller::Pipe(Some(write)),
            deferred: None,
            region: region.clone(),
        })
    }

    fn complete(
        &mut self,
        gl: &mut GlContext,
        buf: &mut Buffer,
        sub: &mut Submission,
    ) -> Result<(), ExportError> {
        let Backing::Shm(map) = &mut buf.backing else {
            return Err(ExportError::Unavailable(
                "shm exporter given a buffer of another backend".into(),
            ));
        };
        // Only what was drawn: the rest of the memfd holds the same texels already.
        gl.read_pixels_in(&buf.target, map.as_mut_slice(), &sub.region)?;
        if let (Signaller::Progress(point), Some(p)) = (&sub.signal, &mut self.progress) {
            // The pixels are in memory: the point is reached (the wake comes once per frame).
            p.publish(*point);
        }
        if let Signaller::Pipe(write) = &mut sub.signal {
            // The signal is a byte, then the only write end closed: a reader tells a finished
            // read-back (data, then end of file) from a process that died mid-render (end of
            // file alone), and can consume neither.
            if let Some(w) = write.take() {
                let mut f = std::fs::File::from(w);
                match std::io::Write::write_all(&mut f, &[1]) {
                    // No read end left (the renderer is gone): nobody to signal.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                    r => {
                        r.map_err(|e| ExportError::Kernel(format!("signalling a pipe fence: {e}")))?
                    }
                }
            }
        }
        Ok(())
    }
}
