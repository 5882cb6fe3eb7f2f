//! A compromised standby GPU process (`triptych-adversary`'s `gpu::standby`): sandboxed and
//! ready, waiting for `Start`, it breaks the rules the launcher holds a standby to. Every GPU
//! process of the run is the adversary; only a standby attacks (a cold start finds its `Start`
//! already queued), and every process paces its frames so that the standby is made, ready and
//! dealt with before the run ends.
//!
//! In every case the standby is killed and named (a crash record with `standby: true` whose
//! cause names the breach), the GPU process running and the renderer keep their pids (nothing is
//! promoted, nothing restarted), every frame is presented, the run exits 0, and the launcher
//! ends at the fds and memory of a clean run. Two cases differ, each as it says: a standby that
//! dies every time ends the run through the GPU process's crash ladder, and a promoted standby
//! that reports another `GpuInfo` than its `Ready`'s fails its start and is replaced cold.

use triptych_tests::*;

/// Frames of a run: at the adversary's 10 ms a frame, three seconds, in which the standby is
/// spawned (after the tenth frame), ready, attacks and is killed, and a next one may follow.
const FRAMES: u64 = 300;

/// Runs `attack` (`standby-<name>`) in every GPU process, `frames` frames, with `extra`
/// arguments; returns the launcher's output and the summary.
fn standby_run(
    attack: &str,
    frames: u64,
    extra: &[&str],
) -> (std::process::Output, serde_json::Value) {
    let dir = scratch(&format!("hostile-{attack}"));
    let cmd = hostile_command("TRIPTYCH_HOSTILE_GPU", attack, frames, extra, &dir);
    attack_every(&dir.join("bin"), "triptych-gpu", attack);
    let o = output(cmd);
    let s = summary(&dir.join("summary.json"));
    (o, s)
}

/// The crash records of `s`.
fn crashes(s: &serde_json::Value) -> &Vec<serde_json::Value> {
    s["recovery"]["crashes"].as_array().expect("crashes")
}

/// Runs `attack` and checks what every case but two shares (see the module documentation): the
/// standby was killed at least once, each time named with a cause that contains `want`, and the
/// rest of the run went on untouched. Returns the summary.
fn standby_killed_for(attack: &str, frames: u64, want: &str) -> serde_json::Value {
    // Each standby attacks; the ladder's limit is raised so that a short run of many standby
    // deaths is not ended by them (`a_standby_that_dies_every_time_ends_the_run_through_the_ladder`
    // is that case).
    let (o, s) = standby_run(attack, frames, &["--max-crashes", "100"]);
    assert!(
        o.status.success(),
        "{attack}: the run must survive a hostile standby: {}",
        show(&o)
    );
    at_baseline(attack, &s);
    assert_eq!(
        s["frames"]["last"],
        frames - 1,
        "{attack}: every frame presented: {s}"
    );
    let crashes = crashes(&s);
    // The attack happened: at least one standby was killed for it.
    assert!(!crashes.is_empty(), "{attack}: no standby was killed: {s}");
    for c in crashes {
        assert_eq!(c["role"], "gpu", "{attack}: {c}");
        assert_eq!(c["standby"], true, "{attack}: not the standby's: {c}");
        let cause = c["cause"].to_string();
        assert!(
            cause.contains(want),
            "{attack}: cause {cause} does not name {want:?}"
        );
    }
    let st = &s["recovery"]["standby"];
    assert_eq!(st["deaths"].as_u64(), Some(crashes.len() as u64), "{st}");
    // The GPU process that started the run is the one that ended it, with the same renderer.
    assert_eq!(st["promotions"], 0, "{attack}: {st}");
    assert_eq!(st["cold_starts"], 1, "{attack}: {st}");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        !log.contains("role=renderer"),
        "{attack}: the renderer was restarted:\n{log}"
    );
    let gpu = s["processes"]["pids"]["gpu"].as_u64().expect("gpu pid");
    assert!(
        crashes.iter().all(|c| c["pid"].as_u64() != Some(gpu)),
        "{attack}: the GPU process running was blamed: {s}"
    );
    s
}

#[test]
fn a_second_ready_kills_the_standby() {
    standby_killed_for("standby-second-ready", FRAMES, "Ready: sent a second time");
}

#[test]
fn started_before_start_kills_the_standby() {
    standby_killed_for("standby-started", FRAMES, "Started before Started");
}

#[test]
fn a_trace_batch_from_the_standby_kills_it() {
    standby_killed_for("standby-trace", FRAMES, "Trace before Started");
}

#[test]
fn a_fault_notice_from_the_standby_kills_it() {
    standby_killed_for("standby-fault-fired", FRAMES, "FaultFired before Started");
}

#[test]
fn a_serving_report_from_the_standby_kills_it() {
    standby_killed_for("standby-serving", FRAMES, "Serving before Started");
}

#[test]
fn a_flood_from_the_standby_kills_it_at_its_first_message() {
    // Its flood is of `Pong(0)`, an answer to no ping.
    standby_killed_for("standby-flood", FRAMES, "an answer to ping 0");
}

#[test]
fn a_second_listener_from_the_standby_kills_it() {
    standby_killed_for("standby-second-listener", FRAMES, "SandboxListener");
}

#[test]
fn a_standby_that_closes_its_control_socket_and_lives_on_is_named_for_it() {
    let s = standby_killed_for(
        "standby-close-socket",
        FRAMES,
        "closed while the process lives on",
    );
    // It was killed for the closed socket, not found dead.
    for c in crashes(&s) {
        assert_eq!(
            c["cause"]["protocol_violation"]["kind"], "control socket",
            "{c}"
        );
    }
}

