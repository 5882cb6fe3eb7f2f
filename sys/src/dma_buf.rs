//! DMA-BUF file descriptors: CPU access brackets, fence export, identification.
//!
//! A DMA-BUF is a kernel buffer object shared between devices and processes through a file
//! descriptor. This module owns no buffers: it borrows a DMA-BUF fd (`BorrowedFd`) for the length
//! of each call and hands back new fds as `OwnedFd`. Whoever holds the DMA-BUF fd keeps the buffer
//! alive; closing the last fd (and dropping the last mapping and importer reference) frees it.
//!
//! Where this sits in a frame's journey ([`crate::drm`] is the exporter side):
//!
//! 1. The GPU process creates a buffer and exports it as a DMA-BUF fd (`DRM_IOCTL_PRIME_HANDLE_TO_FD`).
//! 2. After queueing its rendering it calls [`export_sync_file`] to get a `sync_file` fd that
//!    signals when the writes in flight on the buffer are done, and sends both fds on.
//! 3. The renderer waits on the `sync_file` (it becomes readable when signalled) with a deadline,
//!    then brackets its CPU reads of the mapping with a [`CpuAccess`] guard, which issues
//!    `DMA_BUF_IOCTL_SYNC` with `SYNC_START` on creation and `SYNC_END` on drop, so that the
//!    exporter can flush or invalidate caches around the access.
//!
//! `SYNC_START` itself waits, without a deadline, for the fences the access conflicts with; so the
//! renderer waits on the exported `sync_file` first, with its own deadline, and only then starts
//! CPU access, which then does not block.
//!
//! The numbers come from
//! [`include/uapi/linux/dma-buf.h`](https://github.com/torvalds/linux/blob/master/include/uapi/linux/dma-buf.h)
//! through the `_IOC` formula in [`crate::ioctl`]; the semantics are described in
//! <https://docs.kernel.org/driver-api/dma-buf.html> ("CPU Access to DMA Buffer Objects",
//! "Implicit Fence Poll Support") and in the kernel-doc of the header.
//! `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` exists since Linux 6.0.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::ioctl::{ioctl_retry, iow, iowr};

/// The ioctl type byte of DMA-BUF (`DMA_BUF_BASE`, `'b'`).
pub const DMA_BUF_BASE: u8 = b'b';

/// Argument of [`DMA_BUF_IOCTL_SYNC`] (`struct dma_buf_sync`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaBufSync {
    /// `DMA_BUF_SYNC_*` bits: one of `START`/`END`, and `READ`, `WRITE` or both.
    pub flags: u64,
}

/// Argument of [`DMA_BUF_IOCTL_EXPORT_SYNC_FILE`] (`struct dma_buf_export_sync_file`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaBufExportSyncFile {
    /// In: `DMA_BUF_SYNC_READ` (the fences a reader waits for: the writers), `DMA_BUF_SYNC_WRITE`
    /// or both (the fences a writer waits for: every reader and writer).
    pub flags: u32,
    /// Out: the new `sync_file` fd.
    pub fd: i32,
}

/// CPU access is for reading (`DMA_BUF_SYNC_READ`, `1 << 0`).
pub const DMA_BUF_SYNC_READ: u64 = 1 << 0;
/// CPU access is for writing (`DMA_BUF_SYNC_WRITE`, `2 << 0`).
#[allow(clippy::identity_op, reason = "spelled as in the uapi header")]
pub const DMA_BUF_SYNC_WRITE: u64 = 2 << 0;
/// CPU access is for reading and writing (`DMA_BUF_SYNC_RW`).
pub const DMA_BUF_SYNC_RW: u64 = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE;
/// CPU access begins (`DMA_BUF_SYNC_START`, `0 << 2`).
#[allow(clippy::erasing_op, reason = "spelled as in the uapi header")]
pub const DMA_BUF_SYNC_START: u64 = 0 << 2;
/// CPU access ends (`DMA_BUF_SYNC_END`, `1 << 2`).
pub const DMA_BUF_SYNC_END: u64 = 1 << 2;
/// Every bit the kernel accepts in [`DmaBufSync::flags`] (`DMA_BUF_SYNC_VALID_FLAGS_MASK`).
pub const DMA_BUF_SYNC_VALID_FLAGS_MASK: u64 = DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END;

