//! The children's mailboxes (`ipc_protocol::mailbox`): in a steady run no socket message per
//! frame passes between the launcher and either child, in either direction, counted by the
//! launcher and cross-checked with `strace` of the real processes over 3000 frames; nor between
//! the two children, which share no socket (the launcher relays frames and releases). A reader
//! that sleeps is woken with a shared futex, no socket call. With `--mailbox off` every message
//! takes the socket, and the run says so in its summary and its trace. With progress fences (the
//! default) no fd is taken from another process per frame either, also cross-checked with
//! `strace`.

use std::path::Path;
use std::process::Command;

use triptych_tests::{bin, output, scratch, show, skip_or_fail, summary, triptych, REQUIRE_STRACE};

/// The fd number of a child's control socket (`ipc_protocol::bootstrap::CONTROL_FD`): in a
/// child, every socket message to or from the launcher is a call on this fd.
const CONTROL_FD: &str = "203";

/// Runs `frames` frames headless with `extra` arguments; returns the summary.
fn run(dir: &Path, frames: u64, extra: &[&str]) -> serde_json::Value {
    let json = dir.join(format!("summary-{frames}.json"));
    let mut cmd = triptych(&["run", "--size", "96x64", "--frames", &frames.to_string()]);
    cmd.args(extra)
        .arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(&json);
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    summary(&json)
}

#[test]
fn steady_frames_reach_the_launcher_through_the_mailbox_not_the_socket() {
    let dir = scratch("mailbox-steady");
    // The standby off: its start-up is a few messages more, at a time that varies.
    let short = run(&dir, 100, &["--standby", "off", "--verify"]);
    let long = run(&dir, 400, &["--standby", "off", "--verify"]);
    for (s, frames) in [(&short, 100u64), (&long, 400)] {
        let p = &s["paths"];
        assert_eq!(p["child_events"], "mailbox", "{p}");
        assert!(p["child_events_reason"].is_null(), "{p}");
        assert_eq!(s["verified"]["mismatches"], 0, "{s}");
        assert_eq!(s["frames"]["last"], frames - 1, "{s}");
        // Each frame: the GPU process's `Frame`, the renderer's `Presented` and its releases.
        let records = p["mailbox_records"].as_u64().expect("records");
        assert!(
            records >= 3 * frames,
            "{records} records for {frames} frames: {p}"
        );
        // And the other way, at least each frame handed on to the renderer and each release
        // handed on to the GPU process.
        let sent = p["mailbox_sent_records"].as_u64().expect("sent records");
        assert!(
            sent >= 2 * frames,
            "{sent} records sent for {frames} frames: {p}"
        );
        // A child's reader is woken once for a burst (a frame's releases, say), never twice
        // for one record.
        let wakes = p["mailbox_sent_wakes"].as_u64().expect("wake-ups");
        assert!(
            (1..sent).contains(&wakes),
            "{wakes} wake-ups for {sent} records: {p}"
        );
    }
    // What takes the socket (the sandbox listeners' fds, anything too large for a record) is
    // the same for 100 frames as for 400: nothing of it is per frame.
    assert_eq!(
        short["paths"]["mailbox_on_socket"], long["paths"]["mailbox_on_socket"],
        "socket messages grew with the frames: {} / {}",
        short["paths"], long["paths"]
    );
    assert_eq!(
        short["paths"]["mailbox_sent_on_socket"], long["paths"]["mailbox_sent_on_socket"],
        "the launcher's socket messages grew with the frames: {} / {}",
        short["paths"], long["paths"]
    );
    let on_socket = long["paths"]["mailbox_on_socket"].as_u64().expect("count");
    assert!(
        on_socket <= 8,
        "{on_socket} socket messages: {}",
        long["paths"]
    );
    // Unpaced, a thread per child waits on its mailbox.
    assert_eq!(
        long["paths"]["renderer_intake"], "thread",
        "{}",
        long["paths"]
    );
    assert_eq!(long["paths"]["gpu_intake"], "thread", "{}", long["paths"]);
    // Unpaced, the renderers keep the default scheduling policy.
    assert_eq!(
        long["paths"]["renderer_scheduling"], "not batch: the run is not paced",
        "{}",
        long["paths"]
    );
}

