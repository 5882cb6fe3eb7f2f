//! Every call this module makes into libEGL and libgbm.
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
//! # Where the entry points come from
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
//!   `GLES2/gl2ext.h`. So are the tokens the generated bindings lack:
//!   `EGL_PLATFORM_SURFACELESS_MESA` and the `EGL_EXT_image_dma_buf_import(_modifiers)`
//!   attribute names, whose `eglext.h` values a test pins.
//! - **libgbm** is opened with `dlopen` ([`GbmDevice`]), not through the `gbm` crate, although
//!   that crate covers what is used here (a device on a DRM fd, a linear buffer, its dma-buf fd,
//!   stride, offset and modifier): its `gbm-sys` links libgbm (`#[link(name = "gbm")]`). The
//!   build would then need the development library (`libgbm.so`, from libgbm-dev), and the
//!   binary would carry a `DT_NEEDED` on `libgbm.so.1`, so on a machine without libgbm1 the
//!   dynamic loader would refuse to start the GPU process at all, before it could say what is
//!   missing. Loaded here, a missing libgbm is one named reason in the platform attempts and the
//!   dma-buf fallback, and every path that needs no GBM (device and surfaceless platforms, the
//!   shm export) still works.
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
//! - [`EglImage`] and [`EglSync`] are owned values with no `Drop`: their owner hands them back to
//!   [`EglHandles::destroy_image`] / [`EglHandles::destroy_sync`] while the display still lives.
//! - [`SurfacelessContext`] and [`GbmDevice`] own what they create and release it in `Drop`.
//!   A [`GbmBuffer`] holds an `Rc` of its device, so the device outlives every buffer made on it.
//!
//! # Which entry points are trusted
//!
//! A function the generated table could not resolve is a stub that panics across the FFI
//! boundary, so every call here first checks `FnPtr::is_loaded` (the core functions once, in
//! [`Tables::new`]; each extension function where it is called). Mesa and libglvnd return a
//! function pointer from `eglGetProcAddress` for any `egl*` name, even for extensions the
//! display does not offer. Callers therefore check the display's extension string before calling
//! an extension function; a pointer being present proves nothing.
//!
//! [`EGL_MESA_platform_surfaceless`]: https://registry.khronos.org/EGL/extensions/MESA/EGL_MESA_platform_surfaceless.txt
//! [`EGL_KHR_image_base`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_image_base.txt
//! [`EGL_KHR_gl_texture_2D_image`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_gl_image.txt
//! [`EGL_MESA_image_dma_buf_export`]: https://registry.khronos.org/EGL/extensions/MESA/EGL_MESA_image_dma_buf_export.txt
//! [`EGL_ANDROID_native_fence_sync`]: https://registry.khronos.org/EGL/extensions/ANDROID/EGL_ANDROID_native_fence_sync.txt
//! [`EGL_EXT_image_dma_buf_import`]: https://registry.khronos.org/EGL/extensions/EXT/EGL_EXT_image_dma_buf_import.txt
//! [`GL_OES_EGL_image`]: https://registry.khronos.org/OpenGL/extensions/OES/OES_EGL_image.txt

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::rc::Rc;
use std::sync::OnceLock;

use glutin_egl_sys::egl;
use glutin_egl_sys::egl::types::{
    EGLBoolean, EGLClientBuffer, EGLConfig, EGLContext, EGLDisplay, EGLImageKHR, EGLSyncKHR,
    EGLenum, EGLint, EGLuint64KHR,
};

use super::GlError;

/// `eglQueryString` names, for the context module.
pub(crate) use egl::{VENDOR, VERSION};

// Tokens glutin_egl_sys does not generate, with the values `EGL/eglext.h` gives them (pinned by
// a test below).
/// EGL_MESA_platform_surfaceless.
const PLATFORM_SURFACELESS_MESA: EGLenum = 0x31DD;
// EGL_EXT_image_dma_buf_import / EGL_EXT_image_dma_buf_import_modifiers.
const LINUX_DMA_BUF_EXT: EGLenum = 0x3270;
const LINUX_DRM_FOURCC_EXT: EGLenum = 0x3271;
const DMA_BUF_PLANE0_FD_EXT: EGLenum = 0x3272;
const DMA_BUF_PLANE0_OFFSET_EXT: EGLenum = 0x3273;
const DMA_BUF_PLANE0_PITCH_EXT: EGLenum = 0x3274;
const DMA_BUF_PLANE0_MODIFIER_LO_EXT: EGLenum = 0x3443;
const DMA_BUF_PLANE0_MODIFIER_HI_EXT: EGLenum = 0x3444;

