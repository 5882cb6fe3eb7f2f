//! The escape attempts the sandbox tests make the real processes perform, and what each must
//! end in.
//!
//! # The test hook
//!
//! An adversary binary (the child's own run with this crate's hooks) reads the environment
//! variable [`PROBE_ENV`] once at start-up, before its sandbox exists. If it names an attempt for the process's role (`renderer:open-file`),
//! the process performs that one attempt right after its sandbox is installed (for the
//! `*-on-buffer` attempts, as soon as it holds a fetched buffer) and writes the outcome to stderr
//! as a line `sandbox probe <role>:<name>: <outcome>`; a trapped call never gets that far: the
//! process dies by `SIGSYS` and the launcher logs the violation. Then it carries on as usual.
//! The launcher passes the variable to the first process of each role only, so a replacement
//! started after a violation runs clean.
//!
//! The hook is harmless by construction: it runs only after the sandbox is installed, and every
//! attempt is a call that any code running in the process (which is what a compromised process
//! is) could make anyway; the calls are chosen so that even an allowed one would change nothing
//! outside the process (see [`crate::calls`]). Two attempts prepare something before the
//! sandbox goes on, and both only *strengthen* the attacker: `pidfd-getfd-launcher` opens a
//! pidfd of the launcher beforehand (a sandboxed process could not), and
//! `pidfd-getfd-launcher-at-link` even puts it at the one number the `pidfd_getfd` rule accepts,
//! so the call passes the filter and only the kernel's ptrace check (a non-dumpable launcher in
//! another user namespace) stands in the way.
//!
//! Besides escapes, the hook runs the rule checks (every allowed rule with arguments called once
//! with allowed and once with altered arguments, as Firecracker's policy tests do) and the scan of
//! every fd number of the GPU process.

use std::os::fd::BorrowedFd;

use crate::calls::{Call, PrctlOption};
use ipc_protocol::messages::Transport;

pub use crate::hook::{PROBE_ENV, PROBE_LINE};

/// Probe name prefix: call rule `<id>` with allowed arguments.
pub const ALLOWED: &str = "allowed:";
/// Probe name prefix: call rule `<id>` with altered arguments.
pub const ALTERED: &str = "altered:";
/// Probe name: call every rule with arguments, allowed arguments only, in one process.
pub const ALL_ALLOWED: &str = "all-allowed";
/// Probe name: `pidfd_getfd` on every fd number 0..=[`SCAN_LAST`] of the GPU process.
pub const SCAN: &str = "scan";
/// The last fd number the scan tries.
pub const SCAN_LAST: i32 = 65535;

/// How an attempt must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Death by `SIGSYS`, reported to the launcher as a violation of this system call.
    Trap(&'static str),
    /// The call fails with this errno and the process lives on.
    Errno(i32),
}

/// One escape attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// Its name (the part after `<role>:` in [`PROBE_ENV`]).
    pub name: &'static str,
    /// How it must end.
    pub expect: Expect,
    /// What it tries.
    pub what: &'static str,
}

const fn trap(name: &'static str, call: &'static str, what: &'static str) -> Attempt {
    Attempt {
        name,
        expect: Expect::Trap(call),
        what,
    }
}

const fn errno(name: &'static str, e: i32, what: &'static str) -> Attempt {
    Attempt {
        name,
        expect: Expect::Errno(e),
        what,
    }
}

