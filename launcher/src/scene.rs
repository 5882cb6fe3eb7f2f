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
use triptych_scene::file::{self as scene_file, Content, Image, ImageLimits, ImageSource, Scene};

/// What `--scene` names that is not a file: the built-in scene.
pub const BUILTIN_NAME: &str = "default";

/// A loaded scene: the model, what the GPU process is sent, and the images' fds.
#[derive(Debug)]
pub struct LoadedScene {
    /// The parsed scene.
    pub scene: Scene,
    /// What `Start` carries.
    pub start: SceneStart,
    /// `(layer index, fd)` for every image layer, in ascending layer order: the PNG bytes, as
    /// a read-only file or a sealed memfd.
    pub images: Vec<(u32, OwnedFd)>,
    /// The decoded image of each layer (`None` for other kinds), for `--verify`.
    pub decoded: Vec<Option<Image>>,
}

/// Loads `--scene ARG`: [`BUILTIN_NAME`] or a path.
pub fn load(arg: &Path) -> anyhow::Result<LoadedScene> {
    let (scene, source) = if arg == Path::new(BUILTIN_NAME) {
        (scene_file::default_scene(), SceneSource::Builtin)
    } else {
        let text = read_text(arg)?;
        let scene = Scene::parse(&text, arg).map_err(|e| anyhow::anyhow!("{e}"))?;
        let name = arg.display().to_string();
        (scene, SceneSource::File { name, text })
    };
    let limits = ImageLimits::default();
    let mut images = Vec::new();
    let mut decoded = Vec::with_capacity(scene.layers.len());
    for (index, layer) in scene.layers.iter().enumerate() {
        let Content::Image { source, .. } = &layer.content else {
            decoded.push(None);
            continue;
        };
        let what = || format!("layers[{index}] ({}): image", layer.name);
        let fd = match source {
            ImageSource::File(path) => open_image(path).with_context(what)?,
            ImageSource::Builtin { name, bytes } => {
                embedded_memfd(name, bytes).with_context(what)?
            }
        };
        let file = File::from(fd);
        let image = scene_file::decode_png(PositionalReader::new(&file), &limits)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| match source {
                ImageSource::File(p) => format!("{}: decoding {}", what(), p.display()),
                ImageSource::Builtin { name, .. } => format!("{}: decoding {name}", what()),
            })?;
        decoded.push(Some(image));
        let index = u32::try_from(index).context("layer index")?;
        images.push((index, OwnedFd::from(file)));
    }
    let start = SceneStart {
        source,
        images: u32::try_from(images.len()).context("image count")?,
    };
    Ok(LoadedScene {
        scene,
        start,
        images,
        decoded,
    })
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
fn embedded_memfd(name: &str, bytes: &[u8]) -> anyhow::Result<OwnedFd> {
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
