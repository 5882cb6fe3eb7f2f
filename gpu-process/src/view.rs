//! One view the GPU process renders for (`View`): its renderer, its size and scene, its pool
//! of buffers and its export window, and the drawing of its frames on the process's one GL
//! context (`Device`).
//!
//! Views share nothing but the device: each has a pool of its own (its budget of buffers in
//! flight and of memory), a window of its own where every fd of its frames lies (its renderer's
//! sandbox confines `pidfd_getfd` to that window, so no renderer reaches another view's buffers
//! or fences), its own frame numbers and damage history. The frame loop ([`crate::frame_loop`])
//! takes the views in turn, one frame each, so one view's backlog never delays another's
//! frames: a view whose renderer withholds its releases has no free buffer and is skipped.

use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context};
use ipc_protocol::damage::{Rect, Region};
use ipc_protocol::messages::{
    FaultAction, FaultPoint, FrameMsg, GpuToLauncher, LayerMsg, LayerPlacement, OverlayText,
    PixelsUpdate, RendererLink, SceneUpdate, ViewCommand, ViewId, ViewStart, LATE_FENCES_MS,
};
use triptych_sys::fd::ExportWindow;
use triptych_trace::{Args, Stage};

use crate::damage::{content_damage, History};
use crate::device::{maybe_fire, Device};
use crate::export;
use crate::gl::Paint;
use crate::hooks::Sent;
use crate::pool::Pool;
use crate::sandbox::name_ptracer;
use crate::transport::FdSender;

/// The PNG bytes of one image layer, by slot.
type ScenePng = (u32, Vec<u8>);

/// A scene update waiting for its images and pixels, with those received so far.
struct PendingUpdate {
    update: SceneUpdate,
    pngs: Vec<ScenePng>,
    /// The rows of each pixels layer the update names: the whole layer, or a rectangle.
    pixels: Vec<(PixelsUpdate, Vec<u8>)>,
}

/// The window's overlay: the last layer of every frame, above the scene's.
struct Overlay {
    /// Its layer index (the scene's layer count).
    layer: u32,
    /// The text shown and its uploaded texels; `None`: hidden.
    shown: Option<(Vec<String>, Rc<crate::gl::LayerTarget>)>,
}

impl Overlay {
    /// What the overlay layer is this frame: its size, paint and placement. Hidden, it is one
    /// transparent texel at opacity 0, so the frame's layer set never changes.
    fn layer(&self) -> (u32, u32, Paint, LayerPlacement) {
        use triptych_scene::overlay::{POSITION, Z};
        let place = |opacity| LayerPlacement {
            x: POSITION.0,
            y: POSITION.1,
            z: Z,
            opacity,
        };
        match &self.shown {
            Some((_, texels)) => (
                texels.width(),
                texels.height(),
                Paint::Copied(Rc::clone(texels)),
                place(255),
            ),
            None => {
                let clear = triptych_scene::LayerContent {
                    width: 1,
                    height: 1,
                    background: [0; 4],
                    rects: Vec::new(),
                };
                (1, 1, Paint::Rects(clear), place(0))
            }
        }
    }
}

/// One view's frames: what the launcher asked for it and what was sent of it.
pub(crate) struct View {
    pub(crate) id: ViewId,
    /// Its share of the rendering time ([`crate::fair`]).
    pub(crate) share: crate::fair::Share,
    /// Its export window's index, and the window.
    pub(crate) window_index: u32,
    window: ExportWindow,
    /// The renderer served (the pid of its link).
    renderer_pid: u32,
    /// Sends each frame's fds to the renderer with the SCM_RIGHTS transport.
    fds: FdSender,
    /// The frame size's generation (see `ViewCommand::Resize`).
    generation: u32,
    /// Layers the user moved.
    moves: triptych_scene::Moves,
    /// The layer under the pointer, drawn outlined.
    hover: Option<u32>,
    width: u32,
    height: u32,
    layers: u32,
    frames: u64,
    next_frame: u64,
    /// The last frame the launcher allows (paced views: the display's requests; else the last).
    allowed: Option<u64>,
    finished_sent: bool,
    /// Releases of buffers that were not in flight (ignored).
    stray_releases: u64,
    pool: Pool,
    /// The scene file drawn instead of the built-in scene, if any.
    scene: Option<crate::scene::ScenePlan>,
    /// Whether to draw only what changed (`ViewStart::damage`).
    damage: bool,
    /// Whether the launcher asks for each frame (`ViewStart::paced`): then a frame's wake-up of
    /// the launcher may be put off a moment, for the next view's ([`Device::send_frame`]).
    paced: bool,
    /// Each layer's last paint (its previous submission), for its content damage.
    last_paint: Vec<Option<Paint>>,
    /// Each layer's recent submissions, for buffer age.
    history: Vec<History>,
    /// Each layer's previous submission to the current renderer (its frame), which the next
    /// one's damage is relative to.
    sent: Vec<Option<u64>>,
    /// The window's overlay, when the view has one (`ViewStart::overlay`).
    overlay: Option<Overlay>,
    /// The version of the scene drawn (`ViewCommand::SceneUpdate`), which every frame names.
    scene_version: u64,
    /// A scene update waiting for its images, with those received so far.
    scene_pending: Option<PendingUpdate>,
}