#[test]
fn a_standby_that_tries_to_kill_the_launcher_is_killed_by_its_sandbox() {
    // Its refused `kill` is reported through its listener, which the launcher adopted when the
    // standby handed it over: the standby alone dies for it.
    let s = standby_killed_for("standby-kill", FRAMES, "kill(");
    for c in crashes(&s) {
        assert!(
            c["cause"]["sandbox_violation"]["syscall"]
                .as_str()
                .is_some_and(|call| call.starts_with("kill(")),
            "not the kill call: {c}"
        );
    }
}

#[test]
fn a_standby_that_never_reports_ready_is_named_hung() {
    // At 100 ms a frame, 360 frames outlast the 30 s a standby has to report Ready: the first
    // standby is killed as hung; the next, spawned after its back-off, hangs too and is shut
    // down with the run, unused.
    let s = standby_killed_for("standby-hang", 360, "\"hang\"");
    let st = &s["recovery"]["standby"];
    assert_eq!(st["deaths"], 1, "{st}");
    assert!(st["ready_ms"].is_null(), "no standby was ever ready: {st}");
    let silent = crashes(&s)[0]["cause"]["hang"]["silent_ms"]
        .as_u64()
        .expect("a hang");
    assert!(silent >= 30_000, "killed after {silent} ms");
}

#[test]
fn a_ready_standby_that_stops_answering_is_named_hung() {
    // Pinged with every heartbeat once ready, it answers none: it is killed as hung after the
    // hang timeout (here 1 s), long before a promotion could wait on it, and not after the 30 s
    // a standby has to report Ready.
    let (o, s) = standby_run(
        "standby-deaf",
        FRAMES,
        &["--max-crashes", "100", "--hang-timeout-ms", "1000"],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(s["frames"]["last"], FRAMES - 1, "{s}");
    let crashes = crashes(&s);
    assert!(!crashes.is_empty(), "no standby was killed: {s}");
    for c in crashes {
        assert_eq!(c["role"], "gpu", "{c}");
        assert_eq!(c["standby"], true, "{c}");
        let silent = c["cause"]["hang"]["silent_ms"].as_u64().expect("a hang");
        assert!(
            (1000..10_000).contains(&silent),
            "killed after {silent} ms: {c}"
        );
    }
    assert_eq!(s["recovery"]["standby"]["promotions"], 0, "{s}");
    assert!(
        s["recovery"]["standby"]["ready_ms"].as_f64().is_some(),
        "the standby was ready before it stopped: {s}"
    );
}

#[test]
fn a_standby_that_dies_every_time_ends_the_run_through_the_ladder() {
    // Each standby aborts once ready: each death counts on the GPU process's crash ladder, and
    // the fourth within the window (`--max-crashes 3`, shm the only rung) ends the run, naming
    // the ladder, while the GPU process running and the renderer were never touched.
    let (o, s) = standby_run("standby-abort", 1000, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let failure = s["failure"].as_str().unwrap_or_default();
    assert!(
        failure.starts_with("the GPU process crashed more than 3 times"),
        "the run did not end through the GPU process's ladder: {failure:?}"
    );
    let crashes = crashes(&s);
    assert_eq!(crashes.len(), 4, "{s}");
    for c in crashes {
        assert_eq!(c["role"], "gpu", "{c}");
        assert_eq!(c["standby"], true, "{c}");
        assert!(c["cause"].to_string().contains("SIGABRT"), "{c}");
    }
    let st = &s["recovery"]["standby"];
    assert_eq!(st["deaths"], 4, "{st}");
    assert_eq!(st["promotions"], 0, "{st}");
    assert_eq!(st["cold_starts"], 1, "{st}");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        !log.contains("role=renderer"),
        "the renderer was restarted:\n{log}"
    );
}

#[test]
fn a_promoted_standby_that_reports_another_gpu_is_replaced_cold() {
    // The GPU process running is killed at frame 150 (an injected fault); the standby, promoted,
    // reports `Started` with a `GpuInfo` other than its `Ready`'s: it fails its start, and a cold
    // start finishes the run.
    let (o, s) = standby_run(
        "standby-other-started",
        FRAMES,
        &["--fault", "gpu-render:kill@150"],
    );
    assert!(o.status.success(), "{}", show(&o));
    at_baseline("standby-other-started", &s);
    assert_eq!(
        s["frames"]["last"],
        FRAMES - 1,
        "every frame presented: {s}"
    );
    let crashes = crashes(&s);
    assert_eq!(crashes.len(), 2, "the killed one and the promoted one: {s}");
    assert!(crashes.iter().all(|c| c["role"] == "gpu"), "{s}");
    assert!(crashes[0]["injected"].is_string(), "{s}");
    let cause = crashes[1]["cause"].to_string();
    assert!(
        cause.contains("Started: not what Ready reported"),
        "cause {cause}"
    );
    // The one that failed is the promoted standby, and its record says so.
    assert_eq!(crashes[1]["standby"], true, "{s}");
    assert_eq!(crashes[0]["standby"], false, "{s}");
    let st = &s["recovery"]["standby"];
    assert_eq!(st["promotions"], 1, "{st}");
    assert_eq!(st["cold_starts"], 2, "{st}");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        !log.contains("role=renderer"),
        "the renderer was restarted:\n{log}"
    );
}
