//! The trust boundary from the other side: a real, sandboxed GPU process built with its
//! hostile mode (debug builds only) breaks the protocol once per case. Every frame it makes goes
//! through the launcher, which checks it before handing it on to the renderer, so a lie about
//! frames (out of order, of a generation never started, naming a buffer the renderer still
//! holds, a description the rules refuse) is seen by the launcher itself and costs the GPU
//! process its life; a lie in its fds (a fence that is no fence) is found by the renderer and
//! confirmed by the launcher's own look. In every case the run finishes with exit 0 and every
//! frame presented, and the renderer is never killed or blamed.

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

/// Whether `cause` names one of the `|`-separated `wants`. A fence lie is caught by whichever
/// comes first: the launcher's look at the fence the renderer named, or, once the renderer's
/// claim has the launcher vouching and the GPU process keeping its fences private, the relay
/// refusing a fence in the export window.
fn names(cause: &str, wants: &str) -> bool {
    wants.split('|').any(|w| cause.contains(w))
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
fn a_second_command_server_once_sandboxed_costs_the_gpu_process() {
    // The launcher meets a child's command stream once, before its sandbox is on; a name sent
    // after that is never connected to.
    killed_for("commands-at", r#"CommandsAt","what":"after Started"#);
}

/// A GPU process that closes the launcher's command stream costs itself, and nothing of the
/// launcher's: no wait, no thread or fd left behind.
#[test]
fn a_gpu_process_that_closes_its_command_stream_costs_itself() {
    // Without a mailbox every command goes over the stream, so the next one finds it closed.
    // (Not held to the clean run's fd count: that run keeps two mailboxes.)
    let dir = scratch("hostile-gpu-close-stream");
    let cmd = hostile_command(
        "TRIPTYCH_HOSTILE_GPU",
        "close-stream",
        FRAMES,
        &["--mailbox", "off"],
        &dir,
    );
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir.join("summary.json"));
    assert_eq!(
        s["frames"]["last"],
        FRAMES - 1,
        "every frame presented: {s}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the GPU process's: {s}");
    assert_eq!(crashes[0]["role"], "gpu");
    // Its own reader of the stream fails on the closed fd and ends the process (ipc-channel's
    // receiver panics when its fd was closed under it, and the panic's report trips the
    // sandbox or aborts); a process that lived on would be named for the stream it closed
    // (`command stream: closed while the process lives on`). Either way it alone pays.
    eprintln!("cause: {}", crashes[0]["cause"]);
    assert!(crashes[0]["cause"].is_object(), "{}", crashes[0]);
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

/// The GPU process lies about frames: the launcher sees the lie itself (in the frame, or in the
/// fd the renderer found broken, by its own look), never hands it on or composites it, and
/// kills the GPU process for it, named. The renderer keeps its pid.
fn proven_lie(attack: &str, want: &str) -> serde_json::Value {
    let s = hostile_run(attack);
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(
        crashes.len(),
        1,
        "{attack}: one crash, the GPU process's: {s}"
    );
    assert_eq!(crashes[0]["role"], "gpu", "{attack}: {s}");
    let cause = crashes[0]["cause"].to_string();
    assert!(
        cause.contains("protocol_violation") && cause.contains("Frame") && names(&cause, want),
        "{attack}: cause {cause} does not name {want:?}"
    );
    // The attack happened, and was proven once.
    assert_eq!(s["trust"]["proven_gpu_lies"], 1, "{attack}: {s}");
    assert_eq!(
        s["renderer"]["gpu_switches"], 1,
        "{attack}: one renderer all along: {s}"
    );
    s
}

#[test]
fn a_frame_sent_twice_costs_the_gpu_process() {
    proven_lie("frame-twice", "frame 3 where frame 4 comes next");
}

#[test]
fn a_progress_point_its_page_passed_already_costs_the_gpu_process() {
    // Point 1 named again: a fence that would let the renderer read the buffer before the work
    // the frame describes is done. The relay sees it is not above the point before it.
    let s = proven_lie("progress-repeat", "progress point 1, not above the point");
    assert_eq!(s["paths"]["fence"], "progress", "{s}");
}

#[test]
fn a_progress_fence_on_another_file_costs_the_gpu_process() {
    proven_lie("progress-foreign", "not its progress page");
}

#[test]
fn progress_points_never_reached_are_the_gpu_process_s_hang() {
    // Well-formed, ever-rising points that its page never reaches: the renderer's wait times
    // out, and the launcher, reading its own read-only mapping of the page, finds the point
    // unreached and blames the GPU process; the renderer keeps its pid.
    let (_, s) = hostile_run_with("progress-unreached", &["--fence-timeout-ms", "300"]);
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the GPU process's: {s}");
    assert_eq!(crashes[0]["role"], "gpu", "{s}");
    assert!(
        crashes[0]["cause"]["fence_timeout"]["frame"] == 3,
        "a fence timeout at frame 3: {s}"
    );
    assert_eq!(s["trust"]["refuted_fence_timeouts"], 0, "{s}");
    assert_eq!(
        s["renderer"]["gpu_switches"], 1,
        "one renderer all along: {s}"
    );
    assert_eq!(s["renderer"]["fetched"]["fences_via_pidfd"], 0, "{s}");
}

/// User plus system CPU time of process `pid` so far, in clock ticks (`/proc/PID/stat`).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    // After the name: state is field 3, utime field 14 and stime field 15.
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

#[test]
fn a_storm_of_wake_ups_on_the_progress_page_costs_the_renderer_no_cpu() {
    // From frame 3 the GPU process completes each frame 200 ms late, while a thread of its own
    // wakes every waiter on its progress page without end. The renderer, waiting on the page
    // for those frames, stops listening after a few early wake-ups and looks once a slice: over
    // two seconds of the storm it uses a few ticks of CPU, where the storm's thread uses a core.
    let dir = scratch("hostile-gpu-progress-storm");
    let json = dir.join("summary.json");
    let mut cmd = hostile_command("TRIPTYCH_HOSTILE_GPU", "progress-storm", 40, &[], &dir);
    let mut launcher = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the launcher");
    let pid = launcher.id();
    let mut kids = (Vec::new(), Vec::new());
    assert!(
        wait_until(std::time::Duration::from_secs(30), || {
            kids = (children_named(pid, "renderer"), children_named(pid, "gpu"));
            !kids.0.is_empty() && !kids.1.is_empty()
        }),
        "no renderer and GPU process came up"
    );
    let (renderer, gpu) = (kids.0[0], kids.1[0]);
    // The storm starts at frame 3, a few milliseconds into the run.
    std::thread::sleep(std::time::Duration::from_millis(800));
    let before = (cpu_ticks(renderer), cpu_ticks(gpu));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let after = (cpu_ticks(renderer), cpu_ticks(gpu));
    let st = wait_within(&mut launcher, PROCESS_DEADLINE, "the launcher");
    assert!(st.success(), "{st}");
    let s = summary(&json);
    let spent = |a: Option<u64>, b: Option<u64>| {
        b.zip(a)
            .map(|(b, a)| b - a)
            .expect("the process ran through the sampling")
    };
    let (r, g) = (spent(before.0, after.0), spent(before.1, after.1));
    assert!(
        g >= 100,
        "the storm never raged: the GPU process used {g} ticks"
    );
    assert!(r <= 30, "the renderer used {r} ticks of 200 in the storm");
    assert_eq!(s["frames"]["last"], 39, "{s}");
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "slow frames are no hang: {s}"
    );
}

#[test]
fn a_frame_numbered_ahead_costs_the_gpu_process() {
    proven_lie("frame-ahead", "frame 6 where frame 4 comes next");
}

#[test]
fn a_frame_of_a_generation_never_started_costs_the_gpu_process() {
    proven_lie(
        "frame-future-generation",
        "size generation 3, which was never started",
    );
}

#[test]
fn an_invalid_description_costs_the_gpu_process() {
    proven_lie("bad-frame", "frame 3: layers[0].buffer");
}

#[test]
fn a_frame_of_no_layers_costs_the_gpu_process() {
    // A frame that holds no buffer could be sent without end, filling the renderer's queue.
    proven_lie("no-layers", "has no layers");
}

#[test]
fn a_buffer_the_renderer_still_holds_named_again_costs_the_gpu_process() {
    // Drawing into a buffer the renderer reads would tear the frame on screen.
    proven_lie("held-buffer", "which the renderer still holds");
}

#[test]
fn an_eventfd_where_a_fence_should_be_costs_the_gpu_process() {
    let s = proven_lie("eventfd-fence", "eventfd|not a private fence's number");
    assert!(s["renderer"]["gpu_violations"].as_u64() >= Some(1), "{s}");
}

#[test]
fn good_frames_an_honest_renderer_must_refuse_cost_the_gpu_process_once_the_launcher_vouches() {
    // From frame 3 on, the GPU process reads each frame's first fence's signal away: the
    // renderer sees an abandoned fence and must reject the frame, its word alone. At that
    // first claim the launcher starts vouching for the process's frames itself, finds a fence
    // with no signal, and kills the GPU process for it. The renderer keeps its pid.
    let (o, s) = hostile_run_with("drain-fence", &[]);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.contains("hostile GPU: read a fence's byte away"),
        "the attack never happened:\n{log}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the GPU process's: {s}");
    assert_eq!(crashes[0]["role"], "gpu", "{s}");
    let cause = crashes[0]["cause"].to_string();
    assert!(
        cause.contains("vouched for by the launcher") && cause.contains("signal read away"),
        "{cause}"
    );
    assert_eq!(s["trust"]["proven_gpu_lies"], 1, "{s}");
    assert_eq!(s["trust"]["vouched_gpus"], 1, "{s}");
    assert_eq!(s["trust"]["refuted_vouched_claims"], 0, "{s}");
    assert_eq!(
        s["renderer"]["gpu_switches"], 1,
        "one renderer all along: {s}"
    );
    assert!(
        log.contains("from now on the launcher takes and checks each of its frames"),
        "the slower path is not logged:\n{log}"
    );
}

