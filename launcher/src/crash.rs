//! Crash records and the restart policy.
//!
//! Every death or hang of a child becomes a [`CrashRecord`]: role, pid, how it ended (exit code,
//! signal, hang, fence timeout, sandbox violation), when, the last frame on screen, and how long
//! detection and recovery took. Records go to the log, the trace and the run summary.
//!
//! The policy follows Chromium's GPU process handling: a role may crash at most `max` times
//! within a sliding window; older crashes are forgiven. Past that, the GPU process steps down a
//! fallback ladder (`dmabuf` -> `shm`) and starts counting again; when the ladder is exhausted,
//! or the renderer keeps crashing, the run stops with the whole crash history in the error.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Why a child was taken down. More causes may come in later versions.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// It exited on its own.
    Exited {
        /// Exit code, if it exited normally.
        code: Option<i32>,
        /// Signal that killed it, if any.
        signal: Option<String>,
    },
    /// It stopped answering pings.
    Hang {
        /// Milliseconds since its last answer.
        silent_ms: u64,
    },
    /// It answered pings but no frame reached the screen for this long (a GPU process that
    /// stopped producing).
    Stalled {
        /// Milliseconds without a frame.
        ms: u64,
    },
    /// A fence it exported did not signal within the renderer's deadline.
    FenceTimeout {
        /// Frame.
        frame: u64,
        /// Layer.
        layer: u32,
    },
    /// Its sandbox killed it.
    SandboxViolation {
        /// The syscall, as `name(args)`.
        syscall: String,
    },
    /// It sent or did something the protocol does not allow, and was killed for it: the child
    /// is taken to be compromised.
    ProtocolViolation {
        /// The message kind (or channel) involved.
        kind: String,
        /// What was wrong, with the value.
        what: String,
    },
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Exited { code: Some(c), .. } => write!(f, "exited with code {c}"),
            Cause::Exited {
                signal: Some(s), ..
            } => write!(f, "killed by {s}"),
            Cause::Exited { .. } => write!(f, "exited"),
            Cause::Hang { silent_ms } => write!(f, "hung (no answer for {silent_ms} ms)"),
            Cause::Stalled { ms } => write!(f, "stalled (no frame for {ms} ms)"),
            Cause::FenceTimeout { frame, layer } => {
                write!(
                    f,
                    "hung (fence of frame {frame} layer {layer} never signalled)"
                )
            }
            Cause::SandboxViolation { syscall } => write!(f, "sandbox violation: {syscall}"),
            Cause::ProtocolViolation { kind, what } => {
                write!(f, "protocol violation: {kind}: {what}")
            }
        }
    }
}

/// One crash.
#[derive(Clone, Debug, Serialize)]
pub struct CrashRecord {
    /// `"gpu"` or `"renderer"`.
    pub role: ipc_protocol::Role,
    /// Its pid.
    pub pid: u32,
    /// What happened.
    pub cause: Cause,
    /// Seconds since the run started.
    pub at_s: f64,
    /// The frame on screen when it happened.
    pub last_frame: Option<u64>,
    /// From the fault (when known) to the launcher noticing, in microseconds.
    pub detection_us: Option<f64>,
    /// From noticing to the first frame presented by the replacement, in microseconds.
    pub recovery_us: Option<f64>,
    /// The injected fault that caused it, when chaos mode injected one.
    pub injected: Option<String>,
    /// It was the standby GPU process, dead or failed before its promotion or in the start that
    /// promoted it (it counts on the GPU process's ladder all the same).
    pub standby: bool,
    /// How a GPU process's replacement started: `standby promoted` or `cold`.
    pub replacement: Option<String>,
    /// For a renderer: the view it rendered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<u32>,
}

/// Crashes per role within a window, with forgiveness.
#[derive(Debug)]
pub struct RestartPolicy {
    max: u32,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl RestartPolicy {
    /// At most `max` crashes within `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            recent: VecDeque::new(),
        }
    }

    /// Counts a crash at `now`; true if the limit is now exceeded.
    pub fn crashed(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        self.recent.len() as u32 > self.max
    }

    /// Starts counting afresh (after stepping down the ladder).
    pub fn reset(&mut self) {
        self.recent.clear();
    }
}

