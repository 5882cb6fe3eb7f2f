//! Every message of the protocol, grouped by channel (sender to receiver).
//!
//! Channel topology, all set up by the launcher:
//!
//! ```text
//!   launcher --LauncherToGpu------> gpu        launcher <--GpuToLauncher------- gpu
//!   launcher --LauncherToRenderer-> renderer   launcher <--RendererToLauncher-- renderer
//!   gpu ------GpuToRenderer-------> renderer   gpu <-------RendererToGpu------- renderer
//! ```
//!
//! Each arrow pair is one `SOCK_SEQPACKET` socket ([`crate::channel`]): a child's *control
//! socket* carries both directions between it and the launcher, and the *peer socket* carries
//! frames from the GPU process and releases from the renderer. The GPU process and the renderer
//! talk directly so a frame's handoff crosses one socket; the launcher creates that socket pair
//! and hands one end to each child (attached to `Start`, `NewRenderer` and `NewGpu`), anew after
//! every restart, so a restarted child never shares a channel with a dead one. Every message from the
//! GPU process carries its *epoch* (the launcher's count of GPU process starts), and the renderer
//! drops anything from an epoch other than the current one.

use serde::{Deserialize, Serialize};

use crate::channel::Wire;

use crate::damage::Rect;
use crate::frame::{BufferId, BufferKind, FenceKind, Frame, RemoteFd};

/// How fds travel from the GPU process to the renderer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transport {
    /// The renderer takes them with `pidfd_getfd` from the GPU process's export window.
    Pidfd,
    /// The GPU process sends them with `SCM_RIGHTS` over a unix socket the launcher made, one
    /// message per frame, for systems where ptrace (and so `pidfd_getfd`) is locked down.
    ScmRights,
}

impl Transport {
    /// The name used on the command line, in summaries and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Pidfd => "pidfd_getfd",
            Transport::ScmRights => "scm_rights",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a child's sandbox violations reach the launcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViolationReports {
    /// Seccomp user notification: the child installs its allowlist with a listener and hands
    /// the listener to the launcher (`SandboxListener`) before anything else; the kernel reports
    /// each refused call there. The child cannot forge, garble or suppress a report.
    Notify,
    /// The older way, where user notification is not offered: a `SIGSYS` handler in the child
    /// writes a record of the trapped call to a pipe. A compromised child can write that pipe.
    Signal,
}

impl ViolationReports {
    /// The name used in summaries and `doctor`.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationReports::Notify => "seccomp user notification (listener held by the launcher)",
            ViolationReports::Signal => "SIGSYS handler writing to a pipe",
        }
    }
}

/// Where a layer goes in the composited frame. Mirrors the scene's placement on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerPlacement {
    /// Left edge in frame pixels (may be off-frame).
    pub x: i32,
    /// Top edge in frame pixels (may be off-frame).
    pub y: i32,
    /// Stacking order, lowest first.
    pub z: i32,
    /// Opacity 0..=255.
    pub opacity: u8,
}

/// One layer of a frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMsg {
    /// Layer index.
    pub layer: u32,
    /// Placement in the frame.
    pub placement: LayerPlacement,
    /// The buffer holding the layer's pixels.
    pub buffer: Frame<RemoteFd>,
    /// The parts of the layer's content (layer coordinates, inside the buffer) that differ
    /// from its content at frame `damage_since`; at most [`crate::damage::MAX_RECTS`]. Empty:
    /// the content is unchanged. Where and how the layer is composited (its placement) is not
    /// content: a move or a fade damages no texel.
    pub damage: Vec<Rect>,
    /// The frame of this layer's previous submission to this renderer, which `damage` is
    /// relative to; `None` for a first submission, whose every texel counts as damaged.
    pub damage_since: Option<u64>,
}

/// Launcher to GPU process.
#[derive(Debug, Serialize, Deserialize)]
pub enum LauncherToGpu {
    /// Start producing frames for the first view ([`GpuStart::view`]). Sent once, after
    /// `Prepare`; its `backend` and `reports` are those of `Prepare`.
    Start(GpuStart),
    /// Serve one more view: its renderer, size and scene, its images and pixels following as
    /// for `Start`. Answered with [`GpuToLauncher::Serving`] before its first frame.
    AddView(ViewStart),
    /// Stop serving this view: its buffers are freed and its export window closed, and
    /// nothing more is rendered for it. Answered with [`GpuToLauncher::Removed`]; frames of it
    /// sent before the answer are dropped by the launcher.
    RemoveView(ViewId),
    /// A command for one view's frames.
    View {
        /// The view.
        view: ViewId,
        /// What to do.
        command: ViewCommand,
    },
    /// Liveness check; answer with `Pong` from the frame loop.
    Ping(u64),
    /// Stop, release everything, exit 0.
    Shutdown,
    /// The first message to every GPU process: make the GL context and the exporter for this
    /// backend, put the sandbox on, and report [`GpuToLauncher::Ready`]; then wait for `Start`.
    /// A standby GPU process waits there, warm, until the launcher promotes it.
    Prepare(GpuPrepare),
    /// The GPU process's two mailboxes ([`crate::mailbox`]), two fds attached: the memfd of the
    /// one it writes its messages to the launcher through, then that of the one it reads the
    /// launcher's through. Sent first, when the launcher keeps them.
    Mailbox,
    /// The GPU process's fence progress page ([`crate::progress`]), one fd attached, open
    /// read-write: sent before `Prepare`. A shm exporter makes its fences points of it
    /// ([`crate::frame::FenceKind::Progress`]).
    Progress,
    /// The very first message, on the control socket: the token of the command stream the
    /// launcher hands over ([`crate::commands`]).
    Commands(crate::commands::Token),
    /// The launcher vouches for this process's frames from now on
    /// ([`LauncherToRenderer::Vouched`]), and the process exports pipe fences: keep each
    /// fence's read end outside the export windows, where the launcher takes it and no
    /// renderer can (its sandbox confines it to its view's window), so that nobody but this
    /// process can read a fence's signal away. Answered with [`GpuToLauncher::PrivateFences`];
    /// every frame after the answer names its fences outside the windows.
    PrivateFences,
}

