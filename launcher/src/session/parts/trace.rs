//! The run's trace: the launcher's own events ([`Recorder`]), the events the children send,
//! kept within a memory budget per role ([`triptych_trace::Ring`]), and the processes the trace
//! names.
//!
//! A child's batch reaches this part only once the child's budget allowed it
//! ([`super::Policing::trace`]): what a child sends grows the launcher by no more than
//! [`triptych_trace::ring::DEFAULT_BUDGET`] bytes however long the run. At the end
//! ([`Tracing::take`]) the three sources are merged in time order, with what each ring dropped
//! recorded as counters on the launcher's track, and each process named once.

use ipc_protocol::messages::ViewId;
use ipc_protocol::Role;
use triptych_trace::{
    ArgValue, Args, Event, EventKind, InstantScope, Marker, ProcessInfo, Recorder, Ring,
};

/// The launcher's trace and what the children sent.
#[derive(Debug)]
pub struct Tracing {
    rec: Recorder,
    /// The GPU processes' events, the latest within the budget.
    gpu: Ring,
    /// The renderers' events, the latest within the budget.
    renderer: Ring,
    /// The processes the trace names, in the order they started.
    processes: Vec<ProcessInfo>,
    /// When the run's trace began: no child's event is earlier.
    started_ns: u64,
}

impl Tracing {
    /// A run's trace, recorded by `rec` (disabled when no trace is asked for), naming the
    /// launcher itself.
    pub fn new(rec: Recorder) -> Tracing {
        Tracing::with_budget(rec, triptych_trace::ring::DEFAULT_BUDGET)
    }

    /// [`Tracing::new`], keeping at most `budget` bytes of each role's events.
    fn with_budget(rec: Recorder, budget: usize) -> Tracing {
        Tracing {
            rec,
            gpu: Ring::new(budget),
            renderer: Ring::new(budget),
            processes: vec![ProcessInfo {
                pid: std::process::id(),
                name: "launcher".into(),
                threads: vec![],
            }],
            started_ns: triptych_trace::now_ns(),
        }
    }

    /// The launcher's own recorder.
    pub fn rec(&self) -> &Recorder {
        &self.rec
    }

    /// Marks `marker` on every track now, for `frame`, with `args`.
    pub fn instant(&self, marker: Marker, frame: Option<u64>, args: &[(&str, String)]) {
        let mut a = Args::new();
        for (k, v) in args {
            a.insert((*k).to_owned(), v.clone().into());
        }
        self.rec.instant(marker, InstantScope::Global, frame, a);
    }

    /// Process `pid` started, to be named `name` in the trace.
    pub fn started(&mut self, pid: u32, name: String) {
        self.processes.push(ProcessInfo {
            pid,
            name,
            threads: vec![],
        });
    }

    /// Keeps a batch `role`'s process `pid` sent (its budget allowed it), the renderer of
    /// `view` for a renderer's, made into what the trace file can hold and what the launcher
    /// knows ([`launder`]).
    pub fn keep(&mut self, role: Role, pid: u32, view: Option<ViewId>, mut events: Vec<Event>) {
        let span = (self.started_ns, triptych_trace::now_ns());
        for e in &mut events {
            launder(e, pid, view, span);
        }
        self.ring(role).extend(events);
    }

    /// `role`'s events dropped to stay within the budget.
    pub fn dropped(&self, role: Role) -> u64 {
        match role {
            Role::Gpu => self.gpu.dropped(),
            Role::Renderer => self.renderer.dropped(),
        }
    }

    fn ring(&mut self, role: Role) -> &mut Ring {
        match role {
            Role::Gpu => &mut self.gpu,
            Role::Renderer => &mut self.renderer,
        }
    }

    /// Every event kept, in time order, with the drops recorded on the launcher's track; and
    /// the processes, each pid once (the first name it was given), by pid.
    pub fn take(&mut self) -> (Vec<Event>, Vec<ProcessInfo>) {
        self.rec.counter(
            "trace.gpu_events_dropped_by_launcher",
            self.gpu.dropped() as f64,
        );
        self.rec.counter(
            "trace.renderer_events_dropped_by_launcher",
            self.renderer.dropped() as f64,
        );
        let mut events = self.gpu.take();
        events.extend(self.renderer.take());
        events.extend(self.rec.drain());
        events.sort_by_key(|e| e.ts_ns);
        let mut procs = std::mem::take(&mut self.processes);
        procs.sort_by_key(|p| p.pid);
        procs.dedup_by_key(|p| p.pid);
        (events, procs)
    }
}

