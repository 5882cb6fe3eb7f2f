//! The trace record: one [`Event`] per span, instant or counter sample.
//!
//! # What this module owns
//!
//! The data model every other part of the crate speaks: the closed set of
//! handoff [`Stage`]s in their causal order, the closed set of well-known
//! instant [`Marker`]s, and the small argument map ([`Args`]) that carries
//! free-form detail next to them.
//!
//! # Lifetime and sequence
//!
//! An `Event` is created by a process's [`Recorder`](crate::Recorder), sits in
//! its bounded buffer until [`Recorder::drain`](crate::Recorder::drain) takes a
//! batch, crosses to the launcher as part of an IPC message (the derived serde
//! form; it uses no serde attributes, so non-self-describing formats such as
//! the postcard encoding the channels use can carry it), and ends up in the
//! merged Chrome trace file written by
//! [`write_chrome_json`](crate::write_chrome_json).
//!
//! # The causal order of the handoff stages
//!
//! One frame moves through the three processes in this order; the enum order of
//! [`Stage`] *is* this order, and [`Stage::predecessor`] returns the step before:
//!
//! | # | stage        | process  | what the span covers                                        |
//! |---|--------------|----------|-------------------------------------------------------------|
//! | 1 | `GpuRender`  | gpu      | GL draws of the frame's layer textures, up to the fence     |
//! | 2 | `Export`     | gpu      | export of each texture as a buffer (memfd or DMA-BUF) plus its fence fd |
//! | 3 | `Send`       | gpu      | the buffer description going onto the IPC channel           |
//! | 4 | `Relay`      | launcher | from that send to the description handed on to the renderer: its way to the launcher, the launcher's check (or its vouching for the frame) |
//! | 5 | `Receive`    | renderer | from the hand-on to the description taken off the channel and validated |
//! | 6 | `FdFetch`    | renderer | `pidfd_getfd(2)` of the buffer and fence fds                |
//! | 7 | `FenceWait`  | renderer | waiting for the producer's fence to signal                  |
//! | 8 | `Composite`  | renderer | CPU compositing of the layers                               |
//! | 9 | `Present`    | launcher | the composited image shown (written as PNG when headless)   |
//! | 10 | `Release`   | any      | the buffer handed back to the producer's pool               |
//!
//! A step may not *start* before its predecessor started (it can end later:
//! a producer may keep working while the consumer already runs). Stages 1 to 9
//! make up the handoff whose end-to-end latency the summary reports, from the
//! start of `GpuRender` to the end of `Present`; `Release` comes after the
//! frame is on screen and is not required for a frame to count as complete.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One step of a frame's trip from the GPU process to the screen.
///
/// The declaration order is the causal order (see the module docs); the
/// derived `Ord` follows it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// GPU process: rendering the frame's layer textures.
    GpuRender,
    /// GPU process: exporting each texture as a buffer plus a fence fd.
    Export,
    /// GPU process: sending the buffer description over IPC.
    Send,
    /// Launcher: from the GPU process's send to the description handed on to the renderer:
    /// its way to the launcher, the launcher's check of it (or its vouching for the frame: its
    /// buffers taken and its fences waited on) and the hand-on.
    Relay,
    /// Renderer: receiving and validating the buffer description.
    Receive,
    /// Renderer: fetching the buffer and fence fds with `pidfd_getfd(2)`.
    FdFetch,
    /// Renderer: waiting for the producer's fence.
    FenceWait,
    /// Renderer: compositing the layers on the CPU.
    Composite,
    /// Launcher: presenting the composited frame.
    Present,
    /// Handing the buffer back to the producer's pool.
    Release,
}

impl Stage {
    /// Every stage, in causal order.
    pub const ALL: [Stage; 10] = [
        Stage::GpuRender,
        Stage::Export,
        Stage::Send,
        Stage::Relay,
        Stage::Receive,
        Stage::FdFetch,
        Stage::FenceWait,
        Stage::Composite,
        Stage::Present,
        Stage::Release,
    ];

    /// The stages a frame must pass for its handoff to be complete, in causal
    /// order: `GpuRender` through `Present`.
    pub const HANDOFF: [Stage; 9] = [
        Stage::GpuRender,
        Stage::Export,
        Stage::Send,
        Stage::Relay,
        Stage::Receive,
        Stage::FdFetch,
        Stage::FenceWait,
        Stage::Composite,
        Stage::Present,
    ];

