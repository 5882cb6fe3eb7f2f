//! Drawing into layer targets with scissored clears, copying between targets, and reading
//! targets back into memory.
//!
//! A layer is a background fill and rectangles, each written with replace semantics. They are
//! drawn with scissored clears ([`glScissor`], [`glClear`]), which write the clear colour to every
//! texel in the scissor box with no rasterisation rules, blending or filtering, so the result is
//! exact. GL's window y is used as the scene's row index unchanged: the scene's row 0 is GL's
//! row 0, which is also the first row [`glReadPixels`] returns and the first row in memory of an
//! exported texture, so no flip happens anywhere. Layers of a scene file are drawn with shaders
//! instead, by the same orientation rule ([`super::scene`], through [`GlContext::paint`]).
//!
//! A copy between two targets of one size ([`GlContext::copy_in`]) is a blit of equal
//! rectangles, so no filtering applies either, and a read-back ([`GlContext::read_pixels`])
//! returns the rows in the same order, row 0 first.
//!
//! [`glScissor`]: https://registry.khronos.org/OpenGL-Refpages/es3.0/html/glScissor.xhtml
//! [`glClear`]: https://registry.khronos.org/OpenGL-Refpages/es3.0/html/glClear.xhtml
//! [`glReadPixels`]: https://registry.khronos.org/OpenGL-Refpages/es3.0/html/glReadPixels.xhtml

use std::rc::Rc;

use glow::HasContext;
use ipc_protocol::damage::Region;
use triptych_scene::LayerContent;

use super::context::GlContext;
use super::error::GlError;
use super::targets::LayerTarget;

impl GlContext {
    /// Copies the texels of `source` inside `region` into `target`, unchanged (a blit of equal
    /// rectangles between two RGBA8 framebuffers, no scaling, so no filtering applies: ES 3.0
    /// section 4.3.3); every other texel of `target` keeps what it held.
    pub fn copy_in(
        &mut self,
        target: &LayerTarget,
        source: &LayerTarget,
        region: &Region,
    ) -> Result<(), GlError> {
        if !Rc::ptr_eq(&self.shared, &target.shared) || !Rc::ptr_eq(&self.shared, &source.shared) {
            return Err(GlError::ForeignObject {
                what: "copied target",
            });
        }
        if (source.width, source.height) != (target.width, target.height) {
            return Err(GlError::SizeMismatch {
                content_width: source.width,
                content_height: source.height,
                width: target.width,
                height: target.height,
            });
        }
        if region.is_empty() {
            return Ok(());
        }
        self.shared.make_current()?;
        let gl = &self.shared.gl;
        let (w, h) = (target.width, target.height);
        // SAFETY: context current; both framebuffers are live, complete names of this context
        // (same `Shared`, checked above) with RGBA8 colour attachments of the same size. Every
        // rectangle is inside both (`fits`), and their sides fit in i32 (the targets were made
        // with them, checked against GL_MAX_TEXTURE_SIZE). The scissor test, which applies to
        // blits, is off. Bindings are restored to 0.
        unsafe {
            gl.bind_framebuffer(glow::READ_FRAMEBUFFER, source.framebuffer);
            gl.bind_framebuffer(glow::DRAW_FRAMEBUFFER, target.framebuffer);
            gl.disable(glow::SCISSOR_TEST);
            for r in region.rects().iter().filter(|r| r.fits(w, h)) {
                let (x0, y0) = (r.x as i32, r.y as i32);
                let (x1, y1) = (x0 + r.w as i32, y0 + r.h as i32);
                gl.blit_framebuffer(
                    x0,
                    y0,
                    x1,
                    y1,
                    x0,
                    y0,
                    x1,
                    y1,
                    glow::COLOR_BUFFER_BIT,
                    glow::NEAREST,
                );
            }
            gl.bind_framebuffer(glow::READ_FRAMEBUFFER, None);
            gl.bind_framebuffer(glow::DRAW_FRAMEBUFFER, None);
        }
        self.shared.check("glBlitFramebuffer(copy)")
    }

