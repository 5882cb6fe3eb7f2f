//! The results: one [`Item`] per figure and its baseline, printed as a table or as JSON.
//!
//! Every ratio is computed here, once, from the two figures stored next to it
//! (`ratio_p50 = value_p50_ns / baseline_p50_ns`), so the JSON can be checked by recomputing it;
//! `met` says whether `ratio_p50` is within `goal` (a speed goal is reported, never asserted).
//! Where the project's goal is a time rather than a ratio (item 6c: a GPU process recovery's p99
//! with the standby), it is `goal_p99_ns`, and `met_p99` says whether `value_p99_ns` is within
//! it. An item that could not be measured keeps its place with null figures and a `reason`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::cores::Cores;
use super::stats::{Figure, Plan};

/// One figure against its baseline.
#[derive(Clone, Debug, Serialize)]
pub struct Item {
    /// The item's number in the benchmark list ("1", "1b", "5a", ...).
    pub item: String,
    /// A stable name for tools.
    pub name: String,
    /// What is measured (the value).
    pub value_name: String,
    /// What it is measured against (the baseline).
    pub baseline_name: String,
    /// What one sample is.
    pub unit: String,
    /// Value, nearest-rank median, ns.
    pub value_p50_ns: Option<f64>,
    /// Value, 99th percentile, ns.
    pub value_p99_ns: Option<f64>,
    /// Value, largest, ns.
    pub value_max_ns: Option<f64>,
    /// Baseline, median, ns.
    pub baseline_p50_ns: Option<f64>,
    /// Baseline, 99th percentile, ns (null where the baseline is one number, e.g. 1/fps).
    pub baseline_p99_ns: Option<f64>,
    /// `value_p50_ns / baseline_p50_ns`.
    pub ratio_p50: Option<f64>,
    /// `value_p99_ns / baseline_p99_ns`, where both exist.
    pub ratio_p99: Option<f64>,
    /// The goal: `ratio_p50` at most this; null where the project sets none.
    pub goal: Option<f64>,
    /// Whether `ratio_p50 <= goal`; null without a goal or without figures.
    pub met: Option<bool>,
    /// A goal on the value itself: `value_p99_ns` at most this; null where the project sets none.
    pub goal_p99_ns: Option<f64>,
    /// Whether `value_p99_ns <= goal_p99_ns`; null without that goal or without figures.
    pub met_p99: Option<bool>,
    /// Untimed iterations before the value's and the baseline's samples.
    pub warmup: u64,
    /// Samples behind the value.
    pub iterations: u64,
    /// Samples behind the baseline.
    pub baseline_iterations: u64,
    /// CPUs the figures were measured on; empty where the processes were not pinned.
    pub cores: Vec<usize>,
    /// Where it ran, in words.
    pub cores_note: String,
    /// Anything else the item reports (fps, layers, byte counts).
    pub extra: BTreeMap<String, Value>,
    /// Why the figures are null, when they are.
    pub reason: Option<String>,
}

/// Names and context of an item.
#[derive(Clone, Debug)]
pub struct Label<'a> {
    /// Item number.
    pub item: &'a str,
    /// Stable name.
    pub name: &'a str,
    /// The value.
    pub value: String,
    /// The baseline.
    pub baseline: String,
    /// One sample.
    pub unit: &'a str,
}

impl Item {
    fn blank(l: &Label<'_>) -> Item {
        Item {
            item: l.item.to_owned(),
            name: l.name.to_owned(),
            value_name: l.value.clone(),
            baseline_name: l.baseline.clone(),
            unit: l.unit.to_owned(),
            value_p50_ns: None,
            value_p99_ns: None,
            value_max_ns: None,
            baseline_p50_ns: None,
            baseline_p99_ns: None,
            ratio_p50: None,
            ratio_p99: None,
            goal: None,
            met: None,
            goal_p99_ns: None,
            met_p99: None,
            warmup: 0,
            iterations: 0,
            baseline_iterations: 0,
            cores: Vec::new(),
            cores_note: String::new(),
            extra: BTreeMap::new(),
            reason: None,
        }
    }

    /// An item from two measured figures.
    pub fn measured(
        l: &Label<'_>,
        value: Figure,
        baseline: Figure,
        goal: Option<f64>,
        plan: Plan,
        cores: &[usize],
        cores_note: &str,
    ) -> Item {
        let mut it = Item::blank(l);
        it.value_p50_ns = Some(value.p50_ns);
        it.value_p99_ns = Some(value.p99_ns);
        it.value_max_ns = Some(value.max_ns);
        it.baseline_p50_ns = Some(baseline.p50_ns);
        it.baseline_p99_ns = Some(baseline.p99_ns);
        it.iterations = value.iterations;
        it.baseline_iterations = baseline.iterations;
        it.warmup = plan.warmup;
        it.goal = goal;
        it.cores = cores.to_vec();
        it.cores_note = cores_note.to_owned();
        it.compute();
        it
    }

