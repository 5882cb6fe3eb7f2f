//! The children's mailboxes with the launcher (shared-memory rings beside their sockets),
//! attacked from inside: a real, sandboxed renderer or GPU process in its hostile mode (debug
//! builds only) breaks the rings' rules with what it holds, its mappings of both rings and their
//! futex words.
//!
//! - As the **writer** of its mailbox to the launcher: for each attack the launcher must finish
//!   the run with exit 0 and every frame presented, leave the other child alone, and (where the
//!   rule broken is the launcher's to judge) kill the attacker with the violation named. A
//!   writer that keeps the launcher's sleeping flag lowered is never judged: it wakes nobody,
//!   and its messages wait for the launcher's own looks.
//! - As the **reader** of the launcher's mailbox to it (`ring-inbox-*`): a reader whose
//!   published index stays frozen, one that claims every record read while it stops taking
//!   them, and one whose sleeping flag stays up or stays down. The launcher never waits on a
//!   child's ring: the run finishes, the attacker alone pays (judged not reading, or dead of
//!   what it then read, or slowed to its own looks), and a raised flag costs the launcher no
//!   more than a clean run.
//! - In a run of three views, one view's renderer keeping the launcher's loop busy (a flood of
//!   legal messages, within the launcher's budget or past it) or slowing itself (a flag kept
//!   lowered): the other views keep their pace, every frame presented, and only that renderer
//!   pays.

use std::time::{Duration, Instant};

use triptych_tests::*;

/// Frames of each hostile run.
const FRAMES: u64 = 200;

/// The child an attack comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Child {
    Renderer,
    Gpu,
}

impl Child {
    /// The variable that names its attack.
    fn variable(self) -> &'static str {
        match self {
            Child::Renderer => "TRIPTYCH_HOSTILE",
            Child::Gpu => "TRIPTYCH_HOSTILE_GPU",
        }
    }

    /// Its role, as crash records and the log name it.
    fn role(self) -> &'static str {
        match self {
            Child::Renderer => "renderer",
            Child::Gpu => "gpu",
        }
    }
}

/// Runs `attack` from `child` and returns the launcher's output and how long the run took.
fn run(
    child: Child,
    attack: &str,
    extra: &[&str],
) -> (std::process::Output, Duration, std::path::PathBuf) {
    let dir = scratch(&format!("hostile-{}-{attack}", child.role()));
    let cmd = hostile_command(child.variable(), attack, FRAMES, extra, &dir);
    let start = Instant::now();
    let o = output(cmd);
    (o, start.elapsed(), dir)
}

/// The launcher's log (children's lines quarantined in it) and the summary of a hostile run,
/// after checking that the run succeeded with every frame presented, at the launcher's clean
/// baseline, that only the attacker paid, and that the other child kept its pid: for an
/// attacking renderer, no GPU process was promoted; for an attacking GPU process, no renderer
/// crashed (a standby GPU process may take the attacker's place).
fn ring_run(child: Child, attack: &str, extra: &[&str]) -> (String, serde_json::Value) {
    let (log, s, _) = timed_ring_run(child, attack, extra);
    (log, s)
}

/// [`ring_run`], with the run's wall time.
fn timed_ring_run(
    child: Child,
    attack: &str,
    extra: &[&str],
) -> (String, serde_json::Value, Duration) {
    let (o, took, dir) = run(child, attack, extra);
    assert!(
        o.status.success(),
        "{attack}: the run must survive a hostile {child:?}: {}",
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
        "{attack}: the children's messages took the mailbox: {s}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert!(
        crashes.iter().all(|c| c["role"] == child.role()),
        "{attack}: only the {child:?} may pay: {s}"
    );
    if child == Child::Renderer {
        assert_eq!(
            s["recovery"]["standby"]["promotions"], 0,
            "{attack}: the GPU process keeps its pid: {s}"
        );
    }
    (String::from_utf8_lossy(&o.stderr).into_owned(), s, took)
}

/// Checks that the attacker was killed exactly once, and replaced (its pid is not its role's at
/// the end); returns the crash record's cause.
fn killed_once(child: Child, attack: &str, s: &serde_json::Value) -> String {
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(
        crashes.len(),
        1,
        "{attack}: one crash, the {child:?}'s: {s}"
    );
    let c = &crashes[0];
    assert_ne!(
        c["pid"],
        s["processes"]["pids"][child.role()],
        "{attack}: the attacker was replaced: {s}"
    );
    c["cause"].to_string()
}

