//! A scene file in the GPU process: received with `Start`, its images taken from fds, drawn
//! with shaders every frame.
//!
//! The sequence, at every start of a GPU process (restarts included):
//! 1. **Receive** ([`receive`]), right after `Start`, already confined (the sandbox goes on at
//!    `Prepare`, long before `Start` for a standby): the scene text is
//!    parsed again with the scene crate's parser (the launcher parsed it already, so a failure
//!    here means the launcher and this binary disagree), then exactly one `SceneImage` message
//!    per image layer, in ascending layer order, each with one fd. Each fd's bytes are copied
//!    out with positional reads (`pread`; the file offset is shared with the launcher's copy and
//!    never moves), at most [`ImageLimits::max_bytes`] of them, and the fd is closed. Nothing is
//!    parsed yet: this process opens no file, it only reads the fds it was handed.
//! 2. **Prepare** ([`prepare`]), once the seccomp policy is on: the PNG bytes are decoded with
//!    the scene crate's limits (untrusted input, so decoded inside the sandbox; an undecodable
//!    image fails this process's start, naming the layer), and the [`SceneDrawer`] compiles its
//!    program and uploads the image and text textures.
//! 3. **Draw**: after a resize the textures are made anew for the new size
//!    ([`ScenePlan::resize`]); each frame, [`ScenePlan::layers`] evaluates the scene at the frame number
//!    ([`Scene::state_at`]), giving each layer's texture size (its rectangle's), its placement
//!    and what to paint.
//! 4. **Edit** ([`ScenePlan::update`]): an edited scene's text and slots, and the images of its
//!    new image layers, replace the scene from the next frame on; the images of the other
//!    image layers are kept, by slot. A pixels layer gets its pixels whole, or a rectangle of
//!    them patched into the pixels it keeps; a frame after a patch alone is damaged only where
//!    the rectangle is drawn ([`crate::damage`]).

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::Rc;

use anyhow::{bail, Context};
use ipc_protocol::messages::{
    LayerPlacement, PixelsUpdate, SceneSource, SceneStart, SceneUpdate, ViewCommand,
};
use triptych_scene::file::{
    self as scene_file, Content, Image, ImageLimits, LayerState, PositionalReader, Scene,
};

use crate::gl::{GlContext, Paint, Patch, SceneDrawer};

/// A scene as received, not yet decoded: the model and each image layer's PNG bytes.
#[derive(Debug)]
pub struct Received {
    scene: Scene,
    /// `(slot, bytes)` for each image layer.
    pngs: Vec<(u32, Vec<u8>)>,
    /// `(slot, pixels)` for each pixels layer the application has uploaded to.
    pixels: Vec<(u32, Image)>,
}

/// Gives each layer of `scene` its slot from `slots` (empty: their places in the text). Slots
/// are unique and fewer than the most layers a scene has.
fn place(scene: &mut Scene, slots: &[u32]) -> anyhow::Result<()> {
    if slots.is_empty() {
        return Ok(());
    }
    if slots.len() != scene.layers.len() {
        bail!(
            "{} slots for the {} layers of the scene",
            slots.len(),
            scene.layers.len()
        );
    }
    for (i, (l, slot)) in scene.layers.iter_mut().zip(slots).enumerate() {
        if *slot >= triptych_scene::MAX_LAYERS || slots[..i].contains(slot) {
            bail!(
                "layer {i} ({}) in slot {slot}, taken or out of range",
                l.name
            );
        }
        l.slot = *slot;
    }
    Ok(())
}

