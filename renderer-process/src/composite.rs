//! CPU compositing: premultiplied-alpha OVER of the layers, in ascending z, over the backdrop.
//!
//! Each layer is a mapped buffer (rows `stride` bytes apart, 4 bytes per pixel in one of the
//! supported DRM formats) placed at an integer position and scaled by an opacity. The output is
//! tightly packed RGBA, premultiplied. Layers are clipped to the frame; nothing is resampled.
//!
//! # Sequence
//!
//! [`composite`] asks once per frame whether the CPU has AVX2 ([`Avx2::detect`]), sorts the
//! layers by z, clips each to the frame once (`Span`), checks that every row it will read lies
//! inside the layer's buffer, and then walks the output one row at a time. In each row the
//! bottom layer that crosses it is blended straight over the backdrop, which is written only
//! where that layer leaves the row uncovered, and every layer above it is blended over what is
//! already there, bottom to top. Working row by row keeps the row in the first-level cache while
//! all its layers land on it, so the output frame goes out to memory once and is never read
//! back, however many layers cover it; the output's previous contents are never read.
//! [`composite_region`] does the same inside each rectangle of a damaged region only, clipping
//! the layers and the backdrop to it and leaving every other output pixel as it was.
//!
//! # Arithmetic
//!
//! The result is bit-exact with [`triptych_scene::blend_over`], the scene's one definition of the
//! operation, and the tests below compare against it pixel by pixel. Per channel `c` of source
//! `s`, destination `d`, opacity `op`:
//!
//! ```text
//! sc = round(s_c * op / 255)      sa = round(s_a * op / 255)
//! d_c' = min(sc + round(d_c * (255 - sa) / 255), 255)
//! ```
//!
//! Every product is at most 255 * 255 = 65 025, so the whole computation fits in 16-bit lanes,
//! and `div255` divides by 255 with rounding using only an add and a high multiply.
//!
//! Two kernels compute it, with the same results:
//!
//! - on a CPU with AVX2, `triptych_sys::simd`'s kernel, 16 pixels a step, which divides by 255
//!   in one instruction where one factor is the same for the whole row (the opacity, the
//!   backdrop) and writes a row's only layer past the caches; it lives in the sys crate because
//!   reaching AVX2 code from a program built for the baseline x86-64 is `unsafe`, and this crate
//!   has none;
//! - everywhere, the portable kernel below, for whole rows without AVX2 and for the last pixels
//!   of a row with it: fixed chunks of `CHUNK` (8) pixels with no branch inside a chunk, which the
//!   compiler turns into vector code of the baseline target (SSE2 on x86-64, NEON on aarch64).
//!
//! Cases that need no arithmetic are taken per chunk: at opacity 255 a chunk whose source alpha
//! is all 255 is a copy, and at any opacity a chunk that is all zero (transparent black) leaves
//! the destination as it is. Both are exact: with `op = 255`, `sc = s_c`; with `s_a = 255`,
//! `sa = 255` and the destination term is `round(d_c * 0 / 255) = 0`; with `s = 0`, `sc = sa = 0`
//! and `d_c' = round(d_c * 255 / 255) = d_c`. An X format at opacity 255 is a copy of the row
//! with the fourth byte set (and B and R swapped for XR24).
//!
//! Formats: `DRM_FORMAT_ABGR8888` (AB24) and `DRM_FORMAT_XBGR8888` (XB24) are bytes R, G, B, A/X
//! in memory; `DRM_FORMAT_ARGB8888` (AR24) and `DRM_FORMAT_XRGB8888` (XR24) are B, G, R, A/X
//! (see `drm_fourcc.h` in the kernel's uapi headers). An X format's fourth byte is undefined and
//! read as 255.

use std::ops::Range;

use ipc_protocol::damage::{Rect, Region};
use ipc_protocol::frame::{
    DRM_FORMAT_ABGR8888, DRM_FORMAT_ARGB8888, DRM_FORMAT_XBGR8888, DRM_FORMAT_XRGB8888,
};
use triptych_sys::mapping::PeerBytes;
use triptych_sys::simd::{Avx2, Source};

/// The backdrop the layers are drawn over.
pub use ipc_protocol::messages::OutputOrder;
pub use triptych_scene::BACKDROP;

/// One layer ready to composite.
#[derive(Debug)]
pub struct Layer<'a> {
    /// The buffer's bytes, starting at the plane's offset: memory the GPU process may write, so
    /// it is only ever copied out of, a row at a time, never borrowed.
    pub pixels: PeerBytes<'a>,
    /// Bytes per row.
    pub stride: usize,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// DRM fourcc of the pixels.
    pub fourcc: u32,
    /// Left edge in the frame.
    pub x: i32,
    /// Top edge in the frame.
    pub y: i32,
    /// Stacking order.
    pub z: i32,
    /// Opacity 0..=255.
    pub opacity: u8,
}

