//! The application's edits of the scene drawn (`crate::scene::Editor`), carried out without a
//! new pair of children: the GPU process is sent the edited scene and draws it from its next
//! frame, naming the edit's version in every frame; the first frame presented that names a
//! version, and kept no layer's old buffer, answers every edit up to it ([`Applied`]).
//!
//! - **One update on its way at a time.** An edit that comes while the GPU process has not yet
//!   drawn the last update sent only changes the scene drawn; when a frame names that update
//!   (or the process answers a ping sent after it), the newest scene goes out as one update: its
//!   text, the images the process lacks and, of each pixels layer that changed, the rectangle
//!   bounding what was uploaded since the pixels the process has (the whole layer when it has
//!   none of them, or is too far behind).
//!   So any number of edits costs the GPU process at most one update per frame, and its command
//!   queue never fills with them.
//! - **Proved, not believed.** The process handles its commands in order: once it answers a
//!   ping sent after an update, every frame it sends must name that update or a later one
//!   (`Relay::scene_due`); one that names less is its lie. That it draws what it names is its
//!   word: the pixels are its own.
//! - **Nothing lost to a crash.** A GPU process started later (a restart, a promoted standby)
//!   is started on the scene drawn, images and pixels included, and its frames name its version.
//! - **Superseded.** A new scene (`Shell::set_scene`) answers the edits of the old one still
//!   waiting as never shown.

use std::collections::VecDeque;
use std::sync::Arc;

use ipc_protocol::messages::{PixelsUpdate, SceneSource, SceneUpdate};
use triptych_scene::file::Content;

use super::*;
use crate::scene::{Applied, Edit, LoadedScene};

/// Edits sent and not yet answered, and where the answers go.
#[derive(Debug)]
pub(super) struct Edits {
    /// Edits from a command line's `--control` (never, for others).
    pub(super) from: Receiver<Edit>,
    /// Where a command line's answers go (none: to the embedding application, as events).
    to: Option<crossbeam_channel::Sender<Applied>>,
    /// Versions made and not presented yet, oldest first, each with its scene while it may
    /// still be named by a frame (the newest, and those sent to a GPU process).
    pending: VecDeque<(u64, Option<Arc<LoadedScene>>)>,
    /// The version of the last frame presented, and its scene (the run's first scene before
    /// any edit is shown).
    shown: (u64, Option<Arc<LoadedScene>>),
}

impl Edits {
    pub(super) fn new(
        link: Option<(Receiver<Edit>, crossbeam_channel::Sender<Applied>)>,
        first: Option<Arc<LoadedScene>>,
    ) -> Self {
        let (from, to) = match link {
            Some((from, to)) => (from, Some(to)),
            None => (crossbeam_channel::never(), None),
        };
        Edits {
            from,
            to,
            pending: VecDeque::new(),
            shown: (0, first),
        }
    }

    /// The version of the last frame presented that the launcher knows the version of.
    pub(super) fn shown(&self) -> u64 {
        self.shown.0
    }

    /// The scene file the last frame presented shows: what `--verify` compares it with.
    pub(super) fn shown_scene(&self) -> Option<&Arc<LoadedScene>> {
        self.shown.1.as_ref()
    }
}

