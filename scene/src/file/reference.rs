//! The CPU reference: the exact pixels of the layer kinds whose pixels are fully determined,
//! and the composite of a whole frame from them, for tests to compare the pipeline against.
//!
//! Exactly predictable are solid and checker layers, image layers sampled `nearest`, and text
//! (rasterized on the CPU by [`crate::text::rasterize`], in the GPU process as here); gradients
//! and linear sampling depend on how the GPU interpolates and are refused with
//! [`Unpredictable`]. The composite is the same as [`expected_pixel`](crate::expected_pixel)'s:
//! start from the backdrop, draw the layers in ascending `(z, index)` with
//! [`blend_over`], each scaled by its opacity and clipped to the output.
//! A rotated layer covers pixels that depend on the GPU's rasterization rules, so a frame with
//! one is refused as well.

use super::eval::LayerState;
use super::image::Image;
use super::model::{Content, Sampling};
use crate::blend_over;

/// One layer's texture: premultiplied RGBA8, rows top-down, `width * 4` bytes a row.
#[derive(Clone, PartialEq, Eq)]
pub struct LayerPixels {
    /// Width in pixels (the layer rectangle's width).
    pub width: u32,
    /// Height in pixels (the layer rectangle's height).
    pub height: u32,
    /// `width * height * 4` bytes.
    pub pixels: Vec<u8>,
}

impl std::fmt::Debug for LayerPixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerPixels")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl LayerPixels {
    /// The texel at (`x`, `y`); `None` outside the texture.
    pub fn texel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 4;
        let px = self.pixels.get(i..i + 4)?;
        Some([px[0], px[1], px[2], px[3]])
    }
}

/// Why the reference cannot predict a layer or a frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unpredictable {
    /// The kind's pixels depend on the GPU (gradients).
    #[error("layer {index}: {kind} layers are drawn by the GPU and have no exact reference")]
    Kind {
        /// The layer's index.
        index: usize,
        /// The kind's name.
        kind: &'static str,
    },
    /// An image sampled `linear`.
    #[error("layer {index}: linear sampling has no exact reference; use sampling = \"nearest\"")]
    LinearSampling {
        /// The layer's index.
        index: usize,
    },
    /// An image layer was given no decoded image.
    #[error("layer {index}: an image layer needs its decoded image")]
    MissingImage {
        /// The layer's index.
        index: usize,
    },
    /// The layer is rotated in this frame.
    #[error("layer {index}: a turned or scaled layer has no exact reference")]
    Rotated {
        /// The layer's index.
        index: usize,
    },
    /// The states and the textures passed to [`composite`] do not match up.
    #[error("{states} layer states but {textures} textures")]
    Mismatch {
        /// How many states were passed.
        states: usize,
        /// How many textures were passed.
        textures: usize,
    },
}