impl View {
    /// The view `start` describes, drawing `scene` (received and prepared already), its frames'
    /// fds sent with `fds`.
    pub(crate) fn new(
        start: ViewStart,
        scene: Option<crate::scene::ScenePlan>,
        fds: FdSender,
    ) -> anyhow::Result<Self> {
        let window = ExportWindow::of_view(start.window)
            .with_context(|| format!("{} names export window {}", start.view, start.window))?;
        if let Some(s) = &scene {
            if let Some(slot) = s.slots().find(|slot| *slot >= start.layers) {
                bail!(
                    "{} has {} layers, its scene has a layer in slot {slot}",
                    start.view,
                    start.layers,
                );
            }
        }
        // The overlay is one more layer, after the scene's.
        let layers = start
            .layers
            .checked_add(u32::from(start.overlay))
            .context("too many layers")?;
        let overlay = start.overlay.then_some(Overlay {
            layer: start.layers,
            shown: None,
        });
        Ok(Self {
            id: start.view,
            share: crate::fair::Share::default(),
            window_index: start.window,
            window,
            renderer_pid: start.renderer.renderer_pid,
            fds,
            generation: start.generation,
            moves: triptych_scene::Moves {
                offsets: start.moves,
            },
            hover: None,
            width: start.width,
            height: start.height,
            layers,
            frames: start.frames,
            next_frame: start.first_frame,
            allowed: if start.paced {
                None
            } else {
                start.frames.checked_sub(1)
            },
            finished_sent: false,
            stray_releases: 0,
            pool: Pool::new(layers, start.pool_per_layer),
            scene,
            damage: start.damage,
            paced: start.paced,
            last_paint: vec![None; layers as usize],
            history: (0..layers).map(|_| History::default()).collect(),
            sent: vec![None; layers as usize],
            overlay,
            scene_version: start.scene_version,
            scene_pending: None,
        })
    }

    /// The frames rendered for it so far (its next frame's number).
    pub(crate) fn next_frame(&self) -> u64 {
        self.next_frame
    }

    /// The frames of its run.
    pub(crate) fn frames(&self) -> u64 {
        self.frames
    }

    /// Fences are kept private from now on: its sender sends planes only.
    pub(crate) fn keep_fences_private(&mut self) {
        self.fds.keep_fences_private();
    }

    /// Whether it has a frame to render now: one the launcher allows, and a free buffer for
    /// every layer.
    pub(crate) fn can_render(&self) -> bool {
        self.next_frame < self.frames
            && self.allowed.is_some_and(|a| self.next_frame <= a)
            && (0..self.layers).all(|l| self.pool.free_slot(l).is_some())
    }

    /// Reports its last frame rendered, once.
    pub(crate) fn report_finished(&mut self, dev: &Device) {
        if self.next_frame >= self.frames && !self.finished_sent {
            self.finished_sent = true;
            let _ = dev.events.send(&GpuToLauncher::Finished {
                view: self.id,
                frames: self.next_frame,
            });
        }
    }

    /// Forgets what layer `layer` showed: a layer that was removed, whose slot's next layer is
    /// drawn and described whole.
    fn forget_layer(&mut self, layer: u32) {
        let l = layer as usize;
        if let Some(p) = self.last_paint.get_mut(l) {
            *p = None;
        }
        if let Some(s) = self.sent.get_mut(l) {
            *s = None;
        }
    }

    /// Forgets every layer's content: the next frame draws and describes every layer whole.
    fn forget_contents(&mut self) {
        self.last_paint.iter_mut().for_each(|p| *p = None);
        self.pool.forget_contents();
    }

