//! The GPU process's OpenGL side: one headless OpenGL ES 3 context, the layer textures it draws,
//! and the two ways a finished texture leaves the process (a CPU read-back, or a DMA-BUF plus a
//! sync_file fence).
//!
//! # What this module owns
//!
//! A [`GlContext`] owns one EGL display connection and one OpenGL ES 3.0 context on it, made
//! current without any surface (`EGL_KHR_surfaceless_context`): the process has no window system.
//! Everything GL-side that the context creates ([`LayerTarget`]s, [`GlFence`]s, the cached
//! `EGLImage` of an exported texture) holds a reference to the context's shared state, so the
//! context lives until the last of them is dropped, and each of them deletes its GL/EGL objects in
//! its own `Drop`. None of these types is `Send`: an EGL context is current on one thread, and the
//! GPU process renders on the thread that created the context.
//!
//! Buffers that were exported ([`DmabufExport`]) and fences ([`NativeFence`]) are plain owned fds:
//! they outlive the GL objects they came from, because the kernel keeps a dma-buf's memory and a
//! sync_file's fence alive for as long as any fd refers to them.
//!
//! # Which EGL platform
//!
//! [`GlContext::new`] takes a [`PlatformRequest`]. The automatic choice tries, in order:
//! 1. the EGL device platform ([`EGL_EXT_platform_device`]), DRM-backed devices first, then
//!    Mesa's software device (`EGL_MESA_device_software`, llvmpipe without any DRM node, what a
//!    machine without `/dev/dri` gets);
//! 2. the surfaceless platform ([`EGL_MESA_platform_surfaceless`]).
//!
//! One exception: when the device platform lands on Mesa's `kms_swrast` (llvmpipe on a DRM
//! node with no hardware driver, which is what vgem gives), Mesa opens the *render* node, where
//! the kernel refuses the dumb-buffer ioctls `kms_swrast` shares memory through. The automatic
//! choice then moves to the GBM platform ([`EGL_KHR_platform_gbm`]) on the device's *primary*
//! node (`/dev/dri/card0`), and [`EglInfo::earlier_attempts`] records why. The GBM platform on
//! any node can also be asked for by name. When every candidate fails, the error lists each
//! platform tried and why it failed.
//!
//! # The export -> pass -> import sequence
//!
//! 1. **Draw.** [`GlContext::draw`] writes a [`triptych_scene::LayerContent`] into the layer's
//!    RGBA8 texture with scissored clears, using GL's window y as the scene's row index, so
//!    row 0 of every read-back or export is the scene's row 0. A scene file's layers are drawn
//!    by [`GlContext::paint`] with GLSL shaders instead (`scene.rs`), with the same orientation.
//!    A layer meant for export is created with [`GlContext::create_exportable_target`]: its
//!    texture's storage is a linear `DRM_FORMAT_ABGR8888` buffer allocated with GBM and
//!    imported as an `EGLImage` ([`EGL_EXT_image_dma_buf_import`]) bound to the texture
//!    ([`GL_OES_EGL_image`]). Mesa's llvmpipe before 24.0 can share no other texture storage;
//!    drivers that can are served by a plain [`GlContext::create_target`] as well.
//! 2. **Export** (once per texture). [`GlContext::export_dmabuf`] takes the texture's
//!    `EGLImage` (the imported one, or one made from the texture with
//!    [`EGL_KHR_gl_texture_2D_image`] and [`EGL_KHR_image_base`]), asks for its layout with
//!    `eglExportDMABUFImageQueryMESA` and for one dma-buf fd per plane with
//!    `eglExportDMABUFImageMESA` ([`EGL_MESA_image_dma_buf_export`]). The image is kept with
//!    the texture: the fds keep referring to the texture's memory while later frames are drawn
//!    into it. Only linear RGBA8 (`DRM_FORMAT_ABGR8888`, `DRM_FORMAT_MOD_LINEAR`, or no modifier
//!    from a driver known to be linear) is accepted, because the renderer reads it on the CPU.
//! 3. **Fence.** After each frame's draw, [`GlContext::native_fence`] inserts an
//!    `EGL_SYNC_NATIVE_FENCE_ANDROID` sync ([`EGL_ANDROID_native_fence_sync`]), flushes, and
//!    returns its sync_file fd, which signals when the GPU finished everything drawn before it.
//!    Where that extension is missing, [`GlContext::fence`] and [`GlFence::wait`] (a GL sync
//!    object, [`glFenceSync`]) let this process wait itself before signalling a CPU fence.
//! 4. **Pass.** The GPU process moves the dma-buf and sync_file fds into its export window and
//!    describes them to the renderer; the renderer takes them with `pidfd_getfd`.
//! 5. **Import.** The renderer waits for the sync_file to become readable (`poll`), maps the
//!    dma-buf, brackets its reads with `DMA_BUF_IOCTL_SYNC` ([kernel dma-buf docs]), and reads
//!    rows of `stride` bytes from `offset`. A GPU-side importer would instead use
//!    [`EGL_EXT_image_dma_buf_import`] and [`EGL_EXT_image_dma_buf_import_modifiers`] with the
//!    same fourcc, modifier, offset and stride.
//!
//! # Unsafe code
//!
//! Foreign calls are in two places: `egl_ffi.rs` (every call into libEGL, through the table
//! generated from Khronos' `egl.xml` plus the few entry points it lacks, and into libgbm) and
//! the GL calls in `context.rs`, which go through `glow`, whose every
//! function is `unsafe` because GL cannot check the names and
//! pointers it is given. Each block states why its arguments are valid.
//!
//! [`EGL_EXT_platform_device`]: https://registry.khronos.org/EGL/extensions/EXT/EGL_EXT_platform_device.txt
//! [`EGL_MESA_platform_surfaceless`]: https://registry.khronos.org/EGL/extensions/MESA/EGL_MESA_platform_surfaceless.txt
//! [`EGL_KHR_platform_gbm`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_platform_gbm.txt
//! [`EGL_KHR_gl_texture_2D_image`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_gl_image.txt
//! [`EGL_KHR_image_base`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_image_base.txt
//! [`EGL_MESA_image_dma_buf_export`]: https://registry.khronos.org/EGL/extensions/MESA/EGL_MESA_image_dma_buf_export.txt
//! [`EGL_ANDROID_native_fence_sync`]: https://registry.khronos.org/EGL/extensions/ANDROID/EGL_ANDROID_native_fence_sync.txt
//! [`EGL_EXT_image_dma_buf_import`]: https://registry.khronos.org/EGL/extensions/EXT/EGL_EXT_image_dma_buf_import.txt
//! [`EGL_EXT_image_dma_buf_import_modifiers`]: https://registry.khronos.org/EGL/extensions/EXT/EGL_EXT_image_dma_buf_import_modifiers.txt
//! [`glFenceSync`]: https://registry.khronos.org/OpenGL-Refpages/es3.0/html/glFenceSync.xhtml
//! [`GL_OES_EGL_image`]: https://registry.khronos.org/OpenGL/extensions/OES/OES_EGL_image.txt
//! [kernel dma-buf docs]: https://docs.kernel.org/driver-api/dma-buf.html#cpu-access-to-dma-buffer-objects

