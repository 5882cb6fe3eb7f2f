//! What the tests of the scene's edits share (`tests/tests/edit.rs`, `edit_coalesced.rs`,
//! `hostile_edit.rs`): their scenes, the output size, waiting for a shell's next event, and a
//! frame compared with the CPU reference of the scene it names.

use std::time::Instant;

use triptych::shell::{Event, Shell};
use triptych_scene::file::{reference_frame, Image, Scene};

/// The output's width.
pub const W: u32 = 160;
/// The output's height.
pub const H: u32 = 64;

/// A backdrop, a panel and a label, still: only edits change a frame.
pub const LABEL_SCENE: &str = r##"backdrop = "#101018"

[[layers]]
name = "back"
kind = "solid"
color = "#203040"
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "panel"
kind = "solid"
color = "#c04040"
rect = { x = 100, y = 30, w = 40, h = 20 }

[[layers]]
name = "label"
kind = "text"
text = "0"
size = 16
rect = { x = 8, y = 8, w = 80, h = 24 }
"##;

/// A backdrop and a pixels layer: 16x8 of the application's pixels, shown 1:1 at (40, 20).
pub const PIXELS_SCENE: &str = r##"backdrop = "#101018"

[[layers]]
name = "back"
kind = "solid"
color = "#203040"
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "canvas"
kind = "pixels"
width = 16
height = 8
rect = { x = 40, y = 20, w = 16, h = 8 }
"##;

/// The shell's next event, `None` once it has ended; panics past `deadline`.
pub fn next(shell: &Shell, deadline: Instant) -> Option<Event> {
    match shell.receiver().recv_deadline(deadline) {
        Ok(e) => Some(e),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => None,
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => panic!("no event in time"),
    }
}

/// How many pixels of `px`, frame `frame` of a `W` x `H` output, differ from the CPU reference
/// of `scene` with `images` (by slot: decoded images and the application's pixels).
pub fn differing(scene: &Scene, frame: u64, px: &[u8], images: &[Option<&Image>]) -> usize {
    let want = reference_frame(scene, frame, W, H, images).expect("exactly predictable");
    px.chunks_exact(4)
        .zip(want.chunks_exact(4))
        .filter(|(a, b)| a != b)
        .count()
}
