//! From TOML text to a validated [`Scene`]: `toml` deserializes the text into raw tables that
//! keep every value's span, then each value is checked and converted here, so every error can
//! name its line, column and field.
//!
//! The raw tables reject unknown keys (`deny_unknown_fields`); everything else, including
//! required fields, is checked here rather than by serde, so that each rule has its own
//! [`ErrorKind`] and hint.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::error::{list, suggest, ErrorKind, Problem, Source};
use super::image::{premul, resolve_image_path};
use super::model::{
    Animation, Content, Direction, Fade, ImageSource, Layer, Length, RectSpec, Rotate, Sampling,
    Scene, Scroll, Transform, Translate,
};
use super::schema::{KINDS, KIND_FIELDS};
use super::FPS;
use crate::{BACKDROP, MAX_LAYERS};

/// The longest side, in pixels, that a layer's rectangle may be given.
pub const MAX_LAYER_SIDE: u32 = 8192;
/// How far, in pixels, a position or a translation may reach from the output's origin.
pub const MAX_OFFSET: u32 = 16384;
/// The longest animation period, in seconds.
pub const MAX_PERIOD_SECONDS: f64 = 3600.0;
/// The longest layer name, in characters.
pub const MAX_NAME_LEN: usize = 32;
/// The longest side of a pixels layer's pixels.
pub const MAX_PIXELS_SIDE: u32 = 4096;
/// The longest text of a text layer, in characters.
pub const MAX_TEXT_LEN: usize = 256;

/// The images the built-in scene may name, embedded in the crate.
const BUILTIN_IMAGES: &[(&str, &[u8])] = &[("tile.png", include_bytes!("default/tile.png"))];