/// A view's number: the launcher gives one to each view when it is added, and never gives it
/// to another view of the run. Every message about a view's frames names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ViewId(pub u32);

impl std::fmt::Display for ViewId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "view {}", self.0)
    }
}

/// What the launcher asks of one view's frames ([`LauncherToGpu::View`]).
#[derive(Debug, Serialize, Deserialize)]
pub enum ViewCommand {
    /// The view's renderer was replaced: every buffer the old one held is free, and frames are
    /// for the new one, starting again at `resume_from`. Answered with
    /// [`GpuToLauncher::Serving`] before the first frame for it.
    NewRenderer(RendererLink),
    /// The user moved layers (dragging them in the window): `(dx, dy)` per layer, added to the
    /// scene's placement of every frame rendered from now on.
    Moves([(i32, i32); 8]),
    /// The view was resized: frames from now on are `width` x `height`, of `generation`;
    /// every buffer of another size is retired as it comes back, as a swapchain's are.
    Resize(Resize),
    /// With [`ViewStart::paced`]: frames up to and including this one may be rendered (the
    /// display asked for them). Never lowers what an earlier request allowed.
    Render {
        /// The last frame that may be rendered.
        up_to: u64,
    },
    /// The PNG bytes of image layer `layer`, as the one attached fd: a read-only file the
    /// launcher opened, or a sealed memfd for an embedded image. Read with positional reads
    /// (`pread`), so the file offset, shared with the launcher's copy, never moves. Sent only
    /// right after a `Start` or `AddView` whose scene has images, in the text's layer order, or
    /// after a [`ViewCommand::SceneUpdate`] naming new images, in its order.
    SceneImage {
        /// The layer's slot.
        layer: u32,
    },
    /// The pointer is over this layer (`None`: over none): every frame rendered from now on
    /// draws it with the hover outline (`triptych_scene::highlight_rects`). A layer the scene
    /// does not have outlines nothing.
    Hover(Option<u32>),
    /// With [`ViewStart::overlay`]: the overlay's text from now on (`None`: hidden). The GPU
    /// process checks it (`triptych_scene::overlay::check`: at most 8 lines of at most 80
    /// printable ASCII characters) and refuses anything else, keeping what it showed.
    Overlay(Option<OverlayText>),
    /// The view's renderer no longer reads this buffer: the GPU process may draw into it
    /// again. The launcher relays only the releases of buffers it handed the view's current
    /// renderer and that the renderer still held.
    Release(BufferId),
    /// The application edited the view's scene ([`SceneUpdate`]): every frame rendered from
    /// now on draws the new one and says so ([`FrameMsg::scene_version`]). Exactly one
    /// [`ViewCommand::SceneImage`] follows for each slot in [`SceneUpdate::images`], in that
    /// order; the images of other image layers are those the process has already.
    SceneUpdate(SceneUpdate),
    /// The application's pixels of a pixels layer, as the one attached fd: a sealed memfd
    /// holding the rectangle's rows, premultiplied RGBA8, `width * 4` bytes a row, read with
    /// `pread`. Sent only as part of a `Start` or `AddView` (after its images, as many as
    /// [`SceneStart::pixels`]) or of a [`ViewCommand::SceneUpdate`] (as its `pixels` say).
    Pixels(PixelsUpdate),
}

impl ViewCommand {
    /// The command's kind, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            ViewCommand::NewRenderer(_) => "NewRenderer",
            ViewCommand::Moves(_) => "Moves",
            ViewCommand::Resize(_) => "Resize",
            ViewCommand::Render { .. } => "Render",
            ViewCommand::SceneImage { .. } => "SceneImage",
            ViewCommand::Hover(_) => "Hover",
            ViewCommand::Overlay(_) => "Overlay",
            ViewCommand::Release(_) => "Release",
            ViewCommand::SceneUpdate(_) => "SceneUpdate",
            ViewCommand::Pixels(_) => "Pixels",
        }
    }

    /// `SceneImage` carries its image, `Pixels` its rows.
    pub fn fd_count(&self) -> usize {
        usize::from(matches!(
            self,
            ViewCommand::SceneImage { .. } | ViewCommand::Pixels(_)
        ))
    }
}

/// Where the pixels of a [`ViewCommand::Pixels`] go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixelsUpdate {
    /// The edit's number ([`SceneUpdate::version`]).
    pub version: u64,
    /// The pixels layer's slot.
    pub slot: u32,
    /// The rectangle's left column in the layer's pixels.
    pub x: u32,
    /// Its top row.
    pub y: u32,
    /// Its width.
    pub width: u32,
    /// Its height.
    pub height: u32,
}

/// A scene edited while it is drawn: its whole text and each layer's slot. The launcher
/// applied the edit and parsed the result already; the GPU process parses the same text again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneUpdate {
    /// The edit's number: one more than the last one's. Frames drawn from it carry it.
    pub version: u64,
    /// The name errors in the text are reported under.
    pub name: String,
    /// The edited scene (at most [`MAX_SCENE_TEXT`] bytes).
    pub text: String,
    /// The slot of each layer of the text, in order: the layer number its frames use.
    pub slots: Vec<u32>,
    /// The slots of the image layers whose image is new (added, or its file changed): an image
    /// message for each follows, in this order.
    pub images: Vec<u32>,
    /// The slots of the pixels layers whose pixels changed: after the images, a
    /// [`ViewCommand::Pixels`] with each one's whole pixels follows, in this order. The
    /// update is drawn once all have arrived, so no frame shows part of it.
    pub pixels: Vec<u32>,
    /// The slots of the pixels layers whose pixels the process keeps as it has them. Every
    /// other pixels layer not in `pixels` is transparent: the launcher alone says which
    /// pixels a layer shows.
    pub pixels_kept: Vec<u32>,
}

