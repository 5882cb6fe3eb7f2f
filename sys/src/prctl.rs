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
//! See <https://man7.org/linux/man-pages/man2/prctl.2.html> and
//! <https://www.kernel.org/doc/html/latest/admin-guide/LSM/Yama.html>.

/// `PR_SET_PTRACER` from `include/uapi/linux/prctl.h`: `0x59616d61` ("Yama").
pub const PR_SET_PTRACER: i32 = 0x5961_6d61;

/// Errors from prctl.
#[derive(Debug, thiserror::Error)]
#[error("prctl({op}) failed: {errno}")]
pub struct PrctlError {
    /// Which option.
    pub op: &'static str,
    /// The error.
    pub errno: nix::Error,
}

fn prctl(op: &'static str, option: i32, arg2: libc::c_ulong) -> Result<i32, PrctlError> {
    // SAFETY: every option used in this module takes an integer (or a pointer handled in
    // `set_name`) as arg2 and zeroes for the rest; no memory is passed.
    let rc = unsafe {
        libc::prctl(
            option,
            arg2,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc < 0 {
        return Err(PrctlError {
            op,
            errno: nix::Error::last(),
        });
    }
    Ok(rc)
}

/// Sets the calling thread's name (the process name when called on the main thread). Names are
/// cut to 15 bytes by the kernel.
pub fn set_name(name: &str) -> Result<(), PrctlError> {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: PR_SET_NAME reads at most 16 bytes from arg2; `buf` is 16 bytes and NUL-terminated
    // (byte 15 is always 0).
    let rc = unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr(), 0, 0, 0) };
    if rc < 0 {
        return Err(PrctlError {
            op: "PR_SET_NAME",
            errno: nix::Error::last(),
        });
    }
    Ok(())
}

/// Asks for `signal` when the parent thread exits. Async-signal-safe: usable between fork and exec.
pub fn set_pdeathsig(signal: i32) -> Result<(), PrctlError> {
    prctl(
        "PR_SET_PDEATHSIG",
        libc::PR_SET_PDEATHSIG,
        signal as libc::c_ulong,
    )
    .map(|_| ())
}

/// Sets or clears the dumpable flag.
pub fn set_dumpable(dumpable: bool) -> Result<(), PrctlError> {
    prctl(
        "PR_SET_DUMPABLE",
        libc::PR_SET_DUMPABLE,
        libc::c_ulong::from(dumpable),
    )
    .map(|_| ())
}

/// Reads the dumpable flag.
pub fn is_dumpable() -> Result<bool, PrctlError> {
    prctl("PR_GET_DUMPABLE", libc::PR_GET_DUMPABLE, 0).map(|v| v != 0)
}

/// Lets process `pid` ptrace this one under Yama `ptrace_scope` 1.
pub fn set_ptracer(pid: u32) -> Result<(), PrctlError> {
    prctl("PR_SET_PTRACER", PR_SET_PTRACER, libc::c_ulong::from(pid)).map(|_| ())
}

/// Sets `no_new_privs`, irreversibly.
pub fn set_no_new_privs() -> Result<(), PrctlError> {
    prctl("PR_SET_NO_NEW_PRIVS", libc::PR_SET_NO_NEW_PRIVS, 1).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptracer_constant_matches_header() {
        // "Yama" in ASCII: 0x59 'Y', 0x61 'a', 0x6d 'm', 0x61 'a'.
        assert_eq!(PR_SET_PTRACER.to_be_bytes(), *b"Yama");
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
}
