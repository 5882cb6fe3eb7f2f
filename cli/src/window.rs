//! `triptych run`'s window: a winit application that owns the event loop on the main thread,
//! creates the window, hands it to the engine ([`triptych::window::adopt`]) and runs the
//! supervisor on a thread of its own ([`triptych::session::run`]); the window's events go to the
//! supervisor through [`triptych::window::translate`], as an embedding application's do. A
//! program driving the window (a test, an automation) hands [`run`] an [`InputSource`].

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};
use triptych::config::RunConfig;
use triptych::signals::Signal;
use triptych::summary::RunSummary;
use triptych::window::{action_for, adopt, translate, DisplayEvent, Pointer};
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, EventLoop, EventLoopProxy};
use winit::keyboard::Key;
use winit::platform::run_on_demand::EventLoopExtRunOnDemand;
use winit::window::{Window, WindowId};

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
    proxy: EventLoopProxy<UserEvent>,
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

    /// Asks for the window's inner size to become `width`x`height`, as an application would:
    /// on the event loop's thread, where the window's own requests are made, so that the
    /// display server sees this one between them rather than in the middle of a redraw.
    /// Where winit applies it at once (Wayland: the client picks a floating window's size) no
    /// `Resized` event follows, so the size it returns is taken as one; on X11 the server's
    /// `ConfigureNotify` brings the event as for any resize.
    pub fn resize(&self, width: u32, height: u32) -> Result<(), InputError> {
        if width == 0 || height == 0 {
            return Err(InputError::EmptySize(width, height));
        }
        self.proxy
            .send_event(UserEvent::Resize(width, height))
            .map_err(|_| InputError::Finished)
    }

    fn send(&self, e: DisplayEvent) -> Result<(), InputError> {
        self.tx.send(e).map_err(|_| InputError::Finished)
    }
}

/// What the event loop is woken for.
#[derive(Debug)]
pub(crate) enum UserEvent {
    /// The run is over.
    Finished,
    /// An [`InputFeed`] asks for this inner size.
    Resize(u32, u32),
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

impl App {
    fn start(&mut self, el: &ActiveEventLoop) -> anyhow::Result<()> {
        // Every view is a tile of the window, `--size` large.
        let views = u32::try_from(self.args.views.len().saturating_add(1)).unwrap_or(u32::MAX);
        let (w, h) = triptych::window::Grid::for_views(views)
            .window((self.args.size.width, self.args.size.height));
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
                    let r = triptych::session::run(&args, &signals, Some(display));
                    let _ = proxy.send_event(UserEvent::Finished);
                    r
                })
                .context("starting the supervisor thread")?,
        );
        if let Some(input) = self.input.take() {
            input.start(InputFeed {
                proxy: self.proxy.clone(),
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
            UserEvent::Resize(w, h) => {
                let applied = self
                    .window
                    .as_ref()
                    .and_then(|win| win.request_inner_size(winit::dpi::PhysicalSize::new(w, h)));
                if let Some(s) = applied {
                    let _ = self.tx.send(DisplayEvent::Resized(s.width, s.height));
                }
            }
        }
    }

    fn window_event(&mut self, _: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        if let Some(e) = translate(&mut self.pointer, &event) {
            let _ = self.tx.send(e);
        }
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
