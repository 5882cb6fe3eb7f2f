//! The items measured from real `triptych run` children: crash detection and restart (6a, 6b),
//! GPU process recovery with the standby against without it (6c), the handoff inside a run (7),
//! and the cost of tracing (8).

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

/// Item 6c: a GPU process's recovery (the launcher noticing its death to the replacement's
/// first frame) when the standby is promoted, against a cold start (`--standby off`), from runs
/// of both kinds alternating; held to the project's goal of a p99 of at most 33 ms with the
/// standby.
pub(super) fn standby_item(
    items: &mut Vec<Item>,
    failures: &mut Vec<String>,
    dir: &std::path::Path,
    plans: &Plans,
    note: &str,
) {
    let shape = plans.standby_shape;
    let label = Label {
        item: "6c",
        name: "gpu_recovery_standby",
        value: format!(
            "GPU process recovery, standby promoted ({}, {} layers)",
            shape.size, shape.layers
        ),
        baseline: "the same, cold start (--standby off), runs alternating".into(),
        unit: "ns per GPU process crash (noticing to the replacement's first frame)",
    };
    /// The project's goal: a GPU process recovery's p99 with the standby, at most 33 ms (two
    /// frames at 60 Hz).
    const GOAL_P99_NS: f64 = 33e6;
    let m = match runs::standby_recovery(dir, shape, plans.standby_runs) {
        Ok(m) => m,
        Err(e) => {
            let why = format!("item 6c: {e:#}");
            failures.push(why.clone());
            items.push(Item::missing(&label, None, why).with_goal_p99(GOAL_P99_NS));
            return;
        }
    };
    if m.promoted_ns.is_empty() || m.cold_ns.is_empty() {
        // Every kill of the runs with the standby came before one was ready (or none came at
        // all): there is nothing to compare, and the runs' spacing is too short for this machine.
        let why = format!(
            "item 6c: {} promoted and {} cold recoveries ({} of the runs with the standby started \
             cold: no standby was ready {} frames after the previous kill)",
            m.promoted_ns.len(),
            m.cold_ns.len(),
            m.standby_side_cold,
            shape.spacing
        );
        failures.push(why.clone());
        items.push(Item::missing(&label, None, why).with_goal_p99(GOAL_P99_NS));
        return;
    }
    let median_f = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let median_u = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    };
    let (promoted, cold) = (m.promoted_ns.len(), m.cold_ns.len());
    let mut it = Item::measured(
        &label,
        Figure::of(m.promoted_ns, 1),
        Figure::of(m.cold_ns, 1),
        None,
        plans.standby_runs,
        &[],
        note,
    )
    .with_goal_p99(GOAL_P99_NS);
    let e = &mut it.extra;
    e.insert("size".into(), Value::from(shape.size));
    e.insert("layers".into(), Value::from(shape.layers));
    e.insert("kills_per_run".into(), Value::from(shape.kills));
    e.insert("frames_between_kills".into(), Value::from(shape.spacing));
    e.insert("frames_per_run".into(), Value::from(shape.frames()));
    e.insert(
        "runs_per_side".into(),
        Value::from(plans.standby_runs.iterations),
    );
    e.insert("recoveries_promoted".into(), Value::from(promoted));
    e.insert("recoveries_cold".into(), Value::from(cold));
    // Kills that came before a standby was ready: cold starts in the runs with the standby,
    // counted in neither figure.
    e.insert(
        "standby_side_cold_starts".into(),
        Value::from(m.standby_side_cold),
    );
    e.insert("standby_deaths".into(), Value::from(m.standby_deaths));
    e.insert(
        "standby_ready_ms_median".into(),
        Value::from(median_f(&m.ready_ms)),
    );
    e.insert(
        "standby_rss_kib_median".into(),
        Value::from(median_u(&m.rss_kib)),
    );
    e.insert(
        "standby_pss_kib_median".into(),
        Value::from(median_u(&m.pss_kib)),
    );
    items.push(it);
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

