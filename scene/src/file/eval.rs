//! A scene at one frame: every layer's rectangle, opacity, z, rotation and content parameters
//! as a pure function of the frame number and the output size.
//!
//! Time is the frame number at a nominal [`FPS`](super::FPS) frames per second, never a clock,
//! so any process (or test) that knows the frame number computes the same state. The arithmetic
//! is all integer, rounding halves up, so the state is exact and comparable with `==`.
//!
//! Each animation has a period `P` in frames and a phase `f = frame % P`:
//! - *translate* and *fade* go out and back: their progress is the triangle wave
//!   `t = 2f / P` for `2f <= P`, else `2(P - f) / P`, from 0 at `f = 0` to 1 at `f = P / 2`;
//!   the offset is `dx * t`, the opacity `opacity + (to - opacity) * t`.
//! - *rotate* and *scroll* advance steadily: the angle is `degrees * f / P` (a full turn per
//!   period by default, so the motion is seamless), the scroll offset `(dx, dy) * f / P`.

use super::model::{div_round, Content, Layer, Length, Scene};

/// A rectangle in output pixels; the position may lie off the output (the layer is clipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OutputRect {
    /// Left edge.
    pub x: i64,
    /// Top edge.
    pub y: i64,
    /// Width, at least 1.
    pub w: u32,
    /// Height, at least 1.
    pub h: u32,
}

impl OutputRect {
    /// Whether output pixel (`x`, `y`) lies inside.
    pub fn contains(&self, x: i64, y: i64) -> bool {
        x >= self.x
            && y >= self.y
            && x - self.x < i64::from(self.w)
            && y - self.y < i64::from(self.h)
    }
}

/// An angle in thousandths of a degree, normalized to `0..360_000`, clockwise in the top-down
/// output (so 90 degrees turns the top edge to the right).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Angle {
    /// Thousandths of a degree, `0..360_000`.
    pub millidegrees: u32,
}

impl Angle {
    /// The angle for any number of thousandths of a degree, wrapped into one turn.
    pub fn from_millidegrees(md: i64) -> Self {
        Angle {
            millidegrees: md.rem_euclid(360_000) as u32,
        }
    }

    /// The angle in degrees.
    pub fn degrees(self) -> f64 {
        f64::from(self.millidegrees) / 1000.0
    }

    /// The angle in radians.
    pub fn radians(self) -> f64 {
        self.degrees().to_radians()
    }

    /// Whether the angle is zero (the layer is upright).
    pub fn is_zero(self) -> bool {
        self.millidegrees == 0
    }
}

/// One layer at one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerState {
    /// The layer's [`slot`](super::Layer::slot): its identity, the same in every frame.
    pub index: usize,
    /// Where the layer's rectangle lies, after translation, before it is turned or scaled: the
    /// size its content is laid out at.
    pub rect: OutputRect,
    /// The rectangle its turned and scaled quad covers, centred on `rect`'s centre (at most
    /// [`MAX_LAYER_SIDE`](super::MAX_LAYER_SIDE) each way): where its texture goes, and the
    /// texture's size. `rect` itself when it is neither turned nor scaled.
    pub bounds: OutputRect,
    /// Thousandths of the content's size it is drawn at (1000: as laid out).
    pub scale: u32,
    /// Opacity after fading, 0 to 255.
    pub opacity: u8,
    /// Stacking order: lower first, ties by `index`.
    pub z: i32,
    /// Rotation about the rectangle's centre.
    pub rotation: Angle,
    /// What the layer shows.
    pub content: Content,
    /// How far the content has scrolled inside the rectangle, in layer pixels, each in
    /// `0..w` and `0..h`: texel (x, y) of the layer shows the pattern at `(x + sx, y + sy)`,
    /// wrapping around the rectangle.
    pub scroll: (u32, u32),
}

