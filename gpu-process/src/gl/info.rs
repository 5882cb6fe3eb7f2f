//! What a context is asked for and what it found: the EGL platform to try
//! ([`PlatformRequest`]), the platform a display is on ([`Platform`]), each platform tried on the
//! way and why it failed ([`PlatformAttempt`]), and what the display and context offer
//! ([`EglInfo`]).
//!
//! These are plain values with no EGL or GL object behind them: a copy outlives the context it
//! describes. They serialize, because `triptych-gpu --egl-facts` prints them for
//! `triptych doctor`, and they are the vocabulary of the errors ([`super::GlError`]), so this
//! module uses no other part of the GL module.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