/// Item 11: the CPU time of a frame across the three processes, with damage tracking against
/// `--no-damage`, when only a 64x64 layer changes.
pub(super) fn cpu_item(
    items: &mut Vec<Item>,
    failures: &mut Vec<String>,
    dir: &std::path::Path,
    plans: &Plans,
    note: &str,
) {
    let f = plans.cpu_frames;
    let label = Label {
        item: "11",
        name: "end_to_end_cpu_damage_64_1080p",
        value: "CPU per frame, 3 processes, 1080p, 64x64 changes: damage".into(),
        baseline: "the same runs with --no-damage, alternating".into(),
        unit: "ns of CPU per frame (runs of long minus short frames)",
    };
    const GOAL: f64 = 0.05;
    match cpu_runs::measure(dir, f, plans.cpu_runs) {
        Ok(m) => {
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
            let mut it = cpu_figure(&label, &m, GOAL, plans, note, (WIDTH, HEIGHT), f);
            it.extra.insert(
                "mean_damaged_fraction_damage".into(),
                Value::from(mean(&m.damage_fractions)),
            );
            it.extra.insert(
                "mean_damaged_fraction_no_damage".into(),
                Value::from(mean(&m.no_damage_fractions)),
            );
            it.extra.insert(
                "damaged_fraction_per_run_damage".into(),
                Value::from(m.damage_fractions),
            );
            it.extra.insert(
                "damaged_fraction_per_run_no_damage".into(),
                Value::from(m.no_damage_fractions),
            );
            items.push(it);
        }
        Err(e) => {
            let why = format!("item 11: {e:#}");
            failures.push(why.clone());
            items.push(Item::missing(&label, Some(GOAL), why));
        }
    }
}

/// The item of a CPU comparison ([`cpu_runs::measure_sides`]): its first side's figures against
/// its second's, with the frame size and the runs' frame counts.
fn cpu_figure(
    label: &Label,
    m: &cpu_runs::Measured,
    goal: f64,
    plans: &Plans,
    note: &str,
    (w, h): (u32, u32),
    f: cpu_runs::Frames,
) -> Item {
    let mut it = Item::measured(
        label,
        Figure::of(m.damage_ns.clone(), 1),
        Figure::of(m.no_damage_ns.clone(), 1),
        Some(goal),
        plans.cpu_runs,
        &[],
        note,
    );
    it.extra
        .insert("size".into(), Value::from(format!("{w}x{h}")));
    it.extra.insert("frames_short".into(), Value::from(f.short));
    it.extra.insert("frames_long".into(), Value::from(f.long));
    it
}

/// Item 11b: the CPU time of a 320x240 frame across the three processes with the children's
/// mailboxes (no socket message per steady frame between the launcher and either child)
/// against `--mailbox off` (several per frame), alternating: the handoff's share of a small
/// frame's cost.
pub(super) fn mailbox_item(
    items: &mut Vec<Item>,
    failures: &mut Vec<String>,
    dir: &std::path::Path,
    plans: &Plans,
    note: &str,
) {
    let label = Label {
        item: "11b",
        name: "end_to_end_cpu_mailbox_320x240",
        value: "CPU per frame, 3 processes, 320x240, built-in scene: mailboxes".into(),
        baseline: "the same runs with --mailbox off, alternating".into(),
        unit: "ns of CPU per frame (runs of long minus short frames)",
    };
    let side = |name, on: &str| cpu_runs::Side {
        name,
        args: vec!["--mailbox".into(), on.into()],
        damage: None,
    };
    // Fewer messages cannot cost more.
    let sides = [side("mailbox", "on"), side("socket", "off")];
    small_cpu_item(items, failures, dir, plans, note, &label, &sides);
}

/// Item 11c: the CPU time of a 320x240 shm frame across the three processes with progress
/// fences (no fence file per layer per frame) against `--progress-fences off` (a pipe per layer
/// per frame, taken by the renderer with `pidfd_getfd`), alternating.
pub(super) fn progress_item(
    items: &mut Vec<Item>,
    failures: &mut Vec<String>,
    dir: &std::path::Path,
    plans: &Plans,
    note: &str,
) {
    let label = Label {
        item: "11c",
        name: "end_to_end_cpu_progress_fences_320x240",
        value: "CPU per frame, 3 processes, 320x240 shm, built-in scene: progress fences".into(),
        baseline: "the same runs with --progress-fences off (pipe fences), alternating".into(),
        unit: "ns of CPU per frame (runs of long minus short frames)",
    };
    let side = |name, on: &str| cpu_runs::Side {
        name,
        args: vec![
            "--buffers".into(),
            "shm".into(),
            "--progress-fences".into(),
            on.into(),
        ],
        damage: None,
    };
    // No file per layer per frame cannot cost more.
    let sides = [side("progress", "on"), side("pipe", "off")];
    small_cpu_item(items, failures, dir, plans, note, &label, &sides);
}

