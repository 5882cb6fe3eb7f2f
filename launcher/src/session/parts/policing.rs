//! What the children may send and claim: each view's frames produced and presented
//! ([`rules::Frames`]), each child's message and trace budget ([`rules::Budget`]), the
//! rate-limited logging of their noise ([`super::super::quiet`]), and the renderer's
//! fence-timeout claims being checked ([`super::super::corroborate`]).
//!
//! Budgets belong to a process, not a role: a replacement starts with a fresh one, so a child
//! that flooded and was killed for it costs its replacement nothing, and one child's flood never
//! spends another's budget (each view's renderer has its own). The frames' order is the view's,
//! across processes: a new GPU process starts a new epoch at the frame after the view's last
//! one presented, and what was produced before it still counts (the renderer may present it).

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use ipc_protocol::messages::ViewId;
use ipc_protocol::rules::{self, Breach};
use ipc_protocol::Role;

use super::super::{corroborate, quiet};

/// Which child: the GPU process, or a view's renderer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// The GPU process.
    Gpu,
    /// The renderer of this view.
    Renderer(ViewId),
}

impl Who {
    /// Its role.
    pub fn role(self) -> Role {
        match self {
            Who::Gpu => Role::Gpu,
            Who::Renderer(_) => Role::Renderer,
        }
    }

    /// The view, for a renderer.
    pub fn view(self) -> Option<ViewId> {
        match self {
            Who::Gpu => None,
            Who::Renderer(v) => Some(v),
        }
    }
}

/// The budgets of the current children.
#[derive(Debug, Default)]
struct Budgets {
    gpu: rules::Budget,
    renderers: BTreeMap<ViewId, rules::Budget>,
}

/// The rules the children are held to, and what they have spent.
#[derive(Debug, Default)]
pub struct Policing {
    /// What was produced and presented of each view, in order.
    frames: BTreeMap<ViewId, rules::Frames>,
    budgets: Budgets,
    quiet: quiet::Quiet,
    /// Fence-timeout claims being checked.
    checks: corroborate::Checks,
    /// Fences the renderer said are no fences, being looked at.
    looks: super::super::fence_look::Looks,
    /// Where the vouching threads' outcomes arrive, with the GPU process's epoch.
    vouches: Vouches,
}

/// The channel of the vouching threads' outcomes.
#[derive(Debug)]
struct Vouches {
    tx: crossbeam_channel::Sender<super::super::vouch::Done>,
    rx: Receiver<super::super::vouch::Done>,
}

impl Default for Vouches {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Self { tx, rx }
    }
}

impl Policing {
    /// Has every verdict ring `bell` as it comes ([`super::super::ringers::belled`]): for a
    /// main loop that sleeps on the GPU process's ring.
    pub fn ring_on_verdicts(
        &mut self,
        bell: &super::super::ringers::Ringers,
    ) -> anyhow::Result<()> {
        use super::super::ringers::belled;
        use crossbeam_channel::never;
        let checks = std::mem::replace(&mut self.checks.done, never());
        self.checks.done = belled("checks-bell", checks, bell)?;
        let looks = std::mem::replace(&mut self.looks.done, never());
        self.looks.done = belled("looks-bell", looks, bell)?;
        let vouches = std::mem::replace(&mut self.vouches.rx, never());
        self.vouches.rx = belled("vouches-bell", vouches, bell)?;
        Ok(())
    }

    /// A GPU process of `epoch` started at `now`: a fresh budget.
    pub fn gpu_started(&mut self, now: Instant) {
        self.budgets.gpu = rules::Budget::new(now);
    }

    /// The GPU process of `epoch` produces `view`'s frames from frame `first`: they are checked
    /// from `first` on.
    pub fn view_epoch(&mut self, view: ViewId, epoch: u64, first: u64) {
        self.frames.entry(view).or_default().new_epoch(epoch, first);
    }

    /// `view` is gone: its budget and frame order with it.
    pub fn forget(&mut self, view: ViewId) {
        self.budgets.renderers.remove(&view);
        self.frames.remove(&view);
    }

    /// `view`'s renderer started at `now`: a fresh budget.
    pub fn renderer_started(&mut self, view: ViewId, now: Instant) {
        self.budgets.renderers.insert(view, rules::Budget::new(now));
    }

