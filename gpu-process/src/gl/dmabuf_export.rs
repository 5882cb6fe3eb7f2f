//! Exporting a layer texture as a DMA-BUF ([`EGL_MESA_image_dma_buf_export`]).
//!
//! # Sequence
//!
//! 1. `eglCreateImageKHR(display, context, EGL_GL_TEXTURE_2D_KHR, texture, {level 0})` wraps the
//!    texture's storage in an `EGLImage` ([`EGL_KHR_gl_texture_2D_image`]). The image is cached
//!    in the [`LayerTarget`] and destroyed with it, so a texture is wrapped once.
//! 2. `eglExportDMABUFImageQueryMESA` reports the DRM fourcc, the plane count and the format
//!    modifier ([`drm_fourcc.h`]).
//! 3. `eglExportDMABUFImageMESA` returns one new dma-buf fd per plane with its stride and offset.
//!    The fds belong to the caller; the dma-buf keeps the texture's memory alive even after the
//!    texture and image are deleted, and every later draw into the texture is visible through it.
//!
//! Only single-plane `DRM_FORMAT_ABGR8888` (bytes R, G, B, A in memory: GL's RGBA8) with a
//! linear layout is accepted: the renderer reads the buffer on the CPU as rows of `stride` bytes
//! starting at `offset`. Linear means EGL reported `DRM_FORMAT_MOD_LINEAR`, or it reported
//! `DRM_FORMAT_MOD_INVALID` ("unknown") for a driver known to allocate only linear buffers
//! ([`LINEAR_WITHOUT_MODIFIER_DRIVERS`]: Mesa's `kms_swrast`, which is what a vgem node gives).
//! Any other layout is an error naming what EGL reported.
//!
//! # Ownership
//!
//! [`DmabufExport`] owns its plane fds (`OwnedFd`, close-on-exec). Exporting the same target
//! again returns new fds for the same dma-buf (same inode), not a new buffer.
//!
//! [`EGL_MESA_image_dma_buf_export`]: https://registry.khronos.org/EGL/extensions/MESA/EGL_MESA_image_dma_buf_export.txt
//! [`EGL_KHR_gl_texture_2D_image`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_gl_image.txt
//! [`drm_fourcc.h`]: https://github.com/torvalds/linux/blob/master/include/uapi/drm/drm_fourcc.h

use std::os::fd::{AsFd, OwnedFd};

use super::context::GlContext;
use super::error::GlError;
use super::targets::LayerTarget;

// The DRM format constants are defined once, in the protocol crate (pinned there by a test
// against `drm_fourcc.h`).
pub use ipc_protocol::frame::{DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR};

/// Drivers (as `eglGetDisplayDriverName` names them) whose exported buffers are linear although
/// EGL reports `DRM_FORMAT_MOD_INVALID` for them.
///
/// - `kms_swrast`: Mesa's software rasteriser (llvmpipe) on a DRM node. Its winsys
///   (`src/gallium/winsys/sw/kms-dri/kms_dri_sw_winsys.c`) allocates every shareable texture as
///   a DRM dumb buffer (`DRM_IOCTL_MODE_CREATE_DUMB`, whose `pitch` is the exported stride),
///   maps it with `DRM_IOCTL_MODE_MAP_DUMB`, and llvmpipe writes the texels into that mapping
///   on the CPU as rows of `pitch` bytes: the layout is linear by construction. llvmpipe does
///   not answer the modifier query, so Mesa's EGL reports `DRM_FORMAT_MOD_INVALID`. The
///   dma-buf test reads an odd-sized export (33x17) through `mmap` with the reported stride and
///   finds every pixel where a linear layout puts it.
pub const LINEAR_WITHOUT_MODIFIER_DRIVERS: &[&str] = &["kms_swrast"];

