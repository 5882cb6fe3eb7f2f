//! The command line: what `triptych` accepts, and the [`RunConfig`] a `run` becomes.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use triptych::config::{self, RunConfig, Size};

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
    Run(Box<RunArgs>),
    /// Print what this machine supports, how `run` will present (a window or a PNG) and what
    /// `--buffers auto` would choose, and why.
    Doctor(DoctorArgs),
    /// Print per-stage latencies (p50, p99, max) and the end-to-end handoff latency of a trace
    /// written by `run --trace`.
    TraceSummary(TraceSummaryArgs),
}

/// `on` or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
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
    /// Sealed memfds filled by GL read-back, fenced with points of a progress page (or pipes).
    Shm,
    /// DMA-BUFs exported from GL with sync_file fences; fails rather than falling back.
    Dmabuf,
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
    /// A view (repeatable): a sandboxed renderer of its own drawing this scene file
    /// (`default`: the built-in example scene file), all views served by one GPU process. The
    /// first `--view` takes the place of `--scene`; each further one adds a view. In a window
    /// the views are tiled, each `--size` large; headless, each view's last frame is written
    /// beside `--out` as `NAME-viewN.png`.
    #[arg(long = "view", value_name = "SCENE", conflicts_with_all = ["scene", "layers", "control"])]
    pub views: Vec<PathBuf>,
    /// The most views a run may have (1 to 64); by default sized from the machine's memory.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_views: Option<u32>,
    /// Edit the scene while it runs: read transactions from this file (`-`: standard input),
    /// one JSON object per line, such as `{"set": {"title": {"text": "12:00:01"}}}`, and
    /// answer each with one JSON line on standard output (the summary goes to standard error).
    /// Headless only; without `--scene`, the built-in scene file (`--scene default`) is drawn.
    #[arg(long, value_name = "PATH|-", conflicts_with_all = ["layers", "window"])]
    pub control: Option<PathBuf>,
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
    /// Keep a standby GPU process warm (spawned, sandboxed, its GL context made) and promote it
    /// when the GPU process dies, instead of starting one cold.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub standby: Switch,
    /// Send the steady messages between the launcher and each child, both ways (frame requests,
    /// produced and presented frames, slots handed back, pings), through shared-memory
    /// mailboxes; off, each is a socket message.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub mailbox: Switch,
    /// Fences with no file per layer per frame: with shm buffers, a number in a page of shared
    /// memory the GPU process writes and the renderer can only read; with DMA-BUFs whose fences
    /// lie on the buffer (vgem, or a driver's implicit fences), the fences of a buffer the
    /// renderer already holds. Off: a pipe or a sync_file per layer per frame, taken by the
    /// renderer as a file.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub progress_fences: Switch,
    /// Without a window: pace frames to this many a second (1 to 1000), as a display's refresh
    /// paces a window's; by default they are made as fast as they can be.
    #[arg(long)]
    pub fps: Option<u32>,
    /// Inject one fault (repeatable): `POINT:ACTION@FRAME`, POINT one of gpu-render,
    /// gpu-after-export, renderer-fence-wait, renderer-composite; ACTION one of kill, segv,
    /// abort, stop-fences or late-fences (GPU points only; late-fences signals one frame's
    /// fences 400 ms late). E.g. `gpu-after-export:stop-fences@20`.
    #[arg(long = "fault", value_parser = triptych::config::parse_fault)]
    pub faults: Vec<ipc_protocol::messages::Fault>,
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

impl RunArgs {
    /// The engine's configuration of this run.
    pub fn config(&self) -> RunConfig {
        let mut c = RunConfig::default();
        c.frames = self.frames;
        c.size = self.size;
        c.layers = self.layers;
        c.scene = self.scene.clone();
        if let Some((first, more)) = self.views.split_first() {
            c.scene = Some(first.clone());
            c.views = more.to_vec();
        }
        c.max_views = self.max_views;
        if self.control.is_some() && c.scene.is_none() {
            c.scene = Some(PathBuf::from("default"));
        }
        c.out = self.out.clone();
        c.buffers = self.buffers.into();
        c.transport = self.transport.into();
        c.sandbox = self.sandbox.into();
        c.pool = self.pool;
        c.fence_timeout_ms = self.fence_timeout_ms;
        c.verify = self.verify;
        c.no_damage = self.no_damage;
        c.trace = self.trace.clone();
        c.mailbox = self.mailbox == Switch::On;
        c.progress_fences = self.progress_fences == Switch::On;
        c.fps = self.fps;
        c.supervision = config::Supervision {
            max_crashes: self.max_crashes,
            restart_window_s: self.restart_window_s,
            heartbeat_ms: self.heartbeat_ms,
            hang_timeout_ms: self.hang_timeout_ms,
            standby: self.standby == Switch::On,
        };
        c.chaos = config::Chaos {
            seed: self.chaos,
            kills: self.chaos_kills,
            faults: self.faults.clone(),
        };
        c
    }

    /// Whether the run opens a window, and why (or why not): `--headless` never, `--window`
    /// always (an error without a display), else where `WAYLAND_DISPLAY` or `DISPLAY` is set.
    pub fn windowed(&self) -> Result<bool, String> {
        if self.headless || self.control.is_some() {
            return Ok(false);
        }
        let set = |v: &str| std::env::var_os(v).is_some_and(|d| !d.is_empty());
        match (self.window, set("WAYLAND_DISPLAY") || set("DISPLAY")) {
            (_, true) => Ok(true),
            (true, false) => {
                Err("--window: no display (neither WAYLAND_DISPLAY nor DISPLAY is set)".into())
            }
            (false, false) => Ok(false),
        }
    }
}

impl From<Buffers> for config::Buffers {
    fn from(b: Buffers) -> Self {
        match b {
            Buffers::Auto => config::Buffers::Auto,
            Buffers::Shm => config::Buffers::Shm,
            Buffers::Dmabuf => config::Buffers::Dmabuf,
        }
    }
}

impl From<TransportArg> for config::Transport {
    fn from(t: TransportArg) -> Self {
        match t {
            TransportArg::Auto => config::Transport::Auto,
            TransportArg::Pidfd => config::Transport::Pidfd,
            TransportArg::ScmRights => config::Transport::ScmRights,
        }
    }
}

impl From<SandboxMode> for config::SandboxMode {
    fn from(m: SandboxMode) -> Self {
        match m {
            SandboxMode::Enforce => config::SandboxMode::Enforce,
            SandboxMode::Learn => config::SandboxMode::Learn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `triptych run` with no options is the engine's default configuration: the defaults are
    /// written twice (here for `--help`, in `RunConfig::default` for applications) and must
    /// agree.
    #[test]
    fn the_command_lines_defaults_are_the_engines() {
        let cli = Cli::parse_from(["triptych", "run"]);
        let Command::Run(args) = cli.command else {
            panic!("not a run");
        };
        let from_cli = serde_json::to_value(args.config()).expect("encoding");
        let engine = serde_json::to_value(RunConfig::default()).expect("encoding");
        assert_eq!(from_cli, engine);
    }
}
