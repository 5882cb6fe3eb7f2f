//! A three-process handoff recorded for real, shipped in its wire encoding,
//! written, read back and judged.
//!
//! Three threads stand in for the three processes, each with its own
//! `Recorder` and pid, handing frames along as the real processes do: the
//! "gpu" thread renders, exports and sends; a "launcher" thread relays each
//! frame on; the "renderer" receives, fetches, waits and composites; the
//! launcher's main thread presents. Every timestamp is a real
//! `CLOCK_MONOTONIC` reading around real sleeps, and every batch is encoded
//! as the processes' channels carry it (postcard) and decoded before it is
//! merged.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;
use triptych_trace::{
    check_flows, check_flows_with, current_tid, now_ns, parse_chrome_json, summarize,
    write_chrome_json, ArgValue, Args, Event, EventKind, FlowPhase, FlowProblem, InstantScope,
    Marker, ProcessInfo, Recorder, Stage, DROPPED_EVENTS_COUNTER,
};

const LAUNCHER_PID: u32 = 30_001;
const GPU_PID: u32 = 30_002;
const RENDERER_PID: u32 = 30_003;
const FRAMES: u64 = 3;

fn sleep_us(us: u64) {
    thread::sleep(Duration::from_micros(us));
}

/// A batch as the launcher receives it: who sent it, from which thread.
type Batch = (u32, u32, Vec<Event>);

struct Recorded {
    events: Vec<Event>,
    processes: Vec<ProcessInfo>,
    /// Per stage, the shortest time its span slept for.
    min_sleep_ns: BTreeMap<Stage, u64>,
}

fn record_three_processes() -> Recorded {
    // Batches travel as the bytes a channel datagram carries.
    let (batch_tx, batch_rx) = mpsc::channel::<Vec<u8>>();
    let (to_relay, relay_inbox) = mpsc::channel::<u64>();
    let (to_renderer, renderer_inbox) = mpsc::channel::<u64>();
    let (to_launcher, launcher_inbox) = mpsc::channel::<u64>();

    let gpu_batches = batch_tx.clone();
    let gpu = thread::spawn(move || {
        let rec = Recorder::new(GPU_PID);
        for frame in 0..FRAMES {
            let mut render = rec.span(Stage::GpuRender, Some(frame));
            render.arg("layers", 2).arg("scale", 1.5);
            sleep_us(1_000);
            drop(render);
            {
                let mut export = rec.span(Stage::Export, Some(frame));
                export.arg("kind", "memfd");
                sleep_us(300);
            }
            // Measured by hand around the hand-off, as a caller that already
            // holds both timestamps would.
            let start = now_ns();
            sleep_us(200);
            to_relay.send(frame).expect("launcher alive");
            let mut args = Args::new();
            args.insert("bytes".into(), ArgValue::Int(4096));
            rec.record_span(Stage::Send, Some(frame), start, now_ns(), args);
        }
        rec.counter("buffers_in_flight", 0.0);
        let b: Batch = (GPU_PID, current_tid(), rec.drain());
        gpu_batches
            .send(postcard::to_stdvec(&b).expect("encode"))
            .expect("launcher alive");
    });

    // The launcher's relay: its span runs from the GPU's send to the hand-on.
    let relay_batches = batch_tx.clone();
    let relay = thread::spawn(move || {
        let rec = Recorder::new(LAUNCHER_PID);
        for frame in relay_inbox.iter() {
            let _span = rec.span(Stage::Relay, Some(frame));
            sleep_us(250);
            to_renderer.send(frame).expect("renderer alive");
        }
        let b: Batch = (LAUNCHER_PID, current_tid(), rec.drain());
        relay_batches
            .send(postcard::to_stdvec(&b).expect("encode"))
            .expect("launcher alive");
    });

    let renderer_batches = batch_tx;
    let renderer = thread::spawn(move || {
        // A tiny buffer would drop; this one is large enough not to.
        let rec = Recorder::with_capacity(RENDERER_PID, 64);
        for frame in renderer_inbox.iter() {
            for (stage, us) in [
                (Stage::Receive, 100),
                (Stage::FdFetch, 150),
                (Stage::FenceWait, 400),
                (Stage::Composite, 800),
            ] {
                let _span = rec.span(stage, Some(frame));
                sleep_us(us);
            }
            if frame == 1 {
                let mut why = Args::new();
                why.insert("from".into(), "dma_buf".into());
                why.insert("to".into(), "memfd".into());
                why.insert("retry".into(), false.into());
                rec.instant(Marker::Fallback, InstantScope::Process, Some(frame), why);
            }
            to_launcher.send(frame).expect("launcher alive");
        }
        let b: Batch = (RENDERER_PID, current_tid(), rec.drain());
        renderer_batches
            .send(postcard::to_stdvec(&b).expect("encode"))
            .expect("launcher alive");
    });

    let launcher = Recorder::new(LAUNCHER_PID);
    for frame in launcher_inbox
        .iter()
        .take(usize::try_from(FRAMES).expect("small"))
    {
        let mut present = launcher.span(Stage::Present, Some(frame));
        present.arg("png", true);
        sleep_us(500);
        let measured = present.finish().expect("recording");
        assert!(
            measured >= 500_000,
            "present slept 500 us, measured {measured} ns"
        );
    }
    launcher.instant(
        Marker::Restart,
        InstantScope::Global,
        None,
        Args::from([("role".to_owned(), ArgValue::from("renderer"))]),
    );
    gpu.join().expect("gpu thread");
    relay.join().expect("relay thread");
    renderer.join().expect("renderer thread");

    let mut events = Vec::new();
    let mut processes = vec![ProcessInfo {
        pid: LAUNCHER_PID,
        name: "launcher".into(),
        threads: vec![(current_tid(), "main".into())],
    }];
    for _ in 0..3 {
        let bytes = batch_rx.recv().expect("a batch");
        let (pid, tid, batch): Batch = postcard::from_bytes(&bytes).expect("decode");
        assert!(batch.iter().all(|e| e.pid == pid && e.tid == tid));
        if pid == LAUNCHER_PID {
            processes[0].threads.push((tid, "relay".into()));
        } else {
            let name = if pid == GPU_PID { "gpu" } else { "renderer" };
            processes.push(ProcessInfo {
                pid,
                name: name.into(),
                threads: vec![(tid, format!("{name}-main"))],
            });
        }
        events.extend(batch);
    }
    events.extend(launcher.drain());
    // Viewer order: launcher, gpu, renderer.
    processes.sort_by_key(|p| p.pid);

    let min_sleep_ns = BTreeMap::from([
        (Stage::GpuRender, 1_000_000),
        (Stage::Export, 300_000),
        (Stage::Send, 200_000),
        (Stage::Relay, 250_000),
        (Stage::Receive, 100_000),
        (Stage::FdFetch, 150_000),
        (Stage::FenceWait, 400_000),
        (Stage::Composite, 800_000),
        (Stage::Present, 500_000),
    ]);
    Recorded {
        events,
        processes,
        min_sleep_ns,
    }
}

