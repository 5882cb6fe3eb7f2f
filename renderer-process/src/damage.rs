//! Which output pixels a frame changes, and which a reused output slot must have composited.
//!
//! A frame's output damage, against the frame presented before it, is the union over its
//! layers of:
//!
//! - for a layer composited as before (same place, size, z and opacity) whose content changed:
//!   the content damage its description carried, moved to the layer's place — but only when
//!   that damage is relative to the content presented before (`damage_since` names that
//!   frame); otherwise, as after a dropped frame, the layer's whole rectangle;
//! - for a layer composited differently (moved, resized, faded, restacked): its old and its
//!   new rectangle;
//! - for a layer that is new, or gone: its rectangle.
//!
//! Everything else composites to the same pixels, because the composite of a pixel depends only
//! on the layers covering it, their order and opacity, and their texels there. The first frame,
//! and the first after a new output size or a new GPU process, is damaged whole.
//!
//! The output's slots are reused like a layer's buffers, so a slot that held frame `m` misses
//! the damage of every frame presented since: [`Slots`] keeps that history (buffer age, the
//! same [`History`] the GPU process keeps per layer) and answers what to composite into a slot.
//! The property test below drives random sequences of moves, resizes, opacity and z changes,
//! content changes, dropped frames, output resizes and slot choices through both, and checks
//! that compositing only that region leaves the slot equal, bit for bit, to a full composite.

use std::collections::BTreeMap;

use ipc_protocol::damage::{History, Rect, Region};

/// A layer as presented: where it was composited and which content it showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Left edge in the frame.
    pub x: i32,
    /// Top edge in the frame.
    pub y: i32,
    /// Width of its buffer.
    pub w: u32,
    /// Height of its buffer.
    pub h: u32,
    /// Stacking order.
    pub z: i32,
    /// Opacity.
    pub opacity: u8,
    /// Its content: the GPU epoch and the frame it was rendered for.
    pub content: (u64, u64),
}

impl View {
    fn geometry(&self) -> (i32, i32, u32, u32, i32, u8) {
        (self.x, self.y, self.w, self.h, self.z, self.opacity)
    }

    /// Its rectangle in a `w` x `h` frame, if any of it is inside.
    fn rect(&self, w: u32, h: u32) -> Option<Rect> {
        Rect::clipped(i64::from(self.x), i64::from(self.y), self.w, self.h, w, h)
    }
}

/// What a frame showed: its size and each layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// The layers, by index.
    pub layers: BTreeMap<u32, View>,
}

/// The content damage a layer's buffer came with: relative to its content at frame `since`
/// of the same epoch (`None`: not relative to anything, all of it damaged), in layer
/// coordinates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentDamage {
    /// The frame the damage is relative to.
    pub since: Option<u64>,
    /// The texels that changed.
    pub region: Region,
}

/// The output pixels that differ between `before` (the frame presented last, if any) and
/// `after`, given the content damage of `after`'s layers.
pub fn output_damage(
    before: Option<&Snapshot>,
    after: &Snapshot,
    content: &BTreeMap<u32, ContentDamage>,
) -> Region {
    let (w, h) = (after.width, after.height);
    let Some(before) = before.filter(|b| (b.width, b.height) == (w, h)) else {
        return Region::full(w, h);
    };
    let mut out = Region::new();
    let mut add = |r: Option<Rect>| {
        if let Some(r) = r {
            out.add(r);
        }
    };
    for (layer, a) in &after.layers {
        let Some(b) = before.layers.get(layer) else {
            add(a.rect(w, h));
            continue;
        };
        if a.geometry() != b.geometry() {
            add(b.rect(w, h));
            add(a.rect(w, h));
            continue;
        }
        if a.content == b.content {
            continue;
        }
        match content.get(layer) {
            Some(d) if a.content.0 == b.content.0 && d.since == Some(b.content.1) => {
                for r in d
                    .region
                    .placed(i64::from(a.x), i64::from(a.y), w, h)
                    .rects()
                {
                    add(Some(*r));
                }
            }
            _ => add(a.rect(w, h)),
        }
    }
    for (layer, b) in &before.layers {
        if !after.layers.contains_key(layer) {
            add(b.rect(w, h));
        }
    }
    out
}

/// The output slots' buffer age.
#[derive(Debug)]
pub struct Slots {
    history: History,
    /// The frame (by presentation number) each slot holds, if known.
    held: Vec<Option<u64>>,
}

impl Slots {
    /// `n` slots holding nothing known.
    pub fn new(n: usize) -> Slots {
        Slots {
            history: History::default(),
            held: vec![None; n],
        }
    }