/// What to do after a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision<R> {
    /// Start a replacement on the same rung.
    Restart,
    /// Too many crashes on this rung: start the replacement on the next one.
    StepDown {
        /// The rung given up.
        from: R,
        /// The rung now in force.
        to: R,
    },
    /// Too many crashes on the last rung (or, without a ladder, at all): stop the run.
    GiveUp,
}

/// The restart policy of one role as a pure state machine: crashes (and their times) in,
/// decisions out. A role with one rung (the renderer) restarts or gives up; the GPU process
/// steps down its fallback ladder (`dmabuf -> shm`), counting afresh on each rung.
#[derive(Debug)]
pub struct Ladder<R> {
    rungs: Vec<R>,
    rung: usize,
    policy: RestartPolicy,
}

impl<R: Copy> Ladder<R> {
    /// A ladder over `rungs` (at least one), each allowing `max` crashes within `window`.
    pub fn new(rungs: Vec<R>, max: u32, window: Duration) -> Self {
        assert!(!rungs.is_empty(), "a ladder needs a rung");
        Self {
            rungs,
            rung: 0,
            policy: RestartPolicy::new(max, window),
        }
    }

    /// The rung in force.
    pub fn current(&self) -> R {
        self.rungs[self.rung]
    }

    /// Whether the first rung is still in force.
    pub fn on_first_rung(&self) -> bool {
        self.rung == 0
    }

    /// Every rung, in order.
    pub fn rungs(&self) -> &[R] {
        &self.rungs
    }

    /// A crash at `now`: what to do next.
    pub fn crashed(&mut self, now: Instant) -> Decision<R> {
        if !self.policy.crashed(now) {
            return Decision::Restart;
        }
        if self.rung + 1 >= self.rungs.len() {
            return Decision::GiveUp;
        }
        let from = self.rungs[self.rung];
        self.rung += 1;
        self.policy.reset();
        Decision::StepDown {
            from,
            to: self.rungs[self.rung],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ladder_steps_down_then_gives_up() {
        let t = Instant::now();
        let s = Duration::from_secs(1);
        let mut l = Ladder::new(vec!["dmabuf", "shm"], 2, Duration::from_secs(10));
        assert_eq!(l.crashed(t), Decision::Restart);
        assert_eq!(l.crashed(t + s), Decision::Restart);
        assert_eq!(
            l.crashed(t + 2 * s),
            Decision::StepDown {
                from: "dmabuf",
                to: "shm"
            }
        );
        assert_eq!(l.current(), "shm");
        assert!(!l.on_first_rung());
        // Counting starts afresh on the new rung.
        assert_eq!(l.crashed(t + 3 * s), Decision::Restart);
        assert_eq!(l.crashed(t + 4 * s), Decision::Restart);
        assert_eq!(l.crashed(t + 5 * s), Decision::GiveUp);
    }

    #[test]
    fn crashes_outside_the_window_are_forgiven_on_every_rung() {
        let t = Instant::now();
        let mut l = Ladder::new(vec!["renderer"], 1, Duration::from_secs(5));
        assert_eq!(l.crashed(t), Decision::Restart);
        assert_eq!(l.crashed(t + Duration::from_secs(6)), Decision::Restart);
        assert_eq!(l.crashed(t + Duration::from_secs(7)), Decision::GiveUp);
    }

    #[test]
    fn forgives_old_crashes() {
        let mut p = RestartPolicy::new(2, Duration::from_secs(10));
        let t = Instant::now();
        assert!(!p.crashed(t));
        assert!(!p.crashed(t + Duration::from_secs(1)));
        assert!(p.crashed(t + Duration::from_secs(2)));
        let mut p = RestartPolicy::new(2, Duration::from_secs(10));
        assert!(!p.crashed(t));
        assert!(!p.crashed(t + Duration::from_secs(1)));
        // The first is forgiven by now.
        assert!(!p.crashed(t + Duration::from_secs(11)));
    }
}
