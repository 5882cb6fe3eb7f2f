//! The window's overlay on a real X server: the `o` key shows it, drawn by the GPU process as
//! the frame's top layer, and every pixel of the window is the scene's reference with the
//! overlay of the text the launcher sent composited over it (the scene crate's rasterizer, the
//! same function the GPU process calls); `o` again hides it and the window is the reference.
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use triptych_scene::file::{reference_frame, Scene};
use triptych_scene::overlay::{rasterize, POSITION};
use triptych_tests::x11::{
    find, interrupt, press, screenshot, window_id, Lines, TestInput, Weston, Xvfb,
};
use triptych_tests::{poll_until, scratch, triptych};

/// Nothing animates: the window gets frames only on change (a toggle, a new overlay text).
const STILL: &str = r##"
[[layers]]
name = "back"
kind = "checker"
cell = 16
colors = ["#203040", "#506070"]
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "panel"
kind = "solid"
color = "#c0602080"
rect = { x = 40, y = 30, w = 200, h = 120 }
"##;

const W: u32 = 640;
const H: u32 = 480;

fn reference(scene: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(scene).expect("scene text");
    let s = Scene::parse(&text, scene).expect("parses");
    reference_frame(&s, 0, W, H, &[None, None]).expect("predictable")
}

/// `frame` with the overlay of `lines` composited over it at its place, and the overlay's
/// rectangle in the frame (x0, y0, x1, y1).
fn with_overlay(frame: &[u8], lines: &[String]) -> (Vec<u8>, (u32, u32, u32, u32)) {
    let o = rasterize(lines).expect("the font loads");
    let mut out = frame.to_vec();
    let (ox, oy) = (POSITION.0 as u32, POSITION.1 as u32);
    let (x1, y1) = ((ox + o.width).min(W), (oy + o.height).min(H));
    for y in oy..y1 {
        for x in ox..x1 {
            let s = ((y - oy) * o.width + (x - ox)) as usize * 4;
            let d = (y * W + x) as usize * 4;
            let src = [
                o.pixels[s],
                o.pixels[s + 1],
                o.pixels[s + 2],
                o.pixels[s + 3],
            ];
            let dst = [out[d], out[d + 1], out[d + 2], out[d + 3]];
            out[d..d + 4].copy_from_slice(&triptych_scene::blend_over(dst, src, 255));
        }
    }
    (out, (ox, oy, x1, y1))
}

/// Pixels whose colour differs (the window has no alpha), inside and outside `rect`.
fn differing(shot: &[u8], want: &[u8], rect: (u32, u32, u32, u32)) -> (usize, usize) {
    let (mut inside, mut outside) = (0, 0);
    for (i, (g, w)) in shot.chunks_exact(4).zip(want.chunks_exact(4)).enumerate() {
        if g[..3] != w[..3] {
            let (x, y) = (i as u32 % W, i as u32 / W);
            if x >= rect.0 && x < rect.2 && y >= rect.1 && y < rect.3 {
                inside += 1;
            } else {
                outside += 1;
            }
        }
    }
    (inside, outside)
}

/// Every overlay text the launcher logged so far, oldest first.
fn texts(lines: &mut Lines) -> Vec<Vec<String>> {
    lines.count("");
    lines
        .seen
        .iter()
        .filter(|l| l.contains("overlay text"))
        .map(|l| {
            let at = l.find("text=[").expect("a text= field") + "text=".len();
            // Printable ASCII only, so Rust's debug form of the list is JSON.
            serde_json::from_str(&l[at..]).unwrap_or_else(|e| panic!("{l}: {e}"))
        })
        .collect()
}

/// Takes screenshots until `ok` accepts one, for at most `timeout`; the verdict on the last one
/// otherwise. (The server says nothing when a frame of another client is drawn: the window's
/// pixels are the event. Every 100 ms: each look copies the whole window.)
fn until(
    conn: &x11rb::rust_connection::RustConnection,
    xid: u32,
    timeout: Duration,
    mut ok: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let mut verdict = Err("no screenshot taken".to_owned());
    poll_until(timeout, Duration::from_millis(100), || {
        let (w, h, px) = screenshot(conn, xid);
        verdict = if (w, h) == (W, H) {
            ok(&px)
        } else {
            Err(format!("the window is {w}x{h}"))
        };
        verdict.is_ok()
    });
    verdict
}

