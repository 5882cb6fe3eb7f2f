//! Layer targets: a layer's RGBA8 texture and the framebuffer that draws into it.
//!
//! Three kinds are made here:
//! - [`GlContext::create_target`]: storage that belongs to the driver, read back with
//!   [`GlContext::read_pixels`];
//! - [`GlContext::upload_target`]: the same, holding pixels uploaded from memory (the source of
//!   [`GlContext::copy_in`]);
//! - [`GlContext::create_exportable_target`]: storage that is a linear `DRM_FORMAT_ABGR8888`
//!   dma-buf, allocated with GBM on the context's DRM device and imported as an `EGLImage`
//!   ([`EGL_EXT_image_dma_buf_import`]) bound to the texture ([`GL_OES_EGL_image`]), so that
//!   [`GlContext::export_dmabuf`] can always share it.
//!
//! # Ownership
//!
//! A [`LayerTarget`] holds the context's shared state, and deletes its framebuffer and texture in
//! `Drop` after making the context current. It keeps the texture's `EGLImage` (the imported
//! dma-buf, or the one made on the first export) and destroys it first; the GBM buffer behind an
//! exportable target is released last. The GBM device the buffers come from is opened on the
//! first exportable target and kept by the context.
//!
//! [`EGL_EXT_image_dma_buf_import`]: https://registry.khronos.org/EGL/extensions/EXT/EGL_EXT_image_dma_buf_import.txt
//! [`GL_OES_EGL_image`]: https://registry.khronos.org/OpenGL/extensions/OES/OES_EGL_image.txt

use std::cell::OnceCell;
use std::fmt;
use std::rc::Rc;

use glow::HasContext;
use ipc_protocol::frame::{DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_INVALID};

use super::context::{GlContext, Shared};
use super::error::GlError;
use super::ffi::gbm::{GbmBuffer, GbmDevice};
use super::ffi::image::{DmabufPlane, EglImage};

/// A layer's RGBA8 texture and the framebuffer that draws into it.
pub struct LayerTarget {
    pub(super) shared: Rc<Shared>,
    pub(super) texture: glow::NativeTexture,
    pub(super) framebuffer: Option<glow::NativeFramebuffer>,
    pub(super) width: u32,
    pub(super) height: u32,
    /// The `EGLImage` of `texture`: for an exportable target, the imported dma-buf that is the
    /// texture's storage; otherwise made from the texture on the first export and kept so the
    /// texture is wrapped once.
    pub(super) image: OnceCell<EglImage>,
    /// The GBM buffer behind an exportable target; released after the texture (field order and
    /// `Drop`).
    backing: Option<GbmBuffer>,
}

impl fmt::Debug for LayerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerTarget")
            .field("texture", &self.texture.0)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("exported", &self.image.get().is_some())
            .field("dmabuf_backed", &self.backing.is_some())
            .finish()
    }
}

impl LayerTarget {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes of a tightly packed RGBA8 copy: `width * height * 4`.
    pub fn byte_len(&self) -> usize {
        self.width as usize * self.height as usize * 4
    }

    pub(super) fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }

    /// The framebuffer that draws into the texture.
    pub(super) fn framebuffer(&self) -> Option<glow::NativeFramebuffer> {
        self.framebuffer
    }

    /// Whether the texture's storage is a dma-buf this module allocated
    /// ([`GlContext::create_exportable_target`]).
    pub fn is_dmabuf_backed(&self) -> bool {
        self.backing.is_some()
    }
}

impl Drop for LayerTarget {
    fn drop(&mut self) {
        if let Some(image) = self.image.take() {
            self.shared.egl.destroy_image(image);
        }
        if let Err(error) = self.shared.make_current() {
            tracing::warn!(%error, texture = self.texture.0, "layer target leaked: context not current");
            return;
        }
        // SAFETY: this context is current; the texture and framebuffer were created by it in
        // `create_target` and are deleted only here.
        unsafe {
            if let Some(fb) = self.framebuffer {
                self.shared.gl.delete_framebuffer(fb);
            }
            self.shared.gl.delete_texture(self.texture);
        }
    }
}

