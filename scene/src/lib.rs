//! The deterministic scene that triptych renders.
//!
//! Everything here is a pure function of the frame number, the layer index and the frame size, so
//! the GPU process can draw it, the renderer can place it, and a test can predict every pixel of
//! the composited result without running any of them.
//!
//! A layer is drawn as a background fill followed by solid rectangles, each written with
//! replace semantics (scissored clears in GL), so the rendered texels are exact: no filtering,
//! no blending, no rasterisation rules to guess. Colours are premultiplied RGBA8.
//!
//! Coordinates are top-down: row 0 is the first row in memory of a layer buffer and of the
//! composited frame. The GPU process keeps that orientation by using GL's window y directly as
//! the scene's row index, so no flip is needed on read-back or export.
//!
//! The composite is premultiplied-alpha OVER ([Porter and Duff, 1984]) in ascending `z`, each
//! layer scaled by its opacity, over an opaque backdrop. [`blend_over`] is the one definition
//! of that arithmetic, in integers with round-to-nearest, used by the renderer and by the
//! predictions alike.
//!
//! Scenes can also be described in a TOML file instead of this built-in one: [`file`](mod@file)
//! holds that format's model, parser, per-frame evaluation and CPU reference.
//!
//! [Porter and Duff, 1984]: https://keithp.com/~keithp/porterduff/p253-porter.pdf
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod file;
pub mod overlay;
pub mod text;

use serde::{Deserialize, Serialize};

/// The colour of the backdrop the layers are composited over: opaque, premultiplied.
pub const BACKDROP: [u8; 4] = [16, 16, 24, 255];

/// The largest number of layers a scene has.
pub const MAX_LAYERS: u32 = 8;

/// A rectangle in top-down pixel coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rect {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width in pixels.
    pub w: u32,
    /// Height in pixels.
    pub h: u32,
}

impl Rect {
    /// Whether the pixel at (`x`, `y`) lies inside.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x && y >= self.y && x - self.x < self.w && y - self.y < self.h
    }
}

/// What one layer's texture holds: a fill, then rectangles written over it in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerContent {
    /// Width of the layer texture in pixels.
    pub width: u32,
    /// Height of the layer texture in pixels.
    pub height: u32,
    /// The fill, premultiplied RGBA8.
    pub background: [u8; 4],
    /// Rectangles, each replacing the texels it covers, premultiplied RGBA8.
    pub rects: Vec<(Rect, [u8; 4])>,
}

impl LayerContent {
    /// The texel at (`x`, `y`) of this layer.
    pub fn texel(&self, x: u32, y: u32) -> [u8; 4] {
        self.rects
            .iter()
            .rev()
            .find(|(r, _)| r.contains(x, y))
            .map_or(self.background, |(_, c)| *c)
    }

    /// Fills `out` (tightly packed rows of `width * 4` bytes) with this layer on the CPU.
    ///
    /// Used by tests and benchmarks to produce reference buffers; the GPU process draws the
    /// same content with GL.
    pub fn fill(&self, out: &mut [u8]) {
        let stride = self.width as usize * 4;
        for (y, row) in out
            .chunks_exact_mut(stride)
            .take(self.height as usize)
            .enumerate()
        {
            for (x, px) in row.chunks_exact_mut(4).enumerate() {
                px.copy_from_slice(&self.texel(x as u32, y as u32));
            }
        }
    }
}

/// Where and how a layer is composited into the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Left edge in frame pixels; may be negative or past the frame (the layer is clipped).
    pub x: i32,
    /// Top edge in frame pixels; may be negative or past the frame (the layer is clipped).
    pub y: i32,
    /// Stacking order: lower values are drawn first.
    pub z: i32,
    /// Opacity, 0 (invisible) to 255 (as drawn).
    pub opacity: u8,
}

/// Offsets the user gave layers by dragging them, added to their animated placement. Layer 0,
/// the background, does not move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moves {
    /// `(dx, dy)` of each layer.
    pub offsets: [(i32, i32); MAX_LAYERS as usize],
}

impl Moves {
    /// Moves `layer` by (`dx`, `dy`) more, saturating; layer 0 and unknown layers stay put.
    pub fn add(&mut self, layer: u32, dx: i32, dy: i32) {
        if layer == 0 {
            return;
        }
        if let Some(o) = self.offsets.get_mut(layer as usize) {
            o.0 = o.0.saturating_add(dx).clamp(-16384, 16384);
            o.1 = o.1.saturating_add(dy).clamp(-16384, 16384);
        }
    }
}

