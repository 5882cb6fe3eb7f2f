//! The trust boundary, tried from inside: a real, sandboxed renderer in its hostile mode (debug
//! builds only) breaks the protocol in one way per case, using only the sockets and fds it holds. For
//! each, the launcher must finish the run with exit 0 and every frame presented, record the
//! renderer as compromised with the cause named, and leave the GPU process alone.

use triptych_tests::*;

/// Frames of each hostile run: enough for an attack repeated at every frame to be repeated
/// often.
const FRAMES: u64 = 200;

fn hostile_run(attack: &str, extra: &[&str]) -> serde_json::Value {
    hostile_run_logged(attack, extra).1
}

/// The launcher's log (children's lines quarantined in it) and the summary of a hostile run.
fn hostile_run_logged(attack: &str, extra: &[&str]) -> (String, serde_json::Value) {
    let dir = scratch(&format!("hostile-{attack}"));
    let json = dir.join("summary.json");
    let cmd = hostile_command("TRIPTYCH_HOSTILE", attack, FRAMES, extra, &dir);
    let o = output(cmd);
    assert!(
        o.status.success(),
        "{attack}: the run must survive a hostile renderer: {}",
        show(&o)
    );
    let s = summary(&json);
    let pipes = extra.windows(2).any(|w| w == ["--progress-fences", "off"]);
    at_baseline_with(attack, &s, pipes);
    (String::from_utf8_lossy(&o.stderr).into_owned(), s)
}