/// The lines of the window's overlay, as the launcher wrote them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayText {
    /// One string per line, top to bottom.
    pub lines: Vec<String>,
}

/// A new frame size, and the generation it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resize {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// The size's generation: 0 at start, one more at every resize.
    pub generation: u32,
}

/// A (new) renderer to produce for. Its frames go to the launcher, which hands them on.
#[derive(Debug, Serialize, Deserialize)]
pub struct RendererLink {
    /// The renderer's pid, for `PR_SET_PTRACER` where Yama is active.
    pub renderer_pid: u32,
    /// The first frame to render for this renderer.
    pub resume_from: u64,
}

/// What a GPU process prepares before it knows its renderer, its size or its scene: all a
/// standby needs to be ready for a promotion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuPrepare {
    /// The buffer backend asked for (the fallback ladder's rung in force).
    pub backend: BackendRequest,
    /// How sandbox violations are reported.
    pub reports: ViolationReports,
}

/// What the GPU process is asked to do: the run's settings, and its first view.
#[derive(Debug, Serialize, Deserialize)]
pub struct GpuStart {
    /// This GPU process's epoch.
    pub epoch: u64,
    /// The buffer backend asked for.
    pub backend: BackendRequest,
    /// How fds travel to the renderers (with `ScmRights` the GPU process sends them).
    pub transport: Transport,
    /// Faults to inject (chaos testing); empty in normal runs. Frame numbers are any view's.
    pub faults: Vec<Fault>,
    /// Whether to record trace events and ship them to the launcher.
    pub trace: bool,
    /// How sandbox violations are reported.
    pub reports: ViolationReports,
    /// The first view. Its images and pixels follow `Start`, as [`ViewCommand::SceneImage`]
    /// and [`ViewCommand::Pixels`] messages for it.
    pub view: ViewStart,
}

/// One view the GPU process renders frames for: its renderer, its size, its scene
/// ([`GpuStart::view`], [`LauncherToGpu::AddView`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct ViewStart {
    /// The view.
    pub view: ViewId,
    /// Its export window's index ([`triptych_sys::fd::ExportWindow::of_view`]): every fd of
    /// its frames lies there, the only numbers its renderer's sandbox lets it take. Below
    /// [`GpuInfo::views`], and no other view's.
    pub window: u32,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Number of layers.
    pub layers: u32,
    /// Frames to render in all, numbered from 0; the view stops after frame `frames - 1`.
    pub frames: u64,
    /// The first frame rendered for it (a restarted GPU process resumes where its
    /// predecessor's last presented frame of the view left off).
    pub first_frame: u64,
    /// The frame size's generation (see [`Resize`]).
    pub generation: u32,
    /// Layers the user moved so far (see [`ViewCommand::Moves`]).
    pub moves: [(i32, i32); 8],
    /// Whether frames are rendered only as the launcher asks for them
    /// ([`ViewCommand::Render`]: a window's display pace) instead of as fast as buffers free.
    pub paced: bool,
    /// Buffers per layer in the view's pool (at least 3).
    pub pool_per_layer: u32,
    /// The renderer to produce for.
    pub renderer: RendererLink,
    /// Whether to redraw only what changed (damage tracking); off, every layer is redrawn and
    /// read back whole every frame (`--no-damage`, for comparison).
    pub damage: bool,
    /// The scene file to draw instead of the built-in deterministic scene; `None` draws the
    /// built-in one. Its images follow as [`ViewCommand::SceneImage`] messages.
    pub scene: Option<SceneStart>,
    /// Whether every frame has one more layer, the window's overlay, after the scene's: layer
    /// `layers`, above every other, hidden until [`ViewCommand::Overlay`] gives it text.
    pub overlay: bool,
    /// The version of the scene ([`SceneUpdate::version`]; 0 before any edit): every frame
    /// carries it, or a later one's.
    pub scene_version: u64,
}

/// The most bytes of scene text a [`SceneStart`] carries, so that `Start` stays well inside
/// one datagram ([`crate::channel`]'s 64 KiB); the launcher refuses a larger file.
pub const MAX_SCENE_TEXT: usize = 32 * 1024;

/// A scene file as the GPU process receives it: the launcher parsed it already (a bad file
/// never starts a child); the GPU process parses the same text again, with the same parser, so
/// both hold the same `triptych_scene::file::Scene` without a second wire format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneStart {
    /// Where the text comes from.
    pub source: SceneSource,
    /// How many image layers the scene has: exactly this many [`ViewCommand::SceneImage`]
    /// messages follow `Start`, one per image layer in the text's order.
    pub images: u32,
    /// The slot of each layer of the text, in order (the layer number its frames use); empty:
    /// the layers' places in the text.
    pub slots: Vec<u32>,
    /// How many [`ViewCommand::Pixels`] follow the images: the application's pixels of each
    /// pixels layer it has uploaded to, whole.
    pub pixels: u32,
}

/// The text of a scene.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SceneSource {
    /// The built-in scene (`triptych_scene::file::default_scene`).
    Builtin,
    /// A scene file's text (at most [`MAX_SCENE_TEXT`] bytes) and the name it is reported
    /// under: its path as the launcher was given it. Nothing is opened by that name.
    File {
        /// The path, for error messages.
        name: String,
        /// The file's text.
        text: String,
    },
}

/// Where in the frame path an injected fault fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultPoint {
    /// GPU process, as soon as it has received `Start` (the frame number is ignored).
    GpuStartup,
    /// GPU process, while rendering a frame (before its descriptions are sent).
    GpuRender,
    /// GPU process, after sending a frame's descriptions and before completing it: between
    /// export and fetch, while the renderer waits on the fences.
    GpuAfterExport,
    /// Renderer, with a frame's fds fetched, before waiting on its fences.
    RendererFenceWait,
    /// Renderer, in the middle of compositing a frame.
    RendererComposite,
}

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultAction {
    /// `SIGKILL` to itself.
    Kill,
    /// `SIGSEGV` to itself.
    Segv,
    /// `abort()`.
    Abort,
    /// Stop signalling fences from this frame on (a hung GPU); GPU points only.
    StopFences,
    /// Signal this one frame's fences [`LATE_FENCES_MS`] late (a slow GPU that still finishes:
    /// the renderer finds them unsignalled and waits); GPU points only.
    LateFences,
}