/// The renderer's escape attempts under `transport`.
pub fn renderer(transport: Transport) -> Vec<Attempt> {
    let mut v = vec![
        trap("open-file", "openat", "open /etc/passwd"),
        trap("openat2", "openat2", "open /etc/passwd with openat2"),
        trap("stat-path", "newfstatat", "stat a path"),
        trap("execve", "execve", "run /bin/true"),
        trap("execveat", "execveat", "execveat"),
        trap("fork", "clone", "fork a process"),
        trap("clone-process", "clone", "raw clone(SIGCHLD)"),
        trap("clone-newuser", "clone", "clone into a new user namespace"),
        trap("socket-inet", "socket", "open a TCP socket"),
        trap("socket-unix", "socket", "open a unix socket"),
        trap("socket-netlink", "socket", "open a netlink socket"),
        trap("socketpair-inet", "socketpair", "an AF_INET socket pair"),
        trap(
            "socketpair-unix",
            "socketpair",
            "an AF_UNIX socket pair (a child makes no sockets: the launcher made all it holds)",
        ),
        trap("connect", "connect", "connect a held socket elsewhere"),
        trap("bind", "bind", "bind a held socket"),
        trap("listen", "listen", "listen on a held socket"),
        trap("accept4", "accept4", "accept on a held socket"),
        trap("sendto", "sendto", "send a datagram to an address"),
        trap("ptrace-gpu", "ptrace", "PTRACE_ATTACH the GPU process"),
        trap("ptrace-launcher", "ptrace", "PTRACE_SEIZE the launcher"),
        trap(
            "process-vm-readv-gpu",
            "process_vm_readv",
            "read the GPU process's memory",
        ),
        trap(
            "process-vm-writev-gpu",
            "process_vm_writev",
            "write the GPU process's memory",
        ),
        trap("kill-launcher", "kill", "signal the launcher"),
        trap("kill-gpu", "kill", "signal the GPU process"),
        trap("tgkill-launcher", "tgkill", "signal a launcher thread"),
        trap("tkill-gpu", "tkill", "signal a GPU thread"),
        trap(
            "pidfd-send-signal-gpu",
            "pidfd_send_signal",
            "signal the GPU process through the link",
        ),
        trap(
            "pidfd-open-launcher",
            "pidfd_open",
            "open a pidfd of the launcher",
        ),
        trap(
            "pidfd-open-gpu",
            "pidfd_open",
            "open a pidfd of the GPU process",
        ),
        trap("mmap-exec", "mmap", "map executable memory"),
        trap("mprotect-exec", "mprotect", "make memory executable"),
        trap(
            "pkey-mprotect-exec",
            "pkey_mprotect",
            "make memory executable with a key",
        ),
        trap(
            "ioctl-fionread-on-buffer",
            "ioctl",
            "FIONREAD on a fetched buffer",
        ),
        trap(
            "ioctl-import-sync-file-on-buffer",
            "ioctl",
            "DMA_BUF_IOCTL_IMPORT_SYNC_FILE on a fetched buffer (a fence that would hold up its writer)",
        ),
        trap(
            "ioctl-tiocgwinsz-stderr",
            "ioctl",
            "a terminal ioctl on stderr",
        ),
        trap("unshare-user", "unshare", "a new user namespace"),
        trap("unshare-net", "unshare", "a new network namespace"),
        trap("setns", "setns", "join another namespace"),
        trap("bpf", "bpf", "load a BPF program"),
        trap("io-uring-setup", "io_uring_setup", "an io_uring"),
        trap("userfaultfd", "userfaultfd", "a userfaultfd"),
        trap("perf-event-open", "perf_event_open", "a perf event"),
        trap(
            "invalid-syscall",
            "syscall_999",
            "a system call number that does not exist",
        ),
        trap("prctl-dumpable", "prctl", "become dumpable"),
        trap("prctl-ptracer-any", "prctl", "let anyone ptrace it"),
        trap("seccomp", "seccomp", "touch its own filter"),
        trap("prlimit-set", "prlimit64", "change a resource limit"),
        trap("chroot", "chroot", "chroot"),
        trap("mount", "mount", "remount /"),
        trap("keyctl", "keyctl", "reach the kernel keyring"),
        trap("personality", "personality", "change the execution domain"),
        trap(
            "memfd-create",
            "memfd_create",
            "create a memfd after start-up",
        ),
        trap("dup", "dup", "duplicate an fd"),
        trap(
            "dup3-elsewhere",
            "dup3",
            "dup3 onto a number other than the link",
        ),
        trap("fcntl-dupfd", "fcntl", "duplicate an fd with fcntl"),
        trap("madvise-mergeable", "madvise", "other memory advice"),
        trap("mremap-fixed", "mremap", "mremap with other flags"),
        trap(
            "sched-setaffinity",
            "sched_setaffinity",
            "pin itself to cores",
        ),
        trap(
            "kcmp-gpu",
            "kcmp",
            "compare kernel objects with the GPU process",
        ),
        trap(
            "process-madvise-gpu",
            "process_madvise",
            "advise the GPU process's memory",
        ),
        trap(
            "futex-wait-requeue-pi",
            "futex",
            "FUTEX_WAIT_REQUEUE_PI, the operation of the requeue-PI escape (CVE-2014-3153)",
        ),
        trap(
            "futex-unlock-pi",
            "futex",
            "a priority-inheritance futex operation",
        ),
        trap("reboot", "reboot", "reboot"),
        trap("init-module", "init_module", "load a kernel module"),
        trap("kexec-load", "kexec_load", "load a kernel"),
        trap("acct", "acct", "process accounting"),
        trap("setuid", "setuid", "change uid"),
        trap("capset", "capset", "change capabilities"),
        errno(
            "clone3",
            libc::ENOSYS,
            "clone3 (flags in memory): refused so that glibc falls back to clone",
        ),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        trap("open-legacy", "open", "the legacy open system call"),
        trap("creat", "creat", "create a file"),
        trap("x32-open", "x32:open", "open through the x32 ABI"),
    ]);
    // With pidfd_getfd allowed: a number outside every export window is refused, anything
    // else off the one allowed shape (another view's window, another pidfd, flags) traps.
    let getfd = |name, what| match transport {
        Transport::Pidfd => errno(name, libc::EPERM, what),
        Transport::ScmRights => trap(name, "pidfd_getfd", what),
    };
    let getfd_trap = |name, what| trap(name, "pidfd_getfd", what);
    v.extend([
        getfd("pidfd-getfd-below-window", "take fd 2 of the GPU process"),
        getfd("pidfd-getfd-above-windows", "take the fd just past every export window"),
        getfd("pidfd-getfd-negative", "take fd -1"),
        getfd_trap(
            "pidfd-getfd-next-window",
            "take the first fd of the next view's export window",
        ),
        getfd_trap("pidfd-getfd-flags", "pidfd_getfd with flags 1"),
        getfd_trap("pidfd-getfd-through-other-fd", "pidfd_getfd through an fd other than the link"),
        getfd_trap("pidfd-getfd-launcher", "take an fd of the launcher through a pidfd opened before the sandbox"),
        getfd(
            "pidfd-getfd-launcher-at-link",
            "take an fd of the launcher through a launcher pidfd at the link's number (refused by the kernel)",
        ),
    ]);
    v
}

