//! Several views, one GPU process: each view a real sandboxed renderer of its own drawing its
//! own scene, all served by one GPU process, headless. Each view's last frame must equal its
//! scene's reference composite; a view's renderer killed restarts that view alone while the
//! others present every frame; the GPU process killed is recovered for every view; a renderer
//! that attacks (the project's adversary, from inside its sandbox) costs only itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use triptych_tests::views::{renderer_of, scenes, COLOURS, SIZE};
use triptych_tests::*;

/// `triptych run` of `frames` frames of the views of `scenes`, into `dir`, with `extra`.
fn views_command(
    dir: &Path,
    scenes: &[PathBuf],
    frames: u64,
    extra: &[&str],
) -> std::process::Command {
    let mut cmd = triptych(&["run", "--headless", "--buffers", "shm"]);
    cmd.args(["--frames", &frames.to_string()])
        .args(["--size", &format!("{}x{}", SIZE.0, SIZE.1)])
        .args(extra)
        .arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(dir.join("summary.json"));
    for s in scenes {
        cmd.arg("--view").arg(s);
    }
    cmd
}

/// The summary's views, checked to be `n`, each with every frame presented and verified.
fn views_all_presented(s: &serde_json::Value, n: usize, frames: u64) -> Vec<serde_json::Value> {
    let views = s["views"].as_array().expect("views").clone();
    assert_eq!(views.len(), n, "{s}");
    for (i, v) in views.iter().enumerate() {
        assert_eq!(v["view"], i as u64, "{v}");
        assert_eq!(v["frames"], frames, "view {i} presented every frame: {v}");
        assert_eq!(v["last"], frames - 1, "{v}");
        assert_eq!(
            v["verified"]["mismatches"], 0,
            "view {i}'s last frame is its scene's reference: {v}"
        );
    }
    views
}

/// The colour at the bottom right corner of `png`, away from the moving checker.
fn corner(png: &Path) -> [u8; 3] {
    let (w, h, px) = read_png(png);
    let i = (((h - 1) * w + (w - 1)) * 4) as usize;
    [px[i], px[i + 1], px[i + 2]]
}

#[test]
fn four_views_of_different_scenes_each_show_their_own_from_one_gpu_process() {
    let dir = scratch("four-views");
    let scenes = scenes(&dir, 4);
    let o = output(views_command(&dir, &scenes, 30, &["--verify"]));
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir.join("summary.json"));
    let views = views_all_presented(&s, 4, 30);
    // Four renderers, one GPU process, no crash.
    let pids: std::collections::BTreeSet<_> =
        views.iter().map(|v| v["renderer_pid"].as_u64()).collect();
    assert_eq!(pids.len(), 4, "a renderer of its own per view: {s}");
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    // Each view's file holds its own scene.
    for (i, v) in views.iter().enumerate() {
        let out = v["out"].as_str().expect("each view's frame written");
        let want = if i == 0 {
            dir.join("f.png")
        } else {
            dir.join(format!("f-view{i}.png"))
        };
        assert_eq!(Path::new(out), want, "{v}");
        assert_eq!(corner(&want), COLOURS[i], "view {i} shows its own scene");
        // Its renderer held no more than its own pool.
        assert!(v["held_max"].as_u64() <= v["pool_buffers"].as_u64(), "{v}");
    }
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("view 3: 30 frames"), "{text}");
}

