//! What a sandboxed process does when its seccomp filter traps a system call: report, then die.
//!
//! A filter rule that ends in `SECCOMP_RET_TRAP` makes the kernel skip the system call and send
//! the calling thread a `SIGSYS` whose `siginfo` carries the syscall number and the audit
//! architecture (`si_syscall`, `si_arch`); the six argument registers are in the signal's
//! `ucontext`. The handler installed by [`install_trap_reporter`] copies them into a fixed-size
//! [`TrapRecord`], writes it with one `write(2)` to the report fd (a pipe the launcher inherits
//! to the process at a fixed number and reads from its side), and then ends the process with
//! `SIGSYS` itself, so that its exit status says what happened.
//!
//! Everything the handler does is async-signal-safe: it reads two structs the kernel filled in,
//! fills a byte array on its stack, and makes the system calls `write`, `rt_sigaction`,
//! `rt_sigprocmask`, `getpid`, `gettid`, `tgkill` and `exit_group`, every one of which the
//! policies allow (the `tgkill` only towards the process itself). It takes no lock and allocates
//! nothing, so it works whatever the trapped thread was doing. A `write` of fewer than
//! `PIPE_BUF` bytes to a pipe is atomic, so records from two threads trapping at once never
//! interleave.
//!
//! Lifetime: the report fd is handed over once, at start-up, and then belongs to the handler for
//! the rest of the process's life; it is the one file descriptor this crate keeps as a raw
//! number, because a signal handler cannot reach an `OwnedFd`.
//!
//! See `Documentation/userspace-api/seccomp_filter.rst` (`SECCOMP_RET_TRAP`) and
//! `include/uapi/asm-generic/siginfo.h` (`_sigsys`).

/// `__X32_SYSCALL_BIT` from `arch/x86/include/uapi/asm/unistd.h`: the x32 ABI's marker.
pub const X32_SYSCALL_BIT: i64 = 0x4000_0000;

use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// `SYS_SECCOMP` from `include/uapi/asm-generic/siginfo.h`: the `si_code` of a `SIGSYS` sent
/// by a seccomp trap (as opposed to one sent with `kill`).
pub const SYS_SECCOMP: i32 = 1;

/// The first four bytes of every record: "TPSY" read as a little-endian `u32`.
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"TPSY");

/// Bytes in one encoded [`TrapRecord`]: magic, arch, nr, pid, tid, 4 reserved, 6 x 8 args.
pub const RECORD_LEN: usize = 4 * 6 + 8 * 6;

/// Byte offsets of `si_call_addr`, `si_syscall` and `si_arch` in `siginfo_t` on 64-bit Linux:
/// the union `_sifields` follows three `int`s and is aligned to 8 because it holds pointers.
const SI_SYSCALL_OFFSET: usize = 24;
const SI_ARCH_OFFSET: usize = 28;

// A record must fit in one atomic pipe write (`PIPE_BUF`, pipe(7)).
const _: () = assert!(RECORD_LEN <= libc::PIPE_BUF);

/// The fd the handler writes to; -1 for stderr in the text form.
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

/// One trapped system call, as the handler saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapRecord {
    /// `AUDIT_ARCH_*` of the call (`si_arch`).
    pub arch: u32,
    /// The system call number (`si_syscall`).
    pub nr: i32,
    /// The process.
    pub pid: u32,
    /// The thread that made the call.
    pub tid: u32,
    /// The six argument registers, in system call order.
    pub args: [u64; 6],
}

/// Errors decoding a record or installing the handler.
#[derive(Debug, thiserror::Error)]
pub enum TrapError {
    /// A record did not start with [`RECORD_MAGIC`].
    #[error("trap record starts with {found:#010x}, not the magic {RECORD_MAGIC:#010x}")]
    Magic {
        /// The first four bytes.
        found: u32,
    },
    /// `sigaction` failed.
    #[error("installing the SIGSYS handler failed: {0}")]
    Sigaction(nix::Error),
}