    /// Draws `content` into `target`: the background over the whole texture, then each rectangle
    /// in order, each as a scissored clear. Rectangles are clipped to the texture.
    ///
    /// The commands are queued; use [`GlContext::finish`], a [`super::GlFence`] or a
    /// [`super::NativeFence`] to know when they completed.
    pub fn draw(&mut self, target: &LayerTarget, content: &LayerContent) -> Result<(), GlError> {
        let all = Region::full(target.width, target.height);
        self.draw_in(target, content, &all)
    }

    /// [`GlContext::draw`], writing only the texels inside `region` (damage): every clear is
    /// cut to each of the region's rectangles, so what lies outside keeps what it held.
    pub fn draw_in(
        &mut self,
        target: &LayerTarget,
        content: &LayerContent,
        region: &Region,
    ) -> Result<(), GlError> {
        if (content.width, content.height) != (target.width, target.height) {
            return Err(GlError::SizeMismatch {
                content_width: content.width,
                content_height: content.height,
                width: target.width,
                height: target.height,
            });
        }
        self.clears(target, Some(content.background), &content.rects, region)
    }

    /// Draws the hover outline ([`triptych_scene::highlight_rects`] in
    /// [`triptych_scene::HIGHLIGHT`]) over what `target` holds inside `region`, as scissored
    /// clears.
    pub fn outline(&mut self, target: &LayerTarget, region: &Region) -> Result<(), GlError> {
        let rects = triptych_scene::highlight_rects(target.width, target.height)
            .map(|r| (r, triptych_scene::HIGHLIGHT));
        self.clears(target, None, &rects, region)
    }

    /// `background` over the whole of `target`, if given, then each of `rects` (clipped to it),
    /// as scissored clears, each cut to every rectangle of `region`.
    fn clears(
        &mut self,
        target: &LayerTarget,
        background: Option<[u8; 4]>,
        rects: &[(triptych_scene::Rect, [u8; 4])],
        region: &Region,
    ) -> Result<(), GlError> {
        self.owns(&target.shared, "layer target")?;
        if region.is_empty() {
            return Ok(());
        }
        self.shared.make_current()?;
        let gl = &self.shared.gl;
        let clear = |rect: [i32; 4], c: [u8; 4]| {
            let f = |v: u8| f32::from(v) / 255.0;
            // SAFETY: context current; a DRAW_FRAMEBUFFER is bound (below, before any call);
            // the scissor box has non-negative size (clipped by `clip` and `cut`); glClear of
            // the colour bit is valid on a complete framebuffer.
            unsafe {
                gl.scissor(rect[0], rect[1], rect[2], rect[3]);
                gl.clear_color(f(c[0]), f(c[1]), f(c[2]), f(c[3]));
                gl.clear(glow::COLOR_BUFFER_BIT);
            }
        };
        // SAFETY: context current; the framebuffer is a live name of this context and complete
        // (checked in `create_target`). The state set here is exactly what glClear depends on:
        // scissor test on, all channels writable, no dithering, no rasterizer discard.
        unsafe {
            gl.bind_framebuffer(glow::DRAW_FRAMEBUFFER, target.framebuffer);
            gl.disable(glow::DITHER);
            gl.disable(glow::RASTERIZER_DISCARD);
            gl.color_mask(true, true, true, true);
            gl.enable(glow::SCISSOR_TEST);
        }
        let whole = triptych_scene::Rect {
            x: 0,
            y: 0,
            w: target.width,
            h: target.height,
        };
        let background = background.map(|b| (whole, b));
        for area in region.rects() {
            let area = [area.x, area.y, area.w, area.h];
            for (rect, colour) in background.iter().chain(rects) {
                if let Some(r) = clip(rect, target.width, target.height).and_then(|r| cut(r, area))
                {
                    clear(r, *colour);
                }
            }
        }
        // SAFETY: context current; restores the default bindings and scissor state.
        unsafe {
            gl.disable(glow::SCISSOR_TEST);
            gl.bind_framebuffer(glow::DRAW_FRAMEBUFFER, None);
        }
        self.shared.check("draw (glScissor/glClear)")
    }

