//! How a run is configured: [`RunConfig`], plain data with the defaults of `triptych run`, built
//! by the command line (`triptych-cli`), by [`crate::shell::ShellBuilder`], or deserialized by
//! an application (every field is `serde`'s, with the documented defaults for those left out).
//! The engine reads nothing else: no command-line type reaches it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A frame size, `WxH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (w, h) = s
            .split_once(['x', 'X'])
            .ok_or_else(|| format!("size {s:?} is not WxH, e.g. 640x480"))?;
        let parse = |v: &str, what: &str| {
            v.parse::<u32>()
                .ok()
                .filter(|n| (1..=8192).contains(n))
                .ok_or_else(|| format!("{what} {v:?} in size {s:?} is not a number from 1 to 8192"))
        };
        Ok(Size {
            width: parse(w, "width")?,
            height: parse(h, "height")?,
        })
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// How buffer and fence fds travel from the GPU process to the renderer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// `pidfd_getfd` where the kernel allows it, else `SCM_RIGHTS`.
    #[default]
    Auto,
    /// The renderer takes them from the GPU process's export window with `pidfd_getfd`.
    Pidfd,
    /// The GPU process sends them over a unix socket (`SCM_RIGHTS`): for systems where ptrace
    /// is locked down (Yama ptrace_scope 3, container policies).
    ScmRights,
}

/// Whether the seccomp policies are enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// A call outside its role's policy kills the child and is reported as a violation.
    #[default]
    Enforce,
    /// For testing the policies against a new C library, driver or kernel: a call outside the
    /// policy is recorded (role, call, arguments) and then allowed to run, and the summary lists
    /// every such call. The children are NOT confined by seccomp in this mode; the other
    /// layers (namespaces, capabilities, resource limits) stay on.
    Learn,
}

/// Which buffer backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Buffers {
    /// DMA-BUF where the GPU process can export it and the renderer can map it, else shm.
    #[default]
    Auto,
    /// Sealed memfds filled by GL read-back, fenced with points of a progress page (or pipes).
    Shm,
    /// DMA-BUFs exported from GL with sync_file fences; fails rather than falling back.
    Dmabuf,
}

/// How the children are watched, and how many crashes are forgiven.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Supervision {
    /// Crashes of one role within `restart_window_s` before the GPU process steps down the
    /// fallback ladder or, for the renderer, the run gives up.
    pub max_crashes: u32,
    /// The window, in seconds, in which crashes are counted.
    pub restart_window_s: u64,
    /// How often the launcher pings each child, in milliseconds.
    pub heartbeat_ms: u64,
    /// A child that has not answered a ping for this long is hung, in milliseconds.
    pub hang_timeout_ms: u64,
    /// Keep a standby GPU process warm (started, sandboxed, its GL context made) and promote it
    /// when the GPU process dies, instead of starting one cold.
    pub standby: bool,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision {
            max_crashes: 3,
            restart_window_s: 60,
            heartbeat_ms: 250,
            hang_timeout_ms: 3000,
            standby: true,
        }
    }
}

/// Chaos mode and injected faults: crashes on purpose, to test recovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Chaos {
    /// Kill children at random points of the frame path, chosen by this seed.
    pub seed: Option<u64>,
    /// How many kills chaos mode makes.
    pub kills: u32,
    /// Faults to inject ([`parse_fault`] reads the command line's form).
    pub faults: Vec<ipc_protocol::messages::Fault>,
}

impl Default for Chaos {
    fn default() -> Self {
        Chaos {
            seed: None,
            kills: 20,
            faults: Vec::new(),
        }
    }
}

