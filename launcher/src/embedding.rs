//! What passes between the engine's run and the application that embeds it: the events it
//! receives ([`Event`], [`PresentedFrame`]), the requests it makes (`Control`), and the link
//! that carries both (`Link`). The facade the application uses is [`crate::shell`]; the run
//! (`crate::session`) speaks to this module only, so the two never import each other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

pub use ipc_protocol::messages::ViewId;
pub use ipc_protocol::Role;

/// Events a frame channel of this size holds before frame events are dropped.
pub const EVENT_QUEUE: usize = 64;

/// A frame on screen.
#[derive(Clone, Debug)]
pub struct PresentedFrame {
    /// The view it is a frame of (the first view, the one every shell has, is
    /// [`FIRST_VIEW`]).
    pub view: ViewId,
    /// Its number, counted per view.
    pub frame: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The scene it shows: 0 for the one the view was started with, one more for each
    /// [`crate::shell::Shell::set_scene`] that took effect (the first view's). Every frame is
    /// all of one scene.
    pub scene: u32,
    /// The size's generation: 0 at first, one more at every resize that changed the size
    /// ([`crate::shell::Shell::resize`], or the window's). The first frame of a generation is the
    /// first of its size on screen.
    pub generation: u32,
    /// The edits of the scene it shows: every edit ([`crate::shell::Shell::edit`]) up to this
    /// version, and none after (0: none yet; always 0 for views other than the first, which
    /// edits do not touch).
    pub edit: u64,
    /// The rectangles in which it differs from the frame presented before it (all of it for
    /// the first of its generation, or after a child was replaced): an application that keeps
    /// a copy of the frames needs to copy only these.
    pub damage: Vec<ipc_protocol::damage::Rect>,
    pixels: Option<Arc<Vec<u8>>>,
}

impl PresentedFrame {
    pub(crate) fn new(
        (view, frame): (ViewId, u64),
        (width, height): (u32, u32),
        (scene, generation, edit): (u32, u32, u64),
        damage: Vec<ipc_protocol::damage::Rect>,
        pixels: Option<Vec<u8>>,
    ) -> Self {
        Self {
            view,
            frame,
            width,
            height,
            scene,
            generation,
            edit,
            damage,
            pixels: pixels.map(Arc::new),
        }
    }

    /// The frame's pixels, premultiplied RGBA, rows tightly packed, when the shell was built
    /// with [`crate::shell::ShellBuilder::pixels`]: a copy taken when the frame was presented (the
    /// memory the renderer composites into is never lent out, since the renderer can write it).
    pub fn pixels(&self) -> Option<&[u8]> {
        self.pixels.as_deref().map(Vec::as_slice)
    }
}

/// What a shell tells the application. More kinds of event may come in later versions: match
/// with a wildcard arm.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// A frame reached the screen (or, headless, the output).
    Presented(PresentedFrame),
    /// A child died or hung and is being replaced.
    Crashed {
        /// Which.
        role: Role,
        /// The view whose renderer it was (none for the GPU process, which serves every view).
        view: Option<ViewId>,
        /// Why, as the crash record says it (a signal, a hang, a sandbox violation naming the
        /// system call, a protocol violation naming the message).
        cause: String,
    },
    /// A child's sandbox refused a system call: the kernel's report, which the launcher holds
    /// and the child cannot forge or suppress. The child is killed for it and replaced; a
    /// [`Event::Crashed`] follows.
    Violation {
        /// Which child.
        role: Role,
        /// The view whose renderer it was (none for the GPU process).
        view: Option<ViewId>,
        /// The call, as `name(args)`.
        call: String,
    },
    /// Edits of the scene ([`crate::shell::Shell::edit`], [`crate::shell::Shell::upload`]) are
    /// on screen: `frame` is the first frame presented that shows the edit `version` and every
    /// edit before it (one event for all the edits a frame brings).
    Applied {
        /// The edit's version, as `Shell::edit` returned it.
        version: u64,
        /// The first frame that shows it.
        frame: u64,
    },
    /// An edit ([`crate::shell::Shell::edit`]) will never be shown: a new scene
    /// ([`crate::shell::Shell::set_scene`]) replaced the one it edited first.
    EditSuperseded {
        /// The edit's version.
        version: u64,
    },
    /// A fallback was taken (a slower buffer backend, a copying present path).
    Fallback(String),
    /// A standby GPU process is ready (spawned, sandboxed, its GL context made): the next GPU
    /// process crash is recovered by promoting it.
    StandbyReady {
        /// Its pid.
        pid: u32,
    },
    /// A view is gone: removed by the application ([`crate::shell::Shell::remove_view`]), or
    /// given up because its renderer crashed more often than the restart policy forgives (the
    /// other views go on). Its frames stop; the summary keeps its counts.
    ViewGone {
        /// Which.
        view: ViewId,
        /// Why it was given up; none when the application removed it.
        failed: Option<String>,
    },
    /// The run is over; [`crate::shell::Shell::wait`] returns its summary.
    Finished,
}

