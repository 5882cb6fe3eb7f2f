//! The run summary: what ran, how fast, and through which paths.
//!
//! Printed at exit, and written as JSON with `--summary-json` for tests and tools. It names the
//! buffer backend, the fence kind and the fd transport that actually ran, and any fallback taken
//! and why, so a run on a slow path can never pass for the fast one. It is made of one part per
//! subsystem ([`RunSummary`]: frames, latency, paths, trust, recovery, ...), each a struct of its
//! own, and the JSON has the same shape.

use serde::Serialize;

use ipc_protocol::messages::RendererStats;

/// Percentiles of a latency, in microseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Samples.
    pub count: usize,
}

/// Samples kept at most by [`Samples`]: 512 KiB a series, whatever the run's length.
pub const RESERVOIR: usize = 65_536;

/// A series of latency samples in bounded memory. Every sample is kept up to [`RESERVOIR`];
/// past that a uniform random sample of all of them is (Vitter's Algorithm R), so a run of any
/// length costs the same memory. The count and the maximum stay exact; percentiles are exact up
/// to [`RESERVOIR`] samples and estimates beyond.
#[derive(Debug, Default)]
pub struct Samples {
    kept: Vec<u64>,
    seen: u64,
    max: u64,
    rng: u64,
}

impl Samples {
    /// Adds one sample.
    pub fn push(&mut self, v: u64) {
        self.seen += 1;
        self.max = self.max.max(v);
        if self.kept.len() < RESERVOIR {
            self.kept.push(v);
            return;
        }
        // xorshift64*, seeded on first use: reproducibility does not matter here, spread does.
        if self.rng == 0 {
            self.rng = 0x9E37_79B9_7F4A_7C15;
        }
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % self.seen;
        if let Some(slot) = self.kept.get_mut(r as usize) {
            *slot = v;
        }
    }

    /// The series' percentiles.
    pub fn latency(self) -> Latency {
        let (seen, max) = (self.seen, self.max);
        let mut l = Latency::of(self.kept);
        if seen > 0 {
            l.count = seen as usize;
            l.max_us = max as f64 / 1000.0;
        }
        l
    }
}

impl Latency {
    /// Computes nearest-rank percentiles of `samples_ns`.
    pub fn of(mut samples_ns: Vec<u64>) -> Self {
        if samples_ns.is_empty() {
            return Self::default();
        }
        samples_ns.sort_unstable();
        let us = |v: u64| v as f64 / 1000.0;
        Self {
            p50_us: us(triptych_trace::percentile(&samples_ns, 50.0)),
            p99_us: us(triptych_trace::percentile(&samples_ns, 99.0)),
            max_us: us(*samples_ns.last().unwrap_or(&0)),
            count: samples_ns.len(),
        }
    }
}

/// Process ids of the run.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Pids {
    /// The launcher.
    pub launcher: u32,
    /// The GPU process.
    pub gpu: u32,
    /// The renderer.
    pub renderer: u32,
    /// The standby GPU process at the end of the run (shut down with the others), 0 if none.
    pub standby: u32,
}

/// Open fd counts, sampled after the 10th frame and after the last.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct FdCounts {
    /// Launcher after frame 10.
    pub launcher_at_10: Option<usize>,
    /// Renderer after frame 10.
    pub renderer_at_10: Option<usize>,
    /// Launcher after the last frame.
    pub launcher_at_end: Option<usize>,
    /// Renderer after the last frame.
    pub renderer_at_end: Option<usize>,
    /// Fence fds the renderer still held after the last frame (must be 0). The other counts
    /// leave fences out: they live only while a frame waits on them.
    pub renderer_fences_at_end: Option<usize>,
    /// The launcher's peak resident memory over the run, KiB (`VmHWM`).
    pub launcher_peak_rss_kib: Option<u64>,
}

/// What damage tracking saved: the frames' changed and composited pixels against their size,
/// as each `Presented` said.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct DamageSummary {
    /// Whether it was on (`--no-damage` turns it off).
    pub on: bool,
    /// Output pixels that changed from the frame before, over all frames.
    pub damaged_px: u64,
    /// Pixels the renderer composited, over all frames.
    pub composited_px: u64,
    /// Pixels of the frames, over all frames.
    pub output_px: u64,
    /// `damaged_px / output_px`: the mean damaged fraction of a frame.
    pub mean_damaged_fraction: f64,
    /// `composited_px / output_px`.
    pub mean_composited_fraction: f64,
}

impl DamageSummary {
    /// Counts one frame.
    pub fn add(&mut self, damaged: u64, composited: u64, output: u64) {
        self.damaged_px += damaged;
        self.composited_px += composited;
        self.output_px += output;
        let total = self.output_px.max(1) as f64;
        self.mean_damaged_fraction = self.damaged_px as f64 / total;
        self.mean_composited_fraction = self.composited_px as f64 / total;
    }

    /// The summary's line.
    pub fn line(&self) -> String {
        if !self.on {
            return "off (--no-damage): every frame redrawn, read back and composited whole".into();
        }
        format!(
            "on; mean damaged fraction {:.2}% of each frame, {:.2}% composited (as the renderer reported)",
            self.mean_damaged_fraction * 100.0,
            self.mean_composited_fraction * 100.0
        )
    }
}