#[test]
fn descriptions_of_an_epoch_not_its_own_cost_the_gpu_process() {
    // A second of 30 KiB descriptions of an epoch long gone, while frames go on: the first one
    // costs it its life, and the rest are never read.
    proven_lie("stale-flood", "this GPU process is epoch 1");
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
        assert!(names(&c["cause"].to_string(), cause), "{attack}: {c}");
    }
    // One renderer all along: it was never restarted.
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        !log.contains("role=renderer"),
        "{attack}: the renderer was restarted:\n{log}"
    );
    assert!(
        s["processes"]["pids"]["renderer"].as_u64().is_some(),
        "{attack}: no renderer at the end: {s}"
    );
}

#[test]
fn a_gpu_process_that_reads_its_fences_signal_away_in_every_process_costs_only_the_gpu_processes() {
    every_gpu_process("drain-fence", &[], "signal read away");
}

#[test]
fn a_gpu_process_that_lies_about_fences_in_every_process_costs_only_the_gpu_processes() {
    every_gpu_process("eventfd-fence", &[], "eventfd|not a private fence's number");
}

#[test]
fn a_gpu_process_that_sends_frames_twice_in_every_process_costs_only_the_gpu_processes() {
    every_gpu_process("frame-twice", &[], "comes next");
}

#[test]
fn a_gpu_process_that_hands_out_held_buffers_in_every_process_costs_only_the_gpu_processes() {
    every_gpu_process("held-buffer", &[], "still holds");
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
    // It stops producing, as a renderer withholding its buffers would make it; but the launcher
    // relayed every release itself and sees the renderer holding less than a pool: the stall
    // is the GPU process's.
    let s = hostile_run_with("ignore-releases", &["--hang-timeout-ms", "800"]).1;
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the GPU process's: {s}");
    assert_eq!(crashes[0]["role"], "gpu", "{s}");
    let cause = crashes[0]["cause"].to_string();
    assert!(cause.contains("stalled"), "{cause}");
}