fn check(attack: &str, want: &str, extra: &[&str]) {
    let s = hostile_run(attack, extra);
    assert_eq!(
        s["frames"]["last"],
        FRAMES - 1,
        "{attack}: every frame presented: {s}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "{attack}: one crash, the renderer's: {s}");
    let c = &crashes[0];
    assert_eq!(c["role"], "renderer", "{attack}: {c}");
    let cause = c["cause"].to_string();
    assert!(
        cause.contains("protocol_violation") && cause.contains(want),
        "{attack}: cause {cause} does not name {want:?}"
    );
}

#[test]
fn oversized_message() {
    check("huge", "longer than", &[]);
}

#[test]
fn undecodable_message() {
    check("garbage", "undecodable", &[]);
}

#[test]
fn fds_on_a_message_that_carries_none() {
    check("fds", "fds", &[]);
}

#[test]
fn presented_slot_that_does_not_exist() {
    check("bad-slot", "slot 99", &[]);
}

#[test]
fn presented_damage_outside_the_frame() {
    check("bad-damage", "reaches outside", &[]);
}

#[test]
fn presented_more_pixels_composited_than_the_frame_has() {
    check("over-composited", "pixels composited into a frame of", &[]);
}

#[test]
fn presented_last_frame_that_was_never_produced() {
    check("last-frame", "never produced", &[]);
}

#[test]
fn a_second_command_server_once_sandboxed_costs_the_renderer() {
    check(
        "commands-at",
        r#"CommandsAt","what":"sent a second time"#,
        &[],
    );
}

#[test]
fn second_output() {
    check("second-output", "second time", &[]);
}

#[test]
fn a_fence_timeout_naming_a_fence_its_frame_did_not_costs_the_renderer() {
    // The renderer claims frame 0's fence timed out, naming an fd that is not the fence the
    // launcher handed it in frame 0 (or naming a frame not handed yet): the launcher, which
    // relayed the frame, sees the lie itself.
    check("forged-timeout", "FenceTimeout", &[]);
}

#[test]
fn true_fences_claimed_as_no_fence_are_refuted_and_looked_at_a_few_times_at_most() {
    // The renderer says, five times, that a frame's fence, a true one, is no fence. The launcher
    // knows which fd the frame named (it handed the frame on) and looks at it itself, four
    // times at most: refuted, nobody is killed, the GPU process keeps its pid.
    let (log, s) = hostile_run_logged("fence-claim", &[]);
    assert_eq!(s["frames"]["last"], FRAMES - 1, "{s}");
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    assert_eq!(s["trust"]["proven_gpu_lies"], 0, "{s}");
    assert_eq!(s["trust"]["refuted_fence_claims"], 4, "{s}");
    assert_eq!(s["trust"]["fence_claims_unlooked"], 1, "{s}");
    assert_eq!(s["renderer"]["gpu_switches"], 0, "{s}");
    assert!(
        log.contains("hostile renderer: claimed a true fence is no fence"),
        "the attack never happened:\n{log}"
    );
}

#[test]
fn trace_batch_when_tracing_is_off() {
    check("trace-off", "tracing is off", &[]);
}

#[test]
fn message_flood() {
    check("flood", "messages in one second", &[]);
}

#[test]
fn release_of_a_buffer_never_held_costs_the_renderer() {
    // Every release goes through the launcher, which knows what the renderer holds: one of a
    // buffer it was never handed is the renderer's violation, and never reaches the GPU process.
    let (log, s) = hostile_run_logged("bogus-release", &[]);
    assert!(
        log.lines()
            .any(|l| l.contains("renderer[") && l.contains("releasing buffer 9999.7, never held")),
        "the release was never sent:\n{log}"
    );
    assert!(
        !log.contains("which is not in flight"),
        "the release reached the GPU process:\n{log}"
    );
    assert_eq!(s["frames"]["last"], FRAMES - 1, "{s}");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the renderer's: {s}");
    assert_eq!(crashes[0]["role"], "renderer", "{s}");
    let cause = crashes[0]["cause"].to_string();
    assert!(
        cause.contains("protocol_violation")
            && cause.contains("9999/7 of epoch 1, which it does not hold"),
        "{cause}"
    );
}

#[test]
fn a_release_of_another_epoch() {
    check("epoch-release", "epoch", &[]);
}

#[test]
fn a_frame_given_back_unseen_costs_the_renderer() {
    // Frames taken and thrown away before they are presented or rejected would leave the GPU
    // process to be blamed for a screen that never changes: the launcher, which handed the
    // frame on, sees its buffers come back unanswered.
    check("drop-unseen", "neither presented nor rejected", &[]);
}

/// A renderer that rejects good frames (`reject-all`), run with `extra`. Its first rejection is
/// its word alone. From it on the launcher vouches for the GPU process's frames: it takes and
/// checks their buffers and fences itself and hands the buffers on, so the next rejection is a
/// lie the launcher can prove, and costs the renderer its life. The fresh renderer gets vouched
/// frames too, takes its buffers from the launcher's fds and presents them; the GPU process keeps
/// its pid. Returns the log and the summary.
fn rejects_good_frames(extra: &[&str]) -> (String, serde_json::Value) {
    let (log, s) = hostile_run_logged("reject-all", extra);
    assert!(
        log.contains("hostile renderer: rejecting a good frame"),
        "the attack never happened:\n{log}"
    );
    assert_eq!(s["frames"]["last"], FRAMES - 1, "{s}");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the renderer's: {s}");
    assert_eq!(crashes[0]["role"], "renderer", "{s}");
    let cause = crashes[0]["cause"].to_string();
    assert!(
        cause.contains("protocol_violation") && cause.contains("which the launcher vouched for"),
        "{cause}"
    );
    assert_eq!(s["trust"]["vouched_gpus"], 1, "{s}");
    assert_eq!(s["trust"]["refuted_vouched_claims"], 1, "{s}");
    assert!(s["trust"]["vouched_frames"].as_u64() > Some(100), "{s}");
    assert!(s["renderer"]["vouched_frames"].as_u64() > Some(100), "{s}");
    assert_eq!(s["renderer"]["fence_timeouts"], 0, "{s}");
    (log, s)
}

#[test]
fn a_renderer_that_rejects_good_frames_costs_itself_once_the_launcher_vouches() {
    let (log, s) = rejects_good_frames(&[]);
    // The slower path is logged and marked in the trace.
    assert!(
        log.contains("from now on the launcher takes and checks each of its frames"),
        "{log}"
    );
    let trace = s["trace"]["path"].as_str().expect("a traced run");
    let t = std::fs::read_to_string(trace).expect("the trace");
    assert!(
        t.contains("vouched frames"),
        "the trace does not mark the slower path"
    );
}

#[test]
fn vouched_frames_need_no_fds_from_the_gpu_process_under_the_scm_rights_transport() {
    // With SCM_RIGHTS the GPU process sends the renderer each frame's fds itself; a vouched
    // frame brings its buffers from the launcher, so the renderer only drops those messages, and
    // the GPU process, keeping its fences private, sends no fence.
    rejects_good_frames(&["--transport", "scm-rights"]);
}

#[test]
fn a_renderer_that_rejects_good_frames_in_every_renderer_costs_only_the_renderers() {
    // Every renderer started, replacements too, rejects good frames: each is killed for the
    // first rejection the launcher can prove a lie, the GPU process keeps its pid throughout,
    // and the run ends through the renderer's ladder.
    let dir = scratch("hostile-every-reject-all");
    let json = dir.join("summary.json");
    let cmd = hostile_command("TRIPTYCH_HOSTILE", "reject-all", 2000, &[], &dir);
    attack_every(&dir.join("bin"), "triptych-renderer", "reject-all");
    let o = output(cmd);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let s = summary(&json);
    let failure = s["failure"].as_str().unwrap_or_default();
    assert!(
        failure.starts_with("the renderer crashed more than"),
        "the run did not end through the renderer's ladder: {failure:?}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert!(crashes.len() >= 4, "every renderer attacked: {s}");
    for c in crashes {
        assert_eq!(c["role"], "renderer", "{c}");
        assert!(c["cause"].to_string().contains("vouched for"), "{c}");
    }
    assert_eq!(
        s["trust"]["vouched_gpus"], 1,
        "one GPU process all along: {s}"
    );
}

#[test]
fn withheld_releases_blame_the_renderer_not_the_gpu_process() {
    check(
        "withhold",
        "held every buffer",
        &["--hang-timeout-ms", "800"],
    );
}

#[test]
fn a_forged_violation_report_is_itself_a_violation_and_lists_no_call() {
    let s = hostile_run("forge-report", &[]);
    assert_eq!(s["frames"]["last"], FRAMES - 1, "{s}");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "{s}");
    assert_eq!(crashes[0]["role"], "renderer");
    let cause = crashes[0]["cause"].to_string();
    assert!(cause.contains("report pipe"), "{cause}");
    assert_eq!(
        s["sandbox"]["violations"].as_array().map(Vec::len),
        Some(0),
        "the forged call must not be listed: {s}"
    );
}

#[test]
fn a_silenced_trap_signal_does_not_silence_the_report() {
    let (log, s) = hostile_run_logged("silence-trap", &[]);
    assert_eq!(s["frames"]["last"], FRAMES - 1, "{s}");
    // The signal was silenced before the refused call: the report comes from the kernel.
    assert!(
        log.lines()
            .any(|l| l.contains("renderer[")
                && l.contains("SIGSYS set to be ignored ignored=Returned(")),
        "the renderer never silenced SIGSYS:\n{log}"
    );
    let v = s["sandbox"]["violations"].as_array().expect("violations");
    assert_eq!(v.len(), 1, "{s}");
    assert!(
        v[0].as_str()
            .is_some_and(|v| v.starts_with("sandbox violation in renderer: openat(")),
        "{v:?}"
    );
    assert!(
        s["sandbox"]["violation_reports"]
            .as_str()
            .is_some_and(|r| r.starts_with("seccomp user notification")),
        "{s}"
    );
}

#[test]
fn presented_of_a_generation_never_asked_for() {
    check("future-generation", "generation 5, not yet asked for", &[]);
}

#[test]
fn presented_of_a_slot_it_handed_over_already() {
    // Right after its first frame, the renderer hands the same slot over again: the launcher
    // holds it (it is on screen) and never gave it back.
    check("handed-over-slot", "handed over already", &[]);
}

#[test]
fn an_output_of_a_generation_never_asked_for() {
    check("output-generation", "of generation 5, beyond 0", &[]);
}

#[test]
fn an_output_with_huge_slots() {
    check("huge-slot-bytes", "slots of 1099511627776 bytes", &[]);
}

#[test]
fn a_fence_byte_read_away_costs_the_renderer_that_frame_and_blames_nobody() {
    // The renderer reads its first frame's pipe fence byte away, so the fence looks abandoned
    // to every holder, keeps that buffer (its fence stays exported: one more pool buffer per
    // layer leaves the GPU process room) and claims the fence timed out. The launcher's own
    // check finds the fence closed by its writer: signalled, the claim refuted, nobody killed.
    // Pipe fences, whose signal a holder can read away (a progress point cannot be).
    let s = hostile_run("drain-fence", &["--pool", "4", "--progress-fences", "off"]);
    assert_eq!(s["frames"]["last"], FRAMES - 1, "{s}");
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "an abandoned fence is no hung GPU process: {s}"
    );
    assert_eq!(s["trust"]["refuted_fence_timeouts"], 1, "{s}");
    assert_eq!(
        s["renderer"]["abandoned_frames"], 1,
        "the frame whose fence byte was read away is the renderer's loss alone: {s}"
    );
    assert_eq!(
        s["frames"]["count"],
        FRAMES - 1,
        "every other frame is presented: {s}"
    );
}