/// Pixels the portable kernel blends together with no branch between them: two 16-byte vectors
/// of source, four of 16-bit lanes while blending.
const CHUNK: usize = 8;

/// Bytes of one chunk.
const CHUNK_BYTES: usize = CHUNK * 4;

/// Divides by 255 rounding to nearest (halves up), exact for every `v` in `0..=65407`, which
/// holds every product of two bytes.
///
/// With `t = v + 128`, `(t * 257) >> 16` equals `(t + (t >> 8)) >> 8` (both are
/// `floor((t + t / 256) / 256)`), the classic exact form; the product's high half is one
/// instruction per vector (`pmulhuw` on x86).
#[inline(always)]
fn div255(v: u16) -> u16 {
    let t = u32::from(v + 128);
    ((t * 257) >> 16) as u16
}

/// How a layer's pixels are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// AB24: R, G, B, A.
    Rgba,
    /// XB24: R, G, B, X.
    Rgbx,
    /// AR24: B, G, R, A.
    Bgra,
    /// XR24: B, G, R, X.
    Bgrx,
}

impl Format {
    /// The same bytes read for an output in B, G, R, A order: red and blue trade places.
    fn swapped(self) -> Format {
        match self {
            Format::Rgba => Format::Bgra,
            Format::Rgbx => Format::Bgrx,
            Format::Bgra => Format::Rgba,
            Format::Bgrx => Format::Rgbx,
        }
    }

    fn of(fourcc: u32) -> Option<Format> {
        match fourcc {
            DRM_FORMAT_ABGR8888 => Some(Format::Rgba),
            DRM_FORMAT_XBGR8888 => Some(Format::Rgbx),
            DRM_FORMAT_ARGB8888 => Some(Format::Bgra),
            DRM_FORMAT_XRGB8888 => Some(Format::Bgrx),
            _ => None,
        }
    }
}

/// Reads a chunk of pixels of a format as premultiplied RGBA bytes. `SWAP`: the format stores
/// B first; `OPAQUE`: its fourth byte is X, read as 255. Each pixel is handled as a
/// little-endian `u32`, so the swap and the alpha are shifts and masks in 32-bit lanes.
#[inline(always)]
fn to_rgba<const SWAP: bool, const OPAQUE: bool>(src: &[u8; CHUNK_BYTES]) -> [u8; CHUNK_BYTES] {
    if !SWAP && !OPAQUE {
        return *src;
    }
    let mut out = [0u8; CHUNK_BYTES];
    for (o, s) in out.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
        let mut px = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        if SWAP {
            px = (px & 0xff00_ff00) | ((px >> 16) & 0xff) | ((px & 0xff) << 16);
        }
        if OPAQUE {
            px |= 0xff00_0000;
        }
        o.copy_from_slice(&px.to_le_bytes());
    }
    out
}

/// Blends one chunk of RGBA source pixels over the RGBA bytes `dst`, at opacity `op`.
/// `OPAQUE`: every source alpha is 255 (an X format), so `255 - sa` is `255 - op` throughout;
/// `SCALE`: `op` is below 255 and scales the source; without it `op` is taken as 255, where
/// scaling is the identity.
///
/// Written as fixed-length loops over 16-bit lanes, each with no dependency between lanes, so
/// the compiler turns them into vector code of the baseline target (with SSE2: `pmullw`,
/// `pmulhuw`, and `pshuflw`/`pshufhw` for the alpha copy).
#[inline(always)]
fn blend_chunk<const OPAQUE: bool, const SCALE: bool>(
    dst: &mut [u8; CHUNK_BYTES],
    src: &[u8; CHUNK_BYTES],
    op: u16,
) {
    let mut sc = [0u16; CHUNK_BYTES];
    for (sc, &b) in sc.iter_mut().zip(src) {
        *sc = if SCALE {
            div255(u16::from(b) * op)
        } else {
            u16::from(b)
        };
    }
    // 255 - sa of each pixel, in all four of its lanes (sa <= 255, so the subtraction is an
    // exclusive or). With alpha 255, sa = round(255 * op / 255) = op.
    let mut inv = [op ^ 255; CHUNK_BYTES];
    if !OPAQUE {
        for (i, a) in inv.chunks_exact_mut(4).zip(sc.chunks_exact(4)) {
            i.fill(a[3] ^ 255);
        }
    }
    for ((d, s), i) in dst.iter_mut().zip(sc).zip(inv) {
        *d = (s + div255(u16::from(*d) * i)).min(255) as u8;
    }
}

