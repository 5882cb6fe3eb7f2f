//! What changed in each layer, and what each reused buffer must have redrawn: buffer age.
//!
//! Every submission of a layer carries its *content damage*: the texels that differ from the
//! layer's previous submission ([`content_damage`], from the two paints alone). Buffers come
//! back from the renderer and are drawn into again, so a buffer that last held submission `m`
//! of its layer and now takes submission `n` misses the damage of every submission after `m`:
//! the union of the damage of `m + 1 ..= n`, which is what `EGL_EXT_buffer_age` leaves an
//! application to redraw for a back buffer of age `n - m`. [`History`] keeps each layer's last
//! [`DEPTH`] damages; a buffer older than that, or never drawn, or of another size, is redrawn
//! whole. (The renderer keeps the same history for its output slots.)
//!
//! The proof that this is right is a property test below: for random sequences of paints and
//! random buffer choices (every age, new buffers, sizes changing), a buffer drawn only where
//! [`History::redraw`] says holds exactly the texels of drawing it whole.

pub use ipc_protocol::damage::{History, DEPTH};
use ipc_protocol::damage::{Rect, Region};
use triptych_scene::LayerContent;

use crate::gl::Paint;

/// The texels that differ between two paints of a layer; the whole layer when they cannot be
/// compared texel by texel (another size, another kind).
pub fn content_damage(before: &Paint, after: &Paint) -> Region {
    let (w, h) = after.size();
    if before.size() != (w, h) {
        return Region::full(w, h);
    }
    match (before, after) {
        (Paint::Rects(a), Paint::Rects(b)) => rects_damage(a, b),
        // The hover outline is drawn over the layer: the same outline over changed content
        // damages what the content damages.
        (Paint::Outlined(a), Paint::Outlined(b)) => content_damage(a, b),
        // The same upload (the overlay with unchanged text) is the same texels; another upload
        // is new text, drawn whole.
        (Paint::Copied(a), Paint::Copied(b)) => {
            if std::rc::Rc::ptr_eq(a, b) {
                Region::new()
            } else {
                Region::full(w, h)
            }
        }
        (Paint::Scene { state: a, .. }, Paint::Scene { state: b, drawer }) => {
            // What the layer's texture holds: the kind and its parameters, the size it is laid
            // out at, the scroll, and the turn and scale (drawn into the texture, the layer's
            // quad inside its bounds). Position, opacity and z are placement.
            let laid_out_alike = a.index == b.index
                && a.scroll == b.scroll
                && a.rotation == b.rotation
                && a.scale == b.scale
                && (a.rect.w, a.rect.h) == (b.rect.w, b.rect.h)
                && (a.rect.x - a.bounds.x, a.rect.y - a.bounds.y)
                    == (b.rect.x - b.bounds.x, b.rect.y - b.bounds.y);
            if !laid_out_alike {
                return Region::full(w, h);
            }
            if a.content == b.content {
                return Region::new();
            }
            patched_damage(a, b, drawer).unwrap_or_else(|| Region::full(w, h))
        }
        _ => Region::full(w, h),
    }
}

