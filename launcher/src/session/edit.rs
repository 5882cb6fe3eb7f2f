//! The application's edits of the scene drawn (`crate::scene::Editor`), carried out without a
//! new pair of children: the GPU process is sent the edited scene and draws it from its next
//! frame, naming the edit's version in every frame; the first frame presented that names a
//! version answers every edit up to it ([`Applied`]).
//!
//! A GPU process started later (a restart, a promoted standby) is started on the edited scene,
//! its images included, and its frames name its version from the first, so an edit is never
//! lost to a crash: it is answered by the replacement's first frame if not before.

use std::collections::VecDeque;

use ipc_protocol::messages::{SceneSource, SceneUpdate};

use super::*;
use crate::scene::{Applied, Edit};

/// Edits sent and not yet answered, and where the answers go.
#[derive(Debug)]
pub(super) struct Edits {
    /// Edits from a command line's `--control` (never, for others).
    pub(super) from: Receiver<Edit>,
    /// Where a command line's answers go (none: to the embedding application, as events).
    to: Option<crossbeam_channel::Sender<Applied>>,
    /// Versions sent and not presented yet, oldest first.
    pending: VecDeque<u64>,
    /// The version of the last frame presented.
    shown: u64,
}

impl Edits {
    /// The version of the last frame presented that the launcher knows the version of.
    pub(super) fn shown(&self) -> u64 {
        self.shown
    }

    pub(super) fn new(link: Option<(Receiver<Edit>, crossbeam_channel::Sender<Applied>)>) -> Self {
        let (from, to) = match link {
            Some((from, to)) => (from, Some(to)),
            None => (crossbeam_channel::never(), None),
        };
        Edits {
            from,
            to,
            pending: VecDeque::new(),
            shown: 0,
        }
    }
}

impl Supervisor<'_> {
    /// Draws `edit` from the GPU process's next frame on.
    pub(super) fn apply_edit(&mut self, edit: Edit) -> anyhow::Result<()> {
        if self.drawn.scene().is_none() {
            bail!("an edit of a run without a scene file");
        }
        self.drawn.edit(&edit);
        self.edits.pending.push_back(edit.version);
        self.summary.frames.layers = u32::try_from(edit.scene.scene.layers.len()).unwrap_or(0);
        self.summary.frames.scene_edits += 1;
        if let Some(s) = self.display.as_mut() {
            s.animates = self.drawn.animates();
            s.changed();
        }
        let Some(g) = self.pair.gpu.as_mut() else {
            // The next GPU process starts on it.
            return Ok(());
        };
        let SceneSource::File { name, text } = &edit.scene.start.source else {
            bail!("an edited scene without its text");
        };
        let update = LauncherToGpu::SceneUpdate(SceneUpdate {
            version: edit.version,
            name: name.clone(),
            text: text.clone(),
            slots: edit.scene.start.slots.clone(),
            images: edit.images.clone(),
        });
        g.relay.scene_sent(edit.version);
        if let Err(e) = g.child.commands.send(&update) {
            // Not reading its commands: the stall check replaces it, and its successor starts on
            // the edited scene.
            tracing::warn!(error = %e, version = edit.version, "could not send a scene edit to the GPU process");
            g.unread = true;
            return Ok(());
        }
        for slot in &edit.images {
            let Some((_, fd)) = edit.scene.images.iter().find(|(s, _)| s == slot) else {
                bail!("the edit names the image of slot {slot}, which it does not have");
            };
            let msg = LauncherToGpu::SceneImage { layer: *slot };
            if let Err(e) = g.child.commands.send_with(&msg, &[fd.as_fd()]) {
                tracing::warn!(error = %e, slot, "could not send a scene image to the GPU process");
                g.unread = true;
            }
        }
        Ok(())
    }

    /// Frame `frame`, presented, drew edit `version`: every edit up to it is on screen.
    pub(super) fn edit_presented(&mut self, version: Option<u64>, frame: u64) {
        let Some(v) = version else {
            return;
        };
        self.edits.shown = v;
        while let Some(&p) = self.edits.pending.front() {
            if p > v {
                break;
            }
            self.edits.pending.pop_front();
            let applied = Applied { version: p, frame };
            match &self.edits.to {
                Some(tx) => {
                    let _ = tx.send(applied);
                }
                None => self
                    .embedding
                    .send(crate::embedding::Event::Applied { version: p, frame }),
            }
        }
    }
}
