//! Broken trace files: each is refused with an error that names the place.
//!
//! Every case starts from a file the real writer produced for a real
//! recording, breaks one thing in it, and checks that the reader names that
//! thing: the top-level field, or the entry index, its phase and its field.

use serde_json::{json, Value};
use triptych_trace::{
    parse_chrome_json, write_chrome_json, Args, InstantScope, Marker, ProcessInfo, Recorder, Stage,
    TraceError,
};

/// A small valid trace: one process, two framed spans (so a flow chain), an
/// instant and a counter.
fn valid() -> Value {
    let rec = Recorder::new(50);
    {
        let mut render = rec.span(Stage::GpuRender, Some(1));
        render.arg("layers", 1);
    }
    rec.span(Stage::Export, Some(1)).finish();
    rec.instant(
        Marker::FenceTimeout,
        InstantScope::Thread,
        Some(1),
        Args::new(),
    );
    rec.counter("buffers_in_flight", 1.0);
    let events = rec.drain();
    let processes = [ProcessInfo {
        pid: 50,
        name: "gpu".into(),
        threads: vec![(51, "main".into())],
    }];
    let mut file = Vec::new();
    write_chrome_json(&events, &processes, &mut file).expect("write");
    serde_json::from_slice(&file).expect("own output is JSON")
}

fn parse(value: &Value) -> Result<triptych_trace::ParsedTrace, TraceError> {
    parse_chrome_json(value.to_string().as_bytes())
}

/// Index of the first entry of phase `ph` (and `name`, when given).
fn index_of(trace: &Value, ph: &str, name: Option<&str>) -> usize {
    trace["traceEvents"]
        .as_array()
        .expect("array")
        .iter()
        .position(|e| e["ph"] == ph && name.is_none_or(|n| e["name"] == n))
        .unwrap_or_else(|| panic!("no {ph} {name:?} entry"))
}

fn entry(trace: &mut Value, index: usize) -> &mut Value {
    &mut trace["traceEvents"][index]
}

fn expect_top(trace: &Value, field: &str, problem_part: &str) {
    match parse(trace) {
        Err(TraceError::TopLevel { field: f, problem }) => {
            assert_eq!(f, field);
            assert!(
                problem.contains(problem_part),
                "{problem:?} lacks {problem_part:?}"
            );
        }
        other => panic!("expected a top-level error on {field}, got {other:?}"),
    }
}

fn expect_event(trace: &Value, index: usize, ph: &str, field: &str, problem_part: &str) {
    match parse(trace) {
        Err(error @ TraceError::Event { .. }) => {
            let message = error.to_string();
            let TraceError::Event {
                index: i,
                ph: p,
                field: f,
                problem,
            } = error
            else {
                unreachable!("matched above")
            };
            assert_eq!((i, p.as_str(), f.as_str()), (index, ph, field), "{message}");
            assert!(
                problem.contains(problem_part),
                "{problem:?} lacks {problem_part:?}"
            );
            assert!(
                message.starts_with(&format!("trace event #{index} (ph {ph:?}): `{field}`")),
                "{message}"
            );
        }
        other => panic!("expected an error at entry {index} field {field}, got {other:?}"),
    }
}

#[test]
fn the_unbroken_file_parses() {
    let trace = parse(&valid()).expect("valid");
    assert_eq!(trace.events.len(), 4);
    assert_eq!(trace.flows.len(), 2);
    assert_eq!(trace.processes.len(), 1);
}

