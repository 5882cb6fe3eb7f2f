//! `EGLImage`s: one made from a GL texture ([`EGL_KHR_image_base`],
//! [`EGL_KHR_gl_texture_2D_image`]), one over an existing dma-buf
//! ([`EGL_EXT_image_dma_buf_import`], [`EGL_EXT_image_dma_buf_import_modifiers`]), binding an image
//! to a texture as its storage (`glEGLImageTargetTexture2DOES`, [`GL_OES_EGL_image`]), and
//! exporting an image as dma-buf fds ([`EGL_MESA_image_dma_buf_export`]).
//!
//! The import is how an exportable layer target gets its storage (`targets.rs`); the export is
//! the first step of sharing a texture (`dmabuf_export.rs`). The import's attribute names are not
//! among the tokens glutin_egl_sys generates, nor are the export and bind functions in its table:
//! the tokens are written out here with their `EGL/eglext.h` values (pinned by a test), the
//! functions come from [`super::loader`]'s hand-resolved entry points.
//!
//! [`EGL_KHR_image_base`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_image_base.txt
//! [`EGL_KHR_gl_texture_2D_image`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_gl_image.txt
//! [`EGL_EXT_image_dma_buf_import`]: https://registry.khronos.org/EGL/extensions/EXT/EGL_EXT_image_dma_buf_import.txt
//! [`EGL_EXT_image_dma_buf_import_modifiers`]: https://registry.khronos.org/EGL/extensions/EXT/EGL_EXT_image_dma_buf_import_modifiers.txt
//! [`GL_OES_EGL_image`]: https://registry.khronos.org/OpenGL/extensions/OES/OES_EGL_image.txt
//! [`EGL_MESA_image_dma_buf_export`]: https://registry.khronos.org/EGL/extensions/MESA/EGL_MESA_image_dma_buf_export.txt

use std::ffi::c_int;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::ptr;

use glutin_egl_sys::egl;
use glutin_egl_sys::egl::types::{EGLClientBuffer, EGLImageKHR, EGLenum, EGLint};
use ipc_protocol::frame::MAX_PLANES;

use super::loader::{attr, Tables};
use super::{ensure_cloexec, EglHandles};
use crate::gl::error::{error_name, GlError};

// Tokens glutin_egl_sys does not generate, with the values `EGL/eglext.h` gives them (pinned by
// a test below).
// EGL_EXT_image_dma_buf_import / EGL_EXT_image_dma_buf_import_modifiers.
const LINUX_DMA_BUF_EXT: EGLenum = 0x3270;
const LINUX_DRM_FOURCC_EXT: EGLenum = 0x3271;
const DMA_BUF_PLANE0_FD_EXT: EGLenum = 0x3272;
const DMA_BUF_PLANE0_OFFSET_EXT: EGLenum = 0x3273;
const DMA_BUF_PLANE0_PITCH_EXT: EGLenum = 0x3274;
const DMA_BUF_PLANE0_MODIFIER_LO_EXT: EGLenum = 0x3443;
const DMA_BUF_PLANE0_MODIFIER_HI_EXT: EGLenum = 0x3444;

/// An `EGLImageKHR` created by [`EglHandles::create_image_from_texture`]; hand it back to
/// [`EglHandles::destroy_image`].
#[derive(Debug)]
pub(crate) struct EglImage(EGLImageKHR);

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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokens glutin_egl_sys does not generate have the values `EGL/eglext.h` gives them, and
    /// keep them as attribute values.
    #[test]
    fn dma_buf_import_tokens_match_eglext_h() {
        assert_eq!(LINUX_DMA_BUF_EXT, 0x3270);
        assert_eq!(LINUX_DRM_FOURCC_EXT, 0x3271);
        assert_eq!(DMA_BUF_PLANE0_FD_EXT, 0x3272);
        assert_eq!(DMA_BUF_PLANE0_OFFSET_EXT, 0x3273);
        assert_eq!(DMA_BUF_PLANE0_PITCH_EXT, 0x3274);
        assert_eq!(DMA_BUF_PLANE0_MODIFIER_LO_EXT, 0x3443);
        assert_eq!(DMA_BUF_PLANE0_MODIFIER_HI_EXT, 0x3444);
        assert_eq!(attr(DMA_BUF_PLANE0_MODIFIER_HI_EXT), 0x3444);
    }
}
