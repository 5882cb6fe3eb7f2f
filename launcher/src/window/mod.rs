//! The window: `triptych run` in a real window (winit), presented without a copy.
//!
//! # Threads
//!
//! winit's event loop must own the main thread, so in window mode the supervisor (the whole
//! run: children, crash recovery, frames) runs on a thread of its own and talks to the window
//! through channels: the window side sends [`DisplayEvent`]s (keys, close, a finished present);
//! the supervisor draws through the [`x11::Presenter`], which has its own connection to the X
//! server. When the run ends the supervisor wakes the event loop, which exits, and `main` prints
//! the summary as in a headless run.
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
//! Space pauses and resumes, `.` steps one frame while paused, `g` kills the GPU process and
//! `r` the renderer (with `SIGKILL`, recovered like any crash; the last frame stays on screen
//! meanwhile), `q` or Escape quits.
//!
//! Wayland compositors are reached through XWayland (`DISPLAY`); a native `wl_shm` present is
//! not built yet, and `doctor` says so.

pub mod x11;

use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};
use winit::application::ApplicationHandler;
use winit::event::{ElementState, WindowEvent};
use winit::event_loop::{ActiveEventLoop, EventLoop, EventLoopProxy};
use winit::keyboard::{Key, NamedKey};
use winit::raw_window_handle::{HasWindowHandle, RawWindowHandle};
use winit::window::{Window, WindowId};

use crate::cli::RunArgs;
use crate::summary::RunSummary;
use nix::sys::signal::Signal;

/// What the window side tells the supervisor.
#[derive(Debug)]
pub enum DisplayEvent {
    /// The X server finished reading a slot.
    Completed(x11::Completion),
    /// A key that means something.
    Key(Action),
    /// The window was closed.
    Closed,
    /// The window was resized (frames keep the size they were started with).
    Resized(u32, u32),
    /// The window needs its content again.
    Exposed,
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
    /// `q`, Escape.
    Quit,
}

/// The supervisor's side of the window.
#[derive(Debug)]
pub struct Display {
    /// Events from the window.
    pub events: Receiver<DisplayEvent>,
    /// Drawing into the window.
    pub presenter: x11::Presenter,
    /// The display's refresh period.
    pub refresh: Duration,
}

/// Whether `run` opens a window, and why (or why not).
pub fn wanted(args: &RunArgs) -> Result<bool, String> {
    if args.headless {
        return Ok(false);
    }
    let display = std::env::var_os("DISPLAY").filter(|d| !d.is_empty());
    match (args.window, display) {
        (_, Some(_)) => Ok(true),
        (true, None) if std::env::var_os("WAYLAND_DISPLAY").is_some() => Err(
            "--window: only X11 presenting is built; this Wayland session has no DISPLAY (XWayland)"
                .into(),
        ),
        (true, None) => Err("--window: no display (DISPLAY is not set)".into()),
        (false, None) => Ok(false),
    }
}

/// What the event loop is woken for.
#[derive(Debug)]
enum UserEvent {
    /// The run is over.
    Finished,
}

struct App {
    args: RunArgs,
    signals: Receiver<Signal>,
    proxy: EventLoopProxy<UserEvent>,
    tx: Sender<DisplayEvent>,
    rx: Option<Receiver<DisplayEvent>>,
    window: Option<Window>,
    run: Option<std::thread::JoinHandle<anyhow::Result<RunSummary>>>,
    failed: Option<anyhow::Error>,
}

impl App {
    fn start(&mut self, el: &ActiveEventLoop) -> anyhow::Result<()> {
        let (w, h) = (self.args.size.width, self.args.size.height);
        let window = el
            .create_window(
                Window::default_attributes()
                    .with_title("triptych")
                    .with_inner_size(winit::dpi::PhysicalSize::new(w, h))
                    .with_resizable(false),
            )
            .context("creating the window")?;
        let xid = match window
            .window_handle()
            .context("the window's handle")?
            .as_raw()
        {
            RawWindowHandle::Xlib(h) => u32::try_from(h.window).context("an XID beyond 32 bits")?,
            RawWindowHandle::Xcb(h) => h.window.get(),
            other => anyhow::bail!("a window that is not an X11 window: {other:?}"),
        };
        let refresh = window
            .current_monitor()
            .and_then(|m| m.refresh_rate_millihertz())
            .filter(|mhz| *mhz >= 1000)
            .map_or(Duration::from_micros(16_667), |mhz| {
                Duration::from_nanos(1_000_000_000_000 / u64::from(mhz))
            });
        let tx = self.tx.clone();
        let presenter = x11::Presenter::connect(xid, move |c| {
            let _ = tx.send(DisplayEvent::Completed(c));
        })?;
        tracing::info!(
            window = format!("{xid:#x}"),
            width = w,
            height = h,
            path = presenter.path.describe(),
            refresh_us = refresh.as_micros() as u64,
            "window open"
        );
        let display = Display {
            events: self.rx.take().context("the window started twice")?,
            presenter,
            refresh,
        };
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
        let e = match event {
            WindowEvent::CloseRequested => Some(DisplayEvent::Closed),
            WindowEvent::Resized(s) => Some(DisplayEvent::Resized(s.width, s.height)),
            WindowEvent::RedrawRequested => Some(DisplayEvent::Exposed),
            WindowEvent::KeyboardInput { event, .. } if event.state == ElementState::Pressed => {
                let action = match event.logical_key.as_ref() {
                    Key::Named(NamedKey::Space) => Some(Action::TogglePause),
                    Key::Named(NamedKey::Escape) => Some(Action::Quit),
                    Key::Character(".") => Some(Action::Step),
                    Key::Character("g") => Some(Action::KillGpu),
                    Key::Character("r") => Some(Action::KillRenderer),
                    Key::Character("q") => Some(Action::Quit),
                    _ => None,
                };
                action.map(DisplayEvent::Key)
            }
            _ => None,
        };
        if let Some(e) = e {
            let _ = self.tx.send(e);
        }
    }
}

/// Runs `triptych run` in a window; returns when the run ends.
pub fn run(args: &RunArgs, signals: &Receiver<Signal>) -> anyhow::Result<RunSummary> {
    let event_loop = EventLoop::<UserEvent>::with_user_event()
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
    };
    event_loop
        .run_app(&mut app)
        .context("running the window's event loop")?;
    if let Some(e) = app.failed {
        return Err(e);
    }
    let run = app
        .run
        .context("the window closed before the run started")?;
    drop(app.window.take());
    run.join()
        .map_err(|_| anyhow::anyhow!("the supervisor thread panicked"))?
}
