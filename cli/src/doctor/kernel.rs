//! `doctor`'s kernel lines: what the kernel lets the fd hand-off and the sandbox use, and what a
//! run does where something is missing.
//!
//! Each check is measured on a short-lived child (the pidfd and user-namespace checks here, the
//! sandbox layers and the transport self-test in [`triptych::machine::sandbox`], the very calls a
//! run makes) or read from `/proc`. The levels follow the engine:
//!
//! | missing | what a run does | level |
//! | --- | --- | --- |
//! | `pidfd_getfd` (or Yama forbids it) | `--transport auto` takes SCM_RIGHTS | warn |
//! | seccomp user notification | children report violations through a `SIGSYS` handler and a pipe | warn |
//! | user namespaces | the children run in the launcher's user namespace | warn |
//! | network and IPC namespaces | the children share the launcher's | warn |
//! | Landlock (or part of it) | the GPU process's seccomp policy refuses every open (or is the only limit on the rights this kernel lacks) | warn |
//! | `MFD_NOEXEC_SEAL` | buffers are memfds without `F_SEAL_EXEC` | warn |
//! | seccomp filters | the children cannot install their policies: the run fails | fail |
//!
//! The pure parts (`from_*`) take what was measured, so their levels are unit-tested without
//! the machine.

use std::process::{Command, Stdio};

use ipc_protocol::messages::{Transport, ViolationReports};
use triptych::machine::Finding;

use super::report::Check;

/// The running kernel's release: always ok, for the record.
pub fn kernel() -> Check {
    Check::ok("kernel", triptych_sys::proc::kernel_release())
}

/// Takes fd 0 of a child through `pidfd_getfd`: the path the renderer uses.
pub fn pidfd() -> Check {
    let child = Command::new("/bin/sleep")
        .arg("5")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Check::warn(
                "pidfd_getfd",
                format!(
                    "not checked (a test child could not start: {e}); the transport line \
                     says what a run takes"
                ),
            )
        }
    };
    let result = triptych_sys::pidfd::pidfd_open(child.id() as i32)
        .and_then(|pidfd| triptych_sys::pidfd::pidfd_getfd(std::os::fd::AsFd::as_fd(&pidfd), 0))
        .map(drop)
        .map_err(|e| e.to_string());
    let _ = child.kill();
    let _ = child.wait();
    from_pidfd(result)
}

fn from_pidfd(result: Result<(), String>) -> Check {
    match result {
        Ok(()) => Check::ok("pidfd_getfd", "took an fd from a child process"),
        Err(e) => Check::warn(
            "pidfd_getfd",
            format!(
                "{e}: --transport auto falls back to {} (buffer and fence fds sent over a unix \
                 socket)",
                Transport::ScmRights
            ),
        ),
    }
}

/// Whether Yama lets the renderer take the GPU process's fds.
/// How many views a run may have here: the default maximum from this machine's memory, and
/// the export windows a GPU process's fd limit leaves room for (it raises its soft limit to
/// the hard one at most).
pub fn views() -> Check {
    const NAME: &str = "views";
    let memory = triptych::config::default_max_views();
    let hard = triptych_sys::rlimit::get(triptych_sys::rlimit::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard);
    match hard {
        Ok(hard) => {
            let windows = triptych_sys::fd::ExportWindow::views_below(hard, 64);
            let most = memory.min(windows);
            let line = format!(
                "up to {most} views a run by default (--max-views): {memory} by this machine's memory at {} MiB a view, {windows} export windows below RLIMIT_NOFILE's hard limit {hard}",
                triptych::config::VIEW_MEMORY >> 20
            );
            if windows == 0 {
                Check::fail(NAME, format!("{line}: not even the first view's"))
            } else {
                Check::ok(NAME, line)
            }
        }
        Err(e) => Check::warn(
            NAME,
            format!("RLIMIT_NOFILE cannot be read ({e}); {memory} views by this machine's memory"),
        ),
    }
}

pub fn yama() -> Check {
    from_yama(triptych_sys::proc::yama_ptrace_scope())
}

