//! The Linux layer of triptych: every system call that needs `unsafe` lives in this crate.
//!
//! The other crates see only safe, typed wrappers: file descriptors are `OwnedFd` or
//! `BorrowedFd`, mappings unmap themselves, ioctl numbers are computed from the uapi headers'
//! formulas and pinned by tests. Keeping the unsafe code here means one place to audit and one
//! place whose numbers the seccomp policies share.
//!
//! It is also the only product crate that depends on `libc` or `nix` (`scripts/test.sh` checks
//! it): another crate makes a system call through a wrapper here, or through rustix where rustix
//! has the safe call; it names a kernel number (a system call, a flag, an errno) through
//! [`abi`], and the few nix types that appear in signatures ([`Errno`],
//! [`signal::Signal`], [`rlimit::Resource`], [`scm::MsgFlags`]) through the re-exports here.
//!
//! - [`abi`]: the kernel's numbers (system calls, flags, ioctl requests, errnos) the seccomp
//!   policies describe calls with; constants only.
//! - [`pidfd`]: `pidfd_open`, `pidfd_getfd`, `pidfd_send_signal` and waiting on a process.
//! - [`fd`]: file identity, the export window of fd numbers, close-on-exec duplication.
//! - [`memfd`]: sealed shared-memory buffers.
//! - [`eventfd`]: the CPU fence used with shm buffers.
//! - [`mapping`]: `mmap`-backed views of buffers.
//! - [`prctl`]: process names, parent-death signals, dumpability, Yama ptracer.
//! - [`poll`]: waiting on fds with a deadline, and seeing a hung-up peer.
//! - [`futex`]: waiting on and waking a word of memory two processes map.
//! - [`signal`]: signals by name, and termination signals taken by one thread (`sigwait`).
//! - [`fault`]: dying by a chosen signal, for fault injection.
//! - [`clock`]: `CLOCK_MONOTONIC`, the clock every trace event is stamped with, and a thread's
//!   CPU time.
//! - [`ids`]: the calling thread's id and whether the process runs as root.
//! - [`rlimit`]: the process's resource limits.
//! - [`proc`]: reading `/proc` for counters and tests.
//! - [`socket`]: the unix socket pairs every channel is made of.
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

pub mod abi;
pub mod clock;
pub mod dma_buf;
pub mod drm;
pub mod eventfd;
pub mod fault;
pub mod fd;
pub mod fixed;
pub mod futex;
pub mod ids;
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
pub mod rlimit;
pub mod sched;
pub mod scm;
pub mod seccomp;
pub mod signal;
pub mod simd;
pub mod socket;
pub mod userns;
pub mod wayland;

/// An error number (`errno`) returned by a system call, as the errors of the nix-based modules
/// carry it and as callers match on it (`Errno::EAGAIN`): nix's type, re-exported. (The
/// rustix-based modules, [`prctl`] and [`poll`], carry `rustix::io::Errno`.)
pub use nix::errno::Errno;

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
