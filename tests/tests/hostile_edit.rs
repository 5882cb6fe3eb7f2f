//! Scene edits against a hostile GPU process (the adversary binaries, sandboxed as the
//! product's): what the launcher answers about an edit (`Event::Applied`,
//! `PresentedFrame::edit`, `--control` answers, `--verify`) against what the frame shows.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use triptych::shell::{Event, RunConfig, ShellBuilder, Transaction};
use triptych_scene::file::{reference_frame, Document};
use triptych_tests::edit::{differing, next, H, LABEL_SCENE, W};
use triptych_tests::*;

fn setup(test: &str, attack: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = scratch(test);
    let path = dir.join("scene.toml");
    std::fs::write(&path, LABEL_SCENE).expect("writing the scene");
    let bin = adversary_bin(&dir);
    attack_every(&bin, "triptych-gpu", attack);
    (path, bin)
}

/// A GPU process whose first frame of each edit has its fences signalled just past the
/// renderer's wait (nothing else differs): the renderer keeps the previous buffers and presents
/// the frame, which shows the scene before the edit. That frame answers no edit and is labelled
/// with the edit shown before it.
#[test]
fn a_frame_that_kept_old_buffers_answers_no_edit() {
    let (path, bin) = setup("hostile-edit-slow-fence", "edit-slow-fence");
    let mut config = RunConfig::default();
    config.fence_timeout_ms = 300;
    let shell = ShellBuilder::with_config(config)
        .binaries(&bin)
        .scene(&path)
        .size(W, H)
        .frames(100_000)
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    let mut doc = Document::parse(LABEL_SCENE, &path).expect("parses");
    let mut scenes = BTreeMap::from([(0u64, doc.scene().clone())]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut seen, mut sent) = (0u64, 0u64);
    let mut applied = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut crashes = Vec::new();
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::Presented(f) => {
                seen += 1;
                let px = f.pixels().expect("pixels");
                let bad = differing(&scenes[&f.edit], f.frame, px, &[]);
                if bad > 0 {
                    let before = f
                        .edit
                        .checked_sub(1)
                        .map(|v| differing(&scenes[&v], f.frame, px, &[]));
                    wrong.push((f.frame, f.edit, bad, before));
                }
                if seen % 5 == 0 && sent < 4 {
                    sent += 1;
                    let tx =
                        Transaction::new().set("label", json!({"text": format!("edit {sent}")}));
                    let v = shell.edit(&tx).expect("taken");
                    doc = doc.apply(&tx).expect("applies");
                    scenes.insert(v, doc.scene().clone());
                } else if sent == 4 && f.edit == 4 && seen > 40 {
                    shell.shutdown();
                }
            }
            Event::Applied { version, frame } => {
                applied.insert(version, frame);
            }
            Event::Crashed { role, cause, .. } => crashes.push(format!("{role}: {cause}")),
            Event::Finished => break,
            _ => {}
        }
    }
    let s = shell.wait().expect("summary");
    eprintln!("applied: {applied:?}");
    eprintln!("crashes: {crashes:?}");
    eprintln!("fence timeouts (renderer): {}", s.renderer.fence_timeouts);
    eprintln!("refuted fence timeouts: {}", s.trust.refuted_fence_timeouts);
    for (frame, edit, bad, before) in &wrong {
        eprintln!(
            "frame {frame}: labelled edit {edit}, {bad} pixels differ from it; from the edit before: {before:?}"
        );
    }
    assert!(
        wrong.is_empty(),
        "frames presented as showing an edit they do not show (Applied names them): {wrong:?}"
    );
}

