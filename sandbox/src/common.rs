//! The part of the policy both sandboxed roles share: what any Rust program with threads, ipc
//! channels and logging needs once it is running, and nothing that reaches outside the process.
//!
//! What is *not* here is as deliberate as what is: no call that names a path (`open*`, `stat` of
//! a path, `exec*`), no socket but an unconnected `AF_UNIX` pair, no process creation (`clone`
//! only with `CLONE_THREAD`), no signal to another process, no namespace or credential change,
//! no `ptrace`, `process_vm_*`, `bpf`, `perf_event_open`, `io_uring_*`, `userfaultfd`, `keyctl`,
//! `mount`, module or reboot calls, and no priority-inheritance `futex` operation ([`futex_rules`]). Memory, `ioctl` and fd duplication differ between the roles
//! and are in their own files.
//!
//! Numbers: system call numbers are `abi::SYS_*` (`triptych_sys::abi`: the kernel's table for
//! the build's architecture); flag values are the uapi constants the C library exports,
//! re-exported there too, pinned by the tests below against the values in the headers cited
//! next to them.

use triptych_sys::abi;

use crate::{Arg, Refusal, Rule};

/// `CLONE_VM | CLONE_THREAD` (`include/uapi/linux/sched.h`: 0x100, 0x10000): a new thread.
pub const CLONE_THREAD_FLAGS: u64 = (abi::CLONE_VM | abi::CLONE_THREAD | abi::CLONE_FILES) as u64;

/// Every namespace flag of `clone` (`include/uapi/linux/sched.h`): none may come with a thread.
pub const CLONE_NAMESPACE_FLAGS: u64 = (abi::CLONE_NEWNS
    | abi::CLONE_NEWCGROUP
    | abi::CLONE_NEWUTS
    | abi::CLONE_NEWIPC
    | abi::CLONE_NEWUSER
    | abi::CLONE_NEWPID
    | abi::CLONE_NEWNET) as u64;

/// The bits of `clone`'s flags a rule looks at: thread-ness and namespaces.
pub const CLONE_CHECKED_FLAGS: u64 = CLONE_THREAD_FLAGS | CLONE_NAMESPACE_FLAGS;

/// The bits of `futex`'s operation a rule looks at: all but the two flags any operation may
/// carry (`FUTEX_PRIVATE_FLAG`, `FUTEX_CLOCK_REALTIME`), so an unknown bit refuses the call too.
pub const FUTEX_OP_CHECKED: u64 =
    0xffff_ffff & !((abi::FUTEX_PRIVATE_FLAG | abi::FUTEX_CLOCK_REALTIME) as u64);

/// The `futex` operations the processes may make: waits and wakes (the standard library's and
/// glibc's locks, channels' parking, the mailboxes' and the progress page's shared words) and the
/// requeue and wake-op operations older C libraries' condition variables use. Every
/// priority-inheritance operation (`FUTEX_LOCK_PI`, `FUTEX_LOCK_PI2`, `FUTEX_TRYLOCK_PI`,
/// `FUTEX_UNLOCK_PI`, `FUTEX_WAIT_REQUEUE_PI`, `FUTEX_CMP_REQUEUE_PI`) traps: neither process
/// uses one, and they are the futex code with the kernel's worst record (CVE-2014-3153, the
/// requeue-PI use-after-free a renderer sandbox could be escaped through, and the PI state's
/// later fixes). Chromium's baseline policy refuses the same set.
pub fn futex_rules() -> Vec<Rule> {
    let op = |id, cmd: i32, what, why| {
        Rule::with(
            id,
            abi::SYS_futex,
            "futex",
            vec![Arg::masked32(1, FUTEX_OP_CHECKED, cmd as u64, what)],
            why,
        )
    };
    vec![
        op(
            "futex:wait",
            abi::FUTEX_WAIT,
            "FUTEX_WAIT",
            "glibc's locks, the mailboxes' and the progress page's shared words",
        ),
        op(
            "futex:wake",
            abi::FUTEX_WAKE,
            "FUTEX_WAKE",
            "every lock's and shared word's wake-up",
        ),
        op(
            "futex:wait-bitset",
            abi::FUTEX_WAIT_BITSET,
            "FUTEX_WAIT_BITSET",
            "the standard library's and glibc's timed waits",
        ),
        op(
            "futex:wake-bitset",
            abi::FUTEX_WAKE_BITSET,
            "FUTEX_WAKE_BITSET",
            "wake-ups paired with bitset waits",
        ),
        op(
            "futex:wake-op",
            abi::FUTEX_WAKE_OP,
            "FUTEX_WAKE_OP",
            "condition variables of older C libraries (a driver's own)",
        ),
        op(
            "futex:requeue",
            abi::FUTEX_REQUEUE,
            "FUTEX_REQUEUE",
            "condition variables of older C libraries (a driver's own)",
        ),
        op(
            "futex:cmp-requeue",
            abi::FUTEX_CMP_REQUEUE,
            "FUTEX_CMP_REQUEUE",
            "condition variables of older C libraries (a driver's own)",
        ),
    ]
}