/// Runs `attack` from `child` and checks that it, and only it, was killed once for a protocol
/// violation whose text contains `want`, and replaced. Returns the log and the summary.
fn killed_for(
    child: Child,
    attack: &str,
    want: &str,
    extra: &[&str],
) -> (String, serde_json::Value) {
    let (log, s) = ring_run(child, attack, extra);
    let cause = killed_once(child, attack, &s);
    // The run's own account, where the cause is another: its last lines say what came before.
    let tail = || {
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    };
    assert!(
        cause.contains("protocol_violation") && cause.contains(want),
        "{attack}: cause {cause} does not name {want:?}; the run's log ends:\n{}",
        tail()
    );
    (log, s)
}

/// Whether a line of `child`'s (any of its pids) in `log` contains `text`.
fn said(log: &str, child: Child, text: &str) -> bool {
    let prefix = format!("{}[", child.role());
    log.lines().any(|l| l.contains(&prefix) && l.contains(text))
}

fn renderer_said(log: &str, text: &str) -> bool {
    said(log, Child::Renderer, text)
}

#[test]
fn a_write_index_far_past_the_read_index() {
    killed_for(
        Child::Renderer,
        "ring-wild-index",
        "records past the reader's",
        &[],
    );
}

#[test]
fn a_record_longer_than_its_payload() {
    killed_for(
        Child::Renderer,
        "ring-long-record",
        "where one holds at most",
        &[],
    );
}

#[test]
fn a_record_of_an_unknown_kind() {
    killed_for(
        Child::Renderer,
        "ring-unknown-kind",
        "a record of unknown kind 7",
        &[],
    );
}

#[test]
fn an_empty_message_record() {
    killed_for(
        Child::Renderer,
        "ring-empty-record",
        "an empty message record",
        &[],
    );
}

#[test]
fn undecodable_bytes_in_a_record() {
    killed_for(
        Child::Renderer,
        "ring-undecodable",
        "an undecodable 8-byte message",
        &[],
    );
}

#[test]
fn records_rewritten_while_the_launcher_reads_them() {
    // Whether the launcher's copy of a record is the message or the garbage depends on timing:
    // garbage is judged (a named violation), never acted on, and a good copy stays good.
    let (log, s) = ring_run(Child::Renderer, "ring-rewrite", &[]);
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
    let (log, s) = ring_run(Child::Renderer, "ring-rewrite-read", &[]);
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
    let (log, _) = ring_run(
        Child::Renderer,
        "ring-read-index",
        &["--hang-timeout-ms", "800"],
    );
    assert!(
        renderer_said(&log, "rewrote the reader's index and flag"),
        "the rewriting never started:\n{log}"
    );
}

#[test]
fn wake_ups_without_records() {
    killed_for(
        Child::Renderer,
        "ring-wake-flood",
        "wake-ups without a record",
        &[],
    );
}

#[test]
fn an_announced_socket_message_that_never_comes() {
    // The renderer holds its writer while the launcher waits for the socket: the hang timeout is
    // set beyond that wait, so that the violation, not the silence, is what kills it.
    killed_for(
        Child::Renderer,
        "ring-announce-only",
        "did not come within",
        &["--hang-timeout-ms", "10000"],
    );
}

#[test]
fn a_socket_message_the_ring_did_not_announce() {
    killed_for(
        Child::Renderer,
        "ring-unannounced",
        "a Pong message on the socket that the ring did not announce",
        &[],
    );
}

#[test]
fn a_writer_that_keeps_the_ring_full() {
    // The ring-full wait is the writer's; the launcher reads on and judges the rate.
    let (log, _) = killed_for(
        Child::Renderer,
        "ring-starve",
        "messages in one second",
        &[],
    );
    assert!(
        renderer_said(&log, "keeping the mailbox full"),
        "the flood never started:\n{log}"
    );
}

// A paced run's launcher reads the renderers' mailboxes from its own loop, with no thread
// asleep on them: the same attacks, the same verdicts, found without a wait.

