//! Presenting composited frames, headless: the launcher maps the renderer's output memfd and
//! owns one slot at a time, the one on screen. A new frame's slot replaces it and the previous
//! slot goes back to the renderer; at exit the slot on screen is written as a PNG.

use std::io::BufWriter;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context};
use ipc_protocol::messages::OutputOrder;
use ipc_protocol::{FileId, RemoteFd};
use triptych_sys::mapping::{Access, Mapping};

/// The renderer's output, mapped read-only.
#[derive(Debug)]
pub struct Screen {
    _fd: OwnedFd,
    map: Mapping,
    slots: u32,
    slot_bytes: usize,
    /// The byte order the renderer composites in.
    order: OutputOrder,
    /// The slot on screen and its frame number.
    pub shown: Option<(u32, u64)>,
    /// The size of the frame on screen (at most the slots' size).
    shown_size: (u32, u32),
}

impl Screen {
    /// Takes the renderer's output fd through `renderer_pidfd` and maps it.
    pub fn attach(
        renderer_pidfd: &OwnedFd,
        remote: RemoteFd,
        slots: u32,
        slot_bytes: u64,
        width: u32,
        height: u32,
        order: OutputOrder,
    ) -> anyhow::Result<Self> {
        let expected = u64::from(width) * u64::from(height) * 4;
        if slot_bytes != expected || !(1..=8).contains(&slots) {
            bail!("renderer output: {slots} slots of {slot_bytes} bytes, expected 1..=8 slots of {expected} bytes");
        }
        let fd = triptych_sys::pidfd::pidfd_getfd(renderer_pidfd.as_fd(), remote.fd)
            .with_context(|| format!("taking the renderer's output fd {}", remote.fd))?;
        let id = triptych_sys::fd::identity(fd.as_fd())?;
        ipc_protocol::frame::check_identity(
            "output",
            remote.identity,
            FileId {
                dev: id.dev,
                ino: id.ino,
            },
        )?;
        let total = slot_bytes * u64::from(slots);
        let size = triptych_sys::fd::seek_size(fd.as_fd())?;
        if size < total {
            bail!("renderer output is {size} bytes, smaller than {slots} slots of {slot_bytes}");
        }
        triptych_sys::memfd::check_no_shrink(fd.as_fd()).context("renderer output")?;
        let map = Mapping::new(fd.as_fd(), total as usize, Access::Read)?;
        Ok(Self {
            _fd: fd,
            map,
            slots,
            slot_bytes: slot_bytes as usize,
            order,
            shown: None,
            shown_size: (width, height),
        })
    }

    /// The number of slots.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// Shows `slot` holding `frame`; returns the slot it replaces, to hand back.
    pub fn show(&mut self, slot: u32, frame: u64, size: (u32, u32)) -> anyhow::Result<Option<u32>> {
        if u64::from(size.0) * u64::from(size.1) * 4 > self.slot_bytes as u64 {
            bail!(
                "a {}x{} frame does not fit the output's slots",
                size.0,
                size.1
            );
        }
        if slot >= self.slots {
            bail!(
                "renderer presented slot {slot}, but the output has {} slots",
                self.slots
            );
        }
        if matches!(self.shown, Some((s, _)) if s == slot) {
            bail!("renderer presented slot {slot} again while it is on screen");
        }
        self.shown_size = size;
        Ok(self.shown.replace((slot, frame)).map(|(s, _)| s))
    }

    /// A duplicate of the output memfd, for a display server to map.
    pub fn dup_fd(&self) -> std::io::Result<OwnedFd> {
        self._fd.try_clone()
    }

    /// A copy of the frame of `size` in `slot` as the renderer wrote it (in the output's byte
    /// order).
    pub fn raw_slot(&self, slot: u32, size: (u32, u32)) -> Option<Vec<u8>> {
        let len = size.0 as usize * size.1 as usize * 4;
        if slot >= self.slots || len > self.slot_bytes {
            return None;
        }
        let start = slot as usize * self.slot_bytes;
        self.map.peer_bytes().sub(start, len).map(|p| p.to_vec())
    }

    /// The size of the frame on screen.
    pub fn shown_size(&self) -> (u32, u32) {
        self.shown_size
    }

    /// A copy of the pixels on screen (RGBA, premultiplied, rows tightly packed). The output is
    /// memory the renderer can write, so it is copied out, never borrowed.
    pub fn pixels(&self) -> Option<Vec<u8>> {
        let (slot, _) = self.shown?;
        let mut px = self.raw_slot(slot, self.shown_size)?;
        if self.order == OutputOrder::Bgra {
            for p in px.chunks_exact_mut(4) {
                p.swap(0, 2);
            }
        }
        Some(px)
    }

    /// Writes `pixels` (a copy taken with [`Screen::pixels`]) to `path` as an RGBA PNG. Every
    /// composited pixel is opaque (the backdrop is), so premultiplied and straight alpha agree.
    pub fn write_png_of(&self, pixels: &[u8], path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let (width, height) = self.shown_size;
        let mut enc = png::Encoder::new(BufWriter::new(file), width, height);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc
            .write_header()
            .with_context(|| format!("writing {}", path.display()))?;
        w.write_image_data(pixels)
            .with_context(|| format!("writing {}", path.display()))?;
        w.finish()
            .with_context(|| format!("finishing {}", path.display()))?;
        Ok(())
    }
}
