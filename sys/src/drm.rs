//! DRM devices: dumb buffers, PRIME export to DMA-BUF, and the vgem fence ioctls.
//!
//! A [`DrmDevice`] owns one open file of a DRM node (`/dev/dri/cardN`). Buffer objects created
//! through it are named by [`GemHandle`]s, which are plain numbers local to that open file: they
//! stay valid until [`DrmDevice::destroy_dumb`] / [`DrmDevice::gem_close`] or until the device
//! file is closed (dropping the `DrmDevice` closes it, and the kernel then drops every handle of
//! that file). A handle is meaningless in another process or through another open file.
//!
//! [`DrmDevice::prime_export`] turns a handle into a DMA-BUF fd. The DMA-BUF holds its own
//! reference on the buffer object, so it outlives the handle and the device file: that is what
//! lets the GPU process destroy its handle, or exit, while the renderer still reads the buffer.
//! The exported fd is always close-on-exec (`DRM_CLOEXEC`).
//!
//! vgem (`drivers/gpu/drm/vgem`) is a software-only DRM driver whose buffers live in shmem and
//! whose fences are signalled by user space ([`DrmDevice::vgem_fence_attach`] then
//! [`DrmDevice::vgem_fence_signal`]). It stands in for a GPU in the kernel-level tests: a write
//! fence attached with vgem is exactly what a GPU driver attaches while it renders, so
//! `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` and `poll` behave as they would on real hardware. An
//! attached vgem fence that is never signalled is signalled by the driver after 10 s with an
//! error (`VGEM_FENCE_TIMEOUT`), so a [`FenceId`] is `#[must_use]`.
//!
//! Numbers and layouts come from
//! [`include/uapi/drm/drm.h`](https://github.com/torvalds/linux/blob/master/include/uapi/drm/drm.h),
//! [`include/uapi/drm/drm_mode.h`](https://github.com/torvalds/linux/blob/master/include/uapi/drm/drm_mode.h) and
//! [`include/uapi/drm/vgem_drm.h`](https://github.com/torvalds/linux/blob/master/include/uapi/drm/vgem_drm.h),
//! through the `_IOC` formula in [`crate::ioctl`]. PRIME is described in
//! <https://docs.kernel.org/gpu/drm-mm.html#prime-buffer-sharing>, vgem in
//! <https://docs.kernel.org/gpu/vgem.html>. Every ioctl retries `EINTR` and `EAGAIN`, as libdrm's
//! `drmIoctl` does.

use std::ffi::{c_char, c_int};
use std::fs::OpenOptions;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::ioctl::{ioctl_retry, iow, iowr};

/// The ioctl type byte of DRM (`DRM_IOCTL_BASE`, `'d'`).
pub const DRM_IOCTL_BASE: u8 = b'd';
/// First command number of driver-specific ioctls (`DRM_COMMAND_BASE`).
pub const DRM_COMMAND_BASE: u8 = 0x40;

/// PRIME export flag: the DMA-BUF fd is close-on-exec (`DRM_CLOEXEC`, defined as `O_CLOEXEC`).
pub const DRM_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
/// PRIME export flag: the DMA-BUF fd may be mapped writable (`DRM_RDWR`, defined as `O_RDWR`).
pub const DRM_RDWR: u32 = libc::O_RDWR as u32;
/// vgem fence flag: the fence is a write (exclusive) fence (`VGEM_FENCE_WRITE`).
pub const VGEM_FENCE_WRITE: u32 = 0x1;

/// Argument of [`DRM_IOCTL_VERSION`] (`struct drm_version`).
///
/// The `*_len` fields are `__kernel_size_t` and the strings `char __user *`: both pointer-sized,
/// so the struct is 64 bytes on 64-bit targets and 36 on 32-bit ones.
#[repr(C)]
#[derive(Debug)]
pub struct DrmVersion {
    /// Driver major version (out).
    pub version_major: c_int,
    /// Driver minor version (out).
    pub version_minor: c_int,
    /// Driver patch level (out).
    pub version_patchlevel: c_int,
    /// In: capacity of `name`; out: length of the driver name.
    pub name_len: usize,
    /// Buffer for the driver name (not NUL-terminated), or null.
    pub name: *mut c_char,
    /// In: capacity of `date`; out: length of the driver date.
    pub date_len: usize,
    /// Buffer for the driver date, or null.
    pub date: *mut c_char,
    /// In: capacity of `desc`; out: length of the driver description.
    pub desc_len: usize,
    /// Buffer for the driver description, or null.
    pub desc: *mut c_char,
}

