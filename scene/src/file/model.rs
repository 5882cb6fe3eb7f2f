//! The validated scene: what a scene file says, with every value checked and converted.
//!
//! A [`Scene`] is built only by the parser ([`Scene::parse`](super::Scene::parse) and
//! [`default_scene`](super::default_scene)), so every value in it is in range: sizes are
//! positive, opacities are 0..=255, periods are at least one frame, colours are premultiplied.
//! Lengths that are relative to the output stay relative until [`evaluated`](super::eval) against
//! an output size; nothing here depends on the frame number.

use std::path::PathBuf;

/// A parsed, validated scene: a backdrop and up to [`MAX_LAYERS`](crate::MAX_LAYERS) layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scene {
    /// The opaque colour under every layer, premultiplied RGBA8.
    pub backdrop: [u8; 4],
    /// The layers in file order; each one's identity in states and damage is its
    /// [`Layer::slot`] (its index here, for a scene parsed from a file).
    pub layers: Vec<Layer>,
}

impl Scene {
    /// Whether any layer animates: a scene that does not looks the same at every frame, so a
    /// window needs a new frame only when something else changes.
    pub fn animates(&self) -> bool {
        self.layers.iter().any(|l| l.animation.any())
    }
}

/// One layer as the file describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The layer's name, unique within the scene.
    pub name: String,
    /// The layer's slot: its identity in frames, states and damage, kept for the layer's life.
    /// A parsed file's layers take slots in file order; a layer added by an
    /// [`edit`](super::edit) takes the lowest free one, and a removed layer frees its slot.
    pub slot: u32,
    /// What the layer shows.
    pub content: Content,
    /// Where the layer sits before any animation, in output pixels or relative to the output.
    pub rect: RectSpec,
    /// Opacity before any fade, 0 (invisible) to 255 (as drawn).
    pub opacity: u8,
    /// Stacking order: lower values are drawn first; ties go in file order.
    pub z: i32,
    /// How the layer moves, fades, turns and scrolls over time.
    pub animation: Animation,
    /// The layer's own turn and scale, about its rectangle's centre, under any animation.
    pub transform: Transform,
}

/// A layer's turn and scale about its rectangle's centre: the whole quad turns and grows, and
/// the layer covers the pixels the turned quad covers, inside or outside its rectangle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transform {
    /// Thousandths of a degree, clockwise in the top-down output; added to `animation.rotate`.
    pub millidegrees: i64,
    /// Thousandths of the layer's size: 1000 draws it at its rectangle's size.
    pub scale: u32,
}

impl Default for Transform {
    fn default() -> Self {
        Transform {
            millidegrees: 0,
            scale: 1000,
        }
    }
}

/// What a layer shows, by kind, with the kind's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// One colour over the whole rectangle.
    Solid {
        /// The colour, premultiplied RGBA8.
        color: [u8; 4],
    },
    /// A linear blend between two colours across the rectangle.
    Gradient {
        /// The colour at the start edge (left or top), premultiplied RGBA8.
        from: [u8; 4],
        /// The colour at the end edge (right or bottom), premultiplied RGBA8.
        to: [u8; 4],
        /// Which way the blend runs.
        direction: Direction,
    },
    /// Square cells of two alternating colours, the first colour at the top-left cell.
    Checker {
        /// The side of one cell in pixels.
        cell: u32,
        /// The two colours, premultiplied RGBA8.
        colors: [[u8; 4]; 2],
    },
    /// A PNG image, scaled to the rectangle.
    Image {
        /// Where the image's bytes come from.
        source: ImageSource,
        /// How the image is sampled when scaled.
        sampling: Sampling,
    },
    /// Pixels the application supplies while the scene runs (premultiplied RGBA8 rows of
    /// `width` x `height`, uploaded whole or in rectangles), scaled to the rectangle as an image
    /// is; transparent until the first upload.
    Pixels {
        /// The width of the application's pixels.
        width: u32,
        /// Their height.
        height: u32,
        /// How they are sampled when scaled.
        sampling: Sampling,
        /// How many uploads the layer has had in the process that holds it: not in the file,
        /// 0 when parsed; the pixels' identity in a frame's state, so that an upload changes
        /// the state as a new colour does.
        serial: u64,
    },
    /// Text in DejaVu Sans, anti-aliased, in lines split at `\n` and wrapped to the rectangle,
    /// the block centred vertically ([`crate::text`]); predicted exactly by the CPU reference.
    Text {
        /// The text.
        text: String,
        /// The font size in pixels.
        size: u32,
        /// The colour of the glyphs, premultiplied RGBA8.
        color: [u8; 4],
        /// Where each line sits between the left and right edges.
        align: crate::text::Align,
    },
}

impl Content {
    /// The name of this kind as the file spells it (`"solid"`, `"gradient"`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Content::Solid { .. } => "solid",
            Content::Gradient { .. } => "gradient",
            Content::Checker { .. } => "checker",
            Content::Image { .. } => "image",
            Content::Pixels { .. } => "pixels",
            Content::Text { .. } => "text",
        }
    }
}