#[test]
fn a_renderer_cannot_write_its_gpu_process_s_progress_page() {
    // From inside a real sandboxed renderer: it asks the kernel to make its mapping of the
    // progress page writable, then writes to it. The page was handed over as a read-only file:
    // the `mprotect` is refused and the write faults. The renderer dies by its own hand, the GPU
    // process keeps its pid and every frame is presented.
    let (log, s) = hostile_run_logged("progress-write", &[]);
    assert!(
        log.contains("asked to make the progress page writable errno=Some(EACCES)"),
        "the attack never happened, or the kernel allowed it:\n{log}"
    );
    assert!(
        !log.contains("wrote the GPU process's progress page"),
        "the renderer wrote the page:\n{log}"
    );
    assert_eq!(s["frames"]["last"], FRAMES - 1, "{s}");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the renderer's: {s}");
    assert_eq!(crashes[0]["role"], "renderer", "{s}");
    assert_eq!(crashes[0]["cause"]["exited"]["signal"], "SIGSEGV", "{s}");
    assert_eq!(
        s["renderer"]["gpu_switches"], 0,
        "the GPU process kept its pid: {s}"
    );
}

/// A hostile renderer in a window on Xvfb whose attack waits for a resize: after one frame is on
/// screen, the window is resized, the renderer hands over a frame of the old size (the attack),
/// and then one more frame is stepped. Returns the summary, after checking that the stepped
/// frame is the predicted composite at the new size, every pixel.
fn hostile_resize(attack: &str) -> serde_json::Value {
    use std::process::Stdio;
    use std::time::Duration;
    use triptych_tests::x11::{press, screenshot, window_id, Lines, Xvfb};
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt as _};
    let field = |line: &str, key: &str| -> u64 {
        line.split(&format!("{key}="))
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {line}"))
    };
    let x = Xvfb::start(640, 480);
    let conn = x.connect();
    let dir = scratch(&format!("hostile-window-{attack}"));
    let json = dir.join("s.json");
    let mut cmd = triptych(&["run", "--window", "--size", "320x240", "--layers", "3"]);
    cmd.args(["--frames", "100000", "--buffers", "shm"])
        .arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(&json)
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("TRIPTYCH_BIN_DIR", adversary_bin(&dir))
        .env("TRIPTYCH_HOSTILE", attack)
        .env("TRIPTYCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting triptych");
    let mut lines = Lines::new(child.stderr.take().expect("stderr"));
    let xid = window_id(&lines.wait_for("window open", Duration::from_secs(30)));
    lines.wait_for("GPU process started", Duration::from_secs(60));
    press(&conn, xid, 0x20);
    let paused = lines.wait_for("paused=true", Duration::from_secs(20));
    // A frame on screen first: the resize then comes after frame 0 was asked for.
    press(&conn, xid, u32::from(b'.'));
    lines.wait_for_after(
        "the stepped frame is on screen",
        &paused,
        Duration::from_secs(30),
    );
    conn.configure_window(xid, &ConfigureWindowAux::new().width(400).height(300))
        .expect("resize");
    conn.flush().expect("flush");
    let resized = lines.wait_for("window resized", Duration::from_secs(20));
    assert!(field(&resized, "first_frame") >= 1, "{resized}");
    lines.wait_for(
        "protocol violation by the renderer",
        Duration::from_secs(30),
    );
    let restarted = lines.wait_for(
        "child crashed; restarting it role=renderer",
        Duration::from_secs(30),
    );
    press(&conn, xid, u32::from(b'.'));
    let stepped = lines.wait_for_after(
        "the stepped frame is on screen",
        &restarted,
        Duration::from_secs(30),
    );
    let frame = field(&stepped, "frame");
    let (w, h, px) = screenshot(&conn, xid);
    assert_eq!((w, h), (400, 300));
    let mut bad = 0;
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 4) as usize;
            let want = triptych_scene::expected_pixel(frame, 3, 400, 300, x, y);
            if px[i..i + 3] != want[..3] {
                bad += 1;
            }
        }
    }
    assert_eq!(
        bad, 0,
        "{attack}: {bad} pixels differ from frame {frame} at 400x300"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let status = wait_within(&mut child, Duration::from_secs(30), "the windowed launcher");
    assert!(status.success(), "{status:?}\n{}", lines.seen.join("\n"));
    let s = summary(&json);
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "{attack}: one crash, the renderer's: {s}");
    assert_eq!(crashes[0]["role"], "renderer", "{attack}: {s}");
    assert_eq!(s["frames"]["resizes"], 1, "{s}");
    s
}

