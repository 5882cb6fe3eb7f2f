//! The supervisor's side of a window: which slots the display server still reads, which frames
//! the display has asked for, and what the keys do (see `crate::window`).
//!
//! A slot goes back to the renderer only once the launcher holds it no more: on X11 (MIT-SHM),
//! when the put of the slot that replaced it is complete; on Wayland, when the compositor has
//! released its buffer and another slot is on screen, in whichever order the two happen. The
//! slot on screen is always kept (a redraw and the PNG at exit read it). That bookkeeping is the
//! renderer's [`super::slots::Slots`]; this module feeds it the display server's events.
//!
//! A window of several views keeps all of that per view, in the view's [`Tile`]: its place, its
//! output attached, its puts, the frames asked of it. Each view has a frame size of its own: the
//! views the application placed keep their rectangle, and the others are tiled (each a cell of
//! the window's [`Grid`], laid out again when the window's size or the tiled views change). The
//! views share the pause and the refresh tick. A view's place is its number: the window's own
//! surface is the first view's, and each other view's surface is made when its first renderer's
//! output is attached and destroyed when it is removed.

use ipc_protocol::damage::Region;
use std::collections::VecDeque;

use super::*;
use crate::embedding::ViewRect;
use crate::window::{Action, Display, DisplayEvent, Grid};

/// Frames asked of the GPU process and not yet presented, at most.
const IN_FLIGHT: u64 = 2;

/// How often an idle window's supervisor looks at its clock.
const IDLE_TICK: Duration = Duration::from_millis(500);

/// How long a window size must hold before frames are made at it (an interactive resize
/// reports many sizes).
const RESIZE_SETTLE: Duration = Duration::from_millis(60);

/// A window's state in the supervisor.
#[derive(Debug)]
pub(super) struct Shown {
    pub(super) d: Display,
    /// The window's size now (the last reported; the tiles are cells of it).
    window: (u32, u32),
    /// Each view's place in the window, in the order of the run's views.
    tiles: Vec<Tile>,
    /// Pause, step and the refresh tick.
    pacing: Pacing,
    /// A resize waiting to be applied (the last size the window reported), and when.
    resize: Option<((u32, u32), Instant)>,
    /// The window was closed or `q` pressed.
    pub(super) quit: bool,
    /// The overlay (the `o` key).
    pub(super) overlay: super::overlay::Overlay,
    /// The view last pressed on: the one the `r` key kills.
    focus: ViewId,
}

/// One view's place in the window: what was put there and which of its frames are asked for.
#[derive(Debug)]
struct Tile {
    view: ViewId,
    /// Where in the window its surface lies (the first view's: the corner).
    at: (i32, i32),
    puts: Puts,
    /// The next frame to ask for.
    next_request: u64,
    /// With a still scene, frames below this one are wanted (a change asks for one more).
    wanted: u64,
    /// Frames below this one were asked for before the last resize and will not be shown.
    floor: u64,
    /// The generation of the last frame known to be on screen.
    announced: u32,
    /// A step (the `.` key) asked for one more frame of it, not yet asked of the GPU process
    /// (it waits for room).
    step: bool,
    /// The frame a step asked for, announced once it is on screen.
    stepped: Option<u64>,
    /// Whether its scene animates; a still scene gets frames only on change.
    animates: bool,
}

/// What was put into the window: the outputs attached, the puts the server has not finished,
/// and what is on screen.
#[derive(Debug, Default)]
struct Puts {
    /// The segment of the current renderer's output, with that renderer's pid.
    seg: Option<(u32, u32)>,
    /// A previous renderer's segment, detached once the new one's first frame is on screen.
    retire: Option<u32>,
    /// Puts the server has not finished: (segment, offset, frame).
    pending: VecDeque<(u32, u32, u64)>,
    /// What is on screen: (segment, offset, size), for a redraw.
    on_screen: Option<(u32, u32, (u16, u16))>,
    /// The size and generation of each recent put, by frame.
    put_sizes: VecDeque<(u64, (u16, u16), u32)>,
    /// A frame of the current output has been put since it was attached.
    new_seg_shown: bool,
    /// A frame callback is outstanding (Wayland): the next frame is asked for at its `done`.
    awaiting_frame: bool,
}

/// When frames are asked for: at the display's rate, paused, or stepped.
#[derive(Debug)]
struct Pacing {
    paused: bool,
    /// The GPU process's epoch the requests went to.
    epoch: u64,
    next_tick: Instant,
}

