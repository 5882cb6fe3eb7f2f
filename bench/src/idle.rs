//! Item 12: what an idle window costs: the CPU time of a windowed `triptych run` showing a still
//! scene, launcher and children together, against the wall time it is measured over.
//!
//! # Sequence
//!
//! 1. The display is `$DISPLAY` (X11); where it is unset or its server cannot be reached the
//!    item is not measured, with the reason ([`NoDisplay`]), which is not a failure of the bench.
//! 2. `triptych run --window --scene STILL --frames 1000000` starts on it, with
//!    `WAYLAND_DISPLAY` removed so the window is an X11 one; [`STILL`] is item 11's scene
//!    without its animation, so after the first frame nothing asks for another (a still scene
//!    is rendered only on change, `session/display.rs`).
//! 3. After its log says "window open", one more second for the first frame to reach the
//!    screen; then the CPU time of the launcher and every descendant is read twice, the measured
//!    span apart.
//! 4. `SIGINT` (a clean shutdown, the launcher's `signals`); the run must exit 0, and its summary must
//!    have presented a frame.
//!
//! # What is read
//!
//! The process tree is found by scanning `/proc/*/stat` for parent pids, from the launcher
//! down. For each process, `/proc/PID/stat`'s `utime` + `stime` (fields 14 and 15, in clock
//! ticks, every thread of the process, live or exited) and, summed over `/proc/PID/task/*/`,
//! `schedstat`'s first field (nanoseconds on a CPU, per live thread). The figure is the
//! `schedstat` delta where the kernel provides it: an idle window uses far less than a clock
//! tick (10 ms) per second, below what `stat` can resolve over a few seconds. The `stat` delta
//! is reported next to it, and the figure falls back to it where `schedstat` is missing. A tree
//! that changed between the two reads (a process started or gone) is reported as such.
//! See `proc(5)` (`/proc/pid/stat`, `/proc/pid/schedstat`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::runs::number;

/// The scene of item 12: item 11's layers, still.
pub const STILL: &str = r##"# triptych-bench, item 12: nothing moves.
backdrop = "#101018"

[[layers]]
name = "background"
kind = "checker"
rect = { x = 0, y = 0, w = "100%", h = "100%" }
cell = 32
colors = ["#c8c8d0", "#404048"]

[[layers]]
name = "panel"
kind = "solid"
rect = { x = "25%", y = "25%", w = "50%", h = "50%" }
color = "#3050a0"

[[layers]]
name = "widget"
kind = "checker"
rect = { x = 280, y = 200, w = 64, h = 64 }
cell = 8
colors = ["#ff4060", "#ffe040"]
"##;

/// Size of the idle window.
pub const SIZE: &str = "640x480";

/// Why the item cannot be measured here (not a failure of the bench).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoDisplay(pub String);

/// What the idle window used.
#[derive(Clone, Debug)]
pub struct Measured {
    /// CPU nanoseconds of the tree over the span (`schedstat`, else `stat`).
    pub cpu_ns: u64,
    /// The same from `stat`'s clock ticks.
    pub stat_cpu_ns: u64,
    /// Whether `cpu_ns` came from `schedstat`.
    pub schedstat: bool,
    /// The span, nanoseconds of wall time.
    pub wall_ns: u64,
    /// Processes in the tree (launcher included).
    pub processes: usize,
    /// Whether the tree was the same at both reads.
    pub same_tree: bool,
    /// CPU nanoseconds over the span per process, by its name (`comm`: `triptych`,
    /// `triptych-gpu`, `triptych-rend`...), from the same source as `cpu_ns`.
    pub by_process: BTreeMap<String, u64>,
    /// Frames the run presented (from its summary).
    pub frames: u64,
    /// `$DISPLAY`.
    pub display: String,
}

/// A process tree's CPU time at one moment.
#[derive(Clone, Debug, Default)]
struct Sample {
    /// `utime + stime` per process, clock ticks.
    ticks: BTreeMap<u32, u64>,
    /// `schedstat` run time per thread (pid, tid), nanoseconds; empty without schedstat.
    run_ns: BTreeMap<(u32, u32), u64>,
    /// Each process's name.
    names: BTreeMap<u32, String>,
}