/// The GPU process's escape attempts.
pub fn gpu() -> Vec<Attempt> {
    vec![
        errno("open-file", libc::EACCES, "open /etc/passwd"),
        errno("openat2", libc::EACCES, "open /etc/passwd with openat2"),
        trap("execve", "execve", "run /bin/true"),
        trap("fork", "clone", "fork a process"),
        trap("socket-inet", "socket", "open a TCP socket"),
        trap("connect", "connect", "connect a held socket elsewhere"),
        trap("ptrace-renderer", "ptrace", "PTRACE_ATTACH the renderer"),
        trap("kill-launcher", "kill", "signal the launcher"),
        trap(
            "pidfd-open-launcher",
            "pidfd_open",
            "open a pidfd of the launcher",
        ),
        trap("unshare-net", "unshare", "a new network namespace"),
        trap(
            "futex-wait-requeue-pi",
            "futex",
            "FUTEX_WAIT_REQUEUE_PI, the operation of the requeue-PI escape (CVE-2014-3153)",
        ),
    ]
}

/// The `futex` call of escape attempt `name`, if it is one: each a priority-inheritance
/// operation that returns at once where it is allowed (a wait on a word that does not hold the
/// value, an unlock of a lock not held).
pub fn futex_attempt(name: &str) -> Option<Call<'static>> {
    let private = libc::FUTEX_PRIVATE_FLAG;
    Some(match name {
        "futex-wait-requeue-pi" => Call::Futex {
            op: libc::FUTEX_WAIT_REQUEUE_PI | private,
            val: 1,
            val3: 0,
        },
        "futex-unlock-pi" => Call::Futex {
            op: libc::FUTEX_UNLOCK_PI | private,
            val: 0,
            val3: 0,
        },
        _ => return None,
    })
}

/// A rule's calls with allowed arguments, then with altered ones.
pub type RuleCalls<'a> = (Vec<Call<'a>>, Vec<Call<'a>>);

