//! The trust boundary from the other side: a real, sandboxed GPU process built with its
//! hostile mode (debug builds only) breaks the protocol once per case. Against the launcher it
//! costs the GPU process its life (recorded, replaced). Against the renderer, a lie its sealed
//! descriptions prove costs it its life too (the renderer shows them, the launcher checks them);
//! one they cannot prove (unsealed bytes, a description that fails validation) costs the
//! message. In every case the run finishes with exit 0 and every frame presented, and the
//! renderer is never killed or blamed.

use triptych_tests::*;

/// Frames of each hostile run: enough for an attack repeated at every frame to be repeated
/// often.
const FRAMES: u64 = 200;

fn hostile_run(attack: &str) -> serde_json::Value {
    hostile_run_with(attack, &[]).1
}

fn hostile_run_with(attack: &str, extra: &[&str]) -> (std::process::Output, serde_json::Value) {
    let dir = scratch(&format!("hostile-gpu-{attack}"));
    let json = dir.join("summary.json");
    let cmd = hostile_command("TRIPTYCH_HOSTILE_GPU", attack, FRAMES, extra, &dir);
    let o = output(cmd);
    assert!(
        o.status.success(),
        "{attack}: the run must survive a hostile GPU process: {}",
        show(&o)
    );
    let s = summary(&json);
    at_baseline(attack, &s);
    assert_eq!(
        s["frames"]["last"],
        FRAMES - 1,
        "{attack}: every frame presented: {s}"
    );
    let renderer_crashes = s["recovery"]["crashes"]
        .as_array()
        .expect("crashes")
        .iter()
        .filter(|c| c["role"] == "renderer")
        .count();
    assert_eq!(
        renderer_crashes, 0,
        "{attack}: the renderer was blamed: {s}"
    );
    (o, s)
}

fn killed_for(attack: &str, want: &str) {
    let s = hostile_run(attack);
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(
        crashes.len(),
        1,
        "{attack}: one crash, the GPU process's: {s}"
    );
    let cause = crashes[0]["cause"].to_string();
    assert_eq!(crashes[0]["role"], "gpu");
    assert!(
        cause.contains("protocol_violation") && cause.contains(want),
        "{attack}: cause {cause} does not name {want:?}"
    );
}

#[test]
fn oversized_message_to_the_launcher() {
    killed_for("huge", "longer than");
}

#[test]
fn undecodable_message_to_the_launcher() {
    killed_for("garbage", "undecodable");
}

#[test]
fn fds_to_the_launcher() {
    killed_for("fds", "fds");
}

#[test]
fn produced_claim_that_skips_ahead() {
    killed_for("skip-ahead", "Produced");
}

#[test]
fn second_started() {
    killed_for("second-started", "second time");
}

#[test]
fn trace_batch_when_tracing_is_off() {
    killed_for("trace-off", "tracing is off");
}

#[test]
fn message_flood() {
    killed_for("flood", "messages in one second");
}

#[test]
fn garbage_on_the_frame_channel_costs_only_the_message() {
    let s = hostile_run("frame-garbage");
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    assert!(s["renderer"]["gpu_violations"].as_u64() >= Some(2), "{s}");
    assert_eq!(
        s["trust"]["uncorroborated"].as_array().map(Vec::len),
        Some(1),
        "{s}"
    );
}

#[test]
fn an_invalid_description_is_rejected() {
    let s = hostile_run("bad-frame");
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    assert!(s["renderer"]["rejected"].as_u64() >= Some(1), "{s}");
}

#[test]
fn a_kept_copy_of_the_seccomp_listener() {
    // The GPU process keeps a copy of its listener and a thread waiting on it to let every
    // refused call run: the launcher finds the copy before it believes the process started.
    killed_for("keep-listener", "kept a copy of its seccomp listener");
}

#[test]
fn a_request_for_a_seccomp_notification_is_refused() {
    // What a thread holding a kept listener would ask: refused by the policy itself, so even a
    // copy the launcher could not see would answer nothing.
    let s = hostile_run("notif-ioctl");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the GPU process's: {s}");
    assert_eq!(crashes[0]["role"], "gpu");
    let call = crashes[0]["cause"]["sandbox_violation"]["syscall"].to_string();
    let recv = format!("{:#x}", triptych_sys::notify::SECCOMP_IOCTL_NOTIF_RECV);
    assert!(
        call.contains("ioctl(") && call.contains(&recv),
        "cause {call} is not the SECCOMP_IOCTL_NOTIF_RECV ioctl ({recv})"
    );
}

