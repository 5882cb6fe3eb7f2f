//! The GPU process's messages read by the main loop itself, and the loop's sleep on its ring:
//! in a paced run without a window ([`Supervisor::ring_sleep`]).
//!
//! A GPU process starts with a forwarding thread reading what it sends, since the start-up
//! waits block on its channel. Once it has started, the loop asks the thread for the channel
//! back ([`ipc_protocol::channel::Handback`]) and from then on reads the process's mailbox
//! itself each turn, as it reads its renderers'. With nothing to do, it sleeps on that ring
//! and on a [`Bell`] of its own at once (`futex_waitv`): the GPU process's wake-up for a burst
//! of frames wakes the thread that relays them, with no thread in between to wake it in turn.
//! The mailbox's rules are the same as for a thread: the same decoder, the same judgement of
//! indices and of wake-ups with no record.
//!
//! What the loop must hear of at once rings the bell as it comes: a child's exit (its watcher),
//! the application's edits and control, signals, and the verdicts of the checks of children's
//! claims ([`super::ringers::belled`]); those threads end with the run. What does not (a command
//! stream's end, the standby's messages) is seen within [`RING_SLEEP_MOST`] of its coming, the
//! longest sleep on the ring. While a renderer is read by a thread (one that sent more than a
//! turn takes), the loop waits on its channels instead, as an unpaced run's does.
//!
//! A GPU process that sends more than a turn of the loop takes goes back to a forwarding thread
//! of its own, which reads it as fast as it sends; so does one the loop is about to wait on.

use super::*;
use ipc_protocol::channel::Polled;

/// The longest the loop sleeps on the GPU process's ring: what rings no bell waits at most
/// this long (a frame at 60 Hz).
pub(super) const RING_SLEEP_MOST: Duration = Duration::from_millis(16);

/// How long the loop waits for the GPU process's thread to hand its channel back when it asks
/// for it; past that, it looks again at each turn, and its waits meanwhile are at most
/// [`HANDBACK_LOOK`].
const HANDBACK_WAIT: Duration = Duration::from_millis(5);

/// The longest wait of the loop while the GPU process's thread has been asked for its channel
/// and has not handed it back.
pub(super) const HANDBACK_LOOK: Duration = Duration::from_millis(1);

impl Gpu {
    /// Whether its thread was asked for its channel and has not handed it back yet.
    pub(super) fn handing_back(&self) -> bool {
        matches!(self.intake, GpuIntake::Handing { asked: true, .. })
    }

    /// Takes its channel out of the loop's hands, or out of its thread's where the thread was
    /// asked for it (waiting up to `wait` for it to stop: it stops at once unless a message is
    /// on its way), leaving it read by a thread: `None` where a thread reads it to the end.
    fn take_polled(&mut self, wait: Duration) -> Option<Polled<GpuToLauncher>> {
        match std::mem::replace(&mut self.intake, GpuIntake::Thread) {
            GpuIntake::Thread | GpuIntake::Handing { asked: false, .. } => None,
            GpuIntake::Handing { back, asked: true } => back.take_within(wait),
            GpuIntake::Loop(p) => Some(p),
        }
    }

    /// Leaves what is left of its messages to a forwarding thread, for a caller about to wait
    /// on `events`: one that read them already, or a new one.
    pub(super) fn forward_rest(&mut self) {
        if let Some(polled) = self.take_polled(Duration::from_secs(1)) {
            if let Err(e) = polled.forward() {
                // `events` disconnects: the waits on it end at once.
                tracing::warn!(error = %e, "could not forward the GPU process's last messages");
            }
        }
    }

    /// Takes what is left of its messages at once, the process being dead: a caller's wait on
    /// `events` then ends with what it left.
    pub(super) fn drain_gone(&mut self) {
        if let Some(polled) = self.take_polled(Duration::from_millis(500)) {
            polled.drain_gone();
        }
    }
}

impl Supervisor<'_> {
    /// A turn's look at the GPU process's messages: asks its thread for the channel once it
    /// has started, takes the channel when the thread has stopped, and where the loop reads it,
    /// moves up to [`drive::DRAIN`] waiting messages into `events` and handles as many. Returns
    /// whether more may wait.
    pub(super) fn poll_gpu(&mut self, now: Instant) -> anyhow::Result<bool> {
        let Some(g) = self.pair.gpu.as_mut() else {
            return Ok(false);
        };
        if let GpuIntake::Handing { back, asked } = &mut g.intake {
            // Asked, the thread stops at once unless a message is on its way: waited for a
            // moment, so that the process's next frames, which wake no thread once it has
            // stopped, are not left to the loop's next tick.
            let wait = if *asked {
                Duration::ZERO
            } else {
                back.ask(g.child.waker.as_ref());
                *asked = true;
                HANDBACK_WAIT
            };
            match back.take_within(wait) {
                Some(p) => {
                    tracing::info!(
                        gpu = g.child.proc.pid,
                        "the loop reads the GPU process's messages itself from now on"
                    );
                    g.intake = GpuIntake::Loop(p);
                    self.gpu_intakes.0 += 1;
                }
                None => return Ok(false),
            }
        }
        let GpuIntake::Loop(p) = &mut g.intake else {
            return Ok(false);
        };
        let more = p.poll(now, drive::DRAIN as usize);
        let events = g.events.clone();
        self.drain_gpu(&events)?;
        Ok(more)
    }

    /// Hands a GPU process that still has more waiting after a turn's rounds to a forwarding
    /// thread: it sends more than the loop takes in a turn, and is read as fast as it sends
    /// without holding up the loop.
    pub(super) fn forward_gpu_flood(&mut self) {
        let Some(g) = self.pair.gpu.as_mut() else {
            return;
        };
        if !matches!(&g.intake, GpuIntake::Loop(p) if p.behind()) {
            return;
        }
        tracing::info!(
            gpu = g.child.proc.pid,
            "the GPU process sends more than a turn of the loop takes: a thread reads it from now on"
        );
        g.forward_rest();
        // Read by the loop, then by a thread: `mixed`.
        self.gpu_intakes.1 += 1;
    }

    /// Sleeps on the GPU process's ring and the loop's bell, read as `rung` before the turn
    /// looked at what it waits for, for at most `wait` (and [`RING_SLEEP_MOST`]). Returns
    /// `false`, having not slept, where the loop does not read that ring: the caller waits on
    /// its channels instead.
    pub(super) fn sleep_on_gpu(&mut self, rung: u32, wait: Duration) -> bool {
        // A renderer a thread reads (one that sent more than a turn takes) rings no bell: its
        // messages would wait for the GPU process's next frame.
        let threaded = self
            .views
            .iter()
            .filter_map(|v| v.renderer.as_ref())
            .any(|r| r.intake.is_none());
        if threaded {
            return false;
        }
        let Some(g) = self.pair.gpu.as_mut() else {
            return false;
        };
        let GpuIntake::Loop(p) = &mut g.intake else {
            return false;
        };
        p.sleep(&self.bell, rung, wait.min(RING_SLEEP_MOST))
    }
}
