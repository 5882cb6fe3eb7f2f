//! The buffer description: what a layer's buffer is, where its planes lie, and which fence says
//! its contents are complete.
//!
//! [`Frame<Fd>`] is generic over how the fds are held: `OwnedFd` in a process that holds the
//! files, [`RemoteFd`] on the wire, naming a fd number in the exporting process together with the
//! identity (`st_dev`, `st_ino`) of the file behind it. The receiver fetches each fd with
//! `pidfd_getfd` (or receives it over `SCM_RIGHTS`) and must then prove, with `fstat`, that the
//! file is the one described, so a description cannot point it at some other file of the
//! exporter.
//!
//! A description is checked in two steps where it is received: [`Frame::validate_shape`] before
//! any fd is fetched (counts, sizes, formats, arithmetic that must not overflow), and
//! [`Frame::validate_extent`] once the real size of each plane's file is known (`lseek(SEEK_END)`
//! on the fetched fd), so that no plane reaches past the end of its buffer. Formats follow
//! `include/uapi/drm/drm_fourcc.h`.

use serde::{Deserialize, Serialize};

/// Builds a DRM fourcc code from its four characters, as `fourcc_code` in `drm_fourcc.h`.
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    (code[0] as u32) | ((code[1] as u32) << 8) | ((code[2] as u32) << 16) | ((code[3] as u32) << 24)
}

/// `DRM_FORMAT_ABGR8888`: bytes R, G, B, A in memory.
pub const DRM_FORMAT_ABGR8888: u32 = fourcc(b"AB24");
/// `DRM_FORMAT_XBGR8888`: bytes R, G, B, X in memory.
pub const DRM_FORMAT_XBGR8888: u32 = fourcc(b"XB24");
/// `DRM_FORMAT_ARGB8888`: bytes B, G, R, A in memory.
pub const DRM_FORMAT_ARGB8888: u32 = fourcc(b"AR24");
/// `DRM_FORMAT_XRGB8888`: bytes B, G, R, X in memory.
pub const DRM_FORMAT_XRGB8888: u32 = fourcc(b"XR24");

/// `DRM_FORMAT_MOD_LINEAR`: rows one after another, no tiling.
pub const DRM_FORMAT_MOD_LINEAR: u64 = 0;
/// `DRM_FORMAT_MOD_INVALID`: "no explicit modifier", layout known only to the driver.
pub const DRM_FORMAT_MOD_INVALID: u64 = 0x00ff_ffff_ffff_ffff;

/// The largest width or height accepted, in pixels.
pub const MAX_DIMENSION: u32 = 16384;
/// The most planes a description may have (as DRM and EGL allow).
pub const MAX_PLANES: usize = 4;

/// The formats the renderer can composite: all single-plane, 4 bytes per pixel.
pub const SUPPORTED_FOURCCS: [u32; 4] = [
    DRM_FORMAT_ABGR8888,
    DRM_FORMAT_XBGR8888,
    DRM_FORMAT_ARGB8888,
    DRM_FORMAT_XRGB8888,
];

/// Prints a fourcc as its four characters when they are printable.
pub fn fourcc_name(code: u32) -> String {
    let b = code.to_le_bytes();
    if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        String::from_utf8_lossy(&b).into_owned()
    } else {
        format!("{code:#010x}")
    }
}

/// A pixel format and its memory layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrmFormat {
    /// The DRM fourcc.
    pub fourcc: u32,
    /// The DRM format modifier.
    pub modifier: u64,
}

/// The identity of a file: `st_dev` and `st_ino` from `fstat(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

/// A fd as named on the wire: a number in another process, and what file it must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteFd {
    /// The process that holds the fd.
    pub pid: u32,
    /// The fd number in that process.
    pub fd: i32,
    /// The identity of the file behind it.
    pub identity: FileId,
}

/// One plane of a buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plane<Fd> {
    /// The file holding the plane.
    pub fd: Fd,
    /// Byte offset of the plane's first row.
    pub offset: u32,
    /// Bytes from one row to the next.
    pub stride: u32,
}

