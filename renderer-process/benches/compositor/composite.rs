//! Items 5a and 5b: the renderer's CPU compositor on one 1080p layer, against a `memcpy` of the
//! same bytes.
//!
//! The compositor is the renderer's own ([`composite`]), called as the frame loop calls it: the
//! layer OVER the backdrop into the output frame (the compositor writes the backdrop only where
//! no layer covers it, so here it blends straight over it). Source and output are shared-memory
//! mappings of sealed memfds, as in the renderer (imported buffer in, output slot out). Two
//! layers are timed, because the compositor has a fast path:
//!
//! - *opaque* (5a): the scene's layer 0 at 1920x1080, alpha 255 everywhere, opacity 255: every
//!   pixel is a copy with a format swizzle;
//! - *translucent* (5b): a scene panel's content at 1920x1080 (alpha 160..255 and an opaque bar)
//!   at opacity 200: every pixel is a full premultiplied blend.
//!
//! The baseline copies the layer's 8 294 400 bytes from the same source mapping to the same
//! output mapping (a `memcpy`). After timing, one output pixel must be the layer over the
//! backdrop: the check that the work was done.

use std::cell::RefCell;

use criterion::Criterion;
use ipc_protocol::frame::DRM_FORMAT_ABGR8888;
use renderer_process::composite::{composite, Layer};
use triptych_scene::LayerContent;

use crate::paired::Item;
use crate::{shared, FRAME_BYTES, HEIGHT, WIDTH};

/// Which layer to composite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The scene's opaque full-frame layer at opacity 255.
    Opaque,
    /// A translucent scene panel, frame-sized, at opacity 200.
    Translucent,
}

fn content(kind: Kind) -> (LayerContent, u8) {
    // Frame 7: the sweeping bar is away from the edges; any frame would do.
    match kind {
        Kind::Opaque => (triptych_scene::layer_content(7, 0, WIDTH, HEIGHT), 255),
        // Panels are half the frame in each direction, so a panel of a 3840x2160 frame is
        // exactly 1920x1080.
        Kind::Translucent => (
            triptych_scene::layer_content(7, 1, WIDTH * 2, HEIGHT * 2),
            200,
        ),
    }
}

/// Measures compositing a layer of `kind` against `memcpy`.
pub fn measure(c: &mut Criterion, kind: Kind) -> Item {
    let (layer, opacity) = content(kind);
    assert_eq!(
        (layer.width, layer.height),
        (WIDTH, HEIGHT),
        "the {kind:?} layer's size"
    );
    let mut src = shared("bench-layer", FRAME_BYTES);
    layer.fill(src.as_mut_slice());
    let src = src;
    let out = RefCell::new(shared("bench-output", FRAME_BYTES));
    // Read as the renderer reads a buffer: as memory another process may write.
    let pixels = src.peer_bytes();
    let layers = RefCell::new([Layer {
        pixels,
        stride: WIDTH as usize * 4,
        width: WIDTH,
        height: HEIGHT,
        fourcc: DRM_FORMAT_ABGR8888,
        x: 0,
        y: 0,
        z: 0,
        opacity,
    }]);
    let (item, name, what) = match kind {
        Kind::Opaque => ("5a", "opaque", "opaque"),
        Kind::Translucent => ("5b", "translucent", "translucent, opacity 200"),
    };
    let mut it = Item::new(
        item,
        format!("renderer composite, one {what} 1080p layer"),
        format!("memcpy of the layer's {FRAME_BYTES} bytes"),
        3.5,
    );
    it.measure(
        c,
        "composite_1080p",
        name,
        || {
            let mut o = out.borrow_mut();
            composite(o.as_mut_slice(), WIDTH, HEIGHT, &mut *layers.borrow_mut());
            std::hint::black_box(o.as_slice().as_ptr());
        },
        || {
            let mut o = out.borrow_mut();
            pixels.copy_to(o.as_mut_slice());
            std::hint::black_box(o.as_slice().as_ptr());
        },
    );
    // The last composite must be the layer over the backdrop.
    let mut o = out.borrow_mut();
    composite(o.as_mut_slice(), WIDTH, HEIGHT, &mut *layers.borrow_mut());
    let (x, y) = (WIDTH - 1, HEIGHT - 1);
    let i = ((y * WIDTH + x) * 4) as usize;
    let want = triptych_scene::blend_over(triptych_scene::BACKDROP, layer.texel(x, y), opacity);
    assert_eq!(
        o.as_slice()[i..i + 4],
        want,
        "the compositor's pixel ({x}, {y})"
    );
    it
}