/// The damage of a pixels layer, laid out alike in `a` and `b`, whose pixels changed only by
/// the rectangles `drawer` patched in between: each rectangle where it is drawn, one texel
/// wider each way where the pixels are scaled (a scaled texel, and linear sampling, reach
/// their neighbours). `None` (damaged whole) for anything else: other changes, a turned,
/// scaled or scrolled layer, serials no longer remembered.
fn patched_damage(
    a: &triptych_scene::file::LayerState,
    b: &triptych_scene::file::LayerState,
    drawer: &crate::gl::SceneDrawer,
) -> Option<Region> {
    use triptych_scene::file::{Content, Sampling};
    let (
        Content::Pixels {
            width,
            height,
            sampling,
            serial: from,
        },
        Content::Pixels {
            width: w1,
            height: h1,
            sampling: s1,
            serial: to,
        },
    ) = (&a.content, &b.content)
    else {
        return None;
    };
    if (width, height, sampling) != (w1, h1, s1)
        || !b.rotation.is_zero()
        || b.scale != 1000
        || b.scroll != (0, 0)
        || (b.rect.w, b.rect.h) != (b.bounds.w, b.bounds.h)
    {
        return None;
    }
    let slot = u32::try_from(b.index).ok()?;
    let rects = drawer.patched(slot, *from, *to)?;
    let (lw, lh) = (b.rect.w, b.rect.h);
    let exact = (*width, *height) == (lw, lh) && *sampling == Sampling::Nearest;
    let margin = i64::from(!exact);
    // A pixel column `c` of `width` is drawn over layer columns `c * lw / width` onwards.
    let scale =
        |v: u32, from: u32, to: u32| (u64::from(v) * u64::from(to)) / u64::from(from.max(1));
    let scale_up = |v: u32, from: u32, to: u32| {
        (u64::from(v) * u64::from(to)).div_ceil(u64::from(from.max(1)))
    };
    let mut region = Region::new();
    for (x, y, rw, rh) in rects {
        let x0 = scale(x, *width, lw) as i64 - margin;
        let y0 = scale(y, *height, lh) as i64 - margin;
        let x1 = scale_up(x + rw, *width, lw) as i64 + margin;
        let y1 = scale_up(y + rh, *height, lh) as i64 + margin;
        let (x0, y0) = (x0.max(0), y0.max(0));
        let (cw, ch) = (
            u32::try_from((x1 - x0).max(0)).ok()?,
            u32::try_from((y1 - y0).max(0)).ok()?,
        );
        if let Some(r) = Rect::clipped(x0, y0, cw, ch, lw, lh) {
            region.add(r);
        }
    }
    Some(region)
}

