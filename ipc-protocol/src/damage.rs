//! Damage: the parts of a layer or of the output that changed, as a short list of rectangles.
//!
//! Every stage of a frame works only where something changed: the scene says which parts of
//! each layer's content changed since the layer's previous submission ([`LayerMsg::damage`]),
//! the GPU process redraws (and in the shm path reads back) only what each reused buffer
//! misses, the renderer recomposites only the output rectangles that changed, and the launcher
//! hands those rectangles to the display server.
//!
//! A [`Region`] holds at most [`MAX_RECTS`] rectangles. Adding one that touches or overlaps a
//! rectangle already held merges the two into their bounding box, and a region that would hold
//! more than [`MAX_RECTS`] collapses into its bounding box; both only ever grow the region, so a
//! region covers at least every pixel added to it, and drawing a pixel twice is the only cost
//! of the simplification. Rectangles are kept disjoint, so [`Region::area`] never counts a pixel
//! twice, and the work of a region is proportional to its area.
//!
//! Coordinates are top-down pixels with the origin at the top left, as everywhere in triptych.
//!
//! [`LayerMsg::damage`]: crate::messages::LayerMsg::damage

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The most rectangles a region holds; beyond this it is one bounding box.
pub const MAX_RECTS: usize = 16;

/// A rectangle, `w` x `h` pixels with its top-left corner at (`x`, `y`). Never empty inside a
/// [`Region`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rect {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

impl Rect {
    /// A `w` x `h` rectangle at the origin: the whole of something that size.
    pub fn full(w: u32, h: u32) -> Rect {
        Rect { x: 0, y: 0, w, h }
    }

    /// Whether it covers no pixel.
    pub fn is_empty(&self) -> bool {
        self.w == 0 || self.h == 0
    }

    /// Its number of pixels.
    pub fn area(&self) -> u64 {
        u64::from(self.w) * u64::from(self.h)
    }

    /// One past its right column (may exceed `u32` only for a rectangle no validator passes).
    pub fn right(&self) -> u64 {
        u64::from(self.x) + u64::from(self.w)
    }

    /// One past its bottom row.
    pub fn bottom(&self) -> u64 {
        u64::from(self.y) + u64::from(self.h)
    }

    /// Whether it lies inside a `w` x `h` area, without overflow for any field values.
    pub fn fits(&self, w: u32, h: u32) -> bool {
        self.right() <= u64::from(w) && self.bottom() <= u64::from(h)
    }

    /// The part of a rectangle placed at (`x`, `y`) in signed coordinates (a layer's
    /// placement, possibly off the output) that lies inside a `w` x `h` area; `None` if none.
    pub fn clipped(x: i64, y: i64, rw: u32, rh: u32, w: u32, h: u32) -> Option<Rect> {
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = (x + i64::from(rw)).min(i64::from(w));
        let y1 = (y + i64::from(rh)).min(i64::from(h));
        if x0 >= x1 || y0 >= y1 {
            return None;
        }
        // Inside 0..=w and 0..=h, so in range of u32.
        Some(Rect {
            x: x0 as u32,
            y: y0 as u32,
            w: (x1 - x0) as u32,
            h: (y1 - y0) as u32,
        })
    }

    /// Whether the two overlap or share an edge (their union as one box wastes little).
    fn touches(&self, o: &Rect) -> bool {
        u64::from(self.x) <= o.right()
            && u64::from(o.x) <= self.right()
            && u64::from(self.y) <= o.bottom()
            && u64::from(o.y) <= self.bottom()
    }

    /// The smallest rectangle holding both.
    fn bounds(&self, o: &Rect) -> Rect {
        let x = self.x.min(o.x);
        let y = self.y.min(o.y);
        Rect {
            x,
            y,
            w: (self.right().max(o.right()) - u64::from(x)) as u32,
            h: (self.bottom().max(o.bottom()) - u64::from(y)) as u32,
        }
    }
}

/// A set of pixels as at most [`MAX_RECTS`] disjoint rectangles (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    rects: Vec<Rect>,
}

impl Region {
    /// No pixel.
    pub fn new() -> Region {
        Region::default()
    }

