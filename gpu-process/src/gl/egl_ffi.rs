//! Every call this module makes into libEGL and libgbm by function pointer.
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
//! # Lifetimes
//!
//! - The libraries are opened once, on first use, and stay loaded for the life of the process
//!   (they sit in `static`s), so the function pointers taken from them never dangle.
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
//! Mesa and libglvnd return a function pointer from `eglGetProcAddress` for any `egl*` name, even
//! for extensions the display does not offer. Callers therefore check the display's extension
//! string before calling an extension function; a pointer being present proves nothing.
//!
//! [`EGL_MESA_platform_surfaceless`]: https://registry.khronos.org/EGL/extensions/MESA/EGL_MESA_platform_surfaceless.txt
//! [`EGL_KHR_image_base`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_image_base.txt
//! [`EGL_KHR_gl_texture_2D_image`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_gl_image.txt
//! [`EGL_MESA_image_dma_buf_export`]: https://registry.khronos.org/EGL/extensions/MESA/EGL_MESA_image_dma_buf_export.txt
//! [`EGL_ANDROID_native_fence_sync`]: https://registry.khronos.org/EGL/extensions/ANDROID/EGL_ANDROID_native_fence_sync.txt
//! [`EGL_EXT_image_dma_buf_import`]: https://registry.khronos.org/EGL/extensions/EXT/EGL_EXT_image_dma_buf_import.txt

use std::ffi::{c_char, c_int, c_void, CStr};
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::rc::Rc;
use std::sync::OnceLock;

use super::GlError;

pub(crate) type EGLDisplay = *mut c_void;
pub(crate) type EGLContext = *mut c_void;
type EGLConfig = *mut c_void;
type EGLSurface = *mut c_void;
type EGLImageKHR = *mut c_void;
type EGLSyncKHR = *mut c_void;
type EGLClientBuffer = *mut c_void;
type EGLint = i32;
type EGLBoolean = u32;
type EGLenum = u32;
type EGLuint64KHR = u64;

// Values from the Khronos registry headers `EGL/egl.h` and `EGL/eglext.h` (egl.xml); the ones
// that glutin's generated bindings also carry are pinned against them by a test below.
const EGL_FALSE: EGLBoolean = 0;
const EGL_SUCCESS: EGLint = 0x3000;
const EGL_ALPHA_SIZE: EGLint = 0x3021;
const EGL_BLUE_SIZE: EGLint = 0x3022;
const EGL_GREEN_SIZE: EGLint = 0x3023;
const EGL_RED_SIZE: EGLint = 0x3024;
const EGL_SURFACE_TYPE: EGLint = 0x3033;
const EGL_NONE: EGLint = 0x3038;
const EGL_RENDERABLE_TYPE: EGLint = 0x3040;
/// `eglQueryString` name: the implementation's vendor.
pub(crate) const EGL_VENDOR: EGLint = 0x3053;
/// `eglQueryString` name: `"major.minor vendor-info"`.
pub(crate) const EGL_VERSION: EGLint = 0x3054;
/// `eglQueryString` name: the extension list.
pub(crate) const EGL_EXTENSIONS: EGLint = 0x3055;
const EGL_CONTEXT_MAJOR_VERSION: EGLint = 0x3098;
const EGL_OPENGL_ES_API: EGLenum = 0x30A0;
const EGL_GL_TEXTURE_2D_KHR: EGLenum = 0x30B1;
const EGL_GL_TEXTURE_LEVEL_KHR: EGLint = 0x30BC;
const EGL_CONTEXT_MINOR_VERSION: EGLint = 0x30FB;
const EGL_SYNC_NATIVE_FENCE_ANDROID: EGLenum = 0x3144;
const EGL_NO_NATIVE_FENCE_FD_ANDROID: EGLint = -1;
const EGL_PLATFORM_SURFACELESS_MESA: EGLenum = 0x31DD;
const EGL_OPENGL_ES3_BIT: EGLint = 0x0040;
// EGL_EXT_image_dma_buf_import / _modifiers (eglext.h).
const EGL_LINUX_DMA_BUF_EXT: EGLenum = 0x3270;
const EGL_LINUX_DRM_FOURCC_EXT: EGLint = 0x3271;
const EGL_DMA_BUF_PLANE0_FD_EXT: EGLint = 0x3272;
const EGL_DMA_BUF_PLANE0_OFFSET_EXT: EGLint = 0x3273;
const EGL_DMA_BUF_PLANE0_PITCH_EXT: EGLint = 0x3274;
const EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT: EGLint = 0x3443;
const EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT: EGLint = 0x3444;
const EGL_WIDTH: EGLint = 0x3057;
const EGL_HEIGHT: EGLint = 0x3056;
/// `GL_TEXTURE_2D` (GLES2/gl2.h), the target glEGLImageTargetTexture2DOES binds.
const GL_TEXTURE_2D: u32 = 0x0DE1;