/// Argument of [`DRM_IOCTL_GEM_CLOSE`] (`struct drm_gem_close`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrmGemClose {
    /// The handle to close.
    pub handle: u32,
    /// Zero.
    pub pad: u32,
}

/// Argument of [`DRM_IOCTL_PRIME_HANDLE_TO_FD`] (`struct drm_prime_handle`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrmPrimeHandle {
    /// The GEM handle to export (in).
    pub handle: u32,
    /// `DRM_CLOEXEC` and/or `DRM_RDWR` (in).
    pub flags: u32,
    /// The new DMA-BUF fd (out).
    pub fd: i32,
}

/// Argument of [`DRM_IOCTL_MODE_CREATE_DUMB`] (`struct drm_mode_create_dumb`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrmModeCreateDumb {
    /// Height in pixels (in).
    pub height: u32,
    /// Width in pixels (in).
    pub width: u32,
    /// Bits per pixel (in).
    pub bpp: u32,
    /// Zero (in).
    pub flags: u32,
    /// The new GEM handle (out).
    pub handle: u32,
    /// Bytes from one row to the next (out).
    pub pitch: u32,
    /// Size of the whole buffer in bytes (out).
    pub size: u64,
}

/// Argument of [`DRM_IOCTL_MODE_DESTROY_DUMB`] (`struct drm_mode_destroy_dumb`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrmModeDestroyDumb {
    /// The handle to destroy.
    pub handle: u32,
}

/// Argument of [`DRM_IOCTL_VGEM_FENCE_ATTACH`] (`struct drm_vgem_fence_attach`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrmVgemFenceAttach {
    /// The GEM handle to attach the fence to (in).
    pub handle: u32,
    /// `VGEM_FENCE_WRITE` or 0 (in).
    pub flags: u32,
    /// The new fence's id (out).
    pub out_fence: u32,
    /// Zero.
    pub pad: u32,
}

/// Argument of [`DRM_IOCTL_VGEM_FENCE_SIGNAL`] (`struct drm_vgem_fence_signal`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrmVgemFenceSignal {
    /// The fence id from [`DrmVgemFenceAttach::out_fence`].
    pub fence: u32,
    /// Zero.
    pub flags: u32,
}

/// `DRM_IOCTL_VERSION = DRM_IOWR(0x00, struct drm_version)`.
pub const DRM_IOCTL_VERSION: u32 = iowr::<DrmVersion>(DRM_IOCTL_BASE, 0x00);
/// `DRM_IOCTL_GEM_CLOSE = DRM_IOW(0x09, struct drm_gem_close)`.
pub const DRM_IOCTL_GEM_CLOSE: u32 = iow::<DrmGemClose>(DRM_IOCTL_BASE, 0x09);
/// `DRM_IOCTL_PRIME_HANDLE_TO_FD = DRM_IOWR(0x2d, struct drm_prime_handle)`.
pub const DRM_IOCTL_PRIME_HANDLE_TO_FD: u32 = iowr::<DrmPrimeHandle>(DRM_IOCTL_BASE, 0x2d);
/// `DRM_IOCTL_MODE_CREATE_DUMB = DRM_IOWR(0xB2, struct drm_mode_create_dumb)`.
pub const DRM_IOCTL_MODE_CREATE_DUMB: u32 = iowr::<DrmModeCreateDumb>(DRM_IOCTL_BASE, 0xB2);
/// `DRM_IOCTL_MODE_DESTROY_DUMB = DRM_IOWR(0xB4, struct drm_mode_destroy_dumb)`.
pub const DRM_IOCTL_MODE_DESTROY_DUMB: u32 = iowr::<DrmModeDestroyDumb>(DRM_IOCTL_BASE, 0xB4);
/// `DRM_VGEM_FENCE_ATTACH`, the vgem command number.
pub const DRM_VGEM_FENCE_ATTACH: u8 = 0x1;
/// `DRM_VGEM_FENCE_SIGNAL`, the vgem command number.
pub const DRM_VGEM_FENCE_SIGNAL: u8 = 0x2;
/// `DRM_IOCTL_VGEM_FENCE_ATTACH = DRM_IOWR(DRM_COMMAND_BASE + DRM_VGEM_FENCE_ATTACH, struct drm_vgem_fence_attach)`.
pub const DRM_IOCTL_VGEM_FENCE_ATTACH: u32 =
    iowr::<DrmVgemFenceAttach>(DRM_IOCTL_BASE, DRM_COMMAND_BASE + DRM_VGEM_FENCE_ATTACH);
