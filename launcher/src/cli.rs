//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Invocations shown under `triptych --help`.
const EXAMPLES: &str = "\
Examples:
  triptych run                        a window where WAYLAND_DISPLAY or DISPLAY is set, else a PNG
  triptych run --headless --frames 600 --size 1920x1080 --out last.png --verify
  triptych run --window --layers 5    in a window; space pauses, g and r kill a child, q quits
  triptych run --headless --chaos 7 --chaos-kills 10 --summary-json summary.json
  triptych run --headless --trace run.json && triptych trace-summary run.json
  triptych doctor                     what this machine supports, and what run will choose";

/// Invocations shown under `triptych run --help`.
const RUN_EXAMPLES: &str = "\
Examples:
  triptych run --headless --frames 600 --out last.png
  triptych run --headless --size 1920x1080 --layers 8 --verify
  triptych run --window --size 1280x720
  triptych run --headless --buffers shm --transport scm-rights
  triptych run --headless --chaos 7 --chaos-kills 10 --summary-json summary.json
  triptych run --headless --fault gpu-after-export:stop-fences@20
  triptych run --headless --trace run.json && triptych trace-summary run.json";

/// triptych: a multi-process, sandboxed renderer.
#[derive(Debug, Parser)]
#[command(
    name = "triptych",
    version,
    about,
    after_help = EXAMPLES,
    after_long_help = format!("{EXAMPLES}\n\n{}", crate::exit::HELP),
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the GPU process and the renderer, composite frames, present them in a window or
    /// headless (the last frame as a PNG).
    #[command(
        after_help = RUN_EXAMPLES,
        after_long_help = format!("{RUN_EXAMPLES}\n\n{}", crate::exit::HELP),
    )]
    Run(RunArgs),
    /// Print what this machine supports, how `run` will present (a window or a PNG) and what
    /// `--buffers auto` would choose, and why.
    Doctor(DoctorArgs),
    /// Print per-stage latencies (p50, p99, max) and the end-to-end handoff latency of a trace
    /// written by `run --trace`.
    TraceSummary(TraceSummaryArgs),
}

/// How buffer and fence fds travel from the GPU process to the renderer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// `pidfd_getfd` where the self-test of `triptych doctor` shows it works, else SCM_RIGHTS.
    Auto,
    /// The renderer takes them from the GPU process's export window with `pidfd_getfd`.
    Pidfd,
    /// The GPU process sends them over a unix socket (`SCM_RIGHTS`): for systems where ptrace
    /// is locked down (Yama ptrace_scope 3, container policies).
    ScmRights,
}

/// Whether the seccomp policies are enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SandboxMode {
    /// A call outside its role's policy kills the child and is reported as a violation.
    Enforce,
    /// For testing the policies against a new C library, driver or kernel: a call outside the
    /// policy is recorded (role, call, arguments) and then allowed to run, and the summary lists
    /// every such call. The children are NOT confined by seccomp in this mode; the other
    /// layers (namespaces, capabilities, resource limits) stay on.
    Learn,
}

/// Which buffer backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Buffers {
    /// DMA-BUF where the GPU process can export it and the renderer can map it, else shm.
    Auto,
    /// Sealed memfds filled by GL read-back, with pipe fences.
    Shm,
    /// DMA-BUFs exported from GL with sync_file fences; fails rather than falling back.
    Dmabuf,
}

/// A frame size, `WxH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (w, h) = s
            .split_once(['x', 'X'])
            .ok_or_else(|| format!("size {s:?} is not WxH, e.g. 640x480"))?;
        let parse = |v: &str, what: &str| {
            v.parse::<u32>()
                .ok()
                .filter(|n| (1..=8192).contains(n))
                .ok_or_else(|| format!("{what} {v:?} in size {s:?} is not a number from 1 to 8192"))
        };
        Ok(Size {
            width: parse(w, "width")?,
            height: parse(h, "height")?,
        })
    }
}