    /// The whole of a `w` x `h` area (empty if either is 0).
    pub fn full(w: u32, h: u32) -> Region {
        let mut r = Region::new();
        r.add(Rect::full(w, h));
        r
    }

    /// A region of these rectangles.
    pub fn of(rects: impl IntoIterator<Item = Rect>) -> Region {
        let mut r = Region::new();
        for rect in rects {
            r.add(rect);
        }
        r
    }

    /// Its rectangles: disjoint, none empty.
    pub fn rects(&self) -> &[Rect] {
        &self.rects
    }

    /// Whether it holds no pixel.
    pub fn is_empty(&self) -> bool {
        self.rects.is_empty()
    }

    /// Its number of pixels.
    pub fn area(&self) -> u64 {
        self.rects.iter().map(Rect::area).sum()
    }

    /// Adds `rect`'s pixels (nothing for an empty rectangle).
    pub fn add(&mut self, rect: Rect) {
        if rect.is_empty() {
            return;
        }
        // Merging can make the box touch others held: merge until it stands alone.
        let mut rect = rect;
        while let Some(i) = self.rects.iter().position(|r| r.touches(&rect)) {
            rect = rect.bounds(&self.rects.swap_remove(i));
        }
        self.rects.push(rect);
        if self.rects.len() > MAX_RECTS {
            let all = self
                .rects
                .iter()
                .skip(1)
                .fold(self.rects[0], |a, r| a.bounds(r));
            self.rects = vec![all];
        }
    }

    /// Adds every pixel of `other`.
    pub fn union(&mut self, other: &Region) {
        for r in &other.rects {
            self.add(*r);
        }
    }

    /// Every rectangle moved by (`dx`, `dy`) and clipped to a `w` x `h` area: a layer's damage
    /// in output coordinates, for a layer placed at (`dx`, `dy`).
    pub fn placed(&self, dx: i64, dy: i64, w: u32, h: u32) -> Region {
        Region::of(self.rects.iter().filter_map(|r| {
            Rect::clipped(i64::from(r.x) + dx, i64::from(r.y) + dy, r.w, r.h, w, h)
        }))
    }

    /// The bounding box of the whole region, if any pixel.
    pub fn bounds(&self) -> Option<Rect> {
        let first = *self.rects.first()?;
        Some(self.rects.iter().fold(first, |a, r| a.bounds(r)))
    }

    /// Whether pixel (`x`, `y`) is in it.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        self.rects
            .iter()
            .any(|r| x >= r.x && y >= r.y && u64::from(x) < r.right() && u64::from(y) < r.bottom())
    }
}

/// How many numbers back a [`History`] keeps damage: a buffer older than this is redrawn
/// whole. Well above the buffers per layer and the output's slots, so in the steady state no
/// buffer is.
pub const DEPTH: usize = 16;

/// Buffer age: the recent damage of something drawn again and again into buffers that are
/// reused (a layer's submissions into pool buffers, the output's frames into slots), so that
/// a buffer that held number `m` is brought up to number `n` by redrawing the union of the
/// damage of `m + 1 ..= n`, as `EGL_EXT_buffer_age` has an application do for a back buffer.
#[derive(Debug, Default)]
pub struct History {
    /// The sequence number the next one gets.
    next: u64,
    /// The last [`DEPTH`]: their sequence number and damage, oldest first.
    recent: VecDeque<(u64, Region)>,
}

impl History {
    /// Records the next one with `damage` (relative to the one before) and returns its
    /// sequence number, from 0.
    pub fn push(&mut self, damage: Region) -> u64 {
        let seq = self.next;
        self.next += 1;
        if self.recent.len() == DEPTH {
            self.recent.pop_front();
        }
        self.recent.push_back((seq, damage));
        seq
    }

    /// What a buffer of `w` x `h` must have redrawn to hold number `now`: the union of the
    /// damage of every number after `held` (the one it holds, of the same size) up to `now`;
    /// everything when it holds none, or one too old to know.
    pub fn redraw(&self, held: Option<u64>, now: u64, w: u32, h: u32) -> Region {
        let Some(held) = held else {
            return Region::full(w, h);
        };
        let oldest = self.recent.front().map_or(u64::MAX, |(s, _)| *s);
        // The damage of `held + 1` must still be known.
        if held >= now || held + 1 < oldest {
            return Region::full(w, h);
        }
        let mut out = Region::new();
        for (_, d) in self.recent.iter().filter(|(s, _)| *s > held && *s <= now) {
            out.union(d);
        }
        // Damage recorded at another size may reach past this one.
        out.placed(0, 0, w, h)
    }
}

