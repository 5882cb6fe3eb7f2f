//! What a buffer's file must be before it is read: one check, applied by the renderer when it
//! imports a buffer and by the launcher when it vouches for a frame
//! ([`crate::messages::LauncherToRenderer::Vouched`]), so that a file the launcher passed is
//! one the renderer accepts, and a renderer that refuses such a file refuses it by its own
//! choice.
//!
//! The file must reach past the end of the plane it holds; a shm buffer must be sealed against
//! shrinking (its owner could otherwise cut it under a reader's mapping, which then faults); a
//! buffer described as a DMA-BUF must be one (its size is fixed for its life); and its plane
//! must map read-only. Only the plane's bytes are mapped, never the whole file, so the file's
//! own size (which its maker chooses) never decides whether a reader's address space has room.

use std::os::fd::BorrowedFd;

use crate::frame::{BufferKind, DescError, DrmFormat, Frame};
use crate::RemoteFd;
use triptych_sys::mapping::{Access, MapError, Mapping};

/// Why a buffer's file is refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file's size could not be read.
    #[error("measuring planes[0] failed: {0}")]
    Size(#[from] triptych_sys::fd::FdError),
    /// The plane reaches past the file's end.
    #[error(transparent)]
    Extent(#[from] DescError),
    /// A shm buffer is not sealed against shrinking.
    #[error("planes[0]: shm buffer is not sealed against shrinking: {0}")]
    Seals(#[from] triptych_sys::memfd::MemfdError),
    /// A buffer described as a DMA-BUF is not one.
    #[error("planes[0]: described as a DMA-BUF, but {0}")]
    NotDmaBuf(String),
    /// The plane does not map.
    #[error("mapping planes[0] failed: {0}")]
    Map(#[from] MapError),
}

/// What a buffer looks like: everything a cached mapping depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Memory kind.
    pub kind: BufferKind,
    /// Format.
    pub format: DrmFormat,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Offset of plane 0.
    pub offset: u32,
    /// Stride of plane 0.
    pub stride: u32,
}

impl Shape {
    /// The shape `f` describes; `None` for a description without planes.
    pub fn of(f: &Frame<RemoteFd>) -> Option<Shape> {
        let p = f.planes.first()?;
        Some(Shape {
            kind: f.kind,
            format: f.format,
            width: f.width,
            height: f.height,
            offset: p.offset,
            stride: p.stride,
        })
    }
}

/// Checks `fd` as the file of a `kind` buffer whose plane 0 ends at `plane_end` (from
/// [`Frame::validate_shape`]), and maps its first `plane_end` bytes read-only.
pub fn check(fd: BorrowedFd<'_>, kind: BufferKind, plane_end: u64) -> Result<Mapping, FileError> {
    let size = triptych_sys::fd::seek_size(fd)?;
    Frame::<RemoteFd>::validate_extent(0, plane_end, size)?;
    match kind {
        BufferKind::Shm => triptych_sys::memfd::check_no_shrink(fd)?,
        BufferKind::DmaBuf => {
            if !triptych_sys::dma_buf::is_dma_buf(fd)
                .map_err(|e| FileError::NotDmaBuf(e.to_string()))?
            {
                return Err(FileError::NotDmaBuf(
                    "the file is not on the dmabuf file system".into(),
                ));
            }
        }
    }
    // At most the file's size; one beyond the address range fails as a mapping.
    let len = usize::try_from(plane_end).unwrap_or(usize::MAX);
    Ok(Mapping::new(fd, len, Access::Read)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_sealed_memfd_long_enough_maps_and_anything_else_is_named() {
        let sealed = triptych_sys::memfd::create_sealed(c"buffer", 8192).expect("memfd");
        let m = check(sealed.as_fd(), BufferKind::Shm, 4096).expect("a good buffer");
        assert_eq!(m.peer_bytes().len(), 4096);
        let e = check(sealed.as_fd(), BufferKind::Shm, 8193).expect_err("too short");
        assert!(e.to_string().contains("8193"), "{e}");
        let e = check(sealed.as_fd(), BufferKind::DmaBuf, 4096).expect_err("no DMA-BUF");
        assert!(e.to_string().contains("described as a DMA-BUF"), "{e}");
        let (read, _write) = triptych_sys::fd::pipe_cloexec().expect("pipe");
        assert!(check(read.as_fd(), BufferKind::Shm, 1).is_err());
    }
}