/// How late [`FaultAction::LateFences`] signals a frame's fences, in milliseconds: well past
/// the hop from GPU process to renderer, well inside any fence deadline a run uses.
pub const LATE_FENCES_MS: u64 = 400;

/// One fault to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// The frame at which it fires.
    pub frame: u64,
    /// Where.
    pub point: FaultPoint,
    /// What.
    pub action: FaultAction,
}

/// Which buffer backend the launcher asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendRequest {
    /// DMA-BUF where it works, else shm, saying why.
    Auto,
    /// shm only.
    Shm,
    /// DMA-BUF only: fail with the missing piece named rather than fall back.
    DmaBuf,
}

/// GPU process to launcher.
#[derive(Debug, Serialize, Deserialize)]
pub enum GpuToLauncher {
    /// Started; the backend and fence kind in use, and the EGL facts.
    Started(GpuInfo),
    /// Rendered the last frame asked for of a view.
    Finished {
        /// The view.
        view: ViewId,
        /// Frames rendered.
        frames: u64,
    },
    /// A fatal error, named.
    Failed(String),
    /// Answer to `Ping`.
    Pong(u64),
    /// An injected fault is about to fire (sent just before it does).
    FaultFired {
        /// CLOCK_MONOTONIC nanoseconds.
        at_ns: u64,
        /// The fault.
        fault: Fault,
    },
    /// A batch of trace events (only when tracing was asked for).
    Trace(Vec<triptych_trace::Event>),
    /// The listener of the sandbox's user notifications, attached as the one fd: sent once,
    /// right after the sandbox goes on, before `Started` (with [`ViolationReports::Notify`]).
    SandboxListener,
    /// The first message: where the one-shot server waits for the launcher's command stream
    /// ([`crate::commands`]), sent before the sandbox is on.
    CommandsAt(String),
    /// A frame of a view, rendered and exported: its description, for the launcher to check
    /// and hand on to the view's renderer ([`LauncherToRenderer::Frame`]). Frames of one
    /// renderer link are numbered one after another from its first.
    Frame {
        /// The view.
        view: ViewId,
        /// The frame.
        msg: FrameMsg,
    },
    /// The answer to a view's [`ViewCommand::NewRenderer`], and to
    /// [`LauncherToGpu::AddView`] (and `Start`, for its view): every frame of the view after
    /// this is for the renderer of this pid, from the frame the link resumes from; every
    /// buffer it held is free again.
    Serving {
        /// The view.
        view: ViewId,
        /// The new renderer's pid.
        renderer: u32,
    },
    /// The answer to [`LauncherToGpu::RemoveView`]: no frame of the view follows.
    Removed(ViewId),
    /// The answer to [`LauncherToGpu::PrivateFences`]: every frame after this names its fences
    /// outside the export window.
    PrivateFences,
    /// Prepared: the GL context and the exporter are made and the sandbox is on (after
    /// `SandboxListener`, with user notification); waiting for `Start`. The same report as
    /// `Started`, which repeats it.
    Ready(GpuInfo),
}

/// What the GPU process runs on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// The GPU process's pid.
    pub pid: u32,
    /// The buffer backend in use.
    pub backend: BufferKind,
    /// Why the backend differs from the fast path, when it does (`auto` fell back to shm).
    pub backend_reason: Option<String>,
    /// The fence kind in use.
    pub fence: FenceKind,
    /// EGL vendor, GL renderer, platform: one line for summaries.
    pub gl: String,
    /// Where its export windows lie, `[base, end)`: one after another, as many as `views`
    /// ([`triptych_sys::fd::ExportWindow::of_view`]).
    pub window: (i32, i32),
    /// How many views it can serve: the export windows its fd limit leaves room for.
    pub views: u32,
    /// What the GPU process says its Landlock confinement is. The launcher cannot read another
    /// process's Landlock domain, so this is a claim, and is shown as one.
    pub landlock: LandlockReport,
}

/// How much of a Landlock rule set the kernel enforces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LandlockEnforced {
    /// Every right asked for.
    Full,
    /// An older ABI: some rights asked for are not handled.
    Partial,
    /// Nothing (no Landlock in this kernel).
    #[default]
    None,
}

impl LandlockEnforced {
    /// `full`, `partial`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            LandlockEnforced::Full => "full",
            LandlockEnforced::Partial => "partial",
            LandlockEnforced::None => "none",
        }
    }
}

impl GpuInfo {
    /// The most paths a [`LandlockReport`] may list.
    pub const MAX_PATHS: usize = 64;
    /// The longest text a GPU process may report in one field.
    pub const MAX_TEXT: usize = 4096;

    /// Checks what the launcher shows of this report: bounded lists, and text without control
    /// characters (a line of the summary cannot be forged from inside the GPU process).
    pub fn check(&self) -> Result<(), String> {
        let text = |what: &str, s: &str| {
            if s.len() > Self::MAX_TEXT {
                return Err(format!("{what} is {} bytes long", s.len()));
            }
            if s.chars().any(char::is_control) {
                return Err(format!("{what} holds control characters: {s:?}"));
            }
            Ok(())
        };
        let windows = triptych_sys::fd::ExportWindow::of_view(self.views.saturating_sub(1))
            .filter(|_| self.views > 0)
            .map(|last| (triptych_sys::fd::ExportWindow::GPU.base, last.end()));
        if windows != Some(self.window) {
            return Err(format!(
                "window {:?}, which is not where {} views' windows lie",
                self.window, self.views
            ));
        }
        text("gl", &self.gl)?;
        if let Some(r) = &self.backend_reason {
            text("backend_reason", r)?;
        }
        let l = &self.landlock;
        if l.read.len() > Self::MAX_PATHS || l.devices.len() > Self::MAX_PATHS {
            return Err(format!(
                "landlock lists {} readable paths and {} devices",
                l.read.len(),
                l.devices.len()
            ));
        }
        for p in l.read.iter().chain(&l.devices) {
            text("a landlock path", p)?;
        }
        if let Some(r) = &l.reason {
            text("landlock.reason", r)?;
        }
        Ok(())
    }
}

