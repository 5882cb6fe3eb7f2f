//! Embedding triptych in an application: spawn a shell (the GPU process and the renderer,
//! supervised from a thread of the application's process), receive its events, and steer it.
//!
//! The application's process becomes the launcher of its shell, the trusted parent, with what
//! that takes: [`ShellBuilder::spawn`] makes it non-dumpable (`PR_SET_DUMPABLE` 0), so that no
//! process of its uid, a compromised renderer included, can ptrace it or take its fds with
//! `pidfd_getfd`. It also needs the `triptych-gpu` and `triptych-renderer` binaries: by default
//! next to the application's executable, or in its parent directory (where cargo puts the
//! workspace's binaries when the application is an example), or in [`ShellBuilder::binaries`].
//!
//! Events arrive on a bounded channel ([`Shell::events`]); the shell never waits for the
//! application: a frame event that finds the channel nearly full is dropped (and counted), so
//! an application that stops reading slows nothing down and costs no memory. Frames leave a few
//! places free, so crash, fallback and the final events find room unless the application has
//! left that many of them unread.
//!
//! ```no_run
//! use triptych::shell::{Event, ShellBuilder};
//!
//! let shell = ShellBuilder::new().size(64, 48).frames(10).pixels(true).spawn()?;
//! for event in shell.events() {
//!     if let Event::Presented(f) = &event {
//!         let px = f.pixels().expect("asked for pixels");
//!         println!("frame {}: top-left pixel {:?}", f.frame, &px[..4]);
//!     }
//!     if matches!(event, Event::Finished) {
//!         break;
//!     }
//! }
//! shell.wait()?;
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! # Steering a running shell
//!
//! [`Shell::set_scene`] switches to another scene file and [`Shell::resize`] to another frame
//! size; each presented frame says which scene and which size generation it belongs to
//! ([`PresentedFrame::scene`], [`PresentedFrame::generation`]), and no frame mixes two of
//! either. A scene file is read and checked before anything changes, on the caller's thread,
//! and a bad one is refused with the parser's located error, as it is at spawn time, where it
//! stops the shell before any child starts:
//!
//! ```
//! use triptych::shell::ShellBuilder;
//!
//! let dir = std::env::temp_dir().join(format!("triptych-shell-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let bad = dir.join("bad.toml");
//! std::fs::write(
//!     &bad,
//!     "[[layers]]\nname = \"a\"\nkind = \"solid\"\ncolor = \"#f00\"\nopacity = 1.7\n\
//!      rect = { x = 0, y = 0, w = 4, h = 4 }\n",
//! )?;
//! let err = ShellBuilder::new().scene(&bad).spawn().expect_err("a bad scene file");
//! let triptych::shell::Error::Scene(msg) = err else {
//!     panic!("not a scene error: {err}");
//! };
//! assert!(msg.contains("bad.toml:5:") && msg.contains("layers[0].opacity"), "{msg}");
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! # Several views
//!
//! A view is one sandboxed renderer process of its own drawing one scene; the one GPU process
//! renders every view's layers. A shell starts with its first view ([`FIRST_VIEW`], the one
//! [`ShellBuilder::scene`] draws, which lasts as long as the shell), and the application adds
//! more with [`ShellBuilder::view`] before the start or [`Shell::add_view`] while it runs, and
//! takes them away with [`Shell::remove_view`]. Each view's renderer is restarted on its own
//! when it crashes ([`Shell::kill`] with [`Target::Renderer`] kills one); every frame event
//! names its view ([`PresentedFrame::view`]). A renderer can take only its own view's buffers:
//! each has an export window of its own in the GPU process, and its sandbox reaches no other.
//! Headless, each view's frames are its own events (with their pixels when asked for);
//! presenting into a window, the views it starts with are tiled in it, each in a surface of its
//! own, and views are not added later.
//!
//! ```no_run
//! use triptych::shell::{Event, ShellBuilder, ViewConfig};
//!
//! let shell = ShellBuilder::new().frames(600).pixels(true).spawn()?;
//! let pane = shell.add_view(ViewConfig::new("default"))?;
//! for event in shell.events() {
//!     match event {
//!         Event::Presented(f) if f.view == pane => { /* draw the pane's pixels */ }
//!         Event::Presented(f) if f.frame == 300 => shell.remove_view(pane)?,
//!         Event::Finished => break,
//!         _ => {}
//!     }
//! }
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! # In the application's own window
//!
//! [`ShellBuilder::present_into`] hands the shell a winit window the application created; the
//! application keeps its event loop and forwards the window's events with
//! [`Shell::window_event`] (`launcher/examples/embed_window.rs` is a whole application):
//!
//! ```no_run
//! # fn app(window: std::sync::Arc<winit::window::Window>, event: winit::event::WindowEvent)
//! # -> anyhow::Result<()> {
//! use triptych::shell::ShellBuilder;
//!
//! let shell = ShellBuilder::new().frames(600).present_into(window).spawn()?;
//! // In the application's `ApplicationHandler::window_event`:
//! shell.window_event(&event);
//! // Whenever it likes:
//! shell.set_scene("my-scene.toml")?;
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
#[cfg(feature = "window")]
use winit::event::WindowEvent;
#[cfg(feature = "window")]
use winit::window::Window;

