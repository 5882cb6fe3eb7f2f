//! Who holds each slot of a renderer's output, as the launcher sees it: a pure state machine,
//! with no display server and no socket in it, so that every transition is tested on its own.
//!
//! The renderer composites into a slot it owns and hands it over (`Presented`); from then on the
//! launcher holds it, and hands it back (`SlotFree`) only once nothing reads it any more. When
//! that is depends on how frames reach the screen ([`Mode`]):
//!
//! - [`Mode::Immediate`] (headless, or an X server that copies each frame with `PutImage`): the
//!   slot shown is read at once; the slot it replaces goes back at once.
//! - [`Mode::Completes`] (X11 MIT-SHM): the server reads a slot after the launcher's request
//!   returns; the slot a put replaces goes back when the server's `ShmCompletion` for that put
//!   arrives.
//! - [`Mode::Releases`] (Wayland `wl_shm`): the compositor says when it no longer reads a slot
//!   (`wl_buffer.release`); the slot a put replaces goes back once it is released, whichever of
//!   the two comes first.
//!
//! The slot on screen is always held. A `Presented` naming a slot that does not exist, or one the
//! launcher holds (on screen, still read, or waiting to be released), is refused with a
//! [`SlotError`] before anything changes: the renderer handed that slot over already and was not
//! given it back. Completions and releases that name no slot the launcher holds (a display
//! server's redraw, a buffer of an older size) free nothing, so a slot is never handed back
//! twice.

use std::collections::VecDeque;

/// How frames reach the screen, which decides when a replaced slot goes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Read as the put returns (headless, copying X11).
    Immediate,
    /// Read until the put's completion (X11 MIT-SHM).
    Completes,
    /// Read until the compositor releases it (Wayland).
    Releases,
}

/// Why a slot named by the renderer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// Beyond the output's slots.
    #[error("slot {slot} does not exist (the output has {slots} slots)")]
    OutOfRange {
        /// The slot named.
        slot: u32,
        /// How many there are.
        slots: u32,
    },
    /// Handed over before and not given back.
    #[error("slot {slot} was handed over already and not given back ({why})")]
    Held {
        /// The slot named.
        slot: u32,
        /// What the launcher holds it for.
        why: &'static str,
    },
}

/// What to do with a composited frame of `generation`, `current` being the generation of the
/// size the window has now and `floor` the first frame asked for at that size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judged {
    /// Of the current size: shown.
    Show,
    /// Composited before the renderer heard of the resize, for a frame asked for before it: of
    /// the old size, so never shown; its slot goes straight back.
    Drop,
}

/// Judges a frame's generation; the error names what is wrong with it.
pub fn judge(generation: u32, current: u32, frame: u64, floor: u64) -> Result<Judged, String> {
    if generation > current {
        return Err(format!(
            "a frame of generation {generation}, not yet asked for"
        ));
    }
    if generation == current {
        return Ok(Judged::Show);
    }
    if frame >= floor {
        return Err(format!(
            "frame {frame} of generation {generation}, asked for after the resize to {current}"
        ));
    }
    Ok(Judged::Drop)
}

/// One put whose completion is awaited ([`Mode::Completes`]).
#[derive(Clone, Copy, Debug)]
struct Put {
    slot: u32,
    frame: u64,
    /// The slot it replaced, to hand back once it completes.
    back: Option<u32>,
}

/// The slots of one renderer output.
#[derive(Debug)]
pub struct Slots {
    mode: Mode,
    /// The launcher holds the slot.
    held: Vec<bool>,
    /// The display server may still read it ([`Mode::Releases`]).
    reading: Vec<bool>,
    /// Replaced on screen, to hand back once released ([`Mode::Releases`]).
    to_free: Vec<bool>,
    shown: Option<u32>,
    puts: VecDeque<Put>,
}

impl Slots {
    /// `slots` slots, every one the renderer's.
    pub fn new(slots: u32, mode: Mode) -> Slots {
        let n = slots as usize;
        Slots {
            mode,
            held: vec![false; n],
            reading: vec![false; n],
            to_free: vec![false; n],
            shown: None,
            puts: VecDeque::new(),
        }
    }

    /// The number of slots.
    pub fn len(&self) -> u32 {
        self.held.len() as u32
    }

    /// The slot on screen.
    #[cfg(test)]
    pub fn shown(&self) -> Option<u32> {
        self.shown
    }

    /// Whether the launcher holds `slot`.
    #[cfg(test)]
    pub fn holds(&self, slot: u32) -> bool {
        self.held.get(slot as usize).copied().unwrap_or(false)
    }

    /// Whether the renderer may hand `slot` over now: it exists and is the renderer's.
    pub fn check(&self, slot: u32) -> Result<(), SlotError> {
        let i = slot as usize;
        let Some(&held) = self.held.get(i) else {
            return Err(SlotError::OutOfRange {
                slot,
                slots: self.len(),
            });
        };
        if !held {
            return Ok(());
        }
        let why = if self.shown == Some(slot) {
            "it is on screen"
        } else if self.to_free[i] {
            "the compositor has not released it"
        } else {
            "the display server is still reading it"
        };
        Err(SlotError::Held { slot, why })
    }