/// What the rule checks of [`common_rule_calls`] use.
#[derive(Clone, Copy, Debug)]
pub struct RuleCtx<'a> {
    /// The process's stderr.
    pub stderr: BorrowedFd<'a>,
    /// A sealed memfd the process owns (the renderer's output; a fresh one in the GPU process).
    pub memfd: BorrowedFd<'a>,
    /// The launcher's pid.
    pub launcher: i32,
}

/// The allowed and the altered calls of rule `id` of [`triptych_sandbox::common::rules`], for a check in a
/// process whose pid is `pid`. `clone:thread` has no allowed call here: its allowed side is a
/// real thread, which the caller starts.
pub fn common_rule_calls<'a>(id: &str, pid: i32, c: &RuleCtx<'a>) -> Option<RuleCalls<'a>> {
    let tid = nix::unistd::gettid().as_raw();
    let futex = |op, val, val3| Call::Futex { op, val, val3 };
    // Each futex rule's altered call: an unlock of a priority-inheritance lock not held.
    let pi = futex(libc::FUTEX_UNLOCK_PI | libc::FUTEX_PRIVATE_FLAG, 0, 0);
    let dupfd = |fd| Call::Fcntl {
        fd,
        cmd: libc::F_DUPFD,
        arg: 0,
    };
    Some(match id {
        "newfstatat:empty-path" => (vec![Call::StatFd(c.stderr)], vec![Call::StatPath]),
        "fcntl:getfd" => (
            vec![Call::Fcntl {
                fd: c.stderr,
                cmd: libc::F_GETFD,
                arg: 0,
            }],
            vec![dupfd(c.stderr)],
        ),
        "fcntl:setfd" => (
            vec![Call::Fcntl {
                fd: c.memfd,
                cmd: libc::F_SETFD,
                arg: libc::FD_CLOEXEC,
            }],
            vec![dupfd(c.memfd)],
        ),
        "fcntl:getfl" => (
            vec![Call::Fcntl {
                fd: c.stderr,
                cmd: libc::F_GETFL,
                arg: 0,
            }],
            vec![dupfd(c.stderr)],
        ),
        "fcntl:get-seals" => (
            vec![Call::Fcntl {
                fd: c.memfd,
                cmd: libc::F_GET_SEALS,
                arg: 0,
            }],
            vec![dupfd(c.memfd)],
        ),
        "clone:thread" => (vec![], vec![Call::CloneProcess]),
        "tgkill:self" => (
            vec![Call::Tgkill(pid, tid)],
            vec![Call::Tgkill(c.launcher, c.launcher)],
        ),
        "futex:wait" | "futex:wait-bitset" => {
            let cmd = if id == "futex:wait" {
                libc::FUTEX_WAIT
            } else {
                libc::FUTEX_WAIT_BITSET
            };
            (
                // The word holds 0, not 1: the wait returns EAGAIN at once.
                vec![
                    futex(cmd, 1, u32::MAX),
                    futex(cmd | libc::FUTEX_PRIVATE_FLAG, 1, u32::MAX),
                    futex(
                        cmd | libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME,
                        1,
                        u32::MAX,
                    ),
                ],
                vec![pi],
            )
        }
        "futex:wake" | "futex:wake-bitset" => {
            let cmd = if id == "futex:wake" {
                libc::FUTEX_WAKE
            } else {
                libc::FUTEX_WAKE_BITSET
            };
            (
                vec![
                    futex(cmd, 1, u32::MAX),
                    futex(cmd | libc::FUTEX_PRIVATE_FLAG, 1, u32::MAX),
                ],
                vec![pi],
            )
        }
        // Sets the second word to 0 (what it holds), compares its old value with 0 (true) and
        // wakes none on either word.
        "futex:wake-op" => (
            vec![futex(libc::FUTEX_WAKE_OP | libc::FUTEX_PRIVATE_FLAG, 0, 0)],
            vec![pi],
        ),
        "futex:requeue" => (
            vec![futex(libc::FUTEX_REQUEUE | libc::FUTEX_PRIVATE_FLAG, 0, 0)],
            vec![pi],
        ),
        // The word holds 0, not 1: EAGAIN at once.
        "futex:cmp-requeue" => (
            vec![futex(
                libc::FUTEX_CMP_REQUEUE | libc::FUTEX_PRIVATE_FLAG,
                0,
                1,
            )],
            vec![pi],
        ),
        "prctl:set-name" => (
            vec![Call::Prctl(PrctlOption::SetNameSame)],
            vec![Call::Prctl(PrctlOption::SetDumpable)],
        ),
        // PR_SET_DUMPABLE: an option neither role allows (the GPU process may set a ptracer).
        "prctl:get-name" => (
            vec![Call::Prctl(PrctlOption::GetName)],
            vec![Call::Prctl(PrctlOption::SetDumpable)],
        ),
        _ => return None,
    })
}