pub(crate) use ipc_protocol::frame::MAX_PLANES;

/// The name of an EGL error code, for messages.
pub(crate) fn error_name(code: i32) -> &'static str {
    match code {
        EGL_SUCCESS => "EGL_SUCCESS",
        0x3001 => "EGL_NOT_INITIALIZED",
        0x3002 => "EGL_BAD_ACCESS",
        0x3003 => "EGL_BAD_ALLOC",
        0x3004 => "EGL_BAD_ATTRIBUTE",
        0x3005 => "EGL_BAD_CONFIG",
        0x3006 => "EGL_BAD_CONTEXT",
        0x3007 => "EGL_BAD_CURRENT_SURFACE",
        0x3008 => "EGL_BAD_DISPLAY",
        0x3009 => "EGL_BAD_MATCH",
        0x300A => "EGL_BAD_NATIVE_PIXMAP",
        0x300B => "EGL_BAD_NATIVE_WINDOW",
        0x300C => "EGL_BAD_PARAMETER",
        0x300D => "EGL_BAD_SURFACE",
        0x300E => "EGL_CONTEXT_LOST",
        _ => "unknown EGL error",
    }
}

// Prototypes, each exactly as in `EGL/egl.h` / `EGL/eglext.h` (EGLAPIENTRY is empty on Linux, so
// the calling convention is C).
type FnGetProcAddress = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type FnGetError = unsafe extern "C" fn() -> EGLint;
type FnQueryString = unsafe extern "C" fn(EGLDisplay, EGLint) -> *const c_char;
type FnInitialize = unsafe extern "C" fn(EGLDisplay, *mut EGLint, *mut EGLint) -> EGLBoolean;
type FnBindApi = unsafe extern "C" fn(EGLenum) -> EGLBoolean;
type FnChooseConfig = unsafe extern "C" fn(
    EGLDisplay,
    *const EGLint,
    *mut EGLConfig,
    EGLint,
    *mut EGLint,
) -> EGLBoolean;
type FnCreateContext =
    unsafe extern "C" fn(EGLDisplay, EGLConfig, EGLContext, *const EGLint) -> EGLContext;
type FnDestroyContext = unsafe extern "C" fn(EGLDisplay, EGLContext) -> EGLBoolean;
type FnMakeCurrent =
    unsafe extern "C" fn(EGLDisplay, EGLSurface, EGLSurface, EGLContext) -> EGLBoolean;
type FnGetCurrentContext = unsafe extern "C" fn() -> EGLContext;
// EGL_EXT_platform_base
type FnGetPlatformDisplayExt =
    unsafe extern "C" fn(EGLenum, *mut c_void, *const EGLint) -> EGLDisplay;
// EGL_KHR_image_base
type FnCreateImageKhr = unsafe extern "C" fn(
    EGLDisplay,
    EGLContext,
    EGLenum,
    EGLClientBuffer,
    *const EGLint,
) -> EGLImageKHR;
type FnDestroyImageKhr = unsafe extern "C" fn(EGLDisplay, EGLImageKHR) -> EGLBoolean;
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
// EGL_KHR_fence_sync / EGL_ANDROID_native_fence_sync
type FnCreateSyncKhr = unsafe extern "C" fn(EGLDisplay, EGLenum, *const EGLint) -> EGLSyncKHR;
type FnDestroySyncKhr = unsafe extern "C" fn(EGLDisplay, EGLSyncKHR) -> EGLBoolean;
type FnDupNativeFenceFdAndroid = unsafe extern "C" fn(EGLDisplay, EGLSyncKHR) -> EGLint;
// EGL_MESA_query_driver
type FnGetDisplayDriverName = unsafe extern "C" fn(EGLDisplay) -> *const c_char;
// GL_OES_EGL_image (GLES2/gl2ext.h): void glEGLImageTargetTexture2DOES(GLenum, GLeglImageOES);
// GL_APIENTRY is empty on Linux.
type FnEglImageTargetTexture2dOes = unsafe extern "C" fn(u32, *mut c_void);

