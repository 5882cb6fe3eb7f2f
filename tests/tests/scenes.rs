//! Scene files through the real processes: `triptych run --scene FILE`.
//!
//! - A scene of the exactly predictable kinds (solid, checker, nearest image, with translation,
//!   fade and scroll) ends in a PNG equal, pixel for pixel, to the scene crate's CPU reference
//!   for the last frame, also when the GPU process is killed mid-run and a new one, handed the
//!   scene and its image fds again, carries on.
//! - Every kind of bad scene file ends the run before any child starts, exit status 1, with the
//!   parser's located error (`file:line:col: field: message`) on stderr.
//! - Gradients, text, linear sampling and rotation are drawn (not predicted): the run ends and
//!   the frame shows them.

use std::path::{Path, PathBuf};

use triptych_scene::file::{decode_png_bytes, reference_frame, ImageLimits, Scene};
use triptych_tests::{output, read_png, scratch, show, summary, triptych};

/// A PNG of `w` x `h` straight-alpha RGBA texels from `texel`.
fn png_bytes(w: u32, h: u32, texel: impl Fn(u32, u32) -> [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().expect("png header");
        let mut data = Vec::with_capacity(w as usize * h as usize * 4);
        for y in 0..h {
            for x in 0..w {
                data.extend(texel(x, y));
            }
        }
        writer.write_image_data(&data).expect("png data");
    }
    out
}

/// An image with every channel varying, and translucent texels (premultiplied on decoding).
fn test_png() -> Vec<u8> {
    png_bytes(13, 7, |x, y| {
        [
            (x * 19) as u8,
            (y * 36) as u8,
            200,
            if (x + y) % 4 == 0 { 100 } else { 255 },
        ]
    })
}

const EXACT_SCENE: &str = r##"
backdrop = "#182030"

[[layers]]
name = "panel"
kind = "solid"
color = "#40c08080"
rect = { x = "5%", y = 6, w = "50%", h = 40 }
animation.translate = { dx = 30, dy = "10%", period = 1.0 }

[[layers]]
name = "board"
kind = "checker"
cell = 7
colors = ["#ff000090", "#20ff40"]
rect = { x = 40, y = 30, w = 61, h = 43 }
opacity = 0.75
animation.scroll = { dx = 17, dy = -9, period = 0.75 }
animation.fade = { to = 0.3, period = 0.5 }

[[layers]]
name = "photo"
kind = "image"
path = "images/photo.png"
rect = { x = -5, y = 50, w = 47, h = 29 }
z = -1
animation.scroll = { dx = 11, dy = 5, period = 0.4 }

[[layers]]
name = "caption"
kind = "text"
text = "Two lines,\ncentred and wrapped to fit"
size = 13
color = "#ffe0a0"
align = "center"
rect = { x = 8, y = 44, w = 70, h = 44 }
opacity = 0.9
animation.translate = { dx = 9, dy = 0, period = 0.5 }
"##;

/// Writes `scene` as `scene.toml` in `dir`, with `images/photo.png` beside it.
fn write_scene(dir: &Path, scene: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("images")).expect("images dir");
    std::fs::write(dir.join("images/photo.png"), test_png()).expect("write png");
    let path = dir.join("scene.toml");
    std::fs::write(&path, scene).expect("write scene");
    path
}

/// Runs `--scene` for `frames` frames of `w` x `h` with `extra` arguments; returns the
/// summary and the PNG's pixels.
fn run_scene(
    dir: &Path,
    scene: &Path,
    frames: u64,
    (w, h): (u32, u32),
    extra: &[&str],
) -> (serde_json::Value, Vec<u8>) {
    let out = dir.join("frame.png");
    let json = dir.join("summary.json");
    let mut cmd = triptych(&["run", "--headless"]);
    cmd.arg("--scene")
        .arg(scene)
        .args([
            "--frames",
            &frames.to_string(),
            "--size",
            &format!("{w}x{h}"),
        ])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .arg("--summary-json")
        .arg(&json);
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let (pw, ph, pixels) = read_png(&out);
    assert_eq!((pw, ph), (w, h));
    (summary(&json), pixels)
}

/// The first pixels that differ, for failure messages.
fn differences(got: &[u8], want: &[u8], w: u32) -> Vec<String> {
    got.chunks_exact(4)
        .zip(want.chunks_exact(4))
        .enumerate()
        .filter(|(_, (g, w))| g != w)
        .take(8)
        .map(|(i, (g, wa))| {
            format!(
                "({}, {}): got {g:?}, want {wa:?}",
                i as u32 % w,
                i as u32 / w
            )
        })
        .collect()
}