/// [`placement`], moved by `moves`.
pub fn placement_moved(
    frame: u64,
    layer: u32,
    layers: u32,
    frame_w: u32,
    frame_h: u32,
    moves: &Moves,
) -> Placement {
    let mut p = placement(frame, layer, layers, frame_w, frame_h);
    if let Some((dx, dy)) = moves.offsets.get(layer as usize) {
        p.x = p.x.saturating_add(*dx);
        p.y = p.y.saturating_add(*dy);
    }
    p
}

/// The topmost layer (but the background) whose rectangle holds (`x`, `y`) in frame `frame`,
/// with `moves` applied: the one a press at that point picks up.
pub fn layer_at(
    frame: u64,
    layers: u32,
    frame_w: u32,
    frame_h: u32,
    moves: &Moves,
    (x, y): (i32, i32),
) -> Option<u32> {
    (1..layers.min(MAX_LAYERS))
        .map(|l| {
            (
                placement_moved(frame, l, layers, frame_w, frame_h, moves),
                l,
            )
        })
        .filter(|(p, l)| {
            let (w, h) = layer_size(*l, frame_w, frame_h);
            x >= p.x
                && y >= p.y
                && i64::from(x - p.x) < i64::from(w)
                && i64::from(y - p.y) < i64::from(h)
        })
        .max_by_key(|(p, l)| (p.z, *l))
        .map(|(_, l)| l)
}

/// The colour of the outline a hovered layer gets (premultiplied RGBA8: opaque white). It is
/// drawn into the layer's texture, so it is composited with the layer's opacity like the rest.
pub const HIGHLIGHT: [u8; 4] = [255, 255, 255, 255];

/// How wide the outline of a hovered layer is, in layer pixels.
pub const HIGHLIGHT_WIDTH: u32 = 3;

/// The outline a hovered `w` x `h` layer texture gets: four rectangles along its edges, inside
/// it (top, bottom, left, right; they overlap at the corners, and cover all of a layer at most
/// twice [`HIGHLIGHT_WIDTH`] wide or high).
pub fn highlight_rects(w: u32, h: u32) -> [Rect; 4] {
    let t = HIGHLIGHT_WIDTH.min(w).min(h);
    [
        Rect {
            x: 0,
            y: 0,
            w,
            h: t,
        },
        Rect {
            x: 0,
            y: h - t,
            w,
            h: t,
        },
        Rect {
            x: 0,
            y: 0,
            w: t,
            h,
        },
        Rect {
            x: w - t,
            y: 0,
            w: t,
            h,
        },
    ]
}

/// Whether texel (`x`, `y`) of a `w` x `h` layer lies on its hover outline.
pub fn on_highlight(w: u32, h: u32, x: u32, y: u32) -> bool {
    highlight_rects(w, h).iter().any(|r| r.contains(x, y))
}

/// `content` with the hover outline drawn over it (the rectangles are written last).
pub fn highlighted(mut content: LayerContent) -> LayerContent {
    let rects = highlight_rects(content.width, content.height);
    content.rects.extend(rects.iter().map(|r| (*r, HIGHLIGHT)));
    content
}

/// The size of layer `layer`'s texture in a frame of `frame_w` x `frame_h`.
///
/// Layer 0 covers the whole frame; the others are smaller panels.
pub fn layer_size(layer: u32, frame_w: u32, frame_h: u32) -> (u32, u32) {
    if layer == 0 {
        (frame_w.max(1), frame_h.max(1))
    } else {
        ((frame_w / 2).max(1), (frame_h / 2).max(1))
    }
}

/// A colour that depends on the frame and the layer, premultiplied with alpha `a`.
fn colour(frame: u64, layer: u32, salt: u32, a: u8) -> [u8; 4] {
    // A small integer hash keeps neighbouring frames visibly different and fully determined.
    let mut v = (frame as u32)
        .wrapping_mul(0x9E37_79B1)
        .wrapping_add(layer.wrapping_mul(0x85EB_CA6B))
        .wrapping_add(salt.wrapping_mul(0xC2B2_AE35));
    v ^= v >> 15;
    v = v.wrapping_mul(0x2C1B_3C6D);
    v ^= v >> 12;
    let [r, g, b, _] = v.to_le_bytes();
    let premul = |c: u8| ((u32::from(c) * u32::from(a) + 127) / 255) as u8;
    [premul(r), premul(g), premul(b), a]
}