/// The texture of the layer in `state`, with `image` the decoded image of an image layer, or
/// the application's pixels of a pixels layer.
///
/// Nearest sampling is defined exactly: texel `(x, y)` of a `w` x `h` layer shows image texel
/// `((2x' + 1) * iw / 2w, (2y' + 1) * ih / 2h)`, where `(x', y')` is `(x, y)` moved by the
/// scroll offset and wrapped into the layer, and `/` rounds down: the image texel under the
/// centre of the layer texel. A checker's cell is `((x' / cell) + (y' / cell)) % 2`, cell 0
/// holding the first colour.
pub fn rasterize(state: &LayerState, image: Option<&Image>) -> Result<LayerPixels, Unpredictable> {
    let (w, h) = (state.rect.w, state.rect.h);
    let (sx, sy) = state.scroll;
    // The pattern position of texel (x, y), scrolled and wrapped into the layer.
    let wrap = |x: u32, y: u32| {
        (
            ((u64::from(x) + u64::from(sx)) % u64::from(w)) as u32,
            ((u64::from(y) + u64::from(sy)) % u64::from(h)) as u32,
        )
    };
    let texel: Box<dyn Fn(u32, u32) -> [u8; 4] + '_> = match &state.content {
        Content::Solid { color } => {
            let c = *color;
            Box::new(move |_, _| c)
        }
        Content::Checker { cell, colors } => {
            let (cell, colors) = (*cell, *colors);
            Box::new(move |x, y| {
                let (x, y) = wrap(x, y);
                colors[((x / cell + y / cell) % 2) as usize]
            })
        }
        // Pixels never uploaded are transparent, as the GPU process draws them.
        Content::Pixels { .. } if image.is_none() => Box::new(|_, _| [0; 4]),
        Content::Image { sampling, .. } | Content::Pixels { sampling, .. } => {
            if *sampling != Sampling::Nearest {
                return Err(Unpredictable::LinearSampling { index: state.index });
            }
            let img = image.ok_or(Unpredictable::MissingImage { index: state.index })?;
            let (iw, ih) = (u64::from(img.width), u64::from(img.height));
            Box::new(move |x, y| {
                let (x, y) = wrap(x, y);
                let ix = (2 * u64::from(x) + 1) * iw / (2 * u64::from(w));
                let iy = (2 * u64::from(y) + 1) * ih / (2 * u64::from(h));
                img.texel(ix as u32, iy as u32).unwrap_or([0; 4])
            })
        }
        Content::Text {
            text,
            size,
            color,
            align,
        } => {
            let raster = crate::text::rasterize(text, *size, *color, *align, w, h);
            Box::new(move |x, y| {
                let (x, y) = wrap(x, y);
                let at = (y as usize * w as usize + x as usize) * 4;
                raster
                    .get(at..at + 4)
                    .and_then(|t| t.try_into().ok())
                    .unwrap_or([0; 4])
            })
        }
        other => {
            return Err(Unpredictable::Kind {
                index: state.index,
                kind: other.kind_name(),
            })
        }
    };
    let mut pixels = Vec::with_capacity(w as usize * h as usize * 4);
    for y in 0..h {
        for x in 0..w {
            pixels.extend_from_slice(&texel(x, y));
        }
    }
    Ok(LayerPixels {
        width: w,
        height: h,
        pixels,
    })
}

/// The composited frame, `out_w * out_h * 4` bytes of premultiplied RGBA8, from each layer's
/// state and texture (`textures[i]` belongs to `states[i]`), over `backdrop`.
pub fn composite(
    backdrop: [u8; 4],
    states: &[LayerState],
    textures: &[LayerPixels],
    out_w: u32,
    out_h: u32,
) -> Result<Vec<u8>, Unpredictable> {
    if states.len() != textures.len() {
        return Err(Unpredictable::Mismatch {
            states: states.len(),
            textures: textures.len(),
        });
    }
    if let Some(s) = states
        .iter()
        .find(|s| !s.rotation.is_zero() || s.scale != 1000)
    {
        return Err(Unpredictable::Rotated { index: s.index });
    }
    let mut order: Vec<usize> = (0..states.len()).collect();
    order.sort_by_key(|&i| (states[i].z, states[i].index));
    let mut frame: Vec<u8> = std::iter::repeat_n(backdrop, out_w as usize * out_h as usize)
        .flatten()
        .collect();
    for i in order {
        let (s, tex) = (&states[i], &textures[i]);
        // The part of the layer inside the output, in output coordinates.
        let x0 = s.rect.x.clamp(0, i64::from(out_w));
        let y0 = s.rect.y.clamp(0, i64::from(out_h));
        let x1 = (s.rect.x + i64::from(tex.width)).clamp(0, i64::from(out_w));
        let y1 = (s.rect.y + i64::from(tex.height)).clamp(0, i64::from(out_h));
        for y in y0..y1 {
            for x in x0..x1 {
                let Some(src) = tex.texel((x - s.rect.x) as u32, (y - s.rect.y) as u32) else {
                    continue;
                };
                let at = (y as usize * out_w as usize + x as usize) * 4;
                let dst = [frame[at], frame[at + 1], frame[at + 2], frame[at + 3]];
                frame[at..at + 4].copy_from_slice(&blend_over(dst, src, s.opacity));
            }
        }
    }
    Ok(frame)
}

