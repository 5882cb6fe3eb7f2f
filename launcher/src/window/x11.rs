//! Presenting into an X11 window without a copy: the renderer's output memfd is attached to the
//! X server once (`MIT-SHM` 1.2, `ShmAttachFd`, read-only), and each frame is one `ShmPutImage`
//! naming the slot's offset in it. The server reads the pixels straight from the memory the
//! renderer composited into and, because the request asks for it, sends a `ShmCompletion` event
//! once it has; only then does the slot shown before go back to the renderer.
//!
//! Where the server has no `ShmAttachFd` (a remote display, a server without MIT-SHM 1.2), each
//! frame is sent with `PutImage` instead: a copy of the slot through the socket, logged, shown by
//! `doctor` and named in the summary as the copying path.
//!
//! The launcher opens a connection of its own to the display the window lives on and draws into
//! the window by its XID (winit creates and owns the window). With several views, each view but
//! the first gets a child window of its own at its tile, made on that connection (so it goes
//! with it), into which its frames are put the same way; the server composes the tiles. The pixels are B, G, R, X words
//! (`ZPixmap`, 32 bits per pixel, depth 24), which is what the renderer composites when a window
//! is open.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use ipc_protocol::damage::Region;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::shape::{self, ConnectionExt as _};
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    ClipOrdering, ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask,
    ImageFormat, StackMode, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

/// How frames reach the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// `ShmPutImage` from the renderer's output memfd: no copy in the launcher.
    Shm,
    /// `PutImage`: the launcher copies each frame into the socket.
    Copy,
}

impl Path {
    /// The summary's name of the path.
    pub fn describe(self) -> &'static str {
        match self {
            Path::Shm => "X11 MIT-SHM: ShmPutImage from the renderer's output memfd (zero-copy)",
            Path::Copy => "X11 PutImage: a copy of every frame (the server has no ShmAttachFd)",
        }
    }
}

/// A finished `ShmPutImage`: the server no longer reads that slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The segment (one per renderer output).
    pub seg: u32,
    /// The slot's byte offset in it.
    pub offset: u32,
}

/// What the server tells the presenter's event thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// A put finished.
    Completed(Completion),
    /// A view's child window needs its content again (the window's own exposures reach the
    /// application's connection instead).
    Exposed,
}

/// The launcher's connection to the window's X server.
#[derive(Debug)]
pub struct Presenter {
    conn: Arc<RustConnection>,
    window: u32,
    /// The child window of each view's place but the first.
    children: Mutex<HashMap<u32, u32>>,
    gc: u32,
    depth: u8,
    /// The path frames take.
    pub path: Path,
    /// Why the copying path, when it is taken.
    pub reason: Option<String>,
}

impl Presenter {
    /// Connects to `display` (or `$DISPLAY`) and prepares to draw into `window`; starts a thread
    /// that turns the server's `ShmCompletion` events, and the views' child windows' exposures,
    /// into `notify` calls.
    pub fn connect(
        window: u32,
        notify: impl Fn(Note) + Send + 'static,
    ) -> anyhow::Result<Presenter> {
        let (conn, _) = x11rb::connect(None).context("connecting to the X server ($DISPLAY)")?;
        let conn = Arc::new(conn);
        let geometry = conn
            .get_geometry(window)
            .context("asking for the window's geometry")?
            .reply()
            .context("the window's geometry")?;
        if geometry.depth != 24 && geometry.depth != 32 {
            bail!(
                "the window has depth {}; frames are 32-bit B, G, R, X pixels (depth 24 or 32)",
                geometry.depth
            );
        }
        let gc = conn
            .generate_id()
            .context("allocating a graphics context id")?;
        conn.create_gc(gc, window, &CreateGCAux::new().graphics_exposures(0))
            .context("creating a graphics context")?;
        let (path, reason) = match shm_fd_support(&conn) {
            Ok(()) => (Path::Shm, None),
            Err(why) => {
                tracing::warn!(%why, "presenting with a copy of every frame (X11 PutImage)");
                (Path::Copy, Some(why))
            }
        };
        conn.flush().context("talking to the X server")?;
        let events = conn.clone();
        std::thread::Builder::new()
            .name("x11-events".into())
            .spawn(move || {
                while let Ok(e) = events.wait_for_event() {
                    match e {
                        Event::ShmCompletion(c) => notify(Note::Completed(Completion {
                            seg: c.shmseg,
                            offset: c.offset,
                        })),
                        // The last of a series of exposures.
                        Event::Expose(x) if x.count == 0 => notify(Note::Exposed),
                        _ => {}
                    }
                }
            })
            .context("starting the X11 event thread")?;
        Ok(Presenter {
            conn,
            window,
            children: Mutex::new(HashMap::new()),
            gc,
            depth: geometry.depth,
            path,
            reason,
        })
    }

