//! What the tests of several views share (`tests/tests/views.rs`, `shell_views.rs`): one scene
//! file per view, each a solid fill of its own colour under a moving checker, at one size.

use std::path::{Path, PathBuf};

/// The views' fill colours: each view's scene is a solid fill of one, under a moving checker.
pub const COLOURS: [[u8; 3]; 4] = [
    [0xc0, 0xc0, 0x20],
    [0xff, 0x20, 0x20],
    [0x20, 0xc0, 0x40],
    [0x20, 0x40, 0xff],
];

/// The frame size of the views' runs.
pub const SIZE: (u32, u32) = (160, 120);

/// Writes one scene file per colour of `COLOURS` (the first `n`) into `dir`.
pub fn scenes(dir: &Path, n: usize) -> Vec<PathBuf> {
    scene_files(dir, n, true)
}

/// Writes one scene file per colour of `COLOURS` (the first `n`) into `dir`, its checker
/// moving if `animated` (else every frame is the same).
pub fn scene_files(dir: &Path, n: usize, animated: bool) -> Vec<PathBuf> {
    let animation = if animated {
        "animation.translate = { dx = \"40%\", dy = 0, period = 2.0 }\n"
    } else {
        ""
    };
    COLOURS
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, [r, g, b])| {
            let path = dir.join(format!("view{i}.toml"));
            let text = format!(
                r##"backdrop = "#000000"

[[layers]]
name = "fill"
kind = "solid"
rect = {{ x = 0, y = 0, w = "100%", h = "100%" }}
color = "#{r:02x}{g:02x}{b:02x}"

[[layers]]
name = "box"
kind = "checker"
rect = {{ x = "10%", y = "10%", w = 48, h = 32 }}
cell = 8
colors = ["#ffffff", "#000000"]
{animation}"##
            );
            std::fs::write(&path, text).expect("a view's scene");
            path
        })
        .collect()
}

/// The renderer of view `view` of the run of `launcher`, while its first renderers run: they
/// start one after another, in the order of the views.
pub fn renderer_of(launcher: u32, view: usize) -> Option<u32> {
    let mut r = crate::children_named(launcher, "renderer");
    r.sort_unstable();
    r.get(view).copied()
}

/// The GPU process of the run of `launcher` that started first (a standby starts later).
pub fn first_gpu(launcher: u32) -> Option<u32> {
    let mut g = crate::children_named(launcher, "gpu");
    g.sort_unstable();
    g.first().copied()
}

/// Kills `pid` through a pidfd: the pid was just read as the launcher's child, and a pidfd
/// names that process even if it died and its number were reused meanwhile.
pub fn kill(pid: u32) {
    let pidfd = triptych_sys::pidfd::pidfd_open(pid as i32).expect("a pidfd of the victim");
    triptych_sys::pidfd::pidfd_send_signal(
        std::os::fd::AsFd::as_fd(&pidfd),
        triptych_sys::signal::Signal::SIGKILL,
    )
    .expect("killing it");
}

/// The scene of the scene file at `path`.
pub fn parse(path: &Path) -> triptych_scene::file::Scene {
    let text = std::fs::read_to_string(path).expect("the scene file");
    triptych_scene::file::Document::parse(&text, path)
        .expect("the scene parses")
        .scene()
        .clone()
}