/// A paced run: the launcher polls each renderer's mailbox once a turn of its loop.
const PACED: &[&str] = &["--fps", "100"];

#[test]
fn paced_a_write_index_far_past_the_read_index() {
    killed_for(
        Child::Renderer,
        "ring-wild-index",
        "records past the reader's",
        PACED,
    );
}

#[test]
fn paced_undecodable_bytes_in_a_record() {
    killed_for(
        Child::Renderer,
        "ring-undecodable",
        "an undecodable 8-byte message",
        PACED,
    );
}

#[test]
fn paced_an_announced_socket_message_that_never_comes() {
    // The launcher's loop looks for the message at each turn and never waits for it; the
    // violation comes once its time is up.
    killed_for(
        Child::Renderer,
        "ring-announce-only",
        "did not come within",
        &["--fps", "100", "--hang-timeout-ms", "10000"],
    );
}

#[test]
fn paced_a_socket_message_the_ring_did_not_announce() {
    killed_for(
        Child::Renderer,
        "ring-unannounced",
        "a Pong message on the socket that the ring did not announce",
        PACED,
    );
}

#[test]
fn paced_a_writer_that_keeps_the_ring_full() {
    // Polled, the launcher takes 16 records of a mailbox a round, a few rounds a turn, and a
    // writer that still has more is read by a forwarding thread from then on: one that keeps
    // its ring full is judged by the budget if it passes it, and is otherwise slowed to the
    // launcher's pace (its own wait on the full ring).
    let (log, s) = ring_run(Child::Renderer, "ring-starve", PACED);
    assert!(
        renderer_said(&log, "keeping the mailbox full"),
        "the flood never started:\n{log}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    let judged = crashes.iter().all(|c| {
        c["cause"]["protocol_violation"]["what"]
            .as_str()
            .is_some_and(|w| w.contains("messages in one second"))
    });
    assert!(
        crashes.len() <= 1 && judged,
        "only the budget may cost it: {s}"
    );
    let records = s["paths"]["mailbox_records"].as_f64().expect("records");
    let seconds = s["frames"]["seconds"].as_f64().expect("seconds");
    assert!(
        !crashes.is_empty() || records <= 50_000.0 * (seconds + 1.0),
        "unjudged, it kept within the budget: {records} records in {seconds} s"
    );
}

#[test]
fn paced_wake_ups_without_records_wake_nobody() {
    // Nothing of the launcher sleeps on a polled mailbox: the flood wakes no one, costs the
    // renderer its own time, and is no violation.
    let (log, s) = ring_run(Child::Renderer, "ring-wake-flood", PACED);
    assert!(
        renderer_said(&log, "the wake-up flood went unpunished wakes=0"),
        "the flood woke someone, or never ran:\n{log}"
    );
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
}

// The GPU process as the writer of its mailbox to the launcher: the same attacks, the same
// verdicts. The GPU process is the one killed; a standby may take its place, and the renderer
// is never blamed.

#[test]
fn gpu_a_write_index_far_past_the_read_index() {
    killed_for(
        Child::Gpu,
        "ring-wild-index",
        "records past the reader's",
        &[],
    );
}

#[test]
fn gpu_a_record_of_an_unknown_kind() {
    killed_for(
        Child::Gpu,
        "ring-unknown-kind",
        "a record of unknown kind 7",
        &[],
    );
}

#[test]
fn gpu_undecodable_bytes_in_a_record() {
    killed_for(
        Child::Gpu,
        "ring-undecodable",
        "an undecodable 8-byte message",
        &[],
    );
}

#[test]
fn gpu_wake_ups_without_records() {
    killed_for(
        Child::Gpu,
        "ring-wake-flood",
        "wake-ups without a record",
        &[],
    );
}

#[test]
fn gpu_an_announced_socket_message_that_never_comes() {
    // As for the renderer: the hang timeout is beyond the launcher's wait for the socket, and
    // so is the fence timeout (the attack holds the process's frame loop, the fences of the
    // frame it has just sent with it).
    killed_for(
        Child::Gpu,
        "ring-announce-only",
        "did not come within",
        &["--hang-timeout-ms", "10000", "--fence-timeout-ms", "10000"],
    );
}

