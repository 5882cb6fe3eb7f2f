//! The window: a run presented into a real window (winit), without a copy.
//!
//! # Threads
//!
//! winit's event loop must own the main thread, so the application that owns the window (the
//! `triptych` command line's `window` module, or an embedding application) runs the supervisor
//! (the whole run: children, crash recovery, frames) on a thread of its own, which talks to the
//! window through channels: the window side sends [`DisplayEvent`]s (keys, close, a finished
//! present), [`translate`]d from winit's events; the supervisor draws through the
//! [`x11::Presenter`] or [`wayland::Presenter`], which have their own connections to the display
//! server. [`adopt`] makes the supervisor's side of a window.
//!
//! # Pacing
//!
//! A window's frames are produced at the display's rate: at every refresh tick the supervisor
//! asks the GPU process for one more frame (`LauncherToGpu::Render`), with at most two frames
//! asked for and not yet presented, so no frame is rendered that the display has no time for
//! and the newest frame is never the one dropped. The refresh rate is the monitor's, or 60 Hz
//! where the server does not say (Xvfb).
//!
//! # Keys
//!
//! Dragging a layer with the first button moves it (the launcher picks the topmost layer under
//! the pointer in the frame on screen and sends the offsets to the GPU process, which adds them
//! to the scene's placement; they survive a restart of the GPU process). The layer under the
//! pointer is outlined in the frames that follow (`LauncherToGpu::Hover`). Layers are picked by
//! the layout of the scene drawn: the built-in scene's, or a scene file's.
//!
//! An application that embeds triptych hands it a window of its own
//! (`crate::shell::ShellBuilder::present_into`): [`adopt`] makes the [`Display`] of it, and
//! [`translate`] turns the events the application forwards into [`DisplayEvent`]s, as the
//! command line's window (`triptych_cli::window`) does with its own.
//!
//! Space pauses and resumes, `.` steps one frame while paused, `o` shows or hides the overlay
//! (frames per second, present latency, buffer backend, fence, fd transport, restarts,
//! sandbox: drawn by the GPU process as the frame's top layer, `crate::session`'s
//! `overlay.rs`), `g` kills the GPU process and `r` the renderer (with `SIGKILL`, recovered
//! like any crash; the last frame stays on screen meanwhile), `q` or Escape quits.
//!
//! On Wayland (`WAYLAND_DISPLAY`, preferred where both are set) the output memfd is a `wl_shm`
//! pool with a buffer per slot ([`wayland`]); on X11 it is attached with MIT-SHM ([`x11`]).
//!
//! # Several views
//!
//! A run of several views tiles them in one window ([`Grid`]: as many columns as the square
//! root of their number, rounded up, and as many rows as that leaves), every tile the size of
//! a frame. The first view is drawn into the window itself at the top left; each other view
//! has a surface of its own placed at its tile: an X11 child window, or a Wayland
//! `wl_subsurface` (desynchronised, so that each view's commits show at once), each showing
//! its frames straight from its own renderer's output memfd. The display server composes the
//! tiles; no pixel passes through the launcher. The pointer acts on the view under it (in
//! that view's own coordinates), and `r` kills the renderer of the view last clicked.

#[cfg(feature = "window")]
mod app;
pub mod wayland;
pub mod x11;

#[cfg(feature = "window")]
pub use app::{action_for, adopt, translate, Pointer};

use std::time::Duration;

use crossbeam_channel::Receiver;
use ipc_protocol::damage::Region;

/// What the window side tells the supervisor.
#[derive(Debug)]
pub enum DisplayEvent {
    /// The X server finished a put (it read that slot).
    Completed(x11::Completion),
    /// The Wayland compositor no longer reads a slot.
    Released(x11::Completion),
    /// The Wayland compositor showed this frame of the view at this place and asks for its
    /// next one.
    FrameDone {
        /// The view's place: its number (0: the window's own surface).
        place: u32,
        /// The frame.
        frame: u64,
    },
    /// A key that means something.
    Key(Action),
    /// The window was closed.
    Closed,
    /// The window was resized (frames keep the size they were started with).
    Resized(u32, u32),
    /// The window needs its content again.
    Exposed,
    /// The pointer left the window.
    PointerLeft,
    /// The pointer moved to (x, y) in the window, or its first button changed.
    Pointer {
        /// Window pixels from the left.
        x: i32,
        /// Window pixels from the top.
        y: i32,
        /// The first button is down.
        pressed: bool,
    },
}

/// What a key does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Space.
    TogglePause,
    /// `.`: one frame while paused.
    Step,
    /// `g`.
    KillGpu,
    /// `r`.
    KillRenderer,
    /// `o`: show or hide the overlay.
    ToggleOverlay,
    /// `q`, Escape.
    Quit,
}

/// Drawing into the window, on either kind of display server.
#[derive(Debug)]
pub enum Presenter {
    /// MIT-SHM (or a copying `PutImage`).
    X11(x11::Presenter),
    /// `wl_shm` from the output memfd.
    Wayland(Box<wayland::Presenter>),
}