/// The layout modifier to report for an export: `DRM_FORMAT_MOD_LINEAR` when EGL says so, or
/// when EGL knows no modifier and `driver` is known to export linear buffers; an error otherwise.
pub(crate) fn resolve_modifier(reported: u64, driver: Option<&str>) -> Result<u64, GlError> {
    match reported {
        DRM_FORMAT_MOD_LINEAR => Ok(DRM_FORMAT_MOD_LINEAR),
        DRM_FORMAT_MOD_INVALID
            if driver.is_some_and(|d| LINEAR_WITHOUT_MODIFIER_DRIVERS.contains(&d)) =>
        {
            Ok(DRM_FORMAT_MOD_LINEAR)
        }
        modifier => Err(GlError::NotLinear { modifier }),
    }
}

/// One plane of an exported dma-buf.
#[derive(Debug)]
pub struct ExportedPlane {
    /// The dma-buf fd (close-on-exec).
    pub fd: OwnedFd,
    /// Byte offset of the plane's first row in the dma-buf.
    pub offset: u32,
    /// Bytes from the start of one row to the start of the next.
    pub stride: u32,
}

/// A layer texture exported as a dma-buf: linear single-plane `DRM_FORMAT_ABGR8888`.
#[derive(Debug)]
pub struct DmabufExport {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// DRM fourcc; always [`DRM_FORMAT_ABGR8888`].
    pub fourcc: u32,
    /// DRM format modifier of the layout; always [`DRM_FORMAT_MOD_LINEAR`].
    pub modifier: u64,
    /// The modifier `eglExportDMABUFImageQueryMESA` reported: [`DRM_FORMAT_MOD_LINEAR`], or
    /// [`DRM_FORMAT_MOD_INVALID`] for a driver in [`LINEAR_WITHOUT_MODIFIER_DRIVERS`].
    pub egl_modifier: u64,
    /// The planes; exactly one.
    pub planes: Vec<ExportedPlane>,
}

impl DmabufExport {
    /// The smallest dma-buf size that holds every plane: `offset + stride * height` of the
    /// largest plane.
    pub fn min_size(&self) -> u64 {
        self.planes
            .iter()
            .map(|p| u64::from(p.offset) + u64::from(p.stride) * u64::from(self.height))
            .max()
            .unwrap_or(0)
    }
}

/// Checks one plane's offset and stride against a `width`-pixel RGBA8 row and converts them.
fn plane_layout(plane: usize, offset: i32, stride: i32, width: u32) -> Result<(u32, u32), GlError> {
    let bad = || GlError::BadPlane {
        plane,
        offset,
        stride,
        width,
    };
    let offset = u32::try_from(offset).map_err(|_| bad())?;
    let stride = u32::try_from(stride).map_err(|_| bad())?;
    let row = u64::from(width) * 4;
    if u64::from(stride) < row || stride % 4 != 0 {
        return Err(bad());
    }
    Ok((offset, stride))
}