/// The rectangle that `rect`, turned by `rotation` and scaled by `scale` thousandths about its
/// centre, covers: whole pixels, centred as nearly as whole pixels allow (the offset of its left
/// edge from `rect`'s is `(w - bw) / 2` rounded down), at most
/// [`MAX_LAYER_SIDE`](super::MAX_LAYER_SIDE) each way (a larger quad is clipped to it).
pub fn bounds(rect: OutputRect, rotation: Angle, scale: u32) -> OutputRect {
    if rotation.is_zero() && scale == 1000 {
        return rect;
    }
    let s = f64::from(scale) / 1000.0;
    let (sin, cos) = rotation.radians().sin_cos();
    let (w, h) = (f64::from(rect.w) * s, f64::from(rect.h) * s);
    let max = f64::from(super::MAX_LAYER_SIDE);
    // A hair under a whole pixel is that pixel: sin and cos of right angles are not exact.
    let side = |v: f64| (v - 1e-9).ceil().clamp(1.0, max) as u32;
    let bw = side(w * cos.abs() + h * sin.abs());
    let bh = side(w * sin.abs() + h * cos.abs());
    OutputRect {
        x: rect.x + (i64::from(rect.w) - i64::from(bw)).div_euclid(2),
        y: rect.y + (i64::from(rect.h) - i64::from(bh)).div_euclid(2),
        w: bw,
        h: bh,
    }
}

/// The triangle wave of the module docs as a numerator over `period`: 0 at phase 0, `period`
/// at the half period.
fn there_and_back(frame: u64, period: u32) -> i64 {
    let p = u64::from(period);
    let f = frame % p;
    (if 2 * f <= p { 2 * f } else { 2 * (p - f) }) as i64
}

/// The sawtooth of the module docs as a numerator over `period`: `frame % period`.
fn steady(frame: u64, period: u32) -> i64 {
    (frame % u64::from(period)) as i64
}

fn side(length: Length, extent: u32) -> u32 {
    length.resolve(extent).clamp(1, i64::from(u32::MAX)) as u32
}

impl Layer {
    /// This layer, at index `index` of its scene, at frame `frame` of an output of
    /// `out_w` x `out_h` pixels.
    pub fn state_at(&self, index: usize, frame: u64, out_w: u32, out_h: u32) -> LayerState {
        let anim = &self.animation;
        let mut x = self.rect.x.resolve(out_w);
        let mut y = self.rect.y.resolve(out_h);
        let w = side(self.rect.w, out_w);
        let h = side(self.rect.h, out_h);
        if let Some(t) = anim.translate {
            let num = there_and_back(frame, t.period);
            let d = i64::from(t.period);
            x += div_round(t.dx.resolve(out_w) * num, d);
            y += div_round(t.dy.resolve(out_h) * num, d);
        }
        let mut opacity = self.opacity;
        if let Some(fade) = anim.fade {
            let num = there_and_back(frame, fade.period);
            let delta = i64::from(fade.to) - i64::from(self.opacity);
            let o = i64::from(self.opacity) + div_round(delta * num, i64::from(fade.period));
            opacity = o.clamp(0, 255) as u8;
        }
        let turned = match anim.rotate {
            None => 0,
            Some(r) => div_round(
                r.millidegrees * steady(frame, r.period),
                i64::from(r.period),
            ),
        };
        let rotation = Angle::from_millidegrees(turned + self.transform.millidegrees);
        let scroll = match anim.scroll {
            None => (0, 0),
            Some(s) => {
                let num = steady(frame, s.period);
                let d = i64::from(s.period);
                (
                    div_round(i64::from(s.dx) * num, d).rem_euclid(i64::from(w)) as u32,
                    div_round(i64::from(s.dy) * num, d).rem_euclid(i64::from(h)) as u32,
                )
            }
        };
        let rect = OutputRect { x, y, w, h };
        LayerState {
            index,
            rect,
            bounds: bounds(rect, rotation, self.transform.scale),
            scale: self.transform.scale,
            opacity,
            z: self.z,
            rotation,
            content: self.content.clone(),
            scroll,
        }
    }
}

impl Layer {
    /// The largest texture this layer can need, at any frame, in an output of at most
    /// `max_w` x `max_h`: its rectangle scaled, or, when it turns, a square as wide as the
    /// scaled rectangle's diagonal (the bounds of any turn), at most
    /// [`MAX_LAYER_SIDE`](super::MAX_LAYER_SIDE) each way.
    pub fn largest_texture(&self, max_w: u32, max_h: u32) -> (u32, u32) {
        let (w, h) = (side(self.rect.w, max_w), side(self.rect.h, max_h));
        let s = f64::from(self.transform.scale) / 1000.0;
        let max = f64::from(super::MAX_LAYER_SIDE);
        let fit = |v: f64| v.ceil().clamp(1.0, max) as u32;
        let turns =
            self.transform.millidegrees.rem_euclid(360_000) != 0 || self.animation.rotate.is_some();
        if turns {
            let d = fit(s * f64::from(w).hypot(f64::from(h)));
            (d, d)
        } else {
            (fit(s * f64::from(w)), fit(s * f64::from(h)))
        }
    }
}

