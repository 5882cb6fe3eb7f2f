//! Making an EGL display and an OpenGL ES 3.0 context on one EGL platform, made current without
//! a surface.
//!
//! - **Device platform** ([`EGL_EXT_platform_device`]), through glutin: every EGL device, or the
//!   one on a named DRM node; DRM-backed devices first, because only they can share dma-bufs,
//!   then Mesa's software device (`EGL_MESA_device_software`).
//! - **GBM platform** ([`EGL_KHR_platform_gbm`]), through glutin, on a `gbm_device` opened on a
//!   DRM node ([`super::ffi::gbm`]).
//! - **Surfaceless platform** ([`EGL_MESA_platform_surfaceless`]), without glutin, which has no
//!   way to name that platform ([`super::ffi::surfaceless`]).
//!
//! Each `try_*` function returns what it made ([`Made`]) or records one [`PlatformAttempt`]
//! saying why it failed. The order they are tried in is [`super::GlContext::new`]'s, and so is
//! the move of Mesa's `kms_swrast` to the GBM platform on the primary node, which needs the
//! driver name of a working context.
//!
//! # Ownership
//!
//! A [`Backend`] owns the display and the context. For glutin's platforms, [`GlutinBackend`]
//! drops the context before the display, and terminates a GBM display before it destroys the
//! `gbm_device` the display was made on.
//!
//! [`EGL_EXT_platform_device`]: https://registry.khronos.org/EGL/extensions/EXT/EGL_EXT_platform_device.txt
//! [`EGL_KHR_platform_gbm`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_platform_gbm.txt
//! [`EGL_MESA_platform_surfaceless`]: https://registry.khronos.org/EGL/extensions/MESA/EGL_MESA_platform_surfaceless.txt

use std::path::{Path, PathBuf};

use glutin::api::egl::context::PossiblyCurrentContext;
use glutin::api::egl::device::Device;
use glutin::api::egl::display::Display as EglDisplay;
use glutin::config::{Api, ConfigSurfaceTypes, ConfigTemplateBuilder};
use glutin::context::{ContextApi, ContextAttributesBuilder, Version};
use glutin::prelude::*;

use super::ffi::gbm::GbmDevice;
use super::ffi::loader::Tables;
use super::ffi::surfaceless::SurfacelessContext;
use super::info::{Platform, PlatformAttempt};

/// The glutin-owned display and context of the device and GBM platforms.
pub(super) struct GlutinBackend {
    // Drop order is declaration order: the context goes before the display it was made on, and
    // the display is terminated (GBM only) before the gbm_device it points at is destroyed.
    pub(super) context: PossiblyCurrentContext,
    pub(super) display: EglDisplay,
    gbm: Option<GbmDevice>,
}

impl Drop for GlutinBackend {
    fn drop(&mut self) {
        if self.context.is_current() {
            if let Err(error) = self.context.make_not_current_in_place() {
                tracing::warn!(%error, "releasing the EGL context failed");
            }
        }
        if self.gbm.is_some() {
            // The display was made on a gbm_device that only this backend owns, so no other
            // holder of this EGLDisplay exists (EGL keys displays by native display): terminating
            // it cannot break another context, and must happen before the device is destroyed.
            // SAFETY: see above; glutin's own Drop of `context` then only destroys the context
            // handle, which eglTerminate has already released (EGL allows that call on a
            // terminated display: it fails with EGL_NOT_INITIALIZED, with no effect).
            unsafe { self.display.clone().terminate() };
        }
    }
}

/// The display and context of a [`super::GlContext`], on whichever platform made them.
pub(super) enum Backend {
    Glutin(GlutinBackend),
    Surfaceless(SurfacelessContext),
}

/// What creating a context on one platform produced, before the GL side is set up.
pub(super) struct Made {
    pub(super) backend: Backend,
    pub(super) platform: Platform,
    pub(super) drm_node: Option<PathBuf>,
    pub(super) drm_primary_node: Option<PathBuf>,
    pub(super) device_extensions: Vec<String>,
}

/// The glutin part: a display from `make_display`, then a GLES 3.0 context made current with no
/// surface.
fn glutin_context(display: EglDisplay, gbm: Option<GbmDevice>) -> Result<Backend, String> {
    let template = ConfigTemplateBuilder::new()
        .with_alpha_size(8)
        .with_surface_type(ConfigSurfaceTypes::empty())
        .with_api(Api::GLES3)
        .build();
    // SAFETY: the template names no native window, the only thing find_configs would
    // dereference.
    let config = unsafe { display.find_configs(template) }
        .map_err(|e| format!("eglChooseConfig failed: {e}"))?
        .next()
        .ok_or("eglChooseConfig found no OpenGL ES 3 RGBA8 config")?;
    let attributes = ContextAttributesBuilder::new()
        .with_context_api(ContextApi::Gles(Some(Version::new(3, 0))))
        .build(None);
    // SAFETY: the attributes name no native window (built with `None`).
    let not_current = unsafe { display.create_context(&config, &attributes) }
        .map_err(|e| format!("eglCreateContext(OpenGL ES 3.0) failed: {e}"))?;
    let context = not_current
        .make_current_surfaceless()
        .map_err(|e| format!("eglMakeCurrent without a surface failed: {e}"))?;
    Ok(Backend::Glutin(GlutinBackend {
        context,
        display,
        gbm,
    }))
}