impl GlContext {
    /// Exports `target`'s texture as a dma-buf (see the module docs for the sequence).
    ///
    /// Errors: [`GlError::ExtensionMissing`] naming `EGL_MESA_image_dma_buf_export` (or the
    /// `EGLImage` extensions) when the display lacks it; [`GlError::NotLinear`] for any modifier
    /// other than `DRM_FORMAT_MOD_LINEAR`, including `DRM_FORMAT_MOD_INVALID` from a driver not
    /// in [`LINEAR_WITHOUT_MODIFIER_DRIVERS`]; [`GlError::BufferTooSmall`] when the dma-buf is
    /// smaller than its reported layout;
    /// [`GlError::UnexpectedLayout`] for another fourcc or plane count; [`GlError::Egl`] when an
    /// EGL call fails.
    pub fn export_dmabuf(&mut self, target: &LayerTarget) -> Result<DmabufExport, GlError> {
        let shared = self.shared();
        if !std::rc::Rc::ptr_eq(shared, target.shared()) {
            return Err(GlError::ForeignObject {
                what: "layer target",
            });
        }
        for extension in [
            "EGL_KHR_image_base",
            "EGL_KHR_gl_texture_2D_image",
            "EGL_MESA_image_dma_buf_export",
        ] {
            if !shared.info.has_display_extension(extension) {
                return Err(GlError::ExtensionMissing {
                    extension,
                    needed_for: "exporting a layer texture as a dma-buf",
                    platform: shared.info.platform,
                });
            }
        }
        shared.make_current()?;
        if target.image.get().is_none() {
            // Everything drawn so far reaches the texture before EGL looks at its storage.
            shared.flush()?;
            let image = shared
                .egl
                .create_image_from_texture(target.texture.0.get())?;
            if let Err(image) = target.image.set(image) {
                // Unreachable (checked `is_none` above on this thread), but never leak it.
                shared.egl.destroy_image(image);
            }
        }
        let Some(image) = target.image.get() else {
            return Err(GlError::Egl {
                call: "eglCreateImageKHR (image not cached)",
                code: 0,
            });
        };
        let query = shared.egl.export_query(image)?;
        if query.fourcc != DRM_FORMAT_ABGR8888 || query.num_planes != 1 {
            return Err(GlError::UnexpectedLayout {
                fourcc: query.fourcc,
                planes: query.num_planes,
            });
        }
        let modifier = resolve_modifier(query.modifier, shared.info.driver_name.as_deref())?;
        let raw = shared.egl.export(image, 1)?;
        let mut planes = Vec::with_capacity(raw.len());
        for (i, p) in raw.into_iter().enumerate() {
            let (offset, stride) = plane_layout(i, p.offset, p.stride, target.width())?;
            // The buffer must hold every row the layout describes; the renderer checks again
            // on import, but a short buffer is EGL's fault and is reported here.
            let needed = u64::from(offset) + u64::from(stride) * u64::from(target.height());
            let size = triptych_sys::fd::seek_size(p.fd.as_fd())?;
            if size < needed {
                return Err(GlError::BufferTooSmall {
                    plane: i,
                    size,
                    needed,
                });
            }
            planes.push(ExportedPlane {
                fd: p.fd,
                offset,
                stride,
            });
        }
        // Drawing completes before anyone reads: callers fence after each draw, but the first
        // export also flushes so the texture's current content is submitted.
        shared.flush()?;
        let export = DmabufExport {
            width: target.width(),
            height: target.height(),
            fourcc: query.fourcc,
            modifier,
            egl_modifier: query.modifier,
            planes,
        };
        tracing::debug!(
            width = export.width,
            height = export.height,
            fourcc = format_args!("{:#010x}", export.fourcc),
            modifier = format_args!("{:#018x}", export.modifier),
            egl_modifier = format_args!("{:#018x}", export.egl_modifier),
            stride = export.planes[0].stride,
            offset = export.planes[0].offset,
            "layer texture exported as dma-buf"
        );
        Ok(export)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gl::{PlatformRequest, WaitOutcome};
    use std::path::{Path, PathBuf};
    use std::time::Duration;
    use triptych_scene::layer_content;

    // Tests that depend on the machine skip where it lacks what they need, saying so, and fail
    // instead where a variable says it has it (the table in `tests/src/lib.rs` lists them all).

    /// `1`: an EGL display that exports DMA-BUFs from a DRM render node (the VM sets it).
    const REQUIRE_DMABUF: &str = "TRIPTYCH_REQUIRE_DMABUF";
    /// `1`: the first DRM render node is driven by Mesa's `kms_swrast`, as vgem's is (the VM
    /// sets it).
    const REQUIRE_KMS_SWRAST: &str = "TRIPTYCH_REQUIRE_KMS_SWRAST";
    /// `1`: no DRM device at all, so that no display can export DMA-BUFs (`scripts/test.sh`
    /// sets it where `/dev/dri` is empty or absent).
    const REQUIRE_NO_DRI: &str = "TRIPTYCH_REQUIRE_NO_DRI";

    /// Reports that this machine lacks what the calling test needs (`reason`); the caller
    /// returns after it. Panics when any of `vars` is `1`: the machine was said to have it.
    /// Otherwise writes `skipped: <reason>` straight to stderr, where libtest, which captures
    /// the `eprintln!` of passing tests, does not hide it.
    #[track_caller]
    fn skip_or_fail(vars: &[&str], reason: &str) {
        use std::io::Write as _;
        for var in vars {
            assert!(
                std::env::var_os(var).is_none_or(|v| v != "1"),
                "{var}=1 says this machine can run the test, but: {reason}"
            );
        }
        let _ = writeln!(
            std::io::stderr(),
            "skipped: {reason} (set {}=1 to make this a failure)",
            vars.join("=1 or ")
        );
    }

    #[test]
    fn drm_numbers_match_drm_fourcc_h() {
        // drm_fourcc.h: #define DRM_FORMAT_ABGR8888 fourcc_code('A', 'B', '2', '4')
        assert_eq!(DRM_FORMAT_ABGR8888, 0x3432_4241);
        assert_eq!(DRM_FORMAT_MOD_INVALID, 0x00ff_ffff_ffff_ffff);
        assert_eq!(DRM_FORMAT_MOD_LINEAR, 0);
    }

    #[test]
    fn only_linear_layouts_are_accepted() {
        assert_eq!(
            resolve_modifier(0, None).expect("linear"),
            DRM_FORMAT_MOD_LINEAR
        );
        assert_eq!(
            resolve_modifier(DRM_FORMAT_MOD_INVALID, Some("kms_swrast")).expect("dumb buffers"),
            DRM_FORMAT_MOD_LINEAR
        );
        for (modifier, driver) in [
            (DRM_FORMAT_MOD_INVALID, None),
            (DRM_FORMAT_MOD_INVALID, Some("iris")),
            // I915_FORMAT_MOD_X_TILED = fourcc_mod_code(INTEL, 1) = (0x01 << 56) | 1.
            (0x0100_0000_0000_0001, Some("kms_swrast")),
        ] {
            match resolve_modifier(modifier, driver) {
                Err(GlError::NotLinear { modifier: m }) if m == modifier => {}
                other => panic!("{modifier:#x} from {driver:?}: expected NotLinear, got {other:?}"),
            }
        }
    }

    #[test]
    fn plane_layout_is_validated() {
        assert_eq!(plane_layout(0, 0, 132, 33).expect("ok"), (0, 132));
        assert_eq!(plane_layout(0, 64, 256, 33).expect("ok"), (64, 256));
        for (offset, stride) in [(-1, 132), (0, 128), (0, -4), (0, 134)] {
            assert!(
                matches!(
                    plane_layout(0, offset, stride, 33),
                    Err(GlError::BadPlane { .. })
                ),
                "offset {offset} stride {stride}"
            );
        }
    }

    /// Without the export extension, exporting is a clear error naming it.
    #[test]
    fn missing_export_extension_is_named() {
        let mut gl =
            GlContext::new(PlatformRequest::Auto).unwrap_or_else(|e| panic!("GL context: {e}"));
        let target = gl.create_target(16, 16).expect("target");
        if gl.info().mesa_image_dma_buf_export {
            skip_or_fail(
                &[REQUIRE_NO_DRI],
                &format!(
                    "this display ({} on {:?}) offers EGL_MESA_image_dma_buf_export; the dma-buf \
                     tests cover it",
                    gl.info().platform,
                    gl.info().drm_node
                ),
            );
            return;
        }
        let err = gl.export_dmabuf(&target).expect_err("extension is absent");
        assert!(
            err.to_string().contains("EGL_MESA_image_dma_buf_export"),
            "{err}"
        );
    }

    /// Where a DRM device and dma-buf import exist, an exportable target is created; elsewhere
    /// (no DRM node, as on the build machines) the error names what is missing.
    #[test]
    fn exportable_target_needs_a_drm_device() {
        let mut gl =
            GlContext::new(PlatformRequest::Auto).unwrap_or_else(|e| panic!("GL context: {e}"));
        let info = gl.info().clone();
        let result = gl.create_exportable_target(16, 8);
        match (&info.drm_node, info.ext_image_dma_buf_import, result) {
            (Some(_), true, Ok(target)) => assert!(target.is_dmabuf_backed()),
            (Some(node), true, Err(e)) => {
                panic!(
                    "{} offers dma-buf import but allocation failed: {e}",
                    node.display()
                )
            }
            (_, false, Err(e)) => {
                assert!(
                    e.to_string().contains("EGL_EXT_image_dma_buf_import"),
                    "{e}"
                )
            }
            (None, true, Err(e)) => assert!(matches!(e, GlError::Allocate { .. }), "{e}"),
            (node, import, Ok(_)) => {
                panic!("exportable target without a DRM device ({node:?}, import {import})")
            }
        }
    }

    /// Exporting a plain (driver-allocated) texture either works and shows the pixels, or fails
    /// with the error that points at `create_exportable_target`.
    #[test]
    fn plain_texture_export_works_or_says_why() {
        let Some(mut gl) = exporting_context() else {
            return;
        };
        let content = layer_content(3, 2, 33, 17);
        let target = gl
            .create_target(content.width, content.height)
            .expect("target");
        gl.draw(&target, &content).expect("draw");
        match gl.export_dmabuf(&target) {
            Ok(export) => {
                wait_for_gpu(&mut gl);
                let mut want = vec![0u8; target.byte_len()];
                content.fill(&mut want);
                check(
                    &read_through_mmap(&export),
                    &want,
                    export.width,
                    "plain texture",
                );
                eprintln!("this driver exports plain textures");
            }
            Err(e @ GlError::MissingPlaneFd { .. }) => {
                assert!(e.to_string().contains("create_exportable_target"), "{e}");
                eprintln!("plain texture export refused as expected for this driver: {e}");
            }
            Err(e) => panic!("unexpected export error: {e}"),
        }
    }

    /// The first DRM render node, if the machine has one.
    fn render_node() -> Option<PathBuf> {
        let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev/dri")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("renderD"))
            })
            .collect();
        nodes.sort();
        nodes.into_iter().next()
    }

    /// Skips (returns `None`) with a printed reason, or fails under `TRIPTYCH_REQUIRE_DMABUF=1`.
    #[track_caller]
    fn unavailable(reason: String) -> Option<GlContext> {
        skip_or_fail(
            &[REQUIRE_DMABUF],
            &format!("dma-buf export unavailable: {reason}"),
        );
        None
    }

    /// The context the GPU process would get (`PlatformRequest::Auto`), if it can export
    /// dma-bufs: on a DRM node, with `EGL_MESA_image_dma_buf_export` and dma-buf import.
    #[track_caller]
    fn exporting_context() -> Option<GlContext> {
        if render_node().is_none() {
            return unavailable("no DRM render node under /dev/dri".into());
        }
        match GlContext::new(PlatformRequest::Auto) {
            Ok(gl) => {
                let i = gl.info();
                if i.drm_node.is_some() && i.mesa_image_dma_buf_export && i.ext_image_dma_buf_import
                {
                    Some(gl)
                } else {
                    unavailable(format!(
                        "the automatic context ({} on {:?}, driver {:?}) lacks a DRM node, \
                         EGL_MESA_image_dma_buf_export or EGL_EXT_image_dma_buf_import",
                        i.platform, i.drm_node, i.driver_name
                    ))
                }
            }
            Err(e) => unavailable(format!("no GL context: {e}")),
        }
    }

    /// Mesa's kms_swrast on the device platform opens the render node, where it cannot map
    /// imported dma-bufs: creating an exportable target there must be a clear error, never a
    /// target that crashes llvmpipe when drawn into. Needs a render node that kms_swrast drives
    /// (vgem's); skips elsewhere, and fails instead under `TRIPTYCH_REQUIRE_KMS_SWRAST=1` (and,
    /// for want of any render node, under `TRIPTYCH_REQUIRE_DMABUF=1`).
    #[test]
    fn kms_swrast_on_a_render_node_refuses_exportable_targets() {
        let Some(node) = render_node() else {
            skip_or_fail(
                &[REQUIRE_KMS_SWRAST, REQUIRE_DMABUF],
                "no DRM render node under /dev/dri",
            );
            return;
        };
        let mut gl = match GlContext::new(PlatformRequest::Device {
            render_node: Some(node.clone()),
        }) {
            Ok(gl) => gl,
            Err(e) => panic!("device platform on {}: {e}", node.display()),
        };
        if gl.info().driver_name.as_deref() != Some("kms_swrast") {
            skip_or_fail(
                &[REQUIRE_KMS_SWRAST],
                &format!(
                    "{} is driven by {:?}, not kms_swrast",
                    node.display(),
                    gl.info().driver_name
                ),
            );
            return;
        }
        match gl.create_exportable_target(33, 17) {
            Err(e @ GlError::ImportUnusable { .. }) => {
                assert!(e.to_string().contains("primary node"), "{e}")
            }
            Err(e) => panic!("expected ImportUnusable, got {e}"),
            Ok(target) => {
                // Mesa opened the primary node after all (LIBGL_ALWAYS_SOFTWARE=1 does that):
                // then the target must work.
                let content = layer_content(4, 0, 33, 17);
                gl.draw(&target, &content).expect("draw");
                let mut got = vec![0u8; target.byte_len()];
                gl.read_pixels(&target, &mut got).expect("read");
                let mut want = vec![0u8; got.len()];
                content.fill(&mut want);
                assert!(got == want);
            }
        }
    }

    /// Reads `export`'s plane 0 through an mmap of its fd and returns tightly packed rows.
    fn read_through_mmap(export: &DmabufExport) -> Vec<u8> {
        let plane = &export.planes[0];
        let size = triptych_sys::fd::seek_size(plane.fd.as_fd()).expect("dma-buf size");
        assert!(
            size >= export.min_size(),
            "dma-buf of {size} bytes < {} needed",
            export.min_size()
        );
        let len = usize::try_from(export.min_size()).expect("size fits");
        let map = triptych_sys::mapping::Mapping::new(
            plane.fd.as_fd(),
            len,
            triptych_sys::mapping::Access::Read,
        )
        .expect("mmap dma-buf");
        // Bracket the CPU reads with DMA_BUF_IOCTL_SYNC, as the renderer does.
        let access = triptych_sys::dma_buf::CpuAccess::begin(
            plane.fd.as_fd(),
            triptych_sys::dma_buf::SyncAccess::Read,
        )
        .expect("DMA_BUF_IOCTL_SYNC start");
        let bytes = map.as_slice();
        let row = export.width as usize * 4;
        let mut out = Vec::with_capacity(row * export.height as usize);
        for y in 0..export.height as usize {
            let start = plane.offset as usize + y * plane.stride as usize;
            out.extend_from_slice(&bytes[start..start + row]);
        }
        access.end().expect("DMA_BUF_IOCTL_SYNC end");
        out
    }

    fn check(got: &[u8], want: &[u8], width: u32, what: &str) {
        if let Some(i) = got
            .chunks_exact(4)
            .zip(want.chunks_exact(4))
            .position(|(g, w)| g != w)
        {
            let (x, y) = (i as u32 % width, i as u32 / width);
            panic!(
                "{what}: dma-buf pixel ({x}, {y}) is {:?}, the scene says {:?}",
                &got[i * 4..i * 4 + 4],
                &want[i * 4..i * 4 + 4]
            );
        }
        assert_eq!(got.len(), want.len(), "{what}: length");
    }

    fn wait_for_gpu(gl: &mut GlContext) {
        if gl.info().android_native_fence_sync {
            let fence = gl.native_fence().expect("native fence");
            let outcome = fence
                .wait(Duration::from_secs(10))
                .expect("wait on sync_file");
            assert_eq!(
                outcome,
                WaitOutcome::Ready,
                "sync_file did not signal in 10 s"
            );
        } else {
            gl.finish().expect("glFinish");
        }
    }

    /// Renders into a texture, exports it as a real dma-buf, maps the fd and compares every pixel
    /// with the scene; then re-renders into the same texture and checks the same fd shows the new
    /// frame. Skips without a DRM node and export-capable EGL (fails instead under
    /// `TRIPTYCH_REQUIRE_DMABUF=1`).
    #[test]
    fn exported_dmabuf_holds_the_rendered_pixels() {
        let Some(mut gl) = exporting_context() else {
            return;
        };
        let info = gl.info().clone();
        eprintln!(
            "dma-buf context: {} on {:?} (driver {:?}), EGL {} {}, GL {} / {} / {}, native fence: {}, import: {}/{}",
            info.platform,
            info.drm_node.as_deref().map(Path::display),
            info.driver_name,
            info.egl_vendor,
            info.egl_version,
            info.gl_vendor,
            info.gl_renderer,
            info.gl_version,
            info.android_native_fence_sync,
            info.ext_image_dma_buf_import,
            info.ext_image_dma_buf_import_modifiers,
        );
        eprintln!("display extensions: {}", info.display_extensions.join(" "));
        for &(fw, fh, layer) in &[(33u32, 17u32, 0u32), (320, 240, 1), (1920, 1080, 0)] {
            let first = layer_content(5, layer, fw, fh);
            let target = gl
                .create_exportable_target(first.width, first.height)
                .unwrap_or_else(|e| panic!("exportable target: {e}"));
            assert!(target.is_dmabuf_backed());
            gl.draw(&target, &first).expect("draw");
            let export = gl
                .export_dmabuf(&target)
                .unwrap_or_else(|e| panic!("export failed: {e}"));
            eprintln!(
                "{}x{}: fourcc {:#010x} modifier {:#018x} (EGL reported {:#018x}) planes {} stride {} offset {} size {}",
                export.width,
                export.height,
                export.fourcc,
                export.modifier,
                export.egl_modifier,
                export.planes.len(),
                export.planes[0].stride,
                export.planes[0].offset,
                triptych_sys::fd::seek_size(export.planes[0].fd.as_fd()).expect("size"),
            );
            assert_eq!(export.fourcc, DRM_FORMAT_ABGR8888);
            assert_eq!(export.modifier, DRM_FORMAT_MOD_LINEAR);
            assert!(triptych_sys::fd::is_cloexec(&export.planes[0].fd).expect("F_GETFD"));
            assert!(
                triptych_sys::dma_buf::is_dma_buf(export.planes[0].fd.as_fd()).expect("fstatfs"),
                "the exported fd is not on the dmabuf file system"
            );
            wait_for_gpu(&mut gl);
            let mut want = vec![0u8; target.byte_len()];
            first.fill(&mut want);
            check(
                &read_through_mmap(&export),
                &want,
                export.width,
                "first frame",
            );

            // Later frames land in the same buffer; a second export is the same dma-buf.
            for frame in [6u64, 77] {
                let next = layer_content(frame, layer, fw, fh);
                let t0 = std::time::Instant::now();
                gl.draw(&target, &next).expect("draw");
                wait_for_gpu(&mut gl);
                let drawn = t0.elapsed();
                next.fill(&mut want);
                let t1 = std::time::Instant::now();
                let got = read_through_mmap(&export);
                eprintln!(
                    "{fw}x{fh} frame {frame}: draw+wait {drawn:?}, mmap+copy out {:?}",
                    t1.elapsed()
                );
                check(
                    &got,
                    &want,
                    export.width,
                    &format!("frame {frame} (re-render)"),
                );
            }
            let again = gl.export_dmabuf(&target).expect("second export");
            assert_eq!(
                triptych_sys::fd::identity(again.planes[0].fd.as_fd()).expect("fstat"),
                triptych_sys::fd::identity(export.planes[0].fd.as_fd()).expect("fstat"),
                "re-export must name the same dma-buf"
            );
            // The buffer outlives the texture: drop the target, the fd still maps the last frame.
            drop(target);
            check(
                &read_through_mmap(&export),
                &want,
                export.width,
                "after the texture was deleted",
            );
        }
    }
}