/// The rules both roles share. `pid` is the process's own pid (for `tgkill`).
pub fn rules(pid: u32) -> Vec<Rule> {
    let pid = u64::from(pid);
    let mut r = vec![
        // I/O on fds the process already holds: ipc sockets, stderr (logging), the report pipe,
        // eventfds. Opening new files is what is refused, not using held ones.
        Rule::any(abi::SYS_read, "read", "reading held fds"),
        Rule::any(
            abi::SYS_write,
            "write",
            "logging to stderr, the trap report, eventfd fences",
        ),
        Rule::any(abi::SYS_readv, "readv", "reading held fds"),
        Rule::any(abi::SYS_writev, "writev", "logging"),
        Rule::any(abi::SYS_close, "close", "closing fetched fds and fences"),
        Rule::any(
            abi::SYS_lseek,
            "lseek",
            "measuring a buffer (lseek SEEK_END)",
        ),
        Rule::any(
            abi::SYS_fstatfs,
            "fstatfs",
            "recognising a DMA-BUF by its file system",
        ),
        // glibc's fstat is newfstatat(fd, "", buf, AT_EMPTY_PATH); a path lookup (any other
        // flags) is refused. With AT_EMPTY_PATH a non-empty path would still be looked up, but
        // only for stat: no file is opened and nothing is read.
        Rule::with(
            "newfstatat:empty-path",
            abi::SYS_newfstatat,
            "newfstatat",
            vec![Arg::eq32(3, abi::AT_EMPTY_PATH as u64, "AT_EMPTY_PATH")],
            "fstat of fetched files (identity checks)",
        ),
        Rule::with(
            "fcntl:getfd",
            abi::SYS_fcntl,
            "fcntl",
            vec![Arg::eq32(1, abi::F_GETFD as u64, "F_GETFD")],
            "close-on-exec checks",
        ),
        Rule::with(
            "fcntl:setfd",
            abi::SYS_fcntl,
            "fcntl",
            vec![Arg::eq32(1, abi::F_SETFD as u64, "F_SETFD")],
            "setting close-on-exec",
        ),
        Rule::with(
            "fcntl:getfl",
            abi::SYS_fcntl,
            "fcntl",
            vec![Arg::eq32(1, abi::F_GETFL as u64, "F_GETFL")],
            "reading status flags",
        ),
        Rule::with(
            "fcntl:get-seals",
            abi::SYS_fcntl,
            "fcntl",
            vec![Arg::eq32(1, abi::F_GET_SEALS as u64, "F_GET_SEALS")],
            "checking that a shm buffer cannot shrink",
        ),
        Rule::any(
            abi::SYS_poll,
            "poll",
            "fence waits with deadlines, channel hang-up checks, the command stream's waits",
        ),
        Rule::any(abi::SYS_ppoll, "ppoll", "fence waits with deadlines"),
        Rule::any(
            abi::SYS_sendmsg,
            "sendmsg",
            "channel messages (sends that never wait), SCM_RIGHTS",
        ),
        Rule::any(
            abi::SYS_recvmsg,
            "recvmsg",
            "channel messages, the launcher's command stream (ipc-channel), handovers, SCM_RIGHTS",
        ),
        Rule::any(abi::SYS_brk, "brk", "the heap"),
        Rule::any(
            abi::SYS_munmap,
            "munmap",
            "freeing memory, unmapping buffers",
        ),
        // pthread_create: clone(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD
        // | ...). A process (no CLONE_THREAD), a thread with an fd table of its own (no
        // CLONE_FILES: it could hold fds the launcher's look at the process's table misses) or
        // any new namespace traps.
        Rule::with(
            "clone:thread",
            abi::SYS_clone,
            "clone",
            vec![Arg::masked64(
                0,
                CLONE_CHECKED_FLAGS,
                CLONE_THREAD_FLAGS,
                "CLONE_VM | CLONE_THREAD | CLONE_FILES, no CLONE_NEW*",
            )],
            "threads",
        ),
        Rule::any(abi::SYS_set_robust_list, "set_robust_list", "thread start"),
        Rule::any(abi::SYS_rseq, "rseq", "thread start"),
        Rule::any(abi::SYS_gettid, "gettid", "thread ids in traces"),
        Rule::any(abi::SYS_getpid, "getpid", "own pid"),
        Rule::any(abi::SYS_sched_yield, "sched_yield", "spinning locks"),
        Rule::any(
            abi::SYS_sched_getaffinity,
            "sched_getaffinity",
            "glibc's malloc arena count",
        ),
        Rule::any(abi::SYS_exit, "exit", "thread exit"),
        Rule::any(abi::SYS_exit_group, "exit_group", "process exit"),
        Rule::any(
            abi::SYS_restart_syscall,
            "restart_syscall",
            "interrupted sleeps",
        ),
        Rule::any(
            abi::SYS_rt_sigaction,
            "rt_sigaction",
            "signal dispositions (fault injection, the trap reporter)",
        ),
        Rule::any(
            abi::SYS_rt_sigprocmask,
            "rt_sigprocmask",
            "signal masks (threads, abort)",
        ),
        Rule::any(
            abi::SYS_rt_sigreturn,
            "rt_sigreturn",
            "returning from a signal handler",
        ),
        Rule::any(
            abi::SYS_sigaltstack,
            "sigaltstack",
            "Rust's stack-overflow handler per thread",
        ),
        // abort(), raise() and the trap reporter signal the calling thread; no other process.
        Rule::with(
            "tgkill:self",
            abi::SYS_tgkill,
            "tgkill",
            vec![Arg::eq32(0, pid, "own pid")],
            "abort, raise, dying by SIGSYS",
        ),
        Rule::with(
            "prctl:set-name",
            abi::SYS_prctl,
            "prctl",
            vec![Arg::eq32(0, abi::PR_SET_NAME as u64, "PR_SET_NAME")],
            "naming threads",
        ),
        Rule::with(
            "prctl:get-name",
            abi::SYS_prctl,
            "prctl",
            vec![Arg::eq32(0, abi::PR_GET_NAME as u64, "PR_GET_NAME")],
            "reading thread names",
        ),
        Rule::any(
            abi::SYS_clock_gettime,
            "clock_gettime",
            "CLOCK_MONOTONIC where the vDSO cannot serve it",
        ),
        Rule::any(abi::SYS_clock_getres, "clock_getres", "clock resolution"),
        Rule::any(
            abi::SYS_gettimeofday,
            "gettimeofday",
            "log timestamps where the vDSO cannot serve them",
        ),
        Rule::any(abi::SYS_clock_nanosleep, "clock_nanosleep", "sleeping"),
        Rule::any(abi::SYS_nanosleep, "nanosleep", "sleeping"),
        Rule::any(
            abi::SYS_getrandom,
            "getrandom",
            "hash map keys of new threads",
        ),
        // glibc's qsort asks for the amount of memory before a large sort (phys_pages).
        Rule::any(abi::SYS_sysinfo, "sysinfo", "glibc qsort's memory check"),
    ];
    #[cfg(target_arch = "x86_64")]
    r.push(Rule::any(abi::SYS_fstat, "fstat", "fstat of held fds"));
    r.extend(futex_rules());
    r
}

