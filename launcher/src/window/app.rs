//! The window's winit side (feature `window`): the event loop and its application, adopting a
//! winit window for presenting, the translation of its events, and an input source a program
//! may drive it with.

use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};
use triptych_sys::signal::Signal;
use winit::application::ApplicationHandler;
use winit::event::{ElementState, WindowEvent};
use winit::event_loop::{ActiveEventLoop, EventLoop, EventLoopProxy};
use winit::keyboard::{Key, NamedKey};
use winit::platform::run_on_demand::EventLoopExtRunOnDemand;
use winit::raw_window_handle::{HasWindowHandle, RawWindowHandle};
use winit::window::{Window, WindowId};

use super::{wayland, x11, Action, Display, DisplayEvent, Presenter};
use crate::config::RunConfig;
use crate::summary::RunSummary;

/// Input that does not come from the display server: a program driving the window (a test, an
/// automation) hands one to [`run`], which starts it once the window exists.
pub trait InputSource: Send {
    /// Starts delivering input through `feed` (on a thread of its own, if it waits for input).
    fn start(self: Box<Self>, feed: InputFeed);
}

/// Where an [`InputSource`] delivers: the window's own paths, so that a key, a pointer event or
/// a resize from it is taken exactly as the display server's would be.
#[derive(Debug, Clone)]
pub struct InputFeed {
    window: std::sync::Arc<Window>,
    tx: Sender<DisplayEvent>,
}

/// Why an [`InputFeed`] did not take an input.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The key means nothing to the window.
    #[error("no key action for {0:?}")]
    NoAction(String),
    /// A size of zero.
    #[error("a resize to {0}x{1}: sizes start at 1x1")]
    EmptySize(u32, u32),
    /// The run is over: nobody takes input any more.
    #[error("the run is over")]
    Finished,
}

impl InputFeed {
    /// Key `key` pressed, through the keyboard's mapping ([`action_for`]).
    pub fn key(&self, key: Key<&str>) -> Result<(), InputError> {
        let action =
            action_for(key.clone()).ok_or_else(|| InputError::NoAction(format!("{key:?}")))?;
        self.send(DisplayEvent::Key(action))
    }

    /// The pointer at (`x`, `y`) in the window, its first button down or not (a drag is down at
    /// one point, down at another, then up).
    pub fn pointer(&self, x: i32, y: i32, pressed: bool) -> Result<(), InputError> {
        self.send(DisplayEvent::Pointer { x, y, pressed })
    }

    /// Asks for the window's inner size to become `width`x`height`, as an application would.
    /// Where winit applies it at once (Wayland: the client picks a floating window's size) no
    /// `Resized` event follows, so the size it returns is taken as one; on X11 the server's
    /// `ConfigureNotify` brings the event as for any resize.
    pub fn resize(&self, width: u32, height: u32) -> Result<(), InputError> {
        if width == 0 || height == 0 {
            return Err(InputError::EmptySize(width, height));
        }
        let applied = self
            .window
            .request_inner_size(winit::dpi::PhysicalSize::new(width, height));
        match applied {
            Some(s) => self.send(DisplayEvent::Resized(s.width, s.height)),
            None => Ok(()),
        }
    }

    fn send(&self, e: DisplayEvent) -> Result<(), InputError> {
        self.tx.send(e).map_err(|_| InputError::Finished)
    }
}

/// What the event loop is woken for.
#[derive(Debug)]
enum UserEvent {
    /// The run is over.
    Finished,
}

struct App {
    args: RunConfig,
    signals: Receiver<Signal>,
    proxy: EventLoopProxy<UserEvent>,
    tx: Sender<DisplayEvent>,
    rx: Option<Receiver<DisplayEvent>>,
    window: Option<std::sync::Arc<Window>>,
    run: Option<std::thread::JoinHandle<anyhow::Result<RunSummary>>>,
    failed: Option<anyhow::Error>,
    pointer: Pointer,
    input: Option<Box<dyn InputSource>>,
}

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
        Some(xid) => Presenter::X11(x11::Presenter::connect(xid, move |c| {
            let _ = tx.send(DisplayEvent::Completed(c));
        })?),
        None => Presenter::Wayland(Box::new(wayland::Presenter::connect(
            window.clone(),
            move |n| {
                let _ = tx.send(match n {
                    wayland::Note::Released(c) => DisplayEvent::Released(c),
                    wayland::Note::FrameDone(f) => DisplayEvent::FrameDone(f),
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

impl App {
    fn start(&mut self, el: &ActiveEventLoop) -> anyhow::Result<()> {
        let (w, h) = (self.args.size.width, self.args.size.height);
        let window = el
            .create_window(
                Window::default_attributes()
                    .with_title("triptych")
                    .with_inner_size(winit::dpi::PhysicalSize::new(w, h))
                    .with_resizable(true),
            )
            .context("creating the window")?;
        let window = std::sync::Arc::new(window);
        let display = adopt(
            window.clone(),
            self.rx.take().context("the window started twice")?,
            self.tx.clone(),
        )?;
        let (args, signals, proxy) = (self.args.clone(), self.signals.clone(), self.proxy.clone());
        self.run = Some(
            std::thread::Builder::new()
                .name("supervisor".into())
                .spawn(move || {
                    let r = crate::session::run(&args, &signals, Some(display));
                    let _ = proxy.send_event(UserEvent::Finished);
                    r
                })
                .context("starting the supervisor thread")?,
        );
        if let Some(input) = self.input.take() {
            input.start(InputFeed {
                window: window.clone(),
                tx: self.tx.clone(),
            });
        }
        self.window = Some(window);
        Ok(())
    }
}

impl ApplicationHandler<UserEvent> for App {
    fn resumed(&mut self, el: &ActiveEventLoop) {
        if self.window.is_some() || self.failed.is_some() {
            return;
        }
        if let Err(e) = self.start(el) {
            self.failed = Some(e);
            el.exit();
        }
    }

    fn user_event(&mut self, el: &ActiveEventLoop, event: UserEvent) {
        match event {
            UserEvent::Finished => el.exit(),
        }
    }

    fn window_event(&mut self, _: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        if let Some(e) = translate(&mut self.pointer, &event) {
            let _ = self.tx.send(e);
        }
    }
}

/// What a key does, if anything.
fn action_for(key: Key<&str>) -> Option<Action> {
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

/// Runs `triptych run` in a window; returns when the run ends.
pub fn run(
    args: &RunConfig,
    signals: &Receiver<Signal>,
    input: Option<Box<dyn InputSource>>,
) -> anyhow::Result<RunSummary> {
    let mut event_loop = EventLoop::<UserEvent>::with_user_event()
        .build()
        .context("connecting to the display")?;
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut app = App {
        args: args.clone(),
        signals: signals.clone(),
        proxy: event_loop.create_proxy(),
        tx,
        rx: Some(rx),
        window: None,
        run: None,
        failed: None,
        pointer: Pointer::default(),
        input,
    };
    // `run_app_on_demand` leaves the event loop (which owns the display connection) to us: it
    // is never dropped, so the connection outlives every object adopted from it, the Wayland
    // presenter's event thread included, for the rest of this process.
    let ran = event_loop
        .run_app_on_demand(&mut app)
        .context("running the window's event loop");
    // The supervisor may still be presenting (an error ended the loop): it finishes first.
    let joined = app.run.take().map(|run| {
        run.join()
            .map_err(|_| anyhow::anyhow!("the supervisor thread panicked"))
    });
    std::mem::forget(event_loop);
    ran?;
    if let Some(e) = app.failed {
        return Err(e);
    }
    joined.context("the window closed before the run started")??
}
