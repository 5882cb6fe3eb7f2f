//! The headless OpenGL ES 3 context, the layer targets drawn with it, and GL sync objects.
//!
//! # Ownership and lifetimes
//!
//! [`GlContext`] holds an `Rc` of the shared state: the EGL display and context (through glutin
//! on the device and GBM platforms, through [`SurfacelessContext`] on the surfaceless one), the
//! `glow` function table and the [`EglInfo`] gathered at creation. Every [`LayerTarget`] and
//! [`GlFence`] holds the same `Rc`, so the context outlives them all, and each deletes its own GL
//! objects in `Drop` after making the context current again. Because of the `Rc` (and because an
//! EGL context is current on one thread), none of these types is `Send`: create the context on the
//! thread that renders.
//!
//! Every public operation first makes this context current if another one is, so two
//! [`GlContext`]s on one thread do not draw into each other's objects. GL state that an operation
//! depends on (framebuffer bindings, scissor, pack parameters) is set by that operation; nothing
//! is assumed from a previous call.
//!
//! # Drawing
//!
//! A layer is a background fill and rectangles, each written with replace semantics. They are
//! drawn with scissored clears ([`glScissor`], [`glClear`]), which write the clear colour to every
//! texel in the scissor box with no rasterisation rules, blending or filtering, so the result is
//! exact. GL's window y is used as the scene's row index unchanged: the scene's row 0 is GL's
//! row 0, which is also the first row [`glReadPixels`] returns and the first row in memory of an
//! exported texture, so no flip happens anywhere. Layers of a scene file are drawn with shaders
//! instead, by the same orientation rule ([`super::scene`], through [`GlContext::paint`]).
//!
//! [`glScissor`]: https://registry.khronos.org/OpenGL-Refpages/es3.0/html/glScissor.xhtml
//! [`glClear`]: https://registry.khronos.org/OpenGL-Refpages/es3.0/html/glClear.xhtml
//! [`glReadPixels`]: https://registry.khronos.org/OpenGL-Refpages/es3.0/html/glReadPixels.xhtml

use std::cell::{OnceCell, RefCell};
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use glow::HasContext;
use glutin::api::egl::context::PossiblyCurrentContext;
use glutin::api::egl::device::Device;
use glutin::api::egl::display::Display as EglDisplay;
use glutin::config::{Api, ConfigSurfaceTypes, ConfigTemplateBuilder};
use glutin::context::{AsRawContext, ContextApi, ContextAttributesBuilder, RawContext, Version};
use glutin::display::{AsRawDisplay, RawDisplay};
use glutin::prelude::*;
use ipc_protocol::damage::Region;
use serde::{Deserialize, Serialize};
use triptych_scene::LayerContent;

use super::egl_ffi::{
    self, DmabufPlane, EglHandles, EglImage, GbmBuffer, GbmDevice, SurfacelessContext, Tables,
};
use super::GlError;

/// Which EGL platform to create the display on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlatformRequest {
    /// The device platform (DRM-backed devices first, then a software device), then the
    /// surfaceless platform. A DRM device served by Mesa's `kms_swrast` is used through the GBM
    /// platform on its primary node instead, where that works, so that dma-bufs can be shared.
    #[default]
    Auto,
    /// Only the device platform. With `render_node`, only the device whose DRM render node (or
    /// primary node) is that path; without, DRM-backed devices first, then software ones.
    Device {
        /// The DRM node the device must be backed by, e.g. `/dev/dri/renderD128`.
        render_node: Option<PathBuf>,
    },
    /// Only the surfaceless platform (`EGL_MESA_platform_surfaceless`).
    Surfaceless,
    /// Only the GBM platform, on a `gbm_device` created on this DRM node.
    Gbm {
        /// The DRM node to open: a render node (`/dev/dri/renderD128`) for hardware drivers, the
        /// primary node (`/dev/dri/card0`) for Mesa's `kms_swrast`, which needs dumb buffers.
        node: PathBuf,
    },
}

/// The EGL platform a display was created on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// `EGL_EXT_platform_device`.
    Device,
    /// `EGL_MESA_platform_surfaceless`.
    Surfaceless,
    /// `EGL_KHR_platform_gbm`.
    Gbm,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Platform::Device => "device platform",
            Platform::Surfaceless => "surfaceless platform",
            Platform::Gbm => "GBM platform",
        })
    }
}

/// One platform (and device) tried while creating a context, and why it failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformAttempt {
    /// The platform.
    pub platform: Platform,
    /// The device or node on that platform, if it has one (a node path, or `software`).
    pub candidate: Option<String>,
    /// Why it failed.
    pub error: String,
}

impl fmt::Display for PlatformAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.candidate {
            Some(c) => write!(f, "{} ({c}): {}", self.platform, self.error),
            None => write!(f, "{}: {}", self.platform, self.error),
        }
    }
}

/// What the EGL display and GL context offer; gathered once at creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EglInfo {
    /// The platform the display is on.
    pub platform: Platform,
    /// The DRM node behind the display, where known (render node preferred).
    pub drm_node: Option<PathBuf>,
    /// The DRM primary node (`/dev/dri/cardN`) of the same device, where known.
    pub drm_primary_node: Option<PathBuf>,
    /// The driver behind the display (`EGL_MESA_query_driver`), e.g. `kms_swrast` or `swrast`.
    pub driver_name: Option<String>,
    /// `EGL_VENDOR`.
    pub egl_vendor: String,
    /// `EGL_VERSION`.
    pub egl_version: String,
    /// Client extensions (`eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS)`), sorted.
    pub client_extensions: Vec<String>,
    /// Display extensions, sorted.
    pub display_extensions: Vec<String>,
    /// Device extensions of the EGL device (device platform only), sorted.
    pub device_extensions: Vec<String>,
    /// `GL_VENDOR`.
    pub gl_vendor: String,
    /// `GL_RENDERER`.
    pub gl_renderer: String,
    /// `GL_VERSION`.
    pub gl_version: String,
    /// `GL_MAX_TEXTURE_SIZE`.
    pub max_texture_size: u32,
    /// Display offers `EGL_MESA_image_dma_buf_export`.
    pub mesa_image_dma_buf_export: bool,
    /// Display offers `EGL_EXT_image_dma_buf_import`.
    pub ext_image_dma_buf_import: bool,
    /// Display offers `EGL_EXT_image_dma_buf_import_modifiers`.
    pub ext_image_dma_buf_import_modifiers: bool,
    /// Display offers `EGL_ANDROID_native_fence_sync`.
    pub android_native_fence_sync: bool,
    /// Display offers `EGL_KHR_fence_sync`.
    pub khr_fence_sync: bool,
    /// Platforms tried before this one and not used, each with why.
    pub earlier_attempts: Vec<PlatformAttempt>,
}

impl EglInfo {
    /// Whether the display's extension string lists `name`.
    pub fn has_display_extension(&self, name: &str) -> bool {
        self.display_extensions.iter().any(|e| e == name)
    }
}

/// How a wait on a fence ended (`Ready`: everything before the fence has completed): the one
/// wait outcome of the project, from the OS layer.
pub use triptych_sys::poll::WaitOutcome;

/// The glutin-owned display and context of the device and GBM platforms.
struct GlutinBackend {
    // Drop order is declaration order: the context goes before the display it was made on, and
    // the display is terminated (GBM only) before the gbm_device it points at is destroyed.
    context: PossiblyCurrentContext,
    display: EglDisplay,
    gbm: Option<GbmDevice>,
}

impl Drop for GlutinBackend {
    fn drop(&mut self) {
        if self.context.is_current() {
            if let Err(error) = self.context.make_not_current_in_place() {
                tracing::warn!(%error, "releasing the EGL context failed");
            }
        }
        if self.gbm.is_some() {
            // The display was made on a gbm_device that only this backend owns, so no other
            // holder of this EGLDisplay exists (EGL keys displays by native display): terminating
            // it cannot break another context, and must happen before the device is destroyed.
            // SAFETY: see above; glutin's own Drop of `context` then only destroys the context
            // handle, which eglTerminate has already released (EGL allows that call on a
            // terminated display: it fails with EGL_NOT_INITIALIZED, with no effect).
            unsafe { self.display.clone().terminate() };
        }
    }
}

enum Backend {
    Glutin(GlutinBackend),
    Surfaceless(SurfacelessContext),
}