#[test]
fn text_that_is_not_json_names_line_and_column() {
    let text = valid().to_string();
    let cut = &text[..text.len() / 2];
    match parse_chrome_json(cut.as_bytes()) {
        Err(error @ TraceError::Json(_)) => {
            let message = error.to_string();
            assert!(message.contains("line 1 column"), "{message}");
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

#[test]
fn top_level_problems_name_the_field() {
    expect_top(&json!([]), "(root)", "must be an object, found an array");

    let mut t = valid();
    t["displayTimeUnit"] = json!("ns");
    expect_top(&t, "displayTimeUnit", "found \"ns\"");

    let mut t = valid();
    t.as_object_mut().expect("object").remove("otherData");
    expect_top(&t, "otherData", "is missing");

    let mut t = valid();
    t["otherData"]["clock"] = json!("CLOCK_REALTIME");
    expect_top(&t, "otherData.clock", "found \"CLOCK_REALTIME\"");

    let mut t = valid();
    t["otherData"]["clock_origin_ns"] = json!(-1);
    expect_top(&t, "otherData.clock_origin_ns", "found -1");

    let mut t = valid();
    t.as_object_mut().expect("object").remove("traceEvents");
    expect_top(&t, "traceEvents", "is missing");

    let mut t = valid();
    t["traceEvents"] = json!({});
    expect_top(&t, "traceEvents", "must be an array, found an object");
}

#[test]
fn entry_problems_name_index_phase_and_field() {
    let base = valid();
    let x = index_of(&base, "X", Some("gpu_render"));
    let i = index_of(&base, "i", None);
    let c = index_of(&base, "C", None);
    let s = index_of(&base, "s", None);
    let f = index_of(&base, "f", None);
    let thread = index_of(&base, "M", Some("thread_name"));

    let mut t = base.clone();
    *entry(&mut t, x) = json!(5);
    expect_event(&t, x, "?", "(entry)", "must be an object, found a number");

    let mut t = base.clone();
    entry(&mut t, x)
        .as_object_mut()
        .expect("object")
        .remove("ph");
    expect_event(&t, x, "?", "ph", "found nothing");

    let mut t = base.clone();
    entry(&mut t, x)["ph"] = json!("B");
    expect_event(&t, x, "B", "ph", "\"B\" is not a phase this format uses");

    let mut t = base.clone();
    entry(&mut t, x)["name"] = json!("draw");
    expect_event(&t, x, "X", "name", "\"draw\" is not a handoff stage");

    let mut t = base.clone();
    entry(&mut t, x)
        .as_object_mut()
        .expect("object")
        .remove("dur");
    expect_event(&t, x, "X", "dur", "is missing");

    let mut t = base.clone();
    entry(&mut t, x)["ts"] = json!(-1.5);
    expect_event(&t, x, "X", "ts", "found -1.5");

    let mut t = base.clone();
    entry(&mut t, x)["dur"] = json!("12");
    expect_event(&t, x, "X", "dur", "found \"12\"");

    let mut t = base.clone();
    entry(&mut t, x)["pid"] = json!(4_294_967_296u64);
    expect_event(&t, x, "X", "pid", "found 4294967296");

    let mut t = base.clone();
    entry(&mut t, x)["args"]["frame"] = json!("1");
    expect_event(&t, x, "X", "args.frame", "frame id, found \"1\"");

    let mut t = base.clone();
    entry(&mut t, x)["args"]["layers"] = json!(null);
    expect_event(&t, x, "X", "args.layers", "found null");

    let mut t = base.clone();
    entry(&mut t, x)["args"]["big"] = json!(u64::MAX);
    expect_event(
        &t,
        x,
        "X",
        "args.big",
        "does not fit in a signed 64-bit value",
    );

    let mut t = base.clone();
    entry(&mut t, x)["args"] = json!([1]);
    expect_event(&t, x, "X", "args", "must be an object");

    let mut t = base.clone();
    entry(&mut t, i)["s"] = json!("x");
    expect_event(&t, i, "i", "s", "found \"x\"");

    let mut t = base.clone();
    entry(&mut t, i)["name"] = json!("boom");
    expect_event(&t, i, "i", "name", "\"boom\" is not a known marker");

    let mut t = base.clone();
    entry(&mut t, c)["args"]["extra"] = json!(2);
    expect_event(&t, c, "C", "args", "exactly \"value\"");

    let mut t = base.clone();
    entry(&mut t, c)["args"]["value"] = json!("many");
    expect_event(&t, c, "C", "args.value", "must be a number");

    let mut t = base.clone();
    entry(&mut t, s)["cat"] = json!("other");
    expect_event(&t, s, "s", "cat", "found \"other\"");

    let mut t = base.clone();
    entry(&mut t, s)["id"] = json!("0x1");
    expect_event(&t, s, "s", "id", "found \"0x1\"");

    let mut t = base.clone();
    entry(&mut t, f)
        .as_object_mut()
        .expect("object")
        .remove("bp");
    expect_event(&t, f, "f", "bp", "is missing");

    let mut t = base.clone();
    entry(&mut t, f)["bp"] = json!("n");
    expect_event(&t, f, "f", "bp", "enclosing slice");

    let mut t = base.clone();
    entry(&mut t, thread)["name"] = json!("thread_sort_index");
    expect_event(&t, thread, "M", "name", "\"thread_sort_index\" is not");

    // A second name for the same thread.
    let mut t = base.clone();
    let copy = entry(&mut t, thread).clone();
    t["traceEvents"].as_array_mut().expect("array").push(copy);
    let last = t["traceEvents"].as_array().expect("array").len() - 1;
    expect_event(&t, last, "M", "tid", "thread 51 of pid 50 is already named");

    // Thread metadata for a process that is never named.
    let mut t = base;
    entry(&mut t, thread)["pid"] = json!(77);
    expect_event(
        &t,
        thread,
        "M",
        "pid",
        "pid 77 has metadata but no process_name",
    );
}
