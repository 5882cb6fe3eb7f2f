//! The frame size now, its generation, and the largest size the output slots hold.
//!
//! The output slots are made once, for the largest size the run may take (the window's screen,
//! or the embedding application's maximum); a resize changes only the frames' size, never the
//! slots. Each size has a generation, 0 at first and one more at every resize that changes the
//! size, so that a frame says which size it was made at. A resize reaches the renderer and the
//! GPU process while frames of the old size are still on their way; those are judged here
//! ([`Geometry::judge`]): dropped if they were asked for before the resize, a breach if they
//! claim a generation not yet asked for or were asked for after it. What a `Presented` says of
//! its pixels (its damage, how many it composited) is checked against the size now.

use ipc_protocol::damage::{self, Rect, Region};
use ipc_protocol::messages::Resize;
use ipc_protocol::rules::Breach;

use super::super::slots::{self, Judged};

/// The frame size and its generation.
#[derive(Clone, Debug)]
pub struct Geometry {
    /// The frame size now (the window's, once resized).
    size: (u32, u32),
    /// The frame size's generation: one more at every resize.
    generation: u32,
    /// The largest frame size the output slots hold.
    max_size: (u32, u32),
}

impl Geometry {
    /// Frames of `size` (generation 0), in slots of `max_size` (at least `size`).
    pub fn new(size: (u32, u32), max_size: (u32, u32)) -> Geometry {
        Geometry {
            size,
            generation: 0,
            max_size,
        }
    }

    /// The frame size now.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// The frame size's generation.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The largest frame the output slots hold.
    pub fn max_size(&self) -> (u32, u32) {
        self.max_size
    }

    /// Pixels of a frame of the size now.
    pub fn output_px(&self) -> u64 {
        u64::from(self.size.0) * u64::from(self.size.1)
    }

    /// Bytes of one output slot (4 bytes a pixel of the largest frame).
    pub fn slot_bytes(&self) -> u64 {
        u64::from(self.max_size.0) * u64::from(self.max_size.1) * 4
    }

    /// The slot at byte `offset` of an output.
    pub fn slot_of(&self, offset: u32) -> Option<u32> {
        u64::from(offset)
            .checked_div(self.slot_bytes())
            .and_then(|s| u32::try_from(s).ok())
    }

    /// Frames of `(w, h)`, clamped to 1 pixel and to the slots' size, from now on: the resize
    /// to tell the children, unless that is the size already.
    pub fn resize(&mut self, (w, h): (u32, u32)) -> Option<Resize> {
        let (w, h) = (w.clamp(1, self.max_size.0), h.clamp(1, self.max_size.1));
        if (w, h) == self.size {
            return None;
        }
        self.generation += 1;
        self.size = (w, h);
        Some(Resize {
            width: w,
            height: h,
            generation: self.generation,
        })
    }

    /// A renderer's output, made at `generation`: the generation it was started with or an
    /// older one (a resize may have come since, and reaches it as a command after this).
    pub fn check_output(&self, generation: u32) -> Result<(), Breach> {
        if generation > self.generation {
            return Err(Breach::new(
                "Output",
                format!("of generation {generation}, beyond {}", self.generation),
            ));
        }
        Ok(())
    }

    /// What to do with frame `frame` composited at `generation`, `floor` being the first frame
    /// asked for at the size now (`u64::MAX` when nothing paces the frames: any may come).
    pub fn judge(&self, generation: u32, frame: u64, floor: u64) -> Result<Judged, Breach> {
        slots::judge(generation, self.generation, frame, floor)
            .map_err(|what| Breach::new("Presented", what))
    }

