//! The scene edited while it runs, with real processes: an embedding application's
//! `Shell::edit`, and `triptych run --control` driven by a script. Every presented frame is
//! compared, pixel for pixel, with the CPU reference of the edit it names.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use triptych::shell::{EditKind, Error, Event, Pixels, Role, Shell, ShellBuilder, Transaction};
use triptych_scene::file::{reference_frame, Document, ErrorKind, Scene};
use triptych_tests::edit::{differing, next, H, LABEL_SCENE, PIXELS_SCENE, W};
use triptych_tests::{scratch, PROCESS_DEADLINE};

/// The label's rectangle.
const LABEL: (u32, u32, u32, u32) = (8, 8, 80, 24);

fn scene_file(test: &str) -> std::path::PathBuf {
    let path = scratch(test).join("scene.toml");
    std::fs::write(&path, LABEL_SCENE).expect("writing the scene");
    path
}

/// The scenes of the edits made, by version, as the test's own document says.
struct Replica {
    doc: Document,
    scenes: BTreeMap<u64, Scene>,
}

impl Replica {
    fn new(path: &std::path::Path) -> Self {
        let doc = Document::parse(LABEL_SCENE, path).expect("the scene parses");
        let scenes = BTreeMap::from([(0, doc.scene().clone())]);
        Replica { doc, scenes }
    }

    fn edit(&mut self, shell: &Shell, tx: &Transaction) -> u64 {
        let version = shell.edit(tx).expect("the edit is taken");
        self.doc = self.doc.apply(tx).expect("the same edit applies here");
        self.scenes.insert(version, self.doc.scene().clone());
        version
    }

    /// Checks `px`, frame `frame` of edit `version`, against its reference.
    fn check(&self, frame: u64, version: u64, px: &[u8]) {
        let scene = self.scenes.get(&version).expect("a version the test made");
        let bad = differing(scene, frame, px, &[]);
        assert_eq!(
            bad, 0,
            "frame {frame} (edit {version}): {bad} pixels differ"
        );
    }
}

#[test]
fn a_label_changed_every_frame_for_600_frames_costs_its_rectangle_and_no_restart() {
    let path = scene_file("edit-label");
    let mut replica = Replica::new(&path);
    let shell = ShellBuilder::new()
        .binaries(triptych_tests::bin_dir())
        .scene(&path)
        .size(W, H)
        .frames(100_000)
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut sent, mut shown) = (0u64, 0u64);
    let mut prev: Option<u64> = None;
    let (mut last_frame, mut checked): (Option<u64>, u64) = (None, 0);
    let mut applied = BTreeMap::new();
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::Presented(f) => {
                let px = f.pixels().expect("pixels were asked for");
                replica.check(f.frame, f.edit, px);
                assert!(
                    f.edit >= shown,
                    "frame {}: edit {} after {shown}",
                    f.frame,
                    f.edit
                );
                // A new label damages its rectangle and nothing else; no edit, nothing. (A frame
                // after one whose event the shell dropped, the test having fallen behind, is
                // damaged whole: its damage is relative to a frame the test never saw.)
                let rects: Vec<_> = f.damage.iter().map(|r| (r.x, r.y, r.w, r.h)).collect();
                let follows = last_frame.is_some_and(|l| l + 1 == f.frame);
                match prev {
                    Some(p) if follows && p == f.edit => {
                        assert!(rects.is_empty(), "frame {}: {rects:?}", f.frame);
                        checked += 1;
                    }
                    Some(_) if follows => {
                        assert_eq!(rects, vec![LABEL], "frame {}", f.frame);
                        checked += 1;
                    }
                    _ => {}
                }
                last_frame = Some(f.frame);
                prev = Some(f.edit);
                shown = f.edit;
                if sent < 600 {
                    sent += 1;
                    let tx = Transaction::new().set("label", json!({"text": sent.to_string()}));
                    assert_eq!(replica.edit(&shell, &tx), sent);
                } else if shown == 600 {
                    shell.shutdown();
                }
            }
            Event::EditSuperseded { version } => panic!("edit {version} superseded, no new scene"),
            Event::Applied { version, frame } => {
                // Each event answers every edit up to its version, newer than the last.
                assert!(applied.last_key_value().is_none_or(|(v, _)| *v < version));
                applied.insert(version, frame);
            }
            Event::Crashed { role, cause, .. } => panic!("{role} crashed: {cause}"),
            Event::Violation { role, call, .. } => panic!("{role}: {call}"),
            Event::Fallback(_) | Event::StandbyReady { .. } => {}
            Event::Finished => break,
            other => panic!("an event this test does not know: {other:?}"),
        }
    }
    assert_eq!(shown, 600, "the last edit reached the screen");
    assert_eq!(
        applied.last_key_value().map(|(v, _)| *v),
        Some(600),
        "every edit was answered"
    );
    let s = shell.wait().expect("the run's summary");
    assert_eq!(s.frames.scene_edits, 600);
    assert!(
        checked >= 300,
        "only {checked} frames' damage could be checked"
    );
    assert_eq!(s.frames.scene_changes, 0);
    assert!(s.recovery.crashes.is_empty(), "{:?}", s.recovery.crashes);
}