/// Where the text came from, which decides how image paths resolve.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Origin<'a> {
    /// A file on disk: image paths are relative to its directory.
    File(&'a Path),
    /// The built-in scene: image paths name [`BUILTIN_IMAGES`].
    Builtin,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScene {
    backdrop: Option<Spanned<String>>,
    layers: Option<Spanned<Vec<Spanned<RawLayer>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    name: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    rect: Option<Spanned<RawRect>>,
    opacity: Option<Spanned<f64>>,
    z: Option<Spanned<i64>>,
    animation: Option<Spanned<RawAnimation>>,
    transform: Option<Spanned<RawTransform>>,
    color: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    to: Option<Spanned<String>>,
    direction: Option<Spanned<String>>,
    cell: Option<Spanned<i64>>,
    colors: Option<Spanned<Vec<Spanned<String>>>>,
    path: Option<Spanned<String>>,
    sampling: Option<Spanned<String>>,
    text: Option<Spanned<String>>,
    size: Option<Spanned<i64>>,
    align: Option<Spanned<String>>,
    width: Option<Spanned<i64>>,
    height: Option<Spanned<i64>>,
}

impl RawLayer {
    /// The kind-specific fields that are present, with their spans.
    fn kind_fields(&self) -> Vec<(&'static str, Range<usize>)> {
        let present = [
            ("color", self.color.as_ref().map(Spanned::span)),
            ("from", self.from.as_ref().map(Spanned::span)),
            ("to", self.to.as_ref().map(Spanned::span)),
            ("direction", self.direction.as_ref().map(Spanned::span)),
            ("cell", self.cell.as_ref().map(Spanned::span)),
            ("colors", self.colors.as_ref().map(Spanned::span)),
            ("path", self.path.as_ref().map(Spanned::span)),
            ("sampling", self.sampling.as_ref().map(Spanned::span)),
            ("text", self.text.as_ref().map(Spanned::span)),
            ("size", self.size.as_ref().map(Spanned::span)),
            ("align", self.align.as_ref().map(Spanned::span)),
            ("width", self.width.as_ref().map(Spanned::span)),
            ("height", self.height.as_ref().map(Spanned::span)),
        ];
        present
            .into_iter()
            .filter_map(|(name, span)| span.map(|s| (name, s)))
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRect {
    x: Option<Spanned<toml::Value>>,
    y: Option<Spanned<toml::Value>>,
    w: Option<Spanned<toml::Value>>,
    h: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransform {
    rotate: Option<Spanned<f64>>,
    scale: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnimation {
    translate: Option<Spanned<RawTranslate>>,
    fade: Option<Spanned<RawFade>>,
    rotate: Option<Spanned<RawRotate>>,
    scroll: Option<Spanned<RawScroll>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTranslate {
    dx: Option<Spanned<toml::Value>>,
    dy: Option<Spanned<toml::Value>>,
    period: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFade {
    to: Option<Spanned<f64>>,
    period: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRotate {
    degrees: Option<Spanned<f64>>,
    period: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScroll {
    dx: Option<Spanned<i64>>,
    dy: Option<Spanned<i64>>,
    period: Option<Spanned<f64>>,
}

/// Parses and validates `text`, reporting errors against `file`.
pub(crate) fn parse(
    text: &str,
    file: &Path,
    origin: Origin<'_>,
) -> Result<Scene, super::SceneError> {
    let source = Source { text, file };
    let raw: RawScene = toml::from_str(text).map_err(|e| source.error(source.toml_problem(&e)))?;
    validate(raw, origin).map_err(|p| source.error(p))
}

fn validate(raw: RawScene, origin: Origin<'_>) -> Result<Scene, Problem> {
    let backdrop = match &raw.backdrop {
        None => BACKDROP,
        Some(value) => {
            let c = color("backdrop", value)?;
            if c[3] != 255 {
                return Err(Problem::new(
                    ErrorKind::OutOfRange,
                    "backdrop",
                    value.span(),
                    format!("{:?} is not opaque", value.get_ref()),
                )
                .hint("the backdrop has no alpha: write \"#rrggbb\""));
            }
            c
        }
    };
    let Some(layers) = raw.layers else {
        return Err(Problem::new(
            ErrorKind::NoLayers,
            "layers",
            0..0,
            "the scene has no layers",
        )
        .hint("add at least one [[layers]] table"));
    };
    let layers_span = layers.span();
    let raw_layers = layers.into_inner();
    if raw_layers.is_empty() {
        return Err(Problem::new(
            ErrorKind::NoLayers,
            "layers",
            layers_span,
            "the scene has no layers",
        )
        .hint("add at least one [[layers]] table"));
    }
    if let Some(extra) = raw_layers.get(MAX_LAYERS as usize) {
        return Err(Problem::new(
            ErrorKind::TooManyLayers,
            format!("layers[{MAX_LAYERS}]"),
            extra.span(),
            format!(
                "{} layers is too many; a scene has at most {MAX_LAYERS}",
                raw_layers.len()
            ),
        )
        .hint("remove layers or merge them"));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw_layers.len());
    for (index, raw_layer) in raw_layers.into_iter().enumerate() {
        let name_span = raw_layer.get_ref().name.as_ref().map(Spanned::span);
        let layer = layer(index, raw_layer, origin)?;
        if let Some(first) = seen.get(&layer.name) {
            return Err(Problem::new(
                ErrorKind::DuplicateName,
                field(index, "name"),
                name_span.unwrap_or(0..0),
                format!("the name {:?} is taken by layers[{first}]", layer.name),
            )
            .hint("every layer needs its own name"));
        }
        seen.insert(layer.name.clone(), index);
        out.push(layer);
    }
    Ok(Scene {
        backdrop,
        layers: out,
    })
}

/// The path of field `key` in layer `index`.
fn field(index: usize, key: &str) -> String {
    format!("layers[{index}].{key}")
}

fn layer(index: usize, raw: Spanned<RawLayer>, origin: Origin<'_>) -> Result<Layer, Problem> {
    let span = raw.span();
    let raw = raw.into_inner();
    let missing = |key: &str, hint: &str| {
        Problem::new(
            ErrorKind::MissingField,
            field(index, key),
            span.clone(),
            format!("missing field `{key}`"),
        )
        .hint(hint.to_string())
    };

    let name = raw.name.as_ref().ok_or_else(|| {
        missing(
            "name",
            "every layer needs a unique name, like name = \"background\"",
        )
    })?;
    check_name(index, name)?;

    let kind = raw.kind.as_ref().ok_or_else(|| {
        missing(
            "kind",
            "kind is one of \"solid\", \"gradient\", \"checker\", \"image\", \"text\"",
        )
    })?;
    let kind_name = kind.get_ref().as_str();
    let Some((kind_name, allowed)) = KIND_FIELDS.iter().find(|(k, _)| *k == kind_name) else {
        let hint = match suggest(kind_name, KINDS) {
            Some(near) => format!("did you mean \"{near}\"?"),
            None => format!("kind is one of {}", list(KINDS)),
        };
        return Err(Problem::new(
            ErrorKind::UnknownKind,
            field(index, "kind"),
            kind.span(),
            format!("unknown kind \"{kind_name}\""),
        )
        .hint(hint));
    };
    for (key, key_span) in raw.kind_fields() {
        if !allowed.contains(&key) {
            return Err(Problem::new(
                ErrorKind::FieldNotForKind,
                field(index, key),
                key_span,
                format!("`{key}` does not apply to a {kind_name} layer"),
            )
            .hint(format!("a {kind_name} layer takes {}", list(allowed))));
        }
    }

    let rect = raw.rect.as_ref().ok_or_else(|| {
        missing(
            "rect",
            "every layer needs a rect, like rect = { x = 0, y = 0, w = \"100%\", h = \"100%\" }",
        )
    })?;
    let rect = rect_spec(index, rect)?;

    let opacity = match &raw.opacity {
        None => 255,
        Some(v) => unit(&field(index, "opacity"), v, "opacity")?,
    };
    let z = match &raw.z {
        None => index as i32,
        Some(v) => {
            let z = *v.get_ref();
            if !(-1_000_000..=1_000_000).contains(&z) {
                return Err(out_of_range(
                    field(index, "z"),
                    v.span(),
                    z,
                    "z is a whole number from -1000000 to 1000000",
                ));
            }
            z as i32
        }
    };

    let content = match *kind_name {
        "solid" => Content::Solid {
            color: color(
                &field(index, "color"),
                raw.color
                    .as_ref()
                    .ok_or_else(|| missing("color", "a solid layer needs color = \"#rrggbb\""))?,
            )?,
        },
        "gradient" => Content::Gradient {
            from: color(
                &field(index, "from"),
                raw.from.as_ref().ok_or_else(|| {
                    missing(
                        "from",
                        "a gradient needs from = \"#rrggbb\" and to = \"#rrggbb\"",
                    )
                })?,
            )?,
            to: color(
                &field(index, "to"),
                raw.to.as_ref().ok_or_else(|| {
                    missing(
                        "to",
                        "a gradient needs from = \"#rrggbb\" and to = \"#rrggbb\"",
                    )
                })?,
            )?,
            direction: match &raw.direction {
                None => Direction::Horizontal,
                Some(v) => choice(
                    &field(index, "direction"),
                    v,
                    &[
                        ("horizontal", Direction::Horizontal),
                        ("vertical", Direction::Vertical),
                    ],
                )?,
            },
        },
        "checker" => {
            let cell = match &raw.cell {
                None => 16,
                Some(v) => whole(&field(index, "cell"), v, 1, 4096, "cell")? as u32,
            };
            let colors = raw.colors.as_ref().ok_or_else(|| {
                missing(
                    "colors",
                    "a checker needs colors = [\"#rrggbb\", \"#rrggbb\"]",
                )
            })?;
            let [a, b] = colors.get_ref().as_slice() else {
                return Err(Problem::new(
                    ErrorKind::OutOfRange,
                    field(index, "colors"),
                    colors.span(),
                    format!("{} colours given; a checker has 2", colors.get_ref().len()),
                )
                .hint("colors is two colours, like [\"#ffffff\", \"#000000\"]"));
            };
            Content::Checker {
                cell,
                colors: [
                    color(&field(index, "colors[0]"), a)?,
                    color(&field(index, "colors[1]"), b)?,
                ],
            }
        }
        "image" => {
            let path = raw.path.as_ref().ok_or_else(|| {
                missing(
                    "path",
                    "an image needs path = \"file.png\", relative to the scene file",
                )
            })?;
            Content::Image {
                source: image_source(&field(index, "path"), path, origin)?,
                sampling: match &raw.sampling {
                    None => Sampling::Nearest,
                    Some(v) => choice(
                        &field(index, "sampling"),
                        v,
                        &[("nearest", Sampling::Nearest), ("linear", Sampling::Linear)],
                    )?,
                },
            }
        }
        "pixels" => {
            let side = |key: &str, v: &Option<Spanned<i64>>| {
                match v {
                None => Err(missing(
                    key,
                    "a pixels layer needs the size of the application's pixels: width = 64, height = 64",
                )),
                Some(v) => Ok(whole(&field(index, key), v, 1, i64::from(MAX_PIXELS_SIDE), key)? as u32),
            }
            };
            Content::Pixels {
                width: side("width", &raw.width)?,
                height: side("height", &raw.height)?,
                sampling: match &raw.sampling {
                    None => Sampling::Nearest,
                    Some(v) => choice(
                        &field(index, "sampling"),
                        v,
                        &[("nearest", Sampling::Nearest), ("linear", Sampling::Linear)],
                    )?,
                },
                serial: 0,
            }
        }
        _ => {
            let text = raw
                .text
                .as_ref()
                .ok_or_else(|| missing("text", "a text layer needs text = \"...\""))?;
            let chars = text.get_ref().chars().count();
            if chars > MAX_TEXT_LEN || text.get_ref().chars().any(|c| c.is_control() && c != '\n') {
                return Err(Problem::new(
                    ErrorKind::OutOfRange,
                    field(index, "text"),
                    text.span(),
                    format!("a text of {chars} characters, or with control characters other than a line break, is not supported"),
                )
                .hint(format!(
                    "text is at most {MAX_TEXT_LEN} characters; \\n breaks a line"
                )));
            }
            Content::Text {
                text: text.get_ref().clone(),
                size: match &raw.size {
                    None => 16,
                    Some(v) => whole(&field(index, "size"), v, 1, 512, "size")? as u32,
                },
                color: match &raw.color {
                    None => [255, 255, 255, 255],
                    Some(v) => color(&field(index, "color"), v)?,
                },
                align: match &raw.align {
                    None => crate::text::Align::Left,
                    Some(v) => choice(
                        &field(index, "align"),
                        v,
                        &[
                            ("left", crate::text::Align::Left),
                            ("center", crate::text::Align::Center),
                            ("right", crate::text::Align::Right),
                        ],
                    )?,
                },
            }
        }
    };

    let animation = match &raw.animation {
        None => Animation::default(),
        Some(a) => animation(index, a.get_ref(), &content)?,
    };

    let transform = match &raw.transform {
        None => Transform::default(),
        Some(t) => transform(index, t.get_ref())?,
    };

    Ok(Layer {
        transform,
        name: name.get_ref().clone(),
        slot: u32::try_from(index).unwrap_or(u32::MAX),
        content,
        rect,
        opacity,
        z,
        animation,
    })
}

fn check_name(index: usize, name: &Spanned<String>) -> Result<(), Problem> {
    let n = name.get_ref();
    let ok = !n.is_empty()
        && n.chars().count() <= MAX_NAME_LEN
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        return Ok(());
    }
    Err(Problem::new(
        ErrorKind::BadName,
        field(index, "name"),
        name.span(),
        format!("{n:?} is not a layer name"),
    )
    .hint(format!(
        "a name is 1 to {MAX_NAME_LEN} letters, digits, `_` or `-`"
    )))
}

fn rect_spec(index: usize, rect: &Spanned<RawRect>) -> Result<RectSpec, Problem> {
    let raw = rect.get_ref();
    let get = |key: &str, value: &Option<Spanned<toml::Value>>, size: bool| {
        let path = field(index, &format!("rect.{key}"));
        let value = value.as_ref().ok_or_else(|| {
            Problem::new(
                ErrorKind::MissingField,
                path.clone(),
                rect.span(),
                format!("missing field `{key}`"),
            )
            .hint("a rect has x, y, w and h, like { x = 0, y = 0, w = \"100%\", h = 120 }")
        })?;
        if size {
            length(&path, value, 1, MAX_LAYER_SIDE as i64, 100)
        } else {
            length(&path, value, -(MAX_OFFSET as i64), MAX_OFFSET as i64, 200)
        }
    };
    Ok(RectSpec {
        x: get("x", &raw.x, false)?,
        y: get("y", &raw.y, false)?,
        w: get("w", &raw.w, true)?,
        h: get("h", &raw.h, true)?,
    })
}

fn animation(index: usize, raw: &RawAnimation, content: &Content) -> Result<Animation, Problem> {
    let path = |key: &str| field(index, &format!("animation.{key}"));
    let missing = |key: &str, span: Range<usize>, hint: &str| {
        Problem::new(
            ErrorKind::MissingField,
            path(key),
            span,
            format!("missing field `{}`", key.rsplit('.').next().unwrap_or(key)),
        )
        .hint(hint.to_string())
    };
    let period_of = |key: &str, table: Range<usize>, p: &Option<Spanned<f64>>| match p {
        None => Err(missing(
            &format!("{key}.period"),
            table,
            "an animation needs period = SECONDS",
        )),
        Some(p) => period(&path(&format!("{key}.period")), p),
    };

    let translate = match &raw.translate {
        None => None,
        Some(t) => {
            let r = t.get_ref();
            let offset = |key: &str, v: &Option<Spanned<toml::Value>>| match v {
                None => Ok(Length::Px(0)),
                Some(v) => length(
                    &path(&format!("translate.{key}")),
                    v,
                    -(MAX_OFFSET as i64),
                    MAX_OFFSET as i64,
                    200,
                ),
            };
            Some(Translate {
                dx: offset("dx", &r.dx)?,
                dy: offset("dy", &r.dy)?,
                period: period_of("translate", t.span(), &r.period)?,
            })
        }
    };
    let fade = match &raw.fade {
        None => None,
        Some(f) => {
            let r = f.get_ref();
            let to = r.to.as_ref().ok_or_else(|| {
                missing(
                    "fade.to",
                    f.span(),
                    "a fade needs to = OPACITY, a number from 0 to 1",
                )
            })?;
            Some(Fade {
                to: unit(&path("fade.to"), to, "opacity")?,
                period: period_of("fade", f.span(), &r.period)?,
            })
        }
    };
    let rotate = match &raw.rotate {
        None => None,
        Some(t) => {
            let r = t.get_ref();
            let millidegrees = match &r.degrees {
                None => 360_000,
                Some(d) => {
                    let v = *d.get_ref();
                    if !(-36_000.0..=36_000.0).contains(&v) {
                        return Err(out_of_range(
                            path("rotate.degrees"),
                            d.span(),
                            v,
                            "degrees is a number from -36000 to 36000",
                        ));
                    }
                    (v * 1000.0).round() as i64
                }
            };
            Some(Rotate {
                millidegrees,
                period: period_of("rotate", t.span(), &r.period)?,
            })
        }
    };
    let scroll = match &raw.scroll {
        None => None,
        Some(s) => {
            if !matches!(content, Content::Checker { .. } | Content::Image { .. }) {
                return Err(Problem::new(
                    ErrorKind::FieldNotForKind,
                    path("scroll"),
                    s.span(),
                    format!("a {} layer cannot scroll", content.kind_name()),
                )
                .hint("scroll applies to checker and image layers"));
            }
            let r = s.get_ref();
            let max = i64::from(MAX_LAYER_SIDE);
            let offset = |key: &str, v: &Option<Spanned<i64>>| match v {
                None => Ok(0),
                Some(v) => {
                    whole(&path(&format!("scroll.{key}")), v, -max, max, key).map(|v| v as i32)
                }
            };
            Some(Scroll {
                dx: offset("dx", &r.dx)?,
                dy: offset("dy", &r.dy)?,
                period: period_of("scroll", s.span(), &r.period)?,
            })
        }
    };
    Ok(Animation {
        translate,
        fade,
        rotate,
        scroll,
    })
}

/// The largest scale a layer may be given: its texture grows with it.
pub const MAX_SCALE: f64 = 8.0;
/// The smallest scale a layer may be given.
pub const MIN_SCALE: f64 = 0.05;

fn transform(index: usize, raw: &RawTransform) -> Result<Transform, Problem> {
    let mut t = Transform::default();
    if let Some(d) = &raw.rotate {
        let v = *d.get_ref();
        if !(-36_000.0..=36_000.0).contains(&v) {
            return Err(out_of_range(
                field(index, "transform.rotate"),
                d.span(),
                v,
                "rotate is degrees, a number from -36000 to 36000",
            ));
        }
        t.millidegrees = (v * 1000.0).round() as i64;
    }
    if let Some(s) = &raw.scale {
        let v = *s.get_ref();
        if !(MIN_SCALE..=MAX_SCALE).contains(&v) {
            return Err(out_of_range(
                field(index, "transform.scale"),
                s.span(),
                v,
                &format!("scale is a number from {MIN_SCALE} to {MAX_SCALE}"),
            ));
        }
        t.scale = (v * 1000.0).round() as u32;
    }
    Ok(t)
}

fn out_of_range(
    path: String,
    span: Range<usize>,
    value: impl std::fmt::Display,
    hint: &str,
) -> Problem {
    Problem::new(
        ErrorKind::OutOfRange,
        path,
        span,
        format!("{value} is out of range"),
    )
    .hint(hint.to_string())
}

/// A number from 0 to 1, as 0..=255.
fn unit(path: &str, v: &Spanned<f64>, what: &str) -> Result<u8, Problem> {
    let x = *v.get_ref();
    if !(0.0..=1.0).contains(&x) {
        return Err(out_of_range(
            path.to_string(),
            v.span(),
            x,
            &format!("{what} is a number from 0 to 1"),
        ));
    }
    Ok((x * 255.0).round() as u8)
}

/// A whole number in `min..=max`.
fn whole(path: &str, v: &Spanned<i64>, min: i64, max: i64, what: &str) -> Result<i64, Problem> {
    let x = *v.get_ref();
    if !(min..=max).contains(&x) {
        return Err(out_of_range(
            path.to_string(),
            v.span(),
            x,
            &format!("{what} is a whole number from {min} to {max}"),
        ));
    }
    Ok(x)
}

/// A period in seconds, as whole frames at [`FPS`].
fn period(path: &str, v: &Spanned<f64>) -> Result<u32, Problem> {
    let s = *v.get_ref();
    let hint = format!(
        "period is a number of seconds, at least one frame (1/{FPS}) and at most {MAX_PERIOD_SECONDS}"
    );
    if s == 0.0 {
        return Err(Problem::new(
            ErrorKind::ZeroPeriod,
            path.to_string(),
            v.span(),
            "a period of 0 never advances",
        )
        .hint(hint));
    }
    if !(0.0..=MAX_PERIOD_SECONDS).contains(&s) {
        return Err(out_of_range(path.to_string(), v.span(), s, &hint));
    }
    let frames = (s * f64::from(FPS)).round() as u32;
    if frames == 0 {
        return Err(Problem::new(
            ErrorKind::ZeroPeriod,
            path.to_string(),
            v.span(),
            format!("a period of {s} s is shorter than one frame at {FPS} frames per second"),
        )
        .hint(hint));
    }
    Ok(frames)
}

/// One of a fixed set of strings.
fn choice<T: Copy>(path: &str, v: &Spanned<String>, options: &[(&str, T)]) -> Result<T, Problem> {
    if let Some((_, t)) = options.iter().find(|(name, _)| name == v.get_ref()) {
        return Ok(*t);
    }
    let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
    let hint = match suggest(v.get_ref(), &names) {
        Some(near) => format!("did you mean \"{near}\"?"),
        None => format!("the values are {}", list(&names)),
    };
    Err(Problem::new(
        ErrorKind::UnknownValue,
        path.to_string(),
        v.span(),
        format!("unknown value {:?}", v.get_ref()),
    )
    .hint(hint))
}

/// A colour string, straight alpha, converted to premultiplied RGBA8.
fn color(path: &str, v: &Spanned<String>) -> Result<[u8; 4], Problem> {
    let bad = || {
        Problem::new(
            ErrorKind::BadColor,
            path.to_string(),
            v.span(),
            format!("{:?} is not a colour", v.get_ref()),
        )
        .hint("a colour is \"#rgb\", \"#rgba\", \"#rrggbb\" or \"#rrggbbaa\" in hex, alpha not premultiplied")
    };
    let hex = v.get_ref().strip_prefix('#').ok_or_else(bad)?;
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let digit = |i: usize| u8::from_str_radix(&hex[i..=i], 16).map_err(|_| bad());
    let pair = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
    let [r, g, b, a] = match hex.len() {
        3 | 4 => {
            let mut c = [255u8; 4];
            for (i, slot) in c.iter_mut().enumerate().take(hex.len()) {
                *slot = digit(i)? * 17;
            }
            c
        }
        6 | 8 => {
            let mut c = [255u8; 4];
            for (i, slot) in c.iter_mut().enumerate().take(hex.len() / 2) {
                *slot = pair(2 * i)?;
            }
            c
        }
        _ => return Err(bad()),
    };
    Ok([premul(r, a), premul(g, a), premul(b, a), a])
}

/// A length: whole pixels in `min_px..=max_px`, or a percentage whose magnitude is at most
/// `max_percent` (and, when `min_px` is positive, more than zero).
fn length(
    path: &str,
    v: &Spanned<toml::Value>,
    min_px: i64,
    max_px: i64,
    max_percent: i64,
) -> Result<Length, Problem> {
    let positive = min_px > 0;
    let range_hint = if positive {
        format!("a size is {min_px} to {max_px} pixels, or more than 0% and at most {max_percent}%")
    } else {
        format!("a position is {min_px} to {max_px} pixels, or -{max_percent}% to {max_percent}%")
    };
    let bad = |what: String| {
        Problem::new(ErrorKind::BadLength, path.to_string(), v.span(), what).hint(
            "a length is whole pixels (120) or a percentage of the output in a string (\"50%\")",
        )
    };
    match v.get_ref() {
        toml::Value::Integer(px) => {
            if !(min_px..=max_px).contains(px) {
                return Err(out_of_range(path.to_string(), v.span(), px, &range_hint));
            }
            Ok(Length::Px(*px as i32))
        }
        toml::Value::String(s) => {
            let s = s.trim();
            if let Some(number) = s.strip_suffix('%') {
                let hundredths =
                    percent(number.trim()).ok_or_else(|| bad(format!("{s:?} is not a length")))?;
                let in_range = if positive {
                    hundredths > 0 && hundredths <= max_percent * 100
                } else {
                    hundredths.abs() <= max_percent * 100
                };
                if !in_range {
                    return Err(out_of_range(path.to_string(), v.span(), s, &range_hint));
                }
                Ok(Length::Percent(hundredths as i32))
            } else if let Some(number) = s.strip_suffix("px") {
                let px: i64 = number
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("{s:?} is not a length")))?;
                if !(min_px..=max_px).contains(&px) {
                    return Err(out_of_range(path.to_string(), v.span(), s, &range_hint));
                }
                Ok(Length::Px(px as i32))
            } else {
                Err(bad(format!("{s:?} is not a length")))
            }
        }
        toml::Value::Float(f) => Err(bad(format!("{f} is not a whole number of pixels"))),
        other => Err(bad(format!("a {} is not a length", other.type_str()))),
    }
}

/// `"12.5"` as 1250 hundredths; at most two decimals and six whole digits.
fn percent(s: &str) -> Option<i64> {
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let digits = |d: &str| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit());
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) if digits(f) => (w, f),
        Some(_) => return None,
        None => (s, ""),
    };
    if !digits(whole) || whole.len() > 6 || frac.len() > 2 {
        return None;
    }
    let mut v: i64 = whole.parse().ok()?;
    v *= 100;
    if !frac.is_empty() {
        let f: i64 = frac.parse().ok()?;
        v += if frac.len() == 1 { f * 10 } else { f };
    }
    Some(if negative { -v } else { v })
}

fn image_source(
    path: &str,
    v: &Spanned<String>,
    origin: Origin<'_>,
) -> Result<ImageSource, Problem> {
    let written = v.get_ref();
    if written.is_empty() || written.contains('\0') {
        return Err(Problem::new(
            ErrorKind::BadImagePath,
            path.to_string(),
            v.span(),
            format!("{written:?} is not a file path"),
        )
        .hint("path is the PNG file, relative to the scene file"));
    }
    match origin {
        Origin::File(scene_file) => Ok(ImageSource::File(resolve_image_path(
            scene_file,
            Path::new(written),
        ))),
        Origin::Builtin => BUILTIN_IMAGES
            .iter()
            .find(|(name, _)| name == written)
            .map(|(name, bytes)| ImageSource::Builtin {
                name: (*name).to_string(),
                bytes,
            })
            .ok_or_else(|| {
                let names: Vec<&str> = BUILTIN_IMAGES.iter().map(|(n, _)| *n).collect();
                Problem::new(
                    ErrorKind::BadImagePath,
                    path.to_string(),
                    v.span(),
                    format!("no built-in image is called {written:?}"),
                )
                .hint(format!("the built-in images are {}", list(&names)))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::schema::LAYER_FIELDS;

    #[test]
    fn percentages_parse_to_hundredths() {
        assert_eq!(percent("50"), Some(5000));
        assert_eq!(percent("12.5"), Some(1250));
        assert_eq!(percent("0.25"), Some(25));
        assert_eq!(percent("-3"), Some(-300));
        assert_eq!(percent("1.234"), None);
        assert_eq!(percent("abc"), None);
        assert_eq!(percent(""), None);
        assert_eq!(percent("."), None);
        assert_eq!(percent("5."), None);
        assert_eq!(percent("1234567"), None);
    }

    /// The fields every layer takes, whatever its kind.
    const COMMON_FIELDS: &[&str] = &[
        "name",
        "kind",
        "rect",
        "opacity",
        "z",
        "animation",
        "transform",
    ];

    #[test]
    fn every_listed_field_is_accepted() {
        // The hint lists and the raw tables must agree: a document using every listed field
        // deserializes without an unknown-field error.
        let layer: Vec<String> = LAYER_FIELDS
            .iter()
            .map(|f| match *f {
                "rect" => "rect = { x = 0, y = 0, w = 1, h = 1 }".to_string(),
                "animation" => "animation = { translate = { dx = 1, dy = 1, period = 1 }, \
                                fade = { to = 0.5, period = 1 }, \
                                rotate = { degrees = 1, period = 1 }, \
                                scroll = { dx = 1, dy = 1, period = 1 } }"
                    .to_string(),
                "opacity" => "opacity = 1.0".to_string(),
                "transform" => "transform = { rotate = 1, scale = 1 }".to_string(),
                "z" | "cell" | "size" | "width" | "height" => format!("{f} = 1"),
                "colors" => "colors = [\"#000\", \"#fff\"]".to_string(),
                _ => format!("{f} = \"x\""),
            })
            .collect();
        let doc = format!("backdrop = \"#000\"\n[[layers]]\n{}\n", layer.join("\n"));
        let parsed: Result<RawScene, _> = toml::from_str(&doc);
        assert!(parsed.is_ok(), "{doc}\n{:?}", parsed.err());
        for (_, fields) in KIND_FIELDS {
            for f in *fields {
                assert!(LAYER_FIELDS.contains(f), "{f}");
            }
        }
        for f in COMMON_FIELDS {
            assert!(LAYER_FIELDS.contains(f), "{f}");
        }
        assert_eq!(
            LAYER_FIELDS.len(),
            COMMON_FIELDS.len() + KIND_FIELDS.iter().map(|(_, f)| f.len()).sum::<usize>() - 2,
            "only `color` and `sampling` are shared by two kinds"
        );
    }

    #[test]
    fn colours_premultiply() {
        let s = |t: &str| Spanned::new(0..0, t.to_string());
        assert_eq!(color("c", &s("#ff8800")).ok(), Some([255, 136, 0, 255]));
        assert_eq!(color("c", &s("#f80")).ok(), Some([255, 136, 0, 255]));
        assert_eq!(color("c", &s("#ffffff80")).ok(), Some([128, 128, 128, 128]));
        assert_eq!(color("c", &s("#fff8")).ok(), Some([136, 136, 136, 136]));
        for bad in ["ff8800", "#ff880", "#gg8800", "#", "#+f8800"] {
            assert_eq!(
                color("c", &s(bad)).err().map(|p| p.kind),
                Some(ErrorKind::BadColor),
                "{bad}"
            );
        }
    }
}
