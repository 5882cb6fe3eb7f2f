//! What an embedding application (`crate::shell`) asks of a running shell beyond the keys of a
//! window: a new scene, a new size; and the layer under the pointer, outlined in the frames.
//!
//! A new scene replaces both children: the renderer is started with the scene's layer count and
//! backdrop, and the GPU process with its text and images, so a fresh pair is the one way that
//! no frame can mix the two scenes. The old pair is shut down first (a clean exit, no crash
//! record); its last frame stays on screen (headless: the old output mapping; in a window: the
//! old segment, retired once the new renderer's first frame is up, as after a renderer crash)
//! until the new pair presents.

use std::sync::Arc;

use super::*;
use crate::embedding::{Control, Target};
use crate::scene::LoadedScene;

impl Supervisor<'_> {
    /// One command from the embedding application.
    pub(super) fn embed_control(&mut self, c: Control) -> anyhow::Result<()> {
        match c {
            Control::Kill(Target::Gpu) => self.kill_role(Role::Gpu),
            Control::Kill(Target::Renderer(view)) => self.kill_renderer(view),
            // The application waits for the answer; one that stopped waiting drops it.
            Control::AddView { scene, rect, reply } => {
                let _ = reply.send(self.add_view(scene, rect));
            }
            Control::SetViewRect { view, rect, reply } => {
                let _ = reply.send(self.set_view_rect(view, rect));
            }
            Control::RemoveView { view, reply } => {
                let _ = reply.send(self.remove_view(view));
            }
            Control::Shutdown => self.embedding.quit(),
            Control::SetScene(scene) => self.switch_scene(scene)?,
            Control::Edit(edit) => self.apply_edit(edit)?,
            Control::Resize(w, h) => match self.display.as_mut() {
                // The path a window's own resize takes, without waiting for it to settle.
                Some(s) => s.resize_now((w, h)),
                None => self.resize_tiled((w, h)),
            },
        }
        Ok(())
    }

    /// Shuts the running pair down and starts a new one on `scene`, from the frame after the
    /// last one presented.
    fn switch_scene(&mut self, scene: Arc<LoadedScene>) -> anyhow::Result<()> {
        let layers = u32::try_from(scene.scene.layers.len()).context("layer count")?;
        tracing::info!(
            layers,
            scene = self.views[0].drawn.scene_id() + 1,
            resume_from = self.resume_from(),
            "switching to a new scene"
        );
        self.stop_pair();
        self.edits_superseded(Arc::clone(&scene));
        self.views[0].drawn.switch(scene);
        if let Some(s) = self.display.as_mut() {
            s.set_animates(FIRST_VIEW, self.views[0].drawn.animates());
        }
        self.summary.frames.layers = layers;
        self.summary.frames.scene_changes += 1;
        self.views[0].input.new_scene();
        self.last_dropped = false;
        self.start_pair()?;
        self.liveness.progress(FIRST_VIEW, Instant::now());
        Ok(())
    }

    /// Shuts the GPU process and every view's renderer down, killing what does not exit in
    /// time; each renderer's last frame is kept to show until the view's next renderer
    /// presents.
    fn stop_pair(&mut self) {
        let mut stopping = Vec::new();
        for v in &mut self.views {
            if let Some(mut r) = v.renderer.take() {
                let _ = r.child.commands.send(&LauncherToRenderer::Shutdown);
                v.pair.keep_showing(r.screen.take());
                stopping.push((r, v.last));
            }
        }
        // Asked all at once, waited for against one deadline.
        let deadline = Instant::now() + EXIT_GRACE;
        for (r, last) in stopping {
            self.end_renderer(r, deadline, last);
        }
        if let Some(mut g) = self.pair.gpu.take() {
            let _ = g.child.commands.send(&LauncherToGpu::Shutdown);
            if g.child.proc.wait_exit(EXIT_GRACE).is_none() {
                tracing::warn!(
                    pid = g.child.proc.pid,
                    "the GPU process did not exit in time; killing"
                );
                g.child.proc.kill();
            }
            let _ = self.jail.reaped(
                g.child.proc.pid,
                self.tracing.rec(),
                self.summary.frames.last,
            );
        }
    }

    /// The topmost layer the pixel at `p` of view `i` shows in its frame on screen, as the
    /// scene it draws lays its layers out (a scene file's, or the built-in scene's), with the
    /// user's moves.
    pub(super) fn layer_under(&self, i: usize, p: (i32, i32)) -> Option<u32> {
        let v = self.views.get(i)?;
        let frame = v.last.unwrap_or(0);
        v.drawn
            .layer_at(frame, v.geometry.size(), v.input.moves(), p)
    }

    /// Tells the GPU process which layer of each view to outline, once per change.
    pub(super) fn send_hover(&mut self) {
        for v in &mut self.views {
            // A view given up is served no more: nothing of it goes to the process.
            if v.failed.is_some() {
                continue;
            }
            let Some(hover) = v.input.hover_to_send() else {
                continue;
            };
            if let Some(g) = self.pair.gpu.as_mut() {
                match g.send_view(v.id, ViewCommand::Hover(hover)) {
                    Err(SendError::Full) => g.unread = true,
                    Ok(()) | Err(_) => v.input.hover_sent(),
                }
            }
            // A still scene needs a frame to show the outline.
            if let Some(s) = self.display.as_mut() {
                s.changed_view(v.id);
            }
        }
    }
}