#[test]
fn gpu_a_socket_message_the_ring_did_not_announce() {
    killed_for(
        Child::Gpu,
        "ring-unannounced",
        "a Pong message on the socket that the ring did not announce",
        &[],
    );
}

// A paced run's launcher takes the GPU process's mailbox over from its thread once the process
// has started, and sleeps on it: the GPU process attacks its ring once its frames are being read,
// and the launcher's loop judges what it finds as the thread did.

/// Checks that the launcher's loop read the killed GPU process's ring before it was judged: the
/// takeover is logged for its pid, and the run's GPU processes were read by the loop.
fn loop_read_the_attacker(attack: &str, log: &str, s: &serde_json::Value) {
    let first = s["recovery"]["crashes"][0]["pid"]
        .as_u64()
        .expect("the attacker's pid");
    let names = |l: &str| {
        l.split(|c: char| !c.is_ascii_alphanumeric() && c != '=')
            .any(|w| w == format!("gpu={first}") || w == format!("pid={first}"))
    };
    let taken = log
        .lines()
        .position(|l| l.contains("the loop reads the GPU process's messages itself") && names(l));
    let judged = log
        .lines()
        .position(|l| l.contains("protocol violation") && names(l));
    assert!(
        matches!((taken, judged), (Some(t), Some(j)) if t < j),
        "{attack}: the loop did not read the attacker's ring before it was judged ({taken:?}, {judged:?}):\n{log}"
    );
    assert_ne!(
        s["paths"]["gpu_intake"], "thread",
        "{attack}: {}",
        s["paths"]
    );
}

#[test]
fn paced_gpu_a_write_index_far_past_the_read_index() {
    let (log, s) = killed_for(
        Child::Gpu,
        "ring-wild-index",
        "records past the reader's",
        PACED,
    );
    loop_read_the_attacker("ring-wild-index", &log, &s);
}

#[test]
fn paced_gpu_wake_ups_without_records() {
    // The loop itself sleeps on this ring: the flood wakes it, and is counted and judged.
    let (log, s) = killed_for(
        Child::Gpu,
        "ring-wake-flood",
        "wake-ups without a record",
        PACED,
    );
    loop_read_the_attacker("ring-wake-flood", &log, &s);
}

#[test]
fn paced_gpu_an_announced_socket_message_that_never_comes() {
    let (log, s) = killed_for(
        Child::Gpu,
        "ring-announce-only",
        "did not come within",
        &[
            "--fps",
            "100",
            "--hang-timeout-ms",
            "10000",
            "--fence-timeout-ms",
            "10000",
        ],
    );
    loop_read_the_attacker("ring-announce-only", &log, &s);
}

#[test]
fn paced_gpu_a_socket_message_the_ring_did_not_announce() {
    let (log, s) = killed_for(
        Child::Gpu,
        "ring-unannounced",
        "a Pong message on the socket that the ring did not announce",
        PACED,
    );
    loop_read_the_attacker("ring-unannounced", &log, &s);
}

// The same attacks made the moment the GPU process has started, before its first frame: the
// launcher is asking the thread that read its start-up for the ring back, and whichever of the
// two finds the attack judges it, with nothing lost between them.
#[test]
fn paced_gpu_at_start_a_write_index_far_past_the_read_index() {
    let (log, _) = killed_for(
        Child::Gpu,
        "ring-wild-index@start",
        "records past the reader's",
        PACED,
    );
    attacked_at_start(&log);
}

#[test]
fn paced_gpu_at_start_wake_ups_without_records() {
    let (log, _) = killed_for(
        Child::Gpu,
        "ring-wake-flood@start",
        "wake-ups without a record",
        PACED,
    );
    attacked_at_start(&log);
}

/// Checks that the GPU process attacked when it had started, and not at a frame.
fn attacked_at_start(log: &str) {
    assert!(
        said(log, Child::Gpu, "RingAtStart") && !said(log, Child::Gpu, "attacking its ring"),
        "the GPU process did not attack its ring at start:\n{log}"
    );
}

#[test]
fn paced_gpu_a_flood_goes_to_a_thread_and_is_judged_by_the_budget() {
    // The loop takes 16 of the process's messages a round, a few rounds a turn; one that still
    // has more is read by a forwarding thread from then on, as fast as it sends, and judged by
    // its budget as an unpaced run's thread judges it.
    let (log, s) = killed_for(Child::Gpu, "flood", "messages in one second", PACED);
    loop_read_the_attacker("flood", &log, &s);
    assert!(
        log.contains("the GPU process sends more than a turn of the loop takes"),
        "the flood never went to a thread:\n{log}"
    );
}