#[test]
fn the_overlay_key_shows_the_run_drawn_as_the_top_layer_and_hides_it_again() {
    let x = Xvfb::start(800, 600);
    let conn = x.connect();
    let dir = scratch("overlay-window");
    let scene = dir.join("scene.toml");
    std::fs::write(&scene, STILL).expect("write scene");
    let mut cmd = triptych(&["run", "--window", "--frames", "1000000"]);
    cmd.args(["--size", &format!("{W}x{H}")])
        .arg("--scene")
        .arg(&scene)
        .arg("--out")
        .arg(dir.join("f.png"));
    let (mut child, mut lines) = x.spawn(cmd);
    let xid = window_id(&lines.wait_for("window open", Duration::from_secs(30)));
    lines.wait_for("GPU process started", Duration::from_secs(60));
    let plain = reference(&scene);
    let everywhere = (0, 0, 0, 0);
    let is_plain = |px: &[u8]| match differing(px, &plain, everywhere) {
        (0, 0) => Ok(()),
        (_, n) => Err(format!("{n} pixels differ from the scene's reference")),
    };
    until(&conn, xid, Duration::from_secs(30), is_plain).expect("the scene before the overlay");
    assert_eq!(texts(&mut lines).len(), 0, "no overlay text before the key");

    press(&conn, xid, u32::from(b'o'));
    lines.wait_for("overlay shown", Duration::from_secs(10));
    lines.wait_for("overlay text", Duration::from_secs(10));
    let mut shown = None;
    let verdict = until(&conn, xid, Duration::from_secs(30), |px| {
        // The text changes at most twice a second: the frame on screen is one of the latest.
        let all = texts(&mut lines);
        let mut why = Vec::new();
        for t in all.iter().rev().take(4) {
            let (want, rect) = with_overlay(&plain, t);
            match differing(px, &want, rect) {
                (0, 0) => {
                    shown = Some((t.clone(), want, rect));
                    return Ok(());
                }
                (i, o) => why.push(format!(
                    "{t:?}: {i} pixels differ inside the overlay {rect:?}, {o} outside"
                )),
            }
        }
        Err(why.join("\n"))
    });
    if let Err(why) = verdict {
        panic!(
            "the window never showed a predicted overlay:\n{why}\nthe launcher said:\n{}",
            lines.seen.join("\n")
        );
    }
    let (text, want, rect) = shown.expect("a match");
    // The overlay is there (the prediction is not the plain scene) and says what it should.
    let (inside, outside) = differing(&want, &plain, rect);
    assert!(inside > 500 && outside == 0, "{inside} pixels of overlay");
    assert!(rect.2 - rect.0 > 100 && rect.3 - rect.1 > 60, "{rect:?}");
    for (line, start) in text.iter().zip([
        "fps ",
        "present p50 ",
        "buffers ",
        "fence ",
        "fds ",
        "restarts 0",
        "sandbox seccomp",
    ]) {
        assert!(
            line.starts_with(start),
            "{line:?} is not {start:?}...: {text:?}"
        );
    }
    assert_eq!(text.len(), 7, "{text:?}");

    press(&conn, xid, u32::from(b'o'));
    lines.wait_for("overlay hidden", Duration::from_secs(10));
    until(&conn, xid, Duration::from_secs(30), is_plain).expect("the scene after hiding it");
    let sent = texts(&mut lines).len();
    // Hidden, it is not written anew. An absence takes a span of time to see, so here a fixed
    // span is the point, not a stand-in for an event: more than two of the 500 ms periods at
    // which a shown overlay's text is written anew (`EVERY`, launcher/src/session/overlay.rs).
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        texts(&mut lines).len(),
        sent,
        "overlay text sent while hidden"
    );

    interrupt(&mut child, &lines);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same on a Wayland compositor (weston's headless backend): its output shows the window
/// with the predicted overlay, somewhere, every pixel of it, and then without it. The key
/// reaches the window through its test input (weston's headless seat takes no input).
#[test]
fn the_overlay_is_shown_and_hidden_on_wayland() {
    let weston = Weston::start(800, 600);
    let dir = scratch("overlay-wayland");
    let scene = dir.join("scene.toml");
    std::fs::write(&scene, STILL).expect("write scene");
    let mut input = TestInput::new(&dir);
    let mut cmd = input.triptych(&["run", "--window", "--frames", "1000000"]);
    cmd.args(["--size", &format!("{W}x{H}")])
        .arg("--scene")
        .arg(&scene)
        .arg("--out")
        .arg(dir.join("f.png"))
        .env_remove("DISPLAY")
        .env("XDG_RUNTIME_DIR", &weston.runtime_dir)
        .env("WAYLAND_DISPLAY", &weston.socket)
        .env("TRIPTYCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting triptych");
    let mut lines = Lines::new(child.stderr.take().expect("stderr"));
    lines.wait_for("window open", Duration::from_secs(30));
    lines.wait_for("GPU process started", Duration::from_secs(60));
    let plain = reference(&scene);
    // Screenshots until `want` is somewhere on the output, for at most 30 s. Weston says
    // nothing when it has drawn a frame, so its output is the event; each look runs
    // weston-screenshooter, hence not more often than every 200 ms.
    let on_output = |want: &[u8]| {
        poll_until(Duration::from_secs(30), Duration::from_millis(200), || {
            let (sw, sh, shot) = weston.screenshot(&dir);
            find(&shot, sw, sh, want, W, H).is_some()
        })
    };
    assert!(on_output(&plain), "the scene never reached the output");
    input.send("key o");
    lines.wait_for("overlay shown", Duration::from_secs(10));
    lines.wait_for("overlay text", Duration::from_secs(10));
    let mut found = None;
    poll_until(Duration::from_secs(30), Duration::from_millis(200), || {
        let (sw, sh, shot) = weston.screenshot(&dir);
        let all = texts(&mut lines);
        found = all
            .iter()
            .rev()
            .take(4)
            .find(|t| {
                let (want, _) = with_overlay(&plain, t);
                find(&shot, sw, sh, &want, W, H).is_some()
            })
            .cloned();
        found.is_some()
    });
    let text = found.unwrap_or_else(|| {
        panic!(
            "the output never showed a predicted overlay; the launcher said:\n{}",
            lines.seen.join("\n")
        )
    });
    assert_eq!(text.len(), 7, "{text:?}");
    input.send("key o");
    lines.wait_for("overlay hidden", Duration::from_secs(10));
    assert!(
        on_output(&plain),
        "the overlay stayed on the output after hiding it"
    );
    interrupt(&mut child, &lines);
    let _ = std::fs::remove_dir_all(&dir);
}
