//! Which layers differ between two evaluated frames, for damage tracking.
//!
//! A layer's *content* is what its texture holds: the kind's parameters, the size it is laid
//! out at, the scroll offset, and its turn and scale (the turned, scaled quad is drawn into the
//! texture). Its *placement* is how that texture is composited: its bounds (position and size),
//! opacity and z. A size change is both: the texture is redrawn and covers a different area. The comparison is of the two states only, so a layer that moved
//! and came back between the frames has not changed; that is what a compositor that keeps the
//! earlier frame needs to know.

use super::eval::LayerState;

/// The layers that changed between two frames, by index in [`Scene::layers`](super::Scene),
/// each list ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Damage {
    /// Layers whose texture must be redrawn.
    pub content: Vec<usize>,
    /// Layers that must be composited differently (moved, resized, faded, restacked, turned).
    pub placement: Vec<usize>,
}

impl Damage {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.content.is_empty() && self.placement.is_empty()
    }
}

/// What changed from `before` (say frame `a`) to `after` (frame `b`), both from
/// [`Scene::state_at`](super::Scene::state_at) of the same scene and output size.
///
/// Layers are matched by [`LayerState::index`]; a layer present in only one of the two counts
/// as changed in both ways.
pub fn damage(before: &[LayerState], after: &[LayerState]) -> Damage {
    let mut out = Damage::default();
    let last = before
        .iter()
        .chain(after)
        .map(|s| s.index + 1)
        .max()
        .unwrap_or(0);
    for index in 0..last {
        let a = before.iter().find(|s| s.index == index);
        let b = after.iter().find(|s| s.index == index);
        let (content, placement) = match (a, b) {
            (None, None) => continue,
            (Some(a), Some(b)) => (
                a.content != b.content
                    || a.scroll != b.scroll
                    || (a.rect.w, a.rect.h) != (b.rect.w, b.rect.h)
                    || a.rotation != b.rotation
                    || a.scale != b.scale,
                a.rect != b.rect || a.bounds != b.bounds || a.opacity != b.opacity || a.z != b.z,
            ),
            _ => (true, true),
        };
        if content {
            out.content.push(index);
        }
        if placement {
            out.placement.push(index);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::eval::{Angle, OutputRect};
    use crate::file::model::Content;

    fn state(index: usize) -> LayerState {
        LayerState {
            index,
            rect: OutputRect {
                x: 0,
                y: 0,
                w: 10,
                h: 10,
            },
            bounds: OutputRect {
                x: 0,
                y: 0,
                w: 10,
                h: 10,
            },
            scale: 1000,
            opacity: 255,
            z: 0,
            rotation: Angle::default(),
            content: Content::Solid {
                color: [1, 2, 3, 255],
            },
            scroll: (0, 0),
        }
    }

    #[test]
    fn identical_frames_have_no_damage() {
        let s = vec![state(0), state(1)];
        assert!(damage(&s, &s).is_empty());
        assert!(damage(&[], &[]).is_empty());
    }

    #[test]
    fn each_change_lands_in_its_list() {
        let before = vec![state(0), state(1), state(2), state(3), state(4), state(5)];
        let mut after = before.clone();
        after[0].rect.x = 5; // moved
        after[1].opacity = 10; // faded
        after[2].z = 9; // restacked
        after[3].rotation = Angle::from_millidegrees(1); // turned: drawn into the texture
        after[4].content = Content::Solid {
            color: [0, 0, 0, 255],
        }; // recoloured
        after[5].scroll = (1, 0); // scrolled
        let d = damage(&before, &after);
        assert_eq!(d.placement, [0, 1, 2]);
        assert_eq!(d.content, [3, 4, 5]);
    }

    #[test]
    fn a_resize_is_both() {
        let before = vec![state(0)];
        let mut after = before.clone();
        after[0].rect.w = 11;
        let d = damage(&before, &after);
        assert_eq!((d.content, d.placement), (vec![0], vec![0]));
    }

    #[test]
    fn unmatched_layers_are_both() {
        let d = damage(&[state(0)], &[state(0), state(1)]);
        assert_eq!((d.content, d.placement), (vec![1], vec![1]));
        let d = damage(&[state(2)], &[]);
        assert_eq!((d.content, d.placement), (vec![2], vec![2]));
    }

    #[test]
    fn the_default_scene_damages_only_what_moves() {
        let scene = crate::file::default_scene();
        let (w, h) = (640, 480);
        let a = scene.state_at(10, w, h);
        let b = scene.state_at(11, w, h);
        let d = damage(&a, &b);
        for (i, layer) in scene.layers.iter().enumerate() {
            let anim = &layer.animation;
            let moves = anim.translate.is_some() || anim.fade.is_some();
            let redrawn = anim.scroll.is_some() || anim.rotate.is_some();
            // A turn changes the bounds too, unless their size happens to stay the same.
            assert!(
                d.placement.contains(&i) == moves || anim.rotate.is_some(),
                "{}",
                layer.name
            );
            assert_eq!(d.content.contains(&i), redrawn, "{}", layer.name);
        }
        // A whole common period later, everything is back where it was.
        let period: u64 = 60 * 60;
        assert!(damage(&a, &scene.state_at(10 + period, w, h)).is_empty());
    }
}
