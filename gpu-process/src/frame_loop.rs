//! The GPU process's frame loop (`Producer`): for each frame, take a free pool buffer per
//! layer (waiting for releases when there is none), draw the layer, send the frame's
//! description to the launcher, which hands it on to the renderer, and complete each layer's
//! work, which signals its fence. Between frames it serves the launcher's commands (resizes,
//! moves, hover, overlay text, a new renderer, and the renderer's releases, which the launcher
//! relays). After the last frame it keeps serving them until the launcher says `Shutdown`.
//!
//! This process sends the renderer nothing directly: the launcher sees every frame and every
//! release ([`ipc_protocol::relay`]), so neither child can claim anything about the other.

use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context};
use crossbeam_channel::{select, Receiver};
use ipc_protocol::channel::{self, Delivery, Sender};
use ipc_protocol::damage::{Rect, Region};
use ipc_protocol::messages::{
    Fault, FaultAction, FaultPoint, FrameMsg, GpuStart, GpuToLauncher, LauncherToGpu, LayerMsg,
    LayerPlacement, OverlayText, RendererLink, SceneUpdate, LATE_FENCES_MS,
};
use triptych_trace::{Args, Recorder, Stage};

use crate::damage::{content_damage, History};
use crate::export::{self, Exporter};
use crate::gl::{GlContext, Paint};
use crate::hooks::{Hooks, Running, Sent};
use crate::pool::Pool;
use crate::sandbox::name_ptracer;

/// Fires the fault due at `point` for `frame`, if any, telling the launcher first. Returns true
/// when the fault is to stop signalling fences.
pub(crate) fn maybe_fire(
    faults: &mut Vec<Fault>,
    point: FaultPoint,
    frame: u64,
    events: &Sender<GpuToLauncher>,
) -> Option<FaultAction> {
    ipc_protocol::fault::fire_due(faults, point, frame, |at_ns, fault| {
        let _ = events.send(&GpuToLauncher::FaultFired { at_ns, fault });
    })
}

/// The PNG bytes of one image layer, by slot.
type ScenePng = (u32, Vec<u8>);

/// A scene update waiting for its images and pixels, with those received so far.
struct PendingUpdate {
    update: SceneUpdate,
    pngs: Vec<ScenePng>,
    /// The rows of each pixels layer the update names: the whole layer, or a rectangle.
    pixels: Vec<(ipc_protocol::messages::PixelsUpdate, Vec<u8>)>,
}

