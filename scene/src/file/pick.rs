//! Which layer of a scene file is under a point of the output: the one a press picks up and the
//! pointer highlights.
//!
//! The answer is for the frame on screen, with the layers the user dragged moved
//! ([`Moves`]): the topmost layer by `(z, index)`, as the compositor stacks them,
//! whose drawn pixels hold the point. An upright layer draws its whole rectangle; a turned or
//! scaled one the quad its rectangle makes turned and scaled about its centre, inside its
//! bounds, which may reach outside the rectangle. A layer of opacity 0 shows nothing and is not
//! picked; layer 0, which [`Moves::add`](crate::Moves::add) never moves, is not either.

use super::eval::LayerState;
use super::Scene;
use crate::Moves;

/// Whether output pixel (`x`, `y`) shows layer `state`, moved by `(dx, dy)`.
fn covers(state: &LayerState, (dx, dy): (i32, i32), (x, y): (i64, i64)) -> bool {
    let (mut r, mut b) = (state.rect, state.bounds);
    for o in [&mut r, &mut b] {
        o.x += i64::from(dx);
        o.y += i64::from(dy);
    }
    if state.opacity == 0 || !b.contains(x, y) {
        return false;
    }
    if state.rotation.is_zero() && state.scale == 1000 {
        return true;
    }
    // The quad turns clockwise (top-down output) and scales about the rectangle's centre: the
    // pixel shows the content at its centre turned back and scaled back, which must lie inside.
    let (cx, cy) = (
        r.x as f64 + f64::from(r.w) / 2.0,
        r.y as f64 + f64::from(r.h) / 2.0,
    );
    let s = f64::from(state.scale) / 1000.0;
    let (px, py) = ((x as f64 + 0.5 - cx) / s, (y as f64 + 0.5 - cy) / s);
    let (sin, cos) = state.rotation.radians().sin_cos();
    let (ux, uy) = (px * cos + py * sin, -px * sin + py * cos);
    ux.abs() <= f64::from(r.w) / 2.0 && uy.abs() <= f64::from(r.h) / 2.0
}