/// libEGL's entry points, loaded once.
pub(crate) struct Egl {
    _lib: libloading::Library,
    get_proc_address: FnGetProcAddress,
    get_error: FnGetError,
    query_string: FnQueryString,
    initialize: FnInitialize,
    bind_api: FnBindApi,
    choose_config: FnChooseConfig,
    create_context: FnCreateContext,
    destroy_context: FnDestroyContext,
    make_current: FnMakeCurrent,
    get_current_context: FnGetCurrentContext,
    get_platform_display_ext: Option<FnGetPlatformDisplayExt>,
    create_image_khr: Option<FnCreateImageKhr>,
    destroy_image_khr: Option<FnDestroyImageKhr>,
    export_dmabuf_image_query_mesa: Option<FnExportDmabufImageQueryMesa>,
    export_dmabuf_image_mesa: Option<FnExportDmabufImageMesa>,
    create_sync_khr: Option<FnCreateSyncKhr>,
    destroy_sync_khr: Option<FnDestroySyncKhr>,
    dup_native_fence_fd_android: Option<FnDupNativeFenceFdAndroid>,
    get_display_driver_name: Option<FnGetDisplayDriverName>,
    egl_image_target_texture_2d_oes: Option<FnEglImageTargetTexture2dOes>,
}

impl std::fmt::Debug for Egl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egl").finish_non_exhaustive()
    }
}

/// The soname libglvnd and Mesa install; the unversioned name is a development symlink only.
const LIBEGL: &str = "libEGL.so.1";
const LIBGBM: &str = "libgbm.so.1";

static EGL: OnceLock<Result<Egl, String>> = OnceLock::new();

/// libEGL, loaded on first use; the error says which library or symbol was missing.
pub(crate) fn egl() -> Result<&'static Egl, String> {
    EGL.get_or_init(Egl::load).as_ref().map_err(Clone::clone)
}

