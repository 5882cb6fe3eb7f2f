//! `--scene`: the scene file a run draws, loaded once, before any child starts.
//!
//! The launcher is the one process that may read the user's files, so it does all of the
//! reading here: the scene file's text (parsed with [`Scene::parse`], a bad file ending the
//! run with the parser's located error before anything is spawned), and every image the scene
//! names, opened read-only relative to the file, checked to be a regular file and decoded once
//! with the scene crate's limits (so an undecodable PNG is reported here, by file name, rather
//! than as a GPU process that keeps failing to start). The opened files are kept open for the
//! whole run: every GPU process start, restarts included, gets the text in `Start`
//! ([`SceneStart`]) and each image's fd in a `SceneImage` message after it
//! (`session/spawn.rs`). The GPU process decodes the PNGs again from those fds, with positional
//! reads, so the shared file offset never moves and every start reads the same bytes.
//!
//! `--scene default` is the scene crate's built-in scene; its embedded PNGs are copied into
//! sealed memfds, so the GPU process takes every image the same way.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

use std::path::{Path, PathBuf};
use triptych_scene::file::PositionalReader;

use anyhow::{bail, Context};
use ipc_protocol::messages::{SceneSource, SceneStart, MAX_SCENE_TEXT};
use std::sync::Arc;
use triptych_scene::file::{
    self as scene_file, Content, Document, EditError, EditKind, Image, ImageLimits, ImageSource,
    Scene, Transaction,
};

/// What `--scene` names that is not a file: the built-in scene.
pub const BUILTIN_NAME: &str = "default";

/// A loaded scene: the model, what the GPU process is sent, and the images' fds.
#[derive(Debug)]
pub struct LoadedScene {
    /// The parsed scene.
    pub scene: Scene,
    /// What `Start` carries.
    pub start: SceneStart,
    /// `(slot, fd)` for every image layer, in the text's order: the PNG bytes, as a read-only
    /// file or a sealed memfd, shared by the scenes of the edits that keep the layer.
    pub images: ImageFds,
    /// The decoded image of each image layer's slot, and the application's pixels of each
    /// pixels layer's (`None` for other kinds, free slots and pixels never uploaded), for
    /// `--verify` and for every GPU process start.
    pub decoded: Vec<Option<Arc<Image>>>,
    /// The latest uploads into pixels layers, oldest first, at most [`UPLOADS`]: what a GPU
    /// process that has older pixels of a layer lacks ([`LoadedScene::uploaded_since`]).
    pub uploads: Vec<Upload>,
    /// The scene as it can be edited.
    pub doc: Document,
}

/// One upload into a pixels layer: which pixels it made, of which, and where.
///
/// The pixels are named by weak handles: they keep the handles' addresses from being reused
/// while the upload is remembered, and not the pixels themselves.
#[derive(Clone, Debug)]
pub struct Upload {
    slot: u32,
    /// The layer's pixels before (none while it was transparent).
    before: Option<std::sync::Weak<Image>>,
    /// Its pixels after.
    after: std::sync::Weak<Image>,
    /// The rectangle replaced: left, top, width, height.
    rect: (u32, u32, u32, u32),
}

/// How many uploads a scene remembers: a GPU process further behind gets a layer's pixels whole.
pub const UPLOADS: usize = 64;

/// The most bytes the renderer may have to map for a run of `scene`'s layers, each in a pool of
/// `pool` buffers, in an output of at most `max` (plus `extra` more layers of the whole output,
/// the overlay in a window): each layer at the largest texture it can need, its rows padded to
/// 64 pixels and its height to 16 rows, as a driver may lay a buffer out.
pub fn mapping_need(scene: &Scene, pool: u32, max: (u32, u32), extra: u32) -> u64 {
    let pad = |v: u32, to: u32| u64::from(v.div_ceil(to) * to);
    let layer = |(w, h): (u32, u32)| pad(w, 64) * 4 * pad(h, 16);
    let layers: u64 = scene
        .layers
        .iter()
        .map(|l| layer(l.largest_texture(max.0, max.1)))
        .sum::<u64>()
        + u64::from(extra) * layer(max);
    layers.saturating_mul(u64::from(pool))
}

