//! `triptych run --verify`: the presented frame, compared pixel for pixel with the reference
//! composite the scene computes on its own (`triptych_scene::expected_pixel`), so that a run on
//! an unfamiliar driver proves its output, not only that it produced some. With `--scene`, the
//! reference is the scene file's CPU reference (`triptych_scene::file::reference_frame`), which
//! exists only for the exactly predictable layer kinds.

use serde::Serialize;

/// The outcome of a check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// The frame checked (the one on screen at the end).
    pub frame: u64,
    /// Pixels compared.
    pub pixels: u64,
    /// Pixels that differ.
    pub mismatches: u64,
    /// The first few differences, `(x, y): got [r, g, b, a], expected [...]`.
    pub first: Vec<String>,
}

/// How many differences are listed.
const LISTED: usize = 8;

/// The reference of `frame` of the loaded `--scene`, `width * height * 4` RGBA bytes, or why
/// it has none.
pub fn scene_reference(
    loaded: &crate::scene::LoadedScene,
    frame: u64,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, triptych_scene::file::Unpredictable> {
    let images: Vec<_> = loaded.decoded.iter().map(|d| d.as_deref()).collect();
    triptych_scene::file::reference_frame(&loaded.scene, frame, width, height, &images)
}

/// Compares `pixels` with the reference of `frame` of the run's scene: the loaded `--scene`,
/// or the built-in deterministic one with `layers` layers.
pub fn check_run(
    scene: Option<&crate::scene::LoadedScene>,
    frame: u64,
    layers: u32,
    width: u32,
    height: u32,
    pixels: &[u8],
) -> Verification {
    let Some(loaded) = scene else {
        return check(frame, layers, width, height, pixels);
    };
    match scene_reference(loaded, frame, width, height) {
        Ok(want) => check_with(frame, width, height, pixels, |x, y| {
            let i = ((u64::from(y) * u64::from(width) + u64::from(x)) * 4) as usize;
            [want[i], want[i + 1], want[i + 2], want[i + 3]]
        }),
        // Refused before the run starts (`RunConfig::prepare`); a frame that still has no
        // reference counts as wholly different.
        Err(e) => Verification {
            frame,
            pixels: u64::from(width) * u64::from(height),
            mismatches: u64::from(width) * u64::from(height),
            first: vec![e.to_string()],
        },
    }
}

/// Compares `pixels` (RGBA rows of `width`, tightly packed) with the reference of `frame`.
pub fn check(frame: u64, layers: u32, width: u32, height: u32, pixels: &[u8]) -> Verification {
    check_with(frame, width, height, pixels, |x, y| {
        triptych_scene::expected_pixel(frame, layers, width, height, x, y)
    })
}

fn check_with(
    frame: u64,
    width: u32,
    height: u32,
    pixels: &[u8],
    reference: impl Fn(u32, u32) -> [u8; 4],
) -> Verification {
    let mut v = Verification {
        frame,
        ..Verification::default()
    };
    for y in 0..height {
        for x in 0..width {
            let i = ((u64::from(y) * u64::from(width) + u64::from(x)) * 4) as usize;
            let want = reference(x, y);
            let got = pixels.get(i..i + 4);
            v.pixels += 1;
            if got != Some(&want[..]) {
                v.mismatches += 1;
                if v.first.len() < LISTED {
                    v.first
                        .push(format!("({x}, {y}): got {got:?}, expected {want:?}"));
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(frame: u64, layers: u32, w: u32, h: u32) -> Vec<u8> {
        let mut p = Vec::new();
        for y in 0..h {
            for x in 0..w {
                p.extend(triptych_scene::expected_pixel(frame, layers, w, h, x, y));
            }
        }
        p
    }

    #[test]
    fn the_reference_itself_matches_and_one_changed_pixel_does_not() {
        let (w, h) = (40, 30);
        let mut p = reference(7, 3, w, h);
        assert_eq!(check(7, 3, w, h, &p).mismatches, 0);
        p[(5 * w as usize + 9) * 4] ^= 1;
        let v = check(7, 3, w, h, &p);
        assert_eq!(v.mismatches, 1);
        assert!(v.first[0].starts_with("(9, 5)"), "{:?}", v.first);
        assert_eq!(v.pixels, u64::from(w * h));
    }

    #[test]
    fn a_short_buffer_is_a_mismatch_not_a_panic() {
        let v = check(0, 1, 8, 8, &[0u8; 10]);
        assert_eq!(v.mismatches, 64);
    }
}
