//! Item 13: a property change, from the call that makes it to the first presented frame that
//! shows it, against the frame time of the same run.
//!
//! The run is a real `triptych run --headless --control - --scene FILE` child (a backdrop, a
//! text label and a strip as large scrolling one pixel a frame, at 640x480, so every frame
//! redraws what a change of the label redraws): the bench
//! writes one transaction (`{"set": {"label": {"text": ...}}}`) to its standard input and times
//! until its answer, `{"ok": true, "frame": N}`, is read from its standard output. The launcher
//! answers when the renderer's `Presented` for the first frame naming the edit reaches it, so
//! the figure is the call to the frame on the output, plus one line each way through a pipe.
//! Each change waits for the answer of the one before and 5 ms more, plus a part of a 60 Hz
//! period that differs from change to change (so paced changes fall at every moment of a frame),
//! so no two are coalesced. Then `SIGINT` ends the run, which must exit 0; the baseline is one frame plus the
//! handoff of the same run: its frame time (1 / fps) plus its handoff latency at p50, both from
//! its summary.
//!
//! Item 13 runs its frames unpaced: the GPU process is nearly always drawing a frame when a
//! change comes, and the change waits for that frame before the one that shows it. Item 13b
//! paces them to 60 a second (`--fps 60`), as a display paces a window's, which is where an
//! application's changes are seen: the GPU process waits for its next frame, and a change made
//! meanwhile is in it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::stats::Figure;

/// The output size.
pub const SIZE: &str = "640x480";

/// The scene: a still backdrop, the label the changes edit, and a strip of the label's size
/// that scrolls, so that every frame redraws as much as a change does and the run's frame time
/// is that of a frame with work in it.
const SCENE: &str = r##"backdrop = "#101018"

[[layers]]
name = "back"
kind = "solid"
color = "#203040"
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "label"
kind = "text"
text = "0"
size = 24
rect = { x = 20, y = 20, w = 240, h = 40 }

[[layers]]
name = "ticker"
kind = "checker"
cell = 8
colors = ["#ffffff", "#000000"]
rect = { x = 20, y = 100, w = 240, h = 40 }
animation.scroll = { dx = 240, dy = 0, period = 4.0 }
"##;

/// What a run measured.
#[derive(Debug)]
pub struct Measured {
    /// The latency of each change.
    pub latency: Figure,
    /// The run's frame time, 1 / fps.
    pub frame_ns: f64,
    /// The run's handoff latency at p50 (the summary's `latency.handoff`).
    pub handoff_ns: f64,
    /// The frames it presented.
    pub frames: u64,
}

/// A child killed if it is still running when dropped.
struct Run(Child);

impl Drop for Run {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `changes` timed changes (after `warmup` untimed ones) in one run, its frames unpaced
/// or paced to `fps` a second (`--fps`, as a display paces a window's).
pub fn measure(
    dir: &Path,
    warmup: u64,
    changes: u64,
    fps: Option<u32>,
) -> anyhow::Result<Measured> {
    let exe = crate::triptych_exe()?;
    let scene = dir.join("edit-latency.toml");
    std::fs::write(&scene, SCENE).with_context(|| format!("writing {}", scene.display()))?;
    let json = dir.join("edit-latency.json");
    let mut run = Run(Command::new(&exe)
        .args(["run", "--headless", "--control", "-", "--size", SIZE])
        .args(["--frames", "100000000", "--standby", "off"])
        .args(fps.map(|f| format!("--fps={f}")))
        .arg("--scene")
        .arg(&scene)
        .arg("--summary-json")
        .arg(&json)
        .arg("--out")
        .arg(dir.join("edit-latency.png"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} run --control -", exe.display()))?);
    let mut stdin = run.0.stdin.take().context("the run's standard input")?;
    let mut stdout = BufReader::new(run.0.stdout.take().context("the run's standard output")?);
    let mut samples = Vec::with_capacity(changes as usize);
    let mut line = String::new();
    for i in 0..warmup + changes {
        // 5 ms, and a part of a 60 Hz period that differs from one change to the next, so that
        // paced changes come at every moment of a frame, not always as long after the last.
        let spread = Duration::from_micros((i * 6043) % 16_667);
        std::thread::sleep(Duration::from_millis(5) + spread);
        let t0 = Instant::now();
        writeln!(stdin, r#"{{"set": {{"label": {{"text": "change {i}"}}}}}}"#)
            .and_then(|()| stdin.flush())
            .context("writing a change to the run")?;
        line.clear();
        stdout
            .read_line(&mut line)
            .context("reading the run's answer")?;
        let elapsed = t0.elapsed();
        let answer: Value = serde_json::from_str(&line)
            .with_context(|| format!("the run's answer {line:?} is not JSON"))?;
        if answer["ok"] != Value::Bool(true) {
            bail!("change {i} was refused: {line}");
        }
        if i >= warmup {
            samples.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        }
    }
    drop(stdin);
    let pid = nix::unistd::Pid::from_raw(
        i32::try_from(run.0.id()).context("the run's pid does not fit a pid_t")?,
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT)
        .context("interrupting the run")?;
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = run.0.try_wait().context("waiting for the run")? {
            break s;
        }
        if Instant::now() >= end {
            bail!("the run did not exit within 30 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        bail!("the run exited with {status} after SIGINT");
    }
    let text = std::fs::read_to_string(&json)
        .with_context(|| format!("reading the run summary {}", json.display()))?;
    let v: Value = serde_json::from_str(&text).context("parsing the run summary")?;
    let fps = v["frames"]["fps"]
        .as_f64()
        .context("the summary's frames.fps")?;
    let frames = v["frames"]["count"]
        .as_u64()
        .context("the summary's frames.count")?;
    if fps <= 0.0 {
        bail!("the run presented no frames per second");
    }
    let handoff_us = v["latency"]["handoff"]["p50_us"]
        .as_f64()
        .context("the summary's latency.handoff.p50_us")?;
    Ok(Measured {
        latency: Figure::of(samples, 1),
        frame_ns: 1e9 / fps,
        handoff_ns: handoff_us * 1e3,
        frames,
    })
}
