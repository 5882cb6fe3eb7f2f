//! The output the renderer composites into, shared with the launcher.
//!
//! One sealed memfd holds [`SLOTS`] frames, each `width * height * 4` bytes of premultiplied RGBA
//! with tightly packed rows. The renderer writes only into slots it owns; when a frame is done it
//! hands the slot to the launcher (`Presented`) and does not touch it again until the launcher
//! hands it back (`SlotFree`). With three slots, one is on screen, one is being composited and one
//! is spare, so compositing never waits for presentation in the steady state and the launcher
//! never sees a slot that is being written: no torn frame is possible by construction.

use std::os::fd::{AsFd, OwnedFd};

use triptych_sys::mapping::{Access, Mapping};

/// Output slots.
pub const SLOTS: u32 = 3;

/// The output buffer and who owns each slot.
#[derive(Debug)]
pub struct Output {
    /// The memfd (the launcher takes a copy of it).
    pub fd: OwnedFd,
    map: Mapping,
    /// Bytes per slot.
    pub slot_bytes: usize,
    free: [bool; SLOTS as usize],
}

impl Output {
    /// Creates the output for frames of `width` x `height`.
    pub fn new(width: u32, height: u32) -> anyhow::Result<Self> {
        let slot_bytes = width as usize * height as usize * 4;
        let total = slot_bytes * SLOTS as usize;
        let fd = triptych_sys::memfd::create_sealed(c"triptych-output", total as u64)?;
        let map = Mapping::new(fd.as_fd(), total, Access::ReadWrite)?;
        Ok(Self {
            fd,
            map,
            slot_bytes,
            free: [true; SLOTS as usize],
        })
    }

    /// Takes a free slot, if any.
    pub fn take_free(&mut self) -> Option<u32> {
        let i = self.free.iter().position(|f| *f)?;
        self.free[i] = false;
        Some(i as u32)
    }

    /// Marks `slot` free again. Returns false for a slot number that does not exist or that was
    /// already free (a confused peer; ignored).
    pub fn release(&mut self, slot: u32) -> bool {
        match self.free.get_mut(slot as usize) {
            Some(f) if !*f => {
                *f = true;
                true
            }
            _ => false,
        }
    }

    /// The bytes of `slot`.
    pub fn slot_mut(&mut self, slot: u32) -> &mut [u8] {
        let start = slot as usize * self.slot_bytes;
        &mut self.map.as_mut_slice()[start..start + self.slot_bytes]
    }
}
