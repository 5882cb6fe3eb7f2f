//! The buffer pool: a fixed number of buffers per layer, reused only after the renderer releases
//! them.
//!
//! Slots are numbered `layer * per_layer + i`. A slot is *free* (may be rendered into), or *in
//! flight* (described to the renderer, and possibly on screen there) until a `Release` for its
//! exact id arrives. Buffers are created lazily on first use and keep their generation; the
//! submission of their last frame (the fence fd in the export window) is kept until the release,
//! so the renderer can always fetch the fence of a frame it was sent. A buffer released before
//! its work completed (a renderer that gave up waiting on a fence) stays in flight until the work
//! completes: dropping the submission would close its fence fd, or for a pipe fence signal it,
//! and the launcher, checking a fence-timeout claim, must find the fence as it really is.

use ipc_protocol::BufferId;

use crate::export::{Buffer, Submission};

/// State of one slot.
#[derive(Debug)]
pub struct Slot {
    /// The buffer, once allocated.
    pub buffer: Option<Buffer>,
    /// The submission in flight, if any.
    pub in_flight: Option<Submission>,
    /// Whether the in-flight submission's work has completed.
    pub completed: bool,
    /// Whether the renderer released the in-flight submission before it completed.
    pub released_early: bool,
    /// Generation of the slot's buffer.
    pub generation: u32,
    /// The submission of its layer whose content the buffer holds ([`crate::damage`]'s buffer
    /// age); `None` for a buffer not drawn yet or whose content is not known.
    pub held: Option<u64>,
    /// The submission being drawn into the buffer, held once its work completes.
    pub drawing: Option<u64>,
}

/// The pool.
#[derive(Debug)]
pub struct Pool {
    per_layer: u32,
    slots: Vec<Slot>,
}

/// A release that did not match a buffer in flight.
#[derive(Debug, thiserror::Error)]
#[error("release of buffer {slot}.{generation}, which is not in flight")]
pub struct BadRelease {
    /// Slot named.
    pub slot: u32,
    /// Generation named.
    pub generation: u32,
}

impl Pool {
    /// A pool of `per_layer` buffers for each of `layers` layers.
    pub fn new(layers: u32, per_layer: u32) -> Self {
        let slots = (0..layers * per_layer)
            .map(|_| Slot {
                buffer: None,
                in_flight: None,
                completed: false,
                released_early: false,
                generation: 1,
                held: None,
                drawing: None,
            })
            .collect();
        Self { per_layer, slots }
    }

    /// Slot `slot`, if it exists.
    pub fn slot(&self, slot: u32) -> Option<&Slot> {
        self.slots.get(slot as usize)
    }

    /// A free slot of `layer`, if any.
    pub fn free_slot(&self, layer: u32) -> Option<u32> {
        let first = layer * self.per_layer;
        (first..first + self.per_layer).find(|&s| {
            self.slots
                .get(s as usize)
                .is_some_and(|sl| sl.in_flight.is_none())
        })
    }

    /// The id of slot `slot`'s buffer.
    pub fn id(&self, slot: u32) -> BufferId {
        BufferId {
            slot,
            generation: self.slots.get(slot as usize).map_or(0, |s| s.generation),
        }
    }

    /// Drops slot `slot`'s buffer (not in flight) and bumps its generation: the next buffer
    /// made for it has a new id.
    pub fn retire(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            if s.in_flight.is_none() {
                s.buffer = None;
                s.held = None;
                s.drawing = None;
                s.generation = s.generation.wrapping_add(1).max(1);
            }
        }
    }

    /// Slot `slot`.
    pub fn slot_mut(&mut self, slot: u32) -> Option<&mut Slot> {
        self.slots.get_mut(slot as usize)
    }

    /// Puts `sub` in flight in `slot`, its work not yet completed.
    pub fn submit(&mut self, slot: u32, sub: Submission) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.in_flight = Some(sub);
            s.completed = false;
            s.released_early = false;
        }
    }

    /// The work of `slot`'s submission completed; a buffer already released is free now.
    pub fn completed(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.completed = true;
            if let Some(seq) = s.drawing.take() {
                s.held = Some(seq);
            }
            if s.released_early {
                s.in_flight = None;
                s.released_early = false;
            }
        }
    }

    /// Marks `id` free again, dropping its submission (closing its fence fd), or, when its work
    /// has not completed, once it has.
    pub fn release(&mut self, id: BufferId) -> Result<(), BadRelease> {
        match self.slots.get_mut(id.slot as usize) {
            Some(s)
                if s.generation == id.generation && s.in_flight.is_some() && !s.released_early =>
            {
                if s.completed {
                    s.in_flight = None;
                } else {
                    s.released_early = true;
                }
                Ok(())
            }
            _ => Err(BadRelease {
                slot: id.slot,
                generation: id.generation,
            }),
        }
    }

    /// Slots in the pool.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the pool has no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Buffers in flight.
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.in_flight.is_some()).count()
    }

    /// Forgets what every buffer holds: each is drawn whole when next used.
    pub fn forget_contents(&mut self) {
        for s in &mut self.slots {
            s.held = None;
            s.drawing = None;
        }
    }

    /// Frees every slot (the renderer that held them is gone); slots whose work has not
    /// completed become free when it does.
    pub fn release_all(&mut self) {
        for s in &mut self.slots {
            if s.completed {
                s.in_flight = None;
            } else if s.in_flight.is_some() {
                s.released_early = true;
            }
        }
    }
}