    /// Forgets what every slot holds (the frame size changed, so their layout did).
    pub fn forget(&mut self) {
        self.held.iter_mut().for_each(|h| *h = None);
    }

    /// Records the next presentation, whose output damage is `damage`, into `slot` of a
    /// `w` x `h` frame, and returns what must be composited into the slot for it to hold the
    /// new frame.
    pub fn present(&mut self, slot: u32, damage: Region, w: u32, h: u32) -> Region {
        let seq = self.history.push(damage);
        let held = self.held.get(slot as usize).copied().flatten();
        let region = self.history.redraw(held, seq, w, h);
        if let Some(s) = self.held.get_mut(slot as usize) {
            *s = Some(seq);
        }
        region
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::composite::{composite_region, composite_with, Layer, OutputOrder};
    use ipc_protocol::frame::DRM_FORMAT_ABGR8888;
    use proptest::prelude::*;
    use triptych_sys::mapping::PeerBytes;

    /// A layer as the test's GPU side holds it: its buffer's pixels and its placement.
    #[derive(Clone, Debug)]
    struct Model {
        w: u32,
        h: u32,
        pixels: Vec<u8>,
        x: i32,
        y: i32,
        z: i32,
        opacity: u8,
        /// The frame of its content, and the damage since the content before.
        frame: u64,
        damage: ContentDamage,
    }

    #[derive(Clone, Debug)]
    enum Change {
        Move(i32, i32),
        Resize(u32, u32),
        Opacity(u8),
        Z(i32),
        Paint(u32, u32, u32, u32, u8),
        /// A frame the renderer never presents (rejected or dropped).
        Drop,
        /// A new output size.
        Output(u32, u32),
    }

    fn change() -> impl Strategy<Value = (usize, Change, u32)> {
        let c = prop_oneof![
            3 => (-8i32..40, -8i32..30).prop_map(|(x, y)| Change::Move(x, y)),
            1 => (1u32..20, 1u32..16).prop_map(|(w, h)| Change::Resize(w, h)),
            2 => prop_oneof![Just(0u8), Just(255u8), 1u8..255].prop_map(Change::Opacity),
            1 => (0i32..4).prop_map(Change::Z),
            4 => (0u32..20, 0u32..16, 1u32..8, 1u32..8, any::<u8>())
                .prop_map(|(x, y, w, h, c)| Change::Paint(x, y, w, h, c)),
            1 => Just(Change::Drop),
            1 => prop_oneof![Just((33u32, 25u32)), Just((20u32, 30u32))]
                .prop_map(|(w, h)| Change::Output(w, h)),
        ];
        (0usize..3, c, 0u32..3)
    }

    fn texel(layer: usize, x: u32, y: u32, c: u8) -> [u8; 4] {
        // Premultiplied: colour channels at most alpha.
        let a = c | 0x0f;
        let v = (x * 7 + y * 3 + layer as u32 * 11) as u8;
        [v.min(a), c.min(a), (v ^ c).min(a), a]
    }

    fn model(layer: usize, w: u32, h: u32, frame: u64) -> Model {
        let mut pixels = vec![0u8; (w * h * 4) as usize];
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 4) as usize;
                pixels[i..i + 4].copy_from_slice(&texel(layer, x, y, 0x80));
            }
        }
        Model {
            w,
            h,
            pixels,
            x: layer as i32 * 5,
            y: layer as i32 * 3,
            z: layer as i32,
            opacity: 200,
            frame,
            damage: ContentDamage::default(),
        }
    }

    fn layers<'a>(models: &'a [Model]) -> Vec<Layer<'a>> {
        models
            .iter()
            .map(|m| Layer {
                pixels: PeerBytes::from_local(&m.pixels),
                stride: m.w as usize * 4,
                width: m.w,
                height: m.h,
                fourcc: DRM_FORMAT_ABGR8888,
                x: m.x,
                y: m.y,
                z: m.z,
                opacity: m.opacity,
            })
            .collect()
    }

    fn snapshot(models: &[Model], w: u32, h: u32) -> Snapshot {
        Snapshot {
            width: w,
            height: h,
            layers: models
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    (
                        i as u32,
                        View {
                            x: m.x,
                            y: m.y,
                            w: m.w,
                            h: m.h,
                            z: m.z,
                            opacity: m.opacity,
                            content: (1, m.frame),
                        },
                    )
                })
                .collect(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn damage_driven_output_equals_a_full_recomposite(
            changes in prop::collection::vec(change(), 1..40)
        ) {
            const SLOTS: usize = 3;
            let (mut w, mut h) = (33u32, 25u32);
            let mut frame = 0u64;
            let mut models: Vec<Model> = (0..3).map(|l| model(l, 12, 9, frame)).collect();
            let mut slots = Slots::new(SLOTS);
            let mut outputs = vec![vec![0u8; 64 * 64 * 4]; SLOTS];
            let mut shown: Option<Snapshot> = None;
            for (layer, change, slot) in changes {
                frame += 1;
                let m = &mut models[layer];
                let mut present = true;
                match change {
                    Change::Move(x, y) => (m.x, m.y) = (x, y),
                    Change::Opacity(o) => m.opacity = o,
                    Change::Z(z) => m.z = z,
                    Change::Resize(rw, rh) => {
                        // A new buffer size: new content, damaged whole.
                        *m = Model { x: m.x, y: m.y, z: m.z, opacity: m.opacity, ..model(layer, rw, rh, frame) };
                        m.damage = ContentDamage { since: None, region: Region::full(rw, rh) };
                    }
                    Change::Paint(x, y, pw, ph, c) => {
                        let since = m.frame;
                        let mut region = Region::new();
                        if let Some(r) = Rect::clipped(i64::from(x), i64::from(y), pw, ph, m.w, m.h) {
                            for yy in r.y..r.y + r.h {
                                for xx in r.x..r.x + r.w {
                                    let i = ((yy * m.w + xx) * 4) as usize;
                                    m.pixels[i..i + 4].copy_from_slice(&texel(layer, xx, yy, c));
                                }
                            }
                            region.add(r);
                        }
                        m.frame = frame;
                        m.damage = ContentDamage { since: Some(since), region };
                    }
                    Change::Drop => {
                        // The layer's content changes in a frame that is never presented: the
                        // next frame's damage is relative to one the output never showed.
                        let since = m.frame;
                        m.pixels.iter_mut().step_by(5).for_each(|b| *b = b.wrapping_add(1) & 0x0f);
                        m.frame = frame;
                        m.damage = ContentDamage { since: Some(since), region: Region::full(m.w, m.h) };
                        present = false;
                    }
                    Change::Output(ow, oh) => {
                        (w, h) = (ow, oh);
                        slots.forget();
                    }
                }
                if !present {
                    continue;
                }
                let now = snapshot(&models, w, h);
                let content: BTreeMap<u32, ContentDamage> = models
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (i as u32, m.damage.clone()))
                    .collect();
                let damage = output_damage(shown.as_ref(), &now, &content);
                let region = slots.present(slot, damage, w, h);
                let out = &mut outputs[slot as usize];
                composite_region(out, w, h, &mut layers(&models), &region, OutputOrder::Rgba, [9, 8, 7, 255]);
                let mut full = vec![0u8; (w * h * 4) as usize];
                composite_with(&mut full, w, h, &mut layers(&models), None, OutputOrder::Rgba, [9, 8, 7, 255]);
                prop_assert!(out[..full.len()] == full[..], "frame {frame}: slot {slot} differs from a full composite");
                shown = Some(now);
            }
        }
    }

    #[test]
    fn a_moved_layer_damages_its_old_and_new_place_only() {
        let v = |x| View {
            x,
            y: 0,
            w: 4,
            h: 4,
            z: 0,
            opacity: 255,
            content: (1, 1),
        };
        let snap = |x| Snapshot {
            width: 100,
            height: 10,
            layers: [(0, v(x))].into_iter().collect(),
        };
        let d = output_damage(Some(&snap(0)), &snap(50), &BTreeMap::new());
        assert_eq!(d.area(), 32);
        assert!(output_damage(Some(&snap(0)), &snap(0), &BTreeMap::new()).is_empty());
        assert_eq!(output_damage(None, &snap(0), &BTreeMap::new()).area(), 1000);
    }

    #[test]
    fn content_damage_counts_only_when_relative_to_what_was_shown() {
        let v = |frame| View {
            x: 10,
            y: 2,
            w: 8,
            h: 8,
            z: 0,
            opacity: 255,
            content: (1, frame),
        };
        let snap = |frame| Snapshot {
            width: 100,
            height: 20,
            layers: [(0, v(frame))].into_iter().collect(),
        };
        let small = |since| {
            [(
                0,
                ContentDamage {
                    since: Some(since),
                    region: Region::of([Rect {
                        x: 1,
                        y: 1,
                        w: 2,
                        h: 2,
                    }]),
                },
            )]
            .into_iter()
            .collect()
        };
        let d = output_damage(Some(&snap(4)), &snap(5), &small(4));
        assert_eq!(
            d.rects(),
            &[Rect {
                x: 11,
                y: 3,
                w: 2,
                h: 2
            }]
        );
        // Relative to frame 3, which is not what the output shows: the whole layer.
        assert_eq!(
            output_damage(Some(&snap(4)), &snap(5), &small(3)).area(),
            64
        );
    }
}
