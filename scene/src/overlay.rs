//! The window's overlay: a few lines of text about the run (frames per second, present
//! latency, buffer backend, fence, fd transport, restarts, sandbox), drawn by the GPU process
//! as one more layer of every frame, above the scene's.
//!
//! # Who does what
//!
//! The launcher writes the lines ([`check`]ed against [`MAX_LINES`] and [`MAX_CHARS`],
//! printable ASCII only) and sends them to the GPU process; the GPU process checks them again
//! (they cross a process boundary), rasterizes them with [`rasterize`] on the CPU, inside its
//! sandbox, uploads the result as a texture and copies it into the overlay layer's buffer
//! texel for texel. The renderer composites the layer like any other, at [`POSITION`] and
//! [`Z`] (above every scene layer). A test calls the same [`rasterize`] and composites it over
//! the scene's reference with [`crate::blend_over`], so the overlay's pixels on screen are
//! predicted exactly.
//!
//! # The text
//!
//! Glyphs come from DejaVu Sans Mono (the `dejavu` crate embeds the TTF; Bitstream Vera
//! licence), scaled to [`FONT_PX`] pixels and rasterized by `ab_glyph` (pure Rust, coverage
//! by exact area). The face is monospaced, so every character takes one cell of the same
//! width and the panel's size follows from the number of lines and the longest line alone:
//! [`size`]. Each texel is the panel colour [`PANEL`] mixed with [`INK`] by the glyph
//! coverage there, in premultiplied RGBA8.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};

use crate::file::LayerPixels;

/// The most lines an overlay has.
pub const MAX_LINES: usize = 8;
/// The most characters a line has.
pub const MAX_CHARS: usize = 80;
/// The glyphs' size: the font's em square in pixels.
pub const FONT_PX: f32 = 14.0;
/// Empty pixels between the panel's edge and the text, on every side.
pub const PADDING: u32 = 6;
/// The panel behind the text: translucent black, premultiplied.
pub const PANEL: [u8; 4] = [0, 0, 0, 176];
/// The text's colour: opaque white.
pub const INK: [u8; 4] = [255, 255, 255, 255];
/// Where the panel's top-left corner goes in the frame.
pub const POSITION: (i32, i32) = (8, 8);
/// The overlay's stacking order: above every layer a scene may have.
pub const Z: i32 = i32::MAX;

/// Why lines cannot be an overlay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// More than [`MAX_LINES`] lines.
    #[error("{lines} lines; an overlay has at most {MAX_LINES}")]
    TooManyLines {
        /// How many there were.
        lines: usize,
    },
    /// A line of more than [`MAX_CHARS`] characters.
    #[error("line {line} has {chars} characters; a line has at most {MAX_CHARS}")]
    LineTooLong {
        /// The line (from 0).
        line: usize,
        /// Its length in characters.
        chars: usize,
    },
    /// A character outside printable ASCII (`' '..='~'`): a control character, or one the
    /// overlay does not draw.
    #[error("line {line}, column {column}: {ch:?} is not printable ASCII")]
    BadChar {
        /// The line (from 0).
        line: usize,
        /// The column (from 0).
        column: usize,
        /// The character.
        ch: char,
    },
}

/// Whether `lines` can be an overlay: at most [`MAX_LINES`] lines of at most [`MAX_CHARS`]
/// printable ASCII characters each.
pub fn check(lines: &[String]) -> Result<(), TextError> {
    if lines.len() > MAX_LINES {
        return Err(TextError::TooManyLines { lines: lines.len() });
    }
    for (line, text) in lines.iter().enumerate() {
        if let Some((column, ch)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| !(' '..='~').contains(c))
        {
            return Err(TextError::BadChar { line, column, ch });
        }
        if text.len() > MAX_CHARS {
            return Err(TextError::LineTooLong {
                line,
                chars: text.len(),
            });
        }
    }
    Ok(())
}

/// The font failed to load (never with the font this crate embeds; a test proves it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the overlay's font does not load: {0}")]
pub struct FontError(String);