#[test]
fn a_paced_run_reads_its_renderers_from_the_loop_and_wakes_a_child_about_once_a_frame() {
    // Paced, the launcher's loop reads each renderer's mailbox itself (no thread of it sleeps
    // there, so no renderer ever wakes it), the GPU process wakes it once for frames rendered
    // back to back, and what a child needs only with its next frame (a slot or a buffer handed
    // back) rides with that frame's wake-up: about one wake-up of a child per view's frame
    // (the frame handed on to the renderer), where each of them once cost two or three.
    let dir = scratch("mailbox-paced");
    let mut args = vec!["--standby", "off", "--fps", "60"];
    for _ in 0..4 {
        args.extend(["--view", "default"]);
    }
    let s = run(&dir, 120, &args);
    let p = &s["paths"];
    assert_eq!(p["renderer_intake"], "polled", "{p}");
    // And the GPU process's, once it has started: the loop sleeps on its ring.
    assert_eq!(p["gpu_intake"], "polled", "{p}");
    // Each of the four renderers, read back from the kernel after its spawn, runs as a batch
    // task: a frame's wake-up of it does not switch the launcher out.
    assert_eq!(p["renderer_scheduling"], "batch", "{p}");
    let views = s["views"].as_array().expect("views");
    assert_eq!(views.len(), 4, "{s}");
    for v in views {
        assert_eq!(v["frames"], 120, "every frame of every view: {v}");
        assert_eq!(v["restarts"], 0, "{v}");
    }
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    let view_frames = 4.0 * 120.0;
    let wakes = p["mailbox_sent_wakes"].as_f64().expect("wake-ups");
    assert!(
        wakes < 2.0 * view_frames,
        "{wakes} wake-ups of the children for {view_frames} view-frames: {p}"
    );
    // The GPU process wakes the launcher once for frames rendered back to back: measured about
    // 0.53 a view-frame here, and about 1.0 with each frame waking it (as an unpaced view's do).
    let woken = p["mailbox_woken"]
        .as_f64()
        .expect("wake-ups of the launcher");
    assert!(
        woken > 0.0 && woken < 0.75 * view_frames,
        "the children woke the launcher {woken} times for {view_frames} view-frames: {p}"
    );
}

#[test]
fn with_the_mailbox_off_every_message_takes_the_socket_and_the_run_says_so() {
    let dir = scratch("mailbox-off");
    let trace = dir.join("trace.json");
    let s = run(
        &dir,
        60,
        &[
            "--mailbox",
            "off",
            "--progress-fences",
            "off",
            "--verify",
            "--trace",
            trace.to_str().expect("utf-8 path"),
        ],
    );
    let p = &s["paths"];
    assert_eq!(p["child_events"], "socket", "{p}");
    assert!(
        p["child_events_reason"]
            .as_str()
            .is_some_and(|r| r.contains("--mailbox off")),
        "{p}"
    );
    assert_eq!(p["mailbox_records"], 0, "{p}");
    assert_eq!(s["verified"]["mismatches"], 0, "{s}");
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).expect("the trace")).expect("json");
    let events = t["traceEvents"].as_array().expect("trace events");
    let marked = events.iter().any(|e| {
        e["name"] == "fallback" && e["args"]["from"] == "mailbox" && e["args"]["to"] == "socket"
    });
    assert!(
        marked,
        "no fallback marker from mailbox to socket in the trace"
    );
    // A fence file per layer per frame is marked too, with why.
    assert_eq!(p["fence"], "pipe", "{p}");
    let fences = events.iter().any(|e| {
        e["name"] == "fallback"
            && e["args"]["from"] == "fences without a file per frame"
            && e["args"]["to"] == "pipe"
            && e["args"]["why"] == "--progress-fences off"
    });
    assert!(
        fences,
        "no fallback marker for the fence files in the trace"
    );
}

/// What `strace -ff` saw of the socket calls of every process of a run.
#[derive(Debug, Default)]
struct SocketCalls {
    /// Successful `sendmsg` calls on the children's control socket.
    sent: u64,
    /// Successful `recvmsg` calls on it.
    received: u64,
    /// Successful `sendmsg` and `recvmsg` calls of any process on any socket.
    messages: u64,
    /// Shared (not process-private) futex calls: a mailbox's wake-ups and its reader's waits.
    wakes: u64,
    /// Successful `pidfd_getfd` calls of any process: fds taken from another process.
    taken: u64,
}