    /// The name written into trace files (`"gpu_render"`, `"fd_fetch"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Stage::GpuRender => "gpu_render",
            Stage::Export => "export",
            Stage::Send => "send",
            Stage::Relay => "relay",
            Stage::Receive => "receive",
            Stage::FdFetch => "fd_fetch",
            Stage::FenceWait => "fence_wait",
            Stage::Composite => "composite",
            Stage::Present => "present",
            Stage::Release => "release",
        }
    }

    /// The stage written as `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|stage| stage.name() == name)
    }

    /// The step that causally precedes this one; `None` for `GpuRender`.
    pub const fn predecessor(self) -> Option<Stage> {
        match self {
            Stage::GpuRender => None,
            Stage::Export => Some(Stage::GpuRender),
            Stage::Send => Some(Stage::Export),
            Stage::Relay => Some(Stage::Send),
            Stage::Receive => Some(Stage::Relay),
            Stage::FdFetch => Some(Stage::Receive),
            Stage::FenceWait => Some(Stage::FdFetch),
            Stage::Composite => Some(Stage::FenceWait),
            Stage::Present => Some(Stage::Composite),
            Stage::Release => Some(Stage::Present),
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A well-known moment worth a mark on the timeline. Detail goes in the
/// event's [`Args`] (which process crashed, which syscall was refused, ...).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Marker {
    /// A child process died unexpectedly.
    Crash,
    /// A child process was started again after a crash.
    Restart,
    /// A slower path was taken (for example shared memory instead of DMA-BUF).
    Fallback,
    /// The seccomp filter refused a system call.
    SandboxViolation,
    /// A fence did not signal before its deadline.
    FenceTimeout,
    /// The display asked for a frame (a window's pacing): the frame's first moment.
    FrameRequest,
}

impl Marker {
    /// Every marker.
    pub const ALL: [Marker; 6] = [
        Marker::Crash,
        Marker::Restart,
        Marker::Fallback,
        Marker::SandboxViolation,
        Marker::FenceTimeout,
        Marker::FrameRequest,
    ];

    /// The name written into trace files (`"crash"`, `"fence_timeout"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Marker::Crash => "crash",
            Marker::Restart => "restart",
            Marker::Fallback => "fallback",
            Marker::SandboxViolation => "sandbox_violation",
            Marker::FenceTimeout => "fence_timeout",
            Marker::FrameRequest => "frame_request",
        }
    }

    /// The marker written as `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Marker> {
        Marker::ALL.into_iter().find(|marker| marker.name() == name)
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How far an instant reaches on the timeline (the Chrome `s` field).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InstantScope {
    /// Drawn on the recording thread's track (`"t"`).
    Thread,
    /// Drawn across the recording process (`"p"`).
    Process,
    /// Drawn across the whole trace (`"g"`).
    Global,
}

impl InstantScope {
    /// The one-letter Chrome scope code.
    pub const fn code(self) -> &'static str {
        match self {
            InstantScope::Thread => "t",
            InstantScope::Process => "p",
            InstantScope::Global => "g",
        }
    }

    /// The scope written as `code`, if it is one.
    pub fn from_code(code: &str) -> Option<InstantScope> {
        match code {
            "t" => Some(InstantScope::Thread),
            "p" => Some(InstantScope::Process),
            "g" => Some(InstantScope::Global),
            _ => None,
        }
    }
}

/// One argument value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ArgValue {
    /// A signed integer.
    Int(i64),
    /// A finite float (the Chrome writer refuses NaN and infinities, which
    /// JSON cannot hold).
    Float(f64),
    /// A flag.
    Bool(bool),
    /// Free text.
    Str(String),
}

impl From<i64> for ArgValue {
    fn from(value: i64) -> Self {
        ArgValue::Int(value)
    }
}

impl From<i32> for ArgValue {
    fn from(value: i32) -> Self {
        ArgValue::Int(i64::from(value))
    }
}

impl From<u32> for ArgValue {
    fn from(value: u32) -> Self {
        ArgValue::Int(i64::from(value))
    }
}

