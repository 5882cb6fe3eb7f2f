//! Text layers: anti-aliased glyphs of DejaVu Sans, laid out in lines inside the layer's
//! rectangle.
//!
//! The GPU process rasterizes a text layer with [`rasterize`] on the CPU, inside its sandbox
//! (the `dejavu` crate embeds the TTF, so nothing is opened), and uploads the result as the
//! layer's texture; the scene's CPU reference calls the same function, so a text layer's pixels
//! are predicted exactly.
//!
//! Layout: the text is split into lines at each `\n`, and each line is wrapped at spaces to the
//! rectangle's width (a word wider than the rectangle is broken between characters). Lines are
//! one line height apart (the face's ascent, descent and line gap at `size` pixels), the block
//! of lines is centred vertically, and each line is placed by [`Align`]. What falls outside the
//! rectangle is clipped. Glyph coverage comes from `ab_glyph` (exact area, pure Rust); a texel is
//! the colour scaled by its coverage, premultiplied RGBA8. A character the face lacks is drawn as
//! its missing-glyph box.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};

/// Where each line of a text layer sits between the rectangle's left and right edges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Align {
    /// Against the left edge.
    #[default]
    Left,
    /// Centred.
    Center,
    /// Against the right edge.
    Right,
}

impl Align {
    /// The name the scene file gives it.
    pub fn name(self) -> &'static str {
        match self {
            Align::Left => "left",
            Align::Center => "center",
            Align::Right => "right",
        }
    }
}

/// The embedded face. It is part of the binary, and a test proves it loads.
fn font() -> Option<FontRef<'static>> {
    FontRef::try_from_slice(dejavu::sans::regular()).ok()
}

/// `text` at `size` pixels in `color` (premultiplied RGBA8), placed by `align`, in a `w` x `h`
/// rectangle: premultiplied RGBA8, rows top-down, `w * 4` bytes a row. Transparent where no
/// glyph covers a texel.
pub fn rasterize(text: &str, size: u32, color: [u8; 4], align: Align, w: u32, h: u32) -> Vec<u8> {
    let mut coverage = vec![0u8; w as usize * h as usize];
    if let Some(font) = font() {
        draw(&font, text, size, align, w, h, &mut coverage);
    }
    let mut pixels = Vec::with_capacity(coverage.len() * 4);
    for cov in coverage {
        let a = u32::from(cov);
        for c in color {
            pixels.push(((u32::from(c) * a + 127) / 255) as u8);
        }
    }
    pixels
}

/// The lines of `text` as laid out in a rectangle `w` wide at `size` pixels: split at `\n`,
/// wrapped at spaces, a word wider than `w` broken between characters.
pub fn lines(text: &str, size: u32, w: u32) -> Vec<String> {
    match font() {
        Some(font) => wrap(&font.as_scaled(scale(size)), text, w as f32),
        None => text.split('\n').map(str::to_owned).collect(),
    }
}

fn scale(size: u32) -> PxScale {
    PxScale::from(size.max(1) as f32)
}

/// How wide `s` is set in `font`, kerning included.
fn width<F: Font>(font: &ab_glyph::PxScaleFont<F>, s: &str) -> f32 {
    let mut x = 0.0;
    let mut prev = None;
    for ch in s.chars() {
        let id = font.glyph_id(ch);
        if let Some(p) = prev {
            x += font.kern(p, id);
        }
        x += font.h_advance(id);
        prev = Some(id);
    }
    x
}

fn wrap<F: Font>(font: &ab_glyph::PxScaleFont<F>, text: &str, w: f32) -> Vec<String> {
    let mut out = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split(' ') {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if width(font, &candidate) <= w || line.is_empty() && word.is_empty() {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                out.push(std::mem::take(&mut line));
            }
            // The word alone, broken between characters where it is wider than the line.
            for ch in word.chars() {
                let mut longer = line.clone();
                longer.push(ch);
                if !line.is_empty() && width(font, &longer) > w {
                    out.push(std::mem::take(&mut line));
                    line.push(ch);
                } else {
                    line = longer;
                }
            }
        }
        out.push(line);
    }
    out
}

