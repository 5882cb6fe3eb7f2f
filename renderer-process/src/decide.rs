//! The renderer's decisions about a frame, as pure functions of what is on screen: which layers
//! take the new buffer, which buffers go back to the GPU process, and whether the frame can be
//! presented. The pipeline ([`crate::pipeline`]) carries them out; here they are tested without
//! processes.
//!
//! The rules:
//! - a layer whose fence signalled shows its new buffer; the buffer it showed before is released
//!   (unless it is the same buffer);
//! - a layer whose fence timed out keeps its previous buffer; the new one is released unused, and
//!   the caller reports the timeout;
//! - a frame names every layer it has: a layer on screen that the frame does not name is gone
//!   (the scene removed it), and its buffer is released;
//! - a frame is presented only when every layer shows a buffer of the current epoch whose fence
//!   was seen signalled, so nothing of a dead GPU process, and nothing half-made, is shown.

use std::collections::BTreeMap;

use ipc_protocol::messages::LayerPlacement;
use ipc_protocol::BufferId;

/// What is on screen for one layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shown {
    /// The buffer.
    pub id: BufferId,
    /// Its GPU epoch.
    pub epoch: u64,
    /// Where it goes.
    pub placement: LayerPlacement,
    /// Whether this buffer's fence was seen signalled; composite refuses it otherwise.
    pub signalled: bool,
    /// The frame its content was rendered for.
    pub frame: u64,
}

/// What settling a frame decided.
#[derive(Debug, PartialEq, Eq)]
pub struct Settled<T> {
    /// Layers whose fence timed out, with their new (unused) buffer and the caller's payload.
    pub timed_out: Vec<(u32, Shown, T)>,
    /// Buffers no longer on screen, to release.
    pub release: Vec<BufferId>,
    /// Whether the frame is complete and may be presented.
    pub present: bool,
}

/// Applies a frame's layers (`layer`, new buffer, payload, fence signalled in time) to `shown`,
/// for a frame from the GPU process of `epoch` that has exactly these layers.
pub fn settle<T>(
    shown: &mut BTreeMap<u32, Shown>,
    frame_layers: impl IntoIterator<Item = (u32, Shown, T, bool)>,
    epoch: u64,
) -> Settled<T> {
    let mut timed_out = Vec::new();
    let mut release = Vec::new();
    let mut named = Vec::new();
    for (layer, mut s, payload, ok) in frame_layers {
        named.push(layer);
        if !ok {
            release.push(s.id);
            timed_out.push((layer, s, payload));
            continue;
        }
        s.signalled = true;
        if let Some(old) = shown.insert(layer, s) {
            if old.id != s.id {
                release.push(old.id);
            }
        }
    }
    // A layer the frame does not have is gone from the scene.
    shown.retain(|l, s| {
        let kept = named.contains(l);
        if !kept {
            release.push(s.id);
        }
        kept
    });
    let present = !named.is_empty()
        && named.iter().all(|l| {
            shown
                .get(l)
                .is_some_and(|s| s.epoch == epoch && s.signalled)
        });
    Settled {
        timed_out,
        release,
        present,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(slot: u32, generation: u32, epoch: u64) -> Shown {
        Shown {
            id: BufferId { slot, generation },
            epoch,
            placement: LayerPlacement {
                x: 0,
                y: 0,
                z: 0,
                opacity: 255,
            },
            signalled: false,
            frame: 0,
        }
    }

    #[test]
    fn a_complete_frame_replaces_and_releases_what_it_replaced() {
        let mut shown = BTreeMap::new();
        let s = settle(
            &mut shown,
            [(0, buf(0, 1, 1), (), true), (1, buf(3, 1, 1), (), true)],
            1,
        );
        assert_eq!(
            (s.present, s.release.len(), s.timed_out.len()),
            (true, 0, 0)
        );
        let s = settle(
            &mut shown,
            [(0, buf(1, 1, 1), (), true), (1, buf(3, 1, 1), (), true)],
            1,
        );
        assert!(s.present);
        // Layer 0 moved from buffer 0 to 1; layer 1 kept buffer 3, which is not released.
        assert_eq!(
            s.release,
            vec![BufferId {
                slot: 0,
                generation: 1
            }]
        );
    }

    #[test]
    fn a_timed_out_fence_keeps_the_previous_buffer_and_releases_the_new_one() {
        let mut shown = BTreeMap::new();
        settle(&mut shown, [(0, buf(0, 1, 1), 'a', true)], 1);
        let s = settle(&mut shown, [(0, buf(1, 1, 1), 'b', false)], 1);
        assert_eq!(s.timed_out.len(), 1);
        assert_eq!(s.timed_out[0].2, 'b');
        assert_eq!(
            s.release,
            vec![BufferId {
                slot: 1,
                generation: 1
            }]
        );
        assert_eq!(
            shown[&0].id,
            BufferId {
                slot: 0,
                generation: 1
            }
        );
        // The old buffer is still complete on screen: the frame may be presented again.
        assert!(s.present);
    }

    #[test]
    fn nothing_is_presented_until_every_layer_has_a_signalled_buffer_of_this_epoch() {
        let mut shown = BTreeMap::new();
        // A buffer of an old epoch left on screen does not count.
        shown.insert(
            1,
            Shown {
                signalled: true,
                ..buf(5, 1, 1)
            },
        );
        let s = settle(
            &mut shown,
            [(0, buf(1, 1, 2), (), true), (1, buf(6, 1, 2), (), false)],
            2,
        );
        assert!(!s.present);
        // The first fence of layer 1 timing out: still nothing to show.
        shown.remove(&1);
        let both = |b| [(0, buf(1, 1, 2), (), true), (1, buf(b, 1, 2), (), false)];
        assert!(!settle(&mut shown, both(6), 2).present);
        let s = settle(
            &mut shown,
            [(0, buf(1, 1, 2), (), true), (1, buf(7, 1, 2), (), true)],
            2,
        );
        assert!(s.present);
        // No layers: nothing to present.
        assert!(!settle::<()>(&mut shown, [], 2).present);
    }

    #[test]
    fn a_layer_the_frame_does_not_have_is_gone_and_its_buffer_released() {
        let mut shown = BTreeMap::new();
        let two = [(0, buf(0, 1, 2), (), true), (1, buf(3, 1, 2), (), true)];
        assert!(settle(&mut shown, two, 2).present);
        let s = settle(&mut shown, [(0, buf(1, 1, 2), (), true)], 2);
        assert!(s.present);
        assert!(!shown.contains_key(&1));
        assert!(s.release.contains(&buf(3, 1, 2).id), "{:?}", s.release);
        assert!(s.release.contains(&buf(0, 1, 2).id));
    }
}