/// The frame loop's state.
pub(crate) struct Producer {
    pub(crate) epoch: u64,
    /// Where a program built on the library acts (`crate::hooks`); nothing in the product.
    hooks: Box<dyn Hooks>,
    /// The renderer served (the pid of its link).
    renderer_pid: u32,
    /// The frame size's generation (see `LauncherToGpu::Resize`).
    generation: u32,
    /// Layers the user moved.
    moves: triptych_scene::Moves,
    /// The layer under the pointer, drawn outlined.
    hover: Option<u32>,
    width: u32,
    height: u32,
    layers: u32,
    pub(crate) frames: u64,
    next_frame: u64,
    /// The last frame the launcher allows (paced runs: the display's requests; else the last).
    allowed: Option<u64>,
    faults: Vec<Fault>,
    stop_fences: bool,
    finished_sent: bool,
    gl: GlContext,
    exporter: Box<dyn Exporter>,
    pub(crate) events: Sender<GpuToLauncher>,
    /// Whether the launcher's releases are taken (a hook may stop it, as an attacker would).
    takes_releases: bool,
    /// Releases of buffers that were not in flight (ignored).
    stray_releases: u64,
    pool: Pool,
    rec: Recorder,
    /// Sends each frame's fds to the renderer with the SCM_RIGHTS transport.
    fds: crate::transport::FdSender,
    /// The scene file drawn instead of the built-in scene, if any.
    scene: Option<crate::scene::ScenePlan>,
    /// Whether to draw only what changed (`GpuStart::damage`).
    damage: bool,
    /// Each layer's last paint (its previous submission), for its content damage.
    last_paint: Vec<Option<Paint>>,
    /// Each layer's recent submissions, for buffer age.
    history: Vec<History>,
    /// Each layer's previous submission to the current renderer (its frame), which the next
    /// one's damage is relative to.
    sent: Vec<Option<u64>>,
    /// The window's overlay, when the run has one (`GpuStart::overlay`).
    overlay: Option<Overlay>,
    /// The version of the scene drawn (`LauncherToGpu::SceneUpdate`), which every frame names.
    scene_version: u64,
    /// A scene update waiting for its images, with those received so far.
    scene_pending: Option<PendingUpdate>,
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

/// What draws the frames: the GL context, the exporter it draws into, and the scene, if a
/// scene file was given.
pub(crate) struct Drawing {
    pub(crate) gl: GlContext,
    pub(crate) exporter: Box<dyn Exporter>,
    pub(crate) scene: Option<crate::scene::ScenePlan>,
}

impl Producer {
    pub(crate) fn new(
        start: GpuStart,
        drawing: Drawing,
        events: Sender<GpuToLauncher>,
        fds: crate::transport::FdSender,
        hooks: Box<dyn Hooks>,
    ) -> anyhow::Result<Self> {
        let Drawing {
            gl,
            exporter,
            scene,
        } = drawing;
        if let Some(s) = &scene {
            if let Some(slot) = s.slots().find(|slot| *slot >= start.layers) {
                bail!(
                    "Start says {} layers, the scene has a layer in slot {slot}",
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
        let pool = Pool::new(layers, start.pool_per_layer);
        let rec = if start.trace {
            Recorder::new(std::process::id())
        } else {
            Recorder::disabled()
        };
        Ok(Self {
            hooks,
            renderer_pid: start.renderer.renderer_pid,
            epoch: start.epoch,
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
            faults: start.faults,
            stop_fences: false,
            finished_sent: false,
            gl,
            exporter,
            events,
            takes_releases: true,
            stray_releases: 0,
            pool,
            rec,
            fds,
            scene,
            damage: start.damage,
            last_paint: vec![None; layers as usize],
            history: (0..layers).map(|_| History::default()).collect(),
            sent: vec![None; layers as usize],
            overlay,
            scene_version: start.scene_version,
            scene_pending: None,
        })
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
    fn release(&mut self, buffer: ipc_protocol::BufferId) {
        if !self.takes_releases {
            return;
        }
        if let Err(e) = self.pool.release(buffer) {
            self.stray_releases += 1;
            if self.stray_releases == 1 {
                tracing::warn!(error = %e, "a release of a buffer not in flight (ignored; more are counted)");
            }
        }
    }

    /// Handles a launcher command; false means stop.
    fn command(&mut self, c: Delivery<LauncherToGpu>) -> anyhow::Result<bool> {
        let (c, mut fds) =
            c.map_err(|v| anyhow::anyhow!("a bad command from the launcher: {v}"))?;
        match c {
            LauncherToGpu::Shutdown => return Ok(false),
            LauncherToGpu::Release(buffer) => self.release(buffer),
            LauncherToGpu::Ping(n) => self
                .events
                .send(&GpuToLauncher::Pong(n))
                .context("answering a ping")?,
            LauncherToGpu::NewRenderer(link) => self.new_renderer(link)?,
            LauncherToGpu::PrivateFences => {
                if self.hooks.keeps_fences_private() && self.exporter.keep_fences_private() {
                    self.fds.keep_fences_private();
                    self.events
                        .send(&GpuToLauncher::PrivateFences)
                        .context("answering PrivateFences")?;
                }
            }
            LauncherToGpu::Moves(m) => self.moves = triptych_scene::Moves { offsets: m },
            LauncherToGpu::Hover(h) => self.hover = h,
            LauncherToGpu::Overlay(text) => self.set_overlay(text)?,
            LauncherToGpu::Resize(r) => {
                tracing::info!(
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
                    s.resize(&mut self.gl, r.width, r.height)
                        .context("preparing the scene for the new size")?;
                }
            }
            LauncherToGpu::Render { up_to } => {
                self.allowed = Some(self.allowed.map_or(up_to, |a| a.max(up_to)));
            }
            LauncherToGpu::Start(_)
            | LauncherToGpu::Prepare(_)
            | LauncherToGpu::Mailbox
            | LauncherToGpu::Progress
            | LauncherToGpu::Commands(_) => {
                tracing::warn!("a second Start, Prepare, Mailbox, Progress or Commands was ignored")
            }
            LauncherToGpu::SceneUpdate(update) => {
                if self.scene.is_none() {
                    bail!("a scene update for a run without a scene file");
                }
                if self.scene_pending.is_some() {
                    bail!("a scene update before the images of the one before");
                }
                self.scene_pending = Some(PendingUpdate {
                    update,
                    pngs: Vec::new(),
                    pixels: Vec::new(),
                });
                self.scene_update_ready()?;
            }
            LauncherToGpu::Pixels(p) => {
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
                self.scene_update_ready()?;
            }
            LauncherToGpu::SceneImage { layer } => {
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
                self.scene_update_ready()?;
            }
        }
        Ok(true)
    }

    /// Draws the pending scene update once all of its images and pixels are in.
    fn scene_update_ready(&mut self) -> anyhow::Result<()> {
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
            bail!("a scene update with a layer in slot {slot}, outside the {n} of this run");
        }
        let Some(plan) = self.scene.as_mut() else {
            bail!("a scene update for a run without a scene file");
        };
        plan.update(&mut self.gl, &update, pngs, pixels)
            .with_context(|| format!("drawing scene version {}", update.version))?;
        tracing::debug!(version = update.version, "scene updated");
        self.scene_version = update.version;
        Ok(())
    }

    /// The overlay's text from now on. Text out of bounds is refused (the overlay keeps what it
    /// showed); the same text again changes nothing, so its layer's content stays undamaged.
    fn set_overlay(&mut self, text: Option<OverlayText>) -> anyhow::Result<()> {
        let Some(overlay) = self.overlay.as_ref() else {
            tracing::warn!("overlay text for a run without an overlay was ignored");
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
        let uploaded = self
            .gl
            .upload_target(texels.width, texels.height, &texels.pixels)
            .context("uploading the overlay")?;
        if let Some(o) = self.overlay.as_mut() {
            o.shown = Some((lines, Rc::new(uploaded)));
        }
        Ok(())
    }

    /// The renderer was replaced: whatever the old one held is free again. The launcher is told
    /// so before the first frame for the new one (`Serving`): what was sent before is for the
    /// old one, and dropped.
    fn new_renderer(&mut self, link: RendererLink) -> anyhow::Result<()> {
        name_ptracer(link.renderer_pid)?;
        self.fds
            .attach(link.renderer_pid)
            .context("taking the socket to the new renderer")?;
        self.pool.release_all();
        // The new renderer holds nothing: every layer's next description is whole. The buffers
        // are redrawn whole too: a DMA-BUF can be mapped writable by whoever holds its fd, and
        // what the old renderer may have written into them must not outlive it.
        self.sent.iter_mut().for_each(|s| *s = None);
        self.pool.forget_contents();
        self.renderer_pid = link.renderer_pid;
        self.next_frame = link.resume_from;
        self.finished_sent = false;
        self.events
            .send(&GpuToLauncher::Serving {
                renderer: link.renderer_pid,
            })
            .context("telling the launcher the new renderer is served")?;
        tracing::info!(
            renderer = link.renderer_pid,
            resume_from = link.resume_from,
            "producing for a new renderer"
        );
        Ok(())
    }

    /// Tells the hooks the frame loop starts (`Started` was reported).
    pub(crate) fn running(&mut self, info: &ipc_protocol::messages::GpuInfo) {
        self.hooks.running(Running {
            events: &self.events,
            epoch: self.epoch,
            frames: self.frames,
            info,
        });
    }

    pub(crate) fn ship_trace(&mut self) {
        if !self.rec.is_empty() {
            let (batches, dropped) = channel::split_to_fit(self.rec.drain(), GpuToLauncher::Trace);
            if dropped > 0 {
                tracing::warn!(dropped, "trace events too large to ship were dropped");
            }
            for b in batches {
                let _ = self.events.send(&b);
            }
        }
    }

    /// Runs until `Shutdown`: renders while there are frames to render and buffers free to
    /// render them into; otherwise waits for the launcher's commands and relayed releases.
    pub(crate) fn run(
        &mut self,
        commands: &Receiver<Delivery<LauncherToGpu>>,
    ) -> anyhow::Result<()> {
        loop {
            // A GPU that stopped signalling is hung for good: it renders nothing more.
            let can_render = !self.stop_fences
                && self.next_frame < self.frames
                && self.allowed.is_some_and(|a| self.next_frame <= a)
                && (0..self.layers).all(|l| self.pool.free_slot(l).is_some());
            if can_render {
                if let Ok(c) = commands.try_recv() {
                    if !self.command(c)? {
                        return Ok(());
                    }
                    continue;
                }
                self.render_frame()?;
                if self.rec.len() >= 512 {
                    self.ship_trace();
                }
                continue;
            }
            if self.next_frame >= self.frames && !self.finished_sent {
                self.finished_sent = true;
                self.ship_trace();
                let _ = self.events.send(&GpuToLauncher::Finished {
                    frames: self.next_frame,
                });
            }
            select! {
                recv(commands) -> c => match c {
                    Ok(c) => if !self.command(c)? { return Ok(()) },
                    Err(_) => return Ok(()),
                },
                default(Duration::from_millis(500)) => self.ship_trace(),
            }
        }
    }

    /// Renders, exports, sends and completes one frame.
    fn render_frame(&mut self) -> anyhow::Result<()> {
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
                    self.exporter
                        .allocate(&mut self.gl, id, lw, lh)
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
            let sub = self
                .exporter
                .render(&mut self.gl, buf, &paint, &redraw)
                .context("rendering a layer")?;
            let e0 = triptych_trace::now_ns();
            let desc = export::describe(
                buf,
                self.exporter.kind(),
                self.exporter.fence_kind(),
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
        let mut fired = maybe_fire(&mut self.faults, FaultPoint::GpuRender, frame, &self.events);
        let t1 = triptych_trace::now_ns();
        // Describing is interleaved with drawing; the trace shows the two as consecutive spans
        // of their summed durations so the stages of a frame tile its time.
        let render_end = t1 - export_ns.min(t1 - t0);
        let mut args = Args::new();
        args.insert("layers".into(), n.into());
        args.insert("redrawn_px".into(), redrawn_px.into());
        args.insert("layer_px".into(), layer_px.into());
        self.rec
            .record_span(Stage::GpuRender, Some(frame), t0, render_end, args);
        self.rec
            .record_span(Stage::Export, Some(frame), render_end, t1, Args::new());
        let mut msg = FrameMsg {
            epoch: self.epoch,
            generation: self.generation,
            frame,
            sent_ns: triptych_trace::now_ns(),
            scene_version: self.scene_version,
            layers,
        };
        self.hooks.sending(&mut msg);
        self.rec
            .record_span(Stage::Send, Some(frame), t1, msg.sent_ns, Args::new());
        // With SCM_RIGHTS the fds go first, on their own socket to the renderer.
        if let Err(e) = self.fds.send_frame(self.epoch, frame, &self.pool, &used) {
            tracing::warn!(frame, error = %e, "could not send the frame's fds to the renderer");
        }
        // The launcher checks the description and hands it on to the renderer. A launcher that
        // does not take it within the channel's wait is gone or wedged: this process ends.
        self.events
            .send(&GpuToLauncher::Frame(msg.clone()))
            .with_context(|| format!("sending frame {frame} to the launcher"))?;
        if self.takes_releases && !self.hooks.takes_releases(frame) {
            tracing::warn!(frame, "no longer taking releases");
            self.takes_releases = false;
        }
        self.hooks.sent(Sent {
            msg: &msg,
            events: &self.events,
            renderer_pid: self.renderer_pid,
        });
        self.next_frame += 1;
        if self.rec.is_enabled() {
            let in_flight = self.pool.in_flight() as f64;
            self.rec.counter("buffers_in_flight", in_flight);
            self.rec.counter(
                "pool_occupancy",
                in_flight / f64::from(self.pool.len().max(1) as u32),
            );
        }
        fired = fired.or(maybe_fire(
            &mut self.faults,
            FaultPoint::GpuAfterExport,
            frame,
            &self.events,
        ));
        match fired {
            Some(FaultAction::StopFences) => self.stop_fences = true,
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
        if self.stop_fences {
            tracing::warn!(
                frame,
                "injected fault: not completing frames (fences stay unsignalled)"
            );
            return Ok(());
        }
        self.complete_frame(&used)
    }

    /// Completes the work of the frame whose layers are in `used`, signalling its fences.
    fn complete_frame(&mut self, used: &[u32]) -> anyhow::Result<()> {
        for &slot in used {
            let s = self.pool.slot_mut(slot).context("pool slot vanished")?;
            if let (Some(buf), Some(sub)) = (s.buffer.as_mut(), s.in_flight.as_mut()) {
                self.exporter
                    .complete(&mut self.gl, buf, sub)
                    .context("completing a layer")?;
            }
            self.pool.completed(slot);
        }
        self.exporter.frame_completed();
        Ok(())
    }
}