#[test]
fn a_50_change_transaction_shows_in_one_frame_and_refused_ones_change_nothing() {
    let path = scene_file("edit-transaction");
    let dir = path.parent().expect("scratch dir").to_path_buf();
    let mut replica = Replica::new(&path);
    let shell = ShellBuilder::new()
        .binaries(triptych_tests::bin_dir())
        .scene(&path)
        .size(W, H)
        .frames(100_000)
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    // Every way to be refused, each checked and none changing anything.
    let solid = |name: &str| json!({"name": name, "kind": "solid", "color": "#fff", "rect": {"x": 0, "y": 0, "w": 4, "h": 4}});
    let mut too_many = Transaction::new();
    for i in 0..6 {
        too_many = too_many.add_layer(solid(&format!("x{i}")));
    }
    let mut too_big = Transaction::new();
    for i in 0..300 {
        too_big = too_big.set("panel", json!({"z": i}));
    }
    let refused: Vec<(Transaction, EditKind)> = vec![
        (Transaction::new().set("nope", json!({"text": "x"})), EditKind::UnknownLayer),
        (Transaction::new().remove("nope"), EditKind::UnknownLayer),
        (
            Transaction::new().set("label", json!({"text": "ok"})).set("panel", json!({"opacity": 1.5})),
            EditKind::Scene(ErrorKind::OutOfRange),
        ),
        (Transaction::new().set("panel", json!({"color": "red"})), EditKind::Scene(ErrorKind::BadColor)),
        (Transaction::new().set("panel", json!({"cell": 3})), EditKind::Scene(ErrorKind::FieldNotForKind)),
        (Transaction::new().set("panel", json!({"kind": "blob"})), EditKind::Scene(ErrorKind::UnknownKind)),
        (Transaction::new().set("panel", json!({"rect": {"w": "50"}})), EditKind::Scene(ErrorKind::BadLength)),
        (Transaction::new().set("panel", json!({"name": "label"})), EditKind::Scene(ErrorKind::DuplicateName)),
        (Transaction::new().set("panel", json!({"color": null})), EditKind::Scene(ErrorKind::MissingField)),
        (Transaction::new().remove("back").remove("panel").remove("label"), EditKind::Scene(ErrorKind::NoLayers)),
        (too_many, EditKind::Scene(ErrorKind::TooManyLayers)),
        (Transaction::new().add_layer(json!({"name": "n", "kind": null})), EditKind::Malformed),
        (too_big, EditKind::TooBig),
        (
            Transaction::new().add_layer(json!({"name": "pic", "kind": "image", "path": dir.join("missing.png").display().to_string(), "rect": {"x": 0, "y": 0, "w": 4, "h": 4}})),
            EditKind::Limit,
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut big = None;
    let mut first_big = None;
    let mut frames_seen = 0u64;
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::Presented(f) => {
                frames_seen += 1;
                replica.check(f.frame, f.edit, f.pixels().expect("pixels"));
                match big {
                    Some(v) if f.edit == v => {
                        first_big.get_or_insert(f.frame);
                        if f.frame >= first_big.unwrap_or(0) + 5 {
                            shell.shutdown();
                        }
                    }
                    _ => assert_eq!(f.edit, 0, "frame {}: only refused edits so far", f.frame),
                }
                if frames_seen == 5 {
                    for (tx, kind) in &refused {
                        match shell.edit(tx) {
                            Err(Error::Edit(e)) => assert_eq!(e.kind(), *kind, "{e}"),
                            other => panic!("{kind:?}: not refused: {other:?}"),
                        }
                    }
                }
                if frames_seen == 10 {
                    // Fifty changes: moves and recolours of every layer, one added, one
                    // removed, ending where the last of each says.
                    let mut tx = Transaction::new().remove("back").add_layer(solid("dot"));
                    for i in 0..16u32 {
                        tx = tx
                            .set("panel", json!({"rect": {"x": 60 + i, "y": 20 + i}}))
                            .set(
                                "label",
                                json!({"text": format!("step {i}"), "color": "#ffcc00"}),
                            )
                            .set(
                                "dot",
                                json!({"color": format!("#00{:02x}00", 100 + i * 8), "z": 9}),
                            );
                    }
                    assert_eq!(tx.len(), 50);
                    big = Some(replica.edit(&shell, &tx));
                }
            }
            Event::Crashed { role, cause, .. } => panic!("{role} crashed: {cause}"),
            Event::Finished => break,
            _ => {}
        }
    }
    assert!(first_big.is_some(), "the 50-change edit reached the screen");
    shell.wait().expect("the run's summary");
}