/// The composited frame `frame` of `scene` on an output of `out_w` x `out_h`, rasterizing
/// every layer; `images[i]` is the decoded image of layer `i` when it is an image layer.
pub fn reference_frame(
    scene: &super::Scene,
    frame: u64,
    out_w: u32,
    out_h: u32,
    images: &[Option<&Image>],
) -> Result<Vec<u8>, Unpredictable> {
    let states = scene.state_at(frame, out_w, out_h);
    let textures = states
        .iter()
        .map(|s| rasterize(s, images.get(s.index).copied().flatten()))
        .collect::<Result<Vec<_>, _>>()?;
    composite(scene.backdrop, &states, &textures, out_w, out_h)
}

/// Draws the hover outline ([`crate::highlight_rects`], in [`crate::HIGHLIGHT`]) over `px`,
/// as the GPU process draws it over a hovered layer.
pub fn outline(px: &mut LayerPixels) {
    let (w, h) = (px.width, px.height);
    for y in 0..h {
        for x in 0..w {
            if crate::on_highlight(w, h, x, y) {
                let i = (y as usize * w as usize + x as usize) * 4;
                if let Some(p) = px.pixels.get_mut(i..i + 4) {
                    p.copy_from_slice(&crate::HIGHLIGHT);
                }
            }
        }
    }
}