/// A child's event as the trace file can hold it and as the launcher knows its sender, whatever
/// the child put in it: it lies within `(start, now)`, the run's trace so far (a time or a
/// length far out would make the file unreadable); its frame number is one a run can reach
/// (below 2^48, where the views' flow ids begin); its process is `pid`; a thread number in the views' tracks is the
/// process's main thread; a counter has no frame or arguments and a finite value; no argument
/// takes a key the file reserves (the frame id, a view's track's thread) or a float JSON cannot
/// hold; and its view is the renderer's, `view`, for a renderer's event, or a view number that
/// can be (below [`triptych_sys::fd::ExportWindow::MAX_VIEWS`]) for a GPU process's. Without
/// this a child could make the whole trace unwritable, or draw its events on another process's
/// or another view's track.
fn launder(e: &mut Event, pid: u32, view: Option<ViewId>, (start, now): (u64, u64)) {
    e.pid = pid;
    e.ts_ns = e.ts_ns.clamp(start, now.max(start));
    if let EventKind::Span { dur_ns, .. } = &mut e.kind {
        *dur_ns = (*dur_ns).min(now.saturating_sub(e.ts_ns));
    }
    e.frame = e.frame.filter(|f| *f < 1 << 48);
    if e.tid >= triptych_trace::VIEW_TRACK_BASE {
        e.tid = pid;
    }
    if let EventKind::Counter { value, .. } = &mut e.kind {
        if !value.is_finite() {
            *value = 0.0;
        }
        e.frame = None;
        e.args.clear();
        return;
    }
    e.args.remove(triptych_trace::FRAME_ARG);
    e.args.remove("tid");
    e.args
        .retain(|_, v| !matches!(v, ArgValue::Float(f) if !f.is_finite()));
    let claimed = e.args.remove(triptych_trace::VIEW_ARG);
    let view = match view {
        Some(v) => v.0,
        None => match claimed {
            Some(ArgValue::Int(v)) => u32::try_from(v)
                .ok()
                .filter(|v| *v < triptych_sys::fd::ExportWindow::MAX_VIEWS)
                .unwrap_or(0),
            _ => 0,
        },
    };
    if view != 0 {
        e.args
            .insert(triptych_trace::VIEW_ARG.into(), i64::from(view).into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use triptych_trace::EventKind;

    fn event(pid: u32, ts_ns: u64, arg: &str) -> Event {
        let mut args = Args::new();
        args.insert("a".into(), arg.to_owned().into());
        Event {
            kind: EventKind::Instant {
                marker: Marker::Crash,
                scope: InstantScope::Global,
            },
            ts_ns,
            pid,
            tid: pid,
            frame: None,
            args,
        }
    }

    fn counter(events: &[Event], name: &str) -> Option<f64> {
        events.iter().find_map(|e| match &e.kind {
            EventKind::Counter { name: n, value } if n == name => Some(*value),
            _ => None,
        })
    }

    #[test]
    fn the_children_and_the_launcher_merge_in_time_order() {
        let mut t = Tracing::new(Recorder::new(1));
        t.instant(Marker::Restart, Some(3), &[("role", "gpu".into())]);
        let now = triptych_trace::now_ns();
        t.keep(
            Role::Renderer,
            30,
            Some(ViewId(0)),
            vec![event(30, now + 2_000, "r")],
        );
        t.keep(
            Role::Gpu,
            20,
            None,
            vec![event(20, now + 3_000, "g"), event(20, 5, "early")],
        );
        let (events, _) = t.take();
        let ts: Vec<u64> = events.iter().map(|e| e.ts_ns).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
        assert_eq!(events.first().map(|e| e.pid), Some(20), "the earliest");
        assert!(events.iter().any(|e| e.pid == 30));
        let restart = events
            .iter()
            .find(|e| {
                matches!(
                    e.kind,
                    EventKind::Instant {
                        marker: Marker::Restart,
                        ..
                    }
                )
            })
            .expect("the launcher's instant");
        assert_eq!(restart.frame, Some(3));
        assert_eq!(restart.args.get("role"), Some(&"gpu".to_owned().into()));
        // Taken once: a second take has only the new drop counters.
        let (again, _) = t.take();
        assert!(again
            .iter()
            .all(|e| matches!(e.kind, EventKind::Counter { .. })));
    }

    #[test]
    fn what_a_role_sends_past_its_budget_is_dropped_and_counted() {
        let mut t = Tracing::with_budget(Recorder::new(1), 4096);
        // Times within the trace, as a child's events are kept.
        let t0 = t.started_ns;
        // One event larger than the whole budget, then more than the budget holds.
        t.keep(Role::Gpu, 20, None, vec![event(20, t0, &"x".repeat(8192))]);
        assert_eq!(t.dropped(Role::Gpu), 1);
        t.keep(
            Role::Gpu,
            20,
            None,
            (0..100).map(|i| event(20, t0 + i, "y")).collect(),
        );
        let dropped = t.dropped(Role::Gpu);
        assert!(dropped > 1, "the oldest go: {dropped}");
        assert_eq!(
            t.dropped(Role::Renderer),
            0,
            "the other role's budget is its own"
        );
        let (events, _) = t.take();
        let kept = events.iter().filter(|e| e.pid == 20).count() as u64;
        assert_eq!(kept + dropped, 101);
        // The newest are the ones kept.
        assert!(events.iter().any(|e| e.pid == 20 && e.ts_ns == t0 + 99));
        assert_eq!(
            counter(&events, "trace.gpu_events_dropped_by_launcher"),
            Some(dropped as f64)
        );
        assert_eq!(
            counter(&events, "trace.renderer_events_dropped_by_launcher"),
            Some(0.0)
        );
    }

    #[test]
    fn every_process_is_named_once_by_its_first_name() {
        let mut t = Tracing::new(Recorder::disabled());
        // Pids above the kernel's largest (2^22), so none is the test's own.
        let (gpu, renderer) = (5_000_000, 4_500_000);
        t.started(gpu, "gpu (epoch 2)".into());
        t.started(renderer, "renderer".into());
        t.started(gpu, "gpu (epoch 3)".into());
        let (events, procs) = t.take();
        assert!(events.is_empty(), "a disabled recorder records nothing");
        let named: Vec<(u32, &str)> = procs.iter().map(|p| (p.pid, p.name.as_str())).collect();
        let me = std::process::id();
        assert_eq!(
            named,
            [
                (me, "launcher"),
                (renderer, "renderer"),
                (gpu, "gpu (epoch 2)")
            ]
        );
    }

    #[test]
    fn whatever_a_child_puts_in_its_events_the_trace_is_written_and_read_back() {
        let mut t = Tracing::new(Recorder::new(1));
        let now = triptych_trace::now_ns();
        let mut args = Args::new();
        args.insert(triptych_trace::FRAME_ARG.into(), 7.into());
        args.insert("tid".into(), 5.into());
        args.insert(triptych_trace::VIEW_ARG.into(), 9_999.into());
        args.insert("nan".into(), ArgValue::Float(f64::NAN));
        let span = Event {
            kind: EventKind::Span {
                stage: triptych_trace::Stage::Composite,
                dur_ns: u64::MAX,
            },
            ts_ns: u64::MAX,
            pid: 1,
            tid: u32::MAX,
            frame: Some(u64::MAX),
            args: args.clone(),
        };
        let counter = Event {
            kind: EventKind::Counter {
                name: triptych_trace::DROPPED_EVENTS_COUNTER.into(),
                value: 1e30,
            },
            ts_ns: 0,
            pid: 1,
            tid: 1,
            frame: Some(3),
            args,
        };
        t.started(20, "gpu".into());
        t.started(30, "renderer".into());
        t.keep(
            Role::Renderer,
            30,
            Some(ViewId(2)),
            vec![span.clone(), counter],
        );
        t.keep(Role::Gpu, 20, None, vec![span, event(20, now, "g")]);
        let (events, processes) = t.take();
        let mut file = Vec::new();
        triptych_trace::write_chrome_json(&events, &processes, &mut file).expect("written");
        let back = triptych_trace::parse_chrome_json(&file[..]).expect("read back");
        let _ = triptych_trace::summarize(&back).table();
        let of = |pid: u32| back.events.iter().filter(move |e| e.pid == pid);
        // (Counters carry no arguments: they are the process's, not a view's.)
        let framed = |e: &&Event| !matches!(e.kind, EventKind::Counter { .. });
        assert!(
            of(30).filter(framed).all(|e| e.view() == 2),
            "the renderer's events are its view's"
        );
        assert!(
            of(20).all(|e| e.view() == 0),
            "a view no process has is no view"
        );
        assert!(back
            .events
            .iter()
            .all(|e| e.frame.is_none_or(|f| f < 1 << 48) && e.end_ns() <= now + 60_000_000_000));
    }
}