#[test]
fn edits_survive_a_killed_gpu_process() {
    let path = scene_file("edit-gpu-kill");
    let mut replica = Replica::new(&path);
    let shell = ShellBuilder::new()
        .binaries(triptych_tests::bin_dir())
        .scene(&path)
        .size(W, H)
        .frames(100_000)
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    let deadline = Instant::now() + Duration::from_secs(180);
    let (mut sent, mut killed, mut crashes) = (0u64, 0, 0);
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::Presented(f) => {
                replica.check(f.frame, f.edit, f.pixels().expect("pixels"));
                if sent < 120 {
                    sent += 1;
                    // Layers come and go, so the replacement must take slots and all.
                    let tx = if sent % 2 == 1 {
                        Transaction::new().remove("panel")
                    } else {
                        Transaction::new().add_layer(json!({"name": "panel", "kind": "solid", "color": "#40c040", "rect": {"x": (sent % 100) as i64, "y": 30, "w": 40, "h": 20}}))
                    };
                    let tx = tx.set("label", json!({"text": sent.to_string()}));
                    replica.edit(&shell, &tx);
                    if sent % 40 == 20 {
                        shell.kill(Role::Gpu);
                        killed += 1;
                    }
                } else if f.edit == sent {
                    shell.shutdown();
                }
            }
            Event::Crashed { role, .. } => {
                assert_eq!(role, Role::Gpu);
                crashes += 1;
            }
            Event::Finished => break,
            _ => {}
        }
    }
    assert_eq!(killed, 3);
    assert!(crashes >= 1, "the kills were recovered as crashes");
    shell.wait().expect("the run's summary");
}

