//! `triptych-bench`: what the frame handoff costs, every figure next to a baseline measured in the
//! same run, on the same cores.
//!
//! # Who plays what
//!
//! This process plays the GPU process (the *producer*): it exports buffers and fences into its
//! export window, sends frame descriptions as the launcher hands them on to the renderer
//! (`LauncherToRenderer::Frame`) and times every round trip with one clock. `triptych-bench peer` ([`peer`]), this binary re-executed as a child, plays the renderer
//! (the *consumer*): it validates, imports, fetches and polls with the renderer's own calls (the
//! `renderer_process` library's `validate`, `import` and `fetch`, the ones the renderer's frame
//! loop makes). The
//! two are pinned to two named CPUs ([`cores`]). The present is timed in this process, on the
//! producer's CPU; the pipeline figures come from real `triptych run` children (the `triptych`
//! binary next to this one, [`triptych_exe`]) ([`runs`],
//! [`cpu_runs`], [`idle`]).
//!
//! # Sequence
//!
//! 1. choose the CPUs; create the exports ([`fixture`]); start and pin the peer ([`producer`]);
//!    pin this thread;
//! 2. items 1 to 4, each value interleaved with its baseline in rounds after a warm-up
//!    ([`stats::interleave`]); after every block the peer's counts are checked against what the
//!    block had to do;
//! 3. stop the peer; item 9, handing a 1080p slot to the X server (MIT-SHM) against `memcpy`
//!    ([`present`]), on the producer's CPU;
//! 4. unpin; item 7, clean runs at 1080p with K layers; item 6, a chaos run, against the frame
//!    time of the clean 3-layer run; item 6c, GPU process kills in runs with the standby and
//!    without, alternating ([`runs::standby_recovery`]); item 8, runs with and without `--trace`, alternating
//!    ([`runs::trace_overhead`]), and a disabled recorder's cost per call ([`recorder`]);
//!    item 11, the CPU time of a frame across the three processes with damage tracking against
//!    `--no-damage`, from the children's `getrusage` ([`cpu_runs`]); item 11b, the same CPU
//!    time at 320x240 with the children's mailboxes against `--mailbox off`; item 11c, the same
//!    with progress fences against pipe fences (`--progress-fences off`); item 12, an idle window's
//!    CPU use on `$DISPLAY` against its wall time ([`idle`]);
//! 5. print the table, or the JSON with `--json` ([`report`]); exit 1 if any measurement failed.
//!
//! Speed goals are reported (`met`), never enforced: a slow machine gives slow figures, not a
//! failure. A build without optimisations says so in its report.
//!
//! Items that time one function in one process (5a and 5b, the compositor against `memcpy`; 10,
//! the damaged frame against a full composite) are criterion benches next to the code they time:
//! `cargo bench -p triptych-renderer-process`. The recorder's own profile is `cargo bench -p
//! triptych-trace`.

#![forbid(unsafe_code)]
#![allow(rustdoc::private_intra_doc_links)]

mod control;
mod cores;
mod cpu_runs;
mod cross_process;
mod edit_latency;
use cross_process::cross_process;
mod fixture;
mod idle;
pub mod peer;
mod present;
mod producer;
mod recorder;
mod report;
mod run_items;
use run_items::{
    chaos_items, cpu_item, edit_items, idle_item, mailbox_item, progress_item, standby_item,
    trace_items, views_item,
};
mod runs;
mod stats;
mod views;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use control::{FenceMode, Via};
use fixture::{Fixture, FD_BATCH, HEIGHT, LAYERS, WIDTH};
use producer::Peer;
use report::{Item, Label, MessageBytes, Report};
use stats::{interleave, Figure, Plan};