/// Names a buffer of the exporter's pool. A slot is reused across frames; the generation
/// changes whenever the memory behind the slot changes, so an import cache keyed by the id never
/// serves stale memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BufferId {
    /// Slot in the exporter's pool.
    pub slot: u32,
    /// Generation of that slot.
    pub generation: u32,
}

/// What kind of file a fence is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceKind {
    /// An eventfd written once the producer finished (the shm backend's CPU fence).
    EventFd,
    /// A `sync_file` (`anon_inode:sync_file`), from `EGL_ANDROID_native_fence_sync` or
    /// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`.
    SyncFile,
    /// The read end of a pipe whose write end the producer closes once it has finished (the
    /// shm backend's CPU fence). Readable (end of file) from then on, for good: a reader can
    /// neither signal it nor consume the signal, so a fence handed to a peer cannot be forged
    /// or jammed by that peer.
    Pipe,
    /// A number in the GPU process's progress page ([`crate::progress`]): signalled once the
    /// number stored there reaches the fence's [`Fence::point`]. No file travels: the fence's
    /// `fd` names no number (-1), only the page's identity.
    Progress,
    /// The implicit fences of a DMA-BUF the reader holds: the layer's buffer itself, or a small
    /// DMA-BUF that carries the pool buffer's fences (`fd`, in the export window, taken once per
    /// pool buffer like the buffer). For each frame the reader snapshots them as a sync_file
    /// (`DMA_BUF_IOCTL_EXPORT_SYNC_FILE`) and waits on that: no file travels per frame.
    /// Only a [`BufferKind::DmaBuf`] buffer's fence may be one.
    Implicit,
}

impl FenceKind {
    /// The name used in summaries, traces and `doctor`.
    pub fn as_str(self) -> &'static str {
        match self {
            FenceKind::EventFd => "eventfd",
            FenceKind::SyncFile => "sync_file",
            FenceKind::Pipe => "pipe",
            FenceKind::Progress => "progress",
            FenceKind::Implicit => "implicit",
        }
    }
}

impl std::fmt::Display for FenceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fence: readable (`POLLIN`) once the buffer's contents are complete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[must_use = "a buffer must not be read before its fence has signalled"]
pub struct Fence<Fd> {
    /// What kind of file it is.
    pub kind: FenceKind,
    /// The file; for a [`FenceKind::Progress`] fence, number -1 of the exporter and the
    /// progress page's identity.
    pub fd: Fd,
    /// For a [`FenceKind::Progress`] fence, the number the page must reach; 0 for the others.
    pub point: u64,
}

/// How the buffer's memory is provided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BufferKind {
    /// A sealed memfd filled from GL by read-back.
    Shm,
    /// A DMA-BUF exported from GL; CPU access is bracketed with `DMA_BUF_IOCTL_SYNC`.
    DmaBuf,
}

impl BufferKind {
    /// The name used on the command line, in summaries and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            BufferKind::Shm => "shm",
            BufferKind::DmaBuf => "dmabuf",
        }
    }
}

impl std::fmt::Display for BufferKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A buffer description, generic over how its fds are held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame<Fd> {
    /// Which pool buffer this is.
    pub id: BufferId,
    /// How the memory is provided.
    pub kind: BufferKind,
    /// Format and layout.
    pub format: DrmFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// One to four planes.
    pub planes: Vec<Plane<Fd>>,
    /// Signals when the contents are complete.
    pub fence: Fence<Fd>,
}