impl Tile {
    /// View `view`'s place, before any frame; `animates`: whether its scene does.
    fn new(view: ViewId, animates: bool) -> Tile {
        Tile {
            view,
            at: (0, 0),
            puts: Puts::default(),
            next_request: 0,
            wanted: 1,
            floor: 0,
            announced: 0,
            step: false,
            stepped: None,
            animates,
        }
    }

    /// Something changed it: a still scene needs one more frame.
    fn changed(&mut self) {
        self.wanted = self.wanted.max(self.next_request + 1);
    }
}

impl Shown {
    /// Frames of `size` (the window's) from the next tick on, without waiting for the size to
    /// settle.
    pub(super) fn resize_now(&mut self, size: (u32, u32)) {
        let settled = Instant::now().checked_sub(RESIZE_SETTLE);
        self.resize = Some((size, settled.unwrap_or_else(Instant::now)));
    }

    /// Frames of `view` below this one were asked for before the last resize.
    pub(super) fn floor(&self, view: ViewId) -> u64 {
        self.tile(view).map_or(0, |t| t.floor)
    }

    /// The window's state before any frame, for `views` (each with whether its scene
    /// animates), in a window of `window`.
    pub(super) fn new(d: Display, views: &[(ViewId, bool)], window: (u32, u32)) -> Shown {
        Shown {
            d,
            window,
            tiles: views
                .iter()
                .map(|&(view, animates)| Tile::new(view, animates))
                .collect(),
            pacing: Pacing {
                paused: false,
                epoch: 0,
                next_tick: Instant::now(),
            },
            resize: None,
            quit: false,
            overlay: super::overlay::Overlay::default(),
            focus: FIRST_VIEW,
        }
    }

    /// Something changed every view (a resize, a new process, a step, the overlay): still
    /// scenes need one more frame.
    pub(super) fn changed(&mut self) {
        self.tiles.iter_mut().for_each(Tile::changed);
    }

    /// Something changed `view` (a move, a hover): if still, it needs one more frame.
    pub(super) fn changed_view(&mut self, view: ViewId) {
        if let Some(t) = self.tile_mut(view) {
            t.changed();
        }
    }

    /// Whether `view`'s scene animates.
    pub(super) fn set_animates(&mut self, view: ViewId, animates: bool) {
        if let Some(t) = self.tile_mut(view) {
            t.animates = animates;
        }
    }

    /// A place for view `view` (its scene animating or not), made by the application while
    /// the run goes on: its surface comes with its renderer's output.
    pub(super) fn add_tile(&mut self, view: ViewId, animates: bool) {
        self.tiles.push(Tile::new(view, animates));
    }

    /// Puts view `view`'s surface at its place, `size` large (the window's own surface, the
    /// first view's, stays where it is).
    fn place_surface(&mut self, view: ViewId, size: (u16, u16)) -> anyhow::Result<()> {
        let Some(at) = self.tile(view).map(|t| t.at) else {
            return Ok(());
        };
        self.d.presenter.place(view.0, at, size)?;
        // A surface is made when its view's first output comes, in no set order: the views are
        // stacked in their order again, so that the pointer's view is the one on top.
        let order: Vec<u32> = self.tiles.iter().map(|t| t.view.0).collect();
        self.d.presenter.stack(&order);
        Ok(())
    }

    /// View `view` is gone: its surface and the outputs attached for it go too.
    pub(super) fn remove_tile(&mut self, view: ViewId) {
        let Some(k) = self.tiles.iter().position(|t| t.view == view) else {
            return;
        };
        let t = self.tiles.remove(k);
        for seg in t
            .puts
            .seg
            .map(|(_, seg)| seg)
            .into_iter()
            .chain(t.puts.retire)
        {
            self.d.presenter.detach(seg);
        }
        self.d.presenter.unplace(view.0);
        if self.focus == view {
            self.focus = FIRST_VIEW;
        }
    }

    /// Where each view goes, given where the application placed some (`placed`, for every
    /// view of the run, in order): a placed view at its rectangle, and the others tiled in
    /// the window's grid, row by row, each as large as a cell. Returns the tiled views' place
    /// and cell size (the placed ones keep theirs).
    pub(super) fn lay_out(
        &mut self,
        placed: &[(ViewId, Option<ViewRect>)],
    ) -> Vec<(ViewId, (u32, u32))> {
        let tiled: Vec<ViewId> = self
            .tiles
            .iter()
            .map(|t| t.view)
            .filter(|v| placed.iter().any(|(p, r)| p == v && r.is_none()))
            .collect();
        let grid = Grid::for_views(u32::try_from(tiled.len()).unwrap_or(u32::MAX));
        let cell = grid.tile(self.window);
        let mut cells = Vec::with_capacity(tiled.len());
        for t in &mut self.tiles {
            match placed.iter().find(|(v, _)| *v == t.view) {
                Some((_, Some(r))) => t.at = (r.x, r.y),
                Some((_, None)) => {
                    let k = tiled.iter().position(|v| *v == t.view).unwrap_or(0);
                    t.at = grid.origin(u32::try_from(k).unwrap_or(0), cell);
                    cells.push((t.view, cell));
                }
                None => {}
            }
        }
        cells
    }