/// `DRM_IOCTL_VGEM_FENCE_SIGNAL = DRM_IOW(DRM_COMMAND_BASE + DRM_VGEM_FENCE_SIGNAL, struct drm_vgem_fence_signal)`.
pub const DRM_IOCTL_VGEM_FENCE_SIGNAL: u32 =
    iow::<DrmVgemFenceSignal>(DRM_IOCTL_BASE, DRM_COMMAND_BASE + DRM_VGEM_FENCE_SIGNAL);

/// Longest driver name accepted from `DRM_IOCTL_VERSION` (the kernel's are a few bytes).
const MAX_DRIVER_NAME: usize = 256;

/// Errors from DRM calls.
#[derive(Debug, thiserror::Error)]
pub enum DrmError {
    /// Opening the device node failed.
    #[error("cannot open DRM device {path}: {source}")]
    Open {
        /// The node.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Listing `/dev/dri` failed.
    #[error("cannot list {dir}: {source}")]
    ListNodes {
        /// The directory.
        dir: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An ioctl failed. `ENOTTY`/`EINVAL` on a vgem ioctl usually means the device is not vgem;
    /// `ENOSYS` on `MODE_CREATE_DUMB` means the driver has no dumb buffers; `EACCES` on a render
    /// node means the ioctl needs the primary node (`cardN`).
    #[error("{ioctl} ({detail}) on {path} failed: {errno}")]
    Ioctl {
        /// The ioctl's name, as in the uapi header.
        ioctl: &'static str,
        /// The arguments passed.
        detail: String,
        /// The device node.
        path: PathBuf,
        /// The error the kernel returned.
        errno: nix::Error,
    },
    /// The kernel reported success with values that cannot be right.
    #[error("{ioctl} on {path} returned an invalid result: {detail}")]
    InvalidReply {
        /// The ioctl's name.
        ioctl: &'static str,
        /// What was wrong.
        detail: String,
        /// The device node.
        path: PathBuf,
    },
}

/// A GEM buffer handle, local to the [`DrmDevice`] file that created it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemHandle(u32);

impl GemHandle {
    /// The kernel's number for the handle.
    pub fn raw(self) -> u32 {
        self.0
    }
}

/// A dumb buffer created by [`DrmDevice::create_dumb`].
///
/// Plain data: it does not close its handle on drop. Pass it to [`DrmDevice::destroy_dumb`], or
/// let the device file's close drop it with every other handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumbBuffer {
    /// The buffer's handle on the device that created it.
    pub handle: GemHandle,
    /// Width in pixels, as asked.
    pub width: u32,
    /// Height in pixels, as asked.
    pub height: u32,
    /// Bits per pixel, as asked.
    pub bpp: u32,
    /// Bytes from one row to the next, chosen by the driver (at least `width * bpp / 8`).
    pub pitch: u32,
    /// Size of the buffer in bytes, chosen by the driver (at least `pitch * height`).
    pub size: u64,
}

/// Access granted through an exported DMA-BUF fd's mappings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrimeAccess {
    /// Mappings may only be read.
    ReadOnly,
    /// Mappings may be written (`DRM_RDWR`).
    ReadWrite,
}

/// A vgem fence attached to a buffer, named by its per-file id. Signal it with
/// [`DrmDevice::vgem_fence_signal`] on the same device.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "an unsignalled vgem fence blocks waiters on the buffer until vgem's 10 s timeout"]
pub struct FenceId(u32);

impl FenceId {
    /// The kernel's id for the fence.
    pub fn raw(&self) -> u32 {
        self.0
    }
}

/// One open DRM device node, closed on drop.
#[derive(Debug)]
pub struct DrmDevice {
    fd: OwnedFd,
    path: PathBuf,
}

