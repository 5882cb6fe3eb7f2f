//! File identity, close-on-exec duplication and the export window.
//!
//! A file crossing from one process to another is described by its *identity*, the
//! `(st_dev, st_ino)` pair of `fstat(2)`: the receiver fetches the fd by number and then proves it
//! got the file that was meant. memfds and DMA-BUFs have one inode each, so the check is exact;
//! eventfds and sync_files share one anonymous inode per kind, so for fences it proves the kind of
//! file, not the instance.
//!
//! The *export window* is a range of fd numbers `[base, base + len)` in the GPU process into which
//! every exported buffer and fence is moved with `fcntl(F_DUPFD_CLOEXEC)`. The renderer's seccomp
//! filter allows `pidfd_getfd` only inside that range, so no other file of the GPU process (its DRM
//! device, its IPC sockets) can be taken.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Errors from fd-level operations.
#[derive(Debug, thiserror::Error)]
pub enum FdError {
    /// `fstat` failed.
    #[error("fstat of fd {fd} failed: {errno}")]
    Fstat {
        /// The fd number.
        fd: i32,
        /// The error.
        errno: nix::Error,
    },
    /// Duplication into the export window failed.
    #[error("could not move fd {fd} into the export window [{base}, {end}): {errno}")]
    Dup {
        /// The fd number.
        fd: i32,
        /// First number of the window.
        base: i32,
        /// One past the last number of the window.
        end: i32,
        /// The error.
        errno: nix::Error,
    },
    /// The window has no free number left.
    #[error("export window [{base}, {end}) is full: the kernel returned fd {got}")]
    WindowFull {
        /// First number of the window.
        base: i32,
        /// One past the last number of the window.
        end: i32,
        /// The number the kernel handed out.
        got: i32,
    },
    /// `lseek` failed.
    #[error("lseek(SEEK_END) of fd {fd} failed: {errno}")]
    Seek {
        /// The fd number.
        fd: i32,
        /// The error.
        errno: nix::Error,
    },
    /// `pipe2` failed.
    #[error("creating a pipe failed: {errno}")]
    Pipe {
        /// The error.
        errno: nix::Error,
    },
    /// `fcntl` failed.
    #[error("fcntl({op}) on fd {fd} failed: {errno}")]
    Fcntl {
        /// Which operation.
        op: &'static str,
        /// The fd number.
        fd: i32,
        /// The error.
        errno: nix::Error,
    },
}

/// Takes ownership of `raw`, an fd a foreign library just returned to the caller (EGL's
/// `eglExportDMABUFImageMESA` or `eglDupNativeFenceFDANDROID`, GBM's `gbm_bo_get_fd`): the one
/// place outside system calls of this crate where a raw fd becomes an `OwnedFd`. `None` for a
/// negative number (the library's failure).
///
/// # Safety
///
/// `raw`, if not negative, must be an open fd that the caller owns and that nothing else will
/// close or adopt: the returned `OwnedFd` closes it exactly once.
pub unsafe fn adopt(raw: RawFd) -> Option<OwnedFd> {
    // SAFETY: the caller guarantees `raw` is an open fd it owns and hands over here, once.
    (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A pipe, both ends close-on-exec: `(read, write)`. The shm backend's fence: the write end's
/// close is the signal.
pub fn pipe_cloexec() -> Result<(OwnedFd, OwnedFd), FdError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|errno| FdError::Pipe { errno })
}

/// Whether `fd` is a FIFO (either end of a pipe), by `fstat` alone.
pub fn is_fifo(fd: BorrowedFd<'_>) -> Result<bool, FdError> {
    use nix::sys::stat::SFlag;
    let raw = fd.as_raw_fd();
    let st = nix::sys::stat::fstat(raw).map_err(|errno| FdError::Fstat { fd: raw, errno })?;
    Ok(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFIFO)
}

/// Whether `fd` is a socket, by `fstat` alone: what a child checks of the control socket it was
/// handed before it trusts it to be one.
pub fn is_socket(fd: BorrowedFd<'_>) -> Result<bool, FdError> {
    use nix::sys::stat::SFlag;
    let raw = fd.as_raw_fd();
    let st = nix::sys::stat::fstat(raw).map_err(|errno| FdError::Fstat { fd: raw, errno })?;
    Ok(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK)
}

/// Whether `fd` is the read end of a pipe (a FIFO opened read-only): a wait-only fence.
pub fn is_pipe_read_end(fd: BorrowedFd<'_>) -> Result<bool, FdError> {
    Ok(is_fifo(fd)? && is_read_only(fd)?)
}

