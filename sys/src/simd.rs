//! The CPU's vector extensions, chosen at run time: AVX2 detection and the AVX2 kernel of the
//! renderer's compositor.
//!
//! # What this module owns
//!
//! [`Avx2`], a token that can only be made on a CPU that executes AVX2, and the kernel it
//! unlocks, [`Avx2::over`]: premultiplied-alpha OVER of a row of source pixels onto a row of
//! RGBA pixels at an opacity. The token is `Copy` and holds nothing; it is a proof, not a
//! resource.
//!
//! # Why here
//!
//! x86-64 programs are built for the baseline instruction set (SSE2), and code compiled for
//! AVX2 must only run once the CPU has said it has AVX2 (CPUID leaf 7, EBX bit 5; the OS must
//! also save the YMM registers, which `is_x86_feature_detected!` checks through XGETBV). Rust
//! makes calling such code, and the unaligned vector loads and stores of the intrinsics, `unsafe`;
//! this crate holds the project's unsafe code, so the kernel lives here and the compositor
//! (`renderer_process::composite`) stays `#![forbid(unsafe_code)]`. The compositor has a portable
//! kernel of its own, bit-for-bit the same, for CPUs without AVX2 and for the last few pixels of
//! a row; its tests compare both against the scene's reference blend.
//!
//! # Sequence
//!
//! The compositor calls [`Avx2::detect`] once per frame (the standard library caches the CPUID
//! answer, and CPUID is an instruction, not a system call, so the renderer's seccomp policy is
//! not involved), then hands each row of each layer to [`Avx2::over`], which does the pixels
//! that fill whole groups of [`GROUP_PIXELS`] and says how many it did.
//!
//! # Arithmetic
//!
//! Per channel `c` of source `s` (read as RGBA), destination `d` and opacity `op`, with
//! `round(x / 255)` rounding halves up:
//!
//! ```text
//! sc = round(s_c * op / 255)      sa = round(s_a * op / 255)
//! d_c' = min(sc + round(d_c * (255 - sa) / 255), 255)
//! ```
//!
//! Every product of two bytes is at most 65 025, so everything fits in 16-bit lanes. A 32-byte
//! vector of 8 pixels is split into its even bytes (R and B) and odd bytes (G and A) as 16-bit
//! lanes, so no lane ever crosses a pixel; the pixel's `255 - sa` is put in its G and A lanes
//! with one in-lane shuffle and is the same for R and B. Two exact divisions by 255 are used:
//!
//! - where one factor is the same for the whole call (the opacity, or a byte of a uniform
//!   destination), `round(x * k / 255)` is one `vpmulhrsw`, `(x * m + 2^14) >> 15`, by a
//!   multiplier `m` for `k` from `ROUND_DIV255_BY`, a table checked against the formula for
//!   every `k` and `x` when it is built;
//! - where both vary (a destination that is read, times `255 - sa`), the product `v` is taken
//!   (`vpmullw`) and `round(v / 255)` is `((v + 128) * 257) >> 16`, the high half of a 16-bit
//!   product (`vpmulhuw`); it equals the classic `(t + (t >> 8)) >> 8` with `t = v + 128`,
//!   because both are `floor((t + t / 256) / 256)`.
//!
//! The clamp is a saturation: an unsigned saturating byte add, or an unsigned saturating pack
//! of the 16-bit sums into bytes. A group whose source is all zero is skipped (`d_c' = d_c`);
//! at opacity 255 a group whose source alpha is all 255 is stored as it is (`d_c' = s_c`).
//!
//! The destination is either read (a layer over what is already drawn) or given as one pixel
//! (the bottom layer over the frame's uniform backdrop): then the row is only written, which
//! spares the caller filling it first and the memory traffic of reading it back. Where the
//! caller also says nothing reads the row again soon (no layer above it), the row is written with
//! non-temporal stores, which do not read each cache line in before writing it.
//!
//! References: the Intel Intrinsics Guide
//! (<https://www.intel.com/content/www/us/en/docs/intrinsics-guide/index.html>) for each
//! intrinsic, and the AMD64 Architecture Programmer's Manual, volume 3, for CPUID.