impl Shared {
    /// Allocates a linear ABGR8888 buffer on this context's DRM device with GBM.
    ///
    /// Nodes tried: for `kms_swrast` the primary node first (its buffers are DRM dumb buffers,
    /// which the kernel allows only on primary nodes), else the render node first.
    fn allocate_linear(&self, width: u32, height: u32) -> Result<GbmBuffer, GlError> {
        let fourcc = DRM_FORMAT_ABGR8888;
        if let Some(device) = self.allocator.borrow().as_ref() {
            return device
                .create_linear_buffer(width, height, fourcc)
                .map_err(|e| GlError::Allocate {
                    width,
                    height,
                    attempts: vec![e],
                });
        }
        let info = &self.info;
        let mut nodes = vec![info.drm_node.clone(), info.drm_primary_node.clone()];
        if info.driver_name.as_deref() == Some("kms_swrast") {
            nodes.reverse();
        }
        let mut attempts = Vec::new();
        for node in nodes.into_iter().flatten() {
            let made = GbmDevice::open(&node).map(Rc::new).and_then(|device| {
                let buffer = device.create_linear_buffer(width, height, fourcc)?;
                Ok((device, buffer))
            });
            match made {
                Ok((device, buffer)) => {
                    tracing::debug!(node = %node.display(), "GBM allocator opened");
                    *self.allocator.borrow_mut() = Some(device);
                    return Ok(buffer);
                }
                Err(e) => attempts.push(format!("{}: {e}", node.display())),
            }
        }
        if attempts.is_empty() {
            attempts.push(format!(
                "the {} has no DRM node to allocate on",
                info.platform
            ));
        }
        Err(GlError::Allocate {
            width,
            height,
            attempts,
        })
    }
}

impl GlContext {
    /// Creates a `width` x `height` RGBA8 texture (one level, immutable storage) and a
    /// framebuffer with it as colour attachment 0.
    ///
    /// Its storage belongs to the driver: read it back with [`GlContext::read_pixels`]. Whether
    /// [`GlContext::export_dmabuf`] can share it depends on the driver; use
    /// [`GlContext::create_exportable_target`] for a target that is meant to be exported.
    pub fn create_target(&mut self, width: u32, height: u32) -> Result<LayerTarget, GlError> {
        let (w, h) = self.check_size(width, height)?;
        let mut target = self.new_target(width, height)?;
        let gl = &self.shared.gl;
        // SAFETY: context current (`new_target` made it so); `target.texture` is a fresh name of
        // this context; 1 level of RGBA8 with 1 <= w, h <= GL_MAX_TEXTURE_SIZE (`check_size`) is
        // a valid glTexStorage2D. Nearest filtering with one level makes the texture complete,
        // which EGLImage creation from it requires. The binding is restored to 0.
        unsafe {
            gl.bind_texture(glow::TEXTURE_2D, Some(target.texture));
            gl.tex_storage_2d(glow::TEXTURE_2D, 1, glow::RGBA8, w, h);
            gl.tex_parameter_i32(
                glow::TEXTURE_2D,
                glow::TEXTURE_MIN_FILTER,
                glow::NEAREST as i32,
            );
            gl.tex_parameter_i32(
                glow::TEXTURE_2D,
                glow::TEXTURE_MAG_FILTER,
                glow::NEAREST as i32,
            );
            gl.bind_texture(glow::TEXTURE_2D, None);
        }
        self.shared.check("glTexStorage2D(RGBA8)")?;
        self.attach_framebuffer(&mut target)?;
        tracing::debug!(
            texture = target.texture.0,
            width,
            height,
            "layer target created"
        );
        Ok(target)
    }

