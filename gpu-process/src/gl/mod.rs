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
//! Foreign calls are in two places: `ffi/` (every call into libEGL, through the table generated
//! from Khronos' `egl.xml` plus the few entry points it lacks, and into libgbm) and the GL calls
//! of the other modules, which go through `glow`, whose every function is `unsafe` because GL
//! cannot check the names and pointers it is given. Each block states why its arguments are
//! valid.
//!
//! # Where each part lives
//!
//! - `info.rs`: what a context is asked for and what it found ([`PlatformRequest`],
//!   [`Platform`], [`PlatformAttempt`], [`EglInfo`]); plain values, no GL objects.
//! - `platform.rs`: making an EGL display and an OpenGL ES 3 context on one platform (device,
//!   GBM, surfaceless).
//! - `context.rs`: [`GlContext`]: the order platforms are tried in, the state every GL object
//!   of the context shares, flush and finish.
//! - `targets.rs`: [`LayerTarget`]s: plain, uploaded and dma-buf backed (exportable) textures
//!   with their framebuffers, and the GBM allocation behind the exportable ones.
//! - `draw.rs`: a layer's scissored clears, copies between targets, and the read-back.
//! - `scene.rs`: a scene file's layers, drawn with GLSL shaders.
//! - `fence.rs`: [`GlFence`], [`NativeFence`] and their [`WaitOutcome`].
//! - `dmabuf_export.rs`: [`DmabufExport`], a target's texture exported as a DMA-BUF.
//! - `error.rs`: [`GlError`].
//! - `ffi/`: the hand-written calls into libEGL and libgbm that glutin and glow do not make.
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
mod draw;
mod error;
mod fence;
mod ffi;
mod info;
mod platform;
mod scene;
mod targets;

pub use context::GlContext;
pub use dmabuf_export::{
    DmabufExport, ExportedPlane, DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_INVALID,
    DRM_FORMAT_MOD_LINEAR, LINEAR_WITHOUT_MODIFIER_DRIVERS,
};
pub use error::GlError;
pub use fence::{GlFence, NativeFence, WaitOutcome};
pub use info::{EglInfo, Platform, PlatformAttempt, PlatformRequest};
pub use scene::{Paint, Patch, SceneDrawer};
pub use targets::LayerTarget;
