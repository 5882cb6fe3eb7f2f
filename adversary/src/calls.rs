//! System calls made only to prove that a sandbox refuses them.
//!
//! The sandbox tests make the real renderer and GPU process, under their real seccomp policies,
//! attempt what a compromised process would: open a file, exec, fork, open a socket, ptrace or
//! signal another process, take a pidfd, make memory executable, and so on. Each [`Call`] is one
//! such attempt with fixed arguments, chosen so that the call is *harmless even if it were
//! allowed*: pointers point at buffers of this function's own stack that are large enough for
//! what the kernel would write, or at static strings it would only read; fds and mappings the
//! call would create are closed or unmapped again; a forked child exits at once; signals are
//! signal 0 (a permission check that delivers nothing). That is what makes it sound to expose
//! them as safe functions, and what makes the test hook that uses them harmless: it only lets a
//! process do, under its sandbox, what any code in that process could do anyway.
//!
//! The outcome is reported as it happened: the value returned, a new fd (for `pidfd_getfd`, so
//! a scan can check what it got), or the errno. A call the filter traps never returns: the
//! `SIGSYS` reporter of `triptych_sys::seccomp` ends the process.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A system call number no kernel assigns (the tables end below 600 on every architecture).
pub const INVALID_SYSCALL: i64 = 999;

pub use triptych_sys::seccomp::X32_SYSCALL_BIT;

/// ioctl requests a probe may make: each with an argument of known size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoctlRequest {
    /// `FIONREAD` (`int` out).
    Fionread,
    /// `TIOCGWINSZ` (`struct winsize` out).
    Tiocgwinsz,
    /// `DMA_BUF_IOCTL_SYNC` with `SYNC_START | SYNC_READ` (8 bytes in).
    DmaBufSyncStartRead,
    /// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` (8 bytes in and out).
    DmaBufExportSyncFile,
    /// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE` (8 bytes in): adding a fence to a buffer.
    DmaBufImportSyncFile,
    /// `TIOCLINUX` with subcode `TIOCL_GETSHIFTSTATE` (6): reads one byte, on a virtual console
    /// only (include/uapi/linux/tiocl.h).
    TioclinuxGetShiftState,
    /// `SECCOMP_IOCTL_NOTIF_RECV` (`struct seccomp_notif` out): on anything but a seccomp
    /// listener it fails (`ENOTTY`).
    SeccompNotifRecv,
}

/// `prctl` options a probe may set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrctlOption {
    /// `PR_SET_NAME` to the calling thread's current name.
    SetNameSame,
    /// `PR_GET_NAME`.
    GetName,
    /// `PR_SET_DUMPABLE` to 1.
    SetDumpable,
    /// `PR_SET_PTRACER` to `PR_SET_PTRACER_ANY` (-1).
    SetPtracerAny,
    /// `PR_SET_PTRACER` to this pid (what the GPU process does for the renderer under Yama).
    SetPtracer(u32),
}