fn draw(
    font: &FontRef<'_>,
    text: &str,
    size: u32,
    align: Align,
    w: u32,
    h: u32,
    coverage: &mut [u8],
) {
    let scaled = font.as_scaled(scale(size));
    let line_height = (scaled.ascent() - scaled.descent() + scaled.line_gap()).ceil();
    let lines = wrap(&scaled, text, w as f32);
    let block = line_height * lines.len() as f32;
    let top = ((h as f32 - block) / 2.0).floor();
    for (row, line) in lines.iter().enumerate() {
        let baseline = top + row as f32 * line_height + scaled.ascent().ceil();
        if baseline - scaled.ascent() > h as f32 {
            break;
        }
        let lw = width(&scaled, line);
        let mut x = match align {
            Align::Left => 0.0,
            Align::Center => ((w as f32 - lw) / 2.0).floor(),
            Align::Right => (w as f32 - lw).floor(),
        };
        let mut prev = None;
        for ch in line.chars() {
            let id = scaled.glyph_id(ch);
            if let Some(p) = prev {
                x += scaled.kern(p, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(scale(size), ab_glyph::point(x, baseline));
            x += scaled.h_advance(id);
            let Some(outlined) = font.outline_glyph(glyph) else {
                continue; // a space: nothing to draw
            };
            let bounds = outlined.px_bounds();
            let (bx, by) = (bounds.min.x as i64, bounds.min.y as i64);
            outlined.draw(|gx, gy, c| {
                let (px, py) = (bx + i64::from(gx), by + i64::from(gy));
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns and rows holding any ink in `px` of a `w` wide layer: (min x, max x, min y,
    /// max y), or `None` where there is none.
    fn ink(px: &[u8], w: u32) -> Option<(u32, u32, u32, u32)> {
        let mut b: Option<(u32, u32, u32, u32)> = None;
        for (i, t) in px.chunks_exact(4).enumerate() {
            if t[3] == 0 {
                continue;
            }
            let (x, y) = (i as u32 % w, i as u32 / w);
            b = Some(match b {
                None => (x, x, y, y),
                Some((x0, x1, y0, y1)) => (x0.min(x), x1.max(x), y0.min(y), y1.max(y)),
            });
        }
        b
    }

    #[test]
    fn the_face_loads() {
        assert!(font().is_some());
    }

    #[test]
    fn glyphs_are_anti_aliased_in_the_colour_premultiplied() {
        let px = rasterize("Hello", 24, [200, 100, 50, 255], Align::Left, 120, 40);
        let alphas: std::collections::BTreeSet<u8> = px.chunks_exact(4).map(|t| t[3]).collect();
        // Fully covered texels, partly covered ones, and empty ones.
        assert!(alphas.contains(&0) && alphas.contains(&255), "{alphas:?}");
        assert!(alphas.iter().any(|a| (1..255).contains(a)), "no edge texel");
        for t in px.chunks_exact(4) {
            let a = u32::from(t[3]);
            assert_eq!(u32::from(t[0]), (200 * a + 127) / 255);
            assert_eq!(u32::from(t[1]), (100 * a + 127) / 255);
        }
    }

    #[test]
    fn alignment_moves_the_line_and_the_block_is_centred() {
        let (w, h) = (200, 60);
        let at = |a| ink(&rasterize("Mid", 20, [255; 4], a, w, h), w).expect("ink");
        let (l, c, r) = (at(Align::Left), at(Align::Center), at(Align::Right));
        assert!(l.0 <= 3, "{l:?}");
        assert!(r.1 >= w - 3, "{r:?}");
        let mid = (c.0 + c.1) / 2;
        assert!((w / 2 - 4..=w / 2 + 4).contains(&mid), "{c:?}");
        // Vertically centred: about as much room above the ink as below.
        let (above, below) = (l.2, h - 1 - l.3);
        assert!(above.abs_diff(below) <= 10, "{l:?}");
    }

    #[test]
    fn lines_wrap_at_spaces_and_break_words_wider_than_the_layer() {
        let w = 100;
        let ls = lines("one two three four five six", 16, w);
        assert!(ls.len() >= 2, "{ls:?}");
        assert!(ls.iter().all(|l| !l.starts_with(' ')), "{ls:?}");
        assert_eq!(ls.join(" "), "one two three four five six");
        let long = lines("abcdefghijklmnopqrstuvwxyzabcdefghij", 16, w);
        assert!(long.len() >= 2, "{long:?}");
        assert_eq!(long.concat(), "abcdefghijklmnopqrstuvwxyzabcdefghij");
        assert_eq!(lines("a\nb", 16, w), vec!["a", "b"]);
        // Each wrapped line fits, and two lines draw ink in two bands.
        let px = rasterize("top\nbottom", 16, [255; 4], Align::Left, w, 80);
        let b = ink(&px, w).expect("ink");
        assert!(b.3 - b.2 > 20, "{b:?}");
    }

    #[test]
    fn what_does_not_fit_is_clipped_and_nothing_panics() {
        for (w, h) in [(1, 1), (3, 200), (200, 3)] {
            let px = rasterize("clipped text, wrapped", 64, [9; 4], Align::Center, w, h);
            assert_eq!(px.len(), (w * h * 4) as usize);
        }
        assert!(rasterize("", 16, [255; 4], Align::Right, 10, 10)
            .iter()
            .all(|&b| b == 0));
        // Characters beyond ASCII are drawn from the face, not as a substitute.
        let e = rasterize("é", 32, [255; 4], Align::Left, 40, 40);
        let plain = rasterize("e", 32, [255; 4], Align::Left, 40, 40);
        assert_ne!(e, plain);
    }
}