/// `DMA_BUF_IOCTL_SYNC = _IOW(DMA_BUF_BASE, 0, struct dma_buf_sync)`: begin or end CPU access.
pub const DMA_BUF_IOCTL_SYNC: u32 = iow::<DmaBufSync>(DMA_BUF_BASE, 0);
/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE = _IOWR(DMA_BUF_BASE, 2, struct dma_buf_export_sync_file)`:
/// get the buffer's current implicit fences as one `sync_file` fd.
pub const DMA_BUF_IOCTL_EXPORT_SYNC_FILE: u32 = iowr::<DmaBufExportSyncFile>(DMA_BUF_BASE, 2);
/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE = _IOW(DMA_BUF_BASE, 3, struct dma_buf_import_sync_file)`:
/// add a sync_file's fence to the buffer's implicit fences, which every later user of the buffer
/// then waits for. Not called by triptych: named so that the renderer's sandbox can be shown to
/// refuse it (a reader that could add fences could stall the buffer's writer).
pub const DMA_BUF_IOCTL_IMPORT_SYNC_FILE: u32 = iow::<DmaBufExportSyncFile>(DMA_BUF_BASE, 3);

/// `f_type` that `fstatfs` reports for a DMA-BUF fd (`DMA_BUF_MAGIC`, "DMAB", from
/// [`include/uapi/linux/magic.h`](https://github.com/torvalds/linux/blob/master/include/uapi/linux/magic.h)).
pub const DMA_BUF_MAGIC: u64 = 0x444d_4142;

/// Errors from DMA-BUF calls.
#[derive(Debug, thiserror::Error)]
pub enum DmaBufError {
    /// An ioctl failed. `ENOTTY` means the fd is not a DMA-BUF (or the kernel is older than the
    /// ioctl); `EINVAL` means the flags were refused.
    #[error("{ioctl} (flags {flags:#x}) on fd {fd} failed: {errno}")]
    Ioctl {
        /// The ioctl's name, as in the uapi header.
        ioctl: &'static str,
        /// The DMA-BUF fd, for the message only.
        fd: i32,
        /// The flags passed.
        flags: u64,
        /// The error the kernel returned.
        errno: nix::Error,
    },
    /// The kernel reported success but returned a negative fd.
    #[error("{ioctl} on fd {fd} reported success with an invalid fd {returned}")]
    InvalidReturnedFd {
        /// The ioctl's name.
        ioctl: &'static str,
        /// The DMA-BUF fd, for the message only.
        fd: i32,
        /// What the kernel wrote back.
        returned: i32,
    },
    /// `fstatfs` failed while checking what an fd is.
    #[error("fstatfs on fd {fd} failed: {errno}")]
    Fstatfs {
        /// The fd, for the message only.
        fd: i32,
        /// The error.
        errno: nix::Error,
    },
}

/// The direction of a CPU access or of the fences to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncAccess {
    /// Reading (`DMA_BUF_SYNC_READ`).
    Read,
    /// Writing (`DMA_BUF_SYNC_WRITE`).
    Write,
    /// Both (`DMA_BUF_SYNC_RW`).
    ReadWrite,
}

impl SyncAccess {
    /// The `DMA_BUF_SYNC_READ`/`WRITE` bits.
    pub const fn bits(self) -> u64 {
        match self {
            SyncAccess::Read => DMA_BUF_SYNC_READ,
            SyncAccess::Write => DMA_BUF_SYNC_WRITE,
            SyncAccess::ReadWrite => DMA_BUF_SYNC_RW,
        }
    }
}

/// Valid `DMA_BUF_IOCTL_SYNC` flags: a phase (start or end) and a direction.
///
/// Built only from a phase and a [`SyncAccess`], or checked by [`SyncFlags::from_bits`], so the
/// kernel never sees a combination it rejects with `EINVAL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SyncFlags(u64);