#[test]
fn three_process_trace_round_trips_and_links_frames() {
    let recorded = record_three_processes();
    let events = &recorded.events;

    // What the recorders produced: 9 spans per frame, one fallback, one
    // restart, one counter, no drops.
    assert_eq!(events.len(), 9 * 3 + 3);
    assert!(!events.iter().any(|e| matches!(
        &e.kind,
        EventKind::Counter { name, .. } if name == DROPPED_EVENTS_COUNTER
    )));
    for event in events {
        if let EventKind::Span { stage, dur_ns } = event.kind {
            assert!(
                dur_ns >= recorded.min_sleep_ns[&stage],
                "{stage} lasted {dur_ns} ns, less than it slept"
            );
        }
    }

    let mut file = Vec::new();
    write_chrome_json(events, &recorded.processes, &mut file).expect("write");
    let trace = parse_chrome_json(file.as_slice()).expect("parse own output");

    // Every field of every event and process comes back.
    assert_eq!(&trace.events, events);
    assert_eq!(trace.processes, recorded.processes);
    let origin = events.iter().map(|e| e.ts_ns).min().expect("events");
    assert_eq!(trace.clock_origin_ns, origin);

    // The JSON itself, as the viewers read it.
    let json: Value = serde_json::from_slice(&file).expect("valid JSON");
    let text = std::str::from_utf8(&file).expect("utf-8");
    assert!(text.starts_with("{\"displayTimeUnit\":\"ms\",\"otherData\":"));
    assert_eq!(json["otherData"]["clock"], "CLOCK_MONOTONIC");
    assert_eq!(json["otherData"]["clock_origin_ns"], origin);
    let rows = json["traceEvents"].as_array().expect("array");
    let of_phase = |ph: &'static str| rows.iter().filter(move |r| r["ph"] == ph);
    // A name and a sort index per process, a name per thread (the launcher has two).
    assert_eq!(of_phase("M").count(), 3 * 2 + 4);
    assert_eq!(of_phase("X").count(), 27);
    assert_eq!(of_phase("i").count(), 2);
    assert_eq!(of_phase("C").count(), 1);
    for (sort_index, process) in recorded.processes.iter().enumerate() {
        let meta = |name: &str| {
            of_phase("M")
                .find(|r| r["name"] == name && r["pid"] == process.pid)
                .unwrap_or_else(|| panic!("{name} for {}", process.pid))
        };
        assert_eq!(meta("process_name")["args"]["name"], process.name.as_str());
        assert_eq!(meta("process_sort_index")["args"]["sort_index"], sort_index);
        assert_eq!(meta("thread_name")["tid"], process.threads[0].0);
    }
    for (row, event) in of_phase("X").zip(events.iter().filter(|e| e.stage().is_some())) {
        let EventKind::Span { stage, dur_ns } = event.kind else {
            unreachable!("filtered to spans")
        };
        assert_eq!(row["name"], stage.name());
        assert_eq!(
            row["ts"].as_f64(),
            Some((event.ts_ns - origin) as f64 / 1000.0)
        );
        assert_eq!(row["dur"].as_f64(), Some(dur_ns as f64 / 1000.0));
        assert_eq!(row["args"]["frame"], event.frame.expect("framed"));
        assert_eq!(
            (row["pid"].as_u64(), row["tid"].as_u64()),
            (Some(u64::from(event.pid)), Some(u64::from(event.tid)))
        );
    }
    let fallback = of_phase("i")
        .find(|r| r["name"] == "fallback")
        .expect("fallback");
    assert_eq!(fallback["s"], "p");
    assert_eq!(fallback["args"]["from"], "dma_buf");
    assert_eq!(fallback["args"]["retry"], false);
    assert_eq!(fallback["args"]["frame"], 1);
    let restart = of_phase("i")
        .find(|r| r["name"] == "restart")
        .expect("restart");
    assert_eq!(restart["s"], "g");
    let counter = of_phase("C").next().expect("counter");
    assert_eq!(counter["name"], "buffers_in_flight");
    assert_eq!(counter["args"], serde_json::json!({"value": 0.0}));

    // Flows: one chain per frame, s -> t x7 -> f, gpu -> launcher -> renderer ->
    // launcher, each link on its span's thread at the span's start.
    for frame in 0..FRAMES {
        let chain: Vec<_> = trace.flows.iter().filter(|f| f.frame == frame).collect();
        let phases: Vec<FlowPhase> = chain.iter().map(|f| f.phase).collect();
        let mut expected = vec![FlowPhase::Start];
        expected.extend([FlowPhase::Step; 7]);
        expected.push(FlowPhase::End);
        assert_eq!(phases, expected, "frame {frame}");
        let pids: Vec<u32> = chain.iter().map(|f| f.pid).collect();
        assert_eq!(
            pids,
            [
                GPU_PID,
                GPU_PID,
                GPU_PID,
                LAUNCHER_PID,
                RENDERER_PID,
                RENDERER_PID,
                RENDERER_PID,
                RENDERER_PID,
                LAUNCHER_PID
            ],
            "frame {frame}"
        );
        for (link, stage) in chain.iter().zip(Stage::HANDOFF) {
            let span = events
                .iter()
                .find(|e| e.frame == Some(frame) && e.stage() == Some(stage))
                .expect("span of the stage");
            assert_eq!(
                (link.pid, link.tid, link.ts_ns),
                (span.pid, span.tid, span.ts_ns)
            );
        }
        // Causal order holds in time too.
        assert!(
            chain.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
            "frame {frame}"
        );
    }
    let f_rows: Vec<&Value> = of_phase("f").collect();
    assert_eq!(f_rows.len(), 3);
    assert!(f_rows
        .iter()
        .all(|r| r["bp"] == "e" && r["cat"] == "frame" && r["name"] == "frame"));

    // The handoff is complete and in order; gaps depend on the scheduler, so
    // they are checked for sanity, not against the default limit.
    let problems = check_flows(&trace);
    assert!(
        problems
            .iter()
            .all(|p| matches!(p, FlowProblem::Gap { .. })),
        "{problems:?}"
    );
    assert_eq!(check_flows_with(&trace.events, 1.0), []);

    let summary = summarize(&trace);
    assert_eq!(summary.frames.len(), 3);
    assert_eq!(summary.incomplete_frames, 0);
    assert_eq!(summary.stages.len(), 9);
    for (stage, stats) in &summary.stages {
        assert_eq!(stats.count, 3, "{stage}");
        assert!(stats.p50_us <= stats.p99_us && stats.p99_us <= stats.max_us);
        assert!(
            stats.p50_us * 1000.0 >= recorded.min_sleep_ns[stage] as f64,
            "{stage}"
        );
    }
    let slept: u64 = recorded.min_sleep_ns.values().sum();
    for timing in &summary.frames {
        assert!(timing.end_to_end_ns() >= slept, "{timing:?}");
        assert!(timing.covered_ns >= slept && timing.covered_ns <= timing.end_to_end_ns());
    }
    // In Marker declaration order.
    assert_eq!(
        summary.instants,
        [(Marker::Restart, 1), (Marker::Fallback, 1)]
    );
    assert_eq!(summary.dropped_events, 0);
    let table = summary.table();
    assert!(table.starts_with("stage "), "{table}");
    assert!(table.contains("\nend_to_end         3 "), "{table}");
    eprintln!("{table}");
}

