//! `triptych run` in a real window on a real Wayland compositor (weston's headless backend): the
//! compositor shows the predicted composite, the present path is `wl_shm` buffers over the
//! renderer's output memfd, and frames are paced by the compositor's frame callbacks.

use std::process::Stdio;
use std::time::Duration;

use triptych_tests::x11::{find, Lines, Weston};
use triptych_tests::{scratch, summary, triptych, wait_within};

const W: u32 = 320;
const H: u32 = 240;

#[test]
fn the_compositor_shows_the_composite_from_wl_shm_buffers() {
    let weston = Weston::start(640, 480);
    let dir = scratch("wayland-window");
    let json = dir.join("s.json");
    let mut cmd = triptych(&["run", "--window", "--size", "320x240", "--layers", "3"]);
    cmd.args(["--frames", "30"])
        .arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(&json)
        .env_remove("DISPLAY")
        .env("XDG_RUNTIME_DIR", &weston.runtime_dir)
        .env("WAYLAND_DISPLAY", &weston.socket)
        .env("TRIPTYCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting triptych");
    let mut lines = Lines::new(child.stderr.take().expect("stderr"));
    lines.wait_for("window open", Duration::from_secs(30));
    // Announced at the frame callback after its commit: the compositor has shown it.
    lines.wait_for("the last frame is on screen", Duration::from_secs(60));
    let mut want = Vec::with_capacity((W * H * 4) as usize);
    for y in 0..H {
        for x in 0..W {
            want.extend(triptych_scene::expected_pixel(29, 3, W, H, x, y));
        }
    }
    let (sw, sh, shot) = weston.screenshot(&dir);
    let at = find(&shot, sw, sh, &want, W, H);
    assert!(
        at.is_some(),
        "frame 29's composite, all {} pixels of it, is nowhere on the {sw}x{sh} output",
        W * H
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let status = wait_within(&mut child, Duration::from_secs(30), "the windowed launcher");
    assert!(status.success(), "{status:?}\n{}", lines.seen.join("\n"));
    let s = summary(&json);
    assert!(
        s["present"]
            .as_str()
            .is_some_and(|p| p.starts_with("Wayland wl_shm")),
        "the summary names the zero-copy path: {}",
        s["present"]
    );
    assert_eq!(s["last_frame"], 29);
}