    /// A `Presented` of the size now, with `rects` of damage and `composited_px` pixels
    /// composited: the damage as a region, and the frame's pixels.
    pub fn check_presented(
        &self,
        rects: &[Rect],
        composited_px: u64,
    ) -> Result<(Region, u64), Breach> {
        let damage = damage::check(rects, self.size.0, self.size.1)
            .map_err(|e| Breach::new("Presented", e.to_string()))?;
        let output_px = self.output_px();
        if composited_px > output_px {
            return Err(Breach::new(
                "Presented",
                format!("{composited_px} pixels composited into a frame of {output_px}"),
            ));
        }
        Ok((damage, output_px))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resize_is_clamped_to_the_slots_and_counts_only_when_the_size_changes() {
        let mut g = Geometry::new((320, 240), (640, 480));
        assert_eq!(g.resize((320, 240)), None, "the size already");
        assert_eq!(g.generation(), 0);
        assert_eq!(
            g.resize((1000, 0)),
            Some(Resize {
                width: 640,
                height: 1,
                generation: 1
            })
        );
        assert_eq!(g.size(), (640, 1));
        // Clamped to the size it has: no new generation.
        assert_eq!(g.resize((5000, 0)), None);
        assert_eq!(g.resize((100, 100)).map(|r| r.generation), Some(2));
        assert_eq!(g.output_px(), 10_000);
        assert_eq!(g.max_size(), (640, 480), "the slots never change");
    }

    #[test]
    fn frames_on_their_way_through_a_resize_are_dropped_or_refused() {
        let mut g = Geometry::new((320, 240), (640, 480));
        g.resize((200, 100));
        // Frames 0..40 were asked for before the resize; 40 is the first at the new size.
        let floor = 40;
        assert_eq!(g.judge(0, 39, floor), Ok(Judged::Drop));
        assert_eq!(g.judge(1, 39, floor), Ok(Judged::Show));
        assert_eq!(g.judge(1, 41, floor), Ok(Judged::Show));
        let late = g
            .judge(0, 40, floor)
            .expect_err("asked for at the new size");
        assert_eq!(late.kind, "Presented");
        assert!(
            g.judge(2, 41, floor).is_err(),
            "a generation never asked for"
        );
        // Headless, nothing paces the frames: every old one is dropped.
        assert_eq!(g.judge(0, 10_000, u64::MAX), Ok(Judged::Drop));
        // An output made before the resize is fine; one from the future is not.
        g.check_output(0).expect("older");
        g.check_output(1).expect("current");
        assert_eq!(g.check_output(2).map_err(|b| b.kind), Err("Output"));
    }

    #[test]
    fn a_presented_frame_is_checked_against_the_size_now() {
        let mut g = Geometry::new((320, 240), (640, 480));
        let corner = Rect {
            x: 300,
            y: 200,
            w: 20,
            h: 40,
        };
        let (damage, px) = g.check_presented(&[corner], 800).expect("inside");
        assert_eq!((damage.area(), px), (800, 320 * 240));
        // After shrinking, the same rectangle reaches outside the frame.
        g.resize((310, 240));
        let e = g.check_presented(&[corner], 800).expect_err("outside");
        assert!(e.what.contains("outside"), "{}", e.what);
        // Every pixel composited, and one more.
        g.check_presented(&[], 310 * 240).expect("the whole frame");
        let e = g.check_presented(&[], 310 * 240 + 1).expect_err("too many");
        assert!(e.what.contains("74401 pixels"), "{}", e.what);
    }

    #[test]
    fn output_offsets_map_to_slots_of_the_largest_frame() {
        let g = Geometry::new((10, 10), (100, 50));
        assert_eq!(g.slot_bytes(), 20_000);
        assert_eq!(g.slot_of(0), Some(0));
        assert_eq!(g.slot_of(19_999), Some(0));
        assert_eq!(g.slot_of(20_000), Some(1));
        assert_eq!(g.slot_of(u32::MAX), Some(u32::MAX / 20_000));
        // Slots of nothing name no slot, rather than dividing by zero.
        assert_eq!(Geometry::new((0, 0), (0, 0)).slot_of(4), None);
    }
}