use crate::mapping::PeerBytes;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m256i, _mm256_add_epi16, _mm256_adds_epu8, _mm256_and_si256, _mm256_loadu_si256,
    _mm256_mulhi_epu16, _mm256_mulhrs_epi16, _mm256_mullo_epi16, _mm256_or_si256,
    _mm256_packus_epi16, _mm256_set1_epi16, _mm256_set1_epi32, _mm256_setr_epi8,
    _mm256_shuffle_epi8, _mm256_slli_epi16, _mm256_srli_epi16, _mm256_storeu_si256,
    _mm256_stream_si256, _mm256_testc_si256, _mm256_testz_si256, _mm256_xor_si256, _mm_sfence,
};

/// Pixels [`Avx2::over`] handles per step: two 32-byte vectors.
pub const GROUP_PIXELS: usize = 16;

/// How the source pixels of [`Avx2::over`] are laid out in memory, four bytes each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    /// Bytes are B, G, R, A/X (DRM `AR24`/`XR24`) rather than R, G, B, A/X (`AB24`/`XB24`).
    pub blue_first: bool,
    /// The fourth byte is X, undefined, and read as 255 (DRM `XB24`/`XR24`).
    pub alpha_ignored: bool,
}

/// Proof that this CPU executes AVX2; only [`Avx2::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub struct Avx2 {
    _proof: (),
}

impl Avx2 {
    /// The token if the CPU (and the OS, for the YMM state) supports AVX2, else `None`; always
    /// `None` off x86-64.
    pub fn detect() -> Option<Avx2> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Some(Avx2 { _proof: () });
        }
        None
    }

    /// Blends `src` (pixels laid out as `source` says) OVER `dst` (RGBA, premultiplied) at
    /// `opacity`, for as many whole groups of [`GROUP_PIXELS`] as both rows hold, and returns
    /// the number of pixels done: a multiple of [`GROUP_PIXELS`], the rest is the caller's.
    ///
    /// With `under` set, what `dst` holds is ignored and taken to be that pixel everywhere (a
    /// uniform backdrop): `dst` is only written, never read, so the caller need not fill it
    /// first.
    ///
    /// With `stream` set, the caller says nothing reads `dst` again soon (no other layer is
    /// drawn over it): where `dst` is 32-byte aligned it is written past the caches
    /// (`vmovntdq`), which spares reading each line in before writing it and evicting the
    /// source with it, and the stores are fenced (`sfence`) before this returns. Where something
    /// does read it back soon, leave it unset: that read would go to memory.
    ///
    /// `src` may be memory another process writes (a GPU process's buffer): each of its bytes is
    /// loaded once, into a register, and every decision is made on what was loaded, so nothing
    /// is read twice and the row needs no copy first.
    pub fn over(
        self,
        dst: &mut [u8],
        src: PeerBytes<'_>,
        opacity: u8,
        source: Source,
        under: Option<[u8; 4]>,
        stream: bool,
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            let under_px = under.map(u32::from_le_bytes);
            macro_rules! kernel {
                ($bgr:literal, $x:literal, $scale:literal) => {
                    match under_px {
                        Some(px) => kernel!($bgr, $x, $scale, true, px),
                        None => kernel!($bgr, $x, $scale, false, 0),
                    }
                };
                ($bgr:literal, $x:literal, $scale:literal, $uniform:literal, $px:expr) => {
                    // SAFETY: `over_avx2` is compiled with AVX2 enabled, and `self` exists only
                    // if `is_x86_feature_detected!("avx2")` returned true on this machine
                    // (`detect` is the only constructor), so every instruction it uses is
                    // supported. Its other requirements are those of a safe function: it only
                    // touches memory through the two slices it is given.
                    unsafe {
                        over_avx2::<$bgr, $x, $scale, $uniform>(dst, src, opacity, $px, stream)
                    }
                };
            }
            let _ = self;
            match (source.blue_first, source.alpha_ignored, opacity < 255) {
                (false, false, false) => kernel!(false, false, false),
                (false, false, true) => kernel!(false, false, true),
                (false, true, false) => kernel!(false, true, false),
                (false, true, true) => kernel!(false, true, true),
                (true, false, false) => kernel!(true, false, false),
                (true, false, true) => kernel!(true, false, true),
                (true, true, false) => kernel!(true, true, false),
                (true, true, true) => kernel!(true, true, true),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            // No token exists off x86-64; nothing to do.
            let _ = (self, dst, src, opacity, source, under, stream);
            0
        }
    }
}