// Each child as the reader of the launcher's mailbox to it. Pings every 10 ms (the launcher's
// shortest heartbeat) keep it writing to both children whatever the frames do.

/// A reader whose published index stays where it was (its child paced at 25 ms a frame, so
/// that the run outlasts the 256 pings that fill the ring): the launcher, which never waits on a
/// child, finds the ring full and judges the child not reading. (The child reads on, unseen, so
/// the verdict is the full ring's, not a missed ping's.)
fn inbox_frozen(child: Child) {
    let (log, _) = killed_for(
        child,
        "ring-inbox-frozen",
        "stopped reading the launcher's commands",
        &["--heartbeat-ms", "10"],
    );
    assert!(
        said(&log, child, "froze the inbox's published read index"),
        "the index was never frozen:\n{log}"
    );
}

#[test]
fn renderer_inbox_with_a_frozen_read_index() {
    inbox_frozen(Child::Renderer);
}

#[test]
fn gpu_inbox_with_a_frozen_read_index() {
    inbox_frozen(Child::Gpu);
}

/// A reader that claims every record read while its loop stops for eight seconds: the launcher,
/// told there is room, writes on over records the child has not read. The child alone pays: its
/// own reader finds the launcher's write index more than a ring past its own and the child ends
/// on that (the hang and fence timeouts are beyond the stop, and half the hang timeout, the
/// launcher's wait before it blames a child for frames left unread, too: a missed ping, a late
/// fence or an unread frame is not what kills it).
fn inbox_lies(child: Child) {
    let (log, s) = ring_run(
        child,
        "ring-inbox-lies",
        &[
            "--heartbeat-ms",
            "10",
            "--hang-timeout-ms",
            "20000",
            "--fence-timeout-ms",
            "20000",
        ],
    );
    assert!(
        said(
            &log,
            child,
            "the launcher wrote over inbox records this process had not read"
        ),
        "the launcher never wrote over an unread record:\n{log}"
    );
    assert!(
        said(&log, child, "records past the reader's"),
        "the child's reader never saw the write index run past it:\n{log}"
    );
    let cause = killed_once(child, "ring-inbox-lies", &s);
    assert!(
        !cause.contains("stopped reading the launcher's commands"),
        "the launcher was told there was room, yet found its ring full: {cause}"
    );
}

#[test]
fn renderer_inbox_that_claims_records_it_never_read() {
    inbox_lies(Child::Renderer);
}

#[test]
fn gpu_inbox_that_claims_records_it_never_read() {
    inbox_lies(Child::Gpu);
}

/// A reader whose sleeping flag stays up: the launcher sends a wake-up with every
/// message, and that is all it costs. Against a clean run of the same settings, measured here:
/// no crash, every frame, and a wall time within a generous factor (a launcher that blocked on
/// on the wake-up or spun on the flag would run far past it).
fn inbox_sleeping(child: Child) {
    let extra = ["--heartbeat-ms", "10"];
    let (clean, _, clean_took) = timed_ring_run(child, "none", &extra);
    let (log, s, took) = timed_ring_run(child, "ring-inbox-sleeping", &extra);
    assert!(
        said(&log, child, "raised the sleeping flag again"),
        "the flag was never raised again after the reader lowered it:\n{log}"
    );
    assert!(
        !said(&clean, child, "hostile child"),
        "the clean run attacked:\n{clean}"
    );
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    assert!(
        took <= clean_took * 3 + Duration::from_secs(5),
        "the run took {took:?} with the flag raised, {clean_took:?} clean"
    );
}

#[test]
fn renderer_inbox_with_its_sleeping_flag_kept_raised() {
    inbox_sleeping(Child::Renderer);
}

#[test]
fn gpu_inbox_with_its_sleeping_flag_kept_raised() {
    inbox_sleeping(Child::Gpu);
}