    /// Puts `slot`, holding `frame`, on screen; returns the slots to hand back now. The slot it
    /// replaces goes back now or later, as [`Mode`] says.
    pub fn put(&mut self, slot: u32, frame: u64) -> Result<Vec<u32>, SlotError> {
        self.check(slot)?;
        let i = slot as usize;
        self.held[i] = true;
        let prev = self.shown.replace(slot);
        let mut free = Vec::new();
        match self.mode {
            Mode::Immediate => free.extend(prev.and_then(|p| self.free(p))),
            Mode::Completes => self.puts.push_back(Put {
                slot,
                frame,
                back: prev,
            }),
            Mode::Releases => {
                self.reading[i] = true;
                if let Some(p) = prev {
                    if self.reading[p as usize] {
                        self.to_free[p as usize] = true;
                    } else {
                        free.extend(self.free(p));
                    }
                }
            }
        }
        Ok(free)
    }

    /// The display server finished the oldest put of `slot` ([`Mode::Completes`]): returns that
    /// put's frame, and the slot to hand back now (the one the put replaced), if any. A
    /// completion of no put awaited (a redraw's) returns `None`.
    pub fn completed(&mut self, slot: u32) -> Option<(u64, Option<u32>)> {
        let at = self.puts.iter().position(|p| p.slot == slot)?;
        let put = self.puts.remove(at)?;
        Some((put.frame, put.back.and_then(|b| self.free(b))))
    }

    /// The compositor no longer reads `slot` ([`Mode::Releases`]): returns it if it goes back to
    /// the renderer now (it was replaced on screen already).
    pub fn released(&mut self, slot: u32) -> Option<u32> {
        let i = slot as usize;
        *self.reading.get_mut(i)? = false;
        if std::mem::take(&mut self.to_free[i]) {
            return self.free(slot);
        }
        None
    }