#[test]
fn a_full_recorder_reports_its_drops_through_the_file() {
    let rec = Recorder::with_capacity(7, 2);
    for frame in 0..5 {
        rec.record_span(
            Stage::GpuRender,
            Some(frame),
            1_000 + frame,
            2_000 + frame,
            Args::new(),
        );
    }
    let batch = rec.drain();
    let mut file = Vec::new();
    write_chrome_json(&batch, &[], &mut file).expect("write");
    let trace = parse_chrome_json(file.as_slice()).expect("parse");
    assert_eq!(trace.events, batch);
    assert_eq!(summarize(&trace).dropped_events, 3);
}

#[test]
fn a_disabled_recorder_writes_an_empty_trace() {
    let rec = Recorder::disabled();
    for frame in 0..10 {
        let _span = rec.span(Stage::Composite, Some(frame));
        rec.instant(
            Marker::Crash,
            InstantScope::Global,
            Some(frame),
            Args::new(),
        );
    }
    assert_eq!(rec.len(), 0);
    let batch = rec.drain();
    assert!(batch.is_empty());
    let mut file = Vec::new();
    write_chrome_json(&batch, &[], &mut file).expect("write");
    let trace = parse_chrome_json(file.as_slice()).expect("parse");
    assert!(trace.events.is_empty() && trace.flows.is_empty() && trace.processes.is_empty());
    assert_eq!(trace.clock_origin_ns, 0);
}

