//! Creating the user namespace that the sandboxed children share.
//!
//! The GPU process and the renderer run in one user namespace of their own, created once per run
//! by the launcher. Inside it they have the launcher's uid and gid (an identity mapping of that
//! one id), no capabilities (see [`crate::jail`]), and every capability check that concerns a
//! process outside it is made against the parent namespace, where they have none. For
//! `pidfd_getfd`, which needs `PTRACE_MODE_ATTACH_REALCREDS` access (`__ptrace_may_access` in
//! `kernel/ptrace.c`, then `cap_ptrace_access_check` in `security/commoncap.c`):
//!
//! - renderer -> GPU process: same uid and gid, the GPU process is dumpable, both are in the same
//!   user namespace and the GPU process's permitted capabilities (none) are a subset of the
//!   renderer's (none): allowed;
//! - renderer -> launcher: the launcher is not dumpable and lives in the parent namespace, so the
//!   renderer would need `CAP_SYS_PTRACE` there, which it cannot have: `EPERM`. The same holds
//!   for any other process outside the namespace, whoever started it, root included.
//!
//! How the namespace is made without touching the launcher itself (which is threaded, and must
//! stay in the initial namespace to supervise): a forked *holder* child unshares a new user
//! namespace and waits; the launcher writes its `setgroups` ("deny"), `uid_map` and `gid_map`,
//! opens `/proc/<holder>/ns/user`, and lets the holder exit. The open fd keeps the namespace
//! alive for as long as the launcher holds it; each child joins it with `setns(2)`.
//!
//! See `user_namespaces(7)` ("Defining user and group ID mappings") and `setns(2)`.

use std::os::fd::{AsRawFd, OwnedFd};

/// Errors creating the namespace.
#[derive(Debug, thiserror::Error)]
pub enum UserNsError {
    /// A system call in the launcher failed.
    #[error("{op} failed: {errno}")]
    Sys {
        /// What was done.
        op: &'static str,
        /// The error.
        errno: nix::Error,
    },
    /// The holder could not unshare (user namespaces disabled or limited).
    #[error("unshare(CLONE_NEWUSER) refused: {0} (user namespaces are disabled or exhausted here: max_user_namespaces, or a security module)")]
    Unshare(nix::Error),
    /// Writing a map or opening the namespace failed.
    #[error("{path}: {source}")]
    Proc {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Creates a user namespace in which the calling process's effective uid and gid map to
/// themselves, and returns an fd of it (close-on-exec) to `setns` into.
pub fn create() -> Result<OwnedFd, UserNsError> {
    use nix::fcntl::OFlag;
    let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|errno| UserNsError::Sys { op: "pipe2", errno })?;
    let (release_r, release_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|errno| UserNsError::Sys { op: "pipe2", errno })?;
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    // SAFETY: fork in a threaded process is sound when the child makes only async-signal-safe
    // calls until it exits; the child branch below makes only raw system calls on fds and
    // integers prepared before the fork, and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(UserNsError::Sys {
            op: "fork",
            errno: nix::Error::last(),
        });
    }
    if pid == 0 {
        // The holder.
        // SAFETY: raw system calls on integers and on fds this process owns; see above.
        unsafe {
            libc::close(release_w.as_raw_fd());
            // Every other fd goes too, first of all (where close_range is refused, the release
            // end above is closed all the same): a copy of another thread's fds taken by this
            // fork (the release end of a holder being made at the same moment, say) would keep
            // that holder waiting forever, and its creator with it.
            let keep = {
                let (a, b) = (ready_w.as_raw_fd() as u32, release_r.as_raw_fd() as u32);
                (a.min(b), a.max(b))
            };
            for (first, last) in [(3, keep.0), (keep.0 + 1, keep.1), (keep.1 + 1, u32::MAX)] {
                if first < last {
                    libc::syscall(libc::SYS_close_range, first, last - 1, 0u32);
                }
            }
            // The launcher may already be non-dumpable, which would make our /proc files
            // root-owned and the maps unwritable for an unprivileged launcher.
            let _ =
                rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable);
            let status: i32 = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                0
            } else {
                *libc::__errno_location()
            };
            let bytes = status.to_ne_bytes();
            libc::write(ready_w.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
            let mut b = 0u8;
            // Blocks until the launcher closes its end (or dies).
            libc::read(release_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    drop(ready_w);
    drop(release_r);
    let result = (|| {
        let mut status = [0u8; 4];
        nix::unistd::read(ready_r.as_raw_fd(), &mut status).map_err(|errno| UserNsError::Sys {
            op: "reading the namespace holder's status",
            errno,
        })?;
        let status = i32::from_ne_bytes(status);
        if status != 0 {
            return Err(UserNsError::Unshare(nix::Error::from_raw(status)));
        }
        let write = |name: &str, text: String| {
            let path = format!("/proc/{pid}/{name}");
            std::fs::write(&path, text).map_err(|source| UserNsError::Proc { path, source })
        };
        write("setgroups", "deny".to_owned())?;
        write("uid_map", format!("{uid} {uid} 1\n"))?;
        write("gid_map", format!("{gid} {gid} 1\n"))?;
        let path = format!("/proc/{pid}/ns/user");
        std::fs::File::open(&path)
            .map(OwnedFd::from)
            .map_err(|source| UserNsError::Proc { path, source })
    })();
    drop(release_w);
    let mut st = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    result
}

/// Whether `a` and `b` are the same namespace (same `st_dev`/`st_ino` of their nsfs inodes).
pub fn same(a: std::os::fd::BorrowedFd<'_>, b: std::os::fd::BorrowedFd<'_>) -> bool {
    matches!((crate::fd::identity(a), crate::fd::identity(b)), (Ok(x), Ok(y)) if x == y)
}

/// Opens `/proc/self/ns/<kind>` (close-on-exec).
pub fn open_own(kind: &str) -> std::io::Result<OwnedFd> {
    std::fs::File::open(format!("/proc/self/ns/{kind}")).map(OwnedFd::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn namespace_is_new_and_joinable() {
        let ns = match create() {
            Ok(ns) => ns,
            Err(UserNsError::Unshare(e)) => {
                crate::machine::missing(
                    "TRIPTYCH_REQUIRE_USERNS",
                    &format!("unprivileged user namespaces are unavailable here ({e})"),
                );
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let own = open_own("user").expect("own ns");
        assert!(
            !same(ns.as_fd(), own.as_fd()),
            "the new namespace is the launcher's own"
        );
        // A child that joins it sees the identity mapping of our uid.
        let mut cmd = std::process::Command::new("/bin/cat");
        cmd.arg("/proc/self/uid_map")
            .stdout(std::process::Stdio::piped());
        crate::jail::Confinement::new()
            .join_user_namespace(ns)
            .install(&mut cmd);
        let out = cmd.output().expect("spawn");
        assert!(out.status.success(), "{out:?}");
        let uid = nix::unistd::geteuid().as_raw();
        let map = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<&str> = map.split_whitespace().collect();
        assert_eq!(fields, [uid.to_string(), uid.to_string(), "1".to_owned()]);
    }
}
