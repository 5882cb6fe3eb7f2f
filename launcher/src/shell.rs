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

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};

pub use crate::cli::{Buffers, SandboxMode, TransportArg as Transport};
pub use crate::summary::RunSummary;
pub use ipc_protocol::Role;

/// Events a frame channel of this size holds before frame events are dropped.
pub const EVENT_QUEUE: usize = 64;

/// A frame on screen.
#[derive(Clone, Debug)]
pub struct PresentedFrame {
    /// Its number.
    pub frame: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    pixels: Option<Arc<Vec<u8>>>,
}

impl PresentedFrame {
    pub(crate) fn new(frame: u64, (width, height): (u32, u32), pixels: Option<Vec<u8>>) -> Self {
        Self {
            frame,
            width,
            height,
            pixels: pixels.map(Arc::new),
        }
    }

    /// The frame's pixels, premultiplied RGBA, rows tightly packed, when the shell was built
    /// with [`ShellBuilder::pixels`]: a copy taken when the frame was presented (the memory the
    /// renderer composites into is never lent out, since the renderer can write it).
    pub fn pixels(&self) -> Option<&[u8]> {
        self.pixels.as_deref().map(Vec::as_slice)
    }
}

/// What a shell tells the application.
#[derive(Clone, Debug)]
pub enum Event {
    /// A frame reached the screen (or, headless, the output).
    Presented(PresentedFrame),
    /// A child died or hung and is being replaced.
    Crashed {
        /// Which.
        role: Role,
        /// Why, as the crash record says it (a signal, a hang, a sandbox violation naming the
        /// system call, a protocol violation naming the message).
        cause: String,
    },
    /// A fallback was taken (a slower buffer backend, a copying present path).
    Fallback(String),
    /// The run is over; [`Shell::wait`] returns its summary.
    Finished,
}

/// What the application tells its shell.
#[derive(Debug)]
pub(crate) enum Control {
    Kill(Role),
    Shutdown,
}

/// The supervisor's side of an embedding.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) events: Sender<Event>,
    pub(crate) control: Receiver<Control>,
    pub(crate) pixels: bool,
    pub(crate) dropped: Arc<AtomicU64>,
}

/// Room kept in the channel for the events that are not frames.
const HEADROOM: usize = 8;

impl Link {
    /// Hands `e` to the application without waiting; a full channel drops it.
    pub(crate) fn send(&self, e: Event) {
        if self.events.try_send(e).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether a frame event would be kept: frames leave [`HEADROOM`] places free for crash,
    /// fallback and the final event. Checked before a frame's pixels are copied.
    pub(crate) fn frame_fits(&self) -> bool {
        let fits = self.events.len() + HEADROOM < EVENT_QUEUE;
        if !fits {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        fits
    }
}

/// How to build a shell; every setting has the command line's default.
#[derive(Debug)]
pub struct ShellBuilder {
    args: crate::cli::RunArgs,
    pixels: bool,
    binaries: Option<PathBuf>,
}

impl Default for ShellBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ShellBuilder {
    /// The defaults of `triptych run`: 640x480, 3 layers, 120 frames, `--buffers auto`, the
    /// sandbox enforced, three crashes a minute forgiven.
    pub fn new() -> Self {
        use clap::Parser;
        let cli = crate::cli::Cli::parse_from(["triptych", "run", "--headless"]);
        let crate::cli::Command::Run(args) = cli.command else {
            unreachable!("`run` parses as a run")
        };
        Self {
            args,
            pixels: false,
            binaries: None,
        }
    }

    /// The frame size (1 to 8192 each way).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.args.size = crate::cli::Size {
            width: width.clamp(1, 8192),
            height: height.clamp(1, 8192),
        };
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

    /// Frames to present (at least 1).
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
        self.args.max_crashes = max_crashes;
        self.args.restart_window_s = window_s;
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
    pub fn spawn(self) -> anyhow::Result<Shell> {
        // A bad scene file fails here, before anything is started.
        let mut args = self.args;
        crate::scene::prepare_run(&mut args)?;
        let dir = match self.binaries {
            Some(d) => d,
            None => crate::child::find_children_dir()?,
        };
        crate::child::set_children_dir(dir)?;
        triptych_sys::prctl::set_dumpable(false)
            .context("making this process non-dumpable, as a launcher must be")?;
        let (events_tx, events) = crossbeam_channel::bounded(EVENT_QUEUE);
        let (control, control_rx) = crossbeam_channel::unbounded();
        let dropped = Arc::new(AtomicU64::new(0));
        let link = Link {
            events: events_tx,
            control: control_rx,
            pixels: self.pixels,
            dropped: dropped.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("triptych-shell".into())
            .spawn(move || {
                let never = crossbeam_channel::never();
                crate::session::run_embedded(&args, &never, link)
            })
            .context("starting the shell's supervisor thread")?;
        Ok(Shell {
            events,
            control,
            thread,
            dropped,
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

    /// Kills `role` with `SIGKILL`; it is recovered like any crash.
    pub fn kill(&self, role: Role) {
        let _ = self.control.send(Control::Kill(role));
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
    pub fn wait(self) -> anyhow::Result<RunSummary> {
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the shell's supervisor thread panicked"))?
    }
}
