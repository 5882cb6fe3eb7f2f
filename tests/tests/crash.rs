//! Crash isolation with real kills: chaos runs, a hung GPU process, the fallback ladder.

use triptych_tests::*;

fn run_json(
    tag: &str,
    args: &[&str],
) -> (serde_json::Value, std::path::PathBuf, std::process::Output) {
    run_json_with(tag, args, |_, _| {})
}

/// [`run_json`], with `prepare` given the command and the run's scratch directory first.
fn run_json_with(
    tag: &str,
    args: &[&str],
    prepare: impl FnOnce(&mut std::process::Command, &std::path::Path),
) -> (serde_json::Value, std::path::PathBuf, std::process::Output) {
    let dir = scratch(tag);
    let json = dir.join("summary.json");
    let png = dir.join("f.png");
    let mut cmd = triptych(&["run"]);
    cmd.args(args)
        .arg("--out")
        .arg(&png)
        .arg("--summary-json")
        .arg(&json);
    prepare(&mut cmd, &dir);
    let o = output(cmd);
    assert!(
        o.status.success(),
        "the launcher must survive every kill: {}",
        show(&o)
    );
    (summary(&json), png, o)
}

/// Makes every GPU process of `cmd`'s run the adversary, aborting as soon as it is confined
/// whenever it is asked for `backend` (`auto`, `shm` or `dmabuf`): a GPU process that never
/// comes up on that rung of the ladder.
fn crash_gpu_on_start_with(cmd: &mut std::process::Command, dir: &std::path::Path, backend: &str) {
    let bin_dir = adversary_bin(dir);
    attack_every(
        &bin_dir,
        "triptych-gpu",
        &format!("crash-on-start-with:{backend}"),
    );
    cmd.env("TRIPTYCH_BIN_DIR", bin_dir);
}

/// Pids of every child the run ever had, dead or alive.
fn all_child_pids(s: &serde_json::Value) -> Vec<u32> {
    let mut v: Vec<u32> = s["recovery"]["crashes"]
        .as_array()
        .expect("crashes")
        .iter()
        .map(|c| c["pid"].as_u64().expect("pid") as u32)
        .collect();
    v.push(s["processes"]["pids"]["gpu"].as_u64().expect("gpu pid") as u32);
    v.push(
        s["processes"]["pids"]["renderer"]
            .as_u64()
            .expect("renderer pid") as u32,
    );
    v
}