/// How far Landlock confines a process's files, as `landlock_restrict_self` answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockReport {
    /// The kernel's Landlock ABI version (0: none).
    pub kernel_abi: u32,
    /// How much of the requested confinement the kernel enforces.
    pub enforced: LandlockEnforced,
    /// Whether signals and abstract unix sockets are scoped to the process (ABI 6, Linux 6.12).
    pub scoped: bool,
    /// Why not fully enforced, when not.
    pub reason: Option<String>,
    /// Paths readable beneath (driver libraries and data).
    pub read: Vec<String>,
    /// Device paths usable read-write (the DRM nodes).
    pub devices: Vec<String>,
}

/// One frame: every layer's buffer and placement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameMsg {
    /// The sender's epoch.
    pub epoch: u64,
    /// The frame size's generation ([`Resize`]); the renderer composites only frames of its
    /// output's generation.
    pub generation: u32,
    /// Frame number, from 0.
    pub frame: u64,
    /// CLOCK_MONOTONIC nanoseconds when the message was sent.
    pub sent_ns: u64,
    /// The version of the scene it draws ([`SceneUpdate::version`]): never less than an
    /// earlier frame's, never more than the launcher has sent.
    pub scene_version: u64,
    /// The layers: those the scene has at this frame, at most the run's.
    pub layers: Vec<LayerMsg>,
}

/// Launcher to renderer.
#[derive(Debug, Serialize, Deserialize)]
pub enum LauncherToRenderer {
    /// Start compositing.
    Start(RendererStart),
    /// The GPU process was replaced: drop everything of the old epoch and take frames from the
    /// new one.
    NewGpu(GpuLink),
    /// Liveness check; answer with `Pong` from the frame loop.
    Ping(u64),
    /// The launcher no longer shows this output slot.
    SlotFree(u32),
    /// The window was resized: make a new output of this size and generation (sent as another
    /// `Output`), forget the old one, and composite only frames of the new generation.
    Resize(Resize),
    /// Send final counters, then exit 0.
    Shutdown,
    /// A frame of the current GPU process, as it described it, checked by the launcher: its
    /// epoch, its number (one more than the frame before on this link), its generation, its
    /// layers' shape and export window, and that none of its buffers is still held.
    Frame {
        /// The frame, as the GPU process described it.
        msg: FrameMsg,
        /// CLOCK_MONOTONIC nanoseconds when the launcher handed it on: where the renderer's
        /// `receive` span starts, after the launcher's `relay` span.
        relayed_ns: u64,
    },
    /// A frame the launcher vouches for, checked like [`LauncherToRenderer::Frame`] and more,
    /// with one fd per layer attached, in the order of its layers: that layer's buffer, which
    /// the launcher took from the GPU process itself, found to be the file described and one
    /// the renderer's import accepts ([`crate::buffer_file`]), while it saw every fence of the
    /// frame signalled. The renderer takes the buffers from these fds, not from the GPU
    /// process, and waits on no fence. Sent in place of `Frame` once the renderer has claimed
    /// that the GPU process broke a frame: a rejection of a vouched frame is the renderer's
    /// own choice, and costs it its life.
    Vouched {
        /// The frame, as the GPU process described it.
        msg: FrameMsg,
        /// When the launcher handed it on, as for [`LauncherToRenderer::Frame`].
        relayed_ns: u64,
    },
    /// The renderer's two mailboxes ([`crate::mailbox`]), two fds attached: the memfd of the one
    /// it writes its messages to the launcher through, then that of the one it reads the
    /// launcher's through. Sent first, when the launcher keeps them.
    Mailbox,
    /// The very first message, on the control socket: the token of the command stream the
    /// launcher hands over ([`crate::commands`]).
    Commands(crate::commands::Token),
}

/// A (new) GPU process to take frames from (its frames come from the launcher; its fds, from the
/// link handed over beside this, [`crate::wire`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct GpuLink {
    /// Epoch of the GPU process.
    pub epoch: u64,
    /// The GPU process's pid.
    pub gpu_pid: u32,
    /// The GPU process's export window `[base, end)`.
    pub gpu_window: (i32, i32),
}

/// What the renderer is asked to do.
#[derive(Debug, Serialize, Deserialize)]
pub struct RendererStart {
    /// The GPU process to take frames from.
    pub gpu: GpuLink,
    /// Layers in every frame (a window's overlay included); a frame is presented only once every
    /// layer has a buffer of the current epoch.
    pub layers: u32,
    /// Faults to inject (chaos testing); empty in normal runs.
    pub faults: Vec<Fault>,
    /// Whether to record trace events and ship them to the launcher.
    pub trace: bool,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// How fds travel.
    pub transport: Transport,
    /// How long to wait for a fence before reporting a timeout, in milliseconds.
    pub fence_timeout_ms: u32,
    /// How sandbox violations are reported.
    pub reports: ViolationReports,
    /// The byte order of the output slots.
    pub output_order: OutputOrder,
    /// The opaque colour under every layer, premultiplied R, G, B, A (the scene's backdrop).
    pub backdrop: [u8; 4],
    /// The frame size's generation (see [`Resize`]).
    pub generation: u32,
    /// The largest frame the output must hold: its slots are this large, so a resize up to it
    /// needs no new memory (the renderer's policy creates none once it is on).
    pub max_width: u32,
    /// See `max_width`.
    pub max_height: u32,
    /// Whether to composite only what changed (damage tracking); off, every frame is
    /// composited whole (`--no-damage`).
    pub damage: bool,
}

