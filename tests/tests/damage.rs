//! Damage tracking in real runs: a scene where one small layer changes costs that layer's area
//! in every stage, counted by the renderer, carried in the trace, and still gives exactly the
//! full-frame reference; `--no-damage` does every frame whole and gives the same pixels.

use std::path::{Path, PathBuf};

use serde_json::Value;
use triptych_scene::file::{reference_frame, Scene};
use triptych_tests::{output, read_png, scratch, show, summary, triptych};

/// A static checker backdrop and a translucent panel, and a 64x64 checker whose content
/// scrolls one pixel a frame (60 pixels a period of 60 frames): only it changes.
const TICKER: &str = r##"
backdrop = "#101018"

[[layers]]
name = "back"
kind = "checker"
cell = 32
colors = ["#203040", "#304050"]
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "panel"
kind = "solid"
color = "#80406080"
rect = { x = 100, y = 80, w = 300, h = 200 }

[[layers]]
name = "ticker"
kind = "checker"
cell = 8
colors = ["#ff0000", "#00ff00"]
rect = { x = 200, y = 150, w = 64, h = 64 }
animation.scroll = { dx = 60, dy = 0, period = 1.0 }
"##;

/// The same backdrop, and a 32x32 solid square that moves 40 pixels out and back.
const MOVER: &str = r##"
[[layers]]
name = "back"
kind = "checker"
cell = 16
colors = ["#203040", "#304050"]
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "square"
kind = "solid"
color = "#e0c020"
rect = { x = 50, y = 60, w = 32, h = 32 }
opacity = 0.75
animation.translate = { dx = 40, dy = 0, period = 1.0 }
"##;

const W: u32 = 640;
const H: u32 = 480;

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("scene.toml");
    std::fs::write(&p, text).expect("write scene");
    p
}

/// Runs the scene headless for `frames` frames with `extra`; the summary, the trace (if
/// asked for) and the last frame's pixels.
fn run(dir: &Path, scene: &Path, frames: u64, tag: &str, extra: &[&str]) -> (Value, Vec<u8>) {
    let png = dir.join(format!("{tag}.png"));
    let json = dir.join(format!("{tag}.json"));
    let mut cmd = triptych(&["run", "--headless", "--verify"]);
    cmd.arg("--scene")
        .arg(scene)
        .args([
            "--frames",
            &frames.to_string(),
            "--size",
            &format!("{W}x{H}"),
        ])
        .args(extra)
        .arg("--out")
        .arg(&png)
        .arg("--summary-json")
        .arg(&json);
    let o = output(cmd);
    // --verify: the last frame equals the full-frame CPU reference, or the run fails.
    assert!(o.status.success(), "{}", show(&o));
    let (w, h, px) = read_png(&png);
    assert_eq!((w, h), (W, H));
    (summary(&json), px)
}

fn reference(scene: &Path, frame: u64) -> Vec<u8> {
    let text = std::fs::read_to_string(scene).expect("scene text");
    let s = Scene::parse(&text, scene).expect("parses");
    let images = vec![None; s.layers.len()];
    reference_frame(&s, frame, W, H, &images).expect("predictable")
}

fn u(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("{} is not a count: {cur}", path.join(".")))
}

/// The `args` of every span called `name`, by frame.
fn spans(trace: &Value, name: &str) -> Vec<(u64, Value)> {
    let mut out: Vec<(u64, Value)> = trace["traceEvents"]
        .as_array()
        .expect("traceEvents")
        .iter()
        .filter(|e| e["name"] == name && e["ph"] == "X")
        .map(|e| {
            (
                e["args"]["frame"].as_u64().expect("frame"),
                e["args"].clone(),
            )
        })
        .collect();
    out.sort_by_key(|(f, _)| *f);
    out
}