/// One attempted system call. See the module docs for why each is harmless if allowed.
#[derive(Clone, Copy, Debug)]
pub enum Call<'a> {
    /// `write(fd, bytes)` on a bare fd number, as code that knows the fixed numbers would.
    WriteFd {
        /// The fd number.
        fd: i32,
        /// What to write.
        bytes: &'a [u8],
    },
    /// `read(fd, buf, 16)` into a buffer of this function's stack, thrown away: what consumes
    /// a pipe fence's byte.
    ReadFd(BorrowedFd<'a>),
    /// `rt_sigaction(SIGSYS, SIG_IGN)`: a process silencing the trap signal.
    IgnoreSigsys,
    /// `pipe2(fds, flags)`; both ends are closed again.
    Pipe2 {
        /// The flags.
        flags: i32,
    },
    /// `open("/etc/passwd", O_RDONLY | O_CLOEXEC)` through libc (which uses `openat`).
    OpenPath,
    /// The legacy `open` system call (x86-64 only; elsewhere `openat`).
    OpenLegacy,
    /// `openat(AT_FDCWD, path, flags)`; a returned fd is closed again.
    OpenAt {
        /// The path.
        path: &'static std::ffi::CStr,
        /// The flags.
        flags: i32,
    },
    /// `openat2` of `/etc/passwd`, read-only.
    Openat2,
    /// `creat("/nonexistent-triptych/x")` (x86-64 only; elsewhere `openat` with `O_CREAT`).
    Creat,
    /// `newfstatat(AT_FDCWD, "/etc/passwd", &st, 0)`: a path lookup.
    StatPath,
    /// `newfstatat(fd, "", &st, AT_EMPTY_PATH)`: what `fstat` does.
    StatFd(BorrowedFd<'a>),
    /// `execve("/bin/true", ["true"], [])`.
    Execve,
    /// `execveat(-1, "", NULL, NULL, AT_EMPTY_PATH)`.
    Execveat,
    /// `fork()` (libc: `clone` without `CLONE_THREAD`); a child would `_exit(0)` at once.
    Fork,
    /// Raw `clone(SIGCHLD, 0, ...)`, like fork.
    CloneProcess,
    /// Raw `clone(CLONE_NEWUSER | SIGCHLD, 0, ...)`.
    CloneNewUser,
    /// `clone3(NULL, 0)`.
    Clone3,
    /// `socket(domain, ty | SOCK_CLOEXEC, 0)`.
    Socket {
        /// Address family.
        domain: i32,
        /// Socket type.
        ty: i32,
    },
    /// `socketpair(domain, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)`.
    Socketpair {
        /// Address family.
        domain: i32,
    },
    /// `connect(fd, "/nonexistent-triptych/socket")`.
    Connect(BorrowedFd<'a>),
    /// `bind(fd, "/nonexistent-triptych/socket")`.
    Bind(BorrowedFd<'a>),
    /// `listen(fd, 1)`.
    Listen(BorrowedFd<'a>),
    /// `accept4(fd, NULL, NULL, SOCK_CLOEXEC)`.
    Accept4(BorrowedFd<'a>),
    /// `sendto(fd, "x", 1, MSG_DONTWAIT, "/nonexistent-triptych/socket")`.
    Sendto(BorrowedFd<'a>),
    /// `ptrace(PTRACE_ATTACH, pid)`; detached again at once if it worked.
    PtraceAttach(i32),
    /// `ptrace(PTRACE_SEIZE, pid)`; detached again at once if it worked.
    PtraceSeize(i32),
    /// `process_vm_readv(pid, [own 64 bytes], [address 0x10000, 64 bytes])`.
    ProcessVmReadv(i32),
    /// `process_vm_writev(pid, [own 64 bytes], [address 0x10000, 64 bytes])`.
    ProcessVmWritev(i32),
    /// `kill(pid, 0)`.
    Kill(i32),
    /// `tgkill(tgid, tid, 0)`.
    Tgkill(i32, i32),
    /// `futex(&a, op, val, NULL, &b, val3)` on two words of this call's stack frame, both 0:
    /// every operation the rule checks make either returns at once (a wait on a word that does
    /// not hold `val`, a wake that finds no waiter, an unlock of a lock not held) or only
    /// rewrites those words.
    Futex {
        /// The operation, with its flags.
        op: i32,
        /// The value argument.
        val: u32,
        /// The third value argument (a bitset, a compared value, a wake-op's encoding).
        val3: u32,
    },
    /// `tkill(tid, 0)`.
    Tkill(i32),
    /// `pidfd_send_signal(pidfd, 0, NULL, 0)`.
    PidfdSendSignal(BorrowedFd<'a>),
    /// `pidfd_open(pid, 0)`.
    PidfdOpen(i32),
    /// `pidfd_getfd(pidfd, target, flags)`.
    PidfdGetfd {
        /// The pidfd.
        pidfd: BorrowedFd<'a>,
        /// The fd number in the target.
        target: i32,
        /// Flags (0 is the only valid value).
        flags: u32,
    },
    /// `mmap(NULL, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS)`; unmapped again if it worked.
    Mmap {
        /// Protection bits.
        prot: i32,
    },
    /// `mprotect` of a fresh private page to `prot`.
    Mprotect {
        /// Protection bits.
        prot: i32,
    },
    /// `pkey_mprotect` of a fresh private page to `PROT_READ | PROT_EXEC`, key -1.
    PkeyMprotectExec,
    /// `madvise` of a fresh private page.
    Madvise {
        /// The advice.
        advice: i32,
    },
    /// `mremap` of a fresh private page to two pages with `flags`.
    Mremap {
        /// Flags.
        flags: i32,
    },
    /// `ioctl(fd, request, &buf)` with a zeroed 256-byte buffer.
    Ioctl {
        /// The fd.
        fd: BorrowedFd<'a>,
        /// The request.
        request: IoctlRequest,
    },
    /// `fcntl(fd, cmd, arg)` for an integer-argument command.
    Fcntl {
        /// The fd.
        fd: BorrowedFd<'a>,
        /// `F_GETFD`, `F_SETFD`, `F_GETFL`, `F_DUPFD`, `F_GET_SEALS`, ...
        cmd: i32,
        /// Its integer argument (`FD_CLOEXEC` for `F_SETFD`, the lowest number for `F_DUPFD`).
        arg: i32,
    },
    /// `dup(fd)`.
    Dup(BorrowedFd<'a>),
    /// `dup3(from, to, flags)`, `to` being an fd the caller owns.
    Dup3 {
        /// Source.
        from: BorrowedFd<'a>,
        /// Target (its file is replaced if this works).
        to: BorrowedFd<'a>,
        /// Flags.
        flags: i32,
    },
    /// `unshare(flags)`.
    Unshare(i32),
    /// `setns(fd, 0)`.
    Setns(BorrowedFd<'a>),
    /// `bpf(BPF_PROG_LOAD, NULL, 0)`.
    Bpf,
    /// `io_uring_setup(1, NULL)`.
    IoUringSetup,
    /// `userfaultfd(O_CLOEXEC)`.
    Userfaultfd,
    /// `perf_event_open(NULL, 0, -1, -1, 0)`.
    PerfEventOpen,
    /// A system call number that does not exist ([`INVALID_SYSCALL`]).
    Invalid,
    /// `open` through the x32 ABI (`X32_SYSCALL_BIT | 2`), NULL path.
    X32Open,
    /// `prctl` with an integer option.
    Prctl(PrctlOption),
    /// `seccomp(SECCOMP_GET_ACTION_AVAIL, 0, NULL)`.
    Seccomp,
    /// `prlimit64(0, RLIMIT_NOFILE, NULL, &old)`: a read.
    PrlimitGet,
    /// `prlimit64(0, RLIMIT_CORE, &{0, 0}, NULL)`: a write (lowering, harmless).
    PrlimitSet,
    /// `chroot("/")`.
    Chroot,
    /// `mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL)`.
    Mount,
    /// `keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)`.
    Keyctl,
    /// `personality(0xffffffff)`: a query.
    Personality,
    /// `memfd_create("probe", MFD_CLOEXEC)`.
    MemfdCreate,
    /// `sched_setaffinity(0, 0, NULL)`.
    SchedSetaffinity,
    /// `kcmp(getpid(), pid, KCMP_VM, 0, 0)`.
    Kcmp(i32),
    /// `process_madvise(pidfd, NULL, 0, MADV_COLD, 0)`.
    ProcessMadvise(BorrowedFd<'a>),
    /// `reboot(0, 0, 0, NULL)` (bad magic: refused by the kernel even for root).
    Reboot,
    /// `init_module(NULL, 0, NULL)`.
    InitModule,
    /// `kexec_load(0, 0, NULL, 0)`.
    KexecLoad,
    /// `acct(NULL)`.
    Acct,
    /// `setuid(0)` (refused by the kernel without `CAP_SETUID` unless the uid is 0 already).
    Setuid,
    /// `capset(NULL, NULL)`.
    Capset,
    /// `getrandom(&buf, 16, 0)`.
    Getrandom,
    /// `sched_setscheduler(0, policy, &{0})`, made by a short-lived thread of its own so the
    /// calling thread keeps its scheduling.
    SchedSetscheduler {
        /// The policy (`SCHED_OTHER`, `SCHED_BATCH`, `SCHED_IDLE`, `SCHED_FIFO`, ...).
        policy: i32,
    },
    /// `sched_getaffinity(0, 128, &mask)`.
    SchedGetaffinity,
    /// `fstatfs(fd, &buf)`.
    Fstatfs(BorrowedFd<'a>),
    /// `lseek(fd, 0, SEEK_CUR)`.
    Lseek(BorrowedFd<'a>),
}

/// What an attempted call did.
#[derive(Debug)]
pub enum Outcome {
    /// It returned this value (any fd or mapping it made is already closed or unmapped).
    Returned(i64),
    /// It returned a new fd (`pidfd_getfd`).
    Fd(OwnedFd),
    /// It failed with this errno.
    Failed(nix::Error),
}

impl Outcome {
    /// The errno, if it failed.
    pub fn errno(&self) -> Option<nix::Error> {
        match self {
            Outcome::Failed(e) => Some(*e),
            _ => None,
        }
    }
}

const PATH: &std::ffi::CStr = c"/etc/passwd";
const NOWHERE: &std::ffi::CStr = c"/nonexistent-triptych/socket";
const PAGE: usize = 4096;

fn ret(rc: libc::c_long) -> Outcome {
    if rc < 0 {
        Outcome::Failed(nix::Error::last())
    } else {
        Outcome::Returned(rc)
    }
}

/// `rc` is a new fd on success: closes it.
fn ret_fd_closed(rc: libc::c_long) -> Outcome {
    if rc < 0 {
        return Outcome::Failed(nix::Error::last());
    }
    // SAFETY: the call just returned `rc` as a new fd that nothing else owns.
    drop(unsafe { OwnedFd::from_raw_fd(rc as i32) });
    Outcome::Returned(rc)
}

fn sockaddr_nowhere() -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in a.sun_path.iter_mut().zip(NOWHERE.to_bytes()) {
        *d = *s as libc::c_char;
    }
    (a, size_of::<libc::sockaddr_un>() as libc::socklen_t)
}

/// A private anonymous page, unmapped on drop.
struct Page(*mut libc::c_void);

impl Page {
    fn new() -> Option<Page> {
        // SAFETY: a fresh private anonymous mapping at an address of the kernel's choosing
        // overlaps nothing of ours.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        (p != libc::MAP_FAILED).then_some(Page(p))
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: the page was mapped by `new` (or moved by mremap, which updates `self.0`) and
        // is referenced by nothing else.
        unsafe { libc::munmap(self.0, PAGE) };
    }
}

/// Makes the call and reports what happened. A call the seccomp filter traps does not return.
pub fn attempt(call: Call<'_>) -> Outcome {
    // SAFETY: (for every call below) each call passes integers, fds borrowed for the call,
    // pointers to static NUL-terminated strings the kernel only reads, or pointers to buffers on
    // this stack frame at least as large as what the kernel may write for that call; whatever
    // the call creates (fd, mapping, child) is released before returning.
    unsafe {
        match call {
            Call::OpenPath => {
                ret_fd_closed(libc::open(PATH.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC).into())
            }
            Call::OpenAt { path, flags } => ret_fd_closed(libc::syscall(
                libc::SYS_openat,
                libc::AT_FDCWD,
                path.as_ptr(),
                flags,
                0o600,
            )),
            Call::OpenLegacy => {
                #[cfg(target_arch = "x86_64")]
                let rc = libc::syscall(
                    libc::SYS_open,
                    PATH.as_ptr(),
                    libc::O_RDONLY | libc::O_CLOEXEC,
                );
                #[cfg(not(target_arch = "x86_64"))]
                let rc = libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD,
                    PATH.as_ptr(),
                    libc::O_RDONLY | libc::O_CLOEXEC,
                );
                ret_fd_closed(rc)
            }
            Call::Openat2 => {
                // struct open_how { u64 flags; u64 mode; u64 resolve; } (include/uapi/linux/openat2.h)
                let mut how = [(libc::O_RDONLY | libc::O_CLOEXEC) as u64, 0u64, 0u64];
                let rc = libc::syscall(
                    libc::SYS_openat2,
                    libc::AT_FDCWD,
                    PATH.as_ptr(),
                    how.as_mut_ptr(),
                    size_of_val(&how),
                );
                ret_fd_closed(rc)
            }
            Call::Pipe2 { flags } => {
                let mut fds = [-1i32; 2];
                let rc = libc::syscall(libc::SYS_pipe2, fds.as_mut_ptr(), flags);
                if rc == 0 {
                    for fd in fds {
                        // SAFETY: pipe2 just returned both numbers as new fds nothing else owns.
                        drop(OwnedFd::from_raw_fd(fd));
                    }
                }
                ret(rc)
            }
            Call::Creat => {
                let p = c"/nonexistent-triptych/x";
                #[cfg(target_arch = "x86_64")]
                let rc = libc::syscall(libc::SYS_creat, p.as_ptr(), 0o600);
                #[cfg(not(target_arch = "x86_64"))]
                let rc = libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD,
                    p.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC,
                    0o600,
                );
                ret_fd_closed(rc)
            }
            Call::StatPath => {
                let mut st: libc::stat = std::mem::zeroed();
                ret(libc::syscall(
                    libc::SYS_newfstatat,
                    libc::AT_FDCWD,
                    PATH.as_ptr(),
                    &mut st as *mut libc::stat,
                    0,
                ))
            }
            Call::StatFd(fd) => {
                let mut st: libc::stat = std::mem::zeroed();
                ret(libc::syscall(
                    libc::SYS_newfstatat,
                    fd.as_raw_fd(),
                    c"".as_ptr(),
                    &mut st as *mut libc::stat,
                    libc::AT_EMPTY_PATH,
                ))
            }
            Call::Execve => {
                let argv = [c"true".as_ptr(), std::ptr::null()];
                let envp = [std::ptr::null::<libc::c_char>()];
                ret(libc::execve(c"/bin/true".as_ptr(), argv.as_ptr(), envp.as_ptr()).into())
            }
            Call::Execveat => ret(libc::syscall(
                libc::SYS_execveat,
                -1,
                c"".as_ptr(),
                std::ptr::null::<*const libc::c_char>(),
                std::ptr::null::<*const libc::c_char>(),
                libc::AT_EMPTY_PATH,
            )),
            Call::Fork => {
                let pid = libc::fork();
                if pid == 0 {
                    libc::_exit(0);
                }
                reap(pid.into())
            }
            Call::CloneProcess => clone_raw(libc::SIGCHLD as libc::c_ulong),
            Call::CloneNewUser => clone_raw((libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong),
            Call::Clone3 => ret(libc::syscall(
                libc::SYS_clone3,
                std::ptr::null::<u8>(),
                0usize,
            )),
            Call::Socket { domain, ty } => {
                ret_fd_closed(libc::socket(domain, ty | libc::SOCK_CLOEXEC, 0).into())
            }
            Call::Socketpair { domain } => {
                let mut fds = [-1i32; 2];
                let rc = libc::socketpair(
                    domain,
                    libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                    0,
                    fds.as_mut_ptr(),
                );
                if rc == 0 {
                    for fd in fds {
                        drop(OwnedFd::from_raw_fd(fd));
                    }
                }
                ret(rc.into())
            }
            Call::Connect(fd) => {
                let (a, len) = sockaddr_nowhere();
                ret(
                    libc::connect(fd.as_raw_fd(), (&a as *const libc::sockaddr_un).cast(), len)
                        .into(),
                )
            }
            Call::Bind(fd) => {
                let (a, len) = sockaddr_nowhere();
                ret(libc::bind(fd.as_raw_fd(), (&a as *const libc::sockaddr_un).cast(), len).into())
            }
            Call::Listen(fd) => ret(libc::listen(fd.as_raw_fd(), 1).into()),
            Call::Accept4(fd) => ret_fd_closed(
                libc::accept4(
                    fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
                .into(),
            ),
            Call::Sendto(fd) => {
                let (a, len) = sockaddr_nowhere();
                ret(libc::sendto(
                    fd.as_raw_fd(),
                    b"x".as_ptr().cast(),
                    1,
                    libc::MSG_DONTWAIT,
                    (&a as *const libc::sockaddr_un).cast(),
                    len,
                ) as libc::c_long)
            }
            Call::PtraceAttach(pid) => ptrace_and_detach(libc::PTRACE_ATTACH, pid),
            Call::PtraceSeize(pid) => ptrace_and_detach(libc::PTRACE_SEIZE, pid),
            Call::ProcessVmReadv(pid) | Call::ProcessVmWritev(pid) => {
                let mut buf = [0u8; 64];
                let local = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                };
                let remote = libc::iovec {
                    iov_base: 0x10000 as *mut libc::c_void,
                    iov_len: 64,
                };
                let nr = if matches!(call, Call::ProcessVmReadv(_)) {
                    libc::SYS_process_vm_readv
                } else {
                    libc::SYS_process_vm_writev
                };
                ret(libc::syscall(
                    nr,
                    pid,
                    &local as *const libc::iovec,
                    1,
                    &remote as *const libc::iovec,
                    1,
                    0,
                ))
            }
            Call::Kill(pid) => ret(libc::kill(pid, 0).into()),
            Call::Tgkill(tgid, tid) => ret(libc::syscall(libc::SYS_tgkill, tgid, tid, 0)),
            Call::Tkill(tid) => ret(libc::syscall(libc::SYS_tkill, tid, 0)),
            Call::Futex { op, val, val3 } => {
                let a = std::sync::atomic::AtomicU32::new(0);
                let b = std::sync::atomic::AtomicU32::new(0);
                ret(libc::syscall(
                    libc::SYS_futex,
                    a.as_ptr(),
                    op,
                    val,
                    std::ptr::null::<libc::timespec>(),
                    b.as_ptr(),
                    val3,
                ))
            }
            Call::PidfdSendSignal(fd) => ret(libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )),
            Call::PidfdOpen(pid) => ret_fd_closed(libc::syscall(libc::SYS_pidfd_open, pid, 0)),
            Call::PidfdGetfd {
                pidfd,
                target,
                flags,
            } => {
                let rc = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, flags);
                if rc < 0 {
                    Outcome::Failed(nix::Error::last())
                } else {
                    Outcome::Fd(OwnedFd::from_raw_fd(rc as i32))
                }
            }
            Call::Mmap { prot } => {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    PAGE,
                    prot,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                if p == libc::MAP_FAILED {
                    return Outcome::Failed(nix::Error::last());
                }
                libc::munmap(p, PAGE);
                Outcome::Returned(0)
            }
            Call::Mprotect { prot } => match Page::new() {
                Some(page) => ret(libc::mprotect(page.0, PAGE, prot).into()),
                None => Outcome::Failed(nix::Error::last()),
            },
            Call::PkeyMprotectExec => match Page::new() {
                Some(page) => ret(libc::syscall(
                    libc::SYS_pkey_mprotect,
                    page.0,
                    PAGE,
                    libc::PROT_READ | libc::PROT_EXEC,
                    -1,
                )),
                None => Outcome::Failed(nix::Error::last()),
            },
            Call::Madvise { advice } => match Page::new() {
                Some(page) => ret(libc::madvise(page.0, PAGE, advice).into()),
                None => Outcome::Failed(nix::Error::last()),
            },
            Call::Mremap { flags } => match Page::new() {
                Some(mut page) => {
                    let p = libc::mremap(page.0, PAGE, PAGE, flags);
                    if p == libc::MAP_FAILED {
                        return Outcome::Failed(nix::Error::last());
                    }
                    // Same size, possibly moved: the Page now owns the new address.
                    page.0 = p;
                    Outcome::Returned(0)
                }
                None => Outcome::Failed(nix::Error::last()),
            },
            Call::Ioctl { fd, request } => {
                let mut buf = [0u64; 32];
                let req: libc::c_ulong = match request {
                    IoctlRequest::Fionread => libc::FIONREAD,
                    IoctlRequest::Tiocgwinsz => libc::TIOCGWINSZ,
                    IoctlRequest::DmaBufSyncStartRead => {
                        buf[0] = triptych_sys::dma_buf::DMA_BUF_SYNC_START
                            | triptych_sys::dma_buf::DMA_BUF_SYNC_READ;
                        libc::c_ulong::from(triptych_sys::dma_buf::DMA_BUF_IOCTL_SYNC)
                    }
                    IoctlRequest::DmaBufExportSyncFile => {
                        buf[0] = triptych_sys::dma_buf::DMA_BUF_SYNC_READ;
                        libc::c_ulong::from(triptych_sys::dma_buf::DMA_BUF_IOCTL_EXPORT_SYNC_FILE)
                    }
                    IoctlRequest::DmaBufImportSyncFile => {
                        // struct dma_buf_import_sync_file { u32 flags; s32 fd; }: no file (-1),
                        // so a filter that let it through shows as EBADF, not as a new fence.
                        buf[0] =
                            triptych_sys::dma_buf::DMA_BUF_SYNC_RW | (u64::from(u32::MAX) << 32);
                        libc::c_ulong::from(triptych_sys::dma_buf::DMA_BUF_IOCTL_IMPORT_SYNC_FILE)
                    }
                    IoctlRequest::TioclinuxGetShiftState => {
                        buf[0] = 6;
                        libc::TIOCLINUX
                    }
                    IoctlRequest::SeccompNotifRecv => {
                        libc::c_ulong::from(triptych_sys::notify::SECCOMP_IOCTL_NOTIF_RECV)
                    }
                };
                let rc = libc::ioctl(fd.as_raw_fd(), req as _, buf.as_mut_ptr());
                if rc == 0 && request == IoctlRequest::DmaBufExportSyncFile {
                    // struct dma_buf_export_sync_file { u32 flags; s32 fd; }: close the new fd.
                    let new_fd = (buf[0] >> 32) as i32;
                    if new_fd >= 0 {
                        drop(OwnedFd::from_raw_fd(new_fd));
                    }
                }
                ret(rc.into())
            }
            Call::Fcntl { fd, cmd, arg } => {
                let rc = libc::fcntl(fd.as_raw_fd(), cmd, arg);
                if rc >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
                    return ret_fd_closed(rc.into());
                }
                ret(rc.into())
            }
            Call::Dup(fd) => ret_fd_closed(libc::dup(fd.as_raw_fd()).into()),
            Call::Dup3 { from, to, flags } => {
                ret(libc::dup3(from.as_raw_fd(), to.as_raw_fd(), flags).into())
            }
            Call::Unshare(flags) => ret(libc::unshare(flags).into()),
            Call::Setns(fd) => ret(libc::setns(fd.as_raw_fd(), 0).into()),
            Call::Bpf => ret(libc::syscall(
                libc::SYS_bpf,
                5, /* BPF_PROG_LOAD */
                std::ptr::null::<u8>(),
                0,
            )),
            Call::IoUringSetup => ret_fd_closed(libc::syscall(
                libc::SYS_io_uring_setup,
                1,
                std::ptr::null::<u8>(),
            )),
            Call::Userfaultfd => {
                ret_fd_closed(libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC))
            }
            Call::PerfEventOpen => ret_fd_closed(libc::syscall(
                libc::SYS_perf_event_open,
                std::ptr::null::<u8>(),
                0,
                -1,
                -1,
                0,
            )),
            Call::Invalid => ret(libc::syscall(INVALID_SYSCALL)),
            Call::WriteFd { fd, bytes } => {
                ret(libc::write(fd, bytes.as_ptr().cast(), bytes.len()) as libc::c_long)
            }
            Call::ReadFd(fd) => {
                let mut buf = [0u8; 16];
                ret(libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) as libc::c_long)
            }
            Call::IgnoreSigsys => ret(libc::signal(libc::SIGSYS, libc::SIG_IGN) as libc::c_long),
            Call::X32Open => ret_fd_closed(libc::syscall(
                X32_SYSCALL_BIT | 2,
                std::ptr::null::<u8>(),
                0,
            )),
            Call::Prctl(option) => {
                let rc = match option {
                    PrctlOption::SetNameSame => {
                        let mut name = [0u8; 16];
                        if libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) != 0 {
                            return Outcome::Failed(nix::Error::last());
                        }
                        libc::prctl(libc::PR_SET_NAME, name.as_ptr())
                    }
                    PrctlOption::GetName => {
                        let mut name = [0u8; 16];
                        libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr())
                    }
                    PrctlOption::SetDumpable => {
                        libc::prctl(libc::PR_SET_DUMPABLE, 1 as libc::c_ulong)
                    }
                    PrctlOption::SetPtracer(pid) => libc::prctl(
                        triptych_sys::prctl::PR_SET_PTRACER,
                        libc::c_ulong::from(pid),
                    ),
                    PrctlOption::SetPtracerAny => {
                        libc::prctl(triptych_sys::prctl::PR_SET_PTRACER, libc::c_ulong::MAX)
                    }
                };
                ret(rc.into())
            }
            Call::Seccomp => ret(libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_GET_ACTION_AVAIL,
                0,
                std::ptr::null::<u32>(),
            )),
            Call::PrlimitGet => {
                let mut old = libc::rlimit64 {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                ret(libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    libc::RLIMIT_NOFILE,
                    std::ptr::null::<libc::rlimit64>(),
                    &mut old as *mut libc::rlimit64,
                ))
            }
            Call::PrlimitSet => {
                let new = libc::rlimit64 {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                ret(libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    libc::RLIMIT_CORE,
                    &new as *const libc::rlimit64,
                    std::ptr::null_mut::<libc::rlimit64>(),
                ))
            }
            Call::Chroot => ret(libc::chroot(c"/".as_ptr()).into()),
            Call::Mount => ret(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                std::ptr::null(),
            )
            .into()),
            // KEYCTL_GET_KEYRING_ID = 0, KEY_SPEC_SESSION_KEYRING = -3 (include/uapi/linux/keyctl.h).
            Call::Keyctl => ret(libc::syscall(libc::SYS_keyctl, 0, -3, 0)),
            Call::Personality => ret(libc::personality(0xffff_ffff).into()),
            Call::MemfdCreate => {
                ret_fd_closed(libc::memfd_create(c"probe".as_ptr(), libc::MFD_CLOEXEC).into())
            }
            Call::SchedSetaffinity => ret(libc::syscall(
                libc::SYS_sched_setaffinity,
                0,
                0,
                std::ptr::null::<u8>(),
            )),
            // KCMP_VM = 1 (include/uapi/linux/kcmp.h).
            Call::Kcmp(pid) => ret(libc::syscall(libc::SYS_kcmp, libc::getpid(), pid, 1, 0, 0)),
            Call::ProcessMadvise(fd) => ret(libc::syscall(
                libc::SYS_process_madvise,
                fd.as_raw_fd(),
                std::ptr::null::<libc::iovec>(),
                0,
                libc::MADV_COLD,
                0,
            )),
            Call::Reboot => ret(libc::syscall(
                libc::SYS_reboot,
                0,
                0,
                0,
                std::ptr::null::<u8>(),
            )),
            Call::InitModule => ret(libc::syscall(
                libc::SYS_init_module,
                std::ptr::null::<u8>(),
                0,
                std::ptr::null::<u8>(),
            )),
            Call::KexecLoad => ret(libc::syscall(
                libc::SYS_kexec_load,
                0,
                0,
                std::ptr::null::<u8>(),
                0,
            )),
            Call::Acct => ret(libc::acct(std::ptr::null()).into()),
            Call::Setuid => ret(libc::setuid(0).into()),
            Call::Capset => ret(libc::syscall(
                libc::SYS_capset,
                std::ptr::null::<u8>(),
                std::ptr::null::<u8>(),
            )),
            Call::Getrandom => {
                let mut buf = [0u8; 16];
                ret(libc::syscall(
                    libc::SYS_getrandom,
                    buf.as_mut_ptr(),
                    buf.len(),
                    0,
                ))
            }
            Call::SchedSetscheduler { policy } => {
                let t = std::thread::Builder::new().spawn(move || {
                    let param = libc::sched_param { sched_priority: 0 };
                    // SAFETY: sched_setscheduler on the calling (short-lived) thread with a
                    // param struct on its stack that the kernel only reads.
                    let rc = libc::sched_setscheduler(0, policy, &param);
                    if rc < 0 {
                        Err(nix::Error::last())
                    } else {
                        Ok(i64::from(rc))
                    }
                });
                match t.map(|h| h.join()) {
                    Ok(Ok(Ok(v))) => Outcome::Returned(v),
                    Ok(Ok(Err(e))) => Outcome::Failed(e),
                    _ => Outcome::Failed(nix::Error::EAGAIN),
                }
            }
            Call::SchedGetaffinity => {
                let mut mask = [0u8; 128];
                ret(libc::syscall(
                    libc::SYS_sched_getaffinity,
                    0,
                    mask.len(),
                    mask.as_mut_ptr(),
                ))
            }
            Call::Fstatfs(fd) => {
                let mut st: libc::statfs = std::mem::zeroed();
                ret(libc::fstatfs(fd.as_raw_fd(), &mut st).into())
            }
            Call::Lseek(fd) => ret(libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_CUR)),
        }
    }
}