/// Arguments of `triptych run`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// Show the frames in a window (Wayland where `WAYLAND_DISPLAY` is set, else X11). The
    /// default when `WAYLAND_DISPLAY` or `DISPLAY` is set.
    #[arg(long, conflicts_with = "headless")]
    pub window: bool,
    /// Never open a window, even where a display is available: frames end up in `--out`.
    #[arg(long)]
    pub headless: bool,
    /// Frames to render, composite and present. In a window, the last one stays on screen
    /// until the window is closed, `q` is pressed or the launcher is interrupted.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub frames: u64,
    /// Frame size.
    #[arg(long, default_value = "640x480")]
    pub size: Size,
    /// Number of layers (1 to 8) of the built-in deterministic scene.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub layers: u32,
    /// Draw this scene file (TOML; see the scene crate's `file` module for the format) instead
    /// of the built-in deterministic scene; `default` is the built-in example scene file.
    /// Images it names are read relative to the file.
    #[arg(long, conflicts_with = "layers")]
    pub scene: Option<PathBuf>,
    /// The loaded `--scene`, filled in before the run starts (not an option).
    #[arg(skip)]
    pub loaded_scene: Option<std::sync::Arc<crate::scene::LoadedScene>>,
    /// Write the last composited frame to this PNG file.
    #[arg(long, default_value = "triptych-frame.png")]
    pub out: PathBuf,
    /// Buffer backend.
    #[arg(long, value_enum, default_value_t = Buffers::Auto)]
    pub buffers: Buffers,
    /// How fds travel from the GPU process to the renderer.
    #[arg(long, value_enum, default_value_t = TransportArg::Auto)]
    pub transport: TransportArg,
    /// Enforce the seccomp policies, or learn what each role calls beyond them.
    #[arg(long, value_enum, default_value_t = SandboxMode::Enforce)]
    pub sandbox: SandboxMode,
    /// Pool buffers per layer (at least 3).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(3..=16))]
    pub pool: u32,
    /// How long the renderer waits for a fence, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub fence_timeout_ms: u32,
    /// Compare the last presented frame, pixel for pixel, with the reference composite the scene
    /// computes on the CPU; a difference fails the run (exit status 3) and is listed.
    #[arg(long)]
    pub verify: bool,
    /// Also write the run summary as JSON to this file.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Redraw, read back, composite and present every frame whole, instead of only what
    /// changed (damage tracking), for comparison.
    #[arg(long)]
    pub no_damage: bool,
    /// Record a trace of every frame across all processes and write it here (Chrome
    /// trace-event JSON, opens in Perfetto and chrome://tracing).
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Chaos mode: kill children at random points of the frame path, chosen by this seed.
    #[arg(long)]
    pub chaos: Option<u64>,
    /// How many kills chaos mode makes (spread over the run).
    #[arg(long, default_value_t = 20)]
    pub chaos_kills: u32,
    /// Crashes of one role within `--restart-window-s` before the GPU process steps down the
    /// fallback ladder (dmabuf -> shm) or, for the renderer, the run gives up.
    #[arg(long, default_value_t = 3)]
    pub max_crashes: u32,
    /// The window, in seconds, in which crashes are counted; older ones are forgiven.
    #[arg(long, default_value_t = 60)]
    pub restart_window_s: u64,
    /// How often the launcher pings each child, in milliseconds.
    #[arg(long, default_value_t = 250)]
    pub heartbeat_ms: u64,
    /// A child that has not answered a ping for this long is hung: it is killed and restarted.
    #[arg(long, default_value_t = 3000)]
    pub hang_timeout_ms: u64,
    /// Inject one fault (repeatable): `POINT:ACTION@FRAME`, POINT one of gpu-render,
    /// gpu-after-export, renderer-fence-wait, renderer-composite; ACTION one of kill, segv,
    /// abort, stop-fences (GPU points only). E.g. `gpu-after-export:stop-fences@20`.
    #[arg(long = "fault", value_parser = crate::chaos::parse_fault)]
    pub faults: Vec<ipc_protocol::messages::Fault>,
    /// Testing aid: make every GPU process started with this backend request crash at start-up
    /// (exercises the fallback ladder).
    #[arg(long, value_enum)]
    pub crash_gpu_on_start_with: Option<Buffers>,
}

/// Arguments of `triptych doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `triptych trace-summary`.
#[derive(Debug, clap::Args)]
pub struct TraceSummaryArgs {
    /// The trace file (Chrome trace-event JSON written by `triptych run --trace`).
    pub file: PathBuf,
}