    /// Copies `target` into `out` as tightly packed RGBA8 rows, row 0 first (the scene's row 0).
    ///
    /// `out.len()` must be exactly `width * height * 4`. Waits for drawing to finish (as
    /// `glReadPixels` into client memory does).
    pub fn read_pixels(&mut self, target: &LayerTarget, out: &mut [u8]) -> Result<(), GlError> {
        let all = Region::full(target.width, target.height);
        self.read_pixels_in(target, out, &all)
    }

    /// [`GlContext::read_pixels`] of the texels inside `region` only: each rectangle lands at
    /// its own place in `out`, whose other bytes are left as they are.
    pub fn read_pixels_in(
        &mut self,
        target: &LayerTarget,
        out: &mut [u8],
        region: &Region,
    ) -> Result<(), GlError> {
        self.owns(&target.shared, "layer target")?;
        let needed = target.byte_len();
        if out.len() != needed {
            return Err(GlError::BufferSize {
                got: out.len(),
                needed,
                width: target.width,
                height: target.height,
            });
        }
        if region.is_empty() {
            return Ok(());
        }
        self.shared.make_current()?;
        let gl = &self.shared.gl;
        // SAFETY: context current; the framebuffer is a live, complete name of this context.
        // No buffer is bound to PIXEL_PACK_BUFFER, so the pointer is client memory. With
        // alignment 4, a row length of the target's width, and rows and pixels skipped to the
        // rectangle's corner, glReadPixels of a w x h rectangle at (x, y) writes, for each of
        // its rows r, 4 * w bytes at byte (((y + r) * width + x) * 4) from the pointer, all
        // inside `out` because the rectangle lies inside the target (checked below, before
        // each call) and `out.len()` is `width * height * 4`; `out` is exclusively borrowed.
        unsafe {
            gl.bind_framebuffer(glow::READ_FRAMEBUFFER, target.framebuffer);
            gl.bind_buffer(glow::PIXEL_PACK_BUFFER, None);
            gl.pixel_store_i32(glow::PACK_ALIGNMENT, 4);
            gl.pixel_store_i32(glow::PACK_ROW_LENGTH, target.width as i32);
            let inside = region.placed(0, 0, target.width, target.height);
            for r in inside.rects() {
                // Inside the target, whose sides fit in i32 (checked in `create_target`).
                gl.pixel_store_i32(glow::PACK_SKIP_PIXELS, r.x as i32);
                gl.pixel_store_i32(glow::PACK_SKIP_ROWS, r.y as i32);
                gl.read_pixels(
                    r.x as i32,
                    r.y as i32,
                    r.w as i32,
                    r.h as i32,
                    glow::RGBA,
                    glow::UNSIGNED_BYTE,
                    glow::PixelPackData::Slice(Some(&mut *out)),
                );
            }
            gl.pixel_store_i32(glow::PACK_ROW_LENGTH, 0);
            gl.pixel_store_i32(glow::PACK_SKIP_PIXELS, 0);
            gl.pixel_store_i32(glow::PACK_SKIP_ROWS, 0);
            gl.bind_framebuffer(glow::READ_FRAMEBUFFER, None);
        }
        self.shared.check("glReadPixels(RGBA, UNSIGNED_BYTE)")
    }
}

/// The part of scissor box `r` (x, y, w, h) inside `area` (x, y, w, h of a damage rectangle
/// inside the target), if any.
fn cut(r: [i32; 4], area: [u32; 4]) -> Option<[i32; 4]> {
    // `area` lies inside the target, whose sides fit in i32.
    let a = area.map(|v| v as i64);
    let r = r.map(i64::from);
    let x0 = r[0].max(a[0]);
    let y0 = r[1].max(a[1]);
    let x1 = (r[0] + r[2]).min(a[0] + a[2]);
    let y1 = (r[1] + r[3]).min(a[1] + a[3]);
    if x0 >= x1 || y0 >= y1 {
        return None;
    }
    Some([x0 as i32, y0 as i32, (x1 - x0) as i32, (y1 - y0) as i32])
}