impl SyncFlags {
    /// `DMA_BUF_SYNC_START | access`: CPU access begins.
    pub const fn start(access: SyncAccess) -> Self {
        Self(DMA_BUF_SYNC_START | access.bits())
    }

    /// `DMA_BUF_SYNC_END | access`: CPU access ends.
    pub const fn end(access: SyncAccess) -> Self {
        Self(DMA_BUF_SYNC_END | access.bits())
    }

    /// Checks raw bits the way `dma_buf_ioctl` does: no bits outside
    /// `DMA_BUF_SYNC_VALID_FLAGS_MASK`, and at least one of `READ`/`WRITE`.
    pub const fn from_bits(bits: u64) -> Option<Self> {
        if bits & !DMA_BUF_SYNC_VALID_FLAGS_MASK != 0 || bits & DMA_BUF_SYNC_RW == 0 {
            None
        } else {
            Some(Self(bits))
        }
    }

    /// The raw bits passed to the kernel.
    pub const fn bits(self) -> u64 {
        self.0
    }
}

/// Issues `DMA_BUF_IOCTL_SYNC` on `buf`, retrying `EINTR` and `EAGAIN`.
///
/// `SYNC_START` waits, without a deadline, for the fences that conflict with the access; wait on
/// an exported `sync_file` with a deadline first (see the module docs). Prefer [`CpuAccess`],
/// which cannot forget the matching `SYNC_END`.
pub fn sync(buf: BorrowedFd<'_>, flags: SyncFlags) -> Result<(), DmaBufError> {
    let mut arg = DmaBufSync {
        flags: flags.bits(),
    };
    // SAFETY: `DmaBufSync` is the exact mirror of `struct dma_buf_sync` (one `__u64`, 8 bytes,
    // pinned by `struct_layouts_match_uapi`), which is what `DMA_BUF_IOCTL_SYNC` reads; it holds
    // no pointers. `buf` is borrowed, so it is open for the call. If `buf` is not a DMA-BUF, its
    // driver sees a request number it does not know and fails with ENOTTY or EINVAL, because
    // the type byte and size are part of the number.
    unsafe { ioctl_retry(buf, DMA_BUF_IOCTL_SYNC, &mut arg) }.map_err(|errno| DmaBufError::Ioctl {
        ioctl: "DMA_BUF_IOCTL_SYNC",
        fd: buf.as_raw_fd(),
        flags: flags.bits(),
        errno,
    })
}

/// Exports the fences currently attached to `buf` as a new `sync_file` fd.
///
/// With [`SyncAccess::Read`] the `sync_file` signals when the buffer's pending *writes* are done
/// (what a reader waits for); with `Write` or `ReadWrite`, when all pending reads and writes are
/// done (what a writer waits for). With no fence pending, it is a `sync_file` that is already
/// signalled. The fences are a snapshot: fences attached later are not included.
///
/// Ownership: the caller owns the returned fd, which is close-on-exec (the kernel allocates it
/// with `get_unused_fd_flags(O_CLOEXEC)` in `dma_buf_export_sync_file`). It holds a reference on
/// the fence, not on the buffer; dropping it does not affect the fence or the buffer. It becomes
/// readable (`POLLIN`) when the fence signals.
pub fn export_sync_file(buf: BorrowedFd<'_>, access: SyncAccess) -> Result<OwnedFd, DmaBufError> {
    let flags = access.bits();
    let mut arg = DmaBufExportSyncFile {
        // The three `SyncAccess` values are 1, 2 and 3: they fit the `__u32` field.
        flags: flags as u32,
        fd: -1,
    };
    // SAFETY: `DmaBufExportSyncFile` is the exact mirror of `struct dma_buf_export_sync_file`
    // (`__u32 flags; __s32 fd;`, 8 bytes, pinned by `struct_layouts_match_uapi`); the kernel reads
    // `flags` and writes `fd`, and it holds no pointers. `buf` is borrowed, so it is open for the
    // call.
    unsafe { ioctl_retry(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &mut arg) }.map_err(|errno| {
        DmaBufError::Ioctl {
            ioctl: "DMA_BUF_IOCTL_EXPORT_SYNC_FILE",
            fd: buf.as_raw_fd(),
            flags,
            errno,
        }
    })?;
    if arg.fd < 0 {
        return Err(DmaBufError::InvalidReturnedFd {
            ioctl: "DMA_BUF_IOCTL_EXPORT_SYNC_FILE",
            fd: buf.as_raw_fd(),
            returned: arg.fd,
        });
    }
    // SAFETY: on success the kernel has installed a new sync_file at `arg.fd` in this process's
    // fd table (`fd_install` in `dma_buf_export_sync_file`) and hands it to us: no other owner
    // exists, and it is non-negative (checked above), so wrapping it transfers sole ownership to
    // the returned `OwnedFd`, which closes it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(arg.fd) })
}

