//! An application embedding triptych: the library's shell, and the example application built
//! on it, run headless with real processes.

use std::time::Duration;

use triptych::shell::{Event, Role, ShellBuilder};
use triptych_tests::{bin_dir, finish_within, read_png, scratch};

#[test]
fn the_shell_presents_every_frame_with_its_pixels_and_recovers_a_killed_child() {
    let shell = ShellBuilder::new()
        .binaries(triptych_tests::bin_dir())
        .size(96, 64)
        .layers(3)
        .frames(60)
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    let mut last = None;
    let mut killed = false;
    let mut crashes = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let e = match shell.receiver().recv_deadline(deadline) {
            Ok(e) => e,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => panic!("no event within 120 s"),
        };
        match e {
            Event::Presented(f) => {
                let px = f.pixels().expect("pixels were asked for");
                assert_eq!((f.width, f.height), (96, 64));
                let bad = triptych_tests::check_pixels(f.frame, 3, 96, 64, px);
                assert!(bad.is_empty(), "frame {}: {bad:?}", f.frame);
                // The built-in scene changes everywhere at every frame.
                let area: u64 = f.damage.iter().map(|r| r.area()).sum();
                assert_eq!(area, 96 * 64, "frame {}: damage {:?}", f.frame, f.damage);
                if f.frame >= 20 && !killed {
                    shell.kill(Role::Gpu);
                    killed = true;
                }
                last = Some(f.frame);
            }
            Event::Crashed { role, cause, .. } => crashes.push((role, cause)),
            Event::Fallback(_) | Event::Violation { .. } | Event::StandbyReady { .. } => {}
            Event::EditSuperseded { version } => panic!("edit {version} superseded, none made"),
            Event::Applied { version, frame } => {
                panic!("edit {version} shown at frame {frame}, none made")
            }
            Event::Finished => break,
            other => panic!("an event this test does not know: {other:?}"),
        }
    }
    assert_eq!(
        shell.dropped_events(),
        0,
        "every frame's event was read in time"
    );
    let summary = shell.wait().expect("the run's summary");
    assert_eq!(last, Some(59));
    assert_eq!(summary.frames.last, Some(59));
    assert!(
        crashes
            .iter()
            .any(|(r, c)| *r == Role::Gpu && c.contains("SIGKILL")),
        "the kill is an event: {crashes:?}"
    );
}