/// The content of layer `layer` at frame `frame`.
pub fn layer_content(frame: u64, layer: u32, frame_w: u32, frame_h: u32) -> LayerContent {
    let (w, h) = layer_size(layer, frame_w, frame_h);
    // Layer 0 is opaque; the panels above it are translucent so that blending is exercised.
    let alpha = if layer == 0 {
        255
    } else {
        160 + (layer * 23 % 90) as u8
    };
    let background = colour(frame, layer, 0, alpha);
    // A bar that sweeps across the layer, one column per frame, and a fixed badge.
    let bar_w = (w / 8).max(1);
    let bar_x = (frame % u64::from(w)) as u32;
    let bar = Rect {
        x: bar_x,
        y: 0,
        w: bar_w.min(w - bar_x),
        h,
    };
    let badge = Rect {
        x: w / 4,
        y: h / 4,
        w: (w / 4).max(1),
        h: (h / 4).max(1),
    };
    LayerContent {
        width: w,
        height: h,
        background,
        rects: vec![
            (bar, colour(frame, layer, 1, 255)),
            (badge, colour(frame, layer, 2, alpha)),
        ],
    }
}

/// Where layer `layer` of `layers` goes at frame `frame`.
pub fn placement(frame: u64, layer: u32, layers: u32, frame_w: u32, frame_h: u32) -> Placement {
    if layer == 0 {
        return Placement {
            x: 0,
            y: 0,
            z: 0,
            opacity: 255,
        };
    }
    let (w, h) = layer_size(layer, frame_w, frame_h);
    let span_x = u64::from(frame_w.saturating_sub(w).max(1));
    let span_y = u64::from(frame_h.saturating_sub(h).max(1));
    let step = frame * u64::from(layer * 3 + 1);
    // The panels drift across the frame; their stacking order rotates every 16 frames.
    let x = ((step + u64::from(layer) * 37) % span_x) as i32;
    let y = ((step / 2 + u64::from(layer) * 53) % span_y) as i32;
    let z = 1 + ((u64::from(layer) + frame / 16) % u64::from(layers.max(1))) as i32;
    let opacity = 128 + ((layer * 41 + (frame as u32 % 64)) % 128) as u8;
    Placement { x, y, z, opacity }
}

/// Premultiplied OVER of `src` scaled by `opacity` onto `dst`, in integers, rounding to nearest.
#[inline]
pub fn blend_over(dst: [u8; 4], src: [u8; 4], opacity: u8) -> [u8; 4] {
    let op = u32::from(opacity);
    let scale = |c: u8| (u32::from(c) * op + 127) / 255;
    let sa = scale(src[3]);
    let inv = 255 - sa;
    let mut out = [0u8; 4];
    for i in 0..4 {
        let s = scale(src[i]);
        out[i] = (s + (u32::from(dst[i]) * inv + 127) / 255).min(255) as u8;
    }
    out
}

/// The colour of pixel (`x`, `y`) of the composited frame `frame`, computed from the scene
/// alone, one pixel at a time: the reference the pipeline's output is checked against.
pub fn expected_pixel(
    frame: u64,
    layers: u32,
    frame_w: u32,
    frame_h: u32,
    x: u32,
    y: u32,
) -> [u8; 4] {
    expected_pixel_moved(frame, layers, frame_w, frame_h, x, y, &Moves::default())
}

/// [`expected_pixel`] with the layers moved by `moves`.
pub fn expected_pixel_moved(
    frame: u64,
    layers: u32,
    frame_w: u32,
    frame_h: u32,
    x: u32,
    y: u32,
    moves: &Moves,
) -> [u8; 4] {
    expected_pixel_shown(frame, layers, frame_w, frame_h, (x, y), moves, None)
}

