//! `triptych run` in a real window on a real X server (Xvfb): the window has the frame's size,
//! what the server shows is the predicted composite, the present path is MIT-SHM from the
//! renderer's output memfd, and the keys reach the launcher as a keyboard's would.

use std::process::Stdio;
use std::time::Duration;

use triptych_tests::x11::{drag, press, screenshot, window_id, Lines, Xvfb};
use triptych_tests::{scratch, summary, triptych, wait_until, wait_within};

const W: u32 = 320;
const H: u32 = 240;
const LAYERS: u32 = 3;

/// Differences between a screenshot and the scene's composite of `frame`, at every pixel.
fn mismatches(frame: u64, pixels: &[u8]) -> Vec<String> {
    let mut bad = Vec::new();
    for y in 0..H {
        for x in 0..W {
            let i = ((y * W + x) * 4) as usize;
            let want = triptych_scene::expected_pixel(frame, LAYERS, W, H, x, y);
            if pixels[i..i + 3] != want[..3] {
                bad.push(format!(
                    "({x}, {y}): {:?} instead of {want:?}",
                    &pixels[i..i + 4]
                ));
            }
        }
    }
    bad
}

struct Run {
    child: std::process::Child,
    lines: Lines,
    json: std::path::PathBuf,
    xid: u32,
}

fn start(x: &Xvfb, tag: &str, frames: u64) -> Run {
    let dir = scratch(tag);
    let json = dir.join("s.json");
    let mut cmd = triptych(&["run", "--window", "--size", "320x240", "--layers", "3"]);
    cmd.arg("--frames")
        .arg(frames.to_string())
        .arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(&json)
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env(
            "TRIPTYCH_LOG",
            std::env::var("TRIPTYCH_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting triptych");
    let mut lines = Lines::new(child.stderr.take().expect("stderr"));
    let open = lines.wait_for("window open", Duration::from_secs(30));
    Run {
        child,
        lines,
        json,
        xid: window_id(&open),
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

#[test]
fn the_window_shows_the_composite_through_mit_shm() {
    let x = Xvfb::start(640, 480);
    let conn = x.connect();
    let mut r = start(&x, "window-composite", 30);
    r.lines
        .wait_for("the last frame is on screen", Duration::from_secs(60));
    // The last put may still be in the server's queue: a round trip orders it before ours.
    let (w, h, px) = screenshot(&conn, r.xid);
    assert_eq!((w, h), (W, H), "the window has the frame's size");
    let bad = mismatches(29, &px);
    assert!(
        bad.is_empty(),
        "{} of {} pixels differ from frame 29's composite, first: {:?}",
        bad.len(),
        W * H,
        &bad[..bad.len().min(5)]
    );
    let s = stop(r);
    assert!(
        s["paths"]["present"]
            .as_str()
            .is_some_and(|p| p.starts_with("X11 MIT-SHM")),
        "the summary names the zero-copy path: {}",
        s["paths"]["present"]
    );
    assert_eq!(s["frames"]["last"], 29);
}

#[test]
fn the_kill_gpu_key_keeps_the_last_frame_and_new_frames_follow() {
    let x = Xvfb::start(640, 480);
    let conn = x.connect();
    let mut r = start(&x, "window-kill", 100_000);
    r.lines
        .wait_for("GPU process started", Duration::from_secs(60));
    // Pause, and let the frames already asked for arrive: a step asks for one more after them,
    // and once it is on screen no other is on its way.
    press(&conn, r.xid, 0x20);
    let paused = r.lines.wait_for("paused=true", Duration::from_secs(20));
    press(&conn, r.xid, u32::from(b'.'));
    r.lines.wait_for_after(
        "the stepped frame is on screen",
        &paused,
        Duration::from_secs(20),
    );
    let (_, _, before) = screenshot(&conn, r.xid);
    press(&conn, r.xid, u32::from(b'g'));
    r.lines.wait_for(
        "kill key: SIGKILL to the GPU process",
        Duration::from_secs(20),
    );
    r.lines.wait_for(
        "child crashed; restarting it role=gpu",
        Duration::from_secs(20),
    );
    r.lines
        .wait_for("switching to a new GPU process", Duration::from_secs(60));
    let (_, _, during) = screenshot(&conn, r.xid);
    assert!(
        before == during,
        "the last frame stays on screen while the GPU process is replaced"
    );
    // Resume: the new GPU process's frames reach the window.
    press(&conn, r.xid, 0x20);
    r.lines.wait_for(
        "recovered: first frame from the replacement role=gpu",
        Duration::from_secs(60),
    );
    // That frame was handed to the server, which may not have drawn it yet: wait until the
    // window shows something else than before.
    let changed = wait_until(Duration::from_secs(30), || {
        screenshot(&conn, r.xid).2 != before
    });
    assert!(changed, "new frames follow the restart");
    let s = stop(r);
    let crashes = s["recovery"]["crashes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        crashes.iter().any(|c| c["role"] == "gpu"),
        "the kill is a crash record: {crashes:?}"
    );
    let recovered = crashes
        .iter()
        .any(|c| c["role"] == "gpu" && c["recovery_us"].as_f64().is_some());
    assert!(
        recovered,
        "the GPU process's replacement presented: {crashes:?}"
    );
}

#[test]
fn a_resize_brings_frames_of_the_new_size_and_never_one_of_the_old() {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt as _};
    let x = Xvfb::start(640, 480);
    let conn = x.connect();
    let mut r = start(&x, "window-resize", 100_000);
    r.lines
        .wait_for("GPU process started", Duration::from_secs(60));
    press(&conn, r.xid, 0x20);
    r.lines.wait_for("paused=true", Duration::from_secs(20));
    // No window manager: the server applies the size at once, as a user's drag would end.
    conn.configure_window(r.xid, &ConfigureWindowAux::new().width(400).height(300))
        .expect("resize");
    conn.flush().expect("flush");
    r.lines.wait_for("window resized", Duration::from_secs(20));
    // One frame, asked for after the resize.
    press(&conn, r.xid, u32::from(b'.'));
    let line = r.lines.wait_for(
        "a frame of the new size is on screen",
        Duration::from_secs(30),
    );
    assert!(
        line.contains("width=400") && line.contains("height=300"),
        "{line}"
    );
    let frame: u64 = line
        .split("frame=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .expect("a frame number");
    let (w, h, px) = screenshot(&conn, r.xid);
    assert_eq!((w, h), (400, 300));
    let mut bad = 0;
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 4) as usize;
            let want = triptych_scene::expected_pixel(frame, LAYERS, 400, 300, x, y);
            if px[i..i + 3] != want[..3] {
                bad += 1;
            }
        }
    }
    assert_eq!(
        bad, 0,
        "{bad} pixels of the 400x300 window differ from frame {frame} at 400x300"
    );
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
        "a resize is no crash"
    );
}