    /// An item from figures read elsewhere (a run summary).
    #[allow(clippy::too_many_arguments)] // reason: each figure is one argument, named at the call
    pub fn reported(
        l: &Label<'_>,
        value_p50_ns: f64,
        value_p99_ns: f64,
        iterations: u64,
        baseline_ns: f64,
        baseline_iterations: u64,
        cores_note: &str,
        extra: BTreeMap<String, Value>,
    ) -> Item {
        let mut it = Item::blank(l);
        it.value_p50_ns = Some(value_p50_ns);
        it.value_p99_ns = Some(value_p99_ns);
        it.baseline_p50_ns = Some(baseline_ns);
        it.iterations = iterations;
        it.baseline_iterations = baseline_iterations;
        it.cores_note = cores_note.to_owned();
        it.extra = extra;
        it.compute();
        it
    }

    /// An item that has no figures, and why.
    pub fn missing(l: &Label<'_>, goal: Option<f64>, reason: String) -> Item {
        let mut it = Item::blank(l);
        it.goal = goal;
        it.reason = Some(reason);
        it
    }

    /// Sets the goal `ratio_p50` is held to, and whether it is met.
    pub fn with_goal(mut self, goal: f64) -> Item {
        self.goal = Some(goal);
        self.compute();
        self
    }

    /// Sets the goal `value_p99_ns` is held to, and whether it is met.
    pub fn with_goal_p99(mut self, ns: f64) -> Item {
        self.goal_p99_ns = Some(ns);
        self.compute();
        self
    }

    /// Adds a fact to `extra`.
    pub fn with(mut self, key: &str, v: impl Into<Value>) -> Item {
        self.extra.insert(key.to_owned(), v.into());
        self
    }

    fn compute(&mut self) {
        let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        self.ratio_p50 = div(self.value_p50_ns, self.baseline_p50_ns);
        self.ratio_p99 = div(self.value_p99_ns, self.baseline_p99_ns);
        self.met = match (self.ratio_p50, self.goal) {
            (Some(r), Some(g)) => Some(r <= g),
            _ => None,
        };
        self.met_p99 = match (self.value_p99_ns, self.goal_p99_ns) {
            (Some(v), Some(g)) => Some(v <= g),
            _ => None,
        };
    }
}

/// The machine, in facts read at run time.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// `uname -r`.
    pub kernel: String,
    /// The first `model name` of `/proc/cpuinfo`.
    pub cpu_model: String,
    /// One-minute load average when the bench started.
    pub loadavg_start: Option<f64>,
    /// One-minute load average when it ended.
    pub loadavg_end: Option<f64>,
}

impl Machine {
    /// Reads kernel, CPU model and load.
    pub fn read() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Machine {
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_else(|_| "unknown".to_owned()),
            cpu_model,
            loadavg_start: loadavg(),
            loadavg_end: None,
        }
    }
}

/// The one-minute load average.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Byte counts of the messages the figures move.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct MessageBytes {
    /// A 3-layer `LauncherToRenderer::Frame` on the wire (one postcard datagram).
    pub frame: usize,
    /// A `RendererToLauncher::Release` on the wire.
    pub release: usize,
    /// One 1920x1080 RGBA frame.
    pub pixels: usize,
}

/// Everything `triptych-bench` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Schema version of this JSON.
    pub version: u32,
    /// `"release"` or `"debug"`: debug figures are not representative.
    pub build: &'static str,
    /// Whether `--quick` shortened the run.
    pub quick: bool,
    /// Wall time of the whole bench, seconds.
    pub seconds: f64,
    /// The machine.
    pub machine: Machine,
    /// The CPUs used.
    pub cores: Cores,
    /// Message sizes.
    pub message_bytes: MessageBytes,
    /// Every figure.
    pub items: Vec<Item>,
    /// Measurements that failed (their items carry the reason); non-empty means exit 1.
    pub failures: Vec<String>,
}

/// A duration for people.
fn dur(ns: Option<f64>) -> String {
    match ns {
        None => "-".to_owned(),
        Some(ns) if ns < 1e3 => format!("{ns:.0} ns"),
        Some(ns) if ns < 1e6 => format!("{:.2} us", ns / 1e3),
        Some(ns) if ns < 1e9 => format!("{:.2} ms", ns / 1e6),
        Some(ns) => format!("{:.2} s", ns / 1e9),
    }
}

/// A ratio for people.
fn ratio(r: Option<f64>) -> String {
    match r {
        None => "-".to_owned(),
        Some(r) if r >= 0.1 => format!("{r:.2}x"),
        Some(r) if r >= 1e-3 => format!("{r:.4}x"),
        Some(r) => format!("{r:.1e}x"),
    }
}

