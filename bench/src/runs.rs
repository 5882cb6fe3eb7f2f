//! Items 6, 7 and 8: figures of the whole pipeline, read from real runs of `triptych run`.
//!
//! Each run is this executable started as a child with `run --headless ... --summary-json FILE`: the three
//! real processes, the real channels and fences, nothing stubbed. The child's own summary gives
//! the figures: frames per second over the run and the handoff latency (GPU process sending a
//! description to the renderer having every layer fetched, mapped and its fence signalled); with
//! `--chaos SEED`, the crash records' detection latency and restart-to-first-frame; with
//! `--trace FILE`, how many trace events the run recorded. The runs are not pinned: their three
//! processes go where the scheduler puts them, as in real use.
//!
//! Item 8 runs the same pipeline with and without `--trace`, alternating the two so that the
//! machine's drift lands on both ([`stats::interleave`](super::stats::interleave)); each run's
//! frame time is `1 / fps` over the frames it presented (start-up and the trace file's writing,
//! which happen outside that span, are not counted).
//!
//! Item 6c ([`standby_recovery`]) alternates in the same way runs with the standby GPU process
//! (`--standby on`) and without it (`--standby off`), each with the same GPU process kills
//! (`--fault gpu-render:kill@N`). Its samples are the crash records' `recovery_us` of the GPU
//! process, each taken on its side only if its `replacement` says so: `standby promoted` in the
//! runs with the standby, `cold` in the others. A kill that came before a standby was ready is
//! recovered by a cold start in a run with the standby; it is counted apart, in neither figure.
//! A run in which a frame was presented twice is left out and run again ([`kill_run`] says why).

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde_json::Value;

use super::fixture::{HEIGHT, WIDTH};
use super::stats::{interleave, Plan};

/// What one clean run reports.
#[derive(Clone, Debug)]
pub struct RunFigures {
    /// Layers per frame.
    pub layers: u32,
    /// Frames presented.
    pub frames: u64,
    /// Frames per second.
    pub fps: f64,
    /// Handoff latency p50, nanoseconds.
    pub handoff_p50_ns: f64,
    /// Handoff latency p99, nanoseconds.
    pub handoff_p99_ns: f64,
    /// Handoff samples.
    pub handoff_count: u64,
    /// The buffer backend that ran.
    pub backend: String,
}

/// A latency of the chaos run.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    /// p50, nanoseconds.
    pub p50_ns: f64,
    /// p99, nanoseconds.
    pub p99_ns: f64,
    /// Samples.
    pub count: u64,
}

/// What a chaos run reports, or why it reports nothing.
#[derive(Clone, Debug)]
pub enum Chaos {
    /// The summary has the figures.
    Measured {
        /// Fault to detection.
        detection: Latency,
        /// Detection to the replacement's first frame.
        restart: Latency,
        /// Crashes recorded.
        crashes: u64,
    },
    /// This launcher's summary does not report crash figures.
    NotReported(String),
}

pub(super) fn field<'a>(v: &'a Value, path: &[&str], file: &Path) -> anyhow::Result<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur
            .get(p)
            .with_context(|| format!("{} has no `{}`", file.display(), path.join(".")))?;
    }
    Ok(cur)
}

pub(super) fn number(v: &Value, path: &[&str], file: &Path) -> anyhow::Result<f64> {
    field(v, path, file)?
        .as_f64()
        .filter(|x| x.is_finite())
        .with_context(|| {
            format!(
                "`{}` in {} is not a finite number",
                path.join("."),
                file.display()
            )
        })
}

