//! The DMA-BUF backend: GL textures exported as DMA-BUFs, with sync_file fences.

use super::ExportError;
use crate::gl::GlContext;

/// Per-buffer state of the DMA-BUF backend.
#[derive(Debug)]
pub struct DmabufBacking;

/// A vgem fence to signal.
#[derive(Debug)]
pub struct VgemFence;

/// The DMA-BUF backend.
#[derive(Debug)]
pub struct DmabufExporter;

impl DmabufExporter {
    /// Checks that DMA-BUF export can work on `gl`'s display.
    pub fn new(gl: &mut GlContext) -> Result<Self, ExportError> {
        let info = gl.info();
        if !info.has_display_extension("EGL_MESA_image_dma_buf_export") {
            return Err(ExportError::Unavailable(format!(
                "the EGL display ({}) does not offer EGL_MESA_image_dma_buf_export",
                info.platform
            )));
        }
        Err(ExportError::Unavailable("DMA-BUF export is not wired yet".into()))
    }
}
