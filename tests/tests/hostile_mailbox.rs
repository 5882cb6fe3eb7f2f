//! The renderer's mailbox to the launcher (a shared-memory ring beside its socket), attacked
//! from inside: a real, sandboxed renderer in its hostile mode (debug builds only) breaks the
//! ring's rules with what it holds, its mapping of the ring and the wake-up eventfd. For each,
//! the launcher must finish the run with exit 0 and every frame presented, leave the GPU process
//! alone, and (where the rule broken is the launcher's to judge) kill the renderer with the
//! violation named.

use triptych_tests::*;

/// Frames of each hostile run.
const FRAMES: u64 = 200;

/// The launcher's log (children's lines quarantined in it) and the summary of a hostile run,
/// after checking that the run succeeded with every frame presented, at the launcher's clean
/// baseline, and that the GPU process was never replaced.
fn ring_run(attack: &str, extra: &[&str]) -> (String, serde_json::Value) {
    let dir = scratch(&format!("hostile-{attack}"));
    let cmd = hostile_command("TRIPTYCH_HOSTILE", attack, FRAMES, extra, &dir);
    let o = output(cmd);
    assert!(
        o.status.success(),
        "{attack}: the run must survive a hostile renderer: {}",
        show(&o)
    );
    let s = summary(&dir.join("summary.json"));
    at_baseline(attack, &s);
    assert_eq!(
        s["frames"]["last"],
        FRAMES - 1,
        "{attack}: every frame presented: {s}"
    );
    assert_eq!(
        s["paths"]["child_events"], "mailbox",
        "{attack}: the renderer's messages took the mailbox: {s}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert!(
        crashes.iter().all(|c| c["role"] == "renderer"),
        "{attack}: only the renderer may pay: {s}"
    );
    assert_eq!(
        s["recovery"]["standby"]["promotions"], 0,
        "{attack}: the GPU process keeps its pid: {s}"
    );
    (String::from_utf8_lossy(&o.stderr).into_owned(), s)
}

/// Runs `attack` and checks that the renderer, and only it, was killed once for a protocol
/// violation whose text contains `want`, and that its pid is not the renderer's at the end.
/// Returns the log and the summary.
fn killed_for(attack: &str, want: &str, extra: &[&str]) -> (String, serde_json::Value) {
    let (log, s) = ring_run(attack, extra);
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "{attack}: one crash, the renderer's: {s}");
    let c = &crashes[0];
    let cause = c["cause"].to_string();
    assert!(
        cause.contains("protocol_violation") && cause.contains(want),
        "{attack}: cause {cause} does not name {want:?}"
    );
    assert_ne!(
        c["pid"], s["processes"]["pids"]["renderer"],
        "{attack}: the attacker was replaced: {s}"
    );
    (log, s)
}

/// Whether a line of the renderer's (any of its pids) in `log` contains `text`.
fn renderer_said(log: &str, text: &str) -> bool {
    log.lines()
        .any(|l| l.contains("renderer[") && l.contains(text))
}

#[test]
fn a_write_index_far_past_the_read_index() {
    killed_for("ring-wild-index", "records past the reader's", &[]);
}

#[test]
fn a_record_longer_than_its_payload() {
    killed_for("ring-long-record", "where one holds at most", &[]);
}

#[test]
fn a_record_of_an_unknown_kind() {
    killed_for("ring-unknown-kind", "a record of unknown kind 7", &[]);
}

#[test]
fn an_empty_message_record() {
    killed_for("ring-empty-record", "an empty message record", &[]);
}

#[test]
fn undecodable_bytes_in_a_record() {
    killed_for("ring-undecodable", "an undecodable 8-byte message", &[]);
}

#[test]
fn records_rewritten_while_the_launcher_reads_them() {
    // Whether the launcher's copy of a record is the message or the garbage depends on timing:
    // garbage is judged (a named violation), never acted on, and a good copy stays good.
    let (log, s) = ring_run("ring-rewrite", &[]);
    assert!(
        renderer_said(&log, "rewriting the newest record"),
        "the rewriting never started:\n{log}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert!(crashes.len() <= 1, "{s}");
    for c in crashes {
        assert!(
            c["cause"].get("protocol_violation").is_some(),
            "a renderer killed for changed bytes is killed for a violation: {c}"
        );
    }
}

#[test]
fn records_rewritten_after_the_launcher_read_them_change_nothing() {
    // The launcher decides on its own copy of each record: garbage written over records it has
    // taken is never seen, so the renderer breaks no rule the launcher can see.
    let (log, s) = ring_run("ring-rewrite-read", &[]);
    assert!(
        renderer_said(&log, "rewrote records already read"),
        "no read record was rewritten:\n{log}"
    );
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    assert!(
        s["paths"]["mailbox_records"]
            .as_u64()
            .is_some_and(|n| n >= FRAMES),
        "the frames came through the ring: {s}"
    );
}

#[test]
fn a_writer_that_rewrites_the_readers_index_and_flag_only_hurts_itself() {
    // The launcher keeps its own read index and never reads back its flag: whatever the
    // renderer does to them costs the renderer alone (a stall, a full ring, records overwritten
    // before they were read), and the run goes on.
    let (log, _) = ring_run("ring-read-index", &["--hang-timeout-ms", "800"]);
    assert!(
        renderer_said(&log, "rewrote the reader's index and flag"),
        "the rewriting never started:\n{log}"
    );
}

#[test]
fn wake_ups_without_records() {
    killed_for("ring-wake-flood", "wake-ups without a record", &[]);
}

#[test]
fn an_announced_socket_message_that_never_comes() {
    // The renderer holds its writer while the launcher waits for the socket: the hang timeout is
    // set beyond that wait, so that the violation, not the silence, is what kills it.
    killed_for(
        "ring-announce-only",
        "did not come within",
        &["--hang-timeout-ms", "10000"],
    );
}

#[test]
fn a_socket_message_the_ring_did_not_announce() {
    killed_for(
        "ring-unannounced",
        "a Pong message on the socket that the ring did not announce",
        &[],
    );
}

#[test]
fn a_writer_that_keeps_the_ring_full() {
    // The ring-full wait is the writer's; the launcher reads on and judges the rate.
    let (log, _) = killed_for("ring-starve", "messages in one second", &[]);
    assert!(
        renderer_said(&log, "keeping the mailbox full"),
        "the flood never started:\n{log}"
    );
}