/// State shared by a context and every object made with it.
pub(super) struct Shared {
    pub(super) gl: glow::Context,
    pub(super) egl: EglHandles,
    pub(super) info: EglInfo,
    /// The GBM device exportable targets are allocated on, opened on first use.
    allocator: RefCell<Option<Rc<GbmDevice>>>,
    // Dropped last (declaration order): the GL objects' owners are gone by then, and `gl` and
    // `egl` are plain tables.
    backend: Backend,
}

impl Shared {
    /// Makes this context current on the calling thread if it is not already.
    pub(super) fn make_current(&self) -> Result<(), GlError> {
        if self.egl.is_current() {
            return Ok(());
        }
        match &self.backend {
            Backend::Glutin(b) => b
                .context
                .make_current_surfaceless()
                .map_err(|e| GlError::Egl {
                    call: "eglMakeCurrent(surfaceless)",
                    code: e.raw_code().unwrap_or(0) as i32,
                }),
            Backend::Surfaceless(s) => s.make_current(),
        }
    }

    /// `glGetError`, as a `Result` naming `call`.
    pub(super) fn check(&self, call: &'static str) -> Result<(), GlError> {
        // SAFETY: glGetError has no arguments; callers made this context current.
        let code = unsafe { self.gl.get_error() };
        if code == glow::NO_ERROR {
            Ok(())
        } else {
            // Drain the other pending flags (one per kind of error, so a handful at most) so
            // they are not blamed on a later call.
            for _ in 0..16 {
                // SAFETY: as above.
                if unsafe { self.gl.get_error() } == glow::NO_ERROR {
                    break;
                }
            }
            Err(GlError::Gl { call, code })
        }
    }

    /// Allocates a linear ABGR8888 buffer on this context's DRM device with GBM.
    ///
    /// Nodes tried: for `kms_swrast` the primary node first (its buffers are DRM dumb buffers,
    /// which the kernel allows only on primary nodes), else the render node first.
    fn allocate_linear(&self, width: u32, height: u32) -> Result<GbmBuffer, GlError> {
        let fourcc = super::DRM_FORMAT_ABGR8888;
        if let Some(device) = self.allocator.borrow().as_ref() {
            return device
                .create_linear_buffer(width, height, fourcc)
                .map_err(|e| GlError::Allocate {
                    width,
                    height,
                    attempts: vec![e],
                });
        }
        let info = &self.info;
        let mut nodes = vec![info.drm_node.clone(), info.drm_primary_node.clone()];
        if info.driver_name.as_deref() == Some("kms_swrast") {
            nodes.reverse();
        }
        let mut attempts = Vec::new();
        for node in nodes.into_iter().flatten() {
            let made = GbmDevice::open(&node).map(Rc::new).and_then(|device| {
                let buffer = device.create_linear_buffer(width, height, fourcc)?;
                Ok((device, buffer))
            });
            match made {
                Ok((device, buffer)) => {
                    tracing::debug!(node = %node.display(), "GBM allocator opened");
                    *self.allocator.borrow_mut() = Some(device);
                    return Ok(buffer);
                }
                Err(e) => attempts.push(format!("{}: {e}", node.display())),
            }
        }
        if attempts.is_empty() {
            attempts.push(format!(
                "the {} has no DRM node to allocate on",
                info.platform
            ));
        }
        Err(GlError::Allocate {
            width,
            height,
            attempts,
        })
    }

    /// `glFlush`: submits queued commands.
    pub(super) fn flush(&self) -> Result<(), GlError> {
        self.make_current()?;
        // SAFETY: this context is current (line above); glFlush has no arguments.
        unsafe { self.gl.flush() };
        self.check("glFlush")
    }
}

/// A headless OpenGL ES 3.0 context, current on the thread that created it.
pub struct GlContext {
    shared: Rc<Shared>,
}

impl fmt::Debug for GlContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlContext")
            .field("platform", &self.shared.info.platform)
            .field("renderer", &self.shared.info.gl_renderer)
            .field("display", &self.shared.egl.display())
            .finish()
    }
}

/// A layer's RGBA8 texture and the framebuffer that draws into it.
pub struct LayerTarget {
    shared: Rc<Shared>,
    pub(super) texture: glow::NativeTexture,
    framebuffer: Option<glow::NativeFramebuffer>,
    width: u32,
    height: u32,
    /// The `EGLImage` of `texture`: for an exportable target, the imported dma-buf that is the
    /// texture's storage; otherwise made from the texture on the first export and kept so the
    /// texture is wrapped once.
    pub(super) image: OnceCell<EglImage>,
    /// The GBM buffer behind an exportable target; released after the texture (field order and
    /// `Drop`).
    backing: Option<GbmBuffer>,
}

impl fmt::Debug for LayerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerTarget")
            .field("texture", &self.texture.0)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("exported", &self.image.get().is_some())
            .field("dmabuf_backed", &self.backing.is_some())
            .finish()
    }
}

impl LayerTarget {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes of a tightly packed RGBA8 copy: `width * height * 4`.
    pub fn byte_len(&self) -> usize {
        self.width as usize * self.height as usize * 4
    }

    pub(super) fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }

    /// The framebuffer that draws into the texture.
    pub(super) fn framebuffer(&self) -> Option<glow::NativeFramebuffer> {
        self.framebuffer
    }

    /// Whether the texture's storage is a dma-buf this module allocated
    /// ([`GlContext::create_exportable_target`]).
    pub fn is_dmabuf_backed(&self) -> bool {
        self.backing.is_some()
    }
}

impl Drop for LayerTarget {
    fn drop(&mut self) {
        if let Some(image) = self.image.take() {
            self.shared.egl.destroy_image(image);
        }
        if let Err(error) = self.shared.make_current() {
            tracing::warn!(%error, texture = self.texture.0, "layer target leaked: context not current");
            return;
        }
        // SAFETY: this context is current; the texture and framebuffer were created by it in
        // `create_target` and are deleted only here.
        unsafe {
            if let Some(fb) = self.framebuffer {
                self.shared.gl.delete_framebuffer(fb);
            }
            self.shared.gl.delete_texture(self.texture);
        }
    }
}

/// A GL sync object (`glFenceSync`) that signals when every GL command issued before it has
/// completed. Deleted when dropped.
#[must_use = "a fence is only useful if waited on"]
pub struct GlFence {
    shared: Rc<Shared>,
    sync: glow::NativeFence,
}

impl fmt::Debug for GlFence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlFence")
            .field("sync", &self.sync.0)
            .finish()
    }
}

impl GlFence {
    /// Waits until the fence signals or `deadline` passes (`glClientWaitSync`, flushing first).
    pub fn wait(&self, deadline: Instant) -> Result<WaitOutcome, GlError> {
        self.shared.make_current()?;
        let mut flags = glow::SYNC_FLUSH_COMMANDS_BIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // glow takes the timeout as i32 nanoseconds (GLuint64 in GL); wait in slices of at
            // most i32::MAX ns (~2.1 s) until the deadline.
            let slice = i32::try_from(left.as_nanos()).unwrap_or(i32::MAX);
            // SAFETY: this context is current (above); `sync` was created by it and is deleted
            // only in Drop, so it is a valid sync name; flags is 0 or SYNC_FLUSH_COMMANDS_BIT.
            let status = unsafe { self.shared.gl.client_wait_sync(self.sync, flags, slice) };
            flags = 0;
            match status {
                glow::ALREADY_SIGNALED | glow::CONDITION_SATISFIED => {
                    return Ok(WaitOutcome::Ready)
                }
                glow::TIMEOUT_EXPIRED if Instant::now() >= deadline => {
                    return Ok(WaitOutcome::TimedOut)
                }
                glow::TIMEOUT_EXPIRED => continue,
                _ => {
                    self.shared.check("glClientWaitSync")?;
                    return Err(GlError::Gl {
                        call: "glClientWaitSync (WAIT_FAILED)",
                        code: status,
                    });
                }
            }
        }
    }

    /// Whether the fence has signalled, without waiting.
    pub fn is_signaled(&self) -> Result<bool, GlError> {
        self.wait(Instant::now()).map(|o| o == WaitOutcome::Ready)
    }
}