/// Everything the summary reports, one part per subsystem.
///
/// The JSON (`--summary-json`) has the same shape: one object per part (`frames`, `latency`,
/// `paths`, `renderer`, `damage`, `trust`, `recovery`, `trace`, `processes`, `sandbox`), beside
/// the run's two verdicts, `verified` and `failure`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunSummary {
    /// Frames presented, their size and pace, and those handed back unshown.
    pub frames: Frames,
    /// How long a frame took between the processes, and the longest pings.
    pub latency: Latencies,
    /// Which paths ran (buffers, fences, fd transport, presenting), and why not the fast one
    /// where they are not.
    pub paths: Paths,
    /// The renderer's counters.
    pub renderer: RendererStats,
    /// Damage tracking.
    pub damage: DamageSummary,
    /// What the children claimed that the launcher refused, or could not check.
    pub trust: Trust,
    /// With `--verify`: the last frame compared with the reference composite.
    pub verified: Option<crate::verify::Verification>,
    /// Crashes, hangs and faults, and how the run recovered from them.
    pub recovery: Recovery,
    /// The trace, when `--trace` wrote one.
    pub trace: TraceFile,
    /// The run's processes: their ids, open fds and stderr.
    pub processes: Processes,
    /// Which sandbox layers were on, as read from `/proc`, and every violation.
    pub sandbox: SandboxSummary,
    /// What ended the run before its last frame, when something did (a child that could not
    /// be kept running names its role and its ladder here).
    pub failure: Option<String>,
    /// Every view of the run, the first first (its frames are also `frames`'s).
    pub views: Vec<ViewSummary>,
}

/// One view of a run: its renderer's frames, restarts and budgets' use.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ViewSummary {
    /// The view's number.
    pub view: u32,
    /// The scene file it drew, if one (the built-in panels otherwise).
    pub scene: Option<String>,
    /// Frames of it presented.
    pub frames: u64,
    /// Number of the last frame of it presented.
    pub last: Option<u64>,
    /// Its renderer's crashes (each restarted it alone).
    pub restarts: u32,
    /// Its renderer's pid at the end.
    pub renderer_pid: u32,
    /// Its renderer's resident memory at the end, in KiB.
    pub renderer_rss_kib: Option<u64>,
    /// Its renderer's CPU time, user and system, in milliseconds, over its life (the one
    /// running at the end).
    pub renderer_cpu_ms: Option<f64>,
    /// Wall time from its first frame presented to its last, in seconds.
    pub seconds: f64,
    /// The most of its buffers its renderer held at once, of the pool it may hold
    /// (`pool_buffers`).
    pub held_max: u64,
    /// Its pool: buffers per layer times layers.
    pub pool_buffers: u64,
    /// Where its last frame was written.
    pub out: Option<String>,
    /// With `--verify`: its last frame compared with its scene's reference composite.
    pub verified: Option<crate::verify::Verification>,
    /// Why it was given up before the end, if it was (its renderer crashed too often): the
    /// other views went on.
    pub failed: Option<String>,
    /// The application removed it before the end ([`crate::shell::Shell::remove_view`]); its
    /// counts are those at its removal.
    pub removed: bool,
    /// Its frame width at the end (each view has a size of its own).
    pub width: u32,
    /// Its frame height at the end.
    pub height: u32,
    /// Where the application placed it (`x`, `y`; [`crate::shell::Shell::set_view_rect`]);
    /// none: tiled.
    pub placed: Option<[i32; 2]>,
}

/// The frames of a run: how many were presented, at which size and pace, where the last one
/// went, and those composited but never shown.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Frames {
    /// Frames presented.
    pub count: u64,
    /// Number of the last frame presented.
    pub last: Option<u64>,
    /// Frame width, in pixels (the window's last, after any resize).
    pub width: u32,
    /// Frame height, in pixels (the window's last, after any resize).
    pub height: u32,
    /// Layers.
    pub layers: u32,
    /// Wall time from the first frame presented to the last, in seconds.
    pub seconds: f64,
    /// Frames per second over that time.
    pub fps: f64,
    /// Where the last frame was written.
    pub out: Option<String>,
    /// Frames composited at a size the window no longer had, handed back unshown.
    pub dropped_for_resize: u64,
    /// Frames composited from a dead GPU process's work at or past the frame its replacement
    /// resumes from, handed back unshown: the replacement draws them again, and showing them
    /// first would put the screen back in time when its own arrive.
    pub superseded: u64,
    /// Resizes of views' frames, each view's counted: a window's resize (or an embedding
    /// shell's `resize`) of four tiled views is four, a view placed at a new size one.
    pub resizes: u64,
    /// Scenes an embedding application switched to while the run went on.
    pub scene_changes: u64,
    /// Edits of the scene drawn, without new children (`Shell::edit`, `--control`).
    pub scene_edits: u64,
    /// Without a window, the rate frames were paced to (`--fps`); `None`, unpaced (or paced by
    /// the window).
    pub paced_fps: Option<u32>,
}