/// Counts past `i64::MAX` (no pixel count reaches it) saturate.
impl From<u64> for ArgValue {
    fn from(v: u64) -> Self {
        ArgValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for ArgValue {
    fn from(value: f64) -> Self {
        ArgValue::Float(value)
    }
}

impl From<bool> for ArgValue {
    fn from(value: bool) -> Self {
        ArgValue::Bool(value)
    }
}

impl From<&str> for ArgValue {
    fn from(value: &str) -> Self {
        ArgValue::Str(value.to_owned())
    }
}

impl From<String> for ArgValue {
    fn from(value: String) -> Self {
        ArgValue::Str(value)
    }
}

/// Free-form detail attached to a span or an instant, sorted by key.
///
/// The key [`FRAME_ARG`] is reserved: the Chrome writer stores
/// [`Event::frame`] under it.
pub type Args = BTreeMap<String, ArgValue>;

/// The argument key under which the Chrome writer stores an event's frame id.
pub const FRAME_ARG: &str = "frame";

/// The view `args` name ([`Event::view`]).
pub(crate) fn view_in(args: &Args) -> u32 {
    match args.get(VIEW_ARG) {
        Some(ArgValue::Int(v)) => u32::try_from(*v).unwrap_or(0),
        _ => 0,
    }
}

/// The argument naming the view an event of a frame belongs to, in a run of several views:
/// frame numbers are counted per view, so a frame is a view and a number ([`Event::view`]).
/// Events of the first view (view 0) carry none.
pub const VIEW_ARG: &str = "view";

/// What an event measures.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum EventKind {
    /// A stage that took `dur_ns` nanoseconds from [`Event::ts_ns`].
    Span {
        /// Which step of the handoff.
        stage: Stage,
        /// Length in nanoseconds.
        dur_ns: u64,
    },
    /// A moment.
    Instant {
        /// What happened.
        marker: Marker,
        /// How far the mark reaches on the timeline.
        scope: InstantScope,
    },
    /// A sample of a named quantity (buffers in flight, dropped events, ...).
    Counter {
        /// The quantity's name, one track per name and process.
        name: String,
        /// The sampled value.
        value: f64,
    },
}

/// One record: what happened, when, where, and for which frame.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Event {
    /// Span, instant or counter, with its name.
    pub kind: EventKind,
    /// Start (spans) or moment (instants, counters): `CLOCK_MONOTONIC`
    /// nanoseconds, see [`now_ns`](crate::now_ns).
    pub ts_ns: u64,
    /// The recording process, as the launcher knows it.
    pub pid: u32,
    /// The recording thread, as the recording process sees it (`gettid(2)`).
    pub tid: u32,
    /// The frame this event belongs to; it is the flow id that links the
    /// frame's steps across processes.
    pub frame: Option<u64>,
    /// Free-form detail; empty for counters.
    pub args: Args,
}

impl Event {
    /// The end of a span (`ts_ns + dur_ns`, saturating); `ts_ns` for others.
    pub fn end_ns(&self) -> u64 {
        match self.kind {
            EventKind::Span { dur_ns, .. } => self.ts_ns.saturating_add(dur_ns),
            EventKind::Instant { .. } | EventKind::Counter { .. } => self.ts_ns,
        }
    }

    /// The view it belongs to ([`VIEW_ARG`]; 0, the first view, without one or with a value
    /// that is no view number).
    pub fn view(&self) -> u32 {
        view_in(&self.args)
    }

    /// The stage, when this is a span.
    pub fn stage(&self) -> Option<Stage> {
        match self.kind {
            EventKind::Span { stage, .. } => Some(stage),
            EventKind::Instant { .. } | EventKind::Counter { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_order_is_the_predecessor_chain() {
        for pair in Stage::ALL.windows(2) {
            assert!(pair[0] < pair[1]);
            assert_eq!(pair[1].predecessor(), Some(pair[0]));
        }
        assert_eq!(Stage::GpuRender.predecessor(), None);
        assert_eq!(&Stage::ALL[..9], &Stage::HANDOFF[..]);
    }

    #[test]
    fn names_map_back_and_are_unique() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_name(stage.name()), Some(stage));
        }
        for marker in Marker::ALL {
            assert_eq!(Marker::from_name(marker.name()), Some(marker));
        }
        for scope in [
            InstantScope::Thread,
            InstantScope::Process,
            InstantScope::Global,
        ] {
            assert_eq!(InstantScope::from_code(scope.code()), Some(scope));
        }
        assert_eq!(Stage::from_name("GpuRender"), None);
        assert_eq!(Marker::from_name("oops"), None);
        assert_eq!(InstantScope::from_code("x"), None);
    }
}