/// For each `k` in 0..=255, a multiplier `m` with `(x * m + 2^14) >> 15 == round(x * k / 255)`
/// for every `x` in 0..=255: `vpmulhrsw` by `m` divides by 255 exactly in one instruction.
///
/// `vpmulhrsw` is `floor(x * m / 2^15 + 1/2)`, and `round(v / 255)` (halves up) is
/// `floor(v / 255 + 1/2)` too, since no `v / 255` lies strictly between `i + 127/255` and
/// `i + 1/2`; so `m / 2^15` need only be close enough to `k / 255` that no `x` moves across an
/// integer. `floor(k * 2^15 / 255)` or the next one up always is (for 255, `2^15` itself does not
/// fit in an `i16` and `2^15 - 1` does); which one is found here, by trying each against every
/// `x`, at compile time: a `k` with neither would fail the build. The tests check the table
/// against the formula again for every `k` and `x`.
#[cfg(target_arch = "x86_64")]
const ROUND_DIV255_BY: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut k = 0;
    while k < 256 {
        let floor = k * 32768 / 255;
        let mut m = if floor < 32767 { floor } else { 32767 };
        let found = loop {
            assert!(
                m <= floor + 1 && m <= 32767,
                "no vpmulhrsw multiplier for a k"
            );
            let mut x = 0;
            while x < 256 && (x * m + 16384) >> 15 == (x * k + 127) / 255 {
                x += 1;
            }
            if x == 256 {
                break m;
            }
            m += 1;
        };
        table[k as usize] = found as i16;
        k += 1;
    }
    table
};

/// Bytes of one vector: 8 pixels.
#[cfg(target_arch = "x86_64")]
const VECTOR_BYTES: usize = 32;

/// Loads the 32 bytes at `p`, memory another process may write (each load is one copy).
///
/// # Safety
///
/// `p..p + 32` must lie inside memory that stays mapped for the call.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn load_peer(p: *const u8) -> __m256i {
    // SAFETY: the caller keeps `p..p + 32` mapped; the unaligned load has no alignment
    // requirement and forms no reference, so a concurrent write by the peer changes only which
    // bytes are loaded; AVX is part of this function's enabled features.
    unsafe { _mm256_loadu_si256(p.cast()) }
}

/// Loads 32 bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn load(bytes: &[u8; VECTOR_BYTES]) -> __m256i {
    // SAFETY: `bytes` is a live reference to 32 readable bytes, exactly the 32 bytes
    // `_mm256_loadu_si256` reads; the unaligned load has no alignment requirement; AVX is part
    // of this function's enabled features.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
}

/// Stores 32 bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn store(bytes: &mut [u8; VECTOR_BYTES], v: __m256i) {
    // SAFETY: `bytes` is an exclusive reference to 32 writable bytes, exactly the 32 bytes
    // `_mm256_storeu_si256` writes, so nothing else observes the write; the unaligned store has
    // no alignment requirement; AVX is part of this function's enabled features.
    unsafe { _mm256_storeu_si256(bytes.as_mut_ptr().cast(), v) }
}

/// Stores 32 bytes past the caches (`vmovntdq`) where they are 32-byte aligned, else as [`store`].
/// The caller fences (`sfence`) before it returns: non-temporal stores are weakly ordered.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn store_past_caches(bytes: &mut [u8; VECTOR_BYTES], v: __m256i) {
    let p = bytes.as_mut_ptr().cast::<__m256i>();
    if p.is_aligned() {
        // SAFETY: `bytes` is an exclusive reference to 32 writable bytes, exactly the 32 bytes
        // `_mm256_stream_si256` writes, so nothing else observes the write; the address was
        // just checked to be 32-byte aligned, as the instruction requires; AVX is part of this
        // function's enabled features.
        unsafe { _mm256_stream_si256(p, v) }
    } else {
        store(bytes, v);
    }
}

