//! Item 5: the renderer's CPU compositor on one 1080p layer, against a `memcpy` of the same
//! bytes, on the producer's pinned CPU.
//!
//! The compositor is the renderer's own ([`renderer_process::composite`]), called as the frame
//! loop calls it: the layer OVER the backdrop into the output frame (the compositor writes the
//! backdrop only where no layer covers it, so here it blends straight over it).
//! Source and output are shared-memory mappings of sealed memfds, as in the renderer (imported
//! buffer in, output slot out). Two layers are timed, because the compositor has a fast path:
//!
//! - *opaque*: the scene's layer 0 at 1920x1080, alpha 255 everywhere, opacity 255: every pixel
//!   is a copy with a format swizzle;
//! - *translucent*: a scene panel's content at 1920x1080 (alpha 160..255 and an opaque bar) at
//!   opacity 200: every pixel is a full premultiplied blend.
//!
//! The baseline copies the layer's 8 294 400 bytes from the same source mapping to the same output
//! mapping with `copy_from_slice` (a `memcpy`).

use std::os::fd::AsFd;

use anyhow::Context;
use ipc_protocol::frame::DRM_FORMAT_ABGR8888;
use renderer_process::composite::{composite, Layer};
use triptych_scene::LayerContent;
use triptych_sys::mapping::{Access, Mapping};

use super::fixture::{HEIGHT, WIDTH};
use super::stats::{interleave, time_each, Figure, Plan};

/// Bytes of one 1080p RGBA frame.
pub const FRAME_BYTES: usize = WIDTH as usize * HEIGHT as usize * 4;

/// One compositing figure and its `memcpy` baseline.
#[derive(Debug)]
pub struct Measured {
    /// Compositing one layer.
    pub composite: Figure,
    /// Copying its bytes.
    pub memcpy: Figure,
}

fn shared(name: &str) -> anyhow::Result<Mapping> {
    let cname = std::ffi::CString::new(name).context("memfd name")?;
    let fd = triptych_sys::memfd::create_sealed(&cname, FRAME_BYTES as u64)?;
    Ok(Mapping::new(fd.as_fd(), FRAME_BYTES, Access::ReadWrite)?)
}

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

/// Measures compositing a layer of `kind` against `memcpy`, on the calling thread.
pub fn measure(kind: Kind, plan: Plan) -> anyhow::Result<Measured> {
    let (layer, opacity) = content(kind);
    anyhow::ensure!(
        (layer.width, layer.height) == (WIDTH, HEIGHT),
        "the {kind:?} layer is {}x{}, not {WIDTH}x{HEIGHT}",
        layer.width,
        layer.height
    );
    let mut src = shared("triptych-bench-layer")?;
    layer.fill(src.as_mut_slice());
    let src = src;
    let mut out = shared("triptych-bench-output")?;
    // Read as the renderer reads a buffer: as memory another process may write.
    let pixels = src.peer_bytes();
    let mut layers = [Layer {
        pixels,
        stride: WIDTH as usize * 4,
        width: WIDTH,
        height: HEIGHT,
        fourcc: DRM_FORMAT_ABGR8888,
        x: 0,
        y: 0,
        z: 0,
        opacity,
    }];
    let out_cell = std::cell::RefCell::new(&mut out);
    let (c, m) = interleave(
        plan,
        |n, _| {
            time_each(n, |_| {
                let mut o = out_cell.borrow_mut();
                composite(o.as_mut_slice(), WIDTH, HEIGHT, &mut layers);
                std::hint::black_box(o.as_slice().as_ptr());
                Ok(())
            })
        },
        |n, _| {
            time_each(n, |_| {
                let mut o = out_cell.borrow_mut();
                pixels.copy_to(o.as_mut_slice());
                std::hint::black_box(o.as_slice().as_ptr());
                Ok(())
            })
        },
    )?;
    // The last composite must be the layer over the backdrop: a check that the work was done.
    let mut o = out_cell.borrow_mut();
    composite(o.as_mut_slice(), WIDTH, HEIGHT, &mut layers);
    let (x, y) = (WIDTH - 1, HEIGHT - 1);
    let i = ((y * WIDTH + x) * 4) as usize;
    let want = triptych_scene::blend_over(triptych_scene::BACKDROP, layer.texel(x, y), opacity);
    anyhow::ensure!(
        o.as_slice()[i..i + 4] == want,
        "the compositor's pixel ({x}, {y}) is {:?}, expected {want:?}",
        &o.as_slice()[i..i + 4]
    );
    Ok(Measured {
        composite: Figure::of(c, 1),
        memcpy: Figure::of(m, 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layers_composite_correctly() {
        let plan = Plan {
            warmup: 0,
            iterations: 1,
            rounds: 1,
        };
        for kind in [Kind::Opaque, Kind::Translucent] {
            let m = measure(kind, plan).expect("measure");
            assert_eq!(m.composite.iterations, 1);
            assert!(m.memcpy.p50_ns > 0.0);
        }
    }
}
