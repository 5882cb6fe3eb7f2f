//! Item 14: many views on one GPU process, from real `triptych run --headless` children of
//! [`VIEWS`] views of 320x240 (each `--view default`, the built-in example scene file), each a
//! sandboxed renderer of its own.
//!
//! The figure is the CPU time a view's frame costs across every process (the launcher, the GPU
//! process, every renderer), against a frame of the same scene in a run of one view, measured
//! as item 11b is ([`cpu_runs::measure_sides`]: runs of long minus short frames, the two sides
//! alternating), the many-view side divided by [`VIEWS`]. What one GPU process shared by many
//! renderers costs or saves per view shows in the ratio.
//!
//! One more run, paced at [`FPS`] frames a second as a display would ask, gives the rest
//! ([`Paced`]): how far each view fell behind that pace (frames missed: its frames' span at the
//! pace, less the frames it presented), the launcher's and the GPU process's CPU time as a
//! share of one core over the run's wall time, and each renderer's resident memory. With
//! llvmpipe the GPU process renders on the CPU, so its share is rendering, not handoff; the
//! launcher's is the handoff's (relaying, checking and presenting every view's frames).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::Value;

use super::cpu_runs::{self, Frames, Measured, Side};
use super::runs::{field, number, run_child};
use super::stats::Plan;

/// Views of the many-view side.
pub const VIEWS: usize = 16;
/// Their size.
pub const SIZE: (u32, u32) = (320, 240);
/// The pace of the paced run.
pub const FPS: u32 = 60;

/// `--view default` for each of `n` views.
fn views(n: usize) -> Vec<String> {
    (0..n)
        .flat_map(|_| ["--view".to_owned(), "default".to_owned()])
        .collect()
}

/// The CPU comparison: [`VIEWS`] views against one, per frame (the many-view side's figures
/// are per frame of all its views: divide by [`VIEWS`] for a view's).
pub fn measure(dir: &Path, frames: Frames, plan: Plan) -> anyhow::Result<Measured> {
    let sides = [
        Side {
            name: "views-16",
            args: views(VIEWS),
            damage: None,
        },
        Side {
            name: "views-1",
            args: views(1),
            damage: None,
        },
    ];
    cpu_runs::measure_sides(dir, (None, SIZE), &sides, frames, plan)
}

/// What the paced run of [`VIEWS`] views shows.
#[derive(Debug)]
pub struct Paced {
    /// Frames each view presented.
    pub frames: u64,
    /// Each view's frames missed at [`FPS`]: its first-to-last span at the pace, less the
    /// frames it presented after its first (0 when it kept up).
    pub missed: Vec<u64>,
    /// The launcher's CPU time over the run's wall time (one core = 1).
    pub launcher_share: f64,
    /// The GPU process's, the same way.
    pub gpu_share: f64,
    /// Each renderer's resident memory at the end, KiB.
    pub renderer_rss_kib: Vec<u64>,
    /// Each renderer's CPU time over the run's wall time.
    pub renderer_shares: Vec<f64>,
    /// The run's wall time, seconds.
    pub seconds: f64,
}

/// Runs [`VIEWS`] views of `frames` frames paced at [`FPS`].
pub fn paced(dir: &Path, frames: u64) -> anyhow::Result<Paced> {
    let mut args = vec![
        "--frames".to_owned(),
        frames.to_string(),
        "--size".into(),
        format!("{}x{}", SIZE.0, SIZE.1),
        "--fps".into(),
        FPS.to_string(),
        "--standby".into(),
        "off".into(),
    ];
    args.extend(views(VIEWS));
    let t0 = Instant::now();
    let (v, file) = run_child(dir, "views-paced", &args)?;
    let seconds = t0.elapsed().as_secs_f64();
    let list = field(&v, &["views"], &file)?
        .as_array()
        .with_context(|| format!("{}: `views` is no list", file.display()))?;
    if list.len() != VIEWS {
        bail!("{}: {} views, not {VIEWS}", file.display(), list.len());
    }
    let share = |ms: f64| ms / 1000.0 / seconds;
    let mut missed = Vec::with_capacity(VIEWS);
    let mut renderer_rss_kib = Vec::with_capacity(VIEWS);
    let mut renderer_shares = Vec::with_capacity(VIEWS);
    for view in list {
        let n = view["frames"].as_u64().unwrap_or(0);
        if n != frames {
            bail!(
                "{}: a view presented {n} of {frames} frames: {view}",
                file.display()
            );
        }
        let span = view["seconds"].as_f64().unwrap_or(0.0);
        let due = (span * f64::from(FPS)).round() as u64;
        missed.push(due.saturating_sub(n.saturating_sub(1)));
        renderer_rss_kib.push(view["renderer_rss_kib"].as_u64().unwrap_or(0));
        renderer_shares.push(share(view["renderer_cpu_ms"].as_f64().unwrap_or(0.0)));
    }
    Ok(Paced {
        frames,
        missed,
        launcher_share: share(number(&v, &["processes", "cpu_ms", "launcher"], &file)?),
        gpu_share: share(number(&v, &["processes", "cpu_ms", "gpu"], &file)?),
        renderer_rss_kib,
        renderer_shares,
        seconds,
    })
}

impl Paced {
    /// The figures as the item's extras.
    pub fn extra(&self) -> Vec<(&'static str, Value)> {
        let max = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        vec![
            ("views", Value::from(VIEWS)),
            ("paced_fps", Value::from(FPS)),
            ("paced_frames", Value::from(self.frames)),
            ("paced_seconds", Value::from(self.seconds)),
            ("missed_per_view", Value::from(self.missed.clone())),
            ("missed_max", Value::from(max(&self.missed))),
            (
                "launcher_cpu_share_of_a_core",
                Value::from(self.launcher_share),
            ),
            ("gpu_cpu_share_of_a_core", Value::from(self.gpu_share)),
            (
                "renderer_cpu_share_mean",
                Value::from(mean(&self.renderer_shares)),
            ),
            (
                "renderer_rss_kib",
                Value::from(self.renderer_rss_kib.clone()),
            ),
            (
                "renderer_rss_kib_max",
                Value::from(max(&self.renderer_rss_kib)),
            ),
        ]
    }
}