/// A thread, started and joined: the allowed side of `clone:thread`.
pub fn allowed_thread() -> String {
    match std::thread::Builder::new()
        .name("probe".into())
        .spawn(|| 7)
        .map(|h| h.join())
    {
        Ok(Ok(7)) => "returned thread".to_owned(),
        Ok(_) => "failed thread panicked".to_owned(),
        Err(e) => format!("failed {e}"),
    }
}

/// How a probe prints a call's outcome: `returned <v>`, `fd <n>`, `failed <ERRNO>`.
pub fn describe(o: &crate::calls::Outcome) -> String {
    use crate::calls::Outcome;
    use std::os::fd::AsRawFd;
    match o {
        Outcome::Returned(v) => format!("returned {v}"),
        Outcome::Fd(fd) => format!("fd {}", fd.as_raw_fd()),
        Outcome::Failed(e) => format!("failed {e:?}"),
    }
}

/// Runs rule probe `name` (`allowed:<id>`, `altered:<id>` or [`ALL_ALLOWED`]) of `policy`, with
/// `calls` giving each rule's allowed and altered calls; returns `(probe name, outcome)` lines.
/// `None` if `name` is no rule probe.
pub fn run_rule_probe<'a>(
    name: &str,
    policy: &triptych_sandbox::Policy,
    calls: &dyn Fn(&str) -> Option<RuleCalls<'a>>,
) -> Option<Vec<(String, String)>> {
    let run = |id: &str, altered: bool| -> String {
        if id == "clone:thread" && !altered {
            return allowed_thread();
        }
        match calls(id) {
            Some((allowed, changed)) => {
                let list = if altered { changed } else { allowed };
                list.into_iter()
                    .map(|k| describe(&crate::calls::attempt(k)))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
            None => "unknown rule".to_owned(),
        }
    };
    if name == ALL_ALLOWED {
        let mut out: Vec<(String, String)> = policy
            .rules
            .iter()
            .filter(|r| !r.when.is_empty())
            .map(|r| (format!("{ALLOWED}{}", r.id), run(r.id, false)))
            .collect();
        out.push((name.to_owned(), "done".to_owned()));
        return Some(out);
    }
    if let Some(id) = name.strip_prefix(ALLOWED) {
        return Some(vec![(name.to_owned(), run(id, false))]);
    }
    if let Some(id) = name.strip_prefix(ALTERED) {
        return Some(vec![(name.to_owned(), run(id, true))]);
    }
    None
}

/// Whether `name` is an attempt that needs a fetched buffer.
pub fn needs_buffer(name: &str) -> bool {
    name.ends_with("-on-buffer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_enough() {
        for list in [
            renderer(Transport::Pidfd),
            renderer(Transport::ScmRights),
            gpu(),
        ] {
            let mut names: Vec<&str> = list.iter().map(|a| a.name).collect();
            names.sort_unstable();
            let n = names.len();
            names.dedup();
            assert_eq!(names.len(), n);
        }
        let traps = renderer(Transport::Pidfd)
            .iter()
            .filter(|a| matches!(a.expect, Expect::Trap(_) | Expect::Errno(libc::EPERM)))
            .count();
        assert!(traps >= 40, "{traps} attempts");
    }

    #[test]
    fn every_trap_expectation_agrees_with_the_policy() {
        let p = triptych_sandbox::renderer::policy(&triptych_sandbox::renderer::Params::example());
        for a in renderer(Transport::Pidfd) {
            if let Expect::Trap(call) = a.expect {
                if let Some(r) = p.rules.iter().find(|r| r.name == call) {
                    assert!(
                        !r.when.is_empty(),
                        "{}: {call} is allowed unconditionally",
                        a.name
                    );
                }
            }
        }
    }
}
