//! The launcher as the relay of every frame description and every release between a GPU
//! process and the renderer ([`Relay`]).
//!
//! Neither child sends the other anything per frame. The GPU process sends each frame's
//! description to the launcher ([`GpuToLauncher::Frame`]); the launcher checks it and hands it
//! on ([`LauncherToRenderer::Frame`]). The renderer gives each buffer back to the launcher
//! ([`RendererToLauncher::Release`]); the launcher checks it and hands it on
//! ([`ViewCommand::Release`]). So the launcher knows, without taking either child's word:
//!
//! - every frame the renderer was handed, and that it came from the GPU process as it is: a
//!   frame out of order, of another epoch, of a size generation never started, of a shape the
//!   description rules refuse ([`crate::layers`]), or naming a buffer the renderer still holds
//!   is the GPU process's violation, seen by the launcher itself;
//! - every buffer the renderer holds: a release of a buffer it does not hold is its violation,
//!   and a renderer that holds every buffer of a layer is the one that keeps the GPU process
//!   from rendering ([`Relay::starved`]). The GPU process needs no word of its own about it;
//! - every frame the renderer has not answered yet: it answers each frame of the current size
//!   with `Presented` or, naming why, `Rejected` or `GpuViolation` ([`Relay::answered`]).
//!   Giving a frame's buffer back before answering it is dropping the frame unseen, which is
//!   the renderer's violation: a renderer cannot take frames, throw them away and leave the
//!   stall to the GPU process.
//!
//! When a renderer is replaced, the GPU process may already have sent frames for the old one.
//! It answers each of the launcher's `NewRenderer`s with [`GpuToLauncher::Serving`], in order;
//! what it sent before its answer to the newest is checked and dropped, and what it sends after
//! is numbered from the frame that link resumes from.
//!
//! Who holds up a stall ([`Relay::holder`]): a renderer that holds every buffer of a layer, each
//! of a frame it answered or has had longer than it may wait on a fence, holds the work; one
//! still within that wait on a frame it has not answered may be waiting on the GPU process's
//! fences, and is not judged yet; with a buffer of every layer free, the GPU process holds it.
//!
//! The state is small and bounded whatever a child sends: at most a pool of buffers per layer
//! held, and the fences of the last [`RECENT`] frames (for the launcher's own look at a fence
//! the renderer says is no fence).
//!
//! [`GpuToLauncher::Frame`]: crate::messages::GpuToLauncher::Frame
//! [`GpuToLauncher::Serving`]: crate::messages::GpuToLauncher::Serving
//! [`LauncherToRenderer::Frame`]: crate::messages::LauncherToRenderer::Frame
//! [`RendererToLauncher::Release`]: crate::messages::RendererToLauncher::Release
//! [`ViewCommand::Release`]: crate::messages::ViewCommand::Release

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::buffer_file::Shape;
use crate::frame::{BufferId, Fence, FenceKind, FencePlace, FileId, RemoteFd};
use crate::messages::FrameMsg;
use crate::rules::Breach;

/// Frames whose fences are kept for a look at the renderer's word about one.
pub const RECENT: usize = 8;

/// The most of the GPU process's buffers the renderer may have to map at once, over all pool
/// slots: half of its address space (`RLIMIT_AS`, 16 GiB), so that a GPU process cannot make it
/// run out by describing buffers it may import but cannot map. Far above a real run (16 layers of
/// 4096x4096 in pools of 3 map 3 GiB).
pub const MAP_BUDGET: u64 = 8 << 30;

/// The fences one frame handed on named, each with its layer.
type FrameFences = (u64, Vec<(u32, Fence<RemoteFd>)>);

/// Renderers announced and not yet answered with `Serving` kept at most (more are a GPU process
/// that stopped answering, which the stall check finds).
const ANNOUNCED: usize = 16;

/// Who holds up a stall ([`Relay::holder`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// The renderer holds every buffer of this layer, of frames it answered or has had longer
    /// than its fence wait.
    Renderer(u32),
    /// The renderer holds every buffer of a layer, some of a frame it may still be waiting on
    /// the GPU process's fences for: not judged yet.
    Undecided,
    /// A buffer of every layer is free: the GPU process could render.
    Gpu,
}

/// What to do with a frame that passed the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handed {
    /// Hand it to the renderer.
    On,
    /// It was made for a renderer since replaced: drop it.
    Dropped,
}

