//! The calls into libEGL and libgbm that glutin and glow do not make, written by hand.
//!
//! glutin covers display creation on the device and GBM platforms and context creation there.
//! What it does not expose lives here: the surfaceless platform
//! ([`EGL_MESA_platform_surfaceless`]), string queries on any display, `EGLImage` creation from a
//! GL texture ([`EGL_KHR_image_base`], [`EGL_KHR_gl_texture_2D_image`]), dma-buf export
//! ([`EGL_MESA_image_dma_buf_export`]), dma-buf import ([`EGL_EXT_image_dma_buf_import`]) and
//! binding an `EGLImage` to a texture (`glEGLImageTargetTexture2DOES`), native fence syncs
//! ([`EGL_ANDROID_native_fence_sync`]), the driver name (`EGL_MESA_query_driver`), and from
//! libgbm the `gbm_device` the GBM platform needs and the linear buffers exportable layer
//! targets are made of.
//!
//! - this module: [`EglHandles`], an initialised display and a live context, and the queries
//!   on them;
//! - [`loader`]: the function tables (glutin's, or one loaded here) and the entry points they
//!   lack;
//! - [`image`]: `EGLImage`s made from a texture or over a dma-buf, bound to a texture, exported;
//! - [`sync`]: native fence syncs and their sync_file fds;
//! - [`surfaceless`]: the surfaceless platform's display and context;
//! - [`gbm`]: libgbm, a device on a DRM node and linear buffers on it.
//!
//! # Lifetimes
//!
//! - The libraries are opened once, on first use, and stay loaded for the life of the process
//!   (glutin's table and the ones here sit in `static`s), so the function pointers taken from
//!   them never dangle.
//! - [`EglHandles`] names an initialised display and a live context on it. It is made only by
//!   the context module, whose shared state owns both and keeps them alive (never terminated or
//!   destroyed) for as long as any copy of the handles can be used; that invariant is what the
//!   safe methods here rely on.
//! - [`image::EglImage`] and [`sync::EglSync`] are owned values with no `Drop`: their owner hands
//!   them back to [`EglHandles::destroy_image`] / [`EglHandles::destroy_sync`] while the display
//!   still lives.
//! - [`surfaceless::SurfacelessContext`] and [`gbm::GbmDevice`] own what they create and release
//!   it in `Drop`. A [`gbm::GbmBuffer`] holds an `Rc` of its device, so the device outlives every
//!   buffer made on it.
//!
//! Every fd these calls hand over is adopted once as an `OwnedFd` and made close-on-exec
//! ([`ensure_cloexec`]) before it leaves this module.
//!
//! [`EGL_MESA_platform_surfaceless`]: https://registry.khronos.org/EGL/extensions/MESA/EGL_MESA_platform_surfaceless.txt
//! [`EGL_KHR_image_base`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_image_base.txt
//! [`EGL_KHR_gl_texture_2D_image`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_gl_image.txt
//! [`EGL_MESA_image_dma_buf_export`]: https://registry.khronos.org/EGL/extensions/MESA/EGL_MESA_image_dma_buf_export.txt
//! [`EGL_ANDROID_native_fence_sync`]: https://registry.khronos.org/EGL/extensions/ANDROID/EGL_ANDROID_native_fence_sync.txt
//! [`EGL_EXT_image_dma_buf_import`]: https://registry.khronos.org/EGL/extensions/EXT/EGL_EXT_image_dma_buf_import.txt

pub(super) mod gbm;
pub(super) mod image;
pub(super) mod loader;
pub(super) mod surfaceless;
pub(super) mod sync;

use std::os::fd::{AsRawFd, OwnedFd};

use glutin_egl_sys::egl;
use glutin_egl_sys::egl::types::{EGLContext, EGLDisplay, EGLenum};

use super::error::GlError;
use loader::{attr, split_extensions, string_from, Tables};

/// `eglQueryString` names, for the context module.
pub(crate) use egl::{VENDOR, VERSION};

/// An initialised EGL display and a live context on it.
///
/// Invariant (upheld by [`EglHandles::new`]'s caller): both stay valid, the display initialised
/// and the context not destroyed, for as long as this value or any copy of it can be used.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EglHandles {
    tables: Tables,
    display: EGLDisplay,
    context: EGLContext,
}

impl EglHandles {
    /// # Safety
    /// `display` is an EGL display initialised through the library `tables` was loaded from,
    /// `context` a context created on it, and the caller keeps both alive (not terminated /
    /// destroyed) for as long as the returned value or any copy of it can be used.
    pub(crate) unsafe fn new(tables: Tables, display: EGLDisplay, context: EGLContext) -> Self {
        Self {
            tables,
            display,
            context,
        }
    }

    /// The tables the display is used through.
    pub(crate) fn tables(&self) -> Tables {
        self.tables
    }

    /// The raw display, for comparisons and logs.
    pub(crate) fn display(&self) -> EGLDisplay {
        self.display
    }

    fn egl(&self) -> &'static egl::Egl {
        self.tables.egl
    }

    /// `eglQueryString(display, name)`.
    pub(crate) fn query_string(&self, name: EGLenum) -> Option<String> {
        // SAFETY: loaded (checked in `Tables::new`); the display is initialised (type
        // invariant); `name` is one of the EGL_* string names, and an unknown one only makes EGL
        // return NULL with EGL_BAD_PARAMETER. The returned string is owned by EGL and valid
        // until the display is terminated, which the invariant excludes during this call.
        let s = unsafe { string_from(self.egl().QueryString(self.display, attr(name))) };
        if s.is_none() {
            let _ = self.tables.last_error();
        }
        s
    }

    /// The name of the driver behind the display (`eglGetDisplayDriverName`), e.g. `kms_swrast`.
    ///
    /// The caller has checked `EGL_MESA_query_driver` in the display's extensions.
    pub(crate) fn driver_name(&self) -> Option<String> {
        let get = self.tables.extra.get_display_driver_name?;
        // SAFETY: the display is initialised (type invariant). EGL_MESA_query_driver: the
        // returned string belongs to EGL and stays valid until the display is terminated,
        // which the invariant excludes during this call; NULL on error is handled.
        let name = unsafe { string_from(get(self.display)) };
        if name.is_none() {
            let _ = self.tables.last_error();
        }
        name
    }

    /// The display's extensions, sorted.
    pub(crate) fn extensions(&self) -> Vec<String> {
        split_extensions(self.query_string(egl::EXTENSIONS).as_deref())
    }

    /// Whether this context is current on the calling thread.
    pub(crate) fn is_current(&self) -> bool {
        // SAFETY: loaded (checked in `Tables::new`); eglGetCurrentContext takes no arguments and
        // reads thread-local state.
        unsafe { self.egl().GetCurrentContext() == self.context }
    }
}

/// Returns `fd` close-on-exec: as is when EGL already set the flag, else a close-on-exec
/// duplicate (the original is closed when dropped here).
fn ensure_cloexec(fd: OwnedFd) -> Result<OwnedFd, GlError> {
    use std::os::fd::AsFd;
    if triptych_sys::fd::is_cloexec(&fd)? {
        return Ok(fd);
    }
    tracing::debug!(
        fd = fd.as_raw_fd(),
        "EGL returned an fd without FD_CLOEXEC; duplicating"
    );
    Ok(triptych_sys::fd::dup_cloexec(fd.as_fd())?)
}
