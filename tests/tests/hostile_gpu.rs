//! The trust boundary from the other side: a real, sandboxed GPU process built with its
//! hostile mode (debug builds only) breaks the protocol once per case. Against the launcher it costs the GPU
//! process its life (recorded, replaced); against the renderer it costs a dropped message. In
//! every case the run finishes with exit 0 and every frame presented, and the renderer is never
//! killed or blamed.

use triptych_tests::*;

fn hostile_run(attack: &str) -> serde_json::Value {
    let dir = scratch(&format!("hostile-gpu-{attack}"));
    let json = dir.join("summary.json");
    let mut cmd = triptych(&["run"]);
    cmd.args(["--frames", "40", "--size", "96x64", "--buffers", "shm"])
        .arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(&json)
        .env("TRIPTYCH_HOSTILE_GPU", attack);
    let o = output(cmd);
    assert!(
        o.status.success(),
        "{attack}: the run must survive a hostile GPU process: {}",
        show(&o)
    );
    let s = summary(&json);
    at_baseline(attack, &s);
    assert_eq!(s["last_frame"], 39, "{attack}: every frame presented: {s}");
    let renderer_crashes = s["crashes"]
        .as_array()
        .expect("crashes")
        .iter()
        .filter(|c| c["role"] == "renderer")
        .count();
    assert_eq!(
        renderer_crashes, 0,
        "{attack}: the renderer was blamed: {s}"
    );
    s
}

fn killed_for(attack: &str, want: &str) {
    let s = hostile_run(attack);
    let crashes = s["crashes"].as_array().expect("crashes");
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
    assert_eq!(s["crashes"].as_array().map(Vec::len), Some(0), "{s}");
    assert!(s["renderer"]["gpu_violations"].as_u64() >= Some(2), "{s}");
    assert_eq!(s["uncorroborated"].as_array().map(Vec::len), Some(1), "{s}");
}

#[test]
fn an_invalid_description_is_rejected() {
    let s = hostile_run("bad-frame");
    assert_eq!(s["crashes"].as_array().map(Vec::len), Some(0), "{s}");
    assert!(s["renderer"]["rejected"].as_u64() >= Some(1), "{s}");
}

#[test]
fn a_kept_copy_of_the_seccomp_listener() {
    // The GPU process keeps a copy of its listener and a thread that lets every refused call
    // run: the launcher finds the copy before it believes the process started.
    killed_for("keep-listener", "kept a copy of its seccomp listener");
}
