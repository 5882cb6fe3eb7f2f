//! Where the EGL entry points come from: one function table per display, checked, plus the
//! few functions the table lacks.
//!
//! - **The generated table.** Core EGL 1.5 and the extensions `EGL_EXT_platform_base`,
//!   `EGL_KHR_image_base`, `EGL_KHR_fence_sync` and `EGL_ANDROID_native_fence_sync` are called
//!   through [`glutin_egl_sys::egl::Egl`], the struct `gl_generator` writes from Khronos'
//!   `egl.xml`, and every EGL token it defines is taken from that crate. On the device and GBM
//!   platforms the table is glutin's own ([`Tables::of`], `Display::egl()`). The surfaceless
//!   display is made without glutin, which has no public table without a display, so for it
//!   [`Tables::load`] fills the same struct once from libEGL (exported symbols first, then
//!   `eglGetProcAddress`, which before EGL 1.5 resolves extension functions only).
//! - **By hand**, from `eglGetProcAddress`, only the functions that table lacks ([`Extra`]):
//!   `eglExportDMABUFImageQueryMESA` and `eglExportDMABUFImageMESA`
//!   ([`EGL_MESA_image_dma_buf_export`]), `eglGetDisplayDriverName` (`EGL_MESA_query_driver`)
//!   and the GL function `glEGLImageTargetTexture2DOES` ([`GL_OES_EGL_image`], which glow does
//!   not bind either). Their prototypes are written out below from `EGL/eglext.h` and
//!   `GLES2/gl2ext.h`. So are the tokens the generated bindings lack, each beside its use:
//!   `EGL_PLATFORM_SURFACELESS_MESA` in [`super::surfaceless`] and the
//!   `EGL_EXT_image_dma_buf_import(_modifiers)` attribute names in [`super::image`], whose
//!   `eglext.h` values a test pins there.
//!
//! # Which entry points are trusted
//!
//! A function the generated table could not resolve is a stub that panics across the FFI
//! boundary, so every call first checks `FnPtr::is_loaded` (the core functions once, in
//! [`Tables::new`]; each extension function where it is called). Mesa and libglvnd return a
//! function pointer from `eglGetProcAddress` for any `egl*` name, even for extensions the
//! display does not offer. Callers therefore check the display's extension string before calling
//! an extension function; a pointer being present proves nothing.
//!
//! [`EGL_MESA_image_dma_buf_export`]: https://registry.khronos.org/EGL/extensions/MESA/EGL_MESA_image_dma_buf_export.txt
//! [`GL_OES_EGL_image`]: https://registry.khronos.org/OpenGL/extensions/OES/OES_EGL_image.txt

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;
use std::sync::OnceLock;

use glutin_egl_sys::egl;
use glutin_egl_sys::egl::types::{
    EGLBoolean, EGLDisplay, EGLImageKHR, EGLenum, EGLint, EGLuint64KHR,
};

use crate::gl::error::GlError;

/// An EGL token as an attribute-list entry or query name: the generated bindings type every
/// token `EGLenum`, while attribute lists and `eglQueryString` take `EGLint`. Every EGL token is
/// below `0x8000_0000` (egl.xml allocates them from `0x3000` up), so the value is unchanged.
pub(super) const fn attr(token: EGLenum) -> EGLint {
    token as EGLint
}

// The hand-loaded prototypes, each exactly as in `EGL/eglext.h` / `GLES2/gl2ext.h` (EGLAPIENTRY
// and GL_APIENTRY are empty on Linux, so the calling convention is C).
// EGL_MESA_image_dma_buf_export
type FnExportDmabufImageQueryMesa = unsafe extern "C" fn(
    EGLDisplay,
    EGLImageKHR,
    *mut c_int,
    *mut c_int,
    *mut EGLuint64KHR,
) -> EGLBoolean;
type FnExportDmabufImageMesa = unsafe extern "C" fn(
    EGLDisplay,
    EGLImageKHR,
    *mut c_int,
    *mut EGLint,
    *mut EGLint,
) -> EGLBoolean;
// EGL_MESA_query_driver
type FnGetDisplayDriverName = unsafe extern "C" fn(EGLDisplay) -> *const c_char;
// GL_OES_EGL_image: void glEGLImageTargetTexture2DOES(GLenum target, GLeglImageOES image).
type FnEglImageTargetTexture2dOes = unsafe extern "C" fn(u32, EGLImageKHR);

/// The entry points the generated table lacks, from `eglGetProcAddress`; `None` where it
/// returned NULL.
#[derive(Debug)]
pub(super) struct Extra {
    pub(super) export_dmabuf_image_query_mesa: Option<FnExportDmabufImageQueryMesa>,
    pub(super) export_dmabuf_image_mesa: Option<FnExportDmabufImageMesa>,
    pub(super) get_display_driver_name: Option<FnGetDisplayDriverName>,
    pub(super) egl_image_target_texture_2d_oes: Option<FnEglImageTargetTexture2dOes>,
}

