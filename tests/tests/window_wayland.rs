//! `triptych run` in a real window on a real Wayland compositor (weston's headless backend): the
//! compositor shows the predicted composite, the present path is `wl_shm` buffers over the
//! renderer's output memfd, and frames are paced by the compositor's frame callbacks.
//!
//! weston's headless backend has a seat that nothing drives, and Debian's weston ships no test
//! protocol to inject input with, so keys and resizes reach the window through a FIFO the run
//! reads (the test-only `triptych-input-shim`, `tests/src/bin/input-shim.rs`, which is the
//! `triptych` command line with that input source): a key goes through the same
//! mapping as a keyboard's, and a resize is asked of winit as an application would ask it; from
//! there on everything (the new generation, the new `wl_buffer`s, the frame callbacks) is what
//! a user's resize or key press sets off.

use std::process::Stdio;
use std::time::Duration;

use triptych_tests::x11::{find, Lines, TestInput, Weston};
use triptych_tests::{scratch, summary, wait_within};

const W: u32 = 320;
const H: u32 = 240;
const LAYERS: u32 = 3;

struct Run {
    child: std::process::Child,
    lines: Lines,
    json: std::path::PathBuf,
    dir: std::path::PathBuf,
    input: TestInput,
}

fn start(weston: &Weston, tag: &str, frames: u64) -> Run {
    let dir = scratch(tag);
    let json = dir.join("s.json");
    let input = TestInput::new(&dir);
    let mut cmd = input.triptych(&["run", "--window", "--size", "320x240", "--layers", "3"]);
    cmd.arg("--frames")
        .arg(frames.to_string())
        .arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(&json)
        .env_remove("DISPLAY")
        .env("XDG_RUNTIME_DIR", &weston.runtime_dir)
        .env("WAYLAND_DISPLAY", &weston.socket)
        .env(
            "TRIPTYCH_LOG",
            std::env::var("TRIPTYCH_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting triptych");
    let mut lines = Lines::new(child.stderr.take().expect("stderr"));
    lines.wait_for("window open", Duration::from_secs(30));
    Run {
        child,
        lines,
        json,
        dir,
        input,
    }
}

fn stop(mut r: Run) -> serde_json::Value {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(r.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let status = wait_within(
        &mut r.child,
        Duration::from_secs(30),
        "the windowed launcher",
    );
    assert!(status.success(), "{status:?}\n{}", r.lines.seen.join("\n"));
    summary(&r.json)
}

/// The number after `key=` in `line`.
fn field<T: std::str::FromStr>(line: &str, key: &str) -> T {
    line.split(&format!("{key}="))
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

/// The scene's composite of `frame` at `w` x `h`, as RGBA.
fn composite(frame: u64, w: u32, h: u32) -> Vec<u8> {
    let mut want = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            want.extend(triptych_scene::expected_pixel(frame, LAYERS, w, h, x, y));
        }
    }
    want
}

/// Asserts that the whole composite of `frame` at `w` x `h` is on the compositor's output;
/// returns the output's pixels.
fn assert_on_output(weston: &Weston, dir: &std::path::Path, frame: u64, w: u32, h: u32) -> Vec<u8> {
    let (sw, sh, shot) = weston.screenshot(dir);
    assert!(
        find(&shot, sw, sh, &composite(frame, w, h), w, h).is_some(),
        "frame {frame}'s composite at {w}x{h}, all {} pixels of it, is nowhere on the {sw}x{sh} output",
        w * h
    );
    shot
}

/// Pauses, steps one frame and returns its number once the compositor has shown it.
fn pause_and_step(r: &mut Run, after: &str) -> u64 {
    r.input.send("key .");
    let shown = r.lines.wait_for_after(
        "the stepped frame is on screen",
        after,
        Duration::from_secs(30),
    );
    field(&shown, "frame")
}

#[test]
fn the_compositor_shows_the_composite_from_wl_shm_buffers() {
    let weston = Weston::start(640, 480);
    let mut r = start(&weston, "wayland-window", 30);
    // Announced at the frame callback after its commit: the compositor has shown it.
    r.lines
        .wait_for("the last frame is on screen", Duration::from_secs(60));
    assert_on_output(&weston, &r.dir, 29, W, H);
    let s = stop(r);
    assert!(
        s["paths"]["present"]
            .as_str()
            .is_some_and(|p| p.starts_with("Wayland wl_shm")),
        "the summary names the zero-copy path: {}",
        s["paths"]["present"]
    );
    assert_eq!(s["frames"]["last"], 29);
}

#[test]
fn a_resize_brings_frames_of_the_new_size_on_wayland() {
    let weston = Weston::start(640, 480);
    let mut r = start(&weston, "wayland-resize", 100_000);
    r.lines
        .wait_for("GPU process started", Duration::from_secs(60));
    r.input.send("key space");
    let paused = r.lines.wait_for("paused=true", Duration::from_secs(20));
    r.input.send("resize 400x300");
    let resized = r.lines.wait_for("window resized", Duration::from_secs(20));
    assert!(
        resized.contains("width=400") && resized.contains("height=300"),
        "{resized} ({paused})"
    );
    // One frame, asked for after the resize.
    r.input.send("key .");
    let line = r.lines.wait_for(
        "a frame of the new size is on screen",
        Duration::from_secs(30),
    );
    assert!(
        line.contains("width=400") && line.contains("height=300"),
        "{line}"
    );
    assert_eq!(
        field::<u32>(&line, "generation"),
        field::<u32>(&resized, "generation"),
        "{line}"
    );
    let stepped = r.lines.wait_for_after(
        "the stepped frame is on screen",
        &resized,
        Duration::from_secs(30),
    );
    assert_on_output(&weston, &r.dir, field(&stepped, "frame"), 400, 300);
    let s = stop(r);
    assert_eq!(s["frames"]["resizes"], 1, "{s}");
    assert_eq!(
        (
            s["frames"]["width"].as_u64(),
            s["frames"]["height"].as_u64()
        ),
        (Some(400), Some(300))
    );
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
}

#[test]
fn the_kill_gpu_key_keeps_the_last_frame_and_steps_bring_new_ones_on_wayland() {
    let weston = Weston::start(640, 480);
    let mut r = start(&weston, "wayland-keys", 100_000);
    let started = r
        .lines
        .wait_for("GPU process started", Duration::from_secs(60));
    r.input.send("key space");
    let paused = r.lines.wait_for("paused=true", Duration::from_secs(20));
    // Paused: one step, one frame, and the compositor shows exactly it.
    let first = pause_and_step(&mut r, &paused);
    let before = assert_on_output(&weston, &r.dir, first, W, H);
    r.input.send("key g");
    r.lines.wait_for(
        "kill key: SIGKILL to the GPU process",
        Duration::from_secs(20),
    );
    r.lines.wait_for(
        "child crashed; restarting it role=gpu",
        Duration::from_secs(20),
    );
    let switched = r
        .lines
        .wait_for("switching to a new GPU process", Duration::from_secs(60));
    let (_, _, during) = weston.screenshot(&r.dir);
    assert!(
        before == during,
        "the last frame stays on screen while the GPU process is replaced"
    );
    // Still paused: a step brings the replacement's first frame, a later one than before.
    let next = pause_and_step(&mut r, &switched);
    assert!(next > first, "frame {next} after frame {first} ({started})");
    r.lines.wait_for(
        "recovered: first frame from the replacement role=gpu",
        Duration::from_secs(30),
    );
    assert_on_output(&weston, &r.dir, next, W, H);
    // Resume: frames flow again until the pause that ends the test.
    r.input.send("key space");
    r.lines.wait_for("paused=false", Duration::from_secs(20));
    let s = stop(r);
    let crashes = s["recovery"]["crashes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(crashes.len(), 1, "the kill is the one crash: {crashes:?}");
    assert_eq!(crashes[0]["role"], "gpu", "{crashes:?}");
    assert!(
        crashes[0]["recovery_us"].as_f64().is_some(),
        "the GPU process's replacement presented: {crashes:?}"
    );
}