/// Runs `frames` frames of `n` views paced at 30 a second, and once the run is under way kills
/// with `pick` (given the launcher's pid) the child it names. Returns the summary.
fn run_and_kill(
    test: &str,
    n: usize,
    frames: u64,
    pick: impl Fn(u32) -> Option<u32>,
) -> serde_json::Value {
    let dir = scratch(test);
    let scenes = scenes(&dir, n);
    let mut cmd = views_command(&dir, &scenes, frames, &["--fps", "30", "--verify"]);
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning triptych");
    let launcher = child.id();
    // A third of the way in.
    let mut victim = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            std::thread::sleep(Duration::from_millis(100));
            let renderers = children_named(launcher, "renderer");
            if renderers.len() < n || std::fs::metadata(dir.join("summary.json")).is_ok() {
                return false;
            }
            victim = pick(launcher);
            victim.is_some()
        }),
        "the run never got under way"
    );
    std::thread::sleep(Duration::from_millis(1000));
    let pid = victim.expect("a child to kill");
    // Through a pidfd: the pid was just read as the launcher's child, and a pidfd names that
    // process even if it died and its number were reused meanwhile.
    let pidfd = triptych_sys::pidfd::pidfd_open(pid as i32).expect("a pidfd of the victim");
    triptych_sys::pidfd::pidfd_send_signal(
        std::os::fd::AsFd::as_fd(&pidfd),
        triptych_sys::signal::Signal::SIGKILL,
    )
    .expect("killing it");
    let o = finish_within(child, Duration::from_secs(120), test);
    assert!(o.status.success(), "{test}: {}", show(&o));
    let s = summary(&dir.join("summary.json"));
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "{test}: the one kill: {s}");
    assert_eq!(crashes[0]["pid"], pid, "{s}");
    assert!(
        crashes[0]["recovery_us"].as_f64().is_some(),
        "{test}: recovered: {s}"
    );
    s
}

#[test]
fn killing_one_views_renderer_restarts_that_view_alone() {
    let frames = 90;
    let s = run_and_kill("kill-view-renderer", 4, frames, |l| renderer_of(l, 2));
    let views = views_all_presented(&s, 4, frames);
    for (i, v) in views.iter().enumerate() {
        let restarts = u64::from(i == 2);
        assert_eq!(v["restarts"], restarts, "view {i}: {v}");
    }
    let c = &s["recovery"]["crashes"][0];
    assert_eq!(
        (c["role"].as_str(), c["view"].as_u64()),
        (Some("renderer"), Some(2)),
        "{c}"
    );
}

#[test]
fn killing_the_gpu_process_recovers_every_view() {
    let frames = 90;
    let s = run_and_kill("kill-views-gpu", 4, frames, |l| {
        // The running GPU process: the first started (a standby comes later).
        let mut g = children_named(l, "gpu");
        g.sort_unstable();
        g.first().copied()
    });
    let views = views_all_presented(&s, 4, frames);
    for v in &views {
        assert_eq!(v["restarts"], 0, "no renderer crashed: {v}");
    }
    let c = &s["recovery"]["crashes"][0];
    assert_eq!(c["role"], "gpu", "{c}");
}

#[test]
fn views_past_the_maximum_are_refused_before_anything_starts() {
    let dir = scratch("too-many-views");
    let scenes = scenes(&dir, 4);
    let o = output(views_command(&dir, &scenes, 5, &["--max-views", "3"]));
    assert!(!o.status.success(), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("4 views"), "the error names the views: {err}");
    assert!(!dir.join("summary.json").exists());
    // The maximum itself is allowed.
    let o = output(views_command(
        &dir,
        &scenes[..3],
        5,
        &["--max-views", "3", "--verify"],
    ));
    assert!(o.status.success(), "{}", show(&o));
    views_all_presented(&summary(&dir.join("summary.json")), 3, 5);
}

/// Frames of a run with a hostile view: enough for an attack repeated at every frame (a flood
/// of pongs) to be repeated often.
const HOSTILE_FRAMES: u64 = 200;

/// Runs three views whose first view's renderer is the adversary carrying out `attack`, from
/// inside its sandbox: the launcher hands the attack's variable to the first renderer only,
/// view 0's. Returns the launcher's log and the summary.
fn hostile_views(attack: &str) -> (String, serde_json::Value) {
    let dir = scratch(&format!("views-{attack}"));
    let scenes = scenes(&dir, 3);
    // Paced, so that an attack repeated all along (a flood) has seconds to be seen in.
    let mut cmd = views_command(&dir, &scenes, HOSTILE_FRAMES, &["--fps", "60"]);
    cmd.env("TRIPTYCH_BIN_DIR", adversary_bin(&dir))
        .env("TRIPTYCH_HOSTILE", attack);
    let o = output(cmd);
    assert!(o.status.success(), "{attack}: {}", show(&o));
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    (log, summary(&dir.join("summary.json")))
}