/// The relay between one GPU process and the renderer it serves.
#[derive(Debug)]
pub struct Relay {
    epoch: u64,
    gpu_pid: u32,
    window: (i32, i32),
    layers: u32,
    pool_per_layer: u32,
    /// The frame the GPU process must send next on the current link.
    next: u64,
    /// New renderers announced (each pid, and the frame it resumes from), oldest first, that
    /// the GPU process has not said it serves yet.
    switching: VecDeque<(u32, u64)>,
    /// Buffers handed to the current renderer and not released, with their layer and frame.
    held: Vec<(BufferId, u32, u64)>,
    /// Frames handed to the current renderer that it has not answered, with their size
    /// generation, when they reached it (`None`: the launcher still holds it, vouching for
    /// it) and the scene version they draw (at most a pool's worth of each layer: each holds a
    /// buffer of at least one layer).
    unanswered: VecDeque<(u64, u32, Option<Instant>, Option<u64>)>,
    /// The fences of the last frames handed on, by frame, each with its layer.
    recent: VecDeque<FrameFences>,
    /// Each pool slot's buffer as last described: its id and shape. A renderer imports a
    /// buffer once per id, so an id that comes back with another shape would have it read one
    /// layout through a mapping made for another.
    shapes: Vec<Option<(BufferId, Shape)>>,
    /// Renderers this relay has served: the link a frame was handed on belongs to.
    link: u64,
    /// Where frames must name their fences: in the export window, until the GPU process
    /// says it keeps them private ([`Relay::fences_private`]).
    fences: FencePlace,
    /// Where the process announced progress fences: its page's identity (`None` inside: it
    /// announced them without a page). Every fence must then be a point of that page, each
    /// above the one before ([`Relay::progress_page`]).
    progress: Option<Option<FileId>>,
    /// The fence kind the process announced (`GpuInfo::fence`): every frame's fences are of it.
    kind: Option<FenceKind>,
    /// The last progress point handed on.
    last_point: u64,
    /// Per pool slot, the most of its buffers' files the renderer maps (plane 0's end), over
    /// every frame handed on: the renderer keeps one mapping per slot.
    mapped: Vec<u64>,
    /// The newest scene version the launcher sent this GPU process, and the version of its
    /// last frame: frames never go back, and never ahead of what was sent.
    scene: (u64, u64),
    /// The version every frame from now on must draw at least: the process answered a ping
    /// sent after it, and it handles its commands in order.
    scene_due: u64,
}

impl Relay {
    /// The relay of a GPU process of `epoch` (pid `gpu_pid`, export window `window`), drawing
    /// `layers` layers from a pool of `pool_per_layer` buffers each, whose first frame is
    /// `first`.
    pub fn new(
        epoch: u64,
        gpu_pid: u32,
        window: (i32, i32),
        layers: u32,
        pool_per_layer: u32,
        first: u64,
    ) -> Self {
        Self {
            epoch,
            gpu_pid,
            window,
            layers,
            pool_per_layer,
            next: first,
            switching: VecDeque::new(),
            held: Vec::new(),
            unanswered: VecDeque::new(),
            recent: VecDeque::new(),
            shapes: vec![None; (layers as usize).saturating_mul(pool_per_layer as usize)],
            link: 0,
            fences: FencePlace::InWindow,
            progress: None,
            kind: None,
            last_point: 0,
            mapped: vec![0; (layers as usize).saturating_mul(pool_per_layer as usize)],
            scene: (0, 0),
            scene_due: 0,
        }
    }

    /// The GPU process was started on scene version `version`: its frames draw it or a later
    /// one.
    pub fn scene_started(&mut self, version: u64) {
        self.scene = (version, version);
        self.scene_due = version;
    }

    /// The GPU process has had scene version `version` for a while (it answered a ping sent
    /// after it): every frame it sends from now on draws it or a later one.
    pub fn scene_due(&mut self, version: u64) {
        self.scene_due = self.scene_due.max(version.min(self.scene.0));
    }

    /// The newest scene version sent.
    pub fn scene_sent_version(&self) -> u64 {
        self.scene.0
    }

    /// The renderer said frame `frame` kept an old buffer for a layer whose fence did not
    /// signal in time: whatever edit the frame drew, it did not show all of it.
    pub fn kept_old(&mut self, frame: u64) {
        if let Some(u) = self.unanswered.iter_mut().find(|(f, _, _, _)| *f == frame) {
            u.3 = None;
        }
    }

    /// The launcher sent the GPU process scene version `version`.
    pub fn scene_sent(&mut self, version: u64) {
        self.scene.0 = self.scene.0.max(version);
    }

    /// The GPU process says it keeps its fences outside the export window from now on
    /// ([`crate::messages::GpuToLauncher::PrivateFences`]): every frame after this must.
    pub fn fences_private(&mut self) {
        self.fences = FencePlace::Private;
    }

    /// The GPU process announced progress fences ([`crate::frame::FenceKind::Progress`]) on the
    /// page of identity `page` (`None`: it was given none, and every frame is a lie).
    pub fn progress_page(&mut self, page: Option<FileId>) {
        self.progress = Some(page);
    }

    /// The GPU process announced fences of `kind` (`GpuInfo::fence`): a frame with a fence of
    /// another kind is a lie, which would have the renderer wait on one kind of file and the
    /// launcher judge its claims as about another.
    pub fn fence_kind(&mut self, kind: FenceKind) {
        self.kind = Some(kind);
    }