/// Whether the run of `s` went at the pace of a child's own looks at its ring (100 ms) rather
/// than at its wake-ups: a clean run of these frames takes a fraction of a second, and no more
/// than 100 frames a second come when each waits for a look.
fn at_the_pace_of_looks(s: &serde_json::Value) -> bool {
    s["frames"]["fps"].as_f64().is_some_and(|fps| fps < 100.0)
}

/// Runs `attack`, one that keeps a sleeping flag lowered, from `child`, and checks that the
/// child said it did (`done`), that nobody was blamed, and that the run went at the pace of a
/// reader's own looks: the flag's owner was never woken, and every frame was presented.
fn flag_lowered(child: Child, attack: &str, done: &str) {
    let (log, s) = ring_run(child, attack, &["--heartbeat-ms", "10"]);
    assert!(
        said(&log, child, done),
        "{attack}: the flag was never lowered:\n{log}"
    );
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{attack}: nobody is blamed for a reader nobody wakes: {s}"
    );
    assert!(
        at_the_pace_of_looks(&s),
        "{attack}: the flag's owner was woken after all: {s}"
    );
}

/// A reader whose sleeping flag is lowered as soon as it raises it: the launcher, which lowers
/// it itself when it wakes the reader, finds it lowered and never wakes the child, which finds
/// the launcher's records only when its wait runs out (every 100 ms, pings every 10 ms or not).
/// That is all it costs: the launcher blames nobody, and the run goes at the pace of the
/// child's looks, every frame presented.
fn inbox_flag_lowered(child: Child) {
    flag_lowered(
        child,
        "ring-inbox-flag-lowered",
        "lowered the sleeping flag again",
    );
}

#[test]
fn renderer_inbox_with_its_sleeping_flag_kept_lowered() {
    inbox_flag_lowered(Child::Renderer);
}

#[test]
fn gpu_inbox_with_its_sleeping_flag_kept_lowered() {
    inbox_flag_lowered(Child::Gpu);
}

/// A writer that lowers the launcher's sleeping flag over and over (held down, where
/// `ring-read-index` only flips it): its records wake nobody, and the launcher finds them at
/// its own looks (every 100 ms). The child is the one slowed, and nobody is blamed.
fn writer_flag_lowered(child: Child) {
    flag_lowered(
        child,
        "ring-flag-lowered",
        "lowered the launcher's sleeping flag",
    );
}

#[test]
fn a_writer_that_keeps_the_readers_flag_lowered_only_slows_itself() {
    writer_flag_lowered(Child::Renderer);
}

#[test]
fn gpu_a_writer_that_keeps_the_readers_flag_lowered_only_slows_itself() {
    writer_flag_lowered(Child::Gpu);
}

// One view's renderer keeping the launcher's loop busy in a run of three views: the loop
// handles up to 16 of one child's waiting messages in a turn and puts off its wake-ups of the
// children while messages keep coming, and neither may starve the other views.

/// Frames of each view in the runs of three views, paced at 60 a second: a view the flood held
/// up would show in its time.
const VIEW_FRAMES: u64 = 180;

/// The pace of the runs of three views, frames a second.
const VIEW_FPS: u64 = 60;

/// The most time from the first frame of an honest view to its last: twice what the pace takes
/// (three seconds). A view whose frames waited for its renderer's own looks at its ring (100
/// ms), not woken, would take three times that.
const HONEST_SECONDS: f64 = 2.0 * VIEW_FRAMES as f64 / VIEW_FPS as f64;

