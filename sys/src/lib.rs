//! The Linux layer of triptych: every system call that needs `unsafe` lives in this crate.
//!
//! The other crates see only safe, typed wrappers: file descriptors are `OwnedFd` or
//! `BorrowedFd`, mappings unmap themselves, ioctl numbers are computed from the uapi headers'
//! formulas and pinned by tests. Keeping the unsafe code here means one place to audit and one
//! place whose numbers the seccomp policies share.
//!
//! - [`pidfd`]: `pidfd_open`, `pidfd_getfd`, `pidfd_send_signal` and waiting on a process.
//! - [`fd`]: file identity, the export window of fd numbers, close-on-exec duplication.
//! - [`memfd`]: sealed shared-memory buffers.
//! - [`eventfd`]: the CPU fence used with shm buffers.
//! - [`mapping`]: `mmap`-backed views of buffers.
//! - [`prctl`]: process names, parent-death signals, dumpability, Yama ptracer.
//! - [`poll`]: waiting on fds with a deadline.
//! - [`fault`]: dying by a chosen signal, for fault injection.
//! - [`proc`]: reading `/proc` for counters and tests.
//! - [`scm`]: passing fds in unix-socket messages (`SCM_RIGHTS`), the classic alternative to
//!   `pidfd_getfd`.
//! - [`ioctl`]: the `_IOC` encoding from `include/uapi/asm-generic/ioctl.h`.
//! - [`dma_buf`]: DMA-BUF CPU access and sync_file export.
//! - [`drm`]: DRM dumb buffers, PRIME export and the vgem fence ioctls.
//! - [`seccomp`]: the `SIGSYS` handler that reports a trapped system call to the launcher.
//! - [`fixed`]: fds at fixed numbers (the ones seccomp rules name).
//! - [`jail`]: confining a child between fork and exec (namespaces, fds, no capabilities).
//! - [`landlock`]: the kernel's Landlock ABI version.
//! - [`userns`]: creating the user namespace the sandboxed children share.
//! - [`wayland`]: adopting a winit window's Wayland display and surface, to present into it.
//! - [`simd`]: AVX2 detection and the compositor's AVX2 kernel (CPU instructions Rust calls
//!   `unsafe` to reach, kept here with the rest of the unsafe code).

#![warn(missing_docs)]

pub mod dma_buf;
pub mod drm;
pub mod eventfd;
pub mod fault;
pub mod fd;
pub mod fixed;
pub mod ioctl;
pub mod jail;
pub mod landlock;
pub mod mapping;
pub mod memfd;
pub mod notify;
pub mod pidfd;
pub mod poll;
pub mod prctl;
pub mod proc;
pub mod scm;
pub mod seccomp;
pub mod simd;
pub mod userns;
pub mod wayland;

/// Unit-test support: what a test does on a machine that lacks what it tests.
#[cfg(test)]
pub(crate) mod machine {
    /// Reports that this machine lacks what the calling test needs: panics, naming `reason`,
    /// when `var` is `1` (`scripts/test.sh` sets it wherever the machine has the feature, so
    /// there a missing feature is a failure), otherwise says on stderr that the test did not
    /// run its subject and why: straight to stderr, where libtest, which captures the
    /// `eprintln!` of passing tests, does not hide it. The caller returns after it.
    pub fn missing(var: &str, reason: &str) {
        use std::io::Write as _;
        if std::env::var_os(var).is_some_and(|v| v == "1") {
            panic!("{var}=1 but this machine cannot run the test: {reason}");
        }
        let _ = writeln!(
            std::io::stderr(),
            "skipped: {reason} (set {var}=1 to make this a failure)"
        );
    }
}