/// Draws one chunk: leaves the destination (all transparent black), replaces it (all opaque at
/// opacity 255) or blends.
#[inline(always)]
fn draw_chunk<const SWAP: bool, const OPAQUE: bool, const SCALE: bool>(
    dst: &mut [u8; CHUNK_BYTES],
    src: &[u8; CHUNK_BYTES],
    op: u16,
) {
    let (mut any, mut alpha) = (0u8, 255u8);
    for p in src.chunks_exact(4) {
        any |= p[0] | p[1] | p[2] | p[3];
        alpha &= p[3];
    }
    if any == 0 && !OPAQUE {
        return;
    }
    if !SCALE && (OPAQUE || alpha == 255) {
        *dst = to_rgba::<SWAP, OPAQUE>(src);
        return;
    }
    blend_chunk::<OPAQUE, SCALE>(dst, &to_rgba::<SWAP, OPAQUE>(src), op);
}

/// Fills `row` with `backdrop`.
fn fill(row: &mut [u8], backdrop: [u8; 4]) {
    for px in row.chunks_exact_mut(4) {
        px.copy_from_slice(&backdrop);
    }
}

/// Draws one row of a layer with the portable kernel: `src` (pixels of the layer's format, a
/// copy of this process's own) OVER `dst` (RGBA), equally long, at opacity `op` (1..=255).
/// `over_backdrop`: nothing is drawn under this part of the row yet, so what `dst` holds is
/// ignored and the backdrop taken in its place (the row was not filled). The AVX2 kernel, where
/// there is one, has drawn the row's start already ([`Layer::draw`]); with `last` (nothing is
/// drawn over the row either, so this frame does not read it back) it writes past the caches
/// ([`Avx2::over`]'s `stream`).
fn draw_row<const SWAP: bool, const OPAQUE: bool>(
    dst: &mut [u8],
    src: &[u8],
    op: u8,
    over_backdrop: Option<[u8; 4]>,
) {
    if OPAQUE && op == 255 {
        // Every pixel is opaque: a copy, converted where the format needs it.
        let mut d_chunks = dst.chunks_exact_mut(CHUNK_BYTES);
        let mut s_chunks = src.chunks_exact(CHUNK_BYTES);
        for (d, s) in (&mut d_chunks).zip(&mut s_chunks) {
            if let (Ok(d), Ok(s)) = (
                <&mut [u8; CHUNK_BYTES]>::try_from(d),
                <&[u8; CHUNK_BYTES]>::try_from(s),
            ) {
                *d = to_rgba::<SWAP, true>(s);
            }
        }
        for (d, s) in d_chunks
            .into_remainder()
            .chunks_exact_mut(4)
            .zip(s_chunks.remainder().chunks_exact(4))
        {
            d.copy_from_slice(&[s[0], s[1], s[2], 255]);
            if SWAP {
                d.swap(0, 2);
            }
        }
        return;
    }
    if let Some(backdrop) = over_backdrop {
        fill(dst, backdrop);
    }
    if op == 255 {
        draw_chunks::<SWAP, OPAQUE, false>(dst, src, 255);
    } else {
        draw_chunks::<SWAP, OPAQUE, true>(dst, src, u16::from(op));
    }
}

/// Draws `src` over `dst` chunk by chunk; the last, short chunk goes through a padded copy.
#[inline(always)]
fn draw_chunks<const SWAP: bool, const OPAQUE: bool, const SCALE: bool>(
    dst: &mut [u8],
    src: &[u8],
    op: u16,
) {
    let mut d_chunks = dst.chunks_exact_mut(CHUNK_BYTES);
    let mut s_chunks = src.chunks_exact(CHUNK_BYTES);
    for (d, s) in (&mut d_chunks).zip(&mut s_chunks) {
        if let (Ok(d), Ok(s)) = (
            <&mut [u8; CHUNK_BYTES]>::try_from(d),
            <&[u8; CHUNK_BYTES]>::try_from(s),
        ) {
            draw_chunk::<SWAP, OPAQUE, SCALE>(d, s, op);
        }
    }
    let (d_tail, s_tail) = (d_chunks.into_remainder(), s_chunks.remainder());
    let n = d_tail.len().min(s_tail.len());
    if n > 0 {
        let (mut d, mut s) = ([0u8; CHUNK_BYTES], [0u8; CHUNK_BYTES]);
        d[..n].copy_from_slice(&d_tail[..n]);
        s[..n].copy_from_slice(&s_tail[..n]);
        draw_chunk::<SWAP, OPAQUE, SCALE>(&mut d, &s, op);
        d_tail[..n].copy_from_slice(&d[..n]);
    }
}

/// A layer clipped to the frame, with every row it reads checked to lie inside its buffer.
struct Span<'a> {
    pixels: PeerBytes<'a>,
    stride: usize,
    format: Format,
    opacity: u8,
    /// Frame rows the layer covers.
    rows: Range<usize>,
    /// The layer's top edge in the frame (may be negative).
    top: i64,
    /// Byte range of a covered row, in the output row.
    dst: Range<usize>,
    /// Offset of the first covered byte within a row of the layer.
    src_x: usize,
}