    /// Checks each fence's kind against what the process announced: the kind itself; with
    /// progress fences, each a point of its page above the one before; otherwise no progress
    /// fence at all.
    fn check_progress(&mut self, msg: &FrameMsg) -> Result<(), String> {
        let mut last = self.last_point;
        for l in &msg.layers {
            let f = &l.buffer.fence;
            if let Some(kind) = self.kind.filter(|k| *k != f.kind) {
                return Err(format!(
                    "layer {}: a {} fence from a process that announced {kind} fences",
                    l.layer, f.kind
                ));
            }
            let progress = f.kind == FenceKind::Progress;
            match self.progress {
                None if progress => {
                    return Err(format!(
                        "layer {}: a progress fence from a process that announced file fences",
                        l.layer
                    ))
                }
                None => {}
                Some(_) if !progress => {
                    return Err(format!(
                        "layer {}: a {} fence from a process that announced progress fences",
                        l.layer, f.kind
                    ))
                }
                Some(page) => {
                    if page != Some(f.fd.identity) {
                        return Err(format!(
                            "layer {}: a progress fence on file {}:{}, not its progress page",
                            l.layer, f.fd.identity.dev, f.fd.identity.ino
                        ));
                    }
                    if f.point <= last {
                        return Err(format!(
                            "layer {}: progress point {}, not above the point {last} before it",
                            l.layer, f.point
                        ));
                    }
                    last = f.point;
                }
            }
        }
        self.last_point = last;
        Ok(())
    }

    /// The renderer link frames are handed on to now: it changes at each
    /// [`Relay::new_renderer`], so a frame handed on for an earlier link is known as such.
    pub fn link(&self) -> u64 {
        self.link
    }

    /// Frame `frame`, handed on, is held by the launcher, which vouches for it first: the
    /// renderer cannot be waiting on it yet, let alone holding it up.
    pub fn held_by_launcher(&mut self, frame: u64) {
        if let Some(u) = self.unanswered.iter_mut().find(|(f, _, _, _)| *f == frame) {
            u.2 = None;
        }
    }

    /// Frame `frame` reaches the renderer only at `now` (the launcher held it meanwhile, to
    /// vouch for it): its time unanswered counts from then.
    pub fn reached_renderer(&mut self, frame: u64, now: Instant) {
        if let Some(u) = self.unanswered.iter_mut().find(|(f, _, _, _)| *f == frame) {
            u.2 = Some(now);
        }
    }

    /// Layers in every frame.
    pub fn layers(&self) -> u32 {
        self.layers
    }

    /// The frame the GPU process must send next.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Whether the GPU process has yet to answer a `NewRenderer`.
    pub fn switching(&self) -> bool {
        !self.switching.is_empty()
    }