#[test]
fn presented_of_the_old_generation_for_a_frame_asked_for_after_the_resize() {
    let s = hostile_resize("old-generation");
    let cause = s["recovery"]["crashes"][0]["cause"].to_string();
    assert!(
        cause.contains("protocol_violation") && cause.contains("asked for after the resize to 1"),
        "{cause}"
    );
}

#[test]
fn presented_of_the_old_generation_naming_a_slot_that_does_not_exist() {
    let s = hostile_resize("old-generation-bad-slot");
    let cause = s["recovery"]["crashes"][0]["cause"].to_string();
    assert!(
        cause.contains("protocol_violation") && cause.contains("slot 99 does not exist"),
        "{cause}"
    );
    assert_eq!(
        s["frames"]["dropped_for_resize"], 0,
        "a refused frame is not counted as dropped: {s}"
    );
}

#[test]
fn a_kept_copy_of_the_seccomp_listener() {
    // The renderer hands its listener over and keeps its own copy open: the launcher finds the
    // copy in its fd table before taking anything else from it.
    check("keep-listener", "kept a copy of its seccomp listener", &[]);
}

#[test]
fn what_a_dead_renderer_left_on_its_socket_is_not_held_against_its_replacement() {
    // The renderer writes garbage on its socket to the launcher and exits at once: only the
    // renderer that sent it may answer for it.
    let s = hostile_run("garbage-release-exit", &[]);
    assert_eq!(
        s["frames"]["last"],
        FRAMES - 1,
        "every frame presented: {s}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the dying renderer's: {s}");
    assert_eq!(crashes[0]["role"], "renderer", "{s}");
    assert_ne!(
        crashes[0]["pid"], s["processes"]["pids"]["renderer"],
        "the replacement is the renderer at the end: {s}"
    );
}