/// The PNG bytes of the image of layer `slot` from `fd`, read with positional reads, at most
/// [`ImageLimits::max_bytes`] of them; the fd is closed.
pub fn read_png(fd: OwnedFd, slot: u32) -> anyhow::Result<Vec<u8>> {
    let limits = ImageLimits::default();
    let file = File::from(fd);
    let mut bytes = Vec::new();
    PositionalReader::new(&file)
        .take(limits.max_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading the image of layer {slot}"))?;
    if bytes.len() > limits.max_bytes {
        bail!(
            "the image of layer {slot} is over {} bytes",
            limits.max_bytes
        );
    }
    Ok(bytes)
}

/// Parses the scene of `start` and takes its images from the view's messages `next` returns.
pub fn receive(
    start: &SceneStart,
    mut next: impl FnMut() -> anyhow::Result<(ViewCommand, Vec<OwnedFd>)>,
) -> anyhow::Result<Received> {
    let mut scene = match &start.source {
        SceneSource::Builtin => scene_file::default_scene(),
        SceneSource::File { name, text } => Scene::parse(text, Path::new(name))
            .map_err(|e| anyhow::anyhow!("the scene from the launcher does not parse: {e}"))?,
    };
    place(&mut scene, &start.slots)?;
    let image_layers: Vec<u32> = scene
        .layers
        .iter()
        .filter(|l| matches!(l.content, Content::Image { .. }))
        .map(|l| l.slot)
        .collect();
    if image_layers.len() != start.images as usize {
        bail!(
            "Start announces {} scene images, the scene has {} image layers",
            start.images,
            image_layers.len()
        );
    }
    let mut pngs = Vec::with_capacity(image_layers.len());
    for &want in &image_layers {
        let (msg, mut fds) = next().context("waiting for a scene image")?;
        let ViewCommand::SceneImage { layer } = msg else {
            bail!("expected the image of layer {want} from the launcher, got {msg:?}");
        };
        if layer != want {
            bail!("expected the image of layer {want} from the launcher, got layer {layer}");
        }
        let fd = fds.pop().context("a scene image without its fd")?;
        pngs.push((want, read_png(fd, want)?));
    }
    let mut pixels = Vec::with_capacity(start.pixels as usize);
    for _ in 0..start.pixels {
        let (msg, mut fds) = next().context("waiting for a pixels layer's pixels")?;
        let ViewCommand::Pixels(p) = msg else {
            bail!("expected a pixels layer's pixels from the launcher, got {msg:?}");
        };
        let (w, h) = pixels_size(&scene, p.slot)?;
        if (p.x, p.y, p.width, p.height) != (0, 0, w, h) {
            bail!(
                "the pixels of layer {} at start are not the whole layer",
                p.slot
            );
        }
        let fd = fds.pop().context("pixels without their fd")?;
        let image = Image {
            width: w,
            height: h,
            pixels: read_rows(fd, &p)?,
        };
        pixels.push((p.slot, image));
    }
    Ok(Received {
        scene,
        pngs,
        pixels,
    })
}

/// The size of the application's pixels of the pixels layer in `slot`.
fn pixels_size(scene: &Scene, slot: u32) -> anyhow::Result<(u32, u32)> {
    match scene
        .layers
        .iter()
        .find(|l| l.slot == slot)
        .map(|l| &l.content)
    {
        Some(Content::Pixels { width, height, .. }) => Ok((*width, *height)),
        _ => bail!("pixels for layer {slot}, which is no pixels layer"),
    }
}

/// The rows of a pixels layer's rectangle, from `fd`, as a scene update sends them: the whole
/// layer, or a rectangle patched into the pixels the process keeps. [`ScenePlan::update`]
/// checks the rectangle against the edited scene.
pub fn read_rect(fd: OwnedFd, p: &PixelsUpdate) -> anyhow::Result<Vec<u8>> {
    read_rows(fd, p)
}

/// The rows of `p`'s rectangle from `fd`: exactly `width * height * 4` bytes, read with
/// positional reads; the fd is closed.
fn read_rows(fd: OwnedFd, p: &PixelsUpdate) -> anyhow::Result<Vec<u8>> {
    let len = u64::from(p.width) * u64::from(p.height) * 4;
    let file = File::from(fd);
    let mut bytes = Vec::new();
    PositionalReader::new(&file)
        .take(len)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading the pixels of layer {}", p.slot))?;
    if bytes.len() as u64 != len {
        bail!(
            "the pixels of layer {} are {} bytes, not the {len} of a {}x{} rectangle",
            p.slot,
            bytes.len(),
            p.width,
            p.height
        );
    }
    Ok(bytes)
}

/// A scene ready to draw.
#[derive(Debug)]
pub struct ScenePlan {
    scene: Scene,
    /// The decoded images, kept for a new drawer after a resize.
    images: Vec<Option<Image>>,
    /// The output size the drawer's textures were made for.
    size: (u32, u32),
    drawer: Rc<SceneDrawer>,
}

/// Decodes the images of `received` and makes the scene's GL resources on `gl`, for an output
/// of `out_w` x `out_h`.
pub fn prepare(
    received: Received,
    gl: &mut GlContext,
    out_w: u32,
    out_h: u32,
) -> anyhow::Result<ScenePlan> {
    let Received {
        mut scene,
        pngs,
        pixels,
    } = received;
    let mut images: Vec<Option<Image>> = vec![None; triptych_scene::MAX_LAYERS as usize];
    decode(&scene, pngs, &mut images)?;
    for (slot, image) in pixels {
        bump_serial(&mut scene, slot);
        if let Some(i) = images.get_mut(slot as usize) {
            *i = Some(image);
        }
    }
    let drawer = SceneDrawer::new(gl, &scene, &images, out_w, out_h)
        .context("preparing the scene's shaders and textures")?;
    Ok(ScenePlan {
        scene,
        images,
        size: (out_w, out_h),
        drawer: Rc::new(drawer),
    })
}

/// Decodes each `(slot, bytes)` of `pngs` into `images[slot]`.
fn decode(
    scene: &Scene,
    pngs: Vec<(u32, Vec<u8>)>,
    images: &mut [Option<Image>],
) -> anyhow::Result<()> {
    let limits = ImageLimits::default();
    for (slot, bytes) in pngs {
        let name = scene
            .layers
            .iter()
            .find(|l| l.slot == slot)
            .map_or("?", |l| l.name.as_str());
        let image = scene_file::decode_png_bytes(&bytes, &limits).map_err(|e| {
            anyhow::anyhow!("layer {slot} ({name}): the image cannot be decoded: {e}")
        })?;
        match images.get_mut(slot as usize) {
            Some(i) => *i = Some(image),
            None => bail!("an image for layer {slot}, outside the scene's slots"),
        }
    }
    Ok(())
}

/// The pixels layer in `slot` has new pixels: its state changes with them. Returns its new
/// serial.
fn bump_serial(scene: &mut Scene, slot: u32) -> u64 {
    match scene
        .layers
        .iter_mut()
        .find(|l| l.slot == slot)
        .map(|l| &mut l.content)
    {
        Some(Content::Pixels { serial, .. }) => {
            *serial += 1;
            *serial
        }
        _ => 0,
    }
}

/// Copies `bytes`, the rows of `p`'s rectangle, into `image`: the rectangle must lie inside it
/// and the rows be exactly its size.
fn patch_rows(image: &mut Image, p: &PixelsUpdate, bytes: &[u8]) -> anyhow::Result<()> {
    let inside = |at: u32, len: u32, side: u32| at.checked_add(len).is_some_and(|e| e <= side);
    if p.width == 0
        || p.height == 0
        || !inside(p.x, p.width, image.width)
        || !inside(p.y, p.height, image.height)
    {
        bail!(
            "a {}x{} rectangle at ({}, {}) outside layer {}'s {}x{} pixels",
            p.width,
            p.height,
            p.x,
            p.y,
            p.slot,
            image.width,
            image.height
        );
    }
    let row = p.width as usize * 4;
    if bytes.len() != row * p.height as usize {
        bail!(
            "the rows of layer {}'s rectangle are the wrong size",
            p.slot
        );
    }
    for (i, src) in bytes.chunks_exact(row).enumerate() {
        let at = ((p.y as usize + i) * image.width as usize + p.x as usize) * 4;
        let Some(dst) = image.pixels.get_mut(at..at + row) else {
            bail!("layer {}'s pixels are shorter than their size", p.slot);
        };
        dst.copy_from_slice(src);
    }
    Ok(())
}

/// One layer of one frame: its slot, texture size, placement and what to paint.
#[derive(Debug)]
pub struct FrameLayer {
    /// Its slot: the layer number frames give it.
    pub slot: u32,
    /// Texture width (the layer rectangle's).
    pub width: u32,
    /// Texture height.
    pub height: u32,
    /// Where it goes in the frame.
    pub placement: LayerPlacement,
    /// What to draw.
    pub paint: Paint,
}

impl ScenePlan {
    /// Makes the textures anew for an output of `out_w` x `out_h` (a text layer's size may be
    /// relative to the output); nothing happens when the size is the same. Work in flight
    /// keeps the old textures alive until it is done.
    pub fn resize(&mut self, gl: &mut GlContext, out_w: u32, out_h: u32) -> anyhow::Result<()> {
        if self.size != (out_w, out_h) {
            // Image and pixels textures do not depend on the output's size; text does (its
            // rectangle may be relative to the output).
            let scene = &self.scene;
            let keep = |slot: u32| {
                scene
                    .layers
                    .iter()
                    .find(|l| l.slot == slot)
                    .is_some_and(|l| !matches!(l.content, Content::Text { .. }))
            };
            let drawer = self
                .drawer
                .edited(gl, &self.scene, &self.images, (out_w, out_h), &keep)
                .context("preparing the scene's shaders and textures")?;
            self.drawer = Rc::new(drawer);
            self.size = (out_w, out_h);
        }
        Ok(())
    }

    /// The slot of each layer of the scene.
    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.scene.layers.iter().map(|l| l.slot)
    }

    /// Draws the edited scene of `update` from now on. `pngs` are the images of its new image
    /// layers (`SceneUpdate::images`, in order) and `pixels` the rows of its changed pixels
    /// layers, each the whole layer or a rectangle of a layer it keeps
    /// (`SceneUpdate::pixels_kept`); the other image and pixels layers keep theirs, by slot.
    pub fn update(
        &mut self,
        gl: &mut GlContext,
        update: &SceneUpdate,
        pngs: Vec<(u32, Vec<u8>)>,
        pixels: Vec<(PixelsUpdate, Vec<u8>)>,
    ) -> anyhow::Result<()> {
        let mut scene = Scene::parse(&update.text, Path::new(&update.name)).map_err(|e| {
            anyhow::anyhow!("the edited scene from the launcher does not parse: {e}")
        })?;
        place(&mut scene, &update.slots)?;
        let mut images = self.images.clone();
        // An image is kept only for a slot that is still an image layer. A pixels layer keeps
        // its pixels (and their serial) only where the launcher says so (`pixels_kept`), of the
        // same size; any other shows what the update sends, or nothing: whatever this process
        // held, the launcher alone decides what a layer shows.
        for (slot, image) in images.iter_mut().enumerate() {
            let old = self.scene.layers.iter().find(|l| l.slot as usize == slot);
            let new = scene.layers.iter_mut().find(|l| l.slot as usize == slot);
            let kept = update.pixels_kept.iter().any(|k| *k as usize == slot);
            let still = match (old.map(|l| &l.content), new.map(|l| &mut l.content)) {
                (Some(Content::Image { .. }), Some(Content::Image { .. })) => true,
                (
                    Some(Content::Pixels {
                        width,
                        height,
                        serial,
                        ..
                    }),
                    Some(Content::Pixels {
                        width: w,
                        height: h,
                        serial: s,
                        ..
                    }),
                ) => {
                    // Its state changes whenever what it shows may have: kept, the same serial;
                    // cleared, a new one.
                    let same = kept && (width, height) == (w, h);
                    *s = if same { *serial } else { serial + 1 };
                    same
                }
                _ => false,
            };
            if !still {
                *image = None;
            }
        }
        let fresh: Vec<u32> = pngs.iter().map(|(slot, _)| *slot).collect();
        decode(&scene, pngs, &mut images)?;
        let mut patches = Vec::new();
        for (p, bytes) in pixels {
            let slot = p.slot;
            let (w, h) = pixels_size(&scene, slot)?;
            let Some(image) = images.get_mut(slot as usize) else {
                bail!("pixels for layer {slot}, outside the scene's slots");
            };
            let rect = (p.x, p.y, p.width, p.height);
            if rect == (0, 0, w, h) {
                *image = Some(Image {
                    width: w,
                    height: h,
                    pixels: bytes,
                });
            } else {
                let Some(held) = image.as_mut() else {
                    bail!(
                        "a {}x{} rectangle of layer {slot}'s pixels, which this process does not keep",
                        p.width,
                        p.height
                    );
                };
                patch_rows(held, &p, &bytes)?;
            }
            let serial = bump_serial(&mut scene, slot);
            if rect != (0, 0, w, h) {
                patches.push(Patch { slot, serial, rect });
            }
        }
        let (w, h) = self.size;
        // A layer whose content (its text, image source and pixels' serial included) and size
        // did not change, and that got no new image, keeps its texture; the others are uploaded
        // anew. The same program draws them all: an edit never compiles.
        let old = &self.scene;
        let new = &scene;
        let keep = |slot: u32| {
            let a = old.layers.iter().find(|l| l.slot == slot);
            let b = new.layers.iter().find(|l| l.slot == slot);
            match (a, b) {
                (Some(a), Some(b)) => {
                    let size = |l: &triptych_scene::file::Layer| {
                        let r = l.state_at(slot as usize, 0, w, h).rect;
                        (r.w, r.h)
                    };
                    a.content == b.content && size(a) == size(b) && !fresh.contains(&slot)
                }
                _ => false,
            }
        };
        let mut drawer = self
            .drawer
            .edited(gl, &scene, &images, (w, h), &keep)
            .context("preparing the edited scene's shaders and textures")?;
        for p in patches {
            drawer.patch(p);
        }
        self.scene = scene;
        self.images = images;
        self.drawer = Rc::new(drawer);
        Ok(())
    }

    /// Every layer at `frame` of an output of `out_w` x `out_h`, in layer order.
    pub fn layers(&self, frame: u64, out_w: u32, out_h: u32) -> Vec<FrameLayer> {
        self.scene
            .state_at(frame, out_w, out_h)
            .into_iter()
            .map(|state| self.layer(state))
            .collect()
    }

    fn layer(&self, state: LayerState) -> FrameLayer {
        let clamp = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        FrameLayer {
            slot: u32::try_from(state.index).unwrap_or(u32::MAX),
            // A turned or scaled layer's texture is its quad's bounds.
            width: state.bounds.w,
            height: state.bounds.h,
            placement: LayerPlacement {
                x: clamp(state.bounds.x),
                y: clamp(state.bounds.y),
                z: state.z,
                opacity: state.opacity,
            },
            paint: Paint::Scene {
                drawer: Rc::clone(&self.drawer),
                state,
            },
        }
    }
}