impl<'a> Span<'a> {
    /// Clips `l` to `area` of the frame (a rectangle inside it); `None` if nothing of it is
    /// visible there or it would read outside its buffer.
    fn clip(l: &Layer<'a>, area: Rect) -> Option<Span<'a>> {
        if l.opacity == 0 {
            return None;
        }
        // Descriptions are validated on arrival, so an unknown format never reaches here; one
        // that did would be drawn as transparent, which is drawing nothing.
        let format = Format::of(l.fourcc)?;
        // Clip in i64 so no placement can overflow.
        let x0 = i64::from(l.x).max(i64::from(area.x));
        let y0 = i64::from(l.y).max(i64::from(area.y));
        let x1 = (i64::from(l.x) + i64::from(l.width)).min(area.right() as i64);
        let y1 = (i64::from(l.y) + i64::from(l.height)).min(area.bottom() as i64);
        if x0 >= x1 || y0 >= y1 {
            return None;
        }
        // In range of the frame, hence of usize, from here on.
        let (x0, x1, y0, y1) = (x0 as usize, x1 as usize, y0 as usize, y1 as usize);
        let src_x = (x0 as i64 - i64::from(l.x)) as usize * 4;
        // The whole buffer, whatever part of it this area shows: rows start `stride` bytes
        // apart, so the last row ends furthest in. Checking all of it, not the part in view,
        // makes a layer drawn in one damaged rectangle drawn in every other one too.
        let last_row = (l.height as usize).saturating_sub(1);
        let end = last_row
            .checked_mul(l.stride)
            .and_then(|o| o.checked_add(l.width as usize * 4));
        if l.stride < l.width as usize * 4 || end.is_none_or(|e| e > l.pixels.len()) {
            // The extent was validated against the buffer's size; a short buffer means a bug.
            // Draw nothing of the layer rather than read out of bounds or draw part of it.
            tracing::error!(
                last_row,
                stride = l.stride,
                bytes = l.pixels.len(),
                "layer rows outside its buffer; layer skipped"
            );
            return None;
        }
        Some(Span {
            pixels: l.pixels,
            stride: l.stride,
            format,
            opacity: l.opacity,
            rows: y0..y1,
            top: i64::from(l.y),
            dst: x0 * 4..x1 * 4,
            src_x,
        })
    }

    /// Draws the layer's part of frame row `y` into `row`, the whole output row; see
    /// [`draw_row`] for `over_backdrop` and `last`. Every byte the blend reads of the peer's
    /// memory is read once and cannot change under it: the AVX2 kernel loads each group of
    /// the source row once, into registers, straight from the peer's mapping (no copy first);
    /// what it leaves (the row's last pixels, or all of it without AVX2) is first copied out into
    /// `scratch` (one `memcpy`).
    fn draw(
        &self,
        row: &mut [u8],
        y: usize,
        avx2: Option<Avx2>,
        over_backdrop: Option<[u8; 4]>,
        last: bool,
        scratch: &mut Vec<u8>,
    ) {
        let start = (y as i64 - self.top) as usize * self.stride + self.src_x;
        let len = self.dst.len();
        // In range: clip() checked the last row's end against the buffer.
        let Some(peer) = self.pixels.sub(start, len) else {
            return;
        };
        let dst = &mut row[self.dst.clone()];
        let source = Source {
            blue_first: matches!(self.format, Format::Bgra | Format::Bgrx),
            alpha_ignored: matches!(self.format, Format::Rgbx | Format::Bgrx),
        };
        let op = self.opacity;
        let done = avx2.map_or(0, |v| {
            v.over(dst, peer, op, source, over_backdrop, last) * 4
        });
        if done >= len {
            return;
        }
        scratch.resize(len - done, 0);
        if !peer
            .sub(done, len - done)
            .is_some_and(|p| p.copy_to(scratch))
        {
            return;
        }
        let (dst, src) = (&mut dst[done..], &scratch[..]);
        match self.format {
            Format::Rgba => draw_row::<false, false>(dst, src, op, over_backdrop),
            Format::Rgbx => draw_row::<false, true>(dst, src, op, over_backdrop),
            Format::Bgra => draw_row::<true, false>(dst, src, op, over_backdrop),
            Format::Bgrx => draw_row::<true, true>(dst, src, op, over_backdrop),
        }
    }
}

/// Composites `layers` into `out` (`width * height * 4` bytes, RGBA).
pub fn composite(out: &mut [u8], width: u32, height: u32, layers: &mut [Layer<'_>]) {
    composite_with(
        out,
        width,
        height,
        layers,
        Avx2::detect(),
        OutputOrder::Rgba,
        BACKDROP,
    );
}

/// [`composite`] into an output of byte order `order`, over the opaque `backdrop` (R, G, B, A,
/// premultiplied; a scene file's own, or [`BACKDROP`]): for B, G, R, A every layer is read with
/// red and blue exchanged (OVER treats the colour channels alike), so a window gets its pixels
/// at no extra cost.
pub fn composite_in(
    out: &mut [u8],
    width: u32,
    height: u32,
    layers: &mut [Layer<'_>],
    order: OutputOrder,
    backdrop: [u8; 4],
) {
    composite_with(out, width, height, layers, Avx2::detect(), order, backdrop);
}

/// `rgba`, a backdrop colour, in `order`.
pub fn backdrop_in(rgba: [u8; 4], order: OutputOrder) -> [u8; 4] {
    match order {
        OutputOrder::Rgba => rgba,
        OutputOrder::Bgra => [rgba[2], rgba[1], rgba[0], rgba[3]],
    }
}

/// [`composite_in`] inside `region` only: every output pixel there is composited anew, and
/// every other one is left as it was (damage tracking: the slot holds an earlier frame that
/// equals this one outside `region`). Rectangles reaching outside the frame are cut to it.
pub fn composite_region(
    out: &mut [u8],
    width: u32,
    height: u32,
    layers: &mut [Layer<'_>],
    region: &Region,
    order: OutputOrder,
    backdrop: [u8; 4],
) {
    let avx2 = Avx2::detect();
    for r in region.rects() {
        let Some(area) = Rect::clipped(i64::from(r.x), i64::from(r.y), r.w, r.h, width, height)
        else {
            continue;
        };
        composite_area(out, width, height, layers, avx2, order, backdrop, area);
    }
}

/// [`composite_in`] with the AVX2 kernel or, given `None`, the portable one alone.
pub(crate) fn composite_with(
    out: &mut [u8],
    width: u32,
    height: u32,
    layers: &mut [Layer<'_>],
    avx2: Option<Avx2>,
    order: OutputOrder,
    backdrop: [u8; 4],
) {
    let all = Rect::full(width, height);
    composite_area(out, width, height, layers, avx2, order, backdrop, all);
}

/// Composites `area`, a rectangle inside the `width` x `height` frame, of `out`.
#[allow(clippy::too_many_arguments)]
fn composite_area(
    out: &mut [u8],
    width: u32,
    height: u32,
    layers: &mut [Layer<'_>],
    avx2: Option<Avx2>,
    order: OutputOrder,
    backdrop: [u8; 4],
    area: Rect,
) {
    let back = backdrop_in(backdrop, order);
    let row_bytes = width as usize * 4;
    let out = &mut out[..row_bytes * height as usize];
    if out.is_empty() || area.is_empty() || !area.fits(width, height) {
        return;
    }
    layers.sort_by_key(|l| l.z);
    let spans: Vec<Span<'_>> = layers
        .iter()
        .filter_map(|l| Span::clip(l, area))
        .map(|mut s| {
            if order == OutputOrder::Bgra {
                s.format = s.format.swapped();
            }
            s
        })
        .collect();
    // Inside the frame (checked above), so in range of usize.
    let (cx0, cx1) = (area.x as usize * 4, area.right() as usize * 4);
    let rows = area.y as usize..area.bottom() as usize;
    let mut scratch = Vec::with_capacity(cx1 - cx0);
    for (y, row) in out
        .chunks_exact_mut(row_bytes)
        .enumerate()
        .skip(rows.start)
        .take(rows.len())
    {
        let mut covering = spans.iter().filter(|s| s.rows.contains(&y)).peekable();
        match covering.next() {
            Some(bottom) => {
                // The row's bottom layer is drawn straight over the backdrop, which is written
                // only where that layer leaves it uncovered; alone in the row, it is the row's
                // last write in this frame.
                fill(&mut row[cx0..bottom.dst.start], back);
                fill(&mut row[bottom.dst.end..cx1], back);
                let alone = covering.peek().is_none();
                bottom.draw(row, y, avx2, Some(back), alone, &mut scratch);
            }
            None => fill(&mut row[cx0..cx1], back),
        }
        // A layer above reads back what the one under it wrote: every write stays cached.
        for s in covering {
            s.draw(row, y, avx2, None, false, &mut scratch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn div255_is_exact() {
        for v in 0..=65407u16 {
            assert_eq!(u32::from(div255(v)), (u32::from(v) + 127) / 255, "v = {v}");
        }
    }

    #[test]
    fn matches_scene_reference() {
        let (w, h, n) = (97u32, 61u32, 4u32);
        for frame in [0u64, 1, 17, 40, 333] {
            let contents: Vec<_> = (0..n)
                .map(|l| triptych_scene::layer_content(frame, l, w, h))
                .collect();
            let bufs: Vec<Vec<u8>> = contents
                .iter()
                .map(|c| {
                    let mut b = vec![0u8; (c.width * c.height * 4) as usize];
                    c.fill(&mut b);
                    b
                })
                .collect();
            let mut layers: Vec<Layer<'_>> = (0..n)
                .map(|l| {
                    let p = triptych_scene::placement(frame, l, n, w, h);
                    let c = &contents[l as usize];
                    Layer {
                        pixels: PeerBytes::from_local(&bufs[l as usize]),
                        stride: c.width as usize * 4,
                        width: c.width,
                        height: c.height,
                        fourcc: DRM_FORMAT_ABGR8888,
                        x: p.x,
                        y: p.y,
                        z: p.z,
                        opacity: p.opacity,
                    }
                })
                .collect();
            for avx2 in kernels() {
                let mut out = vec![0u8; (w * h * 4) as usize];
                composite_with(
                    &mut out,
                    w,
                    h,
                    &mut layers,
                    avx2,
                    OutputOrder::Rgba,
                    BACKDROP,
                );
                for y in 0..h {
                    for x in 0..w {
                        let i = ((y * w + x) * 4) as usize;
                        assert_eq!(
                            out[i..i + 4],
                            triptych_scene::expected_pixel(frame, n, w, h, x, y),
                            "frame {frame} pixel ({x}, {y}), AVX2 {}",
                            avx2.is_some()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bgra_is_swizzled_and_offscreen_is_clipped() {
        let src = [10u8, 20, 30, 255, 10, 20, 30, 255];
        let mut layers = [Layer {
            pixels: PeerBytes::from_local(&src),
            stride: 8,
            width: 2,
            height: 1,
            fourcc: DRM_FORMAT_ARGB8888,
            x: -1,
            y: 0,
            z: 0,
            opacity: 255,
        }];
        let mut out = vec![0u8; 2 * 4];
        composite(&mut out, 2, 1, &mut layers);
        assert_eq!(out, [30, 20, 10, 255, 16, 16, 24, 255]);
        layers[0].x = i32::MAX;
        layers[0].y = i32::MIN;
        composite(&mut out, 2, 1, &mut layers);
        assert_eq!(out, [16, 16, 24, 255, 16, 16, 24, 255]);
    }

    const FORMATS: [u32; 4] = [
        DRM_FORMAT_ABGR8888,
        DRM_FORMAT_XBGR8888,
        DRM_FORMAT_ARGB8888,
        DRM_FORMAT_XRGB8888,
    ];

    const OPACITIES: [u8; 5] = [0, 1, 128, 254, 255];

    /// splitmix64: a fixed-seed generator, so a failure names a case that can be replayed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn byte(&mut self) -> u8 {
            self.next() as u8
        }
    }

    /// Source alpha the buffers are made of.
    #[derive(Clone, Copy, Debug)]
    enum Alpha {
        /// Every pixel transparent black.
        Zero,
        /// Every alpha 255.
        Opaque,
        /// Runs of transparent, opaque, premultiplied translucent, alpha 0 with colour and
        /// arbitrary bytes (colour above alpha, which the blend clamps), of random lengths.
        Mixed,
        /// Every byte 0 or 1, mostly 0: next to transparent black, but not it.
        Faint,
        /// Alpha 254 or 255: next to opaque, but not all of it.
        NearlyOpaque,
    }

    /// `len` bytes of pixels as `alpha` asks, written in memory order of `fourcc` (the alpha
    /// byte is the fourth either way).
    fn pixels(rng: &mut Rng, len: usize, alpha: Alpha) -> Vec<u8> {
        let mut b = vec![0u8; len];
        let mut mode = 0;
        let mut run = 0;
        for px in b.chunks_exact_mut(4) {
            if run == 0 {
                mode = rng.below(5);
                run = 1 + rng.below(24);
            }
            run -= 1;
            let a = match (alpha, mode) {
                (Alpha::Faint, _) => {
                    px.iter_mut().for_each(|c| *c = u8::from(rng.below(4) == 0));
                    continue;
                }
                (Alpha::NearlyOpaque, _) => 254 + rng.below(2) as u8,
                (Alpha::Zero, _) | (Alpha::Mixed, 0) => {
                    px.fill(0);
                    continue;
                }
                (Alpha::Opaque, _) | (Alpha::Mixed, 1) => 255,
                (Alpha::Mixed, 2) => rng.byte(),
                (Alpha::Mixed, 3) => {
                    px.iter_mut().for_each(|c| *c = rng.byte());
                    continue;
                }
                _ => 0,
            };
            for c in &mut px[..3] {
                *c = if a == 0 {
                    rng.byte()
                } else {
                    (u32::from(rng.byte()) * u32::from(a) / 255) as u8
                };
            }
            px[3] = a;
        }
        b
    }

    /// The texel at byte `i` of `pixels` as premultiplied RGBA, read one byte at a time.
    fn texel(pixels: PeerBytes<'_>, i: usize, fourcc: u32) -> [u8; 4] {
        let mut p = [0u8; 4];
        assert!(pixels.sub(i, 4).is_some_and(|v| v.copy_to(&mut p)));
        match fourcc {
            DRM_FORMAT_ABGR8888 => [p[0], p[1], p[2], p[3]],
            DRM_FORMAT_XBGR8888 => [p[0], p[1], p[2], 255],
            DRM_FORMAT_ARGB8888 => [p[2], p[1], p[0], p[3]],
            DRM_FORMAT_XRGB8888 => [p[2], p[1], p[0], 255],
            _ => unreachable!("not a test format: {fourcc:#x}"),
        }
    }

    /// The frame composed one pixel at a time with the scene's `blend_over`, layers in
    /// ascending z, equal z in the order given.
    fn reference(width: u32, height: u32, layers: &[Layer<'_>]) -> Vec<u8> {
        let mut order: Vec<&Layer<'_>> = layers.iter().collect();
        order.sort_by_key(|l| l.z);
        let mut out = Vec::with_capacity((width * height * 4) as usize);
        for y in 0..i64::from(height) {
            for x in 0..i64::from(width) {
                let mut px = BACKDROP;
                for l in &order {
                    let (lx, ly) = (x - i64::from(l.x), y - i64::from(l.y));
                    if lx < 0 || ly < 0 || lx >= i64::from(l.width) || ly >= i64::from(l.height) {
                        continue;
                    }
                    let i = ly as usize * l.stride + lx as usize * 4;
                    px = triptych_scene::blend_over(px, texel(l.pixels, i, l.fourcc), l.opacity);
                }
                out.extend_from_slice(&px);
            }
        }
        out
    }

    /// The kernels to test: the portable one alone, and AVX2 where this CPU has it. Without
    /// AVX2 the AVX2 kernel goes untested here, which fails under `TRIPTYCH_REQUIRE_AVX2=1`
    /// (`scripts/test.sh` sets it where the CPU has AVX2).
    fn kernels() -> Vec<Option<Avx2>> {
        let mut k = vec![None];
        match Avx2::detect() {
            Some(a) => k.push(Some(a)),
            None => assert!(
                std::env::var_os("TRIPTYCH_REQUIRE_AVX2").is_none_or(|v| v != "1"),
                "TRIPTYCH_REQUIRE_AVX2=1 but Avx2::detect() found no AVX2: the AVX2 kernel \
                 would go untested"
            ),
        }
        k
    }

    /// Composites with every kernel and compares with [`reference`], naming the first
    /// differing pixel.
    fn check(width: u32, height: u32, layers: &mut [Layer<'_>], case: &str) {
        let rgba = reference(width, height, layers);
        // The same frame in B, G, R, A order is the reference with red and blue exchanged.
        let mut bgra = rgba.clone();
        for p in bgra.chunks_exact_mut(4) {
            p.swap(0, 2);
        }
        for (order, want) in [(OutputOrder::Rgba, &rgba), (OutputOrder::Bgra, &bgra)] {
            for avx2 in kernels() {
                // Start from garbage: the compositor must overwrite every byte.
                let mut out = vec![0xa5u8; want.len()];
                composite_with(&mut out, width, height, layers, avx2, order, BACKDROP);
                if let Some(i) =
                    (0..want.len() / 4).find(|&i| out[i * 4..i * 4 + 4] != want[i * 4..i * 4 + 4])
                {
                    let (x, y) = (i as u32 % width, i as u32 / width);
                    panic!(
                        "{case}, {order:?}, AVX2 {}: pixel ({x}, {y}) is {:?}, expected {:?}",
                        avx2.is_some(),
                        &out[i * 4..i * 4 + 4],
                        &want[i * 4..i * 4 + 4]
                    );
                }
            }
        }
    }

    #[test]
    fn every_format_opacity_and_alpha_matches_blend_over() {
        let mut rng = Rng(1);
        for fourcc in FORMATS {
            for opacity in OPACITIES {
                for alpha in [
                    Alpha::Zero,
                    Alpha::Opaque,
                    Alpha::Mixed,
                    Alpha::Faint,
                    Alpha::NearlyOpaque,
                ] {
                    // Odd widths, and whole portable chunks (8) and AVX2 groups (16) with one
                    // pixel either side.
                    for width in [1u32, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 61, 64, 65] {
                        let height = 3;
                        let stride = width as usize * 4 + 4 * rng.below(3) as usize;
                        let buf = pixels(&mut rng, stride * height as usize, alpha);
                        let layer = Layer {
                            pixels: PeerBytes::from_local(&buf),
                            stride,
                            width,
                            height,
                            fourcc,
                            x: 0,
                            y: 0,
                            z: 0,
                            opacity,
                        };
                        let case = format!(
                            "{fourcc:#x} opacity {opacity} {alpha:?} width {width} stride {stride}"
                        );
                        // Alone: drawn straight over the backdrop.
                        check(width, height, &mut [Layer { ..layer }], &case);
                        // Over a layer of anything: blended with what is already drawn.
                        let under =
                            pixels(&mut rng, width as usize * 4 * height as usize, Alpha::Mixed);
                        let mut layers = [
                            Layer { ..layer },
                            Layer {
                                pixels: PeerBytes::from_local(&under),
                                stride: width as usize * 4,
                                fourcc: DRM_FORMAT_ABGR8888,
                                z: -1,
                                opacity: rng.byte(),
                                ..layer
                            },
                        ];
                        check(width, height, &mut layers, &format!("{case}, over a layer"));
                    }
                }
            }
        }
    }

    #[test]
    fn random_stacks_with_clipping_match_blend_over() {
        let mut rng = Rng(2);
        for case in 0..400 {
            let width = 1 + rng.below(45) as u32;
            let height = 1 + rng.below(9) as u32;
            let n = 1 + rng.below(5) as usize;
            let specs: Vec<(u32, u32, usize, u32, u8, Alpha)> = (0..n)
                .map(|_| {
                    let (lw, lh) = (1 + rng.below(50) as u32, 1 + rng.below(12) as u32);
                    let stride = lw as usize * 4 + 4 * rng.below(4) as usize;
                    let fourcc = FORMATS[rng.below(4) as usize];
                    let opacity = match rng.below(3) {
                        0 => OPACITIES[rng.below(5) as usize],
                        _ => rng.byte(),
                    };
                    let alpha = [
                        Alpha::Zero,
                        Alpha::Opaque,
                        Alpha::Mixed,
                        Alpha::Faint,
                        Alpha::NearlyOpaque,
                    ][rng.below(5) as usize];
                    (lw, lh, stride, fourcc, opacity, alpha)
                })
                .collect();
            let bufs: Vec<Vec<u8>> = specs
                .iter()
                .map(|&(_, lh, stride, _, _, alpha)| pixels(&mut rng, stride * lh as usize, alpha))
                .collect();
            let mut layers: Vec<Layer<'_>> = specs
                .iter()
                .zip(&bufs)
                .map(|(&(lw, lh, stride, fourcc, opacity, _), buf)| Layer {
                    pixels: PeerBytes::from_local(buf),
                    stride,
                    width: lw,
                    height: lh,
                    fourcc,
                    // Anywhere from fully off the left/top to fully off the right/bottom.
                    x: rng.below(u64::from(width + lw) + 1) as i32 - lw as i32,
                    y: rng.below(u64::from(height + lh) + 1) as i32 - lh as i32,
                    z: rng.below(3) as i32 - 1,
                    opacity,
                })
                .collect();
            check(
                width,
                height,
                &mut layers,
                &format!("case {case}: {specs:?}"),
            );
        }
    }

    #[test]
    fn a_layer_reaching_past_its_buffer_is_not_drawn() {
        let buf = vec![255u8; 4 * 4 * 3 - 1];
        let mut layers = [Layer {
            pixels: PeerBytes::from_local(&buf),
            stride: 16,
            width: 4,
            height: 3,
            fourcc: DRM_FORMAT_ABGR8888,
            x: 0,
            y: 0,
            z: 0,
            opacity: 255,
        }];
        let mut out = vec![0u8; 4 * 3 * 4];
        composite(&mut out, 4, 3, &mut layers);
        assert!(out.chunks_exact(4).all(|p| p == BACKDROP), "{out:?}");
        // Not even where the short row is out of view (a smaller frame, or a damaged region
        // that misses it): a layer is drawn everywhere or nowhere.
        composite(&mut out, 4, 2, &mut layers);
        assert!(
            out[..4 * 2 * 4].chunks_exact(4).all(|p| p == BACKDROP),
            "{out:?}"
        );
        let mut full = vec![0u8; 4 * 3 * 4];
        let top = Region::of([Rect {
            x: 0,
            y: 0,
            w: 4,
            h: 1,
        }]);
        composite_region(
            &mut full,
            4,
            3,
            &mut layers,
            &top,
            OutputOrder::Rgba,
            BACKDROP,
        );
        assert!(
            full[..16].chunks_exact(4).all(|p| p == BACKDROP),
            "{full:?}"
        );
        // A stride whose rows overflow usize is refused too.
        layers[0].stride = usize::MAX;
        composite(&mut out, 4, 3, &mut layers);
        assert!(out.chunks_exact(4).all(|p| p == BACKDROP), "{out:?}");
    }

    #[test]
    fn unknown_formats_and_empty_frames_draw_nothing() {
        let buf = vec![200u8; 16];
        let mut layers = [Layer {
            pixels: PeerBytes::from_local(&buf),
            stride: 8,
            width: 2,
            height: 2,
            fourcc: u32::from_le_bytes(*b"NV12"),
            x: 0,
            y: 0,
            z: 0,
            opacity: 255,
        }];
        let mut out = vec![0u8; 16];
        composite(&mut out, 2, 2, &mut layers);
        assert!(out.chunks_exact(4).all(|p| p == BACKDROP), "{out:?}");
        let mut none: [u8; 0] = [];
        composite(&mut none, 0, 2, &mut layers);
        composite(&mut none, 2, 0, &mut layers);
    }
}