/// Whether `fd` was opened read-only (`O_RDONLY`): a file its holder can map and read, never
/// write.
pub fn is_read_only(fd: BorrowedFd<'_>) -> Result<bool, FdError> {
    let raw = fd.as_raw_fd();
    let fl =
        nix::fcntl::fcntl(raw, nix::fcntl::FcntlArg::F_GETFL).map_err(|errno| FdError::Fcntl {
            op: "F_GETFL",
            fd: raw,
            errno,
        })?;
    Ok(fl & libc::O_ACCMODE == libc::O_RDONLY)
}

/// A new, read-only, close-on-exec open file of the same file as `fd` (opening its
/// `/proc/self/fd` link `O_RDONLY`): what the launcher hands a process that may read a memfd
/// another one writes. The new file shares the inode, so both see the same memory.
pub fn reopen_read_only(fd: BorrowedFd<'_>) -> Result<OwnedFd, FdError> {
    let raw = fd.as_raw_fd();
    std::fs::OpenOptions::new()
        .read(true)
        .open(format!("/proc/self/fd/{raw}"))
        .map(OwnedFd::from)
        .map_err(|e| FdError::Fcntl {
            op: "open(/proc/self/fd, O_RDONLY)",
            fd: raw,
            errno: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })
}

/// The `(st_dev, st_ino)` of a file: what the receiver of a fd checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    /// `st_dev` of the file.
    pub dev: u64,
    /// `st_ino` of the file.
    pub ino: u64,
}

/// Reads the identity of the file behind `fd`.
pub fn identity(fd: BorrowedFd<'_>) -> Result<FileIdentity, FdError> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|errno| FdError::Fstat {
        fd: fd.as_raw_fd(),
        errno,
    })?;
    Ok(FileIdentity {
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// The size of the file behind `fd` as `lseek(fd, 0, SEEK_END)` reports it.
///
/// For a memfd this is its length; for a DMA-BUF the kernel reports the buffer's size (see
/// `dma_buf_llseek` in `drivers/dma-buf/dma-buf.c`). The file position is restored to 0.
pub fn seek_size(fd: BorrowedFd<'_>) -> Result<u64, FdError> {
    use nix::unistd::{lseek, Whence};
    let raw = fd.as_raw_fd();
    let end = lseek(raw, 0, Whence::SeekEnd).map_err(|errno| FdError::Seek { fd: raw, errno })?;
    lseek(raw, 0, Whence::SeekSet).map_err(|errno| FdError::Seek { fd: raw, errno })?;
    Ok(end as u64)
}

/// A range of fd numbers reserved for exported files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportWindow {
    /// First fd number of the window.
    pub base: i32,
    /// Number of fd numbers in the window.
    pub len: i32,
}

impl ExportWindow {
    /// The window used by the GPU process. The base sits far above the numbers a process is
    /// handed in the normal course of things and below the usual soft `RLIMIT_NOFILE` of 1024.
    pub const GPU: ExportWindow = ExportWindow {
        base: 512,
        len: 256,
    };

    /// The most views one GPU process may serve, each with a window of its own
    /// ([`ExportWindow::of_view`]): what the fd numbers of every window need stays well inside
    /// the usual hard `RLIMIT_NOFILE`.
    pub const MAX_VIEWS: u32 = 64;

    /// The export window of a GPU process's view window `k` (below [`Self::MAX_VIEWS`]): the
    /// windows lie one after another from [`Self::GPU`], each as long as it, so window 0 is
    /// `GPU`. A view's renderer may take fds from its view's window only, so no view's
    /// renderer can reach another's buffers or fences.
    pub const fn of_view(k: u32) -> Option<ExportWindow> {
        if k >= Self::MAX_VIEWS {
            return None;
        }
        Some(ExportWindow {
            base: Self::GPU.base + k as i32 * Self::GPU.len,
            len: Self::GPU.len,
        })
    }

    /// How many view windows fit below fd number `limit` (a soft `RLIMIT_NOFILE`), leaving
    /// `spare` numbers above the last for the process's other files; at most
    /// [`Self::MAX_VIEWS`].
    pub fn views_below(limit: u64, spare: u64) -> u32 {
        let room = limit
            .saturating_sub(spare)
            .saturating_sub(Self::GPU.base as u64);
        (room / Self::GPU.len as u64).min(u64::from(Self::MAX_VIEWS)) as u32
    }

    /// One past the last number.
    pub fn end(&self) -> i32 {
        self.base + self.len
    }

    /// Whether `fd` is inside the window.
    pub fn contains(&self, fd: i32) -> bool {
        fd >= self.base && fd < self.end()
    }

    /// Duplicates `fd` to the lowest free number of the window, close-on-exec. The original
    /// stays open; drop it to leave only the window's copy.
    pub fn place(&self, fd: BorrowedFd<'_>) -> Result<OwnedFd, FdError> {
        let raw = fd.as_raw_fd();
        // SAFETY: F_DUPFD_CLOEXEC takes an int and returns a new descriptor or -1; `raw` is
        // borrowed and so open for the duration of the call.
        let got = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, self.base) };
        if got < 0 {
            return Err(FdError::Dup {
                fd: raw,
                base: self.base,
                end: self.end(),
                errno: nix::Error::last(),
            });
        }
        // SAFETY: `got` was just returned by fcntl as a new descriptor that nothing else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(got) };
        if !self.contains(got) {
            return Err(FdError::WindowFull {
                base: self.base,
                end: self.end(),
                got,
            });
        }
        Ok(owned)
    }
}