    /// Checks a frame the GPU process sent, `generation` being the newest size generation the
    /// launcher started. On [`Handed::On`] the renderer is taken to hold its buffers from `now`.
    pub fn frame(
        &mut self,
        msg: &FrameMsg,
        generation: u32,
        now: Instant,
    ) -> Result<Handed, Breach> {
        let lie = |what: String| Err(Breach::new("Frame", what));
        if msg.epoch != self.epoch {
            return lie(format!(
                "frame {} of epoch {}; this GPU process is epoch {}",
                msg.frame, msg.epoch, self.epoch
            ));
        }
        if msg.generation > generation {
            return lie(format!(
                "frame {} of size generation {}, which was never started (the newest is {generation})",
                msg.frame, msg.generation
            ));
        }
        let ends = match crate::layers::layers_with(
            msg,
            self.layers,
            self.gpu_pid,
            self.window,
            self.fences,
        ) {
            Ok(ends) => ends,
            Err(e) => return lie(format!("frame {}: {e}", msg.frame)),
        };
        if msg.layers.is_empty() {
            return lie(format!("frame {} has no layers", msg.frame));
        }
        let (sent, seen) = self.scene;
        if msg.scene_version < seen || msg.scene_version > sent {
            return lie(format!(
                "frame {} draws scene version {}, where {} came before and {sent} is the newest sent",
                msg.frame, msg.scene_version, seen
            ));
        }
        if msg.scene_version < self.scene_due {
            return lie(format!(
                "frame {} draws scene version {}, after answering a ping sent after version {}",
                msg.frame, msg.scene_version, self.scene_due
            ));
        }
        if self.switching() {
            // Made for the renderer being replaced, before the GPU process heard of it.
            return Ok(Handed::Dropped);
        }
        if msg.frame != self.next {
            return lie(format!(
                "frame {} where frame {} comes next",
                msg.frame, self.next
            ));
        }
        if let Err(what) = self.check_progress(msg) {
            return lie(format!("frame {}, {what}", msg.frame));
        }
        for l in &msg.layers {
            let id = l.buffer.id;
            let first = l.layer.saturating_mul(self.pool_per_layer);
            if !(first..first.saturating_add(self.pool_per_layer)).contains(&id.slot) {
                return lie(format!(
                    "frame {}, layer {}: buffer {}/{}, not a slot of the layer's pool [{first}, {})",
                    msg.frame,
                    l.layer,
                    id.slot,
                    id.generation,
                    first.saturating_add(self.pool_per_layer)
                ));
            }
            let shape = Shape::of(&l.buffer);
            if let Some(Some((known, was))) = self.shapes.get(id.slot as usize) {
                if id.generation < known.generation {
                    return lie(format!(
                        "frame {}, layer {}: buffer {}/{}, a generation older than the slot's {}",
                        msg.frame, l.layer, id.slot, id.generation, known.generation
                    ));
                }
                if *known == id && Some(*was) != shape {
                    return lie(format!(
                        "frame {}, layer {}: buffer {}/{} described with another shape than before",
                        msg.frame, l.layer, id.slot, id.generation
                    ));
                }
            }
        }
        // What the renderer maps of each slot's buffer, at the most, stays within its budget.
        // Each layer names a slot of its own pool, so no slot comes twice.
        let grows: u64 = msg
            .layers
            .iter()
            .zip(&ends)
            .map(|(l, end)| {
                let was = self
                    .mapped
                    .get(l.buffer.id.slot as usize)
                    .copied()
                    .unwrap_or(0);
                end.saturating_sub(was)
            })
            .sum();
        let total = self.mapped.iter().sum::<u64>().saturating_add(grows);
        if total > MAP_BUDGET {
            return lie(format!(
                "frame {}: its buffers would have the renderer map {total} bytes, more than the {MAP_BUDGET} it may",
                msg.frame
            ));
        }
        let before = self.held.len();
        for l in &msg.layers {
            let id = l.buffer.id;
            if self.held.iter().any(|(h, _, _)| *h == id) {
                self.held.truncate(before);
                return lie(format!(
                    "frame {}, layer {}: buffer {}/{}, which the renderer still holds",
                    msg.frame, l.layer, id.slot, id.generation
                ));
            }
            let of_layer = self.held.iter().filter(|(_, h, _)| *h == l.layer).count();
            if of_layer >= self.pool_per_layer as usize {
                self.held.truncate(before);
                return lie(format!(
                    "frame {}, layer {}: a buffer more than the {} of its pool",
                    msg.frame, l.layer, self.pool_per_layer
                ));
            }
            self.held.push((id, l.layer, msg.frame));
        }
        for (l, end) in msg.layers.iter().zip(&ends) {
            if let Some(m) = self.mapped.get_mut(l.buffer.id.slot as usize) {
                *m = (*m).max(*end);
            }
        }
        for l in &msg.layers {
            if let (Some(slot), Some(shape)) = (
                self.shapes.get_mut(l.buffer.id.slot as usize),
                Shape::of(&l.buffer),
            ) {
                *slot = Some((l.buffer.id, shape));
            }
        }
        self.next += 1;
        self.scene.1 = msg.scene_version;
        self.unanswered.push_back((
            msg.frame,
            msg.generation,
            Some(now),
            Some(msg.scene_version),
        ));
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((
            msg.frame,
            msg.layers
                .iter()
                .map(|l| (l.layer, l.buffer.fence.clone()))
                .collect(),
        ));
        Ok(Handed::On)
    }

    /// The renderer answered frame `frame` (presented it, or said why it did not): the scene
    /// version it drew, when it was one handed on and unanswered.
    pub fn answered(&mut self, frame: u64) -> Option<u64> {
        let version = self
            .unanswered
            .iter()
            .find(|(f, _, _, _)| *f == frame)
            .and_then(|u| u.3);
        self.unanswered.retain(|(f, _, _, _)| *f != frame);
        version
    }

    /// Checks a release by the renderer of `buffer` of `epoch`, `generation` being the current
    /// size generation. `Ok(true)`: hand it on to the GPU process; `Ok(false)`: a buffer of a GPU
    /// process since replaced, nobody's to free.
    pub fn release(
        &mut self,
        epoch: u64,
        buffer: BufferId,
        generation: u32,
    ) -> Result<bool, Breach> {
        if epoch > self.epoch {
            return Err(Breach::new(
                "Release",
                format!("a buffer of epoch {epoch}, after epoch {}", self.epoch),
            ));
        }
        if epoch < self.epoch {
            return Ok(false);
        }
        match self.held.iter().position(|(h, _, _)| *h == buffer) {
            Some(i) => {
                let frame = self.held[i].2;
                // A frame of an older size may be dropped unanswered: the renderer composites
                // only frames of its output's size.
                if self
                    .unanswered
                    .iter()
                    .any(|(f, g, _, _)| *f == frame && *g >= generation)
                {
                    return Err(Breach::new(
                        "Release",
                        format!(
                            "buffer {}/{} of frame {frame}, which it neither presented nor rejected",
                            buffer.slot, buffer.generation
                        ),
                    ));
                }
                self.held.swap_remove(i);
                Ok(true)
            }
            None => Err(Breach::new(
                "Release",
                format!(
                    "buffer {}/{} of epoch {epoch}, which it does not hold",
                    buffer.slot, buffer.generation
                ),
            )),
        }
    }

