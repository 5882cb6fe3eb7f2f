//! Item 11: the CPU time a frame costs across the three processes, with damage tracking and
//! without, from real `triptych run --headless` children.
//!
//! The scene ([`SCENE`], written to the bench's scratch directory) is a desktop with one small
//! animated widget at 1920x1080: a full-frame static checker background, a static large solid
//! panel, and a 64x64 checker at a fixed place whose content scrolls one pixel per frame
//! (`scroll.dx = 60` over a period of 1 s, evaluated at 60 frames per second: `60 * f / 60`,
//! wrapping at the layer's width). With damage tracking only the 64x64 square is redrawn, read
//! back, composited and presented; with `--no-damage` every frame is done whole.
//!
//! # What is counted
//!
//! `getrusage(RUSAGE_CHILDREN)` of this process, read before and after each child run: user
//! plus system time of every child that has terminated and been waited for, and of their own
//! waited-for descendants. The GPU process and the renderer are the launcher's own children
//! (forked and executed in the launcher's `child` module, confined between fork and exec, with
//! no intermediate process; the user namespace's holder is a child of the launcher too), and the
//! launcher waits for each before it exits (`session/finish.rs`, and a dropped `child::Process` kills and
//! reaps), so the launcher's figure includes theirs, and ours, once the launcher is reaped,
//! includes all three processes and all their threads.
//!
//! A run also pays for its start (three processes, the sandbox, EGL) and end, which are not a
//! frame's cost (and runs have no standby GPU process, whose start-up is none either): each mode runs `short` and `long` frames, and the figure is the CPU time of the
//! long run minus that of the short one, divided by the frame difference. One iteration of a
//! side is one such pair (the order of its two runs alternating); the sides alternate in rounds
//! ([`interleave`]), so the machine's drift lands on both. The first frames of a run fill each
//! pool buffer and output slot whole, so the short run must be longer than those (at least 4
//! frames, see the plans in `bench/mod.rs`). Each run must present every frame
//! asked for, and its summary's `damage.mean_damaged_fraction` is kept for the report.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeValLike;

use super::fixture::{HEIGHT, WIDTH};
use super::runs::{field, number, run_child};
use super::stats::{interleave, Plan};

/// The scene of item 11.
pub const SCENE: &str = r##"# triptych-bench, item 11: one 64x64 widget changes, the rest is still.
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
rect = { x = 928, y = 508, w = 64, h = 64 }
cell = 8
colors = ["#ff4060", "#ffe040"]
animation.scroll = { dx = 60, dy = 0, period = 1.0 }
"##;

/// How often a pair whose long run cost no more CPU than its short one is run again before
/// the item fails: with few frames (`--quick`) the start-up's spread can exceed the frames'
/// cost. Only such pairs are repeated, so this never happens with the full plan's frame counts.
const ATTEMPTS: u32 = 3;

/// Frame counts of item 11's runs.
#[derive(Clone, Copy, Debug)]
pub struct Frames {
    /// The short run of each pair.
    pub short: u64,
    /// The long run.
    pub long: u64,
}

/// What the runs measured.
#[derive(Clone, Debug)]
pub struct Measured {
    /// CPU nanoseconds per frame with damage tracking, one per pair of runs.
    pub damage_ns: Vec<u64>,
    /// The same with `--no-damage`.
    pub no_damage_ns: Vec<u64>,
    /// `damage.mean_damaged_fraction` of every timed run with damage tracking, in order.
    pub damage_fractions: Vec<f64>,
    /// The same for the runs with `--no-damage`.
    pub no_damage_fractions: Vec<f64>,
}

/// User plus system time of this process's waited-for children, nanoseconds.
fn children_cpu_ns() -> anyhow::Result<i64> {
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage(RUSAGE_CHILDREN)")?;
    Ok(u.user_time().num_nanoseconds() + u.system_time().num_nanoseconds())
}

