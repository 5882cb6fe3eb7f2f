//! Resource limits of each role, set (soft and hard, so they cannot be raised again) right
//! before the seccomp filter goes on.
//!
//! Limits are a coarse layer under the filter: they bound what a compromised process can consume
//! with the calls it is allowed. See `setrlimit(2)`.
//!
//! `RLIMIT_FSIZE` is deliberately left alone: stderr, which every process logs to, may be a
//! regular file (a redirected log), and a file-size limit would kill the process with `SIGXFSZ`
//! at its first log line. The filter already keeps the process from opening any file.

use triptych_sys::rlimit::{self, Resource};

/// The renderer's `RLIMIT_NOFILE`: above every fixed number ([`crate::fds`]) and far above what
/// it holds at most (its channels, the output, and per layer a pool of buffers plus a fence:
/// 16 layers x 16 buffers at the outside).
pub const RENDERER_NOFILE: u64 = 512;

/// The renderer's `RLIMIT_AS`: 16 GiB of address space, far above a full-size run (three
/// 8192x8192 output slots are 768 MiB, imports as much again, each thread's reserved malloc
/// arena 128 MiB), far below what a runaway allocation would reach.
pub const RENDERER_ADDRESS_SPACE: u64 = 16 << 30;

/// One limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Which.
    pub resource: Resource,
    /// The value, soft and hard.
    pub value: u64,
    /// Why.
    pub why: &'static str,
}

/// The renderer's limits.
pub fn renderer() -> Vec<Limit> {
    vec![
        Limit {
            resource: Resource::RLIMIT_NOFILE,
            value: RENDERER_NOFILE,
            why: "bounded fd table; every fixed fd number lies below it",
        },
        Limit {
            resource: Resource::RLIMIT_CORE,
            value: 0,
            why: "no core dump of composited content",
        },
        Limit {
            resource: Resource::RLIMIT_MEMLOCK,
            value: 0,
            why: "no locked memory",
        },
        Limit {
            resource: Resource::RLIMIT_MSGQUEUE,
            value: 0,
            why: "no POSIX message queues",
        },
        Limit {
            resource: Resource::RLIMIT_AS,
            value: RENDERER_ADDRESS_SPACE,
            why: "bounded address space",
        },
    ]
}

/// The GPU process's limits: looser, since it creates and sizes buffers (memfds) while it runs,
/// and its fd limit was raised for the export window.
pub fn gpu() -> Vec<Limit> {
    vec![
        Limit {
            resource: Resource::RLIMIT_CORE,
            value: 0,
            why: "no core dump of rendered content",
        },
        Limit {
            resource: Resource::RLIMIT_MEMLOCK,
            value: 0,
            why: "no locked memory",
        },
        Limit {
            resource: Resource::RLIMIT_MSGQUEUE,
            value: 0,
            why: "no POSIX message queues",
        },
    ]
}

/// Errors setting a limit.
#[derive(Debug, thiserror::Error)]
#[error("setrlimit({resource:?}, {value}) failed: {errno}")]
pub struct LimitError {
    /// Which.
    pub resource: Resource,
    /// The value.
    pub value: u64,
    /// The error.
    pub errno: triptych_sys::Errno,
}

/// Applies `limits` (soft = hard = the value, or the current hard limit where that is lower:
/// lowering needs no privilege, raising would).
pub fn apply(limits: &[Limit]) -> Result<(), LimitError> {
    for l in limits {
        let err = |errno| LimitError {
            resource: l.resource,
            value: l.value,
            errno,
        };
        let (_, hard) = rlimit::get(l.resource).map_err(err)?;
        let v = l.value.min(hard);
        rlimit::set(l.resource, v, v).map_err(err)?;
    }
    Ok(())
}