impl TrapRecord {
    /// The record as bytes (native byte order: writer and reader share the machine).
    /// Async-signal-safe: no allocation, no lock.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0..4].copy_from_slice(&RECORD_MAGIC.to_ne_bytes());
        b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        b[8..12].copy_from_slice(&self.nr.to_ne_bytes());
        b[12..16].copy_from_slice(&self.pid.to_ne_bytes());
        b[16..20].copy_from_slice(&self.tid.to_ne_bytes());
        let mut at = 24;
        for a in self.args {
            b[at..at + 8].copy_from_slice(&a.to_ne_bytes());
            at += 8;
        }
        b
    }

    /// Reads a record written by [`TrapRecord::encode`].
    pub fn decode(b: &[u8; RECORD_LEN]) -> Result<Self, TrapError> {
        let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let magic = u32_at(0);
        if magic != RECORD_MAGIC {
            return Err(TrapError::Magic { found: magic });
        }
        let mut args = [0u64; 6];
        for (k, a) in args.iter_mut().enumerate() {
            let at = 24 + 8 * k;
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            *a = u64::from_ne_bytes(w);
        }
        Ok(Self {
            arch: u32_at(4),
            nr: u32_at(8) as i32,
            pid: u32_at(12),
            tid: u32_at(16),
            args,
        })
    }
}

/// Reads the argument registers out of the signal's machine context.
///
/// # Safety
///
/// `ctx` must be the third argument of an `SA_SIGINFO` handler: a valid `ucontext_t`.
#[cfg(target_arch = "x86_64")]
unsafe fn syscall_args(ctx: *const libc::c_void) -> [u64; 6] {
    let uc = ctx.cast::<libc::ucontext_t>();
    // SAFETY: the caller guarantees `uc` points to the kernel-written ucontext of this signal;
    // `gregs` is a plain array inside it. The x86-64 syscall ABI passes arguments in rdi, rsi,
    // rdx, r10, r8, r9 (arch/x86/entry/entry_64.S).
    let g = unsafe { &(*uc).uc_mcontext.gregs };
    [
        libc::REG_RDI,
        libc::REG_RSI,
        libc::REG_RDX,
        libc::REG_R10,
        libc::REG_R8,
        libc::REG_R9,
    ]
    .map(|r| g[r as usize] as u64)
}

/// Reads the argument registers out of the signal's machine context.
///
/// # Safety
///
/// `ctx` must be the third argument of an `SA_SIGINFO` handler: a valid `ucontext_t`.
#[cfg(target_arch = "aarch64")]
unsafe fn syscall_args(ctx: *const libc::c_void) -> [u64; 6] {
    let uc = ctx.cast::<libc::ucontext_t>();
    // SAFETY: as above; the arm64 syscall ABI passes arguments in x0..x5.
    let r = unsafe { &(*uc).uc_mcontext.regs };
    [r[0], r[1], r[2], r[3], r[4], r[5]]
}

/// Elsewhere the registers are not decoded; the number and architecture still are.
///
/// # Safety
///
/// None needed; kept `unsafe` for one signature on every architecture.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn syscall_args(_ctx: *const libc::c_void) -> [u64; 6] {
    [0; 6]
}

/// Writes `n` in decimal into `out` from the end; returns where the digits start.
fn decimal(mut n: u64, out: &mut [u8; 20]) -> usize {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return i;
        }
    }
}

/// Writes `bytes` to `fd`, ignoring errors (there is nobody left to tell).
fn write_all_raw(fd: i32, bytes: &[u8]) {
    // SAFETY: `bytes` is a live slice for the whole call; write(2) only reads it. `fd` is the
    // report fd this module owns, or stderr.
    let _ = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
}

