//! The standby GPU process: one spare, spawned, sandboxed and with its GL context made, waiting
//! for `Start`, so that a GPU process's death costs a promotion instead of a cold start (spawn,
//! namespaces, exec, driver initialisation, sandbox).
//!
//! - It is spawned once the GPU process running has a frame on screen and the run its tenth
//!   (never during a recovery, so that it does not compete with the replacement for the CPU;
//!   after the launcher's fds are counted at the tenth frame, so that they are the run's own,
//!   as at the end, where the standby is shut down first) and is prepared for the rung of the
//!   fallback ladder in force. Once ready it is pinged with every heartbeat, as the running
//!   children are, and answers from its wait for `Start`: a ready standby that has not answered
//!   for the hang timeout is killed as hung, so that a promotion never waits on a process that
//!   stopped. Its death is seen through its pidfd.
//! - Everything it sends before `Started` is held to the same rules as a cold start's
//!   ([`Supervisor::warm_message`]): its listener is adopted at once (a refused call of a
//!   standby is reported like any other), its `Ready` is checked, its fd table searched for a
//!   kept listener; anything else kills it. A standby not ready within a cold start's deadline
//!   ([`START_TIMEOUT`]) is killed as hung, and one whose control socket closes while it lives
//!   on is killed for that, as a running GPU process is.
//! - A standby that dies or breaks the protocol is recorded as a GPU process crash
//!   (`standby: true`) and counts on the GPU process's ladder; the next one waits a back-off that
//!   doubles with each such death (from [`BACKOFF_MIN`] to [`BACKOFF_MAX`]) and is reset by a
//!   promotion that reaches the screen.
//! - A standby of a rung no longer in force, and the standby at the end of the run, are shut
//!   down unused (`retired`).
//!
//! The same `Prepare`/`Start` split serves a cold start, which sends `Start` right after
//! `Prepare`: there is one start-up path, whichever way a GPU process is started.

use super::*;

/// The first back-off after a standby's death.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// The longest back-off between standbys.
const BACKOFF_MAX: Duration = Duration::from_secs(8);

