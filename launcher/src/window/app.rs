//! The window's winit side (feature `window`): adopting a winit window for presenting, and the
//! translation of its events. The event loop is the application's (the `triptych` command
//! line's own window is one such application).

use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};
use winit::event::{ElementState, WindowEvent};
use winit::keyboard::{Key, NamedKey};
use winit::raw_window_handle::{HasWindowHandle, RawWindowHandle};
use winit::window::Window;

use super::{wayland, x11, Action, Display, DisplayEvent, Presenter};

/// Where a window's pointer is, and whether its first button is down: what [`translate`]
/// needs to remember between events.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pointer {
    at: (i32, i32),
    pressed: bool,
}

/// What a window event means to the supervisor, if anything; `pointer` follows the pointer.
pub fn translate(pointer: &mut Pointer, event: &WindowEvent) -> Option<DisplayEvent> {
    match event {
        WindowEvent::CloseRequested => Some(DisplayEvent::Closed),
        WindowEvent::Resized(s) => Some(DisplayEvent::Resized(s.width, s.height)),
        WindowEvent::RedrawRequested => Some(DisplayEvent::Exposed),
        WindowEvent::CursorMoved { position, .. } => {
            pointer.at = (position.x as i32, position.y as i32);
            Some(DisplayEvent::Pointer {
                x: pointer.at.0,
                y: pointer.at.1,
                pressed: pointer.pressed,
            })
        }
        // A drag goes on outside the window (the server keeps sending the pointer's motion).
        WindowEvent::CursorLeft { .. } if !pointer.pressed => Some(DisplayEvent::PointerLeft),
        WindowEvent::MouseInput {
            state,
            button: winit::event::MouseButton::Left,
            ..
        } => {
            pointer.pressed = *state == ElementState::Pressed;
            Some(DisplayEvent::Pointer {
                x: pointer.at.0,
                y: pointer.at.1,
                pressed: pointer.pressed,
            })
        }
        WindowEvent::KeyboardInput { event, .. } if event.state == ElementState::Pressed => {
            action_for(event.logical_key.as_ref()).map(DisplayEvent::Key)
        }
        _ => None,
    }
}

/// The supervisor's side of `window`, a window someone else created: a presenter drawing into
/// it, its refresh period and largest size. `events` is what the window side will send on
/// `tx`, which the presenter's completions and releases are sent on too.
pub fn adopt(
    window: std::sync::Arc<Window>,
    events: Receiver<DisplayEvent>,
    tx: Sender<DisplayEvent>,
) -> anyhow::Result<Display> {
    let size = window.inner_size();
    let (w, h) = (size.width.max(1), size.height.max(1));
    let xid = match window
        .window_handle()
        .context("the window's handle")?
        .as_raw()
    {
        RawWindowHandle::Xlib(h) => Some(u32::try_from(h.window).context("an XID beyond 32 bits")?),
        RawWindowHandle::Xcb(h) => Some(h.window.get()),
        RawWindowHandle::Wayland(_) => None,
        other => anyhow::bail!("a window that is neither X11 nor Wayland: {other:?}"),
    };
    let refresh = window
        .current_monitor()
        .and_then(|m| m.refresh_rate_millihertz())
        .filter(|mhz| *mhz >= 1000)
        .map_or(Duration::from_micros(16_667), |mhz| {
            Duration::from_nanos(1_000_000_000_000 / u64::from(mhz))
        });
    let presenter = match xid {
        Some(xid) => Presenter::X11(x11::Presenter::connect(xid, move |n| {
            let _ = tx.send(match n {
                x11::Note::Completed(c) => DisplayEvent::Completed(c),
                x11::Note::Exposed => DisplayEvent::Exposed,
            });
        })?),
        None => Presenter::Wayland(Box::new(wayland::Presenter::connect(
            window.clone(),
            move |n| {
                let _ = tx.send(match n {
                    wayland::Note::Released(c) => DisplayEvent::Released(c),
                    wayland::Note::FrameDone { place, frame } => {
                        DisplayEvent::FrameDone { place, frame }
                    }
                });
            },
        )?)),
    };
    tracing::info!(
        window = format!("{:#x}", xid.unwrap_or(0)),
        width = w,
        height = h,
        path = presenter.describe(),
        refresh_us = refresh.as_micros() as u64,
        "window open"
    );
    // A Wayland surface is on no output before its first commit, so winit knows no current
    // monitor yet: the largest output stands in (else a window there could never grow).
    let max = window
        .current_monitor()
        .or_else(|| {
            window
                .available_monitors()
                .max_by_key(|m| u64::from(m.size().width) * u64::from(m.size().height))
        })
        .map(|m| m.size())
        .map_or((w, h), |s| (s.width.max(w), s.height.max(h)));
    let max = (max.0.min(4096), max.1.min(4096));
    tracing::debug!(
        width = max.0,
        height = max.1,
        "largest frame a resize may ask for"
    );
    Ok(Display {
        max,
        events,
        presenter,
        refresh,
    })
}

/// What a key does in the window, if anything: the keyboard's mapping, which [`translate`]
/// applies to the display server's keys (space pauses, `.` steps, `g` and `r` kill the GPU
/// process or the renderer, `o` toggles the overlay, `q` and Escape quit).
pub fn action_for(key: Key<&str>) -> Option<Action> {
    match key {
        Key::Named(NamedKey::Space) => Some(Action::TogglePause),
        Key::Named(NamedKey::Escape) => Some(Action::Quit),
        Key::Character(".") => Some(Action::Step),
        Key::Character("g") => Some(Action::KillGpu),
        Key::Character("r") => Some(Action::KillRenderer),
        Key::Character("o") => Some(Action::ToggleOverlay),
        Key::Character("q") => Some(Action::Quit),
        _ => None,
    }
}