/// Item 14: a view's frame in a run of 16 views of 320x240 against a frame of one view, CPU
/// across every process, alternating; and a run of the 16 paced at 60 frames a second: frames
/// missed per view, the launcher's and the GPU process's CPU as a share of a core, each
/// renderer's memory ([`views`]).
pub(super) fn views_item(
    items: &mut Vec<Item>,
    failures: &mut Vec<String>,
    dir: &std::path::Path,
    plans: &Plans,
    note: &str,
) {
    let label = Label {
        item: "14",
        name: "views_16_320x240",
        value: format!(
            "CPU per view-frame, {} views of 320x240 on one GPU process, example scene",
            views::VIEWS
        ),
        baseline: "CPU per frame of one view of the same scene, alternating".into(),
        unit: "ns of CPU per view-frame, every process (runs of long minus short frames)",
    };
    // Sharing one GPU process among the views costs no more per view than a view alone.
    const GOAL: f64 = 1.0;
    let f = plans.views_frames;
    let measured = views::measure(dir, f, plans.cpu_runs)
        .and_then(|m| views::paced(dir, plans.views_paced).map(|p| (m, p)));
    match measured {
        Ok((m, paced)) => {
            let mut it = Item::measured(
                &label,
                Figure::of(m.damage_ns.clone(), views::VIEWS as u64),
                Figure::of(m.no_damage_ns.clone(), 1),
                Some(GOAL),
                plans.cpu_runs,
                &[],
                note,
            );
            it.extra.insert(
                "size".into(),
                Value::from(format!("{}x{}", views::SIZE.0, views::SIZE.1)),
            );
            it.extra.insert("frames_short".into(), Value::from(f.short));
            it.extra.insert("frames_long".into(), Value::from(f.long));
            for (k, v) in paced.extra() {
                it.extra.insert(k.into(), v);
            }
            for (k, v) in hop_floor(items) {
                it.extra.insert(k.into(), v);
            }
            items.push(it);
        }
        Err(e) => {
            let why = format!("item 14: {e:#}");
            failures.push(why.clone());
            items.push(Item::missing(&label, Some(GOAL), why));
        }
    }
}

/// Items 11b and 11c: the CPU time of a 320x240 frame across the three processes, the first of
/// `sides` against the second, alternating; the goal is that the first costs no more.
fn small_cpu_item(
    items: &mut Vec<Item>,
    failures: &mut Vec<String>,
    dir: &std::path::Path,
    plans: &Plans,
    note: &str,
    label: &Label,
    sides: &[cpu_runs::Side; 2],
) {
    const GOAL: f64 = 1.0;
    let f = plans.mailbox_frames;
    let (w, h) = (320, 240);
    match cpu_runs::measure_sides(dir, (None, (w, h)), sides, f, plans.cpu_runs) {
        Ok(m) => items.push(cpu_figure(label, &m, GOAL, plans, note, (w, h), f)),
        Err(e) => {
            let why = format!("item {}: {e:#}", label.item);
            failures.push(why.clone());
            items.push(Item::missing(label, Some(GOAL), why));
        }
    }
}

/// Item 12: an idle window's CPU use against its wall time; not measured, with the reason,
/// where `$DISPLAY` names no reachable X server.
pub(super) fn idle_item(
    items: &mut Vec<Item>,
    failures: &mut Vec<String>,
    dir: &std::path::Path,
    plans: &Plans,
) {
    let label = Label {
        item: "12",
        name: "idle_window_cpu",
        value: format!(
            "idle window CPU, launcher + children ({}, still scene)",
            idle::SIZE
        ),
        baseline: "wall time of the same span (one core)".into(),
        unit: "ns of CPU over the span",
    };
    const GOAL: f64 = 0.01;
    let note = "not pinned: the windowed run's processes, wherever the scheduler puts them";
    match idle::measure(dir, plans.idle, plans.idle_start) {
        Ok(m) => {
            let mut extra = BTreeMap::new();
            extra.insert("display".into(), Value::from(m.display));
            extra.insert("size".into(), Value::from(idle::SIZE));
            extra.insert("processes".into(), Value::from(m.processes));
            extra.insert("same_process_tree".into(), Value::from(m.same_tree));
            extra.insert("frames_presented".into(), Value::from(m.frames));
            extra.insert("cpu_ns_stat_ticks".into(), Value::from(m.stat_cpu_ns));
            extra.insert(
                "cpu_ns_by_process".into(),
                Value::from(serde_json::Map::from_iter(
                    m.by_process.into_iter().map(|(k, v)| (k, Value::from(v))),
                )),
            );
            extra.insert(
                "cpu_source".into(),
                Value::from(if m.schedstat {
                    "/proc/PID/task/*/schedstat"
                } else {
                    "/proc/PID/stat utime+stime"
                }),
            );
            items.push(
                Item::reported(
                    &label,
                    m.cpu_ns as f64,
                    m.cpu_ns as f64,
                    1,
                    m.wall_ns as f64,
                    1,
                    note,
                    extra,
                )
                .with_goal(GOAL),
            );
        }
        Err(e) => {
            let why = format!("{e:#}");
            if e.downcast_ref::<idle::NoDisplay>().is_none() {
                failures.push(format!("item 12: {why}"));
            }
            items.push(Item::missing(&label, Some(GOAL), why));
        }
    }
}

