//! `doctor`'s display line: whether `triptych run` (without `--window` or `--headless`) will
//! open a window, how its frames will reach the display server, and why.
//!
//! The choice follows the one a run makes: `WAYLAND_DISPLAY` first, then `DISPLAY` (winit's
//! order, which does not fall back from one to the other), else headless. The facts are asked of
//! the server itself: on Wayland a connection and a registry round trip show whether `wl_shm` is
//! offered (the window's frames are `wl_shm` buffers over the renderer's output memfd,
//! [`crate::window::wayland`]); on X11 a connection and `MIT-SHM` `QueryVersion` show whether the
//! server takes memfds (`ShmAttachFd`, 1.2), the same check the window's presenter makes
//! ([`crate::window::x11::shm_fd_support`]).

use serde::Serialize;
use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::wl_registry::{self, WlRegistry};
use wayland_client::{Connection, Dispatch, QueueHandle};

use super::report::Level;

/// What `run` will do with its frames here.
#[derive(Clone, Debug, Serialize)]
pub struct DisplayReport {
    /// The variable that names the display, `NAME=value`; null without one.
    pub env: Option<String>,
    /// `"wayland"`, `"x11"` or `"none"`.
    pub server: &'static str,
    /// `"window"`, `"headless"`, or `"fails"` where a display is named but cannot be used.
    pub mode: &'static str,
    /// How frames reach the screen (or the PNG).
    pub present: String,
    /// Whether the launcher hands frames over without copying their pixels.
    pub zero_copy: bool,
    /// Why the path copies, or why the run would fail; null otherwise.
    pub reason: Option<String>,
}

impl DisplayReport {
    /// What it means for `run`: a display that is named but cannot be used fails the run; a
    /// window whose frames are copied through the socket is a fallback from the zero-copy
    /// paths; a window presented zero-copy, or a headless run, is what it should be.
    pub fn level(&self) -> Level {
        match self.mode {
            "fails" => Level::Fail,
            "window" if !self.zero_copy => Level::Warn,
            _ => Level::Ok,
        }
    }

    /// The report's line.
    pub fn line(&self) -> String {
        let from = self.env.clone().unwrap_or_else(|| {
            "no display (neither WAYLAND_DISPLAY nor DISPLAY is set)".to_owned()
        });
        match (self.mode, &self.reason) {
            ("fails", r) => format!(
                "{from} -> no window: {}; {}",
                r.as_deref().unwrap_or("the display cannot be used"),
                self.present
            ),
            ("window", Some(r)) => format!("{from} -> a window, {}, because {r}", self.present),
            ("window", None) => format!("{from} -> a window, {}", self.present),
            (_, _) => format!("{from} -> {}", self.present),
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Finds out what `run` will do here.
pub fn ask() -> DisplayReport {
    if let Some(w) = var("WAYLAND_DISPLAY") {
        return wayland(format!("WAYLAND_DISPLAY={w}"));
    }
    if let Some(d) = var("DISPLAY") {
        return x11(format!("DISPLAY={d}"));
    }
    DisplayReport {
        env: None,
        server: "none",
        mode: "headless",
        present: "headless: the last frame is written to --out (PNG)".to_owned(),
        zero_copy: false,
        reason: None,
    }
}

fn fails(env: String, server: &'static str, why: String) -> DisplayReport {
    DisplayReport {
        env: Some(env),
        server,
        mode: "fails",
        present: "run fails at start (pass --headless for a PNG)".to_owned(),
        zero_copy: false,
        reason: Some(why),
    }
}

struct Registry;

impl Dispatch<WlRegistry, GlobalListContents> for Registry {
    fn event(
        _: &mut Self,
        _: &WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

fn wayland(env: String) -> DisplayReport {
    let conn = match Connection::connect_to_env() {
        Ok(c) => c,
        Err(e) => {
            return fails(
                env,
                "wayland",
                format!("the compositor cannot be reached: {e}"),
            )
        }
    };
    let globals = match registry_queue_init::<Registry>(&conn) {
        Ok((g, _queue)) => g,
        Err(e) => return fails(env, "wayland", format!("the compositor's registry: {e}")),
    };
    let shm = globals.contents().with_list(|list| {
        list.iter()
            .find(|g| g.interface == "wl_shm")
            .map(|g| g.version)
    });
    match shm {
        Some(version) => DisplayReport {
            env: Some(env),
            server: "wayland",
            mode: "window",
            present: format!(
                "presented with wl_shm (version {version}) from the output memfd (zero-copy)"
            ),
            zero_copy: true,
            reason: None,
        },
        None => fails(
            env,
            "wayland",
            "the compositor offers no wl_shm, which the window's frames need".to_owned(),
        ),
    }
}

fn x11(env: String) -> DisplayReport {
    let conn = match x11rb::connect(None) {
        Ok((c, _)) => c,
        Err(e) => return fails(env, "x11", format!("the X server cannot be reached: {e}")),
    };
    match triptych::window::x11::shm_fd_support(&conn) {
        Ok(()) => DisplayReport {
            env: Some(env),
            server: "x11",
            mode: "window",
            present: "X11 MIT-SHM (ShmAttachFd, 1.2): ShmPutImage from the output memfd \
                      (zero-copy)"
                .to_owned(),
            zero_copy: true,
            reason: None,
        },
        Err(why) => DisplayReport {
            env: Some(env),
            server: "x11",
            mode: "window",
            present: "copying X11 PutImage (every frame through the socket)".to_owned(),
            zero_copy: false,
            reason: Some(why),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_as_documented() {
        let r = DisplayReport {
            env: None,
            server: "none",
            mode: "headless",
            present: "headless: the last frame is written to --out (PNG)".into(),
            zero_copy: false,
            reason: None,
        };
        assert_eq!(r.level(), Level::Ok);
        assert_eq!(
            r.line(),
            "no display (neither WAYLAND_DISPLAY nor DISPLAY is set) -> headless: the last \
             frame is written to --out (PNG)"
        );
        let r = fails("DISPLAY=:9".into(), "x11", "gone".into());
        assert_eq!(r.level(), Level::Fail);
        assert_eq!(
            r.line(),
            "DISPLAY=:9 -> no window: gone; run fails at start (pass --headless for a PNG)"
        );
        let r = DisplayReport {
            env: Some("DISPLAY=:0".into()),
            server: "x11",
            mode: "window",
            present: "copying X11 PutImage (every frame through the socket)".into(),
            zero_copy: false,
            reason: Some("the X server's MIT-SHM is 1.1".into()),
        };
        assert_eq!(r.level(), Level::Warn);
        assert!(r.line().contains("copying X11 PutImage"), "{}", r.line());
    }
}