impl Presenter {
    /// The summary's name of the present path.
    pub fn describe(&self) -> &'static str {
        match self {
            Presenter::X11(p) => p.path.describe(),
            Presenter::Wayland(_) => {
                "Wayland wl_shm: a buffer per slot of the renderer's output memfd (zero-copy)"
            }
        }
    }

    /// Why the path copies, where it does.
    pub fn reason(&self) -> Option<String> {
        match self {
            Presenter::X11(p) => p.reason.clone(),
            Presenter::Wayland(_) => None,
        }
    }

    /// Whether every put is followed by a completion naming it (X11 MIT-SHM).
    pub fn completes(&self) -> bool {
        matches!(self, Presenter::X11(p) if p.path == x11::Path::Shm)
    }

    /// Whether slots come back by release events, and frames are asked for by frame callbacks
    /// (Wayland).
    pub fn releases(&self) -> bool {
        matches!(self, Presenter::Wayland(_))
    }

    /// Makes the renderer's output memfd known to the server; returns its id.
    pub fn attach(
        &self,
        fd: std::os::fd::OwnedFd,
        slots: u32,
        slot_bytes: u32,
        size: (u16, u16),
    ) -> anyhow::Result<u32> {
        match self {
            Presenter::X11(p) => p.attach(fd),
            Presenter::Wayland(p) => p.attach(fd, slots, slot_bytes, size),
        }
    }

    /// The window's frames are now `size`: the slots of `seg` are shown at that size.
    pub fn resize(&self, seg: u32, size: (u16, u16)) {
        if let Presenter::Wayland(p) = self {
            p.resize(seg, size);
        }
    }

    /// Puts the surface of the view at `place` (its number; 0: the window itself, which needs
    /// none) at `at` in the window, `size` large, making it the first time (on top of the
    /// others: [`Presenter::stack`] puts it in its place).
    pub fn place(&self, place: u32, at: (i32, i32), size: (u16, u16)) -> anyhow::Result<()> {
        if place == 0 {
            return Ok(());
        }
        match self {
            Presenter::X11(p) => p.place(place, at, size),
            Presenter::Wayland(p) => p.place(place, at),
        }
    }

    /// Stacks the views' surfaces in the order of `places`, the first lowest (the window's own
    /// surface, place 0, is always below them all).
    pub fn stack(&self, places: &[u32]) {
        match self {
            Presenter::X11(p) => p.stack(places),
            Presenter::Wayland(p) => p.stack(places),
        }
    }

    /// Destroys the surface of the view at `place` (not the window's own): the view is gone.
    pub fn unplace(&self, place: u32) {
        if place == 0 {
            return;
        }
        match self {
            Presenter::X11(p) => p.unplace(place),
            Presenter::Wayland(p) => p.unplace(place),
        }
    }

    /// Forgets output `seg`.
    pub fn detach(&self, seg: u32) {
        match self {
            Presenter::X11(p) => p.detach(seg),
            Presenter::Wayland(p) => p.detach(seg),
        }
    }

    /// Shows the slot at `offset` of `seg`, holding `frame`, on the surface of the view at
    /// `place`; it differs from the frame shown there before only inside `damage`.
    #[allow(clippy::too_many_arguments)]
    pub fn put(
        &self,
        place: u32,
        seg: u32,
        offset: u32,
        frame: u64,
        size: (u16, u16),
        damage: &Region,
        pixels: impl FnOnce() -> Option<Vec<u8>>,
    ) -> anyhow::Result<()> {
        match self {
            Presenter::X11(p) => p.put(place, seg, offset, size, damage, pixels),
            Presenter::Wayland(p) => p.put(place, seg, offset, frame, size, damage),
        }
    }
}

/// The supervisor's side of the window.
#[derive(Debug)]
pub struct Display {
    /// Events from the window.
    pub events: Receiver<DisplayEvent>,
    /// Drawing into the window.
    pub presenter: Presenter,
    /// The display's refresh period.
    pub refresh: Duration,
    /// The largest frame a resize may ask for (the monitor's size, at most 4096x4096).
    pub max: (u32, u32),
}

/// How the views of a window are tiled: `cols` x `rows` tiles of one frame's size each, the
/// views in order row by row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    /// Tiles across.
    pub cols: u32,
    /// Tiles down.
    pub rows: u32,
}

impl Grid {
    /// The grid of `views` views (at least one): the smallest square's side across, and as few
    /// rows as hold them.
    pub fn for_views(views: u32) -> Grid {
        let n = views.max(1);
        let cols = (1..=n).find(|c| c * c >= n).unwrap_or(n);
        Grid {
            cols,
            rows: n.div_ceil(cols),
        }
    }

    /// The window's size for tiles of `tile`.
    pub fn window(&self, (w, h): (u32, u32)) -> (u32, u32) {
        (w.saturating_mul(self.cols), h.saturating_mul(self.rows))
    }

    /// The tiles' size in a window of `window` (at least 1x1).
    pub fn tile(&self, (w, h): (u32, u32)) -> (u32, u32) {
        ((w / self.cols).max(1), (h / self.rows).max(1))
    }

    /// Where the tile at `place` starts, for tiles of `tile`.
    pub fn origin(&self, place: u32, (w, h): (u32, u32)) -> (i32, i32) {
        let (col, row) = (place % self.cols, place / self.cols);
        let at = |n: u32, side: u32| i32::try_from(n.saturating_mul(side)).unwrap_or(i32::MAX);
        (at(col, w), at(row, h))
    }
}

#[cfg(test)]
mod tests {
    use super::Grid;

    #[test]
    fn views_are_tiled_row_by_row_in_the_smallest_square_that_holds_them() {
        let shapes: Vec<_> = (1..=10)
            .map(|n| {
                let g = Grid::for_views(n);
                (g.cols, g.rows)
            })
            .collect();
        assert_eq!(
            shapes,
            [
                (1, 1),
                (2, 1),
                (2, 2),
                (2, 2),
                (3, 2),
                (3, 2),
                (3, 3),
                (3, 3),
                (3, 3),
                (4, 3)
            ]
        );
        let g = Grid::for_views(4);
        assert_eq!(g.window((160, 120)), (320, 240));
        assert_eq!(g.tile((321, 241)), (160, 120));
        assert_eq!(g.origin(3, (160, 120)), (160, 120));
    }
}