    /// A [`GlContext::create_target`] holding `pixels` (premultiplied RGBA8, rows top-down,
    /// tightly packed, `width * height * 4` bytes): the source of [`GlContext::copy_in`]. Row 0
    /// of `pixels` is GL's window y 0, the scene's row 0, as for every target.
    pub fn upload_target(
        &mut self,
        width: u32,
        height: u32,
        pixels: &[u8],
    ) -> Result<LayerTarget, GlError> {
        let (w, h) = self.check_size(width, height)?;
        let needed = width as usize * height as usize * 4;
        if pixels.len() != needed {
            return Err(GlError::BufferSize {
                got: pixels.len(),
                needed,
                width,
                height,
            });
        }
        let target = self.create_target(width, height)?;
        self.shared.make_current()?;
        let gl = &self.shared.gl;
        // SAFETY: context current; `target.texture` is a live name of this context with
        // immutable storage of one level of `w` x `h` RGBA8 (`create_target`). No buffer is
        // bound to PIXEL_UNPACK_BUFFER, so the data is client memory: with alignment 4 (rows
        // are `4 * w` bytes), no row length or skips, glTexSubImage2D of RGBA/UNSIGNED_BYTE
        // over the whole level reads exactly `w * h * 4` bytes, which is `pixels.len()`
        // (checked above). The binding is restored to 0.
        unsafe {
            gl.bind_texture(glow::TEXTURE_2D, Some(target.texture));
            gl.bind_buffer(glow::PIXEL_UNPACK_BUFFER, None);
            gl.pixel_store_i32(glow::UNPACK_ALIGNMENT, 4);
            gl.pixel_store_i32(glow::UNPACK_ROW_LENGTH, 0);
            gl.pixel_store_i32(glow::UNPACK_SKIP_PIXELS, 0);
            gl.pixel_store_i32(glow::UNPACK_SKIP_ROWS, 0);
            gl.tex_sub_image_2d(
                glow::TEXTURE_2D,
                0,
                0,
                0,
                w,
                h,
                glow::RGBA,
                glow::UNSIGNED_BYTE,
                glow::PixelUnpackData::Slice(Some(pixels)),
            );
            gl.bind_texture(glow::TEXTURE_2D, None);
        }
        self.shared.check("glTexSubImage2D(uploaded target)")?;
        Ok(target)
    }