    /// A release the launcher relays: the renderer gave the buffer back. The launcher relays
    /// only releases of buffers the renderer held, so one of a buffer not in flight (which a
    /// new renderer's `release_all` may have freed already) frees nothing and is only counted.
    fn release(&mut self, dev: &Device, buffer: ipc_protocol::BufferId) {
        if !dev.takes_releases {
            return;
        }
        if let Err(e) = self.pool.release(buffer) {
            self.stray_releases += 1;
            if self.stray_releases == 1 {
                tracing::warn!(view = self.id.0, error = %e, "a release of a buffer not in flight (ignored; more are counted)");
            }
        }
    }

    /// Handles a command for this view, with the fds that came with it.
    pub(crate) fn command(
        &mut self,
        dev: &mut Device,
        c: ViewCommand,
        mut fds: Vec<std::os::fd::OwnedFd>,
    ) -> anyhow::Result<()> {
        match c {
            ViewCommand::Release(buffer) => self.release(dev, buffer),
            ViewCommand::NewRenderer(link) => self.new_renderer(dev, link)?,
            ViewCommand::Moves(m) => self.moves = triptych_scene::Moves { offsets: m },
            ViewCommand::Hover(h) => self.hover = h,
            ViewCommand::Overlay(text) => self.set_overlay(dev, text)?,
            ViewCommand::Resize(r) => {
                tracing::info!(
                    view = self.id.0,
                    width = r.width,
                    height = r.height,
                    generation = r.generation,
                    "resized"
                );
                self.width = r.width;
                self.height = r.height;
                self.generation = r.generation;
                // Layer sizes and text rasterization may change with the output: start over.
                self.forget_contents();
                if let Some(s) = &mut self.scene {
                    // Sizes relative to the output change: text is rasterized anew.
                    s.resize(&mut dev.gl, r.width, r.height)
                        .context("preparing the scene for the new size")?;
                }
            }
            ViewCommand::Render { up_to } => {
                self.allowed = Some(self.allowed.map_or(up_to, |a| a.max(up_to)));
            }
            ViewCommand::SceneUpdate(update) => {
                if self.scene.is_none() {
                    bail!("a scene update for a view without a scene file");
                }
                if self.scene_pending.is_some() {
                    bail!("a scene update before the images of the one before");
                }
                self.scene_pending = Some(PendingUpdate {
                    update,
                    pngs: Vec::new(),
                    pixels: Vec::new(),
                });
                self.scene_update_ready(dev)?;
            }
            ViewCommand::Pixels(p) => {
                let Some(pending) = self.scene_pending.as_mut() else {
                    bail!("the pixels of layer {} without a scene update", p.slot);
                };
                if pending.pngs.len() < pending.update.images.len() {
                    bail!("the pixels of layer {} before the update's images", p.slot);
                }
                let want = pending.update.pixels.get(pending.pixels.len()).copied();
                if want != Some(p.slot) {
                    bail!(
                        "the pixels of layer {} where the update names {want:?}",
                        p.slot
                    );
                }
                let fd = fds.pop().context("pixels without their fd")?;
                let rows = crate::scene::read_rect(fd, &p)?;
                pending.pixels.push((p, rows));
                self.scene_update_ready(dev)?;
            }
            ViewCommand::SceneImage { layer } => {
                let Some(pending) = self.scene_pending.as_mut() else {
                    bail!("the image of layer {layer} without a scene update");
                };
                let want = pending.update.images.get(pending.pngs.len()).copied();
                if want != Some(layer) {
                    bail!("the image of layer {layer} where the update names {want:?}");
                }
                let fd = fds.pop().context("a scene image without its fd")?;
                pending
                    .pngs
                    .push((layer, crate::scene::read_png(fd, layer)?));
                self.scene_update_ready(dev)?;
            }
        }
        Ok(())
    }

