//! File descriptors at fixed numbers: the few a sandboxed child shares with its launcher.
//!
//! A seccomp filter can compare a system call's arguments only with constants, so the fds that
//! rules name live at numbers known when the policy is written: the renderer's link to the GPU
//! process (the one pidfd `pidfd_getfd` may use), the socket over which the launcher hands that
//! link over, and the pipe the `SIGSYS` handler reports to. The launcher puts the inherited ones
//! there between fork and exec ([`crate::jail`]); the child claims each number once with
//! [`FixedFd::claim`].
//!
//! Ownership rules, which make replacing the file at a number sound:
//! - a number is claimed at most once per process (a process-wide registry refuses a second
//!   claim), so exactly one [`FixedFd`] owns it;
//! - a claimed number is never free: when nothing was inherited there, a placeholder (an eventfd)
//!   holds it, so the kernel cannot hand the number to an unrelated `open` that a later
//!   [`FixedFd::replace`] would then close;
//! - [`FixedFd::replace`] uses `dup3(fd, number, O_CLOEXEC)`, which swaps the file atomically.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::Mutex;

/// Numbers claimed so far in this process.
static CLAIMED: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Errors around fixed-number fds.
#[derive(Debug, thiserror::Error)]
pub enum FixedError {
    /// The number was claimed before.
    #[error("fd {number} is already claimed in this process")]
    Claimed {
        /// The number.
        number: i32,
    },
    /// A negative number.
    #[error("fd number {number} is negative")]
    Negative {
        /// The number.
        number: i32,
    },
    /// A system call failed.
    #[error("{op} on fd {number} failed: {errno}")]
    Sys {
        /// What was done.
        op: &'static str,
        /// The number.
        number: i32,
        /// The error.
        errno: nix::Error,
    },
}

/// One fd number owned by this process for its whole life.
#[derive(Debug)]
pub struct FixedFd {
    number: i32,
    fd: OwnedFd,
    inherited: bool,
}

impl FixedFd {
    /// Claims `number`: adopts the fd open there (inherited from the parent; made close-on-exec)
    /// or, if there is none, holds the number with a placeholder.
    pub fn claim(number: i32) -> Result<FixedFd, FixedError> {
        if number < 0 {
            return Err(FixedError::Negative { number });
        }
        {
            let mut claimed = CLAIMED.lock().unwrap_or_else(|p| p.into_inner());
            if claimed.contains(&number) {
                return Err(FixedError::Claimed { number });
            }
            claimed.push(number);
        }
        // SAFETY: F_GETFD takes no pointer; it only tells whether `number` is open.
        let open = unsafe { libc::fcntl(number, libc::F_GETFD) } >= 0;
        if open {
            // SAFETY: the number is open and, by the registry above, no other FixedFd owns it;
            // numbers below are inherited from the parent for this purpose only, and nothing
            // else in the process refers to them (the process learns them from this module).
            let fd = unsafe { OwnedFd::from_raw_fd(number) };
            nix::fcntl::fcntl(
                number,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .map_err(|errno| FixedError::Sys {
                op: "F_SETFD(FD_CLOEXEC)",
                number,
                errno,
            })?;
            return Ok(FixedFd {
                number,
                fd,
                inherited: true,
            });
        }
        let placeholder = nix::sys::eventfd::EventFd::from_value_and_flags(
            0,
            nix::sys::eventfd::EfdFlags::EFD_CLOEXEC,
        )
        .map_err(|errno| FixedError::Sys {
            op: "eventfd (placeholder)",
            number,
            errno,
        })?;
        let fd = dup3_cloexec(OwnedFd::from(placeholder), number)?;
        Ok(FixedFd {
            number,
            fd,
            inherited: false,
        })
    }

    /// The number.
    pub fn number(&self) -> i32 {
        self.number
    }

    /// Whether the parent left a file at this number (as opposed to the placeholder).
    pub fn inherited(&self) -> bool {
        self.inherited
    }

    /// Gives up the file the parent left at the number, if there was one; a placeholder is
    /// closed. The number stays claimed either way.
    pub fn into_inherited(self) -> Option<OwnedFd> {
        self.inherited.then_some(self.fd)
    }

    /// The file now at the number.
    pub fn get(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// Puts `fd` at the number (close-on-exec), closing the file that was there.
    pub fn replace(&mut self, fd: OwnedFd) -> Result<(), FixedError> {
        if fd.as_raw_fd() == self.number {
            // Cannot happen (the number is held), but would otherwise close the file twice.
            return Ok(());
        }
        let placed = dup3_cloexec(fd, self.number)?;
        // The old OwnedFd's number now refers to the new file: forget it without closing.
        let old = std::mem::replace(&mut self.fd, placed);
        let _ = old.into_raw_fd();
        self.inherited = false;
        Ok(())
    }
}

/// `dup3(fd, number, O_CLOEXEC)`, then closes `fd`; returns the owner of `number`.
fn dup3_cloexec(fd: OwnedFd, number: i32) -> Result<OwnedFd, FixedError> {
    // SAFETY: dup3 takes plain ints; `fd` is open (owned). It atomically closes what was at
    // `number`, which the caller owns (a claimed number), and installs a copy of `fd` there.
    let rc = unsafe { libc::dup3(fd.as_raw_fd(), number, libc::O_CLOEXEC) };
    if rc < 0 {
        return Err(FixedError::Sys {
            op: "dup3",
            number,
            errno: nix::Error::last(),
        });
    }
    drop(fd);
    // SAFETY: dup3 returned `number`, now open on the new file; its owner is the caller.
    Ok(unsafe { OwnedFd::from_raw_fd(rc) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn claim_holds_the_number_and_replace_swaps_the_file() {
        let mut f = FixedFd::claim(377).expect("claim");
        assert!(!f.inherited());
        assert_eq!(f.get().as_raw_fd(), 377);
        assert!(crate::fd::is_cloexec(f.get()).expect("flags"));
        let m = crate::memfd::create_sealed(c"fixed", 4096).expect("memfd");
        let id = crate::fd::identity(m.as_fd()).expect("id");
        f.replace(m).expect("replace");
        assert_eq!(crate::fd::identity(f.get()).expect("id"), id);
        assert_eq!(f.get().as_raw_fd(), 377);
        assert!(crate::fd::is_cloexec(f.get()).expect("flags"));
        assert!(matches!(
            FixedFd::claim(377),
            Err(FixedError::Claimed { number: 377 })
        ));
    }

    #[test]
    fn claim_adopts_what_is_open_there() {
        let m = crate::memfd::create_sealed(c"fixed2", 4096).expect("memfd");
        let id = crate::fd::identity(m.as_fd()).expect("id");
        let placed = dup3_cloexec(m, 378).expect("dup3");
        let _ = placed.into_raw_fd();
        let f = FixedFd::claim(378).expect("claim");
        assert!(f.inherited());
        assert_eq!(crate::fd::identity(f.get()).expect("id"), id);
    }
}
