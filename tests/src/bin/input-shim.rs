//! `triptych-input-shim`: the `triptych` command line, with window input read from a FIFO, for
//! the window tests on display servers that take no input from outside (weston's headless
//! backend has a seat that nothing drives, and no test protocol in Debian's build). A test-only
//! program: the product binary has no such input.
//!
//! When `TRIPTYCH_TEST_WINDOW_INPUT` names a FIFO, a thread opens it once the window exists
//! (it waits for the test to open its end) and reads one command per line:
//!
//! - `key NAME`: the key `NAME` (`space`, `escape`, or one character such as `.` or `g`);
//! - `pointer X Y up|down`: the pointer at (`X`, `Y`) in the window with the first button up or
//!   down (a drag is `down` at one point, then `down` at another, then `up`);
//! - `resize WxH`: asks for that inner size, as an application would.
//!
//! Each goes through the window's own paths (`triptych_cli::window::InputFeed`) and is logged
//! (`test input`) once taken; a line that means nothing is logged as refused.

use std::io::BufRead;
use std::path::PathBuf;

use triptych_cli::window::{InputFeed, InputSource};
use winit::keyboard::{Key, NamedKey};

/// The variable naming the FIFO.
const INPUT_ENV: &str = "TRIPTYCH_TEST_WINDOW_INPUT";

struct Fifo(PathBuf);

impl InputSource for Fifo {
    fn start(self: Box<Self>, feed: InputFeed) {
        let path = self.0;
        let spawned = std::thread::Builder::new()
            .name("test-input".into())
            .spawn(move || {
                let file = match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "test input: cannot open");
                        return;
                    }
                };
                for line in std::io::BufReader::new(file).lines() {
                    let Ok(line) = line else { break };
                    let line = line.trim();
                    match command(&feed, line) {
                        Ok(()) => tracing::info!(command = line, "test input"),
                        Err(why) => tracing::error!(command = line, %why, "test input: refused"),
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "test input: cannot start its thread");
        }
    }
}

/// Hands one command line to the window.
fn command(feed: &InputFeed, line: &str) -> Result<(), String> {
    let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
    match verb {
        "key" => {
            let key = match arg {
                "space" => Key::Named(NamedKey::Space),
                "escape" => Key::Named(NamedKey::Escape),
                c => Key::Character(c),
            };
            feed.key(key).map_err(|e| e.to_string())
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
                (Some(x), Some(y)) => feed.pointer(x, y, pressed).map_err(|e| e.to_string()),
                _ => Err(format!("not `X Y up|down`: {arg:?}")),
            }
        }
        "resize" => {
            let (w, h) = arg
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
                .ok_or_else(|| format!("not a size: {arg:?}"))?;
            feed.resize(w, h).map_err(|e| e.to_string())
        }
        _ => Err("unknown command".into()),
    }
}

fn main() {
    let input =
        std::env::var_os(INPUT_ENV).map(|p| Box::new(Fifo(p.into())) as Box<dyn InputSource>);
    triptych_cli::command::main_with(input)
}