/// What is wrong with a received description. Each variant names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DescError {
    /// No planes, or more than [`MAX_PLANES`], or not the count the format has.
    #[error("planes: {got} given, the format {fourcc} has {expected}")]
    PlaneCount {
        /// Planes given.
        got: usize,
        /// Planes the format has.
        expected: usize,
        /// The format.
        fourcc: String,
    },
    /// Width or height is zero or larger than [`MAX_DIMENSION`].
    #[error("size: {width}x{height} is outside 1..={max}")]
    Size {
        /// Width given.
        width: u32,
        /// Height given.
        height: u32,
        /// The largest allowed.
        max: u32,
    },
    /// The fourcc is not one the renderer can composite.
    #[error("format.fourcc: {0} is not a supported format (AB24, XB24, AR24, XR24)")]
    UnknownFourcc(String),
    /// The modifier is not linear; the renderer reads buffers on the CPU.
    #[error("format.modifier: {modifier:#x} is not DRM_FORMAT_MOD_LINEAR; the renderer reads buffers on the CPU and cannot detile")]
    NotLinear {
        /// The modifier given.
        modifier: u64,
    },
    /// A stride of zero.
    #[error("planes[{plane}].stride: zero")]
    ZeroStride {
        /// The plane.
        plane: usize,
    },
    /// A stride smaller than a row of pixels.
    #[error("planes[{plane}].stride: {stride} is less than one row of {min} bytes")]
    StrideTooSmall {
        /// The plane.
        plane: usize,
        /// The stride given.
        stride: u32,
        /// Bytes in one row.
        min: u64,
    },
    /// `offset + stride * height` overflows.
    #[error("planes[{plane}]: offset {offset} + stride {stride} * height {height} overflows")]
    Overflow {
        /// The plane.
        plane: usize,
        /// The offset given.
        offset: u32,
        /// The stride given.
        stride: u32,
        /// The height.
        height: u32,
    },
    /// The plane reaches past the end of its buffer.
    #[error("planes[{plane}]: ends at byte {end}, beyond the buffer's {size} bytes")]
    BeyondBuffer {
        /// The plane.
        plane: usize,
        /// Where the plane ends.
        end: u64,
        /// The buffer's real size.
        size: u64,
    },
    /// A fd named in the description lies outside the exporter's export window.
    #[error("{field}.fd: {fd} is outside the export window [{base}, {end})")]
    OutsideWindow {
        /// Which field.
        field: String,
        /// The fd number.
        fd: i32,
        /// The window's first number.
        base: i32,
        /// One past the window's last number.
        end: i32,
    },
    /// A progress fence that names a file number or no point, or another fence with a point.
    #[error("fence: fd {fd} with point {point}; a progress fence names fd -1 and a point above 0, any other fence no point")]
    BadProgress {
        /// The fd number given.
        fd: i32,
        /// The point given.
        point: u64,
    },
    /// Implicit fences named for a buffer that is no DMA-BUF.
    #[error("fence: implicit fences on a {kind} buffer; only a DMA-BUF carries them")]
    ImplicitNotDmaBuf {
        /// The buffer's kind.
        kind: BufferKind,
    },
    /// A fence kept private lies inside the export window, or is no fd number.
    #[error("fence.fd: {fd} is not a private fence's number (outside the export window [{base}, {end}))")]
    NotPrivate {
        /// The fd number.
        fd: i32,
        /// The window's first number.
        base: i32,
        /// One past the window's last number.
        end: i32,
    },
    /// A fd named in the description belongs to another process than the sender.
    #[error("{field}.pid: {pid} is not the exporting process {expected}")]
    WrongProcess {
        /// Which field.
        field: String,
        /// The pid given.
        pid: u32,
        /// The exporter's pid.
        expected: u32,
    },
    /// The fetched file is not the one described.
    #[error("{field}: fetched file is (dev {got_dev}, ino {got_ino}), the description names (dev {want_dev}, ino {want_ino})")]
    IdentityMismatch {
        /// Which field.
        field: String,
        /// Device of the fetched file.
        got_dev: u64,
        /// Inode of the fetched file.
        got_ino: u64,
        /// Device named.
        want_dev: u64,
        /// Inode named.
        want_ino: u64,
    },
}

/// Bytes per pixel of a supported format, or `None` for any other fourcc.
pub fn bytes_per_pixel(fourcc: u32) -> Option<u32> {
    SUPPORTED_FOURCCS.contains(&fourcc).then_some(4)
}