fn reference(scene_path: &Path, frame: u64, w: u32, h: u32) -> Vec<u8> {
    let text = std::fs::read_to_string(scene_path).expect("scene text");
    let scene = Scene::parse(&text, scene_path).expect("the test scene parses");
    let image = decode_png_bytes(&test_png(), &ImageLimits::default()).expect("decode");
    let images: Vec<_> = scene
        .layers
        .iter()
        .map(|l| (l.name == "photo").then_some(&image))
        .collect();
    reference_frame(&scene, frame, w, h, &images).expect("the test scene is predictable")
}

#[test]
fn exact_kinds_equal_the_cpu_reference() {
    let dir = scratch("scene-exact");
    let scene = write_scene(&dir, EXACT_SCENE);
    let (w, h) = (123, 91);
    // Frame 44: every animation is mid-way (none is at phase 0).
    let (s, got) = run_scene(&dir, &scene, 45, (w, h), &[]);
    let want = reference(&scene, 44, w, h);
    assert!(
        got == want,
        "the last frame differs from the reference: {:?}",
        differences(&got, &want, w)
    );
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restarted_gpu_process_gets_the_scene_and_its_images_again() {
    let dir = scratch("scene-restart");
    let scene = write_scene(&dir, EXACT_SCENE);
    let (w, h) = (101, 77);
    let (s, got) = run_scene(
        &dir,
        &scene,
        50,
        (w, h),
        &["--fault", "gpu-after-export:kill@20", "--verify"],
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "{s}");
    assert_eq!(crashes[0]["role"], "gpu", "{s}");
    let want = reference(&scene, 49, w, h);
    assert!(
        got == want,
        "the last frame after the restart differs: {:?}",
        differences(&got, &want, w)
    );
    assert_eq!(s["verified"]["mismatches"], 0, "{s}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_built_in_scene_file_runs() {
    let dir = scratch("scene-default");
    let (w, h) = (320, 240);
    let (s, got) = run_scene(&dir, Path::new("default"), 30, (w, h), &[]);
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    // The title is white text over the gradient.
    assert!(
        got.chunks_exact(4).any(|p| p == [255, 255, 255, 255]),
        "no white text texel"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gradients_text_linear_images_and_rotation_are_drawn() {
    let dir = scratch("scene-drawn");
    let scene = write_scene(
        &dir,
        r##"
backdrop = "#000000"

[[layers]]
name = "sky"
kind = "gradient"
from = "#0000ff"
to = "#ff0000"
rect = { x = 0, y = 0, w = "100%", h = "50%" }

[[layers]]
name = "label"
kind = "text"
text = "Hello, scene"
size = 10
color = "#00ff00"
rect = { x = 2, y = "55%", w = 140, h = 14 }

[[layers]]
name = "photo"
kind = "image"
path = "images/photo.png"
sampling = "linear"
rect = { x = 100, y = 70, w = 40, h = 24 }
animation.rotate = { degrees = 90, period = 1.0 }
animation.scroll = { dx = 10, dy = 0, period = 1.0 }

[[layers]]
name = "spinner"
kind = "solid"
color = "#ffffff"
rect = { x = 20, y = 80, w = 20, h = 20 }
animation.rotate = { degrees = 360, period = 1.0 }

[[layers]]
name = "card"
kind = "solid"
color = "#ff00ff"
rect = { x = 60, y = 98, w = 14, h = 14 }
transform = { rotate = 45 }

[[layers]]
name = "badge"
kind = "solid"
color = "#00ffff"
rect = { x = 150, y = 108, w = 6, h = 6 }
transform = { scale = 2 }
"##,
    );
    let (w, h) = (160, 120);
    // The last frame is 37: the spinner has turned 222 degrees, the photo 55.5.
    let (s, got) = run_scene(&dir, &scene, 38, (w, h), &[]);
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    let at = |x: u32, y: u32| {
        let i = ((y * w + x) * 4) as usize;
        [got[i], got[i + 1], got[i + 2], got[i + 3]]
    };
    // The gradient runs from blue on the left to red on the right.
    let (left, right) = (at(0, 10), at(w - 1, 10));
    assert!(left[2] > 240 && left[0] < 15, "left {left:?}");
    assert!(right[0] > 240 && right[2] < 15, "right {right:?}");
    // Green text (anti-aliased: green scaled by coverage over the black backdrop) in its row
    // band, nothing green elsewhere.
    let green = |p: [u8; 4]| p[0] == 0 && p[2] == 0 && p[1] > 60 && p[3] == 255;
    let text_rows = 66..80;
    let texels: Vec<(u32, u32)> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| green(at(x, y)))
        .collect();
    assert!(texels.len() > 50, "{} green texels", texels.len());
    assert!(
        texels.iter().all(|(_, y)| text_rows.contains(y)),
        "green outside the text band"
    );
    // The spinner's centre is white; a turned square leaves its rectangle's corners empty.
    assert_eq!(at(30, 90), [255, 255, 255, 255]);
    assert_eq!(at(20, 80), [0, 0, 0, 255], "corner of a turned square");
    // The whole quad turns: the card's top corner, turned 45 degrees, reaches above its
    // rectangle (top row 98) and is drawn there; the rectangle's own corner is empty.
    let magenta = [255, 0, 255, 255];
    assert_eq!(at(67, 105), magenta, "the card's centre");
    assert_eq!(
        at(67, 96),
        magenta,
        "the card's corner, above its rectangle"
    );
    assert_eq!(at(60, 98), [0, 0, 0, 255], "the card's rectangle's corner");
    // The badge, scaled twice about its centre, covers 147..159 x 105..117.
    let cyan = [0, 255, 255, 255];
    assert_eq!(at(147, 105), cyan, "the badge's scaled corner");
    assert_eq!(at(158, 116), cyan, "the badge's other scaled corner");
    assert_eq!(at(146, 104), [0, 0, 0, 255], "outside the scaled badge");
    // The photo is drawn around its centre.
    assert_ne!(at(120, 82), [0, 0, 0, 255]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `triptych run --scene` on `text` (written as `bad.toml`); asserts exit 1 with `want`
/// in stderr, and that no child started.
fn refused(tag: &str, text: &str, want: &[&str]) {
    let dir = scratch(&format!("scene-bad-{tag}"));
    let path = write_scene(&dir, text);
    let bad = dir.join("bad.toml");
    std::fs::rename(&path, &bad).expect("rename");
    let mut cmd = triptych(&["run", "--headless", "--frames", "3"]);
    cmd.arg("--scene")
        .arg(&bad)
        .arg("--out")
        .arg(dir.join("f.png"));
    let o = output(cmd);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{tag}: {}", show(&o));
    for w in want {
        let w = w.replace("FILE", &bad.display().to_string());
        assert!(stderr.contains(&w), "{tag}: stderr lacks {w:?}:\n{stderr}");
    }
    assert!(o.stdout.is_empty(), "{tag}: no run, so no summary");
    assert!(
        !stderr.contains("spawn") && !stderr.contains("pid="),
        "{tag}: a child was started:\n{stderr}"
    );
    assert!(!dir.join("f.png").exists(), "{tag}: no frame was written");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_scene_files_end_the_run_with_their_located_error() {
    let layer = |body: &str| {
        format!("[[layers]]\nname = \"a\"\nrect = {{ x = 0, y = 0, w = 8, h = 8 }}\n{body}\n")
    };
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("syntax", "[[layers]\nname = 1".into(), vec!["FILE:1:10: unclosed array table"]),
        (
            "wrong-type",
            layer("kind = \"solid\"\ncolor = 5"),
            vec!["FILE:5:9: layers[0].color: invalid type"],
        ),
        (
            "unknown-field",
            layer("kind = \"solid\"\ncolour = \"#fff\""),
            vec!["FILE:5:1: layers[0].colour: unknown field", "hint: did you mean `color`?"],
        ),
        (
            "missing-field",
            "[[layers]]\nname = \"a\"\nkind = \"solid\"\ncolor = \"#fff\"\n".into(),
            vec!["FILE:1:1: layers[0].rect: missing field `rect`"],
        ),
        (
            "field-not-for-kind",
            layer("kind = \"solid\"\ncolor = \"#fff\"\ncell = 3"),
            vec!["FILE:6:8: layers[0].cell: `cell` does not apply to a solid layer"],
        ),
        (
            "unknown-kind",
            layer("kind = \"gradinet\""),
            vec!["FILE:4:8: layers[0].kind:", "did you mean \"gradient\"?"],
        ),
        (
            "unknown-value",
            layer("kind = \"gradient\"\nfrom = \"#000\"\nto = \"#fff\"\ndirection = \"diagonal\""),
            vec!["FILE:7:13: layers[0].direction: unknown value \"diagonal\""],
        ),
        (
            "out-of-range",
            layer("kind = \"solid\"\ncolor = \"#fff\"\nopacity = 1.7"),
            vec!["FILE:6:11: layers[0].opacity: 1.7 is out of range", "hint:"],
        ),
        (
            "zero-period",
            layer("kind = \"solid\"\ncolor = \"#fff\"\nanimation.fade = { to = 0.5, period = 0.0 }"),
            vec!["FILE:6:39: layers[0].animation.fade.period:"],
        ),
        (
            "bad-color",
            layer("kind = \"solid\"\ncolor = \"#ggg\""),
            vec!["FILE:5:9: layers[0].color: \"#ggg\" is not a colour"],
        ),
        (
            "bad-length",
            "[[layers]]\nname = \"a\"\nkind = \"solid\"\ncolor = \"#fff\"\nrect = { x = \"1e3\", y = 0, w = 8, h = 8 }\n".into(),
            vec!["FILE:5:14: layers[0].rect.x: \"1e3\" is not a length"],
        ),
        ("no-layers", "backdrop = \"#000\"\n".into(), vec!["FILE:1:1: layers: the scene has no layers"]),
        (
            "duplicate-name",
            format!(
                "{}{}",
                layer("kind = \"solid\"\ncolor = \"#fff\""),
                layer("kind = \"solid\"\ncolor = \"#000\"")
            ),
            vec!["FILE:7:8: layers[1].name: the name \"a\" is taken"],
        ),
        (
            "bad-name",
            "[[layers]]\nname = \"a b\"\nkind = \"solid\"\ncolor = \"#fff\"\nrect = { x = 0, y = 0, w = 8, h = 8 }\n".into(),
            vec!["FILE:2:8: layers[0].name: \"a b\" is not a layer name"],
        ),
        (
            "bad-image-path",
            layer("kind = \"image\"\npath = \"\""),
            vec!["FILE:5:8: layers[0].path: \"\" is not a file path"],
        ),
    ];
    for (tag, text, want) in &cases {
        refused(tag, text, want);
    }
    let too_many: String = (0..9)
        .map(|i| {
            format!("[[layers]]\nname = \"l{i}\"\nkind = \"solid\"\ncolor = \"#fff\"\nrect = {{ x = 0, y = 0, w = 8, h = 8 }}\n")
        })
        .collect();
    refused(
        "too-many-layers",
        &too_many,
        &["FILE:41:1: layers[8]: 9 layers is too many"],
    );
}

#[test]
fn missing_and_undecodable_images_end_the_run_naming_the_file() {
    let dir = scratch("scene-bad-images");
    let scene = write_scene(&dir, EXACT_SCENE);
    let png = dir.join("images/photo.png");
    for (tag, bytes, want) in [
        ("missing", None, "cannot open"),
        ("garbage", Some(b"not a png at all".to_vec()), "decoding"),
        ("truncated", Some(test_png()[..40].to_vec()), "decoding"),
    ] {
        match &bytes {
            None => {
                let _ = std::fs::remove_file(&png);
            }
            Some(b) => std::fs::write(&png, b).expect("write png"),
        }
        let mut cmd = triptych(&["run", "--headless", "--frames", "3"]);
        cmd.arg("--scene")
            .arg(&scene)
            .arg("--out")
            .arg(dir.join("f.png"));
        let o = output(cmd);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{tag}: {}", show(&o));
        assert!(
            stderr.contains("layers[2] (photo)") && stderr.contains(want),
            "{tag}: {stderr}"
        );
        assert!(
            stderr.contains("photo.png"),
            "{tag}: names the file: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_scene_without_a_reference_is_refused_by_verify_before_the_run() {
    let dir = scratch("scene-verify-refused");
    let scene = write_scene(
        &dir,
        "[[layers]]\nname = \"g\"\nkind = \"gradient\"\nfrom = \"#000\"\nto = \"#fff\"\nrect = { x = 0, y = 0, w = 8, h = 8 }\n",
    );
    let mut cmd = triptych(&["run", "--headless", "--frames", "3", "--verify"]);
    cmd.arg("--scene").arg(&scene);
    let o = output(cmd);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--verify cannot check this scene"),
        "{}",
        show(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_scene_file_over_the_message_budget_is_refused() {
    let dir = scratch("scene-too-large");
    let mut text = String::from(
        "[[layers]]\nname = \"a\"\nkind = \"solid\"\ncolor = \"#fff\"\nrect = { x = 0, y = 0, w = 8, h = 8 }\n",
    );
    while text.len() <= 32 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    let path = dir.join("big.toml");
    std::fs::write(&path, &text).expect("write");
    let mut cmd = triptych(&["run", "--headless", "--frames", "3"]);
    cmd.arg("--scene").arg(&path);
    let o = output(cmd);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("big.toml") && stderr.contains("scene files are at most 32768 bytes"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_scene_in_a_resized_window_shows_its_reference_at_the_new_size() {
    use std::time::Duration;
    use triptych_tests::x11::{interrupt, press, screenshot, window_id, Xvfb};
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt as _};
    let x = Xvfb::start(640, 480);
    let conn = x.connect();
    let dir = scratch("scene-window-resize");
    let scene = write_scene(&dir, EXACT_SCENE);
    let mut cmd = triptych(&["run", "--window", "--size", "160x120", "--frames", "100000"]);
    cmd.arg("--scene")
        .arg(&scene)
        .arg("--out")
        .arg(dir.join("f.png"));
    let (mut child, mut lines) = x.spawn(cmd);
    let xid = window_id(&lines.wait_for("window open", Duration::from_secs(30)));
    lines.wait_for("GPU process started", Duration::from_secs(60));
    press(&conn, xid, 0x20);
    lines.wait_for("paused=true", Duration::from_secs(20));
    conn.configure_window(xid, &ConfigureWindowAux::new().width(200).height(150))
        .expect("resize");
    conn.flush().expect("flush");
    lines.wait_for("window resized", Duration::from_secs(20));
    press(&conn, xid, u32::from(b'.'));
    let line = lines.wait_for(
        "a frame of the new size is on screen",
        Duration::from_secs(30),
    );
    let frame: u64 = line
        .split("frame=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .expect("a frame number");
    let (w, h, px) = screenshot(&conn, xid);
    assert_eq!((w, h), (200, 150));
    // The window has no alpha: compare colour channels (the frame is opaque anyway).
    let want = reference(&scene, frame, w, h);
    let bad: Vec<String> = px
        .chunks_exact(4)
        .zip(want.chunks_exact(4))
        .enumerate()
        .filter(|(_, (g, wa))| g[..3] != wa[..3])
        .take(5)
        .map(|(i, (g, wa))| {
            format!(
                "({}, {}): {g:?} instead of {wa:?}",
                i as u32 % w,
                i as u32 / w
            )
        })
        .collect();
    assert!(bad.is_empty(), "frame {frame} at 200x150 differs: {bad:?}");
    interrupt(&mut child, &lines);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_embedding_shell_draws_a_scene_file_and_every_frame_equals_its_reference() {
    use triptych::shell::{Event, ShellBuilder};
    let dir = scratch("scene-shell");
    let scene = write_scene(&dir, EXACT_SCENE);
    let (w, h) = (96, 64);
    let shell = ShellBuilder::new()
        .binaries(triptych_tests::bin_dir())
        .size(w, h)
        .frames(40)
        .scene(&scene)
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut presented = 0;
    loop {
        match shell
            .receiver()
            .recv_deadline(deadline)
            .expect("the shell's events within 120 s")
        {
            Event::Presented(f) => {
                let px = f.pixels().expect("pixels were asked for");
                let want = reference(&scene, f.frame, w, h);
                assert!(
                    px == &want[..],
                    "frame {}: {:?}",
                    f.frame,
                    differences(px, &want, w)
                );
                presented += 1;
            }
            Event::Finished => break,
            _ => {}
        }
    }
    assert!(presented > 0);
    assert_eq!(shell.wait().expect("summary").frames.last, Some(39));
    // A bad file fails the spawn itself, with its located error.
    std::fs::write(&scene, "[[layers]]\nname = 3\n").expect("write");
    let Err(e) = ShellBuilder::new().scene(&scene).spawn() else {
        panic!("a bad scene file does not spawn");
    };
    assert!(format!("{e:#}").contains(":2:8: layers[0].name:"), "{e:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
