//! CPU compositing: premultiplied-alpha OVER of the layers, in ascending z, over the backdrop.
//!
//! Each layer is a mapped buffer (rows `stride` bytes apart, 4 bytes per pixel in one of the
//! supported DRM formats) placed at an integer position and scaled by an opacity. The output is
//! tightly packed RGBA, premultiplied. Layers are clipped to the frame; nothing is resampled.
//! The arithmetic is `triptych_scene::blend_over`'s, written here row by row with fast paths for
//! the cases that need no blending, and checked against it by the tests below.

use ipc_protocol::frame::{
    DRM_FORMAT_ABGR8888, DRM_FORMAT_ARGB8888, DRM_FORMAT_XBGR8888, DRM_FORMAT_XRGB8888,
};

/// The backdrop the layers are drawn over.
pub use triptych_scene::BACKDROP;

/// One layer ready to composite.
#[derive(Debug)]
pub struct Layer<'a> {
    /// The buffer's bytes, starting at the plane's offset.
    pub pixels: &'a [u8],
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

/// Divides by 255 rounding to nearest, exact for every `v` in `0..=65535`.
#[inline(always)]
fn div255(v: u32) -> u32 {
    let t = v + 128;
    (t + (t >> 8)) >> 8
}

/// Reads a pixel of `fourcc` as premultiplied RGBA.
#[inline(always)]
fn to_rgba(px: &[u8], fourcc: u32) -> [u8; 4] {
    match fourcc {
        DRM_FORMAT_ABGR8888 => [px[0], px[1], px[2], px[3]],
        DRM_FORMAT_XBGR8888 => [px[0], px[1], px[2], 255],
        DRM_FORMAT_ARGB8888 => [px[2], px[1], px[0], px[3]],
        DRM_FORMAT_XRGB8888 => [px[2], px[1], px[0], 255],
        // Descriptions are validated on arrival; an unknown format never reaches here. Treat
        // it as transparent rather than trusting it.
        _ => [0, 0, 0, 0],
    }
}

/// Composites `layers` into `out` (`width * height * 4` bytes, RGBA).
pub fn composite(out: &mut [u8], width: u32, height: u32, layers: &mut [Layer<'_>]) {
    let row_bytes = width as usize * 4;
    for px in out[..row_bytes * height as usize].chunks_exact_mut(4) {
        px.copy_from_slice(&BACKDROP);
    }
    layers.sort_by_key(|l| l.z);
    for l in layers.iter() {
        blit(out, width, height, l);
    }
}

fn blit(out: &mut [u8], width: u32, height: u32, l: &Layer<'_>) {
    if l.opacity == 0 {
        return;
    }
    // Clip the layer's rectangle to the frame in i64 so no placement can overflow.
    let x0 = i64::from(l.x).max(0);
    let y0 = i64::from(l.y).max(0);
    let x1 = (i64::from(l.x) + i64::from(l.width)).min(i64::from(width));
    let y1 = (i64::from(l.y) + i64::from(l.height)).min(i64::from(height));
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    let cols = (x1 - x0) as usize;
    let src_x = (x0 - i64::from(l.x)) as usize;
    let op = u32::from(l.opacity);
    let opaque_copy = op == 255 && matches!(l.fourcc, DRM_FORMAT_XBGR8888);
    for y in y0..y1 {
        let src_y = (y - i64::from(l.y)) as usize;
        let s_start = src_y * l.stride + src_x * 4;
        let Some(src) = l.pixels.get(s_start..s_start + cols * 4) else {
            // The extent was validated against the buffer's size; a short slice means a bug.
            // Stop drawing this layer rather than reading out of bounds.
            tracing::error!(row = src_y, "layer row outside its buffer; layer skipped");
            return;
        };
        let d_start = (y as usize * width as usize + x0 as usize) * 4;
        let dst = &mut out[d_start..d_start + cols * 4];
        if opaque_copy {
            dst.copy_from_slice(src);
            for px in dst.chunks_exact_mut(4) {
                px[3] = 255;
            }
            continue;
        }
        for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
            let s = to_rgba(s, l.fourcc);
            if op == 255 {
                if s[3] == 255 {
                    d.copy_from_slice(&s);
                    continue;
                }
                if s[3] == 0 && s[0] == 0 && s[1] == 0 && s[2] == 0 {
                    continue;
                }
                let inv = 255 - u32::from(s[3]);
                for i in 0..4 {
                    d[i] = (u32::from(s[i]) + div255(u32::from(d[i]) * inv)).min(255) as u8;
                }
            } else {
                let sa = div255(u32::from(s[3]) * op);
                let inv = 255 - sa;
                for i in 0..4 {
                    let sc = div255(u32::from(s[i]) * op);
                    d[i] = (sc + div255(u32::from(d[i]) * inv)).min(255) as u8;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn div255_is_exact() {
        for v in 0..=65535u32 {
            assert_eq!(div255(v), (v + 127) / 255, "v = {v}");
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
                        pixels: &bufs[l as usize],
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
            let mut out = vec![0u8; (w * h * 4) as usize];
            composite(&mut out, w, h, &mut layers);
            for y in 0..h {
                for x in 0..w {
                    let i = ((y * w + x) * 4) as usize;
                    assert_eq!(
                        out[i..i + 4],
                        triptych_scene::expected_pixel(frame, n, w, h, x, y),
                        "frame {frame} pixel ({x}, {y})"
                    );
                }
            }
        }
    }

    #[test]
    fn bgra_is_swizzled_and_offscreen_is_clipped() {
        let src = [10u8, 20, 30, 255, 10, 20, 30, 255];
        let mut layers = [Layer {
            pixels: &src,
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
}
