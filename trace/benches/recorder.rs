//! What a call into the recorder costs, on criterion: a span opened and dropped on a disabled
//! recorder (the cost every process pays on its hot path when `--trace` is off: one branch) and
//! on a recording one (a clock read at each end and a locked push). `triptych-bench`'s item 8b
//! multiplies the disabled figure by the events of a traced frame and holds it against a frame's
//! time; this bench is the recorder's own profile. The recorder is passed through
//! [`black_box`] on every call so the compiler cannot hoist the branch out of the loop, as it
//! cannot in the processes, where the recorder is a field read through a reference.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use triptych_trace::{Recorder, Stage, DEFAULT_CAPACITY};

fn spans(c: &mut Criterion) {
    let mut g = c.benchmark_group("recorder_span");
    let disabled = Recorder::disabled();
    g.bench_function("disabled", |b| {
        let mut frame = 0u64;
        b.iter(|| {
            frame += 1;
            drop(black_box(&disabled).span(Stage::Composite, Some(frame)))
        })
    });
    let recording = Recorder::with_capacity(1, DEFAULT_CAPACITY);
    g.bench_function("recording", |b| {
        b.iter_custom(|iters| {
            // Timed in runs that fit the buffer, drained untimed between them (as the processes
            // drain theirs every few frames), so no call takes the buffer-full path.
            let mut spent = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(DEFAULT_CAPACITY as u64);
                let t = Instant::now();
                for frame in 0..n {
                    drop(black_box(&recording).span(Stage::Composite, Some(frame)));
                }
                spent += t.elapsed();
                let drained = recording.drain();
                assert_eq!(drained.len() as u64, n, "every span recorded");
                left -= n;
            }
            spent
        })
    });
    g.finish();
}

criterion_group!(benches, spans);
criterion_main!(benches);