    /// Draws the pending scene update once all of its images and pixels are in.
    fn scene_update_ready(&mut self, dev: &mut Device) -> anyhow::Result<()> {
        let complete = self.scene_pending.as_ref().is_some_and(|p| {
            p.pngs.len() == p.update.images.len() && p.pixels.len() == p.update.pixels.len()
        });
        if !complete {
            return Ok(());
        }
        let Some(PendingUpdate {
            update,
            pngs,
            pixels,
        }) = self.scene_pending.take()
        else {
            return Ok(());
        };
        let n = self.layers - u32::from(self.overlay.is_some());
        if let Some(slot) = update.slots.iter().find(|s| **s >= n) {
            bail!("a scene update with a layer in slot {slot}, outside the {n} of this view");
        }
        let Some(plan) = self.scene.as_mut() else {
            bail!("a scene update for a view without a scene file");
        };
        plan.update(&mut dev.gl, &update, pngs, pixels)
            .with_context(|| format!("drawing scene version {}", update.version))?;
        tracing::debug!(view = self.id.0, version = update.version, "scene updated");
        self.scene_version = update.version;
        Ok(())
    }

    /// The overlay's text from now on. Text out of bounds is refused (the overlay keeps what it
    /// showed); the same text again changes nothing, so its layer's content stays undamaged.
    fn set_overlay(&mut self, dev: &mut Device, text: Option<OverlayText>) -> anyhow::Result<()> {
        let Some(overlay) = self.overlay.as_ref() else {
            tracing::warn!("overlay text for a view without an overlay was ignored");
            return Ok(());
        };
        let Some(OverlayText { lines }) = text else {
            if let Some(o) = self.overlay.as_mut() {
                o.shown = None;
            }
            return Ok(());
        };
        if let Err(e) = triptych_scene::overlay::check(&lines) {
            tracing::warn!(error = %e, "overlay text refused; the overlay is unchanged");
            return Ok(());
        }
        if overlay.shown.as_ref().is_some_and(|(l, _)| *l == lines) {
            return Ok(());
        }
        // Rasterized here, inside the sandbox: the text came over a socket.
        let texels = match triptych_scene::overlay::rasterize(&lines) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "the overlay cannot be drawn; it stays hidden");
                return Ok(());
            }
        };
        let uploaded = dev
            .gl
            .upload_target(texels.width, texels.height, &texels.pixels)
            .context("uploading the overlay")?;
        if let Some(o) = self.overlay.as_mut() {
            o.shown = Some((lines, Rc::new(uploaded)));
        }
        Ok(())
    }

    /// Tells the launcher every frame of the view from now on is for the renderer it named
    /// last.
    pub(crate) fn serving(&self, dev: &Device) -> anyhow::Result<()> {
        dev.events
            .send(&GpuToLauncher::Serving {
                view: self.id,
                renderer: self.renderer_pid,
            })
            .context("telling the launcher the renderer is served")
    }

    /// The renderer was replaced: whatever the old one held is free again. The launcher is told
    /// so before the first frame for the new one (`Serving`): what was sent before is for the
    /// old one, and dropped.
    fn new_renderer(&mut self, dev: &mut Device, link: RendererLink) -> anyhow::Result<()> {
        name_ptracer(link.renderer_pid)?;
        self.fds = dev
            .handover
            .sender_for(link.renderer_pid)
            .context("taking the socket to the new renderer")?;
        if dev.private_fences {
            self.fds.keep_fences_private();
        }
        self.pool.release_all();
        // The new renderer holds nothing: every layer's next description is whole. The buffers
        // are redrawn whole too: a DMA-BUF can be mapped writable by whoever holds its fd, and
        // what the old renderer may have written into them must not outlive it.
        self.sent.iter_mut().for_each(|s| *s = None);
        self.pool.forget_contents();
        self.renderer_pid = link.renderer_pid;
        self.next_frame = link.resume_from;
        self.finished_sent = false;
        self.serving(dev)?;
        tracing::info!(
            view = self.id.0,
            renderer = link.renderer_pid,
            resume_from = link.resume_from,
            "producing for a new renderer"
        );
        Ok(())
    }

    /// Renders, exports, sends and completes one frame.
    pub(crate) fn render_frame(&mut self, dev: &mut Device) -> anyhow::Result<()> {
        let frame = self.next_frame;
        let (w, h, n) = (self.width, self.height, self.layers);
        // The layers of the scene, without the overlay.
        let scene_n = n - u32::from(self.overlay.is_some());
        let t0 = triptych_trace::now_ns();
        let mut layers = Vec::with_capacity(n as usize);
        let mut used = Vec::with_capacity(n as usize);
        let mut export_ns = 0u64;
        let (mut redrawn_px, mut layer_px) = (0u64, 0u64);
        let mut scene_layers = self.scene.as_ref().map(|s| s.layers(frame, w, h));
        for layer in 0..n {
            let overlay = self
                .overlay
                .as_ref()
                .filter(|o| o.layer == layer)
                .map(Overlay::layer);
            let is_overlay = overlay.is_some();
            let scene_layer = match (overlay.is_some(), scene_layers.as_mut()) {
                (false, Some(sl)) => match sl.iter().position(|l| l.slot == layer) {
                    Some(i) => Some(sl.swap_remove(i)),
                    None => {
                        // No layer in this slot now: the next one in it starts afresh.
                        self.forget_layer(layer);
                        continue;
                    }
                },
                _ => None,
            };
            let drawn = match (overlay, scene_layer) {
                (Some(o), _) => o,
                (None, Some(mut l)) => {
                    // Layers dragged in the window move scene layers the same way.
                    if let Some((dx, dy)) = self.moves.offsets.get(layer as usize) {
                        l.placement.x = l.placement.x.saturating_add(*dx);
                        l.placement.y = l.placement.y.saturating_add(*dy);
                    }
                    (l.width, l.height, l.paint, l.placement)
                }
                (None, None) => {
                    let (lw, lh) = triptych_scene::layer_size(layer, w, h);
                    let p =
                        triptych_scene::placement_moved(frame, layer, scene_n, w, h, &self.moves);
                    let content = triptych_scene::layer_content(frame, layer, w, h);
                    let placement = LayerPlacement {
                        x: p.x,
                        y: p.y,
                        z: p.z,
                        opacity: p.opacity,
                    };
                    (lw, lh, Paint::Rects(content), placement)
                }
            };
            let (lw, lh, paint, placement) = drawn;
            // The overlay is never outlined: the pointer picks scene layers only.
            let hovered = self.hover == Some(layer) && !is_overlay;
            let paint = match paint {
                Paint::Rects(c) if hovered => Paint::Rects(triptych_scene::highlighted(c)),
                p if hovered => Paint::Outlined(Box::new(p)),
                p => p,
            };
            let l = layer as usize;
            // What changed since the layer's previous submission, whatever buffer took it.
            let changed = match (self.damage, self.last_paint.get(l).and_then(Option::as_ref)) {
                (true, Some(before)) => content_damage(before, &paint),
                _ => Region::full(lw, lh),
            };
            let seq = match self.history.get_mut(l) {
                Some(h) => h.push(changed.clone()),
                None => bail!("layer {layer} has no history"),
            };
            let slot = self
                .pool
                .free_slot(layer)
                .context("no free buffer although one was checked")?;
            // A buffer of another size (from before a resize) is retired: its slot gets a new
            // generation, so the renderer sees a new buffer, not a changed one.
            if self
                .pool
                .slot(slot)
                .and_then(|s| s.buffer.as_ref())
                .is_some_and(|b| (b.width, b.height) != (lw, lh))
            {
                self.pool.retire(slot);
            }
            let id = self.pool.id(slot);
            let s = self.pool.slot_mut(slot).context("pool slot vanished")?;
            if s.buffer.is_none() {
                s.held = None;
                s.buffer = Some(
                    dev.exporter
                        .allocate(&mut dev.gl, id, self.window, lw, lh)
                        .context("allocating a buffer")?,
                );
            }
            // Buffer age: all this buffer misses of the submission, and nothing more.
            let redraw = match (self.damage, self.history.get(l)) {
                (true, Some(h)) => h.redraw(s.held, seq, lw, lh),
                _ => Region::full(lw, lh),
            };
            redrawn_px += redraw.area();
            layer_px += u64::from(lw) * u64::from(lh);
            // Known again only once the work is complete (`Pool::completed`).
            s.held = None;
            s.drawing = Some(seq);
            let buf = s.buffer.as_mut().context("buffer just allocated")?;
            let sub = dev
                .exporter
                .render(&mut dev.gl, buf, &paint, &redraw)
                .context("rendering a layer")?;
            let e0 = triptych_trace::now_ns();
            let desc = export::describe(
                buf,
                dev.exporter.kind(),
                dev.exporter.fence_kind(),
                &sub.fence,
            )?;
            export_ns += triptych_trace::now_ns() - e0;
            self.pool.submit(slot, sub);
            let since = self.sent.get(l).copied().flatten();
            let damage: Vec<Rect> = match since {
                Some(_) if self.damage => changed.rects().to_vec(),
                _ => vec![Rect::full(lw, lh)],
            };
            if let Some(s) = self.sent.get_mut(l) {
                *s = Some(frame);
            }
            if let Some(p) = self.last_paint.get_mut(l) {
                *p = Some(paint);
            }
            layers.push(LayerMsg {
                layer,
                placement,
                buffer: desc,
                damage,
                damage_since: since,
            });
            used.push(slot);
        }
        let mut fired = maybe_fire(&mut dev.faults, FaultPoint::GpuRender, frame, &dev.events);
        let t1 = triptych_trace::now_ns();
        // Describing is interleaved with drawing; the trace shows the two as consecutive spans
        // of their summed durations so the stages of a frame tile its time.
        let render_end = t1 - export_ns.min(t1 - t0);
        let mut args = Args::new();
        args.insert("layers".into(), n.into());
        args.insert("redrawn_px".into(), redrawn_px.into());
        args.insert("layer_px".into(), layer_px.into());
        // A frame of a view other than the first is that view's in every span (its track).
        let of_view = || {
            let mut a = Args::new();
            if self.id.0 != 0 {
                a.insert(triptych_trace::VIEW_ARG.into(), self.id.0.into());
            }
            a
        };
        args.extend(of_view());
        dev.rec
            .record_span(Stage::GpuRender, Some(frame), t0, render_end, args);
        dev.rec
            .record_span(Stage::Export, Some(frame), render_end, t1, of_view());
        let mut msg = FrameMsg {
            epoch: dev.epoch,
            generation: self.generation,
            frame,
            sent_ns: triptych_trace::now_ns(),
            scene_version: self.scene_version,
            layers,
        };
        dev.hooks.sending(&mut msg);
        dev.rec
            .record_span(Stage::Send, Some(frame), t1, msg.sent_ns, of_view());
        // With SCM_RIGHTS the fds go first, on their own socket to the renderer.
        if let Err(e) = self.fds.send_frame(dev.epoch, frame, &self.pool, &used) {
            tracing::warn!(view = self.id.0, frame, error = %e, "could not send the frame's fds to the renderer");
        }
        // The launcher checks the description and hands it on to the renderer. A launcher that
        // does not take it within the channel's wait is gone or wedged: this process ends.
        dev.send_frame(
            &GpuToLauncher::Frame {
                view: self.id,
                msg: msg.clone(),
            },
            self.paced,
        )
        .with_context(|| format!("sending frame {frame} of {} to the launcher", self.id))?;
        if dev.takes_releases && !dev.hooks.takes_releases(frame) {
            tracing::warn!(frame, "no longer taking releases");
            dev.takes_releases = false;
        }
        dev.hooks.sent(Sent {
            msg: &msg,
            events: &dev.events,
            renderer_pid: self.renderer_pid,
            view: self.id,
        });
        self.next_frame += 1;
        if dev.rec.is_enabled() {
            let in_flight = self.pool.in_flight() as f64;
            dev.rec.counter("buffers_in_flight", in_flight);
            dev.rec.counter(
                "pool_occupancy",
                in_flight / f64::from(self.pool.len().max(1) as u32),
            );
        }
        fired = fired.or(maybe_fire(
            &mut dev.faults,
            FaultPoint::GpuAfterExport,
            frame,
            &dev.events,
        ));
        match fired {
            Some(FaultAction::StopFences) => dev.stop_fences = true,
            Some(FaultAction::LateFences) => {
                tracing::warn!(
                    frame,
                    late_ms = LATE_FENCES_MS,
                    "injected fault: completing this frame late"
                );
                std::thread::sleep(Duration::from_millis(LATE_FENCES_MS));
            }
            _ => {}
        }
        if dev.stop_fences {
            tracing::warn!(
                frame,
                "injected fault: not completing frames (fences stay unsignalled)"
            );
            return Ok(());
        }
        self.complete_frame(dev, &used)
    }

    /// Completes the work of the frame whose layers are in `used`, signalling its fences.
    fn complete_frame(&mut self, dev: &mut Device, used: &[u32]) -> anyhow::Result<()> {
        for &slot in used {
            let s = self.pool.slot_mut(slot).context("pool slot vanished")?;
            if let (Some(buf), Some(sub)) = (s.buffer.as_mut(), s.in_flight.as_mut()) {
                dev.exporter
                    .complete(&mut dev.gl, buf, sub)
                    .context("completing a layer")?;
            }
            self.pool.completed(slot);
        }
        dev.exporter.frame_completed();
        Ok(())
    }
}