/// How long a frame took from one process to the next, and how long each child's loop could
/// be kept from answering.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latencies {
    /// From the GPU process sending a description to the renderer having every layer fetched,
    /// mapped and its fence signalled.
    pub handoff: Latency,
    /// From the GPU process sending a description to the launcher presenting the composite.
    pub end_to_end: Latency,
    /// From the GPU done (every layer's fence signalled) to the frame handed to the display
    /// server (headless: to the output).
    pub present: Latency,
    /// Longest ping round trip to the renderer, in microseconds: how long its loop can be
    /// kept from answering (it must never block on a fence).
    pub renderer_ping_max_us: f64,
    /// Longest ping round trip to the GPU process, in microseconds.
    pub gpu_ping_max_us: f64,
}

/// The paths a frame took, as they actually ran, and why each is not the fast one where it is
/// not: a run on a slow path can never pass for the fast one.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Paths {
    /// Buffer backend that ran.
    pub backend: String,
    /// Why the backend is not the one asked for, when it is not.
    pub backend_reason: Option<String>,
    /// Fence kind that ran.
    pub fence: String,
    /// fd transport that ran (why: [`SandboxSummary::transport_reason`]).
    pub transport: String,
    /// GL facts from the GPU process.
    pub gl: String,
    /// How frames reached the screen: `headless` (a PNG at exit) or the window's present path.
    pub present: String,
    /// Why presenting copies, where it does.
    pub present_reason: Option<String>,
    /// How the messages between the launcher and the children went: `mailbox` (shared-memory
    /// rings, the socket only for what a record cannot carry), `socket`, or, where some
    /// children's mailboxes could not be made, `mailbox, but the socket for N children`.
    pub child_events: String,
    /// Why the children's messages took the socket, where they did.
    pub child_events_reason: Option<String>,
    /// Messages the launcher took from the children's mailboxes (every GPU process and
    /// renderer of the run).
    pub mailbox_records: u64,
    /// Messages the launcher took from the children's sockets (with a mailbox: those its ring
    /// announced, and any sent before the child adopted it).
    pub mailbox_on_socket: u64,
    /// Messages the launcher posted into the children's mailboxes (every GPU process and
    /// renderer of the run).
    pub mailbox_sent_records: u64,
    /// Messages the launcher sent the children on their sockets after announcing them in their
    /// mailboxes (those with fds, or too large for a record).
    pub mailbox_sent_on_socket: u64,
    /// The launcher's wake-ups of the children's mailbox readers: at most one per burst of
    /// messages to a sleeping reader.
    pub mailbox_sent_wakes: u64,
    /// The children's wake-ups of the launcher: its readers' sleeps on their mailboxes that
    /// ended with a record (a GPU process wakes it once for frames rendered back to back).
    pub mailbox_woken: u64,
    /// How the launcher read its renderers' messages: `polled` (its own loop looks at each
    /// renderer's mailbox once a turn, with no thread asleep on it: a paced run), `thread` (a
    /// thread per renderer waits on its mailbox or socket), or `mixed`.
    pub renderer_intake: String,
    /// How the launcher read the GPU process's messages once it had started: `polled` (its own
    /// loop reads the process's mailbox each turn and sleeps on it, waking for the process's
    /// frames with no thread between: a paced run without a window, on Linux 5.16 or later),
    /// `thread` (a thread waits on the mailbox or socket and hands each message on), or
    /// `mixed` (one way, then the other: after a replacement, or for a process that sent more
    /// than a turn takes).
    pub gpu_intake: String,
    /// The renderers' scheduling policy: `batch` (`SCHED_BATCH`, in a paced run: a renderer
    /// woken for a frame does not preempt the task running on its CPU, the launcher among
    /// them), `not batch: ` and why, for the first renderer that was not (`the run is not
    /// paced`, or what the kernel did), or `none` (no renderer was started).
    pub renderer_scheduling: String,
}

/// What one child said that the launcher did not take on trust: descriptions the renderer
/// refused, claims against the other child that could not be checked, and claims the
/// launcher's own check refuted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Trust {
    /// Descriptions the renderer rejected (the first 32).
    pub rejected: Vec<String>,
    /// Claims one child made against the other that the launcher could not check and did not
    /// act on (the first 32).
    pub uncorroborated: Vec<String>,
    /// Fence timeouts the renderer reported that the launcher's own check of the fence refuted.
    pub refuted_fence_timeouts: u64,
    /// Lies of a GPU process the launcher saw itself (each cost that process its life): a
    /// frame it refused to hand on ([`ipc_protocol::relay`]), or a fence the renderer said was
    /// no fence that the launcher's own look confirmed.
    pub proven_gpu_lies: u64,
    /// The renderer's claims of a fence that is no fence that the launcher's look refuted.
    pub refuted_fence_claims: u64,
    /// Those it did not look at: more than a few for one GPU process, a frame no longer among
    /// the last handed on, or a process no longer running.
    pub fence_claims_unlooked: u64,
    /// GPU processes whose frames the launcher vouched for, after a renderer's claim against
    /// each ([`LauncherToRenderer::Vouched`]): a slower path.
    ///
    /// [`LauncherToRenderer::Vouched`]: ipc_protocol::messages::LauncherToRenderer::Vouched
    pub vouched_gpus: u64,
    /// Frames handed on vouched for.
    pub vouched_frames: u64,
    /// Renderer claims about vouched-for frames (each a lie that cost the renderer its life).
    pub refuted_vouched_claims: u64,
}