pub use crate::config::{Buffers, RunConfig, SandboxMode, Size, Transport};
use crate::embedding::{Control, Link};
pub use crate::embedding::{
    Event, PresentedFrame, Target, ViewId, ViewRect, EVENT_QUEUE, FIRST_VIEW,
};
pub use crate::scene::{EditRefused, Pixels};
pub use crate::summary::RunSummary;
pub use ipc_protocol::Role;
pub use triptych_scene::file::{EditError, EditKind, Transaction};

/// Why a shell could not be started or steered, or why its run failed. Match on the variant;
/// the text is for people.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A scene file (or an image it names) was refused: the parser's located message,
    /// `FILE:LINE:COLUMN: FIELD: MESSAGE; hint: HINT`. Nothing was started or changed.
    #[error("{0}")]
    Scene(String),
    /// A value of the configuration is outside what a run can take. Nothing was started.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The children's binaries are not where they were looked for.
    #[error("{0}")]
    Binaries(String),
    /// The window handed to [`ShellBuilder::present_into`] cannot be presented into.
    #[error("the window cannot be presented into: {0}")]
    Window(String),
    /// This process could not become a launcher (non-dumpable) or start the supervisor.
    #[error("starting the shell: {0}")]
    Start(String),
    /// An edit of the scene ([`Shell::edit`]) was refused, with the scene file's rule it broke
    /// (`FIELD: MESSAGE; hint: HINT`, the field named by layer). Nothing changed.
    #[error("{0}")]
    Edit(#[from] crate::scene::EditRefused),
    /// The shell has ended: nothing takes the request any more.
    #[error("the shell has ended")]
    Ended,
    /// A view was not added: the shell has as many as it may ([`ShellBuilder::max_views`], or
    /// the export windows its GPU process has room for). Nothing was started.
    #[error("the shell has {max} views, as many as it may; remove one first, or build it with a larger max_views")]
    TooManyViews {
        /// The most views it may have.
        max: u32,
    },
    /// No view of the shell has this number: it was never added, or it was removed or given
    /// up already.
    #[error("{0} is no view of the shell (never added, or removed or given up already)")]
    NoSuchView(ViewId),
    /// The first view ([`FIRST_VIEW`]) cannot be removed: it lasts as long as the shell.
    #[error("the first view cannot be removed: it lasts as long as the shell (shut the shell down instead)")]
    FirstView,
    /// A view's renderer could not be started; nothing of the view is left.
    #[error("starting the view's renderer: {0}")]
    ViewStart(String),
    /// In a window, the first view is drawn into the window itself: [`Shell::set_view_rect`]
    /// may change its size but not move it from the window's top-left corner.
    #[error("the first view is drawn into the window itself: it stays at the window's top-left corner (x and y 0); place another view instead")]
    FirstViewCorner,
    /// The run failed: what ended it, and its summary up to then when there is one.
    #[error("{message}")]
    Run {
        /// What ended the run, with its causes.
        message: String,
        /// The summary up to the failure.
        summary: Option<Box<RunSummary>>,
    },
    /// The supervisor thread panicked.
    #[error("the shell's supervisor thread panicked")]
    Panicked,
}

/// Logs the shell's `tracing` events to stderr as `triptych run` does, filtered by
/// `TRIPTYCH_LOG` or else by `default` (such as `"info"`), for an application that installs no
/// subscriber of its own. Call it once, before anything logs.
pub fn log_to_stderr(default: &str) {
    ipc_protocol::logging::init(default);
}

