//! Scheduling policies (`sched_setscheduler(2)`, `sched_getscheduler(2)`).
//!
//! In a run it paces, the launcher starts every renderer under `SCHED_BATCH`. A renderer is woken by the launcher
//! once per frame handed on to it, and under the default policy a woken task may preempt the
//! task running on the CPU it is woken on: where that is the launcher, which hands on a burst of
//! views' frames and then sleeps, it is switched out after a wake-up and back in to finish its
//! turn. A batch task never preempts on waking: it waits for the running task to sleep or for
//! the scheduler's tick, or runs at once on an idle CPU. The policy takes nothing else from the
//! renderer: it keeps its nice value and its share of the CPU (`sched(7)`: "the scheduler will
//! apply a small scheduling penalty with respect to wakeup behavior").
//!
//! Neither call has a wrapper in rustix; both take integers only.

use std::io;

/// A thread's scheduling policy, as `sched_getscheduler(2)` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// `SCHED_OTHER`, the default.
    Other,
    /// `SCHED_BATCH`.
    Batch,
    /// `SCHED_IDLE`.
    Idle,
    /// Anything else (a real-time or deadline policy), by number.
    Numbered(i32),
}

impl Policy {
    fn from_raw(p: i32) -> Policy {
        match p {
            libc::SCHED_OTHER => Policy::Other,
            libc::SCHED_BATCH => Policy::Batch,
            libc::SCHED_IDLE => Policy::Idle,
            n => Policy::Numbered(n),
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Policy::Other => f.write_str("SCHED_OTHER"),
            Policy::Batch => f.write_str("SCHED_BATCH"),
            Policy::Idle => f.write_str("SCHED_IDLE"),
            Policy::Numbered(n) => write!(f, "policy {n}"),
        }
    }
}

/// The policy of the thread `tid` (a process's id names its main thread).
pub fn policy_of(tid: u32) -> io::Result<Policy> {
    let tid = i32::try_from(tid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: sched_getscheduler takes a thread id and returns a number or -1.
    let p = unsafe { libc::sched_getscheduler(tid) };
    if p < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Policy::from_raw(p))
}

/// Puts the calling thread under `SCHED_BATCH`; threads it starts later inherit it, and so does
/// a program it executes. One system call on integers: usable between `fork` and `exec`.
pub fn set_batch() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads the parameter block, which lives across the call.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_set_to_batch_reports_it_and_its_children_inherit_it() {
        let (mine, child) = std::thread::spawn(|| {
            set_batch().expect("SCHED_BATCH needs no privilege");
            let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
            let child = std::thread::spawn(|| {
                let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
                policy_of(tid).expect("policy")
            })
            .join()
            .expect("join");
            (policy_of(tid).expect("policy"), child)
        })
        .join()
        .expect("join");
        assert_eq!((mine, child), (Policy::Batch, Policy::Batch));
        assert_eq!(Policy::Batch.to_string(), "SCHED_BATCH");
        assert!(policy_of(u32::MAX).is_err(), "no such thread");
    }
}