/// Fields after the command name of a `/proc/PID/stat` line (the name may hold spaces and
/// parentheses, so it ends at the last `)`): field 3 (`state`) first.
fn stat_fields(text: &str) -> Option<Vec<&str>> {
    let (_, rest) = text.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

/// The launcher and every descendant of it, by scanning `/proc/*/stat`.
fn tree(root: u32) -> anyhow::Result<BTreeSet<u32>> {
    let mut parent = BTreeMap::new();
    for e in std::fs::read_dir("/proc").context("reading /proc")? {
        let Ok(e) = e else { continue };
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // A process may exit while the scan runs.
        let Ok(text) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        if let Some(ppid) = stat_fields(&text)
            .and_then(|f| f.get(1).copied())
            .and_then(|p| p.parse::<u32>().ok())
        {
            parent.insert(pid, ppid);
        }
    }
    let mut set = BTreeSet::from([root]);
    loop {
        let before = set.len();
        for (pid, ppid) in &parent {
            if set.contains(ppid) {
                set.insert(*pid);
            }
        }
        if set.len() == before {
            return Ok(set);
        }
    }
}

/// Reads the CPU time of `root`'s tree.
fn sample(root: u32) -> anyhow::Result<Sample> {
    let mut s = Sample::default();
    for pid in tree(root)? {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let f = stat_fields(&text).with_context(|| format!("/proc/{pid}/stat: no command name"))?;
        // Fields 14 and 15 (utime, stime) are at 11 and 12 counting from field 3.
        let tick = |i: usize| -> anyhow::Result<u64> {
            f.get(i)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("/proc/{pid}/stat: field {} is not a number", i + 3))
        };
        s.ticks.insert(pid, tick(11)? + tick(12)?);
        if let Ok(name) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
            s.names.insert(pid, name.trim().to_owned());
        }
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(ns) = std::fs::read_to_string(t.path().join("schedstat"))
                .ok()
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            {
                s.run_ns.insert((pid, tid), ns);
            }
        }
    }
    Ok(s)
}

/// A running window, killed and reaped if dropped before it is quit.
struct Window {
    child: Child,
    lines: crossbeam_channel::Receiver<String>,
    seen: Vec<String>,
}