#[test]
fn a_hundred_random_kills_are_all_detected_and_recovered() {
    let frames = 900u64;
    let (s, png, o) = run_json(
        "chaos",
        &[
            "--frames",
            "900",
            "--size",
            "96x64",
            "--layers",
            "3",
            "--chaos",
            "20261122",
            "--chaos-kills",
            "110",
            "--max-crashes",
            "1000",
            "--fence-timeout-ms",
            "250",
            "--heartbeat-ms",
            "100",
            "--hang-timeout-ms",
            "5000",
        ],
    );
    let planned = s["recovery"]["chaos_kills_planned"]
        .as_u64()
        .expect("planned");
    assert!(planned >= 100, "only {planned} kills planned");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert!(
        crashes.len() as u64 >= 100,
        "{} kills were detected out of {planned} planned:\n{}",
        crashes.len(),
        String::from_utf8_lossy(&o.stdout)
    );
    // Every kill is one detected crash: each injected fault that fired and each SIGKILL sent
    // from outside appears in exactly one crash record.
    let fired: Vec<&str> = s["recovery"]["faults_fired"]
        .as_array()
        .expect("fired")
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    let external = s["recovery"]["external_kills"].as_u64().expect("external") as usize;
    let uninjected: Vec<&serde_json::Value> =
        crashes.iter().filter(|c| c["injected"].is_null()).collect();
    assert_eq!(
        crashes.len(),
        fired.len() + external,
        "crashes vs kills: {} fired, {external} external; not injected: {uninjected:?}",
        fired.len()
    );
    for f in &fired {
        let n = crashes
            .iter()
            .filter(|c| c["injected"].as_str() == Some(f))
            .count();
        assert_eq!(n, 1, "fault {f} is in {n} crash records");
    }
    let n_ext = crashes
        .iter()
        .filter(|c| c["injected"] == "external SIGKILL")
        .count();
    assert_eq!(n_ext, external);
    // Both roles, several causes and points.
    let roles: std::collections::BTreeSet<&str> =
        crashes.iter().filter_map(|c| c["role"].as_str()).collect();
    assert_eq!(roles.len(), 2, "{roles:?}");
    let injected: std::collections::BTreeSet<String> = crashes
        .iter()
        .filter_map(|c| c["injected"].as_str())
        .map(|i| i.split(" at ").next().unwrap_or(i).to_owned())
        .collect();
    for kind in ["Kill", "Segv", "Abort", "StopFences", "external SIGKILL"] {
        assert!(
            injected.iter().any(|i| i.starts_with(kind)),
            "no {kind} among {injected:?}"
        );
    }
    // Every crash was followed by a replacement's frame on screen.
    for c in crashes {
        assert!(
            c["recovery_us"].as_f64().is_some(),
            "crash without recovery: {c}"
        );
    }
    // No zombie or orphan: every child the run ever had is gone.
    for pid in all_child_pids(&s) {
        assert!(!alive(pid), "child {pid} outlived the run");
    }
    // The survivors' fds are back at their baseline.
    let fc = &s["processes"]["fd_counts"];
    assert_eq!(
        fc["launcher_at_10"], fc["launcher_at_end"],
        "launcher fds: {fc}"
    );
    if fc["renderer_at_10"].is_u64() {
        assert_eq!(
            fc["renderer_at_10"], fc["renderer_at_end"],
            "renderer fds: {fc}"
        );
    }
    // Nothing stale was ever composited, and the last frame is exactly right.
    assert_eq!(s["renderer"]["stale_composited"], 0, "{}", s["renderer"]);
    assert_eq!(s["frames"]["last"], frames - 1);
    let (w, h, px) = read_png(&png);
    let bad = check_pixels(frames - 1, 3, w, h, &px);
    assert!(bad.is_empty(), "{:?}", &bad[..bad.len().min(5)]);
}

#[test]
fn a_gpu_that_stops_signalling_is_replaced_within_the_deadline() {
    let (s, png, _) = run_json(
        "hang",
        &[
            "--frames",
            "80",
            "--size",
            "96x64",
            "--fault",
            "gpu-after-export:stop-fences@20",
            "--fence-timeout-ms",
            "1000",
            "--heartbeat-ms",
            "20",
        ],
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "{crashes:?}");
    let c = &crashes[0];
    assert_eq!(c["role"], "gpu");
    assert!(
        c["cause"]["fence_timeout"].is_object(),
        "cause: {}",
        c["cause"]
    );
    // Detected by the fence deadline, corroborated by the launcher's own look at the fence
    // (the cause says so), not by the heartbeat or stall timeouts.
    assert!(c["detection_us"].as_f64().is_some());
    assert!(c["recovery_us"].as_f64().is_some());
    assert_eq!(s["trust"]["refuted_fence_timeouts"], 0);
    // The renderer's loop never blocked on the dead fence: no iteration lasted the 1 s fence
    // deadline (a blocking wait would take all of it).
    let busy = s["renderer"]["max_busy_us"].as_u64().expect("max_busy_us");
    assert!(
        busy < 1_000_000,
        "the renderer's loop was busy for {busy} us at a stretch, as long as a fence wait"
    );
    assert!(s["latency"]["renderer_ping_max_us"].as_f64().is_some());
    assert_eq!(s["renderer"]["stale_composited"], 0);
    let (w, h, px) = read_png(&png);
    assert!(check_pixels(79, 3, w, h, &px).is_empty());
}