/// [`expected_pixel`] with the layers moved by `moves` and layer `hover`, if any, outlined as
/// a hovered layer is ([`highlighted`]).
pub fn expected_pixel_shown(
    frame: u64,
    layers: u32,
    frame_w: u32,
    frame_h: u32,
    (x, y): (u32, u32),
    moves: &Moves,
    hover: Option<u32>,
) -> [u8; 4] {
    let mut order: Vec<(i32, u32)> = (0..layers)
        .map(|l| (placement(frame, l, layers, frame_w, frame_h).z, l))
        .collect();
    order.sort();
    let mut px = BACKDROP;
    for (_, l) in order {
        let p = placement_moved(frame, l, layers, frame_w, frame_h, moves);
        let (w, h) = layer_size(l, frame_w, frame_h);
        let lx = i64::from(x) - i64::from(p.x);
        let ly = i64::from(y) - i64::from(p.y);
        if lx < 0 || ly < 0 || lx >= i64::from(w) || ly >= i64::from(h) {
            continue;
        }
        let texel = if hover == Some(l) && on_highlight(w, h, lx as u32, ly as u32) {
            HIGHLIGHT
        } else {
            layer_content(frame, l, frame_w, frame_h).texel(lx as u32, ly as u32)
        };
        px = blend_over(px, texel, p.opacity);
    }
    px
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blend_identities() {
        assert_eq!(
            blend_over([1, 2, 3, 4], [9, 9, 9, 255], 255),
            [9, 9, 9, 255]
        );
        assert_eq!(blend_over([1, 2, 3, 4], [9, 9, 9, 255], 0), [1, 2, 3, 4]);
        assert_eq!(
            blend_over([200, 100, 50, 255], [0, 0, 0, 0], 255),
            [200, 100, 50, 255]
        );
        // Half-transparent white over black gives mid grey, opaque.
        assert_eq!(
            blend_over([0, 0, 0, 255], [128, 128, 128, 128], 255),
            [128, 128, 128, 255]
        );
    }

    #[test]
    fn content_is_deterministic_and_animated() {
        let a = layer_content(7, 1, 320, 240);
        assert_eq!(a, layer_content(7, 1, 320, 240));
        assert_ne!(a, layer_content(8, 1, 320, 240));
        assert_ne!(placement(3, 2, 3, 320, 240), placement(4, 2, 3, 320, 240));
    }

    #[test]
    fn colours_are_premultiplied() {
        for f in 0..50 {
            for l in 0..MAX_LAYERS {
                let c = layer_content(f, l, 64, 48);
                for px in std::iter::once(c.background).chain(c.rects.iter().map(|r| r.1)) {
                    assert!(px[0] <= px[3] && px[1] <= px[3] && px[2] <= px[3], "{px:?}");
                }
            }
        }
    }

    #[test]
    fn the_highlight_is_the_layer_edge_and_nothing_else() {
        let (w, h) = (20, 10);
        let c = highlighted(layer_content(5, 1, 40, 20));
        assert_eq!((c.width, c.height), (w, h));
        let plain = layer_content(5, 1, 40, 20);
        for y in 0..h {
            for x in 0..w {
                let edge = x < 3 || y < 3 || x >= w - 3 || y >= h - 3;
                assert_eq!(on_highlight(w, h, x, y), edge, "({x}, {y})");
                let want = if edge { HIGHLIGHT } else { plain.texel(x, y) };
                assert_eq!(c.texel(x, y), want, "({x}, {y})");
            }
        }
        // A layer thinner than the outline is all outline, and no rectangle leaves it.
        for r in highlight_rects(2, 1) {
            assert!(r.x + r.w <= 2 && r.y + r.h <= 1, "{r:?}");
        }
        assert!(on_highlight(2, 1, 1, 0));
    }

    #[test]
    fn a_hovered_layer_changes_only_its_outline() {
        let (fw, fh, layers, frame) = (64, 48, 3, 9);
        let moves = Moves::default();
        let (w, h) = layer_size(2, fw, fh);
        let p = placement_moved(frame, 2, layers, fw, fh, &moves);
        for y in 0..fh {
            for x in 0..fw {
                let plain = expected_pixel_shown(frame, layers, fw, fh, (x, y), &moves, None);
                let lit = expected_pixel_shown(frame, layers, fw, fh, (x, y), &moves, Some(2));
                let (lx, ly) = (i64::from(x) - i64::from(p.x), i64::from(y) - i64::from(p.y));
                let inside = lx >= 0 && ly >= 0 && lx < i64::from(w) && ly < i64::from(h);
                if !(inside && on_highlight(w, h, lx as u32, ly as u32)) {
                    assert_eq!(plain, lit, "({x}, {y}) is off the outline");
                }
            }
        }
    }

    #[test]
    fn rects_stay_inside_layer() {
        for f in 0..200 {
            for l in 0..4 {
                let c = layer_content(f, l, 33, 17);
                for (r, _) in &c.rects {
                    assert!(
                        r.x + r.w <= c.width && r.y + r.h <= c.height,
                        "{r:?} in {c:?}"
                    );
                }
            }
        }
    }
}
