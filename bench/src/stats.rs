//! From timed iterations to figures: the schedule that measures a value and its baseline side by
//! side, and the percentiles reported for each.
//!
//! Every figure is a set of per-iteration times taken with `CLOCK_MONOTONIC` ([`Instant`]) around
//! one iteration, reduced to nearest-rank percentiles with [`triptych_trace::percentile`], the one
//! definition the project uses everywhere (a reported p50 or p99 is always a time that was
//! measured). A value and its baseline are never measured one after the other in two long runs:
//! [`interleave`] warms both up, then alternates rounds of each, so drift on the machine (another
//! process waking, frequency changes) lands on both figures alike.

use std::time::Instant;

use serde::Serialize;

/// How many iterations a figure gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Untimed iterations first, for each side.
    pub warmup: u64,
    /// Timed iterations, for each side.
    pub iterations: u64,
    /// Rounds the timed iterations are split into, alternating value and baseline.
    pub rounds: u64,
}

/// Percentiles of one figure.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Figure {
    /// Nearest-rank median, nanoseconds.
    pub p50_ns: f64,
    /// Nearest-rank 99th percentile, nanoseconds.
    pub p99_ns: f64,
    /// Largest, nanoseconds.
    pub max_ns: f64,
    /// Timed iterations behind it.
    pub iterations: u64,
}

impl Figure {
    /// The percentiles of `samples_ns`, each divided by `per` (the number of operations one
    /// iteration performed, e.g. the fds moved in one round trip).
    pub fn of(mut samples_ns: Vec<u64>, per: u64) -> Figure {
        samples_ns.sort_unstable();
        let per = per.max(1) as f64;
        let at = |p: f64| triptych_trace::percentile(&samples_ns, p) as f64 / per;
        Figure {
            p50_ns: at(50.0),
            p99_ns: at(99.0),
            max_ns: at(100.0),
            iterations: samples_ns.len() as u64,
        }
    }
}

/// Times `n` iterations of `step`, one sample per iteration.
pub fn time_each(
    n: u64,
    mut step: impl FnMut(u64) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t0 = Instant::now();
        step(i)?;
        out.push(t0.elapsed().as_nanos() as u64);
    }
    Ok(out)
}

/// Runs `plan.warmup` untimed iterations of each side, then `plan.iterations` timed ones of
/// each, in `plan.rounds` alternating rounds (the side that goes first alternates too).
/// Each closure runs the number of iterations it is given (and is told whether they are the
/// warm-up) and returns one sample per iteration.
pub fn interleave(
    plan: Plan,
    mut value: impl FnMut(u64, bool) -> anyhow::Result<Vec<u64>>,
    mut baseline: impl FnMut(u64, bool) -> anyhow::Result<Vec<u64>>,
) -> anyhow::Result<(Vec<u64>, Vec<u64>)> {
    if plan.warmup > 0 {
        value(plan.warmup, true)?;
        baseline(plan.warmup, true)?;
    }
    let rounds = plan.rounds.clamp(1, plan.iterations.max(1));
    let mut v = Vec::with_capacity(plan.iterations as usize);
    let mut b = Vec::with_capacity(plan.iterations as usize);
    for r in 0..rounds {
        // Spread the remainder over the first rounds so the totals are exact.
        let n = plan.iterations / rounds + u64::from(r < plan.iterations % rounds);
        if r % 2 == 0 {
            v.extend(value(n, false)?);
            b.extend(baseline(n, false)?);
        } else {
            b.extend(baseline(n, false)?);
            v.extend(value(n, false)?);
        }
    }
    anyhow::ensure!(
        v.len() as u64 == plan.iterations && b.len() as u64 == plan.iterations,
        "a measurement returned {} and {} samples for {} iterations",
        v.len(),
        b.len(),
        plan.iterations
    );
    Ok((v, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_is_nearest_rank_and_divides_by_per() {
        let f = Figure::of((1..=100).rev().map(|v| v * 10).collect(), 2);
        assert_eq!(f.p50_ns, 250.0);
        assert_eq!(f.p99_ns, 495.0);
        assert_eq!(f.max_ns, 500.0);
        assert_eq!(f.iterations, 100);
    }

    #[test]
    fn interleave_alternates_and_counts_exactly() {
        let order = std::cell::RefCell::new(Vec::new());
        let plan = Plan {
            warmup: 3,
            iterations: 10,
            rounds: 4,
        };
        let (v, b) = interleave(
            plan,
            |n, _| {
                order.borrow_mut().push(('v', n));
                Ok(vec![1; n as usize])
            },
            |n, _| {
                order.borrow_mut().push(('b', n));
                Ok(vec![2; n as usize])
            },
        )
        .expect("interleave");
        assert_eq!((v.len(), b.len()), (10, 10));
        assert_eq!(
            *order.borrow(),
            [
                ('v', 3),
                ('b', 3),
                ('v', 3),
                ('b', 3),
                ('b', 3),
                ('v', 3),
                ('v', 2),
                ('b', 2),
                ('b', 2),
                ('v', 2)
            ]
        );
    }
}