#[test]
fn a_gpu_that_crashes_on_every_start_steps_down_to_shm() {
    let (s, png, o) = run_json_with(
        "ladder",
        &[
            "--frames",
            "30",
            "--size",
            "96x64",
            "--buffers",
            "auto",
            "--max-crashes",
            "2",
        ],
        |cmd, dir| crash_gpu_on_start_with(cmd, dir, "auto"),
    );
    let fallbacks = s["recovery"]["fallbacks"].as_array().expect("fallbacks");
    assert_eq!(fallbacks.len(), 1, "{fallbacks:?}");
    assert!(
        fallbacks[0]
            .as_str()
            .is_some_and(|f| f.contains("falling back to shm")),
        "{fallbacks:?}"
    );
    assert_eq!(
        s["recovery"]["crashes"].as_array().expect("crashes").len(),
        3,
        "2 forgiven + 1 over the limit"
    );
    assert_eq!(s["paths"]["backend"], "shm");
    assert!(String::from_utf8_lossy(&o.stdout)
        .contains("fallback: GPU process crashed more than 2 times"));
    let (w, h, px) = read_png(&png);
    assert!(check_pixels(29, 3, w, h, &px).is_empty());
}

#[test]
fn an_exhausted_ladder_fails_with_the_crash_history() {
    let dir = scratch("exhausted");
    let mut cmd = triptych(&[
        "run",
        "--frames",
        "10",
        "--size",
        "64x48",
        "--buffers",
        "shm",
    ]);
    cmd.args(["--max-crashes", "1", "--out"])
        .arg(dir.join("f.png"));
    crash_gpu_on_start_with(&mut cmd, &dir, "shm");
    let o = output(cmd);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("crash history"), "{err}");
    assert!(
        err.contains("every rung of the fallback ladder (shm)"),
        "{err}"
    );
}

#[test]
fn a_slow_gpu_is_waited_for_and_nobody_is_blamed() {
    // One frame's fences signal 400 ms late: the renderer finds them unsignalled, waits, and
    // shows the frame; nothing is replaced, and the frame is not a crash of anyone's.
    let (s, png, _) = run_json(
        "late-fences",
        &[
            "--frames",
            "20",
            "--size",
            "96x64",
            "--fault",
            "gpu-after-export:late-fences@8",
        ],
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert!(crashes.is_empty(), "{crashes:?}");
    assert_eq!(
        s["recovery"]["faults_fired"][0], "LateFences at frame 8 (GpuAfterExport)",
        "{}",
        s["recovery"]
    );
    // The late frame reached the screen the 400 ms later, not sooner and not never.
    let handoff = s["latency"]["handoff"]["max_us"].as_f64().unwrap_or(0.0);
    assert!(handoff >= 390_000.0, "{}", s["latency"]);
    let r = &s["renderer"];
    assert!(
        r["fences_pending"].as_u64().unwrap_or(0) >= 1,
        "the late frame's fences were never found unsignalled: {r}"
    );
    assert_eq!(r["fence_timeouts"], 0, "{r}");
    assert_eq!(s["frames"]["count"], 20, "{}", s["frames"]);
    let (w, h, px) = read_png(&png);
    assert!(check_pixels(19, 3, w, h, &px).is_empty());
}

#[test]
fn a_gpu_that_answers_pings_but_produces_nothing_is_replaced() {
    // The fence deadline is far away, so only the stall watchdog can notice.
    let (s, png, _) = run_json(
        "stall",
        &[
            "--frames",
            "40",
            "--size",
            "96x64",
            "--fault",
            "gpu-after-export:stop-fences@15",
            "--fence-timeout-ms",
            "60000",
            "--heartbeat-ms",
            "50",
            "--hang-timeout-ms",
            "2500",
        ],
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "{crashes:?}");
    assert_eq!(crashes[0]["role"], "gpu");
    assert!(
        crashes[0]["cause"]["stalled"].is_object(),
        "cause: {}",
        crashes[0]["cause"]
    );
    assert!(crashes[0]["recovery_us"].as_f64().is_some());
    let (w, h, px) = read_png(&png);
    assert!(check_pixels(39, 3, w, h, &px).is_empty());
}