/// The first view: every shell has it from its start to its end, and the window, the pointer,
/// edits and [`crate::shell::Shell::set_scene`] act on it.
pub const FIRST_VIEW: ViewId = ViewId(0);

/// What a child to kill is ([`crate::shell::Shell::kill`]): the GPU process, which serves every
/// view, or one view's renderer. A [`Role`] names the first view's renderer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The GPU process.
    Gpu,
    /// The renderer of this view.
    Renderer(ViewId),
}

impl From<Role> for Target {
    fn from(role: Role) -> Target {
        match role {
            Role::Gpu => Target::Gpu,
            Role::Renderer => Target::Renderer(FIRST_VIEW),
        }
    }
}

/// Where a view is placed in a window and how large its frames are
/// ([`crate::shell::ViewConfig::rect`], [`crate::shell::Shell::set_view_rect`]): `x` and `y` in
/// the window's pixels from its top-left corner (a view may lie partly or wholly outside the
/// window; the display server shows what is inside), `width` x `height` the view's frame size.
/// Without a window only the size counts: each view's frames are its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewRect {
    /// Left edge, in the window.
    pub x: i32,
    /// Top edge, in the window.
    pub y: i32,
    /// Frame width (at least 1).
    pub width: u32,
    /// Frame height (at least 1).
    pub height: u32,
}

impl ViewRect {
    /// A `width` x `height` view at `(x, y)`.
    pub fn new(x: i32, y: i32, width: u32, height: u32) -> ViewRect {
        ViewRect {
            x,
            y,
            width,
            height,
        }
    }

    /// Whether window point `p` lies in it, and where in its frame.
    pub(crate) fn local(&self, (px, py): (i32, i32)) -> Option<(i32, i32)> {
        let (x, y) = (
            i64::from(px) - i64::from(self.x),
            i64::from(py) - i64::from(self.y),
        );
        let inside =
            (0..i64::from(self.width)).contains(&x) && (0..i64::from(self.height)).contains(&y);
        // Inside a frame of at most 8192 pixels a side.
        inside.then_some((x as i32, y as i32))
    }
}

/// Why the run refused to add, remove or place a view.
#[derive(Debug)]
pub(crate) enum ViewRefused {
    /// It has as many views as it may.
    TooMany { max: u32 },
    /// No view of the run has this number (any more).
    NoSuch(ViewId),
    /// The first view stays as long as the run.
    First,
    /// Its renderer could not be started.
    Start(String),
    /// In a window, the first view is drawn into the window itself: it stays at its corner.
    Corner,
}

/// What the application tells its shell.
#[derive(Debug)]
pub(crate) enum Control {
    Kill(Target),
    /// A view of this scene (loaded and checked on the application's thread).
    AddView {
        scene: Arc<crate::scene::LoadedScene>,
        /// Where the application placed it, if it did.
        rect: Option<ViewRect>,
        reply: Sender<Result<ViewId, ViewRefused>>,
    },
    RemoveView {
        view: ViewId,
        reply: Sender<Result<(), ViewRefused>>,
    },
    Shutdown,
    /// A scene the application's thread loaded already (parsed, images opened and decoded).
    SetScene(Arc<crate::scene::LoadedScene>),
    /// An edit of the scene drawn, checked already.
    Edit(crate::scene::Edit),
    Resize(u32, u32),
    /// Place view `view` at `rect` (its frames of `rect`'s size from then on).
    SetViewRect {
        view: ViewId,
        rect: ViewRect,
        reply: Sender<Result<(), ViewRefused>>,
    },
}

/// The supervisor's side of an embedding.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) events: Sender<Event>,
    pub(crate) control: Receiver<Control>,
    pub(crate) pixels: bool,
    pub(crate) dropped: Arc<AtomicU64>,
    /// The largest frame a headless resize may ask for.
    pub(crate) max_size: (u32, u32),
    /// How the children are started (their binaries checked).
    pub(crate) children: crate::child::Children,
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

#[cfg(test)]
mod tests {
    use super::ViewRect;

    #[test]
    fn a_point_is_in_a_view_rectangle_in_the_view_own_coordinates() {
        let r = ViewRect::new(160, -20, 100, 50);
        assert_eq!(r.local((160, -20)), Some((0, 0)));
        assert_eq!(r.local((259, 29)), Some((99, 49)));
        assert_eq!(r.local((260, 0)), None, "right of it");
        assert_eq!(r.local((200, 30)), None, "below it");
        assert_eq!(r.local((159, 0)), None, "left of it");
        assert_eq!(
            ViewRect::new(i32::MAX, 0, 8192, 1).local((i32::MIN, 0)),
            None
        );
    }
}