/// Duplicates `fd` with close-on-exec set.
pub fn dup_cloexec(fd: BorrowedFd<'_>) -> Result<OwnedFd, FdError> {
    fd.try_clone_to_owned().map_err(|e| FdError::Fcntl {
        op: "F_DUPFD_CLOEXEC",
        fd: fd.as_raw_fd(),
        errno: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })
}

/// Whether `FD_CLOEXEC` is set on `fd`.
pub fn is_cloexec(fd: impl AsFd) -> Result<bool, FdError> {
    let raw = fd.as_fd().as_raw_fd();
    let flags =
        nix::fcntl::fcntl(raw, nix::fcntl::FcntlArg::F_GETFD).map_err(|errno| FdError::Fcntl {
            op: "F_GETFD",
            fd: raw,
            errno,
        })?;
    Ok(flags & libc::FD_CLOEXEC != 0)
}

/// Clears `FD_CLOEXEC` so that a child process inherits `fd` across `execve`.
///
/// Used only between `fork` and `exec` for the one socket a child is meant to inherit.
pub fn clear_cloexec(fd: BorrowedFd<'_>) -> Result<(), FdError> {
    let raw = fd.as_raw_fd();
    nix::fcntl::fcntl(
        raw,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .map(|_| ())
    .map_err(|errno| FdError::Fcntl {
        op: "F_SETFD",
        fd: raw,
        errno,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_windows_lie_one_after_another_from_the_gpu_window() {
        assert_eq!(ExportWindow::of_view(0), Some(ExportWindow::GPU));
        let last = ExportWindow::of_view(ExportWindow::MAX_VIEWS - 1).expect("the last window");
        assert_eq!(ExportWindow::of_view(ExportWindow::MAX_VIEWS), None);
        for k in 1..ExportWindow::MAX_VIEWS {
            let (a, b) = (
                ExportWindow::of_view(k - 1).expect("window"),
                ExportWindow::of_view(k).expect("window"),
            );
            assert_eq!(a.end(), b.base, "window {k} starts where {} ends", k - 1);
        }
        assert_eq!(
            ExportWindow::views_below(last.end() as u64 + 64, 64),
            ExportWindow::MAX_VIEWS
        );
        assert_eq!(ExportWindow::views_below(1024, 64), 1);
        assert_eq!(ExportWindow::views_below(512, 64), 0);
        assert_eq!(
            ExportWindow::views_below(u64::MAX, 64),
            ExportWindow::MAX_VIEWS
        );
    }

    #[test]
    fn file_kinds_by_fstat() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let (r, w) = pipe_cloexec().expect("pipe");
        assert!(is_socket(a.as_fd()).expect("fstat") && !is_fifo(a.as_fd()).expect("fstat"));
        assert!(!is_socket(r.as_fd()).expect("fstat") && is_fifo(r.as_fd()).expect("fstat"));
        assert!(
            is_pipe_read_end(r.as_fd()).expect("fstat")
                && !is_pipe_read_end(w.as_fd()).expect("fstat")
        );
    }

    #[test]
    fn window_places_inside_and_cloexec() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        let w = ExportWindow { base: 700, len: 4 };
        let placed: Vec<OwnedFd> = (0..4).map(|_| w.place(a.as_fd()).expect("place")).collect();
        for p in &placed {
            assert!(w.contains(p.as_raw_fd()), "{} outside", p.as_raw_fd());
            assert!(is_cloexec(p).expect("getfd"));
            assert_eq!(
                identity(p.as_fd()).expect("id"),
                identity(a.as_fd()).expect("id")
            );
        }
        match w.place(a.as_fd()) {
            Err(FdError::WindowFull { got: 704, .. }) => {}
            other => panic!("expected a full window, got {other:?}"),
        }
    }
}
