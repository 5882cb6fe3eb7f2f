//! Presenting into a Wayland window without a copy: the renderer's output memfd becomes one
//! `wl_shm` pool, with one `wl_buffer` per slot (`XRGB8888`: the B, G, R, X words the renderer
//! composites when a window is open), and each frame is `attach` + `damage_buffer` + `commit` of
//! its slot's buffer on the window's surface. The compositor reads the memory the renderer
//! wrote; when it sends `wl_buffer.release` for a slot, that slot goes back to the renderer.
//! Each commit asks for a `wl_surface.frame` callback, and its `done` is the display asking for
//! the next frame.
//!
//! winit owns the connection and the surface; the launcher adopts both through
//! `triptych_sys::wayland` and dispatches its own event queue on a thread of its own.
//!
//! With several views, each view but the first has a surface of its own, a `wl_subsurface` of
//! the window's placed at its tile and desynchronised from it, so that a commit of one view's
//! frame shows at once, whatever the others do; each asks for its own frame callbacks.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use anyhow::{bail, Context};
use ipc_protocol::damage::Region;
use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::wl_buffer::{self, WlBuffer};
use wayland_client::protocol::wl_callback::{self, WlCallback};
use wayland_client::protocol::wl_compositor::WlCompositor;
use wayland_client::protocol::wl_region::WlRegion;
use wayland_client::protocol::wl_registry::WlRegistry;
use wayland_client::protocol::wl_shm::{self, WlShm};
use wayland_client::protocol::wl_shm_pool::WlShmPool;
use wayland_client::protocol::wl_subcompositor::WlSubcompositor;
use wayland_client::protocol::wl_subsurface::WlSubsurface;
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, QueueHandle};

use super::x11::Completion;

/// What the event thread reports.
#[derive(Debug)]
pub enum Note {
    /// The compositor no longer reads a slot.
    Released(Completion),
    /// The compositor showed this frame of the view at this place and asks for its next one.
    FrameDone {
        /// The view's place: its number.
        place: u32,
        /// The frame.
        frame: u64,
    },
}

struct State {
    notify: Box<dyn Fn(Note) + Send>,
}