/// The number after `key=` in `line`.
fn field<T: std::str::FromStr>(line: &str, key: &str) -> T {
    line.split(&format!("{key}="))
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

#[test]
fn dragging_a_layer_moves_it_in_the_frames_that_follow() {
    let x = Xvfb::start(640, 480);
    let conn = x.connect();
    let mut r = start(&x, "window-drag", 100_000);
    r.lines
        .wait_for("GPU process started", Duration::from_secs(60));
    press(&conn, r.xid, 0x20);
    let paused = r.lines.wait_for("paused=true", Duration::from_secs(20));
    // Find a point covered by a panel in the frame on screen: the launcher picks the topmost.
    // The step is asked for after every frame asked for before the pause, so once it is on
    // screen it stays there.
    let frame_on_screen = {
        press(&conn, r.xid, u32::from(b'.'));
        let l = r.lines.wait_for_after(
            "the stepped frame is on screen",
            &paused,
            Duration::from_secs(20),
        );
        field::<u64>(&l, "frame")
    };
    let moves = triptych_scene::Moves::default();
    let (px, py) = (0..H as i32)
        .step_by(4)
        .flat_map(|y| (0..W as i32).step_by(4).map(move |x| (x, y)))
        .find(|p| triptych_scene::layer_at(frame_on_screen, LAYERS, W, H, &moves, *p).is_some())
        .expect("a panel somewhere on screen");
    drag(
        &conn,
        (px as i16, py as i16),
        (px as i16 + 40, py as i16 + 24),
    );
    let picked = r
        .lines
        .wait_for("dragging a layer", Duration::from_secs(20));
    let layer: u32 = field(&picked, "layer");
    let put = r
        .lines
        .wait_for("put a layer down", Duration::from_secs(20));
    assert_eq!(
        (field::<i32>(&put, "dx"), field::<i32>(&put, "dy")),
        (40, 24),
        "{put}"
    );
    press(&conn, r.xid, u32::from(b'.'));
    let shown = r.lines.wait_for_after(
        "the stepped frame is on screen",
        &put,
        Duration::from_secs(20),
    );
    let frame: u64 = field(&shown, "frame");
    let mut moved = triptych_scene::Moves::default();
    moved.add(layer, 40, 24);
    let (w, h, shot) = screenshot(&conn, r.xid);
    let mut bad = 0;
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 4) as usize;
            let want = triptych_scene::expected_pixel_moved(frame, LAYERS, W, H, x, y, &moved);
            if shot[i..i + 3] != want[..3] {
                bad += 1;
            }
        }
    }
    assert_eq!(
        bad, 0,
        "{bad} pixels differ from frame {frame} with layer {layer} moved by (40, 24)"
    );
    let _ = stop(r);
}