#[test]
fn a_sandbox_violation_reaches_the_application_as_an_event_and_the_run_recovers() {
    let exe = bin_dir().join("examples").join("embed_headless");
    let out = scratch("embed-violation");
    // The probe makes the first renderer (the adversary binary) try to open a file.
    let child = std::process::Command::new(&exe)
        .arg(&out)
        .arg("20")
        .env("TRIPTYCH_BIN_DIR", triptych_tests::adversary_bin(&out))
        .env(triptych_adversary::hook::PROBE_ENV, "renderer:open-file")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting the example");
    let o = finish_within(child, Duration::from_secs(120), "the embedding example");
    assert!(o.status.success(), "{}", triptych_tests::show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let violation = stdout
        .lines()
        .position(|l| l.starts_with("violation: renderer: openat("));
    let crash = stdout
        .lines()
        .position(|l| l.starts_with("renderer crashed (sandbox violation: openat("));
    assert!(
        violation.is_some() && crash.is_some() && violation < crash,
        "no violation event before the renderer's crash:\n{stdout}"
    );
    let (w, h, px) = read_png(&out.join("frame-00019.png"));
    let bad = triptych_tests::check_pixels(19, 3, w, h, &px);
    assert!(bad.is_empty(), "frame 19: {bad:?}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn the_embedding_example_writes_the_predicted_frames() {
    let exe = bin_dir().join("examples").join("embed_headless");
    assert!(
        exe.is_file(),
        "{} is not built: cargo build --workspace --all-targets",
        exe.display()
    );
    let out = scratch("embed-example");
    let child = std::process::Command::new(&exe)
        .arg(&out)
        .arg("20")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting the example");
    let o = finish_within(child, Duration::from_secs(120), "the embedding example");
    assert!(o.status.success(), "{}", triptych_tests::show(&o));
    for frame in [9u64, 19] {
        let (w, h, px) = read_png(&out.join(format!("frame-{frame:05}.png")));
        assert_eq!((w, h), (320, 240));
        let bad = triptych_tests::check_pixels(frame, 3, w, h, &px);
        assert!(bad.is_empty(), "frame {frame}: {bad:?}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Writes a `w` x `h` RGBA PNG of distinct, opaque texels.
fn write_png(path: &std::path::Path, w: u32, h: u32) {
    let file = std::fs::File::create(path).expect("creating the PNG");
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let px: Vec<u8> = (0..w * h)
        .flat_map(|i| [(i * 37 % 256) as u8, (i * 91 % 256) as u8, 200, 255])
        .collect();
    enc.write_header()
        .expect("PNG header")
        .write_image_data(&px)
        .expect("PNG data");
}

/// The next event within 120 s; `None` once the shell is gone.
fn next(shell: &triptych::shell::Shell, deadline: std::time::Instant) -> Option<Event> {
    match shell.receiver().recv_deadline(deadline) {
        Ok(e) => Some(e),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => None,
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => panic!("no event in time"),
    }
}

#[test]
fn a_new_scene_replaces_the_old_one_between_two_frames_and_a_bad_one_changes_nothing() {
    let dir = scratch("embed-set-scene");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[layers]]\nname = \"a\"\nkind = \"solid\"\ncolor = \"#ff0000\"\nopacity = 1.7\nrect = { x = 0, y = 0, w = 4, h = 4 }\n",
    )
    .expect("writing the bad scene");
    write_png(&dir.join("tile.png"), 5, 3);
    let good = dir.join("good.toml");
    // Two layers where the built-in scene had three, an image among them, another backdrop.
    std::fs::write(
        &good,
        r##"backdrop = "#203040"

[[layers]]
name = "board"
kind = "checker"
cell = 6
colors = ["#ff8000", "#0080ff80"]
rect = { x = 4, y = 2, w = "50%", h = 40 }

[[layers]]
name = "tile"
kind = "image"
path = "tile.png"
rect = { x = 40, y = 20, w = 50, h = 30 }
opacity = 0.75
"##,
    )
    .expect("writing the good scene");
    let loaded = triptych::scene::load(&good).expect("the good scene loads");
    let images: Vec<_> = loaded.decoded.iter().map(|d| d.as_deref()).collect();
    let (w, h) = (96, 64);
    let shell = ShellBuilder::new()
        .binaries(triptych_tests::bin_dir())
        .size(w, h)
        .layers(3)
        .frames(90)
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let (mut asked, mut first_new, mut last) = (false, None, None);
    let mut crashes = Vec::new();
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::Presented(f) => {
                let px = f.pixels().expect("pixels were asked for");
                assert_eq!((f.width, f.height), (w, h));
                match f.scene {
                    0 => {
                        assert!(
                            first_new.is_none(),
                            "frame {}: the old scene after the new",
                            f.frame
                        );
                        let bad = triptych_tests::check_pixels(f.frame, 3, w, h, px);
                        assert!(bad.is_empty(), "frame {} (old scene): {bad:?}", f.frame);
                    }
                    1 => {
                        first_new.get_or_insert(f.frame);
                        let want = triptych_scene::file::reference_frame(
                            &loaded.scene,
                            f.frame,
                            w,
                            h,
                            &images,
                        )
                        .expect("the scene is exactly predictable");
                        assert!(
                            px == want.as_slice(),
                            "frame {} is not the new scene's",
                            f.frame
                        );
                    }
                    n => panic!("scene {n}: only one change was asked for"),
                }
                if f.frame >= 20 && !asked {
                    let e = shell.set_scene(&bad).expect_err("a bad scene is refused");
                    let msg = format!("{e:#}");
                    assert!(
                        msg.contains("bad.toml:5:") && msg.contains("layers[0].opacity"),
                        "the parser's located error: {msg}"
                    );
                    shell.set_scene(&good).expect("the good scene is taken");
                    asked = true;
                }
                last = Some(f.frame);
            }
            Event::Crashed { role, cause, .. } => crashes.push(format!("{role}: {cause}")),
            Event::Fallback(_) | Event::Violation { .. } | Event::StandbyReady { .. } => {}
            Event::EditSuperseded { version } => panic!("edit {version} superseded, none made"),
            Event::Applied { version, frame } => {
                panic!("edit {version} shown at frame {frame}, none made")
            }
            Event::Finished => break,
            other => panic!("an event this test does not know: {other:?}"),
        }
    }
    let summary = shell.wait().expect("the run's summary");
    assert!(
        crashes.is_empty(),
        "a scene change is no crash: {crashes:?}"
    );
    let first_new = first_new.expect("frames of the new scene were presented");
    assert!(
        first_new > 20,
        "the new scene starts after the frame it was asked at"
    );
    // Frame events are dropped while the application falls behind (this test checks every
    // pixel, on a loaded machine too): the run's own count says every frame was presented.
    assert!(last.is_some_and(|l| l <= 89), "{last:?}");
    assert_eq!(summary.frames.last, Some(89));
    assert_eq!(summary.frames.scene_changes, 1);
    assert_eq!(summary.frames.layers, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_resize_brings_frames_of_the_new_size_and_never_one_of_the_old_after_it() {
    let (w, h) = (96u32, 64u32);
    let shell = ShellBuilder::new()
        .binaries(triptych_tests::bin_dir())
        .size(w, h)
        .max_size(160, 120)
        .layers(3)
        .frames(90)
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let sizes = [(w, h), (128, 96), (160, 120)];
    let (mut generation, mut seen) = (0u32, [0u32; 3]);
    let mut last = None;
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::Presented(f) => {
                let g = f.generation as usize;
                assert!(
                    f.generation >= generation,
                    "frame {}: generation {g} after {generation}",
                    f.frame
                );
                generation = f.generation;
                let want = *sizes.get(g).expect("two resizes only");
                assert_eq!((f.width, f.height), want, "frame {}", f.frame);
                let px = f.pixels().expect("pixels were asked for");
                assert_eq!(px.len(), (want.0 * want.1 * 4) as usize);
                let bad = triptych_tests::check_pixels(f.frame, 3, want.0, want.1, px);
                assert!(bad.is_empty(), "frame {} at {want:?}: {bad:?}", f.frame);
                seen[g] += 1;
                if f.frame >= 15 && g == 0 && seen[1] == 0 {
                    shell.resize(128, 96);
                }
                // Beyond the largest size: clamped to it.
                if f.frame >= 45 && g == 1 && seen[2] == 0 {
                    shell.resize(1000, 1000);
                }
                last = Some(f.frame);
            }
            Event::Crashed { role, cause, .. } => panic!("{role} crashed: {cause}"),
            Event::Fallback(_) | Event::Violation { .. } | Event::StandbyReady { .. } => {}
            Event::EditSuperseded { version } => panic!("edit {version} superseded, none made"),
            Event::Applied { version, frame } => {
                panic!("edit {version} shown at frame {frame}, none made")
            }
            Event::Finished => break,
            other => panic!("an event this test does not know: {other:?}"),
        }
    }
    let summary = shell.wait().expect("the run's summary");
    assert!(
        seen.iter().all(|n| *n > 0),
        "frames of every size: {seen:?}"
    );
    assert_eq!(summary.frames.resizes, 2);
    assert_eq!((summary.frames.width, summary.frames.height), (160, 120));
    assert_eq!(last, Some(89));
    assert_eq!(summary.frames.last, Some(89));
}

#[test]
fn the_window_example_presents_into_its_own_window_and_ends_on_its_quit_key() {
    use triptych_tests::x11::{press, screenshot, window_id, Lines, Xvfb};
    let exe = bin_dir().join("examples").join("embed_window");
    assert!(
        exe.is_file(),
        "{} is not built: cargo build --examples -p triptych",
        exe.display()
    );
    let x = Xvfb::start(640, 480);
    let conn = x.connect();
    let mut child = std::process::Command::new(&exe)
        .arg("40")
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("TRIPTYCH_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting the example");
    let mut lines = Lines::new(child.stderr.take().expect("stderr"));
    let open = lines.wait_for("window open", Duration::from_secs(30));
    assert!(open.contains("MIT-SHM"), "the zero-copy path: {open}");
    let xid = window_id(&open);
    lines.wait_for("the last frame is on screen", Duration::from_secs(60));
    let (w, h, px) = screenshot(&conn, xid);
    assert_eq!(
        (w, h),
        (320, 240),
        "the application's window keeps its size"
    );
    let mut bad = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 4) as usize;
            let want = triptych_scene::expected_pixel(39, 3, w, h, x, y);
            if px[i..i + 3] != want[..3] {
                bad.push((x, y));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} pixels of the window differ from frame 39's composite, first {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    // The application forwards its keys: `q` ends the shell's run, and with it the loop.
    press(&conn, xid, u32::from(b'q'));
    let o = finish_within(child, Duration::from_secs(30), "the window example");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{}\n{}",
        triptych_tests::show(&o),
        lines.seen.join("\n")
    );
    assert!(
        stdout.contains("last frame 39 presented, 320x240, scene 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("40 frames presented, last Some(39), 0 crashes, X11 MIT-SHM"),
        "{stdout}"
    );
}

#[test]
fn a_shell_without_its_children_is_refused_with_an_error_the_application_can_match() {
    let empty = scratch("embed-no-children");
    let err = ShellBuilder::new()
        .binaries(&empty)
        .spawn()
        .expect_err("no children there");
    match &err {
        triptych::shell::Error::Binaries(msg) => assert!(
            msg.contains("triptych-gpu") && msg.contains(&empty.display().to_string()),
            "{msg}"
        ),
        other => panic!("not a Binaries error: {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&empty);
}