impl Scene {
    /// The topmost layer (but layer 0) that output pixel (`x`, `y`) shows at frame `frame` of
    /// an `out_w` x `out_h` output, with `moves` applied; see the module docs.
    pub fn layer_at(
        &self,
        frame: u64,
        out_w: u32,
        out_h: u32,
        moves: &Moves,
        (x, y): (i32, i32),
    ) -> Option<u32> {
        self.state_at(frame, out_w, out_h)
            .into_iter()
            .skip(1)
            .filter(|s| {
                let m = moves.offsets.get(s.index).copied().unwrap_or((0, 0));
                covers(s, m, (i64::from(x), i64::from(y)))
            })
            .max_by_key(|s| (s.z, s.index))
            .and_then(|s| u32::try_from(s.index).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Three layers: a full backdrop layer, a panel, and a layer drawn under the panel (lower
    /// z) although it comes later in the file.
    const SCENE: &str = r##"
[[layers]]
name = "back"
kind = "solid"
color = "#202020"
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "panel"
kind = "solid"
color = "#ff0000"
rect = { x = 10, y = 10, w = 40, h = 30 }
z = 5

[[layers]]
name = "under"
kind = "solid"
color = "#00ff00"
rect = { x = 30, y = 20, w = 40, h = 30 }
z = 2

[[layers]]
name = "hidden"
kind = "solid"
color = "#0000ff"
rect = { x = 80, y = 0, w = 10, h = 10 }
opacity = 0
"##;

    fn scene() -> Scene {
        Scene::parse(SCENE, Path::new("pick.toml")).expect("the test scene parses")
    }

    #[test]
    fn the_topmost_by_z_is_picked_not_the_last_in_the_file() {
        let s = scene();
        let none = Moves::default();
        // Where the panel and the later layer overlap, the panel's higher z wins.
        assert_eq!(s.layer_at(0, 100, 60, &none, (35, 25)), Some(1));
        // Only the later layer.
        assert_eq!(s.layer_at(0, 100, 60, &none, (60, 45)), Some(2));
        // Only the backdrop layer, which is never picked; an invisible layer is not either.
        assert_eq!(s.layer_at(0, 100, 60, &none, (2, 2)), None);
        assert_eq!(s.layer_at(0, 100, 60, &none, (85, 5)), None);
        // Edges: the rectangle's last column is in, the next one out.
        assert_eq!(s.layer_at(0, 100, 60, &none, (49, 10)), Some(1));
        assert_eq!(s.layer_at(0, 100, 60, &none, (69, 49)), Some(2));
        assert_eq!(s.layer_at(0, 100, 60, &none, (70, 49)), None);
    }

    #[test]
    fn moves_move_what_is_picked() {
        let s = scene();
        let mut m = Moves::default();
        m.add(1, 50, 0);
        // The panel left (35, 25): the layer under it shows there now.
        assert_eq!(s.layer_at(0, 100, 60, &m, (35, 25)), Some(2));
        assert_eq!(s.layer_at(0, 100, 60, &m, (85, 15)), Some(1));
    }

    #[test]
    fn a_rotated_layer_is_picked_only_where_its_content_is() {
        let text = r##"
[[layers]]
name = "back"
kind = "solid"
color = "#000000"
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "turned"
kind = "solid"
color = "#ffffff"
rect = { x = 0, y = 0, w = 40, h = 40 }
animation.rotate = { degrees = 360, period = 1.0 }
"##;
        let s = Scene::parse(text, Path::new("turn.toml")).expect("parses");
        let none = Moves::default();
        // Frame 0 is upright: the corner is drawn.
        assert_eq!(s.layer_at(0, 64, 64, &none, (0, 0)), Some(1));
        // Frame 7 of 60 is turned 42 degrees: the corners are empty, the centre is not; at a
        // quarter turn (frame 15, 90 degrees) a square covers its corners again.
        assert_eq!(s.state_at(7, 64, 64)[1].rotation.millidegrees, 42_000);
        assert_eq!(s.layer_at(7, 64, 64, &none, (1, 1)), None);
        assert_eq!(s.layer_at(7, 64, 64, &none, (20, 20)), Some(1));
        assert_eq!(s.layer_at(15, 64, 64, &none, (1, 1)), Some(1));
    }

    #[test]
    fn a_turned_or_scaled_quad_is_picked_where_it_reaches_past_its_rectangle() {
        let text = r##"
[[layers]]
name = "back"
kind = "solid"
color = "#000000"
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "card"
kind = "solid"
color = "#ffffff"
rect = { x = 20, y = 20, w = 20, h = 20 }
transform = { rotate = 45 }

[[layers]]
name = "badge"
kind = "solid"
color = "#ffffff"
rect = { x = 50, y = 50, w = 4, h = 4 }
transform = { scale = 3 }
"##;
        let s = Scene::parse(text, Path::new("quad.toml")).expect("parses");
        let none = Moves::default();
        // The card's top corner reaches 14 pixels above its centre (30, 30), past its rectangle.
        assert_eq!(s.layer_at(0, 64, 64, &none, (29, 17)), Some(1));
        assert_eq!(
            s.layer_at(0, 64, 64, &none, (20, 20)),
            None,
            "the rectangle's corner"
        );
        // The badge, three times its size about (52, 52), covers 46..58.
        assert_eq!(s.layer_at(0, 64, 64, &none, (46, 46)), Some(2));
        assert_eq!(s.layer_at(0, 64, 64, &none, (45, 45)), None);
        let b = s.state_at(0, 64, 64)[2].bounds;
        assert_eq!((b.x, b.y, b.w, b.h), (46, 46, 12, 12));
    }
}
