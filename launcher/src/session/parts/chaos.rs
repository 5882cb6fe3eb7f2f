//! Chaos mode in the supervisor: which planned faults each new child is handed, which
//! external kills are due, and what was done ([`crate::chaos`] makes the plan).
//!
//! - A fault fires once: a child reports it (`FaultFired`), and it is never handed to a
//!   replacement, which resumes past it.
//! - External kills are made in plan order, once their frame is on screen, one at a time, and
//!   only into a process running normally (one that has presented and was hit by no fault), so
//!   that every kill is one crash. A process killed is not killed again before its crash is
//!   recorded; the crash record takes the kill's time, to measure its detection.

use ipc_protocol::messages::Fault;

use crate::chaos::{Plan, Target};

/// Chaos mode's plan and what it did.
#[derive(Debug)]
pub struct Chaos {
    plan: Plan,
    /// The faults fired, as the children reported them.
    fired: Vec<Fault>,
    /// The kills made and not yet recorded as crashes: (pid, nanoseconds).
    kill_times: Vec<(u32, u64)>,
}

impl Chaos {
    /// Chaos that carries out `plan`.
    pub fn new(plan: Plan) -> Chaos {
        Chaos {
            plan,
            fired: Vec::new(),
            kill_times: Vec::new(),
        }
    }

    /// The faults a GPU process starting now is handed: those planned and not fired yet.
    pub fn gpu_faults(&self) -> Vec<Fault> {
        self.unfired(&self.plan.gpu)
    }

    /// The faults a renderer starting now is handed.
    pub fn renderer_faults(&self) -> Vec<Fault> {
        self.unfired(&self.plan.renderer)
    }

    fn unfired(&self, faults: &[Fault]) -> Vec<Fault> {
        faults
            .iter()
            .filter(|f| !self.fired.contains(f))
            .copied()
            .collect()
    }

    /// A child reported `fault` fired. A fault fires once: a report repeated (a compromised
    /// child may repeat it at its whole message budget) is kept once, so what is kept is bounded
    /// by the plan.
    pub fn fired(&mut self, fault: Fault) {
        if !self.fired.contains(&fault) {
            self.fired.push(fault);
        }
    }

    /// Frame `frame` is on screen, at `now_ns`: the process to kill now, if the first kill due
    /// has one. `running(target)` is the pid of `target` when it runs normally. The kill is
    /// struck from the plan and its time kept; a kill whose target does not run normally waits,
    /// and so do the kills after it.
    pub fn kill_due(
        &mut self,
        frame: u64,
        now_ns: u64,
        running: impl Fn(Target) -> Option<u32>,
    ) -> Option<u32> {
        let i = self
            .plan
            .external
            .iter()
            .position(|k| k.after_frame <= frame)?;
        let pid = running(self.plan.external[i].target)
            .filter(|pid| !self.kill_times.iter().any(|(p, _)| p == pid))?;
        self.plan.external.remove(i);
        self.kill_times.push((pid, now_ns));
        Some(pid)
    }

    /// Process `pid`'s crash is being recorded: when it was killed, if chaos killed it.
    pub fn kill_time(&mut self, pid: u32) -> Option<u64> {
        let i = self.kill_times.iter().position(|(p, _)| *p == pid)?;
        Some(self.kill_times.remove(i).1)
    }