#[test]
fn a_flood_of_stderr_reaches_the_log_quarantined_and_bounded() {
    let (o, s) = hostile_run_with("stderr-flood", &["--hang-timeout-ms", "30000"]);
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    let c = &s["processes"]["child_stderr"]["gpu"];
    // The attack happened: most of its lines were dropped, its long line cut.
    assert!(c["dropped_lines"].as_u64() > Some(150_000), "{c}");
    assert!(c["cut_bytes"].as_u64() >= Some(99_000), "{c}");
    // 200,000 lines of 130 bytes were written; the log holds a bounded part of them.
    assert!(
        o.stderr.len() < 512 * 1024,
        "the launcher's log is {} bytes",
        o.stderr.len()
    );
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(!log.contains('\u{1b}'), "a raw escape reached the log");
    let forged = "sandbox violation in gpu: ptrace(";
    let mut seen = 0;
    for line in log.lines().filter(|l| l.contains(forged)) {
        let gpu = format!("gpu[{}] | ", s["processes"]["pids"]["gpu"]);
        let at = line.find(forged).expect("found");
        assert!(
            line[..at].contains(&gpu),
            "a forged line is not marked as the GPU process's: {line:?}"
        );
        seen += 1;
    }
    assert!(seen >= 2, "the forged line never reached the log:\n{log}");
    assert!(
        s["sandbox"]["violations"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{s}"
    );
    assert!(
        log.contains("lines to stderr over the rate"),
        "no note of the drops:\n{log}"
    );
}

#[test]
fn a_flood_of_trace_events_is_kept_within_the_launchers_budget() {
    let dir = scratch("hostile-gpu-trace-flood-trace");
    let trace = dir.join("t.json");
    let trace = trace.to_str().expect("utf-8 path");
    let (_, s) = hostile_run_with(
        "trace-flood",
        &["--hang-timeout-ms", "30000", "--trace", trace],
    );
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    // The attack happened: the launcher dropped the oldest of what it sent.
    assert!(s["trace"]["dropped"]["gpu"].as_u64() > Some(10_000), "{s}");
    assert_eq!(s["trace"]["dropped"]["renderer"], 0, "{s}");
    let t = std::fs::read_to_string(trace).expect("the trace");
    assert!(
        t.contains("trace.gpu_events_dropped_by_launcher"),
        "the trace does not say so"
    );
}

/// The GPU process lies to the renderer about frames: the renderer drops the lie, never
/// composites it, keeps its pid, and shows the launcher the sealed descriptions that prove it;
/// the launcher checks the seals and the lie itself, and kills the GPU process for it, named.
fn proven_lie(attack: &str, want: &str) -> serde_json::Value {
    let s = hostile_run(attack);
    // The attack happened.
    let dropped = s["renderer"]["gpu_violations"].as_u64().unwrap_or(0);
    assert!(dropped >= 1, "{attack}: no lie dropped: {s}");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(
        crashes.len(),
        1,
        "{attack}: one crash, the GPU process's: {s}"
    );
    assert_eq!(crashes[0]["role"], "gpu", "{attack}: {s}");
    let cause = crashes[0]["cause"].to_string();
    assert!(
        cause.contains("frame channel") && cause.contains(want),
        "{attack}: cause {cause} does not name {want:?}"
    );
    assert_eq!(s["trust"]["proven_gpu_lies"], 1, "{attack}: {s}");
    assert_eq!(
        s["renderer"]["gpu_switches"], 1,
        "{attack}: one renderer all along: {s}"
    );
    s
}

#[test]
fn a_frame_sent_twice_costs_the_gpu_process() {
    proven_lie("frame-twice", "sealed frame 3 right after frame 3");
}

#[test]
fn a_frame_numbered_ahead_costs_the_gpu_process() {
    proven_lie("frame-ahead", "sealed frame 6 right after frame 3");
}

#[test]
fn a_frame_of_a_generation_never_started_costs_the_gpu_process() {
    proven_lie(
        "frame-future-generation",
        "generation 3, which was never started",
    );
}

#[test]
fn an_eventfd_where_a_fence_should_be_costs_the_gpu_process() {
    proven_lie("eventfd-fence", "eventfd");
}

#[test]
fn descriptions_of_an_epoch_not_its_own_cost_the_gpu_process() {
    // A second of 30 KiB descriptions of an epoch long gone, while frames go on: the first
    // one the renderer takes shows the lie, and freeing what its reader allocated must not
    // make its C library reach for a file its sandbox refuses.
    let s = proven_lie("stale-flood", "gives epoch");
    assert!(s["renderer"]["stale_dropped"].as_u64() >= Some(1), "{s}");
}

#[test]
fn a_claim_against_the_renderer_that_the_launcher_refutes_costs_the_gpu_process() {
    // It says the renderer broke the release channel (nothing waits there) and stopped reading
    // frames (its queue is not full): the first is refuted and costs it its life, the second
    // cannot be checked and is counted.
    let s = hostile_run("forged-claim");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the GPU process's: {s}");
    assert_eq!(crashes[0]["role"], "gpu", "{s}");
    let cause = crashes[0]["cause"].to_string();
    assert!(
        cause.contains("RendererViolation") && cause.contains("release channel"),
        "{cause}"
    );
    assert!(
        s["trust"]["uncorroborated"]
            .to_string()
            .contains("FramesUnread"),
        "{s}"
    );
}

/// Every GPU process started, replacements too, frames the renderer with `attack`: the renderer
/// keeps its pid throughout, every GPU process is killed and named, and the run ends through the
/// GPU process's own restart ladder, which the summary names.
fn every_gpu_process(attack: &str, extra: &[&str], cause: &str) {
    let dir = scratch(&format!("hostile-gpu-every-{attack}"));
    let json = dir.join("summary.json");
    // Frames enough that no GPU process finishes them before its attack is dealt with.
    let cmd = hostile_command("TRIPTYCH_HOSTILE_GPU", attack, 2000, extra, &dir);
    attack_every(&dir.join("bin"), "triptych-gpu", attack);
    let o = output(cmd);
    assert_eq!(o.status.code(), Some(1), "{attack}: {}", show(&o));
    let s = summary(&json);
    let failure = s["failure"].as_str().unwrap_or_default();
    assert!(
        failure.starts_with("the GPU process crashed more than"),
        "{attack}: the run did not end through the GPU process's ladder: {failure:?}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert!(
        crashes.len() >= 4,
        "{attack}: every GPU process attacked: {s}"
    );
    for c in crashes {
        assert_eq!(c["role"], "gpu", "{attack}: {c}");
        assert!(c["cause"].to_string().contains(cause), "{attack}: {c}");
    }
    // One renderer all along: the first one started is the one at the end.
    let renderer = s["processes"]["pids"]["renderer"]
        .as_u64()
        .expect("renderer pid");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        !log.contains("role=renderer"),
        "{attack}: the renderer was restarted:\n{log}"
    );
    assert!(
        log.contains(&format!("renderer[{renderer}] | ")),
        "{attack}: no line of renderer {renderer}:\n{log}"
    );
}