/// Raw `clone(flags)` without a new stack (fork-like); a child exits at once.
fn clone_raw(flags: libc::c_ulong) -> Outcome {
    // SAFETY: clone with a null stack behaves like fork: the child gets a copy of this address
    // space and stack and returns 0 here, where it exits at once without touching anything.
    let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if rc == 0 {
        // SAFETY: _exit in the child ends it without running anything of the parent's.
        unsafe { libc::_exit(0) };
    }
    reap(rc)
}

/// Waits for a child this module made; passes errors through.
fn reap(rc: libc::c_long) -> Outcome {
    if rc < 0 {
        return Outcome::Failed(nix::Error::last());
    }
    let mut st = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    unsafe { libc::waitpid(rc as i32, &mut st, 0) };
    Outcome::Returned(rc)
}

fn ptrace_and_detach(request: libc::c_uint, pid: i32) -> Outcome {
    // SAFETY: PTRACE_ATTACH/SEIZE take a pid and no memory; a successful attach is undone by
    // PTRACE_DETACH with no memory either.
    unsafe {
        let rc = libc::ptrace(request, pid, 0usize, 0usize);
        if rc < 0 {
            return Outcome::Failed(nix::Error::last());
        }
        libc::ptrace(libc::PTRACE_DETACH, pid, 0usize, 0usize);
        Outcome::Returned(rc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// Without a sandbox, the harmless calls work and the refused ones fail the way the kernel
    /// refuses them: each probe does what it says.
    #[test]
    fn probes_do_what_they_say_without_a_sandbox() {
        assert!(matches!(attempt(Call::OpenPath), Outcome::Returned(_)));
        assert!(matches!(
            attempt(Call::Invalid),
            Outcome::Failed(nix::Error::ENOSYS)
        ));
        assert!(matches!(attempt(Call::Fork), Outcome::Returned(pid) if pid > 0));
        assert!(matches!(
            attempt(Call::Mmap {
                prot: libc::PROT_READ
            }),
            Outcome::Returned(0)
        ));
        assert!(matches!(
            attempt(Call::Mremap {
                flags: libc::MREMAP_MAYMOVE
            }),
            Outcome::Returned(0)
        ));
        let me = triptych_sys::pidfd::pidfd_open(std::process::id() as i32).expect("pidfd");
        let m = triptych_sys::memfd::create_sealed(c"probe", 4096).expect("memfd");
        match attempt(Call::PidfdGetfd {
            pidfd: me.as_fd(),
            target: m.as_raw_fd(),
            flags: 0,
        }) {
            Outcome::Fd(fd) => assert_eq!(
                triptych_sys::fd::identity(fd.as_fd()).expect("id"),
                triptych_sys::fd::identity(m.as_fd()).expect("id")
            ),
            other => panic!("pidfd_getfd of our own memfd: {other:?}"),
        }
        assert!(matches!(
            attempt(Call::PidfdGetfd {
                pidfd: me.as_fd(),
                target: m.as_raw_fd(),
                flags: 1
            }),
            Outcome::Failed(nix::Error::EINVAL)
        ));
        assert!(matches!(
            attempt(Call::Ioctl {
                fd: m.as_fd(),
                request: IoctlRequest::DmaBufSyncStartRead
            }),
            Outcome::Failed(nix::Error::ENOTTY)
        ));
        assert!(matches!(
            attempt(Call::Kill(std::process::id() as i32)),
            Outcome::Returned(0)
        ));
        assert!(matches!(attempt(Call::Reboot), Outcome::Failed(_)));
    }
}
