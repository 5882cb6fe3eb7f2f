//! The sandbox's learning mode (`triptych run --sandbox learn`): every call a child makes that
//! its policy does not name is recorded, then let run.
//!
//! The children install the same policies as in an enforcing run, with a user-notification
//! listener ([`triptych_sys::notify`]); only the launcher's answer differs. Instead of killing
//! the child, the listener thread records the call and answers
//! `SECCOMP_USER_NOTIF_FLAG_CONTINUE`, so the run goes on as if the policy allowed it. The
//! calls the policy refuses with an errno are not reported: the errno filters answer them
//! before the allowlist is consulted, and they are named by the policy.
//!
//! What this is for: a C library, driver or kernel that starts making a new system call (glibc's
//! `clone3`, `rseq`, vDSO `getrandom`) breaks an allowlist. A run in this mode lists such calls
//! (role, call, arguments) in the summary, and the drift test fails on any.
//!
//! The record is bounded whatever a child does: one entry per (role, call number), at most
//! [`MAX_DISTINCT`] of them, each keeping a count and at most [`MAX_EXAMPLES`] argument sets.
//!
//! Some calls are never let run, even here: what would create a process or reach another one
//! ([`never_let_run`]: `clone` without `CLONE_THREAD`, `fork`, `vfork`, `execve`, `ptrace`,
//! `process_vm_*`, signals and pidfds of other processes). They are recorded like the others and
//! fail with `EPERM`, so a child in this mode still cannot start a process outside the
//! launcher's supervision or signal the launcher. As the kernel's documentation warns,
//! `SECCOMP_USER_NOTIF_FLAG_CONTINUE` is no security decision: this mode is for finding what a
//! policy lacks, never for running untrusted content. See
//! `Documentation/userspace-api/seccomp_filter.rst`, "Userspace Notification".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use triptych_sandbox::report::Violation;
use triptych_sys::abi;

use crate::summary::LearnedCall;

/// Distinct (role, call) entries kept; beyond that, calls are only counted.
pub const MAX_DISTINCT: usize = 1024;
/// Argument sets kept per entry.
pub const MAX_EXAMPLES: usize = 4;

/// Every call outside the policies, shared by the listener threads of one run.
#[derive(Debug, Default)]
pub struct Learned {
    calls: BTreeMap<(String, i32), LearnedCall>,
    /// Calls not kept because [`MAX_DISTINCT`] entries exist already.
    pub overflow: u64,
}

/// The shared handle.
pub type SharedLearned = Arc<Mutex<Learned>>;

impl Learned {
    /// Records one call. Returns whether it is the first of its (role, call).
    pub fn record(&mut self, v: &Violation) -> bool {
        let key = (v.role.clone(), v.record.nr);
        if !self.calls.contains_key(&key) && self.calls.len() >= MAX_DISTINCT {
            self.overflow += 1;
            return false;
        }
        let e = self.calls.entry(key).or_insert_with(|| LearnedCall {
            role: v.role.clone(),
            call: v.name.clone(),
            nr: v.record.nr,
            ..LearnedCall::default()
        });
        e.count += 1;
        let example = v.call();
        if e.examples.len() < MAX_EXAMPLES && !e.examples.contains(&example) {
            e.examples.push(example);
        }
        e.count == 1
    }

    /// The entries, by role and call number.
    pub fn calls(&self) -> Vec<LearnedCall> {
        self.calls.values().cloned().collect()
    }
}

/// Whether call `nr` with `args` is refused even in learning mode (see the module docs).
pub fn never_let_run(nr: i64, args: &[u64; 6]) -> bool {
    match nr {
        abi::SYS_clone => args[0] & abi::CLONE_THREAD as u64 == 0,
        abi::SYS_execve
        | abi::SYS_execveat
        | abi::SYS_ptrace
        | abi::SYS_process_vm_readv
        | abi::SYS_process_vm_writev
        | abi::SYS_kill
        | abi::SYS_tkill
        | abi::SYS_tgkill
        | abi::SYS_pidfd_open
        | abi::SYS_pidfd_getfd
        | abi::SYS_pidfd_send_signal => true,
        #[cfg(target_arch = "x86_64")]
        abi::SYS_fork | abi::SYS_vfork => true,
        _ => false,
    }
}

