//! The GPU process's frame loop (`Producer`): the device (the GL context and the exporter,
//! shared by every view) and the views it renders for ([`crate::view`]). Of the views that can
//! render (a frame the launcher allows, a free buffer for every layer) it renders next the one
//! that has had the least of its time, within bounds ([`crate::fair`]): views of equal cost take
//! turns, and a view whose frames are costly gets fewer of them rather than slowing every other
//! view's. For each frame it takes a free pool buffer per layer, draws the layer, sends the
//! frame's description to the launcher, which hands it on to the view's renderer, and completes
//! each layer's work, which signals its fence. Between frames it serves the launcher's commands
//! (views added and removed; for a view: resizes, moves, hover, overlay text, a new renderer, and
//! the renderer's releases, which the launcher relays). After the last frame of every view it
//! keeps serving them until the launcher says `Shutdown`.
//!
//! This process sends the renderers nothing directly: the launcher sees every frame and every
//! release ([`ipc_protocol::relay`]), so no child can claim anything about another.

use std::os::fd::OwnedFd;
use std::time::Duration;

use anyhow::{bail, Context};
use crossbeam_channel::{select, Receiver};
use ipc_protocol::channel::{self, Delivery, Sender};
use ipc_protocol::messages::{
    GpuStart, GpuToLauncher, LauncherToGpu, ViewCommand, ViewId, ViewStart,
};
use triptych_trace::Recorder;

use crate::device::Device;
use crate::export::Exporter;
use crate::gl::GlContext;
use crate::hooks::{Hooks, Running};
use crate::transport::Handover;
use crate::view::View;

/// What draws the frames: the GL context, the exporter it draws into, and the first view's
/// scene, if a scene file was given.
pub(crate) struct Drawing {
    pub(crate) gl: GlContext,
    pub(crate) exporter: Box<dyn Exporter>,
    pub(crate) scene: Option<crate::scene::ScenePlan>,
}

/// The frame loop's state.
pub(crate) struct Producer {
    dev: Device,
    /// The views, in the order they were added.
    views: Vec<View>,
    /// The view whose turn it is next to render among equals (an index into `views`).
    turn: usize,
    /// How the views share the rendering time.
    shares: crate::fair::Shares,
    /// The frames of the run's first view, for the hooks.
    frames: u64,
}

impl Producer {
    /// The loop for `start`: its first view, drawing `drawing`, with `windows` export windows.
    pub(crate) fn new(
        start: GpuStart,
        drawing: Drawing,
        events: Sender<GpuToLauncher>,
        handover: Handover,
        hooks: Box<dyn Hooks>,
        windows: u32,
    ) -> anyhow::Result<Self> {
        let Drawing {
            gl,
            exporter,
            scene,
        } = drawing;
        let rec = if start.trace {
            Recorder::new(std::process::id())
        } else {
            Recorder::disabled()
        };
        let dev = Device {
            epoch: start.epoch,
            hooks,
            gl,
            exporter,
            events,
            rec,
            faults: start.faults,
            stop_fences: false,
            takes_releases: true,
            handover,
            private_fences: false,
            windows,
            owed_since: None,
        };
        let frames = start.view.frames;
        let mut producer = Self {
            dev,
            views: Vec::new(),
            turn: 0,
            shares: crate::fair::Shares::default(),
            frames,
        };
        producer.add(start.view, scene)?;
        Ok(producer)
    }

    /// Adds the view `start` describes, drawing `scene`, and tells the launcher it is served.
    fn add(
        &mut self,
        start: ViewStart,
        scene: Option<crate::scene::ScenePlan>,
    ) -> anyhow::Result<()> {
        if self.views.iter().any(|v| v.id == start.view) {
            bail!("{} was added twice", start.view);
        }
        if start.window >= self.dev.windows {
            bail!(
                "{} asks for export window {}, and this process has room for {}",
                start.view,
                start.window,
                self.dev.windows
            );
        }
        if let Some(other) = self.views.iter().find(|v| v.window_index == start.window) {
            bail!(
                "{} asks for export window {}, which {} has",
                start.view,
                start.window,
                other.id
            );
        }
        crate::sandbox::name_ptracer(start.renderer.renderer_pid)?;
        let mut fds = self
            .dev
            .handover
            .sender_for(start.renderer.renderer_pid)
            .with_context(|| format!("taking the socket to the renderer of {}", start.view))?;
        if self.dev.private_fences {
            fds.keep_fences_private();
        }
        let mut view = View::new(start, scene, fds)?;
        view.serving(&self.dev)?;
        // A new view starts level with the others, not owed all the time they had.
        view.share = self.shares.start();
        tracing::info!(view = view.id.0, window = view.window_index, "view added");
        self.views.push(view);
        Ok(())
    }

