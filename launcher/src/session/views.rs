//! Views added and removed while the run goes on, at the embedding application's request
//! ([`crate::shell::Shell::add_view`], [`crate::shell::Shell::remove_view`]).
//!
//! Adding a view is what a start does for every view after the first, on the running GPU
//! process: a renderer spawned and confined, the process told with `AddView` and the view's
//! scene, a relay for the view's frames, the renderer started on its own export window. The
//! window is the lowest one no view of the run and no view the process still serves holds, so
//! a renderer never gets a window whose buffers another view's frames may still occupy.
//!
//! Removing one shuts its renderer down (its last counters taken, as at the end of a run), has
//! the process stop serving it (`RemoveView`, answered with `Removed`; frames of it arriving
//! meanwhile are dropped), and keeps its summary; the run forgets the rest of it, so that
//! adding and removing views for as long as an application runs costs nothing that grows.

use std::sync::Arc;

use super::*;
use crate::embedding::{ViewRect, ViewRefused};
use crate::scene::LoadedScene;

/// Summaries of views removed before the end that the run keeps (the first ones): an
/// application adding and removing views all day keeps its launcher's memory bounded.
pub(super) const MAX_GONE: usize = 256;

/// The longest a removal holds the run up for the renderer's last counters and its exit:
/// well inside every other child's hang timeout.
const REMOVE_GRACE: Duration = Duration::from_millis(250);