impl<Fd> Frame<Fd> {
    /// Checks everything that can be checked without the files: plane count, size, format,
    /// modifier, stride, and that no plane's extent overflows. Returns each plane's end offset.
    pub fn validate_shape(&self) -> Result<Vec<u64>, DescError> {
        if self.width == 0
            || self.height == 0
            || self.width > MAX_DIMENSION
            || self.height > MAX_DIMENSION
        {
            return Err(DescError::Size {
                width: self.width,
                height: self.height,
                max: MAX_DIMENSION,
            });
        }
        let bpp = bytes_per_pixel(self.format.fourcc)
            .ok_or_else(|| DescError::UnknownFourcc(fourcc_name(self.format.fourcc)))?;
        // Every supported format is single-plane.
        let expected = 1;
        if self.planes.is_empty() || self.planes.len() > MAX_PLANES || self.planes.len() != expected
        {
            return Err(DescError::PlaneCount {
                got: self.planes.len(),
                expected,
                fourcc: fourcc_name(self.format.fourcc),
            });
        }
        if self.format.modifier != DRM_FORMAT_MOD_LINEAR {
            return Err(DescError::NotLinear {
                modifier: self.format.modifier,
            });
        }
        let row = u64::from(self.width) * u64::from(bpp);
        let mut ends = Vec::with_capacity(self.planes.len());
        for (i, p) in self.planes.iter().enumerate() {
            if p.stride == 0 {
                return Err(DescError::ZeroStride { plane: i });
            }
            if u64::from(p.stride) < row {
                return Err(DescError::StrideTooSmall {
                    plane: i,
                    stride: p.stride,
                    min: row,
                });
            }
            // The last row needs only `row` bytes, but requiring whole strides keeps the check
            // simple and matches what every exporter allocates. Done in u32 on purpose: a
            // description whose extent does not fit in 32 bits is refused as an overflow.
            let end = p
                .stride
                .checked_mul(self.height)
                .and_then(|v| v.checked_add(p.offset))
                .ok_or(DescError::Overflow {
                    plane: i,
                    offset: p.offset,
                    stride: p.stride,
                    height: self.height,
                })?;
            ends.push(u64::from(end));
        }
        Ok(ends)
    }

    /// Checks that plane `plane`, ending at `end` (from [`Frame::validate_shape`]), lies within
    /// its file's real size `size`.
    pub fn validate_extent(plane: usize, end: u64, size: u64) -> Result<(), DescError> {
        if end > size {
            return Err(DescError::BeyondBuffer { plane, end, size });
        }
        Ok(())
    }
}

/// Where a description's fence must lie ([`Frame::validate_remote_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FencePlace {
    /// In the export window, as every fd.
    InWindow,
    /// Outside it: a fence the exporter keeps private
    /// ([`crate::messages::LauncherToGpu::PrivateFences`]).
    Private,
    /// Not checked: the reader takes no fence (a frame the launcher vouched for).
    Unchecked,
}

impl Frame<RemoteFd> {
    /// Checks that every fd is named in process `exporter` and inside its export window
    /// `[base, end)`.
    pub fn validate_remote(&self, exporter: u32, base: i32, end: i32) -> Result<(), DescError> {
        self.validate_remote_with(exporter, (base, end), FencePlace::InWindow)
    }