impl Report {
    /// The table for a terminal.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let n = self.items.iter().map(|i| i.iterations).max().unwrap_or(0);
        let _ = writeln!(
            s,
            "triptych-bench: {} build{}, up to {n} timed iterations per figure after warm-up, {:.0} s",
            self.build,
            if self.quick { ", --quick" } else { "" },
            self.seconds
        );
        let _ = writeln!(
            s,
            "machine: {}, Linux {}, CPUs allowed {:?}; load average {} at start, {} at end",
            self.machine.cpu_model,
            self.machine.kernel,
            self.cores.allowed,
            self.machine
                .loadavg_start
                .map_or("?".to_owned(), |l| format!("{l:.2}")),
            self.machine
                .loadavg_end
                .map_or("?".to_owned(), |l| format!("{l:.2}")),
        );
        let _ = writeln!(s, "cores: {}", self.cores.describe());
        let _ = writeln!(
            s,
            "bytes: frame description {} B, release {} B (one postcard datagram), pixels {} B",
            self.message_bytes.frame, self.message_bytes.release, self.message_bytes.pixels
        );
        if self.build == "debug" {
            let _ = writeln!(
                s,
                "note: debug build; build with --release for real figures"
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<5} {:<60} {:>10} {:>10} {:>9}  {:<10} {:<4}",
            "item", "figure (value, then baseline)", "p50", "p99", "ratio p50", "goal", "met"
        );
        for it in &self.items {
            let _ = writeln!(
                s,
                "{:<5} {:<60} {:>10} {:>10}",
                it.item,
                it.value_name,
                dur(it.value_p50_ns),
                dur(it.value_p99_ns)
            );
            // A goal on the ratio, or on the value's p99 itself.
            let (goal, met) = match (it.goal, it.goal_p99_ns) {
                (Some(g), _) => (format!("<= {}", ratio(Some(g))), it.met),
                (None, Some(ns)) => (format!("p99 <= {}", dur(Some(ns))), it.met_p99),
                (None, None) => ("-".to_owned(), None),
            };
            let met = match met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            let _ = writeln!(
                s,
                "{:<5} {:<60} {:>10} {:>10} {:>9}  {:<10} {:<4}",
                "",
                format!("vs {}", it.baseline_name),
                dur(it.baseline_p50_ns),
                dur(it.baseline_p99_ns),
                ratio(it.ratio_p50),
                goal,
                met
            );
            if let Some(r) = &it.reason {
                let _ = writeln!(s, "{:<5} not measured: {r}", "");
            }
        }
        for f in &self.failures {
            let _ = writeln!(s, "FAILED: {f}");
        }
        // Padding of the last columns leaves trailing blanks; drop them.
        s.lines().map(|l| l.trim_end().to_owned() + "\n").collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label() -> Label<'static> {
        Label {
            item: "1",
            name: "x",
            value: "v".into(),
            baseline: "b".into(),
            unit: "ns",
        }
    }

    #[test]
    fn ratio_and_met_come_from_the_stored_figures() {
        let f = |p50, p99| Figure {
            p50_ns: p50,
            p99_ns: p99,
            max_ns: p99,
            iterations: 10,
        };
        let plan = Plan {
            warmup: 1,
            iterations: 10,
            rounds: 1,
        };
        let it = Item::measured(
            &label(),
            f(110.0, 300.0),
            f(100.0, 200.0),
            Some(1.1),
            plan,
            &[0, 1],
            "",
        );
        assert_eq!(it.ratio_p50, Some(110.0 / 100.0));
        assert_eq!(it.ratio_p99, Some(1.5));
        assert_eq!(it.met, Some(110.0 / 100.0 <= 1.1));
        let it = Item::measured(
            &label(),
            f(120.0, 300.0),
            f(100.0, 200.0),
            Some(1.1),
            plan,
            &[0],
            "",
        );
        assert_eq!(it.met, Some(false));
        let it = Item::missing(&label(), Some(2.0), "later".into());
        assert_eq!((it.ratio_p50, it.met), (None, None));
        // A goal on the value's p99 is held apart from the ratio's.
        let it = Item::measured(&label(), f(20.0, 30.0), f(40.0, 80.0), None, plan, &[], "")
            .with_goal_p99(33.0);
        assert_eq!((it.met, it.met_p99), (None, Some(true)));
        assert_eq!(it.ratio_p99, Some(30.0 / 80.0));
        let it = Item::measured(&label(), f(20.0, 34.0), f(40.0, 80.0), None, plan, &[], "")
            .with_goal_p99(33.0);
        assert_eq!(it.met_p99, Some(false));
        assert_eq!(
            Item::missing(&label(), None, "later".into())
                .with_goal_p99(33.0)
                .met_p99,
            None
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(dur(Some(812.0)), "812 ns");
        assert_eq!(dur(Some(14_210.0)), "14.21 us");
        assert_eq!(dur(Some(3_410_000.0)), "3.41 ms");
        assert_eq!(dur(None), "-");
        assert_eq!(ratio(Some(0.00412)), "0.0041x");
        assert_eq!(ratio(Some(1.174)), "1.17x");
    }
}