/// A hostile first view's renderer carries out `attack` in a run of three views: it alone is
/// replaced, named for `want`; the other views present every frame, and the GPU process is
/// never touched.
fn one_view_attacks(attack: &str, want: &str) {
    let frames = HOSTILE_FRAMES;
    let (_, s) = hostile_views(attack);
    let views = s["views"].as_array().expect("views");
    assert_eq!(views.len(), 3, "{s}");
    for (i, v) in views.iter().enumerate() {
        assert_eq!(
            v["frames"], frames,
            "{attack}: view {i} presented every frame: {v}"
        );
        let restarts = u64::from(i == 0);
        assert_eq!(v["restarts"], restarts, "{attack}: view {i}: {v}");
    }
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(
        crashes.len(),
        1,
        "{attack}: the attacker's crash alone: {s}"
    );
    let c = &crashes[0];
    assert_eq!(
        (c["role"].as_str(), c["view"].as_u64()),
        (Some("renderer"), Some(0)),
        "{c}"
    );
    let cause = c["cause"].to_string();
    assert!(
        cause.contains(want),
        "{attack}: cause {cause} does not name {want:?}"
    );
}

#[test]
fn a_renderer_reaching_for_another_views_fds_is_killed_and_named() {
    // Its filter lets `pidfd_getfd` reach its own view's window only: the first number of the
    // next view's window, while that view's buffers and fences sit there, traps; the kernel
    // reports the call and the renderer dies for it, having taken nothing.
    one_view_attacks("neighbour-fds", "pidfd_getfd");
    let (log, _) = hostile_views("neighbour-fds");
    assert!(
        !log.lines().any(|l| l.contains("another view's fds taken")),
        "the attack went on past its first call:\n{log}"
    );
}

#[test]
fn a_renderer_releasing_buffers_it_never_held_costs_only_itself() {
    one_view_attacks("bogus-release", "which it does not hold");
}

#[test]
fn a_renderer_withholding_every_release_is_blamed_alone() {
    one_view_attacks("withhold", "held every buffer");
}

#[test]
fn a_renderer_flooding_costs_only_itself() {
    one_view_attacks("flood", "messages in one second");
}

#[test]
fn a_renderer_claiming_a_forged_fence_timeout_costs_only_itself() {
    one_view_attacks("forged-timeout", "FenceTimeout");
}

/// A hostile GPU process (the adversary, sandboxed as the product's) carries out `attack`
/// about its views in a run of two: it alone is replaced, named for `want`; both views present
/// every frame and no renderer is blamed.
fn gpu_lies_about_views(attack: &str, want: &str) {
    let frames = 60;
    let dir = scratch(&format!("views-gpu-{attack}"));
    let scenes = scenes(&dir, 2);
    let mut cmd = views_command(&dir, &scenes, frames, &[]);
    cmd.env("TRIPTYCH_BIN_DIR", adversary_bin(&dir))
        .env("TRIPTYCH_HOSTILE_GPU", attack);
    let o = output(cmd);
    assert!(o.status.success(), "{attack}: {}", show(&o));
    let s = summary(&dir.join("summary.json"));
    let views = s["views"].as_array().expect("views");
    assert_eq!(views.len(), 2, "{s}");
    for (i, v) in views.iter().enumerate() {
        assert_eq!(
            v["frames"], frames,
            "{attack}: view {i} presented every frame: {v}"
        );
        assert_eq!(v["restarts"], 0, "{attack}: no renderer blamed: {v}");
    }
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(
        crashes.len(),
        1,
        "{attack}: the GPU process's crash alone: {s}"
    );
    assert_eq!(crashes[0]["role"], "gpu", "{s}");
    let cause = crashes[0]["cause"].to_string();
    assert!(
        cause.contains("protocol_violation") && cause.contains(want),
        "{attack}: cause {cause} does not name {want:?}"
    );
}

#[test]
fn a_gpu_process_sending_frames_of_a_view_it_was_never_given_costs_itself() {
    gpu_lies_about_views("unknown-view", "view 9, which it was never given");
}

#[test]
fn a_gpu_process_sending_one_views_frame_as_anothers_costs_itself() {
    // Its fds lie in view 0's window: the launcher checks each view's frames against its own.
    gpu_lies_about_views("cross-view", "outside the export window [768, 1024)");
}