/// A view to add ([`ShellBuilder::view`], [`Shell::add_view`]): one more sandboxed renderer,
/// drawing a scene file of its own.
#[derive(Clone, Debug)]
pub struct ViewConfig {
    scene: PathBuf,
    rect: Option<ViewRect>,
}

impl ViewConfig {
    /// A view drawing the scene file at `scene` (`"default"`: the built-in example scene
    /// file), at the shell's frame size; in a window, tiled with the other views not placed by
    /// the application.
    pub fn new(scene: impl Into<PathBuf>) -> Self {
        Self {
            scene: scene.into(),
            rect: None,
        }
    }

    /// Placed at `rect` from its start, its frames `rect`'s size (clamped as
    /// [`Shell::set_view_rect`] clamps), instead of tiled at the shell's frame size.
    pub fn rect(mut self, rect: ViewRect) -> Self {
        self.rect = Some(rect);
        self
    }

    /// The scene file it draws.
    pub fn scene(&self) -> &std::path::Path {
        &self.scene
    }
}

impl From<crate::embedding::ViewRefused> for Error {
    fn from(r: crate::embedding::ViewRefused) -> Error {
        use crate::embedding::ViewRefused;
        match r {
            ViewRefused::TooMany { max } => Error::TooManyViews { max },
            ViewRefused::NoSuch(view) => Error::NoSuchView(view),
            ViewRefused::First => Error::FirstView,
            ViewRefused::Start(why) => Error::ViewStart(why),
            ViewRefused::Corner => Error::FirstViewCorner,
        }
    }
}

/// How to build a shell; every setting has the command line's default.
#[derive(Debug)]
pub struct ShellBuilder {
    args: RunConfig,
    pixels: bool,
    binaries: Option<PathBuf>,
    max_size: Option<(u32, u32)>,
    #[cfg(feature = "window")]
    window: Option<Arc<Window>>,
}

impl Default for ShellBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ShellBuilder {
    /// The defaults of `triptych run` ([`RunConfig::default`]): 640x480, 3 layers, 120 frames,
    /// `--buffers auto`, the sandbox enforced, three crashes a minute forgiven.
    pub fn new() -> Self {
        Self::with_config(RunConfig::default())
    }

    /// Starts from `config` (a whole [`RunConfig`], built or deserialized by the application);
    /// the other methods change it field by field.
    pub fn with_config(config: RunConfig) -> Self {
        Self {
            args: config,
            pixels: false,
            binaries: None,
            max_size: None,
            #[cfg(feature = "window")]
            window: None,
        }
    }

