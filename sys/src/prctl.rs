//! Process attributes set with `prctl(2)`.
//!
//! - the role name (`PR_SET_NAME`), the same string as the role's seccomp policy, tracing spans
//!   and crash records;
//! - the parent-death signal (`PR_SET_PDEATHSIG`), so a child never outlives the launcher, even
//!   when the launcher is killed with SIGKILL;
//! - dumpability (`PR_SET_DUMPABLE`): the launcher clears it so no process of the same uid can
//!   ptrace it, and so neither can `pidfd_getfd`;
//! - the Yama ptracer exception (`PR_SET_PTRACER`), by which the GPU process lets the renderer
//!   take its exported fds where Yama's `ptrace_scope` is 1;
//! - `PR_SET_NO_NEW_PRIVS`, required before installing a seccomp filter without privileges.
//!
//! The calls are rustix's (`rustix::thread` for the per-thread attributes, `rustix::process` for
//! the rest): direct system calls with no allocation, so they are usable between fork and exec
//! too. This module adds the error type that names the option, the 15-byte cut of names made
//! without allocating, and [`PR_SET_PTRACER`], which the seccomp policies and the escape probes
//! need as a number and rustix keeps private. The fork-to-exec code in [`crate::jail`] and
//! [`crate::userns`] calls the same rustix functions.
//!
//! See <https://man7.org/linux/man-pages/man2/prctl.2.html> and
//! <https://www.kernel.org/doc/html/latest/admin-guide/LSM/Yama.html>.

#![forbid(unsafe_code)]

use std::ffi::CStr;

use rustix::process::{DumpableBehavior, PTracer, Pid, Signal};

/// `PR_SET_PTRACER` from `include/uapi/linux/prctl.h`: `0x59616d61` ("Yama").
pub const PR_SET_PTRACER: i32 = 0x5961_6d61;

/// Errors from prctl.
#[derive(Debug, thiserror::Error)]
#[error("prctl({op}) failed: {errno}")]
pub struct PrctlError {
    /// Which option.
    pub op: &'static str,
    /// The error.
    pub errno: rustix::io::Errno,
}

fn named<T>(op: &'static str, r: rustix::io::Result<T>) -> Result<T, PrctlError> {
    r.map_err(|errno| PrctlError { op, errno })
}

/// Sets the calling thread's name (the process name when called on the main thread). Names are
/// cut to 15 bytes, as the kernel would cut them; a name with a NUL byte ends there.
pub fn set_name(name: &str) -> Result<(), PrctlError> {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // Byte 15 is always 0, so there is a NUL to stop at.
    let name = CStr::from_bytes_until_nul(&buf).map_err(|_| PrctlError {
        op: "PR_SET_NAME",
        errno: rustix::io::Errno::INVAL,
    })?;
    named("PR_SET_NAME", rustix::thread::set_name(name))
}

/// Asks for `signal` when the parent thread exits. Async-signal-safe: usable between fork and
/// exec. A number that is not a named signal is refused with `EINVAL`, as the kernel would.
pub fn set_pdeathsig(signal: i32) -> Result<(), PrctlError> {
    let signal = Signal::from_named_raw(signal).ok_or(PrctlError {
        op: "PR_SET_PDEATHSIG",
        errno: rustix::io::Errno::INVAL,
    })?;
    named(
        "PR_SET_PDEATHSIG",
        rustix::process::set_parent_process_death_signal(Some(signal)),
    )
}

/// Sets or clears the dumpable flag.
pub fn set_dumpable(dumpable: bool) -> Result<(), PrctlError> {
    let behavior = if dumpable {
        DumpableBehavior::Dumpable
    } else {
        DumpableBehavior::NotDumpable
    };
    named(
        "PR_SET_DUMPABLE",
        rustix::process::set_dumpable_behavior(behavior),
    )
}

/// Reads the dumpable flag.
pub fn is_dumpable() -> Result<bool, PrctlError> {
    named("PR_GET_DUMPABLE", rustix::process::dumpable_behavior())
        .map(|b| b != DumpableBehavior::NotDumpable)
}

/// Lets process `pid` ptrace this one under Yama `ptrace_scope` 1.
pub fn set_ptracer(pid: u32) -> Result<(), PrctlError> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(PrctlError {
            op: "PR_SET_PTRACER",
            errno: rustix::io::Errno::INVAL,
        })?;
    named(
        "PR_SET_PTRACER",
        rustix::process::set_ptracer(PTracer::ProcessID(pid)),
    )
}

/// Sets `no_new_privs` for the calling thread (and the threads and children it starts later),
/// irreversibly.
pub fn set_no_new_privs() -> Result<(), PrctlError> {
    named(
        "PR_SET_NO_NEW_PRIVS",
        rustix::thread::set_no_new_privs(true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptracer_constant_matches_header() {
        // "Yama" in ASCII: 0x59 'Y', 0x61 'a', 0x6d 'm', 0x61 'a'.
        assert_eq!(PR_SET_PTRACER.to_be_bytes(), *b"Yama");
        assert_eq!(PR_SET_PTRACER, libc::PR_SET_PTRACER);
    }

    #[test]
    fn name_is_set_on_thread() {
        std::thread::spawn(|| {
            set_name("a-very-long-thread-name").expect("set");
            let tid = nix::unistd::gettid();
            let comm =
                std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).expect("comm");
            assert_eq!(comm.trim_end(), "a-very-long-thr");
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn dumpable_flag_round_trips() {
        // The flag is per process: set it to what it already is, so other tests see no change.
        let before = is_dumpable().expect("read");
        set_dumpable(before).expect("set");
        assert_eq!(is_dumpable().expect("read again"), before);
    }

    #[test]
    fn unnamed_signals_are_refused() {
        let e = set_pdeathsig(0).expect_err("signal 0");
        assert_eq!(e.errno, rustix::io::Errno::INVAL);
    }
}