#[test]
fn an_empty_datagram_on_its_socket() {
    check("empty-release", "empty message", &[]);
}

#[test]
fn strings_it_sends_reach_the_log_escaped() {
    let (log, s) = hostile_run_logged("log-forge", &[]);
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    assert_no_forged_line(&log, "2026-12-05T00:00:00.000000Z");
}

#[test]
fn a_flood_of_one_bogus_release_costs_the_renderer_at_the_first() {
    // The renderer withholds its buffers and floods one release of a buffer it never held: the
    // first one costs it its life, before the stall it would make.
    let (log, s) = hostile_run_logged("release-flood", &["--hang-timeout-ms", "1000"]);
    assert!(
        log.contains("flooding releases"),
        "the flood never started:\n{log}"
    );
    assert_eq!(
        s["frames"]["last"],
        FRAMES - 1,
        "every frame presented: {s}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the renderer's: {s}");
    assert_eq!(crashes[0]["role"], "renderer", "{s}");
    assert!(
        crashes[0]["cause"].to_string().contains("does not hold"),
        "{s}"
    );
}

#[test]
fn a_renderer_that_drains_fences_exported_before_private_fences_cannot_get_the_gpu_process_killed()
{
    // The renderer claims (an old frame) the moment the GPU process starts exporting the last
    // frames, and reads the signal of every new pipe fence in the export window away. Frames
    // made before the GPU process keeps its fences private are not vouched for (their fences may
    // have lost their signal to the renderer, which decides nothing): they go on as before, so
    // the renderer's reading away costs only its own frames, never the GPU process.
    // The claim must come while the GPU process exports the last frames, which depends on how
    // far ahead of the renderer it runs: a run where no new fence appeared after the drainer
    // was armed proves nothing and is made again, at most three times.
    const N: u64 = 12;
    let mut attempt = 0;
    let json = loop {
        attempt += 1;
        let dir = scratch("hostile-drain-vouched");
        let json = dir.join("summary.json");
        let mut cmd = triptych(&["run"]);
        cmd.args([
            "--frames",
            &N.to_string(),
            "--size",
            "3840x2160",
            "--layers",
            "8",
            "--buffers",
            "shm",
            // Pipe fences, whose signal a holder can read away (a progress point cannot be).
            "--progress-fences",
            "off",
            // A frame this large takes a debug build's renderer seconds to composite, during
            // which it answers no ping: the attack is about fences, not about hangs.
            "--hang-timeout-ms",
            "30000",
        ])
        .arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(&json)
        .env("TRIPTYCH_BIN_DIR", adversary_bin(&dir))
        .env("TRIPTYCH_HOSTILE", "drain-vouched")
        .env("TRIPTYCH_DRAIN_AT", (N - 3).to_string());
        let o = output(cmd);
        assert!(o.status.success(), "{}", show(&o));
        let log = String::from_utf8_lossy(&o.stderr);
        if log.contains("hostile renderer: claimed as a new fence appeared") {
            break json;
        }
        assert!(
            attempt < 3,
            "the attack never happened in three runs:\n{log}"
        );
    };
    let s = summary(&json);
    assert_eq!(s["frames"]["last"], N - 1, "{s}");
    assert_eq!(s["trust"]["vouched_gpus"], 1, "{s}");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert!(
        crashes.iter().all(|c| c["role"] != "gpu"),
        "the renderer got an honest GPU process killed: {}\n{s}",
        serde_json::to_string(crashes).unwrap_or_default()
    );
}
