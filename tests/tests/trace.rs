//! A trace of a real run: valid trace-event JSON, one complete flow per frame across the three
//! processes, causally ordered timestamps, and stages that tile each frame's end-to-end time.

use triptych_tests::*;

#[test]
fn a_real_run_traces_every_frame_across_all_processes() {
    let dir = scratch("trace");
    let trace = dir.join("trace.json");
    let json = dir.join("summary.json");
    let mut cmd = triptych(&[
        "run", "--frames", "40", "--size", "160x120", "--layers", "3",
    ]);
    cmd.arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(&json)
        .arg("--trace")
        .arg(&trace);
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&json);

    let text = std::fs::read_to_string(&trace).expect("trace file");
    let raw: serde_json::Value = serde_json::from_str(&text).expect("the trace is JSON");
    assert!(
        raw["traceEvents"].as_array().is_some_and(|a| !a.is_empty()),
        "no traceEvents"
    );
    let parsed = triptych_trace::parse_chrome_json(text.as_bytes())
        .expect("the trace parses as trace-event JSON");

    // Spans come from the three real processes of the run, with their real pids.
    let pids = &s["processes"]["pids"];
    for (role, stage) in [
        ("gpu", "gpu_render"),
        ("renderer", "composite"),
        ("launcher", "relay"),
        ("launcher", "present"),
    ] {
        let pid = pids[role].as_u64().expect("pid") as u32;
        assert!(
            parsed
                .events
                .iter()
                .any(|e| e.pid == pid && e.stage().is_some_and(|st| st.name() == stage)),
            "no {stage} span from the {role} process {pid}"
        );
    }
    let summary = triptych_trace::summarize(&parsed);
    assert_eq!(summary.frames.len(), 40, "frames with a complete flow");
    assert_eq!(summary.incomplete_frames, 0);
    // Every frame: complete flow, no step before its cause, stages tile end-to-end within 1%.
    let problems = triptych_trace::check_flows_with(&parsed.events, 0.01);
    assert!(
        problems.is_empty(),
        "{} flow problems, e.g. {}",
        problems.len(),
        problems[0]
    );
    for f in &summary.frames {
        assert!(
            f.gap_fraction() <= 0.01,
            "frame {}: {:.3}% of its time is in no stage",
            f.frame,
            f.gap_fraction() * 100.0
        );
    }
    // Flow arrows link the processes.
    let flow_pids: std::collections::BTreeSet<u32> = parsed.flows.iter().map(|f| f.pid).collect();
    assert!(flow_pids.len() >= 3, "flows touch only {flow_pids:?}");
}
