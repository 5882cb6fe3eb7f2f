//! The part of the policy both sandboxed roles share: what any Rust program with threads, ipc
//! channels and logging needs once it is running, and nothing that reaches outside the process.
//!
//! What is *not* here is as deliberate as what is: no call that names a path (`open*`, `stat` of
//! a path, `exec*`), no socket but an unconnected `AF_UNIX` pair, no process creation (`clone`
//! only with `CLONE_THREAD`), no signal to another process, no namespace or credential change,
//! no `ptrace`, `process_vm_*`, `bpf`, `perf_event_open`, `io_uring_*`, `userfaultfd`, `keyctl`,
//! `mount`, module or reboot calls. Memory, `ioctl` and fd duplication differ between the roles
//! and are in their own files.
//!
//! Numbers: system call numbers are `libc::SYS_*` (the kernel's table for the build's
//! architecture); flag values are the uapi constants the C library exports, pinned by the tests
//! below against the values in the headers cited next to them.

use crate::{Arg, Refusal, Rule};

/// `CLONE_VM | CLONE_THREAD` (`include/uapi/linux/sched.h`: 0x100, 0x10000): a new thread.
pub const CLONE_THREAD_FLAGS: u64 =
    (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_FILES) as u64;

/// Every namespace flag of `clone` (`include/uapi/linux/sched.h`): none may come with a thread.
pub const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// The bits of `clone`'s flags a rule looks at: thread-ness and namespaces.
pub const CLONE_CHECKED_FLAGS: u64 = CLONE_THREAD_FLAGS | CLONE_NAMESPACE_FLAGS;

/// The rules both roles share. `pid` is the process's own pid (for `tgkill`).
pub fn rules(pid: u32) -> Vec<Rule> {
    let pid = u64::from(pid);
    let mut r = vec![
        // I/O on fds the process already holds: ipc sockets, stderr (logging), the report pipe,
        // eventfds. Opening new files is what is refused, not using held ones.
        Rule::any(libc::SYS_read, "read", "reading held fds"),
        Rule::any(
            libc::SYS_write,
            "write",
            "logging to stderr, the trap report, eventfd fences",
        ),
        Rule::any(libc::SYS_readv, "readv", "reading held fds"),
        Rule::any(libc::SYS_writev, "writev", "logging"),
        Rule::any(libc::SYS_close, "close", "closing fetched fds and fences"),
        Rule::any(
            libc::SYS_lseek,
            "lseek",
            "measuring a buffer (lseek SEEK_END)",
        ),
        Rule::any(
            libc::SYS_fstatfs,
            "fstatfs",
            "recognising a DMA-BUF by its file system",
        ),
        // glibc's fstat is newfstatat(fd, "", buf, AT_EMPTY_PATH); a path lookup (any other
        // flags) is refused. With AT_EMPTY_PATH a non-empty path would still be looked up, but
        // only for stat: no file is opened and nothing is read.
        Rule::with(
            "newfstatat:empty-path",
            libc::SYS_newfstatat,
            "newfstatat",
            vec![Arg::eq32(3, libc::AT_EMPTY_PATH as u64, "AT_EMPTY_PATH")],
            "fstat of fetched files (identity checks)",
        ),
        Rule::with(
            "fcntl:getfd",
            libc::SYS_fcntl,
            "fcntl",
            vec![Arg::eq32(1, libc::F_GETFD as u64, "F_GETFD")],
            "close-on-exec checks",
        ),
        Rule::with(
            "fcntl:setfd",
            libc::SYS_fcntl,
            "fcntl",
            vec![Arg::eq32(1, libc::F_SETFD as u64, "F_SETFD")],
            "setting close-on-exec",
        ),
        Rule::with(
            "fcntl:getfl",
            libc::SYS_fcntl,
            "fcntl",
            vec![Arg::eq32(1, libc::F_GETFL as u64, "F_GETFL")],
            "reading status flags",
        ),
        Rule::with(
            "fcntl:get-seals",
            libc::SYS_fcntl,
            "fcntl",
            vec![Arg::eq32(1, libc::F_GET_SEALS as u64, "F_GET_SEALS")],
            "checking that a shm buffer cannot shrink",
        ),
        Rule::any(
            libc::SYS_poll,
            "poll",
            "fence waits with deadlines, channel hang-up checks",
        ),
        Rule::any(libc::SYS_ppoll, "ppoll", "fence waits with deadlines"),
        Rule::any(
            libc::SYS_sendmsg,
            "sendmsg",
            "channel messages (sends that never wait), SCM_RIGHTS",
        ),
        Rule::any(
            libc::SYS_recvmsg,
            "recvmsg",
            "channel messages, handovers, SCM_RIGHTS",
        ),
        Rule::any(libc::SYS_futex, "futex", "locks and channels"),
        Rule::any(libc::SYS_brk, "brk", "the heap"),
        Rule::any(
            libc::SYS_munmap,
            "munmap",
            "freeing memory, unmapping buffers",
        ),
        // pthread_create: clone(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
        // | ...). A process (no CLONE_THREAD), a thread with an fd table of its own (no
        // CLONE_FILES: it could hold fds the launcher's look at the process's table misses) or
        // any new namespace traps.
        Rule::with(
            "clone:thread",
            libc::SYS_clone,
            "clone",
            vec![Arg::masked64(
                0,
                CLONE_CHECKED_FLAGS,
                CLONE_THREAD_FLAGS,
                "CLONE_VM | CLONE_THREAD | CLONE_FILES, no CLONE_NEW*",
            )],
            "threads",
        ),
        Rule::any(libc::SYS_set_robust_list, "set_robust_list", "thread start"),
        Rule::any(libc::SYS_rseq, "rseq", "thread start"),
        Rule::any(libc::SYS_gettid, "gettid", "thread ids in traces"),
        Rule::any(libc::SYS_getpid, "getpid", "own pid"),
        Rule::any(libc::SYS_sched_yield, "sched_yield", "spinning locks"),
        Rule::any(
            libc::SYS_sched_getaffinity,
            "sched_getaffinity",
            "glibc's malloc arena count",
        ),
        Rule::any(libc::SYS_exit, "exit", "thread exit"),
        Rule::any(libc::SYS_exit_group, "exit_group", "process exit"),
        Rule::any(
            libc::SYS_restart_syscall,
            "restart_syscall",
            "interrupted sleeps",
        ),
        Rule::any(
            libc::SYS_rt_sigaction,
            "rt_sigaction",
            "signal dispositions (fault injection, the trap reporter)",
        ),
        Rule::any(
            libc::SYS_rt_sigprocmask,
            "rt_sigprocmask",
            "signal masks (threads, abort)",
        ),
        Rule::any(
            libc::SYS_rt_sigreturn,
            "rt_sigreturn",
            "returning from a signal handler",
        ),
        Rule::any(
            libc::SYS_sigaltstack,
            "sigaltstack",
            "Rust's stack-overflow handler per thread",
        ),
        // abort(), raise() and the trap reporter signal the calling thread; no other process.
        Rule::with(
            "tgkill:self",
            libc::SYS_tgkill,
            "tgkill",
            vec![Arg::eq32(0, pid, "own pid")],
            "abort, raise, dying by SIGSYS",
        ),
        Rule::with(
            "prctl:set-name",
            libc::SYS_prctl,
            "prctl",
            vec![Arg::eq32(0, libc::PR_SET_NAME as u64, "PR_SET_NAME")],
            "naming threads",
        ),
        Rule::with(
            "prctl:get-name",
            libc::SYS_prctl,
            "prctl",
            vec![Arg::eq32(0, libc::PR_GET_NAME as u64, "PR_GET_NAME")],
            "reading thread names",
        ),
        Rule::any(
            libc::SYS_clock_gettime,
            "clock_gettime",
            "CLOCK_MONOTONIC where the vDSO cannot serve it",
        ),
        Rule::any(libc::SYS_clock_getres, "clock_getres", "clock resolution"),
        Rule::any(
            libc::SYS_gettimeofday,
            "gettimeofday",
            "log timestamps where the vDSO cannot serve them",
        ),
        Rule::any(libc::SYS_clock_nanosleep, "clock_nanosleep", "sleeping"),
        Rule::any(libc::SYS_nanosleep, "nanosleep", "sleeping"),
        Rule::any(
            libc::SYS_getrandom,
            "getrandom",
            "hash map keys of new threads",
        ),
        // glibc's qsort asks for the amount of memory before a large sort (phys_pages).
        Rule::any(libc::SYS_sysinfo, "sysinfo", "glibc qsort's memory check"),
    ];
    #[cfg(target_arch = "x86_64")]
    r.push(Rule::any(libc::SYS_fstat, "fstat", "fstat of held fds"));
    r
}

