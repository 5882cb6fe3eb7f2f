//! Image layers: where the PNG file is, and how its bytes become premultiplied RGBA8.
//!
//! The sequence through the processes: the parser resolves the path the scene file
//! writes against the scene file's directory ([`resolve_image_path`]); the launcher, which may
//! read files, opens it and hands the GPU process the fd; the GPU process, which may not open
//! files, reads the fd through [`decode_png`]. The bytes are therefore untrusted where they are
//! decoded: [`ImageLimits`] caps the dimensions and every allocation before it is made, so a
//! hostile or huge PNG is an [`ImageError`], never a panic or an unbounded allocation.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The path of the image a scene file at `scene_file` names as `written`: `written` itself if
/// it is absolute, otherwise `written` relative to the scene file's directory.
///
/// A scene file named without a directory (`scene.toml`) resolves its images against the
/// current directory, as the file itself was.
pub fn resolve_image_path(scene_file: &Path, written: &Path) -> PathBuf {
    if written.is_absolute() {
        return written.to_path_buf();
    }
    match scene_file.parent() {
        Some(dir) => dir.join(written),
        None => written.to_path_buf(),
    }
}

/// A reader over a file by positional reads (`pread`), for [`decode_png`] on an fd handed over
/// by another process: the file's offset, shared with every duplicate of the fd, never moves,
/// so each reader (and each GPU process start) reads the same bytes from the start.
#[derive(Debug)]
pub struct PositionalReader<'a> {
    file: &'a std::fs::File,
    at: u64,
}

impl<'a> PositionalReader<'a> {
    /// Reads `file` from its first byte.
    pub fn new(file: &'a std::fs::File) -> Self {
        PositionalReader { file, at: 0 }
    }
}

impl Read for PositionalReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Caps on what [`decode_png`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// The widest image, in pixels.
    pub max_width: u32,
    /// The tallest image, in pixels.
    pub max_height: u32,
    /// The most bytes the decoder may allocate: the decoded image, the decoder's own buffers
    /// and any metadata chunks, each counted against it.
    pub max_bytes: usize,
}

impl Default for ImageLimits {
    /// 8192 x 8192 pixels, 64 MiB: room for a 4096 x 4096 RGBA image.
    fn default() -> Self {
        ImageLimits {
            max_width: 8192,
            max_height: 8192,
            max_bytes: 64 << 20,
        }
    }
}

/// A decoded image: premultiplied RGBA8, rows top-down, tightly packed (`width * 4` bytes a row).
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels, at least 1.
    pub width: u32,
    /// Height in pixels, at least 1.
    pub height: u32,
    /// `width * height * 4` bytes.
    pub pixels: Vec<u8>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pixels would drown any log line they appear in.
        f.debug_struct("Image")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &self.pixels.len())
            .finish()
    }
}

impl Image {
    /// The texel at (`x`, `y`), premultiplied RGBA8; `None` outside the image.
    pub fn texel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 4;
        let px = self.pixels.get(i..i + 4)?;
        Some([px[0], px[1], px[2], px[3]])
    }
}