/// A run's configuration. [`RunConfig::default`] is what `triptych run` does with no options
/// (headless details aside: whether a window opens is the caller's choice, by handing the run
/// a display or not).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Frames to render, composite and present (at least 1).
    pub frames: u64,
    /// Frame size.
    pub size: Size,
    /// Number of layers (1 to 8) of the built-in deterministic scene.
    pub layers: u32,
    /// A scene file to draw instead of the built-in scene (`default`: the built-in example
    /// scene file); read and checked before any child starts.
    pub scene: Option<PathBuf>,
    /// The loaded scene, filled in from `scene` before the run starts (`crate::scene`): the
    /// engine's, never the caller's to set.
    #[serde(skip)]
    pub(crate) loaded_scene: Option<std::sync::Arc<crate::scene::LoadedScene>>,
    /// More views beside the first, each drawing this scene file (`default`: the built-in
    /// example scene file): each is a sandboxed renderer of its own, with its own restart
    /// ladder, served by the run's one GPU process. Without a window, each view's last frame is
    /// written to a PNG of its own ([`view_out`]); in a window, the views are tiled in it, each
    /// a surface of its own. Edits of the scene act on the first view only.
    pub views: Vec<PathBuf>,
    /// The loaded scenes of `views`, filled in before the run starts.
    #[serde(skip)]
    pub(crate) loaded_views: Vec<std::sync::Arc<crate::scene::LoadedScene>>,
    /// Where an embedding application placed each of `views` (by index; none past its end:
    /// tiled), from `crate::shell::ViewConfig::rect`.
    #[serde(skip)]
    pub(crate) view_rects: Vec<Option<crate::embedding::ViewRect>>,
    /// The most views a run may have; `None`: sized from the machine's memory
    /// ([`default_max_views`]).
    pub max_views: Option<u32>,
    /// Where a run without a window writes its last composited frame (PNG): the first view's;
    /// another view's goes beside it ([`view_out`]).
    pub out: PathBuf,
    /// Buffer backend.
    pub buffers: Buffers,
    /// How fds travel from the GPU process to the renderer.
    pub transport: Transport,
    /// Enforce the seccomp policies, or learn what each role calls beyond them.
    pub sandbox: SandboxMode,
    /// Pool buffers per layer (3 to 16).
    pub pool: u32,
    /// How long the renderer waits for a fence, in milliseconds.
    pub fence_timeout_ms: u32,
    /// Compare the last presented frame with the reference composite (the summary's `verified`).
    pub verify: bool,
    /// Redraw and composite every frame whole instead of only what changed.
    pub no_damage: bool,
    /// Record a trace of every frame across all processes and write it here.
    pub trace: Option<PathBuf>,
    /// Send the steady messages between the launcher and each child, both ways, through
    /// shared-memory mailboxes ([`ipc_protocol::mailbox`]) instead of one socket message each.
    pub mailbox: bool,
    /// Fences with no file per frame. With shm buffers, each layer's fence is a point of the GPU
    /// process's progress page ([`ipc_protocol::progress`]), read from shared memory; with
    /// DMA-BUFs whose fences lie on the buffer, the implicit fences of a DMA-BUF the renderer
    /// took once with the buffer ([`ipc_protocol::frame::FenceKind::Implicit`]). Off, a pipe or
    /// a sync_file per layer per frame, taken by the renderer as a file (the paths kept for
    /// comparison).
    pub progress_fences: bool,
    /// Without a window: frames paced to this many a second, as a display's refresh paces a
    /// window's (the GPU process draws a frame only when asked for it); `None`, as fast as
    /// they are made.
    pub fps: Option<u32>,
    /// How children are watched and how many crashes are forgiven.
    pub supervision: Supervision,
    /// Chaos mode and injected faults, for testing recovery.
    pub chaos: Chaos,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            frames: 120,
            size: Size {
                width: 640,
                height: 480,
            },
            layers: 3,
            scene: None,
            loaded_scene: None,
            views: Vec::new(),
            loaded_views: Vec::new(),
            view_rects: Vec::new(),
            max_views: None,
            out: PathBuf::from("triptych-frame.png"),
            buffers: Buffers::Auto,
            transport: Transport::Auto,
            sandbox: SandboxMode::Enforce,
            pool: 3,
            fence_timeout_ms: 1000,
            verify: false,
            no_damage: false,
            trace: None,
            mailbox: true,
            progress_fences: true,
            fps: None,
            supervision: Supervision::default(),
            chaos: Chaos::default(),
        }
    }
}

/// A value of a [`RunConfig`] outside what a run can take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value}: {allowed}")]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// Its value.
    pub value: String,
    /// What it may be.
    pub allowed: &'static str,
}