    /// Attaches a renderer's output memfd (read-only) and returns its segment id.
    pub fn attach(&self, fd: OwnedFd) -> anyhow::Result<u32> {
        let seg = self.conn.generate_id().context("allocating a segment id")?;
        self.conn
            .shm_attach_fd(seg, fd, true)
            .context("ShmAttachFd of the output memfd")?
            .check()
            .context("the X server refused the output memfd")?;
        Ok(seg)
    }

    /// Puts the child window of `place` at `at`, `size` large, making and mapping it the first
    /// time.
    pub fn place(&self, place: u32, (x, y): (i32, i32), (w, h): (u16, u16)) -> anyhow::Result<()> {
        let mut children = self
            .children
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        match children.get(&place) {
            Some(&child) => {
                let aux = ConfigureWindowAux::new()
                    .x(x)
                    .y(y)
                    .width(u32::from(w.max(1)))
                    .height(u32::from(h.max(1)));
                self.conn
                    .configure_window(child, &aux)
                    .context("moving a view's child window")?;
            }
            None => {
                let child = self.conn.generate_id().context("allocating a window id")?;
                self.conn
                    .create_window(
                        x11rb::COPY_DEPTH_FROM_PARENT,
                        child,
                        self.window,
                        x.clamp(i16::MIN.into(), i16::MAX.into()) as i16,
                        y.clamp(i16::MIN.into(), i16::MAX.into()) as i16,
                        w.max(1),
                        h.max(1),
                        0,
                        WindowClass::INPUT_OUTPUT,
                        x11rb::COPY_FROM_PARENT,
                        &CreateWindowAux::new().event_mask(EventMask::EXPOSURE),
                    )
                    .context("creating a view's child window")?
                    .check()
                    .context("the X server refused a view's child window")?;
                // No input shape: the pointer passes through it to the window, which gets the
                // pointer's events (in its own coordinates) and no crossing events for it.
                let transparent = self
                    .conn
                    .shape_rectangles(
                        shape::SO::SET,
                        shape::SK::INPUT,
                        ClipOrdering::UNSORTED,
                        child,
                        0,
                        0,
                        &[],
                    )
                    .map_err(anyhow::Error::from)
                    .and_then(|c| c.check().map_err(anyhow::Error::from));
                if let Err(e) = transparent {
                    tracing::warn!(error = %format!("{e:#}"), "a view's child window takes the pointer (no SHAPE input region): hovering crosses views");
                }
                self.conn
                    .map_window(child)
                    .context("mapping a view's child window")?;
                children.insert(place, child);
            }
        }
        self.conn.flush().context("flushing to the X server")?;
        Ok(())
    }

    /// The window the view at `place` is drawn into.
    fn drawable(&self, place: u32) -> anyhow::Result<u32> {
        if place == 0 {
            return Ok(self.window);
        }
        let children = self
            .children
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        children
            .get(&place)
            .copied()
            .with_context(|| format!("no window for the view at place {place}"))
    }