/// Every crash and hang of the run, how fast each was noticed and repaired, and the faults and
/// kills that caused them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Recovery {
    /// Every crash and hang, with detection and recovery times.
    pub crashes: Vec<crate::crash::CrashRecord>,
    /// From a fault (injected or external kill) to the launcher noticing.
    pub detection: Latency,
    /// From noticing a crash to the replacement's first frame on screen.
    pub restart_to_first_frame: Latency,
    /// Steps down the fallback ladder, with why.
    pub fallbacks: Vec<String>,
    /// Injected faults that fired.
    pub faults_fired: Vec<String>,
    /// Kills the launcher sent from outside.
    pub external_kills: usize,
    /// Kills chaos mode planned, when it ran.
    pub chaos_kills_planned: Option<usize>,
    /// The standby GPU process: how GPU processes started, and what the standby cost.
    pub standby: StandbySummary,
}

/// How GPU processes started (the standby promoted, or cold), and what keeping a standby cost.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StandbySummary {
    /// Whether a standby was kept (`RunConfig::supervision.standby`, `--standby`).
    pub enabled: bool,
    /// GPU process starts that promoted the standby.
    pub promotions: u64,
    /// GPU process starts with no standby ready to promote (the run's first included).
    pub cold_starts: u64,
    /// Standbys that died, broke the protocol or failed to get ready before a promotion; each
    /// counts on the GPU process's crash ladder and has a crash record (`standby: true`).
    pub deaths: u64,
    /// Standbys shut down unused: the ladder stepped down, or the run ended.
    pub retired: u64,
    /// From spawning the latest standby to its `Ready`, in milliseconds.
    pub ready_ms: Option<f64>,
    /// What the latest standby held once ready: its resident memory (`VmRSS`), KiB.
    pub rss_kib: Option<u64>,
    /// Its proportional share of that (`Pss`, shared pages split among their users), KiB: the
    /// memory keeping a standby costs.
    pub pss_kib: Option<u64>,
}

impl StandbySummary {
    /// The summary's line; `pid` is the standby alive at the end of the run, 0 if none.
    pub fn line(&self, pid: u32) -> String {
        let starts = format!(
            "GPU process starts: {} promoted, {} cold",
            self.promotions, self.cold_starts
        );
        if !self.enabled {
            return format!("  standby GPU process: off (--standby off); {starts}\n");
        }
        let mib =
            |kib: Option<u64>| kib.map_or("?".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
        let warm = match self.ready_ms {
            Some(ms) => format!(
                "the latest was ready in {ms:.1} ms and held {} MiB resident, {} MiB proportional",
                mib(self.rss_kib),
                mib(self.pss_kib)
            ),
            None => "none got ready".to_owned(),
        };
        format!(
            "  standby GPU process: on{}; {starts}; standbys died {}, retired unused {}; {warm}\n",
            if pid != 0 {
                format!(" (pid {pid} at the end)")
            } else {
                String::new()
            },
            self.deaths,
            self.retired
        )
    }
}

/// The trace `--trace` wrote; empty (no path, no events) when it wrote none.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TraceFile {
    /// Where the trace was written.
    pub path: Option<String>,
    /// Events in the trace.
    pub events: usize,
    /// Trace events the launcher dropped to keep within its memory budget.
    pub dropped: TraceDropped,
}

/// The run's processes, as the launcher saw them from outside.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Processes {
    /// How the children were started: from this executable, or the separate binaries (where).
    pub children: String,
    /// Process ids.
    pub pids: Pids,
    /// fd counts for the leak check.
    pub fd_counts: FdCounts,
    /// What the children wrote to stderr: logged (quarantined), dropped over the rate, cut.
    pub child_stderr: ChildStderr,
    /// CPU time, user and system, in milliseconds, read at the end before the children exit:
    /// the launcher's whole run, and the GPU process's running then (its whole life).
    pub cpu_ms: CpuTimes,
}

/// CPU time used by a process, in milliseconds (`None`: not read).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CpuTimes {
    /// The launcher.
    pub launcher: Option<f64>,
    /// The GPU process running at the end.
    pub gpu: Option<f64>,
}

/// What each role's processes wrote to stderr, all of them over the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChildStderr {
    /// The GPU processes.
    pub gpu: crate::child_log::StderrCounts,
    /// The renderers.
    pub renderer: crate::child_log::StderrCounts,
}

/// Trace events each role sent that the launcher did not keep: the oldest, once the role's
/// events held more than their budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TraceDropped {
    /// Of the GPU processes.
    pub gpu: u64,
    /// Of the renderers.
    pub renderer: u64,
}