/// Iteration counts of one bench run.
#[derive(Clone, Debug)]
struct Plans {
    /// Round trips of items 1, 1b, 2 and 4.
    ipc: Plan,
    /// Pixel pushes of item 3.
    pixels: Plan,
    /// Presents of item 9.
    present: Plan,
    /// Property changes of items 13 and 13b (warm-up and timed, in one run each).
    edits: Plan,
    /// Frames of each clean pipeline run (item 7).
    frames: u64,
    /// Layer counts of the clean runs.
    layers: Vec<u32>,
    /// Layers, frames and kills of the chaos run (item 6); `chaos_layers` is one of `layers`,
    /// whose clean run gives the baseline.
    chaos_layers: u32,
    chaos_frames: u64,
    chaos_kills: u32,
    /// Item 6c's runs: how each is shaped, and how many of each kind (with the standby and
    /// without; one iteration is one run of each).
    standby_shape: runs::KillRuns,
    standby_runs: Plan,
    /// Runs of item 8a, with and without `--trace` (one iteration is one run of each).
    trace_runs: Plan,
    /// Frames of each of those runs.
    trace_frames: u64,
    /// Batches of disabled recorder calls of item 8b.
    recorder: Plan,
    /// Frames of item 11's short and long runs.
    cpu_frames: cpu_runs::Frames,
    /// Frames of the short and long runs of items 11b and 11c.
    mailbox_frames: cpu_runs::Frames,
    /// Pairs of item 11's runs, with damage tracking and without (one iteration is one pair).
    cpu_runs: Plan,
    /// Frames of item 14's short and long runs (of 16 views, and of one).
    views_frames: cpu_runs::Frames,
    /// Frames of item 14's paced run.
    views_paced: u64,
    /// How long item 12 watches the idle window.
    idle: Duration,
    /// How long item 12's window may take to open.
    idle_start: Duration,
}

impl Plans {
    fn full() -> Plans {
        Plans {
            ipc: Plan {
                warmup: 1000,
                iterations: 10_000,
                rounds: 10,
            },
            pixels: Plan {
                warmup: 50,
                iterations: 10_000,
                rounds: 10,
            },
            present: Plan {
                warmup: 20,
                iterations: 2000,
                rounds: 10,
            },
            edits: Plan {
                warmup: 20,
                iterations: 500,
                rounds: 1,
            },
            frames: 300,
            layers: vec![1, 3, 8],
            chaos_layers: 3,
            chaos_frames: 600,
            chaos_kills: 10,
            // 8 runs of each kind with 5 kills each: 40 recoveries a side. 300 frames between
            // kills (a tenth of a second or more at this size) leave the replacement time to
            // present and the next standby, spawned then, time to get ready (tens of ms).
            standby_shape: runs::KillRuns {
                size: STANDBY_SIZE,
                layers: STANDBY_LAYERS,
                kills: 5,
                spacing: 300,
            },
            standby_runs: Plan {
                warmup: 1,
                iterations: 8,
                rounds: 8,
            },
            trace_runs: Plan {
                warmup: 1,
                iterations: 8,
                rounds: 8,
            },
            trace_frames: 2000,
            recorder: Plan {
                warmup: 10,
                iterations: 1000,
                rounds: 1,
            },
            // A --no-damage frame at 1080p costs tens of milliseconds of CPU with llvmpipe:
            // 180 frames between the two runs resolve it, and the damaged ones, to well under 1%.
            cpu_frames: cpu_runs::Frames {
                short: 60,
                long: 240,
            },
            // A 320x240 frame costs well under a millisecond: a thousand frames between the
            // two runs resolve a few microseconds of handoff.
            mailbox_frames: cpu_runs::Frames {
                short: 100,
                long: 1100,
            },
            // Items 7 and 8 have run the pipeline already: no warm-up.
            cpu_runs: Plan {
                warmup: 0,
                iterations: 3,
                rounds: 3,
            },
            // Sixteen views start sixteen renderers: 120 frames between the two runs (1920
            // view-frames) resolve a view-frame's cost well past the start-up's spread.
            views_frames: cpu_runs::Frames {
                short: 30,
                long: 150,
            },
            // Five seconds at 60 frames a second.
            views_paced: 300,
            idle: Duration::from_secs(5),
            idle_start: Duration::from_secs(30),
        }
    }

    /// Short enough for CI in a debug build; the figures are only checked for shape.
    fn quick() -> Plans {
        Plans {
            ipc: Plan {
                warmup: 100,
                iterations: 1000,
                rounds: 4,
            },
            pixels: Plan {
                warmup: 5,
                iterations: 100,
                rounds: 2,
            },
            present: Plan {
                warmup: 1,
                iterations: 10,
                rounds: 2,
            },
            edits: Plan {
                warmup: 5,
                iterations: 50,
                rounds: 1,
            },
            // One opaque layer: the cheapest 1080p pipeline, which an unoptimised build still
            // runs at a few frames per second.
            frames: 6,
            layers: vec![1],
            chaos_layers: 1,
            chaos_frames: 12,
            chaos_kills: 1,
            // One run of each kind with one kill, late enough for an unoptimised build's
            // standby to be ready (spawned after the first frame, ready some 50 ms later, while
            // such a build presents some 500 frames a second at this size).
            standby_shape: runs::KillRuns {
                size: STANDBY_SIZE,
                layers: STANDBY_LAYERS,
                kills: 1,
                spacing: 300,
            },
            standby_runs: Plan {
                warmup: 0,
                iterations: 1,
                rounds: 1,
            },
            trace_runs: Plan {
                warmup: 0,
                iterations: 1,
                rounds: 1,
            },
            trace_frames: 12,
            recorder: Plan {
                warmup: 1,
                iterations: 20,
                rounds: 1,
            },
            // Past the first frames, which fill the layers' pool buffers and the output slots
            // whole (3 of each), in both runs; 40 frames apart, so that a damaged 1080p frame's
            // few milliseconds add up past the spread of an unoptimised build's start-up.
            cpu_frames: cpu_runs::Frames { short: 4, long: 44 },
            mailbox_frames: cpu_runs::Frames { short: 4, long: 24 },
            cpu_runs: Plan {
                warmup: 0,
                iterations: 1,
                rounds: 1,
            },
            views_frames: cpu_runs::Frames { short: 4, long: 16 },
            views_paced: 12,
            idle: Duration::from_secs(2),
            // An unoptimised build starts slowly.
            idle_start: Duration::from_secs(60),
        }
    }
}

