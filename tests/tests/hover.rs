//! Hovering and dragging layers of a scene file in a window on a real X server (Xvfb), with
//! real pointer input (XTEST): the layer picked is the scene file's topmost by z under the
//! pointer, its outline appears exactly where the scene's reference puts it, and a drag moves
//! that layer.

use std::process::Stdio;
use std::time::Duration;

use triptych_scene::file::{reference_frame_shown, Scene};
use triptych_scene::Moves;
use triptych_tests::x11::{
    drag, hover, interrupt, press, screenshot, type_key, window_id, Lines, Xvfb,
};
use triptych_tests::{poll_until, scratch, triptych};

const W: u32 = 320;
const H: u32 = 240;

/// A still scene: a backdrop layer, a translucent panel on top (z 5), and a layer under it
/// (z 2) that comes later in the file, overlapping the panel.
const SCENE: &str = r##"backdrop = "#101018"

[[layers]]
name = "back"
kind = "checker"
cell = 16
colors = ["#203040", "#304050"]
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "panel"
kind = "solid"
color = "#c04040"
rect = { x = 40, y = 40, w = 120, h = 80 }
opacity = 0.8
z = 5

[[layers]]
name = "under"
kind = "checker"
cell = 8
colors = ["#40c040", "#208020"]
rect = { x = 100, y = 80, w = 140, h = 100 }
z = 2
"##;

