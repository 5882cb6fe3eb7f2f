//! `triptych trace-summary FILE`: the per-stage table and the end-to-end handoff latency of a
//! trace file, and a clear refusal, naming the problem, of a file that is not a trace.

use std::path::Path;

use triptych_tests::*;
use triptych_trace::{write_chrome_json, Args, Event, EventKind, ProcessInfo, Stage};

fn span(stage: Stage, frame: u64, pid: u32, start_ns: u64, dur_ns: u64) -> Event {
    Event {
        kind: EventKind::Span { stage, dur_ns },
        ts_ns: start_ns,
        pid,
        tid: pid,
        frame: Some(frame),
        args: Args::new(),
    }
}

/// Three frames through every handoff stage, with durations chosen so every figure is known:
/// stage `i` of frame `f` lasts `(i + 1) * f` microseconds, stages run back to back, and a frame
/// starts 10 ms after the previous one.
fn write_trace(path: &Path) {
    let mut events = Vec::new();
    for f in 1..=3u64 {
        let mut t = 1_000_000_000 + f * 10_000_000;
        for (i, stage) in Stage::HANDOFF.iter().enumerate() {
            let pid = match stage {
                Stage::GpuRender | Stage::Export | Stage::Send => 100,
                Stage::Relay | Stage::Present => 300,
                _ => 200,
            };
            let dur = (i as u64 + 1) * f * 1000;
            events.push(span(*stage, f, pid, t, dur));
            t += dur;
        }
    }
    let processes =
        [(300, "launcher"), (100, "gpu"), (200, "renderer")].map(|(pid, name)| ProcessInfo {
            pid,
            name: name.into(),
            threads: vec![],
        });
    let mut file = Vec::new();
    write_chrome_json(&events, &processes, &mut file).expect("writing the trace");
    std::fs::write(path, file).expect("saving the trace");
}

#[test]
fn prints_stage_percentiles_and_end_to_end_latency() {
    let dir = scratch("trace-summary");
    let path = dir.join("out.json");
    write_trace(&path);
    let o = output(triptych(&[
        "trace-summary",
        path.to_str().expect("utf-8 path"),
    ]));
    assert!(o.status.success(), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("stage") && text.contains("p50 us") && text.contains("p99 us"),
        "{text}"
    );
    // gpu_render is stage 1: 1, 2, 3 us -> p50 2, p99 3, max 3.
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["gpu_render", "3", "2.000", "3.000", "3.000"]),
        "{text}"
    );
    // present is stage 9: 9, 18, 27 us.
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["present", "3", "18.000", "27.000", "27.000"]),
        "{text}"
    );
    // A frame's end to end is the sum of its stages: (1 + ... + 9) * f = 45 f us.
    assert!(
        text.contains(
            "end-to-end handoff latency (gpu_render start to present end): p50 90.000 us, p99 135.000 us, max 135.000 us over 3 frames"
        ),
        "{text}"
    );
    assert!(text.contains("3 complete, 0 incomplete"), "{text}");
    assert!(text.contains("flow problems: none"), "{text}");
}

#[test]
fn malformed_files_are_refused_naming_the_problem() {
    let dir = scratch("trace-summary-bad");
    let cases: [(&str, &str, &str); 3] = [
        ("truncated.json", "{\"traceEvents\": [", "not readable JSON"),
        (
            "bad-event.json",
            r#"{"displayTimeUnit":"ms","otherData":{"clock":"CLOCK_MONOTONIC","clock_origin_ns":0,"producer":"triptych-trace"},"traceEvents":[{"name":"gpu_render","cat":"handoff","ph":"X","ts":0.0,"pid":1,"tid":1,"args":{}}]}"#,
            "trace event #0",
        ),
        ("not-a-trace.json", "[1, 2, 3]", "must be an object"),
    ];
    for (file, body, needle) in cases {
        let path = dir.join(file);
        std::fs::write(&path, body).expect("writing a broken trace");
        let o = output(triptych(&[
            "trace-summary",
            path.to_str().expect("utf-8 path"),
        ]));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{file} was accepted:\n{}", show(&o));
        assert!(
            o.stdout.is_empty(),
            "{file}: printed a summary:\n{}",
            show(&o)
        );
        assert!(
            err.contains(file),
            "{file}: the error does not name the file:\n{err}"
        );
        assert!(
            err.contains(needle),
            "{file}: the error lacks {needle:?}:\n{err}"
        );
    }
    let missing = dir.join("missing.json");
    let o = output(triptych(&[
        "trace-summary",
        missing.to_str().expect("utf-8 path"),
    ]));
    assert!(!o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("opening the trace file"),
        "{}",
        show(&o)
    );
}