/// The command line of `triptych-bench`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "triptych-bench",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// The measurements' options.
    #[command(flatten)]
    pub args: BenchArgs,
    /// The peer, started by the bench only.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands of `triptych-bench`: none a person runs.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The far side of the cross-process measurements; started by the bench only.
    #[command(hide = true)]
    Peer(PeerArgs),
}

/// Options of a bench run.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Fewer iterations and shorter runs (for CI: checks that every figure is produced).
    #[arg(long)]
    pub quick: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of the hidden `triptych-bench peer`.
#[derive(Debug, clap::Args)]
pub struct PeerArgs {
    /// The bench's pid: the peer refuses to run under any other parent.
    #[arg(long)]
    pub parent: u32,
}

/// The `triptych` binary whose runs the pipeline items measure: the one built next to this
/// executable (`cargo build --release --workspace` builds both into one directory).
pub fn triptych_exe() -> anyhow::Result<std::path::PathBuf> {
    let me = std::env::current_exe().context("finding this executable")?;
    let exe = me
        .parent()
        .context("this executable has no directory")?
        .join("triptych");
    anyhow::ensure!(
        exe.is_file(),
        "{} is missing: the pipeline items run the triptych binary built next to {} \
         (cargo build --release --workspace)",
        exe.display(),
        me.display()
    );
    Ok(exe)
}

/// Seed of the chaos run, fixed so runs are comparable.
const CHAOS_SEED: u64 = 1;

/// Frame size of item 6c's runs: small, so that a recovery is mostly the process's start and
/// little of it the replacement's first frame.
const STANDBY_SIZE: &str = "96x64";

/// Layers of item 6c's runs.
const STANDBY_LAYERS: u32 = 3;

/// Frame size of item 8's runs: the default of `triptych run`, where the per-frame work is
/// smallest and a fixed cost per frame shows the most.
const TRACE_SIZE: &str = "640x480";

/// Layers of item 8's runs.
const TRACE_LAYERS: u32 = 3;