impl Egl {
    fn load() -> Result<Self, String> {
        // SAFETY: loading libEGL runs its initialisers; libglvnd's and Mesa's have no
        // preconditions on the caller and are safe to run on any thread at any time.
        let lib = unsafe { libloading::Library::new(LIBEGL) }
            .map_err(|e| format!("{LIBEGL} could not be loaded ({e}); install libegl1 and a vendor library such as libegl-mesa0"))?;
        macro_rules! core {
            ($name:literal, $ty:ty) => {{
                // SAFETY: `$ty` is the prototype `EGL/egl.h` gives for this core EGL 1.4
                // function, so calling through the returned pointer matches its definition.
                // The pointer is copied out of the `Symbol`, which is sound because the library
                // is stored beside it in `Egl`, which lives in a `static` and is never dropped.
                let sym = unsafe { lib.get::<$ty>(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("{LIBEGL} has no {} ({e})", $name))?;
                *sym
            }};
        }
        let get_proc_address: FnGetProcAddress = core!("eglGetProcAddress", FnGetProcAddress);
        let lookup = |name: &CStr| -> *mut c_void {
            // SAFETY: `name` is a NUL-terminated string that outlives the call;
            // eglGetProcAddress only reads it and has no other precondition.
            unsafe { get_proc_address(name.as_ptr()) }
        };
        // SAFETY: every `transmute` below turns a pointer returned by
        // eglGetProcAddress for the named function into `Option` of that function's prototype as
        // given in `EGL/eglext.h` (`GLES2/gl2ext.h` for glEGLImageTargetTexture2DOES; the type
        // aliases above). `Option<extern fn>` has the layout of
        // a nullable pointer, so a null result becomes `None`. The functions belong to libEGL,
        // which stays loaded for the life of the process.
        let ext = unsafe {
            (
                std::mem::transmute::<*mut c_void, Option<FnGetPlatformDisplayExt>>(lookup(
                    c"eglGetPlatformDisplayEXT",
                )),
                std::mem::transmute::<*mut c_void, Option<FnCreateImageKhr>>(lookup(
                    c"eglCreateImageKHR",
                )),
                std::mem::transmute::<*mut c_void, Option<FnDestroyImageKhr>>(lookup(
                    c"eglDestroyImageKHR",
                )),
                std::mem::transmute::<*mut c_void, Option<FnExportDmabufImageQueryMesa>>(lookup(
                    c"eglExportDMABUFImageQueryMESA",
                )),
                std::mem::transmute::<*mut c_void, Option<FnExportDmabufImageMesa>>(lookup(
                    c"eglExportDMABUFImageMESA",
                )),
                std::mem::transmute::<*mut c_void, Option<FnCreateSyncKhr>>(lookup(
                    c"eglCreateSyncKHR",
                )),
                std::mem::transmute::<*mut c_void, Option<FnDestroySyncKhr>>(lookup(
                    c"eglDestroySyncKHR",
                )),
                std::mem::transmute::<*mut c_void, Option<FnDupNativeFenceFdAndroid>>(lookup(
                    c"eglDupNativeFenceFDANDROID",
                )),
                std::mem::transmute::<*mut c_void, Option<FnGetDisplayDriverName>>(lookup(
                    c"eglGetDisplayDriverName",
                )),
                std::mem::transmute::<*mut c_void, Option<FnEglImageTargetTexture2dOes>>(lookup(
                    c"glEGLImageTargetTexture2DOES",
                )),
            )
        };
        Ok(Self {
            get_proc_address,
            get_error: core!("eglGetError", FnGetError),
            query_string: core!("eglQueryString", FnQueryString),
            initialize: core!("eglInitialize", FnInitialize),
            bind_api: core!("eglBindAPI", FnBindApi),
            choose_config: core!("eglChooseConfig", FnChooseConfig),
            create_context: core!("eglCreateContext", FnCreateContext),
            destroy_context: core!("eglDestroyContext", FnDestroyContext),
            make_current: core!("eglMakeCurrent", FnMakeCurrent),
            get_current_context: core!("eglGetCurrentContext", FnGetCurrentContext),
            get_platform_display_ext: ext.0,
            create_image_khr: ext.1,
            destroy_image_khr: ext.2,
            export_dmabuf_image_query_mesa: ext.3,
            export_dmabuf_image_mesa: ext.4,
            create_sync_khr: ext.5,
            destroy_sync_khr: ext.6,
            dup_native_fence_fd_android: ext.7,
            get_display_driver_name: ext.8,
            egl_image_target_texture_2d_oes: ext.9,
            _lib: lib,
        })
    }

    /// `eglGetError()`: the calling thread's last EGL error, which the call also resets.
    fn last_error(&self) -> EGLint {
        // SAFETY: eglGetError takes no arguments and only reads thread-local state.
        unsafe { (self.get_error)() }
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
        // SAFETY: EGL_NO_DISPLAY with EGL_EXTENSIONS is the query EGL_EXT_client_extensions
        // defines; without that extension it fails with EGL_BAD_DISPLAY and returns NULL, which
        // `string_from` handles.
        let s = unsafe { string_from((self.query_string)(ptr::null_mut(), EGL_EXTENSIONS)) };
        // A failed query leaves EGL_BAD_DISPLAY pending; clear it so it is not blamed on a later
        // call.
        let _ = self.last_error();
        split_extensions(s.as_deref())
    }

    /// The GL entry point `name` (`eglGetProcAddress`), for glow's loader.
    pub(crate) fn gl_proc_address(&self, name: &CStr) -> *const c_void {
        // SAFETY: `name` is NUL-terminated and outlives the call; eglGetProcAddress only reads it.
        unsafe { (self.get_proc_address)(name.as_ptr()) }.cast_const()
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
    egl: &'static Egl,
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
    /// `display` is an EGL display initialised through libEGL, `context` a context created on
    /// it, and the caller keeps both alive (not terminated / destroyed) for as long as the
    /// returned value or any copy of it can be used.
    pub(crate) unsafe fn new(egl: &'static Egl, display: EGLDisplay, context: EGLContext) -> Self {
        Self {
            egl,
            display,
            context,
        }
    }

    /// The raw display, for comparisons and logs.
    pub(crate) fn display(&self) -> EGLDisplay {
        self.display
    }

    /// `eglQueryString(display, name)`.
    pub(crate) fn query_string(&self, name: EGLint) -> Option<String> {
        // SAFETY: the display is initialised (type invariant); `name` is one of the EGL_* string
        // names, and an unknown one only makes EGL return NULL with EGL_BAD_PARAMETER. The
        // returned string is owned by EGL and valid until the display is terminated, which the
        // invariant excludes during this call.
        let s = unsafe { string_from((self.egl.query_string)(self.display, name)) };
        if s.is_none() {
            let _ = self.egl.last_error();
        }
        s
    }

    /// The name of the driver behind the display (`eglGetDisplayDriverName`), e.g. `kms_swrast`.
    ///
    /// The caller has checked `EGL_MESA_query_driver` in the display's extensions.
    pub(crate) fn driver_name(&self) -> Option<String> {
        let get = self.egl.get_display_driver_name?;
        // SAFETY: the display is initialised (type invariant). EGL_MESA_query_driver: the
        // returned string belongs to EGL and stays valid until the display is terminated,
        // which the invariant excludes during this call; NULL on error is handled.
        let name = unsafe { string_from(get(self.display)) };
        if name.is_none() {
            let _ = self.egl.last_error();
        }
        name
    }

    /// The display's extensions, sorted.
    pub(crate) fn extensions(&self) -> Vec<String> {
        split_extensions(self.query_string(EGL_EXTENSIONS).as_deref())
    }

    /// Whether this context is current on the calling thread.
    pub(crate) fn is_current(&self) -> bool {
        // SAFETY: eglGetCurrentContext takes no arguments and reads thread-local state.
        unsafe { (self.egl.get_current_context)() == self.context }
    }

    /// `eglCreateImageKHR(display, context, EGL_GL_TEXTURE_2D_KHR, texture, {level 0})`.
    ///
    /// The caller has checked `EGL_KHR_image_base` and `EGL_KHR_gl_texture_2D_image` in the
    /// display's extensions and that `texture` names a complete 2D texture of this context.
    pub(crate) fn create_image_from_texture(&self, texture: u32) -> Result<EglImage, GlError> {
        let create = self
            .egl
            .create_image_khr
            .ok_or(GlError::MissingEntryPoint {
                name: "eglCreateImageKHR",
            })?;
        let attribs = [EGL_GL_TEXTURE_LEVEL_KHR, 0, EGL_NONE];
        // EGL_KHR_gl_image: "<buffer> ... the name of a texture object, cast into the type
        // EGLClientBuffer".
        let buffer = texture as usize as EGLClientBuffer;
        // SAFETY: display and context are live (type invariant); `attribs` is an EGL_NONE
        // terminated list that outlives the call; EGL validates the texture name itself
        // (EGL_BAD_PARAMETER/EGL_BAD_MATCH for names that are not complete 2D textures).
        let image = unsafe {
            create(
                self.display,
                self.context,
                EGL_GL_TEXTURE_2D_KHR,
                buffer,
                attribs.as_ptr(),
            )
        };
        if image.is_null() {
            return Err(self.egl.error("eglCreateImageKHR(EGL_GL_TEXTURE_2D_KHR)"));
        }
        Ok(EglImage(image))
    }

    /// `eglDestroyImageKHR`. Logs, rather than returns, a failure: it runs in `Drop`.
    pub(crate) fn destroy_image(&self, image: EglImage) {
        let Some(destroy) = self.egl.destroy_image_khr else {
            tracing::warn!("eglDestroyImageKHR missing; EGLImage leaked");
            return;
        };
        // SAFETY: the display is live (type invariant) and `image` was created on it by
        // `create_image_from_texture`; taking it by value means it is destroyed once.
        if unsafe { destroy(self.display, image.0) } == EGL_FALSE {
            let code = self.egl.last_error();
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
        let create = self
            .egl
            .create_image_khr
            .ok_or(GlError::MissingEntryPoint {
                name: "eglCreateImageKHR",
            })?;
        let as_attr = |v: u32| EGLint::from_ne_bytes(v.to_ne_bytes());
        let mut attribs = vec![
            EGL_WIDTH,
            as_attr(plane.width),
            EGL_HEIGHT,
            as_attr(plane.height),
            EGL_LINUX_DRM_FOURCC_EXT,
            as_attr(plane.fourcc),
            EGL_DMA_BUF_PLANE0_FD_EXT,
            plane.fd.as_raw_fd(),
            EGL_DMA_BUF_PLANE0_OFFSET_EXT,
            as_attr(plane.offset),
            EGL_DMA_BUF_PLANE0_PITCH_EXT,
            as_attr(plane.stride),
        ];
        if let Some(modifier) = plane.modifier {
            // The extension splits the 64-bit modifier into two 32-bit attribute values.
            attribs.extend([
                EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT,
                as_attr(modifier as u32),
                EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT,
                as_attr((modifier >> 32) as u32),
            ]);
        }
        attribs.push(EGL_NONE);
        // SAFETY: display live (type invariant); for EGL_LINUX_DMA_BUF_EXT the extension requires
        // EGL_NO_CONTEXT (NULL) and a NULL client buffer; `attribs` is EGL_NONE terminated and
        // outlives the call; the fd in it is borrowed, so open for the call, and EGL only
        // imports it (takes its own reference), never closes it.
        let image = unsafe {
            create(
                self.display,
                ptr::null_mut(),
                EGL_LINUX_DMA_BUF_EXT,
                ptr::null_mut(),
                attribs.as_ptr(),
            )
        };
        if image.is_null() {
            return Err(self.egl.error("eglCreateImageKHR(EGL_LINUX_DMA_BUF_EXT)"));
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
        let target =
            self.egl
                .egl_image_target_texture_2d_oes
                .ok_or(GlError::MissingEntryPoint {
                    name: "glEGLImageTargetTexture2DOES",
                })?;
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
        unsafe { target(GL_TEXTURE_2D, image.0) };
        Ok(())
    }

    /// `eglExportDMABUFImageQueryMESA(display, image, &fourcc, &num_planes, &modifier)`.
    pub(crate) fn export_query(&self, image: &EglImage) -> Result<ExportQuery, GlError> {
        let query = self
            .egl
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
        if ok == EGL_FALSE {
            return Err(self.egl.error("eglExportDMABUFImageQueryMESA"));
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
        if ok == EGL_FALSE {
            return Err(self.egl.error("eglExportDMABUFImageQueryMESA(modifiers)"));
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
        let export = self
            .egl
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
        if ok == EGL_FALSE {
            return Err(self.egl.error("eglExportDMABUFImageMESA"));
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
        let create = self.egl.create_sync_khr.ok_or(GlError::MissingEntryPoint {
            name: "eglCreateSyncKHR",
        })?;
        let attribs = [EGL_NONE];
        // SAFETY: display live (invariant); `attribs` is an EGL_NONE terminated list that
        // outlives the call (no EGL_SYNC_NATIVE_FENCE_FD_ANDROID: a new fence is wanted).
        let sync = unsafe {
            create(
                self.display,
                EGL_SYNC_NATIVE_FENCE_ANDROID,
                attribs.as_ptr(),
            )
        };
        if sync.is_null() {
            return Err(self
                .egl
                .error("eglCreateSyncKHR(EGL_SYNC_NATIVE_FENCE_ANDROID)"));
        }
        Ok(EglSync(sync))
    }

    /// `eglDupNativeFenceFDANDROID`: a new sync_file fd for `sync`, owned by the caller.
    ///
    /// Valid only after the fence command was flushed (the extension: until then the call fails
    /// with EGL_BAD_PARAMETER... and returns EGL_NO_NATIVE_FENCE_FD_ANDROID).
    pub(crate) fn dup_native_fence_fd(&self, sync: &EglSync) -> Result<OwnedFd, GlError> {
        let dup = self
            .egl
            .dup_native_fence_fd_android
            .ok_or(GlError::MissingEntryPoint {
                name: "eglDupNativeFenceFDANDROID",
            })?;
        // SAFETY: display live (invariant); `sync` was created on it and is borrowed, so not yet
        // destroyed.
        let fd = unsafe { dup(self.display, sync.0) };
        if fd == EGL_NO_NATIVE_FENCE_FD_ANDROID || fd < 0 {
            return Err(self.egl.error("eglDupNativeFenceFDANDROID"));
        }
        // SAFETY: the extension: "returns a new file descriptor ... the caller owns it"; it is
        // a fresh fd nothing else holds, adopted exactly once (and not negative: checked above).
        let fd = unsafe { triptych_sys::fd::adopt(fd) }
            .ok_or_else(|| self.egl.error("eglDupNativeFenceFDANDROID"))?;
        ensure_cloexec(fd)
    }

    /// `eglDestroySyncKHR`. Logs a failure: it also runs on error paths.
    pub(crate) fn destroy_sync(&self, sync: EglSync) {
        let Some(destroy) = self.egl.destroy_sync_khr else {
            tracing::warn!("eglDestroySyncKHR missing; EGLSync leaked");
            return;
        };
        // SAFETY: display live (invariant); `sync` was created on it and is consumed here, so it
        // is destroyed exactly once. A destroyed native fence sync keeps already duplicated fds
        // valid (they are independent sync_files).
        if unsafe { destroy(self.display, sync.0) } == EGL_FALSE {
            let code = self.egl.last_error();
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
    egl: &'static Egl,
    display: EGLDisplay,
    context: EGLContext,
}

impl SurfacelessContext {
    /// Creates the display, initialises it, and creates and binds the context.
    ///
    /// The error is a sentence naming the failing step, for [`super::PlatformAttempt`].
    pub(crate) fn new() -> Result<Self, String> {
        let egl = egl()?;
        let client = egl.client_extensions();
        if !client.iter().any(|e| e == "EGL_MESA_platform_surfaceless") {
            return Err("EGL_MESA_platform_surfaceless is not among the client extensions".into());
        }
        let get_platform_display = egl
            .get_platform_display_ext
            .filter(|_| client.iter().any(|e| e == "EGL_EXT_platform_base"))
            .ok_or("EGL_EXT_platform_base (eglGetPlatformDisplayEXT) is not offered")?;
        let attribs = [EGL_NONE];
        // SAFETY: EGL_MESA_platform_surfaceless requires <native_display> to be
        // EGL_DEFAULT_DISPLAY (NULL); the attribute list is EGL_NONE terminated and outlives the
        // call.
        let display = unsafe {
            get_platform_display(
                EGL_PLATFORM_SURFACELESS_MESA,
                ptr::null_mut(),
                attribs.as_ptr(),
            )
        };
        if display.is_null() {
            return Err(egl
                .error("eglGetPlatformDisplayEXT(EGL_PLATFORM_SURFACELESS_MESA)")
                .to_string());
        }
        let (mut major, mut minor) = (0, 0);
        // SAFETY: `display` was just returned by eglGetPlatformDisplayEXT; the out pointers are
        // locals that outlive the call.
        if unsafe { (egl.initialize)(display, &mut major, &mut minor) } == EGL_FALSE {
            return Err(egl.error("eglInitialize(surfaceless display)").to_string());
        }
        // SAFETY: the display is initialised; the returned string is EGL's and valid until the
        // display is terminated, which never happens here.
        let exts = split_extensions(
            unsafe { string_from((egl.query_string)(display, EGL_EXTENSIONS)) }.as_deref(),
        );
        if !exts.iter().any(|e| e == "EGL_KHR_surfaceless_context") {
            return Err("the surfaceless display lacks EGL_KHR_surfaceless_context".into());
        }
        // SAFETY: EGL_OPENGL_ES_API is a valid API enum; eglBindAPI only sets thread state.
        if unsafe { (egl.bind_api)(EGL_OPENGL_ES_API) } == EGL_FALSE {
            return Err(egl.error("eglBindAPI(EGL_OPENGL_ES_API)").to_string());
        }
        let config_attribs = [
            EGL_RENDERABLE_TYPE,
            EGL_OPENGL_ES3_BIT,
            // Any surface type: the context is only ever used without a surface.
            EGL_SURFACE_TYPE,
            0,
            EGL_RED_SIZE,
            8,
            EGL_GREEN_SIZE,
            8,
            EGL_BLUE_SIZE,
            8,
            EGL_ALPHA_SIZE,
            8,
            EGL_NONE,
        ];
        let mut config: EGLConfig = ptr::null_mut();
        let mut count: EGLint = 0;
        // SAFETY: initialised display; EGL_NONE terminated attribute list; `config` has room
        // for exactly the one config asked for (config_size 1); `count` is a local.
        let ok = unsafe {
            (egl.choose_config)(display, config_attribs.as_ptr(), &mut config, 1, &mut count)
        };
        if ok == EGL_FALSE {
            return Err(egl.error("eglChooseConfig(GLES3, RGBA8)").to_string());
        }
        if count < 1 {
            return Err("eglChooseConfig found no OpenGL ES 3 RGBA8 config".into());
        }
        let context_attribs = [
            EGL_CONTEXT_MAJOR_VERSION,
            3,
            EGL_CONTEXT_MINOR_VERSION,
            0,
            EGL_NONE,
        ];
        // SAFETY: initialised display, a config it returned, no share context (NULL is
        // EGL_NO_CONTEXT), EGL_NONE terminated attributes.
        let context = unsafe {
            (egl.create_context)(display, config, ptr::null_mut(), context_attribs.as_ptr())
        };
        if context.is_null() {
            return Err(egl.error("eglCreateContext(OpenGL ES 3.0)").to_string());
        }
        let this = Self {
            egl,
            display,
            context,
        };
        this.make_current().map_err(|e| e.to_string())?;
        Ok(this)
    }

    /// `eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, context)`.
    pub(crate) fn make_current(&self) -> Result<(), GlError> {
        // SAFETY: display initialised and context alive (owned by `self`); EGL_NO_SURFACE for
        // draw and read is allowed because the display offers EGL_KHR_surfaceless_context
        // (checked in `new`).
        let ok = unsafe {
            (self.egl.make_current)(self.display, ptr::null_mut(), ptr::null_mut(), self.context)
        };
        if ok == EGL_FALSE {
            return Err(self.egl.error("eglMakeCurrent(surfaceless)"));
        }
        Ok(())
    }

    /// The handles of this display and context.
    ///
    /// # Safety
    /// The caller keeps `self` alive for as long as the returned handles can be used.
    pub(crate) unsafe fn handles(&self) -> EglHandles {
        // SAFETY: the display is initialised and the context alive while `self` lives, which the
        // caller guarantees for the handles' lifetime.
        unsafe { EglHandles::new(self.egl, self.display, self.context) }
    }
}

impl Drop for SurfacelessContext {
    fn drop(&mut self) {
        // SAFETY: eglGetCurrentContext reads thread-local state only.
        if unsafe { (self.egl.get_current_context)() } == self.context {
            // SAFETY: releasing the current context: NO_SURFACE/NO_CONTEXT on an initialised
            // display is always valid.
            unsafe {
                (self.egl.make_current)(
                    self.display,
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            };
        }
        // SAFETY: the context was created on this display by `new` and is destroyed only here.
        // The display is not terminated: eglGetPlatformDisplay returns the same EGLDisplay to
        // every caller for the same platform, so another context may still use it.
        if unsafe { (self.egl.destroy_context)(self.display, self.context) } == EGL_FALSE {
            let code = self.egl.last_error();
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

/// libgbm, loaded at run time rather than through the `gbm` crate: that crate links libgbm at
/// build time, so a machine without it (no GPU stack, only llvmpipe on the device platform) could
/// not even start the GPU process to fall back to shm; loaded here, a missing libgbm is one
/// named reason in `doctor` and the fallback, and the shm backend works without it.
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
    use glutin_egl_sys::egl as k;

    /// The constants used here equal the ones generated from Khronos' egl.xml by glutin's
    /// bindings (those the bindings carry); the others are checked against eglext.h by value.
    #[test]
    fn constants_match_khronos_registry() {
        assert_eq!(EGL_SUCCESS, k::SUCCESS as EGLint);
        assert_eq!(EGL_ALPHA_SIZE, k::ALPHA_SIZE as EGLint);
        assert_eq!(EGL_BLUE_SIZE, k::BLUE_SIZE as EGLint);
        assert_eq!(EGL_GREEN_SIZE, k::GREEN_SIZE as EGLint);
        assert_eq!(EGL_RED_SIZE, k::RED_SIZE as EGLint);
        assert_eq!(EGL_SURFACE_TYPE, k::SURFACE_TYPE as EGLint);
        assert_eq!(EGL_NONE, k::NONE as EGLint);
        assert_eq!(EGL_RENDERABLE_TYPE, k::RENDERABLE_TYPE as EGLint);
        assert_eq!(EGL_VENDOR, k::VENDOR as EGLint);
        assert_eq!(EGL_VERSION, k::VERSION as EGLint);
        assert_eq!(EGL_EXTENSIONS, k::EXTENSIONS as EGLint);
        assert_eq!(
            EGL_CONTEXT_MAJOR_VERSION,
            k::CONTEXT_MAJOR_VERSION as EGLint
        );
        assert_eq!(
            EGL_CONTEXT_MINOR_VERSION,
            k::CONTEXT_MINOR_VERSION as EGLint
        );
        assert_eq!(EGL_OPENGL_ES_API, k::OPENGL_ES_API);
        assert_eq!(EGL_GL_TEXTURE_2D_KHR, k::GL_TEXTURE_2D);
        assert_eq!(EGL_GL_TEXTURE_LEVEL_KHR, k::GL_TEXTURE_LEVEL as EGLint);
        assert_eq!(EGL_SYNC_NATIVE_FENCE_ANDROID, k::SYNC_NATIVE_FENCE_ANDROID);
        assert_eq!(
            EGL_NO_NATIVE_FENCE_FD_ANDROID,
            k::NO_NATIVE_FENCE_FD_ANDROID
        );
        assert_eq!(EGL_OPENGL_ES3_BIT, k::OPENGL_ES3_BIT as EGLint);
        assert_eq!(EGL_WIDTH, k::WIDTH as EGLint);
        assert_eq!(EGL_HEIGHT, k::HEIGHT as EGLint);
        // Not in glutin's bindings; values as eglext.h defines them.
        assert_eq!(EGL_PLATFORM_SURFACELESS_MESA, 0x31DD);
        assert_eq!(EGL_LINUX_DMA_BUF_EXT, 0x3270);
        assert_eq!(EGL_LINUX_DRM_FOURCC_EXT, 0x3271);
        assert_eq!(EGL_DMA_BUF_PLANE0_FD_EXT, 0x3272);
        assert_eq!(EGL_DMA_BUF_PLANE0_OFFSET_EXT, 0x3273);
        assert_eq!(EGL_DMA_BUF_PLANE0_PITCH_EXT, 0x3274);
        assert_eq!(EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT, 0x3443);
        assert_eq!(EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT, 0x3444);
        // GLES2/gl2.h and glow agree on GL_TEXTURE_2D.
        assert_eq!(GL_TEXTURE_2D, glow::TEXTURE_2D);
        // gbm.h.
        assert_eq!(GBM_BO_USE_RENDERING, 4);
        assert_eq!(GBM_BO_USE_LINEAR, 16);
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
    }
}
