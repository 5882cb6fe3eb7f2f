//! Sealed shared-memory buffers (`memfd_create(2)`).
//!
//! The shm backend's buffers are memfds created close-on-exec with sealing allowed, sized once
//! with `ftruncate`, then sealed against shrinking and growing (`F_SEAL_SHRINK | F_SEAL_GROW`) so
//! that a receiver that maps them can never take a `SIGBUS` because the owner truncated the file
//! under it. Writes stay allowed: the buffer is reused frame after frame. See
//! <https://man7.org/linux/man-pages/man2/memfd_create.2.html> and "File seals" in `fcntl(2)`.
//!
//! Where the kernel offers it (Linux 6.3), every memfd is also created `MFD_NOEXEC_SEAL`: not
//! executable, with `F_SEAL_EXEC` so that no holder can `fchmod` it executable, since a pixel
//! buffer is never a program. An older kernel refuses the flag with `EINVAL`; then the memfd is
//! created without it, and [`noexec_seal`] says so (`triptych doctor` shows it).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

/// Errors from memfd operations.
#[derive(Debug, thiserror::Error)]
pub enum MemfdError {
    /// `memfd_create` failed.
    #[error("memfd_create({name:?}) failed: {errno}")]
    Create {
        /// The debug name.
        name: String,
        /// The error.
        errno: nix::Error,
    },
    /// `ftruncate` failed.
    #[error("ftruncate of memfd to {size} bytes failed: {errno}")]
    Truncate {
        /// The requested size.
        size: u64,
        /// The error.
        errno: nix::Error,
    },
    /// Sealing failed.
    #[error("F_ADD_SEALS on memfd failed: {errno}")]
    Seal {
        /// The error.
        errno: nix::Error,
    },
    /// The seals read back are not the ones expected.
    #[error("memfd seals are {found:#x}, expected at least {wanted:#x}")]
    Seals {
        /// The seals the file has.
        found: i32,
        /// The seals required.
        wanted: i32,
    },
}

/// Creates a memfd of `size` bytes, sealed against shrinking and growing, and against further
/// seals.
pub fn create_sealed(name: &CStr, size: u64) -> Result<OwnedFd, MemfdError> {
    let fd = create_for_export(name, size)?;
    fcntl(fd.as_raw_fd(), FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SEAL))
        .map_err(|errno| MemfdError::Seal { errno })?;
    Ok(fd)
}

/// `MFD_NOEXEC_SEAL` from `include/uapi/linux/memfd.h` (Linux 6.3).
pub const MFD_NOEXEC_SEAL: u32 = 0x0008;
/// `F_SEAL_EXEC` from `include/uapi/linux/fcntl.h` (Linux 6.3).
pub const F_SEAL_EXEC: i32 = 0x0020;

/// 0: not yet known, 1: the kernel takes `MFD_NOEXEC_SEAL`, 2: it refused it.
static NOEXEC_SEAL: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Whether this kernel creates memfds `MFD_NOEXEC_SEAL` (asks it once, with a throw-away
/// memfd, if no memfd was created yet).
pub fn noexec_seal() -> bool {
    if NOEXEC_SEAL.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        let _ = memfd(c"triptych-noexec-probe");
    }
    NOEXEC_SEAL.load(std::sync::atomic::Ordering::Relaxed) == 1
}

/// A close-on-exec memfd that allows sealing, `MFD_NOEXEC_SEAL` where the kernel takes it.
fn memfd(name: &CStr) -> Result<OwnedFd, MemfdError> {
    use std::sync::atomic::Ordering::Relaxed;
    let base = MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING;
    let err = |errno| MemfdError::Create {
        name: name.to_string_lossy().into_owned(),
        errno,
    };
    if NOEXEC_SEAL.load(Relaxed) != 2 {
        let noexec = MemFdCreateFlag::from_bits_retain(MFD_NOEXEC_SEAL);
        match memfd_create(name, base | noexec) {
            Ok(fd) => {
                NOEXEC_SEAL.store(1, Relaxed);
                return Ok(fd);
            }
            // EINVAL may also mean a bad name: the flag counts as refused only when the same
            // call without it succeeds.
            Err(nix::Error::EINVAL) => {
                let fd = memfd_create(name, base).map_err(err)?;
                NOEXEC_SEAL.store(2, Relaxed);
                return Ok(fd);
            }
            Err(e) => return Err(err(e)),
        }
    }
    memfd_create(name, base).map_err(err)
}