impl LoadedScene {
    /// The rectangles of `slot`'s pixels uploaded since `had`, whose pixels of the layer this
    /// scene's descend from by remembered uploads alone (newest first); `None` when they do
    /// not (no pixels in either, another layer since, or uploads forgotten).
    pub fn uploaded_since(
        &self,
        had: &LoadedScene,
        slot: u32,
    ) -> Option<Vec<(u32, u32, u32, u32)>> {
        let target = Arc::as_ptr(had.decoded.get(slot as usize)?.as_ref()?);
        let mut at = Arc::as_ptr(self.decoded.get(slot as usize)?.as_ref()?);
        let mut rects = Vec::new();
        for u in self.uploads.iter().rev() {
            if at == target {
                break;
            }
            if u.slot != slot || std::sync::Weak::as_ptr(&u.after) != at {
                continue;
            }
            rects.push(u.rect);
            at = std::sync::Weak::as_ptr(u.before.as_ref()?);
        }
        (at == target).then_some(rects)
    }

    /// The application's pixels of each pixels layer that has any, by slot, in the scene's
    /// layer order: what a GPU process's `Start` is followed by.
    pub fn pixels(&self) -> impl Iterator<Item = (u32, &Arc<Image>)> + '_ {
        self.scene.layers.iter().filter_map(|l| {
            if !matches!(l.content, Content::Pixels { .. }) {
                return None;
            }
            let image = self.decoded.get(l.slot as usize)?.as_ref()?;
            Some((l.slot, image))
        })
    }
}

/// Loads `--scene ARG`: [`BUILTIN_NAME`] or a path.
pub fn load(arg: &Path) -> anyhow::Result<LoadedScene> {
    let doc = if arg == Path::new(BUILTIN_NAME) {
        Document::builtin()
    } else {
        let text = read_text(arg)?;
        Document::parse(&text, arg).map_err(|e| anyhow::anyhow!("{e}"))?
    };
    let source = if arg == Path::new(BUILTIN_NAME) {
        SceneSource::Builtin
    } else {
        SceneSource::File {
            name: arg.display().to_string(),
            text: doc.text().to_owned(),
        }
    };
    let (images, decoded) = open_images(doc.scene(), None)?;
    let start = SceneStart {
        source,
        images: u32::try_from(images.len()).context("image count")?,
        slots: Vec::new(),
        pixels: 0,
    };
    Ok(LoadedScene {
        scene: doc.scene().clone(),
        start,
        images,
        decoded,
        uploads: Vec::new(),
        doc,
    })
}

/// The image of every image layer of `scene` (its fd and decoded pixels, by slot) and the
/// application's pixels of every pixels layer that has any. An image `before` had in the same
/// slot from the same source is taken from it (its fd shared), not opened again; a pixels
/// layer keeps its pixels while it keeps its slot, its name and its size.
fn open_images(scene: &Scene, before: Option<&LoadedScene>) -> anyhow::Result<(ImageFds, Decoded)> {
    let limits = ImageLimits::default();
    let mut images = Vec::new();
    let mut decoded = vec![None; triptych_scene::MAX_LAYERS as usize];
    for (index, layer) in scene.layers.iter().enumerate() {
        let slot = layer.slot;
        let was = before.and_then(|b| b.scene.layers.iter().find(|l| l.slot == slot));
        let was_decoded = before.and_then(|b| b.decoded.get(slot as usize).cloned().flatten());
        let source = match &layer.content {
            Content::Image { source, .. } => source,
            Content::Pixels { width, height, .. } => {
                // The same layer (its slot and its name), still of that size: a layer added in
                // a freed slot starts transparent, whatever was there.
                let same = was.is_some_and(|l| l.name == layer.name)
                    && matches!(
                        was.map(|l| &l.content),
                        Some(Content::Pixels { width: w, height: h, .. }) if (w, h) == (width, height)
                    );
                if let (true, Some(d)) = (same, decoded.get_mut(slot as usize)) {
                    *d = was_decoded;
                }
                continue;
            }
            _ => continue,
        };
        let same = matches!(
            was.map(|l| &l.content),
            Some(Content::Image { source: s, .. }) if s == source
        );
        let kept = before
            .and_then(|b| b.images.iter().find(|(s, _)| *s == slot))
            .zip(was_decoded)
            .filter(|_| same);
        if let Some(((_, fd), image)) = kept {
            images.push((slot, Arc::clone(fd)));
            if let Some(d) = decoded.get_mut(slot as usize) {
                *d = Some(image);
            }
            continue;
        }
        let what = || format!("layers[{index}] ({}): image", layer.name);
        let fd = match source {
            ImageSource::File(path) => open_image(path).with_context(what)?,
            ImageSource::Builtin { name, bytes } => sealed_memfd(name, bytes).with_context(what)?,
        };
        let file = File::from(fd);
        let image = scene_file::decode_png(PositionalReader::new(&file), &limits)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| match source {
                ImageSource::File(p) => format!("{}: decoding {}", what(), p.display()),
                ImageSource::Builtin { name, .. } => format!("{}: decoding {name}", what()),
            })?;
        if let Some(d) = decoded.get_mut(slot as usize) {
            *d = Some(Arc::new(image));
        }
        images.push((slot, Arc::new(OwnedFd::from(file))));
    }
    Ok((images, decoded))
}