#[test]
fn one_small_changing_layer_costs_its_area_in_every_stage_and_the_pixels_stay_exact() {
    let dir = scratch("damage-ticker");
    let scene = write(&dir, TICKER);
    let frames = 90u64;
    let trace = dir.join("trace.json");
    let trace_arg = trace.to_str().expect("utf-8 path");
    let (s, px) = run(&dir, &scene, frames, "on", &["--trace", trace_arg]);
    assert_eq!(s["damage"]["on"], true, "{}", s["damage"]);
    assert_eq!(u(&s, &["frames", "count"]), frames);
    let frame_px = u64::from(W * H);
    let ticker_px = 64 * 64;
    // The first frame is new everywhere; every later one differs exactly where the ticker is.
    assert_eq!(
        u(&s, &["damage", "damaged_px"]),
        frame_px + (frames - 1) * ticker_px,
        "{}",
        s["damage"]
    );
    assert_eq!(u(&s, &["damage", "output_px"]), frames * frame_px);
    // Each of the three output slots is composited whole once; after that only the ticker,
    // over every frame a slot missed.
    let composited = u(&s, &["damage", "composited_px"]);
    assert!(
        composited <= 3 * frame_px + frames * 3 * ticker_px,
        "composited {composited} pixels: {}",
        s["damage"]
    );
    assert!(composited >= u(&s, &["damage", "damaged_px"]));
    // The renderer's own counters agree with what its frames said.
    assert_eq!(u(&s, &["renderer", "composited_px"]), composited);
    assert_eq!(u(&s, &["renderer", "output_px"]), frames * frame_px);
    let fraction = s["damage"]["mean_damaged_fraction"]
        .as_f64()
        .expect("fraction");
    assert!(fraction < 0.03, "mean damaged fraction {fraction}");

    // The trace carries each stage's area per frame.
    let t: Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).expect("trace")).expect("json");
    let composites = spans(&t, "composite");
    assert_eq!(composites.len() as u64, frames);
    for (f, a) in &composites {
        let want = if *f == 0 { frame_px } else { ticker_px };
        assert_eq!(a["damaged_px"].as_u64(), Some(want), "frame {f}: {a}");
        assert_eq!(a["output_px"].as_u64(), Some(frame_px));
    }
    let presents = spans(&t, "present");
    assert_eq!(presents.len() as u64, frames);
    for (f, a) in presents.iter().skip(1) {
        assert_eq!(a["damaged_px"].as_u64(), Some(ticker_px), "frame {f}: {a}");
    }
    // Once every pool buffer has been drawn whole (three per layer), the GPU process redraws
    // only the ticker: the static layers' buffers hold their content already.
    let renders = spans(&t, "gpu_render");
    assert_eq!(renders.len() as u64, frames);
    for (f, a) in renders.iter().filter(|(f, _)| *f >= 3) {
        assert_eq!(a["redrawn_px"].as_u64(), Some(ticker_px), "frame {f}: {a}");
    }

    // trace-summary reports the same fraction.
    let o = output(triptych(&["trace-summary", trace_arg]));
    assert!(o.status.success(), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let want = format!(
        "damage: composite damaged_px {:.2}% of {} pixels",
        fraction * 100.0,
        frames * frame_px
    );
    assert!(text.contains(&want), "no {want:?} in:\n{text}");

    // Whole frames give the same picture.
    let (off, full_px) = run(&dir, &scene, frames, "off", &["--no-damage"]);
    assert_eq!(off["damage"]["on"], false);
    assert_eq!(u(&off, &["damage", "composited_px"]), frames * frame_px);
    assert!(
        px == full_px,
        "the damage-driven frame differs from the whole one"
    );
    assert!(px == reference(&scene, frames - 1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_moving_layer_damages_where_it_was_and_where_it_is() {
    let dir = scratch("damage-mover");
    let scene = write(&dir, MOVER);
    let frames = 45u64;
    let (s, px) = run(&dir, &scene, frames, "on", &[]);
    let frame_px = u64::from(W * H);
    // A 32x32 square moving under two pixels a frame: its old and new places overlap, so a
    // frame's damage is one box at most 32 pixels high and 32 + 3 wide; frames where it does
    // not move (the turn) damage nothing.
    let damaged = u(&s, &["damage", "damaged_px"]) - frame_px;
    assert!(
        damaged > 0 && damaged <= (frames - 1) * 35 * 32,
        "{}",
        s["damage"]
    );
    assert!(px == reference(&scene, frames - 1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_window_shows_the_reference_after_only_damaged_rectangles_were_put() {
    use std::time::Duration;
    use triptych_tests::x11::{interrupt, screenshot, window_id, Xvfb};
    let x = Xvfb::start(800, 600);
    let conn = x.connect();
    let dir = scratch("damage-window");
    let scene = write(&dir, TICKER);
    let frames = 40u64;
    let mut cmd = triptych(&["run", "--window", "--frames", &frames.to_string()]);
    cmd.args(["--size", &format!("{W}x{H}")])
        .arg("--scene")
        .arg(&scene)
        .arg("--out")
        .arg(dir.join("f.png"));
    let (mut child, mut lines) = x.spawn(cmd);
    let xid = window_id(&lines.wait_for("window open", Duration::from_secs(30)));
    lines.wait_for("the last frame is on screen", Duration::from_secs(120));
    let (w, h, px) = screenshot(&conn, xid);
    assert_eq!((w, h), (W, H));
    let want = reference(&scene, frames - 1);
    let bad = px
        .chunks_exact(4)
        .zip(want.chunks_exact(4))
        .filter(|(g, wa)| g[..3] != wa[..3])
        .count();
    assert_eq!(
        bad,
        0,
        "{bad} pixels of the window differ from frame {}",
        frames - 1
    );
    interrupt(&mut child, &lines);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_idle_window_asks_for_no_frames() {
    use std::time::Duration;
    use triptych_tests::poll_until;
    use triptych_tests::x11::{interrupt, screenshot, window_id, Xvfb};
    let x = Xvfb::start(800, 600);
    let conn = x.connect();
    let dir = scratch("damage-idle");
    // Nothing animates: after its first frames the window is idle.
    let still = TICKER.replace("animation.scroll = { dx = 60, dy = 0, period = 1.0 }", "");
    let scene = write(&dir, &still);
    let json = dir.join("summary.json");
    let mut cmd = triptych(&["run", "--window", "--frames", "1000000"]);
    cmd.arg("--scene")
        .arg(&scene)
        .arg("--summary-json")
        .arg(&json)
        .arg("--trace")
        .arg(dir.join("trace.json"))
        .arg("--out")
        .arg(dir.join("f.png"));
    let (mut child, mut lines) = x.spawn(cmd);
    let xid = window_id(&lines.wait_for("window open", Duration::from_secs(30)));
    lines.wait_for("GPU process started", Duration::from_secs(60));
    // The idle span starts once the window shows the scene (the same at every frame number).
    let still_frame = reference(&scene, 0);
    let shown = poll_until(Duration::from_secs(60), Duration::from_millis(100), || {
        let (w, h, px) = screenshot(&conn, xid);
        (w, h) == (W, H)
            && px
                .chunks_exact(4)
                .zip(still_frame.chunks_exact(4))
                .all(|(g, want)| g[..3] == want[..3])
    });
    assert!(shown, "the window never showed the scene");
    // Then a span of time in which nothing may happen; what is tested is an absence, so the
    // fixed span is the point, not a stand-in for an event. Two seconds is 120 refreshes at
    // 60 Hz: an animating window presents about that many.
    std::thread::sleep(Duration::from_secs(2));
    interrupt(&mut child, &lines);
    let s = summary(&json);
    // The first frame, and one more for the renderer's output once it is attached.
    let presented = u(&s, &["frames", "count"]);
    assert!(
        (1..=3).contains(&presented),
        "an idle window presented {presented} frames"
    );
    // Nothing was rendered that was not presented.
    let t: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("trace.json")).expect("trace"))
            .expect("json");
    assert_eq!(spans(&t, "gpu_render").len() as u64, presented);
    // Each frame starts with the display's request, in the trace.
    let requests = t["traceEvents"]
        .as_array()
        .expect("traceEvents")
        .iter()
        .filter(|e| e["name"] == "frame_request")
        .count() as u64;
    assert_eq!(requests, presented, "frame requests in the trace");
    assert_eq!(
        u(&s, &["latency", "present", "count"]),
        presented,
        "{}",
        s["latency"]["present"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_replaced_renderer_gets_every_buffer_redrawn_whole() {
    // A compromised renderer could have written into the DMA-BUFs it was shown: whatever it
    // held is drawn anew for its replacement, and the frames stay exact.
    let dir = scratch("damage-restart");
    let scene = write(&dir, TICKER);
    let frames = 60u64;
    let trace = dir.join("trace.json");
    let trace_arg = trace.to_str().expect("utf-8 path");
    let (s, px) = run(
        &dir,
        &scene,
        frames,
        "restart",
        &[
            "--trace",
            trace_arg,
            "--fault",
            "renderer-composite:kill@30",
        ],
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "{}", s["recovery"]["crashes"]);
    assert_eq!(crashes[0]["role"], "renderer");
    let t: Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).expect("trace")).expect("json");
    let whole_after_restart = spans(&t, "gpu_render")
        .into_iter()
        .filter(|(f, a)| *f >= 20 && a["redrawn_px"] == a["layer_px"])
        .count();
    assert!(
        whole_after_restart >= 3,
        "{whole_after_restart} frames redrawn whole after the renderer was replaced"
    );
    assert!(px == reference(&scene, frames - 1));
    let _ = std::fs::remove_dir_all(&dir);
}
