//! An application with its own winit window that embeds triptych: it owns the event loop and
//! the window, hands the window to a shell (`ShellBuilder::present_into`), which presents into
//! it without a copy (X11 MIT-SHM, Wayland `wl_shm`), and forwards the window's events to the
//! shell (`Shell::window_event`): resizing, the pointer (hover a panel to outline it, drag it to
//! move it) and the keys (space pauses, `.` steps, `g`/`r` kill a child, `q` quits).
//!
//! ```sh
//! cargo run --example embed_window -- [FRAMES] [SCENE]
//! ```
//!
//! It prints a line when the last frame is presented, one per crash, and the run's summary line
//! when the shell has finished (press `q` or close the window); the shell's log goes to stderr
//! (`TRIPTYCH_LOG`, default `info`).

// An example program reports to its user on stdout.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use triptych::shell::{Event, Shell, ShellBuilder};
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, EventLoop, EventLoopProxy};
use winit::platform::run_on_demand::EventLoopExtRunOnDemand;
use winit::window::{Window, WindowId};

struct App {
    frames: u64,
    scene: Option<PathBuf>,
    proxy: EventLoopProxy<Event>,
    window: Option<Arc<Window>>,
    shell: Option<Shell>,
    failed: Option<anyhow::Error>,
}

impl App {
    fn start(&mut self, el: &ActiveEventLoop) -> anyhow::Result<()> {
        let window = el
            .create_window(
                Window::default_attributes()
                    .with_title("embed_window")
                    .with_inner_size(winit::dpi::PhysicalSize::new(320, 240)),
            )
            .context("creating the window")?;
        let window = Arc::new(window);
        let mut builder = ShellBuilder::new()
            .layers(3)
            .frames(self.frames)
            .present_into(window.clone());
        if let Some(scene) = &self.scene {
            builder = builder.scene(scene);
        }
        let shell = builder.spawn()?;
        // The shell's events wake the event loop.
        let (events, proxy) = (shell.receiver().clone(), self.proxy.clone());
        std::thread::Builder::new()
            .name("shell-events".into())
            .spawn(move || {
                for e in events {
                    if proxy.send_event(e).is_err() {
                        break;
                    }
                }
            })
            .context("starting the event thread")?;
        self.shell = Some(shell);
        self.window = Some(window);
        Ok(())
    }
}

impl ApplicationHandler<Event> for App {
    fn resumed(&mut self, el: &ActiveEventLoop) {
        if self.window.is_some() || self.failed.is_some() {
            return;
        }
        if let Err(e) = self.start(el) {
            self.failed = Some(e);
            el.exit();
        }
    }

    fn user_event(&mut self, el: &ActiveEventLoop, event: Event) {
        match event {
            Event::Presented(f) if f.frame + 1 == self.frames => println!(
                "last frame {} presented, {}x{}, scene {}",
                f.frame, f.width, f.height, f.scene
            ),
            Event::Presented(_) => {}
            Event::Crashed { role, cause, .. } => println!("{role} crashed ({cause}); recovering"),
            Event::Violation { role, call, .. } => println!("violation: {role}: {call}"),
            Event::Fallback(what) => println!("fallback: {what}"),
            Event::StandbyReady { pid } => println!("standby GPU process {pid} ready"),
            Event::EditSuperseded { version } => {
                println!("edit {version} superseded by a new scene")
            }
            Event::Applied { version, frame } => {
                println!("edit {version} on screen at frame {frame}")
            }
            Event::Finished => el.exit(),
            // Kinds of event a later version adds.
            _ => {}
        }
    }

    fn window_event(&mut self, _: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        // Everything goes to the shell; closing the window ends its run, which ends the loop.
        if let Some(shell) = &self.shell {
            shell.window_event(&event);
        }
    }
}

fn main() -> anyhow::Result<()> {
    // One executable: started by the shell as its GPU process or renderer, this runs that role
    // and exits; it comes before anything else the program does.
    triptych::run_child_if_asked();
    triptych::shell::log_to_stderr("info");
    let mut args = std::env::args().skip(1);
    let frames: u64 = match args.next() {
        Some(n) => n.parse().context("usage: embed_window [FRAMES] [SCENE]")?,
        None => 600,
    };
    let scene = args.next().map(PathBuf::from);
    let mut event_loop = EventLoop::<Event>::with_user_event()
        .build()
        .context("connecting to the display")?;
    let mut app = App {
        frames,
        scene,
        proxy: event_loop.create_proxy(),
        window: None,
        shell: None,
        failed: None,
    };
    let ran = event_loop.run_app_on_demand(&mut app);
    // On Wayland the shell drew through this event loop's connection: it is never dropped.
    std::mem::forget(event_loop);
    ran.context("running the event loop")?;
    if let Some(e) = app.failed {
        return Err(e);
    }
    let shell = app.shell.context("the window never opened")?;
    let summary = shell.wait()?;
    println!(
        "{} frames presented, last {:?}, {} crashes, {}",
        summary.frames.count,
        summary.frames.last,
        summary.recovery.crashes.len(),
        summary.paths.present
    );
    Ok(())
}