/// Whether `fd` refers to a DMA-BUF.
///
/// One `fstatfs` call: every DMA-BUF lives on the kernel's internal `dmabuf` pseudo file system,
/// whose superblock reports `f_type == DMA_BUF_MAGIC` (`dma_buf_fs_init_context` in
/// `drivers/dma-buf/dma-buf.c`). It needs no `/proc` and no ioctl, so it also works under a
/// seccomp filter that allows `fstatfs`. (`/proc/self/fdinfo/<fd>` would show an `exp_name:`
/// line, and `/proc/self/fd/<fd>` a `/dmabuf:` link, at the cost of opening `/proc` files.)
pub fn is_dma_buf(fd: BorrowedFd<'_>) -> Result<bool, DmaBufError> {
    let stat = nix::sys::statfs::fstatfs(fd).map_err(|errno| DmaBufError::Fstatfs {
        fd: fd.as_raw_fd(),
        errno,
    })?;
    // `f_type` is a signed or unsigned word depending on the libc; the magic is positive and
    // below 2^31, so comparing as u64 is exact on every width.
    Ok(stat.filesystem_type().0 as u64 == DMA_BUF_MAGIC)
}

/// A bracket of CPU access to a DMA-BUF: `SYNC_START` when created, `SYNC_END` when dropped.
///
/// Hold it across every CPU read or write of the buffer's mapping. It borrows the fd, so the
/// buffer cannot be closed while the bracket is open. Call [`CpuAccess::end`] to see the error of
/// `SYNC_END`; on drop, an error is logged.
#[derive(Debug)]
#[must_use = "dropping the guard ends the CPU access at once"]
pub struct CpuAccess<'fd> {
    buf: BorrowedFd<'fd>,
    access: SyncAccess,
    open: bool,
}

impl<'fd> CpuAccess<'fd> {
    /// Begins CPU access (`DMA_BUF_SYNC_START | access`).
    ///
    /// Waits without a deadline for conflicting fences; see the module docs.
    pub fn begin(buf: BorrowedFd<'fd>, access: SyncAccess) -> Result<Self, DmaBufError> {
        sync(buf, SyncFlags::start(access))?;
        Ok(Self {
            buf,
            access,
            open: true,
        })
    }

    /// The direction this bracket was opened for.
    pub fn access(&self) -> SyncAccess {
        self.access
    }

    /// Ends CPU access (`DMA_BUF_SYNC_END | access`) and reports its result.
    pub fn end(mut self) -> Result<(), DmaBufError> {
        self.open = false;
        sync(self.buf, SyncFlags::end(self.access))
    }
}