impl Supervisor<'_> {
    /// Spawns the standby when one is due: kept (`supervision.standby`), none warm, a GPU process
    /// running with a frame on screen and no recovery under way, the run's tenth frame shown,
    /// past the back-off.
    pub(super) fn standby_due(&mut self) -> anyhow::Result<()> {
        // A standby not ready within a cold start's deadline is hung: it is named, like a cold
        // start that does not start, rather than kept until a promotion waits on it.
        if let Some(late) = self
            .pair
            .standby
            .as_ref()
            .filter(|w| w.ready.is_none())
            .map(|w| w.spawned.elapsed())
            .filter(|t| *t > START_TIMEOUT)
        {
            return self.standby_lost(Some(Cause::Hang {
                silent_ms: late.as_millis() as u64,
            }));
        }
        // A ready standby that stopped answering its pings is hung too.
        let hang = Duration::from_millis(self.args.supervision.hang_timeout_ms.max(50));
        if let Some(silent) = self
            .pair
            .standby
            .as_ref()
            .filter(|w| w.ready.is_some())
            .map(|w| w.answered.elapsed())
            .filter(|t| *t > hang)
        {
            return self.standby_lost(Some(Cause::Hang {
                silent_ms: silent.as_millis() as u64,
            }));
        }
        if !self.args.supervision.standby
            || self.pair.standby.is_some()
            || self.pair.recovering_now()
            || self.pair.gpu.as_ref().is_none_or(|g| g.presented == 0)
            // After the tenth frame: the launcher's fds are counted then without it.
            || self.summary.frames.count < 10
            || self
                .pair
                .standby_backoff
                .is_some_and(|(until, _)| Instant::now() < until)
        {
            return Ok(());
        }
        match self.prepare_gpu(true) {
            Ok(w) => {
                tracing::debug!(pid = w.child.proc.pid, "standby GPU process spawned");
                self.pair.standby = Some(w);
            }
            Err(e) => {
                // A spare that cannot be made now costs the run nothing: the next GPU process
                // starts cold, and another try waits the back-off.
                tracing::warn!(error = %format!("{e:#}"), "could not spawn a standby GPU process");
                self.back_off(Instant::now());
            }
        }
        Ok(())
    }

    /// What the standby sent.
    pub(super) fn standby_message(&mut self, d: Delivery<GpuToLauncher>) -> anyhow::Result<()> {
        let Some(mut w) = self.pair.standby.take() else {
            return Ok(());
        };
        let was_ready = w.ready.is_some();
        let result = self.warm_message(&mut w, d, &[], false);
        if result.is_ok() && !was_ready && w.ready.is_some() {
            w.answered = Instant::now();
            self.standby_ready(&w);
        }
        self.pair.standby = Some(w);
        if let Err(why) = result {
            return self.standby_down(Some(why));
        }
        Ok(())
    }

    /// The standby reported `Ready`: what it took to get there, and what it holds.
    fn standby_ready(&mut self, w: &WarmGpu) {
        let pid = w.child.proc.pid;
        let ms = w.spawned.elapsed().as_secs_f64() * 1e3;
        let (rss, pss) = triptych_sys::proc::memory_kib(pid).unwrap_or((None, None));
        tracing::info!(pid, ready_ms = ms, rss_kib = ?rss, pss_kib = ?pss, "standby GPU process ready");
        let s = &mut self.pair.standby_stats;
        s.ready_ms = Some(ms);
        s.rss_kib = rss;
        s.pss_kib = pss;
        self.embedding
            .send(crate::embedding::Event::StandbyReady { pid });
    }

    /// The standby died or closed its control socket (`why` is `None`: its exit tells why, or,
    /// when it lives on, the closed socket is its violation), reported a failure (`why`: it exits
    /// on its own, and its exit is recorded) or broke the protocol (`why` starts `protocol
    /// violation: `: it is killed). It is reaped and recorded as a GPU process crash on the
    /// ladder; the next one backs off.
    pub(super) fn standby_down(&mut self, why: Option<String>) -> anyhow::Result<()> {
        let cause = match why {
            None => None,
            Some(what) => match what.strip_prefix("protocol violation: ") {
                Some(what) => Some(Cause::ProtocolViolation {
                    kind: "standby".to_owned(),
                    what: what.to_owned(),
                }),
                None => {
                    // A failure it reported: it exits on its own at once, and its exit is the
                    // cause. One that reports a failure and lives on is named for that.
                    let mut lives_on = false;
                    if let Some(w) = &mut self.pair.standby {
                        tracing::warn!(pid = w.child.proc.pid, failure = %what, "the standby GPU process failed");
                        lives_on = w.child.proc.wait_exit(Duration::from_millis(250)).is_none();
                    }
                    lives_on.then(|| Cause::ProtocolViolation {
                        kind: "Failed".to_owned(),
                        what: "reported a failure and lived on".to_owned(),
                    })
                }
            },
        };
        self.standby_lost(cause)
    }

    /// [`Self::standby_down`] with the cause, when the launcher has one.
    fn standby_lost(&mut self, why: Option<Cause>) -> anyhow::Result<()> {
        let Some(mut w) = self.pair.standby.take() else {
            return Ok(());
        };
        let detected = Instant::now();
        let detected_ns = triptych_trace::now_ns();
        // Called when its exit was seen, or when its control socket closed and its exit did not
        // follow within the main loop's grace: a standby still alive now closed the socket and
        // lives on, which is a violation of its own (as it is for a running GPU process), not a
        // death to wait for.
        let why = why.or_else(|| {
            w.child
                .proc
                .wait_exit(Duration::ZERO)
                .is_none()
                .then(|| Cause::ProtocolViolation {
                    kind: "control socket".to_owned(),
                    what: "closed while the process lives on".to_owned(),
                })
        });
        if why.is_some() {
            w.child.proc.kill();
        }
        let st = w
            .child
            .proc
            .wait_exit(Duration::from_secs(2))
            .or_else(|| w.child.proc.kill());
        let cause = why.unwrap_or_else(|| super::recovery::exit_cause(st));
        let_go(&mut w);
        let idx = self.record_crash(Role::Gpu, w.child.proc.pid, cause, None, detected_ns);
        self.crashes[idx].standby = true;
        self.pair.standby_stats.deaths += 1;
        self.back_off(detected);
        let why = self.crashes[idx].cause.to_string();
        self.gpu_decision(detected, &why)
    }

    /// Shuts `w` down unused (not a crash): the rung it was made for is no longer in force, or
    /// the run is over.
    pub(super) fn retire_standby(&mut self, mut w: WarmGpu, why: &str) {
        tracing::info!(
            pid = w.child.proc.pid,
            why,
            "standby GPU process shut down unused"
        );
        let _ = w.child.commands.send(&LauncherToGpu::Shutdown);
        // It does nothing but wait for a command, so it exits at once; the main loop is not kept
        // waiting on one that does not.
        if w.child.proc.wait_exit(Duration::from_millis(500)).is_none() {
            tracing::warn!(
                pid = w.child.proc.pid,
                "the standby GPU process did not exit in time; killing"
            );
            w.child.proc.kill();
        }
        let_go(&mut w);
        // What the jail holds for it (its listener, its report pipe) goes with it. A violation it
        // made meanwhile is recorded as any other, though nothing is restarted for it.
        if let Some(cause) = self.jail.reaped(
            w.child.proc.pid,
            self.tracing.rec(),
            self.summary.frames.last,
        ) {
            tracing::warn!(pid = w.child.proc.pid, %cause, "the standby GPU process broke its sandbox before it was shut down");
        }
        self.pair.standby_stats.retired += 1;
    }

    /// No standby before a back-off from `now`, twice the last one ([`BACKOFF_MIN`] at first, at
    /// most [`BACKOFF_MAX`]).
    fn back_off(&mut self, now: Instant) {
        let backoff = self
            .pair
            .standby_backoff
            .map_or(BACKOFF_MIN, |(_, b)| (b * 2).min(BACKOFF_MAX));
        self.pair.standby_backoff = Some((now + backoff, backoff));
    }

    /// A promoted GPU process's first frame is on screen: the standby's back-off starts over.
    pub(super) fn standby_promotion_landed(&mut self) {
        self.pair.standby_backoff = None;
    }
}

/// Waits for the threads that watch and read standby `w`, which is gone, to let their fds go,
/// so that nothing of it is open when the run's fds are counted.
fn let_go(w: &mut WarmGpu) {
    let _ = w.exit.recv_timeout(Duration::from_secs(1));
    w.child.wake_reader();
    let until = Instant::now() + Duration::from_secs(1);
    while w.events.recv_deadline(until).is_ok() {}
    let _ = w.child.proc.stderr_closed.recv_deadline(until);
}
