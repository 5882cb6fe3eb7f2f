//! Whether the children answer, and when the run last got anywhere.
//!
//! The supervisor pings both children every heartbeat with one sequence number; each answers
//! with a `Pong` of the number it read. A child that has not answered for the hang timeout is
//! hung ([`crate::crash::Cause::Hang`]); a child (re)started counts as having answered when it
//! started. A pong of a number never sent is a protocol violation
//! ([`ipc_protocol::rules::pong`]) and refreshes nothing. Progress is a frame reaching the
//! screen, a child (re)started, or, in a window, nothing asked for: a run without progress for
//! the hang timeout, with both children answering, is a stall, whose blame the supervisor works
//! out (`super::super::drive`).
//!
//! Every time comes from the caller, so each rule is tested with instants of its choosing.

use std::time::{Duration, Instant};

use ipc_protocol::rules::{self, Breach};
use ipc_protocol::Role;

/// Pings, answers and progress.
#[derive(Debug)]
pub struct Liveness {
    /// The last ping's number (0: none sent yet).
    ping_seq: u64,
    /// When the last ping was sent (or the run started).
    last_ping: Instant,
    /// When the GPU process last answered a ping, or started.
    gpu_answered: Instant,
    /// When the renderer last answered a ping, or started.
    renderer_answered: Instant,
    /// The last time a frame reached the screen or a child was (re)started.
    last_progress: Instant,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness::new(Instant::now())
    }
}

impl Liveness {
    /// Nothing sent, nothing late, as of `now`.
    pub fn new(now: Instant) -> Liveness {
        Liveness {
            ping_seq: 0,
            last_ping: now,
            gpu_answered: now,
            renderer_answered: now,
            last_progress: now,
        }
    }

    /// The number of the ping to send now, if `every` has passed since the last one.
    pub fn ping_due(&mut self, now: Instant, every: Duration) -> Option<u64> {
        if now.saturating_duration_since(self.last_ping) < every {
            return None;
        }
        self.ping_seq += 1;
        self.last_ping = now;
        Some(self.ping_seq)
    }

    /// The last ping sent: those sent after a command have higher numbers.
    pub fn last_sent(&self) -> u64 {
        self.ping_seq
    }

    /// `role` answered ping `n` at `now`. Returns the round trip, in microseconds, when it
    /// answered the last ping sent; a pong of a ping never sent is a breach.
    pub fn pong(&mut self, role: Role, n: u64, now: Instant) -> Result<Option<f64>, Breach> {
        rules::pong(n, self.ping_seq)?;
        *self.answered(role) = now;
        Ok((n == self.ping_seq)
            .then(|| now.saturating_duration_since(self.last_ping).as_secs_f64() * 1e6))
    }

    /// A `role` process started at `now`: it has answered as of then.
    pub fn started(&mut self, role: Role, now: Instant) {
        *self.answered(role) = now;
    }

    /// How long `role` has not answered, if longer than `hang`.
    pub fn silent(&self, role: Role, now: Instant, hang: Duration) -> Option<Duration> {
        let at = match role {
            Role::Gpu => self.gpu_answered,
            Role::Renderer => self.renderer_answered,
        };
        Some(now.saturating_duration_since(at)).filter(|s| *s > hang)
    }

    /// The run got somewhere at `now`: a frame on screen, a child (re)started.
    pub fn progress(&mut self, now: Instant) {
        self.last_progress = now;
    }

    /// How long the run has not got anywhere, as of `now`.
    pub fn stalled(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_progress)
    }

    fn answered(&mut self, role: Role) -> &mut Instant {
        match role {
            Role::Gpu => &mut self.gpu_answered,
            Role::Renderer => &mut self.renderer_answered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn pings_go_out_once_per_heartbeat_numbered_one_up() {
        let t = Instant::now();
        let mut l = Liveness::new(t);
        let every = 100 * MS;
        assert_eq!(l.ping_due(t + 99 * MS, every), None, "not yet");
        assert_eq!(l.ping_due(t + 100 * MS, every), Some(1));
        assert_eq!(
            l.ping_due(t + 150 * MS, every),
            None,
            "counted from the last ping"
        );
        assert_eq!(l.ping_due(t + 200 * MS, every), Some(2));
        // A late loop sends one ping, not the ones it missed.
        assert_eq!(l.ping_due(t + 900 * MS, every), Some(3));
        assert_eq!(l.ping_due(t + 950 * MS, every), None);
    }

    #[test]
    fn a_pong_of_a_ping_never_sent_is_a_breach_and_refreshes_nothing() {
        let t = Instant::now();
        let mut l = Liveness::new(t);
        let hang = 500 * MS;
        let e = l
            .pong(Role::Gpu, 1, t + 400 * MS)
            .expect_err("no ping was sent");
        assert_eq!(e.kind, "Pong");
        assert!(
            l.silent(Role::Gpu, t + 600 * MS, hang).is_some(),
            "still hung"
        );
        l.ping_due(t + 100 * MS, 100 * MS);
        assert!(
            l.pong(Role::Gpu, 2, t + 150 * MS).is_err(),
            "ahead of the last"
        );
    }

    #[test]
    fn only_the_answer_to_the_last_ping_gives_a_round_trip() {
        let t = Instant::now();
        let mut l = Liveness::new(t);
        l.ping_due(t + 100 * MS, 100 * MS);
        l.ping_due(t + 200 * MS, 100 * MS);
        // A late answer to ping 1 shows the child alive, but times nothing.
        assert_eq!(l.pong(Role::Renderer, 1, t + 210 * MS), Ok(None));
        let rtt = l
            .pong(Role::Renderer, 2, t + 203 * MS)
            .expect("the last ping")
            .expect("a round trip");
        assert!((rtt - 3000.0).abs() < 1e-6, "{rtt}");
    }

    #[test]
    fn each_child_is_hung_on_its_own_silence() {
        let t = Instant::now();
        let mut l = Liveness::new(t);
        let hang = 500 * MS;
        l.ping_due(t + 100 * MS, 100 * MS);
        l.pong(Role::Gpu, 1, t + 300 * MS).expect("answers");
        // At 600 ms the renderer has been silent since the start; the GPU process for 300 ms.
        assert_eq!(l.silent(Role::Gpu, t + 600 * MS, hang), None);
        assert_eq!(l.silent(Role::Renderer, t + 600 * MS, hang), Some(600 * MS));
        // Exactly the timeout is not over it.
        assert_eq!(l.silent(Role::Gpu, t + 800 * MS, hang), None);
        assert_eq!(l.silent(Role::Gpu, t + 801 * MS, hang), Some(501 * MS));
        // A replacement starts with a clean slate.
        l.started(Role::Renderer, t + 700 * MS);
        assert_eq!(l.silent(Role::Renderer, t + 1000 * MS, hang), None);
    }

    #[test]
    fn a_stall_is_counted_from_the_last_progress() {
        let t = Instant::now();
        let mut l = Liveness::new(t);
        assert_eq!(l.stalled(t + 40 * MS), 40 * MS);
        l.progress(t + 50 * MS);
        assert_eq!(l.stalled(t + 60 * MS), 10 * MS);
        // An instant from before the progress (taken earlier by the caller) is no stall.
        assert_eq!(l.stalled(t), Duration::ZERO);
    }
}