impl Drop for GlFence {
    fn drop(&mut self) {
        if let Err(error) = self.shared.make_current() {
            tracing::warn!(%error, "GL sync object leaked: context not current");
            return;
        }
        // SAFETY: this context is current; `sync` was created by it and is deleted only here.
        unsafe { self.shared.gl.delete_sync(self.sync) };
    }
}

/// What creating a context on one platform produced, before the GL side is set up.
struct Made {
    backend: Backend,
    platform: Platform,
    drm_node: Option<PathBuf>,
    drm_primary_node: Option<PathBuf>,
    device_extensions: Vec<String>,
}

impl GlContext {
    /// Creates a headless OpenGL ES 3.0 context on the requested platform and makes it current
    /// on the calling thread, with no surface.
    ///
    /// Fails with [`GlError::NoContext`] listing every platform tried and why each failed
    /// (including a missing libEGL, which every attempt reports).
    pub fn new(request: PlatformRequest) -> Result<GlContext, GlError> {
        let mut attempts = Vec::new();
        let made = match &request {
            PlatformRequest::Auto => {
                try_devices(None, &mut attempts).or_else(|| try_surfaceless(&mut attempts))
            }
            PlatformRequest::Device { render_node } => {
                try_devices(render_node.as_deref(), &mut attempts)
            }
            PlatformRequest::Surfaceless => try_surfaceless(&mut attempts),
            PlatformRequest::Gbm { node } => try_gbm(node, &mut attempts),
        };
        let Some(made) = made else {
            return Err(GlError::NoContext { attempts });
        };
        let context = Self::from_made(made, attempts)?;
        if request != PlatformRequest::Auto {
            return Ok(context);
        }
        Ok(context.prefer_primary_node_for_kms_swrast())
    }

    /// Mesa's `kms_swrast` (llvmpipe on a DRM node, what vgem gives) keeps shareable buffers in
    /// DRM dumb buffers, whose ioctls the kernel allows only on primary nodes. On the device
    /// platform Mesa opens the render node, where rendering works but no dma-buf can be
    /// allocated, imported and drawn into. So for the automatic choice, a `kms_swrast` device
    /// context is replaced by one on the GBM platform over the device's primary node when that
    /// works (Mesa's `platform_device.c`: "kms_swrast only work with primary node").
    fn prefer_primary_node_for_kms_swrast(self) -> GlContext {
        let info = &self.shared.info;
        let (Platform::Device, Some("kms_swrast"), Some(render), Some(primary)) = (
            info.platform,
            info.driver_name.as_deref(),
            info.drm_node.clone(),
            info.drm_primary_node.clone(),
        ) else {
            return self;
        };
        if render == primary {
            return self;
        }
        let mut attempts = info.earlier_attempts.clone();
        attempts.push(PlatformAttempt {
            platform: Platform::Device,
            candidate: Some(render.display().to_string()),
            error: format!(
                "works, but kms_swrast on a render node cannot share buffers; trying the GBM \
                 platform on {}",
                primary.display()
            ),
        });
        let mut gbm_attempts = Vec::new();
        let Some(made) = try_gbm(&primary, &mut gbm_attempts) else {
            tracing::info!(
                ?gbm_attempts,
                "kms_swrast on the primary node failed; keeping the device platform"
            );
            return self;
        };
        attempts.extend(gbm_attempts);
        match Self::from_made(made, attempts) {
            Ok(gbm) => gbm,
            Err(error) => {
                tracing::info!(%error, "kms_swrast on the primary node failed; keeping the device platform");
                self
            }
        }
    }

    /// Sets up the GL side of a context made on some platform.
    fn from_made(made: Made, attempts: Vec<PlatformAttempt>) -> Result<GlContext, GlError> {
        let handles = match &made.backend {
            Backend::Glutin(b) => match (b.display.raw_display(), b.context.raw_context()) {
                (RawDisplay::Egl(d), RawContext::Egl(c)) => {
                    let tables = Tables::of(&b.display).map_err(|error| GlError::NoContext {
                        attempts: vec![PlatformAttempt {
                            platform: made.platform,
                            candidate: None,
                            error,
                        }],
                    })?;
                    // SAFETY: the display was initialised by glutin through the table `tables`
                    // wraps, and display and context stay alive: both belong to `made.backend`,
                    // which moves into the same `Shared` as these handles and is dropped after
                    // them (field order of `Shared`).
                    unsafe { EglHandles::new(tables, d, c) }
                }
            },
            // SAFETY: as above: the handles live in the `Shared` that owns the backend.
            Backend::Surfaceless(s) => unsafe { s.handles() },
        };
        // The backend made the context current (glutin: make_current_surfaceless; surfaceless:
        // in `SurfacelessContext::new`).
        debug_assert!(handles.is_current());
        let tables = handles.tables();
        // SAFETY: this context is current on this thread (just made so), and the loader returns
        // libEGL's eglGetProcAddress results, which for GL names are entry points of the GL ES
        // library dispatching to the current context; libEGL stays loaded for the process.
        let gl = unsafe {
            glow::Context::from_loader_function_cstr(|name| tables.gl_proc_address(name))
        };
        let version = gl.version();
        if !version.is_embedded || version.major < 3 {
            return Err(GlError::NoContext {
                attempts: vec![PlatformAttempt {
                    platform: made.platform,
                    candidate: made.drm_node.as_ref().map(|p| p.display().to_string()),
                    error: format!("context is {version:?}, not OpenGL ES 3"),
                }],
            });
        }
        // SAFETY: the context is current; these are valid `glGetString`/`glGetIntegerv` names.
        let (gl_vendor, gl_renderer, gl_version, max_texture_size) = unsafe {
            (
                gl.get_parameter_string(glow::VENDOR),
                gl.get_parameter_string(glow::RENDERER),
                gl.get_parameter_string(glow::VERSION),
                gl.get_parameter_i32(glow::MAX_TEXTURE_SIZE),
            )
        };
        let display_extensions = handles.extensions();
        let has = |name: &str| display_extensions.iter().any(|e| e == name);
        let info = EglInfo {
            platform: made.platform,
            drm_node: made.drm_node,
            drm_primary_node: made.drm_primary_node,
            driver_name: if has("EGL_MESA_query_driver") {
                handles.driver_name()
            } else {
                None
            },
            egl_vendor: handles.query_string(egl_ffi::VENDOR).unwrap_or_default(),
            egl_version: handles.query_string(egl_ffi::VERSION).unwrap_or_default(),
            client_extensions: tables.client_extensions(),
            device_extensions: made.device_extensions,
            gl_vendor,
            gl_renderer,
            gl_version,
            max_texture_size: u32::try_from(max_texture_size).unwrap_or(0),
            mesa_image_dma_buf_export: has("EGL_MESA_image_dma_buf_export"),
            ext_image_dma_buf_import: has("EGL_EXT_image_dma_buf_import"),
            ext_image_dma_buf_import_modifiers: has("EGL_EXT_image_dma_buf_import_modifiers"),
            android_native_fence_sync: has("EGL_ANDROID_native_fence_sync"),
            khr_fence_sync: has("EGL_KHR_fence_sync"),
            display_extensions,
            earlier_attempts: attempts,
        };
        tracing::info!(
            platform = %info.platform,
            drm_node = ?info.drm_node,
            driver = ?info.driver_name,
            renderer = %info.gl_renderer,
            gl_version = %info.gl_version,
            dma_buf_export = info.mesa_image_dma_buf_export,
            native_fence = info.android_native_fence_sync,
            "GL context created"
        );
        let shared = Shared {
            allocator: RefCell::new(None),
            gl,
            egl: handles,
            info,
            backend: made.backend,
        };
        shared.check("context setup")?;
        Ok(GlContext {
            shared: Rc::new(shared),
        })
    }

    /// What the display and context offer.
    pub fn info(&self) -> &EglInfo {
        &self.shared.info
    }

