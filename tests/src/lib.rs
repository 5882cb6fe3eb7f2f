//! Helpers for triptych's process-level tests: where the built binaries are, how to run the
//! launcher and read what it produced, and how to look at processes through `/proc`.
#![forbid(unsafe_code)]

pub mod fake_gpu;
pub mod sandbox;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The directory holding the workspace's binaries (`target/<profile>`), found from the running
/// test executable (`target/<profile>/deps/<test>`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// The path of workspace binary `name`; panics with a hint when it is not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is not built: run `cargo build --workspace` (or `cargo test --workspace`)",
        p.display()
    );
    p
}

/// A fresh scratch directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("triptych-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// `triptych` with `args`.
pub fn triptych(args: &[&str]) -> Command {
    let mut c = Command::new(bin("triptych"));
    c.args(args);
    c
}

/// Runs `cmd`, returning its output; panics on a spawn error.
pub fn output(mut cmd: Command) -> Output {
    cmd.output().expect("spawning triptych")
}

/// Stdout and stderr, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Reads a summary written with `--summary-json`.
pub fn summary(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Decodes an RGBA PNG into (width, height, pixels).
pub fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut dec = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("png header");
    let mut buf = vec![0; dec.output_buffer_size()];
    let info = dec.next_frame(&mut buf).expect("png data");
    assert_eq!(info.color_type, png::ColorType::Rgba, "PNG is not RGBA");
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Checks a composited frame against the scene's prediction at a grid of points plus every
/// layer's corners; returns the mismatches.
pub fn check_pixels(frame: u64, layers: u32, w: u32, h: u32, pixels: &[u8]) -> Vec<String> {
    let mut points = Vec::new();
    for gy in 0..9 {
        for gx in 0..9 {
            points.push((gx * (w - 1) / 8, gy * (h - 1) / 8));
        }
    }
    for l in 0..layers {
        let p = triptych_scene::placement(frame, l, layers, w, h);
        let (lw, lh) = triptych_scene::layer_size(l, w, h);
        for (dx, dy) in [
            (0i64, 0i64),
            (i64::from(lw) - 1, 0),
            (0, i64::from(lh) - 1),
            (i64::from(lw) - 1, i64::from(lh) - 1),
        ] {
            let (x, y) = (i64::from(p.x) + dx, i64::from(p.y) + dy);
            if x >= 0 && y >= 0 && x < i64::from(w) && y < i64::from(h) {
                points.push((x as u32, y as u32));
            }
        }
    }
    let mut bad = Vec::new();
    for (x, y) in points {
        let i = ((y * w + x) * 4) as usize;
        let want = triptych_scene::expected_pixel(frame, layers, w, h, x, y);
        if pixels[i..i + 4] != want {
            bad.push(format!(
                "({x}, {y}): got {:?}, expected {want:?}",
                &pixels[i..i + 4]
            ));
        }
    }
    bad
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // The state follows the parenthesised command name.
            let state = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
        Err(_) => false,
    }
}

/// Waits until `cond` holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// The pids of the children of `pid` with process name `comm`.
pub fn children_named(pid: u32, comm: &str) -> Vec<u32> {
    triptych_sys::proc::children(pid)
        .into_iter()
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|n| n.trim_end() == comm)
        })
        .collect()
}

// The hostile-child tests compare every attacked run with a clean one of the same shape.

/// The launcher's fd count at the end and peak memory of a clean run of the same shape.
pub fn clean_baseline() -> (u64, u64) {
    static BASE: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let dir = scratch("hostile-baseline");
        let json = dir.join("summary.json");
        let mut cmd = triptych(&["run"]);
        cmd.args(["--frames", "40", "--size", "96x64", "--buffers", "shm"])
            .arg("--out")
            .arg(dir.join("f.png"))
            .arg("--summary-json")
            .arg(&json);
        let o = output(cmd);
        assert!(o.status.success(), "{}", show(&o));
        let s = summary(&json);
        let fc = &s["fd_counts"];
        (
            fc["launcher_at_end"].as_u64().expect("fds"),
            fc["launcher_peak_rss_kib"].as_u64().expect("rss"),
        )
    })
}

/// The launcher ends the attacked run with the fds of a clean one and no more than 32 MiB
/// more memory at its peak.
pub fn at_baseline(attack: &str, s: &serde_json::Value) {
    let (fds, rss) = clean_baseline();
    let fc = &s["fd_counts"];
    assert_eq!(
        fc["launcher_at_end"].as_u64(),
        Some(fds),
        "{attack}: launcher fds: {fc}"
    );
    let peak = fc["launcher_peak_rss_kib"].as_u64().expect("rss");
    assert!(
        peak <= rss + 32 * 1024,
        "{attack}: launcher peak memory {peak} KiB against {rss} KiB in a clean run"
    );
}