    /// `AddView`: the view's scene and its images (which follow on `commands`), then the view.
    fn add_view(
        &mut self,
        start: ViewStart,
        commands: &Receiver<Delivery<LauncherToGpu>>,
    ) -> anyhow::Result<()> {
        let view = start.view;
        // The images may be waited for: the launcher is not kept waiting for frames meanwhile.
        self.dev.wake_launcher(true);
        let received = match &start.scene {
            None => None,
            Some(s) => {
                let next = || next_for(view, commands);
                Some(crate::scene::receive(s, next)?)
            }
        };
        let (w, h) = (start.width, start.height);
        let scene = received
            .map(|r| crate::scene::prepare(r, &mut self.dev.gl, w, h))
            .transpose()?;
        self.add(start, scene)
    }

    /// `RemoveView`: its buffers are freed and its window closed (a renderer may still hold a
    /// copy of a file it took; the launcher ends it).
    fn remove_view(&mut self, view: ViewId) -> anyhow::Result<()> {
        let Some(i) = self.views.iter().position(|v| v.id == view) else {
            bail!("the launcher removed {view}, which this process does not serve");
        };
        drop(self.views.remove(i));
        if self.turn > i {
            self.turn -= 1;
        }
        self.dev
            .events
            .send(&GpuToLauncher::Removed(view))
            .context("telling the launcher the view is removed")?;
        tracing::info!(view = view.0, "view removed");
        Ok(())
    }

    /// Handles a launcher command; false means stop.
    fn command(
        &mut self,
        c: Delivery<LauncherToGpu>,
        commands: &Receiver<Delivery<LauncherToGpu>>,
    ) -> anyhow::Result<bool> {
        let (c, fds) = c.map_err(|v| anyhow::anyhow!("a bad command from the launcher: {v}"))?;
        match c {
            LauncherToGpu::Shutdown => return Ok(false),
            LauncherToGpu::View { view, command } => {
                let Some(v) = self.views.iter_mut().find(|v| v.id == view) else {
                    bail!(
                        "a {} for {view}, which this process does not serve",
                        command.kind()
                    );
                };
                v.command(&mut self.dev, command, fds)?;
            }
            LauncherToGpu::Ping(n) => self
                .dev
                .events
                .send(&GpuToLauncher::Pong(n))
                .context("answering a ping")?,
            LauncherToGpu::AddView(start) => self.add_view(start, commands)?,
            LauncherToGpu::RemoveView(view) => self.remove_view(view)?,
            LauncherToGpu::PrivateFences => {
                if self.dev.hooks.keeps_fences_private() && self.dev.exporter.keep_fences_private()
                {
                    self.dev.private_fences = true;
                    self.views.iter_mut().for_each(View::keep_fences_private);
                    self.dev
                        .events
                        .send(&GpuToLauncher::PrivateFences)
                        .context("answering PrivateFences")?;
                }
            }
            LauncherToGpu::Start(_)
            | LauncherToGpu::Prepare(_)
            | LauncherToGpu::Mailbox
            | LauncherToGpu::Progress
            | LauncherToGpu::Commands(_) => {
                tracing::warn!("a second Start, Prepare, Mailbox, Progress or Commands was ignored")
            }
        }
        Ok(true)
    }

    /// Tells the hooks the frame loop starts (`Started` was reported).
    pub(crate) fn running(&mut self, info: &ipc_protocol::messages::GpuInfo) {
        self.dev.hooks.running(Running {
            events: &self.dev.events,
            epoch: self.dev.epoch,
            frames: self.frames,
            info,
        });
    }

