//! The GPU process: the process running, its standby, its restart ladder, its epoch, and the
//! recovery from its crash under way; and each view's renderer's restart policy, the output
//! shown while a renderer is replaced, and that recovery ([`ViewPair`]).
//!
//! The processes are the supervisor's to drive (it sends them commands and reads their
//! events); what this part decides on its own is the restart policy and the epochs:
//!
//! - every GPU process start, failed or not, takes the next epoch: epochs only rise, and the
//!   first is 1 (a frame of epoch 0 is never valid, [`ipc_protocol::rules::Frames`]);
//! - each child counts its crashes on its own ladder ([`crate::crash::Ladder`]): the GPU
//!   process steps down the fallback ladder (`dmabuf -> shm`) when one rung crashes too often,
//!   a view's renderer (one rung) gives up;
//! - a recovery lasts from a crash's detection to the replacement's first frame; a second
//!   crash before that frame replaces it (the frame ends the recovery of the latest crash).

use std::time::{Duration, Instant};

use ipc_protocol::messages::BackendRequest;
use ipc_protocol::Role;

use super::super::{request_name, Gpu, WarmGpu};
use crate::crash::{Decision, Ladder};
use crate::present::Screen;
use crate::summary::StandbySummary;

/// A recovery in progress: a replacement has been started, its first frame is awaited.
#[derive(Debug)]
pub struct Recovery {
    /// Whose crash.
    pub role: Role,
    /// When it was detected.
    pub detected: Instant,
    /// Its crash record's index.
    pub record: usize,
}

/// The GPU process, its ladder and the epoch.
pub struct Pair {
    /// The GPU process's fallback ladder and restart policy.
    gpu_ladder: Ladder<BackendRequest>,
    /// The latest GPU process's epoch: one more at every start.
    epoch: u64,
    /// The GPU process running, if one is.
    pub gpu: Option<Gpu>,
    /// A replacement GPU process started, its first frame awaited.
    recovery: Option<Recovery>,
    /// The standby GPU process, warm and confined, waiting to be promoted.
    pub standby: Option<WarmGpu>,
    /// How GPU processes started, and what the standby cost.
    pub standby_stats: StandbySummary,
    /// After a standby's death: no new standby before this instant; the back-off that set it.
    pub standby_backoff: Option<(Instant, Duration)>,
    /// The pid of the standby promoted last: a failed start of it is a standby's failure.
    pub last_promoted: Option<u32>,
}

impl Pair {
    /// No process yet; the GPU process climbs down `gpu_rungs` (at least one), each role
    /// allowed `max_crashes` crashes within `window`.
    pub fn new(gpu_rungs: Vec<BackendRequest>, max_crashes: u32, window: Duration) -> Pair {
        Pair {
            gpu_ladder: Ladder::new(gpu_rungs, max_crashes, window),
            epoch: 0,
            gpu: None,
            recovery: None,
            standby: None,
            standby_stats: StandbySummary::default(),
            standby_backoff: None,
            last_promoted: None,
        }
    }

    /// A GPU process is being started: the standby promoted, or a cold start.
    pub fn started(&mut self, promoted: bool) {
        if promoted {
            self.standby_stats.promotions += 1;
        } else {
            self.standby_stats.cold_starts += 1;
        }
    }

    /// Whether a recovery is under way (a replacement's first frame is awaited).
    pub fn recovering_now(&self) -> bool {
        self.recovery.is_some()
    }

    /// A GPU process is being started: its epoch, one more than the last one's.
    pub fn next_epoch(&mut self) -> u64 {
        self.epoch += 1;
        self.epoch
    }

    /// The buffer backend the next GPU process is asked for: the rung in force.
    pub fn backend(&self) -> BackendRequest {
        self.gpu_ladder.current()
    }

    /// Whether the first rung of the fallback ladder is still in force.
    pub fn on_first_rung(&self) -> bool {
        self.gpu_ladder.on_first_rung()
    }