pub(crate) use ipc_protocol::frame::MAX_PLANES;

/// An EGL token as an attribute-list entry or query name: the generated bindings type every
/// token `EGLenum`, while attribute lists and `eglQueryString` take `EGLint`. Every EGL token is
/// below `0x8000_0000` (egl.xml allocates them from `0x3000` up), so the value is unchanged.
const fn attr(token: EGLenum) -> EGLint {
    token as EGLint
}

/// The name of an EGL error code, for messages.
pub(crate) fn error_name(code: i32) -> &'static str {
    // A negative code is no EGL error; it wraps to a value no arm matches.
    match code as EGLenum {
        egl::SUCCESS => "EGL_SUCCESS",
        egl::NOT_INITIALIZED => "EGL_NOT_INITIALIZED",
        egl::BAD_ACCESS => "EGL_BAD_ACCESS",
        egl::BAD_ALLOC => "EGL_BAD_ALLOC",
        egl::BAD_ATTRIBUTE => "EGL_BAD_ATTRIBUTE",
        egl::BAD_CONFIG => "EGL_BAD_CONFIG",
        egl::BAD_CONTEXT => "EGL_BAD_CONTEXT",
        egl::BAD_CURRENT_SURFACE => "EGL_BAD_CURRENT_SURFACE",
        egl::BAD_DISPLAY => "EGL_BAD_DISPLAY",
        egl::BAD_MATCH => "EGL_BAD_MATCH",
        egl::BAD_NATIVE_PIXMAP => "EGL_BAD_NATIVE_PIXMAP",
        egl::BAD_NATIVE_WINDOW => "EGL_BAD_NATIVE_WINDOW",
        egl::BAD_PARAMETER => "EGL_BAD_PARAMETER",
        egl::BAD_SURFACE => "EGL_BAD_SURFACE",
        egl::CONTEXT_LOST => "EGL_CONTEXT_LOST",
        _ => "unknown EGL error",
    }
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
struct Extra {
    export_dmabuf_image_query_mesa: Option<FnExportDmabufImageQueryMesa>,
    export_dmabuf_image_mesa: Option<FnExportDmabufImageMesa>,
    get_display_driver_name: Option<FnGetDisplayDriverName>,
    egl_image_target_texture_2d_oes: Option<FnEglImageTargetTexture2dOes>,
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
const LIBGBM: &str = "libgbm.so.1";

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
    egl: &'static egl::Egl,
    extra: &'static Extra,
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

    /// Checks that the core EGL functions this module calls unconditionally are loaded.
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
    fn last_error(&self) -> EGLint {
        // SAFETY: loaded (checked in `new`); eglGetError takes no arguments and only reads
        // thread-local state.
        unsafe { self.egl.GetError() }
    }