/// The byte order of the renderer's output pixels (premultiplied, rows tightly packed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputOrder {
    /// R, G, B, A: what PNG files hold (headless runs).
    #[default]
    Rgba,
    /// B, G, R, A: a little-endian `0xAARRGGBB` word, what X11's 24-bit TrueColor visuals
    /// (`ZPixmap`, 32 bits per pixel) and Wayland's `wl_shm` `XRGB8888` take, so a window is
    /// handed the slots as they are.
    Bgra,
}

/// Renderer to launcher.
#[derive(Debug, Serialize, Deserialize)]
pub enum RendererToLauncher {
    /// The output the renderer composites into: `slots` frames of `slot_bytes` each, in one
    /// memfd that the launcher takes with `pidfd_getfd`.
    Output {
        /// The size's generation it was made for (0 at start, then each `Resize`'s).
        generation: u32,
        /// The memfd.
        fd: RemoteFd,
        /// Number of slots.
        slots: u32,
        /// Bytes per slot (width * height * 4, rows tightly packed, RGBA premultiplied).
        slot_bytes: u64,
    },
    /// A frame is composited into `slot`; the launcher owns the slot until it frees it.
    Presented(Presented),
    /// Final counters.
    Stats(RendererStats),
    /// A description was rejected (the frame is dropped, the previous one stays).
    Rejected {
        /// Epoch of the GPU process whose frame it was.
        epoch: u64,
        /// The frame.
        frame: u64,
        /// Why.
        reason: String,
    },
    /// A fatal error, named.
    Failed(String),
    /// Answer to `Ping`.
    Pong(u64),
    /// A fence did not signal within the deadline. A claim against the GPU process: the
    /// launcher takes the fence itself and blames the GPU process only if it stays unsignalled.
    FenceTimeout {
        /// Epoch of the GPU process.
        epoch: u64,
        /// Frame.
        frame: u64,
        /// Layer.
        layer: u32,
        /// The fence, in the GPU process's export window, as its description named it.
        fence: RemoteFd,
    },
    /// A frame's fds broke its description (a file that is not the one named, a buffer too
    /// small, a fence that is no fence); the renderer dropped the frame, released its buffers,
    /// and keeps its last frame. A claim against the GPU process: where it names a layer's
    /// fence, the launcher looks at that fence itself and kills the GPU process if the claim
    /// holds; anything else is counted only.
    GpuViolation {
        /// The GPU process's epoch.
        epoch: u64,
        /// The frame.
        frame: u64,
        /// The layer whose fence is not a fence of the kind named, when that is the claim.
        fence_of_layer: Option<u32>,
        /// What was wrong.
        what: String,
    },
    /// An injected fault is about to fire (sent just before it does).
    FaultFired {
        /// CLOCK_MONOTONIC nanoseconds.
        at_ns: u64,
        /// The fault.
        fault: Fault,
    },
    /// A batch of trace events.
    Trace(Vec<triptych_trace::Event>),
    /// The listener of the sandbox's user notifications, attached as the one fd: sent once,
    /// right after the sandbox goes on, before `Output` (with [`ViolationReports::Notify`]).
    SandboxListener,
    /// The first message: where the one-shot server waits for the launcher's command stream
    /// ([`crate::commands`]), sent before the sandbox is on.
    CommandsAt(String),
    /// The renderer no longer reads this buffer of the GPU process of `epoch`. The launcher
    /// relays it to the GPU process ([`ViewCommand::Release`]); a release of a buffer the
    /// renderer was not handed, or has released already, is the renderer's violation.
    Release {
        /// The GPU process's epoch.
        epoch: u64,
        /// The buffer.
        buffer: BufferId,
    },
}

/// A composited frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presented {
    /// Frame number.
    pub frame: u64,
    /// The generation of the output the slot belongs to.
    pub generation: u32,
    /// Epoch of the GPU process that rendered it.
    pub epoch: u64,
    /// Output slot holding it.
    pub slot: u32,
    /// When the GPU process sent the description.
    pub sent_ns: u64,
    /// When every layer was fetched, imported and its fence signalled.
    pub ready_ns: u64,
    /// When compositing finished.
    pub composited_ns: u64,
    /// The output rectangles that differ from the frame presented before this one in the same
    /// generation (all of the output for the first): what a display server must take again.
    /// At most [`crate::damage::MAX_RECTS`], each inside the frame.
    pub damage: Vec<Rect>,
    /// Pixels composited into the slot for this frame: the damage since the slot's own
    /// previous frame, which is at least `damage`'s area.
    pub composited_px: u64,
}

/// How the renderer took the buffers and fences of the frames it was handed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchCounts {
    /// Buffer fds taken with `pidfd_getfd`.
    pub buffers_via_pidfd: u64,
    /// Fence fds taken with `pidfd_getfd`.
    pub fences_via_pidfd: u64,
    /// Fences that were points of the GPU process's progress page ([`crate::progress`]): no
    /// file taken.
    pub fences_progress: u64,
    /// Fences that were the implicit fences of a DMA-BUF already held
    /// ([`crate::frame::FenceKind::Implicit`]): snapshotted in place, no file taken.
    pub fences_implicit: u64,
    /// Buffer or fence fds that arrived any other way.
    pub fds_via_other: u64,
}