impl Supervisor<'_> {
    /// Draws `edit` from the GPU process's next frame on.
    pub(super) fn apply_edit(&mut self, edit: Edit) -> anyhow::Result<()> {
        if self.views[0].drawn.scene().is_none() {
            bail!("an edit of a run without a scene file");
        }
        self.views[0].drawn.edit(&edit);
        // Only a version sent to a GPU process can be named by a frame: the one before this,
        // if it never went (this one overtook it), keeps its number only, so that edits that
        // come while no frame does cost no memory but their numbers.
        let sent = self
            .pair
            .gpu
            .as_ref()
            .and_then(|g| g.link(FIRST_VIEW))
            .map_or(0, |l| l.relay.scene_sent_version());
        if let Some(last) = self.edits.pending.back_mut().filter(|l| l.0 > sent) {
            last.1 = None;
        }
        self.edits
            .pending
            .push_back((edit.version, Some(Arc::clone(&edit.scene))));
        self.summary.frames.scene_edits += 1;
        if let Some(s) = self.display.as_mut() {
            s.set_animates(FIRST_VIEW, self.views[0].drawn.animates());
            s.changed();
        }
        self.send_edits()
    }

    /// Sends the GPU process the scene drawn, unless it has it, or has not yet drawn the last
    /// update sent.
    pub(super) fn send_edits(&mut self) -> anyhow::Result<()> {
        let version = self.views[0].drawn.version();
        let Some(newest) = self.views[0].drawn.scene().cloned() else {
            return Ok(());
        };
        let ping = self.liveness.last_sent();
        let Some(g) = self.pair.gpu.as_mut() else {
            // The next GPU process starts on it.
            return Ok(());
        };
        let Some(link) = g.link(FIRST_VIEW) else {
            return Ok(());
        };
        if link.edit_on_its_way.is_some() || link.relay.scene_sent_version() >= version {
            return Ok(());
        }
        let Some(had) = link.scene_had.clone() else {
            return Ok(());
        };
        let SceneSource::File { name, text } = &newest.start.source else {
            bail!("an edited scene without its text");
        };
        // What the process lacks: images it has not had in their slot, and pixels changed.
        let lacks = |slot: u32| match (
            had.decoded.get(slot as usize).and_then(Option::as_ref),
            newest.decoded.get(slot as usize).and_then(Option::as_ref),
        ) {
            (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
            (None, Some(_)) => true,
            _ => false,
        };
        let images: Vec<u32> = newest
            .images
            .iter()
            .map(|(slot, _)| *slot)
            .filter(|slot| lacks(*slot))
            .collect();
        let pixels: Vec<(u32, Arc<triptych_scene::file::Image>, Rows)> = newest
            .scene
            .layers
            .iter()
            .filter(|l| matches!(l.content, Content::Pixels { .. }) && lacks(l.slot))
            .filter_map(|l| {
                let image = newest.decoded.get(l.slot as usize)?.clone()?;
                let whole = (0, 0, image.width, image.height);
                let rows = match newest.uploaded_since(&had, l.slot) {
                    Some(rects) => Rows::Patch(bounding(&rects).unwrap_or(whole)),
                    None => Rows::Whole,
                };
                Some((l.slot, image, rows))
            })
            .collect();
        // The pixels layers whose pixels are the very ones it has, or that it patches: it keeps
        // those, and shows every other pixels layer not sent transparent, as the launcher's
        // scene does.
        let patched = |slot: u32| {
            pixels
                .iter()
                .any(|(s, _, rows)| *s == slot && matches!(rows, Rows::Patch(_)))
        };
        let pixels_kept: Vec<u32> = newest
            .scene
            .layers
            .iter()
            .filter(|l| matches!(l.content, Content::Pixels { .. }))
            .map(|l| l.slot)
            .filter(|slot| {
                match (
                    had.decoded.get(*slot as usize).and_then(Option::as_ref),
                    newest.decoded.get(*slot as usize).and_then(Option::as_ref),
                ) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b) || patched(*slot),
                    _ => false,
                }
            })
            .collect();
        // Every memfd first: an update goes out whole or not at all.
        let mut memfds = Vec::with_capacity(pixels.len());
        for (slot, image, rows) in &pixels {
            let rect = match rows {
                Rows::Whole => (0, 0, image.width, image.height),
                Rows::Patch(r) => *r,
            };
            let bytes = rows_of(image, rect);
            match crate::scene::sealed_memfd("pixels", &bytes) {
                Ok(fd) => memfds.push((*slot, rect, fd)),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), slot, "no memfd for a pixels layer's pixels; the edit goes at the next frame");
                    return Ok(());
                }
            }
        }
        let update = ViewCommand::SceneUpdate(SceneUpdate {
            version,
            name: name.clone(),
            text: text.clone(),
            slots: newest.start.slots.clone(),
            images: images.clone(),
            pixels: pixels.iter().map(|(slot, _, _)| *slot).collect(),
            pixels_kept,
        });
        match g.send_view(FIRST_VIEW, update) {
            Ok(()) => {}
            // Its queue is full of other commands: tried again at its next frame or pong.
            Err(SendError::Full) => return Ok(()),
            // Dying: its exit is seen and handled, and its successor starts on the scene.
            Err(e) => {
                tracing::warn!(error = %e, version, "could not send a scene edit to the GPU process");
                return Ok(());
            }
        }
        if let Some(link) = g.link_mut(FIRST_VIEW) {
            link.relay.scene_sent(version);
            link.edit_on_its_way = Some((version, ping));
            link.scene_had = Some(Arc::clone(&newest));
        }
        // The rest of the update: a process that stops reading now waits for it forever, and
        // is replaced as one that stopped reading its commands.
        for slot in &images {
            let Some((_, fd)) = newest.images.iter().find(|(s, _)| s == slot) else {
                continue;
            };
            let msg = ViewCommand::SceneImage { layer: *slot };
            if let Err(e) = g.send_view_with(FIRST_VIEW, msg, &[fd.as_fd()]) {
                tracing::warn!(error = %e, slot, "could not send a scene image to the GPU process");
                g.unread = true;
            }
        }
        for (slot, (x, y, width, height), fd) in &memfds {
            let msg = ViewCommand::Pixels(PixelsUpdate {
                version,
                slot: *slot,
                x: *x,
                y: *y,
                width: *width,
                height: *height,
            });
            if let Err(e) = g.send_view_with(FIRST_VIEW, msg, &[fd.as_fd()]) {
                tracing::warn!(error = %e, slot, "could not send a pixels layer's pixels to the GPU process");
                g.unread = true;
            }
        }
        Ok(())
    }

    /// The GPU process drew version `version` (a frame named it), or answered ping `pong`: the
    /// update on its way has arrived once either reaches it, and the next may go. With none on
    /// its way, an edit that could not be sent before (its queue was full) goes now.
    pub(super) fn edit_arrived(&mut self, version: Option<u64>, pong: Option<u64>) {
        let Some(link) = self.pair.gpu.as_mut().and_then(|g| g.link_mut(FIRST_VIEW)) else {
            return;
        };
        if let Some((v, ping)) = link.edit_on_its_way {
            if pong.is_some_and(|n| n > ping) {
                // It handled the update before the ping: every frame from now on draws it.
                link.relay.scene_due(v);
            } else if version.is_none_or(|drawn| drawn < v) {
                return;
            }
            link.edit_on_its_way = None;
        }
        if let Err(e) = self.send_edits() {
            tracing::error!(error = %format!("{e:#}"), "sending the scene's edits to the GPU process");
        }
    }

    /// Frame `frame`, presented, drew edit `version`: every edit up to it is on screen.
    pub(super) fn edit_presented(&mut self, version: Option<u64>, frame: u64) {
        let Some(v) = version else {
            return;
        };
        self.edits.shown.0 = v;
        let mut newest = None;
        while let Some((p, _)) = self.edits.pending.front() {
            if *p > v {
                break;
            }
            let Some((p, scene)) = self.edits.pending.pop_front() else {
                break;
            };
            if scene.is_some() {
                self.edits.shown.1 = scene;
            }
            // A command line answers every line; an application hears of the newest, which
            // answers every edit before it (so a burst of edits is one event, never dropped).
            if self.edits.to.is_some() {
                self.answer(Applied {
                    version: p,
                    frame: Some(frame),
                });
            }
            newest = Some(p);
        }
        if let (None, Some(p)) = (&self.edits.to, newest) {
            self.answer(Applied {
                version: p,
                frame: Some(frame),
            });
        }
        if let Some(s) = &self.edits.shown.1 {
            self.summary.frames.layers = u32::try_from(s.scene.layers.len()).unwrap_or(0);
        }
    }

    /// A new scene replaces the one the waiting edits edited: they will never be shown.
    pub(super) fn edits_superseded(&mut self, scene: Arc<LoadedScene>) {
        while let Some((version, _)) = self.edits.pending.pop_front() {
            self.answer(Applied {
                version,
                frame: None,
            });
        }
        self.edits.shown.1 = Some(scene);
    }

    fn answer(&self, a: Applied) {
        match (&self.edits.to, a.frame) {
            (Some(tx), _) => {
                let _ = tx.send(a);
            }
            (None, Some(frame)) => self.embedding.send(crate::embedding::Event::Applied {
                version: a.version,
                frame,
            }),
            (None, None) => self
                .embedding
                .send(crate::embedding::Event::EditSuperseded { version: a.version }),
        }
    }
}