#[test]
fn control_lines_are_answered_and_the_last_frame_is_the_edited_scenes() {
    let path = scene_file("edit-control");
    let out = path.with_file_name("out.png");
    let mut child = triptych_tests::triptych(&[
        "run",
        "--headless",
        "--control",
        "-",
        "--scene",
        &path.display().to_string(),
        "--size",
        &format!("{W}x{H}"),
        "--frames",
        "300",
        "--verify",
        "--out",
        &out.display().to_string(),
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawning triptych");
    let lines = [
        r#"{"set": {"label": {"text": "12:00:01"}}, "id": "a"}"#,
        "not json",
        r#"{"set": {"label": {"opacity": 1.7}}}"#,
        r##"{"add": [{"name": "dot", "kind": "solid", "color": "#f00", "rect": {"x": 120, "y": 4, "w": 10, "h": 10}}], "view": 0}"##,
        r#"{"remove": ["nope"], "id": 7}"#,
        r#"{"frobnicate": 1}"#,
        "",
        r#"{"remove": ["panel"], "set": {"dot": {"rect": {"x": 130}}}}"#,
        r#"{"pixels": {"layer": "label", "width": 1, "height": 1, "rgba": [0, 0, 0, 0]}}"#,
    ];
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for l in lines {
            writeln!(stdin, "{l}").expect("writing a line");
        }
    }
    let o = triptych_tests::finish_within(child, PROCESS_DEADLINE, "triptych run --control -");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{:?}\n{stdout}\n{stderr}", o.status);
    let answers: BTreeMap<u64, Value> = stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
            (v["line"].as_u64().expect("a line number"), v)
        })
        .collect();
    assert_eq!(
        answers.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6, 8, 9],
        "one answer per line, none for the blank one:\n{stdout}"
    );
    for (line, ok) in [
        (1, true),
        (2, false),
        (3, false),
        (4, true),
        (5, false),
        (6, false),
        (8, true),
        (9, false),
    ] {
        let a = &answers[&line];
        assert_eq!(a["ok"], json!(ok), "line {line}: {a}");
        if ok {
            assert!(a["frame"].as_u64().is_some(), "line {line}: {a}");
        }
    }
    assert_eq!(answers[&1]["id"], json!("a"));
    assert_eq!(answers[&5]["id"], json!(7));
    assert_eq!(answers[&2]["kind"], json!("malformed"));
    assert_eq!(answers[&3]["kind"], json!("out of range"));
    assert!(answers[&3]["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("label.opacity: ")));
    assert_eq!(answers[&5]["kind"], json!("unknown layer"));
    assert!(
        answers[&9]["error"]
            .as_str()
            .is_some_and(|e| e.contains("takes no pixels")),
        "{}",
        answers[&9]
    );
    // Edits are shown in order.
    let frame = |l: u64| answers[&l]["frame"].as_u64().unwrap_or(0);
    assert!(frame(1) <= frame(4) && frame(4) <= frame(8));
    // --verify compared the last frame with the edited scene's reference; the file is that
    // frame, which the test's own replica of the edits predicts too.
    assert!(stderr.contains("verified"), "{stderr}");
    let doc = Document::parse(LABEL_SCENE, &path).expect("parses");
    let doc = doc
        .apply(&Transaction::new().set("label", json!({"text": "12:00:01"})))
        .and_then(|d| d.apply(&Transaction::new().add_layer(json!({"name": "dot", "kind": "solid", "color": "#f00", "rect": {"x": 120, "y": 4, "w": 10, "h": 10}}))))
        .and_then(|d| d.apply(&Transaction::new().remove("panel").set("dot", json!({"rect": {"x": 130}}))))
        .expect("the replica applies");
    let (w, h, px) = triptych_tests::read_png(&out);
    assert_eq!((w, h), (W, H));
    let want = reference_frame(doc.scene(), 299, W, H, &[]).expect("predictable");
    assert!(px == want, "the PNG is not the edited scene");
}

/// Premultiplied RGBA8 for pixel (`x`, `y`) of upload `n`: every byte depends on all three, and
/// the colour never exceeds the alpha.
fn texel(n: u32, x: u32, y: u32) -> [u8; 4] {
    let a = 128 + ((n * 7 + x * 3 + y * 5) % 128) as u8;
    let c = |k: u32| ((n * 13 + x * 11 + y * 17 + k * 29) % (u32::from(a) + 1)) as u8;
    [c(0), c(1), c(2), a]
}

/// The rows of upload `n` of the `w` x `h` rectangle at (`x0`, `y0`).
fn rows(n: u32, (x0, y0, w, h): (u32, u32, u32, u32)) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| texel(n, x0 + x, y0 + y)))
        .collect()
}

/// The application's pixels round-trip exactly (nearest sampling, no transform): whole, then
/// in damaged rectangles, also across GPU process kills in the middle of the stream; every frame
/// shows exactly the pixels of the upload it names, and a frame that shows new uploads alone is
/// damaged where they are and nowhere else.
#[test]
fn the_applications_pixels_round_trip_exactly_across_gpu_kills() {
    round_trip("edit-pixels", PIXELS_SCENE, (16, 8));
}

/// The same with the canvas drawn half as large again (nearest sampling): a frame of uploads
/// alone is damaged around them, a texel wider each way, and still exact.
#[test]
fn scaled_pixels_are_damaged_around_their_uploads_and_stay_exact() {
    let scene = PIXELS_SCENE.replace("w = 16, h = 8", "w = 24, h = 12");
    assert_ne!(scene, PIXELS_SCENE);
    round_trip("edit-pixels-scaled", &scene, (24, 12));
}