/// Creates a memfd of `size` bytes sealed against shrinking and growing but not yet against
/// further seals, for [`seal_future_write`] once the creator holds its writable mapping.
pub fn create_for_export(name: &CStr, size: u64) -> Result<OwnedFd, MemfdError> {
    let fd = memfd(name)?;
    nix::unistd::ftruncate(&fd, size as i64)
        .map_err(|errno| MemfdError::Truncate { size, errno })?;
    fcntl(
        fd.as_raw_fd(),
        FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW),
    )
    .map_err(|errno| MemfdError::Seal { errno })?;
    Ok(fd)
}

/// Seals `fd` against new writes (`F_SEAL_FUTURE_WRITE`, Linux 5.1) and further seals: mappings
/// that exist stay writable, but no process can map it writable again or `write(2)` to it.
/// Whoever receives it can only read.
pub fn seal_future_write(fd: BorrowedFd<'_>) -> Result<(), MemfdError> {
    fcntl(
        fd.as_raw_fd(),
        FcntlArg::F_ADD_SEALS(
            SealFlag::from_bits_retain(libc::F_SEAL_FUTURE_WRITE) | SealFlag::F_SEAL_SEAL,
        ),
    )
    .map_err(|errno| MemfdError::Seal { errno })?;
    Ok(())
}

/// Checks that `fd` is sealed against shrinking, so that a mapping of it cannot fault.
pub fn check_no_shrink(fd: BorrowedFd<'_>) -> Result<(), MemfdError> {
    let found =
        fcntl(fd.as_raw_fd(), FcntlArg::F_GET_SEALS).map_err(|errno| MemfdError::Seal { errno })?;
    let wanted = libc::F_SEAL_SHRINK;
    if found & wanted != wanted {
        return Err(MemfdError::Seals { found, wanted });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memfds_are_sealed_non_executable_where_the_kernel_offers_it() {
        let fd = create_sealed(c"noexec", 4096).expect("memfd");
        let seals = fcntl(fd.as_raw_fd(), FcntlArg::F_GET_SEALS).expect("seals");
        let release = crate::proc::kernel_release();
        let mut v = release.split(|c: char| !c.is_ascii_digit());
        let major: u32 = v.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let minor: u32 = v.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        // A kernel from 6.3 on has it (an older one may have it backported).
        if (major, minor) >= (6, 3) {
            assert!(noexec_seal(), "kernel {release} takes MFD_NOEXEC_SEAL");
        }
        if noexec_seal() {
            assert_ne!(
                seals & F_SEAL_EXEC,
                0,
                "seals {seals:#x} on kernel {release}"
            );
            let mode = nix::sys::stat::fstat(fd.as_raw_fd())
                .expect("fstat")
                .st_mode;
            assert_eq!(mode & 0o111, 0, "mode {mode:o}");
        }
        assert_eq!(MFD_NOEXEC_SEAL, libc::MFD_NOEXEC_SEAL);
        assert_eq!(F_SEAL_EXEC, libc::F_SEAL_EXEC);
    }

    #[test]
    fn future_write_seal_keeps_the_creator_writable_and_refuses_others() {
        use crate::mapping::{Access, Mapping};
        use std::os::fd::AsFd;
        let fd = create_for_export(c"fw", 4096).expect("memfd");
        let mut mine = Mapping::new(fd.as_fd(), 4096, Access::ReadWrite).expect("map rw");
        seal_future_write(fd.as_fd()).expect("seal");
        mine.as_mut_slice()[0] = 7;
        assert!(Mapping::new(fd.as_fd(), 4096, Access::ReadWrite).is_err());
        let theirs = Mapping::new(fd.as_fd(), 4096, Access::Read).expect("map ro");
        assert_eq!(theirs.as_slice()[0], 7);
        assert!(nix::unistd::write(&fd, b"x").is_err());
    }
    use std::os::fd::AsFd;

    #[test]
    fn sealed_memfd_refuses_shrink() {
        let fd = create_sealed(c"t", 4096).expect("memfd");
        check_no_shrink(fd.as_fd()).expect("sealed");
        assert_eq!(crate::fd::seek_size(fd.as_fd()).expect("size"), 4096);
        assert!(nix::unistd::ftruncate(&fd, 10).is_err());
        assert!(crate::fd::is_cloexec(&fd).expect("flags"));
    }

    #[test]
    fn unsealed_file_is_rejected() {
        let fd = memfd_create(c"u", MemFdCreateFlag::MFD_CLOEXEC).expect("memfd");
        assert!(matches!(
            check_no_shrink(fd.as_fd()),
            Err(MemfdError::Seals { .. })
        ));
    }
}