/// Runs `triptych run` with `args` plus a summary file in `dir`, returning the summary.
pub(super) fn run_child(
    dir: &Path,
    tag: &str,
    args: &[String],
) -> anyhow::Result<(Value, PathBuf)> {
    let exe = crate::triptych_exe()?;
    let json = dir.join(format!("{tag}.json"));
    let png = dir.join(format!("{tag}.png"));
    let out = Command::new(&exe)
        .arg("run")
        // Never a window, even where the bench runs with DISPLAY set (item 12 needs it): a
        // window would keep its last frame on screen until closed, and the run would not end.
        .arg("--headless")
        .args(args)
        .arg("--summary-json")
        .arg(&json)
        .arg("--out")
        .arg(&png)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {} run", exe.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "`triptych run {}` failed ({}): {}",
            args.join(" "),
            out.status,
            tail.join(" | ")
        );
    }
    let text = std::fs::read_to_string(&json)
        .with_context(|| format!("reading the run summary {}", json.display()))?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("parsing the run summary {}", json.display()))?;
    Ok((v, json))
}

/// The common arguments: 1080p, `layers` layers, `frames` frames.
fn base_args(layers: u32, frames: u64) -> Vec<String> {
    vec![
        "--frames".into(),
        frames.to_string(),
        "--size".into(),
        format!("{WIDTH}x{HEIGHT}"),
        "--layers".into(),
        layers.to_string(),
    ]
}

/// Item 7: one clean run of `frames` frames of `layers` layers at 1080p.
pub fn end_to_end(dir: &Path, layers: u32, frames: u64) -> anyhow::Result<RunFigures> {
    let (v, file) = run_child(dir, &format!("e2e-{layers}"), &base_args(layers, frames))?;
    let presented = number(&v, &["frames", "count"], &file)? as u64;
    if presented != frames {
        bail!("the run presented {presented} of {frames} frames");
    }
    let fps = number(&v, &["frames", "fps"], &file)?;
    if fps <= 0.0 {
        bail!("the run reports {fps} frames per second");
    }
    Ok(RunFigures {
        layers,
        frames: presented,
        fps,
        handoff_p50_ns: number(&v, &["latency", "handoff", "p50_us"], &file)? * 1000.0,
        handoff_p99_ns: number(&v, &["latency", "handoff", "p99_us"], &file)? * 1000.0,
        handoff_count: number(&v, &["latency", "handoff", "count"], &file)? as u64,
        backend: field(&v, &["paths", "backend"], &file)?
            .as_str()
            .unwrap_or("unknown")
            .to_owned(),
    })
}

/// Item 6: a run with `kills` chaos kills chosen by `seed`.
pub fn chaos(dir: &Path, layers: u32, frames: u64, seed: u64, kills: u32) -> anyhow::Result<Chaos> {
    let mut args = base_args(layers, frames);
    args.extend([
        "--chaos".into(),
        seed.to_string(),
        "--chaos-kills".into(),
        kills.to_string(),
        // Every kill must be recovered from: the restart policy's limit is not what is measured.
        "--max-crashes".into(),
        (kills + 1).to_string(),
    ]);
    let (v, file) = run_child(dir, "chaos", &args)?;
    let recovery = v.get("recovery");
    let (Some(_), Some(_)) = (
        recovery.and_then(|r| r.get("detection")),
        recovery.and_then(|r| r.get("restart_to_first_frame")),
    ) else {
        return Ok(Chaos::NotReported(
            "the run summary has no `recovery.detection` / `recovery.restart_to_first_frame` figures"
                .into(),
        ));
    };
    let latency = |name: &str| -> anyhow::Result<Latency> {
        Ok(Latency {
            p50_ns: number(&v, &["recovery", name, "p50_us"], &file)? * 1000.0,
            p99_ns: number(&v, &["recovery", name, "p99_us"], &file)? * 1000.0,
            count: number(&v, &["recovery", name, "count"], &file)? as u64,
        })
    };
    let detection = latency("detection")?;
    let restart = latency("restart_to_first_frame")?;
    let crashes = field(&v, &["recovery", "crashes"], &file)?
        .as_array()
        .map_or(0, |a| a.len() as u64);
    if detection.count == 0 || restart.count == 0 {
        bail!(
            "the chaos run recorded {crashes} crashes but {} detection and {} restart samples",
            detection.count,
            restart.count
        );
    }
    Ok(Chaos::Measured {
        detection,
        restart,
        crashes,
    })
}