    fn tile(&self, view: ViewId) -> Option<&Tile> {
        self.tiles.iter().find(|t| t.view == view)
    }

    fn tile_mut(&mut self, view: ViewId) -> Option<&mut Tile> {
        self.tiles.iter_mut().find(|t| t.view == view)
    }
}

impl Supervisor<'_> {
    /// View `view`'s renderer's output was mapped: the display server attaches it too, and
    /// the view's surface is placed at its tile.
    pub(super) fn display_attach(
        &mut self,
        view: ViewId,
        renderer_pid: u32,
        fd: OwnedFd,
        slots: u32,
    ) -> anyhow::Result<()> {
        let geometry = &self
            .views
            .get(self.view_index(view).context("an output of no view")?)
            .context("an output of no view")?
            .geometry;
        let slot_bytes = u32::try_from(geometry.slot_bytes()).context("a frame beyond 4 GiB")?;
        let (w, h) = geometry.size();
        let size = (w as u16, h as u16);
        let Some(s) = self.display.as_mut() else {
            return Ok(());
        };
        s.place_surface(view, size)?;
        let seg = s.d.presenter.attach(fd, slots, slot_bytes, size)?;
        let Some(t) = s.tile_mut(view) else {
            return Ok(());
        };
        t.puts.new_seg_shown = false;
        // A new renderer's output shows nothing yet.
        t.changed();
        if let Some((_, old)) = t.puts.seg.replace((renderer_pid, seg)) {
            if let Some(earlier) = t.puts.retire.replace(old) {
                s.d.presenter.detach(earlier);
            }
        }
        Ok(())
    }

    /// Puts `slot` of view `view`'s current renderer, holding `frame` of `generation`, on screen
    /// at the view's place; the slot it replaces goes back to the renderer once the server has
    /// read the new one.
    pub(super) fn display_put(
        &mut self,
        view: ViewId,
        slot: u32,
        frame: u64,
        generation: u32,
        damage: &Region,
    ) -> anyhow::Result<()> {
        let i = self.view_index(view).context("a put of no view")?;
        let slot_bytes = self.views[i].geometry.slot_bytes();
        let (w, h) = self.views[i].geometry.size();
        let size = (w as u16, h as u16);
        // A copy only for the copying path (an X server without MIT-SHM 1.2).
        let copies = self
            .display
            .as_ref()
            .is_some_and(|s| !s.d.presenter.completes() && !s.d.presenter.releases());
        let pixels = copies
            .then(|| {
                self.views[i]
                    .renderer
                    .as_ref()
                    .and_then(|r| r.screen.as_ref())
                    .and_then(|sc| sc.raw_slot(slot, self.views[i].geometry.size()))
            })
            .flatten();
        let Some(s) = self.display.as_mut() else {
            return Ok(());
        };
        let (releases, completes) = (s.d.presenter.releases(), s.d.presenter.completes());
        let place = view.0;
        let Some(t) = s.tiles.iter_mut().find(|t| t.view == view) else {
            return Ok(());
        };
        let Some((_, seg)) = t.puts.seg else {
            return Ok(());
        };
        let offset = u32::try_from(u64::from(slot) * slot_bytes).context("a slot beyond 4 GiB")?;
        // The place shows the frame put before this one, of this segment and size: only what
        // changed since is put again. A new segment or size is put whole.
        let whole = Region::full(u32::from(size.0), u32::from(size.1));
        let fresh =
            !t.puts.new_seg_shown || t.puts.put_sizes.back().is_none_or(|(_, sz, _)| *sz != size);
        let damage = if fresh { &whole } else { damage };
        s.d.presenter
            .put(place, seg, offset, frame, size, damage, || pixels)?;
        t.puts.on_screen = Some((seg, offset, size));
        t.puts.new_seg_shown = true;
        if t.puts.put_sizes.len() >= 8 {
            t.puts.put_sizes.pop_front();
        }
        t.puts.put_sizes.push_back((frame, size, generation));
        if releases {
            t.puts.awaiting_frame = true;
        } else if completes {
            t.puts.pending.push_back((seg, offset, frame));
        }
        // The slot replaced goes back now (copying X11; Wayland when its buffer was released
        // already) or at the completion or release that frees it.
        let freed = self.views[i]
            .renderer
            .as_mut()
            .and_then(|r| r.slots.as_mut())
            .context("a put without an output")?
            .put(slot, frame)?;
        if !releases && !completes {
            self.on_screen(view, frame);
        }
        for back in freed {
            self.free_slot(i, back);
        }
        Ok(())
    }

    /// The server has `view`'s `frame`'s pixels.
    fn on_screen(&mut self, view: ViewId, frame: u64) {
        // The redraw's callback names no frame.
        if frame == u64::MAX {
            return;
        }
        if let Some(t) = self.display.as_mut().and_then(|s| s.tile_mut(view)) {
            if t.stepped == Some(frame) {
                t.stepped = None;
                tracing::info!(view = view.0, frame, "the stepped frame is on screen");
            }
            if let Some(&(_, size, generation)) =
                t.puts.put_sizes.iter().find(|(f, ..)| *f == frame)
            {
                if generation != t.announced {
                    t.announced = generation;
                    tracing::info!(
                        view = view.0,
                        frame,
                        width = size.0,
                        height = size.1,
                        generation,
                        "a frame of the new size is on screen"
                    );
                }
            }
        }
        if frame.checked_add(1) == Some(self.args.frames) {
            tracing::info!(
                view = view.0,
                frame,
                "the last frame is on screen; it stays until the window is closed"
            );
        }
    }

    /// Hands `slot` back to view `i`'s renderer.
    fn free_slot(&mut self, i: usize, slot: u32) {
        if let Some(r) = self.views.get_mut(i).and_then(|v| v.renderer.as_mut()) {
            if let Err(e) = r
                .child
                .commands
                .send_deferred(&LauncherToRenderer::SlotFree(slot))
            {
                r.send_failed(e);
            }
        }
    }

    /// Handles one event from the window.
    pub(super) fn display_event(&mut self, e: DisplayEvent) -> anyhow::Result<()> {
        match e {
            DisplayEvent::Completed(c) => {
                let Some(s) = self.display.as_mut() else {
                    return Ok(());
                };
                let found = s.tiles.iter_mut().find_map(|t| {
                    let at = t
                        .puts
                        .pending
                        .iter()
                        .position(|(seg, off, _)| *seg == c.seg && *off == c.offset)?;
                    let (seg, _, frame) = t.puts.pending.remove(at)?;
                    let current = t.puts.seg.is_some_and(|(_, cur)| cur == seg);
                    let retire = if current { t.puts.retire.take() } else { None };
                    Some((t.view, frame, current, retire))
                });
                let Some((view, frame, current, retire)) = found else {
                    return Ok(());
                };
                if let Some(old) = retire {
                    s.d.presenter.detach(old);
                }
                self.on_screen(view, frame);
                let Some(i) = self.view_index(view).filter(|_| current) else {
                    return Ok(());
                };
                let freed = self.views[i]
                    .geometry
                    .slot_of(c.offset)
                    .and_then(|slot| {
                        self.views[i]
                            .renderer
                            .as_mut()?
                            .slots
                            .as_mut()?
                            .completed(slot)
                    })
                    .and_then(|(_, back)| back);
                if let Some(back) = freed {
                    self.free_slot(i, back);
                }
            }
            DisplayEvent::Released(c) => {
                let view = self.display.as_ref().and_then(|s| {
                    s.tiles
                        .iter()
                        .find(|t| t.puts.seg.is_some_and(|(_, cur)| cur == c.seg))
                        .map(|t| t.view)
                });
                let Some(i) = view.and_then(|v| self.view_index(v)) else {
                    return Ok(());
                };
                let freed = self.views[i].geometry.slot_of(c.offset).and_then(|slot| {
                    self.views[i]
                        .renderer
                        .as_mut()?
                        .slots
                        .as_mut()?
                        .released(slot)
                });
                if let Some(slot) = freed {
                    self.free_slot(i, slot);
                }
            }
            DisplayEvent::FrameDone { place, frame } => {
                let Some(s) = self.display.as_mut() else {
                    return Ok(());
                };
                let Some(t) = s.tiles.iter_mut().find(|t| t.view.0 == place) else {
                    return Ok(());
                };
                t.puts.awaiting_frame = false;
                let view = t.view;
                // A previous renderer's pool goes once a frame of the current one is up.
                let retire = if t.puts.new_seg_shown {
                    t.puts.retire.take()
                } else {
                    None
                };
                if let Some(old) = retire {
                    s.d.presenter.detach(old);
                }
                self.on_screen(view, frame);
            }
            DisplayEvent::Exposed => {
                // A Wayland compositor keeps the surfaces' content (and after a resize the
                // slot buffers are of the new size): only X11 needs the frames again.
                if let Some(s) = self.display.as_ref().filter(|s| !s.d.presenter.releases()) {
                    for t in &s.tiles {
                        let place = t.view.0;
                        if let Some((seg, off, size)) = t.puts.on_screen {
                            let whole = Region::full(u32::from(size.0), u32::from(size.1));
                            let _ =
                                s.d.presenter
                                    .put(place, seg, off, u64::MAX, size, &whole, || None);
                        }
                    }
                }
            }
            DisplayEvent::Resized(w, h) => {
                if let Some(s) = self.display.as_mut() {
                    s.resize = Some(((w, h), Instant::now()));
                }
            }
            DisplayEvent::Pointer { x, y, pressed } => self.pointer(x, y, pressed),
            DisplayEvent::PointerLeft => {
                for v in &mut self.views {
                    v.input.hover(None);
                }
            }
            DisplayEvent::Closed => self.quit("the window was closed"),
            DisplayEvent::Key(a) => self.key(a)?,
        }
        Ok(())
    }

    /// The pointer acts on the view under it (or on the one dragging a layer, wherever the
    /// pointer is), in that view's own coordinates: a press picks up the topmost layer under
    /// the pointer in the frame on screen; moving with the button down moves it; letting go
    /// puts it down.
    fn pointer(&mut self, x: i32, y: i32, pressed: bool) {
        let Some(s) = self.display.as_ref() else {
            return;
        };
        // Each view's rectangle in the window, bottom first: a surface made later lies above.
        let rects: Vec<(usize, ViewRect)> = s
            .tiles
            .iter()
            .filter_map(|t| {
                let i = self.view_index(t.view)?;
                let (w, h) = self.views[i].geometry.size();
                Some((i, ViewRect::new(t.at.0, t.at.1, w, h)))
            })
            .collect();
        let dragging = self.views.iter().position(|v| v.input.dragging());
        let target = match dragging {
            Some(i) => rects
                .iter()
                .find(|(k, _)| *k == i)
                .map(|(_, r)| (i, (x.saturating_sub(r.x), y.saturating_sub(r.y)))),
            // The topmost view under the pointer; one given up takes no input (its process no
            // longer serves it), nor passes it to the views below.
            None => rects
                .iter()
                .rev()
                .find_map(|(i, r)| Some((*i, r.local((x, y))?)))
                .filter(|(i, _)| self.views[*i].failed.is_none()),
        };
        // The pointer is over no other view.
        for (k, v) in self.views.iter_mut().enumerate() {
            if target.is_none_or(|(i, _)| i != k) {
                v.input.hover(None);
            }
        }
        let Some((i, p)) = target else {
            return;
        };
        if pressed {
            let view = self.views[i].id;
            if let Some(s) = self.display.as_mut() {
                s.focus = view;
            }
        }
        let under = self.layer_under(i, p);
        let frame = self.views[i].last.unwrap_or(0);
        let carried = self.views[i].input.pointer(p, pressed, under, frame);
        // The layer carried is the one hovered; else the one under the pointer now.
        let hover = carried.or_else(|| self.layer_under(i, p));
        self.views[i].input.hover(hover);
    }

    fn quit(&mut self, why: &str) {
        tracing::info!("{why}: shutting down");
        if let Some(s) = self.display.as_mut() {
            s.quit = true;
        }
    }

    fn key(&mut self, a: Action) -> anyhow::Result<()> {
        match a {
            Action::Quit => self.quit("quit key"),
            Action::TogglePause => {
                if let Some(s) = self.display.as_mut() {
                    s.pacing.paused = !s.pacing.paused;
                    tracing::info!(paused = s.pacing.paused, "pause key");
                }
            }
            Action::Step => {
                if let Some(s) = self.display.as_mut() {
                    s.tiles.iter_mut().for_each(|t| t.step = true);
                }
            }
            Action::ToggleOverlay => self.toggle_overlay(),
            Action::KillGpu => {
                if let Some(g) = self.pair.gpu.as_mut() {
                    tracing::warn!(
                        pid = g.child.proc.pid,
                        "kill key: SIGKILL to the GPU process"
                    );
                    g.child.proc.kill();
                }
            }
            Action::KillRenderer => {
                let focus = self.display.as_ref().map_or(FIRST_VIEW, |s| s.focus);
                let r = self
                    .view_index(focus)
                    .and_then(|i| self.views[i].renderer.as_mut());
                if let Some(r) = r {
                    tracing::warn!(
                        view = focus.0,
                        pid = r.child.proc.pid,
                        "kill key: SIGKILL to the renderer"
                    );
                    r.child.proc.kill();
                }
            }
        }
        Ok(())
    }

    /// Kills `role` with `SIGKILL` (a key, or an embedding application); its death is seen
    /// through its pidfd and recovered like any crash.
    pub(super) fn kill_role(&mut self, role: Role) {
        match role {
            Role::Gpu => {
                if let Some(g) = self.pair.gpu.as_mut() {
                    tracing::warn!(pid = g.child.proc.pid, "SIGKILL to the GPU process");
                    g.child.proc.kill();
                }
            }
            Role::Renderer => self.kill_renderer(FIRST_VIEW),
        }
    }

    /// Kills view `view`'s renderer, if it has one running.
    pub(super) fn kill_renderer(&mut self, view: ViewId) {
        let r = self
            .view_index(view)
            .and_then(|i| self.views[i].renderer.as_mut());
        if let Some(r) = r {
            tracing::warn!(
                view = view.0,
                pid = r.child.proc.pid,
                "SIGKILL to the renderer"
            );
            r.child.proc.kill();
        }
    }

    /// A (new) GPU process of `epoch` starts: each view's requests start again from where it
    /// resumes.
    pub(super) fn display_gpu_started(&mut self, epoch: u64) {
        if let Some(p) = self.pacer.as_mut() {
            p.epoch = epoch;
            p.next_requests = self.views.iter().map(|v| (v.id, v.resume_from())).collect();
            p.next_tick = Instant::now();
        }
        if let Some(s) = self.display.as_mut() {
            s.pacing.epoch = epoch;
            s.pacing.next_tick = Instant::now();
            for t in &mut s.tiles {
                let first = self
                    .views
                    .iter()
                    .find(|v| v.id == t.view)
                    .map_or(0, View::resume_from);
                t.next_request = first;
                t.wanted = first + 1;
            }
            s.overlay.new_gpu();
        }
        // A new GPU process starts with nothing outlined.
        for v in &mut self.views {
            v.input.new_gpu();
        }
    }

    /// Applies the window's last reported size once it has held for [`RESIZE_SETTLE`]: a new
    /// generation, told to the renderers first and then to the GPU process, so that every frame
    /// they composite from then on is of the new size. Frames asked for before it are dropped
    /// where they are (their slots and buffers handed back), never shown.
    fn apply_resize(&mut self) {
        let Some(s) = self.display.as_mut() else {
            return;
        };
        let Some(((w, h), at)) = s.resize else {
            return;
        };
        if at.elapsed() < RESIZE_SETTLE {
            return;
        }
        s.resize = None;
        s.window = (w, h);
        self.retile(&[]);
    }

    /// Lays the window's views out again ([`Shown::lay_out`]): each tiled view resized to its
    /// cell, and every view's surface put at its place. The views in `fresh` were just made:
    /// neither a renderer nor the GPU process knows their size yet, so they start at their
    /// cell (generation 0) rather than being resized.
    pub(super) fn retile(&mut self, fresh: &[ViewId]) {
        let placed: Vec<_> = self.views.iter().map(|v| (v.id, v.placed)).collect();
        let Some(s) = self.display.as_mut() else {
            return;
        };
        let cells = s.lay_out(&placed);
        let max = self.max_size;
        for (view, (w, h)) in cells {
            let Some(i) = self.view_index(view) else {
                continue;
            };
            if fresh.contains(&view) {
                let size = (w.clamp(1, max.0), h.clamp(1, max.1));
                self.views[i].geometry = parts::Geometry::new(size, max);
                if view == FIRST_VIEW {
                    (self.summary.frames.width, self.summary.frames.height) = size;
                }
            } else {
                self.resize_view(i, (w, h));
            }
        }
        // A view whose size did not change may still have moved.
        let shown: Vec<(ViewId, (u32, u32))> = self
            .views
            .iter()
            .filter(|v| !fresh.contains(&v.id))
            .map(|v| (v.id, v.geometry.size()))
            .collect();
        let Some(s) = self.display.as_mut() else {
            return;
        };
        for (view, (w, h)) in shown {
            if s.tile(view).is_some_and(|t| t.puts.seg.is_some()) {
                if let Err(e) = s.place_surface(view, (w as u16, h as u16)) {
                    tracing::warn!(error = %format!("{e:#}"), view = view.0, "could not place a view");
                }
            }
        }
    }

    /// Headless: frames of `size` (clamped to the output slots' size) for every view the
    /// application has not placed, and for views added later, from now on.
    pub(super) fn resize_tiled(&mut self, (w, h): (u32, u32)) {
        let max = self.max_size;
        self.size = (w.clamp(1, max.0), h.clamp(1, max.1));
        for i in 0..self.views.len() {
            if self.views[i].placed.is_none() {
                self.resize_view(i, (w, h));
            }
        }
    }

    /// View `i`'s frames of `size` (clamped to its output slots' size) from now on, if that is
    /// another size: a new generation of that view's, told to its renderer first and then to
    /// the GPU process, so that every frame they composite of it from then on is of the new
    /// size. Its frames asked for before are dropped where they are (their slots and buffers
    /// handed back), never shown; the other views are not touched.
    pub(super) fn resize_view(&mut self, i: usize, (w, h): (u32, u32)) {
        let Some(v) = self.views.get_mut(i) else {
            return;
        };
        let Some(r) = v.geometry.resize((w, h)) else {
            return;
        };
        let (view, failed) = (v.id, v.failed.is_some());
        let (w, h) = (r.width, r.height);
        if let Some(rd) = v.renderer.as_mut() {
            if let Err(e) = rd.child.commands.send(&LauncherToRenderer::Resize(r)) {
                rd.send_failed(e);
            }
        }
        if view == FIRST_VIEW {
            self.summary.frames.width = w;
            self.summary.frames.height = h;
        }
        self.summary.frames.resizes += 1;
        if let Some(s) = self.display.as_mut() {
            let size = (w as u16, h as u16);
            let mut first_frame = 0;
            let mut shown = false;
            if let Some(t) = s.tile_mut(view) {
                t.changed();
                t.floor = t.next_request;
                first_frame = t.floor;
                if let Some((_, seg)) = t.puts.seg {
                    s.d.presenter.resize(seg, size);
                    shown = true;
                }
            }
            // A view without an output yet gets its surface with it.
            if shown {
                if let Err(e) = s.place_surface(view, size) {
                    tracing::warn!(error = %format!("{e:#}"), view = view.0, "could not place a view");
                }
            }
            tracing::info!(
                width = w,
                height = h,
                generation = r.generation,
                first_frame,
                view = view.0,
                "window resized"
            );
        } else {
            tracing::info!(
                width = w,
                height = h,
                generation = r.generation,
                view = view.0,
                "resized"
            );
        }
        if failed {
            return;
        }
        if let Some(g) = self.pair.gpu.as_mut() {
            if let Err(SendError::Full) = g.send_view(view, ViewCommand::Resize(r)) {
                g.unread = true;
            }
        }
    }

    /// At a refresh tick, asks the GPU process for each view's next frame, unless paused, at
    /// the view's last frame, or [`IN_FLIGHT`] frames of it are asked for already. Returns how
    /// long until the next tick.
    pub(super) fn display_tick(&mut self) -> Option<Duration> {
        self.display.as_ref()?;
        self.apply_resize();
        for i in 0..self.views.len() {
            if self.views[i].failed.is_some() {
                continue;
            }
            let Some(offsets) = self.views[i].input.take_moves() else {
                continue;
            };
            let view = self.views[i].id;
            if let Some(g) = self.pair.gpu.as_mut() {
                if let Err(SendError::Full) = g.send_view(view, ViewCommand::Moves(offsets)) {
                    g.unread = true;
                }
            }
            if let Some(s) = self.display.as_mut() {
                s.changed_view(view);
            }
        }
        self.send_hover();
        self.update_overlay();
        let frames = self.args.frames;
        // A hover not yet sent (its queue was full) is a change still to show.
        let dirty = self
            .views
            .iter()
            .any(|v| v.input.hover_dirty() || v.input.moves_dirty());
        let presented: Vec<(ViewId, u64, bool)> = self
            .views
            .iter()
            .map(|v| (v.id, v.resume_from(), v.failed.is_some()))
            .collect();
        let s = self.display.as_mut()?;
        let now = Instant::now();
        if now < s.pacing.next_tick {
            return Some(s.pacing.next_tick - now);
        }
        s.pacing.next_tick = (s.pacing.next_tick + s.d.refresh).max(now);
        let mut idle = s.resize.is_none() && !dirty;
        for t in &mut s.tiles {
            let Some(&(view, resumes, failed)) = presented.iter().find(|(v, ..)| *v == t.view)
            else {
                continue;
            };
            if failed {
                continue;
            }
            let step = t.step;
            idle &= !step;
            let presented = resumes.max(t.floor);
            // On Wayland the compositor's frame callback paces; the timer only bounds the rate.
            let asked = !t.puts.awaiting_frame;
            let room = asked && t.next_request < presented + IN_FLIGHT;
            // A still scene looks the same at every frame: only a change asks for one, so an
            // idle window renders, composites and presents nothing.
            let more = t.next_request < frames && (t.animates || t.next_request < t.wanted || step);
            if room && more && (!s.pacing.paused || step) {
                let up_to = t.next_request;
                // A step waits for room to ask for a frame.
                if step {
                    t.stepped = Some(up_to);
                    t.step = false;
                }
                t.next_request += 1;
                ask_for_frame(&mut self.pair, &self.tracing, s.pacing.epoch, view, up_to);
            }
            // Nothing asked for and not shown yet: nothing is late, whatever the time.
            if t.next_request <= presented {
                self.liveness.progress(view, now);
            }
            idle &= !t.animates && t.next_request >= t.wanted;
        }
        if idle {
            // Idle: nothing to ask for until an event changes something, and events wake the
            // loop themselves; the tick only keeps the progress clock honest.
            return Some(IDLE_TICK);
        }
        Some(s.d.refresh)
    }
}

