//! Scene files: a TOML description of the layers, the parser that validates it, the evaluation
//! of a scene at any frame, and the CPU reference the tests compare rendered frames with.
//!
//! The sequence with `triptych run --scene FILE`: the launcher reads the file and
//! [parses](Scene::parse) it (a bad file stops the run with a [`SceneError`] naming the line,
//! column and field); every process evaluates the same [`Scene`] at frame N with
//! [`Scene::state_at`], a pure function of N, the output size and the file; image layers'
//! PNGs are opened by the launcher and [decoded](decode_png) by the sandboxed GPU process from
//! the fd it is handed. Without a file, [`default_scene`] is the same kind of value, parsed
//! from [`DEFAULT_SCENE`] by the same parser.
//!
//! # The format
//!
//! ```toml
//! backdrop = "#101018"           # optional; opaque; this is the default
//!
//! [[layers]]                     # 1 to 8 layers, drawn in ascending z
//! name = "sky"                   # required, unique: letters, digits, `_`, `-`
//! kind = "gradient"              # solid | gradient | checker | image | text | pixels
//! rect = { x = 0, y = 0, w = "100%", h = "100%" }
//! from = "#203060"
//! to = "#6080c0"
//! direction = "vertical"         # horizontal (default) | vertical
//!
//! [[layers]]
//! name = "logo"
//! kind = "image"
//! path = "logo.png"              # relative to this file's directory
//! sampling = "nearest"           # nearest (default) | linear
//! rect = { x = "10%", y = 40, w = 128, h = 128 }
//! opacity = 0.8                  # 0 to 1; default 1
//! z = 2                          # default: the layer's index in the file
//! animation.translate = { dx = "50%", dy = 0, period = 4.0 }
//! animation.fade = { to = 0.2, period = 2.0 }
//! animation.rotate = { degrees = 360, period = 6.0 }
//! transform = { rotate = 15, scale = 1.5 }  # the whole quad, about the rect's centre
//! ```
//!
//! - **Lengths** (`rect`, `translate.dx`/`dy`) are whole pixels (`120`, `"120px"`) or a
//!   percentage of the output's width (x, w, dx) or height (y, h, dy), as a string with up to
//!   two decimals (`"12.5%"`). Sizes are 1 to 8192 pixels or more than 0% up to 100%; positions
//!   and offsets -16384 to 16384 pixels or -200% to 200%. Positions may put a layer partly or
//!   wholly off the output.
//! - **Colours** are `"#rgb"`, `"#rgba"`, `"#rrggbb"` or `"#rrggbbaa"`, straight alpha; they are
//!   stored premultiplied.
//! - **Kinds** and their fields: `solid`: `color`. `gradient`: `from`, `to`, `direction`.
//!   `checker`: `cell` (pixels, default 16), `colors` (two). `image`: `path`, `sampling`.
//!   `text`: `text` (at most 256 characters; `\n` breaks a line, other control characters are
//!   refused), `size` (pixels, default 16), `color` (default white), `align` (`left`, default,
//!   `center` or `right`); laid out and rasterized by [`crate::text`]. `pixels`: `width` and
//!   `height` (1 to 4096) of premultiplied RGBA8 the application uploads while the scene runs
//!   (transparent until then), `sampling` as an image's. A field of another kind is an error.
//! - **Animations** combine; each has a `period` in seconds, evaluated at [`FPS`] frames per
//!   second and rounded to whole frames. `translate` (`dx`, `dy`) and `fade` (`to`) go out over
//!   the first half of the period and back over the second; `rotate` (`degrees`, default 360)
//!   turns steadily about the layer's centre, on top of the layer's own `transform` (`rotate` in
//!   degrees, `scale` from 0.05 to 8): the whole quad turns and scales, its texture the quad's
//!   bounds; `scroll` (`dx`, `dy` in pixels, checker and
//!   image only) moves the content steadily inside the rectangle, wrapping. The exact
//!   arithmetic is in [`eval`].
//!
//! # Errors
//!
//! A bad file is one [`SceneError`], the first problem found, shown as
//! `FILE:LINE:COLUMN: FIELD: MESSAGE; hint: HINT`:
//!
//! ```text
//! scene.toml:12:11: layers[2].opacity: 1.7 is out of range; hint: opacity is a number from 0 to 1
//! scene.toml:3:8: layers[0].kind: unknown kind "gradinet"; hint: did you mean "gradient"?
//! ```
//!
//! Its [`ErrorKind`] names the rule that was broken.

pub mod damage;
pub mod edit;
pub mod error;
pub mod eval;
pub mod image;
pub mod model;
mod parse;
pub mod pick;
pub mod reference;
mod schema;

use std::path::Path;

pub use damage::{damage, Damage};
pub use edit::{Document, EditError, EditKind, Transaction};
pub use error::{ErrorKind, SceneError};
pub use eval::{Angle, LayerState, OutputRect};
pub use image::{
    decode_png, decode_png_bytes, resolve_image_path, Image, ImageError, ImageLimits,
    PositionalReader,
};
pub use model::{
    Animation, Content, Direction, Fade, ImageSource, Layer, Length, RectSpec, Rotate, Sampling,
    Scene, Scroll, Transform, Translate,
};
pub use parse::{
    MAX_LAYER_SIDE, MAX_NAME_LEN, MAX_OFFSET, MAX_PERIOD_SECONDS, MAX_PIXELS_SIDE, MAX_SCALE,
    MAX_TEXT_LEN, MIN_SCALE,
};
pub use reference::{
    composite, outline, rasterize, reference_frame, reference_frame_shown, LayerPixels,
    Unpredictable,
};

/// The nominal frame rate animations are evaluated at: frame N is at N / 60 seconds.
pub const FPS: u32 = 60;

/// The text of the built-in scene: one layer of every kind and every animation.
pub const DEFAULT_SCENE: &str = include_str!("default/scene.toml");

/// The name errors in [`DEFAULT_SCENE`] would be reported under.
pub const DEFAULT_SCENE_NAME: &str = "<built-in scene>";

impl Scene {
    /// Parses and validates the scene file `text`, read from `file`.
    ///
    /// `file` names the file in errors, and image paths are resolved against its directory
    /// (see [`resolve_image_path`]); nothing is read from disk here.
    pub fn parse(text: &str, file: &Path) -> Result<Scene, SceneError> {
        parse::parse(text, file, parse::Origin::File(file))
    }
}

/// The built-in scene, parsed from [`DEFAULT_SCENE`]; its image layers use PNGs embedded in
/// this crate ([`ImageSource::Builtin`]).
///
/// # Panics
///
/// Never: the embedded text is parsed by this crate's tests.
pub fn default_scene() -> Scene {
    match parse::parse(
        DEFAULT_SCENE,
        Path::new(DEFAULT_SCENE_NAME),
        parse::Origin::Builtin,
    ) {
        Ok(scene) => scene,
        Err(e) => panic!("the built-in scene does not parse: {e}"),
    }
}

#[cfg(test)]
mod tests;