#[test]
fn many_resizes_while_frames_flow_never_show_a_frame_of_another_size() {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt as _};
    let x = Xvfb::start(640, 480);
    let conn = x.connect();
    let mut r = start(&x, "window-resizes", 100_000);
    let mut after = r
        .lines
        .wait_for("GPU process started", Duration::from_secs(60));
    // Bursts of sizes, as an interactive drag reports them: each burst settles on its last,
    // which the launcher applies while frames of the one before are still in flight.
    let targets = [
        (400, 300),
        (256, 192),
        (480, 360),
        (300, 220),
        (352, 288),
        (200, 150),
        (500, 400),
        (288, 216),
    ];
    for (i, &(w, h)) in targets.iter().enumerate() {
        for k in 1..=3u32 {
            let (iw, ih) = (w + 8 * k + i as u32, h + 4 * k);
            conn.configure_window(r.xid, &ConfigureWindowAux::new().width(iw).height(ih))
                .expect("resize");
        }
        conn.configure_window(r.xid, &ConfigureWindowAux::new().width(w).height(h))
            .expect("resize");
        conn.flush().expect("flush");
        after = r.lines.wait_for_after(
            &format!("window resized width={w} height={h}"),
            &after,
            Duration::from_secs(30),
        );
    }
    let (fw, fh) = targets[targets.len() - 1];
    // The last size: pause, step one frame asked for after it, and read it back.
    press(&conn, r.xid, 0x20);
    let paused = r
        .lines
        .wait_for_after("paused=true", &after, Duration::from_secs(20));
    press(&conn, r.xid, u32::from(b'.'));
    let stepped = r.lines.wait_for_after(
        "the stepped frame is on screen",
        &paused,
        Duration::from_secs(30),
    );
    let frame: u64 = field(&stepped, "frame");
    let (w, h, px) = screenshot(&conn, r.xid);
    assert_eq!((w, h), (fw, fh));
    let mut bad = 0;
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 4) as usize;
            let want = triptych_scene::expected_pixel(frame, LAYERS, fw, fh, x, y);
            if px[i..i + 3] != want[..3] {
                bad += 1;
            }
        }
    }
    assert_eq!(
        bad, 0,
        "{bad} pixels of the {fw}x{fh} window differ from frame {frame} at {fw}x{fh}"
    );
    r.lines.count("");
    let seen = r.lines.seen.clone();
    let s = stop(r);

    // Every generation the launcher started, with its size and the first frame asked for at it.
    let resized: Vec<(u32, (u32, u32), u64)> = seen
        .iter()
        .filter(|l| l.contains("window resized"))
        .map(|l| {
            (
                field(l, "generation"),
                (field(l, "width"), field(l, "height")),
                field(l, "first_frame"),
            )
        })
        .collect();
    assert!(resized.len() >= targets.len(), "{resized:?}");
    assert_eq!(s["frames"]["resizes"], resized.len(), "{s}");
    // Every size that reached the screen: the size of its frame's generation, in the order the
    // generations were made, never an older one again. (A frame asked for before a resize may
    // well be of the new generation: the GPU process rendered it after it heard of the resize.
    // One of the old generation is refused unless asked for before it, and then never shown.)
    let mut last_generation = 0;
    let shown: Vec<&String> = seen
        .iter()
        .filter(|l| l.contains("a frame of the new size is on screen"))
        .collect();
    assert!(!shown.is_empty());
    for l in &shown {
        let g: u32 = field(l, "generation");
        let size = (field::<u32>(l, "width"), field::<u32>(l, "height"));
        let (_, want, _) = resized
            .iter()
            .find(|(rg, ..)| *rg == g)
            .unwrap_or_else(|| panic!("{l}: a generation never started"));
        assert_eq!(
            size, *want,
            "{l}: a frame of another size than its generation's"
        );
        assert!(
            g > last_generation,
            "{l}: after generation {last_generation}"
        );
        last_generation = g;
    }
    assert_eq!(
        last_generation,
        resized.last().map_or(0, |r| r.0),
        "the last generation reached the screen: {shown:?}"
    );
    assert_eq!(
        (
            s["frames"]["width"].as_u64(),
            s["frames"]["height"].as_u64()
        ),
        (Some(u64::from(fw)), Some(u64::from(fh)))
    );
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
}