/// Why a PNG was not decoded.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The header gives dimensions over the limits (or zero).
    #[error("the image is {width}x{height} pixels; at most {max_width}x{max_height} is accepted")]
    TooLarge {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// [`ImageLimits::max_width`].
        max_width: u32,
        /// [`ImageLimits::max_height`].
        max_height: u32,
    },
    /// Decoding would need more memory than [`ImageLimits::max_bytes`].
    #[error("decoding the image needs {needed} bytes; at most {max} are allowed")]
    TooManyBytes {
        /// What the decode needs, as far as it is known.
        needed: u64,
        /// [`ImageLimits::max_bytes`].
        max: usize,
    },
    /// The bytes are not a PNG the decoder can read: truncated, corrupt, not a PNG at all, or
    /// one of its chunks was over the byte limit.
    #[error("the file is not a readable PNG: {0}")]
    Decode(#[from] png::DecodingError),
    /// The PNG decoded, but not into the shape its header promised.
    #[error("the PNG decoded into {0}, not the RGBA8 rows its header promised")]
    Malformed(&'static str),
}

/// Decodes a PNG from `bytes` into premultiplied RGBA8, within `limits`.
pub fn decode_png_bytes(bytes: &[u8], limits: &ImageLimits) -> Result<Image, ImageError> {
    decode_png(bytes, limits)
}

/// Decodes a PNG read from `reader` (a file opened from an fd, a byte slice) into
/// premultiplied RGBA8, within `limits`.
///
/// Every colour type and bit depth is accepted: palettes and transparency chunks are expanded,
/// 16-bit channels keep their high byte, grey is spread to RGB. Of an animated PNG only the
/// default image is read. The header's dimensions are checked before any pixel buffer exists,
/// and the decoder's own allocations are capped by the same byte limit.
pub fn decode_png<R: Read>(reader: R, limits: &ImageLimits) -> Result<Image, ImageError> {
    let mut decoder = png::Decoder::new_with_limits(
        reader,
        png::Limits {
            bytes: limits.max_bytes,
        },
    );
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info()?;
    let (width, height) = {
        let info = reader.info();
        (info.width, info.height)
    };
    if width == 0 || height == 0 || width > limits.max_width || height > limits.max_height {
        return Err(ImageError::TooLarge {
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
        });
    }
    // Both the decoder's output and the RGBA copy exist at once at the end; count both. The
    // RGBA size is checked first, so the decoder is only asked for its output size (at most
    // 4 bytes a pixel after STRIP_16, computed in usize) once the dimensions are known small.
    let rgba = u64::from(width) * u64::from(height) * 4;
    if rgba > limits.max_bytes as u64 {
        return Err(ImageError::TooManyBytes {
            needed: rgba,
            max: limits.max_bytes,
        });
    }
    let raw = reader.output_buffer_size() as u64;
    let needed = rgba + raw;
    if needed > limits.max_bytes as u64 {
        return Err(ImageError::TooManyBytes {
            needed,
            max: limits.max_bytes,
        });
    }
    let mut buf = vec![0u8; raw as usize];
    let frame = reader.next_frame(&mut buf)?;
    let data = buf.get(..frame.buffer_size()).unwrap_or(&buf);
    let mut pixels = Vec::with_capacity(rgba as usize);
    match frame.color_type {
        png::ColorType::Rgba => {
            for px in data.chunks_exact(4) {
                pixels.extend_from_slice(&[
                    premul(px[0], px[3]),
                    premul(px[1], px[3]),
                    premul(px[2], px[3]),
                    px[3],
                ]);
            }
        }
        png::ColorType::Rgb => {
            for px in data.chunks_exact(3) {
                pixels.extend_from_slice(&[px[0], px[1], px[2], 255]);
            }
        }
        png::ColorType::GrayscaleAlpha => {
            for px in data.chunks_exact(2) {
                let g = premul(px[0], px[1]);
                pixels.extend_from_slice(&[g, g, g, px[1]]);
            }
        }
        png::ColorType::Grayscale => {
            for &g in data {
                pixels.extend_from_slice(&[g, g, g, 255]);
            }
        }
        // EXPAND turns palettes into RGB(A); a decoder that still hands one back has not
        // applied it, and the indices are not colours.
        png::ColorType::Indexed => {
            return Err(ImageError::Malformed("palette indices"));
        }
    }
    if pixels.len() as u64 != rgba {
        // The frame's rows were not what the header promised (a bit depth EXPAND did not
        // widen): refuse rather than hand out an image of the wrong shape.
        return Err(ImageError::Malformed("a different number of pixels"));
    }
    Ok(Image {
        width,
        height,
        pixels,
    })
}

/// `c * a / 255` rounded to nearest, the same premultiplication the built-in scene uses.
pub(crate) fn premul(c: u8, a: u8) -> u8 {
    ((u32::from(c) * u32::from(a) + 127) / 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a PNG in memory.
    pub(crate) fn encode(
        width: u32,
        height: u32,
        color: png::ColorType,
        depth: png::BitDepth,
        data: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, width, height);
            enc.set_color(color);
            enc.set_depth(depth);
            let mut w = enc.write_header().expect("header");
            w.write_image_data(data).expect("data");
        }
        out
    }

    #[test]
    fn paths_resolve_against_the_scene_file() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            resolve_image_path(Path::new("/scenes/a/scene.toml"), Path::new("logo.png")),
            p("/scenes/a/logo.png")
        );
        assert_eq!(
            resolve_image_path(Path::new("scenes/scene.toml"), Path::new("img/logo.png")),
            p("scenes/img/logo.png")
        );
        assert_eq!(
            resolve_image_path(Path::new("scene.toml"), Path::new("logo.png")),
            p("logo.png")
        );
        assert_eq!(
            resolve_image_path(Path::new("/scenes/scene.toml"), Path::new("/abs/logo.png")),
            p("/abs/logo.png")
        );
    }

    #[test]
    fn rgba_is_premultiplied() {
        let data = [
            255, 0, 0, 255, 255, 255, 255, 128, 10, 20, 30, 0, 0, 0, 255, 64,
        ];
        let png = encode(2, 2, png::ColorType::Rgba, png::BitDepth::Eight, &data);
        let img = decode_png_bytes(&png, &ImageLimits::default()).expect("decodes");
        assert_eq!((img.width, img.height), (2, 2));
        assert_eq!(img.texel(0, 0), Some([255, 0, 0, 255]));
        assert_eq!(img.texel(1, 0), Some([128, 128, 128, 128]));
        assert_eq!(img.texel(0, 1), Some([0, 0, 0, 0]));
        assert_eq!(img.texel(1, 1), Some([0, 0, 64, 64]));
        assert_eq!(img.texel(2, 0), None);
    }

    #[test]
    fn other_formats_expand_to_rgba() {
        let limits = ImageLimits::default();
        let rgb = encode(1, 1, png::ColorType::Rgb, png::BitDepth::Eight, &[1, 2, 3]);
        assert_eq!(
            decode_png_bytes(&rgb, &limits).expect("rgb").pixels,
            [1, 2, 3, 255]
        );
        let grey = encode(
            2,
            1,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &[9, 200],
        );
        assert_eq!(
            decode_png_bytes(&grey, &limits).expect("grey").pixels,
            [9, 9, 9, 255, 200, 200, 200, 255]
        );
        let grey_alpha = encode(
            1,
            1,
            png::ColorType::GrayscaleAlpha,
            png::BitDepth::Eight,
            &[255, 51],
        );
        assert_eq!(
            decode_png_bytes(&grey_alpha, &limits)
                .expect("grey+alpha")
                .pixels,
            [51, 51, 51, 51]
        );
        // 16-bit keeps the high byte.
        let deep = encode(
            1,
            1,
            png::ColorType::Rgb,
            png::BitDepth::Sixteen,
            &[0x12, 0x34, 0xab, 0xcd, 0xff, 0x00],
        );
        assert_eq!(
            decode_png_bytes(&deep, &limits).expect("16-bit").pixels,
            [0x12, 0xab, 0xff, 255]
        );
        // 1-bit grey: 8 pixels in one byte.
        let bits = encode(
            8,
            1,
            png::ColorType::Grayscale,
            png::BitDepth::One,
            &[0b1010_0000],
        );
        let img = decode_png_bytes(&bits, &limits).expect("1-bit");
        assert_eq!(img.texel(0, 0), Some([255, 255, 255, 255]));
        assert_eq!(img.texel(1, 0), Some([0, 0, 0, 255]));
        assert_eq!(img.pixels.len(), 8 * 4);
    }

    #[test]
    fn palette_expands() {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, 2, 1);
            enc.set_color(png::ColorType::Indexed);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_palette(vec![255, 0, 0, 0, 0, 255]);
            enc.set_trns(vec![255, 0]);
            let mut w = enc.write_header().expect("header");
            w.write_image_data(&[0, 1]).expect("data");
        }
        let img = decode_png_bytes(&out, &ImageLimits::default()).expect("palette");
        assert_eq!(img.pixels, [255, 0, 0, 255, 0, 0, 0, 0]);
    }

    #[test]
    fn decodes_from_a_reader() {
        let png = encode(1, 1, png::ColorType::Rgb, png::BitDepth::Eight, &[4, 5, 6]);
        let img = decode_png(std::io::Cursor::new(png), &ImageLimits::default()).expect("reads");
        assert_eq!(img.pixels, [4, 5, 6, 255]);
    }

    #[test]
    fn oversized_dimensions_are_refused_before_decoding() {
        let limits = ImageLimits {
            max_width: 4,
            max_height: 4,
            max_bytes: 1 << 20,
        };
        let wide = encode(5, 1, png::ColorType::Rgb, png::BitDepth::Eight, &[0; 15]);
        assert!(matches!(
            decode_png_bytes(&wide, &limits),
            Err(ImageError::TooLarge {
                width: 5,
                height: 1,
                ..
            })
        ));
        // A header that claims 100000 x 100000 with no pixel data behind it: refused from the
        // header alone, without allocating for it.
        let mut huge = encode(1, 1, png::ColorType::Rgba, png::BitDepth::Eight, &[0; 4]);
        patch_ihdr(&mut huge, 100_000, 100_000);
        let err = decode_png_bytes(&huge, &ImageLimits::default()).expect_err("refused");
        assert!(
            matches!(err, ImageError::TooLarge { width: 100_000, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("100000x100000"), "{err}");
    }

    #[test]
    fn byte_limit_is_enforced() {
        let png = encode(
            64,
            64,
            png::ColorType::Rgba,
            png::BitDepth::Eight,
            &[7; 64 * 64 * 4],
        );
        let limits = ImageLimits {
            max_bytes: 64 * 64 * 4,
            ..ImageLimits::default()
        };
        let err = decode_png_bytes(&png, &limits).expect_err("too big");
        assert!(matches!(err, ImageError::TooManyBytes { .. }), "{err}");
        assert!(decode_png_bytes(&png, &ImageLimits::default()).is_ok());
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let limits = ImageLimits::default();
        assert!(matches!(
            decode_png_bytes(b"not a png at all", &limits),
            Err(ImageError::Decode(_))
        ));
        assert!(decode_png_bytes(&[], &limits).is_err());
        let png = encode(
            16,
            16,
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            &[3; 16 * 16 * 3],
        );
        for cut in [8, 20, 33, png.len() / 2, png.len() - 13] {
            assert!(
                decode_png_bytes(&png[..cut], &limits).is_err(),
                "cut at {cut}"
            );
        }
        // Flipped bytes anywhere never panic; most are caught by the CRCs.
        for i in 0..png.len() {
            let mut bad = png.clone();
            bad[i] ^= 0x5a;
            let _ = decode_png_bytes(&bad, &limits);
        }
    }

    /// Rewrites the IHDR's dimensions and fixes its CRC, so the decoder reads the header as
    /// valid and only the limits can stop it.
    fn patch_ihdr(png: &mut [u8], width: u32, height: u32) {
        // 8-byte signature, then IHDR: length (4), "IHDR" (4), width (4), height (4), ...
        png[16..20].copy_from_slice(&width.to_be_bytes());
        png[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
    }

    /// CRC-32 as PNG defines it (ISO 3309, reflected, polynomial 0xEDB88320).
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
