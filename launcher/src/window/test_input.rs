//! Input for the window tests, in debug builds only: keys and resizes read from a FIFO the
//! test names, for display servers that take no input from outside (weston's headless backend
//! has a seat that nothing drives, and no test protocol in Debian's build).
//!
//! When [`TEST_INPUT_ENV`] names a FIFO, a thread opens it (it waits for the test to open its
//! end) and reads one command per line:
//!
//! - `key NAME`: the key `NAME` (`space`, `escape`, or one character such as `.` or `g`), taken
//!   through the same mapping as a keyboard's ([`super::action_for`]) and handed to the
//!   supervisor as the window's key events are;
//! - `pointer X Y up|down`: the pointer at (`X`, `Y`) in the window with the first button up
//!   or down, handed to the supervisor as the window's pointer events are (hover; a drag is
//!   `down` at one point, then `down` at another, then `up`);
//! - `resize WxH`: asks winit for that inner size, as an application would. Where winit applies
//!   it at once (Wayland: the client picks a floating window's size) no `Resized` event follows,
//!   so the size it returns is handed to the supervisor as one; on X11 the server's
//!   `ConfigureNotify` brings the `Resized` event as for any resize.
//!
//! Each command is logged (`test input`) once handed over. A release build has none of this:
//! the variable means nothing there (the test command checks the name is absent from release
//! binaries).

use std::io::BufRead;
use std::sync::Arc;

use crossbeam_channel::Sender;
use winit::keyboard::{Key, NamedKey};
use winit::window::Window;

use super::DisplayEvent;

/// The environment variable naming the FIFO.
pub const TEST_INPUT_ENV: &str = "TRIPTYCH_TEST_WINDOW_INPUT";

/// Starts reading the FIFO [`TEST_INPUT_ENV`] names, if it names one.
pub fn spawn(window: Arc<Window>, tx: Sender<DisplayEvent>) {
    let Some(path) = std::env::var_os(TEST_INPUT_ENV) else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("test-input".into())
        .spawn(move || {
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(path = %std::path::Path::new(&path).display(), error = %e, "test input: cannot open");
                    return;
                }
            };
            for line in std::io::BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                let event = command(&window, line.trim());
                match event {
                    Ok(Some(e)) => {
                        if tx.send(e).is_err() {
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(why) => {
                        tracing::error!(command = line.trim(), %why, "test input: refused");
                        continue;
                    }
                }
                tracing::info!(command = line.trim(), "test input");
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "test input: cannot start its thread");
    }
}

/// The event one command stands for.
fn command(window: &Window, line: &str) -> Result<Option<DisplayEvent>, String> {
    let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
    match verb {
        "key" => {
            let key = match arg {
                "space" => Key::Named(NamedKey::Space),
                "escape" => Key::Named(NamedKey::Escape),
                c => Key::Character(c),
            };
            super::action_for(key)
                .map(|a| Some(DisplayEvent::Key(a)))
                .ok_or_else(|| format!("no key action for {arg:?}"))
        }
        "pointer" => {
            let mut parts = arg.split_whitespace();
            let (x, y, button) = (parts.next(), parts.next(), parts.next());
            let coord = |v: Option<&str>| v.and_then(|v| v.parse::<i32>().ok());
            let pressed = match button {
                Some("down") => true,
                Some("up") => false,
                _ => return Err(format!("not `X Y up|down`: {arg:?}")),
            };
            match (coord(x), coord(y)) {
                (Some(x), Some(y)) => Ok(Some(DisplayEvent::Pointer { x, y, pressed })),
                _ => Err(format!("not `X Y up|down`: {arg:?}")),
            }
        }
        "resize" => {
            let (w, h) = arg
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
                .filter(|(w, h)| *w > 0 && *h > 0)
                .ok_or_else(|| format!("not a size: {arg:?}"))?;
            let applied = window.request_inner_size(winit::dpi::PhysicalSize::new(w, h));
            Ok(applied.map(|s| DisplayEvent::Resized(s.width, s.height)))
        }
        _ => Err("unknown command".into()),
    }
}