/// Writes the scene into `dir`.
pub fn write_scene(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("damage-64.toml");
    std::fs::write(&path, SCENE).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// One side of a CPU comparison: its name (for the runs' file names), the arguments its runs
/// add, and what its summaries must say of damage tracking (`damage.on`), where that is the
/// point of the comparison.
#[derive(Clone, Debug)]
pub struct Side {
    /// The side's name.
    pub name: &'static str,
    /// The arguments its runs add.
    pub args: Vec<String>,
    /// The `damage.on` its runs' summaries must report, if checked.
    pub damage: Option<bool>,
}

/// One run of `frames` frames: its CPU time (all three processes) and its mean damaged
/// fraction.
fn one(
    dir: &Path,
    (scene, (width, height)): (Option<&Path>, (u32, u32)),
    side: &Side,
    frames: u64,
    tag: &str,
) -> anyhow::Result<(i64, f64)> {
    // No standby GPU process: it is spawned after a run's tenth frame, and its start-up (GL,
    // sandbox, a warm-up draw: tens of milliseconds of CPU) would land whole in a long run and
    // only in part in a short one, which is no frame's cost.
    let mut args = vec![
        "--frames".to_owned(),
        frames.to_string(),
        "--size".into(),
        format!("{width}x{height}"),
        "--standby".into(),
        "off".into(),
    ];
    if let Some(scene) = scene {
        args.extend(["--scene".to_owned(), scene.display().to_string()]);
    }
    args.extend(side.args.iter().cloned());
    let before = children_cpu_ns()?;
    let (v, file) = run_child(dir, tag, &args)?;
    let cpu = children_cpu_ns()? - before;
    let presented = number(&v, &["frames", "count"], &file)? as u64;
    if presented != frames {
        bail!("the run presented {presented} of {frames} frames");
    }
    if let Some(damage) = side.damage {
        let on = field(&v, &["damage", "on"], &file)?.as_bool();
        if on != Some(damage) {
            bail!(
                "{}: `damage.on` is {on:?}, the run was {} --no-damage",
                file.display(),
                if damage { "without" } else { "with" }
            );
        }
    }
    let fraction = number(&v, &["damage", "mean_damaged_fraction"], &file)?;
    Ok((cpu, fraction))
}

/// Runs the pairs of both modes of item 11 as `plan` says.
pub fn measure(dir: &Path, frames: Frames, plan: Plan) -> anyhow::Result<Measured> {
    let scene = write_scene(dir)?;
    let sides = [
        Side {
            name: "damage",
            args: Vec::new(),
            damage: Some(true),
        },
        Side {
            name: "no-damage",
            args: vec!["--no-damage".into()],
            damage: Some(false),
        },
    ];
    measure_sides(dir, (Some(&scene), (WIDTH, HEIGHT)), &sides, frames, plan)
}

/// Runs the pairs of `sides` (with `scene`, or the built-in scene, at that size) as `plan`
/// says: the first side's figures are [`Measured`]'s `damage_*`, the second's its
/// `no_damage_*`.
pub fn measure_sides(
    dir: &Path,
    scene: (Option<&Path>, (u32, u32)),
    sides: &[Side; 2],
    frames: Frames,
    plan: Plan,
) -> anyhow::Result<Measured> {
    anyhow::ensure!(
        frames.long > frames.short,
        "the long runs ({} frames) must be longer than the short ones ({})",
        frames.long,
        frames.short
    );
    let fractions = RefCell::new((Vec::new(), Vec::new()));
    // One pair of runs of one side: CPU nanoseconds per frame.
    let pair = |k_side: usize, i: u64, warm: bool| -> anyhow::Result<u64> {
        let side = &sides[k_side];
        let mode = side.name;
        let mut cpu = [0i64; 2];
        let mut fr = [0f64; 2];
        // Alternate which of the two goes first.
        let order = if i.is_multiple_of(2) { [0, 1] } else { [1, 0] };
        let mut attempt = 1;
        let diff = loop {
            for k in order {
                let n = if k == 0 { frames.short } else { frames.long };
                (cpu[k], fr[k]) = one(dir, scene, side, n, &format!("cpu-{mode}-{n}"))?;
            }
            let diff = cpu[1] - cpu[0];
            if diff > 0 {
                break diff;
            }
            if attempt == ATTEMPTS {
                bail!(
                    "{mode}: {} frames took {:.1} ms of CPU and {} frames {:.1} ms, {ATTEMPTS} \
                     times: the start-up's spread exceeds the frames' cost (more frames per run \
                     would measure it)",
                    frames.long,
                    cpu[1] as f64 / 1e6,
                    frames.short,
                    cpu[0] as f64 / 1e6
                );
            }
            attempt += 1;
        };
        if !warm {
            let mut f = fractions.borrow_mut();
            let list = if k_side == 0 { &mut f.0 } else { &mut f.1 };
            list.extend(order.map(|k| fr[k]));
        }
        Ok((diff as f64 / (frames.long - frames.short) as f64).round() as u64)
    };
    let (damage_ns, no_damage_ns) = interleave(
        plan,
        |n, warm| (0..n).map(|i| pair(0, i, warm)).collect(),
        |n, warm| (0..n).map(|i| pair(1, i, warm)).collect(),
    )?;
    let (damage_fractions, no_damage_fractions) = fractions.into_inner();
    Ok(Measured {
        damage_ns,
        no_damage_ns,
        damage_fractions,
        no_damage_fractions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scene_parses_and_only_the_widget_changes_from_frame_to_frame() {
        let scene =
            triptych_scene::file::Scene::parse(SCENE, Path::new("damage-64.toml")).expect("parse");
        assert_eq!(scene.layers.len(), 3);
        for f in [0u64, 1, 58, 59, 60] {
            let a = scene.state_at(f, WIDTH, HEIGHT);
            let b = scene.state_at(f + 1, WIDTH, HEIGHT);
            let d = triptych_scene::file::damage(&a, &b);
            assert_eq!(d.content, vec![2], "frame {f}");
            assert!(d.placement.is_empty(), "frame {f}");
            assert_eq!((b[2].rect.w, b[2].rect.h), (64, 64));
        }
    }
}