/// The refusals both roles share.
pub fn refusals() -> Vec<Refusal> {
    vec![
        // clone3 passes its flags in memory, which a filter cannot read; answering ENOSYS makes
        // glibc's pthread_create fall back to clone, whose flags the rule above checks.
        Refusal {
            nr: libc::SYS_clone3,
            name: "clone3",
            errno: libc::ENOSYS,
            why: "fall back to clone",
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values_match_the_headers() {
        // include/uapi/linux/sched.h
        // CLONE_VM 0x100, CLONE_FILES 0x400, CLONE_THREAD 0x10000.
        assert_eq!(CLONE_THREAD_FLAGS, 0x0001_0500);
        assert_eq!(CLONE_NAMESPACE_FLAGS, 0x7e02_0000);
        // include/uapi/asm-generic/mman-common.h
        assert_eq!(libc::PROT_EXEC, 0x4);
        assert_eq!(libc::MADV_DONTNEED, 4);
        // include/uapi/linux/mman.h
        assert_eq!(libc::MREMAP_MAYMOVE, 1);
        // include/uapi/linux/fcntl.h: F_LINUX_SPECIFIC_BASE (1024) + 10
        assert_eq!(libc::F_GET_SEALS, 1034);
        assert_eq!(libc::AT_EMPTY_PATH, 0x1000);
        // include/uapi/linux/prctl.h
        assert_eq!((libc::PR_SET_NAME, libc::PR_GET_NAME), (15, 16));
        // include/linux/socket.h
        assert_eq!(libc::AF_UNIX, 1);
    }

    #[test]
    fn threads_pass_and_processes_do_not() {
        let rule = rules(1)
            .into_iter()
            .find(|r| r.id == "clone:thread")
            .expect("rule");
        // glibc 2.36 pthread_create's flags.
        let pthread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        assert!(rule.allows(&[pthread, 0, 0, 0, 0, 0]));
        assert!(!rule.allows(&[libc::SIGCHLD as u64, 0, 0, 0, 0, 0]));
        assert!(!rule.allows(&[pthread | libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]));
        assert!(
            !rule.allows(&[(libc::CLONE_THREAD) as u64, 0, 0, 0, 0, 0]),
            "a thread without CLONE_VM"
        );
        assert!(
            !rule.allows(&[pthread & !(libc::CLONE_FILES as u64), 0, 0, 0, 0, 0]),
            "a thread with an fd table of its own"
        );
    }
}