#[test]
fn writer_refuses_what_the_file_cannot_hold() {
    let span = |args: Args| Event {
        kind: EventKind::Span {
            stage: Stage::Send,
            dur_ns: 5,
        },
        ts_ns: 10,
        pid: 1,
        tid: 1,
        frame: Some(3),
        args,
    };
    let ok = span(Args::new());
    let reserved = span(Args::from([("frame".to_owned(), ArgValue::Int(1))]));
    let nan = span(Args::from([(
        "ratio".to_owned(),
        ArgValue::Float(f64::NAN),
    )]));
    let framed_counter = Event {
        kind: EventKind::Counter {
            name: "n".into(),
            value: 1.0,
        },
        ..ok.clone()
    };
    let infinite_counter = Event {
        kind: EventKind::Counter {
            name: "n".into(),
            value: f64::INFINITY,
        },
        frame: None,
        ..ok.clone()
    };
    for (events, needle) in [
        (
            vec![ok.clone(), reserved],
            "event #1: argument key \"frame\" is reserved",
        ),
        (vec![nan], "event #0: argument \"ratio\" is NaN"),
        (
            vec![framed_counter],
            "event #0: counter \"n\" carries a frame",
        ),
        (
            vec![infinite_counter],
            "event #0: counter \"n\" has value inf",
        ),
    ] {
        let error = write_chrome_json(&events, &[], Vec::new()).expect_err(needle);
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert!(error.to_string().starts_with(needle), "{error}");
    }
    let twice = [1, 1].map(|pid| ProcessInfo {
        pid,
        name: "gpu".into(),
        threads: vec![],
    });
    let error = write_chrome_json(&[ok], &twice, Vec::new()).expect_err("duplicate pid");
    assert!(
        error.to_string().contains("pid 1 is listed twice"),
        "{error}"
    );
}

