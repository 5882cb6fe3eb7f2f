//! The trust boundary from the other side: a real, sandboxed GPU process built with its
//! hostile mode (debug builds only) breaks the protocol once per case. Against the launcher it costs the GPU
//! process its life (recorded, replaced); against the renderer it costs a dropped message. In
//! every case the run finishes with exit 0 and every frame presented, and the renderer is never
//! killed or blamed.

use triptych_tests::*;

/// The launcher's fd count at the end and peak memory of a clean run of the same shape.
fn clean_baseline() -> (u64, u64) {
    static BASE: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let dir = scratch("hostile-baseline");
        let json = dir.join("summary.json");
        let mut cmd = triptych(&["run"]);
        cmd.args(["--frames", "40", "--size", "96x64", "--buffers", "shm"])
            .arg("--out")
            .arg(dir.join("f.png"))
            .arg("--summary-json")
            .arg(&json);
        let o = output(cmd);
        assert!(o.status.success(), "{}", show(&o));
        let s = summary(&json);
        let fc = &s["fd_counts"];
        (
            fc["launcher_at_end"].as_u64().expect("fds"),
            fc["launcher_peak_rss_kib"].as_u64().expect("rss"),
        )
    })
}

/// The launcher ends the attacked run with the fds of a clean one and no more than 32 MiB
/// more memory at its peak.
fn at_baseline(attack: &str, s: &serde_json::Value) {
    let (fds, rss) = clean_baseline();
    let fc = &s["fd_counts"];
    assert_eq!(
        fc["launcher_at_end"].as_u64(),
        Some(fds),
        "{attack}: launcher fds: {fc}"
    );
    let peak = fc["launcher_peak_rss_kib"].as_u64().expect("rss");
    assert!(
        peak <= rss + 32 * 1024,
        "{attack}: launcher peak memory {peak} KiB against {rss} KiB in a clean run"
    );
}

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