/// What of a pixels layer's pixels an update sends.
#[derive(Clone, Copy, Debug)]
enum Rows {
    /// All of them: the process has none of the ones they descend from.
    Whole,
    /// This rectangle (left, top, width, height), patched into the pixels the process keeps.
    Patch((u32, u32, u32, u32)),
}

/// The smallest rectangle holding all of `rects`; `None` for none.
fn bounding(rects: &[(u32, u32, u32, u32)]) -> Option<(u32, u32, u32, u32)> {
    let x0 = rects.iter().map(|r| r.0).min()?;
    let y0 = rects.iter().map(|r| r.1).min()?;
    let x1 = rects.iter().map(|r| r.0 + r.2).max()?;
    let y1 = rects.iter().map(|r| r.1 + r.3).max()?;
    Some((x0, y0, x1 - x0, y1 - y0))
}

/// The rows of `image`'s rectangle `(x, y, w, h)`, which lies inside it.
fn rows_of(image: &triptych_scene::file::Image, (x, y, w, h): (u32, u32, u32, u32)) -> Vec<u8> {
    let (stride, row) = (image.width as usize * 4, w as usize * 4);
    let mut out = Vec::with_capacity(row * h as usize);
    for r in y as usize..(y + h) as usize {
        let at = r * stride + x as usize * 4;
        out.extend_from_slice(image.pixels.get(at..at + row).unwrap_or_default());
    }
    out
}
