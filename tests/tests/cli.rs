//! The command line for people: `--help` shows real invocations and the exit statuses, a bad
//! command line exits 2, and `doctor` says how `run` will present, having asked the display
//! server (a real Xvfb, a real weston) or found none.

use triptych_tests::x11::{Weston, Xvfb};
use triptych_tests::{output, show, triptych};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn help_shows_examples_and_exit_statuses() {
    for args in [&["--help"][..], &["run", "--help"]] {
        let o = output(triptych(args));
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let help = stdout(&o);
        assert!(help.contains("Examples:"), "{args:?}: {help}");
        assert!(help.contains("triptych run --headless"), "{args:?}: {help}");
        assert!(help.contains("trace-summary run.json"), "{args:?}: {help}");
        for status in ["  0  ", "  1  ", "  2  ", "  3  run --verify"] {
            assert!(help.contains(status), "{args:?}: no `{status}` in {help}");
        }
    }
    let o = output(triptych(&["-h"]));
    assert!(stdout(&o).contains("triptych doctor"), "{}", show(&o));
}

#[test]
fn a_bad_command_line_exits_2() {
    for args in [
        &["run", "--frames", "0"][..],
        &["run", "--no-such-flag"],
        &["frobnicate"],
    ] {
        let o = output(triptych(args));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
    }
}

#[test]
fn a_run_whose_buffers_the_renderer_could_not_map_is_refused_at_start() {
    // Three layers in pools of 16 at 8192x8192 could need 12 GiB of mappings in the renderer,
    // more than the relay allows a GPU process: said at once, before any child starts.
    let o = output(triptych(&[
        "run",
        "--headless",
        "--frames",
        "1",
        "--size",
        "8192x8192",
        "--pool",
        "16",
    ]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("could need the renderer to map 12884901888 bytes"),
        "{err}"
    );
    assert!(!err.contains("starting a GPU process"), "{err}");
}

/// The `display` line of `doctor`'s text report, and the `display` object of its JSON; `code`
/// is the exit status both must have (1 where the display makes a run fail).
fn doctor(env: &[(&str, &str)], code: i32) -> (String, serde_json::Value) {
    let run = |json: bool| {
        let mut cmd = triptych(if json {
            &["doctor", "--json"][..]
        } else {
            &["doctor"]
        });
        cmd.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let o = output(cmd);
        assert_eq!(o.status.code(), Some(code), "{}", show(&o));
        o
    };
    let o = run(false);
    let text = stdout(&o);
    let line = text
        .lines()
        .find(|l| l.contains("] display "))
        .unwrap_or_else(|| panic!("no display line:\n{text}"))
        .to_owned();
    let o = run(true);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("doctor --json is not JSON ({e}): {}", show(&o)));
    (line, v["display"].clone())
}

#[test]
fn doctor_without_a_display_says_headless() {
    let (line, json) = doctor(&[], 0);
    assert!(line.contains("[ ok ]"), "{line}");
    assert!(
        line.contains("no display") && line.contains("headless"),
        "{line}"
    );
    assert_eq!(json["mode"], "headless", "{json}");
    assert_eq!(json["server"], "none", "{json}");
}

#[test]
fn doctor_on_xvfb_names_mit_shm() {
    let x = Xvfb::start(640, 480);
    let (line, json) = doctor(&[("DISPLAY", &x.display)], 0);
    assert!(line.contains("[ ok ]"), "{line}");
    assert!(line.contains(&format!("DISPLAY={}", x.display)), "{line}");
    assert!(
        line.contains("a window") && line.contains("MIT-SHM"),
        "{line}"
    );
    assert!(line.contains("zero-copy"), "{line}");
    assert_eq!(json["mode"], "window", "{json}");
    assert_eq!(json["server"], "x11", "{json}");
    assert_eq!(json["zero_copy"], true, "{json}");
}

#[test]
fn doctor_on_weston_names_wl_shm() {
    let w = Weston::start(320, 240);
    let runtime = w.runtime_dir.to_string_lossy().into_owned();
    let (line, json) = doctor(
        &[
            ("XDG_RUNTIME_DIR", &runtime),
            ("WAYLAND_DISPLAY", &w.socket),
        ],
        0,
    );
    assert!(line.contains("[ ok ]"), "{line}");
    assert!(
        line.contains("a window") && line.contains("wl_shm"),
        "{line}"
    );
    assert_eq!(json["server"], "wayland", "{json}");
    assert_eq!(json["zero_copy"], true, "{json}");
}

#[test]
fn doctor_with_an_unreachable_display_says_run_fails() {
    // A display number no server listens on: a run would fail at start, so doctor fails.
    let (line, json) = doctor(&[("DISPLAY", ":4093")], 1);
    assert!(
        line.contains("[FAIL]") && line.contains("--headless"),
        "{line}"
    );
    assert_eq!(json["mode"], "fails", "{json}");
}
