//! Whether the children answer, and when the run last got anywhere.
//!
//! The supervisor pings every child (the GPU process, each view's renderer) every heartbeat
//! with one sequence number; each answers with a `Pong` of the number it read. A child that has
//! not answered for the hang timeout is hung ([`crate::crash::Cause::Hang`]); a child
//! (re)started counts as having answered when it started. A pong of a number never sent is a
//! protocol violation ([`ipc_protocol::rules::pong`]) and refreshes nothing. A view's progress
//! is a frame of it reaching the screen, its renderer or the GPU process (re)started, or, in a
//! window, nothing asked for: a view without progress for the hang timeout, with its children
//! answering, is stalled, and the supervisor works out whose fault that is
//! (`super::super::drive`).
//!
//! Every time comes from the caller, so each rule is tested with instants of its choosing.

use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use ipc_protocol::messages::ViewId;
use ipc_protocol::rules::{self, Breach};

use super::Who;

/// Pings, answers and progress.
#[derive(Debug)]
pub struct Liveness {
    /// When the run started: what counts for a child or a view not heard of yet.
    born: Instant,
    /// The last ping's number (0: none sent yet).
    ping_seq: u64,
    /// When the last ping was sent (or the run started).
    last_ping: Instant,
    /// When the GPU process last answered a ping, or started.
    gpu_answered: Instant,
    /// When each view's renderer last answered a ping, or started.
    renderers: BTreeMap<ViewId, Instant>,
    /// The last time a frame of each view reached the screen or a child of it was (re)started.
    progress: BTreeMap<ViewId, Instant>,
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
            born: now,
            ping_seq: 0,
            last_ping: now,
            gpu_answered: now,
            renderers: BTreeMap::new(),
            progress: BTreeMap::new(),
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

    /// `who` answered ping `n` at `now`. Returns the round trip, in microseconds, when it
    /// answered the last ping sent; a pong of a ping never sent is a breach. Pings are numbered
    /// from 1: a pong of 0 answers none, and counts neither as an answer nor as a round trip.
    pub fn pong(&mut self, who: Who, n: u64, now: Instant) -> Result<Option<f64>, Breach> {
        rules::pong(n, self.ping_seq)?;
        if n == 0 {
            return Ok(None);
        }
        self.answered(who, now);
        Ok((n == self.ping_seq)
            .then(|| now.saturating_duration_since(self.last_ping).as_secs_f64() * 1e6))
    }

    /// `who` started at `now`: it has answered as of then.
    pub fn started(&mut self, who: Who, now: Instant) {
        self.answered(who, now);
    }

    /// How long `who` has not answered, if longer than `hang`.
    pub fn silent(&self, who: Who, now: Instant, hang: Duration) -> Option<Duration> {
        let at = match who {
            Who::Gpu => self.gpu_answered,
            Who::Renderer(v) => self.renderers.get(&v).copied().unwrap_or(self.born),
        };
        Some(now.saturating_duration_since(at)).filter(|s| *s > hang)
    }

    /// `view` got somewhere at `now`: a frame of it on screen, a child of it (re)started.
    pub fn progress(&mut self, view: ViewId, now: Instant) {
        self.progress.insert(view, now);
    }

    /// `view` is gone: nothing of it is waited for any more.
    pub fn forget(&mut self, view: ViewId) {
        self.renderers.remove(&view);
        self.progress.remove(&view);
    }

    /// How long `view` has not got anywhere, as of `now`.
    pub fn stalled(&self, view: ViewId, now: Instant) -> Duration {
        let at = self.progress.get(&view).copied().unwrap_or(self.born);
        now.saturating_duration_since(at)
    }

    fn answered(&mut self, who: Who, now: Instant) {
        match who {
            Who::Gpu => self.gpu_answered = now,
            Who::Renderer(v) => {
                self.renderers.insert(v, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const V: ViewId = ViewId(0);
    const R: Who = Who::Renderer(V);

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
            .pong(Who::Gpu, 1, t + 400 * MS)
            .expect_err("no ping was sent");
        assert_eq!(e.kind, "Pong");
        assert!(
            l.silent(Who::Gpu, t + 600 * MS, hang).is_some(),
            "still hung"
        );
        l.ping_due(t + 100 * MS, 100 * MS);
        assert!(
            l.pong(Who::Gpu, 2, t + 150 * MS).is_err(),
            "ahead of the last"
        );
    }

    #[test]
    fn a_pong_of_no_ping_times_nothing_and_refreshes_nothing() {
        let t = Instant::now();
        let mut l = Liveness::new(t);
        let hang = 500 * MS;
        // Before any ping, and after one: 0 numbers no ping.
        assert_eq!(l.pong(R, 0, t + 400 * MS), Ok(None));
        l.ping_due(t + 450 * MS, 100 * MS);
        assert_eq!(l.pong(R, 0, t + 590 * MS), Ok(None));
        assert!(l.silent(R, t + 600 * MS, hang).is_some(), "still hung");
    }

    #[test]
    fn only_the_answer_to_the_last_ping_gives_a_round_trip() {
        let t = Instant::now();
        let mut l = Liveness::new(t);
        l.ping_due(t + 100 * MS, 100 * MS);
        l.ping_due(t + 200 * MS, 100 * MS);
        // A late answer to ping 1 shows the child alive, but times nothing.
        assert_eq!(l.pong(R, 1, t + 210 * MS), Ok(None));
        let rtt = l
            .pong(R, 2, t + 203 * MS)
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
        l.pong(Who::Gpu, 1, t + 300 * MS).expect("answers");
        // At 600 ms the renderer has been silent since the start; the GPU process for 300 ms.
        assert_eq!(l.silent(Who::Gpu, t + 600 * MS, hang), None);
        assert_eq!(l.silent(R, t + 600 * MS, hang), Some(600 * MS));
        // Exactly the timeout is not over it.
        assert_eq!(l.silent(Who::Gpu, t + 800 * MS, hang), None);
        assert_eq!(l.silent(Who::Gpu, t + 801 * MS, hang), Some(501 * MS));
        // A replacement starts with a clean slate.
        l.started(R, t + 700 * MS);
        assert_eq!(l.silent(R, t + 1000 * MS, hang), None);
    }

    #[test]
    fn a_stall_is_counted_from_the_last_progress() {
        let t = Instant::now();
        let mut l = Liveness::new(t);
        assert_eq!(l.stalled(V, t + 40 * MS), 40 * MS);
        l.progress(V, t + 50 * MS);
        assert_eq!(l.stalled(V, t + 60 * MS), 10 * MS);
        // An instant from before the progress (taken earlier by the caller) is no stall.
        assert_eq!(l.stalled(V, t), Duration::ZERO);
        // Each view's progress is its own.
        assert_eq!(l.stalled(ViewId(1), t + 60 * MS), 60 * MS);
    }
}
