//! An application embedding triptych: the library's shell, and the example application built
//! on it, run headless with real processes.

use std::time::Duration;

use triptych::shell::{Event, Role, ShellBuilder};
use triptych_tests::{bin_dir, finish_within, read_png, scratch};

#[test]
fn the_shell_presents_every_frame_with_its_pixels_and_recovers_a_killed_child() {
    let shell = ShellBuilder::new()
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
                if f.frame >= 20 && !killed {
                    shell.kill(Role::Gpu);
                    killed = true;
                }
                last = Some(f.frame);
            }
            Event::Crashed { role, cause } => crashes.push((role, cause)),
            Event::Fallback(_) => {}
            Event::Finished => break,
        }
    }
    assert_eq!(
        shell.dropped_events(),
        0,
        "every frame's event was read in time"
    );
    let summary = shell.wait().expect("the run's summary");
    assert_eq!(last, Some(59));
    assert_eq!(summary.last_frame, Some(59));
    assert!(
        crashes
            .iter()
            .any(|(r, c)| *r == Role::Gpu && c.contains("SIGKILL")),
        "the kill is an event: {crashes:?}"
    );
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