    /// The renderer is replaced by the one of `renderer_pid`, which resumes from `resume_from`:
    /// it holds nothing, and the GPU process's frames are dropped until it says it serves it.
    pub fn new_renderer(&mut self, renderer_pid: u32, resume_from: u64) {
        self.link += 1;
        self.held.clear();
        self.unanswered.clear();
        self.recent.clear();
        if self.switching.len() == ANNOUNCED {
            self.switching.pop_front();
        }
        self.switching.push_back((renderer_pid, resume_from));
    }

    /// The GPU process says it serves the renderer of `renderer`: the oldest announced it has
    /// not answered. Frames are for the renderer of its answer to the newest.
    pub fn serving(&mut self, renderer: u32) -> Result<(), Breach> {
        match self.switching.front().copied() {
            Some((pid, resume_from)) if pid == renderer => {
                self.switching.pop_front();
                if self.switching.is_empty() {
                    self.next = resume_from;
                }
                Ok(())
            }
            Some((pid, _)) => Err(Breach::new(
                "Serving",
                format!("renderer {renderer}, where renderer {pid} was announced"),
            )),
            None => Err(Breach::new(
                "Serving",
                format!("renderer {renderer}, with no new renderer announced"),
            )),
        }
    }

    /// Who holds up a stall at `now`, `patience` being how long the renderer may hold a frame
    /// unanswered (its fence wait, and some). A frame the launcher still holds to vouch for
    /// is not the renderer's to answer yet.
    pub fn holder(&self, now: Instant, patience: Duration) -> Holder {
        let Some(layer) = self.starved() else {
            return Holder::Gpu;
        };
        let waiting = self
            .held
            .iter()
            .filter(|(_, l, _)| *l == layer)
            .any(|(_, _, frame)| {
                self.unanswered.iter().any(|(f, _, at, _)| {
                    f == frame && at.is_none_or(|at| now.saturating_duration_since(at) <= patience)
                })
            });
        if waiting {
            Holder::Undecided
        } else {
            Holder::Renderer(layer)
        }
    }

    /// A layer every buffer of whose pool the renderer holds: the GPU process cannot render
    /// until the renderer gives one back.
    pub fn starved(&self) -> Option<u32> {
        (0..self.layers).find(|layer| {
            self.held.iter().filter(|(_, l, _)| l == layer).count() >= self.pool_per_layer as usize
        })
    }