    pub(super) fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }

    fn owns(&self, shared: &Rc<Shared>, what: &'static str) -> Result<(), GlError> {
        if Rc::ptr_eq(&self.shared, shared) {
            Ok(())
        } else {
            Err(GlError::ForeignObject { what })
        }
    }

    /// Creates a `width` x `height` RGBA8 texture (one level, immutable storage) and a
    /// framebuffer with it as colour attachment 0.
    ///
    /// Its storage belongs to the driver: read it back with [`GlContext::read_pixels`]. Whether
    /// [`GlContext::export_dmabuf`] can share it depends on the driver; use
    /// [`GlContext::create_exportable_target`] for a target that is meant to be exported.
    pub fn create_target(&mut self, width: u32, height: u32) -> Result<LayerTarget, GlError> {
        let (w, h) = self.check_size(width, height)?;
        let mut target = self.new_target(width, height)?;
        let gl = &self.shared.gl;
        // SAFETY: context current (`new_target` made it so); `target.texture` is a fresh name of
        // this context; 1 level of RGBA8 with 1 <= w, h <= GL_MAX_TEXTURE_SIZE (`check_size`) is
        // a valid glTexStorage2D. Nearest filtering with one level makes the texture complete,
        // which EGLImage creation from it requires. The binding is restored to 0.
        unsafe {
            gl.bind_texture(glow::TEXTURE_2D, Some(target.texture));
            gl.tex_storage_2d(glow::TEXTURE_2D, 1, glow::RGBA8, w, h);
            gl.tex_parameter_i32(
                glow::TEXTURE_2D,
                glow::TEXTURE_MIN_FILTER,
                glow::NEAREST as i32,
            );
            gl.tex_parameter_i32(
                glow::TEXTURE_2D,
                glow::TEXTURE_MAG_FILTER,
                glow::NEAREST as i32,
            );
            gl.bind_texture(glow::TEXTURE_2D, None);
        }
        self.shared.check("glTexStorage2D(RGBA8)")?;
        self.attach_framebuffer(&mut target)?;
        tracing::debug!(
            texture = target.texture.0,
            width,
            height,
            "layer target created"
        );
        Ok(target)
    }

    /// A [`GlContext::create_target`] holding `pixels` (premultiplied RGBA8, rows top-down,
    /// tightly packed, `width * height * 4` bytes): the source of [`GlContext::copy_in`]. Row 0
    /// of `pixels` is GL's window y 0, the scene's row 0, as for every target.
    pub fn upload_target(
        &mut self,
        width: u32,
        height: u32,
        pixels: &[u8],
    ) -> Result<LayerTarget, GlError> {
        let (w, h) = self.check_size(width, height)?;
        let needed = width as usize * height as usize * 4;
        if pixels.len() != needed {
            return Err(GlError::BufferSize {
                got: pixels.len(),
                needed,
                width,
                height,
            });
        }
        let target = self.create_target(width, height)?;
        self.shared.make_current()?;
        let gl = &self.shared.gl;
        // SAFETY: context current; `target.texture` is a live name of this context with
        // immutable storage of one level of `w` x `h` RGBA8 (`create_target`). No buffer is
        // bound to PIXEL_UNPACK_BUFFER, so the data is client memory: with alignment 4 (rows
        // are `4 * w` bytes), no row length or skips, glTexSubImage2D of RGBA/UNSIGNED_BYTE
        // over the whole level reads exactly `w * h * 4` bytes, which is `pixels.len()`
        // (checked above). The binding is restored to 0.
        unsafe {
            gl.bind_texture(glow::TEXTURE_2D, Some(target.texture));
            gl.bind_buffer(glow::PIXEL_UNPACK_BUFFER, None);
            gl.pixel_store_i32(glow::UNPACK_ALIGNMENT, 4);
            gl.pixel_store_i32(glow::UNPACK_ROW_LENGTH, 0);
            gl.pixel_store_i32(glow::UNPACK_SKIP_PIXELS, 0);
            gl.pixel_store_i32(glow::UNPACK_SKIP_ROWS, 0);
            gl.tex_sub_image_2d(
                glow::TEXTURE_2D,
                0,
                0,
                0,
                w,
                h,
                glow::RGBA,
                glow::UNSIGNED_BYTE,
                glow::PixelUnpackData::Slice(Some(pixels)),
            );
            gl.bind_texture(glow::TEXTURE_2D, None);
        }
        self.shared.check("glTexSubImage2D(uploaded target)")?;
        Ok(target)
    }

    /// Copies the texels of `source` inside `region` into `target`, unchanged (a blit of equal
    /// rectangles between two RGBA8 framebuffers, no scaling, so no filtering applies: ES 3.0
    /// section 4.3.3); every other texel of `target` keeps what it held.
    pub fn copy_in(
        &mut self,
        target: &LayerTarget,
        source: &LayerTarget,
        region: &Region,
    ) -> Result<(), GlError> {
        if !Rc::ptr_eq(&self.shared, &target.shared) || !Rc::ptr_eq(&self.shared, &source.shared) {
            return Err(GlError::ForeignObject {
                what: "copied target",
            });
        }
        if (source.width, source.height) != (target.width, target.height) {
            return Err(GlError::SizeMismatch {
                content_width: source.width,
                content_height: source.height,
                width: target.width,
                height: target.height,
            });
        }
        if region.is_empty() {
            return Ok(());
        }
        self.shared.make_current()?;
        let gl = &self.shared.gl;
        let (w, h) = (target.width, target.height);
        // SAFETY: context current; both framebuffers are live, complete names of this context
        // (same `Shared`, checked above) with RGBA8 colour attachments of the same size. Every
        // rectangle is inside both (`fits`), and their sides fit in i32 (the targets were made
        // with them, checked against GL_MAX_TEXTURE_SIZE). The scissor test, which applies to
        // blits, is off. Bindings are restored to 0.
        unsafe {
            gl.bind_framebuffer(glow::READ_FRAMEBUFFER, source.framebuffer);
            gl.bind_framebuffer(glow::DRAW_FRAMEBUFFER, target.framebuffer);
            gl.disable(glow::SCISSOR_TEST);
            for r in region.rects().iter().filter(|r| r.fits(w, h)) {
                let (x0, y0) = (r.x as i32, r.y as i32);
                let (x1, y1) = (x0 + r.w as i32, y0 + r.h as i32);
                gl.blit_framebuffer(
                    x0,
                    y0,
                    x1,
                    y1,
                    x0,
                    y0,
                    x1,
                    y1,
                    glow::COLOR_BUFFER_BIT,
                    glow::NEAREST,
                );
            }
            gl.bind_framebuffer(glow::READ_FRAMEBUFFER, None);
            gl.bind_framebuffer(glow::DRAW_FRAMEBUFFER, None);
        }
        self.shared.check("glBlitFramebuffer(copy)")
    }

    /// Creates a layer target whose texture's storage is a linear `DRM_FORMAT_ABGR8888` dma-buf,
    /// so that [`GlContext::export_dmabuf`] can always share it.
    ///
    /// The buffer is allocated with GBM (`GBM_BO_USE_RENDERING | GBM_BO_USE_LINEAR`) on the
    /// context's DRM device, imported as an `EGLImage` ([`EGL_EXT_image_dma_buf_import`]) and
    /// bound to a new texture with `glEGLImageTargetTexture2DOES` ([`GL_OES_EGL_image`]). That
    /// import is the one way Mesa's `kms_swrast` (llvmpipe on a DRM node, what vgem gives)
    /// renders into memory it can share: llvmpipe before Mesa 24.0 cannot export the storage of
    /// a texture it allocated itself.
    ///
    /// Needs a context on a DRM device ([`EglInfo::drm_node`]), `EGL_EXT_image_dma_buf_import`
    /// and `GL_OES_EGL_image`; each missing piece is a named error.
    ///
    /// [`EGL_EXT_image_dma_buf_import`]: https://registry.khronos.org/EGL/extensions/EXT/EGL_EXT_image_dma_buf_import.txt
    /// [`GL_OES_EGL_image`]: https://registry.khronos.org/OpenGL/extensions/OES/OES_EGL_image.txt
    pub fn create_exportable_target(
        &mut self,
        width: u32,
        height: u32,
    ) -> Result<LayerTarget, GlError> {
        self.check_size(width, height)?;
        let info = &self.shared.info;
        let needed_for = "an exportable (dma-buf backed) layer target";
        if !info.ext_image_dma_buf_import {
            return Err(GlError::ExtensionMissing {
                extension: "EGL_EXT_image_dma_buf_import",
                needed_for,
                platform: info.platform,
            });
        }
        if !self
            .shared
            .gl
            .supported_extensions()
            .contains("GL_OES_EGL_image")
        {
            return Err(GlError::ExtensionMissing {
                extension: "GL_OES_EGL_image",
                needed_for,
                platform: info.platform,
            });
        }
        let buffer = self.shared.allocate_linear(width, height)?;
        let fd = buffer.fd().ok_or(GlError::Allocate {
            width,
            height,
            attempts: vec!["the GBM buffer has no dma-buf fd".to_owned()],
        })?;
        // The modifier is passed only when GBM tracked one and EGL accepts modifiers; otherwise
        // the import takes the layout GBM chose, which GBM_BO_USE_LINEAR made linear.
        let modifier = (info.ext_image_dma_buf_import_modifiers
            && buffer.modifier != super::DRM_FORMAT_MOD_INVALID)
            .then_some(buffer.modifier);
        let image = self.shared.egl.import_dmabuf(&DmabufPlane {
            fd,
            width,
            height,
            fourcc: super::DRM_FORMAT_ABGR8888,
            offset: buffer.offset,
            stride: buffer.stride,
            modifier,
        })?;
        let (stride, offset, gbm_modifier) = (buffer.stride, buffer.offset, buffer.modifier);
        let mut target = match self.new_target(width, height) {
            Ok(t) => t,
            Err(e) => {
                self.shared.egl.destroy_image(image);
                return Err(e);
            }
        };
        target.backing = Some(buffer);
        let image = target.image.get_or_init(|| image);
        let gl = &self.shared.gl;
        // SAFETY: context current (`new_target`); `target.texture` is a fresh name of this
        // context, bound here and unbound below; glTexParameteri with NEAREST is always valid.
        unsafe { gl.bind_texture(glow::TEXTURE_2D, Some(target.texture)) };
        let bound = self.shared.egl.target_texture_2d(image);
        // SAFETY: as above.
        unsafe {
            gl.tex_parameter_i32(
                glow::TEXTURE_2D,
                glow::TEXTURE_MIN_FILTER,
                glow::NEAREST as i32,
            );
            gl.tex_parameter_i32(
                glow::TEXTURE_2D,
                glow::TEXTURE_MAG_FILTER,
                glow::NEAREST as i32,
            );
            gl.bind_texture(glow::TEXTURE_2D, None);
        }
        bound?;
        self.shared.check("glEGLImageTargetTexture2DOES")?;
        self.attach_framebuffer(&mut target)?;
        self.probe_mappable(&target)?;
        tracing::debug!(
            texture = target.texture.0,
            width,
            height,
            stride,
            offset,
            gbm_modifier = format_args!("{gbm_modifier:#018x}"),
            "exportable layer target created"
        );
        Ok(target)
    }

    /// Reads one texel of a freshly imported target to prove the driver can map its storage.
    ///
    /// A driver that imported the dma-buf but cannot map it fails here with a GL error
    /// (`kms_swrast` on a render node reports GL_OUT_OF_MEMORY, because the kernel refuses
    /// `DRM_IOCTL_MODE_MAP_DUMB` there); drawing into such a target would make llvmpipe's
    /// rasteriser write through a null mapping, so it must never be handed out.
    fn probe_mappable(&mut self, target: &LayerTarget) -> Result<(), GlError> {
        let gl = &self.shared.gl;
        let mut texel = [0u8; 4];
        // SAFETY: context current (the caller just used it); the framebuffer is a live,
        // complete name of this context; no PIXEL_PACK_BUFFER is bound, so the pointer is client
        // memory, and a 1x1 RGBA/UNSIGNED_BYTE read with the pack state set here writes exactly
        // the 4 bytes of `texel`.
        unsafe {
            gl.bind_framebuffer(glow::READ_FRAMEBUFFER, target.framebuffer);
            gl.bind_buffer(glow::PIXEL_PACK_BUFFER, None);
            gl.pixel_store_i32(glow::PACK_ALIGNMENT, 4);
            gl.pixel_store_i32(glow::PACK_ROW_LENGTH, 0);
            gl.pixel_store_i32(glow::PACK_SKIP_PIXELS, 0);
            gl.pixel_store_i32(glow::PACK_SKIP_ROWS, 0);
            gl.read_pixels(
                0,
                0,
                1,
                1,
                glow::RGBA,
                glow::UNSIGNED_BYTE,
                glow::PixelPackData::Slice(Some(&mut texel)),
            );
            gl.bind_framebuffer(glow::READ_FRAMEBUFFER, None);
        }
        match self
            .shared
            .check("glReadPixels(1x1) of the imported dma-buf")
        {
            Ok(()) => Ok(()),
            Err(GlError::Gl { code, .. }) => Err(GlError::ImportUnusable {
                code,
                driver: self.shared.info.driver_name.clone(),
                platform: self.shared.info.platform,
                node: self.shared.info.drm_node.clone(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Checks a target size against GL's limits; returns it as GL's integer type.
    fn check_size(&self, width: u32, height: u32) -> Result<(i32, i32), GlError> {
        let max = self.shared.info.max_texture_size;
        match (i32::try_from(width), i32::try_from(height)) {
            (Ok(w), Ok(h)) if width > 0 && height > 0 && width <= max && height <= max => {
                Ok((w, h))
            }
            _ => Err(GlError::BadSize { width, height, max }),
        }
    }

    /// A target holding a fresh texture name and nothing else yet; its Drop deletes whatever
    /// the caller adds if a later step fails. Leaves this context current.
    fn new_target(&mut self, width: u32, height: u32) -> Result<LayerTarget, GlError> {
        self.shared.make_current()?;
        // SAFETY: this context is current (above); glGenTextures has no other precondition.
        let texture = unsafe { self.shared.gl.create_texture() }.map_err(|message| {
            GlError::CreateObject {
                object: "texture",
                message,
            }
        })?;
        Ok(LayerTarget {
            shared: Rc::clone(&self.shared),
            texture,
            framebuffer: None,
            width,
            height,
            image: OnceCell::new(),
            backing: None,
        })
    }

    /// Creates `target`'s framebuffer with its texture as colour attachment 0 and checks it is
    /// complete.
    fn attach_framebuffer(&mut self, target: &mut LayerTarget) -> Result<(), GlError> {
        self.shared.make_current()?;
        let gl = &self.shared.gl;
        // SAFETY: context current; glGenFramebuffers has no other precondition.
        let framebuffer =
            unsafe { gl.create_framebuffer() }.map_err(|message| GlError::CreateObject {
                object: "framebuffer",
                message,
            })?;
        target.framebuffer = Some(framebuffer);
        // SAFETY: context current; `framebuffer` and `target.texture` are live names of this
        // context and the texture has storage for level 0. The binding is restored to 0.
        let status = unsafe {
            gl.bind_framebuffer(glow::FRAMEBUFFER, Some(framebuffer));
            gl.framebuffer_texture_2d(
                glow::FRAMEBUFFER,
                glow::COLOR_ATTACHMENT0,
                glow::TEXTURE_2D,
                Some(target.texture),
                0,
            );
            let status = gl.check_framebuffer_status(glow::FRAMEBUFFER);
            gl.bind_framebuffer(glow::FRAMEBUFFER, None);
            status
        };
        self.shared.check("glFramebufferTexture2D")?;
        if status != glow::FRAMEBUFFER_COMPLETE {
            return Err(GlError::IncompleteFramebuffer {
                width: target.width,
                height: target.height,
                status,
            });
        }
        Ok(())
    }

    /// Draws `content` into `target`: the background over the whole texture, then each rectangle
    /// in order, each as a scissored clear. Rectangles are clipped to the texture.
    ///
    /// The commands are queued; use [`GlContext::finish`], a [`GlFence`] or a
    /// [`super::NativeFence`] to know when they completed.
    pub fn draw(&mut self, target: &LayerTarget, content: &LayerContent) -> Result<(), GlError> {
        let all = Region::full(target.width, target.height);
        self.draw_in(target, content, &all)
    }

    /// [`GlContext::draw`], writing only the texels inside `region` (damage): every clear is
    /// cut to each of the region's rectangles, so what lies outside keeps what it held.
    pub fn draw_in(
        &mut self,
        target: &LayerTarget,
        content: &LayerContent,
        region: &Region,
    ) -> Result<(), GlError> {
        if (content.width, content.height) != (target.width, target.height) {
            return Err(GlError::SizeMismatch {
                content_width: content.width,
                content_height: content.height,
                width: target.width,
                height: target.height,
            });
        }
        self.clears(target, Some(content.background), &content.rects, region)
    }

    /// Draws the hover outline ([`triptych_scene::highlight_rects`] in
    /// [`triptych_scene::HIGHLIGHT`]) over what `target` holds inside `region`, as scissored
    /// clears.
    pub fn outline(&mut self, target: &LayerTarget, region: &Region) -> Result<(), GlError> {
        let rects = triptych_scene::highlight_rects(target.width, target.height)
            .map(|r| (r, triptych_scene::HIGHLIGHT));
        self.clears(target, None, &rects, region)
    }

    /// `background` over the whole of `target`, if given, then each of `rects` (clipped to it),
    /// as scissored clears, each cut to every rectangle of `region`.
    fn clears(
        &mut self,
        target: &LayerTarget,
        background: Option<[u8; 4]>,
        rects: &[(triptych_scene::Rect, [u8; 4])],
        region: &Region,
    ) -> Result<(), GlError> {
        self.owns(&target.shared, "layer target")?;
        if region.is_empty() {
            return Ok(());
        }
        self.shared.make_current()?;
        let gl = &self.shared.gl;
        let clear = |rect: [i32; 4], c: [u8; 4]| {
            let f = |v: u8| f32::from(v) / 255.0;
            // SAFETY: context current; a DRAW_FRAMEBUFFER is bound (below, before any call);
            // the scissor box has non-negative size (clipped by `clip` and `cut`); glClear of
            // the colour bit is valid on a complete framebuffer.
            unsafe {
                gl.scissor(rect[0], rect[1], rect[2], rect[3]);
                gl.clear_color(f(c[0]), f(c[1]), f(c[2]), f(c[3]));
                gl.clear(glow::COLOR_BUFFER_BIT);
            }
        };
        // SAFETY: context current; the framebuffer is a live name of this context and complete
        // (checked in `create_target`). The state set here is exactly what glClear depends on:
        // scissor test on, all channels writable, no dithering, no rasterizer discard.
        unsafe {
            gl.bind_framebuffer(glow::DRAW_FRAMEBUFFER, target.framebuffer);
            gl.disable(glow::DITHER);
            gl.disable(glow::RASTERIZER_DISCARD);
            gl.color_mask(true, true, true, true);
            gl.enable(glow::SCISSOR_TEST);
        }
        let whole = triptych_scene::Rect {
            x: 0,
            y: 0,
            w: target.width,
            h: target.height,
        };
        let background = background.map(|b| (whole, b));
        for area in region.rects() {
            let area = [area.x, area.y, area.w, area.h];
            for (rect, colour) in background.iter().chain(rects) {
                if let Some(r) = clip(rect, target.width, target.height).and_then(|r| cut(r, area))
                {
                    clear(r, *colour);
                }
            }
        }
        // SAFETY: context current; restores the default bindings and scissor state.
        unsafe {
            gl.disable(glow::SCISSOR_TEST);
            gl.bind_framebuffer(glow::DRAW_FRAMEBUFFER, None);
        }
        self.shared.check("draw (glScissor/glClear)")
    }

    /// Copies `target` into `out` as tightly packed RGBA8 rows, row 0 first (the scene's row 0).
    ///
    /// `out.len()` must be exactly `width * height * 4`. Waits for drawing to finish (as
    /// `glReadPixels` into client memory does).
    pub fn read_pixels(&mut self, target: &LayerTarget, out: &mut [u8]) -> Result<(), GlError> {
        let all = Region::full(target.width, target.height);
        self.read_pixels_in(target, out, &all)
    }

    /// [`GlContext::read_pixels`] of the texels inside `region` only: each rectangle lands at
    /// its own place in `out`, whose other bytes are left as they are.
    pub fn read_pixels_in(
        &mut self,
        target: &LayerTarget,
        out: &mut [u8],
        region: &Region,
    ) -> Result<(), GlError> {
        self.owns(&target.shared, "layer target")?;
        let needed = target.byte_len();
        if out.len() != needed {
            return Err(GlError::BufferSize {
                got: out.len(),
                needed,
                width: target.width,
                height: target.height,
            });
        }
        if region.is_empty() {
            return Ok(());
        }
        self.shared.make_current()?;
        let gl = &self.shared.gl;
        // SAFETY: context current; the framebuffer is a live, complete name of this context.
        // No buffer is bound to PIXEL_PACK_BUFFER, so the pointer is client memory. With
        // alignment 4, a row length of the target's width, and rows and pixels skipped to the
        // rectangle's corner, glReadPixels of a w x h rectangle at (x, y) writes, for each of
        // its rows r, 4 * w bytes at byte (((y + r) * width + x) * 4) from the pointer, all
        // inside `out` because the rectangle lies inside the target (checked below, before
        // each call) and `out.len()` is `width * height * 4`; `out` is exclusively borrowed.
        unsafe {
            gl.bind_framebuffer(glow::READ_FRAMEBUFFER, target.framebuffer);
            gl.bind_buffer(glow::PIXEL_PACK_BUFFER, None);
            gl.pixel_store_i32(glow::PACK_ALIGNMENT, 4);
            gl.pixel_store_i32(glow::PACK_ROW_LENGTH, target.width as i32);
            let inside = region.placed(0, 0, target.width, target.height);
            for r in inside.rects() {
                // Inside the target, whose sides fit in i32 (checked in `create_target`).
                gl.pixel_store_i32(glow::PACK_SKIP_PIXELS, r.x as i32);
                gl.pixel_store_i32(glow::PACK_SKIP_ROWS, r.y as i32);
                gl.read_pixels(
                    r.x as i32,
                    r.y as i32,
                    r.w as i32,
                    r.h as i32,
                    glow::RGBA,
                    glow::UNSIGNED_BYTE,
                    glow::PixelPackData::Slice(Some(&mut *out)),
                );
            }
            gl.pixel_store_i32(glow::PACK_ROW_LENGTH, 0);
            gl.pixel_store_i32(glow::PACK_SKIP_PIXELS, 0);
            gl.pixel_store_i32(glow::PACK_SKIP_ROWS, 0);
            gl.bind_framebuffer(glow::READ_FRAMEBUFFER, None);
        }
        self.shared.check("glReadPixels(RGBA, UNSIGNED_BYTE)")
    }

    /// `glFlush`: submits the queued commands without waiting.
    pub fn flush(&mut self) -> Result<(), GlError> {
        self.shared.flush()
    }

    /// `glFinish`: returns when every queued command has completed.
    pub fn finish(&mut self) -> Result<(), GlError> {
        self.shared.make_current()?;
        // SAFETY: context current; glFinish has no arguments.
        unsafe { self.shared.gl.finish() };
        self.shared.check("glFinish")
    }

    /// Inserts a GL sync object after the commands issued so far (`glFenceSync`).
    pub fn fence(&mut self) -> Result<GlFence, GlError> {
        self.shared.make_current()?;
        // SAFETY: context current; SYNC_GPU_COMMANDS_COMPLETE with flags 0 is the only valid
        // combination in ES 3.0.
        let sync = unsafe {
            self.shared
                .gl
                .fence_sync(glow::SYNC_GPU_COMMANDS_COMPLETE, 0)
        }
        .map_err(|message| GlError::CreateObject {
            object: "sync object",
            message,
        })?;
        Ok(GlFence {
            shared: Rc::clone(&self.shared),
            sync,
        })
    }
}

/// `rect` clipped to a `width` x `height` texture as a GL scissor box `[x, y, w, h]`, or `None`
/// when nothing is left. Row `y` of the scene is GL window row `y` (no flip).
/// The part of scissor box `r` (x, y, w, h) inside `area` (x, y, w, h of a damage rectangle
/// inside the target), if any.
fn cut(r: [i32; 4], area: [u32; 4]) -> Option<[i32; 4]> {
    // `area` lies inside the target, whose sides fit in i32.
    let a = area.map(|v| v as i64);
    let r = r.map(i64::from);
    let x0 = r[0].max(a[0]);
    let y0 = r[1].max(a[1]);
    let x1 = (r[0] + r[2]).min(a[0] + a[2]);
    let y1 = (r[1] + r[3]).min(a[1] + a[3]);
    if x0 >= x1 || y0 >= y1 {
        return None;
    }
    Some([x0 as i32, y0 as i32, (x1 - x0) as i32, (y1 - y0) as i32])
}

fn clip(rect: &triptych_scene::Rect, width: u32, height: u32) -> Option<[i32; 4]> {
    if rect.x >= width || rect.y >= height {
        return None;
    }
    let w = rect.w.min(width - rect.x);
    let h = rect.h.min(height - rect.y);
    if w == 0 || h == 0 {
        return None;
    }
    // All four are <= width/height, which fit in i32 (checked in `create_target`).
    Some([rect.x as i32, rect.y as i32, w as i32, h as i32])
}

/// The glutin part: a display from `make_display`, then a GLES 3.0 context made current with no
/// surface.
fn glutin_context(display: EglDisplay, gbm: Option<GbmDevice>) -> Result<Backend, String> {
    let template = ConfigTemplateBuilder::new()
        .with_alpha_size(8)
        .with_surface_type(ConfigSurfaceTypes::empty())
        .with_api(Api::GLES3)
        .build();
    // SAFETY: the template names no native window, the only thing find_configs would
    // dereference.
    let config = unsafe { display.find_configs(template) }
        .map_err(|e| format!("eglChooseConfig failed: {e}"))?
        .next()
        .ok_or("eglChooseConfig found no OpenGL ES 3 RGBA8 config")?;
    let attributes = ContextAttributesBuilder::new()
        .with_context_api(ContextApi::Gles(Some(Version::new(3, 0))))
        .build(None);
    // SAFETY: the attributes name no native window (built with `None`).
    let not_current = unsafe { display.create_context(&config, &attributes) }
        .map_err(|e| format!("eglCreateContext(OpenGL ES 3.0) failed: {e}"))?;
    let context = not_current
        .make_current_surfaceless()
        .map_err(|e| format!("eglMakeCurrent without a surface failed: {e}"))?;
    Ok(Backend::Glutin(GlutinBackend {
        context,
        display,
        gbm,
    }))
}

/// Tries the device platform: the device on `node` if given, else DRM-backed devices first.
fn try_devices(node: Option<&Path>, attempts: &mut Vec<PlatformAttempt>) -> Option<Made> {
    let devices = match Device::query_devices() {
        Ok(d) => d.collect::<Vec<_>>(),
        Err(e) => {
            let error = match Tables::load() {
                Err(missing) => missing,
                Ok(_) => format!("EGL device enumeration is not available: {e}"),
            };
            attempts.push(PlatformAttempt {
                platform: Platform::Device,
                candidate: None,
                error,
            });
            return None;
        }
    };
    let node_of = |d: &Device| {
        d.drm_render_device_node_path()
            .or_else(|| d.drm_device_node_path())
    };
    let mut candidates: Vec<&Device> = devices
        .iter()
        .filter(|d| match node {
            Some(want) => {
                d.drm_render_device_node_path() == Some(want)
                    || d.drm_device_node_path() == Some(want)
            }
            None => true,
        })
        .collect();
    // DRM-backed devices first: only they can export dma-bufs. `sort_by_key` is stable, so
    // EGL's order is kept within each group.
    candidates.sort_by_key(|d| node_of(d).is_none());
    if candidates.is_empty() {
        let error = match node {
            Some(want) => format!(
                "no EGL device is backed by {} (devices: {})",
                want.display(),
                devices
                    .iter()
                    .map(describe_device)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "EGL lists no devices".to_owned(),
        };
        attempts.push(PlatformAttempt {
            platform: Platform::Device,
            candidate: None,
            error,
        });
        return None;
    }
    for device in candidates {
        // SAFETY: no raw display handle is passed, the only thing with_device would trust.
        let made = unsafe { EglDisplay::with_device(device, None) }
            .map_err(|e| format!("eglGetPlatformDisplay/eglInitialize failed: {e}"))
            .and_then(|display| glutin_context(display, None));
        match made {
            Ok(backend) => {
                let mut device_extensions: Vec<String> = device
                    .extensions()
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect();
                device_extensions.sort();
                return Some(Made {
                    backend,
                    platform: Platform::Device,
                    drm_node: node_of(device).map(Path::to_path_buf),
                    drm_primary_node: device.drm_device_node_path().map(Path::to_path_buf),
                    device_extensions,
                });
            }
            Err(error) => attempts.push(PlatformAttempt {
                platform: Platform::Device,
                candidate: Some(describe_device(device)),
                error,
            }),
        }
    }
    None
}

fn describe_device(d: &Device) -> String {
    match d
        .drm_render_device_node_path()
        .or_else(|| d.drm_device_node_path())
    {
        Some(p) => p.display().to_string(),
        None if d.extensions().contains("EGL_MESA_device_software") => "software".to_owned(),
        None => d.name().unwrap_or("unnamed device").to_owned(),
    }
}

fn try_surfaceless(attempts: &mut Vec<PlatformAttempt>) -> Option<Made> {
    match SurfacelessContext::new() {
        Ok(ctx) => Some(Made {
            backend: Backend::Surfaceless(ctx),
            platform: Platform::Surfaceless,
            drm_node: None,
            drm_primary_node: None,
            device_extensions: Vec::new(),
        }),
        Err(error) => {
            attempts.push(PlatformAttempt {
                platform: Platform::Surfaceless,
                candidate: None,
                error,
            });
            None
        }
    }
}

fn try_gbm(node: &Path, attempts: &mut Vec<PlatformAttempt>) -> Option<Made> {
    let made = GbmDevice::open(node).and_then(|gbm| {
        let handle = raw_window_handle::GbmDisplayHandle::new(gbm.as_ptr());
        // SAFETY: the handle points at a live gbm_device that moves into the backend together
        // with the display and is destroyed only after the display is terminated
        // (`GlutinBackend`'s Drop and field order).
        let display = unsafe { EglDisplay::new(raw_window_handle::RawDisplayHandle::Gbm(handle)) }
            .map_err(|e| format!("eglGetPlatformDisplay(GBM)/eglInitialize failed: {e}"))?;
        glutin_context(display, Some(gbm))
    });
    match made {
        Ok(backend) => Some(Made {
            backend,
            platform: Platform::Gbm,
            drm_node: Some(node.to_path_buf()),
            // DRM names primary nodes `cardN` and render nodes `renderDN`.
            drm_primary_node: node
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("card"))
                .then(|| node.to_path_buf()),
            device_extensions: Vec::new(),
        }),
        Err(error) => {
            attempts.push(PlatformAttempt {
                platform: Platform::Gbm,
                candidate: Some(node.display().to_string()),
                error,
            });
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The time a test gives GL to finish a frame.
    const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
    use triptych_scene::{layer_content, Rect};

    fn context() -> GlContext {
        match GlContext::new(PlatformRequest::Auto) {
            Ok(c) => c,
            // Deliberately a failure, not a skip: the GPU process cannot run without EGL.
            Err(e) => panic!("creating a GL context failed: {e}"),
        }
    }

    fn cpu(content: &LayerContent) -> Vec<u8> {
        let mut v = vec![0u8; content.width as usize * content.height as usize * 4];
        content.fill(&mut v);
        v
    }

    fn first_difference(got: &[u8], want: &[u8], width: u32) -> Option<String> {
        got.chunks_exact(4)
            .zip(want.chunks_exact(4))
            .enumerate()
            .find(|(_, (g, w))| g != w)
            .map(|(i, (g, w))| {
                format!(
                    "pixel ({}, {}): got {g:?}, want {w:?}",
                    i as u32 % width,
                    i as u32 / width
                )
            })
    }

    #[test]
    fn draws_scene_layers_exactly() {
        let mut gl = context();
        // Odd sizes, a 1x1, and layer sizes of a small frame; layer 0 is the frame size.
        for &(fw, fh) in &[(33u32, 17u32), (1, 1), (64, 48), (101, 67)] {
            for layer in 0..3 {
                let (w, h) = triptych_scene::layer_size(layer, fw, fh);
                let target = gl.create_target(w, h).expect("create target");
                let mut got = vec![0u8; target.byte_len()];
                for frame in [0u64, 1, 2, 5, 31, 32, 1000] {
                    let content = layer_content(frame, layer, fw, fh);
                    gl.draw(&target, &content).expect("draw");
                    gl.read_pixels(&target, &mut got).expect("read back");
                    let want = cpu(&content);
                    assert!(
                        got == want,
                        "frame {frame} layer {layer} of {fw}x{fh} ({w}x{h}) differs: {}",
                        first_difference(&got, &want, w).unwrap_or_default()
                    );
                }
            }
        }
    }

    /// Rows are not flipped: a rect in the top rows of the scene is in the first bytes.
    #[test]
    fn row_zero_is_scene_row_zero() {
        let mut gl = context();
        let target = gl.create_target(4, 3).expect("create target");
        let content = LayerContent {
            width: 4,
            height: 3,
            background: [0, 0, 0, 255],
            rects: vec![(
                Rect {
                    x: 1,
                    y: 0,
                    w: 2,
                    h: 1,
                },
                [255, 0, 0, 255],
            )],
        };
        gl.draw(&target, &content).expect("draw");
        let mut got = vec![0u8; 48];
        gl.read_pixels(&target, &mut got).expect("read back");
        assert_eq!(
            &got[4..8],
            &[255, 0, 0, 255],
            "row 0 must hold the rect: {got:?}"
        );
        assert_eq!(&got[16 + 4..16 + 8], &[0, 0, 0, 255]);
    }

    #[test]
    fn rects_past_the_edge_are_clipped_like_the_cpu() {
        let mut gl = context();
        let target = gl.create_target(7, 5).expect("create target");
        let content = LayerContent {
            width: 7,
            height: 5,
            background: [1, 2, 3, 4],
            rects: vec![
                (
                    Rect {
                        x: 5,
                        y: 3,
                        w: 10,
                        h: 10,
                    },
                    [9, 9, 9, 9],
                ),
                (
                    Rect {
                        x: 7,
                        y: 0,
                        w: 3,
                        h: 3,
                    },
                    [200, 0, 0, 255],
                ),
                (
                    Rect {
                        x: 0,
                        y: 0,
                        w: 0,
                        h: 5,
                    },
                    [0, 200, 0, 255],
                ),
            ],
        };
        gl.draw(&target, &content).expect("draw");
        let mut got = vec![0u8; target.byte_len()];
        gl.read_pixels(&target, &mut got).expect("read back");
        assert_eq!(got, cpu(&content));
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let mut gl = context();
        let target = gl.create_target(8, 8).expect("create target");
        let mut small = vec![0u8; 8 * 8 * 4 - 1];
        match gl.read_pixels(&target, &mut small) {
            Err(GlError::BufferSize {
                got: 255,
                needed: 256,
                ..
            }) => {}
            other => panic!("expected BufferSize, got {other:?}"),
        }
        match gl.draw(&target, &layer_content(0, 0, 9, 8)) {
            Err(GlError::SizeMismatch {
                content_width: 9,
                width: 8,
                ..
            }) => {}
            other => panic!("expected SizeMismatch, got {other:?}"),
        }
        assert!(matches!(
            gl.create_target(0, 4),
            Err(GlError::BadSize { width: 0, .. })
        ));
        let too_big = gl.info().max_texture_size + 1;
        assert!(matches!(
            gl.create_target(too_big, 4),
            Err(GlError::BadSize { .. })
        ));
    }

    #[test]
    fn targets_of_another_context_are_refused() {
        let mut a = context();
        let mut b = context();
        let ta = a.create_target(4, 4).expect("target a");
        let tb = b.create_target(4, 4).expect("target b");
        assert!(matches!(
            b.draw(&ta, &layer_content(0, 1, 8, 8)),
            Err(GlError::ForeignObject { .. })
        ));
        // Interleaved use of two contexts on one thread keeps each drawing its own objects.
        let ca = layer_content(3, 1, 8, 8);
        let cb = layer_content(4, 1, 8, 8);
        a.draw(&ta, &ca).expect("draw a");
        b.draw(&tb, &cb).expect("draw b");
        let mut got = vec![0u8; 64];
        a.read_pixels(&ta, &mut got).expect("read a");
        assert_eq!(got, cpu(&ca));
        b.read_pixels(&tb, &mut got).expect("read b");
        assert_eq!(got, cpu(&cb));
    }

    #[test]
    fn info_reports_llvmpipe_and_consistent_extension_flags() {
        let gl = context();
        let info = gl.info();
        let json = serde_json::to_string_pretty(info).expect("serialize");
        tracing::info!(%json, "EGL info");
        eprintln!("{json}");
        assert!(
            info.gl_renderer.contains("llvmpipe"),
            "renderer {:?} is not llvmpipe",
            info.gl_renderer
        );
        assert!(
            info.gl_version.starts_with("OpenGL ES 3."),
            "{}",
            info.gl_version
        );
        assert!(!info.egl_vendor.is_empty() && !info.egl_version.is_empty());
        assert!(!info.display_extensions.is_empty());
        for (flag, name) in [
            (
                info.mesa_image_dma_buf_export,
                "EGL_MESA_image_dma_buf_export",
            ),
            (
                info.ext_image_dma_buf_import,
                "EGL_EXT_image_dma_buf_import",
            ),
            (
                info.ext_image_dma_buf_import_modifiers,
                "EGL_EXT_image_dma_buf_import_modifiers",
            ),
            (
                info.android_native_fence_sync,
                "EGL_ANDROID_native_fence_sync",
            ),
            (info.khr_fence_sync, "EGL_KHR_fence_sync"),
        ] {
            assert_eq!(flag, info.has_display_extension(name), "{name}");
        }
        // Every context here needs surfaceless make-current.
        assert!(info.has_display_extension("EGL_KHR_surfaceless_context"));
        let back: EglInfo = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(&back, info);
    }

    #[test]
    fn surfaceless_platform_also_draws_exactly() {
        let mut gl = GlContext::new(PlatformRequest::Surfaceless)
            .unwrap_or_else(|e| panic!("surfaceless context failed: {e}"));
        assert_eq!(gl.info().platform, Platform::Surfaceless);
        let content = layer_content(9, 2, 33, 17);
        let target = gl
            .create_target(content.width, content.height)
            .expect("target");
        gl.draw(&target, &content).expect("draw");
        let mut got = vec![0u8; target.byte_len()];
        gl.read_pixels(&target, &mut got).expect("read");
        assert_eq!(got, cpu(&content));
    }

    #[test]
    fn missing_device_node_lists_what_was_tried() {
        let err = GlContext::new(PlatformRequest::Device {
            render_node: Some(PathBuf::from("/dev/dri/renderD199")),
        })
        .expect_err("no such device");
        let msg = err.to_string();
        assert!(
            msg.contains("device platform") && msg.contains("/dev/dri/renderD199"),
            "{msg}"
        );
        let err = GlContext::new(PlatformRequest::Gbm {
            node: PathBuf::from("/nonexistent/renderD1"),
        })
        .expect_err("no such node");
        let msg = err.to_string();
        assert!(
            msg.contains("GBM platform") && msg.contains("/nonexistent/renderD1"),
            "{msg}"
        );
    }

    #[test]
    fn gl_fence_signals_after_draw() {
        let mut gl = context();
        let content = layer_content(1, 0, 256, 256);
        let target = gl.create_target(256, 256).expect("target");
        gl.draw(&target, &content).expect("draw");
        let fence = gl.fence().expect("fence");
        assert_eq!(
            fence.wait(Instant::now() + FRAME_TIMEOUT).expect("wait"),
            WaitOutcome::Ready
        );
        assert!(fence.is_signaled().expect("status"));
    }

    /// Draw + read-back time for a 1920x1080 layer, printed for the record (run with
    /// `--ignored --nocapture`); asserts only correctness.
    #[test]
    #[ignore = "timing measurement"]
    fn time_draw_and_readback_1080p() {
        let mut gl = context();
        let target = gl.create_target(1920, 1080).expect("target");
        let mut got = vec![0u8; target.byte_len()];
        let mut draw = Duration::ZERO;
        let mut read = Duration::ZERO;
        let frames = 60u64;
        for frame in 0..frames {
            let content = layer_content(frame, 0, 1920, 1080);
            let t0 = Instant::now();
            gl.draw(&target, &content).expect("draw");
            gl.finish().expect("finish");
            let t1 = Instant::now();
            gl.read_pixels(&target, &mut got).expect("read");
            read += t1.elapsed();
            draw += t1 - t0;
            if frame == frames - 1 {
                assert_eq!(got, cpu(&content));
            }
        }
        eprintln!(
            "1920x1080 over {frames} frames: draw+finish {:?}/frame, glReadPixels {:?}/frame",
            draw / frames as u32,
            read / frames as u32
        );
    }
}