#[test]
fn events_survive_the_wire_encoding_unchanged() {
    let event = Event {
        kind: EventKind::Span {
            stage: Stage::FenceWait,
            dur_ns: u64::MAX,
        },
        ts_ns: 1,
        pid: u32::MAX,
        tid: 2,
        frame: Some(u64::MAX),
        args: Args::from([
            ("i".to_owned(), ArgValue::Int(i64::MIN)),
            ("f".to_owned(), ArgValue::Float(-0.125)),
            ("b".to_owned(), ArgValue::Bool(true)),
            ("s".to_owned(), ArgValue::Str("ünïcode \"quoted\"".into())),
        ]),
    };
    let batch = vec![
        event.clone(),
        Event {
            kind: EventKind::Instant {
                marker: Marker::SandboxViolation,
                scope: InstantScope::Thread,
            },
            frame: None,
            ..event.clone()
        },
        Event {
            kind: EventKind::Counter {
                name: "x".into(),
                value: 0.5,
            },
            frame: None,
            args: Args::new(),
            ..event
        },
    ];
    // Trace batches cross the process boundary as postcard, in one channel datagram.
    let bytes = postcard::to_stdvec(&batch).expect("encode");
    let back: Vec<Event> = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(back, batch);
}

/// A frame's nine stages for `view` (none: the first view), 10 us each, across the three
/// processes, from `t0`.
fn frame_of_view(view: Option<u32>, frame: u64, t0: u64) -> Vec<Event> {
    let pids = [GPU_PID, GPU_PID, GPU_PID, LAUNCHER_PID];
    Stage::HANDOFF
        .into_iter()
        .enumerate()
        .map(|(i, stage)| {
            let pid = *pids
                .get(i)
                .unwrap_or(if i == 8 { &LAUNCHER_PID } else { &RENDERER_PID });
            let mut args = Args::new();
            if let Some(v) = view {
                args.insert(triptych_trace::VIEW_ARG.into(), v.into());
            }
            Event {
                kind: EventKind::Span {
                    stage,
                    dur_ns: 10_000,
                },
                ts_ns: t0 + 10_000 * i as u64,
                pid,
                tid: pid + 1,
                frame: Some(frame),
                args,
            }
        })
        .collect()
}

#[test]
fn frames_of_several_views_are_each_on_their_views_track_and_flow() {
    // Frame 4 of the first view and frame 4 of view 3: one number, two frames.
    let mut events = frame_of_view(None, 4, 1_000_000);
    events.extend(frame_of_view(Some(3), 4, 1_005_000));
    let processes = [LAUNCHER_PID, GPU_PID, RENDERER_PID].map(|pid| ProcessInfo {
        pid,
        name: format!("p{pid}"),
        threads: vec![(pid + 1, "main".into())],
    });
    let mut out = Vec::new();
    write_chrome_json(&events, &processes, &mut out).expect("writes");
    let json: Value = serde_json::from_slice(&out).expect("json");
    let rows = json["traceEvents"].as_array().expect("rows");
    // View 3's spans are on its track in each process, which is named; the thread that
    // recorded each is kept.
    let track = u64::from(triptych_trace::VIEW_TRACK_BASE + 3);
    let on_track: Vec<&Value> = rows
        .iter()
        .filter(|r| r["ph"] == "X" && r["tid"] == track)
        .collect();
    assert_eq!(on_track.len(), Stage::HANDOFF.len());
    assert!(on_track
        .iter()
        .all(|r| r["args"]["tid"].as_u64() == r["pid"].as_u64().map(|p| p + 1)));
    let named: Vec<u64> = rows
        .iter()
        .filter(|r| r["name"] == "thread_name" && r["args"]["name"] == "view 3")
        .filter_map(|r| r["pid"].as_u64())
        .collect();
    assert_eq!(named.len(), 3, "a view 3 track in each process: {named:?}");
    // Two flows, one per view, of nine links each.
    let trace = parse_chrome_json(&out[..]).expect("reads back");
    let ids: std::collections::BTreeSet<u64> = trace.flows.iter().map(|f| f.frame).collect();
    assert_eq!(
        ids,
        [4, triptych_trace::flow_id(3, 4)].into_iter().collect()
    );
    assert_eq!(trace.flows.len(), 2 * Stage::HANDOFF.len());
    // Read back exactly: the threads restored, the tracks' names not taken for threads.
    assert_eq!(trace.events, events);
    assert_eq!(trace.processes, processes);
    assert_eq!(check_flows_with(&trace.events, 0.0), []);
    let summary = summarize(&trace);
    assert_eq!(summary.frames.len(), 2);
    let views: Vec<(u32, usize)> = summary.views.iter().map(|(v, s)| (*v, s.count)).collect();
    assert_eq!(views, [(0, 1), (3, 1)]);
    assert!(summary.table().contains("  view 3"), "{}", summary.table());
}
