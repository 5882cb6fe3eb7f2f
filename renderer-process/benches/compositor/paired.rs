//! Paired timing on criterion: a value and its baseline timed one after the other in every
//! sample of the same run, so that drift on a noisy machine hits both alike, and the ratio
//! printed is the median of the per-sample ratios.
//!
//! Criterion times the value (its report is the value's); each of its samples times the same
//! number of baseline iterations next to it, the side that goes first alternating from one
//! sample to the next. Criterion has no notion of a baseline measured in the same run, hence
//! this module.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use criterion::Criterion;

/// Samples criterion takes of each value; the ratio is the median over the pairs of these
/// samples (criterion's warm-up calls the routine too, and those pairs are left out).
const SAMPLES: usize = 50;

/// Whether this run times anything: `cargo bench` passes `--bench`; without it (`cargo test
/// --bench`) criterion runs each routine once, untimed.
pub fn timed() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// One item: a value, its baseline, the goal its ratio is held to, and the samples' ratios.
pub struct Item {
    /// The item's number in the benchmarks' table (`docs/benchmarks.md`).
    pub item: &'static str,
    /// What the value times.
    pub value: String,
    /// What the baseline times.
    pub baseline: String,
    /// The goal: value / baseline at most this.
    pub goal: f64,
    /// Per-sample nanoseconds per iteration: (value, baseline).
    samples: Vec<(f64, f64)>,
}

impl Item {
    /// An item not measured yet.
    pub fn new(item: &'static str, value: String, baseline: String, goal: f64) -> Item {
        Item {
            item,
            value,
            baseline,
            goal,
            samples: Vec::new(),
        }
    }

    /// Times `value` under criterion as benchmark `group/name`, and `baseline` beside it in
    /// every sample.
    pub fn measure(
        &mut self,
        c: &mut Criterion,
        group: &str,
        name: &str,
        mut value: impl FnMut(),
        mut baseline: impl FnMut(),
    ) {
        let samples = RefCell::new(Vec::new());
        let mut first = false;
        let mut g = c.benchmark_group(group);
        g.sample_size(SAMPLES);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                first = !first;
                let time = |f: &mut dyn FnMut()| {
                    let t = Instant::now();
                    for _ in 0..iters {
                        f();
                    }
                    t.elapsed()
                };
                let (v, base) = if first {
                    let base = time(&mut baseline);
                    (time(&mut value), base)
                } else {
                    let v = time(&mut value);
                    (v, time(&mut baseline))
                };
                let per = |d: Duration| d.as_nanos() as f64 / iters.max(1) as f64;
                samples.borrow_mut().push((per(v), per(base)));
                v
            })
        });
        g.finish();
        // The measured samples are criterion's last calls; the warm-up's come before them.
        let mut all = samples.into_inner();
        let warm_up = all.len().saturating_sub(SAMPLES);
        self.samples = all.split_off(warm_up);
    }

    /// The median of the samples' ratios, and the medians of value and baseline (ns).
    fn medians(&self) -> Option<(f64, f64, f64)> {
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied()
        };
        let ratio = median(self.samples.iter().map(|(v, b)| v / b).collect())?;
        let value = median(self.samples.iter().map(|s| s.0).collect())?;
        let baseline = median(self.samples.iter().map(|s| s.1).collect())?;
        Some((ratio, value, baseline))
    }
}

/// Prints the items' table after criterion's report: value, baseline, the median ratio, the
/// goal and whether it is met.
pub fn report(items: &[Item]) {
    use std::fmt::Write as _;
    let mut t = String::new();
    if !timed() {
        let _ = writeln!(
            t,
            "\ncriterion's test mode: each routine ran once and its checks passed; nothing was \
             timed (cargo bench times them)"
        );
        use std::io::Write as _;
        let _ = std::io::stdout().lock().write_all(t.as_bytes());
        return;
    }
    let _ = writeln!(
        t,
        "\n{:<5} {:<58} {:>12} {:>9}  {:<9} met",
        "item", "value, then baseline (median per iteration)", "time", "ratio", "goal"
    );
    for it in items {
        let Some((ratio, value, baseline)) = it.medians() else {
            let _ = writeln!(t, "{:<5} {}: not measured", it.item, it.value);
            continue;
        };
        let _ = writeln!(t, "{:<5} {:<58} {:>12}", it.item, it.value, time(value));
        let _ = writeln!(
            t,
            "{:<5} vs {:<55} {:>12} {:>8.3}x  <= {:<6} {}",
            "",
            it.baseline,
            time(baseline),
            ratio,
            format!("{}x", it.goal),
            if ratio <= it.goal { "yes" } else { "no" }
        );
    }
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(t.as_bytes());
}

fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} us", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}