fn from_yama(scope: Option<u8>) -> Check {
    const NAME: &str = "ptrace permission";
    match scope {
        None => Check::ok(NAME, "Yama not active: same-uid processes may pidfd_getfd"),
        Some(0) => Check::ok(
            NAME,
            "Yama ptrace_scope 0: same-uid processes may pidfd_getfd",
        ),
        Some(1) => Check::ok(
            NAME,
            "Yama ptrace_scope 1: the GPU process names the renderer with PR_SET_PTRACER (one at a time: a run of several views takes scm_rights)",
        ),
        Some(2) => Check::warn(
            NAME,
            format!(
                "Yama ptrace_scope 2: only CAP_SYS_PTRACE may pidfd_getfd, so --transport auto \
                 falls back to {}",
                Transport::ScmRights
            ),
        ),
        Some(s) => Check::warn(
            NAME,
            format!(
                "Yama ptrace_scope {s}: pidfd_getfd is refused to everyone, so --transport auto \
                 falls back to {}",
                Transport::ScmRights
            ),
        ),
    }
}

/// Whether the kernel runs seccomp filters with the actions the children's policies return.
pub fn seccomp() -> Check {
    from_seccomp(triptych_sys::proc::seccomp_actions().as_deref())
}

fn from_seccomp(actions: Option<&str>) -> Check {
    match actions {
        Some(a) if has_action(a, "trap") && has_action(a, "errno") => {
            Check::ok("seccomp", format!("actions: {a}"))
        }
        Some(a) => Check::fail(
            "seccomp",
            format!(
                "actions: {a}; the children's policies return trap and errno, so they cannot be \
                 confined and `triptych run` fails"
            ),
        ),
        None => Check::fail(
            "seccomp",
            "no seccomp filters (/proc/sys/kernel/seccomp/actions_avail is missing): the \
             children cannot install their policies, so `triptych run` fails; use a kernel \
             built with CONFIG_SECCOMP_FILTER",
        ),
    }
}

fn has_action(actions: &str, name: &str) -> bool {
    actions.split_whitespace().any(|a| a == name)
}

/// How the children's sandbox violations will reach the launcher.
pub fn violation_reports() -> Check {
    from_reports(triptych_sys::notify::available())
}

fn from_reports(available: Result<(), String>) -> Check {
    match available {
        Ok(()) => Check::ok("violation reports", ViolationReports::Notify.as_str()),
        Err(why) => Check::warn(
            "violation reports",
            format!(
                "no seccomp user notification ({why}): falls back to a {}, which a compromised \
                 child can forge or suppress; --sandbox learn is unavailable",
                ViolationReports::Signal.as_str()
            ),
        ),
    }
}

/// Whether a child can unshare a user namespace.
pub fn user_namespaces() -> Check {
    let mut cmd = Command::new("/bin/true");
    triptych_sys::jail::Confinement::new()
        .new_user_namespace()
        .install(&mut cmd);
    let result = match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("unshare(CLONE_NEWUSER) test exited {s}")),
        Err(e) => Err(format!("unshare(CLONE_NEWUSER) refused: {e}")),
    };
    from_user_namespaces(result, triptych_sys::proc::max_user_namespaces())
}

fn from_user_namespaces(result: Result<(), String>, max: Option<u64>) -> Check {
    match result {
        Ok(()) => Check::ok(
            "user namespaces",
            match max {
                Some(n) => {
                    format!("a child could unshare(CLONE_NEWUSER); max_user_namespaces = {n}")
                }
                None => "a child could unshare(CLONE_NEWUSER)".to_owned(),
            },
        ),
        Err(why) => Check::warn(
            "user namespaces",
            format!("{why}: falls back to running the children in the launcher's user namespace"),
        ),
    }
}

/// The Landlock confinement the GPU process will put on itself (`sandbox/src/gpu/landlock.rs`).
pub fn landlock() -> Check {
    from_landlock(triptych_sys::landlock::abi())
}

fn from_landlock(abi: Result<u32, String>) -> Check {
    let abi = match abi {
        Ok(abi) => abi,
        Err(why) => {
            return Check::warn(
                "landlock",
                format!(
                    "{why}: falls back to the GPU process's seccomp policy refusing every open"
                ),
            )
        }
    };
    let missing: Vec<&str> = [
        (3, "truncation (ABI 3, Linux 6.2)"),
        (4, "TCP bind and connect (ABI 4, Linux 6.7)"),
        (5, "ioctls on device files (ABI 5, Linux 6.10)"),
        (
            6,
            "signal and abstract unix socket scoping (ABI 6, Linux 6.12)",
        ),
    ]
    .into_iter()
    .filter(|(since, _)| abi < *since)
    .map(|(_, what)| what)
    .collect();
    let base = format!(
        "ABI {abi}: the GPU process's files are its driver's libraries and data (read-only) and \
         its device nodes, on every thread"
    );
    if missing.is_empty() {
        Check::ok("landlock", format!("{base}; fully enforced"))
    } else {
        Check::warn(
            "landlock",
            format!(
                "{base}; partly: this kernel lacks {}, where the GPU process falls back to its \
                 seccomp policy alone",
                missing.join(", ")
            ),
        )
    }
}