/// One child's sandbox, as read from `/proc/<pid>` while it ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RoleLayers {
    /// Threads of the process.
    pub threads: usize,
    /// Threads in seccomp filter mode (`Seccomp: 2`).
    pub seccomp_threads: usize,
    /// Threads with `NoNewPrivs: 1`.
    pub no_new_privs_threads: usize,
    /// Filters installed (`Seccomp_filters`).
    pub seccomp_filters: Option<u32>,
    /// In a user namespace other than the launcher's.
    pub user_namespace: bool,
    /// In a network namespace other than the launcher's.
    pub net_namespace: bool,
    /// In an IPC namespace other than the launcher's.
    pub ipc_namespace: bool,
    /// `CapEff`, hex.
    pub cap_effective: String,
    /// `CapBnd`, hex.
    pub cap_bounding: String,
    /// Soft `RLIMIT_NOFILE`.
    pub max_open_files: Option<String>,
    /// Soft `RLIMIT_FSIZE`.
    pub max_file_size: Option<String>,
}

impl RoleLayers {
    /// One line: which layers are on.
    pub fn line(&self) -> String {
        let mut on = vec![format!(
            "seccomp on {}/{} threads ({} filters), no_new_privs on {}/{}",
            self.seccomp_threads,
            self.threads,
            self.seccomp_filters
                .map_or("?".to_owned(), |n| n.to_string()),
            self.no_new_privs_threads,
            self.threads
        )];
        let ns: Vec<&str> = [
            ("user", self.user_namespace),
            ("net", self.net_namespace),
            ("ipc", self.ipc_namespace),
        ]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
        on.push(if ns.is_empty() {
            "no namespaces".to_owned()
        } else {
            format!("{} namespaces", ns.join("+"))
        });
        let none = |c: &str| c.trim_start_matches('0').is_empty();
        on.push(if none(&self.cap_effective) && none(&self.cap_bounding) {
            "no capabilities".to_owned()
        } else {
            format!(
                "capabilities {} (bounding {})",
                self.cap_effective, self.cap_bounding
            )
        });
        if let Some(n) = &self.max_open_files {
            on.push(format!("nofile {n}"));
        }
        if let Some(n) = &self.max_file_size {
            on.push(format!("fsize {n}"));
        }
        on.join(", ")
    }
}

/// The sandbox of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SandboxSummary {
    /// `enforce`, or `learn` (`--sandbox learn`: seccomp recorded calls but stopped none).
    pub mode: String,
    /// In learning mode: every call a child made that its policy does not name.
    pub learned: Vec<LearnedCall>,
    /// In learning mode: calls not listed because the list was full.
    pub learned_overflow: u64,
    /// The GPU process's Landlock confinement, as it reported it (the launcher cannot read
    /// another process's Landlock domain).
    pub gpu_landlock: Option<ipc_protocol::messages::LandlockReport>,
    /// Why the fd transport is the one that ran.
    pub transport_reason: String,
    /// Whether the children ran in a user namespace of their own.
    pub user_namespace: bool,
    /// Why not, when they did not.
    pub user_namespace_reason: Option<String>,
    /// Why the children shared the launcher's network and IPC namespaces, when they did.
    pub namespaces_reason: Option<String>,
    /// The renderer's layers.
    pub renderer: Option<RoleLayers>,
    /// The GPU process's layers.
    pub gpu: Option<RoleLayers>,
    /// Every violation: `sandbox violation in <role>: <call>(<args>)`.
    pub violations: Vec<String>,
    /// How violations reached the launcher.
    pub violation_reports: String,
    /// Why not by the kernel, when not.
    pub violation_reports_reason: Option<String>,
}