    /// An `Egl` error for `call`, with the thread's pending EGL error code.
    fn error(&self, call: &'static str) -> GlError {
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
    fn require(f: &egl::FnPtr, name: &'static str) -> Result<(), GlError> {
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
unsafe fn string_from(p: *const c_char) -> Option<String> {
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

/// An `EGLImageKHR` created by [`EglHandles::create_image_from_texture`]; hand it back to
/// [`EglHandles::destroy_image`].
#[derive(Debug)]
pub(crate) struct EglImage(EGLImageKHR);

/// An `EGLSyncKHR`; hand it back to [`EglHandles::destroy_sync`].
#[derive(Debug)]
pub(crate) struct EglSync(EGLSyncKHR);

/// One plane of a dma-buf to import.
#[derive(Debug)]
pub(crate) struct DmabufPlane<'fd> {
    pub(crate) fd: BorrowedFd<'fd>,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) fourcc: u32,
    pub(crate) offset: u32,
    pub(crate) stride: u32,
    pub(crate) modifier: Option<u64>,
}

/// What `eglExportDMABUFImageQueryMESA` reports.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExportQuery {
    pub(crate) fourcc: u32,
    pub(crate) num_planes: i32,
    pub(crate) modifier: u64,
}

/// One plane as `eglExportDMABUFImageMESA` returns it.
#[derive(Debug)]
pub(crate) struct RawPlane {
    pub(crate) fd: OwnedFd,
    pub(crate) stride: i32,
    pub(crate) offset: i32,
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

    /// `eglCreateImageKHR(display, context, EGL_GL_TEXTURE_2D_KHR, texture, {level 0})`.
    ///
    /// The caller has checked `EGL_KHR_image_base` and `EGL_KHR_gl_texture_2D_image` in the
    /// display's extensions and that `texture` names a complete 2D texture of this context.
    pub(crate) fn create_image_from_texture(&self, texture: u32) -> Result<EglImage, GlError> {
        Tables::require(&self.egl().CreateImageKHR, "eglCreateImageKHR")?;
        let attribs = [attr(egl::GL_TEXTURE_LEVEL), 0, attr(egl::NONE)];
        // EGL_KHR_gl_image: "<buffer> ... the name of a texture object, cast into the type
        // EGLClientBuffer".
        let buffer = texture as usize as EGLClientBuffer;
        // SAFETY: loaded (checked above); display and context are live (type invariant);
        // `attribs` is an EGL_NONE terminated list that outlives the call; EGL validates the
        // texture name itself (EGL_BAD_PARAMETER/EGL_BAD_MATCH for names that are not complete
        // 2D textures).
        let image = unsafe {
            self.egl().CreateImageKHR(
                self.display,
                self.context,
                egl::GL_TEXTURE_2D,
                buffer,
                attribs.as_ptr(),
            )
        };
        if image.is_null() {
            return Err(self
                .tables
                .error("eglCreateImageKHR(EGL_GL_TEXTURE_2D_KHR)"));
        }
        Ok(EglImage(image))
    }

    /// `eglDestroyImageKHR`. Logs, rather than returns, a failure: it runs in `Drop`.
    pub(crate) fn destroy_image(&self, image: EglImage) {
        if !self.egl().DestroyImageKHR.is_loaded() {
            tracing::warn!("eglDestroyImageKHR missing; EGLImage leaked");
            return;
        }
        // SAFETY: loaded (checked above); the display is live (type invariant) and `image` was
        // created on it by `create_image_from_texture`; taking it by value means it is destroyed
        // once.
        if unsafe { self.egl().DestroyImageKHR(self.display, image.0) } == egl::FALSE {
            let code = self.tables.last_error();
            tracing::warn!(code, name = error_name(code), "eglDestroyImageKHR failed");
        }
    }

    /// `eglCreateImageKHR(display, EGL_NO_CONTEXT, EGL_LINUX_DMA_BUF_EXT, NULL, attribs)`: an
    /// `EGLImage` over one plane of an existing dma-buf ([`EGL_EXT_image_dma_buf_import`]).
    ///
    /// `modifier` is passed only when given (it needs
    /// `EGL_EXT_image_dma_buf_import_modifiers`); without it the driver assumes the layout the
    /// buffer's allocator chose. The caller has checked the import extension(s). EGL takes its own
    /// reference to the dma-buf: `fd` may be closed afterwards.
    ///
    /// [`EGL_EXT_image_dma_buf_import`]: https://registry.khronos.org/EGL/extensions/EXT/EGL_EXT_image_dma_buf_import.txt
    pub(crate) fn import_dmabuf(&self, plane: &DmabufPlane<'_>) -> Result<EglImage, GlError> {
        Tables::require(&self.egl().CreateImageKHR, "eglCreateImageKHR")?;
        let as_attr = |v: u32| EGLint::from_ne_bytes(v.to_ne_bytes());
        let mut attribs = vec![
            attr(egl::WIDTH),
            as_attr(plane.width),
            attr(egl::HEIGHT),
            as_attr(plane.height),
            attr(LINUX_DRM_FOURCC_EXT),
            as_attr(plane.fourcc),
            attr(DMA_BUF_PLANE0_FD_EXT),
            plane.fd.as_raw_fd(),
            attr(DMA_BUF_PLANE0_OFFSET_EXT),
            as_attr(plane.offset),
            attr(DMA_BUF_PLANE0_PITCH_EXT),
            as_attr(plane.stride),
        ];
        if let Some(modifier) = plane.modifier {
            // The extension splits the 64-bit modifier into two 32-bit attribute values.
            attribs.extend([
                attr(DMA_BUF_PLANE0_MODIFIER_LO_EXT),
                as_attr(modifier as u32),
                attr(DMA_BUF_PLANE0_MODIFIER_HI_EXT),
                as_attr((modifier >> 32) as u32),
            ]);
        }
        attribs.push(attr(egl::NONE));
        // SAFETY: loaded (checked above); display live (type invariant); for
        // EGL_LINUX_DMA_BUF_EXT the extension requires EGL_NO_CONTEXT and a NULL client buffer;
        // `attribs` is EGL_NONE terminated and outlives the call; the fd in it is borrowed, so
        // open for the call, and EGL only imports it (takes its own reference), never closes it.
        let image = unsafe {
            self.egl().CreateImageKHR(
                self.display,
                egl::NO_CONTEXT,
                LINUX_DMA_BUF_EXT,
                ptr::null(),
                attribs.as_ptr(),
            )
        };
        if image.is_null() {
            return Err(self
                .tables
                .error("eglCreateImageKHR(EGL_LINUX_DMA_BUF_EXT)"));
        }
        Ok(EglImage(image))
    }

    /// `glEGLImageTargetTexture2DOES(GL_TEXTURE_2D, image)`: makes the texture bound to
    /// `GL_TEXTURE_2D` of the current context use `image` as its storage ([`GL_OES_EGL_image`]).
    ///
    /// Fails unless this context is current. The caller has checked `GL_OES_EGL_image` in the GL
    /// extensions and bound the texture; GL reports any other misuse through `glGetError`.
    ///
    /// [`GL_OES_EGL_image`]: https://registry.khronos.org/OpenGL/extensions/OES/OES_EGL_image.txt
    pub(crate) fn target_texture_2d(&self, image: &EglImage) -> Result<(), GlError> {
        let target = self.tables.extra.egl_image_target_texture_2d_oes.ok_or(
            GlError::MissingEntryPoint {
                name: "glEGLImageTargetTexture2DOES",
            },
        )?;
        if !self.is_current() {
            return Err(GlError::Egl {
                call: "glEGLImageTargetTexture2DOES (context not current)",
                code: 0,
            });
        }
        // SAFETY: this context is current on the calling thread (checked above), so the GL call
        // reaches it; `image` is a live EGLImage of this display (borrowed, so not destroyed);
        // GL_TEXTURE_2D is the target the extension defines. GL validates the rest and reports
        // errors through glGetError.
        unsafe { target(glow::TEXTURE_2D, image.0) };
        Ok(())
    }

    /// `eglExportDMABUFImageQueryMESA(display, image, &fourcc, &num_planes, &modifier)`.
    pub(crate) fn export_query(&self, image: &EglImage) -> Result<ExportQuery, GlError> {
        let query =
            self.tables
                .extra
                .export_dmabuf_image_query_mesa
                .ok_or(GlError::MissingEntryPoint {
                    name: "eglExportDMABUFImageQueryMESA",
                })?;
        let (mut fourcc, mut num_planes): (c_int, c_int) = (0, 0);
        // SAFETY: display live (invariant), `image` created on it and not yet destroyed (it is
        // borrowed); the out pointers are to locals that outlive the call. `modifiers` is NULL,
        // which the extension allows, because its length depends on `num_planes` (not yet known).
        let ok = unsafe {
            query(
                self.display,
                image.0,
                &mut fourcc,
                &mut num_planes,
                ptr::null_mut(),
            )
        };
        if ok == egl::FALSE {
            return Err(self.tables.error("eglExportDMABUFImageQueryMESA"));
        }
        let planes = usize::try_from(num_planes).unwrap_or(0);
        if planes == 0 || planes > MAX_PLANES {
            return Err(GlError::UnexpectedLayout {
                fourcc: fourcc as u32,
                planes: num_planes,
            });
        }
        // The extension returns one modifier per plane (Mesa writes only the first); room for the
        // largest plane count keeps either behaviour in bounds.
        let mut modifiers = [0u64; MAX_PLANES];
        // SAFETY: as above; `modifiers` has room for MAX_PLANES >= num_planes entries, the most
        // the extension writes for the `num_planes` it just reported.
        let ok = unsafe {
            query(
                self.display,
                image.0,
                ptr::null_mut(),
                ptr::null_mut(),
                modifiers.as_mut_ptr(),
            )
        };
        if ok == egl::FALSE {
            return Err(self
                .tables
                .error("eglExportDMABUFImageQueryMESA(modifiers)"));
        }
        Ok(ExportQuery {
            fourcc: fourcc as u32,
            num_planes,
            modifier: modifiers[0],
        })
    }

    /// `eglExportDMABUFImageMESA(display, image, fds, strides, offsets)` for `planes` planes.
    ///
    /// Each returned fd is owned by the caller (the extension: "the fds are owned by the
    /// caller"). They are made close-on-exec if EGL did not already.
    pub(crate) fn export(&self, image: &EglImage, planes: usize) -> Result<Vec<RawPlane>, GlError> {
        let export =
            self.tables
                .extra
                .export_dmabuf_image_mesa
                .ok_or(GlError::MissingEntryPoint {
                    name: "eglExportDMABUFImageMESA",
                })?;
        if planes == 0 || planes > MAX_PLANES {
            return Err(GlError::UnexpectedLayout {
                fourcc: 0,
                planes: planes as i32,
            });
        }
        let mut fds = [-1 as c_int; MAX_PLANES];
        let mut strides = [0 as EGLint; MAX_PLANES];
        let mut offsets = [0 as EGLint; MAX_PLANES];
        // SAFETY: display live (invariant), `image` created on it and borrowed; each array holds
        // MAX_PLANES >= `planes` entries, the number the query reported and the most EGL writes.
        let ok = unsafe {
            export(
                self.display,
                image.0,
                fds.as_mut_ptr(),
                strides.as_mut_ptr(),
                offsets.as_mut_ptr(),
            )
        };
        // Take ownership of every fd EGL produced before anything can return early, so none leaks.
        let owned: Vec<Option<OwnedFd>> = fds
            .iter()
            .take(planes)
            .map(|&fd| {
                // SAFETY: a non-negative entry in `fds` is a new file descriptor that
                // eglExportDMABUFImageMESA opened for this call and hands to the caller; nothing
                // else owns or closes it, so wrapping it once in an OwnedFd is sound.
                unsafe { triptych_sys::fd::adopt(fd) }
            })
            .collect();
        if ok == egl::FALSE {
            return Err(self.tables.error("eglExportDMABUFImageMESA"));
        }
        let mut out = Vec::with_capacity(planes);
        for (i, fd) in owned.into_iter().enumerate() {
            let Some(fd) = fd else {
                return Err(GlError::MissingPlaneFd { plane: i });
            };
            out.push(RawPlane {
                fd: ensure_cloexec(fd)?,
                stride: strides[i],
                offset: offsets[i],
            });
        }
        Ok(out)
    }

    /// `eglCreateSyncKHR(display, EGL_SYNC_NATIVE_FENCE_ANDROID, {EGL_NONE})`.
    ///
    /// The caller has checked `EGL_ANDROID_native_fence_sync` and made this context current:
    /// the fence command goes into the current context's command stream.
    pub(crate) fn create_native_fence_sync(&self) -> Result<EglSync, GlError> {
        Tables::require(&self.egl().CreateSyncKHR, "eglCreateSyncKHR")?;
        let attribs = [attr(egl::NONE)];
        // SAFETY: loaded (checked above); display live (invariant); `attribs` is an EGL_NONE
        // terminated list that outlives the call (no EGL_SYNC_NATIVE_FENCE_FD_ANDROID: a new
        // fence is wanted).
        let sync = unsafe {
            self.egl().CreateSyncKHR(
                self.display,
                egl::SYNC_NATIVE_FENCE_ANDROID,
                attribs.as_ptr(),
            )
        };
        if sync.is_null() {
            return Err(self
                .tables
                .error("eglCreateSyncKHR(EGL_SYNC_NATIVE_FENCE_ANDROID)"));
        }
        Ok(EglSync(sync))
    }

    /// `eglDupNativeFenceFDANDROID`: a new sync_file fd for `sync`, owned by the caller.
    ///
    /// Valid only after the fence command was flushed (the extension: until then the call fails
    /// with EGL_BAD_PARAMETER... and returns EGL_NO_NATIVE_FENCE_FD_ANDROID).
    pub(crate) fn dup_native_fence_fd(&self, sync: &EglSync) -> Result<OwnedFd, GlError> {
        Tables::require(
            &self.egl().DupNativeFenceFDANDROID,
            "eglDupNativeFenceFDANDROID",
        )?;
        // SAFETY: loaded (checked above); display live (invariant); `sync` was created on it and
        // is borrowed, so not yet destroyed.
        let fd = unsafe { self.egl().DupNativeFenceFDANDROID(self.display, sync.0) };
        if fd == egl::NO_NATIVE_FENCE_FD_ANDROID || fd < 0 {
            return Err(self.tables.error("eglDupNativeFenceFDANDROID"));
        }
        // SAFETY: the extension: "returns a new file descriptor ... the caller owns it"; it is
        // a fresh fd nothing else holds, adopted exactly once (and not negative: checked above).
        let fd = unsafe { triptych_sys::fd::adopt(fd) }
            .ok_or_else(|| self.tables.error("eglDupNativeFenceFDANDROID"))?;
        ensure_cloexec(fd)
    }

    /// `eglDestroySyncKHR`. Logs a failure: it also runs on error paths.
    pub(crate) fn destroy_sync(&self, sync: EglSync) {
        if !self.egl().DestroySyncKHR.is_loaded() {
            tracing::warn!("eglDestroySyncKHR missing; EGLSync leaked");
            return;
        }
        // SAFETY: loaded (checked above); display live (invariant); `sync` was created on it and
        // is consumed here, so it is destroyed exactly once. A destroyed native fence sync keeps
        // already duplicated fds valid (they are independent sync_files).
        if unsafe { self.egl().DestroySyncKHR(self.display, sync.0) } == egl::FALSE {
            let code = self.tables.last_error();
            tracing::warn!(code, name = error_name(code), "eglDestroySyncKHR failed");
        }
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
    /// The error is a sentence naming the failing step, for [`super::PlatformAttempt`].
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

// libgbm, prototypes from Mesa's `gbm.h`.
type FnGbmCreateDevice = unsafe extern "C" fn(c_int) -> *mut c_void;
type FnGbmDeviceDestroy = unsafe extern "C" fn(*mut c_void);
type FnGbmBoCreate = unsafe extern "C" fn(*mut c_void, u32, u32, u32, u32) -> *mut c_void;
type FnGbmBoDestroy = unsafe extern "C" fn(*mut c_void);
type FnGbmBoGetFd = unsafe extern "C" fn(*mut c_void) -> c_int;
type FnGbmBoGetStride = unsafe extern "C" fn(*mut c_void) -> u32;
type FnGbmBoGetOffset = unsafe extern "C" fn(*mut c_void, c_int) -> u32;
type FnGbmBoGetModifier = unsafe extern "C" fn(*mut c_void) -> u64;
type FnGbmBoGetPlaneCount = unsafe extern "C" fn(*mut c_void) -> c_int;

/// `gbm.h`: `GBM_BO_USE_RENDERING = (1 << 2)`, the buffer is a render target.
const GBM_BO_USE_RENDERING: u32 = 1 << 2;
/// `gbm.h`: `GBM_BO_USE_LINEAR = (1 << 4)`, the buffer is laid out linearly.
const GBM_BO_USE_LINEAR: u32 = 1 << 4;

/// libgbm's entry points, loaded at run time (the module docs say why not through the `gbm`
/// crate).
struct Gbm {
    _lib: libloading::Library,
    create_device: FnGbmCreateDevice,
    device_destroy: FnGbmDeviceDestroy,
    bo_create: FnGbmBoCreate,
    bo_destroy: FnGbmBoDestroy,
    bo_get_fd: FnGbmBoGetFd,
    bo_get_stride: FnGbmBoGetStride,
    bo_get_offset: FnGbmBoGetOffset,
    bo_get_modifier: FnGbmBoGetModifier,
    bo_get_plane_count: FnGbmBoGetPlaneCount,
}

static GBM: OnceLock<Result<Gbm, String>> = OnceLock::new();

fn gbm() -> Result<&'static Gbm, String> {
    GBM.get_or_init(|| {
        // SAFETY: loading libgbm runs Mesa's initialisers, which have no preconditions.
        let lib = unsafe { libloading::Library::new(LIBGBM) }
            .map_err(|e| format!("{LIBGBM} could not be loaded ({e}); install libgbm1"))?;
        macro_rules! sym {
            ($name:literal, $ty:ty) => {{
                // SAFETY: `$ty` is the prototype `gbm.h` gives for this function; the pointer is
                // copied out of its `Symbol`, which is sound because the library is stored beside
                // it in a `static` and never unloaded.
                let sym = unsafe { lib.get::<$ty>(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("{LIBGBM} has no {} ({e})", $name))?;
                *sym
            }};
        }
        Ok(Gbm {
            create_device: sym!("gbm_create_device", FnGbmCreateDevice),
            device_destroy: sym!("gbm_device_destroy", FnGbmDeviceDestroy),
            bo_create: sym!("gbm_bo_create", FnGbmBoCreate),
            bo_destroy: sym!("gbm_bo_destroy", FnGbmBoDestroy),
            bo_get_fd: sym!("gbm_bo_get_fd", FnGbmBoGetFd),
            bo_get_stride: sym!("gbm_bo_get_stride", FnGbmBoGetStride),
            bo_get_offset: sym!("gbm_bo_get_offset", FnGbmBoGetOffset),
            bo_get_modifier: sym!("gbm_bo_get_modifier", FnGbmBoGetModifier),
            bo_get_plane_count: sym!("gbm_bo_get_plane_count", FnGbmBoGetPlaneCount),
            _lib: lib,
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// A `gbm_device` on an open DRM node; the node stays open as long as the device.
pub(crate) struct GbmDevice {
    gbm: &'static Gbm,
    device: NonNull<c_void>,
    // Field order: `device` is destroyed in `Drop::drop`, before `node` is closed.
    node: File,
}

impl std::fmt::Debug for GbmDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbmDevice")
            .field("node_fd", &self.node.as_raw_fd())
            .finish_non_exhaustive()
    }
}

impl GbmDevice {
    /// Opens `node` (read-write, close-on-exec as `std` always opens) and creates a device on it.
    pub(crate) fn open(node: &Path) -> Result<Self, String> {
        let gbm = gbm()?;
        let file = File::options()
            .read(true)
            .write(true)
            .open(node)
            .map_err(|e| format!("opening {} failed: {e}", node.display()))?;
        // SAFETY: `file` is an open DRM node and stays open for the device's whole life (it is
        // stored beside it and closed only after gbm_device_destroy).
        let device = unsafe { (gbm.create_device)(file.as_raw_fd()) };
        let device = NonNull::new(device)
            .ok_or_else(|| format!("gbm_create_device on {} failed", node.display()))?;
        Ok(Self {
            gbm,
            device,
            node: file,
        })
    }

    /// The `struct gbm_device *`, for `EGL_PLATFORM_GBM_KHR`.
    pub(crate) fn as_ptr(&self) -> NonNull<c_void> {
        self.device
    }

    /// Allocates a `width` x `height` linear, renderable buffer of DRM `fourcc`
    /// (`gbm_bo_create(.., GBM_BO_USE_RENDERING | GBM_BO_USE_LINEAR)`) and exports it as a
    /// dma-buf. The buffer object keeps `self` alive.
    pub(crate) fn create_linear_buffer(
        self: &Rc<Self>,
        width: u32,
        height: u32,
        fourcc: u32,
    ) -> Result<GbmBuffer, String> {
        let gbm = self.gbm;
        // SAFETY: `self.device` is a live gbm_device (destroyed only when the last `Rc` drops,
        // and the returned buffer holds one); the other arguments are plain integers that libgbm
        // validates (NULL on failure).
        let bo = unsafe {
            (gbm.bo_create)(
                self.device.as_ptr(),
                width,
                height,
                fourcc,
                GBM_BO_USE_RENDERING | GBM_BO_USE_LINEAR,
            )
        };
        let Some(bo) = NonNull::new(bo) else {
            return Err(format!(
                "gbm_bo_create({width}x{height}, fourcc {fourcc:#010x}, RENDERING|LINEAR) failed: {}",
                std::io::Error::last_os_error()
            ));
        };
        let mut buffer = GbmBuffer {
            device: Rc::clone(self),
            bo,
            fd: None,
            stride: 0,
            offset: 0,
            modifier: 0,
        };
        // SAFETY: (all five calls) `bo` is the live buffer object just created (destroyed only in
        // `GbmBuffer::drop`); plane 0 exists for every format.
        let (planes, stride, offset, modifier, fd) = unsafe {
            (
                (gbm.bo_get_plane_count)(bo.as_ptr()),
                (gbm.bo_get_stride)(bo.as_ptr()),
                (gbm.bo_get_offset)(bo.as_ptr(), 0),
                (gbm.bo_get_modifier)(bo.as_ptr()),
                (gbm.bo_get_fd)(bo.as_ptr()),
            )
        };
        if fd < 0 {
            return Err(format!(
                "gbm_bo_get_fd failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: gbm_bo_get_fd returns a new dma-buf fd (a PRIME export) that the caller owns
        // and must close; it is adopted exactly once (and not negative: checked above).
        let fd = unsafe { triptych_sys::fd::adopt(fd) }.ok_or("gbm_bo_get_fd returned no fd")?;
        if planes != 1 {
            return Err(format!("gbm buffer has {planes} planes, expected 1"));
        }
        buffer.fd = Some(ensure_cloexec(fd).map_err(|e| e.to_string())?);
        buffer.stride = stride;
        buffer.offset = offset;
        buffer.modifier = modifier;
        Ok(buffer)
    }
}

/// A GBM buffer object and the dma-buf it was exported as. Keeps its device alive.
pub(crate) struct GbmBuffer {
    device: Rc<GbmDevice>,
    bo: NonNull<c_void>,
    fd: Option<OwnedFd>,
    pub(crate) stride: u32,
    pub(crate) offset: u32,
    /// `gbm_bo_get_modifier`: `DRM_FORMAT_MOD_INVALID` when the driver tracks none.
    pub(crate) modifier: u64,
}

impl std::fmt::Debug for GbmBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbmBuffer")
            .field("stride", &self.stride)
            .field("offset", &self.offset)
            .field("modifier", &format_args!("{:#018x}", self.modifier))
            .finish_non_exhaustive()
    }
}

impl GbmBuffer {
    /// The dma-buf fd.
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.fd.as_ref().map(|f| f.as_fd())
    }
}

impl Drop for GbmBuffer {
    fn drop(&mut self) {
        // SAFETY: `bo` came from gbm_bo_create on `device`, which this value keeps alive (the
        // `Rc` field drops after this body), and is destroyed only here. The dma-buf fd and any
        // EGLImage imported from it hold their own references to the memory.
        unsafe { (self.device.gbm.bo_destroy)(self.bo.as_ptr()) };
    }
}

impl Drop for GbmDevice {
    fn drop(&mut self) {
        // SAFETY: `device` came from gbm_create_device and is destroyed only here; the owner
        // terminates the EGL display made on it before dropping this (see context.rs), and the
        // node fd is still open (fields drop after this body).
        unsafe { (self.gbm.device_destroy)(self.device.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokens glutin_egl_sys does not generate have the values `EGL/eglext.h` gives them.
    #[test]
    fn hand_written_tokens_match_eglext_h() {
        assert_eq!(PLATFORM_SURFACELESS_MESA, 0x31DD);
        assert_eq!(LINUX_DMA_BUF_EXT, 0x3270);
        assert_eq!(LINUX_DRM_FOURCC_EXT, 0x3271);
        assert_eq!(DMA_BUF_PLANE0_FD_EXT, 0x3272);
        assert_eq!(DMA_BUF_PLANE0_OFFSET_EXT, 0x3273);
        assert_eq!(DMA_BUF_PLANE0_PITCH_EXT, 0x3274);
        assert_eq!(DMA_BUF_PLANE0_MODIFIER_LO_EXT, 0x3443);
        assert_eq!(DMA_BUF_PLANE0_MODIFIER_HI_EXT, 0x3444);
        // gbm.h.
        assert_eq!(GBM_BO_USE_RENDERING, 4);
        assert_eq!(GBM_BO_USE_LINEAR, 16);
    }

    /// Attribute values keep the token's value (no token reaches the sign bit).
    #[test]
    fn tokens_convert_to_attributes_unchanged() {
        assert_eq!(attr(egl::NONE), 0x3038);
        assert_eq!(attr(egl::OPENGL_ES3_BIT), 0x40);
        assert_eq!(attr(DMA_BUF_PLANE0_MODIFIER_HI_EXT), 0x3444);
    }

    #[test]
    fn extension_strings_split_sorted_and_unique() {
        assert_eq!(
            split_extensions(Some(" EGL_b  EGL_a EGL_b\n")),
            vec!["EGL_a".to_owned(), "EGL_b".to_owned()]
        );
        assert!(split_extensions(None).is_empty());
    }

    #[test]
    fn error_names() {
        assert_eq!(error_name(0x3009), "EGL_BAD_MATCH");
        assert_eq!(error_name(0x300C), "EGL_BAD_PARAMETER");
        assert_eq!(error_name(0x1234), "unknown EGL error");
        assert_eq!(error_name(-1), "unknown EGL error");
    }
}