/// Why a peer's list of damage rectangles was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DamageError {
    /// More rectangles than a region ever holds.
    #[error("{0} damage rectangles (at most {MAX_RECTS})")]
    TooMany(usize),
    /// A rectangle that covers nothing.
    #[error("damage rectangle {0:?} is empty")]
    Empty(Rect),
    /// A rectangle reaching outside what it damages.
    #[error("damage rectangle {rect:?} reaches outside the {w}x{h} it damages")]
    Outside {
        /// The rectangle.
        rect: Rect,
        /// Width of what it damages.
        w: u32,
        /// Height of what it damages.
        h: u32,
    },
}

/// Checks rectangles a peer sent as damage to a `w` x `h` area, and makes them a region.
pub fn check(rects: &[Rect], w: u32, h: u32) -> Result<Region, DamageError> {
    if rects.len() > MAX_RECTS {
        return Err(DamageError::TooMany(rects.len()));
    }
    for r in rects {
        if r.is_empty() {
            return Err(DamageError::Empty(*r));
        }
        if !r.fits(w, h) {
            return Err(DamageError::Outside { rect: *r, w, h });
        }
    }
    Ok(Region::of(rects.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(x: u32, y: u32, w: u32, h: u32) -> Rect {
        Rect { x, y, w, h }
    }

    #[test]
    fn a_region_covers_every_pixel_added_and_counts_each_once() {
        let mut g = Region::new();
        g.add(r(0, 0, 10, 10));
        g.add(r(5, 5, 10, 10));
        g.add(r(100, 100, 1, 1));
        g.add(r(0, 0, 0, 5));
        for (x, y) in [(0, 0), (9, 9), (14, 14), (100, 100)] {
            assert!(g.contains(x, y), "({x}, {y})");
        }
        assert!(!g.contains(50, 50));
        // Overlapping ones merged: two disjoint boxes.
        assert_eq!(g.rects().len(), 2);
        assert_eq!(g.area(), 15 * 15 + 1);
    }

    #[test]
    fn too_many_rectangles_collapse_into_their_bounds() {
        let mut g = Region::new();
        for i in 0..=MAX_RECTS as u32 {
            g.add(r(i * 10, 0, 1, 1));
        }
        assert_eq!(g.rects(), &[r(0, 0, MAX_RECTS as u32 * 10 + 1, 1)]);
    }

    #[test]
    fn placed_moves_and_clips() {
        let g = Region::of([r(0, 0, 10, 10), r(20, 20, 5, 5)]);
        let p = g.placed(-5, 95, 100, 100);
        assert_eq!(p.rects(), &[r(0, 95, 5, 5)]);
        assert!(g.placed(1000, 0, 100, 100).is_empty());
    }

    #[test]
    fn peer_rectangles_are_checked() {
        assert!(check(&[r(0, 0, 4, 4)], 4, 4).is_ok());
        assert_eq!(
            check(&[r(1, 0, 4, 4)], 4, 4),
            Err(DamageError::Outside {
                rect: r(1, 0, 4, 4),
                w: 4,
                h: 4
            })
        );
        assert_eq!(
            check(&[r(u32::MAX, 0, u32::MAX, 1)], 4, 4).map(|_| ()),
            Err(DamageError::Outside {
                rect: r(u32::MAX, 0, u32::MAX, 1),
                w: 4,
                h: 4
            })
        );
        assert_eq!(
            check(&[r(0, 0, 0, 1)], 4, 4),
            Err(DamageError::Empty(r(0, 0, 0, 1)))
        );
        assert_eq!(
            check(&vec![r(0, 0, 1, 1); MAX_RECTS + 1], 4, 4),
            Err(DamageError::TooMany(MAX_RECTS + 1))
        );
    }
}
