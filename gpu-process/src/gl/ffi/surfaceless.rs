//! An OpenGL ES 3.0 context on the surfaceless platform ([`EGL_MESA_platform_surfaceless`]),
//! made with the EGL calls written out here because glutin has no way to name that platform.
//!
//! The display comes from `eglGetPlatformDisplayEXT(EGL_PLATFORM_SURFACELESS_MESA,
//! EGL_DEFAULT_DISPLAY)` through the table [`Tables::load`] fills from libEGL, since glutin has no
//! public table without a display. The context is made current with no surface
//! (`EGL_KHR_surfaceless_context`). [`SurfacelessContext`] owns the context and destroys it in
//! `Drop`; the display is never terminated, because EGL hands the same display to every caller
//! of the platform.
//!
//! [`EGL_MESA_platform_surfaceless`]: https://registry.khronos.org/EGL/extensions/MESA/EGL_MESA_platform_surfaceless.txt

use std::ptr;

use glutin_egl_sys::egl;
use glutin_egl_sys::egl::types::{EGLConfig, EGLContext, EGLDisplay, EGLenum, EGLint};

use super::loader::{attr, split_extensions, string_from, Tables};
use super::EglHandles;
use crate::gl::error::{error_name, GlError};

// A token glutin_egl_sys does not generate, with the value `EGL/eglext.h` gives it (pinned by a
// test below).
/// EGL_MESA_platform_surfaceless.
const PLATFORM_SURFACELESS_MESA: EGLenum = 0x31DD;

/// An OpenGL ES 3.0 context on the surfaceless platform, created without glutin (which has no
/// way to name that platform). Made current with no surface.
#[derive(Debug)]
pub(crate) struct SurfacelessContext {
    tables: Tables,
    display: EGLDisplay,
    context: EGLContext,
}

impl SurfacelessContext {
    /// Creates the display, initialises it, and creates and binds the context.
    ///
    /// The error is a sentence naming the failing step, for [`crate::gl::PlatformAttempt`].
    pub(crate) fn new() -> Result<Self, String> {
        let tables = Tables::load()?;
        let egl = tables.egl;
        let client = tables.client_extensions();
        if !client.iter().any(|e| e == "EGL_MESA_platform_surfaceless") {
            return Err("EGL_MESA_platform_surfaceless is not among the client extensions".into());
        }
        if !(egl.GetPlatformDisplayEXT.is_loaded()
            && client.iter().any(|e| e == "EGL_EXT_platform_base"))
        {
            return Err("EGL_EXT_platform_base (eglGetPlatformDisplayEXT) is not offered".into());
        }
        let attribs = [attr(egl::NONE)];
        // SAFETY: loaded (checked above); EGL_MESA_platform_surfaceless requires
        // <native_display> to be EGL_DEFAULT_DISPLAY; the attribute list is EGL_NONE terminated
        // and outlives the call.
        let display = unsafe {
            egl.GetPlatformDisplayEXT(
                PLATFORM_SURFACELESS_MESA,
                egl::DEFAULT_DISPLAY.cast_mut(),
                attribs.as_ptr(),
            )
        };
        if display.is_null() {
            return Err(tables
                .error("eglGetPlatformDisplayEXT(EGL_PLATFORM_SURFACELESS_MESA)")
                .to_string());
        }
        let (mut major, mut minor) = (0, 0);
        // SAFETY: loaded (checked in `Tables::new`); `display` was just returned by
        // eglGetPlatformDisplayEXT; the out pointers are locals that outlive the call.
        if unsafe { egl.Initialize(display, &mut major, &mut minor) } == egl::FALSE {
            return Err(tables
                .error("eglInitialize(surfaceless display)")
                .to_string());
        }
        // SAFETY: loaded (checked in `Tables::new`); the display is initialised; the returned
        // string is EGL's and valid until the display is terminated, which never happens here.
        let exts = split_extensions(
            unsafe { string_from(egl.QueryString(display, attr(egl::EXTENSIONS))) }.as_deref(),
        );
        if !exts.iter().any(|e| e == "EGL_KHR_surfaceless_context") {
            return Err("the surfaceless display lacks EGL_KHR_surfaceless_context".into());
        }
        // SAFETY: loaded (checked in `Tables::new`); EGL_OPENGL_ES_API is a valid API enum;
        // eglBindAPI only sets thread state.
        if unsafe { egl.BindAPI(egl::OPENGL_ES_API) } == egl::FALSE {
            return Err(tables.error("eglBindAPI(EGL_OPENGL_ES_API)").to_string());
        }
        let config_attribs = [
            attr(egl::RENDERABLE_TYPE),
            attr(egl::OPENGL_ES3_BIT),
            // Any surface type: the context is only ever used without a surface.
            attr(egl::SURFACE_TYPE),
            0,
            attr(egl::RED_SIZE),
            8,
            attr(egl::GREEN_SIZE),
            8,
            attr(egl::BLUE_SIZE),
            8,
            attr(egl::ALPHA_SIZE),
            8,
            attr(egl::NONE),
        ];
        let mut config: EGLConfig = ptr::null();
        let mut count: EGLint = 0;
        // SAFETY: loaded (checked in `Tables::new`); initialised display; EGL_NONE terminated
        // attribute list; `config` has room for exactly the one config asked for (config_size
        // 1); `count` is a local.
        let ok = unsafe {
            egl.ChooseConfig(display, config_attribs.as_ptr(), &mut config, 1, &mut count)
        };
        if ok == egl::FALSE {
            return Err(tables.error("eglChooseConfig(GLES3, RGBA8)").to_string());
        }
        if count < 1 {
            return Err("eglChooseConfig found no OpenGL ES 3 RGBA8 config".into());
        }
        let context_attribs = [
            attr(egl::CONTEXT_MAJOR_VERSION),
            3,
            attr(egl::CONTEXT_MINOR_VERSION),
            0,
            attr(egl::NONE),
        ];
        // SAFETY: loaded (checked in `Tables::new`); initialised display, a config it returned,
        // no share context, EGL_NONE terminated attributes.
        let context = unsafe {
            egl.CreateContext(display, config, egl::NO_CONTEXT, context_attribs.as_ptr())
        };
        if context.is_null() {
            return Err(tables.error("eglCreateContext(OpenGL ES 3.0)").to_string());
        }
        let this = Self {
            tables,
            display,
            context,
        };
        this.make_current().map_err(|e| e.to_string())?;
        Ok(this)
    }