    pub(crate) fn ship_trace(&mut self) {
        if !self.dev.rec.is_empty() {
            let (batches, dropped) =
                channel::split_to_fit(self.dev.rec.drain(), GpuToLauncher::Trace);
            if dropped > 0 {
                tracing::warn!(dropped, "trace events too large to ship were dropped");
            }
            for b in batches {
                let _ = self.dev.events.send(&b);
            }
        }
    }

    /// The next view to render ([`crate::fair`]): of those that can, the one that has had the
    /// least render time, unless one has waited as long as it may.
    fn next_to_render(&mut self) -> Option<usize> {
        let n = self.views.len();
        let mut ready = ready(&mut self.views, &mut self.dev);
        self.shares.pick(&mut ready, self.turn, n)
    }

    /// Renders a frame of view `i`; every other view that could render waited through it.
    fn render(&mut self, i: usize) -> anyhow::Result<()> {
        let waiting: Vec<usize> = ready(&mut self.views, &mut self.dev)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let t0 = std::time::Instant::now();
        if let Some(v) = self.views.get_mut(i) {
            v.render_frame(&mut self.dev)?;
        }
        let took = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut were: Vec<(usize, &mut crate::fair::Share)> = self
            .views
            .iter_mut()
            .enumerate()
            .filter(|(k, _)| *k == i || waiting.contains(k))
            .map(|(k, v)| (k, &mut v.share))
            .collect();
        self.shares.rendered(&mut were, i, took);
        Ok(())
    }

    /// Runs until `Shutdown`: renders while a view has a frame to render and buffers free to
    /// render it into; otherwise waits for the launcher's commands and relayed releases.
    pub(crate) fn run(
        &mut self,
        commands: &Receiver<Delivery<LauncherToGpu>>,
    ) -> anyhow::Result<()> {
        loop {
            if let Some(i) = self.next_to_render() {
                if let Ok(c) = commands.try_recv() {
                    if !self.command(c, commands)? {
                        return Ok(());
                    }
                    continue;
                }
                self.turn = (i + 1) % self.views.len().max(1);
                self.render(i)?;
                self.dev.wake_launcher(false);
                if self.dev.rec.len() >= 512 {
                    self.ship_trace();
                }
                continue;
            }
            if self.views.iter().any(|v| v.next_frame() >= v.frames()) {
                self.ship_trace();
                for v in &mut self.views {
                    v.report_finished(&self.dev);
                }
            }
            self.dev.wake_launcher(true);
            select! {
                recv(commands) -> c => match c {
                    Ok(c) => if !self.command(c, commands)? { return Ok(()) },
                    Err(_) => return Ok(()),
                },
                default(Duration::from_millis(500)) => self.ship_trace(),
            }
        }
    }
}

/// The next message on `commands`, which must be a command for `view` (its images and pixels
/// follow `AddView` at once).
fn next_for(
    view: ViewId,
    commands: &Receiver<Delivery<LauncherToGpu>>,
) -> anyhow::Result<(ViewCommand, Vec<OwnedFd>)> {
    let d = commands
        .recv()
        .context("the launcher's commands ended before the view's images")?;
    let (msg, fds) = d.map_err(|v| anyhow::anyhow!("a bad command from the launcher: {v}"))?;
    match msg {
        LauncherToGpu::View { view: v, command } if v == view => Ok((command, fds)),
        other => bail!("expected the images of {view} from the launcher, got {other:?}"),
    }
}

/// The views of `views` that can render now, each with its share of the rendering time.
fn ready<'a>(views: &'a mut [View], dev: &mut Device) -> Vec<(usize, &'a mut crate::fair::Share)> {
    if dev.stop_fences {
        // A GPU that stopped signalling is hung for good: it renders nothing more.
        return Vec::new();
    }
    let hooks = &mut dev.hooks;
    views
        .iter_mut()
        .enumerate()
        .filter(|(_, v)| v.can_render() && hooks.serves(v.id))
        .map(|(i, v)| (i, &mut v.share))
        .collect()
}
