//! `triptych-views-app`: an application with a window of its own that embeds a shell and
//! changes its views while it runs, for the window tests of views added, placed and removed.
//! A test-only program, written as an application author would write one: it owns the winit
//! event loop and the window, hands the window to the shell (`ShellBuilder::present_into`) and
//! forwards the window's events to it.
//!
//! ```sh
//! triptych-views-app BIN_DIR WIDTH HEIGHT SCENE
//! ```
//!
//! It reads one command per line on stdin and answers each on stdout:
//!
//! - `add SCENE [X Y W H]`: `Shell::add_view`, placed at that rectangle or else tiled;
//!   answers `added VIEW`;
//! - `place VIEW X Y W H`: `Shell::set_view_rect`; answers `placed VIEW`;
//! - `remove VIEW`: `Shell::remove_view`; answers `removed VIEW`;
//! - `quit`: `Shell::shutdown`.
//!
//! A refused command answers `refused ERROR`. It prints `shown VIEW WxH generation G frame F`
//! at the first frame of each size of each view, `crashed ...` and `gone VIEW` as they happen,
//! and `summary JSON` at the end; the shell's log goes to stderr.

// A test program reports to the test on stdout.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use triptych::shell::{Event, Shell, ShellBuilder, ViewConfig, ViewId, ViewRect};
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, EventLoop, EventLoopProxy};
use winit::platform::run_on_demand::EventLoopExtRunOnDemand;
use winit::window::{Window, WindowId};

/// What wakes the event loop besides the window.
#[derive(Debug)]
enum Wake {
    Shell(Event),
    Line(String),
}

struct App {
    bin: PathBuf,
    size: (u32, u32),
    scene: PathBuf,
    proxy: EventLoopProxy<Wake>,
    window: Option<Arc<Window>>,
    shell: Option<Shell>,
    /// The size and generation last shown of each view.
    shown: BTreeMap<ViewId, (u32, u32, u32)>,
    failed: Option<anyhow::Error>,
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A rectangle from four words.
fn rect(words: &[&str]) -> anyhow::Result<ViewRect> {
    let n: Vec<i64> = words
        .iter()
        .map(|w| {
            w.parse::<i64>()
                .with_context(|| format!("{w:?} is no number"))
        })
        .collect::<anyhow::Result<_>>()?;
    let [x, y, w, h] = n[..] else {
        anyhow::bail!("a rectangle is X Y W H");
    };
    Ok(ViewRect::new(
        i32::try_from(x)?,
        i32::try_from(y)?,
        u32::try_from(w)?,
        u32::try_from(h)?,
    ))
}

impl App {
    fn start(&mut self, el: &ActiveEventLoop) -> anyhow::Result<()> {
        let window = el
            .create_window(
                Window::default_attributes()
                    .with_title("triptych-views-app")
                    .with_resizable(false)
                    .with_inner_size(winit::dpi::PhysicalSize::new(self.size.0, self.size.1)),
            )
            .context("creating the window")?;
        let window = Arc::new(window);
        let mut config = triptych::shell::RunConfig::default();
        config.buffers = triptych::shell::Buffers::Shm;
        let shell = ShellBuilder::with_config(config)
            .binaries(&self.bin)
            .frames(u64::MAX / 2)
            .scene(&self.scene)
            .max_views(4)
            .present_into(window.clone())
            .spawn()?;
        let (events, proxy) = (shell.receiver().clone(), self.proxy.clone());
        std::thread::Builder::new()
            .name("shell-events".into())
            .spawn(move || {
                for e in events {
                    if proxy.send_event(Wake::Shell(e)).is_err() {
                        break;
                    }
                }
            })
            .context("starting the event thread")?;
        let proxy = self.proxy.clone();
        std::thread::Builder::new()
            .name("commands".into())
            .spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if proxy.send_event(Wake::Line(line)).is_err() {
                        break;
                    }
                }
            })
            .context("starting the command thread")?;
        self.shell = Some(shell);
        self.window = Some(window);
        say("ready");
        Ok(())
    }

    fn command(&self, shell: &Shell, line: &str) -> anyhow::Result<String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["add", scene] => {
                let view = shell.add_view(ViewConfig::new(scene))?;
                Ok(format!("added {}", view.0))
            }
            ["add", scene, ref r @ ..] => {
                let view = shell.add_view(ViewConfig::new(scene).rect(rect(r)?))?;
                Ok(format!("added {}", view.0))
            }
            ["place", view, ref r @ ..] => {
                shell.set_view_rect(ViewId(view.parse()?), rect(r)?)?;
                Ok(format!("placed {view}"))
            }
            ["remove", view] => {
                shell.remove_view(ViewId(view.parse()?))?;
                Ok(format!("removed {view}"))
            }
            ["quit"] => {
                shell.shutdown();
                Ok("quitting".into())
            }
            _ => anyhow::bail!("no such command: {line:?}"),
        }
    }
}

impl ApplicationHandler<Wake> for App {
    fn resumed(&mut self, el: &ActiveEventLoop) {
        if self.window.is_some() || self.failed.is_some() {
            return;
        }
        if let Err(e) = self.start(el) {
            self.failed = Some(e);
            el.exit();
        }
    }

    fn user_event(&mut self, el: &ActiveEventLoop, wake: Wake) {
        match wake {
            Wake::Line(line) => {
                if let Some(shell) = &self.shell {
                    match self.command(shell, &line) {
                        Ok(answer) => say(&answer),
                        Err(e) => say(&format!("refused {e:#}")),
                    }
                }
            }
            Wake::Shell(Event::Presented(f)) => {
                let now = (f.width, f.height, f.generation);
                if self.shown.insert(f.view, now) != Some(now) {
                    say(&format!(
                        "shown {} {}x{} generation {} frame {}",
                        f.view.0, f.width, f.height, f.generation, f.frame
                    ));
                }
            }
            Wake::Shell(Event::Crashed { role, view, cause }) => {
                say(&format!("crashed {role} {view:?}: {cause}"))
            }
            Wake::Shell(Event::ViewGone { view, .. }) => say(&format!("gone {}", view.0)),
            Wake::Shell(Event::Finished) => el.exit(),
            Wake::Shell(_) => {}
        }
    }

    fn window_event(&mut self, _: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        if let Some(shell) = &self.shell {
            shell.window_event(&event);
        }
    }
}

fn main() -> anyhow::Result<()> {
    triptych::run_child_if_asked();
    triptych::shell::log_to_stderr("info");
    let usage = "usage: triptych-views-app BIN_DIR WIDTH HEIGHT SCENE";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bin, w, h, scene] = &args[..] else {
        anyhow::bail!("{usage}");
    };
    let mut event_loop = EventLoop::<Wake>::with_user_event()
        .build()
        .context("connecting to the display")?;
    let mut app = App {
        bin: bin.into(),
        size: (w.parse().context(usage)?, h.parse().context(usage)?),
        scene: scene.into(),
        proxy: event_loop.create_proxy(),
        window: None,
        shell: None,
        shown: BTreeMap::new(),
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
    say(&format!("summary {}", serde_json::to_string(&summary)?));
    Ok(())
}