/// Runs three views of the built-in scene, paced, with `attack` in the first renderer (view
/// 0's: the launcher passes the variable to the first process of a role only); returns the
/// launcher's log and the summary, after checking that the run succeeded with every frame of
/// every view presented, that only view 0's renderer paid, that the GPU process kept its pid,
/// and that the other views kept their pace.
fn views_run(attack: &str) -> (String, serde_json::Value) {
    let dir = scratch(&format!("hostile-views-{attack}"));
    let fps = VIEW_FPS.to_string();
    let mut extra = vec!["--headless", "--fps", &fps];
    for _ in 0..3 {
        extra.extend(["--view", "default"]);
    }
    let o = output(hostile_command(
        "TRIPTYCH_HOSTILE",
        attack,
        VIEW_FRAMES,
        &extra,
        &dir,
    ));
    assert!(
        o.status.success(),
        "{attack}: the run must survive a hostile renderer: {}",
        show(&o)
    );
    let s = summary(&dir.join("summary.json"));
    let views = s["views"].as_array().expect("views");
    assert_eq!(views.len(), 3, "{s}");
    for (i, v) in views.iter().enumerate() {
        assert_eq!(
            v["frames"], VIEW_FRAMES,
            "{attack}: view {i} presented every frame: {v}"
        );
        assert_eq!(v["last"], VIEW_FRAMES - 1, "{attack}: {v}");
        assert!(v["failed"].is_null(), "{attack}: view {i} given up: {v}");
    }
    for v in &views[1..] {
        assert_eq!(v["restarts"], 0, "{attack}: an honest renderer blamed: {v}");
        assert!(
            v["seconds"].as_f64().is_some_and(|t| t <= HONEST_SECONDS),
            "{attack}: an honest view held up: {v}"
        );
    }
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert!(
        crashes
            .iter()
            .all(|c| c["role"] == "renderer" && c["view"] == 0),
        "{attack}: only view 0's renderer may pay: {s}"
    );
    assert_eq!(
        s["recovery"]["standby"]["promotions"], 0,
        "{attack}: the GPU process keeps its pid: {s}"
    );
    (String::from_utf8_lossy(&o.stderr).into_owned(), s)
}

#[test]
fn one_views_flood_costs_its_renderer_alone() {
    // As fast as it can: past the launcher's budget, view 0's renderer is killed for it.
    let (log, s) = views_run("flood");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, view 0's renderer's: {s}");
    let cause = crashes[0]["cause"].to_string();
    assert!(
        cause.contains("protocol_violation") && cause.contains("messages in one second"),
        "{cause}; the run's log:\n{log}"
    );
    assert_eq!(s["views"][0]["restarts"], 1, "{s}");
}

#[test]
fn one_views_steady_flood_within_its_budget_starves_no_other_view() {
    // Short of the budget, for the whole run: legal, so nobody is killed, and the launcher
    // reads and handles every pong; the other views keep their pace all the same.
    let (clean, clean_s) = views_run("none");
    let (log, s) = views_run("steady-flood");
    assert!(
        !renderer_said(&clean, "hostile renderer"),
        "the clean run attacked:\n{clean}"
    );
    assert!(
        renderer_said(&log, "still flooding pongs"),
        "the flood never got going:\n{log}"
    );
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "a flood within the budget is no violation: {s}"
    );
    // Half its rate over the run's three seconds, at least: the launcher took them all.
    let records = |s: &serde_json::Value| s["paths"]["mailbox_records"].as_u64().unwrap_or(0);
    assert!(
        records(&s) >= records(&clean_s) + 45_000,
        "the flood never reached the launcher: {} records, {} in a clean run",
        records(&s),
        records(&clean_s)
    );
}

#[test]
fn a_renderer_whose_sleeping_flag_is_kept_lowered_slows_its_own_view_alone() {
    // Never woken by the launcher, view 0's renderer takes its frames at its own looks: its
    // view falls behind its pace, the others keep theirs, and nobody is blamed.
    let (_, s) = views_run("ring-inbox-flag-lowered");
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    assert!(
        s["views"][0]["seconds"].as_f64() > Some(HONEST_SECONDS),
        "view 0 kept its pace: the launcher woke its renderer after all: {s}"
    );
}

#[test]
fn a_renderer_that_keeps_the_launchers_flag_lowered_changes_nothing_in_a_paced_run() {
    // A paced run's launcher reads every renderer's ring from its own loop and does not raise
    // its sleeping flag there (a thread does, only at the end, for the renderer's last words):
    // lowering it changes nothing, its view keeps its pace with the others, and nobody is
    // blamed. (Unpaced, where a thread of the launcher sleeps on the
    // ring, the same attack slows the attacker alone: `a_writer_that_keeps_the_readers_flag_
    // lowered_only_slows_itself`.)
    let (log, s) = views_run("ring-flag-lowered");
    assert!(
        renderer_said(&log, "keeps the launcher's sleeping flag lowered"),
        "the attack never started:\n{log}"
    );
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    assert!(
        s["views"][0]["seconds"]
            .as_f64()
            .is_some_and(|t| t <= HONEST_SECONDS),
        "view 0 fell behind: {s}"
    );
}