impl AsFd for DrmDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl DrmDevice {
    /// Opens a DRM node read-write and close-on-exec (`O_RDWR | O_CLOEXEC | O_NOCTTY`; the
    /// standard library always adds `O_CLOEXEC`).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DrmError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| DrmError::Open {
                path: path.clone(),
                source,
            })?;
        tracing::debug!(path = %path.display(), "opened DRM device");
        Ok(Self {
            fd: OwnedFd::from(file),
            path,
        })
    }

    /// Opens the first primary node `/dev/dri/card*` whose driver is `driver`, if any.
    ///
    /// Nodes that cannot be opened or queried are skipped (logged at debug level).
    pub fn find_driver(driver: &str) -> Result<Option<Self>, DrmError> {
        let dir = Path::new("/dev/dri");
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(DrmError::ListNodes {
                    dir: dir.into(),
                    source,
                })
            }
        };
        let mut cards: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("card"))
            })
            .collect();
        cards.sort();
        for path in cards {
            match DrmDevice::open(&path).and_then(|dev| dev.driver_name().map(|name| (dev, name))) {
                Ok((dev, name)) if name == driver => return Ok(Some(dev)),
                Ok((_, name)) => {
                    tracing::debug!(path = %path.display(), driver = %name, "skipping DRM node")
                }
                Err(error) => tracing::debug!(path = %path.display(), %error, "skipping DRM node"),
            }
        }
        Ok(None)
    }

    /// The node this device was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ioctl_error(&self, ioctl: &'static str, detail: String, errno: nix::Error) -> DrmError {
        DrmError::Ioctl {
            ioctl,
            detail,
            path: self.path.clone(),
            errno,
        }
    }

    fn invalid_reply(&self, ioctl: &'static str, detail: String) -> DrmError {
        DrmError::InvalidReply {
            ioctl,
            detail,
            path: self.path.clone(),
        }
    }

    /// The kernel driver's name (`DRM_IOCTL_VERSION`), e.g. `"vgem"`, `"i915"`, `"amdgpu"`.
    pub fn driver_name(&self) -> Result<String, DrmError> {
        const IOCTL: &str = "DRM_IOCTL_VERSION";
        // First call: all capacities zero, so the kernel only reports the lengths.
        let mut version = DrmVersion {
            version_major: 0,
            version_minor: 0,
            version_patchlevel: 0,
            name_len: 0,
            name: std::ptr::null_mut(),
            date_len: 0,
            date: std::ptr::null_mut(),
            desc_len: 0,
            desc: std::ptr::null_mut(),
        };
        // SAFETY: `DrmVersion` mirrors `struct drm_version` field for field (64 bytes on 64-bit,
        // pinned by `struct_layouts_match_uapi`). All three capacities are 0, so the kernel's
        // `drm_copy_field` writes only the length fields and never dereferences the null string
        // pointers. The device fd is owned by `self`, so it is open for the call.
        unsafe { ioctl_retry(self.fd.as_fd(), DRM_IOCTL_VERSION, &mut version) }
            .map_err(|errno| self.ioctl_error(IOCTL, "lengths".into(), errno))?;
        let len = version.name_len;
        if len == 0 || len > MAX_DRIVER_NAME {
            return Err(self.invalid_reply(IOCTL, format!("driver name length {len}")));
        }
        let mut name = vec![0u8; len];
        version.name_len = len;
        version.name = name.as_mut_ptr().cast::<c_char>();
        version.date_len = 0;
        version.date = std::ptr::null_mut();
        version.desc_len = 0;
        version.desc = std::ptr::null_mut();
        // SAFETY: as above; in addition `name` points to `len` writable bytes owned by the `name`
        // vector, which lives until after the call, and `name_len == len` bounds the kernel's
        // copy (`drm_copy_field` copies at most the capacity it is given). Date and description
        // have capacity 0 and null pointers, so they are not written.
        unsafe { ioctl_retry(self.fd.as_fd(), DRM_IOCTL_VERSION, &mut version) }
            .map_err(|errno| self.ioctl_error(IOCTL, format!("name capacity {len}"), errno))?;
        if version.name_len != len {
            return Err(self.invalid_reply(
                IOCTL,
                format!(
                    "driver name length changed from {len} to {}",
                    version.name_len
                ),
            ));
        }
        String::from_utf8(name)
            .map_err(|e| self.invalid_reply(IOCTL, format!("driver name is not UTF-8: {e}")))
    }

    /// Creates a dumb buffer (`DRM_IOCTL_MODE_CREATE_DUMB`): linear, CPU-mappable memory of
    /// `height` rows of `width` pixels of `bpp` bits. Needs a primary node (`cardN`).
    pub fn create_dumb(&self, width: u32, height: u32, bpp: u32) -> Result<DumbBuffer, DrmError> {
        const IOCTL: &str = "DRM_IOCTL_MODE_CREATE_DUMB";
        let mut arg = DrmModeCreateDumb {
            height,
            width,
            bpp,
            ..Default::default()
        };
        // SAFETY: `DrmModeCreateDumb` mirrors `struct drm_mode_create_dumb` (six `__u32` then one
        // `__u64`, 32 bytes, pinned by `struct_layouts_match_uapi`); it holds no pointers. The
        // device fd is owned by `self`, so it is open for the call.
        unsafe { ioctl_retry(self.fd.as_fd(), DRM_IOCTL_MODE_CREATE_DUMB, &mut arg) }.map_err(
            |errno| {
                self.ioctl_error(
                    IOCTL,
                    format!("width {width}, height {height}, bpp {bpp}"),
                    errno,
                )
            },
        )?;
        let buffer = DumbBuffer {
            handle: GemHandle(arg.handle),
            width,
            height,
            bpp,
            pitch: arg.pitch,
            size: arg.size,
        };
        // The row must hold `width` pixels and the buffer `height` rows; a buffer that does not
        // would let a later writer run off its end.
        let min_pitch = (u64::from(width) * u64::from(bpp)).div_ceil(8);
        let min_size = u64::from(arg.pitch) * u64::from(height);
        if u64::from(arg.pitch) < min_pitch || arg.size < min_size {
            return Err(self.invalid_reply(
                IOCTL,
                format!(
                    "pitch {} / size {} too small for {width}x{height} at {bpp} bpp",
                    arg.pitch, arg.size
                ),
            ));
        }
        tracing::debug!(?buffer, "created dumb buffer");
        Ok(buffer)
    }

    /// Destroys a dumb buffer's handle (`DRM_IOCTL_MODE_DESTROY_DUMB`). DMA-BUFs exported from
    /// it keep the memory alive until they are closed.
    pub fn destroy_dumb(&self, buffer: DumbBuffer) -> Result<(), DrmError> {
        let mut arg = DrmModeDestroyDumb {
            handle: buffer.handle.raw(),
        };
        // SAFETY: `DrmModeDestroyDumb` mirrors `struct drm_mode_destroy_dumb` (one `__u32`,
        // 4 bytes, pinned by `struct_layouts_match_uapi`); no pointers. The fd is owned by `self`.
        unsafe { ioctl_retry(self.fd.as_fd(), DRM_IOCTL_MODE_DESTROY_DUMB, &mut arg) }.map_err(
            |errno| {
                self.ioctl_error(
                    "DRM_IOCTL_MODE_DESTROY_DUMB",
                    format!("handle {}", buffer.handle.raw()),
                    errno,
                )
            },
        )
    }

    /// Closes any GEM handle (`DRM_IOCTL_GEM_CLOSE`).
    pub fn gem_close(&self, handle: GemHandle) -> Result<(), DrmError> {
        let mut arg = DrmGemClose {
            handle: handle.raw(),
            pad: 0,
        };
        // SAFETY: `DrmGemClose` mirrors `struct drm_gem_close` (two `__u32`, 8 bytes, pinned by
        // `struct_layouts_match_uapi`); no pointers. The fd is owned by `self`.
        unsafe { ioctl_retry(self.fd.as_fd(), DRM_IOCTL_GEM_CLOSE, &mut arg) }.map_err(|errno| {
            self.ioctl_error(
                "DRM_IOCTL_GEM_CLOSE",
                format!("handle {}", handle.raw()),
                errno,
            )
        })
    }

    /// Exports a buffer as a DMA-BUF fd (`DRM_IOCTL_PRIME_HANDLE_TO_FD`).
    ///
    /// Ownership: the caller owns the returned fd. It is close-on-exec (`DRM_CLOEXEC` is always
    /// passed) and holds its own reference on the buffer, so it stays valid after the handle is
    /// destroyed and after this device is dropped.
    ///
    /// DRM keeps one DMA-BUF per buffer object: exporting the same handle again returns a new fd
    /// of the *same* DMA-BUF file, whose access was fixed by the first export; `access` then has
    /// no effect. To hand out a read-only view, the first export must be `ReadOnly`.
    pub fn prime_export(
        &self,
        handle: GemHandle,
        access: PrimeAccess,
    ) -> Result<OwnedFd, DrmError> {
        const IOCTL: &str = "DRM_IOCTL_PRIME_HANDLE_TO_FD";
        let flags = match access {
            PrimeAccess::ReadOnly => DRM_CLOEXEC,
            PrimeAccess::ReadWrite => DRM_CLOEXEC | DRM_RDWR,
        };
        let mut arg = DrmPrimeHandle {
            handle: handle.raw(),
            flags,
            fd: -1,
        };
        // SAFETY: `DrmPrimeHandle` mirrors `struct drm_prime_handle` (`__u32 handle; __u32 flags;
        // __s32 fd;`, 12 bytes, pinned by `struct_layouts_match_uapi`); no pointers. The fd is
        // owned by `self`, so it is open for the call.
        unsafe { ioctl_retry(self.fd.as_fd(), DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut arg) }.map_err(
            |errno| {
                self.ioctl_error(
                    IOCTL,
                    format!("handle {}, flags {flags:#x}", handle.raw()),
                    errno,
                )
            },
        )?;
        if arg.fd < 0 {
            return Err(self.invalid_reply(IOCTL, format!("fd {}", arg.fd)));
        }
        // SAFETY: on success the kernel installed a new DMA-BUF file at `arg.fd` in this
        // process's fd table (`dma_buf_fd` via `drm_gem_prime_handle_to_fd`) and hands it to the
        // caller; nothing else owns it and it is non-negative (checked above), so the `OwnedFd`
        // becomes its sole owner and closes it exactly once.
        Ok(unsafe { OwnedFd::from_raw_fd(arg.fd) })
    }

    /// Attaches a new, unsignalled vgem fence to a buffer's reservation object
    /// (`DRM_IOCTL_VGEM_FENCE_ATTACH`), as a write fence if `write`, else as a read fence.
    ///
    /// Fails with `EBUSY` when attaching a write fence to a buffer with unsignalled fences.
    pub fn vgem_fence_attach(&self, handle: GemHandle, write: bool) -> Result<FenceId, DrmError> {
        let flags = if write { VGEM_FENCE_WRITE } else { 0 };
        let mut arg = DrmVgemFenceAttach {
            handle: handle.raw(),
            flags,
            out_fence: 0,
            pad: 0,
        };
        // SAFETY: `DrmVgemFenceAttach` mirrors `struct drm_vgem_fence_attach` (four `__u32`,
        // 16 bytes, pinned by `struct_layouts_match_uapi`); no pointers. The fd is owned by
        // `self`. On a driver other than vgem the driver-private number is unknown or means
        // something else with a different size, so the ioctl fails instead of misreading.
        unsafe { ioctl_retry(self.fd.as_fd(), DRM_IOCTL_VGEM_FENCE_ATTACH, &mut arg) }.map_err(
            |errno| {
                self.ioctl_error(
                    "DRM_IOCTL_VGEM_FENCE_ATTACH",
                    format!("handle {}, flags {flags:#x}", handle.raw()),
                    errno,
                )
            },
        )?;
        Ok(FenceId(arg.out_fence))
    }

    /// Signals a vgem fence (`DRM_IOCTL_VGEM_FENCE_SIGNAL`). Fails with `ETIMEDOUT` if vgem's
    /// own timeout signalled it first, `ENOENT` if the id is unknown on this device file.
    pub fn vgem_fence_signal(&self, fence: FenceId) -> Result<(), DrmError> {
        let mut arg = DrmVgemFenceSignal {
            fence: fence.raw(),
            flags: 0,
        };
        // SAFETY: `DrmVgemFenceSignal` mirrors `struct drm_vgem_fence_signal` (two `__u32`,
        // 8 bytes, pinned by `struct_layouts_match_uapi`); no pointers. The fd is owned by `self`.
        unsafe { ioctl_retry(self.fd.as_fd(), DRM_IOCTL_VGEM_FENCE_SIGNAL, &mut arg) }.map_err(
            |errno| {
                self.ioctl_error(
                    "DRM_IOCTL_VGEM_FENCE_SIGNAL",
                    format!("fence {}", fence.raw()),
                    errno,
                )
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn core_ioctl_numbers_match_uapi() {
        // Type 'd' = 0x64 in bits 8..16; direction in bits 30..32; size in bits 16..30.
        // DRM_IOW(0x09, struct drm_gem_close): 1 << 30 | 8 << 16 | 0x64 << 8 | 0x09
        //   = 0x4000_0000 | 0x0008_0000 | 0x6409 = 0x4008_6409.
        assert_eq!(DRM_IOCTL_GEM_CLOSE, 0x4008_6409);
        // DRM_IOWR(0x2d, struct drm_prime_handle): 3 << 30 | 12 << 16 | 0x64 << 8 | 0x2d
        //   = 0xC000_0000 | 0x000C_0000 | 0x642D = 0xC00C_642D.
        assert_eq!(DRM_IOCTL_PRIME_HANDLE_TO_FD, 0xC00C_642D);
        // DRM_IOWR(0xB2, struct drm_mode_create_dumb): 3 << 30 | 32 << 16 | 0x64 << 8 | 0xB2
        //   = 0xC000_0000 | 0x0020_0000 | 0x64B2 = 0xC020_64B2.
        assert_eq!(DRM_IOCTL_MODE_CREATE_DUMB, 0xC020_64B2);
        // DRM_IOWR(0xB4, struct drm_mode_destroy_dumb): 3 << 30 | 4 << 16 | 0x64 << 8 | 0xB4
        //   = 0xC000_0000 | 0x0004_0000 | 0x64B4 = 0xC004_64B4.
        assert_eq!(DRM_IOCTL_MODE_DESTROY_DUMB, 0xC004_64B4);
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn version_ioctl_number_matches_uapi_on_64_bit() {
        // DRM_IOWR(0x00, struct drm_version) with a 64-byte struct: 3 << 30 | 64 << 16 | 0x6400
        //   = 0xC000_0000 | 0x0040_0000 | 0x6400 = 0xC040_6400.
        assert_eq!(DRM_IOCTL_VERSION, 0xC040_6400);
    }

    #[test]
    fn vgem_ioctl_numbers_match_uapi() {
        // DRM_COMMAND_BASE + DRM_VGEM_FENCE_ATTACH = 0x40 + 1 = 0x41.
        // DRM_IOWR(0x41, struct drm_vgem_fence_attach): 3 << 30 | 16 << 16 | 0x64 << 8 | 0x41
        //   = 0xC000_0000 | 0x0010_0000 | 0x6441 = 0xC010_6441.
        assert_eq!(DRM_IOCTL_VGEM_FENCE_ATTACH, 0xC010_6441);
        // DRM_IOW(0x42, struct drm_vgem_fence_signal): 1 << 30 | 8 << 16 | 0x64 << 8 | 0x42
        //   = 0x4000_0000 | 0x0008_0000 | 0x6442 = 0x4008_6442.
        assert_eq!(DRM_IOCTL_VGEM_FENCE_SIGNAL, 0x4008_6442);
    }

    #[test]
    fn flag_values_match_uapi() {
        // DRM_CLOEXEC is O_CLOEXEC (02000000 octal on the generic layout), DRM_RDWR is O_RDWR.
        #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
        assert_eq!(DRM_CLOEXEC, 0o2_000_000);
        assert_eq!(DRM_RDWR, 2);
        assert_eq!(VGEM_FENCE_WRITE, 1);
        assert_eq!(DRM_IOCTL_BASE, 0x64);
        assert_eq!(DRM_COMMAND_BASE, 0x40);
    }

    #[test]
    fn struct_layouts_match_uapi() {
        assert_eq!(size_of::<DrmGemClose>(), 8);
        assert_eq!(offset_of!(DrmGemClose, pad), 4);

        assert_eq!(size_of::<DrmPrimeHandle>(), 12);
        assert_eq!(offset_of!(DrmPrimeHandle, flags), 4);
        assert_eq!(offset_of!(DrmPrimeHandle, fd), 8);

        assert_eq!(size_of::<DrmModeCreateDumb>(), 32);
        assert_eq!(offset_of!(DrmModeCreateDumb, height), 0);
        assert_eq!(offset_of!(DrmModeCreateDumb, width), 4);
        assert_eq!(offset_of!(DrmModeCreateDumb, bpp), 8);
        assert_eq!(offset_of!(DrmModeCreateDumb, flags), 12);
        assert_eq!(offset_of!(DrmModeCreateDumb, handle), 16);
        assert_eq!(offset_of!(DrmModeCreateDumb, pitch), 20);
        assert_eq!(offset_of!(DrmModeCreateDumb, size), 24);

        assert_eq!(size_of::<DrmModeDestroyDumb>(), 4);

        assert_eq!(size_of::<DrmVgemFenceAttach>(), 16);
        assert_eq!(offset_of!(DrmVgemFenceAttach, flags), 4);
        assert_eq!(offset_of!(DrmVgemFenceAttach, out_fence), 8);
        assert_eq!(offset_of!(DrmVgemFenceAttach, pad), 12);

        assert_eq!(size_of::<DrmVgemFenceSignal>(), 8);
        assert_eq!(offset_of!(DrmVgemFenceSignal, flags), 4);

        // struct drm_version: three ints (12 bytes), padding to pointer alignment, then six
        // pointer-sized fields.
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(size_of::<DrmVersion>(), 64);
            assert_eq!(offset_of!(DrmVersion, name_len), 16);
            assert_eq!(offset_of!(DrmVersion, name), 24);
            assert_eq!(offset_of!(DrmVersion, date_len), 32);
            assert_eq!(offset_of!(DrmVersion, desc), 56);
        }
        #[cfg(target_pointer_width = "32")]
        assert_eq!(size_of::<DrmVersion>(), 36);
    }

    /// Opening something that is not a DRM node and asking it for its driver fails with the
    /// ioctl named, instead of misreading memory.
    #[test]
    fn non_drm_fd_fails_with_named_ioctl() {
        let dev = DrmDevice::open("/dev/null").expect("open /dev/null read-write");
        let err = dev
            .driver_name()
            .expect_err("DRM_IOCTL_VERSION on /dev/null");
        match &err {
            DrmError::Ioctl {
                ioctl, path, errno, ..
            } => {
                assert_eq!(*ioctl, "DRM_IOCTL_VERSION");
                assert_eq!(path, Path::new("/dev/null"));
                assert_eq!(*errno, nix::Error::ENOTTY);
            }
            other => panic!("unexpected error {other}"),
        }
        assert!(err.to_string().contains("DRM_IOCTL_VERSION"), "{err}");
        assert!(matches!(
            DrmDevice::open("/nonexistent/card0"),
            Err(DrmError::Open { source, .. }) if source.kind() == std::io::ErrorKind::NotFound
        ));
    }
}

/// `DRM_IOCTL_PRIME_FD_TO_HANDLE = DRM_IOWR(0x2e, struct drm_prime_handle)`.
pub const DRM_IOCTL_PRIME_FD_TO_HANDLE: u32 = iowr::<DrmPrimeHandle>(DRM_IOCTL_BASE, 0x2e);

impl DrmDevice {
    /// Imports a DMA-BUF into this device (`DRM_IOCTL_PRIME_FD_TO_HANDLE`), returning the GEM
    /// handle that names it here. Importing the same buffer twice returns the same handle; the
    /// handle lives until [`DrmDevice::gem_close`] or until this device is closed.
    pub fn prime_fd_to_handle(&self, buf: BorrowedFd<'_>) -> Result<GemHandle, DrmError> {
        const IOCTL: &str = "DRM_IOCTL_PRIME_FD_TO_HANDLE";
        let fd = std::os::fd::AsRawFd::as_raw_fd(&buf);
        let mut arg = DrmPrimeHandle {
            handle: 0,
            flags: 0,
            fd,
        };
        // SAFETY: `DrmPrimeHandle` mirrors `struct drm_prime_handle` (12 bytes, pinned by
        // `struct_layouts_match_uapi`); no pointers. `buf` is borrowed, so the fd the kernel
        // looks up is open for the call; the device fd is owned by `self`.
        unsafe { ioctl_retry(self.fd.as_fd(), DRM_IOCTL_PRIME_FD_TO_HANDLE, &mut arg) }
            .map_err(|errno| self.ioctl_error(IOCTL, format!("dma-buf fd {fd}"), errno))?;
        Ok(GemHandle(arg.handle))
    }
}

#[cfg(test)]
mod prime_import_tests {
    use super::*;

    #[test]
    fn prime_fd_to_handle_number() {
        // DRM_IOWR(0x2e, struct drm_prime_handle): 3 << 30 | 12 << 16 | 0x64 << 8 | 0x2e.
        assert_eq!(DRM_IOCTL_PRIME_FD_TO_HANDLE, 0xC00C_642E);
    }
}