    /// Checks that every fd is named in process `exporter`, each plane inside its export
    /// window `window`, and the fence where `fence` says.
    pub fn validate_remote_with(
        &self,
        exporter: u32,
        window: (i32, i32),
        fence: FencePlace,
    ) -> Result<(), DescError> {
        let (base, end) = window;
        let progress = self.fence.kind == FenceKind::Progress;
        if self.fence.kind == FenceKind::Implicit && self.kind != BufferKind::DmaBuf {
            return Err(DescError::ImplicitNotDmaBuf { kind: self.kind });
        }
        if progress && self.fence.fd.pid != exporter {
            return Err(DescError::WrongProcess {
                field: "fence".to_owned(),
                pid: self.fence.fd.pid,
                expected: exporter,
            });
        }
        if progress && (self.fence.fd.fd != -1 || self.fence.point == 0) {
            return Err(DescError::BadProgress {
                fd: self.fence.fd.fd,
                point: self.fence.point,
            });
        }
        if !progress && self.fence.point != 0 {
            return Err(DescError::BadProgress {
                fd: self.fence.fd.fd,
                point: self.fence.point,
            });
        }
        // A progress fence names no file: nothing of it lies in any window.
        let fence = if progress {
            FencePlace::Unchecked
        } else {
            fence
        };
        if fence != FencePlace::InWindow && self.fence.fd.pid != exporter {
            return Err(DescError::WrongProcess {
                field: "fence".to_owned(),
                pid: self.fence.fd.pid,
                expected: exporter,
            });
        }
        let n = self.fence.fd.fd;
        if fence == FencePlace::Private && (n < 0 || (base..end).contains(&n)) {
            return Err(DescError::NotPrivate { fd: n, base, end });
        }
        let fence = (fence == FencePlace::InWindow).then(|| ("fence".to_owned(), &self.fence.fd));
        let planes = self
            .planes
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("planes[{i}]"), &p.fd));
        for (field, fd) in planes.chain(fence) {
            if fd.pid != exporter {
                return Err(DescError::WrongProcess {
                    field,
                    pid: fd.pid,
                    expected: exporter,
                });
            }
            if fd.fd < base || fd.fd >= end {
                return Err(DescError::OutsideWindow {
                    field,
                    fd: fd.fd,
                    base,
                    end,
                });
            }
        }
        Ok(())
    }
}