/// Each image layer's PNG file, by slot.
type ImageFds = Vec<(u32, Arc<OwnedFd>)>;

/// Each slot's decoded image or application's pixels.
type Decoded = Vec<Option<Arc<Image>>>;

/// Pixels an application supplies for a pixels layer ([`Editor::upload`]): a rectangle of
/// premultiplied RGBA8 rows, `width * 4` bytes a row, tightly packed.
#[derive(Clone, Copy, Debug)]
pub struct Pixels<'a> {
    /// The rectangle's left column in the layer's pixels.
    pub x: u32,
    /// Its top row.
    pub y: u32,
    /// Its width.
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// The rows, `width * height * 4` bytes.
    pub rgba: &'a [u8],
}

/// A scene edit ready for the run: the edited scene and its version. The run works out what
/// the GPU process lacks of it (`session/edit.rs`).
#[derive(Debug, Clone)]
pub struct Edit {
    /// The scene after the edit.
    pub scene: Arc<LoadedScene>,
    /// Its version: one more than the edit before.
    pub version: u64,
    /// An upload's share of the [`Backlog`], given back when the run has taken the edit.
    held: Option<Arc<Held>>,
}

/// Bytes of the application's pixels in uploads made and not yet taken by the run: what a
/// burst of uploads holds while the run is busy (starting a child, say), each upload a copy of
/// its layer's pixels. Beyond [`MAX_BACKLOG`] an upload is refused until the run has taken the
/// ones before: the rate limit on uploads, which the run itself turns into at most one update
/// of the GPU process a frame.
#[derive(Debug, Default)]
pub struct Backlog {
    bytes: std::sync::atomic::AtomicU64,
}

/// The most bytes of pixels that wait for the run ([`Backlog`]); one upload of a layer larger
/// than this waits alone.
pub const MAX_BACKLOG: u64 = 256 << 20;

/// A share of the [`Backlog`], given back when dropped.
#[derive(Debug)]
struct Held {
    backlog: Arc<Backlog>,
    bytes: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.backlog
            .bytes
            .fetch_sub(self.bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What became of an edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The edit's version.
    pub version: u64,
    /// The first frame presented that shows it; `None`: it never will, a new scene replaced
    /// the one it edited first.
    pub frame: Option<u64>,
}

/// Why an edit was refused. Nothing changed. More reasons may come in later versions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditRefused {
    /// The transaction, or the scene it makes, breaks a rule.
    #[error(transparent)]
    Rule(#[from] EditError),
    /// An image it names cannot be opened or decoded.
    #[error("{0:#}")]
    Image(anyhow::Error),
}

impl EditRefused {
    /// Which rule: the transaction's, or [`EditKind::Limit`] for an image that cannot be
    /// read.
    pub fn kind(&self) -> EditKind {
        match self {
            EditRefused::Rule(e) => e.kind,
            EditRefused::Image(_) => EditKind::Limit,
        }
    }
}

/// What the renderer may map of a run's layers: the pool, the largest output and the layers
/// beyond the scene's (the overlay in a window). An edit that could need more than
/// [`MAP_BUDGET`](ipc_protocol::relay::MAP_BUDGET) is refused, so that an honest GPU process
/// drawing it is never taken for one that describes buffers the renderer cannot map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Buffers per layer.
    pub pool: u32,
    /// The largest output.
    pub max: (u32, u32),
    /// Layers beyond the scene's, each as large as the output.
    pub extra: u32,
}

