//! The Chrome trace-event JSON file: writing the merged trace, reading it back.
//!
//! # What this module owns
//!
//! The on-disk form of a triptych trace, in the JSON Object Format of the
//! [Trace Event Format](https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU)
//! that both [Perfetto UI](https://ui.perfetto.dev) and `chrome://tracing`
//! open. The launcher is its only writer ([`write_chrome_json`]); tests and
//! tools read it back with [`parse_chrome_json`].
//!
//! # Shape
//!
//! ```json
//! {
//!   "displayTimeUnit": "ms",
//!   "otherData": {"clock": "CLOCK_MONOTONIC", "clock_origin_ns": 81234567890123,
//!                 "producer": "triptych-trace"},
//!   "traceEvents": [
//!     {"name": "process_name", "ph": "M", "pid": 100, "tid": 0, "args": {"name": "gpu"}},
//!     {"name": "process_sort_index", "ph": "M", "pid": 100, "tid": 0, "args": {"sort_index": 1}},
//!     {"name": "thread_name", "ph": "M", "pid": 100, "tid": 101, "args": {"name": "main"}},
//!     {"name": "gpu_render", "cat": "handoff", "ph": "X", "ts": 0.0, "dur": 1520.25,
//!      "pid": 100, "tid": 101, "args": {"frame": 7, "layers": 3}},
//!     {"name": "fence_timeout", "cat": "marker", "ph": "i", "ts": 9000.5, "pid": 200,
//!      "tid": 201, "s": "p", "args": {"frame": 7}},
//!     {"name": "buffers_in_flight", "cat": "counter", "ph": "C", "ts": 12.0,
//!      "pid": 100, "tid": 101, "args": {"value": 2.0}},
//!     {"name": "frame", "cat": "frame", "ph": "s", "ts": 0.0, "pid": 100, "tid": 101, "id": 7},
//!     {"name": "frame", "cat": "frame", "ph": "t", "ts": 1530.0, "pid": 100, "tid": 101, "id": 7},
//!     {"name": "frame", "cat": "frame", "ph": "f", "bp": "e", "ts": 8000.0, "pid": 300,
//!      "tid": 301, "id": 7}
//!   ]
//! }
//! ```
//!
//! Facts of the format this relies on:
//!
//! * `ts` and `dur` are microseconds, as JSON numbers that may have fractions.
//!   Timestamps are written relative to `otherData.clock_origin_ns` (the
//!   earliest event), so three decimals hold every nanosecond exactly for
//!   traces shorter than 2^51 ns (26 days); absolute `CLOCK_MONOTONIC` values
//!   would lose nanoseconds past 104 days of uptime, where they exceed 2^53.
//!   Perfetto reads `displayTimeUnit: "ns"` as "timestamps are nanoseconds",
//!   so the file says `"ms"`, which keeps microseconds for both viewers.
//! * `ph: "X"` is a complete event (start and length), `"i"` an instant whose
//!   `s` is `t`, `p` or `g`, `"C"` a counter whose every numeric argument is a
//!   series (hence only `value`, and no frame id, in a counter's `args`), and
//!   `"M"` metadata: `process_name`, `process_sort_index`, `thread_name`.
//! * Flow events (`"s"` start, `"t"` step, `"f"` finish) with one `id`, `cat`
//!   and `name` form one arrow chain. `s` and `t` bind to the slice that
//!   encloses their `ts` on their own thread (same `pid` and `tid`); `f` binds
//!   to the *next* slice unless `bp: "e"` asks for the enclosing one. Each flow
//!   event is therefore placed at the start of its span, on the span's thread,
//!   and written after it: Perfetto orders events of equal `ts` so that slices
//!   open before flow events bind, and catapult finds the enclosing slice
//!   with an inclusive start.
//! * The chain of one frame visits its spans in causal order (stage order,
//!   then start time), one flow id per frame: the frame number, with the view
//!   above bit 48 for views other than the first ([`flow_id`]).
//! * One track per view: in a run of several views, every event of a view
//!   other than the first (its [`VIEW_ARG`](crate::VIEW_ARG)) is written on
//!   that view's track in its process, a `tid` of [`VIEW_TRACK_BASE`] plus the
//!   view, named `view N`, which no thread has (Linux thread ids stay below
//!   2^22); the thread that recorded it is kept in its `tid` argument, and the
//!   reader puts it back.
//! * Perfetto's reader stops at the first top-level key it does not know and
//!   reads `displayTimeUnit` only near the start of the file, so those keys
//!   come first and `otherData` (which it skips) holds the clock origin.