    /// Creates a layer target whose texture's storage is a linear `DRM_FORMAT_ABGR8888` dma-buf,
    /// so that [`GlContext::export_dmabuf`] can always share it.
    ///
    /// The buffer is allocated with GBM (`GBM_BO_USE_RENDERING | GBM_BO_USE_LINEAR`) on the
    /// context's DRM device, imported as an `EGLImage` ([`EGL_EXT_image_dma_buf_import`]) and
    /// bound to a new texture with `glEGLImageTargetTexture2DOES` ([`GL_OES_EGL_image`]). That
    /// import is the one way Mesa's `kms_swrast` (llvmpipe on a DRM node, what vgem gives)
    /// renders into memory it can share: llvmpipe before Mesa 24.0 cannot export the storage of
    /// a texture it allocated itself.
    ///
    /// Needs a context on a DRM device ([`EglInfo::drm_node`]), `EGL_EXT_image_dma_buf_import`
    /// and `GL_OES_EGL_image`; each missing piece is a named error.
    ///
    /// [`EglInfo::drm_node`]: super::EglInfo::drm_node
    /// [`EGL_EXT_image_dma_buf_import`]: https://registry.khronos.org/EGL/extensions/EXT/EGL_EXT_image_dma_buf_import.txt
    /// [`GL_OES_EGL_image`]: https://registry.khronos.org/OpenGL/extensions/OES/OES_EGL_image.txt
    pub fn create_exportable_target(
        &mut self,
        width: u32,
        height: u32,
    ) -> Result<LayerTarget, GlError> {
        self.check_size(width, height)?;
        let info = &self.shared.info;
        let needed_for = "an exportable (dma-buf backed) layer target";
        if !info.ext_image_dma_buf_import {
            return Err(GlError::ExtensionMissing {
                extension: "EGL_EXT_image_dma_buf_import",
                needed_for,
                platform: info.platform,
            });
        }
        if !self
            .shared
            .gl
            .supported_extensions()
            .contains("GL_OES_EGL_image")
        {
            return Err(GlError::ExtensionMissing {
                extension: "GL_OES_EGL_image",
                needed_for,
                platform: info.platform,
            });
        }
        let buffer = self.shared.allocate_linear(width, height)?;
        let fd = buffer.fd().ok_or(GlError::Allocate {
            width,
            height,
            attempts: vec!["the GBM buffer has no dma-buf fd".to_owned()],
        })?;
        // The modifier is passed only when GBM tracked one and EGL accepts modifiers; otherwise
        // the import takes the layout GBM chose, which GBM_BO_USE_LINEAR made linear.
        let modifier = (info.ext_image_dma_buf_import_modifiers
            && buffer.modifier != DRM_FORMAT_MOD_INVALID)
            .then_some(buffer.modifier);
        let image = self.shared.egl.import_dmabuf(&DmabufPlane {
            fd,
            width,
            height,
            fourcc: DRM_FORMAT_ABGR8888,
            offset: buffer.offset,
            stride: buffer.stride,
            modifier,
        })?;
        let (stride, offset, gbm_modifier) = (buffer.stride, buffer.offset, buffer.modifier);
        let mut target = match self.new_target(width, height) {
            Ok(t) => t,
            Err(e) => {
                self.shared.egl.destroy_image(image);
                return Err(e);
            }
        };
        target.backing = Some(buffer);
        let image = target.image.get_or_init(|| image);
        let gl = &self.shared.gl;
        // SAFETY: context current (`new_target`); `target.texture` is a fresh name of this
        // context, bound here and unbound below; glTexParameteri with NEAREST is always valid.
        unsafe { gl.bind_texture(glow::TEXTURE_2D, Some(target.texture)) };
        let bound = self.shared.egl.target_texture_2d(image);
        // SAFETY: as above.
        unsafe {
            gl.tex_parameter_i32(
                glow::TEXTURE_2D,
                glow::TEXTURE_MIN_FILTER,
                glow::NEAREST as i32,
            );
            gl.tex_parameter_i32(
                glow::TEXTURE_2D,
                glow::TEXTURE_MAG_FILTER,
                glow::NEAREST as i32,
            );
            gl.bind_texture(glow::TEXTURE_2D, None);
        }
        bound?;
        self.shared.check("glEGLImageTargetTexture2DOES")?;
        self.attach_framebuffer(&mut target)?;
        self.probe_mappable(&target)?;
        tracing::debug!(
            texture = target.texture.0,
            width,
            height,
            stride,
            offset,
            gbm_modifier = format_args!("{gbm_modifier:#018x}"),
            "exportable layer target created"
        );
        Ok(target)
    }