impl Drop for CpuAccess<'_> {
    fn drop(&mut self) {
        if self.open {
            if let Err(error) = sync(self.buf, SyncFlags::end(self.access)) {
                tracing::error!(fd = self.buf.as_raw_fd(), %error, "ending DMA-BUF CPU access failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};
    use std::os::fd::AsFd;

    #[test]
    fn ioctl_numbers_match_uapi() {
        // _IOW('b', 0, struct dma_buf_sync): dir 1 (_IOC_WRITE), size 8, type 0x62, nr 0
        //   = 1 << 30 | 8 << 16 | 0x62 << 8 | 0 = 0x4000_0000 | 0x0008_0000 | 0x6200 = 0x4008_6200.
        assert_eq!(DMA_BUF_IOCTL_SYNC, 0x4008_6200);
        // _IOWR('b', 2, struct dma_buf_export_sync_file): dir 3, size 8, type 0x62, nr 2
        //   = 3 << 30 | 8 << 16 | 0x62 << 8 | 2 = 0xC000_0000 | 0x0008_0000 | 0x6202 = 0xC008_6202.
        assert_eq!(DMA_BUF_IOCTL_EXPORT_SYNC_FILE, 0xC008_6202);
        // _IOW('b', 3, struct dma_buf_import_sync_file): dir 1, size 8, type 0x62, nr 3.
        assert_eq!(DMA_BUF_IOCTL_IMPORT_SYNC_FILE, 0x4008_6203);
        assert_eq!(DMA_BUF_BASE, 0x62);
    }

    #[test]
    fn struct_layouts_match_uapi() {
        assert_eq!(size_of::<DmaBufSync>(), 8);
        assert_eq!(align_of::<DmaBufSync>(), 8);
        assert_eq!(offset_of!(DmaBufSync, flags), 0);
        assert_eq!(size_of::<DmaBufExportSyncFile>(), 8);
        assert_eq!(offset_of!(DmaBufExportSyncFile, flags), 0);
        assert_eq!(offset_of!(DmaBufExportSyncFile, fd), 4);
    }

    #[test]
    fn flag_values_match_uapi() {
        assert_eq!(DMA_BUF_SYNC_READ, 1);
        assert_eq!(DMA_BUF_SYNC_WRITE, 2);
        assert_eq!(DMA_BUF_SYNC_RW, 3);
        assert_eq!(DMA_BUF_SYNC_START, 0);
        assert_eq!(DMA_BUF_SYNC_END, 4);
        assert_eq!(DMA_BUF_SYNC_VALID_FLAGS_MASK, 7);
        assert_eq!(DMA_BUF_MAGIC.to_be_bytes()[4..], *b"DMAB");
    }

    #[test]
    fn sync_flags_compose_and_validate() {
        assert_eq!(SyncFlags::start(SyncAccess::Read).bits(), 1);
        assert_eq!(SyncFlags::start(SyncAccess::ReadWrite).bits(), 3);
        assert_eq!(SyncFlags::end(SyncAccess::Write).bits(), 6);
        assert_eq!(SyncFlags::end(SyncAccess::ReadWrite).bits(), 7);
        for bits in 0..=16u64 {
            let valid = bits <= 7 && bits & 3 != 0;
            assert_eq!(
                SyncFlags::from_bits(bits).is_some(),
                valid,
                "bits {bits:#x}"
            );
        }
        assert_eq!(
            SyncFlags::from_bits(5),
            Some(SyncFlags::end(SyncAccess::Read))
        );
    }

    /// A regular file is not a DMA-BUF: the ioctls fail with the kernel's "not for this file"
    /// error and `is_dma_buf` says no. The vgem integration test covers the positive case.
    #[test]
    fn non_dma_buf_fds_are_refused() {
        let file = std::fs::File::open("/proc/self/exe").expect("open own executable");
        assert!(!is_dma_buf(file.as_fd()).expect("fstatfs"));
        let err = sync(file.as_fd(), SyncFlags::start(SyncAccess::Read))
            .expect_err("DMA_BUF_IOCTL_SYNC on a regular file");
        match err {
            DmaBufError::Ioctl { ioctl, errno, .. } => {
                assert_eq!(ioctl, "DMA_BUF_IOCTL_SYNC");
                assert_eq!(errno, nix::Error::ENOTTY);
            }
            other => panic!("unexpected error {other}"),
        }
        let err = export_sync_file(file.as_fd(), SyncAccess::Read).expect_err("export on a file");
        assert!(
            matches!(
                err,
                DmaBufError::Ioctl {
                    errno: nix::Error::ENOTTY,
                    ..
                }
            ),
            "unexpected error {err}"
        );
        assert!(CpuAccess::begin(file.as_fd(), SyncAccess::Read).is_err());
    }
}