impl Dispatch<WlRegistry, GlobalListContents> for State {
    fn event(
        _: &mut Self,
        _: &WlRegistry,
        _: wayland_client::protocol::wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<WlShm, ()> for State {
    fn event(
        _: &mut Self,
        _: &WlShm,
        _: wl_shm::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<WlShmPool, ()> for State {
    fn event(
        _: &mut Self,
        _: &WlShmPool,
        _: wayland_client::protocol::wl_shm_pool::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<WlBuffer, Completion> for State {
    fn event(
        state: &mut Self,
        _: &WlBuffer,
        event: wl_buffer::Event,
        slot: &Completion,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_buffer::Event::Release = event {
            (state.notify)(Note::Released(*slot));
        }
    }
}

impl Dispatch<WlCallback, (u32, u64)> for State {
    fn event(
        state: &mut Self,
        _: &WlCallback,
        event: wl_callback::Event,
        &(place, frame): &(u32, u64),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            (state.notify)(Note::FrameDone { place, frame });
        }
    }
}

/// The globals and objects of the views' surfaces send nothing the presenter needs.
macro_rules! ignore_events {
    ($($object:ty),*) => {$(
        impl Dispatch<$object, ()> for State {
            fn event(
                _: &mut Self,
                _: &$object,
                _: <$object as wayland_client::Proxy>::Event,
                _: &(),
                _: &Connection,
                _: &QueueHandle<Self>,
            ) {
            }
        }
    )*};
}

ignore_events!(
    WlCompositor,
    WlRegion,
    WlSubcompositor,
    WlSubsurface,
    WlSurface
);

/// One renderer output as a pool and its buffers, by slot offset.
struct Pool {
    pool: WlShmPool,
    buffers: HashMap<u32, WlBuffer>,
    /// The number of slots and their size, to make buffers again at another frame size.
    slots: u32,
    slot_bytes: u32,
    /// Buffers of a size no longer shown, destroyed a few resizes later.
    retired: Vec<WlBuffer>,
}

/// The launcher's side of the window's Wayland surface.
pub struct Presenter {
    conn: Connection,
    qh: QueueHandle<State>,
    shm: WlShm,
    surface: WlSurface,
    /// Where views' surfaces come from: none where the compositor offers no subsurfaces (a
    /// window of one view needs none).
    surfaces: Option<(WlCompositor, WlSubcompositor)>,
    /// The surface of each view's place but the first, and its subsurface role.
    places: Mutex<HashMap<u32, (WlSurface, WlSubsurface)>>,
    pools: Mutex<HashMap<u32, Pool>>,
    next_seg: Mutex<u32>,
    /// The window and the adopted objects: kept for as long as the buffers are used, and
    /// dropped last.
    _adopted: triptych_sys::wayland::Adopted,
}

impl std::fmt::Debug for Presenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("wayland::Presenter").finish_non_exhaustive()
    }
}

impl Presenter {
    /// Adopts the window's display and surface (the presenter holds the window, so both stay
    /// valid) and starts the event thread.
    pub fn connect<W>(
        window: std::sync::Arc<W>,
        notify: impl Fn(Note) + Send + 'static,
    ) -> anyhow::Result<Presenter>
    where
        W: raw_window_handle::HasWindowHandle
            + raw_window_handle::HasDisplayHandle
            + Send
            + Sync
            + 'static,
    {
        let adopted = triptych_sys::wayland::adopt(window)?;
        let conn = adopted.conn.clone();
        let surface = adopted.surface.clone();
        let (globals, mut queue) =
            registry_queue_init::<State>(&conn).context("listing the compositor's globals")?;
        let qh = queue.handle();
        let shm: WlShm = globals
            .bind(&qh, 1..=1, ())
            .context("the compositor offers no wl_shm")?;
        let surfaces = match (globals.bind(&qh, 1..=4, ()), globals.bind(&qh, 1..=1, ())) {
            (Ok(c), Ok(s)) => Some((c, s)),
            _ => None,
        };
        let mut state = State {
            notify: Box::new(notify),
        };
        queue
            .roundtrip(&mut state)
            .context("talking to the compositor")?;
        std::thread::Builder::new()
            .name("wayland-events".into())
            .spawn(move || while queue.blocking_dispatch(&mut state).is_ok() {})
            .context("starting the Wayland event thread")?;
        Ok(Presenter {
            _adopted: adopted,
            conn,
            qh,
            shm,
            surface,
            surfaces,
            places: Mutex::new(HashMap::new()),
            pools: Mutex::new(HashMap::new()),
            next_seg: Mutex::new(1),
        })
    }

    /// Makes a pool of the output memfd, with a buffer per slot; returns its id.
    pub fn attach(
        &self,
        fd: OwnedFd,
        slots: u32,
        slot_bytes: u32,
        (width, height): (u16, u16),
    ) -> anyhow::Result<u32> {
        let total = slots
            .checked_mul(slot_bytes)
            .and_then(|t| i32::try_from(t).ok())
            .context("an output too large for wl_shm")?;
        let pool = self.shm.create_pool(fd.as_fd(), total, &self.qh, ());
        let mut seg = self
            .next_seg
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        let id = *seg;
        *seg += 1;
        let buffers = self.buffers(&pool, id, slots, slot_bytes, (width, height));
        self.conn.flush().context("flushing to the compositor")?;
        self.pools
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(
                id,
                Pool {
                    pool,
                    buffers,
                    slots,
                    slot_bytes,
                    retired: Vec::new(),
                },
            );
        Ok(id)
    }

    /// A buffer of `width` x `height` at the start of every slot of `pool`.
    fn buffers(
        &self,
        pool: &WlShmPool,
        seg: u32,
        slots: u32,
        slot_bytes: u32,
        (width, height): (u16, u16),
    ) -> HashMap<u32, WlBuffer> {
        (0..slots)
            .map(|s| {
                let offset = s * slot_bytes;
                let b = pool.create_buffer(
                    offset as i32,
                    i32::from(width),
                    i32::from(height),
                    i32::from(width) * 4,
                    wl_shm::Format::Xrgb8888,
                    &self.qh,
                    Completion { seg, offset },
                );
                (offset, b)
            })
            .collect()
    }

    /// Makes the buffers of pool `seg` again at `size`; the old ones are destroyed a few
    /// resizes later.
    pub fn resize(&self, seg: u32, size: (u16, u16)) {
        if let Ok(mut pools) = self.pools.lock() {
            if let Some(p) = pools.get_mut(&seg) {
                let fresh = self.buffers(&p.pool, seg, p.slots, p.slot_bytes, size);
                let old = std::mem::replace(&mut p.buffers, fresh);
                // A retired buffer is destroyed only long after it was replaced: destroying one
                // the compositor still holds would lose its release, and with it the slot. Four
                // resizes back, it has been replaced on screen and released many frames ago.
                p.retired.extend(old.into_values());
                let keep = 4 * p.slots as usize;
                if p.retired.len() > keep {
                    for b in p.retired.drain(..p.retired.len() - keep) {
                        b.destroy();
                    }
                }
            }
        }
    }

    /// Puts the surface of `place` at `at` in the window, making it a desynchronised subsurface
    /// of the window's the first time. The position takes effect with the window's next
    /// commit, which this makes (the window's buffer stays).
    pub fn place(&self, place: u32, (x, y): (i32, i32)) -> anyhow::Result<()> {
        let mut places = self
            .places
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some((_, sub)) = places.get(&place) {
            sub.set_position(x, y);
        } else {
            let Some((compositor, subcompositor)) = &self.surfaces else {
                bail!("the compositor offers no wl_subcompositor, which a window of several views needs");
            };
            let surface = compositor.create_surface(&self.qh, ());
            // An empty input region: the pointer passes through to the window's surface, which
            // gets its events, in its own coordinates.
            let empty = compositor.create_region(&self.qh, ());
            surface.set_input_region(Some(&empty));
            empty.destroy();
            let sub = subcompositor.get_subsurface(&surface, &self.surface, &self.qh, ());
            sub.set_desync();
            sub.set_position(x, y);
            places.insert(place, (surface, sub));
        }
        self.surface.commit();
        self.conn.flush().context("flushing to the compositor")?;
        Ok(())
    }

    /// Stacks the subsurfaces of `places` in that order above the window's surface, the last on
    /// top; it takes effect with the window's commit, which this makes.
    pub fn stack(&self, places: &[u32]) {
        let Ok(all) = self.places.lock() else {
            return;
        };
        let mut below = &self.surface;
        for (surface, sub) in places.iter().filter_map(|p| all.get(p)) {
            sub.place_above(below);
            below = surface;
        }
        self.surface.commit();
        let _ = self.conn.flush();
    }

    /// Destroys the surface of `place` and its subsurface role, if it has them.
    pub fn unplace(&self, place: u32) {
        let gone = match self.places.lock() {
            Ok(mut places) => places.remove(&place),
            Err(_) => None,
        };
        if let Some((surface, sub)) = gone {
            sub.destroy();
            surface.destroy();
            self.surface.commit();
            let _ = self.conn.flush();
        }
    }

    /// Destroys pool `seg` and its buffers.
    pub fn detach(&self, seg: u32) {
        if let Ok(mut pools) = self.pools.lock() {
            if let Some(p) = pools.remove(&seg) {
                for b in p.buffers.values().chain(&p.retired) {
                    b.destroy();
                }
                p.pool.destroy();
                let _ = self.conn.flush();
            }
        }
    }

    /// Shows the slot at `offset` of pool `seg`, holding `frame`, on the surface of `place`, and
    /// asks for a frame callback.
    pub fn put(
        &self,
        place: u32,
        seg: u32,
        offset: u32,
        frame: u64,
        (width, height): (u16, u16),
        damage: &Region,
    ) -> anyhow::Result<()> {
        let pools = self.pools.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let Some(b) = pools.get(&seg).and_then(|p| p.buffers.get(&offset)) else {
            bail!("no buffer for offset {offset} of pool {seg}");
        };
        let places = self
            .places
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        let surface = match place {
            0 => &self.surface,
            _ => match places.get(&place) {
                Some((surface, _)) => surface,
                None => bail!("no surface for the view at place {place}"),
            },
        };
        surface.attach(Some(b), 0, 0);
        // Only what changed since the buffer attached before (none: the same picture; the
        // commit still swaps buffers, so the one before is released).
        for r in damage.rects() {
            if r.fits(u32::from(width), u32::from(height)) {
                // Inside a frame of u16 sides.
                surface.damage_buffer(r.x as i32, r.y as i32, r.w as i32, r.h as i32);
            }
        }
        surface.frame(&self.qh, (place, frame));
        surface.commit();
        self.conn.flush().context("flushing to the compositor")?;
        Ok(())
    }
}