/// The direction of a gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the left edge to the right edge.
    Horizontal,
    /// From the top edge to the bottom edge.
    Vertical,
}

/// How an image is sampled when the rectangle's size differs from the image's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sampling {
    /// The texel whose centre is nearest; exactly predictable, see
    /// [`rasterize`](super::reference::rasterize).
    Nearest,
    /// Bilinear filtering; left to the GPU, not predicted by the reference rasterizer.
    Linear,
}

/// Where an image layer's PNG bytes come from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ImageSource {
    /// A file, its path already resolved against the scene file's directory
    /// ([`resolve_image_path`](super::image::resolve_image_path)). The launcher opens it and
    /// hands the GPU process the fd.
    File(PathBuf),
    /// An image embedded in this crate, used by the built-in scene; the name is what the scene
    /// text wrote.
    Builtin {
        /// The name the built-in scene refers to it by.
        name: String,
        /// The PNG bytes.
        bytes: &'static [u8],
    },
}

/// A length in a scene file: pixels, or a percentage of the output's width or height.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Length {
    /// Output pixels.
    Px(i32),
    /// Hundredths of a percent of the output's width (for x and widths) or height (for y and
    /// heights): `"12.5%"` is `Percent(1250)`. Kept as an integer so that resolving is exact.
    Percent(i32),
}

impl Length {
    /// This length in pixels, for an output extent (width or height) of `extent` pixels,
    /// rounding half up.
    pub fn resolve(self, extent: u32) -> i64 {
        match self {
            Length::Px(px) => i64::from(px),
            Length::Percent(hundredths) => {
                div_round(i64::from(hundredths) * i64::from(extent), 10_000)
            }
        }
    }
}

/// A rectangle as the file writes it: position and size, each in pixels or relative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RectSpec {
    /// Left edge, relative to the output's width.
    pub x: Length,
    /// Top edge, relative to the output's height.
    pub y: Length,
    /// Width, relative to the output's width; always positive.
    pub w: Length,
    /// Height, relative to the output's height; always positive.
    pub h: Length,
}

/// The animations of one layer; each is optional and they combine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Animation {
    /// Moves the layer out by an offset and back.
    pub translate: Option<Translate>,
    /// Takes the opacity to another value and back.
    pub fade: Option<Fade>,
    /// Turns the layer about its centre.
    pub rotate: Option<Rotate>,
    /// Scrolls the layer's content inside its rectangle (checker and image only).
    pub scroll: Option<Scroll>,
}

impl Animation {
    /// Whether any animation is set.
    pub fn any(&self) -> bool {
        self.translate.is_some()
            || self.fade.is_some()
            || self.rotate.is_some()
            || self.scroll.is_some()
    }
}

/// Out by `dx, dy` over the first half of the period and back over the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Translate {
    /// Horizontal offset at the half period, relative to the output's width.
    pub dx: Length,
    /// Vertical offset at the half period, relative to the output's height.
    pub dy: Length,
    /// The period in frames at [`FPS`](super::FPS); at least 1.
    pub period: u32,
}

/// From the layer's opacity to `to` over the first half of the period and back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fade {
    /// The opacity at the half period, 0 to 255.
    pub to: u8,
    /// The period in frames at [`FPS`](super::FPS); at least 1.
    pub period: u32,
}

/// A steady turn of `millidegrees` per period, clockwise for positive values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rotate {
    /// Thousandths of a degree turned per period (360000 is one full turn).
    pub millidegrees: i64,
    /// The period in frames at [`FPS`](super::FPS); at least 1.
    pub period: u32,
}

/// A steady scroll of the content by `dx, dy` layer pixels per period, wrapping around.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scroll {
    /// Horizontal content pixels per period.
    pub dx: i32,
    /// Vertical content pixels per period.
    pub dy: i32,
    /// The period in frames at [`FPS`](super::FPS); at least 1.
    pub period: u32,
}

/// `n / d` rounded to the nearest integer, halves up, for `d > 0`.
pub(crate) fn div_round(n: i64, d: i64) -> i64 {
    debug_assert!(d > 0);
    (2 * n + d).div_euclid(2 * d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_resolve_exactly() {
        assert_eq!(Length::Px(-7).resolve(640), -7);
        assert_eq!(Length::Percent(10_000).resolve(640), 640);
        assert_eq!(Length::Percent(5_000).resolve(641), 321); // 320.5 rounds up
        assert_eq!(Length::Percent(1_250).resolve(480), 60);
        assert_eq!(Length::Percent(-5_000).resolve(641), -320); // -320.5 rounds up
    }

    #[test]
    fn div_round_rounds_half_up() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -2);
        assert_eq!(div_round(4, 3), 1);
        assert_eq!(div_round(-4, 3), -1);
        assert_eq!(div_round(0, 7), 0);
    }
}