/// Uploads into the 16 x 8 canvas of `scene`, drawn `lw` x `lh` at (40, 20), checked frame by
/// frame; refused uploads after.
fn round_trip(tag: &str, scene: &str, (lw, lh): (u32, u32)) {
    let path = scratch(tag).join("scene.toml");
    std::fs::write(&path, scene).expect("writing the scene");
    let shell = ShellBuilder::new()
        .binaries(triptych_tests::bin_dir())
        .scene(&path)
        .size(W, H)
        .frames(100_000)
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    // The scene and the canvas as the test edited and uploaded them, by edit version.
    let mut canvas = vec![0u8; 16 * 8 * 4];
    let mut doc = Document::parse(scene, &path).expect("parses");
    let mut canvases = BTreeMap::from([(0u64, (doc.scene().clone(), canvas.clone()))]);
    let check =
        |frame: u64, version: u64, px: &[u8], canvases: &BTreeMap<u64, (Scene, Vec<u8>)>| {
            let (scene, c) = &canvases[&version];
            let image = triptych_scene::file::Image {
                width: 16,
                height: 8,
                pixels: c.clone(),
            };
            let mut images: Vec<Option<&triptych_scene::file::Image>> = vec![None; 8];
            images[1] = Some(&image);
            let bad = differing(scene, frame, px, &images);
            assert_eq!(
                bad, 0,
                "frame {frame} (upload {version}): {bad} pixels differ"
            );
        };
    let deadline = Instant::now() + Duration::from_secs(180);
    let (mut n, mut crashes, mut last) = (0u32, 0, 0u64);
    // Each version's upload, in the output (`None`: an edit of the scene).
    let mut uploads: BTreeMap<u64, Option<(u32, u32, u32, u32)>> = BTreeMap::new();
    // The frame and version presented last, unless a crash came since.
    let mut before: Option<(u64, u64)> = None;
    let mut damage_checked = 0;
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::Presented(f) => {
                check(f.frame, f.edit, f.pixels().expect("pixels"), &canvases);
                if let Some((frame, edit)) = before.filter(|(fr, _)| fr + 1 == f.frame) {
                    let new: Option<Vec<_>> = uploads
                        .range(edit + 1..f.edit + 1)
                        .map(|(_, r)| *r)
                        .collect();
                    let damage: Vec<_> = f.damage.iter().map(|r| (r.x, r.y, r.w, r.h)).collect();
                    match new {
                        // Nothing new: nothing damaged.
                        Some(new) if new.is_empty() => {
                            assert!(damage.is_empty(), "frame {}: {damage:?}", f.frame)
                        }
                        // Uploads alone: damaged inside their bounds, and over each of them.
                        Some(new) => {
                            // Scaled, a texel more each way, inside the canvas.
                            let m = u32::from((lw, lh) != (16, 8));
                            let (x0, y0) = (
                                new.iter()
                                    .map(|r| r.0)
                                    .min()
                                    .unwrap_or(0)
                                    .saturating_sub(m)
                                    .max(40),
                                new.iter()
                                    .map(|r| r.1)
                                    .min()
                                    .unwrap_or(0)
                                    .saturating_sub(m)
                                    .max(20),
                            );
                            let x1 =
                                (new.iter().map(|r| r.0 + r.2).max().unwrap_or(0) + m).min(40 + lw);
                            let y1 =
                                (new.iter().map(|r| r.1 + r.3).max().unwrap_or(0) + m).min(20 + lh);
                            for d in &damage {
                                assert!(
                                    d.0 >= x0 && d.1 >= y0 && d.0 + d.2 <= x1 && d.1 + d.3 <= y1,
                                    "frame {} (after {frame}): damage {d:?} outside the uploads {new:?}",
                                    f.frame
                                );
                            }
                            let covered = |x: u32, y: u32| {
                                damage
                                    .iter()
                                    .any(|d| x >= d.0 && y >= d.1 && x < d.0 + d.2 && y < d.1 + d.3)
                            };
                            for r in &new {
                                for (x, y) in (r.0..r.0 + r.2)
                                    .flat_map(|x| (r.1..r.1 + r.3).map(move |y| (x, y)))
                                {
                                    assert!(
                                        covered(x, y),
                                        "frame {}: ({x}, {y}) of upload {r:?} undamaged: {damage:?}",
                                        f.frame
                                    );
                                }
                            }
                            damage_checked += 1;
                        }
                        None => {}
                    }
                }
                before = Some((f.frame, f.edit));
                if n < 90 && n % 7 == 6 {
                    // An edit of another layer: the canvas keeps its pixels.
                    n += 1;
                    let color = format!("#20{:02x}40", n * 2);
                    let tx = Transaction::new().set("back", json!({ "color": color }));
                    last = shell.edit(&tx).expect("the edit is taken");
                    uploads.insert(last, None);
                    doc = doc.apply(&tx).expect("applies here too");
                    canvases.insert(last, (doc.scene().clone(), canvas.clone()));
                } else if n < 90 {
                    n += 1;
                    // Whole at first, then a moving rectangle of it.
                    let r = if n == 1 {
                        (0, 0, 16, 8)
                    } else {
                        (n % 12, n % 5, 1 + n % 4, 1 + n % 3)
                    };
                    let data = rows(n, r);
                    let v = shell
                        .upload(
                            "canvas",
                            &Pixels {
                                x: r.0,
                                y: r.1,
                                width: r.2,
                                height: r.3,
                                rgba: &data,
                            },
                        )
                        .expect("the upload is taken");
                    for y in 0..r.3 {
                        for x in 0..r.2 {
                            let at = (((r.1 + y) * 16 + r.0 + x) * 4) as usize;
                            canvas[at..at + 4].copy_from_slice(&texel(n, r.0 + x, r.1 + y));
                        }
                    }
                    canvases.insert(v, (doc.scene().clone(), canvas.clone()));
                    // Where the canvas at (40, 20) draws the rectangle.
                    let (sx0, sy0) = (r.0 * lw / 16, r.1 * lh / 8);
                    let (sx1, sy1) = (
                        ((r.0 + r.2) * lw).div_ceil(16),
                        ((r.1 + r.3) * lh).div_ceil(8),
                    );
                    uploads.insert(v, Some((40 + sx0, 20 + sy0, sx1 - sx0, sy1 - sy0)));
                    last = v;
                    if n % 30 == 15 {
                        shell.kill(Role::Gpu);
                    }
                } else if f.edit == last {
                    shell.shutdown();
                }
            }
            Event::Crashed { role, .. } => {
                assert_eq!(role, Role::Gpu);
                crashes += 1;
                before = None;
            }
            Event::Finished => break,
            _ => {}
        }
    }
    assert!(crashes >= 1, "the kills were recovered");
    // Under load several uploads coalesce into one frame, which shows their union and is not
    // checked here; every frame is still compared with its reference above.
    assert!(
        damage_checked >= 10,
        "only {damage_checked} frames showed uploads alone after the frame before"
    );
    shell.wait().expect("the run's summary");
    // Refused uploads, each changing nothing.
    let shell = ShellBuilder::new()
        .binaries(triptych_tests::bin_dir())
        .scene(&path)
        .size(W, H)
        .frames(3)
        .spawn()
        .expect("spawning a shell");
    let px = |x, y, width, height, rgba: &[u8]| -> Result<u64, Error> {
        shell.upload(
            "canvas",
            &Pixels {
                x,
                y,
                width,
                height,
                rgba,
            },
        )
    };
    let kind = |r: Result<u64, Error>| match r {
        Err(Error::Edit(e)) => e.kind(),
        other => panic!("not refused: {other:?}"),
    };
    assert_eq!(
        kind(px(15, 0, 2, 1, &[0; 8])),
        EditKind::Limit,
        "past the right edge"
    );
    assert_eq!(
        kind(px(0, 0, 2, 2, &[0; 8])),
        EditKind::Limit,
        "too few bytes"
    );
    assert_eq!(
        kind(px(0, 0, 0, 1, &[])),
        EditKind::Limit,
        "an empty rectangle"
    );
    assert_eq!(
        kind(px(0, 0, 1, 1, &[200, 0, 0, 100])),
        EditKind::Malformed,
        "a colour above its alpha"
    );
    let r = shell.upload(
        "back",
        &Pixels {
            x: 0,
            y: 0,
            width: 1,
            height: 1,
            rgba: &[0; 4],
        },
    );
    assert_eq!(
        kind(r),
        EditKind::Malformed,
        "a solid layer takes no pixels"
    );
    shell.shutdown();
    shell.wait().expect("the run's summary");
}