/// A GPU process that draws every edit but names in every frame the version it started on: once
/// it has answered a ping sent after an edit, a frame naming less is its proven lie, and it is
/// replaced; the edits are answered by its successors, started on the edited scene.
#[test]
fn a_gpu_process_that_never_names_the_edit_is_killed_for_it() {
    let (path, bin) = setup("hostile-edit-stuck", "edit-version-stuck");
    let shell = ShellBuilder::new()
        .binaries(&bin)
        .scene(&path)
        .size(W, H)
        .frames(100_000)
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    let mut doc = Document::parse(LABEL_SCENE, &path).expect("parses");
    let mut scenes = BTreeMap::from([(0u64, doc.scene().clone())]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut seen, mut sent) = (0u64, 0u64);
    let (mut applied, mut crashes, mut mislabelled) = (0, 0, 0);
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::Presented(f) => {
                seen += 1;
                if differing(&scenes[&f.edit], f.frame, f.pixels().expect("pixels"), &[]) > 0 {
                    mislabelled += 1;
                }
                if seen % 10 == 0 && sent < 5 {
                    sent += 1;
                    let tx = Transaction::new().set("label", json!({"text": format!("e{sent}")}));
                    let v = shell.edit(&tx).expect("taken");
                    doc = doc.apply(&tx).expect("applies");
                    scenes.insert(v, doc.scene().clone());
                } else if seen == 200 {
                    shell.shutdown();
                }
            }
            Event::Applied { .. } => applied += 1,
            Event::Crashed { .. } => crashes += 1,
            Event::Finished => break,
            _ => {}
        }
    }
    let s = shell.wait().expect("summary");
    eprintln!(
        "edits sent {sent}, answered {applied}, GPU crashes {crashes}, frames labelled with an edit they do not show {mislabelled}, proven lies {}",
        s.trust.proven_gpu_lies
    );
    assert!(
        crashes > 0 && s.trust.proven_gpu_lies > 0,
        "the stuck GPU process was never blamed"
    );
    assert!(applied > 0, "no edit was answered");
}

/// A GPU process naming one layer per frame for a while (legal since frames name the layers
/// their scene has): the renderer gives back each layer left out; it must never be blamed for
/// a release, nor the GPU process for anything.
#[test]
fn frames_naming_one_layer_each_cost_nobody() {
    let dir = scratch("hostile-edit-rotate");
    let json = dir.join("summary.json");
    let cmd = hostile_command(
        "TRIPTYCH_HOSTILE_GPU",
        "layers-rotate",
        200,
        &["--pool", "16"],
        &dir,
    );
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&json);
    assert_eq!(s["frames"]["last"], 199, "{s}");
    assert_eq!(
        s["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
}

/// An honest but slow GPU process (its last frame's fences signal 2.5 s late, inside the fence
/// wait): an edit that arrives meanwhile is never drawn, so the last frame is the scene before
/// it; `--verify` compares it with that scene's reference, not the edited one's, and the edit
/// is answered as never shown.
#[test]
fn verify_compares_the_last_frame_with_the_scene_it_shows() {
    let (path, bin) = setup("hostile-edit-verify", "slow-last-frame");
    let out = path.with_file_name("out.png");
    let mut child = triptych(&[
        "run",
        "--headless",
        "--control",
        "-",
        "--scene",
        &path.display().to_string(),
        "--size",
        &format!("{W}x{H}"),
        "--frames",
        "60",
        "--fence-timeout-ms",
        "10000",
        "--hang-timeout-ms",
        "30000",
        "--verify",
        "--out",
        &out.display().to_string(),
    ])
    .env("TRIPTYCH_BIN_DIR", &bin)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawning triptych");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    writeln!(stdin, r#"{{"set": {{"label": {{"text": "one"}}}}}}"#).expect("line 1");
    let mut first = String::new();
    stdout.read_line(&mut first).expect("the first answer");
    // Frames are unpaced: by now the GPU process is waiting on its last frame's fences.
    std::thread::sleep(Duration::from_millis(800));
    writeln!(stdin, r#"{{"set": {{"label": {{"text": "two"}}}}}}"#).expect("line 2");
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("the other answers");
    let o = finish_within(child, PROCESS_DEADLINE, "triptych run --control -");
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("answers:\n{first}{rest}");
    let tail: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("verif") || l.contains("differs"))
        .collect();
    eprintln!("status {:?}; {tail:?}", o.status);
    let answers: Vec<Value> = format!("{first}{rest}")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(answers[0]["ok"], json!(true));
    if answers.get(1).is_some_and(|a| a["ok"] == json!(false)) {
        // Edit 2 was never on screen (the answer says so): the last frame is edit 1's.
        let doc = Document::parse(LABEL_SCENE, &path).expect("parses");
        let one = doc
            .apply(&Transaction::new().set("label", json!({"text": "one"})))
            .expect("applies");
        let (_, _, px) = read_png(&out);
        let want = reference_frame(one.scene(), 59, W, H, &[]).expect("predictable");
        assert!(px == want, "the PNG is not edit 1's frame");
        assert!(
            o.status.success(),
            "--verify failed an honest run, checking edit 2 which was never drawn: {tail:?}"
        );
    }
}

/// An application that edits in a burst (no hostile child at all): the edits are coalesced, one
/// update on its way at a time, so the honest GPU process's command queue never fills and it
/// is never blamed; the last edit is answered.
#[test]
fn a_burst_of_edits_costs_an_honest_gpu_process_nothing() {
    let dir = scratch("edit-burst");
    let path = dir.join("scene.toml");
    std::fs::write(&path, LABEL_SCENE).expect("writing the scene");
    let shell = ShellBuilder::new()
        .binaries(bin_dir())
        .scene(&path)
        .size(W, H)
        .frames(100_000)
        .spawn()
        .expect("spawning a shell");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut crashes = Vec::new();
    let mut burst = false;
    let mut applied = 0u64;
    let mut last = None;
    let mut after = 0;
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::Presented(_) if !burst => {
                burst = true;
                let t = Instant::now();
                for i in 0..1000 {
                    let tx = Transaction::new().set("label", json!({"text": format!("{i}")}));
                    shell.edit(&tx).expect("taken");
                }
                eprintln!("1000 edits in {:?}", t.elapsed());
            }
            Event::Presented(_) => {
                after += 1;
                if after == 300 {
                    shell.shutdown();
                }
            }
            Event::Applied { version, .. } => {
                applied += 1;
                last = Some(version);
            }
            Event::Crashed { role, cause, .. } => crashes.push(format!("{role}: {cause}")),
            Event::Finished => break,
            _ => {}
        }
    }
    let s = shell.wait().expect("summary");
    eprintln!(
        "applied {applied}; crashes {crashes:?}; proven lies {}",
        s.trust.proven_gpu_lies
    );
    assert!(
        crashes.is_empty(),
        "an honest child was blamed for the application's edits: {crashes:?}"
    );
    assert_eq!(last, Some(1000), "the last edit was answered");
}