/// Reads notifications from a child's listener until the child is gone: each is recorded in
/// `learned` (the first of its kind logged) and let run, or refused where
/// [`never_let_run`] says so.
pub(super) fn listen(
    role: ipc_protocol::Role,
    pid: u32,
    listener: std::os::fd::OwnedFd,
    learned: SharedLearned,
) {
    use std::os::fd::AsFd;
    use triptych_sys::notify::{self, NotifyError};
    loop {
        let n = match notify::recv_notification(listener.as_fd()) {
            Ok(n) => n,
            Err(NotifyError::Gone) => return,
            Err(e) => {
                tracing::error!(role = %role, pid, error = %e, "learning mode: reading the listener failed");
                return;
            }
        };
        let mut record = n.record;
        record.pid = pid;
        let v = Violation::new(role.as_str(), record);
        let first = match learned.lock() {
            Ok(mut l) => l.record(&v),
            Err(poisoned) => poisoned.into_inner().record(&v),
        };
        if first {
            tracing::warn!(
                pid,
                tid = record.tid,
                "learning mode: {} calls {} outside its policy",
                v.role,
                v.call()
            );
        }
        let answered = if never_let_run(i64::from(record.nr), &record.args) {
            notify::refuse(listener.as_fd(), n.id, abi::EPERM)
        } else {
            notify::let_run(listener.as_fd(), n.id)
        };
        match answered {
            Ok(()) | Err(NotifyError::Gone) => {}
            Err(e) => {
                tracing::error!(role = %role, pid, error = %e, "learning mode: answering the listener failed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use triptych_sys::seccomp::TrapRecord;

    fn call(role: &str, nr: i64, a0: u64) -> Violation {
        Violation::new(
            role,
            TrapRecord {
                arch: 0,
                nr: nr as i32,
                pid: 1,
                tid: 1,
                args: [a0, 0, 0, 0, 0, 0],
            },
        )
    }

    #[test]
    fn one_entry_per_role_and_call_with_counts_and_bounded_examples() {
        let mut l = Learned::default();
        assert!(l.record(&call("gpu", abi::SYS_uname, 1)));
        for a in 0..10 {
            assert!(!l.record(&call("gpu", abi::SYS_uname, a)));
        }
        assert!(l.record(&call("renderer", abi::SYS_uname, 1)));
        let calls = l.calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].role, "gpu");
        assert_eq!(calls[0].call, "uname");
        assert_eq!(calls[0].count, 11);
        assert_eq!(calls[0].examples.len(), MAX_EXAMPLES);
        assert_eq!(calls[1].count, 1);
    }

    #[test]
    fn process_creation_and_other_processes_are_never_let_run() {
        let z = [0u64; 6];
        assert!(never_let_run(abi::SYS_execve, &z));
        assert!(never_let_run(
            abi::SYS_clone,
            &[abi::SIGCHLD as u64, 0, 0, 0, 0, 0]
        ));
        assert!(!never_let_run(
            abi::SYS_clone,
            &[(abi::CLONE_THREAD | abi::CLONE_VM) as u64, 0, 0, 0, 0, 0]
        ));
        assert!(never_let_run(abi::SYS_kill, &z));
        assert!(!never_let_run(abi::SYS_uname, &z));
        assert!(!never_let_run(abi::SYS_socket, &z));
    }

    #[test]
    fn a_flood_of_distinct_numbers_is_counted_not_kept() {
        let mut l = Learned::default();
        for nr in 0..(MAX_DISTINCT as i64 + 500) {
            l.record(&call("renderer", 100_000 + nr, 0));
        }
        assert_eq!(l.calls().len(), MAX_DISTINCT);
        assert_eq!(l.overflow, 500);
    }
}