    /// Reads one texel of a freshly imported target to prove the driver can map its storage.
    ///
    /// A driver that imported the dma-buf but cannot map it fails here with a GL error
    /// (`kms_swrast` on a render node reports GL_OUT_OF_MEMORY, because the kernel refuses
    /// `DRM_IOCTL_MODE_MAP_DUMB` there); drawing into such a target would make llvmpipe's
    /// rasteriser write through a null mapping, so it must never be handed out.
    fn probe_mappable(&mut self, target: &LayerTarget) -> Result<(), GlError> {
        let gl = &self.shared.gl;
        let mut texel = [0u8; 4];
        // SAFETY: context current (the caller just used it); the framebuffer is a live,
        // complete name of this context; no PIXEL_PACK_BUFFER is bound, so the pointer is client
        // memory, and a 1x1 RGBA/UNSIGNED_BYTE read with the pack state set here writes exactly
        // the 4 bytes of `texel`.
        unsafe {
            gl.bind_framebuffer(glow::READ_FRAMEBUFFER, target.framebuffer);
            gl.bind_buffer(glow::PIXEL_PACK_BUFFER, None);
            gl.pixel_store_i32(glow::PACK_ALIGNMENT, 4);
            gl.pixel_store_i32(glow::PACK_ROW_LENGTH, 0);
            gl.pixel_store_i32(glow::PACK_SKIP_PIXELS, 0);
            gl.pixel_store_i32(glow::PACK_SKIP_ROWS, 0);
            gl.read_pixels(
                0,
                0,
                1,
                1,
                glow::RGBA,
                glow::UNSIGNED_BYTE,
                glow::PixelPackData::Slice(Some(&mut texel)),
            );
            gl.bind_framebuffer(glow::READ_FRAMEBUFFER, None);
        }
        match self
            .shared
            .check("glReadPixels(1x1) of the imported dma-buf")
        {
            Ok(()) => Ok(()),
            Err(GlError::Gl { code, .. }) => Err(GlError::ImportUnusable {
                code,
                driver: self.shared.info.driver_name.clone(),
                platform: self.shared.info.platform,
                node: self.shared.info.drm_node.clone(),
            }),
            Err(e) => Err(e),
        }
    }

    /// Checks a target size against GL's limits; returns it as GL's integer type.
    fn check_size(&self, width: u32, height: u32) -> Result<(i32, i32), GlError> {
        let max = self.shared.info.max_texture_size;
        match (i32::try_from(width), i32::try_from(height)) {
            (Ok(w), Ok(h)) if width > 0 && height > 0 && width <= max && height <= max => {
                Ok((w, h))
            }
            _ => Err(GlError::BadSize { width, height, max }),
        }
    }

    /// A target holding a fresh texture name and nothing else yet; its Drop deletes whatever
    /// the caller adds if a later step fails. Leaves this context current.
    fn new_target(&mut self, width: u32, height: u32) -> Result<LayerTarget, GlError> {
        self.shared.make_current()?;
        // SAFETY: this context is current (above); glGenTextures has no other precondition.
        let texture = unsafe { self.shared.gl.create_texture() }.map_err(|message| {
            GlError::CreateObject {
                object: "texture",
                message,
            }
        })?;
        Ok(LayerTarget {
            shared: Rc::clone(&self.shared),
            texture,
            framebuffer: None,
            width,
            height,
            image: OnceCell::new(),
            backing: None,
        })
    }

    /// Creates `target`'s framebuffer with its texture as colour attachment 0 and checks it is
    /// complete.
    fn attach_framebuffer(&mut self, target: &mut LayerTarget) -> Result<(), GlError> {
        self.shared.make_current()?;
        let gl = &self.shared.gl;
        // SAFETY: context current; glGenFramebuffers has no other precondition.
        let framebuffer =
            unsafe { gl.create_framebuffer() }.map_err(|message| GlError::CreateObject {
                object: "framebuffer",
                message,
            })?;
        target.framebuffer = Some(framebuffer);
        // SAFETY: context current; `framebuffer` and `target.texture` are live names of this
        // context and the texture has storage for level 0. The binding is restored to 0.
        let status = unsafe {
            gl.bind_framebuffer(glow::FRAMEBUFFER, Some(framebuffer));
            gl.framebuffer_texture_2d(
                glow::FRAMEBUFFER,
                glow::COLOR_ATTACHMENT0,
                glow::TEXTURE_2D,
                Some(target.texture),
                0,
            );
            let status = gl.check_framebuffer_status(glow::FRAMEBUFFER);
            gl.bind_framebuffer(glow::FRAMEBUFFER, None);
            status
        };
        self.shared.check("glFramebufferTexture2D")?;
        if status != glow::FRAMEBUFFER_COMPLETE {
            return Err(GlError::IncompleteFramebuffer {
                width: target.width,
                height: target.height,
                status,
            });
        }
        Ok(())
    }
}
