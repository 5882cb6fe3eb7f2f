//! The application's pixels through coalesced edits, and `--verify` through edits, with real
//! processes: the launcher alone decides what a pixels layer shows, and an honest run is never
//! failed by its own edits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use triptych::shell::{Event, Pixels, ShellBuilder, Transaction};
use triptych_scene::file::{Document, Scene};
use triptych_tests::edit::{differing, next, H, PIXELS_SCENE, W};
use triptych_tests::scratch;

/// Runs `second` (a list of transactions) right after an edit that goes out at once, so that
/// they are coalesced into one update, once the GPU process shows the canvas's pixels. Returns
/// the pixels of the first frame naming the last edit, and that edit's scene.
fn coalesced(test: &str, second: Vec<Transaction>) -> (Vec<u8>, Scene, u64) {
    let path = scratch(test).join("scene.toml");
    std::fs::write(&path, PIXELS_SCENE).expect("writing the scene");
    let shell = ShellBuilder::new()
        .binaries(triptych_tests::bin_dir())
        .scene(&path)
        .size(W, H)
        .frames(100_000)
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    let mut doc = Document::parse(PIXELS_SCENE, &path).expect("parses");
    let mut scenes = BTreeMap::new();
    let red = [200u8, 0, 0, 255].repeat(16 * 8);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut uploaded = None;
    let mut last = None;
    while let Some(e) = next(&shell, deadline) {
        let Event::Presented(f) = e else { continue };
        match (uploaded, last) {
            (None, _) => {
                let v = shell
                    .upload(
                        "canvas",
                        &Pixels {
                            x: 0,
                            y: 0,
                            width: 16,
                            height: 8,
                            rgba: &red,
                        },
                    )
                    .expect("upload");
                uploaded = Some(v);
            }
            (Some(v), None) if f.edit >= v => {
                // The GPU process has the canvas's pixels. An edit that goes at once, then
                // the transactions, which wait for it and go as one update.
                let tx = Transaction::new().set("back", json!({"color": "#203041"}));
                let v1 = shell.edit(&tx).expect("edit");
                doc = doc.apply(&tx).expect("applies");
                scenes.insert(v1, doc.scene().clone());
                let mut newest = v1;
                for tx in &second {
                    newest = shell.edit(tx).expect("edit");
                    doc = doc.apply(tx).expect("applies");
                    scenes.insert(newest, doc.scene().clone());
                }
                last = Some(newest);
            }
            (Some(_), Some(l)) if f.edit == l => {
                let px = f.pixels().expect("pixels").to_vec();
                shell.shutdown();
                let _ = shell.wait();
                return (px, scenes[&l].clone(), f.frame);
            }
            _ => {}
        }
    }
    panic!("the run ended before the last edit was shown");
}

/// The canvas is removed and a new pixels layer of the same size added, in two edits that wait
/// behind a third and go as one update: the new layer is transparent in the frames, as in the
/// launcher's scene (and its `--verify` reference, and every GPU process started later), never
/// the removed canvas's pixels the GPU process held in that slot.
#[test]
fn a_new_pixels_layer_after_coalesced_edits_is_transparent() {
    let fresh = json!({"name": "fresh", "kind": "pixels", "width": 16, "height": 8,
        "rect": {"x": 40, "y": 20, "w": 16, "h": 8}});
    let (px, scene, frame) = coalesced(
        "attack21b-pixels-readd",
        vec![
            Transaction::new().remove("canvas"),
            Transaction::new().add_layer(fresh),
        ],
    );
    let bad = differing(&scene, frame, &px, &[]);
    let red = px
        .chunks_exact(4)
        .filter(|p| *p == [200, 0, 0, 255])
        .count();
    assert_eq!(
        bad, 0,
        "frame {frame}: {bad} pixels differ from the launcher's scene, {red} of them the removed layer's red"
    );
}

/// The canvas is resized and resized back, in two edits that go as one update: a size change
/// drops its pixels, in the frames as in the launcher's scene.
#[test]
fn a_pixels_layer_resized_and_back_in_coalesced_edits_is_transparent() {
    let (px, scene, frame) = coalesced(
        "attack21b-pixels-resize",
        vec![
            Transaction::new().set("canvas", json!({"width": 8})),
            Transaction::new().set("canvas", json!({"width": 16})),
        ],
    );
    let bad = differing(&scene, frame, &px, &[]);
    let red = px
        .chunks_exact(4)
        .filter(|p| *p == [200, 0, 0, 255])
        .count();
    assert_eq!(
        bad, 0,
        "frame {frame}: {bad} pixels differ from the launcher's scene, {red} of them the dropped red"
    );
}

/// Under `--verify`, a pixels layer never uploaded to is transparent in the reference as in the
/// frames, so an edit adding one is taken; an edit that leaves the last frame without a CPU
/// reference (a turned layer) is refused. Either way the honest run passes its check.
#[test]
fn edits_under_verify_keep_the_check_true() {
    use std::io::Write;
    for (name, line, taken) in [
        (
            "pixels",
            r#"{"add": [{"name": "c", "kind": "pixels", "width": 4, "height": 4, "rect": {"x": 10, "y": 10, "w": 4, "h": 4}}]}"#,
            true,
        ),
        (
            "turn",
            r#"{"set": {"back": {"transform": {"rotate": 10}}}}"#,
            false,
        ),
    ] {
        let dir = scratch(&format!("attack21b-verify-{name}"));
        let path = dir.join("scene.toml");
        std::fs::write(
            &path,
            "backdrop = \"#101018\"\n\n[[layers]]\nname = \"back\"\nkind = \"solid\"\ncolor = \"#203040\"\nrect = { x = 0, y = 0, w = \"100%\", h = \"100%\" }\n",
        )
        .expect("scene");
        let mut child = triptych_tests::triptych(&[
            "run",
            "--headless",
            "--control",
            "-",
            "--scene",
            &path.display().to_string(),
            "--size",
            "64x32",
            "--frames",
            "200",
            "--verify",
            "--out",
            &dir.join("out.png").display().to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("triptych");
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{line}").expect("line");
        drop(stdin);
        let o = triptych_tests::finish_within(child, triptych_tests::PROCESS_DEADLINE, "run");
        let err = String::from_utf8_lossy(&o.stderr);
        let said: Vec<&str> = err.lines().filter(|l| l.contains("VERIFY")).collect();
        assert!(
            o.status.success(),
            "{name}: an honest run ended {:?}: {said:?}",
            o.status
        );
        assert!(err.contains("verified"), "{name}: {err}");
        let out = String::from_utf8_lossy(&o.stdout);
        let answer: serde_json::Value =
            serde_json::from_str(out.lines().next().expect("an answer")).expect("JSON");
        assert_eq!(answer["ok"], json!(taken), "{name}: {answer}");
        if !taken {
            assert_eq!(answer["kind"], json!("limit"), "{name}: {answer}");
        }
    }
}
