//! `triptych trace-summary FILE`: the numbers of a trace written by `triptych run --trace FILE`.
//!
//! Reads the Chrome trace-event file back with [`triptych_trace::parse_chrome_json`] (which
//! refuses a malformed file with an error naming the entry and field), summarizes it with
//! [`triptych_trace::summarize`] and prints the per-stage table (count, p50, p99, max), the
//! end-to-end handoff latency (start of a frame's `gpu_render` to the end of its `present`) and
//! the first problems [`triptych_trace::check_flows`] finds in the frames' causal chains.

use std::io::Write;

use anyhow::Context;

/// How many flow problems are listed before the rest are only counted.
const SHOWN_PROBLEMS: usize = 5;

/// Reads, summarizes and prints the trace named in `args`.
pub fn run(path: &std::path::Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening the trace file {}", path.display()))?;
    let trace = triptych_trace::parse_chrome_json(std::io::BufReader::new(file))
        .with_context(|| format!("{} is not a readable triptych trace", path.display()))?;
    let summary = triptych_trace::summarize(&trace);
    let problems = triptych_trace::check_flows(&trace);

    let mut s = format!(
        "trace {}: {} events from {} processes\n",
        path.display(),
        trace.events.len(),
        trace.processes.len()
    );
    s += &summary.table();
    let e = &summary.end_to_end;
    s += &format!(
        "end-to-end handoff latency (gpu_render start to present end): p50 {:.3} us, p99 {:.3} us, max {:.3} us over {} frames\n",
        e.p50_us, e.p99_us, e.max_us, e.count
    );
    if problems.is_empty() {
        s += "flow problems: none\n";
    } else {
        s += &format!("flow problems: {}\n", problems.len());
        for p in problems.iter().take(SHOWN_PROBLEMS) {
            s += &format!("  {p}\n");
        }
        if problems.len() > SHOWN_PROBLEMS {
            s += &format!("  ... and {} more\n", problems.len() - SHOWN_PROBLEMS);
        }
    }
    if e.count == 0 {
        tracing::warn!(
            file = %path.display(),
            "the trace has no complete frame (gpu_render through present): no end-to-end latency"
        );
    }
    std::io::stdout()
        .lock()
        .write_all(s.as_bytes())
        .context("printing the summary")
}