impl Budget {
    /// Why `scene` is refused, if it is.
    pub fn check(&self, scene: &Scene) -> Result<(), EditError> {
        let need = mapping_need(scene, self.pool, self.max, self.extra);
        let may = ipc_protocol::relay::MAP_BUDGET;
        if need > may {
            return Err(EditError::new(
                EditKind::Limit,
                "",
                format!(
                    "the scene's layers, in pools of {}, could need the renderer to map {need} bytes, more than the {may} it may",
                    self.pool
                ),
            )
            .hint("make layers smaller, scale or turn fewer of them, or use a smaller --pool"));
        }
        Ok(())
    }
}

/// The scene of a run as the application edits it: the current scene and its version.
#[derive(Debug)]
pub struct Editor {
    scene: Arc<LoadedScene>,
    version: u64,
    /// Uploads made and not yet taken by the run.
    backlog: Arc<Backlog>,
    budget: Option<Budget>,
    /// With `--verify`: the frame checked at the end and the output's size; every edit must
    /// leave a scene whose CPU reference of that frame exists.
    verify: Option<(u64, (u32, u32))>,
}

impl Editor {
    /// Edits of `scene`, the run's first.
    pub fn new(scene: Arc<LoadedScene>) -> Editor {
        Editor {
            scene,
            version: 0,
            backlog: Arc::default(),
            budget: None,
            verify: None,
        }
    }

    /// Refuses every edit that leaves frame `frame` of a `size` output without a CPU
    /// reference (`--verify`'s check of the last frame).
    pub fn with_verify(mut self, frame: u64, size: (u32, u32)) -> Editor {
        self.verify = Some((frame, size));
        self
    }

    /// Refuses every edit whose layers could need more mapping than `budget` allows.
    pub fn with_budget(mut self, budget: Budget) -> Editor {
        self.budget = Some(budget);
        self
    }

    /// The scene now.
    pub fn scene(&self) -> &Arc<LoadedScene> {
        &self.scene
    }

    /// `scene` replaces the scene as a whole ([`crate::shell::Shell::set_scene`]).
    pub fn replace(&mut self, scene: Arc<LoadedScene>) {
        self.scene = scene;
    }

    /// Applies `tx`: the edit to send to the run, or why it was refused (and nothing changed).
    pub fn edit(&mut self, tx: &Transaction) -> Result<Edit, EditRefused> {
        let doc = self.scene.doc.apply(tx)?;
        if let Some(b) = &self.budget {
            b.check(doc.scene())?;
        }
        if doc.text().len() > MAX_SCENE_TEXT {
            return Err(EditError::new(
                EditKind::Limit,
                "",
                format!(
                    "the edited scene is {} bytes of text, more than the {MAX_SCENE_TEXT} a scene may have",
                    doc.text().len()
                ),
            )
            .into());
        }
        let (images, decoded) =
            open_images(doc.scene(), Some(&self.scene)).map_err(EditRefused::Image)?;
        let start = SceneStart {
            source: SceneSource::File {
                name: doc.file().display().to_string(),
                text: doc.text().to_owned(),
            },
            images: u32::try_from(images.len()).unwrap_or(u32::MAX),
            slots: doc.slots(),
            pixels: 0,
        };
        let scene = Arc::new(LoadedScene {
            scene: doc.scene().clone(),
            start,
            images,
            decoded,
            uploads: self.scene.uploads.clone(),
            doc,
        });
        if let Some((frame, (w, h))) = self.verify {
            let images: Vec<_> = scene.decoded.iter().map(|d| d.as_deref()).collect();
            if let Err(e) = scene_file::reference_frame(&scene.scene, frame, w, h, &images) {
                return Err(EditError::new(
                    EditKind::Limit,
                    "",
                    format!("--verify checks frame {frame} against the scene's CPU reference, and the edited scene has none: {e}"),
                )
                .hint("a run under --verify keeps to the exactly predictable kinds: no turn, scale, gradient or linear sampling")
                .into());
            }
        }
        Ok(self.next(scene))
    }

    fn next(&mut self, scene: Arc<LoadedScene>) -> Edit {
        self.scene = Arc::clone(&scene);
        self.version += 1;
        Edit {
            scene,
            version: self.version,
            held: None,
        }
    }