impl Scene {
    /// Every layer at frame `frame` of an output of `out_w` x `out_h` pixels, in file order
    /// (the order of [`Scene::layers`], not of z).
    pub fn state_at(&self, frame: u64, out_w: u32, out_h: u32) -> Vec<LayerState> {
        self.layers
            .iter()
            .map(|l| l.state_at(l.slot as usize, frame, out_w, out_h))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::model::{Animation, Fade, RectSpec, Rotate, Scroll, Translate};

    fn layer(animation: Animation) -> Layer {
        Layer {
            name: "l".into(),
            slot: 0,
            content: Content::Checker {
                cell: 4,
                colors: [[0, 0, 0, 255], [255, 255, 255, 255]],
            },
            rect: RectSpec {
                x: Length::Px(10),
                y: Length::Percent(5_000),
                w: Length::Percent(2_500),
                h: Length::Px(20),
            },
            opacity: 200,
            z: 3,
            animation,
            transform: super::super::Transform::default(),
        }
    }

    #[test]
    fn a_still_layer_resolves_its_rect() {
        let s = layer(Animation::default()).state_at(4, 99, 400, 300);
        assert_eq!(
            s.rect,
            OutputRect {
                x: 10,
                y: 150,
                w: 100,
                h: 20
            }
        );
        assert_eq!((s.index, s.opacity, s.z), (4, 200, 3));
        assert!(s.rotation.is_zero());
        assert_eq!(s.scroll, (0, 0));
    }

    #[test]
    fn translate_goes_out_and_back() {
        let l = layer(Animation {
            translate: Some(Translate {
                dx: Length::Px(60),
                dy: Length::Percent(-1_000),
                period: 60,
            }),
            ..Animation::default()
        });
        let at = |f| {
            let r = l.state_at(0, f, 400, 300).rect;
            (r.x, r.y)
        };
        assert_eq!(at(0), (10, 150));
        assert_eq!(at(15), (40, 135));
        assert_eq!(at(30), (70, 120));
        assert_eq!(at(45), (40, 135));
        assert_eq!(at(60), (10, 150));
        assert_eq!(at(61), at(1));
        // Frame 1: 60 * 2/60 = 2 px right, -30 * 2/60 = -1 px up.
        assert_eq!(at(1), (12, 149));
    }

    #[test]
    fn fade_reaches_its_target_at_half_period() {
        let l = layer(Animation {
            fade: Some(Fade { to: 0, period: 4 }),
            ..Animation::default()
        });
        let ops: Vec<u8> = (0..5).map(|f| l.state_at(0, f, 8, 8).opacity).collect();
        assert_eq!(ops, [200, 100, 0, 100, 200]);
    }

    #[test]
    fn rotate_turns_steadily_and_wraps() {
        let l = layer(Animation {
            rotate: Some(Rotate {
                millidegrees: -360_000,
                period: 8,
            }),
            ..Animation::default()
        });
        let md = |f| l.state_at(0, f, 8, 8).rotation.millidegrees;
        assert_eq!(md(0), 0);
        assert_eq!(md(2), 270_000);
        assert_eq!(md(4), 180_000);
        assert_eq!(md(8), 0);
        assert_eq!(Angle::from_millidegrees(90_000).degrees(), 90.0);
    }

    #[test]
    fn scroll_wraps_inside_the_layer() {
        let l = layer(Animation {
            scroll: Some(Scroll {
                dx: 250,
                dy: -5,
                period: 5,
            }),
            ..Animation::default()
        });
        // w = 100, h = 20: frame 1 is (50, -1) -> (50, 19); frame 2 is (100, -2) -> (0, 18).
        assert_eq!(l.state_at(0, 1, 400, 300).scroll, (50, 19));
        assert_eq!(l.state_at(0, 2, 400, 300).scroll, (0, 18));
        assert_eq!(l.state_at(0, 5, 400, 300).scroll, (0, 0));
    }

    #[test]
    fn states_are_deterministic() {
        let scene = crate::file::default_scene();
        for f in [0, 1, 59, 60, 1_000_000] {
            assert_eq!(scene.state_at(f, 640, 480), scene.state_at(f, 640, 480));
        }
    }
}