static EXTRA: OnceLock<Extra> = OnceLock::new();

impl Extra {
    /// Resolves the functions once, with `egl`'s `eglGetProcAddress` (loaded: checked by the
    /// caller). Its answers name functions of libEGL and do not depend on which table asks.
    fn get(egl: &egl::Egl) -> &'static Self {
        EXTRA.get_or_init(|| {
            let lookup = |name: &CStr| -> *const c_void {
                // SAFETY: GetProcAddress is loaded (the caller checked); `name` is a
                // NUL-terminated string that outlives the call and eglGetProcAddress only reads
                // it.
                unsafe { egl.GetProcAddress(name.as_ptr()) }
                    .cast_const()
                    .cast()
            };
            macro_rules! resolve {
                ($name:literal, $ty:ty) => {{
                    let f = lookup($name);
                    // SAFETY: `f` is what eglGetProcAddress returned for the function `$name`,
                    // and `$ty` is that function's prototype as `EGL/eglext.h` gives it
                    // (`GLES2/gl2ext.h` for glEGLImageTargetTexture2DOES; the type aliases
                    // above). `Option<extern fn>` has the layout of a nullable pointer, so NULL
                    // becomes `None`. The function belongs to libEGL (or the GL library it
                    // dispatches to), which stays loaded for the life of the process.
                    unsafe { std::mem::transmute::<*const c_void, Option<$ty>>(f) }
                }};
            }
            Self {
                export_dmabuf_image_query_mesa: resolve!(
                    c"eglExportDMABUFImageQueryMESA",
                    FnExportDmabufImageQueryMesa
                ),
                export_dmabuf_image_mesa: resolve!(
                    c"eglExportDMABUFImageMESA",
                    FnExportDmabufImageMesa
                ),
                get_display_driver_name: resolve!(
                    c"eglGetDisplayDriverName",
                    FnGetDisplayDriverName
                ),
                egl_image_target_texture_2d_oes: resolve!(
                    c"glEGLImageTargetTexture2DOES",
                    FnEglImageTargetTexture2dOes
                ),
            }
        })
    }
}

/// The soname libglvnd and Mesa install; the unversioned name is a development symlink only.
const LIBEGL: &str = "libEGL.so.1";

/// The generated table filled from libEGL by this module, for displays glutin did not make.
struct OwnEgl {
    table: egl::Egl,
    _lib: libloading::Library,
}

// SAFETY: the table is written once, in `OwnEgl::load`, and only read afterwards; it holds plain
// addresses of functions in `_lib`, which is never unloaded while the value lives (it sits in a
// `static`). The functions themselves may be called from any thread: the EGL specification
// requires EGL and its client APIs to be thread safe. glutin makes the same claim for its copy
// of this table.
unsafe impl Send for OwnEgl {}
// SAFETY: as for `Send`: shared references only read the immutable table.
unsafe impl Sync for OwnEgl {}

static OWN_EGL: OnceLock<Result<OwnEgl, String>> = OnceLock::new();

impl OwnEgl {
    fn load() -> Result<Self, String> {
        // SAFETY: loading libEGL runs its initialisers; libglvnd's and Mesa's have no
        // preconditions on the caller and are safe to run on any thread at any time.
        let lib = unsafe { libloading::Library::new(LIBEGL) }.map_err(|e| {
            format!(
                "{LIBEGL} could not be loaded ({e}); install libegl1 and a vendor library such \
                 as libegl-mesa0"
            )
        })?;
        // SAFETY: `eglGetProcAddress` has the prototype `EGL/egl.h` gives it here; the pointer is
        // copied out of its `Symbol`, which is sound because `lib` is stored beside the table
        // and never unloaded.
        let get_proc_address = *unsafe {
            lib.get::<unsafe extern "C" fn(*const c_char) -> *const c_void>(b"eglGetProcAddress\0")
        }
        .map_err(|e| format!("{LIBEGL} has no eglGetProcAddress ({e})"))?;
        let table = egl::Egl::load_with(|name| {
            let Ok(name) = CString::new(name) else {
                return ptr::null();
            };
            // SAFETY: the exported symbol, if any, is the function the table expects under that
            // name (its type is the table's business, from egl.xml); only its address is taken.
            if let Ok(sym) = unsafe { lib.get::<*const c_void>(name.as_bytes_with_nul()) } {
                return *sym;
            }
            // SAFETY: `name` is NUL-terminated and outlives the call; eglGetProcAddress only
            // reads it. Before EGL 1.5 it resolves extension functions only, hence the symbol
            // lookup first.
            unsafe { get_proc_address(name.as_ptr()) }
        });
        Ok(Self { table, _lib: lib })
    }
}