/// The kernel. `BGR`: swap bytes 0 and 2 of each pixel; `X`: force byte 3 to 255; `SCALE`:
/// `opacity` is below 255 (at 255 scaling is the identity and is skipped); `UNIFORM`: the
/// destination is `under` (an RGBA pixel as a little-endian `u32`) everywhere and is not read.
/// `stream`: write through [`store_past_caches`], and fence before returning.
///
/// Per vector of 8 pixels the blend is, in 16-bit lanes (`even`: R and B, `odd`: G and A):
///
/// - the scaled source `sc = round(s * op / 255)`, one `vpmulhrsw` per half by the opacity's
///   [`ROUND_DIV255_BY`] multiplier, chosen once per call; skipped at opacity 255 (`sc = s`);
/// - the pixel's `255 - sa` (of `sc`) in both of its lanes: one in-lane byte shuffle and an
///   exclusive or with 255; with `X` it is `255 - op` everywhere, a constant;
/// - the destination's term `round(d * (255 - sa) / 255)`: read, `vpmullw` then the exact
///   division `((v + 128) * 257) >> 16` (`vpmulhuw`), since both factors vary; uniform, one
///   `vpmulhrsw` per half by the multipliers of the destination's own bytes, since `d` is a
///   constant;
/// - the clamped sum: at opacity 255 the term's halves are joined into bytes and added to the
///   source with an unsigned saturating byte add (`vpaddusb`, which is `min(sc + t, 255)`), so
///   the source is never split into lanes; below it the 16-bit sums are packed with unsigned
///   saturation (`vpackuswb`, which clamps them to 255) and one byte shuffle puts the bytes of
///   each pixel back together.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn over_avx2<const BGR: bool, const X: bool, const SCALE: bool, const UNIFORM: bool>(
    dst: &mut [u8],
    src: PeerBytes<'_>,
    opacity: u8,
    under: u32,
    stream: bool,
) -> usize {
    let put = |d: &mut [u8; VECTOR_BYTES], v: __m256i| {
        if stream {
            store_past_caches(d, v);
        } else {
            store(d, v);
        }
    };
    // 0x00ff in each 16-bit lane: the even-byte mask, and 255 for `255 - x`.
    let low = _mm256_set1_epi16(0x00ff);
    // Byte 3 of each pixel.
    let alpha = _mm256_set1_epi32(0xff00_0000_u32 as i32);
    let half = _mm256_set1_epi16(128);
    let by257 = _mm256_set1_epi16(257);
    let scale_by = _mm256_set1_epi16(ROUND_DIV255_BY[usize::from(opacity)]);
    // Per 128-bit half (vpshufb does not cross halves): bytes 2,1,0,3 of each pixel.
    let swap_rb = _mm256_setr_epi8(
        2, 1, 0, 3, 6, 5, 4, 7, 10, 9, 8, 11, 14, 13, 12, 15, 2, 1, 0, 3, 6, 5, 4, 7, 10, 9, 8, 11,
        14, 13, 12, 15,
    );
    // From a vector of pixels: byte 3 of each pixel (A) as both of its 16-bit lanes (-1 makes a
    // zero byte).
    let alpha_lanes = _mm256_setr_epi8(
        3, -1, 3, -1, 7, -1, 7, -1, 11, -1, 11, -1, 15, -1, 15, -1, 3, -1, 3, -1, 7, -1, 7, -1, 11,
        -1, 11, -1, 15, -1, 15, -1,
    );
    // From the odd-byte lanes, G (bytes 0-1) and A (bytes 2-3) of a pixel: A as both.
    let odd_alpha_lanes = _mm256_setr_epi8(
        2, 3, 2, 3, 6, 7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15, 2, 3, 2, 3, 6, 7, 6, 7, 10, 11, 10,
        11, 14, 15, 14, 15,
    );
    // After `vpackuswb(even, odd)` a 128-bit half holds R0 B0 R1 B1 .. R3 B3 G0 A0 .. G3 A3:
    // back to R G B A per pixel.
    let interleave = _mm256_setr_epi8(
        0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5,
        13, 6, 14, 7, 15,
    );
    let uniform = _mm256_set1_epi32(under as i32);
    // The uniform destination's multipliers: R and B in the even lanes, G and A in the odd.
    let [ur, ug, ub, ua] = under.to_le_bytes().map(|c| ROUND_DIV255_BY[usize::from(c)]);
    let pair = |lo: i16, hi: i16| _mm256_set1_epi32(i32::from(lo as u16) | i32::from(hi) << 16);
    let (under_even_by, under_odd_by) = (pair(ur, ub), pair(ug, ua));
    // With `X` every source alpha is 255, so the scaled one is `round(255 * op / 255) = op`.
    let x_inv = _mm256_set1_epi16(i16::from(255 - opacity));
    let div255 = |v: __m256i| _mm256_mulhi_epu16(_mm256_add_epi16(v, half), by257);
    // The 32 bytes at `off` of `src`: the caller keeps `off + 32 <= src.len`.
    let read = |off: usize| {
        // SAFETY: `off + 32 <= src.len` (the loop below), and `src` borrows memory that stays
        // mapped for `'_`, which outlives this call.
        let mut v = unsafe { load_peer(src.ptr.add(off)) };
        if BGR {
            v = _mm256_shuffle_epi8(v, swap_rb);
        }
        if X {
            v = _mm256_or_si256(v, alpha);
        }
        v
    };
    // `round(d * inv / 255)` for both halves of the destination, `inv` (255 - sa) in every lane
    // of its pixel.
    let term = |inv: __m256i, d: &[u8; VECTOR_BYTES]| {
        if UNIFORM {
            (
                _mm256_mulhrs_epi16(inv, under_even_by),
                _mm256_mulhrs_epi16(inv, under_odd_by),
            )
        } else {
            let dv = load(d);
            let (d_even, d_odd) = (_mm256_and_si256(dv, low), _mm256_srli_epi16::<8>(dv));
            (
                div255(_mm256_mullo_epi16(d_even, inv)),
                div255(_mm256_mullo_epi16(d_odd, inv)),
            )
        }
    };
    let blend = |s: __m256i, d: &mut [u8; VECTOR_BYTES]| {
        if SCALE {
            let s_even = _mm256_mulhrs_epi16(_mm256_and_si256(s, low), scale_by);
            let s_odd = _mm256_mulhrs_epi16(_mm256_srli_epi16::<8>(s), scale_by);
            // 255 - sa, with sa <= 255: an exclusive or with 255.
            let inv = if X {
                x_inv
            } else {
                _mm256_xor_si256(_mm256_shuffle_epi8(s_odd, odd_alpha_lanes), low)
            };
            let (t_even, t_odd) = term(inv, d);
            let even = _mm256_add_epi16(s_even, t_even);
            let odd = _mm256_add_epi16(s_odd, t_odd);
            let packed = _mm256_packus_epi16(even, odd);
            put(d, _mm256_shuffle_epi8(packed, interleave));
        } else {
            let inv = if X {
                x_inv
            } else {
                _mm256_xor_si256(_mm256_shuffle_epi8(s, alpha_lanes), low)
            };
            let (t_even, t_odd) = term(inv, d);
            let t = _mm256_or_si256(t_even, _mm256_slli_epi16::<8>(t_odd));
            put(d, _mm256_adds_epu8(s, t));
        }
    };
    let mut done = 0;
    let step = GROUP_PIXELS * 4;
    let groups = src.len / step;
    for (g, d) in dst.chunks_exact_mut(step).take(groups).enumerate() {
        let (d0, d1) = d.split_at_mut(VECTOR_BYTES);
        let (Ok(d0), Ok(d1)) = (
            <&mut [u8; VECTOR_BYTES]>::try_from(d0),
            <&mut [u8; VECTOR_BYTES]>::try_from(d1),
        ) else {
            // `step` is two vectors, so the halves are always whole vectors.
            break;
        };
        // Group `g` of `groups`: its 64 bytes lie inside `src`.
        let off = g * step;
        let (a, b) = (read(off), read(off + VECTOR_BYTES));
        done += GROUP_PIXELS;
        let any = _mm256_or_si256(a, b);
        if _mm256_testz_si256(any, any) == 1 {
            // Transparent black: the destination stays.
            if UNIFORM {
                put(d0, uniform);
                put(d1, uniform);
            }
            continue;
        }
        if !SCALE && _mm256_testc_si256(_mm256_and_si256(a, b), alpha) == 1 {
            // Every alpha is 255 at opacity 255: the source replaces the destination.
            put(d0, a);
            put(d1, b);
            continue;
        }
        blend(a, d0);
        blend(b, d1);
    }
    if stream {
        // Orders the non-temporal stores before every later store (the frame's hand-off).
        _mm_sfence();
    }
    done
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Set to 1 where the CPU has AVX2, so that there the kernel's tests cannot be skipped.
    const REQUIRE_AVX2: &str = "TRIPTYCH_REQUIRE_AVX2";

    /// The formula of the module docs, one channel at a time, in plain integers.
    fn reference(dst: &mut [u8], src: &[u8], opacity: u8, source: Source) {
        let round = |v: u32| (v + 127) / 255;
        let op = u32::from(opacity);
        for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
            let mut rgba = if source.blue_first {
                [s[2], s[1], s[0], s[3]]
            } else {
                [s[0], s[1], s[2], s[3]]
            };
            if source.alpha_ignored {
                rgba[3] = 255;
            }
            let sa = round(u32::from(rgba[3]) * op);
            for c in 0..4 {
                let v = round(u32::from(rgba[c]) * op) + round(u32::from(d[c]) * (255 - sa));
                d[c] = v.min(255) as u8;
            }
        }
    }

    /// A destination of `len` bytes of garbage (0xa5) that starts 32-byte aligned when
    /// `aligned` is set, so that `stream` takes its non-temporal stores, and 4 bytes past such
    /// an address otherwise.
    struct Aligned {
        buf: Vec<u8>,
        start: usize,
        len: usize,
    }

    impl Aligned {
        fn new(len: usize, aligned: bool) -> Aligned {
            let buf = vec![0xa5; len + 64];
            let to_32 = buf.as_ptr().align_offset(32);
            let start = if aligned { to_32 } else { to_32 + 4 };
            Aligned { buf, start, len }
        }

        fn bytes(&mut self) -> &mut [u8] {
            &mut self.buf[self.start..self.start + self.len]
        }
    }

    const SOURCES: [Source; 4] = [
        Source {
            blue_first: false,
            alpha_ignored: false,
        },
        Source {
            blue_first: false,
            alpha_ignored: true,
        },
        Source {
            blue_first: true,
            alpha_ignored: false,
        },
        Source {
            blue_first: true,
            alpha_ignored: true,
        },
    ];

    /// Every source alpha against every destination byte, for every opacity and layout, with
    /// colours at the alpha (premultiplied white), at 0, at half, and above it (not
    /// premultiplied: the sum must clamp).
    #[test]
    fn over_matches_the_formula_for_every_alpha_destination_and_opacity() {
        let Some(avx2) = Avx2::detect() else {
            assert!(
                !std::arch::is_x86_feature_detected!("avx2"),
                "detect() refused a CPU with AVX2"
            );
            crate::machine::missing(REQUIRE_AVX2, "this CPU has no AVX2");
            return;
        };
        let mut src = Vec::with_capacity(256 * 256 * 4);
        let mut dst0 = Vec::with_capacity(256 * 256 * 4);
        for a in 0..=255u8 {
            for d in 0..=255u8 {
                let colour = [a, 0, a / 2, a.saturating_add(d)];
                src.extend_from_slice(&[colour[usize::from(d % 4)], a / 3, colour[3], a]);
                dst0.extend_from_slice(&[d, 255 - d, d / 2, d]);
            }
        }
        let check = |opacity: u8, source: Source, under: Option<[u8; 4]>, stream: bool| {
            let dst = match under {
                Some(px) => px.repeat(dst0.len() / 4),
                None => dst0.clone(),
            };
            // Garbage where the destination is not to be read.
            let mut buf = Aligned::new(dst.len(), stream);
            let got = buf.bytes();
            if under.is_none() {
                got.copy_from_slice(&dst);
            }
            let done = avx2.over(
                got,
                PeerBytes::from_local(&src),
                opacity,
                source,
                under,
                stream,
            );
            assert_eq!(done, 256 * 256, "opacity {opacity} {source:?}");
            let mut want = dst.clone();
            reference(&mut want, &src, opacity, source);
            if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
                let p = i / 4 * 4;
                panic!(
                    "opacity {opacity} {source:?} under {under:?}: pixel {} src {:?} dst {:?}: \
                     got {:?}, expected {:?}",
                    i / 4,
                    &src[p..p + 4],
                    &dst[p..p + 4],
                    &got[p..p + 4],
                    &want[p..p + 4]
                );
            }
        };
        // Every opacity for one layout; the layouts differ only in how the source is read.
        for opacity in 0..=255u8 {
            check(opacity, SOURCES[0], None, false);
        }
        for opacity in [0, 1, 127, 128, 200, 254, 255] {
            for source in SOURCES {
                for stream in [false, true] {
                    check(opacity, source, None, stream);
                    for under in [[16, 16, 24, 255], [0; 4], [255; 4], [200, 3, 90, 120]] {
                        check(opacity, source, Some(under), stream);
                    }
                }
            }
        }
    }

    #[test]
    fn the_multiplier_table_divides_by_255_exactly_for_every_factor() {
        for (k, &m) in ROUND_DIV255_BY.iter().enumerate() {
            assert!(m >= 0, "k {k}: multiplier {m}");
            for x in 0..=255i32 {
                let got = (x * i32::from(m) + (1 << 14)) >> 15;
                let want = (x * k as i32 + 127) / 255;
                assert_eq!(got, want, "k {k} x {x} multiplier {m}");
            }
        }
    }

    /// A uniform destination's term comes from its own bytes' multipliers: every destination
    /// byte (in every channel) against every source alpha, at every opacity, for each layout.
    #[test]
    fn over_a_uniform_destination_matches_the_formula_for_every_byte_alpha_and_opacity() {
        let Some(avx2) = Avx2::detect() else {
            crate::machine::missing(REQUIRE_AVX2, "this CPU has no AVX2");
            return;
        };
        // Each alpha twice: premultiplied (colours at most the alpha) and not (the sum clamps).
        let src: Vec<u8> = (0..=255u8)
            .flat_map(|a| [a, a / 2, a / 3, a, 255, a.saturating_add(40), 255 - a, a])
            .collect();
        let check = |opacity: u8, source: Source, under: [u8; 4], stream: bool| {
            let mut buf = Aligned::new(src.len(), stream);
            let got = buf.bytes();
            assert_eq!(
                avx2.over(
                    got,
                    PeerBytes::from_local(&src),
                    opacity,
                    source,
                    Some(under),
                    stream
                ),
                src.len() / 4
            );
            let mut want = under.repeat(src.len() / 4);
            reference(&mut want, &src, opacity, source);
            if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
                let p = i / 4 * 4;
                panic!(
                    "opacity {opacity} {source:?} under {under:?}: pixel {} src {:?}: got {:?}, \
                     expected {:?}",
                    i / 4,
                    &src[p..p + 4],
                    &got[p..p + 4],
                    &want[p..p + 4]
                );
            }
        };
        for d in 0..=255u8 {
            let under = [d, 255 - d, d / 3, d];
            for opacity in 0..=255u8 {
                check(opacity, SOURCES[0], under, d % 2 == 1);
            }
            for opacity in [1, 100, 200, 254, 255] {
                for source in &SOURCES[1..] {
                    check(opacity, *source, under, d % 2 == 0);
                }
            }
        }
    }

    #[test]
    fn over_leaves_partial_groups_and_takes_the_fast_paths_exactly() {
        let Some(avx2) = Avx2::detect() else {
            crate::machine::missing(REQUIRE_AVX2, "this CPU has no AVX2");
            return;
        };
        let rgba = SOURCES[0];
        // 20 pixels: one group done, 4 left untouched for the caller.
        let src = vec![255u8; 20 * 4];
        let mut dst = vec![7u8; 20 * 4];
        assert_eq!(
            avx2.over(
                &mut dst,
                PeerBytes::from_local(&src),
                255,
                rgba,
                None,
                false
            ),
            GROUP_PIXELS
        );
        assert!(dst[..64].iter().all(|&b| b == 255));
        assert!(dst[64..].iter().all(|&b| b == 7));
        // Transparent black leaves the destination; opaque at 255 replaces it, swizzled.
        let mut dst = vec![9u8; 64];
        assert_eq!(
            avx2.over(
                &mut dst,
                PeerBytes::from_local(&[0u8; 64]),
                128,
                rgba,
                None,
                false
            ),
            16
        );
        assert!(dst.iter().all(|&b| b == 9));
        let src: Vec<u8> = (0..16).flat_map(|i| [i, 100, 200, 255]).collect();
        let bgr = Source {
            blue_first: true,
            alpha_ignored: false,
        };
        avx2.over(&mut dst, PeerBytes::from_local(&src), 255, bgr, None, false);
        let want: Vec<u8> = (0..16).flat_map(|i| [200, 100, i, 255]).collect();
        assert_eq!(dst, want);
        // Over a uniform destination, transparent groups are that destination.
        let mut dst = vec![9u8; 64];
        avx2.over(
            &mut dst,
            PeerBytes::from_local(&[0u8; 64]),
            255,
            rgba,
            Some([1, 2, 3, 4]),
            false,
        );
        assert_eq!(dst, [1, 2, 3, 4].repeat(16));
        // Rows shorter than a group are left alone.
        assert_eq!(
            avx2.over(
                &mut dst[..60],
                PeerBytes::from_local(&src[..60]),
                255,
                bgr,
                None,
                false
            ),
            0
        );
    }
}
