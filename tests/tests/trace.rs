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

#[test]
fn a_run_of_three_views_traces_each_views_frames_on_its_own_track() {
    let dir = scratch("trace-views");
    let scenes = triptych_tests::views::scenes(&dir, 3);
    let trace = dir.join("trace.json");
    let mut cmd = triptych(&["run", "--headless", "--frames", "20", "--size", "160x120"]);
    cmd.arg("--out")
        .arg(dir.join("f.png"))
        .arg("--trace")
        .arg(&trace);
    for s in &scenes {
        cmd.arg("--view").arg(s);
    }
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let text = std::fs::read_to_string(&trace).expect("trace file");
    let parsed = triptych_trace::parse_chrome_json(text.as_bytes()).expect("the trace parses");
    // Each view's 20 frames, each a whole flow across the processes, apart from the other
    // views' frames of the same numbers.
    let summary = triptych_trace::summarize(&parsed);
    let per_view: Vec<(u32, usize)> = summary.views.iter().map(|(v, s)| (*v, s.count)).collect();
    assert_eq!(per_view, [(0, 20), (1, 20), (2, 20)]);
    assert_eq!(summary.incomplete_frames, 0);
    let problems = triptych_trace::check_flows(&parsed);
    assert!(
        problems.is_empty(),
        "{} flow problems, e.g. {}",
        problems.len(),
        problems[0]
    );
    // Views 1 and 2 are on tracks of their own, named, in the GPU process, the launcher and
    // their renderers.
    let raw: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    for view in [1u64, 2] {
        let track = u64::from(triptych_trace::VIEW_TRACK_BASE) + view;
        let named = raw["traceEvents"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|r| r["name"] == "thread_name" && r["tid"] == track)
            .count();
        assert!(
            named >= 3,
            "view {view}'s track in 3 processes, found {named}"
        );
    }
    // trace-summary prints each view's end-to-end latency.
    let o = output(triptych(&["trace-summary", trace.to_str().expect("utf-8")]));
    assert!(o.status.success(), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for view in 0..3 {
        assert!(text.contains(&format!("  view {view} ")), "{text}");
    }
}

#[test]
fn a_renderer_poisoning_its_trace_batch_breaks_neither_the_trace_nor_another_views_track() {
    let dir = scratch("trace-poison");
    let scenes = triptych_tests::views::scenes(&dir, 3);
    let trace = dir.join("trace.json");
    let json = dir.join("summary.json");
    // View 1's renderers, however many, poison their batches.
    let bin = adversary_bin(&dir);
    attack_every(&bin, "triptych-renderer", "poison-trace@1");
    let mut cmd = triptych(&["run", "--headless", "--frames", "20", "--size", "160x120"]);
    cmd.arg("--out")
        .arg(dir.join("f.png"))
        .arg("--trace")
        .arg(&trace)
        .arg("--summary-json")
        .arg(&json)
        .env("TRIPTYCH_BIN_DIR", &bin);
    for s in &scenes {
        cmd.arg("--view").arg(s);
    }
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&json);
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    let renderer = s["views"][1]["renderer_pid"]
        .as_u64()
        .expect("view 1's renderer") as u32;
    let text = std::fs::read_to_string(&trace).expect("the trace is written");
    let parsed = triptych_trace::parse_chrome_json(text.as_bytes()).expect("and readable");
    // Its events are its own: its pid, its view, nothing the file reserves.
    let poisoned: Vec<&triptych_trace::Event> = parsed
        .events
        .iter()
        .filter(|e| {
            e.args.contains_key("poisoned")
                || matches!(&e.kind, triptych_trace::EventKind::Counter { name, .. } if name == "poisoned")
        })
        .collect();
    assert_eq!(poisoned.len(), 2, "the span and the counter");
    for e in &poisoned {
        assert_eq!(e.pid, renderer, "{e:?}");
        assert!(e.tid < triptych_trace::VIEW_TRACK_BASE, "{e:?}");
        assert!(!e.args.contains_key("nan"), "{e:?}");
    }
    assert_eq!(
        poisoned[0].view(),
        1,
        "view 1's renderer's event is view 1's"
    );
    assert!(poisoned[1].args.is_empty() && poisoned[1].frame.is_none());
    // Every view's frames still flow whole.
    let summary = triptych_trace::summarize(&parsed);
    let per_view: Vec<(u32, usize)> = summary.views.iter().map(|(v, s)| (*v, s.count)).collect();
    assert_eq!(per_view, [(0, 20), (1, 20), (2, 20)]);
}
