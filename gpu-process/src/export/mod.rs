//! How a rendered layer leaves the GPU process: one interface, two backends.
//!
//! An [`Exporter`] allocates pool buffers ([`Buffer`]), renders a layer's content into one
//! ([`Exporter::render`], which returns an unsignalled [`Submission`] whose fence is exported with
//! the description), and finishes the work ([`Exporter::complete`], which makes the pixels
//! visible to the renderer and signals the fence). The caller sends the description between the
//! two calls, so the renderer fetches fds while this process is still finishing the frame, and the
//! fence is what tells it when it may read.
//!
//! - [`shm::ShmExporter`]: sealed memfds filled by GL read-back; an eventfd fence written once
//!   the read-back has completed. Works wherever GL does.
//! - `dmabuf::DmabufExporter`: the texture itself, exported as a DMA-BUF; a sync_file fence.
//!
//! Every exported fd (buffer planes and fences) is moved into the export window of the view the
//! buffer belongs to ([`triptych_sys::fd::ExportWindow::of_view`]) before it is described,
//! because the view's renderer's sandbox lets it take fds from nowhere else: no renderer can
//! take another view's.

pub mod dmabuf;
pub mod shm;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use ipc_protocol::damage::Region;
use ipc_protocol::frame::{BufferKind, FenceKind};
use ipc_protocol::{BufferId, DrmFormat, Fence, FileId, Frame, Plane, RemoteFd};
use triptych_sys::fd::ExportWindow;

use crate::gl::{GlContext, GlError, LayerTarget, Paint};