impl RunSummary {
    /// The human-readable summary.
    pub fn text(&self) -> String {
        let r = &self.renderer;
        let (f, lat, p, rec) = (&self.frames, &self.latency, &self.paths, &self.recovery);
        let mut s = String::new();
        s += &format!(
            "triptych: {} frames of {}x{} with {} layers in {:.2} s ({:.1} fps)\n",
            f.count, f.width, f.height, f.layers, f.seconds, f.fps
        );
        s += &format!(
            "  buffers: {}{}\n  fences: {}\n  fd transport: {}\n  gl: {}\n",
            p.backend,
            p.backend_reason
                .as_ref()
                .map(|r| format!(" (fallback: {r})"))
                .unwrap_or_default(),
            p.fence,
            p.transport,
            p.gl
        );
        s += &format!(
            "  handoff latency: p50 {:.1} us, p99 {:.1} us, max {:.1} us\n  send-to-present: p50 {:.1} us, p99 {:.1} us\n",
            lat.handoff.p50_us, lat.handoff.p99_us, lat.handoff.max_us, lat.end_to_end.p50_us, lat.end_to_end.p99_us
        );
        s += &format!(
            "  renderer: {} buffers and {} fences via pidfd_getfd, {} fences read from the progress page, {} from buffers held, {} other, {} imports, {} cache hits, {} fences pending at first poll, {} fence timeouts, {} rejected\n",
            r.fetched.buffers_via_pidfd, r.fetched.fences_via_pidfd, r.fetched.fences_progress, r.fetched.fences_implicit, r.fetched.fds_via_other, r.imports, r.import_hits, r.fences_pending, r.fence_timeouts, r.rejected
        );
        s += &format!(
            "  present latency (GPU done to the display server): p50 {:.1} us, p99 {:.1} us\n",
            lat.present.p50_us, lat.present.p99_us
        );
        s += &format!("  damage: {}\n", self.damage.line());
        s += &format!("  fd transport chosen: {}\n", self.sandbox.transport_reason);
        s += &format!(
            "  violation reports: {}{}\n",
            self.sandbox.violation_reports,
            self.sandbox
                .violation_reports_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
        for (role, l) in [
            (
                ipc_protocol::Role::Renderer.as_str(),
                &self.sandbox.renderer,
            ),
            (ipc_protocol::Role::Gpu.as_str(), &self.sandbox.gpu),
        ] {
            match l {
                Some(l) => s += &format!("  sandbox {role}: {}\n", l.line()),
                None => s += &format!("  sandbox {role}: not observed\n"),
            }
        }
        if let Some(l) = &self.sandbox.gpu_landlock {
            s += &format!(
                "  landlock gpu (as reported by it): {}, kernel ABI {}{}; read-only: {} paths; devices: {}{}\n",
                l.enforced.as_str(),
                l.kernel_abi,
                if l.scoped {
                    ", signals and abstract sockets scoped"
                } else {
                    ""
                },
                l.read.len(),
                if l.devices.is_empty() {
                    "none".to_owned()
                } else {
                    l.devices.join(" ")
                },
                l.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
        if self.sandbox.mode == "learn" {
            s += &format!(
                "  sandbox: LEARNING MODE, seccomp let calls outside the policies run; {} call(s) outside them{}\n",
                self.sandbox.learned.len(),
                if self.sandbox.learned_overflow > 0 {
                    format!(" (and {} not listed)", self.sandbox.learned_overflow)
                } else {
                    String::new()
                }
            );
            for c in &self.sandbox.learned {
                s += &format!(
                    "    {}: {} x{} e.g. {}\n",
                    c.role,
                    c.call,
                    c.count,
                    c.examples.first().map(String::as_str).unwrap_or("")
                );
            }
        }
        if self.sandbox.violations.is_empty() {
            s += "  sandbox violations: none\n";
        }
        for v in &self.sandbox.violations {
            s += &format!("  {v}\n");
        }
        s += &format!(
            "  pids: launcher {}, gpu {}, renderer {}\n  children: {}\n",
            self.processes.pids.launcher,
            self.processes.pids.gpu,
            self.processes.pids.renderer,
            self.processes.children
        );
        if !rec.crashes.is_empty() || rec.chaos_kills_planned.is_some() {
            s += &format!(
                "  crashes: {} (chaos planned {}), detection p50 {:.1} us p99 {:.1} us, restart-to-first-frame p50 {:.1} ms p99 {:.1} ms, stale layers composited: {}\n",
                rec.crashes.len(),
                rec.chaos_kills_planned.map_or("none".to_owned(), |n| n.to_string()),
                rec.detection.p50_us,
                rec.detection.p99_us,
                rec.restart_to_first_frame.p50_us / 1000.0,
                rec.restart_to_first_frame.p99_us / 1000.0,
                self.renderer.stale_composited
            );
            for c in rec.crashes.iter().take(10) {
                s += &format!(
                    "    {:>8.3}s {:<8} pid {:<7} {}{}\n",
                    c.at_s,
                    c.role,
                    c.pid,
                    c.cause,
                    c.injected
                        .as_ref()
                        .map(|i| format!(" [{i}]"))
                        .unwrap_or_default()
                );
            }
            if rec.crashes.len() > 10 {
                s += &format!(
                    "    ... {} more in the JSON summary\n",
                    rec.crashes.len() - 10
                );
            }
        }
        s += &rec.standby.line(self.processes.pids.standby);
        for fallback in &rec.fallbacks {
            s += &format!("  fallback: {fallback}\n");
        }
        for (role, c) in [
            ("gpu", &self.processes.child_stderr.gpu),
            ("renderer", &self.processes.child_stderr.renderer),
        ] {
            if c.dropped_lines > 0 || c.cut_bytes > 0 {
                s += &format!(
                    "  {role} stderr: {} lines logged, {} dropped over the rate limit, {} bytes cut from long lines\n",
                    c.lines, c.dropped_lines, c.cut_bytes
                );
            }
        }
        if let Some(t) = &self.trace.path {
            s += &format!("  trace: {} events written to {t}\n", self.trace.events);
            let d = &self.trace.dropped;
            if d.gpu > 0 || d.renderer > 0 {
                s += &format!(
                    "  trace: over the memory budget, dropped the oldest {} GPU and {} renderer events\n",
                    d.gpu, d.renderer
                );
            }
        }
        s += &format!(
            "  present: {}{}\n",
            p.present,
            p.present_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
        s += &format!(
            "  children to launcher: {}{} ({} messages from the ring, {} from the socket, {} wake-ups)\n",
            p.child_events,
            p.child_events_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            p.mailbox_records,
            p.mailbox_on_socket,
            p.mailbox_woken
        );
        if p.mailbox_sent_records + p.mailbox_sent_on_socket > 0 {
            s += &format!(
                "  launcher to children: {} messages into the rings, {} on the socket after them, {} wake-ups\n",
                p.mailbox_sent_records, p.mailbox_sent_on_socket, p.mailbox_sent_wakes
            );
            s += &format!(
                "  renderers' messages read: {}; the GPU process's: {}; renderers scheduled: {}\n",
                p.renderer_intake, p.gpu_intake, p.renderer_scheduling
            );
        }
        if let Some(out) = &f.out {
            s += &format!("  last frame ({}) written to {out}\n", f.last.unwrap_or(0));
        }
        if self.views.len() > 1 {
            for v in &self.views {
                s += &format!(
                    "  view {}: {} frames of {}x{} (last {}), {} renderer restarts, renderer pid {} ({} KiB), at most {} of {} buffers held, {}{}{}\n",
                    v.view,
                    v.frames,
                    v.width,
                    v.height,
                    v.last.map_or("none".to_owned(), |l| l.to_string()),
                    v.restarts,
                    v.renderer_pid,
                    v.renderer_rss_kib.map_or("?".to_owned(), |k| k.to_string()),
                    v.held_max,
                    v.pool_buffers,
                    v.scene.as_deref().unwrap_or("the built-in scene"),
                    v.out
                        .as_deref()
                        .map(|o| format!(", written to {o}"))
                        .unwrap_or_default(),
                    match (&v.failed, &v.verified) {
                        (Some(why), _) => format!(", GIVEN UP: {}", why.lines().next().unwrap_or_default()),
                        (None, Some(c)) if c.mismatches == 0 => ", verified".to_owned(),
                        (None, Some(c)) => format!(", VERIFY FAILED in {} of {} pixels", c.mismatches, c.pixels),
                        (None, None) => String::new(),
                    }
                );
            }
        }
        if let Some(v) = &self.verified {
            if v.mismatches == 0 {
                s += &format!(
                    "  verified: frame {} equals the reference composite in all {} pixels\n",
                    v.frame, v.pixels
                );
            } else {
                s += &format!(
                    "  VERIFY FAILED: frame {} differs from the reference composite in {} of {} pixels: {}\n",
                    v.frame,
                    v.mismatches,
                    v.pixels,
                    v.first.join("; ")
                );
            }
        }
        s
    }
}

/// A call outside its role's policy, as the summary lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LearnedCall {
    /// The role that made it.
    pub role: String,
    /// The call's name.
    pub call: String,
    /// Its number.
    pub nr: i32,
    /// How often it was made.
    pub count: u64,
    /// Up to `MAX_EXAMPLES` (the learning mode's, `jail/learn.rs`) distinct calls with their arguments, `name(arg0, ...)`.
    pub examples: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_stay_bounded_and_keep_count_and_max_exact() {
        let mut s = Samples::default();
        for i in 0..(3 * RESERVOIR as u64) {
            s.push(i % 1000 * 1000);
        }
        s.push(5_000_000);
        assert_eq!(s.kept.len(), RESERVOIR);
        let l = s.latency();
        assert_eq!(l.count, 3 * RESERVOIR + 1);
        assert_eq!(l.max_us, 5000.0);
        // Uniform values 0..1000 us: the median estimate lands near 500 us.
        assert!((400.0..600.0).contains(&l.p50_us), "{l:?}");
    }

    /// The keys of the JSON object at `path` in `v`, sorted (as `serde_json::Value` keeps them).
    fn keys(v: &serde_json::Value, path: &[&str]) -> Vec<String> {
        let mut cur = v;
        for p in path {
            cur = &cur[*p];
        }
        let obj = cur
            .as_object()
            .unwrap_or_else(|| panic!("{} is not an object: {cur}", path.join(".")));
        obj.keys().cloned().collect()
    }

    /// `want`, sorted, for comparing with [`keys`].
    fn sorted(want: &[&str]) -> Vec<String> {
        let mut w: Vec<String> = want.iter().map(|k| (*k).to_owned()).collect();
        w.sort();
        w
    }

    /// Every object in `v` (nested ones included) with more than `max` keys, by path.
    fn over(v: &serde_json::Value, path: &str, max: usize, found: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) => {
                if o.len() > max {
                    found.push(format!("{path}: {} keys", o.len()));
                }
                for (k, v) in o {
                    over(v, &format!("{path}.{k}"), max, found);
                }
            }
            serde_json::Value::Array(a) => {
                for v in a {
                    over(v, path, max, found);
                }
            }
            _ => {}
        }
    }

    /// A summary with every part filled in, so that no object is left out of the JSON.
    fn full() -> RunSummary {
        RunSummary {
            frames: Frames {
                count: 7,
                last: Some(6),
                width: 64,
                height: 48,
                layers: 2,
                seconds: 0.5,
                fps: 12.0,
                out: Some("f.png".into()),
                ..Frames::default()
            },
            paths: Paths {
                backend: "shm".into(),
                backend_reason: Some("no DRM render node".into()),
                fence: "pipe".into(),
                transport: "pidfd_getfd".into(),
                gl: "llvmpipe".into(),
                present: "headless".into(),
                present_reason: None,
                child_events: "mailbox".into(),
                child_events_reason: None,
                mailbox_records: 117,
                mailbox_on_socket: 3,
                mailbox_sent_records: 240,
                mailbox_sent_wakes: 200,
                mailbox_woken: 90,
                mailbox_sent_on_socket: 6,
                renderer_intake: "polled".into(),
                gpu_intake: "polled".into(),
                renderer_scheduling: "batch".into(),
            },
            verified: Some(crate::verify::Verification::default()),
            recovery: Recovery {
                chaos_kills_planned: Some(1),
                fallbacks: vec!["dmabuf -> shm: it crashed".into()],
                standby: StandbySummary {
                    enabled: true,
                    promotions: 2,
                    cold_starts: 1,
                    deaths: 0,
                    retired: 1,
                    ready_ms: Some(41.3),
                    rss_kib: Some(51_200),
                    pss_kib: Some(12_288),
                },
                ..Recovery::default()
            },
            trace: TraceFile {
                path: Some("t.json".into()),
                events: 5,
                dropped: TraceDropped {
                    gpu: 4,
                    renderer: 0,
                },
            },
            processes: Processes {
                children:
                    "one executable: this process's own (/proc/self/exe), started in each role"
                        .into(),
                pids: Pids {
                    launcher: 1,
                    gpu: 2,
                    renderer: 3,
                    standby: 4,
                },
                ..Processes::default()
            },
            sandbox: SandboxSummary {
                renderer: Some(RoleLayers::default()),
                gpu: Some(RoleLayers::default()),
                ..SandboxSummary::default()
            },
            ..RunSummary::default()
        }
    }

    #[test]
    fn the_json_is_grouped_by_subsystem() {
        let v = serde_json::to_value(full()).expect("the summary encodes");
        assert_eq!(
            keys(&v, &[]),
            sorted(&[
                "frames",
                "latency",
                "paths",
                "renderer",
                "damage",
                "trust",
                "verified",
                "recovery",
                "trace",
                "processes",
                "sandbox",
                "failure",
                "views"
            ])
        );
        for (part, want) in [
            (
                "frames",
                &[
                    "count",
                    "last",
                    "width",
                    "height",
                    "layers",
                    "seconds",
                    "fps",
                    "out",
                    "dropped_for_resize",
                    "superseded",
                    "resizes",
                    "scene_changes",
                    "scene_edits",
                    "paced_fps",
                ][..],
            ),
            (
                "latency",
                &[
                    "handoff",
                    "end_to_end",
                    "present",
                    "renderer_ping_max_us",
                    "gpu_ping_max_us",
                ],
            ),
            (
                "paths",
                &[
                    "backend",
                    "backend_reason",
                    "fence",
                    "transport",
                    "gl",
                    "present",
                    "present_reason",
                    "child_events",
                    "child_events_reason",
                    "mailbox_records",
                    "mailbox_on_socket",
                    "mailbox_sent_records",
                    "mailbox_sent_on_socket",
                    "mailbox_sent_wakes",
                    "mailbox_woken",
                    "renderer_intake",
                    "gpu_intake",
                    "renderer_scheduling",
                ],
            ),
            (
                "trust",
                &[
                    "rejected",
                    "uncorroborated",
                    "refuted_fence_timeouts",
                    "proven_gpu_lies",
                    "refuted_fence_claims",
                    "fence_claims_unlooked",
                    "vouched_gpus",
                    "vouched_frames",
                    "refuted_vouched_claims",
                ],
            ),
            (
                "recovery",
                &[
                    "crashes",
                    "detection",
                    "restart_to_first_frame",
                    "fallbacks",
                    "faults_fired",
                    "external_kills",
                    "chaos_kills_planned",
                    "standby",
                ],
            ),
            ("trace", &["path", "events", "dropped"]),
            (
                "processes",
                &["children", "pids", "fd_counts", "child_stderr", "cpu_ms"],
            ),
        ] {
            assert_eq!(keys(&v, &[part]), sorted(want), "{part}");
        }
        assert_eq!(v["frames"]["count"], 7);
        assert_eq!(v["latency"]["present"]["p99_us"], 0.0);
        assert_eq!(v["trace"]["dropped"]["gpu"], 4);
        assert_eq!(v["processes"]["pids"]["renderer"], 3);
    }

    #[test]
    fn no_part_of_the_summary_has_over_twenty_fields() {
        let v = serde_json::to_value(full()).expect("the summary encodes");
        let mut found = Vec::new();
        over(&v, "summary", 20, &mut found);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn the_text_reads_every_part() {
        let text = full().text();
        for line in [
            "triptych: 7 frames of 64x48 with 2 layers in 0.50 s (12.0 fps)\n",
            "  buffers: shm (fallback: no DRM render node)\n  fences: pipe\n  fd transport: pidfd_getfd\n  gl: llvmpipe\n",
            "  pids: launcher 1, gpu 2, renderer 3\n  children: one executable: this process's own (/proc/self/exe), started in each role\n",
            "  crashes: 0 (chaos planned 1),",
            "  standby GPU process: on (pid 4 at the end); GPU process starts: 2 promoted, 1 cold; standbys died 0, retired unused 1; the latest was ready in 41.3 ms and held 50.0 MiB resident, 12.0 MiB proportional\n",
            "  fallback: dmabuf -> shm: it crashed\n",
            "  trace: 5 events written to t.json\n",
            "dropped the oldest 4 GPU and 0 renderer events\n",
            "  present: headless\n",
            "  last frame (6) written to f.png\n",
            "  verified: frame 0 equals the reference composite in all 0 pixels\n",
        ] {
            assert!(text.contains(line), "{line:?} is not in:\n{text}");
        }
    }
}