mod read;
mod write;

/// The `tid` of view 1's track; view N's is this plus N.
pub const VIEW_TRACK_BASE: u32 = 0x4000_0000;

/// The argument that keeps, on a view's track, the thread that recorded an
/// event.
pub(crate) const THREAD_ARG: &str = "tid";

/// The flow id of frame `frame` of view `view`: the frame number for the first
/// view, the view above bit 48 for the others (no run reaches 2^48 frames).
pub fn flow_id(view: u32, frame: u64) -> u64 {
    match view {
        0 => frame,
        v => (u64::from(v) << 48) | (frame & ((1 << 48) - 1)),
    }
}

pub use read::{parse_chrome_json, FlowPhase, FlowRecord, ParsedTrace};
pub use write::{write_chrome_json, ProcessInfo};

/// `cat` of span events.
const SPAN_CAT: &str = "handoff";
/// `cat` of instant events.
const INSTANT_CAT: &str = "marker";
/// `cat` of counter events.
const COUNTER_CAT: &str = "counter";
/// `cat` and `name` of every flow event; with the frame id they name the chain.
const FLOW_CAT: &str = "frame";
/// See [`FLOW_CAT`].
const FLOW_NAME: &str = "frame";
/// The clock `otherData.clock` names.
const CLOCK_NAME: &str = "CLOCK_MONOTONIC";
/// `args` key of a counter's single series.
const COUNTER_VALUE_ARG: &str = "value";

/// Nanoseconds after the origin, as the microseconds written to `ts`/`dur`.
fn ns_to_us(ns: u64) -> f64 {
    // Exact conversion to f64 below 2^53 ns; one rounding in the division.
    ns as f64 / 1000.0
}

/// Microseconds read from `ts`/`dur`, back to whole nanoseconds. `None` for
/// negative, non-finite or out-of-range values.
fn us_to_ns(us: f64) -> Option<u64> {
    let ns = (us * 1000.0).round();
    // 2^63 is exactly representable; anything at or past it is refused, and
    // NaN is in no range.
    if (0.0..9_223_372_036_854_775_808.0).contains(&ns) {
        // In range and integral after round(), so the cast is exact.
        Some(ns as u64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsecond_floats_keep_every_nanosecond_below_2_pow_51() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let limit = 1u64 << 51;
        let mut samples = vec![0, 1, 999, 1000, 1001, limit - 1, limit - 1000, 123_456_789];
        for _ in 0..100_000 {
            // xorshift64: a spread of values across the whole range.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            samples.push(state % limit);
        }
        for ns in samples {
            let us = ns_to_us(ns);
            // Through the JSON text, as the writer and reader do.
            let text = serde_json::to_string(&us).expect("finite float");
            let back: f64 = serde_json::from_str(&text).expect("own output");
            assert_eq!(us_to_ns(back), Some(ns), "{ns} ns written as {text}");
        }
    }

    #[test]
    fn bad_microsecond_values_are_refused() {
        assert_eq!(us_to_ns(-0.001), None);
        assert_eq!(us_to_ns(f64::NAN), None);
        assert_eq!(us_to_ns(f64::INFINITY), None);
        assert_eq!(us_to_ns(1e17), None);
        assert_eq!(us_to_ns(-0.0001), Some(0));
    }
}