    /// Shows `pixels` in the pixels layer named `layer` from the next frame on: its rectangle
    /// of the layer's pixels is replaced, the rest kept. Refused, and nothing changed, when the
    /// layer is no pixels layer, the rectangle is not inside its pixels, the rows are not
    /// `width * height * 4` bytes, or a colour exceeds its alpha (not premultiplied).
    pub fn upload(&mut self, layer: &str, pixels: &Pixels<'_>) -> Result<Edit, EditRefused> {
        let refuse = |kind: EditKind, msg: String| {
            EditRefused::Rule(EditError::new(kind, format!("{layer}.pixels"), msg))
        };
        let Some(l) = self.scene.scene.layers.iter().find(|l| l.name == layer) else {
            let names: Vec<&str> = self
                .scene
                .scene
                .layers
                .iter()
                .map(|l| l.name.as_str())
                .collect();
            return Err(EditRefused::Rule(
                EditError::new(
                    EditKind::UnknownLayer,
                    layer,
                    format!("the scene has no layer named {layer:?}"),
                )
                .hint(format!("its layers are {}", names.join(", "))),
            ));
        };
        let Content::Pixels { width, height, .. } = l.content else {
            return Err(refuse(
                EditKind::Malformed,
                format!(
                    "a {} layer takes no pixels; only a layer of kind \"pixels\" does",
                    l.content.kind_name()
                ),
            ));
        };
        let (x, y, w, h) = (pixels.x, pixels.y, pixels.width, pixels.height);
        let inside = |at: u32, len: u32, side: u32| {
            len >= 1 && at.checked_add(len).is_some_and(|e| e <= side)
        };
        if !inside(x, w, width) || !inside(y, h, height) {
            return Err(refuse(
                EditKind::Limit,
                format!("{w}x{h} at ({x}, {y}) is not inside the layer's {width}x{height} pixels"),
            ));
        }
        let len = w as usize * h as usize * 4;
        if pixels.rgba.len() != len {
            return Err(refuse(
                EditKind::Limit,
                format!(
                    "{} bytes for {w}x{h} pixels, which are {len} bytes (RGBA8, {} a row)",
                    pixels.rgba.len(),
                    w * 4
                ),
            ));
        }
        if let Some(i) = pixels
            .rgba
            .chunks_exact(4)
            .position(|p| p[..3].iter().any(|c| *c > p[3]))
        {
            return Err(refuse(
                EditKind::Malformed,
                format!(
                    "pixel ({}, {}) has a colour above its alpha: the pixels are premultiplied RGBA8",
                    i as u32 % w,
                    i as u32 / w
                ),
            ));
        }
        // The rate limit: this upload holds a copy of the layer's pixels until the run takes it.
        let bytes = u64::from(width) * u64::from(height) * 4;
        let waiting = self
            .backlog
            .bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        if waiting > 0 && waiting + bytes > MAX_BACKLOG {
            return Err(EditRefused::Rule(
                EditError::new(
                    EditKind::Limit,
                    format!("{layer}.pixels"),
                    format!(
                        "{} MiB of uploads wait for the run, and this one would take them past the {} MiB that may",
                        waiting >> 20,
                        MAX_BACKLOG >> 20
                    ),
                )
                .hint("upload again once an Event::Applied says the ones before are on screen; the run draws at most one update a frame"),
            ));
        }
        let slot = l.slot;
        let mut image = match self.scene.decoded.get(slot as usize).cloned().flatten() {
            Some(i) => Image::clone(&i),
            None => Image {
                width,
                height,
                pixels: vec![0; width as usize * height as usize * 4],
            },
        };
        let row = w as usize * 4;
        for (i, src) in pixels.rgba.chunks_exact(row).enumerate() {
            let at = ((y as usize + i) * width as usize + x as usize) * 4;
            if let Some(dst) = image.pixels.get_mut(at..at + row) {
                dst.copy_from_slice(src);
            }
        }
        let mut decoded = self.scene.decoded.clone();
        let image = Arc::new(image);
        let before = decoded
            .get_mut(slot as usize)
            .and_then(|d| d.replace(Arc::clone(&image)));
        let mut uploads = self.scene.uploads.clone();
        if uploads.len() == UPLOADS {
            uploads.remove(0);
        }
        uploads.push(Upload {
            slot,
            before: before.as_ref().map(Arc::downgrade),
            after: Arc::downgrade(&image),
            rect: (x, y, w, h),
        });
        let images = self.scene.images.clone();
        let scene = Arc::new(LoadedScene {
            scene: self.scene.scene.clone(),
            start: self.scene.start.clone(),
            images,
            decoded,
            uploads,
            doc: self.scene.doc.clone(),
        });
        self.backlog
            .bytes
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        let mut edit = self.next(scene);
        edit.held = Some(Arc::new(Held {
            backlog: Arc::clone(&self.backlog),
            bytes,
        }));
        Ok(edit)
    }
}