impl RunConfig {
    /// Makes this configuration ready to run: checks it ([`RunConfig::check`]), then loads the
    /// scene file, if one is named, and sets `layers` to the scene's layer count; with
    /// `verify`, refuses a scene whose last frame has no CPU reference. A bad scene file is an
    /// error with the parser's located message, before any child starts.
    pub fn prepare(&mut self) -> anyhow::Result<()> {
        self.check()?;
        self.loaded_views = Vec::with_capacity(self.views.len());
        for path in &self.views {
            let loaded = crate::scene::load(path)?;
            if self.verify {
                let (w, h) = (self.size.width, self.size.height);
                if let Err(e) = crate::verify::scene_reference(&loaded, self.frames - 1, w, h) {
                    anyhow::bail!("--verify cannot check the view of {}: {e}", path.display());
                }
            }
            self.loaded_views.push(std::sync::Arc::new(loaded));
        }
        let Some(path) = &self.scene else {
            return Ok(());
        };
        let loaded = crate::scene::load(path)?;
        self.layers = u32::try_from(loaded.scene.layers.len())
            .map_err(|_| anyhow::anyhow!("the scene has too many layers"))?;
        if self.verify {
            // The frame verified is the last one; refuse at once when it has no reference.
            let (w, h) = (self.size.width, self.size.height);
            if let Err(e) = crate::verify::scene_reference(&loaded, self.frames - 1, w, h) {
                anyhow::bail!("--verify cannot check this scene: {e}");
            }
        }
        self.loaded_scene = Some(std::sync::Arc::new(loaded));
        Ok(())
    }

    /// Edits of the scene file [`RunConfig::prepare`] loaded, starting from it (none without
    /// one): what `triptych run --control` applies.
    pub fn editor(&self) -> Option<crate::scene::Editor> {
        let budget = crate::scene::Budget {
            pool: self.pool,
            max: (self.size.width, self.size.height),
            extra: 0,
        };
        let (frame, size) = (
            self.frames.saturating_sub(1),
            (self.size.width, self.size.height),
        );
        let verify = self.verify;
        self.loaded_scene.clone().map(|s| {
            let e = crate::scene::Editor::new(s).with_budget(budget);
            if verify {
                e.with_verify(frame, size)
            } else {
                e
            }
        })
    }

    /// Checks every value against what a run can take (the command line's ranges: the same
    /// limits hold for a configuration an application built or deserialized).
    pub fn check(&self) -> Result<(), ConfigError> {
        fn within<T: PartialOrd + std::fmt::Display>(
            field: &'static str,
            v: T,
            lo: T,
            hi: T,
            allowed: &'static str,
        ) -> Result<(), ConfigError> {
            if v < lo || v > hi {
                return Err(ConfigError {
                    field,
                    value: v.to_string(),
                    allowed,
                });
            }
            Ok(())
        }
        within("frames", self.frames, 1, u64::MAX, "at least 1")?;
        within("size.width", self.size.width, 1, 8192, "1 to 8192")?;
        within("size.height", self.size.height, 1, 8192, "1 to 8192")?;
        if self.scene.is_none() {
            within("layers", self.layers, 1, 8, "1 to 8 (the built-in scene's)")?;
        }
        within("pool", self.pool, 3, 16, "3 to 16")?;
        if let Some(fps) = self.fps {
            within("fps", fps, 1, 1000, "1 to 1000")?;
        }
        within(
            "fence_timeout_ms",
            self.fence_timeout_ms,
            1,
            u32::MAX,
            "at least 1",
        )?;
        within(
            "supervision.heartbeat_ms",
            self.supervision.heartbeat_ms,
            1,
            u64::MAX,
            "at least 1",
        )?;
        within(
            "supervision.hang_timeout_ms",
            self.supervision.hang_timeout_ms,
            1,
            u64::MAX,
            "at least 1",
        )?;
        let most = triptych_sys::fd::ExportWindow::MAX_VIEWS;
        if let Some(max) = self.max_views {
            within(
                "max_views",
                max,
                1,
                most,
                "1 to 64 (a GPU process's export windows)",
            )?;
        }
        let max = self.max_views.unwrap_or_else(default_max_views);
        let views = self.views.len().saturating_add(1);
        if views > max as usize {
            return Err(ConfigError {
                field: "views",
                value: format!("{views} views"),
                allowed: if self.max_views.is_some() {
                    "at most max_views views"
                } else {
                    "at most the views this machine's memory allows (default_max_views)"
                },
            });
        }
        Ok(())
    }
}

/// The memory one view is budgeted, for the default maximum number of views: its renderer
/// (about 20 MiB resident in a run of the default size), its share of the GPU process's pools
/// and the launcher's mapping of its output, with room to spare.
pub const VIEW_MEMORY: u64 = 128 << 20;