/// Whether buffers can be sealed non-executable.
pub fn memfd_noexec() -> Check {
    from_memfd_noexec(triptych_sys::memfd::noexec_seal())
}

fn from_memfd_noexec(offered: bool) -> Check {
    const NAME: &str = "memfd MFD_NOEXEC_SEAL";
    if offered {
        Check::ok(
            NAME,
            "buffers are memfds sealed non-executable (F_SEAL_EXEC, Linux 6.3)",
        )
    } else {
        Check::warn(
            NAME,
            "not offered (Linux 6.3 or later): buffers fall back to memfds without F_SEAL_EXEC",
        )
    }
}

/// Whether the launcher's loop can sleep on the GPU process's ring and a bell of its own at
/// once (`futex_waitv`), as a paced run's does ([`ipc_protocol::channel::sleep_supported`]).
pub fn ring_sleep() -> Check {
    from_ring_sleep(ipc_protocol::channel::sleep_supported())
}

fn from_ring_sleep(supported: bool) -> Check {
    const NAME: &str = "futex_waitv";
    if supported {
        Check::ok(
            NAME,
            "in a paced run, the launcher's loop reads the GPU process's mailbox itself and sleeps on it (paths.gpu_intake: polled)",
        )
    } else {
        Check::warn(
            NAME,
            "not offered (Linux 5.16 or later): a thread reads the GPU process's mailbox and wakes the loop for each burst (paths.gpu_intake: thread)",
        )
    }
}

/// Whether the children's mailboxes can be had: one is made as a run makes it (a sealed memfd,
/// [`ipc_protocol::mailbox`]), a record is posted through it and read back.
pub fn mailbox() -> Check {
    from_mailbox(mailbox_round_trip())
}

fn mailbox_round_trip() -> Result<(), String> {
    use ipc_protocol::mailbox::{create, MailboxWriter, Record};
    let (mut reader, memfd) = create(c"triptych-doctor-mailbox").map_err(|e| e.to_string())?;
    let mut writer = MailboxWriter::adopt(memfd).map_err(|e| e.to_string())?;
    writer.post(b"doctor").map_err(|e| e.to_string())?;
    match reader.take() {
        Ok(Some(Record::Message(m))) if m == b"doctor" => Ok(()),
        Ok(other) => Err(format!("a record posted came back as {other:?}")),
        Err(v) => Err(v.to_string()),
    }
}

fn from_mailbox(r: Result<(), String>) -> Check {
    const NAME: &str = "children's mailbox";
    match r {
        Ok(()) => Check::ok(
            NAME,
            format!(
                "the steady messages between the launcher and each child go through shared-memory rings ({} records of {} bytes each way, a futex wake-up only for a sleeping reader); --mailbox off sends each on the socket",
                ipc_protocol::mailbox::RECORDS,
                ipc_protocol::mailbox::RECORD_BYTES
            ),
        ),
        Err(e) => Check::warn(
            NAME,
            format!("no mailbox can be made ({e}): the children's messages fall back to one socket message each"),
        ),
    }
}

/// The sandbox layers a run would get and the transport `--transport auto` would take: the same
/// checks and self-test a run makes ([`triptych::machine::sandbox`]).
pub fn sandbox() -> Vec<Check> {
    triptych::machine::sandbox()
        .into_iter()
        .map(from_finding)
        .collect()
}