extern "C" fn on_sigsys(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler; reading its first
    // three ints and, for a seccomp SIGSYS, the `_sigsys` fields at their uapi offsets (pinned by
    // a test against glibc's layout) reads memory inside the 128-byte struct.
    let (code, nr, arch) = unsafe {
        let base = info.cast::<u8>();
        (
            (*info).si_code,
            base.add(SI_SYSCALL_OFFSET).cast::<i32>().read_unaligned(),
            base.add(SI_ARCH_OFFSET).cast::<u32>().read_unaligned(),
        )
    };
    if code == SYS_SECCOMP {
        // SAFETY: `ctx` is the handler's third argument, the kernel's ucontext for this signal.
        let args = unsafe { syscall_args(ctx) };
        // SAFETY: getpid and gettid take no arguments and cannot fail.
        let (pid, tid) = unsafe { (libc::getpid(), libc::syscall(libc::SYS_gettid)) };
        let rec = TrapRecord {
            arch,
            nr,
            pid: pid as u32,
            tid: tid as u32,
            args,
        };
        let fd = REPORT_FD.load(Ordering::Relaxed);
        if fd >= 0 {
            write_all_raw(fd, &rec.encode());
        } else {
            let mut digits = [0u8; 20];
            write_all_raw(2, b"triptych: seccomp trapped system call ");
            let start = decimal(u64::from(nr as u32), &mut digits);
            write_all_raw(2, &digits[start..]);
            write_all_raw(2, b"\n");
        }
    }
    // Die by the same signal, with the default action, so the exit status names it.
    // SAFETY: a zeroed sigaction with SIG_DFL is a valid argument; sigprocmask and tgkill take
    // plain values; every call here is async-signal-safe.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &dfl, std::ptr::null_mut());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::syscall(
            libc::SYS_tgkill,
            libc::getpid(),
            libc::syscall(libc::SYS_gettid),
            sig,
        );
        libc::_exit(128 + sig);
    }
}

/// Installs the `SIGSYS` handler that reports trapped system calls to `report` (or, without
/// one, as a line on stderr) and then ends the process by `SIGSYS`.
///
/// Call it once, early, before the seccomp filter goes on; the fd is kept for the life of the
/// process.
pub fn install_trap_reporter(report: Option<OwnedFd>) -> Result<(), TrapError> {
    if let Some(fd) = report {
        // The handler owns the number from now on; it is never closed.
        REPORT_FD.store(fd.into_raw_fd(), Ordering::Relaxed);
    }
    // SAFETY: a zeroed sigaction is a valid value to fill in; the handler has the SA_SIGINFO
    // signature; sigfillset on its own mask keeps other signals out while it runs.
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            on_sigsys;
        sa.sa_sigaction = handler as *const () as libc::sighandler_t;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigfillset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(TrapError::Sigaction(nix::Error::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let r = TrapRecord {
            arch: 0xc000_003e,
            nr: 257,
            pid: 42,
            tid: 43,
            args: [1, 2, u64::MAX, 4, 5, 6],
        };
        let b = r.encode();
        assert_eq!(b.len(), RECORD_LEN);
        assert_eq!(TrapRecord::decode(&b).expect("decode"), r);
        let mut bad = b;
        bad[0] ^= 1;
        assert!(matches!(
            TrapRecord::decode(&bad),
            Err(TrapError::Magic { .. })
        ));
    }

    /// The `_sigsys` offsets match glibc's `siginfo_t`: the union starts where `si_addr` (the
    /// first pointer of `_sigfault`, at the same place as `_call_addr`) is, and the two 32-bit
    /// fields follow that pointer.
    #[test]
    fn sigsys_offsets_match_the_abi() {
        assert_eq!(size_of::<libc::siginfo_t>(), 128);
        // SAFETY: an all-zero siginfo_t is a valid value.
        let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let marker = 0x1122_3344_5566_7788usize;
        // SAFETY: offset 16 + 8 bytes lies inside the 128-byte struct we own.
        unsafe {
            (&mut si as *mut libc::siginfo_t)
                .cast::<u8>()
                .add(SI_SYSCALL_OFFSET - 8)
                .cast::<usize>()
                .write_unaligned(marker)
        };
        // SAFETY: si_addr reads the union's first pointer of the struct we own.
        assert_eq!(unsafe { si.si_addr() } as usize, marker);
        assert_eq!(SI_ARCH_OFFSET, SI_SYSCALL_OFFSET + 4);
    }

    #[test]
    fn decimal_writes_digits() {
        let mut d = [0u8; 20];
        let s = decimal(438, &mut d);
        assert_eq!(&d[s..], b"438");
        let s = decimal(0, &mut d);
        assert_eq!(&d[s..], b"0");
        let s = decimal(u64::MAX, &mut d);
        assert_eq!(&d[s..], b"18446744073709551615");
    }

    #[test]
    fn sys_seccomp_code_matches_libc() {
        assert_eq!(SYS_SECCOMP, 1);
        assert_eq!(RECORD_MAGIC.to_le_bytes(), *b"TPSY");
    }
}