/// The generated EGL table a display is used through, checked for the core functions, and the
/// hand-loaded [`Extra`] entry points.
#[derive(Clone, Copy)]
pub(crate) struct Tables {
    pub(super) egl: &'static egl::Egl,
    pub(super) extra: &'static Extra,
}

impl std::fmt::Debug for Tables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tables").finish_non_exhaustive()
    }
}

impl Tables {
    /// The table this module loads itself (once), for displays glutin did not make; the error
    /// says which library or function is missing.
    pub(crate) fn load() -> Result<Self, String> {
        let own = OWN_EGL
            .get_or_init(OwnEgl::load)
            .as_ref()
            .map_err(Clone::clone)?;
        Self::new(&own.table)
    }

    /// glutin's table, the one `display` was made through.
    pub(crate) fn of(display: &glutin::api::egl::display::Display) -> Result<Self, String> {
        Self::new(display.egl())
    }

    /// Checks that the core EGL functions the `ffi` modules call unconditionally are loaded.
    fn new(egl: &'static egl::Egl) -> Result<Self, String> {
        let core = [
            ("eglGetProcAddress", egl.GetProcAddress.is_loaded()),
            ("eglGetError", egl.GetError.is_loaded()),
            ("eglQueryString", egl.QueryString.is_loaded()),
            ("eglInitialize", egl.Initialize.is_loaded()),
            ("eglBindAPI", egl.BindAPI.is_loaded()),
            ("eglChooseConfig", egl.ChooseConfig.is_loaded()),
            ("eglCreateContext", egl.CreateContext.is_loaded()),
            ("eglDestroyContext", egl.DestroyContext.is_loaded()),
            ("eglMakeCurrent", egl.MakeCurrent.is_loaded()),
            ("eglGetCurrentContext", egl.GetCurrentContext.is_loaded()),
        ];
        if let Some((name, _)) = core.iter().find(|(_, loaded)| !loaded) {
            return Err(format!("{LIBEGL} has no {name}"));
        }
        Ok(Self {
            egl,
            extra: Extra::get(egl),
        })
    }

    /// `eglGetError()`: the calling thread's last EGL error, which the call also resets.
    pub(super) fn last_error(&self) -> EGLint {
        // SAFETY: loaded (checked in `new`); eglGetError takes no arguments and only reads
        // thread-local state.
        unsafe { self.egl.GetError() }
    }

    /// An `Egl` error for `call`, with the thread's pending EGL error code.
    pub(super) fn error(&self, call: &'static str) -> GlError {
        GlError::Egl {
            call,
            code: self.last_error(),
        }
    }

    /// The client extensions (`eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS)`), sorted; empty
    /// when the implementation has none (EGL_EXT_client_extensions absent).
    pub(crate) fn client_extensions(&self) -> Vec<String> {
        // SAFETY: loaded (checked in `new`). EGL_NO_DISPLAY with EGL_EXTENSIONS is the query
        // EGL_EXT_client_extensions defines; without that extension it fails with
        // EGL_BAD_DISPLAY and returns NULL, which `string_from` handles.
        let s =
            unsafe { string_from(self.egl.QueryString(egl::NO_DISPLAY, attr(egl::EXTENSIONS))) };
        // A failed query leaves EGL_BAD_DISPLAY pending; clear it so it is not blamed on a later
        // call.
        let _ = self.last_error();
        split_extensions(s.as_deref())
    }

    /// The GL entry point `name` (`eglGetProcAddress`), for glow's loader.
    pub(crate) fn gl_proc_address(&self, name: &CStr) -> *const c_void {
        // SAFETY: loaded (checked in `new`); `name` is NUL-terminated and outlives the call;
        // eglGetProcAddress only reads it.
        unsafe { self.egl.GetProcAddress(name.as_ptr()) }
            .cast_const()
            .cast()
    }

    /// `Err(MissingEntryPoint)` unless the table resolved `f`.
    pub(super) fn require(f: &egl::FnPtr, name: &'static str) -> Result<(), GlError> {
        if f.is_loaded() {
            Ok(())
        } else {
            Err(GlError::MissingEntryPoint { name })
        }
    }
}

/// Copies a NUL-terminated string owned by EGL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid during the call.
pub(super) unsafe fn string_from(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL here, and the caller guarantees NUL termination and validity.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Splits an EGL extension string into sorted names.
pub(crate) fn split_extensions(s: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = s
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attribute values keep the token's value (no token reaches the sign bit).
    #[test]
    fn tokens_convert_to_attributes_unchanged() {
        assert_eq!(attr(egl::NONE), 0x3038);
        assert_eq!(attr(egl::OPENGL_ES3_BIT), 0x40);
    }

    #[test]
    fn extension_strings_split_sorted_and_unique() {
        assert_eq!(
            split_extensions(Some(" EGL_b  EGL_a EGL_b\n")),
            vec!["EGL_a".to_owned(), "EGL_b".to_owned()]
        );
        assert!(split_extensions(None).is_empty());
    }
}