/// The most views a run may have by default: as many as the machine's memory holds at
/// [`VIEW_MEMORY`] each, a quarter of it kept for everything else, at least 1 and at most a
/// GPU process's export windows ([`triptych_sys::fd::ExportWindow::MAX_VIEWS`]). As a browser
/// sizes its renderer process limit from the memory it has.
pub fn default_max_views() -> u32 {
    let most = triptych_sys::fd::ExportWindow::MAX_VIEWS;
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    });
    match total {
        Some(kib) => {
            let usable = kib.saturating_mul(1024) / 4 * 3;
            u32::try_from(usable / VIEW_MEMORY)
                .unwrap_or(most)
                .clamp(1, most)
        }
        // Unknown: the views of a small machine.
        None => 4,
    }
}

/// Where view `n`'s last frame is written, for a run whose first view's goes to `out`: `out`
/// itself for view 0, `NAME-viewN.EXT` beside it for the others.
pub fn view_out(out: &std::path::Path, n: u32) -> PathBuf {
    if n == 0 {
        return out.to_path_buf();
    }
    let stem = out
        .file_stem()
        .map_or_else(|| "frame".into(), |s| s.to_string_lossy().into_owned());
    let name = match out.extension() {
        Some(ext) => format!("{stem}-view{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-view{n}"),
    };
    out.with_file_name(name)
}

/// Reads a fault, `POINT:ACTION@FRAME` (`gpu-after-export:stop-fences@20`).
pub fn parse_fault(s: &str) -> Result<ipc_protocol::messages::Fault, String> {
    crate::chaos::parse_fault(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_a_run_and_every_range_is_held() {
        assert_eq!(RunConfig::default().check(), Ok(()));
        let bad = |f: fn(&mut RunConfig)| {
            let mut c = RunConfig::default();
            f(&mut c);
            c.check().expect_err("out of range")
        };
        assert_eq!(bad(|c| c.frames = 0).field, "frames");
        assert_eq!(bad(|c| c.size.width = 0).field, "size.width");
        assert_eq!(bad(|c| c.size.height = 9000).field, "size.height");
        assert_eq!(bad(|c| c.layers = 9).field, "layers");
        assert_eq!(bad(|c| c.pool = 2).field, "pool");
        assert_eq!(
            bad(|c| c.supervision.hang_timeout_ms = 0).field,
            "supervision.hang_timeout_ms"
        );
        // A scene file brings its own layer count.
        let c = RunConfig {
            scene: Some("default".into()),
            layers: 0,
            ..RunConfig::default()
        };
        assert_eq!(c.check(), Ok(()));
    }

    #[test]
    fn views_beyond_the_maximum_are_refused_and_each_has_its_own_file() {
        let c = RunConfig {
            views: vec!["default".into(); 3],
            max_views: Some(3),
            ..RunConfig::default()
        };
        let e = c.check().expect_err("four views, three allowed");
        assert_eq!((e.field, e.value.as_str()), ("views", "4 views"));
        let c = RunConfig {
            views: vec!["default".into(); 2],
            max_views: Some(3),
            ..RunConfig::default()
        };
        assert_eq!(c.check(), Ok(()));
        let bad = RunConfig {
            max_views: Some(65),
            ..RunConfig::default()
        };
        assert_eq!(bad.check().expect_err("over 64").field, "max_views");
        assert!((1..=64).contains(&default_max_views()));
        let out = std::path::Path::new("/tmp/run/frame.png");
        assert_eq!(view_out(out, 0), out);
        assert_eq!(
            view_out(out, 3),
            std::path::Path::new("/tmp/run/frame-view3.png")
        );
        assert_eq!(
            view_out(std::path::Path::new("shot"), 1),
            std::path::Path::new("shot-view1")
        );
    }

    #[test]
    fn a_deserialized_configuration_takes_the_defaults_it_leaves_out_and_refuses_unknown_fields() {
        let c: RunConfig =
            serde_json::from_str(r#"{"frames": 7, "size": {"width": 64, "height": 48}}"#)
                .expect("a partial configuration");
        assert_eq!((c.frames, c.size.width, c.pool), (7, 64, 3));
        assert!(serde_json::from_str::<RunConfig>(r#"{"frame": 7}"#).is_err());
    }
}