    fn budget(&mut self, who: Who) -> &mut rules::Budget {
        match who {
            Who::Gpu => &mut self.budgets.gpu,
            Who::Renderer(v) => self.budgets.renderers.entry(v).or_default(),
        }
    }

    /// Counts one message of `kind` from `who` at `now`, against its rate.
    pub fn message(&mut self, who: Who, kind: &'static str, now: Instant) -> Result<(), Breach> {
        self.budget(who).message(kind, now)
    }

    /// Checks a trace batch from `who` (`tracing`: whether a trace was asked for). `Ok(false)`:
    /// keep the message, drop the events (the run-long cap is reached).
    pub fn trace(
        &mut self,
        who: Who,
        events: &[triptych_trace::Event],
        tracing: bool,
    ) -> Result<bool, Breach> {
        self.budget(who).trace(events, tracing)
    }

    /// The GPU process says it sent `frame` of `view`, of a run of `total`.
    pub fn produced(&mut self, view: ViewId, frame: u64, total: u64) -> Result<(), Breach> {
        self.frames.entry(view).or_default().produced(frame, total)
    }

    /// The newest frame of `view` produced, by any GPU process of the run.
    #[cfg(test)]
    pub fn newest_produced(&self, view: ViewId) -> Option<u64> {
        self.frames.get(&view).and_then(|f| f.produced)
    }

    /// Whether `frame` of `view` of `epoch` is of a GPU process since replaced, at or past
    /// where its replacement resumes ([`rules::Frames::superseded`]).
    pub fn superseded(&self, view: ViewId, frame: u64, epoch: u64) -> bool {
        self.frames
            .get(&view)
            .is_some_and(|f| f.superseded(frame, epoch))
    }

    /// `view`'s renderer says it composited `frame` of `epoch`.
    pub fn presented(&mut self, view: ViewId, frame: u64, epoch: u64) -> Result<(), Breach> {
        self.frames.entry(view).or_default().presented(frame, epoch)
    }

    /// Logs with `log` a note of `kind` a child caused, at most once a second.
    pub fn note(&mut self, kind: &'static str, log: impl FnOnce()) {
        self.quiet.note(kind, log);
    }

    /// Starts checking a renderer's fence-timeout claim against the GPU process `gpu_pidfd`,
    /// giving the fence `grace` more, unless a check is under way.
    pub fn check_fence(&mut self, gpu_pidfd: &OwnedFd, claim: corroborate::Claim, grace: Duration) {
        self.checks.fence_claim(gpu_pidfd, claim, grace);
    }

    /// Starts looking at a fence the renderer says is no fence, in the GPU process
    /// `gpu_pidfd`; false if it could not be started.
    pub fn look_at_fence(
        &mut self,
        gpu_pidfd: &OwnedFd,
        look: super::super::fence_look::FenceToLook,
    ) -> bool {
        self.looks.start(gpu_pidfd, look)
    }

    /// Where a vouching thread sends its outcomes.
    pub fn vouch_sender(&self) -> crossbeam_channel::Sender<super::super::vouch::Done> {
        self.vouches.tx.clone()
    }

    /// Where the vouching threads' outcomes arrive, with the GPU process's epoch.
    pub fn vouch_outcomes(&self) -> Receiver<super::super::vouch::Done> {
        self.vouches.rx.clone()
    }

    /// Where the looks at fences end, with the GPU process's epoch.
    pub fn look_verdicts(&self) -> Receiver<(u64, super::super::fence_look::Verdict)> {
        self.looks.done.clone()
    }

    /// Where the checks' verdicts arrive.
    pub fn verdicts(&self) -> Receiver<(corroborate::Claim, corroborate::Finding)> {
        self.checks.done.clone()
    }