/// The clock example, an application that edits its scene while it runs: every tick is answered
/// with the frame that shows it, and the last frame shows the strip of its own pixels filled and
/// the hand turned past its rectangle.
#[test]
fn the_clock_example_edits_its_scene_while_it_runs() {
    let exe = triptych_tests::bin_dir().join("examples").join("clock");
    assert!(
        exe.is_file(),
        "{} is not built: cargo build --workspace --all-targets",
        exe.display()
    );
    let out = scratch("edit-clock").join("clock.png");
    let child = std::process::Command::new(&exe)
        .arg(&out)
        .arg("0.5")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the example");
    let o = triptych_tests::finish_within(child, PROCESS_DEADLINE, "the clock example");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", triptych_tests::show(&o));
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("tick ")).count(),
        10,
        "{stdout}"
    );
    assert!(stdout.contains("20 edits, 0 crashes"), "{stdout}");
    let (w, h, px) = triptych_tests::read_png(&out);
    assert_eq!((w, h), (320, 160));
    let at = |x: u32, y: u32| {
        let i = ((y * w + x) * 4) as usize;
        [px[i], px[i + 1], px[i + 2], px[i + 3]]
    };
    // Ten columns of the strip are yellow (4 pixels each at 240/60), the eleventh still the
    // face's colour through the transparent pixels.
    let yellow = [255, 204, 0, 255];
    for column in 0..10 {
        assert_eq!(at(40 + column * 4 + 1, 133), yellow, "column {column}");
    }
    assert_eq!(
        at(40 + 10 * 4 + 1, 133),
        [0x20, 0x30, 0x40, 255],
        "column 10"
    );
    // The hand, turned 54 degrees, reaches left of its rectangle (x 150..170).
    let hand = (140..150).any(|x| (70..110).any(|y| at(x, y) == yellow));
    assert!(hand, "the turned hand reaches past its rectangle");
}