mod context;
mod dmabuf_export;
mod egl_ffi;
mod fence;
mod scene;

pub use context::{
    EglInfo, GlContext, GlFence, LayerTarget, Platform, PlatformAttempt, PlatformRequest,
    WaitOutcome,
};
pub use dmabuf_export::{
    DmabufExport, ExportedPlane, DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_INVALID,
    DRM_FORMAT_MOD_LINEAR, LINEAR_WITHOUT_MODIFIER_DRIVERS,
};
pub use fence::NativeFence;
pub use scene::{rasterize_text, Paint, SceneDrawer};

/// Errors of the GL module. Each names the call or extension that failed and the values involved.
#[derive(Debug, thiserror::Error)]
pub enum GlError {
    /// No platform produced a current OpenGL ES 3 context.
    #[error("no EGL platform gave an OpenGL ES 3 context; tried: {}", list_attempts(.attempts))]
    NoContext {
        /// Each platform tried, in order, with why it failed.
        attempts: Vec<PlatformAttempt>,
    },
    /// An EGL call failed.
    #[error("{call} failed: EGL error {code:#06x} ({})", egl_ffi::error_name(*.code))]
    Egl {
        /// The EGL function.
        call: &'static str,
        /// `eglGetError()` after the call.
        code: i32,
    },
    /// libEGL did not provide a function although the extension that defines it is offered.
    #[error("libEGL has no entry point {name} although the display offers its extension")]
    MissingEntryPoint {
        /// The function name.
        name: &'static str,
    },
    /// The EGL display or GL context does not offer an extension an operation needs.
    #[error(
        "the GL context ({platform}) does not offer {extension}, which {needed_for} needs; \
         use a platform that offers it (with Mesa: the device platform on a DRM node)"
    )]
    ExtensionMissing {
        /// The extension string that is absent.
        extension: &'static str,
        /// The operation that needs it.
        needed_for: &'static str,
        /// The platform the display was created on.
        platform: Platform,
    },
    /// A scene's shaders or textures could not be made or used.
    #[error("scene drawing: {0}")]
    Scene(String),
    /// A GL call raised an error.
    #[error("GL error {code:#06x} after {call}")]
    Gl {
        /// The GL function (or sequence) after which `glGetError` reported.
        call: &'static str,
        /// The GL error code.
        code: u32,
    },
    /// A GL object could not be created.
    #[error("could not create a GL {object}: {message}")]
    CreateObject {
        /// The kind of object.
        object: &'static str,
        /// glow's message.
        message: String,
    },
    /// A layer target size that GL cannot hold.
    #[error("layer target size {width}x{height} is outside 1..={max} in each dimension")]
    BadSize {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// `GL_MAX_TEXTURE_SIZE` of this context.
        max: u32,
    },
    /// The framebuffer around a layer texture is incomplete.
    #[error(
        "framebuffer for a {width}x{height} RGBA8 texture is incomplete: status {status:#06x}"
    )]
    IncompleteFramebuffer {
        /// Width of the texture.
        width: u32,
        /// Height of the texture.
        height: u32,
        /// `glCheckFramebufferStatus` result.
        status: u32,
    },
    /// Content of one size drawn into a target of another.
    #[error(
        "layer content is {content_width}x{content_height} but the target is {width}x{height}"
    )]
    SizeMismatch {
        /// Width of the content.
        content_width: u32,
        /// Height of the content.
        content_height: u32,
        /// Width of the target.
        width: u32,
        /// Height of the target.
        height: u32,
    },
    /// A read-back buffer of the wrong length.
    #[error("read-back buffer holds {got} bytes; a {width}x{height} RGBA8 target needs exactly {needed}")]
    BufferSize {
        /// `out.len()`.
        got: usize,
        /// Bytes needed.
        needed: usize,
        /// Width of the target.
        width: u32,
        /// Height of the target.
        height: u32,
    },
    /// A target or fence used with a context other than the one that created it.
    #[error("this {what} was created by another GL context")]
    ForeignObject {
        /// What was passed.
        what: &'static str,
    },
    /// The exported dma-buf is not laid out linearly, so the CPU cannot read it as rows.
    #[error(
        "exported dma-buf has modifier {modifier:#018x}, not DRM_FORMAT_MOD_LINEAR (0); the renderer \
         reads buffers on the CPU and needs a linear layout"
    )]
    NotLinear {
        /// The modifier EGL reported.
        modifier: u64,
    },
    /// The exported dma-buf has a format or plane count other than single-plane ABGR8888.
    #[error(
        "exported dma-buf has fourcc {fourcc:#010x} with {planes} plane(s); expected \
         DRM_FORMAT_ABGR8888 ({:#010x}) with 1 plane",
        DRM_FORMAT_ABGR8888
    )]
    UnexpectedLayout {
        /// The fourcc EGL reported.
        fourcc: u32,
        /// The plane count EGL reported.
        planes: i32,
    },
    /// A plane's offset or stride cannot describe the texture.
    #[error(
        "exported plane {plane} has offset {offset} and stride {stride}, invalid for width {width}"
    )]
    BadPlane {
        /// Plane index.
        plane: usize,
        /// Offset EGL reported.
        offset: i32,
        /// Stride EGL reported.
        stride: i32,
        /// Texture width in pixels.
        width: u32,
    },
    /// EGL reported success but returned no fd for a plane.
    #[error(
        "eglExportDMABUFImageMESA returned no fd for plane {plane}: the driver cannot share this \
         texture's storage (Mesa's llvmpipe before 24.0 shares only textures made from a \
         dma-buf); create the target with GlContext::create_exportable_target"
    )]
    MissingPlaneFd {
        /// Plane index.
        plane: usize,
    },
    /// Waiting on a sync_file failed.
    #[error("waiting on a native fence failed: {0}")]
    Poll(#[from] triptych_sys::poll::PollError),
    /// The exported dma-buf is smaller than the layout EGL reported for it.
    #[error("exported plane {plane} is {size} bytes, but its offset and stride need {needed}")]
    BufferTooSmall {
        /// Plane index.
        plane: usize,
        /// `lseek(SEEK_END)` of the dma-buf.
        size: u64,
        /// `offset + stride * height`.
        needed: u64,
    },
    /// No linear dma-buf could be allocated for an exportable target.
    #[error("allocating a {width}x{height} linear dma-buf failed: {}", .attempts.join("; "))]
    Allocate {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
        /// Each DRM node tried and why it failed.
        attempts: Vec<String>,
    },
    /// The driver imported a dma-buf as a texture but cannot access its memory.
    #[error(
        "the driver {driver:?} ({platform} on {node:?}) imported the dma-buf but cannot map it \
         (GL error {code:#06x} reading it back); with Mesa's kms_swrast the display must be on \
         the DRM primary node: use PlatformRequest::Auto or PlatformRequest::Gbm on /dev/dri/cardN"
    )]
    ImportUnusable {
        /// The GL error of the probing read.
        code: u32,
        /// `eglGetDisplayDriverName`, if known.
        driver: Option<String>,
        /// The platform of the display.
        platform: Platform,
        /// The DRM node of the display.
        node: Option<std::path::PathBuf>,
    },
    /// An fd-level operation on an exported fd failed.
    #[error("making an exported fd close-on-exec failed: {0}")]
    Fd(#[from] triptych_sys::fd::FdError),
}

fn list_attempts(attempts: &[PlatformAttempt]) -> String {
    if attempts.is_empty() {
        return "nothing".to_owned();
    }
    attempts
        .iter()
        .map(|a| format!("[{a}]"))
        .collect::<Vec<_>>()
        .join(", ")
}