/// Errors while exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A GL or EGL operation failed.
    #[error(transparent)]
    Gl(#[from] GlError),
    /// Placing an fd in the export window failed.
    #[error(transparent)]
    Window(#[from] triptych_sys::fd::FdError),
    /// Creating a memfd failed.
    #[error(transparent)]
    Memfd(#[from] triptych_sys::memfd::MemfdError),
    /// Mapping failed.
    #[error(transparent)]
    Map(#[from] triptych_sys::mapping::MapError),
    /// An eventfd fence failed.
    #[error(transparent)]
    Fence(#[from] triptych_sys::eventfd::EventFenceError),
    /// A DRM or DMA-BUF operation failed.
    #[error("{0}")]
    Kernel(String),
    /// The backend cannot work here; names the missing piece.
    #[error("{0}")]
    Unavailable(String),
}

/// One pool buffer: a GL render target plus the exported planes that show its pixels.
#[derive(Debug)]
pub struct Buffer {
    /// Its id.
    pub id: BufferId,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Format and layout of the exported memory.
    pub format: DrmFormat,
    /// The export window of its view, where its planes and fences lie.
    pub window: ExportWindow,
    /// Exported planes; every fd lies in `window`.
    pub planes: Vec<Plane<OwnedFd>>,
    /// What GL draws into.
    pub target: LayerTarget,
    /// Backend-specific state.
    pub backing: Backing,
}

/// What a backend keeps per buffer.
#[derive(Debug)]
pub enum Backing {
    /// The memfd's mapping, written by read-back.
    Shm(triptych_sys::mapping::Mapping),
    /// The DMA-BUF backend's per-buffer state.
    DmaBuf(dmabuf::DmabufBacking),
}

impl Buffer {
    /// The file whose implicit fences are this buffer's, where it is not one of its planes (the
    /// DMA-BUF backend's fence carrier): sent with the planes where fds travel by `SCM_RIGHTS`.
    pub fn fence_carrier(&self) -> Option<&OwnedFd> {
        match &self.backing {
            Backing::DmaBuf(b) => b.carrier_file(),
            Backing::Shm(_) => None,
        }
    }
}

/// A submission's fence as exported.
#[derive(Debug)]
pub enum ExportedFence {
    /// A file: in the export window, or outside it where fences are kept private; kept until
    /// the renderer releases the buffer.
    File(OwnedFd),
    /// The implicit fences of a DMA-BUF the buffer keeps in the export window for good (itself,
    /// or its fence carrier), named here ([`FenceKind::Implicit`]): the renderer takes that
    /// file once per pool buffer and snapshots its fences for each frame.
    InBuffer(RemoteFd),
    /// A point of the progress page whose identity is `page` ([`ipc_protocol::progress`]).
    Point {
        /// The point.
        point: u64,
        /// The page's identity.
        page: FileId,
    },
}

impl ExportedFence {
    /// The file, if the fence is one.
    pub fn file(&self) -> Option<&OwnedFd> {
        match self {
            ExportedFence::File(fd) => Some(fd),
            ExportedFence::InBuffer(_) | ExportedFence::Point { .. } => None,
        }
    }
}

/// One submitted render: its fence, exported, and what signals it.
#[derive(Debug)]
#[must_use = "a submission must be completed, or its fence never signals"]
pub struct Submission {
    /// The fence.
    pub fence: ExportedFence,
    /// What signals the fence.
    pub signal: Signaller,
    /// Drawing left for [`Exporter::complete`], after the description went out, so that the
    /// fence covers all of the rendering (the vgem path, where this process signals it).
    pub deferred: Option<Paint>,
    /// The texels drawn (all the buffer missed): all the shm backend reads back.
    pub region: Region,
}

/// What signals a submission's fence.
#[derive(Debug)]
pub enum Signaller {
    /// The process closes this write end of the fence pipe once the work is done (taken out,
    /// and so closed, by `complete`).
    Pipe(Option<OwnedFd>),
    /// The process signals this vgem fence once GL has finished.
    Vgem(dmabuf::VgemFence),
    /// The driver signals the fence itself (a native sync_file).
    Driver,
    /// The process publishes this point of its progress page once the work is done.
    Progress(u64),
}

/// A buffer backend.
pub trait Exporter {
    /// The memory kind it exports.
    fn kind(&self) -> BufferKind;
    /// The fence kind it exports.
    fn fence_kind(&self) -> FenceKind;
    /// How the fence is made, for summaries and traces.
    fn fence_detail(&self) -> &'static str;
    /// Creates pool buffer `id` of `width` x `height`, its fds in `window`.
    fn allocate(
        &mut self,
        gl: &mut GlContext,
        id: BufferId,
        window: ExportWindow,
        width: u32,
        height: u32,
    ) -> Result<Buffer, ExportError>;
    /// Draws `content` into `buf` inside `region` (what the buffer misses; the rest of it
    /// holds the content already) and returns the unsignalled submission.
    fn render(
        &mut self,
        gl: &mut GlContext,
        buf: &mut Buffer,
        content: &Paint,
        region: &Region,
    ) -> Result<Submission, ExportError>;
    /// From now on, keeps every fence it makes outside the export window
    /// ([`ipc_protocol::messages::LauncherToGpu::PrivateFences`]); false if its fences cannot be
    /// read away by a holder (a sync_file), so this changes nothing.
    fn keep_fences_private(&mut self) -> bool {
        false
    }
    /// From now on, fences need no file per submission: points of `page`
    /// ([`FenceKind::Progress`]) for a CPU fence, or a DMA-BUF's implicit fences
    /// ([`FenceKind::Implicit`], the page unused). False where this backend's fences stay files
    /// (a driver's native sync_file, which it need not attach to the buffer).
    fn use_progress(&mut self, page: ipc_protocol::progress::ProgressWriter) -> bool {
        let _ = page;
        false
    }
    /// The work of every submission completed so far is done: wakes whoever waits on it
    /// (the progress page's readers). Called once per frame, after its last `complete`.
    fn frame_completed(&mut self) {}
    /// Finishes the work of `sub` and signals its fence.
    fn complete(
        &mut self,
        gl: &mut GlContext,
        buf: &mut Buffer,
        sub: &mut Submission,
    ) -> Result<(), ExportError>;
}

/// Moves `fd` into `window`, closing the original.
pub fn place(fd: OwnedFd, window: ExportWindow) -> Result<OwnedFd, ExportError> {
    Ok(window.place(fd.as_fd())?)
}

/// Describes `fd` as a [`RemoteFd`] of this process.
pub fn remote(fd: &OwnedFd) -> Result<RemoteFd, ExportError> {
    let id = triptych_sys::fd::identity(fd.as_fd())?;
    Ok(RemoteFd {
        pid: std::process::id(),
        fd: fd.as_raw_fd(),
        identity: FileId {
            dev: id.dev,
            ino: id.ino,
        },
    })
}

/// The wire description of `buf` with fence `fence` of kind `kind`.
pub fn describe(
    buf: &Buffer,
    kind: BufferKind,
    fence_kind: FenceKind,
    fence: &ExportedFence,
) -> Result<Frame<RemoteFd>, ExportError> {
    let planes = buf
        .planes
        .iter()
        .map(|p| {
            Ok(Plane {
                fd: remote(&p.fd)?,
                offset: p.offset,
                stride: p.stride,
            })
        })
        .collect::<Result<Vec<_>, ExportError>>()?;
    Ok(Frame {
        id: buf.id,
        kind,
        format: buf.format,
        width: buf.width,
        height: buf.height,
        planes,
        fence: match fence {
            ExportedFence::File(fd) => Fence {
                kind: fence_kind,
                fd: remote(fd)?,
                point: 0,
            },
            ExportedFence::InBuffer(fd) => Fence {
                kind: FenceKind::Implicit,
                fd: *fd,
                point: 0,
            },
            ExportedFence::Point { point, page } => Fence {
                kind: FenceKind::Progress,
                fd: RemoteFd {
                    pid: std::process::id(),
                    fd: -1,
                    identity: *page,
                },
                point: *point,
            },
        },
    })
}