/// The scene file's text, at most [`MAX_SCENE_TEXT`] bytes of UTF-8.
fn read_text(path: &Path) -> anyhow::Result<String> {
    let file = File::open(path).with_context(|| {
        format!(
            "{}: cannot open the scene file; hint: check the path, or use --scene {BUILTIN_NAME} for the built-in scene",
            path.display()
        )
    })?;
    let len = file
        .metadata()
        .with_context(|| format!("{}: reading its size", path.display()))?
        .len();
    if len > MAX_SCENE_TEXT as u64 {
        bail!(
            "{}: the scene file is {len} bytes; hint: scene files are at most {MAX_SCENE_TEXT} bytes",
            path.display()
        );
    }
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(file, MAX_SCENE_TEXT as u64 + 1),
        &mut text,
    )
    .with_context(|| format!("{}: reading the scene file (is it UTF-8?)", path.display()))?;
    if text.len() > MAX_SCENE_TEXT {
        bail!(
            "{}: the scene file is over {MAX_SCENE_TEXT} bytes",
            path.display()
        );
    }
    Ok(text)
}

/// Opens an image read-only, close-on-exec, without following it into a FIFO or device.
fn open_image(path: &PathBuf) -> anyhow::Result<OwnedFd> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO would block the open; the type is checked right after.
        .custom_flags(triptych_sys::abi::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    Ok(OwnedFd::from(file))
}

/// A sealed memfd holding `bytes`, read-only for whoever receives it.
pub(crate) fn sealed_memfd(name: &str, bytes: &[u8]) -> anyhow::Result<OwnedFd> {
    let fd = triptych_sys::memfd::create_for_export(c"triptych-scene-image", bytes.len() as u64)
        .with_context(|| format!("creating a memfd for {name}"))?;
    let file = File::from(fd);
    file.write_all_at(bytes, 0)
        .with_context(|| format!("writing {name} into its memfd"))?;
    let fd = OwnedFd::from(file);
    triptych_sys::memfd::seal_future_write(std::os::fd::AsFd::as_fd(&fd))
        .with_context(|| format!("sealing the memfd of {name}"))?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_that_wait_for_the_run_past_the_backlog_are_refused_until_it_takes_them() {
        let dir = std::env::temp_dir().join(format!("triptych-backlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let path = dir.join("big.toml");
        std::fs::write(
            &path,
            "[[layers]]\nname = \"canvas\"\nkind = \"pixels\"\nwidth = 4096\nheight = 4096\nrect = { x = 0, y = 0, w = 64, h = 64 }\n",
        )
        .expect("writing the scene");
        let mut editor = Editor::new(Arc::new(load(&path).expect("the scene loads")));
        let px = Pixels {
            x: 0,
            y: 0,
            width: 1,
            height: 1,
            rgba: &[1, 2, 3, 4],
        };
        // Each upload holds a copy of the 64 MiB layer until the run takes it: four fit.
        let waiting: Vec<Edit> = (0..4)
            .map(|_| editor.upload("canvas", &px).expect("taken"))
            .collect();
        let refused = editor.upload("canvas", &px);
        match refused {
            Err(EditRefused::Rule(e)) => assert_eq!(e.kind, EditKind::Limit, "{e}"),
            other => panic!("not refused: {other:?}"),
        }
        // The run takes them (and drops them): uploads go again.
        drop(waiting);
        let again = editor
            .upload("canvas", &px)
            .expect("taken once the run took the rest");
        assert_eq!(again.version, 5, "the refused upload took no version");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