/// Counts, over every `strace -ff` output file in `dir`, the socket calls ([`SocketCalls`]).
fn socket_calls(dir: &Path) -> SocketCalls {
    let mut c = SocketCalls::default();
    for e in std::fs::read_dir(dir)
        .expect("the strace directory")
        .flatten()
    {
        if !e.file_name().to_string_lossy().starts_with("strace.") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        for l in text.lines() {
            if l.starts_with(&format!("sendmsg({CONTROL_FD},")) {
                c.sent += 1;
            }
            if l.starts_with(&format!("recvmsg({CONTROL_FD},")) {
                c.received += 1;
            }
            if l.starts_with("sendmsg(") || l.starts_with("recvmsg(") {
                c.messages += 1;
            }
            if l.starts_with("futex(") && (l.contains("FUTEX_WAKE,") || l.contains("FUTEX_WAIT,")) {
                c.wakes += 1;
            }
            if l.starts_with("pidfd_getfd(") {
                c.taken += 1;
            }
        }
    }
    c
}

#[test]
fn strace_of_the_real_processes_agrees_with_the_launchers_count() {
    let probe = Command::new("strace")
        .args(["-f", "-o", "/dev/null", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        skip_or_fail(REQUIRE_STRACE, "strace is missing or may not trace here");
        return;
    }
    // The third run keeps pipe fences: one file per layer per frame, taken by the renderer.
    for (mailbox, progress, frames) in [
        ("on", "on", 3000u64),
        ("off", "on", 300),
        ("on", "off", 300),
    ] {
        let dir = scratch(&format!("mailbox-strace-{mailbox}-{progress}"));
        let json = dir.join("summary.json");
        let mut cmd = Command::new("strace");
        cmd.args([
            "-f",
            "-ff",
            "-qq",
            "-z",
            "-e",
            "trace=sendmsg,recvmsg,futex,pidfd_getfd",
            "-o",
        ])
        .arg(dir.join("strace"))
        .arg(bin("triptych"))
        .args([
            "run",
            "--size",
            "96x64",
            "--standby",
            "off",
            "--mailbox",
            mailbox,
            "--progress-fences",
            progress,
        ])
        .args(["--frames", &frames.to_string()])
        .arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(&json);
        let o = output(cmd);
        assert!(o.status.success(), "{}", show(&o));
        let s = summary(&json);
        let calls = socket_calls(&dir);
        let (sent, received) = (calls.sent, calls.received);
        if mailbox == "on" {
            // Every socket message a child sent is one the launcher counted as announced.
            assert_eq!(
                Some(sent),
                s["paths"]["mailbox_on_socket"].as_u64(),
                "strace counted {sent} sendmsg on the children's control sockets: {}",
                s["paths"]
            );
            assert!(
                sent <= 8,
                "{sent} socket messages from the children in {frames} frames"
            );
            // Nor anything else on any socket of any process but start-up's handovers and the
            // end's: nothing per frame, wake-ups included (futexes).
            assert!(
                calls.messages <= 32,
                "{calls:?}: socket messages in {frames} frames"
            );
        } else {
            assert_eq!(progress, "on");
            assert!(
                sent >= 2 * frames,
                "{sent} socket messages from the children in {frames} frames without a mailbox"
            );
            // The launcher's commands come over their streams (ipc-channel), not the control
            // socket: every message but the children's to the launcher, each a send and a
            // receive, is one to the children or between them.
            let others = calls.messages.saturating_sub(2 * sent) / 2;
            assert!(
                others >= frames,
                "{others} other socket messages in {frames} frames without a mailbox"
            );
        }
        // No fd transfer per steady frame with progress fences: each pool buffer is taken once
        // (3 layers of 3 buffers), and the launcher takes the renderer's output once; with pipe
        // fences, a fence per layer per frame besides.
        if progress == "on" {
            assert!(
                calls.taken <= 16,
                "{calls:?}: fds taken from another process in {frames} frames"
            );
            assert_eq!(
                s["renderer"]["fetched"]["fences_progress"],
                3 * frames,
                "{s}"
            );
        } else {
            assert!(
                calls.taken >= 3 * frames,
                "{calls:?}: fewer fds taken than pipe fences in {frames} frames"
            );
        }
        eprintln!(
            "mailbox {mailbox}, progress fences {progress}: {frames} frames, {} fds taken with pidfd_getfd,",
            calls.taken
        );
        eprintln!(
            "mailbox {mailbox}: {frames} frames, the children sent {sent} and received {received} messages on their control sockets; every process made {} socket message calls in all, and {} shared futex calls ({:.1} a frame)",
            calls.messages,
            calls.wakes,
            calls.wakes as f64 / frames as f64
        );
    }
}