/// The embedded face.
fn font() -> Result<FontRef<'static>, FontError> {
    FontRef::try_from_slice(dejavu::sans_mono::regular()).map_err(|e| FontError(e.to_string()))
}

/// A character cell: its width, the line height, and the baseline below a line's top.
struct Metrics {
    cell: u32,
    line: u32,
    ascent: f32,
}

fn metrics(font: &FontRef<'_>) -> Metrics {
    let scaled = font.as_scaled(PxScale::from(FONT_PX));
    let cell = scaled.h_advance(font.glyph_id('M')).ceil().max(1.0) as u32;
    let line = (scaled.ascent() - scaled.descent() + scaled.line_gap())
        .ceil()
        .max(1.0) as u32;
    Metrics {
        cell,
        line,
        ascent: scaled.ascent().ceil(),
    }
}

/// The panel's size for `lines` (clipped to the bounds as [`rasterize`] clips them): one cell
/// per character of the longest line, one line height per line, [`PADDING`] around.
pub fn size(lines: &[String]) -> Result<(u32, u32), FontError> {
    let m = metrics(&font()?);
    Ok(size_with(&m, lines))
}

fn size_with(m: &Metrics, lines: &[String]) -> (u32, u32) {
    let rows = lines.len().clamp(1, MAX_LINES) as u32;
    let cols = lines
        .iter()
        .take(MAX_LINES)
        .map(|l| l.chars().count().min(MAX_CHARS))
        .max()
        .unwrap_or(0)
        .max(1) as u32;
    (2 * PADDING + cols * m.cell, 2 * PADDING + rows * m.line)
}

