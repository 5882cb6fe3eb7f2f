//! The kernel ABI's numbers, as the other crates name them: system call numbers, flag values,
//! ioctl requests, signal and errno numbers, and the one BPF instruction struct.
//!
//! # What this module owns
//!
//! Nothing that runs: every item is a constant (or a plain `repr(C)` struct) re-exported from
//! the C library's bindings ([`libc`]), under the C name, so a rule reads as the man page and
//! the header do (`abi::SYS_openat`, `abi::O_CLOEXEC`). It is the vocabulary the seccomp
//! policies (`triptych-sandbox`) describe calls with, and that the launcher's learning mode
//! reads trapped calls with; the calls themselves are made by the other modules of this crate.
//!
//! # The rule it serves
//!
//! This crate is the kernel layer: no other product crate depends on `libc` or `nix`. A crate
//! that needs a number to *describe* a call (a policy rule, a test of one, a flag for
//! `OpenOptionsExt::custom_flags`) takes it from here; a crate that needs to *make* a call uses
//! a safe wrapper of this crate (or rustix). Only what is named below is re-exported, never the
//! whole of `libc`, so no function of the C library becomes reachable through this module, and
//! a new number is a visible addition to this list.
//!
//! Values are the build architecture's: system call numbers come from the kernel's table for it
//! (`arch/x86/entry/syscalls/syscall_64.tbl` on x86-64), flags from the uapi headers. The
//! seccomp policies pin the flag values they depend on against the headers in their own tests
//! (`triptych_sandbox::common`), and check every system call number against the kernel's
//! generated name table (`triptych_sandbox::names`).

// System call numbers every Linux architecture has.
pub use libc::{
    SYS_bpf, SYS_brk, SYS_clock_getres, SYS_clock_gettime, SYS_clock_nanosleep, SYS_clone,
    SYS_clone3, SYS_close, SYS_connect, SYS_dup, SYS_dup3, SYS_eventfd2, SYS_execve, SYS_execveat,
    SYS_exit, SYS_exit_group, SYS_fcntl, SYS_fstat, SYS_fstatfs, SYS_ftruncate, SYS_futex,
    SYS_getpid, SYS_getrandom, SYS_gettid, SYS_gettimeofday, SYS_io_uring_setup, SYS_ioctl,
    SYS_kill, SYS_lseek, SYS_madvise, SYS_memfd_create, SYS_mmap, SYS_mprotect, SYS_mremap,
    SYS_munmap, SYS_nanosleep, SYS_newfstatat, SYS_openat, SYS_openat2, SYS_perf_event_open,
    SYS_pidfd_getfd, SYS_pidfd_open, SYS_pidfd_send_signal, SYS_pipe2, SYS_ppoll, SYS_prctl,
    SYS_pread64, SYS_process_vm_readv, SYS_process_vm_writev, SYS_ptrace, SYS_read, SYS_readv,
    SYS_recvmsg, SYS_restart_syscall, SYS_rseq, SYS_rt_sigaction, SYS_rt_sigprocmask,
    SYS_rt_sigreturn, SYS_sched_getaffinity, SYS_sched_setaffinity, SYS_sched_setscheduler,
    SYS_sched_yield, SYS_sendmsg, SYS_set_robust_list, SYS_setns, SYS_setpriority, SYS_sigaltstack,
    SYS_socket, SYS_sysinfo, SYS_tgkill, SYS_tkill, SYS_uname, SYS_unshare, SYS_userfaultfd,
    SYS_write, SYS_writev,
};

// The legacy calls that x86-64 keeps and newer architectures' tables leave out (there only
// `openat`, `clone` and `ppoll` exist).
#[cfg(target_arch = "x86_64")]
pub use libc::{SYS_creat, SYS_fork, SYS_open, SYS_poll, SYS_vfork};

// `clone(2)` flags (`include/uapi/linux/sched.h`).
pub use libc::{
    CLONE_CHILD_CLEARTID, CLONE_FILES, CLONE_FS, CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET,
    CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWUTS, CLONE_PARENT_SETTID, CLONE_SETTLS,
    CLONE_SIGHAND, CLONE_SYSVSEM, CLONE_THREAD, CLONE_VM,
};

// `open(2)` and `fcntl(2)` flags and commands (`include/uapi/asm-generic/fcntl.h`,
// `include/uapi/linux/fcntl.h`), and `AT_EMPTY_PATH` of the `*at` calls.
pub use libc::{
    AT_EMPTY_PATH, F_ADD_SEALS, F_DUPFD_CLOEXEC, F_GETFD, F_GETFL, F_GET_SEALS, F_SETFD, O_CLOEXEC,
    O_NONBLOCK, O_PATH, O_RDONLY, O_TRUNC,
};

// Memory: `mmap(2)` protection, `madvise(2)` advice, `mremap(2)` flags
// (`include/uapi/asm-generic/mman-common.h`, `include/uapi/linux/mman.h`).
pub use libc::{MADV_DONTNEED, MREMAP_MAYMOVE, PROT_EXEC, PROT_READ};

// `prctl(2)` options (`include/uapi/linux/prctl.h`); `PR_SET_PTRACER` is
// [`crate::prctl::PR_SET_PTRACER`].
pub use libc::{PR_GET_NAME, PR_SET_NAME};

// `futex(2)` operations and the flags that may come with them (`include/uapi/linux/futex.h`).
pub use libc::{
    FUTEX_CLOCK_REALTIME, FUTEX_CMP_REQUEUE, FUTEX_CMP_REQUEUE_PI, FUTEX_LOCK_PI, FUTEX_LOCK_PI2,
    FUTEX_PRIVATE_FLAG, FUTEX_REQUEUE, FUTEX_TRYLOCK_PI, FUTEX_UNLOCK_PI, FUTEX_WAIT,
    FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_WAKE, FUTEX_WAKE_BITSET, FUTEX_WAKE_OP,
};

// Scheduling policies of `sched_setscheduler(2)` (`include/uapi/linux/sched.h`).
pub use libc::{SCHED_BATCH, SCHED_IDLE, SCHED_OTHER};

// Terminal and socket ioctl requests (`include/uapi/asm-generic/ioctls.h`).
pub use libc::{FIONREAD, TIOCLINUX, TIOCSTI};

// `AF_UNIX`, the one socket family the processes use (`include/linux/socket.h`).
pub use libc::AF_UNIX;

// Signal numbers as raw values, where the ABI carries one as a number (the exit signal in the
// low byte of `clone`'s flags). Signals sent or waited for are [`crate::signal::Signal`].
pub use libc::SIGCHLD;

// Errno values a seccomp rule answers with (`include/uapi/asm-generic/errno-base.h`,
// `errno.h`). Errors returned by this crate's calls are [`crate::Errno`].
pub use libc::{EACCES, ENOSYS, EPERM};

// One classic-BPF instruction (`struct sock_filter`, `include/uapi/linux/filter.h`): what a
// seccomp program is made of, as [`crate::notify::install_with_listener`] takes it.
pub use libc::sock_filter;