    /// The faults fired, each once, in frame order, described for the summary.
    pub fn fired_described(&self) -> Vec<String> {
        let mut fired = self.fired.clone();
        fired.sort_by_key(|f| (f.frame, format!("{:?}{:?}", f.point, f.action)));
        fired.dedup();
        fired.iter().map(crate::chaos::describe).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::ExternalKill;
    use ipc_protocol::messages::{FaultAction, FaultPoint};

    fn fault(frame: u64, point: FaultPoint) -> Fault {
        Fault {
            frame,
            point,
            action: FaultAction::Kill,
        }
    }

    fn kills(k: &[(u64, Target)]) -> Chaos {
        Chaos::new(Plan {
            external: k
                .iter()
                .map(|&(after_frame, target)| ExternalKill {
                    after_frame,
                    target,
                })
                .collect(),
            ..Plan::default()
        })
    }

    #[test]
    fn a_fired_fault_is_never_handed_to_a_replacement() {
        let a = fault(5, FaultPoint::GpuRender);
        let b = fault(9, FaultPoint::GpuAfterExport);
        let r = fault(7, FaultPoint::RendererComposite);
        let mut c = Chaos::new(Plan::default().with_faults(&[a, b, r]));
        assert_eq!(c.gpu_faults(), [a, b]);
        assert_eq!(c.renderer_faults(), [r]);
        c.fired(a);
        assert_eq!(c.gpu_faults(), [b], "the replacement resumes past it");
        assert_eq!(c.renderer_faults(), [r], "the other role's are untouched");
        c.fired(r);
        assert!(c.renderer_faults().is_empty());
    }

    #[test]
    fn a_fault_reported_over_and_over_is_kept_once() {
        let a = fault(5, FaultPoint::GpuRender);
        let mut c = Chaos::new(Plan::default().with_faults(&[a]));
        for _ in 0..10_000 {
            c.fired(a);
        }
        assert_eq!(c.fired.len(), 1, "bounded by the plan");
        assert_eq!(c.fired_described().len(), 1);
    }

    #[test]
    fn a_kill_waits_for_its_frame_and_is_made_once() {
        let mut c = kills(&[(10, Target::Gpu)]);
        let gpu = |t: Target| (t == Target::Gpu).then_some(42);
        assert_eq!(
            c.kill_due(9, 100, gpu),
            None,
            "its frame is not on screen yet"
        );
        assert_eq!(
            c.kill_due(12, 200, gpu),
            Some(42),
            "a frame past it will do"
        );
        assert_eq!(c.kill_due(13, 300, gpu), None, "struck from the plan");
        assert_eq!(c.kill_time(42), Some(200));
        assert_eq!(c.kill_time(42), None, "taken by one crash record");
        assert_eq!(c.kill_time(7), None, "a crash chaos did not cause");
    }

    #[test]
    fn a_process_killed_and_not_yet_recorded_is_not_killed_again() {
        let mut c = kills(&[(1, Target::Renderer), (2, Target::Renderer)]);
        let renderer = |_: Target| Some(7);
        assert_eq!(c.kill_due(2, 1, renderer), Some(7));
        // The second kill is due, but renderer 7 is dying already: it waits for the replacement.
        assert_eq!(c.kill_due(3, 2, renderer), None);
        assert_eq!(c.kill_time(7), Some(1));
        let replacement = |_: Target| Some(8);
        assert_eq!(c.kill_due(4, 3, replacement), Some(8));
    }

    #[test]
    fn a_kill_whose_target_is_not_running_normally_holds_up_the_plan() {
        let mut c = kills(&[(1, Target::Gpu), (1, Target::Renderer)]);
        // The GPU process was hit by a fault (or has not presented): no kill, not even the
        // renderer's, which comes after it in the plan.
        let only_renderer = |t: Target| (t == Target::Renderer).then_some(7);
        assert_eq!(c.kill_due(5, 1, only_renderer), None);
        let both = |t: Target| Some(if t == Target::Gpu { 6 } else { 7 });
        assert_eq!(c.kill_due(5, 2, both), Some(6), "in plan order");
        assert_eq!(c.kill_due(6, 3, both), Some(7));
        assert_eq!(c.kill_due(7, 4, both), None, "nothing left");
    }

    #[test]
    fn faults_fired_are_summed_up_once_each_in_frame_order() {
        let mut c = Chaos::new(Plan::default());
        let late = fault(20, FaultPoint::RendererFenceWait);
        let early = fault(3, FaultPoint::GpuRender);
        // A fault reported twice (before the child died, then drained after) counts once.
        c.fired(late);
        c.fired(early);
        c.fired(late);
        assert_eq!(
            c.fired_described(),
            [
                crate::chaos::describe(&early),
                crate::chaos::describe(&late)
            ]
        );
    }
}
