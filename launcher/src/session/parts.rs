//! The supervisor's state, in parts that each own one concern: the pair of children with their
//! ladders, the timings, the traces, liveness, policing, evidence, chaos, geometry, input, the
//! scene drawn and the embedding link. Each part is plain data with the invariants its
//! constructors set; the supervisor's methods (the other files of this module) change them.

use std::time::Instant;

use ipc_protocol::messages::{BackendRequest, Fault};
use ipc_protocol::rules;
use triptych_trace::{ProcessInfo, Recorder};

use super::{corroborate, quiet, witness, Budgets, Gpu, Recovery, Renderer, Traces};
use crate::chaos::Plan;
use crate::crash::Ladder;
use crate::present::Screen;
use crate::summary::Samples;

/// The GPU process and the renderer: the processes, their restart ladders, the epoch, the
/// output shown while a renderer is replaced, and the recovery under way.
pub(super) struct Pair {
    /// The GPU process's fallback ladder and restart policy.
    pub(super) gpu_ladder: Ladder<BackendRequest>,
    /// The renderer's restart policy (one rung).
    pub(super) renderer_ladder: Ladder<()>,
    /// The current GPU process's epoch: one more at every start.
    pub(super) epoch: u64,
    pub(super) gpu: Option<Gpu>,
    pub(super) renderer: Option<Renderer>,
    /// The previous renderer's output, shown until the new renderer presents.
    pub(super) old_screen: Option<Screen>,
    /// A replacement started, its first frame awaited.
    pub(super) recovery: Option<Recovery>,
}

/// The timings the summary reports.
#[derive(Debug)]
pub(super) struct Metrics {
    /// From a crash's detection to the replacement's first frame.
    pub(super) recoveries: Samples,
    /// From a kill to its detection.
    pub(super) detections: Samples,
    /// From a frame's description sent to its fences signalled.
    pub(super) handoff: Samples,
    /// From a frame's description sent to its hand-over to the launcher.
    pub(super) end_to_end: Samples,
    /// From a frame's fences signalled to its hand-over to the display server.
    pub(super) present_latency: Samples,
    pub(super) first_present: Option<Instant>,
    pub(super) last_present: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            recoveries: Samples::default(),
            detections: Samples::default(),
            handoff: Samples::default(),
            end_to_end: Samples::default(),
            present_latency: Samples::default(),
            first_present: None,
            last_present: Instant::now(),
        }
    }
}

/// The launcher's own trace and what the children sent.
#[derive(Debug)]
pub(super) struct Tracing {
    pub(super) rec: Recorder,
    /// The children's trace events, within a memory budget per role.
    pub(super) traces: Traces,
    /// The processes the trace names.
    pub(super) processes: Vec<ProcessInfo>,
}

/// Whether the children answer, and when the run last got anywhere.
#[derive(Debug)]
pub(super) struct Liveness {
    pub(super) ping_seq: u64,
    pub(super) last_ping: Instant,
    /// The last time a frame reached the screen or a child was (re)started.
    pub(super) last_progress: Instant,
}

impl Default for Liveness {
    fn default() -> Self {
        let now = Instant::now();
        Liveness {
            ping_seq: 0,
            last_ping: now,
            last_progress: now,
        }
    }
}

/// What the children may send and claim: the frames produced and presented, the budgets,
/// the rate-limited logging of their noise, and the fence-timeout claims being checked.
#[derive(Debug, Default)]
pub(super) struct Policing {
    /// What was produced and presented, in order.
    pub(super) frames: rules::Frames,
    pub(super) budgets: Budgets,
    pub(super) quiet: quiet::Quiet,
    /// Fence-timeout claims being checked.
    pub(super) checks: corroborate::Checks,
}

/// Breaches and stalls seen, waiting for the main loop to act on them.
#[derive(Debug, Default)]
pub(super) struct Evidence {
    /// A renderer violation the GPU process reported and the launcher saw; acted on in the main
    /// loop, against the renderer of that pid only (never a replacement).
    pub(super) pending_renderer_breach: Option<(u32, rules::Breach)>,
    /// A GPU violation found while handling a renderer message; acted on in the main loop.
    pub(super) pending_gpu_breach: Option<rules::Breach>,
    /// During a stall: what was seen waiting at the head of the renderer's queue of frames and
    /// of the GPU process's queue of releases, and since when.
    pub(super) unread_frames: Option<witness::UnreadHead>,
    pub(super) unread_releases: Option<witness::UnreadHead>,
}

/// Chaos mode: the kills and faults planned, and what was done.
#[derive(Debug)]
pub(super) struct Chaos {
    pub(super) plan: Plan,
    /// The faults fired, as the children reported them.
    pub(super) fired: Vec<Fault>,
    /// When each kill was made: (pid, nanoseconds).
    pub(super) kill_times: Vec<(u32, u64)>,
}

impl Chaos {
    /// Chaos that carries out `plan`.
    pub(super) fn new(plan: Plan) -> Chaos {
        Chaos {
            plan,
            fired: Vec::new(),
            kill_times: Vec::new(),
        }
    }
}

/// The frame size now, its generation, and the largest the output slots hold.
#[derive(Debug)]
pub(super) struct Geometry {
    /// The frame size now (the window's, once resized).
    pub(super) size: (u32, u32),
    /// The frame size's generation: one more at every resize.
    pub(super) generation: u32,
    /// The largest frame size the output slots hold.
    pub(super) max_size: (u32, u32),
}

/// What the user did with the pointer.
#[derive(Debug, Default)]
pub(super) struct Input {
    /// Layers the user moved by dragging them.
    pub(super) moves: triptych_scene::Moves,
    /// The layer under the pointer, drawn outlined.
    pub(super) hover: Option<u32>,
    /// Whether the GPU process has yet to hear of `hover`.
    pub(super) hover_dirty: bool,
}

/// The scene drawn.
#[derive(Debug)]
pub(super) struct Drawn {
    /// The scene file drawn (the configuration's at first, then what `Shell::set_scene` gave).
    pub(super) scene: Option<std::sync::Arc<crate::scene::LoadedScene>>,
    /// The layers of the scene drawn.
    pub(super) layers: u32,
    /// Which scene: 0 at first, one more at every change.
    pub(super) scene_id: u32,
}

/// The application embedding this run, if one does (`crate::shell`).
#[derive(Debug)]
pub(super) struct Embedding {
    pub(super) embed: Option<crate::embedding::Link>,
    /// The application asked the run to end.
    pub(super) embed_quit: bool,
    /// A frame event was dropped for the application since the last one it got.
    pub(super) embed_owed: bool,
}