    /// Gives `slot` back, unless it is on screen or not held: returns it if it was given back.
    fn free(&mut self, slot: u32) -> Option<u32> {
        let i = slot as usize;
        if self.shown == Some(slot) || !self.held.get(i).copied().unwrap_or(false) {
            return None;
        }
        self.held[i] = false;
        self.to_free[i] = false;
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays the renderer: the slots it owns, taking the lowest free one for each frame, as
    /// `renderer-process/src/output.rs` does, and checking every slot it gets back was its
    /// launcher's.
    struct FakeRenderer {
        owned: Vec<bool>,
    }

    impl FakeRenderer {
        fn new(n: usize) -> Self {
            FakeRenderer {
                owned: vec![true; n],
            }
        }
        fn take(&mut self) -> u32 {
            let i = self.owned.iter().position(|o| *o).expect("a free slot");
            self.owned[i] = false;
            i as u32
        }
        fn back(&mut self, freed: impl IntoIterator<Item = u32>) {
            for s in freed {
                assert!(
                    !self.owned[s as usize],
                    "slot {s} handed back twice (the renderer owns it already)"
                );
                self.owned[s as usize] = true;
            }
        }
    }

    #[test]
    fn old_generations_are_dropped_only_for_frames_asked_for_before_the_resize() {
        assert_eq!(judge(2, 2, 50, 40), Ok(Judged::Show));
        assert_eq!(judge(1, 2, 39, 40), Ok(Judged::Drop));
        assert_eq!(judge(0, 2, 0, 40), Ok(Judged::Drop));
        let e = judge(1, 2, 40, 40).expect_err("asked for after the resize");
        assert!(e.contains("after the resize to 2"), "{e}");
        let e = judge(3, 2, 0, 40).expect_err("a generation never asked for");
        assert!(e.contains("generation 3, not yet asked for"), "{e}");
        assert!(judge(u32::MAX, 0, u64::MAX, 0).is_err());
    }

    #[test]
    fn headless_hands_the_replaced_slot_back_at_once_and_keeps_the_one_on_screen() {
        let mut s = Slots::new(3, Mode::Immediate);
        let mut r = FakeRenderer::new(3);
        for frame in 0..20 {
            let slot = r.take();
            let freed = s.put(slot, frame).expect("a slot of the renderer's");
            assert_eq!(freed.len(), usize::from(frame > 0), "frame {frame}");
            r.back(freed);
            assert_eq!(s.shown(), Some(slot));
            assert!(s.holds(slot));
            assert_eq!(
                s.held.iter().filter(|h| **h).count(),
                1,
                "only the slot on screen"
            );
        }
    }

    #[test]
    fn a_slot_on_screen_or_out_of_range_is_refused_and_changes_nothing() {
        let mut s = Slots::new(3, Mode::Immediate);
        assert_eq!(s.put(0, 0), Ok(vec![]));
        assert_eq!(
            s.put(0, 1),
            Err(SlotError::Held {
                slot: 0,
                why: "it is on screen"
            })
        );
        assert_eq!(
            s.put(3, 1),
            Err(SlotError::OutOfRange { slot: 3, slots: 3 })
        );
        assert_eq!(
            s.check(u32::MAX),
            Err(SlotError::OutOfRange {
                slot: u32::MAX,
                slots: 3
            })
        );
        assert_eq!(s.shown(), Some(0));
        assert!(!s.holds(1) && !s.holds(2));
        // The error names the slot and the reason, for the crash record.
        let e = s.check(0).expect_err("held").to_string();
        assert!(e.contains("slot 0") && e.contains("on screen"), "{e}");
    }

    #[test]
    fn mit_shm_hands_the_replaced_slot_back_at_the_completion_of_the_put_that_replaced_it() {
        let mut s = Slots::new(3, Mode::Completes);
        assert_eq!(s.put(0, 10), Ok(vec![]));
        assert_eq!(s.put(1, 11), Ok(vec![]), "slot 0 is still read");
        // Slot 0 was replaced but its replacement's put is not complete: still held.
        assert_eq!(
            s.check(0),
            Err(SlotError::Held {
                slot: 0,
                why: "the display server is still reading it"
            })
        );
        assert_eq!(
            s.completed(0),
            Some((10, None)),
            "the first put replaced none"
        );
        assert!(s.holds(0), "only the put of slot 1 frees slot 0");
        assert_eq!(s.completed(1), Some((11, Some(0))));
        assert!(!s.holds(0));
        assert_eq!(s.check(0), Ok(()));
        assert!(s.holds(1), "the slot on screen stays held");
    }

    #[test]
    fn completions_of_no_put_free_nothing() {
        let mut s = Slots::new(3, Mode::Completes);
        assert_eq!(s.put(0, 1), Ok(vec![]));
        assert_eq!(s.put(1, 2), Ok(vec![]));
        assert_eq!(s.completed(1), Some((2, Some(0))));
        // A redraw's completion of the slot on screen, a second completion, an unknown slot.
        assert_eq!(s.completed(1), None);
        assert_eq!(
            s.completed(0),
            Some((1, None)),
            "put 0's own completion, late"
        );
        assert_eq!(s.completed(0), None);
        assert_eq!(s.completed(99), None);
        assert!(s.holds(1));
        assert!(!s.holds(0));
    }

    #[test]
    fn mit_shm_never_hands_back_a_slot_twice_over_a_long_run() {
        let mut s = Slots::new(3, Mode::Completes);
        let mut r = FakeRenderer::new(3);
        let mut in_server: VecDeque<u32> = VecDeque::new();
        for frame in 0..200u64 {
            let slot = r.take();
            assert_eq!(s.put(slot, frame), Ok(vec![]));
            in_server.push_back(slot);
            // The server completes puts in order, one or two behind.
            while in_server.len() > (frame % 2) as usize {
                let done = in_server.pop_front().expect("a put");
                let (f, freed) = s.completed(done).expect("a put awaited");
                assert!(f <= frame);
                r.back(freed);
            }
        }
        let held = s.held.iter().filter(|h| **h).count();
        let owned = r.owned.iter().filter(|o| **o).count();
        assert_eq!(held + owned, 3, "every slot is either side's, never both");
    }

    #[test]
    fn wayland_hands_the_replaced_slot_back_once_it_is_released_in_either_order() {
        let mut s = Slots::new(3, Mode::Releases);
        assert_eq!(s.put(0, 0), Ok(vec![]));
        // Released before it is replaced: it goes back the moment it is replaced.
        assert_eq!(s.released(0), None, "on screen: kept");
        assert_eq!(s.put(1, 1), Ok(vec![0]));
        // Replaced before it is released: it goes back at the release.
        assert_eq!(s.put(2, 2), Ok(vec![]));
        assert_eq!(
            s.check(1),
            Err(SlotError::Held {
                slot: 1,
                why: "the compositor has not released it"
            })
        );
        assert_eq!(s.released(1), Some(1));
        assert_eq!(s.released(1), None, "a second release frees nothing");
        assert_eq!(
            s.released(0),
            None,
            "a slot of the renderer's is not freed again"
        );
        assert_eq!(s.released(7), None, "an unknown slot");
        assert!(s.holds(2) && !s.holds(0) && !s.holds(1));
    }

    #[test]
    fn wayland_never_hands_back_a_slot_twice_over_a_long_run() {
        let mut s = Slots::new(3, Mode::Releases);
        let mut r = FakeRenderer::new(3);
        let mut reading: VecDeque<u32> = VecDeque::new();
        for frame in 0..200u64 {
            let slot = r.take();
            r.back(s.put(slot, frame).expect("the renderer's slot"));
            reading.push_back(slot);
            // The compositor releases each buffer sometimes before, sometimes after the next
            // commit, and once in a while twice.
            if frame % 3 != 0 {
                while reading.len() > 1 {
                    let b = reading.pop_front().expect("a buffer");
                    r.back(s.released(b));
                    if frame % 5 == 0 {
                        r.back(s.released(b));
                    }
                }
            }
        }
        let held = s.held.iter().filter(|h| **h).count();
        let owned = r.owned.iter().filter(|o| **o).count();
        assert!(held >= 1, "the slot on screen");
        assert_eq!(held + owned, 3, "every slot is either side's, never both");
    }
}