/// The overlay of `lines`, premultiplied RGBA8 of [`size`]: the panel with the text drawn in.
/// Lines past [`MAX_LINES`] and characters past [`MAX_CHARS`] are left out (a caller checks
/// with [`check`] first); a character the face lacks is drawn as its missing-glyph box.
pub fn rasterize(lines: &[String]) -> Result<LayerPixels, FontError> {
    let font = font()?;
    let m = metrics(&font);
    let (w, h) = size_with(&m, lines);
    let mut coverage = vec![0u8; w as usize * h as usize];
    let scale = PxScale::from(FONT_PX);
    for (row, text) in lines.iter().take(MAX_LINES).enumerate() {
        let baseline = (PADDING + row as u32 * m.line) as f32 + m.ascent;
        for (col, ch) in text.chars().take(MAX_CHARS).enumerate() {
            let left = (PADDING + col as u32 * m.cell) as f32;
            let glyph = font
                .glyph_id(ch)
                .with_scale_and_position(scale, ab_glyph::point(left, baseline));
            let Some(outlined) = font.outline_glyph(glyph) else {
                continue; // a space: nothing to draw
            };
            let bounds = outlined.px_bounds();
            let (bx, by) = (bounds.min.x as i64, bounds.min.y as i64);
            outlined.draw(|x, y, c| {
                let (px, py) = (bx + i64::from(x), by + i64::from(y));
                if px < 0 || py < 0 || px >= i64::from(w) || py >= i64::from(h) {
                    return;
                }
                let at = py as usize * w as usize + px as usize;
                let v = (c.clamp(0.0, 1.0) * 255.0).round() as u8;
                if let Some(cov) = coverage.get_mut(at) {
                    *cov = (*cov).max(v);
                }
            });
        }
    }
    let mut pixels = Vec::with_capacity(coverage.len() * 4);
    for cov in coverage {
        let a = u32::from(cov);
        for i in 0..4 {
            let mixed = (u32::from(INK[i]) * a + u32::from(PANEL[i]) * (255 - a) + 127) / 255;
            pixels.push(mixed as u8);
        }
    }
    Ok(LayerPixels {
        width: w,
        height: h,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_bounds_are_checked_and_named() {
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(
            check(&lines(&["fps 60.0", "sandbox seccomp+landlock"])),
            Ok(())
        );
        let full: Vec<String> = (0..MAX_LINES).map(|_| "~".repeat(MAX_CHARS)).collect();
        assert_eq!(check(&full), Ok(()));
        let mut nine = full.clone();
        nine.push(String::new());
        assert_eq!(check(&nine), Err(TextError::TooManyLines { lines: 9 }));
        let long = lines(&["ok", &"x".repeat(MAX_CHARS + 1)]);
        assert_eq!(
            check(&long),
            Err(TextError::LineTooLong {
                line: 1,
                chars: MAX_CHARS + 1
            })
        );
        for (bad, ch) in [
            ("a\nb", '\n'),
            ("a\u{1b}[2J", '\u{1b}'),
            ("caf\u{e9}", '\u{e9}'),
        ] {
            let err = check(&lines(&["fine", bad])).expect_err(bad);
            assert!(
                matches!(err, TextError::BadChar { line: 1, ch: c, .. } if c == ch),
                "{bad:?}: {err}"
            );
        }
        assert!(check(&lines(&["\u{7f}"])).is_err(), "DEL is a control");
    }

    #[test]
    fn the_panel_is_sized_by_its_text_and_holds_ink_only_where_glyphs_are() {
        let one = rasterize(&lines(&["fps"])).expect("the embedded font loads");
        let two = rasterize(&lines(&["fps 60.0", "x"])).expect("font");
        assert_eq!(
            (one.width, one.height),
            size(&lines(&["fps"])).expect("font")
        );
        assert_eq!(one.pixels.len(), (one.width * one.height * 4) as usize);
        // Monospaced: 8 characters are 8 / 3 as wide as 3 (less the padding); two lines are
        // twice as tall.
        let cell = (one.width - 2 * PADDING) / 3;
        assert!(cell >= 7, "a cell of {cell} px");
        assert_eq!(two.width - 2 * PADDING, 8 * cell);
        assert_eq!(two.height - 2 * PADDING, 2 * (one.height - 2 * PADDING));
        let texels: Vec<[u8; 4]> = one
            .pixels
            .chunks_exact(4)
            .map(|p| [p[0], p[1], p[2], p[3]])
            .collect();
        // The padding is bare panel; some texels are mostly ink; every texel is premultiplied
        // and a mix of the two (grey, between the panel's alpha and opaque).
        let w = one.width as usize;
        for (i, t) in texels.iter().enumerate() {
            let (x, y) = ((i % w) as u32, (i / w) as u32);
            if x < PADDING / 2 || y < PADDING / 2 || x >= one.width - PADDING / 2 {
                assert_eq!(*t, PANEL, "({x}, {y}) is padding");
            }
            assert!(t[0] == t[1] && t[1] == t[2] && t[0] <= t[3], "{t:?}");
            assert!(t[3] >= PANEL[3], "{t:?}");
        }
        let ink = texels.iter().filter(|t| t[0] >= 192).count();
        assert!(ink > 20, "{ink} texels mostly ink");
        // Deterministic, and the text matters.
        assert_eq!(rasterize(&lines(&["fps"])).expect("font"), one);
        let other = rasterize(&lines(&["fpt"])).expect("font");
        assert_eq!((other.width, other.height), (one.width, one.height));
        assert_ne!(other.pixels, one.pixels);
        // A space draws nothing: its cell is bare panel.
        let spaced = rasterize(&lines(&["   "])).expect("font");
        assert!(spaced.pixels.chunks_exact(4).all(|p| p == PANEL));
    }

    #[test]
    fn what_is_past_the_bounds_is_left_out() {
        let many: Vec<String> = (0..MAX_LINES + 3)
            .map(|_| "y".repeat(MAX_CHARS + 5))
            .collect();
        let px = rasterize(&many).expect("font");
        let bounded: Vec<String> = (0..MAX_LINES).map(|_| "y".repeat(MAX_CHARS)).collect();
        assert_eq!(px, rasterize(&bounded).expect("font"));
        let empty = rasterize(&[]).expect("font");
        assert!(empty.pixels.chunks_exact(4).all(|p| p == PANEL));
    }
}
