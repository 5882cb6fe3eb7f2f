//! The headless OpenGL ES 3.0 context: how [`GlContext::new`] chooses a platform, and the state
//! that the context and every object made with it share.
//!
//! # Ownership and lifetimes
//!
//! [`GlContext`] holds an `Rc` of the shared state: the EGL display and context (a
//! [`Backend`] of the platform module: glutin on the device and GBM platforms, the hand-written
//! surfaceless context otherwise), the `glow` function table and the [`EglInfo`] gathered at
//! creation. Every [`super::LayerTarget`] and [`super::GlFence`] holds the same `Rc`, so the
//! context outlives them all, and each deletes its own GL objects in `Drop` after making the
//! context current again. Because of the `Rc` (and because an EGL context is current on one
//! thread), none of these types is `Send`: create the context on the thread that renders.
//!
//! Every public operation first makes this context current if another one is, so two
//! [`GlContext`]s on one thread do not draw into each other's objects. GL state that an operation
//! depends on (framebuffer bindings, scissor, pack parameters) is set by that operation; nothing
//! is assumed from a previous call.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use glow::HasContext;
use glutin::context::{AsRawContext, RawContext};
use glutin::display::{AsRawDisplay, RawDisplay};

use super::error::GlError;
use super::ffi::gbm::GbmDevice;
use super::ffi::loader::Tables;
use super::ffi::{self, EglHandles};
use super::info::{EglInfo, Platform, PlatformAttempt, PlatformRequest};
use super::platform::{try_devices, try_gbm, try_surfaceless, Backend, Made};

/// State shared by a context and every object made with it.
pub(super) struct Shared {
    pub(super) gl: glow::Context,
    pub(super) egl: EglHandles,
    pub(super) info: EglInfo,
    /// The GBM device exportable targets are allocated on, opened on first use.
    pub(super) allocator: RefCell<Option<Rc<GbmDevice>>>,
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
    pub(super) shared: Rc<Shared>,
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
            egl_vendor: handles.query_string(ffi::VENDOR).unwrap_or_default(),
            egl_version: handles.query_string(ffi::VERSION).unwrap_or_default(),
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

    pub(super) fn owns(&self, shared: &Rc<Shared>, what: &'static str) -> Result<(), GlError> {
        if Rc::ptr_eq(&self.shared, shared) {
            Ok(())
        } else {
            Err(GlError::ForeignObject { what })
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use triptych_scene::{layer_content, LayerContent};

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
}
