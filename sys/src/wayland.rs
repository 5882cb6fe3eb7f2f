//! Wayland objects another library in this process made, adopted so that the launcher can draw
//! into a window it did not create.
//!
//! winit owns the Wayland connection and the window's `wl_surface`; it hands out their C
//! pointers as raw handles (`raw-window-handle`). Presenting without a copy means attaching the
//! launcher's own `wl_buffer`s (one per slot of the renderer's output memfd) to that surface,
//! so the launcher needs a `wayland-client` connection over the same `wl_display` and a proxy
//! of the same `wl_surface`. Making those from raw pointers is what `wayland-backend`'s
//! `from_foreign_display` and `ObjectId::from_ptr` do, and both are `unsafe`: this module is the
//! one place that calls them. See the `wayland-backend` documentation, "client_system".

use std::any::Any;
use std::sync::Arc;

use raw_window_handle::{HasDisplayHandle, HasWindowHandle, RawDisplayHandle, RawWindowHandle};
use wayland_backend::client::{Backend, ObjectId};
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Proxy};

/// Errors adopting a foreign object.
#[derive(Debug, thiserror::Error)]
pub enum WaylandError {
    /// The window's handles are not Wayland handles, or could not be had.
    #[error("the window has no Wayland handles: {0}")]
    Handles(String),
    /// The surface pointer is no live `wl_surface` of this display.
    #[error("the window's wl_surface could not be adopted: {0}")]
    Surface(String),
}

/// A connection over a window's display and a proxy of its surface, holding the window.
pub struct Adopted {
    /// The connection over the window's `wl_display`.
    pub conn: Connection,
    /// The window's surface.
    pub surface: WlSurface,
    /// The window: its surface (and the display it holds) live as long as this does.
    _window: Arc<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Adopted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adopted")
            .field("surface", &self.surface.id())
            .finish_non_exhaustive()
    }
}

/// Adopts `window`'s Wayland display and surface. The returned value holds `window`, which keeps
/// its surface alive; the display belongs to the window's event loop, which the caller must keep
/// alive (never drop) for as long as the returned connection, or any clone of it, is used. The
/// launcher never drops its event loop (`launcher/src/window/mod.rs`).
pub fn adopt<W>(window: Arc<W>) -> Result<Adopted, WaylandError>
where
    W: HasWindowHandle + HasDisplayHandle + Send + Sync + 'static,
{
    let display = match window
        .display_handle()
        .map_err(|e| WaylandError::Handles(e.to_string()))?
        .as_raw()
    {
        RawDisplayHandle::Wayland(h) => h.display,
        other => return Err(WaylandError::Handles(format!("{other:?}"))),
    };
    let surface = match window
        .window_handle()
        .map_err(|e| WaylandError::Handles(e.to_string()))?
        .as_raw()
    {
        RawWindowHandle::Wayland(h) => h.surface,
        other => return Err(WaylandError::Handles(format!("{other:?}"))),
    };
    // SAFETY: `display` is the live wl_display of the window's event loop, which the caller
    // keeps alive for as long as this connection is used (see the function's docs).
    let backend = unsafe { Backend::from_foreign_display(display.as_ptr().cast()) };
    let conn = Connection::from_backend(backend);
    // SAFETY: `surface` is the window's live wl_surface proxy on that display, kept alive by the
    // window held in the result; `from_ptr` checks that its interface is wl_surface.
    let id = unsafe { ObjectId::from_ptr(WlSurface::interface(), surface.as_ptr().cast()) }
        .map_err(|e| WaylandError::Surface(e.to_string()))?;
    let surface =
        WlSurface::from_id(&conn, id).map_err(|e| WaylandError::Surface(e.to_string()))?;
    Ok(Adopted {
        conn,
        surface,
        _window: window,
    })
}