/// What the runs of item 8 measured.
#[derive(Clone, Debug)]
pub struct TraceOverhead {
    /// Frame time of each traced run, nanoseconds.
    pub traced_ns: Vec<u64>,
    /// Frame time of each untraced run, nanoseconds.
    pub untraced_ns: Vec<u64>,
    /// Trace events recorded per presented frame, over the timed traced runs.
    pub events_per_frame: f64,
}

/// Runs `triptych run` of `frames` frames of `layers` layers at `size` (`WxH`) with
/// `--trace` and without, alternating, as `plan` says (one iteration is one run).
pub fn trace_overhead(
    dir: &Path,
    size: &str,
    layers: u32,
    frames: u64,
    plan: Plan,
) -> anyhow::Result<TraceOverhead> {
    let args = |tag: &str, trace: Option<&Path>| {
        let mut a: Vec<String> = vec![
            "--frames".into(),
            frames.to_string(),
            "--size".into(),
            size.into(),
            "--layers".into(),
            layers.to_string(),
        ];
        if let Some(t) = trace {
            a.extend(["--trace".into(), t.display().to_string()]);
        }
        (tag.to_owned(), a)
    };
    // One run: its frame time, and the events it recorded.
    let one = |tag: &str, traced: bool| -> anyhow::Result<(u64, u64)> {
        let trace = dir.join(format!("{tag}.trace.json"));
        let (tag, a) = args(tag, traced.then_some(trace.as_path()));
        let (v, file) = run_child(dir, &tag, &a)?;
        let presented = number(&v, &["frames", "count"], &file)? as u64;
        if presented != frames {
            bail!("the run presented {presented} of {frames} frames");
        }
        let fps = number(&v, &["frames", "fps"], &file)?;
        if fps <= 0.0 {
            bail!("the run reports {fps} frames per second");
        }
        let events = number(&v, &["trace", "events"], &file)? as u64;
        if traced {
            if events == 0 || !trace.exists() {
                bail!(
                    "the traced run recorded {events} events and wrote {}: {}",
                    trace.display(),
                    if trace.exists() { "present" } else { "missing" }
                );
            }
            // Traces of long runs are megabytes; only the count is kept.
            std::fs::remove_file(&trace)
                .with_context(|| format!("removing {}", trace.display()))?;
        } else if events != 0 {
            bail!("the run without --trace recorded {events} trace events");
        }
        Ok(((1e9 / fps).round() as u64, events))
    };
    let (events, traced_frames) = (Cell::new(0u64), Cell::new(0u64));
    let (traced_ns, untraced_ns) = interleave(
        plan,
        |n, warm| {
            let mut out = Vec::with_capacity(n as usize);
            for i in 0..n {
                let (ns, e) = one(&format!("traced-{i}"), true)?;
                if !warm {
                    events.set(events.get() + e);
                    traced_frames.set(traced_frames.get() + frames);
                }
                out.push(ns);
            }
            Ok(out)
        },
        |n, _| {
            (0..n)
                .map(|i| Ok(one(&format!("untraced-{i}"), false)?.0))
                .collect()
        },
    )?;
    Ok(TraceOverhead {
        traced_ns,
        untraced_ns,
        events_per_frame: events.get() as f64 / traced_frames.get().max(1) as f64,
    })
}

/// The shape of item 6c's runs: `kills` GPU process kills (`--fault gpu-render:kill@N`), one
/// every `spacing` frames, in a run of `(kills + 1) * spacing` frames of `layers` layers at
/// `size` (`WxH`).
#[derive(Clone, Copy, Debug)]
pub struct KillRuns {
    /// Frame size.
    pub size: &'static str,
    /// Layers per frame.
    pub layers: u32,
    /// GPU process kills per run.
    pub kills: u32,
    /// Frames between two kills: long enough for the replacement to present, the next standby
    /// to be spawned and to get ready before the next kill.
    pub spacing: u64,
}