/// The refusals both roles share.
pub fn refusals() -> Vec<Refusal> {
    vec![
        // clone3 passes its flags in memory, which a filter cannot read; answering ENOSYS makes
        // glibc's pthread_create fall back to clone, whose flags the rule above checks.
        Refusal::always(abi::SYS_clone3, "clone3", abi::ENOSYS, "fall back to clone"),
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
        assert_eq!(abi::PROT_EXEC, 0x4);
        assert_eq!(abi::MADV_DONTNEED, 4);
        // include/uapi/linux/mman.h
        assert_eq!(abi::MREMAP_MAYMOVE, 1);
        // include/uapi/linux/fcntl.h: F_LINUX_SPECIFIC_BASE (1024) + 10
        assert_eq!(abi::F_GET_SEALS, 1034);
        assert_eq!(abi::AT_EMPTY_PATH, 0x1000);
        // include/uapi/linux/prctl.h
        assert_eq!((abi::PR_SET_NAME, abi::PR_GET_NAME), (15, 16));
        // include/linux/socket.h
        assert_eq!(abi::AF_UNIX, 1);
        // include/uapi/asm-generic/fcntl.h (octal there)
        assert_eq!(abi::O_RDONLY, 0);
        assert_eq!(abi::O_TRUNC, 0o1000);
        assert_eq!(abi::O_NONBLOCK, 0o4000);
        assert_eq!(abi::O_CLOEXEC, 0o2000000);
        assert_eq!(abi::O_PATH, 0o10000000);
        assert_eq!((abi::F_GETFD, abi::F_SETFD, abi::F_GETFL), (1, 2, 3));
        // include/uapi/linux/fcntl.h: F_LINUX_SPECIFIC_BASE (1024) + 6 and + 9
        assert_eq!(abi::F_DUPFD_CLOEXEC, 1030);
        assert_eq!(abi::F_ADD_SEALS, 1033);
        assert_eq!(abi::PROT_READ, 0x1);
        // include/uapi/linux/sched.h
        assert_eq!(
            (abi::SCHED_OTHER, abi::SCHED_BATCH, abi::SCHED_IDLE),
            (0, 3, 5)
        );
        // include/uapi/asm-generic/ioctls.h
        assert_eq!(abi::TIOCSTI, 0x5412);
        assert_eq!(abi::FIONREAD, 0x541B);
        assert_eq!(abi::TIOCLINUX, 0x541C);
        assert_eq!(
            (abi::FUTEX_WAIT, abi::FUTEX_WAKE, abi::FUTEX_REQUEUE),
            (0, 1, 3)
        );
        assert_eq!(
            (
                abi::FUTEX_CMP_REQUEUE,
                abi::FUTEX_WAKE_OP,
                abi::FUTEX_LOCK_PI
            ),
            (4, 5, 6)
        );
        assert_eq!((abi::FUTEX_UNLOCK_PI, abi::FUTEX_TRYLOCK_PI), (7, 8));
        assert_eq!((abi::FUTEX_WAIT_BITSET, abi::FUTEX_WAKE_BITSET), (9, 10));
        assert_eq!(
            (abi::FUTEX_WAIT_REQUEUE_PI, abi::FUTEX_CMP_REQUEUE_PI),
            (11, 12)
        );
        assert_eq!(abi::FUTEX_LOCK_PI2, 13);
        assert_eq!(
            (abi::FUTEX_PRIVATE_FLAG, abi::FUTEX_CLOCK_REALTIME),
            (128, 256)
        );
    }

    #[test]
    fn futex_allows_waits_and_wakes_with_their_flags_and_no_priority_inheritance() {
        let rules = futex_rules();
        let allowed = |op: i32| {
            let args = [0x1000, op as u32 as u64, 0, 0, 0, 0];
            rules.iter().any(|r| r.allows(&args))
        };
        let flags = [
            0,
            abi::FUTEX_PRIVATE_FLAG,
            abi::FUTEX_CLOCK_REALTIME,
            abi::FUTEX_PRIVATE_FLAG | abi::FUTEX_CLOCK_REALTIME,
        ];
        for cmd in [
            abi::FUTEX_WAIT,
            abi::FUTEX_WAKE,
            abi::FUTEX_WAIT_BITSET,
            abi::FUTEX_WAKE_BITSET,
            abi::FUTEX_WAKE_OP,
            abi::FUTEX_REQUEUE,
            abi::FUTEX_CMP_REQUEUE,
        ] {
            for f in flags {
                assert!(allowed(cmd | f), "{cmd} | {f} refused");
            }
        }
        for cmd in [
            2, // FUTEX_FD, gone since Linux 2.6.26
            abi::FUTEX_LOCK_PI,
            abi::FUTEX_UNLOCK_PI,
            abi::FUTEX_TRYLOCK_PI,
            abi::FUTEX_WAIT_REQUEUE_PI,
            abi::FUTEX_CMP_REQUEUE_PI,
            abi::FUTEX_LOCK_PI2,
            14,
            127,
        ] {
            for f in flags {
                assert!(!allowed(cmd | f), "{cmd} | {f} allowed");
            }
        }
        // A bit outside the operation and its two flags refuses the call; the upper half of
        // the register, which the kernel ignores for an `int`, does not matter.
        assert!(!allowed(abi::FUTEX_WAKE | 0x1000));
        let args = [0x1000, (1u64 << 32) | abi::FUTEX_WAKE as u64, 0, 0, 0, 0];
        assert!(rules.iter().any(|r| r.allows(&args)));
    }

    #[test]
    fn threads_pass_and_processes_do_not() {
        let rule = rules(1)
            .into_iter()
            .find(|r| r.id == "clone:thread")
            .expect("rule");
        // glibc 2.36 pthread_create's flags.
        let pthread = (abi::CLONE_VM
            | abi::CLONE_FS
            | abi::CLONE_FILES
            | abi::CLONE_SIGHAND
            | abi::CLONE_THREAD
            | abi::CLONE_SYSVSEM
            | abi::CLONE_SETTLS
            | abi::CLONE_PARENT_SETTID
            | abi::CLONE_CHILD_CLEARTID) as u64;
        assert!(rule.allows(&[pthread, 0, 0, 0, 0, 0]));
        assert!(!rule.allows(&[abi::SIGCHLD as u64, 0, 0, 0, 0, 0]));
        assert!(!rule.allows(&[pthread | abi::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]));
        assert!(
            !rule.allows(&[(abi::CLONE_THREAD) as u64, 0, 0, 0, 0, 0]),
            "a thread without CLONE_VM"
        );
        assert!(
            !rule.allows(&[pthread & !(abi::CLONE_FILES as u64), 0, 0, 0, 0, 0]),
            "a thread with an fd table of its own"
        );
    }
}