/// The renderer's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RendererStats {
    /// Frames composited.
    pub frames: u64,
    /// How each buffer and fence was taken.
    pub fetched: FetchCounts,
    /// Frames the launcher vouched for (their buffers came from it, their fences seen
    /// signalled by it): a slower path, taken once this renderer or an earlier one claimed the
    /// GPU process broke a frame.
    pub vouched_frames: u64,
    /// Buffers mapped (import cache misses).
    pub imports: u64,
    /// Layers served from the import cache.
    pub import_hits: u64,
    /// Fences still pending when first polled.
    pub fences_pending: u64,
    /// Fences that did not signal within the deadline.
    pub fence_timeouts: u64,
    /// Descriptions rejected.
    pub rejected: u64,
    /// Layers whose buffers were dmabufs.
    pub dmabuf_layers: u64,
    /// Layers whose buffers were shm.
    pub shm_layers: u64,
    /// Layers composited from a buffer whose fence had not been seen signalled, or of another
    /// epoch than the current one. Checked on every composite; must stay 0.
    pub stale_composited: u64,
    /// Frames of an old epoch dropped on arrival.
    pub stale_dropped: u64,
    /// Frames dropped because a fence was abandoned (its GPU process died before signalling).
    pub abandoned_frames: u64,
    /// Times the GPU process was replaced under this renderer.
    pub gpu_switches: u64,
    /// Messages from the GPU process that broke the protocol (dropped).
    pub gpu_violations: u64,
    /// Pixels composited, over all frames (damage tracking composites only what changed).
    pub composited_px: u64,
    /// Pixels of the frames composited, over all frames: `composited_px` over this is the mean
    /// damaged fraction.
    pub output_px: u64,
    /// The longest the frame loop was busy between two waits, in microseconds: it never waits
    /// on a fence, so this stays far below the fence deadline even while a GPU process hangs.
    pub max_busy_us: u64,
}

impl Wire for LauncherToGpu {
    fn kind(&self) -> &'static str {
        match self {
            LauncherToGpu::Prepare(_) => "Prepare",
            LauncherToGpu::Start(_) => "Start",
            LauncherToGpu::AddView(_) => "AddView",
            LauncherToGpu::RemoveView(_) => "RemoveView",
            LauncherToGpu::View { command, .. } => command.kind(),
            LauncherToGpu::Ping(_) => "Ping",
            LauncherToGpu::Shutdown => "Shutdown",
            LauncherToGpu::Mailbox => "Mailbox",
            LauncherToGpu::Progress => "Progress",
            LauncherToGpu::PrivateFences => "PrivateFences",
            LauncherToGpu::Commands(_) => "Commands",
        }
    }
    /// A view's `SceneImage` carries its image, `Pixels` its rows, `Mailbox` the two
    /// mailboxes' memfds, `Progress` the progress page.
    fn fd_count(&self) -> usize {
        match self {
            LauncherToGpu::View { command, .. } => command.fd_count(),
            LauncherToGpu::Progress => 1,
            LauncherToGpu::Mailbox => 2,
            _ => 0,
        }
    }
}

impl Wire for LauncherToRenderer {
    fn kind(&self) -> &'static str {
        match self {
            LauncherToRenderer::Start(_) => "Start",
            LauncherToRenderer::NewGpu(_) => "NewGpu",
            LauncherToRenderer::Ping(_) => "Ping",
            LauncherToRenderer::SlotFree(_) => "SlotFree",
            LauncherToRenderer::Resize(_) => "Resize",
            LauncherToRenderer::Shutdown => "Shutdown",
            LauncherToRenderer::Frame { .. } => "Frame",
            LauncherToRenderer::Vouched { .. } => "Vouched",
            LauncherToRenderer::Mailbox => "Mailbox",
            LauncherToRenderer::Commands(_) => "Commands",
        }
    }
    /// `Mailbox` carries the two mailboxes' memfds, `Vouched` a buffer per layer.
    fn fd_count(&self) -> usize {
        match self {
            LauncherToRenderer::Mailbox => 2,
            LauncherToRenderer::Vouched { msg, .. } => msg.layers.len(),
            _ => 0,
        }
    }
}

impl Wire for GpuToLauncher {
    fn kind(&self) -> &'static str {
        match self {
            GpuToLauncher::Ready(_) => "Ready",
            GpuToLauncher::Started(_) => "Started",
            GpuToLauncher::Finished { .. } => "Finished",
            GpuToLauncher::Failed(_) => "Failed",
            GpuToLauncher::Pong(_) => "Pong",
            GpuToLauncher::FaultFired { .. } => "FaultFired",
            GpuToLauncher::Trace(_) => "Trace",
            GpuToLauncher::Frame { .. } => "Frame",
            GpuToLauncher::Serving { .. } => "Serving",
            GpuToLauncher::Removed(_) => "Removed",
            GpuToLauncher::PrivateFences => "PrivateFences",
            GpuToLauncher::SandboxListener => "SandboxListener",
            GpuToLauncher::CommandsAt(_) => "CommandsAt",
        }
    }
    /// `SandboxListener` carries the listener.
    fn fd_count(&self) -> usize {
        usize::from(matches!(self, GpuToLauncher::SandboxListener))
    }
}

impl Wire for RendererToLauncher {
    fn kind(&self) -> &'static str {
        match self {
            RendererToLauncher::Output { .. } => "Output",
            RendererToLauncher::Presented(_) => "Presented",
            RendererToLauncher::Stats(_) => "Stats",
            RendererToLauncher::Rejected { .. } => "Rejected",
            RendererToLauncher::Failed(_) => "Failed",
            RendererToLauncher::Pong(_) => "Pong",
            RendererToLauncher::FenceTimeout { .. } => "FenceTimeout",
            RendererToLauncher::GpuViolation { .. } => "GpuViolation",
            RendererToLauncher::FaultFired { .. } => "FaultFired",
            RendererToLauncher::Trace(_) => "Trace",
            RendererToLauncher::SandboxListener => "SandboxListener",
            RendererToLauncher::CommandsAt(_) => "CommandsAt",
            RendererToLauncher::Release { .. } => "Release",
        }
    }
    /// `SandboxListener` carries the listener.
    fn fd_count(&self) -> usize {
        usize::from(matches!(self, RendererToLauncher::SandboxListener))
    }
}