#[test]
fn its_own_buffer_named_as_a_fence_costs_the_gpu_process() {
    proven_lie(
        "buffer-fence",
        "as a Pipe fence|not a private fence's number",
    );
}

#[test]
fn implicit_fences_named_on_a_memfd_cost_the_gpu_process() {
    // Only a DMA-BUF carries implicit fences: a frame that says its shm buffer does would have
    // the renderer snapshot fences of a file that has none, and read the buffer at once.
    proven_lie(
        "implicit-on-shm",
        "only a DMA-BUF carries them|an implicit fence from a process that announced pipe fences",
    );
}

#[test]
fn buffers_the_renderer_could_not_map_cost_the_gpu_process() {
    // Every slot's buffer a sealed, sparse memfd of about 4 GiB with the plane at its end: each
    // file passes the import check, but together they would fill the renderer's address space,
    // and it would reject frames the launcher vouched for. The relay refuses the first frame
    // past the renderer's mapping budget.
    let (o, s) = hostile_run_with("huge-planes", &[]);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.contains("hostile GPU: a huge sparse plane"),
        "the attack never happened:\n{log}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the GPU process's: {s}");
    assert_eq!(crashes[0]["role"], "gpu", "{s}");
    let cause = crashes[0]["cause"].to_string();
    assert!(cause.contains("more than the 8589934592 it may"), "{cause}");
    assert_eq!(s["trust"]["proven_gpu_lies"], 1, "{s}");
}

/// A GPU process asked to keep its fences private that never answers, and leaves in-window
/// fences without their signal: it is killed at its first pong after the request, named, and the
/// renderer keeps its pid.
fn refuses_private_fences(attack: &str) {
    let (o, s) = hostile_run_with(attack, &[]);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.contains("the launcher takes and checks each of its frames"),
        "vouching never started:\n{log}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the GPU process's: {s}");
    assert_eq!(crashes[0]["role"], "gpu", "{s}");
    let cause = crashes[0]["cause"].to_string();
    assert!(
        cause.contains("PrivateFences") && cause.contains("and not PrivateFences"),
        "{cause}"
    );
    assert_eq!(
        s["renderer"]["gpu_switches"], 1,
        "one renderer all along: {s}"
    );
}

#[test]
fn a_gpu_process_that_will_not_keep_its_fences_private_costs_itself() {
    refuses_private_fences("mute-abandon");
}

#[test]
fn a_gpu_process_that_abandons_its_fences_slowly_and_will_not_keep_them_private_costs_itself() {
    // Each fence closed unsignalled just inside the launcher's wait on it, one after another:
    // without the answer's deadline the run would stall with nobody to blame.
    refuses_private_fences("slow-abandon");
}

#[test]
fn a_gpu_process_that_will_not_keep_its_fences_private_in_every_process_costs_only_the_gpu_processes(
) {
    every_gpu_process("mute-abandon", &[], "PrivateFences");
}