/// An edit overtaken by `Shell::set_scene` is never drawn: it is answered as superseded, never
/// as shown.
#[test]
fn an_edit_overtaken_by_a_new_scene_is_answered_as_superseded() {
    let dir = scratch("edit-then-set-scene");
    let path = dir.join("scene.toml");
    std::fs::write(&path, LABEL_SCENE).expect("writing the scene");
    let other = dir.join("other.toml");
    std::fs::write(
        &other,
        "backdrop = \"#000000\"\n\n[[layers]]\nname = \"only\"\nkind = \"solid\"\ncolor = \"#00ff00\"\nrect = { x = 0, y = 0, w = 10, h = 10 }\n",
    )
    .expect("writing the other scene");
    let shell = ShellBuilder::new()
        .binaries(bin_dir())
        .scene(&path)
        .size(W, H)
        .frames(100_000)
        .spawn()
        .expect("spawning a shell");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done = false;
    let mut events = Vec::new();
    let mut after = 0;
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::Presented(f) if !done => {
                done = true;
                let v = shell
                    .edit(&Transaction::new().set("label", json!({"text": "never drawn"})))
                    .expect("taken");
                shell.set_scene(&other).expect("switching");
                events.push(format!("edit {v} sent after frame {}", f.frame));
            }
            Event::Presented(f) => {
                if f.scene == 1 && after < 2 {
                    events.push(format!(
                        "frame {} of scene {} says edit {}",
                        f.frame, f.scene, f.edit
                    ));
                }
                if f.scene == 0 && f.edit == 1 {
                    events.push(format!("frame {} of scene 0 shows edit 1", f.frame));
                }
                after += 1;
                if after == 50 {
                    shell.shutdown();
                }
            }
            Event::Applied { version, frame } => {
                events.push(format!("Applied {{ version: {version}, frame: {frame} }}"))
            }
            Event::EditSuperseded { version } => events.push(format!("Superseded {version}")),
            Event::Finished => break,
            _ => {}
        }
    }
    shell.wait().expect("summary");
    eprintln!("{events:#?}");
    assert!(
        !events.iter().any(|e| e.starts_with("Applied"))
            || events.iter().any(|e| e.contains("of scene 0 shows edit 1")),
        "an edit never drawn was answered as shown: {events:?}"
    );
    assert!(
        events.iter().any(|e| e == "Superseded 1"),
        "the edit was never answered as superseded: {events:?}"
    );
}