impl Wire for FrameMsg {
    fn kind(&self) -> &'static str {
        "FrameMsg"
    }
}

impl crate::bootstrap::Stream for LauncherToGpu {
    fn with_token(token: crate::commands::Token) -> Self {
        LauncherToGpu::Commands(token)
    }
    fn token(&self) -> Option<crate::commands::Token> {
        match self {
            LauncherToGpu::Commands(t) => Some(*t),
            _ => None,
        }
    }
}

impl crate::bootstrap::Stream for LauncherToRenderer {
    fn with_token(token: crate::commands::Token) -> Self {
        LauncherToRenderer::Commands(token)
    }
    fn token(&self) -> Option<crate::commands::Token> {
        match self {
            LauncherToRenderer::Commands(t) => Some(*t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::MAX_MESSAGE;

    #[test]
    fn transports_print_their_summary_names() {
        assert_eq!(Transport::Pidfd.to_string(), "pidfd_getfd");
        assert_eq!(Transport::ScmRights.to_string(), "scm_rights");
    }

    fn view_start(scene: Option<SceneStart>) -> ViewStart {
        ViewStart {
            view: ViewId(3),
            window: 2,
            width: 640,
            height: 480,
            layers: 8,
            frames: 120,
            first_frame: 0,
            generation: 0,
            moves: [(0, 0); 8],
            paced: false,
            pool_per_layer: 3,
            renderer: RendererLink {
                renderer_pid: 2,
                resume_from: 0,
            },
            damage: true,
            scene,
            overlay: true,
            scene_version: 0,
        }
    }

    fn start(scene: Option<SceneStart>) -> GpuStart {
        GpuStart {
            epoch: 1,
            backend: BackendRequest::Auto,
            transport: Transport::Pidfd,
            faults: Vec::new(),
            trace: false,
            reports: ViolationReports::Notify,
            view: view_start(scene),
        }
    }

    fn to_view(command: ViewCommand) -> LauncherToGpu {
        LauncherToGpu::View {
            view: ViewId(1),
            command,
        }
    }

    #[test]
    fn each_launcher_to_gpu_kind_has_its_exact_fd_count() {
        let link = || RendererLink {
            renderer_pid: 2,
            resume_from: 0,
        };
        for (msg, fds) in [
            (LauncherToGpu::Start(start(None)), 0),
            (
                LauncherToGpu::Prepare(GpuPrepare {
                    backend: BackendRequest::Auto,
                    reports: ViolationReports::Notify,
                }),
                0,
            ),
            (LauncherToGpu::AddView(view_start(None)), 0),
            (LauncherToGpu::RemoveView(ViewId(2)), 0),
            (to_view(ViewCommand::NewRenderer(link())), 0),
            (to_view(ViewCommand::SceneImage { layer: 3 }), 1),
            (
                to_view(ViewCommand::Pixels(PixelsUpdate {
                    version: 1,
                    slot: 2,
                    x: 0,
                    y: 0,
                    width: 1,
                    height: 1,
                })),
                1,
            ),
            (LauncherToGpu::Ping(1), 0),
            (to_view(ViewCommand::Render { up_to: 5 }), 0),
            (to_view(ViewCommand::Moves([(1, 2); 8])), 0),
            (to_view(ViewCommand::Hover(Some(2))), 0),
            (
                to_view(ViewCommand::Overlay(Some(OverlayText {
                    lines: vec!["fps 60".into()],
                }))),
                0,
            ),
            (
                to_view(ViewCommand::Resize(Resize {
                    width: 4,
                    height: 4,
                    generation: 1,
                })),
                0,
            ),
            (
                to_view(ViewCommand::Release(BufferId {
                    slot: 1,
                    generation: 1,
                })),
                0,
            ),
            (LauncherToGpu::Shutdown, 0),
        ] {
            assert_eq!(msg.fd_count(), fds, "{}", msg.kind());
        }
    }

    #[test]
    fn the_largest_overlay_fits_one_message() {
        let text = OverlayText {
            lines: vec!["~".repeat(80); 8],
        };
        let bytes =
            postcard::to_stdvec(&to_view(ViewCommand::Overlay(Some(text)))).expect("encode");
        assert!(bytes.len() < 1024, "{} bytes", bytes.len());
    }

    #[test]
    fn the_largest_scene_text_fits_one_message_with_room_to_spare() {
        // The longest text the launcher sends, under a path as long as Linux allows, with a
        // generous fault list: still well inside one datagram.
        let scene = SceneStart {
            source: SceneSource::File {
                name: "n".repeat(4096),
                text: "x".repeat(MAX_SCENE_TEXT),
            },
            images: 8,
            slots: (0..8).collect(),
            pixels: 8,
        };
        let mut s = start(Some(scene.clone()));
        s.faults = vec![
            Fault {
                frame: u64::MAX,
                point: FaultPoint::GpuAfterExport,
                action: FaultAction::Kill,
            };
            1000
        ];
        let bytes = postcard::to_stdvec(&LauncherToGpu::Start(s)).expect("encode");
        assert!(bytes.len() < MAX_MESSAGE, "{} bytes", bytes.len());
        let bytes =
            postcard::to_stdvec(&LauncherToGpu::AddView(view_start(Some(scene)))).expect("encode");
        assert!(bytes.len() < MAX_MESSAGE, "{} bytes", bytes.len());
        let update = to_view(ViewCommand::SceneUpdate(SceneUpdate {
            version: u64::MAX,
            name: "n".repeat(4096),
            text: "x".repeat(MAX_SCENE_TEXT),
            slots: (0..8).collect(),
            images: (0..8).collect(),
            pixels: (0..8).collect(),
            pixels_kept: (0..8).collect(),
        }));
        assert_eq!(update.fd_count(), 0);
        let bytes = postcard::to_stdvec(&update).expect("encode");
        assert!(bytes.len() < MAX_MESSAGE, "{} bytes", bytes.len());
    }
}