    /// Raises the child windows of `places`, in that order, so they lie in it, the last on top.
    pub fn stack(&self, places: &[u32]) {
        let Ok(children) = self.children.lock() else {
            return;
        };
        for child in places.iter().filter_map(|p| children.get(p)) {
            let aux = ConfigureWindowAux::new().stack_mode(StackMode::ABOVE);
            let _ = self.conn.configure_window(*child, &aux);
        }
        let _ = self.conn.flush();
    }

    /// Destroys the child window of `place`, if it has one.
    pub fn unplace(&self, place: u32) {
        let child = match self.children.lock() {
            Ok(mut children) => children.remove(&place),
            Err(_) => None,
        };
        if let Some(child) = child {
            if let Ok(c) = self.conn.destroy_window(child) {
                let _ = c.check();
            }
        }
    }

    /// Detaches segment `seg` (a renderer's output that is no longer shown).
    pub fn detach(&self, seg: u32) {
        if let Ok(c) = self.conn.shm_detach(seg) {
            let _ = c.check();
        }
    }

    /// Shows a `width` x `height` frame at `offset` of segment `seg`; a `ShmCompletion` for it
    /// follows. With the copying path, `pixels` supplies the frame instead.
    pub fn put(
        &self,
        place: u32,
        seg: u32,
        offset: u32,
        (width, height): (u16, u16),
        damage: &Region,
        pixels: impl FnOnce() -> Option<Vec<u8>>,
    ) -> anyhow::Result<()> {
        let window = self.drawable(place)?;
        match self.path {
            Path::Shm => {
                // One ShmPutImage per changed rectangle, the last one asking for the completion
                // event that frees the slot put before. Nothing changed: one pixel, for that
                // event (the window holds the same picture).
                let inside = damage.placed(0, 0, u32::from(width), u32::from(height));
                let one = Region::full(1, 1);
                let rects = if inside.is_empty() { &one } else { &inside };
                let rects: Vec<_> = rects.rects().iter().collect();
                for (i, r) in rects.iter().enumerate() {
                    // Inside a frame of u16 sides.
                    let (x, y, w, h) = (r.x as u16, r.y as u16, r.w as u16, r.h as u16);
                    self.conn
                        .shm_put_image(
                            window,
                            self.gc,
                            width,
                            height,
                            x,
                            y,
                            w,
                            h,
                            x as i16,
                            y as i16,
                            self.depth,
                            ImageFormat::Z_PIXMAP.into(),
                            i + 1 == rects.len(),
                            seg,
                            offset,
                        )
                        .context("ShmPutImage")?;
                }
            }
            Path::Copy => {
                let data = pixels().context("no pixels to copy")?;
                self.conn
                    .put_image(
                        ImageFormat::Z_PIXMAP,
                        window,
                        self.gc,
                        width,
                        height,
                        0,
                        0,
                        0,
                        self.depth,
                        &data,
                    )
                    .context("PutImage")?;
            }
        }
        self.conn.flush().context("flushing to the X server")?;
        Ok(())
    }
}

/// Whether the server takes memfds (`MIT-SHM` 1.2, `ShmAttachFd`), or why not.
pub fn shm_fd_support(conn: &RustConnection) -> Result<(), String> {
    if conn
        .extension_information(shm::X11_EXTENSION_NAME)
        .map_err(|e| format!("asking for MIT-SHM: {e}"))?
        .is_none()
    {
        return Err("the X server has no MIT-SHM extension".into());
    }
    let v = conn
        .shm_query_version()
        .map_err(|e| format!("MIT-SHM QueryVersion: {e}"))?
        .reply()
        .map_err(|e| format!("MIT-SHM QueryVersion: {e}"))?;
    if (v.major_version, v.minor_version) < (1, 2) {
        return Err(format!(
            "the X server's MIT-SHM is {}.{}; ShmAttachFd needs 1.2",
            v.major_version, v.minor_version
        ));
    }
    Ok(())
}