/// Tries the device platform: the device on `node` if given, else DRM-backed devices first.
pub(super) fn try_devices(
    node: Option<&Path>,
    attempts: &mut Vec<PlatformAttempt>,
) -> Option<Made> {
    let devices = match Device::query_devices() {
        Ok(d) => d.collect::<Vec<_>>(),
        Err(e) => {
            let error = match Tables::load() {
                Err(missing) => missing,
                Ok(_) => format!("EGL device enumeration is not available: {e}"),
            };
            attempts.push(PlatformAttempt {
                platform: Platform::Device,
                candidate: None,
                error,
            });
            return None;
        }
    };
    let node_of = |d: &Device| {
        d.drm_render_device_node_path()
            .or_else(|| d.drm_device_node_path())
    };
    let mut candidates: Vec<&Device> = devices
        .iter()
        .filter(|d| match node {
            Some(want) => {
                d.drm_render_device_node_path() == Some(want)
                    || d.drm_device_node_path() == Some(want)
            }
            None => true,
        })
        .collect();
    // DRM-backed devices first: only they can export dma-bufs. `sort_by_key` is stable, so
    // EGL's order is kept within each group.
    candidates.sort_by_key(|d| node_of(d).is_none());
    if candidates.is_empty() {
        let error = match node {
            Some(want) => format!(
                "no EGL device is backed by {} (devices: {})",
                want.display(),
                devices
                    .iter()
                    .map(describe_device)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "EGL lists no devices".to_owned(),
        };
        attempts.push(PlatformAttempt {
            platform: Platform::Device,
            candidate: None,
            error,
        });
        return None;
    }
    for device in candidates {
        // SAFETY: no raw display handle is passed, the only thing with_device would trust.
        let made = unsafe { EglDisplay::with_device(device, None) }
            .map_err(|e| format!("eglGetPlatformDisplay/eglInitialize failed: {e}"))
            .and_then(|display| glutin_context(display, None));
        match made {
            Ok(backend) => {
                let mut device_extensions: Vec<String> = device
                    .extensions()
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect();
                device_extensions.sort();
                return Some(Made {
                    backend,
                    platform: Platform::Device,
                    drm_node: node_of(device).map(Path::to_path_buf),
                    drm_primary_node: device.drm_device_node_path().map(Path::to_path_buf),
                    device_extensions,
                });
            }
            Err(error) => attempts.push(PlatformAttempt {
                platform: Platform::Device,
                candidate: Some(describe_device(device)),
                error,
            }),
        }
    }
    None
}

fn describe_device(d: &Device) -> String {
    match d
        .drm_render_device_node_path()
        .or_else(|| d.drm_device_node_path())
    {
        Some(p) => p.display().to_string(),
        None if d.extensions().contains("EGL_MESA_device_software") => "software".to_owned(),
        None => d.name().unwrap_or("unnamed device").to_owned(),
    }
}

pub(super) fn try_surfaceless(attempts: &mut Vec<PlatformAttempt>) -> Option<Made> {
    match SurfacelessContext::new() {
        Ok(ctx) => Some(Made {
            backend: Backend::Surfaceless(ctx),
            platform: Platform::Surfaceless,
            drm_node: None,
            drm_primary_node: None,
            device_extensions: Vec::new(),
        }),
        Err(error) => {
            attempts.push(PlatformAttempt {
                platform: Platform::Surfaceless,
                candidate: None,
                error,
            });
            None
        }
    }
}

pub(super) fn try_gbm(node: &Path, attempts: &mut Vec<PlatformAttempt>) -> Option<Made> {
    let made = GbmDevice::open(node).and_then(|gbm| {
        let handle = raw_window_handle::GbmDisplayHandle::new(gbm.as_ptr());
        // SAFETY: the handle points at a live gbm_device that moves into the backend together
        // with the display and is destroyed only after the display is terminated
        // (`GlutinBackend`'s Drop and field order).
        let display = unsafe { EglDisplay::new(raw_window_handle::RawDisplayHandle::Gbm(handle)) }
            .map_err(|e| format!("eglGetPlatformDisplay(GBM)/eglInitialize failed: {e}"))?;
        glutin_context(display, Some(gbm))
    });
    match made {
        Ok(backend) => Some(Made {
            backend,
            platform: Platform::Gbm,
            drm_node: Some(node.to_path_buf()),
            // DRM names primary nodes `cardN` and render nodes `renderDN`.
            drm_primary_node: node
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("card"))
                .then(|| node.to_path_buf()),
            device_extensions: Vec::new(),
        }),
        Err(error) => {
            attempts.push(PlatformAttempt {
                platform: Platform::Gbm,
                candidate: Some(node.display().to_string()),
                error,
            });
            None
        }
    }
}