impl Window {
    /// Waits for a log line containing `needle`.
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    self.seen.push(l);
                    if hit {
                        return Ok(());
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    bail!("no {needle:?} within {timeout:?}: {}", self.tail())
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    bail!(
                        "the windowed run exited ({status:?}) before {needle:?}: {}",
                        self.tail()
                    )
                }
            }
        }
    }

    /// The last lines it logged.
    fn tail(&mut self) -> String {
        self.seen.extend(self.lines.try_iter());
        let n = self.seen.len().saturating_sub(8);
        self.seen[n..].join(" | ")
    }

    /// Interrupts it and waits up to `timeout` for its exit status.
    fn quit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let pid = nix::unistd::Pid::from_raw(
            i32::try_from(self.child.id()).context("the window's pid does not fit a pid_t")?,
        );
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT)
            .context("interrupting the windowed run")?;
        let end = Instant::now() + timeout;
        loop {
            if let Some(s) = self
                .child
                .try_wait()
                .context("waiting for the windowed run")?
            {
                return Ok(s);
            }
            if Instant::now() >= end {
                bail!(
                    "the windowed run did not exit within {timeout:?} of SIGINT: {}",
                    self.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The X server named by `$DISPLAY`, checked to answer.
fn display() -> Result<String, NoDisplay> {
    let d = std::env::var("DISPLAY")
        .ok()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| NoDisplay("no display: DISPLAY is not set".into()))?;
    x11rb::connect(Some(&d)).map_err(|e| {
        NoDisplay(format!(
            "no display: the X server DISPLAY={d} cannot be reached: {e}"
        ))
    })?;
    Ok(d)
}

/// Measures an idle window on `$DISPLAY` over `span`, files in `dir`.
pub fn measure(dir: &Path, span: Duration, start_deadline: Duration) -> anyhow::Result<Measured> {
    let display = display()?;
    let scene = dir.join("still.toml");
    std::fs::write(&scene, STILL).with_context(|| format!("writing {}", scene.display()))?;
    let json = dir.join("idle.json");
    let exe = crate::triptych_exe()?;
    let mut child = Command::new(&exe)
        .args(["run", "--window", "--size", SIZE, "--frames", "1000000"])
        .arg("--scene")
        .arg(&scene)
        .arg("--summary-json")
        .arg(&json)
        .arg("--out")
        .arg(dir.join("idle.png"))
        .env("DISPLAY", &display)
        .env_remove("WAYLAND_DISPLAY")
        .env("TRIPTYCH_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} run --window", exe.display()))?;
    let stderr = child.stderr.take().context("the windowed run's stderr")?;
    let (tx, lines) = crossbeam_channel::unbounded();
    // Read to the end, so the run never blocks on a full pipe.
    std::thread::Builder::new()
        .name("idle-window-log".into())
        .spawn(move || {
            for l in BufReader::new(stderr).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        })
        .context("starting the thread that reads the window's log")?;
    let mut w = Window {
        child,
        lines,
        seen: Vec::new(),
    };
    w.wait_for("window open", start_deadline)?;
    // The first frame: rendered, composited and put on screen.
    std::thread::sleep(Duration::from_secs(1));
    let root = w.child.id();
    let t0 = Instant::now();
    let a = sample(root)?;
    std::thread::sleep(span);
    let b = sample(root)?;
    let wall_ns = t0.elapsed().as_nanos() as u64;
    let status = w.quit(Duration::from_secs(30))?;
    if !status.success() {
        bail!(
            "the windowed run exited with {status} after SIGINT: {}",
            w.tail()
        );
    }
    let text = std::fs::read_to_string(&json)
        .with_context(|| format!("reading the run summary {}", json.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("parsing the run summary {}", json.display()))?;
    let frames = number(&v, &["frames", "count"], &json)? as u64;
    if frames == 0 {
        bail!("the idle window presented no frame");
    }
    let tick_ns = match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => 1e9 / t as f64,
        _ => bail!("sysconf(_SC_CLK_TCK) gave no clock tick"),
    };
    let ticks: u64 = b
        .ticks
        .iter()
        .map(|(pid, t)| t.saturating_sub(a.ticks.get(pid).copied().unwrap_or(0)))
        .sum();
    let stat_cpu_ns = (ticks as f64 * tick_ns).round() as u64;
    let schedstat = !a.run_ns.is_empty() && !b.run_ns.is_empty();
    let run_ns: u64 = b
        .run_ns
        .iter()
        .map(|(k, t)| t.saturating_sub(a.run_ns.get(k).copied().unwrap_or(0)))
        .sum();
    let same_tree = a.ticks.keys().eq(b.ticks.keys());
    let mut by_process: BTreeMap<String, u64> = BTreeMap::new();
    for (pid, t) in &b.ticks {
        let name = b.names.get(pid).cloned().unwrap_or_else(|| pid.to_string());
        let ns = if schedstat {
            b.run_ns
                .range((*pid, 0)..=(*pid, u32::MAX))
                .map(|(k, t)| t.saturating_sub(a.run_ns.get(k).copied().unwrap_or(0)))
                .sum()
        } else {
            let t = t.saturating_sub(a.ticks.get(pid).copied().unwrap_or(0));
            (t as f64 * tick_ns).round() as u64
        };
        *by_process.entry(name).or_default() += ns;
    }
    Ok(Measured {
        cpu_ns: if schedstat { run_ns } else { stat_cpu_ns },
        stat_cpu_ns,
        schedstat,
        wall_ns,
        processes: b.ticks.len(),
        same_tree,
        by_process,
        frames,
        display,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_start_after_the_last_parenthesis() {
        let f = stat_fields("42 (a (b) c) S 7 42 42 0 -1 0 1 2 3 4 15 16 0").expect("fields");
        assert_eq!(f[0], "S");
        assert_eq!(f[1], "7");
        assert_eq!((f[11], f[12]), ("15", "16"));
    }

    #[test]
    fn this_process_is_its_own_tree_and_uses_cpu() {
        let me = std::process::id();
        assert!(tree(me).expect("tree").contains(&me));
        let s = sample(me).expect("sample");
        assert!(s.ticks.contains_key(&me));
    }

    #[test]
    fn the_still_scene_parses_and_does_not_animate() {
        let scene =
            triptych_scene::file::Scene::parse(STILL, Path::new("still.toml")).expect("parse");
        let a = scene.state_at(0, 640, 480);
        let b = scene.state_at(1, 640, 480);
        assert!(triptych_scene::file::damage(&a, &b).is_empty());
    }
}
