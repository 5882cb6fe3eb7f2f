//! The errors of the GL module ([`GlError`]) and the names of the EGL error codes they print.
//!
//! Every operation of the module returns [`GlError`]; each variant names the call or extension
//! that failed and the values involved, so that a message says what to change (another platform,
//! a missing extension, a size). Creating a context collects one [`PlatformAttempt`] per platform
//! tried; when none works, [`GlError::NoContext`] lists them all.
//!
//! The EGL codes are those of the [EGL 1.5 specification], section 3.1 ("Errors"); their names
//! come from the tokens `glutin_egl_sys` generates from Khronos' `egl.xml`.
//!
//! [EGL 1.5 specification]: https://registry.khronos.org/EGL/specs/eglspec.1.5.pdf

use glutin_egl_sys::egl;
use glutin_egl_sys::egl::types::EGLenum;
use ipc_protocol::frame::DRM_FORMAT_ABGR8888;

use super::info::{Platform, PlatformAttempt};

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
    #[error("{call} failed: EGL error {code:#06x} ({})", error_name(*.code))]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names() {
        assert_eq!(error_name(0x3009), "EGL_BAD_MATCH");
        assert_eq!(error_name(0x300C), "EGL_BAD_PARAMETER");
        assert_eq!(error_name(0x1234), "unknown EGL error");
        assert_eq!(error_name(-1), "unknown EGL error");
    }
}