#[test]
fn a_gpu_process_that_forges_claims_in_every_process_costs_only_the_gpu_processes() {
    every_gpu_process("forged-claim", &[], "RendererViolation");
}

#[test]
fn a_gpu_process_that_lies_about_fences_in_every_process_costs_only_the_gpu_processes() {
    every_gpu_process("eventfd-fence", &[], "frame channel");
}

#[test]
fn a_gpu_process_that_sends_frames_twice_in_every_process_costs_only_the_gpu_processes() {
    every_gpu_process("frame-twice", &[], "right after frame");
}

#[test]
fn a_full_queue_of_frames_the_gpu_process_made_costs_the_renderer_nothing() {
    // It fills the renderer's queue while the renderer waits on a fence not yet signalled, then
    // claims the renderer stopped reading: a state it made itself is no evidence.
    // (Its own sends may then find the queue full, and it stops serving this renderer: then it
    // is the one that stalled, and is replaced.)
    let s = hostile_run("flood-frames");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert!(
        crashes.len() <= 1 && crashes.iter().all(|c| c["role"] == "gpu"),
        "{s}"
    );
    assert!(
        s["trust"]["uncorroborated"]
            .to_string()
            .contains("FramesUnread"),
        "{s}"
    );
    assert!(s["renderer"]["gpu_violations"].as_u64() >= Some(10), "{s}");
}

#[test]
fn strings_it_sends_reach_the_log_escaped() {
    let (o, s) = hostile_run_with("log-forge", &[]);
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    let log = String::from_utf8_lossy(&o.stderr);
    assert_no_forged_line(&log, "2026-12-05T00:00:00.000000Z");
}

#[test]
fn a_gpu_process_that_stops_taking_releases_starves_itself() {
    // It runs out of buffers and reports being starved, as a renderer that withholds them would
    // make it; but the releases wait unread at its own end of the socket.
    let s = hostile_run_with("ignore-releases", &["--hang-timeout-ms", "800"]).1;
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the GPU process's: {s}");
    assert_eq!(crashes[0]["role"], "gpu", "{s}");
    let cause = crashes[0]["cause"].to_string();
    assert!(cause.contains("releases unread"), "{cause}");
}

#[test]
fn a_frame_sent_but_never_reported_is_not_the_renderers() {
    // The renderer presents no frame above what the launcher heard reported produced: it waits
    // for the word and drops the frame as the GPU process's lie. The GPU process's next report
    // skips a frame, which the launcher sees for itself.
    let s = hostile_run("unreported");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the GPU process's: {s}");
    assert_eq!(crashes[0]["role"], "gpu", "{s}");
    assert!(crashes[0]["cause"].to_string().contains("Produced"), "{s}");
}

#[test]
fn its_own_buffer_named_as_a_fence_costs_the_gpu_process() {
    proven_lie("buffer-fence", "as a Pipe fence");
}

#[test]
fn a_lie_the_renderer_cannot_prove_first_does_not_hide_one_it_can() {
    // Unsealed garbage (reported in words, counted) and then a frame sent twice (shown).
    let s = proven_lie("garbage-then-twice", "right after frame");
    assert!(
        s["trust"]["uncorroborated"]
            .to_string()
            .contains("broke the frame channel"),
        "{s}"
    );
}

#[test]
fn a_showing_it_made_unprovable_first_does_not_hide_a_lie_it_can_prove() {
    // A description of another epoch under a seal that does not hold (counted), then a frame
    // sent twice (shown, and proven).
    let s = proven_lie("unsealed-then-twice", "right after frame");
    assert!(
        s["trust"]["uncorroborated"]
            .to_string()
            .contains("does not hold"),
        "{s}"
    );
}
