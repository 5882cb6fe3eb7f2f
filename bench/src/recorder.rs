//! Item 8b's value: what one call into a disabled trace recorder costs, timed in this process.
//!
//! Every process makes its [`Recorder`] once, disabled when `--trace` is off, and its hot path
//! keeps calling it: one `span` per stage per frame, dropped when the stage ends. A disabled
//! recorder answers each call with one branch. This times batches of [`BATCH`] such calls (a
//! span opened and dropped) and divides, because one call is below the clock's resolution; the
//! recorder is passed through [`std::hint::black_box`] on every call so the compiler cannot hoist
//! the branch out of the loop, as it cannot in the processes, where the recorder is a field
//! read through a reference.

use std::hint::black_box;

use triptych_trace::{Recorder, Stage};

use super::stats::{time_each, Figure, Plan};

/// Calls per timed iteration.
pub const BATCH: u64 = 10_000;

/// Nanoseconds per disabled `span` call (open and drop), from `plan.iterations` batches after
/// `plan.warmup` untimed ones.
pub fn disabled_span(plan: Plan) -> anyhow::Result<Figure> {
    let rec = Recorder::disabled();
    let batch = |_| {
        for frame in 0..BATCH {
            let span = black_box(&rec).span(Stage::Composite, Some(frame));
            drop(span);
        }
        Ok(())
    };
    time_each(plan.warmup, batch)?;
    Ok(Figure::of(time_each(plan.iterations, batch)?, BATCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_span_costs_well_under_a_microsecond() {
        let f = disabled_span(Plan {
            warmup: 1,
            iterations: 5,
            rounds: 1,
        })
        .expect("timing");
        assert_eq!(f.iterations, 5);
        // A branch, not a clock read and a lock; even an unoptimised build stays far below this.
        assert!(f.p50_ns < 1000.0, "{f:?}");
    }
}
