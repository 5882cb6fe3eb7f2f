//! Native fence syncs ([`EGL_ANDROID_native_fence_sync`] over [`EGL_KHR_fence_sync`]): a fence
//! command in the current context's command stream, and the sync_file fd it becomes once
//! flushed. The fence module (`fence.rs`) puts the steps in order; the calls are here.
//!
//! [`EGL_ANDROID_native_fence_sync`]: https://registry.khronos.org/EGL/extensions/ANDROID/EGL_ANDROID_native_fence_sync.txt
//! [`EGL_KHR_fence_sync`]: https://registry.khronos.org/EGL/extensions/KHR/EGL_KHR_fence_sync.txt

use std::os::fd::OwnedFd;

use glutin_egl_sys::egl;
use glutin_egl_sys::egl::types::EGLSyncKHR;

use super::loader::{attr, Tables};
use super::{ensure_cloexec, EglHandles};
use crate::gl::error::{error_name, GlError};

/// An `EGLSyncKHR`; hand it back to [`EglHandles::destroy_sync`].
#[derive(Debug)]
pub(crate) struct EglSync(EGLSyncKHR);

impl EglHandles {
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