/// `rect` clipped to a `width` x `height` texture as a GL scissor box `[x, y, w, h]`, or `None`
/// when nothing is left. Row `y` of the scene is GL window row `y` (no flip).
fn clip(rect: &triptych_scene::Rect, width: u32, height: u32) -> Option<[i32; 4]> {
    if rect.x >= width || rect.y >= height {
        return None;
    }
    let w = rect.w.min(width - rect.x);
    let h = rect.h.min(height - rect.y);
    if w == 0 || h == 0 {
        return None;
    }
    // All four are <= width/height, which fit in i32 (checked in `create_target`).
    Some([rect.x as i32, rect.y as i32, w as i32, h as i32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use triptych_scene::{layer_content, Rect};

    use crate::gl::PlatformRequest;

    fn context() -> GlContext {
        match GlContext::new(PlatformRequest::Auto) {
            Ok(c) => c,
            // Deliberately a failure, not a skip: the GPU process cannot run without EGL.
            Err(e) => panic!("creating a GL context failed: {e}"),
        }
    }

    fn cpu(content: &LayerContent) -> Vec<u8> {
        let mut v = vec![0u8; content.width as usize * content.height as usize * 4];
        content.fill(&mut v);
        v
    }

    fn first_difference(got: &[u8], want: &[u8], width: u32) -> Option<String> {
        got.chunks_exact(4)
            .zip(want.chunks_exact(4))
            .enumerate()
            .find(|(_, (g, w))| g != w)
            .map(|(i, (g, w))| {
                format!(
                    "pixel ({}, {}): got {g:?}, want {w:?}",
                    i as u32 % width,
                    i as u32 / width
                )
            })
    }

    #[test]
    fn draws_scene_layers_exactly() {
        let mut gl = context();
        // Odd sizes, a 1x1, and layer sizes of a small frame; layer 0 is the frame size.
        for &(fw, fh) in &[(33u32, 17u32), (1, 1), (64, 48), (101, 67)] {
            for layer in 0..3 {
                let (w, h) = triptych_scene::layer_size(layer, fw, fh);
                let target = gl.create_target(w, h).expect("create target");
                let mut got = vec![0u8; target.byte_len()];
                for frame in [0u64, 1, 2, 5, 31, 32, 1000] {
                    let content = layer_content(frame, layer, fw, fh);
                    gl.draw(&target, &content).expect("draw");
                    gl.read_pixels(&target, &mut got).expect("read back");
                    let want = cpu(&content);
                    assert!(
                        got == want,
                        "frame {frame} layer {layer} of {fw}x{fh} ({w}x{h}) differs: {}",
                        first_difference(&got, &want, w).unwrap_or_default()
                    );
                }
            }
        }
    }

    /// Rows are not flipped: a rect in the top rows of the scene is in the first bytes.
    #[test]
    fn row_zero_is_scene_row_zero() {
        let mut gl = context();
        let target = gl.create_target(4, 3).expect("create target");
        let content = LayerContent {
            width: 4,
            height: 3,
            background: [0, 0, 0, 255],
            rects: vec![(
                Rect {
                    x: 1,
                    y: 0,
                    w: 2,
                    h: 1,
                },
                [255, 0, 0, 255],
            )],
        };
        gl.draw(&target, &content).expect("draw");
        let mut got = vec![0u8; 48];
        gl.read_pixels(&target, &mut got).expect("read back");
        assert_eq!(
            &got[4..8],
            &[255, 0, 0, 255],
            "row 0 must hold the rect: {got:?}"
        );
        assert_eq!(&got[16 + 4..16 + 8], &[0, 0, 0, 255]);
    }

    #[test]
    fn rects_past_the_edge_are_clipped_like_the_cpu() {
        let mut gl = context();
        let target = gl.create_target(7, 5).expect("create target");
        let content = LayerContent {
            width: 7,
            height: 5,
            background: [1, 2, 3, 4],
            rects: vec![
                (
                    Rect {
                        x: 5,
                        y: 3,
                        w: 10,
                        h: 10,
                    },
                    [9, 9, 9, 9],
                ),
                (
                    Rect {
                        x: 7,
                        y: 0,
                        w: 3,
                        h: 3,
                    },
                    [200, 0, 0, 255],
                ),
                (
                    Rect {
                        x: 0,
                        y: 0,
                        w: 0,
                        h: 5,
                    },
                    [0, 200, 0, 255],
                ),
            ],
        };
        gl.draw(&target, &content).expect("draw");
        let mut got = vec![0u8; target.byte_len()];
        gl.read_pixels(&target, &mut got).expect("read back");
        assert_eq!(got, cpu(&content));
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let mut gl = context();
        let target = gl.create_target(8, 8).expect("create target");
        let mut small = vec![0u8; 8 * 8 * 4 - 1];
        match gl.read_pixels(&target, &mut small) {
            Err(GlError::BufferSize {
                got: 255,
                needed: 256,
                ..
            }) => {}
            other => panic!("expected BufferSize, got {other:?}"),
        }
        match gl.draw(&target, &layer_content(0, 0, 9, 8)) {
            Err(GlError::SizeMismatch {
                content_width: 9,
                width: 8,
                ..
            }) => {}
            other => panic!("expected SizeMismatch, got {other:?}"),
        }
        assert!(matches!(
            gl.create_target(0, 4),
            Err(GlError::BadSize { width: 0, .. })
        ));
        let too_big = gl.info().max_texture_size + 1;
        assert!(matches!(
            gl.create_target(too_big, 4),
            Err(GlError::BadSize { .. })
        ));
    }

    #[test]
    fn targets_of_another_context_are_refused() {
        let mut a = context();
        let mut b = context();
        let ta = a.create_target(4, 4).expect("target a");
        let tb = b.create_target(4, 4).expect("target b");
        assert!(matches!(
            b.draw(&ta, &layer_content(0, 1, 8, 8)),
            Err(GlError::ForeignObject { .. })
        ));
        // Interleaved use of two contexts on one thread keeps each drawing its own objects.
        let ca = layer_content(3, 1, 8, 8);
        let cb = layer_content(4, 1, 8, 8);
        a.draw(&ta, &ca).expect("draw a");
        b.draw(&tb, &cb).expect("draw b");
        let mut got = vec![0u8; 64];
        a.read_pixels(&ta, &mut got).expect("read a");
        assert_eq!(got, cpu(&ca));
        b.read_pixels(&tb, &mut got).expect("read b");
        assert_eq!(got, cpu(&cb));
    }

    /// Draw + read-back time for a 1920x1080 layer, printed for the record (run with
    /// `--ignored --nocapture`); asserts only correctness.
    #[test]
    #[ignore = "timing measurement"]
    fn time_draw_and_readback_1080p() {
        let mut gl = context();
        let target = gl.create_target(1920, 1080).expect("target");
        let mut got = vec![0u8; target.byte_len()];
        let mut draw = Duration::ZERO;
        let mut read = Duration::ZERO;
        let frames = 60u64;
        for frame in 0..frames {
            let content = layer_content(frame, 0, 1920, 1080);
            let t0 = Instant::now();
            gl.draw(&target, &content).expect("draw");
            gl.finish().expect("finish");
            let t1 = Instant::now();
            gl.read_pixels(&target, &mut got).expect("read");
            read += t1.elapsed();
            draw += t1 - t0;
            if frame == frames - 1 {
                assert_eq!(got, cpu(&content));
            }
        }
        eprintln!(
            "1920x1080 over {frames} frames: draw+finish {:?}/frame, glReadPixels {:?}/frame",
            draw / frames as u32,
            read / frames as u32
        );
    }
}