/// Frames paced to a rate without a window ([`crate::config::RunConfig::fps`]): the launcher
/// asks the GPU process for one frame a period, at most [`IN_FLIGHT`] beyond the last presented,
/// as a display's refresh asks a window's. What a change costs to reach the screen is then
/// measured as it is on a display: the GPU process waits for its next frame, and a change made
/// meanwhile is in it.
#[derive(Debug)]
pub(super) struct Pacer {
    period: Duration,
    next_tick: Instant,
    /// The next frame to ask for of each view (a view not in it: from where it resumes).
    next_requests: std::collections::BTreeMap<ViewId, u64>,
    /// The GPU process the requests are for.
    epoch: u64,
}

impl Pacer {
    /// Frames at `fps` a second (at least one).
    pub(super) fn new(fps: u32) -> Pacer {
        Pacer {
            period: Duration::from_secs(1) / fps.max(1),
            next_tick: Instant::now(),
            next_requests: Default::default(),
            epoch: 0,
        }
    }

    /// `view` is gone: nothing more is asked for it.
    pub(super) fn forget(&mut self, view: ViewId) {
        self.next_requests.remove(&view);
    }
}

impl Supervisor<'_> {
    /// Without a window, with a rate: asks the GPU process for the next frame when its moment
    /// has come and fewer than [`IN_FLIGHT`] frames wait to be presented. Returns how long until
    /// the next moment; `None` when frames are not paced.
    pub(super) fn pacer_tick(&mut self) -> Option<Duration> {
        let frames = self.args.frames;
        let p = self.pacer.as_mut()?;
        let now = Instant::now();
        if now < p.next_tick {
            return Some(p.next_tick - now);
        }
        p.next_tick = (p.next_tick + p.period).max(now);
        // What was sent lazily rides with the next frame's request or relay; a child asleep
        // over it for two periods is woken for it all the same.
        if let Some(before) = now.checked_sub(p.period * 2) {
            self.wake_lazy_before(before);
        }
        let p = self.pacer.as_mut()?;
        // Each view is asked for its own next frame, at the same pace.
        for v in &self.views {
            if v.failed.is_some() {
                continue;
            }
            let presented = v.resume_from();
            let next = p.next_requests.entry(v.id).or_insert(presented);
            if *next < frames && *next < presented + IN_FLIGHT {
                let up_to = *next;
                *next += 1;
                ask_for_frame(&mut self.pair, &self.tracing, p.epoch, v.id, up_to);
            }
            // Nothing asked for and not shown yet: nothing is late, whatever the time.
            if *next <= presented {
                self.liveness.progress(v.id, now);
            }
        }
        Some(p.next_tick.saturating_duration_since(now))
    }
}

/// Asks the GPU process of `epoch`, if it is the one running, to draw up to frame `up_to` of
/// `view` (a full queue is its not reading), and marks the frame's first moment in the trace:
/// the display, or the pacer, asked for it.
fn ask_for_frame(
    pair: &mut parts::Pair,
    tracing: &parts::Tracing,
    epoch: u64,
    view: ViewId,
    up_to: u64,
) {
    if let Some(g) = pair.gpu.as_mut().filter(|g| g.epoch == epoch) {
        if let Err(SendError::Full) = g.send_view_deferred(view, ViewCommand::Render { up_to }) {
            g.unread = true;
        }
    }
    let mut args = triptych_trace::Args::new();
    if view != FIRST_VIEW {
        args.insert(triptych_trace::VIEW_ARG.into(), view.0.into());
    }
    tracing.rec().instant(
        triptych_trace::Marker::FrameRequest,
        triptych_trace::InstantScope::Process,
        Some(up_to),
        args,
    );
}
