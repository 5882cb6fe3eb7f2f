//! What the user did with the pointer: the layer hovered (outlined in the frames), the layer
//! being dragged, and the moves made, each with whether the GPU process has yet to hear of it.
//!
//! A press picks up the layer under the pointer; moving with the button down moves it by as
//! much as the pointer moved; letting go puts it down. The layer carried is the layer hovered.
//! The GPU process hears of the hover once per change, and of the moves once per refresh tick;
//! a new GPU process starts with nothing outlined, so the hover is sent to it again. A new scene
//! has other layers: the moves, the hover and the drag are forgotten.
//!
//! Which layer is under the pointer is the scene's answer ([`super::Drawn::layer_at`]); this
//! part takes it as given.

use triptych_scene::Moves;

/// The pointer's effect on the layers.
#[derive(Debug, Default)]
pub struct Input {
    /// Layers the user moved by dragging them.
    moves: Moves,
    /// Moves not yet sent to the GPU process (sent once per tick).
    moves_dirty: bool,
    /// The layer under the pointer, drawn outlined.
    hover: Option<u32>,
    /// Whether the GPU process has yet to hear of `hover`.
    hover_dirty: bool,
    /// A layer being dragged: the layer and where the pointer was.
    drag: Option<(u32, i32, i32)>,
}

impl Input {
    /// The moves made.
    pub fn moves(&self) -> &Moves {
        &self.moves
    }

    /// The pointer is at `(x, y)`, the button `pressed`, over `under` (the layer there before
    /// this event's move) in `frame`: picks up, moves or puts down a layer. Returns the layer
    /// carried, if one is.
    pub fn pointer(
        &mut self,
        (x, y): (i32, i32),
        pressed: bool,
        under: Option<u32>,
        frame: u64,
    ) -> Option<u32> {
        match (self.drag, pressed) {
            (None, true) => {
                if let Some(l) = under {
                    tracing::info!(layer = l, x, y, frame, "dragging a layer");
                    self.drag = Some((l, x, y));
                }
            }
            (Some((l, lx, ly)), true) => {
                if (x, y) != (lx, ly) {
                    self.moves
                        .add(l, x.saturating_sub(lx), y.saturating_sub(ly));
                    self.drag = Some((l, x, y));
                    self.moves_dirty = true;
                }
            }
            (Some((l, _, _)), false) => {
                let (dx, dy) = self
                    .moves
                    .offsets
                    .get(l as usize)
                    .copied()
                    .unwrap_or((0, 0));
                tracing::info!(layer = l, dx, dy, "put a layer down");
                self.drag = None;
            }
            (None, false) => {}
        }
        self.drag.map(|(l, _, _)| l)
    }

    /// Whether a layer is being dragged.
    pub fn dragging(&self) -> bool {
        self.drag.is_some()
    }

    /// The moves to send the GPU process, once after every change.
    pub fn take_moves(&mut self) -> Option<[(i32, i32); triptych_scene::MAX_LAYERS as usize]> {
        std::mem::take(&mut self.moves_dirty).then_some(self.moves.offsets)
    }

    /// Whether moves wait to be sent.
    pub fn moves_dirty(&self) -> bool {
        self.moves_dirty
    }

    /// The pointer is over `layer` now (or over none): whether that changed the hover.
    pub fn hover(&mut self, layer: Option<u32>) -> bool {
        if layer == self.hover {
            return false;
        }
        match layer {
            Some(l) => tracing::info!(layer = l, "hovering a layer"),
            None => tracing::info!("hovering no layer"),
        }
        self.hover = layer;
        self.hover_dirty = true;
        true
    }

    /// The hover to send the GPU process, if it has yet to hear of it.
    pub fn hover_to_send(&self) -> Option<Option<u32>> {
        self.hover_dirty.then_some(self.hover)
    }

    /// The GPU process heard of the hover (or is gone, and its replacement will).
    pub fn hover_sent(&mut self) {
        self.hover_dirty = false;
    }

    /// Whether the hover waits to be sent.
    pub fn hover_dirty(&self) -> bool {
        self.hover_dirty
    }

    /// A new GPU process outlines nothing: a hover is sent to it again.
    pub fn new_gpu(&mut self) {
        self.hover_dirty |= self.hover.is_some();
    }

    /// A new scene, of other layers: no move, no hover, no drag.
    pub fn new_scene(&mut self) {
        *self = Input::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_press_over_no_layer_picks_up_nothing() {
        let mut i = Input::default();
        assert_eq!(i.pointer((5, 5), true, None, 0), None);
        // Moving with the button down over no layer moves nothing either.
        assert_eq!(i.pointer((50, 50), true, None, 0), None);
        assert_eq!(i.pointer((50, 50), false, None, 0), None);
        assert_eq!(i.take_moves(), None);
        assert_eq!(i.moves().offsets, Moves::default().offsets);
    }

    #[test]
    fn dragging_moves_the_layer_picked_up_by_the_pointers_travel() {
        let mut i = Input::default();
        assert_eq!(i.pointer((10, 10), true, Some(2), 7), Some(2));
        assert!(!i.moves_dirty(), "a press moves nothing");
        // Over another layer now: the one carried is still layer 2.
        assert_eq!(i.pointer((15, 12), true, Some(1), 7), Some(2));
        assert_eq!(i.pointer((12, 30), true, None, 7), Some(2));
        let sent = i.take_moves().expect("moves to send");
        assert_eq!(sent[2], (2, 20));
        assert_eq!(sent[1], (0, 0), "only the layer carried moves");
        assert_eq!(i.take_moves(), None, "sent once");
        // Staying put is no move.
        i.pointer((12, 30), true, None, 7);
        assert!(!i.moves_dirty());
        assert_eq!(i.pointer((12, 30), false, None, 7), None, "put down");
        // A second drag adds to the first.
        i.pointer((0, 0), true, Some(2), 8);
        i.pointer((-3, 1), true, Some(2), 8);
        assert_eq!(i.moves().offsets[2], (-1, 21));
    }

    #[test]
    fn hovering_is_sent_once_per_change_and_again_to_a_new_gpu_process() {
        let mut i = Input::default();
        assert!(!i.hover(None), "over no layer, as before");
        assert_eq!(i.hover_to_send(), None);
        assert!(i.hover(Some(3)));
        assert_eq!(i.hover_to_send(), Some(Some(3)));
        i.hover_sent();
        assert!(!i.hover(Some(3)), "the same layer");
        assert_eq!(i.hover_to_send(), None);
        // A new GPU process outlines nothing yet.
        i.new_gpu();
        assert_eq!(i.hover_to_send(), Some(Some(3)));
        i.hover_sent();
        // Leaving every layer is a change to send; a new GPU process then needs nothing.
        assert!(i.hover(None));
        assert_eq!(i.hover_to_send(), Some(None));
        i.hover_sent();
        i.new_gpu();
        assert!(!i.hover_dirty());
    }

    #[test]
    fn a_new_scene_forgets_moves_hover_and_drag() {
        let mut i = Input::default();
        i.pointer((0, 0), true, Some(1), 0);
        i.pointer((4, 4), true, Some(1), 0);
        i.hover(Some(1));
        i.new_scene();
        assert_eq!(i.moves().offsets, Moves::default().offsets);
        assert!(!i.moves_dirty() && !i.hover_dirty());
        assert_eq!(i.hover_to_send(), None);
        // The drag was let go: moving with the button still down picks nothing up.
        assert_eq!(i.pointer((9, 9), true, None, 0), None);
        assert_eq!(i.moves().offsets[1], (0, 0));
    }
}