    /// The fallback ladder, as `dmabuf -> shm`.
    pub fn ladder(&self) -> String {
        self.gpu_ladder
            .rungs()
            .iter()
            .map(|r| request_name(*r))
            .collect::<Vec<_>>()
            .join(" -> ")
    }

    /// A GPU process crashed (or failed to start) at `now`: restart it on this rung, step down,
    /// or give up.
    pub fn gpu_crashed(&mut self, now: Instant) -> Decision<BackendRequest> {
        self.gpu_ladder.crashed(now)
    }

    /// A replacement for the GPU process's crash (crash record `record`, detected at
    /// `detected`) has started; its first frame ends the recovery.
    pub fn recovering(&mut self, detected: Instant, record: usize) {
        self.recovery = Some(Recovery {
            role: Role::Gpu,
            detected,
            record,
        });
    }

    /// A frame was presented: the recovery it ends, if one was under way and the frame is
    /// the replacement's (`current`).
    pub fn recovered(&mut self, current: bool) -> Option<Recovery> {
        self.recovery.take_if(|_| current)
    }
}

/// One view's renderer: its restart policy, the previous renderer's output shown until the
/// new one presents, and the recovery from its crash under way.
pub struct ViewPair {
    /// The renderer's restart policy (one rung).
    ladder: Ladder<()>,
    /// The previous renderer's output, shown until the new renderer presents.
    old_screen: Option<Screen>,
    /// A replacement renderer started, its first frame awaited.
    recovery: Option<Recovery>,
}

impl ViewPair {
    /// A view's renderer allowed `max_crashes` crashes within `window`.
    pub fn new(max_crashes: u32, window: Duration) -> ViewPair {
        ViewPair {
            ladder: Ladder::new(vec![()], max_crashes, window),
            old_screen: None,
            recovery: None,
        }
    }

    /// The renderer crashed at `now`: whether it crashed too often to be restarted.
    pub fn gives_up(&mut self, now: Instant) -> bool {
        self.ladder.crashed(now) == Decision::GiveUp
    }

    /// The renderer is gone: its output, if a frame of it is on screen, is shown until the
    /// next renderer presents.
    pub fn keep_showing(&mut self, screen: Option<Screen>) {
        if let Some(s) = screen.filter(|s| s.shown.is_some()) {
            self.old_screen = Some(s);
        }
    }

    /// The previous renderer's output still shown, if any.
    pub fn old_screen(&self) -> Option<&Screen> {
        self.old_screen.as_ref()
    }

    /// The new renderer presented: the previous one's output is let go.
    pub fn forget_old_screen(&mut self) {
        self.old_screen = None;
    }

    /// A replacement renderer for the crash of record `record`, detected at `detected`, has
    /// started; its first frame ends the recovery.
    pub fn recovering(&mut self, detected: Instant, record: usize) {
        self.recovery = Some(Recovery {
            role: Role::Renderer,
            detected,
            record,
        });
    }