/// [`reference_frame`] as a window shows it: the layers moved by `moves` (layers dragged) and
/// layer `hover`, if any, outlined ([`outline`]).
pub fn reference_frame_shown(
    scene: &super::Scene,
    frame: u64,
    (out_w, out_h): (u32, u32),
    images: &[Option<&Image>],
    moves: &crate::Moves,
    hover: Option<u32>,
) -> Result<Vec<u8>, Unpredictable> {
    let mut states = scene.state_at(frame, out_w, out_h);
    for s in &mut states {
        if let Some((dx, dy)) = moves.offsets.get(s.index) {
            s.rect.x += i64::from(*dx);
            s.rect.y += i64::from(*dy);
        }
    }
    let mut textures = states
        .iter()
        .map(|s| rasterize(s, images.get(s.index).copied().flatten()))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(t) = hover.and_then(|h| textures.get_mut(h as usize)) {
        outline(t);
    }
    composite(scene.backdrop, &states, &textures, out_w, out_h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::eval::{Angle, OutputRect};
    use crate::file::model::{Direction, ImageSource};
    use crate::file::Scene;
    use std::path::Path;

    fn state(index: usize, rect: OutputRect, content: Content) -> LayerState {
        LayerState {
            index,
            rect,
            bounds: rect,
            scale: 1000,
            opacity: 255,
            z: 0,
            rotation: Angle::default(),
            content,
            scroll: (0, 0),
        }
    }

    const R: [u8; 4] = [255, 0, 0, 255];
    const B: [u8; 4] = [0, 0, 255, 255];

    fn rect(x: i64, y: i64, w: u32, h: u32) -> OutputRect {
        OutputRect { x, y, w, h }
    }

    #[test]
    fn solid_fills() {
        let s = state(0, rect(0, 0, 3, 2), Content::Solid { color: R });
        let px = rasterize(&s, None).expect("solid");
        assert_eq!((px.width, px.height), (3, 2));
        assert!(px.pixels.chunks_exact(4).all(|p| p == R));
    }

    #[test]
    fn checker_alternates_and_scrolls() {
        let mut s = state(
            0,
            rect(0, 0, 4, 4),
            Content::Checker {
                cell: 2,
                colors: [R, B],
            },
        );
        let px = rasterize(&s, None).expect("checker");
        let t = |px: &LayerPixels, x, y| px.texel(x, y).expect("inside");
        assert_eq!(
            [t(&px, 0, 0), t(&px, 1, 1), t(&px, 2, 0), t(&px, 2, 2)],
            [R, R, B, R]
        );
        assert_eq!(t(&px, 0, 2), B);
        s.scroll = (2, 0);
        let px = rasterize(&s, None).expect("scrolled");
        assert_eq!([t(&px, 0, 0), t(&px, 2, 0), t(&px, 3, 3)], [B, R, B]);
    }

    #[test]
    fn nearest_sampling_is_exact() {
        // A 2x2 image scaled to 4x4: each image texel covers a 2x2 block.
        let img = Image {
            width: 2,
            height: 2,
            pixels: [R, B, B, R].concat(),
        };
        let content = Content::Image {
            source: ImageSource::File("x.png".into()),
            sampling: Sampling::Nearest,
        };
        let mut s = state(0, rect(0, 0, 4, 4), content);
        let px = rasterize(&s, Some(&img)).expect("image");
        let row = |y| {
            (0..4)
                .map(|x| px.texel(x, y).expect("in"))
                .collect::<Vec<_>>()
        };
        assert_eq!(row(0), [R, R, B, B]);
        assert_eq!(row(3), [B, B, R, R]);
        // Downscaled 2x2 -> 1x1: the centre falls in texel (1, 1).
        s.rect = rect(0, 0, 1, 1);
        assert_eq!(rasterize(&s, Some(&img)).expect("1x1").pixels, R);
        // Without the image there is nothing to sample.
        assert_eq!(
            rasterize(&s, None),
            Err(Unpredictable::MissingImage { index: 0 })
        );
    }

    #[test]
    fn unpredictable_kinds_are_refused() {
        let g = state(
            2,
            rect(0, 0, 1, 1),
            Content::Gradient {
                from: R,
                to: B,
                direction: Direction::Vertical,
            },
        );
        assert_eq!(
            rasterize(&g, None),
            Err(Unpredictable::Kind {
                index: 2,
                kind: "gradient"
            })
        );
        let linear = state(
            1,
            rect(0, 0, 1, 1),
            Content::Image {
                source: ImageSource::File("x.png".into()),
                sampling: Sampling::Linear,
            },
        );
        assert_eq!(
            rasterize(&linear, None),
            Err(Unpredictable::LinearSampling { index: 1 })
        );
    }

    #[test]
    fn composite_blends_by_z_and_clips() {
        // Layer 0 (z 1): opaque red, 2x2 at (-1, -1): covers only (0, 0).
        // Layer 1 (z 0): blue at half opacity, 2x1 at (0, 0): under layer 0.
        let mut a = state(0, rect(-1, -1, 2, 2), Content::Solid { color: R });
        a.z = 1;
        let mut b = state(1, rect(0, 0, 2, 1), Content::Solid { color: B });
        b.opacity = 128;
        let states = [a, b];
        let tex: Vec<LayerPixels> = states
            .iter()
            .map(|s| rasterize(s, None).expect("solid"))
            .collect();
        let backdrop = crate::BACKDROP;
        let frame = composite(backdrop, &states, &tex, 3, 2).expect("composite");
        let px = |x: usize, y: usize| {
            let i = (y * 3 + x) * 4;
            [frame[i], frame[i + 1], frame[i + 2], frame[i + 3]]
        };
        let half_blue = blend_over(backdrop, B, 128);
        assert_eq!(px(0, 0), R);
        assert_eq!(px(1, 0), half_blue);
        assert_eq!(px(2, 0), backdrop);
        assert_eq!(px(0, 1), backdrop);
        assert_eq!(
            composite(backdrop, &states, &tex[..1], 3, 2),
            Err(Unpredictable::Mismatch {
                states: 2,
                textures: 1
            })
        );
    }

    #[test]
    fn a_scene_file_composites_like_expected_pixel_would() {
        let text = r##"
            backdrop = "#101018"
            [[layers]]
            name = "floor"
            kind = "checker"
            rect = { x = 0, y = 0, w = "100%", h = "100%" }
            cell = 4
            colors = ["#000000", "#ffffff"]
            [[layers]]
            name = "panel"
            kind = "solid"
            rect = { x = "25%", y = 2, w = "50%", h = 4 }
            color = "#ff000080"
            opacity = 0.5
            z = 5
            animation.translate = { dx = 8, period = 1 }
        "##;
        let scene = Scene::parse(text, Path::new("t.toml")).expect("parses");
        let (w, h) = (16, 8);
        for f in 0..60 {
            let frame = reference_frame(&scene, f, w, h, &[]).expect("predictable");
            let states = scene.state_at(f, w, h);
            for y in 0..h {
                for x in 0..w {
                    // Per pixel, from first principles.
                    let mut want = scene.backdrop;
                    let mut order: Vec<&LayerState> = states.iter().collect();
                    order.sort_by_key(|s| (s.z, s.index));
                    for s in order {
                        if s.rect.contains(i64::from(x), i64::from(y)) {
                            let tex = rasterize(s, None).expect("predictable");
                            let t = tex
                                .texel(
                                    (i64::from(x) - s.rect.x) as u32,
                                    (i64::from(y) - s.rect.y) as u32,
                                )
                                .expect("inside");
                            want = blend_over(want, t, s.opacity);
                        }
                    }
                    let i = ((y * w + x) * 4) as usize;
                    assert_eq!(&frame[i..i + 4], &want, "frame {f} at ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn rotated_frames_are_refused() {
        let mut s = state(0, rect(0, 0, 1, 1), Content::Solid { color: R });
        s.rotation = Angle::from_millidegrees(1);
        let tex = rasterize(&s, None).expect("the texture itself is exact");
        assert_eq!(
            composite(crate::BACKDROP, &[s], &[tex], 1, 1),
            Err(Unpredictable::Rotated { index: 0 })
        );
    }

    #[test]
    fn a_shown_frame_moves_and_outlines_its_layers() {
        let text = r##"
backdrop = "#000000"

[[layers]]
name = "back"
kind = "solid"
color = "#102030"
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "panel"
kind = "solid"
color = "#ff0000"
rect = { x = 4, y = 4, w = 10, h = 8 }
"##;
        let scene = Scene::parse(text, Path::new("shown.toml")).expect("parses");
        let (w, h) = (32u32, 24u32);
        let mut moves = crate::Moves::default();
        moves.add(1, 5, 3);
        let px = reference_frame_shown(&scene, 0, (w, h), &[None, None], &moves, Some(1))
            .expect("predictable");
        let at = |x: u32, y: u32| {
            let i = ((y * w + x) * 4) as usize;
            [px[i], px[i + 1], px[i + 2], px[i + 3]]
        };
        // The panel now spans (9, 7) to (18, 14); its outer 3 pixels are the outline.
        assert_eq!(at(9, 7), crate::HIGHLIGHT);
        assert_eq!(at(18, 14), crate::HIGHLIGHT);
        assert_eq!(at(11, 10), crate::HIGHLIGHT);
        assert_eq!(at(12, 10), [255, 0, 0, 255]);
        assert_eq!(at(4, 4), [0x10, 0x20, 0x30, 255]);
        assert_eq!(at(19, 10), [0x10, 0x20, 0x30, 255]);
        let plain = reference_frame_shown(&scene, 0, (w, h), &[None, None], &moves, None)
            .expect("predictable");
        assert_eq!(plain[((10 * w + 12) * 4) as usize..][..4], [255, 0, 0, 255]);
        assert_eq!(plain[((7 * w + 9) * 4) as usize..][..4], [255, 0, 0, 255]);
    }
}