    /// The frame size (1 to 8192 each way).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.args.size = Size {
            width: width.clamp(1, 8192),
            height: height.clamp(1, 8192),
        };
        self
    }

    /// The largest frame [`Shell::resize`] may ask for, headless (1 to 8192 each way; by
    /// default the size the shell starts at). The renderer's output slots are made this large
    /// before its sandbox goes on (it creates no memory after that); memory never written costs
    /// nothing. A window's largest size is its monitor's, at most 4096x4096.
    pub fn max_size(mut self, width: u32, height: u32) -> Self {
        self.max_size = Some((width.clamp(1, 8192), height.clamp(1, 8192)));
        self
    }

    #[cfg(feature = "window")]
    /// Present into `window`, the application's own winit window, instead of headless: the
    /// same zero-copy paths as `triptych run`'s window (X11 MIT-SHM `ShmPutImage`, Wayland
    /// `wl_shm` buffers over the renderer's output memfd), paced by the display. Frames start
    /// at the window's inner size and follow it as the application forwards its events
    /// ([`Shell::window_event`]). The last frame stays on screen until [`Shell::shutdown`] or a
    /// forwarded `CloseRequested`.
    ///
    /// The shell draws into the window from its own connection (X11) or by adopting the
    /// window's surface on the event loop's own connection (Wayland). On Wayland the event loop
    /// must therefore outlive the shell's use of it, for the rest of the process: run it with
    /// `run_app_on_demand` and never drop it (`std::mem::forget`), as `triptych run` does.
    pub fn present_into(mut self, window: Arc<Window>) -> Self {
        self.window = Some(window);
        self
    }

    /// Layers of the built-in scene (1 to 8).
    pub fn layers(mut self, layers: u32) -> Self {
        self.args.layers = layers.clamp(1, 8);
        self
    }

    /// Draw this scene file instead of the built-in scene (`"default"`: the built-in example
    /// scene file); it is read, and its images opened, by [`ShellBuilder::spawn`].
    pub fn scene(mut self, path: impl Into<PathBuf>) -> Self {
        self.args.scene = Some(path.into());
        self
    }

    /// One more view from the start, beside the first (views 1, 2, ... in the order given).
    pub fn view(mut self, view: ViewConfig) -> Self {
        self.args.views.push(view.scene);
        self.args.view_rects.push(view.rect);
        self
    }

    /// The most views the shell may have at once, the first included (1 to 64; by default
    /// sized from the machine's memory, [`crate::config::default_max_views`]): more are refused,
    /// at the start ([`Error::Config`]) and by [`Shell::add_view`] ([`Error::TooManyViews`]).
    pub fn max_views(mut self, max: u32) -> Self {
        self.args.max_views = Some(max);
        self
    }

    /// Frames to present (at least 1); each view presents this many, counted from its start.
    pub fn frames(mut self, frames: u64) -> Self {
        self.args.frames = frames.max(1);
        self
    }

    /// The buffer backend.
    pub fn buffers(mut self, buffers: Buffers) -> Self {
        self.args.buffers = buffers;
        self
    }

    /// How fds travel from the GPU process to the renderer.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.args.transport = transport;
        self
    }

    /// Enforce the seccomp policies, or learn what each role calls beyond them.
    pub fn sandbox(mut self, mode: SandboxMode) -> Self {
        self.args.sandbox = mode;
        self
    }

    /// Crashes of one role forgiven within `window_s` seconds before the GPU process steps down
    /// its fallback ladder or, for the renderer, the run gives up.
    pub fn restarts(mut self, max_crashes: u32, window_s: u64) -> Self {
        self.args.supervision.max_crashes = max_crashes;
        self.args.supervision.restart_window_s = window_s;
        self
    }

    /// Attach a copy of every presented frame's pixels to its event.
    pub fn pixels(mut self, on: bool) -> Self {
        self.pixels = on;
        self
    }

    /// Where `triptych-gpu` and `triptych-renderer` are.
    pub fn binaries(mut self, dir: impl Into<PathBuf>) -> Self {
        self.binaries = Some(dir.into());
        self
    }

    /// Starts the shell: the children and their supervisor, on a thread of this process.
    pub fn spawn(self) -> Result<Shell, Error> {
        // A bad scene file fails here, before anything is started.
        let mut args = self.args;
        args.check()?;
        args.prepare().map_err(|e| Error::Scene(format!("{e:#}")))?;
        #[cfg(feature = "window")]
        let (display, display_tx) = match &self.window {
            Some(window) => {
                let (tx, rx) = crossbeam_channel::unbounded();
                let d = crate::window::adopt(window.clone(), rx, tx.clone())
                    .map_err(|e| Error::Window(format!("{e:#}")))?;
                // Every view is a tile of the window.
                let views = u32::try_from(args.views.len().saturating_add(1)).unwrap_or(u32::MAX);
                let grid = crate::window::Grid::for_views(views);
                let size = window.inner_size();
                let (w, h) =
                    grid.tile((size.width.clamp(1, d.max.0), size.height.clamp(1, d.max.1)));
                args.size = Size {
                    width: w,
                    height: h,
                };
                (Some(d), Some(tx))
            }
            None => (None, None),
        };
        #[cfg(not(feature = "window"))]
        let display: Option<crate::window::Display> = None;
        let (w, h) = (args.size.width, args.size.height);
        let max_size = self
            .max_size
            .map_or((w, h), |(mw, mh)| (mw.max(w), mh.max(h)));
        if let Some(role) = crate::role::started_as() {
            // The launcher started this executable as a child, and it went on to its own
            // `main`: without this it would start children of its own, each of them too.
            return Err(Error::Start(format!(
                "this process was started as triptych's {role} process: call \
                 triptych::run_child_if_asked() first thing in main"
            )));
        }
        let children = crate::child::application_children(self.binaries)
            .map_err(|e| Error::Binaries(format!("{e:#}")))?;
        triptych_sys::prctl::set_dumpable(false).map_err(|e| {
            Error::Start(format!(
                "making this process non-dumpable, as a launcher must be: {e}"
            ))
        })?;
        let (events_tx, events) = crossbeam_channel::bounded(EVENT_QUEUE);
        let (control, control_rx) = crossbeam_channel::unbounded();
        let dropped = Arc::new(AtomicU64::new(0));
        let link = Link {
            events: events_tx,
            control: control_rx,
            pixels: self.pixels,
            dropped: dropped.clone(),
            max_size,
            children,
        };
        let budget = crate::scene::Budget {
            pool: args.pool,
            max: max_size,
            extra: u32::from(display.is_some()),
        };
        let editor = args
            .loaded_scene
            .clone()
            .map(|s| crate::scene::Editor::new(s).with_budget(budget));
        let thread = std::thread::Builder::new()
            .name("triptych-shell".into())
            .spawn(move || {
                let never = crossbeam_channel::never();
                crate::session::run_embedded(&args, &never, display, link)
            })
            .map_err(|e| Error::Start(format!("starting the supervisor thread: {e}")))?;
        Ok(Shell {
            events,
            control,
            thread,
            dropped,
            editor: Mutex::new(editor),
            budget,
            #[cfg(feature = "window")]
            display: display_tx,
            #[cfg(feature = "window")]
            pointer: Mutex::new(crate::window::Pointer::default()),
        })
    }
}