/// Runs the benchmarks and prints the results.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let plans = if args.quick {
        Plans::quick()
    } else {
        Plans::full()
    };
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    if build == "debug" && !args.quick {
        tracing::warn!(
            "this is a debug build: the figures will not be representative (cargo build --release)"
        );
    }
    let mut machine = report::Machine::read();
    let cores = cores::Cores::choose()?;
    tracing::info!(cores = %cores.describe(), "bench starting");
    let mut items = Vec::new();
    let mut failures = Vec::new();

    // 1. Exports, peer, pinning.
    let mut fx = Fixture::new().context("creating the exported buffers and fences")?;
    let bytes = MessageBytes {
        frame: fixture::wire_bytes(&fx.message(5000, true)?)?,
        release: fixture::wire_bytes(&fixture::release_message())?,
        pixels: fixture::FRAME_BYTES,
    };
    let mut peer =
        Peer::spawn(Some(cores.consumer), fx.progress_page()).context("starting the bench peer")?;
    cores::pin(cores.producer)?;
    let pair = [cores.producer, cores.consumer];
    let pair_note = cores.describe();

    // 2. Items 1 to 4.
    cross_process(
        &mut items, &mut peer, &mut fx, &plans, bytes, &pair, &pair_note,
    )?;
    peer.exit()?;

    // 3. Item 9, on the producer's CPU.
    let one = [cores.producer];
    let one_note = format!("this process, pinned to cpu {}", cores.producer);
    present_item(&mut items, &mut failures, plans.present, &one, &one_note);

    // 4. Items 7 and 6, unpinned.
    cores.restore()?;
    let dir = std::env::temp_dir().join(format!("triptych-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let unpinned = format!(
        "not pinned: the pipeline's three processes run where the scheduler puts them, on CPUs {:?}",
        cores.allowed
    );
    let mut baseline_frame: Option<(f64, u64)> = None;
    for &k in &plans.layers {
        let label = Label {
            item: "7",
            name: "",
            value: format!("handoff in `triptych run`, 1080p, {k} layer(s)"),
            baseline: String::new(),
            unit: "ns per frame",
        };
        let name = format!("end_to_end_1080p_{k}_layers");
        match runs::end_to_end(&dir, k, plans.frames) {
            Ok(r) => {
                let frame_ns = 1e9 / r.fps;
                if k == plans.chaos_layers {
                    baseline_frame = Some((frame_ns, r.frames));
                }
                let label = Label {
                    name: &name,
                    baseline: format!("frame time at {:.1} fps (1 / fps)", r.fps),
                    ..label
                };
                let mut extra = BTreeMap::new();
                extra.insert("fps".to_owned(), Value::from(r.fps));
                extra.insert("layers".to_owned(), Value::from(r.layers));
                extra.insert("frames".to_owned(), Value::from(r.frames));
                extra.insert("size".to_owned(), Value::from(format!("{WIDTH}x{HEIGHT}")));
                extra.insert("backend".to_owned(), Value::from(r.backend.clone()));
                items.push(Item::reported(
                    &label,
                    r.handoff_p50_ns,
                    r.handoff_p99_ns,
                    r.handoff_count,
                    frame_ns,
                    r.frames,
                    &unpinned,
                    extra,
                ));
            }
            Err(e) => {
                let why = format!("item 7 with {k} layers: {e:#}");
                failures.push(why.clone());
                items.push(Item::missing(
                    &Label {
                        name: &name,
                        baseline: "frame time (1 / fps)".into(),
                        ..label
                    },
                    None,
                    why,
                ));
            }
        }
    }
    chaos_items(
        &mut items,
        &mut failures,
        &dir,
        &plans,
        baseline_frame,
        &unpinned,
    );
    standby_item(&mut items, &mut failures, &dir, &plans, &unpinned);
    trace_items(&mut items, &mut failures, &dir, &plans, &unpinned);
    cpu_item(&mut items, &mut failures, &dir, &plans, &unpinned);
    mailbox_item(&mut items, &mut failures, &dir, &plans, &unpinned);
    progress_item(&mut items, &mut failures, &dir, &plans, &unpinned);
    views_item(&mut items, &mut failures, &dir, &plans, &unpinned);
    idle_item(&mut items, &mut failures, &dir, &plans);
    edit_items(&mut items, &mut failures, &dir, &plans);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove the bench's scratch directory");
    }

    // 5. Report.
    machine.loadavg_end = report::loadavg();
    let report = Report {
        version: 1,
        build,
        quick: args.quick,
        seconds: started.elapsed().as_secs_f64(),
        machine,
        cores,
        message_bytes: bytes,
        items,
        failures,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report).context("encoding the report")? + "\n"
    } else {
        report.table()
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("printing the report")?;
    if !report.failures.is_empty() {
        anyhow::bail!(
            "{} measurement(s) failed: {}",
            report.failures.len(),
            report.failures.join("; ")
        );
    }
    Ok(())
}

/// Item 9: MIT-SHM `ShmPutImage` of a 1080p slot against `memcpy`; not measured, with the
/// reason, where no X server with `ShmAttachFd` can be had.
fn present_item(
    items: &mut Vec<Item>,
    failures: &mut Vec<String>,
    plan: Plan,
    cores: &[usize],
    note: &str,
) {
    let label = Label {
        item: "9",
        name: "present_shm_1080p",
        value: "present cost per frame: X11 ShmPutImage of a 1080p slot + flush".into(),
        baseline: format!("memcpy of the frame's {} bytes", fixture::FRAME_BYTES),
        unit: "ns per frame",
    };
    const GOAL: f64 = 0.05;
    match present::measure(plan) {
        Ok(m) => items.push(
            Item::measured(&label, m.put, m.memcpy, Some(GOAL), plan, cores, note)
                .with("server", m.server),
        ),
        Err(e) => {
            let why = format!("{e:#}");
            if e.downcast_ref::<present::NoServer>().is_none() {
                failures.push(format!("item 9: {why}"));
            }
            let mut it = Item::missing(&label, Some(GOAL), why);
            it.cores = cores.to_vec();
            it.cores_note = note.to_owned();
            items.push(it);
        }
    }
}
