//! The GPU process's frame loop (`Producer`): for each frame, take a free pool buffer per
//! layer (waiting for releases when there is none), draw the layer, send the frame's
//! descriptions to the renderer, and complete each layer's work, which signals its fence.
//! Between frames it serves the launcher's commands (resizes, moves, hover, overlay text, a new
//! renderer) and the renderer's releases. After the last frame it keeps serving releases until
//! the launcher says `Shutdown`.

use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context};
use crossbeam_channel::{select, Receiver};
use ipc_protocol::channel::{self, Delivery, Sender};
use ipc_protocol::damage::{Rect, Region};
use ipc_protocol::messages::{
    Fault, FaultPoint, FrameMsg, GpuStart, GpuToLauncher, GpuToRenderer, LauncherToGpu, LayerMsg,
    LayerPlacement, OverlayText, RendererClaim, RendererLink, RendererToGpu,
};
use ipc_protocol::seal::{FrameSender, SealKey};
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
) -> bool {
    ipc_protocol::fault::fire_due(faults, point, frame, |at_ns, fault| {
        let _ = events.send(&GpuToLauncher::FaultFired { at_ns, fault });
    })
}

/// This process's ends of a peer socket: frames out, releases in (forwarded).
/// The two directions of the peer socket to a renderer. A release is taken off the socket only
/// once it decodes and is of this process's `epoch`: the first that is not stays at the head of
/// the queue, as the evidence the launcher reads when told of it.
fn peer_link(
    peer: Option<OwnedFd>,
    epoch: u64,
    seal: &SealKey,
) -> anyhow::Result<(FrameSender, Receiver<Delivery<RendererToGpu>>)> {
    let peer = peer.context("no peer socket came with the renderer link")?;
    // The link's identity in every seal: this end's inode, which the launcher knows too.
    let link = triptych_sys::fd::identity(peer.as_fd())
        .context("the identity of the peer socket")?
        .ino;
    let (frames, releases) = channel::duplex::<GpuToRenderer, RendererToGpu>(peer, true);
    let check = move |m: &RendererToGpu| ipc_protocol::rules::release(m, epoch);
    Ok((
        FrameSender::new(frames, seal.clone(), link),
        channel::forward_checked("releases-rx", releases, check)?,
    ))
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
    /// Frames go out on the peer socket, never waiting: a renderer that stops reading cannot
    /// stall this process.
    pub(crate) to_renderer: Option<FrameSender>,
    /// The key every description is sealed with (`ipc_protocol::seal`).
    seal: SealKey,
    releases: Receiver<Delivery<RendererToGpu>>,
    /// Whether a starvation was reported since the last frame rendered.
    starved_sent: bool,
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
        peer: Option<OwnedFd>,
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
            if s.len() != start.layers as usize {
                bail!(
                    "Start says {} layers, the scene has {}",
                    start.layers,
                    s.len()
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
        let (to_renderer, releases) = peer_link(peer, start.epoch, &start.seal)?;
        Ok(Self {
            seal: start.seal,
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
            to_renderer: Some(to_renderer),
            releases,
            starved_sent: false,
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
        })
    }

    /// Forgets every layer's content: the next frame draws and describes every layer whole.
    fn forget_contents(&mut self) {
        self.last_paint.iter_mut().for_each(|p| *p = None);
        self.pool.forget_contents();
    }

    /// One delivery from the release channel. A message that does not decode, or a release of
    /// another epoch than the one the launcher gave both children, breaks the protocol (the
    /// reader left it on the socket, `peer_link`): this process stops reading the channel, tells
    /// the launcher which renderer did it, and goes on serving the renderer that replaces it. A
    /// release of a buffer that is not in flight frees nothing and is only counted: the renderer
    /// releases the ids this process's own descriptions named, so such a release proves nothing
    /// against it.
    fn release(&mut self, d: Delivery<RendererToGpu>) {
        match d {
            Ok((RendererToGpu::Release { buffer, .. }, _)) => {
                if let Err(e) = self.pool.release(buffer) {
                    self.stray_releases += 1;
                    if self.stray_releases == 1 {
                        tracing::warn!(error = %e, "a release of a buffer not in flight (ignored; more are counted)");
                    }
                }
            }
            Err(v) => {
                let what = v.to_string();
                tracing::warn!(%what, "the renderer broke the release protocol; waiting for a new renderer");
                self.releases = crossbeam_channel::never();
                self.to_renderer = None;
                let _ = self.events.send(&GpuToLauncher::RendererViolation {
                    renderer: self.renderer_pid,
                    claim: RendererClaim::BadRelease(what),
                });
            }
        }
    }

    /// Handles a launcher command; false means stop.
    fn command(&mut self, c: Delivery<LauncherToGpu>) -> anyhow::Result<bool> {
        let (c, mut fds) =
            c.map_err(|v| anyhow::anyhow!("a bad command from the launcher: {v}"))?;
        match c {
            LauncherToGpu::Shutdown => return Ok(false),
            LauncherToGpu::Ping(n) => self
                .events
                .send(&GpuToLauncher::Pong(n))
                .context("answering a ping")?,
            LauncherToGpu::NewRenderer(link) => self.new_renderer(link, fds.pop())?,
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
            LauncherToGpu::Start(_) | LauncherToGpu::Prepare(_) | LauncherToGpu::Mailbox => {
                tracing::warn!("a second Start, Prepare or Mailbox was ignored")
            }
            LauncherToGpu::SceneImage { layer } => {
                tracing::warn!(layer, "a scene image after the start was ignored");
            }
        }
        Ok(true)
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

    /// The renderer was replaced: whatever the old one held is free again.
    fn new_renderer(&mut self, link: RendererLink, peer: Option<OwnedFd>) -> anyhow::Result<()> {
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
        let (to_renderer, releases) = peer_link(peer, self.epoch, &self.seal)?;
        self.renderer_pid = link.renderer_pid;
        self.releases = releases;
        self.to_renderer = Some(to_renderer);
        self.starved_sent = false;
        self.next_frame = link.resume_from;
        self.finished_sent = false;
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
            to_renderer: self.to_renderer.as_ref(),
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

    /// Runs until `Shutdown`: renders while there are frames to render and a renderer to send
    /// them to; otherwise waits for commands and releases.
    pub(crate) fn run(
        &mut self,
        commands: &Receiver<Delivery<LauncherToGpu>>,
    ) -> anyhow::Result<()> {
        loop {
            while let Ok(m) = self.releases.try_recv() {
                self.release(m);
            }
            // A GPU that stopped signalling is hung for good: it renders nothing more.
            let can_render = !self.stop_fences
                && self.to_renderer.is_some()
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
            if !self.stop_fences
                && !self.starved_sent
                && self.to_renderer.is_some()
                && self.next_frame < self.frames
            {
                if let Some(layer) = (0..self.layers).find(|l| self.pool.free_slot(*l).is_none()) {
                    self.starved_sent = true;
                    let _ = self.events.send(&GpuToLauncher::Starved {
                        layer,
                        frame: self.next_frame,
                    });
                }
            }
            if self.next_frame >= self.frames && !self.finished_sent {
                self.finished_sent = true;
                self.ship_trace();
                let _ = self.events.send(&GpuToLauncher::Finished {
                    frames: self.next_frame,
                });
            }
            select! {
                recv(self.releases) -> m => match m {
                    Ok(m) => self.release(m),
                    Err(_) => {
                        // The renderer is gone; the launcher will send a new one.
                        self.releases = crossbeam_channel::never();
                        self.to_renderer = None;
                    }
                },
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
        let mut scene_layers = self
            .scene
            .as_ref()
            .map(|s| s.layers(frame, w, h).into_iter());
        for layer in 0..n {
            let overlay = self
                .overlay
                .as_ref()
                .filter(|o| o.layer == layer)
                .map(Overlay::layer);
            let is_overlay = overlay.is_some();
            let scene_layer = match overlay {
                Some(_) => None,
                None => scene_layers.as_mut().and_then(Iterator::next),
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
        maybe_fire(&mut self.faults, FaultPoint::GpuRender, frame, &self.events);
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
            layers,
        };
        self.hooks.sending(&mut msg);
        self.rec
            .record_span(Stage::Send, Some(frame), t1, msg.sent_ns, Args::new());
        // The launcher hears of the frame before the renderer can present it.
        if self.hooks.reports_produced(frame) {
            let _ = self.events.send(&GpuToLauncher::Produced { frame });
        }
        if let Err(e) = self.fds.send_frame(self.epoch, frame, &self.pool, &used) {
            tracing::warn!(frame, error = %e, "could not send the frame's fds to the renderer");
        }
        let sent = self.to_renderer.as_ref().map(|t| t.send(&msg));
        if !self.hooks.takes_releases(frame) {
            tracing::warn!(frame, "no longer taking releases");
            self.releases = crossbeam_channel::never();
        }
        if let Some(t) = self.to_renderer.as_ref() {
            self.hooks.sent(Sent {
                msg: &msg,
                to_renderer: t,
                events: &self.events,
                renderer_pid: self.renderer_pid,
            });
        }
        if let Some(Err(channel::SendError::Full)) = sent {
            // Frames in flight are bounded by the pool, far below what the socket holds: a full
            // queue means the renderer stopped reading.
            let _ = self.events.send(&GpuToLauncher::RendererViolation {
                renderer: self.renderer_pid,
                claim: RendererClaim::FramesUnread,
            });
        }
        if !matches!(sent, Some(Ok(()))) {
            // The renderer died: its replacement resumes from the launcher's last presented
            // frame, and every buffer is freed then. The frame's work is still completed, so no
            // fence of this process is left unsignalled (a vgem carrier with an unsignalled
            // fence would refuse the next one).
            tracing::warn!(frame, "the renderer is gone; waiting for a new one");
            self.to_renderer = None;
            return self.complete_frame(&used);
        }
        self.next_frame += 1;
        self.starved_sent = false;
        if self.rec.is_enabled() {
            let in_flight = self.pool.in_flight() as f64;
            self.rec.counter("buffers_in_flight", in_flight);
            self.rec.counter(
                "pool_occupancy",
                in_flight / f64::from(self.pool.len().max(1) as u32),
            );
        }
        if maybe_fire(
            &mut self.faults,
            FaultPoint::GpuAfterExport,
            frame,
            &self.events,
        ) {
            self.stop_fences = true;
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
        Ok(())
    }
}