/// The number after `key=` in `line`.
fn field<T: std::str::FromStr>(line: &str, key: &str) -> T {
    line.split(&format!("{key}="))
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

/// The pixels (RGB) at which two RGBA frames differ.
fn differences(a: &[u8], b: &[u8]) -> Vec<(u32, u32)> {
    a.chunks_exact(4)
        .zip(b.chunks_exact(4))
        .enumerate()
        .filter(|(_, (p, q))| p[..3] != q[..3])
        .map(|(i, _)| (i as u32 % W, i as u32 / W))
        .collect()
}

/// Asserts the window's pixels are `want`'s, naming `what` otherwise.
fn assert_shows(shot: &[u8], want: &[u8], what: &str) {
    let bad = differences(shot, want);
    assert!(
        bad.is_empty(),
        "{} pixels differ from {what}: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
}

/// Steps one frame (the pointer staying where it is) and returns its number once it is on
/// screen, after the line `after`.
fn step(
    conn: &x11rb::rust_connection::RustConnection,
    xid: u32,
    lines: &mut Lines,
    after: &str,
) -> u64 {
    type_key(conn, xid, u32::from(b'.'));
    let l = lines.wait_for_after(
        "the stepped frame is on screen",
        after,
        Duration::from_secs(20),
    );
    field(&l, "frame")
}

#[test]
fn hovering_outlines_the_scene_files_topmost_layer_and_dragging_moves_it() {
    let dir = scratch("hover-scene");
    let path = dir.join("scene.toml");
    std::fs::write(&path, SCENE).expect("writing the scene");
    let scene = Scene::parse(SCENE, &path).expect("the scene parses");
    let none = Moves::default();
    // Where the two overlap, the file's z decides, not its order (nor the built-in layout).
    let point = (120i32, 100i32);
    assert_eq!(scene.layer_at(0, W, H, &none, point), Some(1));
    assert_eq!(scene.layer_at(0, W, H, &none, (200, 150)), Some(2));

    let x = Xvfb::start(640, 480);
    let conn = x.connect();
    let mut child = triptych(&["run", "--window", "--size", "320x240", "--frames", "100000"])
        .arg("--scene")
        .arg(&path)
        .arg("--out")
        .arg(dir.join("f.png"))
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("TRIPTYCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting triptych");
    let mut lines = Lines::new(child.stderr.take().expect("stderr"));
    let xid = window_id(&lines.wait_for("window open", Duration::from_secs(30)));
    lines.wait_for("GPU process started", Duration::from_secs(60));
    press(&conn, xid, 0x20);
    let paused = lines.wait_for("paused=true", Duration::from_secs(20));

    // Nothing hovered: the plain frame. The step is asked for after every frame asked for
    // before the pause, so once it is on screen no other is on its way.
    let frame = step(&conn, xid, &mut lines, &paused);
    let plain = reference_frame_shown(&scene, frame, (W, H), &[None, None, None], &none, None)
        .expect("the scene is exactly predictable");
    let (_, _, before) = screenshot(&conn, xid);
    assert_shows(&before, &plain, "the plain frame");

    // Hover the overlap: the panel is outlined, and nothing else changes.
    hover(&conn, (point.0 as i16, point.1 as i16));
    let hovered = lines.wait_for("hovering a layer", Duration::from_secs(20));
    assert_eq!(field::<u32>(&hovered, "layer"), 1, "{hovered}");
    let frame = step(&conn, xid, &mut lines, &hovered);
    let lit = reference_frame_shown(&scene, frame, (W, H), &[None, None, None], &none, Some(1))
        .expect("predictable");
    let (_, _, after) = screenshot(&conn, xid);
    assert_shows(&after, &lit, "the hovered frame");
    let changed = differences(&before, &after);
    let predicted = differences(&plain, &lit);
    assert!(!predicted.is_empty(), "the outline shows");
    assert_eq!(
        changed, predicted,
        "the pixels that changed are the outline's"
    );
    // The outline is the panel's edge: 120x80 less its inside, 114x74.
    assert_eq!(predicted.len(), 120 * 80 - 114 * 74);
    assert!(predicted
        .iter()
        .all(|&(x, y)| (40..160).contains(&x) && (40..120).contains(&y)));

    // Drag it by (30, 20): that layer moves, and stays outlined under the pointer.
    drag(
        &conn,
        (point.0 as i16, point.1 as i16),
        (point.0 as i16 + 30, point.1 as i16 + 20),
    );
    let picked = lines.wait_for("dragging a layer", Duration::from_secs(20));
    assert_eq!(field::<u32>(&picked, "layer"), 1, "{picked}");
    let put = lines.wait_for("put a layer down", Duration::from_secs(20));
    assert_eq!(
        (field::<i32>(&put, "dx"), field::<i32>(&put, "dy")),
        (30, 20),
        "{put}"
    );
    let frame = step(&conn, xid, &mut lines, &put);
    let mut moved = Moves::default();
    moved.add(1, 30, 20);
    let want = reference_frame_shown(&scene, frame, (W, H), &[None, None, None], &moved, Some(1))
        .expect("predictable");
    let (_, _, shot) = screenshot(&conn, xid);
    assert_shows(&shot, &want, "the frame with the panel moved");

    interrupt(&mut child, &lines);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same on a Wayland compositor (weston's headless backend), whose seat takes no input
/// from outside: the pointer reaches the window through its test input, and weston's output
/// shows the outlined panel, then the panel moved, every pixel of the window as predicted.
#[test]
fn hovering_and_dragging_on_wayland() {
    use triptych_tests::x11::{find, TestInput, Weston};
    let dir = scratch("hover-wayland");
    let path = dir.join("scene.toml");
    std::fs::write(&path, SCENE).expect("writing the scene");
    let scene = Scene::parse(SCENE, &path).expect("the scene parses");
    let weston = Weston::start(640, 480);
    let mut input = TestInput::new(&dir);
    let mut child = input
        .triptych(&["run", "--window", "--size", "320x240", "--frames", "100000"])
        .arg("--scene")
        .arg(&path)
        .arg("--out")
        .arg(dir.join("f.png"))
        .env_remove("DISPLAY")
        .env("XDG_RUNTIME_DIR", &weston.runtime_dir)
        .env("WAYLAND_DISPLAY", &weston.socket)
        .env("TRIPTYCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting triptych");
    let mut lines = Lines::new(child.stderr.take().expect("stderr"));
    lines.wait_for("window open", Duration::from_secs(30));
    lines.wait_for("GPU process started", Duration::from_secs(60));
    // A still scene: the frame on screen is the same at every frame number. Weston says
    // nothing when it has drawn a frame, so its output is looked at until it shows `want`; each
    // look runs weston-screenshooter, hence not more often than every 200 ms.
    let shows = |moves: &Moves, hovered: Option<u32>| {
        let want = reference_frame_shown(&scene, 0, (W, H), &[None, None, None], moves, hovered)
            .expect("predictable");
        poll_until(Duration::from_secs(30), Duration::from_millis(200), || {
            let (sw, sh, shot) = weston.screenshot(&dir);
            find(&shot, sw, sh, &want, W, H).is_some()
        })
    };
    let none = Moves::default();
    assert!(
        shows(&none, None),
        "the plain frame never reached the output"
    );
    input.send("pointer 120 100 up");
    let hovered = lines.wait_for("hovering a layer", Duration::from_secs(20));
    assert_eq!(field::<u32>(&hovered, "layer"), 1, "{hovered}");
    assert!(
        shows(&none, Some(1)),
        "the outlined panel never reached the output"
    );
    input.send("pointer 120 100 down");
    input.send("pointer 150 120 down");
    input.send("pointer 150 120 up");
    let put = lines.wait_for("put a layer down", Duration::from_secs(20));
    assert_eq!(
        (field::<i32>(&put, "dx"), field::<i32>(&put, "dy")),
        (30, 20),
        "{put}"
    );
    let mut moved = Moves::default();
    moved.add(1, 30, 20);
    assert!(
        shows(&moved, Some(1)),
        "the moved panel never reached the output"
    );
    interrupt(&mut child, &lines);
    let _ = std::fs::remove_dir_all(&dir);
}