    /// `eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, context)`.
    pub(crate) fn make_current(&self) -> Result<(), GlError> {
        // SAFETY: loaded (checked in `Tables::new`); display initialised and context alive
        // (owned by `self`); EGL_NO_SURFACE for draw and read is allowed because the display
        // offers EGL_KHR_surfaceless_context (checked in `new`).
        let ok = unsafe {
            self.tables.egl.MakeCurrent(
                self.display,
                egl::NO_SURFACE,
                egl::NO_SURFACE,
                self.context,
            )
        };
        if ok == egl::FALSE {
            return Err(self.tables.error("eglMakeCurrent(surfaceless)"));
        }
        Ok(())
    }

    /// The handles of this display and context.
    ///
    /// # Safety
    /// The caller keeps `self` alive for as long as the returned handles can be used.
    pub(crate) unsafe fn handles(&self) -> EglHandles {
        // SAFETY: the display was initialised through `self.tables` and the context is alive
        // while `self` lives, which the caller guarantees for the handles' lifetime.
        unsafe { EglHandles::new(self.tables, self.display, self.context) }
    }
}

impl Drop for SurfacelessContext {
    fn drop(&mut self) {
        let egl = self.tables.egl;
        // SAFETY: loaded (checked in `Tables::new`); eglGetCurrentContext reads thread-local
        // state only.
        if unsafe { egl.GetCurrentContext() } == self.context {
            // SAFETY: loaded (as above); releasing the current context: NO_SURFACE/NO_CONTEXT on
            // an initialised display is always valid.
            unsafe {
                egl.MakeCurrent(
                    self.display,
                    egl::NO_SURFACE,
                    egl::NO_SURFACE,
                    egl::NO_CONTEXT,
                )
            };
        }
        // SAFETY: loaded (as above); the context was created on this display by `new` and is
        // destroyed only here. The display is not terminated: eglGetPlatformDisplay returns the
        // same EGLDisplay to every caller for the same platform, so another context may still
        // use it.
        if unsafe { egl.DestroyContext(self.display, self.context) } == egl::FALSE {
            let code = self.tables.last_error();
            tracing::warn!(code, name = error_name(code), "eglDestroyContext failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token glutin_egl_sys does not generate has the value `EGL/eglext.h` gives it.
    #[test]
    fn surfaceless_token_matches_eglext_h() {
        assert_eq!(PLATFORM_SURFACELESS_MESA, 0x31DD);
    }
}