impl KillRuns {
    /// Frames of one run: a last stretch after the last kill, for its recovery to be seen.
    pub fn frames(&self) -> u64 {
        (u64::from(self.kills) + 1) * self.spacing
    }
}

/// What item 6c's runs measured.
#[derive(Clone, Debug, Default)]
pub struct StandbyRecovery {
    /// GPU process recoveries that promoted the standby (runs with `--standby on`), from the
    /// launcher noticing the death to the replacement's first frame, nanoseconds.
    pub promoted_ns: Vec<u64>,
    /// GPU process recoveries by a cold start (runs with `--standby off`), nanoseconds.
    pub cold_ns: Vec<u64>,
    /// Recoveries in runs with the standby that started cold all the same (no standby was
    /// ready when the kill came): in neither figure.
    pub standby_side_cold: u64,
    /// Standbys that died before their promotion (crash records with `standby: true`).
    pub standby_deaths: u64,
    /// Each timed run's latest standby: spawn to `Ready`, milliseconds.
    pub ready_ms: Vec<f64>,
    /// Each timed run's latest standby once ready: resident memory, KiB.
    pub rss_kib: Vec<u64>,
    /// Each timed run's latest standby once ready: proportional memory, KiB.
    pub pss_kib: Vec<u64>,
    /// Runs left out and run again because a frame was presented twice (see [`kill_run`]).
    pub runs_dropped: u64,
}

/// The crash records' replacement of a GPU process that promoted the standby.
const PROMOTED: &str = "standby promoted";
/// The crash records' replacement of a GPU process that started cold.
const COLD: &str = "cold";