impl Supervisor<'_> {
    /// The most views the run may have at once: its configuration's, and no more than the
    /// GPU process's export windows.
    fn view_limit(&self) -> u32 {
        let max = self
            .args
            .max_views
            .unwrap_or_else(crate::config::default_max_views);
        match &self.pair.gpu {
            Some(g) => max.min(g.info.views),
            None => max,
        }
    }

    /// A new view `id` in export window `window`, drawing `scene` (none: the built-in panels),
    /// placed at `rect` (none: tiled, at the run's frame size).
    pub(super) fn new_view(
        &self,
        id: ViewId,
        window: u32,
        scene: Option<Arc<LoadedScene>>,
        rect: Option<ViewRect>,
    ) -> View {
        let size = rect.map_or(self.size, |r| (r.width, r.height));
        let max = self.max_size;
        let size = (size.0.clamp(1, max.0), size.1.clamp(1, max.1));
        View {
            id,
            window,
            drawn: parts::Drawn::new(scene, self.args.layers),
            renderer: None,
            pair: parts::ViewPair::new(
                self.args.supervision.max_crashes,
                Duration::from_secs(self.args.supervision.restart_window_s),
            ),
            presented: 0,
            last: None,
            restarts: 0,
            held_max: 0,
            shown: None,
            out: crate::config::view_out(&self.args.out, id.0),
            failed: None,
            input: parts::Input::default(),
            geometry: parts::Geometry::new(size, max),
            placed: rect,
        }
    }

    /// Adds a view drawing `scene`, served by the running GPU process, placed at `rect` (none:
    /// tiled); returns its number.
    pub(super) fn add_view(
        &mut self,
        scene: Arc<LoadedScene>,
        rect: Option<ViewRect>,
    ) -> Result<ViewId, ViewRefused> {
        let max = self.view_limit();
        let live = self.views.iter().filter(|v| v.failed.is_none()).count();
        if live >= max as usize {
            return Err(ViewRefused::TooMany { max });
        }
        let Some(g) = self.pair.gpu.as_ref() else {
            return Err(ViewRefused::Start("no GPU process runs".to_owned()));
        };
        let taken = |w: u32| {
            self.views
                .iter()
                .any(|v| v.failed.is_none() && v.window == w)
                || g.links.iter().any(|l| l.window == w)
        };
        // Any window the process has: one a removed view held may not be free yet (the process
        // has not said `Removed`), while the views are fewer than the maximum.
        let Some(window) = (0..g.info.views).find(|w| !taken(*w)) else {
            return Err(ViewRefused::TooMany { max });
        };
        let id = ViewId(self.next_view);
        let child = self
            .spawn_renderer()
            .map_err(|e| ViewRefused::Start(format!("{e:#}")))?;
        self.next_view += 1;
        let view = self.new_view(id, window, Some(scene), rect);
        let animates = view.drawn.animates();
        self.views.push(view);
        let i = self.views.len() - 1;
        // In a window, it gets a place, and the tiled views make room for it.
        if let Some(s) = self.display.as_mut() {
            s.add_tile(id, animates);
            self.retile(&[id]);
        }
        let renderer_pid = child.proc.pid;
        let Some(g) = self.pair.gpu.as_ref() else {
            return Err(ViewRefused::Start("no GPU process runs".to_owned()));
        };
        let (epoch, gpu_pid) = (g.epoch, g.info.pid);
        let page = g.page_for_renderer();
        self.policing.view_epoch(id, epoch, 0);
        if let Err(e) = self.jail.link_gpu(gpu_pid, renderer_pid) {
            // Its death, if that is why, is seen through its pidfd and handled there.
            tracing::warn!(error = %e, "could not hand the GPU process its link to a renderer");
        }
        let link = self.new_link(
            i,
            epoch,
            gpu_pid,
            &g.info,
            g.progress.as_ref(),
            renderer_pid,
        );
        let mut added = false;
        if let Some(start) = self.view_start(i, renderer_pid) {
            match g.child.commands.send(&LauncherToGpu::AddView(start)) {
                Ok(()) => {
                    added = true;
                    if let Err(e) = self.send_view_scene(i, &g.child.commands) {
                        tracing::warn!(error = %format!("{e:#}"), "could not send a view's scene to the GPU process");
                    }
                }
                // A process that stopped reading, or died: its end is seen and handled as such,
                // and its replacement is given every view.
                Err(e) => tracing::warn!(error = %e, "could not add a view to the GPU process"),
            }
        }
        // The process knows of the view only if it was told.
        if let (Some(g), Some(link), true) = (self.pair.gpu.as_mut(), link, added) {
            g.links.push(link);
        }
        let renderer = match self.start_renderer(i, child, (epoch, gpu_pid), page) {
            Ok(r) => r,
            Err(e) => {
                // Nothing of it is left: the process is told to forget it too.
                let why = format!("{e:#}");
                self.drop_view(i);
                return Err(ViewRefused::Start(why));
            }
        };
        self.views[i].renderer = Some(renderer);
        self.liveness.progress(id, Instant::now());
        tracing::info!(view = id.0, window, renderer = renderer_pid, "view added");
        self.tracing.instant(
            Marker::Restart,
            None,
            &[
                ("view", id.0.to_string()),
                ("added", "renderer".into()),
                ("pid", renderer_pid.to_string()),
            ],
        );
        Ok(id)
    }

    /// Removes view `id` (running, or given up): its renderer shut down, the GPU process told
    /// to stop serving it, its summary kept. The run is held up by at most [`REMOVE_GRACE`]:
    /// a renderer that does not answer and exit in that time is killed.
    pub(super) fn remove_view(&mut self, id: ViewId) -> Result<(), ViewRefused> {
        if id == FIRST_VIEW {
            return Err(ViewRefused::First);
        }
        let Some(i) = self.view_index(id) else {
            return Err(ViewRefused::NoSuch(id));
        };
        let given_up = self.views[i].failed.is_some();
        let pid = self.views[i].renderer.as_ref().map(|r| r.child.proc.pid);
        let ms = |pid: u32| {
            triptych_sys::proc::cpu_ns(pid)
                .ok()
                .flatten()
                .map(|ns| ns as f64 / 1e6)
        };
        let rss = pid.and_then(|p| triptych_sys::proc::memory_kib(p).ok().and_then(|m| m.0));
        let cpu = pid.and_then(ms);
        if let Some(r) = &self.views[i].renderer {
            let _ = r.child.commands.send(&LauncherToRenderer::Shutdown);
        }
        let deadline = Instant::now() + REMOVE_GRACE;
        self.renderer_counters(i, deadline);
        let mut summary = match self.view_summary(i, false, (rss, cpu)) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "a removed view's summary");
                return Err(ViewRefused::NoSuch(id));
            }
        };
        summary.removed = true;
        if let Some(r) = self.views[i].renderer.take() {
            let last = self.views[i].last;
            self.end_renderer(r, deadline, last);
        }
        if self.gone.len() < MAX_GONE {
            self.gone.push(summary);
        }
        let last = self.views[i].last;
        self.drop_view(i);
        tracing::info!(view = id.0, "view removed");
        self.tracing.instant(
            Marker::Fallback,
            last,
            &[("view", id.0.to_string()), ("removed", "renderer".into())],
        );
        // A view given up was announced gone already.
        if !given_up {
            self.embedding.send(crate::embedding::Event::ViewGone {
                view: id,
                failed: None,
            });
        }
        Ok(())
    }

    /// Places view `id` at `rect` (`crate::shell::Shell::set_view_rect`): its frames of the
    /// rectangle's size from now on, and in a window its surface there. Placed, it is no longer
    /// tiled: the views still tiled are laid out again without it.
    pub(super) fn set_view_rect(&mut self, id: ViewId, rect: ViewRect) -> Result<(), ViewRefused> {
        let Some(i) = self
            .view_index(id)
            .filter(|&i| self.views[i].failed.is_none())
        else {
            return Err(ViewRefused::NoSuch(id));
        };
        if self.display.is_some() && id == FIRST_VIEW && (rect.x, rect.y) != (0, 0) {
            return Err(ViewRefused::Corner);
        }
        self.views[i].placed = Some(rect);
        tracing::info!(
            view = id.0,
            x = rect.x,
            y = rect.y,
            width = rect.width,
            height = rect.height,
            "view placed"
        );
        self.resize_view(i, (rect.width, rect.height));
        // Its surface moves even where its size stays, and the views still tiled close up.
        self.retile(&[]);
        Ok(())
    }

    /// Waits until `deadline` for renderer `r`, told to shut down, to exit, kills it if it has
    /// not, and reaps it (its view's last frame `last`).
    pub(super) fn end_renderer(&mut self, mut r: Renderer, deadline: Instant, last: Option<u64>) {
        exit_or_kill(&mut r, deadline);
        let _ = self.jail.reaped(r.child.proc.pid, self.tracing.rec(), last);
    }

    /// Forgets view `i`, whose renderer is gone: the GPU process is told to stop serving it;
    /// in a window, its surface goes, and the tiled views take the room it leaves.
    fn drop_view(&mut self, i: usize) {
        let v = self.views.remove(i);
        if let Some(s) = self.display.as_mut() {
            s.remove_tile(v.id);
            self.retile(&[]);
        }
        if let Some(g) = self.pair.gpu.as_mut() {
            // Once: a view given up was removed from the process already.
            if let Some(l) = g.link_mut(v.id).filter(|l| !l.removing) {
                l.removing = true;
                if let Err(SendError::Full) =
                    g.child.commands.send(&LauncherToGpu::RemoveView(v.id))
                {
                    g.unread = true;
                }
            }
        }
        self.policing.forget(v.id);
        self.liveness.forget(v.id);
        self.embedding.forget(v.id);
        if let Some(p) = self.pacer.as_mut() {
            p.forget(v.id);
        }
    }
}

/// Waits until `deadline` for renderer `r`, told to shut down, to exit; kills it if it has not.
pub(super) fn exit_or_kill(r: &mut Renderer, deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    if r.child.proc.wait_exit(left).is_none() {
        tracing::warn!(
            pid = r.child.proc.pid,
            "the renderer did not exit in time; killing"
        );
        r.child.proc.kill();
    }
}