/// The level of one of the engine's sandbox findings. A finding that is not as a run wants it
/// is a warning where the launcher carries on without it (it logs the same fallback), and a
/// failure otherwise: the seccomp policies, and any finding this report does not know a
/// fallback for.
fn from_finding(f: Finding) -> Check {
    let Finding { name, ok, detail } = f;
    match (name, ok) {
        // `auto` chose the fallback transport; the detail says why.
        ("transport", true) if detail.contains(Transport::ScmRights.as_str()) => {
            Check::warn(name, detail)
        }
        (_, true) => Check::ok(name, detail),
        ("sandbox: user namespace", false) => Check::warn(
            name,
            format!(
                "{detail}: falls back to running the children in the launcher's user namespace"
            ),
        ),
        ("sandbox: network and IPC namespaces", false) => Check::warn(
            name,
            format!(
                "{detail}: falls back to the children sharing the launcher's network and IPC \
                 namespaces"
            ),
        ),
        ("sandbox: seccomp policies", false) => Check::fail(
            name,
            format!("{detail}: the children cannot be confined, so `triptych run` fails"),
        ),
        (_, false) => Check::fail(name, detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::report::Level;

    #[test]
    fn the_fd_transport_falls_back_to_scm_rights() {
        let c = from_pidfd(Err("EPERM".into()));
        assert_eq!(c.level, Level::Warn);
        assert!(
            c.detail.contains("falls back to scm_rights"),
            "{}",
            c.detail
        );
        assert_eq!(from_pidfd(Ok(())).level, Level::Ok);
        for scope in [None, Some(0), Some(1)] {
            assert_eq!(from_yama(scope).level, Level::Ok, "{scope:?}");
        }
        for scope in [2, 3] {
            let c = from_yama(Some(scope));
            assert_eq!(c.level, Level::Warn);
            assert!(c.detail.contains("scm_rights"), "{}", c.detail);
        }
    }

    #[test]
    fn seccomp_without_filters_stops_a_run() {
        assert_eq!(
            from_seccomp(Some("kill_process trap errno user_notif allow")).level,
            Level::Ok
        );
        // "errno" must be an action of its own, not part of another name.
        assert_eq!(from_seccomp(Some("kill trap xerrno")).level, Level::Fail);
        let c = from_seccomp(None);
        assert_eq!(c.level, Level::Fail);
        assert!(c.detail.contains("`triptych run` fails"), "{}", c.detail);
    }

    #[test]
    fn missing_layers_name_their_fallbacks() {
        let c = from_reports(Err("ENOSYS".into()));
        assert_eq!(c.level, Level::Warn);
        assert!(c.detail.contains("SIGSYS handler"), "{}", c.detail);
        let c = from_user_namespaces(Err("EPERM".into()), Some(0));
        assert_eq!(c.level, Level::Warn);
        assert!(
            c.detail.contains("launcher's user namespace"),
            "{}",
            c.detail
        );
        let c = from_user_namespaces(Ok(()), Some(42));
        assert_eq!(c.level, Level::Ok);
        assert!(
            c.detail.ends_with("max_user_namespaces = 42"),
            "{}",
            c.detail
        );
        let c = from_landlock(Err("Landlock is not enabled".into()));
        assert_eq!(c.level, Level::Warn);
        assert!(c.detail.contains("refusing every open"), "{}", c.detail);
        assert_eq!(from_landlock(Ok(6)).level, Level::Ok);
        let c = from_landlock(Ok(4));
        assert_eq!(c.level, Level::Warn);
        assert!(
            c.detail.contains("ABI 5") && c.detail.contains("ABI 6"),
            "{}",
            c.detail
        );
        let c = from_mailbox(Err("memfd_create: EMFILE".into()));
        assert_eq!(c.level, Level::Warn);
        assert!(
            c.detail.contains("fall back") && c.detail.contains("EMFILE"),
            "{}",
            c.detail
        );
        let c = mailbox();
        assert_eq!(c.level, Level::Ok, "{}", c.detail);
        let c = from_ring_sleep(false);
        assert!(c.detail.contains("a thread reads"), "{}", c.detail);
        assert!(from_ring_sleep(true).detail.contains("polled"));
        let c = from_memfd_noexec(false);
        assert_eq!(c.level, Level::Warn);
        assert!(c.detail.contains("without F_SEAL_EXEC"), "{}", c.detail);
    }

    fn finding(name: &'static str, ok: bool, detail: &str) -> Finding {
        Finding {
            name,
            ok,
            detail: detail.to_owned(),
        }
    }

    #[test]
    fn sandbox_findings_warn_where_the_launcher_carries_on() {
        let c = from_finding(finding("sandbox: user namespace", false, "EPERM"));
        assert_eq!(c.level, Level::Warn);
        let c = from_finding(finding(
            "sandbox: network and IPC namespaces",
            false,
            "EPERM",
        ));
        assert_eq!(c.level, Level::Warn);
        assert!(c.detail.contains("sharing the launcher's"), "{}", c.detail);
        let c = from_finding(finding("sandbox: seccomp policies", false, "bad rule"));
        assert_eq!(c.level, Level::Fail);
        let c = from_finding(finding("something new", false, "?"));
        assert_eq!(c.level, Level::Fail);
        let c = from_finding(finding(
            "transport",
            true,
            "--transport auto will use scm_rights: auto: pidfd_getfd does not work here (EPERM)",
        ));
        assert_eq!(c.level, Level::Warn);
        let c = from_finding(finding(
            "transport",
            true,
            "--transport auto will use pidfd_getfd: auto: a confined child took an fd",
        ));
        assert_eq!(c.level, Level::Ok);
    }
}
