//! The items measured from real `triptych run` children: crash detection and restart (6), the
//! handoff inside a run (7), and the cost of tracing (8).

use super::*;

/// Items 6a and 6b, from a chaos run, against the clean run's frame time.
pub(super) fn chaos_items(
    items: &mut Vec<Item>,
    failures: &mut Vec<String>,
    dir: &std::path::Path,
    plans: &Plans,
    baseline: Option<(f64, u64)>,
    note: &str,
) {
    let labels = [
        Label {
            item: "6a",
            name: "crash_detection",
            value: "crash detection: fault to the launcher noticing".into(),
            baseline: format!(
                "frame time of the clean {}-layer run (item 7)",
                plans.chaos_layers
            ),
            unit: "ns per crash",
        },
        Label {
            item: "6b",
            name: "restart_to_first_frame",
            value: "restart: noticing to the replacement's first frame".into(),
            baseline: format!(
                "frame time of the clean {}-layer run (item 7)",
                plans.chaos_layers
            ),
            unit: "ns per crash",
        },
    ];
    let Some((frame_ns, frames)) = baseline else {
        for l in &labels {
            items.push(Item::missing(
                l,
                None,
                format!(
                    "the clean {}-layer run, its baseline, did not run",
                    plans.chaos_layers
                ),
            ));
        }
        return;
    };
    match runs::chaos(
        dir,
        plans.chaos_layers,
        plans.chaos_frames,
        CHAOS_SEED,
        plans.chaos_kills,
    ) {
        Ok(runs::Chaos::Measured {
            detection,
            restart,
            crashes,
        }) => {
            for (l, lat) in labels.iter().zip([detection, restart]) {
                let mut extra = BTreeMap::new();
                extra.insert("crashes".to_owned(), Value::from(crashes));
                extra.insert("chaos_seed".to_owned(), Value::from(CHAOS_SEED));
                extra.insert("chaos_kills".to_owned(), Value::from(plans.chaos_kills));
                extra.insert("frames".to_owned(), Value::from(plans.chaos_frames));
                extra.insert("layers".to_owned(), Value::from(plans.chaos_layers));
                items.push(Item::reported(
                    l, lat.p50_ns, lat.p99_ns, lat.count, frame_ns, frames, note, extra,
                ));
            }
        }
        Ok(runs::Chaos::NotReported(why)) => {
            for l in &labels {
                items.push(Item::missing(l, None, format!("not measured yet: {why}")));
            }
        }
        Err(e) => {
            let why = format!("item 6 (chaos run): {e:#}");
            failures.push(why.clone());
            for l in &labels {
                items.push(Item::missing(l, None, why.clone()));
            }
        }
    }
}

/// Items 8a and 8b: what tracing costs a frame, on and off.
pub(super) fn trace_items(
    items: &mut Vec<Item>,
    failures: &mut Vec<String>,
    dir: &std::path::Path,
    plans: &Plans,
    note: &str,
) {
    let what = format!("`triptych run`, {TRACE_SIZE}, {TRACE_LAYERS} layers");
    let on = Label {
        item: "8a",
        name: "tracing_on_frame_time",
        value: format!("frame time with --trace, {what}"),
        baseline: "frame time without --trace, runs alternating".into(),
        unit: "ns per frame (1 / fps of one run)",
    };
    let off = Label {
        item: "8b",
        name: "tracing_off_per_frame",
        value: "disabled recorder, one frame's calls (events x ns/call)".into(),
        baseline: "frame time without --trace (item 8a)".into(),
        unit: "ns per frame",
    };
    let measured = runs::trace_overhead(
        dir,
        TRACE_SIZE,
        TRACE_LAYERS,
        plans.trace_frames,
        plans.trace_runs,
    )
    .context("item 8a")
    .and_then(|runs| {
        let call = recorder::disabled_span(plans.recorder).context("item 8b")?;
        Ok((runs, call))
    });
    let (runs, call) = match measured {
        Ok(m) => m,
        Err(e) => {
            let why = format!("{e:#}");
            failures.push(why.clone());
            items.push(Item::missing(&on, Some(1.05), why.clone()));
            items.push(Item::missing(&off, Some(0.001), why));
            return;
        }
    };
    let untraced = Figure::of(runs.untraced_ns, 1);
    let mut extra = BTreeMap::new();
    extra.insert("layers".to_owned(), Value::from(TRACE_LAYERS));
    extra.insert("size".to_owned(), Value::from(TRACE_SIZE));
    extra.insert("frames".to_owned(), Value::from(plans.trace_frames));
    extra.insert(
        "events_per_frame".to_owned(),
        Value::from(runs.events_per_frame),
    );
    let mut it = Item::measured(
        &on,
        Figure::of(runs.traced_ns, 1),
        untraced,
        Some(1.05),
        plans.trace_runs,
        &[],
        note,
    );
    it.extra = extra.clone();
    items.push(it);
    extra.insert(
        "ns_per_disabled_call_p50".to_owned(),
        Value::from(call.p50_ns),
    );
    extra.insert("calls_per_batch".to_owned(), Value::from(recorder::BATCH));
    let mut it = Item::reported(
        &off,
        call.p50_ns * runs.events_per_frame,
        call.p99_ns * runs.events_per_frame,
        call.iterations,
        untraced.p50_ns,
        untraced.iterations,
        "this process, not pinned (the calls); the frame time from item 8a's runs",
        extra,
    )
    .with_goal(0.001);
    it.warmup = plans.recorder.warmup;
    items.push(it);
}