#[test]
fn a_gpu_process_saying_a_view_it_serves_is_removed_costs_itself() {
    gpu_lies_about_views("removed-lie", "which was never removed");
}

#[test]
fn a_view_whose_renderer_crashes_too_often_is_given_up_and_the_others_go_on() {
    // Every renderer of view 1 (and only of view 1) breaks the protocol at once: past its
    // restart ladder the view is given up, while views 0 and 2 present every frame and the
    // GPU process serves them throughout.
    let frames = 120;
    let dir = scratch("views-given-up");
    let scenes = scenes(&dir, 3);
    let mut cmd = views_command(&dir, &scenes, frames, &["--fps", "60"]);
    let bin = adversary_bin(&dir);
    attack_every(&bin, "triptych-renderer", "bogus-release@1");
    cmd.env("TRIPTYCH_BIN_DIR", bin);
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir.join("summary.json"));
    let views = s["views"].as_array().expect("views");
    for i in [0, 2] {
        assert_eq!(views[i]["frames"], frames, "view {i}: {}", views[i]);
        assert_eq!(views[i]["restarts"], 0, "view {i}: {}", views[i]);
        assert!(views[i]["failed"].is_null(), "{}", views[i]);
    }
    let v = &views[1];
    assert!(
        v["failed"]
            .as_str()
            .is_some_and(|f| f.contains("crashed more than 3 times")),
        "view 1 given up: {v}"
    );
    assert_eq!(v["restarts"], 4, "{v}");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert!(
        crashes
            .iter()
            .all(|c| c["role"] == "renderer" && c["view"] == 1),
        "only view 1's renderers crashed: {s}"
    );
}

#[test]
fn one_views_claims_with_pipe_fences_leave_every_view_presenting() {
    // Pipe fences: view 0's renderer rejects good frames (a claim against the GPU process), the
    // launcher asks the GPU process to keep its fences private, which it does for every view's;
    // every view's frames are vouched for from then on, so view 1 presents every frame, and view
    // 0's renderer, rejecting frames the launcher vouched for, alone pays.
    let frames = 200;
    let dir = scratch("views-private-fences");
    let scenes = scenes(&dir, 2);
    let mut cmd = views_command(&dir, &scenes, frames, &["--progress-fences", "off"]);
    cmd.env("TRIPTYCH_BIN_DIR", adversary_bin(&dir))
        .env("TRIPTYCH_HOSTILE", "reject-all");
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir.join("summary.json"));
    let views = s["views"].as_array().expect("views");
    for (i, v) in views.iter().enumerate() {
        assert_eq!(v["frames"], frames, "view {i}: {v}");
    }
    assert_eq!(views[1]["restarts"], 0, "{s}");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert!(
        crashes
            .iter()
            .all(|c| c["role"] == "renderer" && c["view"] == 0),
        "only view 0's renderer pays: {s}"
    );
    assert!(s["trust"]["vouched_frames"].as_u64() > Some(100), "{s}");
}

#[test]
fn a_gpu_process_starving_one_view_is_blamed() {
    // It serves view 0 and never renders for view 1: once it has drawn two rounds of the other
    // views' frames with view 1's buffers free and none of view 1's, past the hang timeout,
    // it is stalled; its replacement (clean) serves both.
    let frames = 120;
    let dir = scratch("views-gpu-starve");
    let scenes = scenes(&dir, 2);
    let mut cmd = views_command(
        &dir,
        &scenes,
        frames,
        &["--fps", "60", "--hang-timeout-ms", "1000"],
    );
    cmd.env("TRIPTYCH_BIN_DIR", adversary_bin(&dir))
        .env("TRIPTYCH_HOSTILE_GPU", "starve-view");
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir.join("summary.json"));
    for (i, v) in s["views"].as_array().expect("views").iter().enumerate() {
        assert_eq!(v["frames"], frames, "view {i}: {v}");
        assert_eq!(v["restarts"], 0, "no renderer blamed: {v}");
    }
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "the GPU process's crash alone: {s}");
    assert_eq!(crashes[0]["role"], "gpu", "{s}");
    assert!(crashes[0]["cause"]["stalled"].is_object(), "{s}");
}