/// One run of item 6c, with the standby or without, added to `into` unless `warm`; `false`
/// where the run is left out.
///
/// A run is left out when it presented one more frame than it had: the frame the dead GPU
/// process had sent was presented after the launcher noticed the death, and then again by the
/// replacement (which resumes after the last frame presented when it was started). The
/// launcher's recovery clock stops at the first frame presented after the death, so one of the
/// run's recoveries ended on the dead process's frame, not the replacement's; which one, the
/// summary does not say.
fn kill_run(
    dir: &Path,
    tag: &str,
    shape: KillRuns,
    standby: bool,
    warm: bool,
    into: &mut StandbyRecovery,
) -> anyhow::Result<bool> {
    let frames = shape.frames();
    let mut args: Vec<String> = vec![
        "--frames".into(),
        frames.to_string(),
        "--size".into(),
        shape.size.into(),
        "--layers".into(),
        shape.layers.to_string(),
        "--standby".into(),
        if standby { "on" } else { "off" }.into(),
        // Every kill is recovered from on the same rung: the ladder is not what is measured.
        "--max-crashes".into(),
        (shape.kills + 1).to_string(),
    ];
    for k in 1..=u64::from(shape.kills) {
        args.extend([
            "--fault".into(),
            format!("gpu-render:kill@{}", k * shape.spacing),
        ]);
    }
    let (v, file) = run_child(dir, tag, &args)?;
    let presented = number(&v, &["frames", "count"], &file)? as u64;
    let last = number(&v, &["frames", "last"], &file)? as u64;
    if presented < frames || last + 1 != frames {
        bail!("the run presented {presented} of {frames} frames, the last {last}");
    }
    let s = field(&v, &["recovery", "standby"], &file)?;
    if s.get("enabled").and_then(Value::as_bool) != Some(standby) {
        bail!(
            "{} says the standby was {}, for a run with --standby {}",
            file.display(),
            s.get("enabled").unwrap_or(&Value::Null),
            if standby { "on" } else { "off" }
        );
    }
    let crashes = field(&v, &["recovery", "crashes"], &file)?
        .as_array()
        .with_context(|| format!("`recovery.crashes` in {} is not a list", file.display()))?;
    let (mut promoted, mut cold, mut deaths) = (Vec::new(), Vec::new(), 0u64);
    for c in crashes {
        if c.get("role").and_then(Value::as_str) != Some(ipc_protocol::Role::Gpu.as_str()) {
            bail!("a crash of another process than the GPU process: {c}");
        }
        if c.get("standby").and_then(Value::as_bool) == Some(true) {
            deaths += 1;
            continue;
        }
        let us = c
            .get("recovery_us")
            .and_then(Value::as_f64)
            .filter(|us| us.is_finite() && *us > 0.0)
            .with_context(|| format!("a GPU process crash with no recovery time: {c}"))?;
        let ns = (us * 1000.0).round() as u64;
        match c.get("replacement").and_then(Value::as_str) {
            Some(PROMOTED) if standby => promoted.push(ns),
            Some(PROMOTED) => bail!("a run with --standby off promoted a standby: {c}"),
            Some(COLD) => cold.push(ns),
            _ => bail!("a GPU process crash with no known replacement: {c}"),
        }
    }
    if (promoted.len() + cold.len()) as u64 != u64::from(shape.kills) {
        bail!(
            "the run recorded {} GPU process recoveries for its {} kills",
            promoted.len() + cold.len(),
            shape.kills
        );
    }
    // The summary's count of promotions agrees with the records: no promotion is counted that
    // did not happen.
    let promotions = number(&v, &["recovery", "standby", "promotions"], &file)? as usize;
    if promotions != promoted.len() {
        bail!(
            "{} counts {promotions} promotions, its crash records {}",
            file.display(),
            promoted.len()
        );
    }
    if presented > frames {
        into.runs_dropped += 1;
        return Ok(false);
    }
    if warm {
        return Ok(true);
    }
    into.standby_deaths += deaths;
    if standby {
        into.promoted_ns.extend(promoted);
        into.standby_side_cold += cold.len() as u64;
        if let Some(ms) = s.get("ready_ms").and_then(Value::as_f64) {
            into.ready_ms.push(ms);
        }
        into.rss_kib
            .extend(s.get("rss_kib").and_then(Value::as_u64));
        into.pss_kib
            .extend(s.get("pss_kib").and_then(Value::as_u64));
    } else {
        into.cold_ns.extend(cold);
    }
    Ok(true)
}

/// Item 6c: runs of `shape` with the standby and without it, alternating as `plan` says (one
/// iteration is one run of each), so that the machine's drift lands on both figures.
pub fn standby_recovery(
    dir: &Path,
    shape: KillRuns,
    plan: Plan,
) -> anyhow::Result<StandbyRecovery> {
    let into = std::cell::RefCell::new(StandbyRecovery::default());
    let side = |standby: bool, n: u64, warm: bool| -> anyhow::Result<Vec<u64>> {
        let name = if standby { "standby" } else { "cold" };
        let flag = if standby { "on" } else { "off" };
        let (mut kept, mut tries) = (0, 0);
        // A run left out is run again, up to as many times again as runs are asked for.
        while kept < n {
            anyhow::ensure!(
                tries < 2 * n,
                "{tries} runs with --standby {flag} for {n}: too many left out for a frame \
                 presented twice"
            );
            let tag = format!("{name}-{}{tries}", if warm { "warm-" } else { "" });
            tries += 1;
            let ok = kill_run(dir, &tag, shape, standby, warm, &mut into.borrow_mut())
                .with_context(|| format!("a run with --standby {flag}"))?;
            kept += u64::from(ok);
        }
        // One entry per run, for the schedule's count; the samples are the recoveries above.
        Ok(vec![0; n as usize])
    };
    interleave(plan, |n, w| side(true, n, w), |n, w| side(false, n, w))?;
    Ok(into.into_inner())
}