    /// Buffers the renderer holds.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The fence that frame `frame` named for `layer`, if it is one of the last handed on.
    pub fn fence(&self, frame: u64, layer: u32) -> Option<&Fence<RemoteFd>> {
        self.recent
            .iter()
            .find(|(f, _)| *f == frame)
            .and_then(|(_, ls)| ls.iter().find(|(l, _)| *l == layer))
            .map(|(_, fence)| fence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{BufferKind, DrmFormat, FenceKind, FileId, Frame, Plane};
    use crate::messages::{LayerMsg, LayerPlacement};

    const PID: u32 = 40;
    const WINDOW: (i32, i32) = (100, 200);

    fn remote(fd: i32) -> RemoteFd {
        RemoteFd {
            pid: PID,
            fd,
            identity: FileId {
                dev: 1,
                ino: fd as u64,
            },
        }
    }

    fn layer(layer: u32, slot: u32, generation: u32) -> LayerMsg {
        LayerMsg {
            layer,
            placement: LayerPlacement {
                x: 0,
                y: 0,
                z: layer as i32,
                opacity: 255,
            },
            buffer: Frame {
                id: BufferId { slot, generation },
                kind: BufferKind::Shm,
                format: DrmFormat {
                    fourcc: crate::frame::DRM_FORMAT_ABGR8888,
                    modifier: crate::frame::DRM_FORMAT_MOD_LINEAR,
                },
                width: 4,
                height: 4,
                planes: vec![Plane {
                    fd: remote(100 + slot as i32),
                    offset: 0,
                    stride: 16,
                }],
                fence: Fence {
                    kind: FenceKind::Pipe,
                    fd: remote(150 + slot as i32),
                    point: 0,
                },
            },
            damage: Vec::new(),
            damage_since: None,
        }
    }

    fn frame(frame: u64, slots: &[u32]) -> FrameMsg {
        FrameMsg {
            epoch: 3,
            generation: 0,
            frame,
            sent_ns: 0,
            scene_version: 0,
            layers: slots
                .iter()
                .enumerate()
                .map(|(i, s)| layer(i as u32, *s, 1))
                .collect(),
        }
    }

    fn t() -> Instant {
        Instant::now()
    }

    fn relay() -> Relay {
        Relay::new(3, PID, WINDOW, 2, 3, 10)
    }

    fn id(slot: u32) -> BufferId {
        BufferId {
            slot,
            generation: 1,
        }
    }

    #[test]
    fn frames_come_one_after_another_from_the_first() {
        let mut r = relay();
        assert_eq!(r.frame(&frame(10, &[0, 3]), 0, t()), Ok(Handed::On));
        let twice = r
            .frame(&frame(10, &[1, 4]), 0, t())
            .expect_err("sent twice");
        assert!(twice.what.contains("frame 10 where frame 11"), "{twice:?}");
        let ahead = r.frame(&frame(12, &[1, 4]), 0, t()).expect_err("ahead");
        assert!(ahead.what.contains("frame 12 where frame 11"), "{ahead:?}");
        assert_eq!(r.frame(&frame(11, &[1, 4]), 0, t()), Ok(Handed::On));
        assert_eq!(r.next(), 12);
    }

    #[test]
    fn every_fence_is_of_the_kind_the_process_announced() {
        let mut r = relay();
        r.fence_kind(FenceKind::Pipe);
        assert_eq!(r.frame(&frame(10, &[0, 3]), 0, t()), Ok(Handed::On));
        let mut other = frame(11, &[1, 4]);
        other.layers[1].buffer.fence.kind = FenceKind::SyncFile;
        let lie = r.frame(&other, 0, t()).expect_err("another kind");
        assert!(
            lie.what
                .contains("layer 1: a sync_file fence from a process that announced pipe fences"),
            "{lie:?}"
        );
    }

    #[test]
    fn another_epoch_a_future_generation_or_a_bad_shape_is_a_lie() {
        let mut r = relay();
        let mut f = frame(10, &[0, 3]);
        f.epoch = 2;
        assert!(r
            .frame(&f, 0, t())
            .expect_err("epoch")
            .what
            .contains("epoch 2"));
        let mut f = frame(10, &[0, 3]);
        f.generation = 2;
        assert!(r
            .frame(&f, 1, t())
            .expect_err("generation")
            .what
            .contains("never started"));
        // Generations up to the newest are fine: frames made before a resize was heard of.
        let mut f = frame(10, &[0, 3]);
        f.generation = 1;
        assert_eq!(r.frame(&f, 1, t()), Ok(Handed::On));
        let mut f = frame(11, &[1, 4]);
        f.layers[0].buffer.planes[0].fd.fd = 7;
        assert!(r
            .frame(&f, 1, t())
            .expect_err("window")
            .what
            .contains("frame 11"));
        // Nothing of a refused frame is taken as held, nor its number as used.
        assert_eq!(r.held(), 2);
        assert_eq!(r.next(), 11);
    }

    #[test]
    fn a_buffer_still_held_cannot_be_handed_again() {
        let mut r = relay();
        r.frame(&frame(10, &[0, 3]), 0, t()).expect("first");
        let again = r.frame(&frame(11, &[0, 4]), 0, t()).expect_err("held");
        assert!(again.what.contains("still holds"), "{again:?}");
        assert_eq!(r.held(), 2, "the refused frame left nothing held");
        // Given back, it may come again.
        r.answered(10);
        assert_eq!(r.release(3, id(0), 0), Ok(true));
        assert_eq!(r.frame(&frame(11, &[0, 4]), 0, t()), Ok(Handed::On));
        // The same buffer twice in one frame.
        let mut f = frame(12, &[1, 5]);
        f.layers[1].buffer.id = id(1);
        assert!(r.frame(&f, 0, t()).is_err());
    }

    #[test]
    fn releases_are_of_buffers_held_and_only_once() {
        let mut r = relay();
        r.frame(&frame(10, &[0, 3]), 0, t()).expect("first");
        r.answered(10);
        assert_eq!(r.release(3, id(3), 0), Ok(true));
        assert!(r
            .release(3, id(3), 0)
            .expect_err("twice")
            .what
            .contains("does not hold"));
        assert!(r.release(3, id(7), 0).is_err(), "never handed");
        // A release of a replaced GPU process's buffer frees nothing and blames nobody.
        assert_eq!(r.release(2, id(9), 0), Ok(false));
        assert!(r
            .release(4, id(9), 0)
            .expect_err("future")
            .what
            .contains("epoch 4"));
    }

    #[test]
    fn a_frame_given_back_before_it_is_answered_was_dropped_unseen() {
        let mut r = relay();
        r.frame(&frame(10, &[0, 3]), 0, t()).expect("10");
        let e = r.release(3, id(3), 0).expect_err("unanswered");
        assert!(e.what.contains("neither presented nor rejected"), "{e:?}");
        // Still held: the refused release gave nothing back.
        assert_eq!(r.held(), 2);
        // A frame of a size no longer current may be dropped unanswered.
        assert_eq!(r.release(3, id(3), 1), Ok(true));
        // Answered, its buffers may come back.
        r.answered(10);
        assert_eq!(r.release(3, id(0), 0), Ok(true));
        // A frame has at least one layer, not necessarily every one.
        let mut empty = frame(11, &[1, 4]);
        empty.layers.clear();
        assert!(r
            .frame(&empty, 0, t())
            .expect_err("empty")
            .what
            .contains("has no layers"));
        let mut short = frame(11, &[1, 4]);
        short.layers.pop();
        assert_eq!(r.frame(&short, 0, t()), Ok(Handed::On));
    }

    #[test]
    fn scene_versions_never_go_back_nor_ahead_of_what_was_sent() {
        let mut r = relay();
        r.scene_started(2);
        let mut f = frame(10, &[0, 3]);
        f.scene_version = 1;
        assert!(r
            .frame(&f, 0, t())
            .expect_err("older")
            .what
            .contains("version 1"));
        f.scene_version = 3;
        assert!(r
            .frame(&f, 0, t())
            .expect_err("unsent")
            .what
            .contains("newest sent"));
        r.scene_sent(3);
        assert_eq!(r.frame(&f, 0, t()), Ok(Handed::On));
        let mut g = frame(11, &[1, 4]);
        g.scene_version = 2;
        assert!(r
            .frame(&g, 0, t())
            .expect_err("back")
            .what
            .contains("3 came before"));
        assert_eq!(r.answered(10), Some(3));
        assert_eq!(r.answered(10), None);
        // Once the process has answered a ping sent after version 4, no frame may draw less.
        r.scene_sent(4);
        r.scene_due(4);
        let mut h = frame(11, &[1, 4]);
        h.scene_version = 3;
        assert!(r
            .frame(&h, 0, t())
            .expect_err("stuck")
            .what
            .contains("after answering a ping"));
        h.scene_version = 4;
        assert_eq!(r.frame(&h, 0, t()), Ok(Handed::On));
        // A frame that kept an old buffer answers no edit.
        r.kept_old(11);
        assert_eq!(r.answered(11), None);
    }

    #[test]
    fn a_renderer_holding_a_whole_pool_starves_the_gpu_process() {
        let mut r = relay();
        r.frame(&frame(10, &[0, 3]), 0, t()).expect("10");
        r.frame(&frame(11, &[1, 4]), 0, t()).expect("11");
        assert_eq!(r.starved(), None);
        r.frame(&frame(12, &[2, 5]), 0, t()).expect("12");
        assert_eq!(r.starved(), Some(0));
        // A fourth buffer for a layer is more than its pool.
        let f = frame(13, &[6, 7]);
        assert!(r
            .frame(&f, 0, t())
            .expect_err("pool")
            .what
            .contains("pool [0, 3)"));
        for n in 10..=12 {
            r.answered(n);
        }
        r.release(3, id(0), 0).expect("release");
        assert_eq!(r.starved(), Some(1));
        r.release(3, id(4), 0).expect("release");
        assert_eq!(r.starved(), None);
    }

    #[test]
    fn a_new_renderer_drops_frames_until_the_gpu_process_serves_it() {
        let mut r = relay();
        r.frame(&frame(10, &[0, 3]), 0, t()).expect("10");
        r.frame(&frame(11, &[1, 4]), 0, t()).expect("11");
        r.new_renderer(77, 11);
        assert_eq!(r.held(), 0);
        // Sent for the old renderer: checked, then dropped.
        assert_eq!(r.frame(&frame(12, &[2, 5]), 0, t()), Ok(Handed::Dropped));
        let mut bad = frame(13, &[2, 5]);
        bad.epoch = 9;
        assert!(r.frame(&bad, 0, t()).is_err(), "still checked");
        assert!(r.serving(78).is_err(), "not the renderer announced");
        r.serving(77).expect("serving");
        assert!(r.serving(77).is_err(), "only once");
        // Numbered again from where the new link resumes; the old buffers are free.
        assert_eq!(r.frame(&frame(11, &[1, 4]), 0, t()), Ok(Handed::On));
        // Two renderers announced before the GPU process answered either: it answers both, in
        // order, and frames are for the second from its answer to it.
        r.new_renderer(80, 11);
        r.new_renderer(81, 12);
        assert!(r.serving(81).is_err(), "out of order");
        r.serving(80).expect("the first");
        assert_eq!(
            r.frame(&frame(11, &[1, 4]), 0, t()),
            Ok(Handed::Dropped),
            "made for the first, replaced already"
        );
        r.serving(81).expect("the second");
        assert_eq!(r.frame(&frame(12, &[1, 4]), 0, t()), Ok(Handed::On));
    }

    #[test]
    fn a_stall_is_held_by_whoever_holds_the_work() {
        let patience = Duration::from_millis(500);
        let now = Instant::now();
        let long_ago = now - Duration::from_secs(2);
        let mut r = relay();
        assert_eq!(r.holder(now, patience), Holder::Gpu);
        r.frame(&frame(10, &[0, 3]), 0, long_ago).expect("10");
        r.frame(&frame(11, &[1, 4]), 0, long_ago).expect("11");
        r.answered(10);
        r.answered(11);
        // A buffer of every layer free: the GPU process could render.
        assert_eq!(r.holder(now, patience), Holder::Gpu);
        // The third, just handed and not answered: the renderer may be waiting on its fences.
        r.frame(&frame(12, &[2, 5]), 0, now).expect("12");
        assert_eq!(r.holder(now, patience), Holder::Undecided);
        // Still unanswered after its fence wait: the renderer holds the work.
        assert_eq!(
            r.holder(now + Duration::from_secs(1), patience),
            Holder::Renderer(0)
        );
        // Answered and kept: the renderer holds the work.
        r.answered(12);
        assert_eq!(r.holder(now, patience), Holder::Renderer(0));
    }

    #[test]
    fn generations_only_grow_and_the_renderer_is_never_asked_to_map_past_its_budget() {
        let mut r = relay();
        let mut f = frame(10, &[0, 3]);
        f.layers[0].buffer.id.generation = 2;
        r.frame(&f, 0, t()).expect("10");
        r.answered(10);
        r.release(
            3,
            BufferId {
                slot: 0,
                generation: 2,
            },
            0,
        )
        .expect("release");
        // Generation 1 of slot 0, after 2: the renderer may still hold 1 with another shape.
        let e = r.frame(&frame(11, &[0, 4]), 0, t()).expect_err("older");
        assert!(
            e.what.contains("a generation older than the slot's 2"),
            "{e:?}"
        );
        // Planes that end near 4 GiB, in every slot: the third would pass the budget.
        let mut r = relay();
        let far = |mut f: FrameMsg| {
            for l in &mut f.layers {
                l.buffer.planes[0].offset = 4_000_000_000;
            }
            f
        };
        r.frame(&far(frame(10, &[0, 3])), 0, t())
            .expect("two slots fit");
        let e = r
            .frame(&far(frame(11, &[1, 4])), 0, t())
            .expect_err("budget");
        assert!(e.what.contains("more than the 8589934592"), "{e:?}");
        // Nothing of the refused frame counts.
        assert_eq!(r.held(), 2);
        r.frame(&frame(11, &[1, 4]), 0, t())
            .expect("small buffers still fit");
    }

    #[test]
    fn a_frame_the_launcher_holds_to_vouch_for_is_not_the_renderers_to_answer_yet() {
        let patience = Duration::from_millis(500);
        let long_ago = Instant::now() - Duration::from_secs(5);
        let mut r = relay();
        for (n, s) in [(10, [0, 3]), (11, [1, 4]), (12, [2, 5])] {
            r.frame(&frame(n, &s), 0, long_ago).expect("frame");
        }
        r.answered(10);
        r.answered(11);
        r.held_by_launcher(12);
        let later = Instant::now();
        assert_eq!(r.holder(later, patience), Holder::Undecided);
        // Handed to the renderer long ago (as if): its wait is over.
        r.reached_renderer(12, long_ago);
        assert_eq!(r.holder(later, patience), Holder::Renderer(0));
    }

    #[test]
    fn the_fences_of_recent_frames_are_kept() {
        let mut r = relay();
        for n in 0..(RECENT as u64 + 2) {
            let s = (n % 3) as u32;
            r.frame(&frame(10 + n, &[s, 3 + s]), 0, t()).expect("frame");
            r.answered(10 + n);
            r.release(3, id(s), 0).expect("release");
            r.release(3, id(3 + s), 0).expect("release");
        }
        assert!(r.fence(10, 0).is_none(), "forgotten");
        let last = 10 + RECENT as u64 + 1;
        let f = r.fence(last, 1).expect("kept");
        assert_eq!(f.fd.fd, 150 + 3 + ((last - 10) % 3) as i32);
        assert!(r.fence(last, 2).is_none());
    }

    #[test]
    fn a_buffer_id_keeps_its_slot_range_and_its_shape() {
        let mut r = relay();
        // Slot 3 is layer 1's.
        let e = r.frame(&frame(10, &[3, 4]), 0, t()).expect_err("slot");
        assert!(
            e.what.contains("not a slot of the layer's pool [0, 3)"),
            "{e:?}"
        );
        r.frame(&frame(10, &[0, 3]), 0, t()).expect("10");
        r.answered(10);
        r.release(3, id(0), 0).expect("release");
        // The same id, wider: refused, and nothing of it taken as held.
        let mut f = frame(11, &[0, 4]);
        f.layers[0].buffer.width = 2;
        let e = r.frame(&f, 0, t()).expect_err("shape");
        assert!(e.what.contains("another shape"), "{e:?}");
        assert_eq!(r.held(), 1);
        // A new generation of the slot may have a shape of its own.
        f.layers[0].buffer.id.generation = 2;
        assert_eq!(r.frame(&f, 0, t()), Ok(Handed::On));
        assert_eq!(r.link(), 0);
        r.new_renderer(5, 12);
        assert_eq!(r.link(), 1);
    }
}