/// An edit whose layers the renderer could not map within its budget is refused with a typed
/// error, before an honest GPU process could be blamed for describing them.
#[test]
fn an_edit_beyond_the_mapping_budget_is_refused() {
    let path = scene_file("edit-budget");
    let mut config = triptych::shell::RunConfig::default();
    config.pool = 16;
    let shell = ShellBuilder::with_config(config)
        .binaries(triptych_tests::bin_dir())
        .scene(&path)
        .size(W, H)
        .frames(30)
        .spawn()
        .expect("spawning a shell");
    let big = |name: &str| {
        json!({"name": name, "kind": "solid", "color": "#fff",
               "rect": {"x": 0, "y": 0, "w": 8192, "h": 8192}})
    };
    // One 8192x8192 layer in pools of 16 is 4 GiB to map; two are more than the renderer's
    // 8 GiB. (Only refusals here: llvmpipe takes longer than a fence wait to draw such layers.)
    match shell.edit(
        &Transaction::new()
            .add_layer(big("one"))
            .add_layer(big("two")),
    ) {
        Err(Error::Edit(e)) => {
            assert_eq!(e.kind(), EditKind::Limit, "{e}");
            assert!(
                e.to_string().contains("could need the renderer to map"),
                "{e}"
            );
        }
        other => panic!("not refused: {other:?}"),
    }
    // Nor can layers grow into it: a square scaled, or turned, takes as much as its bounds.
    let grown = Transaction::new()
        .set(
            "panel",
            json!({"rect": {"w": 4096, "h": 4096}, "transform": {"scale": 2}}),
        )
        .add_layer(big("one"));
    match shell.edit(&grown) {
        Err(Error::Edit(e)) => assert_eq!(e.kind(), EditKind::Limit, "{e}"),
        other => panic!("not refused: {other:?}"),
    }
    let turned = Transaction::new()
        .set(
            "panel",
            json!({"rect": {"w": 6000, "h": 6000}, "transform": {"rotate": 45}}),
        )
        .add_layer(big("one"));
    match shell.edit(&turned) {
        Err(Error::Edit(e)) => assert_eq!(e.kind(), EditKind::Limit, "{e}"),
        other => panic!("not refused: {other:?}"),
    }
    let s = shell.wait().expect("the run's summary");
    assert!(s.recovery.crashes.is_empty(), "{:?}", s.recovery.crashes);
}