/// Items 13 and 13b: a property change, the call to the first presented frame that shows it,
/// against the same run's frame time: frames unpaced (13), and paced to 60 a second as a
/// display paces them (13b), whose goal is one frame plus the handoff. Unpaced, a change
/// waits for the frame being drawn when it comes, so it cannot be shown within one frame.
pub(super) fn edit_items(
    items: &mut Vec<Item>,
    failures: &mut Vec<String>,
    dir: &std::path::Path,
    plans: &Plans,
) {
    edit_item(items, failures, dir, plans, ("13", "edit_to_screen"), None);
    edit_item(
        items,
        failures,
        dir,
        plans,
        ("13b", "edit_to_screen_paced_60"),
        Some(60),
    );
}

fn edit_item(
    items: &mut Vec<Item>,
    failures: &mut Vec<String>,
    dir: &std::path::Path,
    plans: &Plans,
    (item, name): (&'static str, &'static str),
    fps: Option<u32>,
) {
    let pacing = match fps {
        None => "frames unpaced".to_owned(),
        Some(f) => format!("frames paced to {f} a second"),
    };
    let label = Label {
        item,
        name,
        value: format!(
            "property change: a `--control` line to its answer, the first frame showing it presented ({}, a text label, {pacing})",
            crate::edit_latency::SIZE
        ),
        baseline: "one frame plus the handoff: the same run's 1 / fps plus its handoff p50".into(),
        unit: "ns per change",
    };
    // The goal is a display's: a change within one frame plus the handoff.
    let goal = fps.map(|_| 1.0);
    let note = "not pinned: the run's three processes, wherever the scheduler puts them";
    match crate::edit_latency::measure(dir, plans.edits.warmup, plans.edits.iterations, fps) {
        Ok(m) => {
            let mut extra = BTreeMap::new();
            extra.insert("size".into(), Value::from(crate::edit_latency::SIZE));
            extra.insert("frames".into(), Value::from(m.frames));
            extra.insert("max_ns".into(), Value::from(m.latency.max_ns));
            extra.insert("frame_ns".into(), Value::from(m.frame_ns));
            extra.insert("handoff_p50_ns".into(), Value::from(m.handoff_ns));
            extra.insert("paced_fps".into(), Value::from(fps));
            let reported = Item::reported(
                &label,
                m.latency.p50_ns,
                m.latency.p99_ns,
                m.latency.iterations,
                m.frame_ns + m.handoff_ns,
                m.frames,
                note,
                extra,
            );
            items.push(match goal {
                Some(g) => reported.with_goal(g),
                None => reported,
            });
        }
        Err(e) => {
            let why = format!("item {item}: {e:#}");
            failures.push(why.clone());
            items.push(Item::missing(&label, goal, why));
        }
    }
}

/// The share of a core that the paced run of item 14 would spend if each of its view-frames
/// crossed one hop between two processes and did nothing else: half of item 1c's CPU time per
/// round trip (a record copied into a mailbox, the futex wake-up of the reader asleep on it, its
/// wait ending, the record copied out and decoded; both sides), times the view-frames the pace
/// asks for each second. Every view-frame needs at least that one hop with a wake-up, to the
/// renderer that composites it, whichever process sends it; the goal for the handoff across the
/// processes (2% of a core) is set beside it. Empty where item 1c has no CPU figure.
fn hop_floor(items: &[Item]) -> Vec<(&'static str, Value)> {
    const HANDOFF_GOAL_SHARE: f64 = 0.02;
    let Some(round_trip) = items
        .iter()
        .find(|i| i.item == "1c")
        .and_then(|i| i.extra.get("value_cpu_ns_per_round_trip"))
        .and_then(Value::as_f64)
    else {
        return Vec::new();
    };
    let hop = round_trip / 2.0;
    let per_second = (views::VIEWS as f64) * f64::from(views::FPS);
    vec![
        ("hop_cpu_ns", Value::from(hop.round())),
        (
            "hop_floor_share_at_pace",
            Value::from(hop * per_second / 1e9),
        ),
        ("handoff_goal_share", Value::from(HANDOFF_GOAL_SHARE)),
    ]
}