    /// A verdict about a claim of `view`'s renderer was taken from [`Policing::verdicts`]: its
    /// next claim may be checked.
    pub fn verdict_taken(&mut self, view: ViewId) {
        self.checks.finished(view);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: ViewId = ViewId(0);
    const R: Who = Who::Renderer(V);

    /// Floods `who` until its budget refuses; returns how many messages it took.
    fn flood(p: &mut Policing, who: Who, now: Instant) -> u32 {
        let mut n = 0;
        while p.message(who, "Pong", now).is_ok() {
            n += 1;
            assert!(n <= rules::MAX_MESSAGES_PER_S, "never refused");
        }
        n
    }

    #[test]
    fn one_roles_flood_never_spends_the_others_budget() {
        let t = Instant::now();
        let mut p = Policing::default();
        p.gpu_started(t);
        p.renderer_started(V, t);
        assert_eq!(flood(&mut p, Who::Gpu, t), rules::MAX_MESSAGES_PER_S);
        let e = p.message(Who::Gpu, "Frame", t).expect_err("spent");
        assert_eq!(
            e.kind, "Frame",
            "the breach names the message that broke it"
        );
        p.message(R, "Presented", t)
            .expect("the renderer's budget is its own");
    }

    #[test]
    fn a_replacement_starts_with_a_fresh_budget() {
        let t = Instant::now();
        let mut p = Policing::default();
        p.gpu_started(t);
        p.renderer_started(V, t);
        flood(&mut p, Who::Gpu, t);
        flood(&mut p, R, t);
        // A new renderer: its budget is whole, the GPU process's (the same process) is not.
        p.renderer_started(V, t);
        p.message(R, "Pong", t).expect("fresh");
        assert!(p.message(Who::Gpu, "Pong", t).is_err());
        // A new GPU process: whole again.
        p.gpu_started(t);
        p.message(Who::Gpu, "Pong", t).expect("fresh");
    }

    #[test]
    fn traces_are_refused_from_either_role_when_none_was_asked_for() {
        let mut p = Policing::default();
        for who in [Who::Gpu, R] {
            let e = p.trace(who, &[], false).expect_err("tracing is off");
            assert_eq!(e.kind, "Trace");
            assert_eq!(p.trace(who, &[], true), Ok(true));
        }
    }

    #[test]
    fn a_new_gpu_process_is_held_to_its_own_start_and_keeps_what_was_produced() {
        let t = Instant::now();
        let mut p = Policing::default();
        assert_eq!(p.newest_produced(V), None);
        p.gpu_started(t);
        p.view_epoch(V, 1, 0);
        for f in 0..5 {
            p.produced(V, f, 100).expect("in order");
        }
        p.presented(V, 3, 1).expect("produced");
        // The GPU process dies; its replacement resumes after the last frame presented.
        p.gpu_started(t);
        p.view_epoch(V, 2, 4);
        assert_eq!(
            p.newest_produced(V),
            Some(4),
            "frame 4 may still be presented"
        );
        assert!(p.produced(V, 3, 100).is_err(), "below where epoch 2 starts");
        p.produced(V, 4, 100).expect("where it starts");
        p.presented(V, 4, 1).expect("the old epoch's frame 4, late");
        p.presented(V, 4, 2)
            .expect("the new epoch may show frame 4 again");
        assert!(p.presented(V, 4, 2).is_err(), "but only once");
        p.produced(V, 5, 100).expect("next");
        assert!(p.presented(V, 5, 1).is_err(), "epochs never go back");
        p.presented(V, 5, 2).expect("the new epoch's");
        assert!(p.presented(V, 6, 2).is_err(), "never produced");
        assert!(p.presented(V, 5, 3).is_err(), "an epoch never started");
    }

    #[test]
    fn each_views_frames_and_renderer_budget_are_its_own() {
        let t = Instant::now();
        let mut p = Policing::default();
        let (a, b) = (ViewId(1), ViewId(2));
        p.gpu_started(t);
        p.view_epoch(a, 1, 0);
        p.view_epoch(b, 1, 10);
        p.renderer_started(a, t);
        p.renderer_started(b, t);
        p.produced(a, 0, 100).expect("a's first");
        assert!(p.produced(b, 0, 100).is_err(), "b starts at 10");
        p.produced(b, 10, 100).expect("b's first");
        assert!(p.presented(a, 10, 1).is_err(), "a never produced 10");
        flood(&mut p, Who::Renderer(a), t);
        p.message(Who::Renderer(b), "Pong", t)
            .expect("one renderer's flood spends nothing of another's");
    }
}