    /// A frame of the view was presented: the recovery it ends, if one was under way.
    pub fn recovered(&mut self) -> Option<Recovery> {
        self.recovery.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(rungs: Vec<BackendRequest>) -> Pair {
        Pair::new(rungs, 2, Duration::from_secs(10))
    }

    #[test]
    fn epochs_start_at_one_and_only_rise() {
        let mut p = pair(vec![BackendRequest::Auto, BackendRequest::Shm]);
        let epochs: Vec<u64> = (0..5).map(|_| p.next_epoch()).collect();
        assert_eq!(epochs, [1, 2, 3, 4, 5]);
        // A step down the ladder does not reset them.
        let t = Instant::now();
        for i in 0..3 {
            p.gpu_crashed(t + Duration::from_millis(i));
        }
        assert_eq!(p.backend(), BackendRequest::Shm);
        assert_eq!(p.next_epoch(), 6);
    }

    #[test]
    fn auto_steps_down_to_shm_then_gives_up_with_the_whole_ladder_named() {
        let mut p = pair(vec![BackendRequest::Auto, BackendRequest::Shm]);
        assert_eq!(p.ladder(), "auto -> shm");
        assert_eq!(p.backend(), BackendRequest::Auto);
        assert!(p.on_first_rung());
        let t = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(p.gpu_crashed(t), Decision::Restart);
        assert_eq!(p.gpu_crashed(t + s), Decision::Restart);
        assert_eq!(
            p.gpu_crashed(t + 2 * s),
            Decision::StepDown {
                from: BackendRequest::Auto,
                to: BackendRequest::Shm
            }
        );
        assert_eq!(p.backend(), BackendRequest::Shm);
        assert!(!p.on_first_rung());
        assert_eq!(p.gpu_crashed(t + 3 * s), Decision::Restart);
        assert_eq!(p.gpu_crashed(t + 4 * s), Decision::Restart);
        assert_eq!(p.gpu_crashed(t + 5 * s), Decision::GiveUp);
        // Exhausted, it stays on its last rung.
        assert_eq!(p.backend(), BackendRequest::Shm);
        assert_eq!(p.ladder(), "auto -> shm");
    }

    fn view() -> ViewPair {
        ViewPair::new(2, Duration::from_secs(10))
    }

    #[test]
    fn each_child_counts_its_own_crashes() {
        let mut p = pair(vec![BackendRequest::DmaBuf, BackendRequest::Shm]);
        let (mut a, mut b) = (view(), view());
        let t = Instant::now();
        // A renderer's crashes never cost the GPU process its rung, nor another view's
        // renderer its restarts.
        assert!(!a.gives_up(t));
        assert!(!a.gives_up(t));
        assert_eq!(p.gpu_crashed(t), Decision::Restart);
        assert_eq!(p.backend(), BackendRequest::DmaBuf);
        // The renderer's third crash in the window is one too many; it has no rung to step to.
        assert!(a.gives_up(t));
        assert!(!b.gives_up(t), "another view's renderer");
        assert_eq!(p.gpu_crashed(t), Decision::Restart);
        assert!(p.on_first_rung());
    }

    #[test]
    fn a_renderer_crashing_slower_than_the_window_is_forgiven() {
        let mut v = view();
        let t = Instant::now();
        // Two crashes a window apart, forever: never more than two within 10 s.
        for i in 0..20u64 {
            let at = t + Duration::from_secs(6 * i);
            assert!(!v.gives_up(at), "crash {i}");
        }
        // Three within the window are one too many.
        let late = t + Duration::from_secs(1000);
        assert!(!v.gives_up(late));
        assert!(!v.gives_up(late + Duration::from_secs(1)));
        assert!(v.gives_up(late + Duration::from_secs(2)));
    }

    #[test]
    fn the_first_frame_ends_the_latest_recovery_once() {
        let mut p = pair(vec![BackendRequest::Shm]);
        assert!(p.recovered(true).is_none(), "no crash yet");
        let t = Instant::now();
        p.recovering(t, 0);
        // A frame of the dead GPU process still on its way ends nothing.
        assert!(p.recovered(false).is_none());
        p.recovering(t + Duration::from_millis(5), 1);
        let r = p.recovered(true).expect("a recovery under way");
        assert_eq!((r.role, r.record), (Role::Gpu, 1));
        assert_eq!(r.detected, t + Duration::from_millis(5));
        assert!(p.recovered(true).is_none(), "the next frame ends nothing");
        let mut v = view();
        assert!(v.recovered().is_none());
        v.recovering(t, 2);
        assert_eq!(
            v.recovered().map(|r| (r.role, r.record)),
            Some((Role::Renderer, 2))
        );
        assert!(v.recovered().is_none());
        assert!(v.old_screen().is_none());
    }
}