/// A running shell.
#[derive(Debug)]
pub struct Shell {
    events: Receiver<Event>,
    control: Sender<Control>,
    thread: JoinHandle<anyhow::Result<RunSummary>>,
    dropped: Arc<AtomicU64>,
    /// The scene file drawn, as edits and `set_scene` left it (none: the built-in panels).
    editor: Mutex<Option<crate::scene::Editor>>,
    /// What the renderer may map of the layers of any scene drawn.
    budget: crate::scene::Budget,
    /// The window's events, when the shell presents into one.
    #[cfg(feature = "window")]
    display: Option<Sender<crate::window::DisplayEvent>>,
    /// Where the window's pointer is, as its forwarded events said.
    #[cfg(feature = "window")]
    pointer: Mutex<crate::window::Pointer>,
}

impl Shell {
    /// The events, in order; the iterator ends when the shell is gone.
    pub fn events(&self) -> crossbeam_channel::Iter<'_, Event> {
        self.events.iter()
    }

    /// The event channel itself, to `select!` on with others.
    pub fn receiver(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Kills `target` with `SIGKILL`: the GPU process ([`Role::Gpu`], [`Target::Gpu`]) or a
    /// view's renderer ([`Target::Renderer`]; [`Role::Renderer`] is the first view's). It is
    /// recovered like any crash.
    pub fn kill(&self, target: impl Into<Target>) {
        let _ = self.control.send(Control::Kill(target.into()));
    }

    /// Adds a view drawing `view`'s scene and returns its number: a renderer of its own is
    /// started and sandboxed, the GPU process starts rendering for it, and its frames come as
    /// [`Event::Presented`] naming it, from its frame 0. It is as large as
    /// [`ViewConfig::rect`] says, or else the shell's frame size; in a window it gets a surface
    /// of its own at that rectangle, or else the views not placed by the application are
    /// tiled again with it (each a cell of the window's grid, which may change their size).
    ///
    /// The scene file is read here, on the caller's thread, as [`Shell::set_scene`] reads one
    /// ([`Error::Scene`]); a shell with as many views as it may refuses it
    /// ([`Error::TooManyViews`]), and nothing is started. Returns once the run has taken the
    /// view (its renderer spawned, the GPU process told), not once it presents.
    pub fn add_view(&self, view: ViewConfig) -> Result<ViewId, Error> {
        let loaded =
            Arc::new(crate::scene::load(&view.scene).map_err(|e| Error::Scene(format!("{e:#}")))?);
        self.budget
            .check(&loaded.scene)
            .map_err(|e| Error::Scene(format!("{}: {e}", view.scene.display())))?;
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.control
            .send(Control::AddView {
                scene: loaded,
                rect: view.rect,
                reply,
            })
            .map_err(|_| Error::Ended)?;
        // The run answers every request it takes; one that ends first drops the request, and
        // with it the reply's sender.
        Ok(answer.recv().map_err(|_| Error::Ended)??)
    }

    /// Removes view `view`: its renderer is shut down, the GPU process stops rendering for it
    /// and frees its buffers, and [`Event::ViewGone`] follows; the run's summary keeps its
    /// counts ([`crate::summary::ViewSummary::removed`]). A view given up (its renderer crashed
    /// too often, [`Event::ViewGone`]) is removed the same way, freeing what the run kept of
    /// it. The first view cannot be removed ([`Error::FirstView`]). In a window its surface
    /// goes, and the views not placed by the application are tiled again without it. A
    /// renderer that does not exit at once is killed: a removal holds the run up for a quarter
    /// of a second at most.
    pub fn remove_view(&self, view: ViewId) -> Result<(), Error> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.control
            .send(Control::RemoveView { view, reply })
            .map_err(|_| Error::Ended)?;
        Ok(answer.recv().map_err(|_| Error::Ended)??)
    }

    /// Places view `view` at `rect` from now on: in a window its surface moves there at once,
    /// and its frames are `rect.width` x `rect.height` from its next one on, as a resize makes
    /// them (a new size generation for that view alone, [`PresentedFrame::generation`];
    /// frames already on their way at the old size are dropped unshown). The size is clamped
    /// to 1 pixel and to the largest frame the shell's output slots hold
    /// ([`ShellBuilder::max_size`]; in a window the largest tile of its monitor). A placed view
    /// keeps its rectangle: [`Shell::resize`] and the window's resizes no longer change it.
    ///
    /// Without a window only the size counts. In a window the first view is the window's own
    /// surface: moved from the corner it is refused ([`Error::FirstViewCorner`]). A view the
    /// shell does not have is [`Error::NoSuchView`].
    pub fn set_view_rect(&self, view: ViewId, rect: ViewRect) -> Result<(), Error> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.control
            .send(Control::SetViewRect { view, rect, reply })
            .map_err(|_| Error::Ended)?;
        Ok(answer.recv().map_err(|_| Error::Ended)??)
    }

    /// Draws the scene file at `path` (`"default"`: the built-in example scene file) from the
    /// next frame on, in place of the one drawn now.
    ///
    /// The file is read here, on the caller's thread, exactly as [`ShellBuilder::scene`] reads
    /// one: a bad file, or an image that cannot be opened or decoded, is an error with the same
    /// located message (`FILE:LINE:COLUMN: FIELD: MESSAGE; hint: HINT`), and the running scene
    /// is left alone. A good one replaces the GPU process and the renderer with a fresh pair
    /// started on it (its layer count and backdrop may differ; the images' fds go to the new
    /// GPU process as at any start), resuming at the frame after the last one presented; the
    /// frame on screen stays until the new pair presents. No frame mixes two scenes: the new
    /// scene's frames come with a higher [`PresentedFrame::scene`]. Layers dragged or hovered
    /// in the old scene are forgotten. The replacement is no crash: no [`Event::Crashed`].
    pub fn set_scene(&self, path: impl AsRef<std::path::Path>) -> Result<(), Error> {
        let loaded = Arc::new(
            crate::scene::load(path.as_ref()).map_err(|e| Error::Scene(format!("{e:#}")))?,
        );
        let mut editor = self.editor.lock().map_err(|_| Error::Panicked)?;
        // A scene whose layers the renderer could not map is refused here, as an edit is.
        self.budget
            .check(&loaded.scene)
            .map_err(|e| Error::Scene(format!("{}: {e}", path.as_ref().display())))?;
        match editor.as_mut() {
            Some(e) => e.replace(Arc::clone(&loaded)),
            None => {
                *editor =
                    Some(crate::scene::Editor::new(Arc::clone(&loaded)).with_budget(self.budget))
            }
        }
        self.control
            .send(Control::SetScene(loaded))
            .map_err(|_| Error::Ended)
    }

    /// Edits the scene drawn, without new children: the layers `tx` adds, removes and changes
    /// appear together, all in one frame, from the GPU process's next frame on. Returns the
    /// edit's version; [`Event::Applied`] names it with the first frame presented that shows
    /// it, and [`PresentedFrame::edit`] says which edits every frame shows.
    ///
    /// The edit is checked here, on the caller's thread, as the scene file is: a transaction
    /// that names an unknown layer, breaks a rule of the file or a limit, or names an image
    /// that cannot be opened is refused whole ([`Error::Edit`]) and nothing changes. A change
    /// costs its damage: the frame that shows a new text damages that layer's rectangle, a move
    /// the old and new rectangles. A GPU process started later (after a crash) starts on the
    /// edited scene.
    ///
    /// ```no_run
    /// use serde_json::json;
    /// use triptych::shell::{ShellBuilder, Transaction};
    ///
    /// let shell = ShellBuilder::new().scene("clock.toml").frames(600).spawn()?;
    /// let version = shell.edit(&Transaction::new().set("time", json!({"text": "12:00:01"})))?;
    /// # let _ = version;
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    pub fn edit(&self, tx: &Transaction) -> Result<u64, Error> {
        self.with_editor(|e| e.edit(tx))
    }

    /// Shows the application's own pixels in the pixels layer named `layer` (a layer of kind
    /// `pixels`, `width` x `height` of them, transparent until the first upload): the rectangle
    /// `pixels` names is replaced, the rest kept, from the GPU process's next frame on, as an
    /// edit ([`Shell::edit`]) is, with its version returned and answered by
    /// [`Event::Applied`]. The pixels are premultiplied RGBA8; they reach the GPU process in a
    /// sealed memfd it can only read, and every GPU process started later gets them whole.
    ///
    /// Refused ([`Error::Edit`]), and nothing changed, when the layer is no pixels layer, the
    /// rectangle is not inside its pixels, the rows are not `width * height * 4` bytes, or a
    /// colour exceeds its alpha; and, the rate limit, while uploads holding more than
    /// [`crate::scene::MAX_BACKLOG`] bytes of pixels wait for the run to take them.
    pub fn upload(&self, layer: &str, pixels: &Pixels<'_>) -> Result<u64, Error> {
        self.with_editor(|e| e.upload(layer, pixels))
    }

    fn with_editor(
        &self,
        f: impl FnOnce(&mut crate::scene::Editor) -> Result<crate::scene::Edit, EditRefused>,
    ) -> Result<u64, Error> {
        let mut editor = self.editor.lock().map_err(|_| Error::Panicked)?;
        let Some(editor) = editor.as_mut() else {
            return Err(Error::Scene(
                "the shell draws the built-in panels, which have no scene file to edit; hint: build it with ShellBuilder::scene (\"default\" is the built-in scene file)".into(),
            ));
        };
        let edit = f(editor)?;
        let version = edit.version;
        self.control
            .send(Control::Edit(edit))
            .map_err(|_| Error::Ended)?;
        Ok(version)
    }

    /// Makes frames of every view the application has not placed ([`Shell::set_view_rect`])
    /// `width` x `height` from now on, the way a window's resize does: a new
    /// size generation, told to the renderer and then to the GPU process, so that no frame of
    /// the old size is presented after the first of the new one ([`PresentedFrame::generation`]
    /// goes up with it); frames already on their way at the old size are dropped unshown.
    /// Headless, the size is clamped to [`ShellBuilder::max_size`]; presenting into a window,
    /// it is what the window's `Resized` event does (forward that instead where the window
    /// itself changes size).
    pub fn resize(&self, width: u32, height: u32) {
        let _ = self
            .control
            .send(Control::Resize(width.max(1), height.max(1)));
    }

    #[cfg(feature = "window")]
    /// Hands the shell one of its window's events ([`ShellBuilder::present_into`]): a resize,
    /// a close request, a redraw, the pointer (hovering a layer outlines it, dragging it with
    /// the first button moves it) and the keys of `triptych run`'s window (space pauses, `.`
    /// steps, `g` and `r` kill the GPU process and the renderer, `q` and Escape end the run).
    /// Events the shell has no use for, and every event of a headless shell, are ignored.
    pub fn window_event(&self, event: &WindowEvent) {
        let Some(tx) = &self.display else {
            return;
        };
        let Ok(mut pointer) = self.pointer.lock() else {
            return;
        };
        if let Some(e) = crate::window::translate(&mut pointer, event) {
            let _ = tx.send(e);
        }
    }

    /// Asks the shell to stop after the frame on screen.
    pub fn shutdown(&self) {
        let _ = self.control.send(Control::Shutdown);
    }

    /// Frame events dropped because the application did not read them in time.
    pub fn dropped_events(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits for the run to end and returns its summary.
    pub fn wait(self) -> Result<RunSummary, Error> {
        let result = self.thread.join().map_err(|_| Error::Panicked)?;
        result.map_err(|e| match e.downcast::<crate::session::RunFailed>() {
            Ok(f) => Error::Run {
                message: f.message,
                summary: Some(f.summary),
            },
            Err(e) => Error::Run {
                message: format!("{e:#}"),
                summary: None,
            },
        })
    }
}