/// Checks that a fetched file is the one a [`RemoteFd`] named.
pub fn check_identity(field: &str, want: FileId, got: FileId) -> Result<(), DescError> {
    if want != got {
        return Err(DescError::IdentityMismatch {
            field: field.to_owned(),
            got_dev: got.dev,
            got_ino: got.ino,
            want_dev: want.dev,
            want_ino: want.ino,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_print_their_documented_names() {
        // The names the run summary and `--buffers` use, never the Rust variant names.
        for (kind, name) in [
            (FenceKind::EventFd, "eventfd"),
            (FenceKind::SyncFile, "sync_file"),
            (FenceKind::Pipe, "pipe"),
            (FenceKind::Progress, "progress"),
            (FenceKind::Implicit, "implicit"),
        ] {
            assert_eq!(kind.to_string(), name);
        }
        assert_eq!(BufferKind::Shm.to_string(), "shm");
        assert_eq!(BufferKind::DmaBuf.to_string(), "dmabuf");
    }

    fn rfd(fd: i32) -> RemoteFd {
        RemoteFd {
            pid: 10,
            fd,
            identity: FileId { dev: 1, ino: 2 },
        }
    }

    fn good() -> Frame<RemoteFd> {
        Frame {
            id: BufferId {
                slot: 0,
                generation: 1,
            },
            kind: BufferKind::Shm,
            format: DrmFormat {
                fourcc: DRM_FORMAT_ABGR8888,
                modifier: DRM_FORMAT_MOD_LINEAR,
            },
            width: 64,
            height: 32,
            planes: vec![Plane {
                fd: rfd(512),
                offset: 0,
                stride: 256,
            }],
            fence: Fence {
                kind: FenceKind::EventFd,
                fd: rfd(513),
                point: 0,
            },
        }
    }

    #[test]
    fn implicit_fences_belong_to_dma_bufs_only_and_lie_in_the_window() {
        let mut f = good();
        f.fence.kind = FenceKind::Implicit;
        assert_eq!(
            f.validate_remote(10, 512, 768),
            Err(DescError::ImplicitNotDmaBuf {
                kind: BufferKind::Shm
            })
        );
        f.kind = BufferKind::DmaBuf;
        assert_eq!(f.validate_remote(10, 512, 768), Ok(()));
        // The buffer itself may carry them: the same number as its plane.
        f.fence.fd = f.planes[0].fd;
        assert_eq!(f.validate_remote(10, 512, 768), Ok(()));
        f.fence.fd.fd = 800;
        assert!(matches!(
            f.validate_remote(10, 512, 768),
            Err(DescError::OutsideWindow { .. })
        ));
        f.fence.fd.fd = 513;
        f.fence.point = 4;
        assert!(matches!(
            f.validate_remote(10, 512, 768),
            Err(DescError::BadProgress { .. })
        ));
    }

    #[test]
    fn fourcc_codes_match_drm_fourcc_h() {
        // Values as printed by drm_fourcc.h's fourcc_code() for these formats.
        assert_eq!(DRM_FORMAT_ABGR8888, 0x3432_4241);
        assert_eq!(DRM_FORMAT_XBGR8888, 0x3432_4258);
        assert_eq!(DRM_FORMAT_ARGB8888, 0x3432_5241);
        assert_eq!(DRM_FORMAT_XRGB8888, 0x3432_5258);
        assert_eq!(fourcc_name(DRM_FORMAT_ABGR8888), "AB24");
    }

    #[test]
    fn good_description_passes() {
        let f = good();
        assert_eq!(f.validate_shape(), Ok(vec![256 * 32]));
        assert_eq!(f.validate_remote(10, 512, 768), Ok(()));
        assert_eq!(Frame::<RemoteFd>::validate_extent(0, 8192, 8192), Ok(()));
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut f = good();
        f.planes.clear();
        assert!(matches!(
            f.validate_shape(),
            Err(DescError::PlaneCount { got: 0, .. })
        ));
        let mut f = good();
        f.planes = vec![f.planes[0].clone(); 5];
        assert!(matches!(
            f.validate_shape(),
            Err(DescError::PlaneCount { got: 5, .. })
        ));
        let mut f = good();
        f.planes.push(f.planes[0].clone());
        assert!(matches!(
            f.validate_shape(),
            Err(DescError::PlaneCount {
                got: 2,
                expected: 1,
                ..
            })
        ));
        let mut f = good();
        f.width = 0;
        assert!(matches!(f.validate_shape(), Err(DescError::Size { .. })));
        let mut f = good();
        f.height = MAX_DIMENSION + 1;
        assert!(matches!(f.validate_shape(), Err(DescError::Size { .. })));
        let mut f = good();
        f.format.fourcc = fourcc(b"NV12");
        assert_eq!(
            f.validate_shape(),
            Err(DescError::UnknownFourcc("NV12".into()))
        );
        let mut f = good();
        f.format.modifier = DRM_FORMAT_MOD_INVALID;
        assert!(matches!(
            f.validate_shape(),
            Err(DescError::NotLinear { .. })
        ));
        let mut f = good();
        f.planes[0].stride = 0;
        assert_eq!(f.validate_shape(), Err(DescError::ZeroStride { plane: 0 }));
        let mut f = good();
        f.planes[0].stride = 255;
        assert!(matches!(
            f.validate_shape(),
            Err(DescError::StrideTooSmall {
                plane: 0,
                stride: 255,
                min: 256
            })
        ));
        let mut f = good();
        f.planes[0].stride = u32::MAX;
        assert!(matches!(
            f.validate_shape(),
            Err(DescError::Overflow { plane: 0, .. })
        ));
        let mut f = good();
        f.planes[0].offset = u32::MAX - 100;
        assert!(matches!(
            f.validate_shape(),
            Err(DescError::Overflow { plane: 0, .. })
        ));
        assert!(matches!(
            Frame::<RemoteFd>::validate_extent(0, 8193, 8192),
            Err(DescError::BeyondBuffer {
                end: 8193,
                size: 8192,
                ..
            })
        ));
        let mut f = good();
        f.fence.fd.fd = 3;
        assert!(matches!(
            f.validate_remote(10, 512, 768),
            Err(DescError::OutsideWindow { fd: 3, .. })
        ));
        let mut f = good();
        f.planes[0].fd.pid = 1;
        assert!(matches!(
            f.validate_remote(10, 512, 768),
            Err(DescError::WrongProcess { pid: 1, .. })
        ));
        assert!(check_identity(
            "planes[0]",
            FileId { dev: 1, ino: 2 },
            FileId { dev: 1, ino: 3 }
        )
        .is_err());
        let e = DescError::ZeroStride { plane: 0 }.to_string();
        assert!(e.contains("planes[0].stride"), "{e}");
    }
}