/// The built-in scene's layers are a fill and rectangles written over it in order: a texel can
/// change only where the fill changed (everywhere) or inside the old or new place of a
/// rectangle that changed.
fn rects_damage(a: &LayerContent, b: &LayerContent) -> Region {
    let full = Region::full(b.width, b.height);
    if a.background != b.background || a.rects.len() != b.rects.len() {
        return full;
    }
    let clip = |r: &triptych_scene::Rect| {
        Rect::clipped(i64::from(r.x), i64::from(r.y), r.w, r.h, b.width, b.height)
    };
    let mut region = Region::new();
    for (old, new) in a.rects.iter().zip(&b.rects) {
        if old != new {
            for r in [clip(&old.0), clip(&new.0)].into_iter().flatten() {
                region.add(r);
            }
        }
    }
    region
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use triptych_scene::Rect as SceneRect;

    /// A layer's content from a test's choices: a background and up to three rectangles.
    fn content(w: u32, h: u32, bg: u8, rects: &[TestRect]) -> LayerContent {
        LayerContent {
            width: w,
            height: h,
            background: [bg, bg, bg, 255],
            rects: rects
                .iter()
                .map(|&(x, y, rw, rh, c)| (SceneRect { x, y, w: rw, h: rh }, [c, 0, c, 255]))
                .collect(),
        }
    }

    /// Draws `c` into `buf` only inside `region`, as the GPU process's scissor does.
    fn draw(buf: &mut Vec<[u8; 4]>, c: &LayerContent, region: &Region) {
        buf.resize((c.width * c.height) as usize, [0; 4]);
        for y in 0..c.height {
            for x in 0..c.width {
                if region.contains(x, y) {
                    buf[(y * c.width + x) as usize] = c.texel(x, y);
                }
            }
        }
    }

    fn whole(c: &LayerContent) -> Vec<[u8; 4]> {
        let mut b = Vec::new();
        draw(&mut b, c, &Region::full(c.width, c.height));
        b
    }

    /// A rectangle of a test layer and its colour.
    type TestRect = (u32, u32, u32, u32, u8);
    /// A pool buffer of the test: the submission it holds, its texels and its size.
    type TestBuffer = (Option<u64>, Vec<[u8; 4]>, (u32, u32));

    /// One step: the content of the next submission, and which of four buffers takes it.
    fn step() -> impl Strategy<Value = ((u32, u32), u8, Vec<TestRect>, usize)> {
        (
            prop_oneof![9 => Just((12u32, 9u32)), 1 => Just((7u32, 5u32))],
            0u8..2,
            prop::collection::vec((0u32..14, 0u32..11, 0u32..8, 0u32..8, 0u8..3), 0..3),
            0usize..4,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn buffer_age_redraws_exactly_what_a_buffer_misses(steps in prop::collection::vec(step(), 1..40)) {
            let mut history = History::default();
            // Four buffers: what each holds, its pixels and its size.
            let mut buffers: Vec<TestBuffer> =
                vec![(None, Vec::new(), (0, 0)); 4];
            let mut previous: Option<Paint> = None;
            for ((w, h), bg, rects, pick) in steps {
                let c = content(w, h, bg, &rects);
                let paint = Paint::Rects(c.clone());
                let damage = match &previous {
                    Some(p) => content_damage(p, &paint),
                    None => Region::full(w, h),
                };
                let seq = history.push(damage);
                let (held, pixels, size) = &mut buffers[pick];
                let known = if *size == (w, h) { *held } else { None };
                let redraw = history.redraw(known, seq, w, h);
                // What the GL calls are given lies inside the buffer, as they need.
                prop_assert!(redraw.rects().iter().all(|r| r.fits(w, h)), "{:?}", redraw);
                draw(pixels, &c, &redraw);
                *held = Some(seq);
                *size = (w, h);
                prop_assert_eq!(&*pixels, &whole(&c));
                previous = Some(paint);
            }
        }
    }

    #[test]
    fn an_unchanged_layer_redraws_nothing_and_a_moved_bar_only_its_two_places() {
        let a = Paint::Rects(content(64, 64, 1, &[(0, 0, 8, 64, 2)]));
        assert!(content_damage(&a, &a).is_empty());
        let b = Paint::Rects(content(64, 64, 1, &[(1, 0, 8, 64, 2)]));
        let d = content_damage(&a, &b);
        assert_eq!(d.area(), 9 * 64);
        let c = Paint::Rects(content(64, 64, 3, &[(1, 0, 8, 64, 2)]));
        assert_eq!(content_damage(&b, &c).area(), 64 * 64);
    }

    #[test]
    fn an_overlay_with_the_same_text_is_undamaged_and_new_text_damages_all_of_it() {
        // The GPU process uploads new texels only for new text: the same upload is the same
        // content, another is damaged whole; a hidden overlay (one transparent texel) likewise.
        let mut gl =
            crate::gl::GlContext::new(crate::gl::PlatformRequest::Auto).expect("a GL context");
        let up = |gl: &mut crate::gl::GlContext| {
            std::rc::Rc::new(gl.upload_target(4, 3, &[9; 48]).expect("upload"))
        };
        let (a, b) = (up(&mut gl), up(&mut gl));
        let pa = Paint::Copied(std::rc::Rc::clone(&a));
        assert!(content_damage(&pa, &Paint::Copied(std::rc::Rc::clone(&a))).is_empty());
        assert_eq!(content_damage(&pa, &Paint::Copied(b)).area(), 12);
        let hidden = Paint::Rects(content(1, 1, 0, &[]));
        assert!(content_damage(&hidden, &hidden.clone()).is_empty());
        assert_eq!(content_damage(&hidden, &pa).area(), 12);
        assert_eq!(content_damage(&pa, &hidden).area(), 1);
    }

    #[test]
    fn a_buffer_too_old_or_never_drawn_is_redrawn_whole() {
        let mut h = History::default();
        for _ in 0..DEPTH + 2 {
            h.push(Region::new());
        }
        let now = DEPTH as u64 + 1;
        assert_eq!(h.redraw(None, now, 4, 4).area(), 16);
        assert_eq!(h.redraw(Some(0), now, 4, 4).area(), 16);
        assert!(h.redraw(Some(now - 3), now, 4, 4).is_empty());
    }
}
