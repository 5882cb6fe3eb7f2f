//! Native fences: a sync_file fd that signals when GL has finished the commands before it
//! ([`EGL_ANDROID_native_fence_sync`]).
//!
//! # Sequence
//!
//! 1. `eglCreateSyncKHR(display, EGL_SYNC_NATIVE_FENCE_ANDROID, {EGL_NONE})` inserts a fence
//!    command into the current context's command stream.
//! 2. `glFlush` submits it: the extension creates the native fence only when the fence command
//!    is flushed, and `eglDupNativeFenceFDANDROID` fails before that.
//! 3. `eglDupNativeFenceFDANDROID` returns a new sync_file fd ([kernel sync_file docs]), owned by
//!    the caller and made close-on-exec here; the `EGLSync` is then destroyed, which does not
//!    affect the fd.
//! 4. The fd travels to the renderer with the buffer; it becomes readable (`POLLIN`) when the
//!    GPU work completes.
//!
//! Where the display does not offer the extension (llvmpipe on the device platform without a DRM
//! node, for one), [`GlContext::native_fence`] returns [`GlError::ExtensionMissing`] naming it;
//! the caller then waits on a [`super::GlFence`] itself and signals a CPU fence instead.
//!
//! [`EGL_ANDROID_native_fence_sync`]: https://registry.khronos.org/EGL/extensions/ANDROID/EGL_ANDROID_native_fence_sync.txt
//! [kernel sync_file docs]: https://docs.kernel.org/driver-api/sync_file.html

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::{GlContext, GlError, WaitOutcome};

/// A sync_file fd that signals when the GL commands issued before it completed.
#[must_use = "a fence must be passed on or waited on, or the reader may see an unfinished frame"]
#[derive(Debug)]
pub struct NativeFence {
    fd: OwnedFd,
}

impl NativeFence {
    /// The sync_file fd.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The sync_file fd, to pass to another process.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Waits until the fence signals (the fd is readable) or `timeout` passes.
    pub fn wait(&self, timeout: Duration) -> Result<WaitOutcome, GlError> {
        Ok(triptych_sys::poll::wait_readable(self.fd.as_fd(), timeout)?)
    }
}

impl GlContext {
    /// Inserts a native fence after the commands issued so far, flushes, and returns its
    /// sync_file fd (see the module docs for the sequence).
    pub fn native_fence(&mut self) -> Result<NativeFence, GlError> {
        let shared = self.shared();
        for extension in ["EGL_KHR_fence_sync", "EGL_ANDROID_native_fence_sync"] {
            if !shared.info.has_display_extension(extension) {
                return Err(GlError::ExtensionMissing {
                    extension,
                    needed_for: "a sync_file fence for a rendered frame",
                    platform: shared.info.platform,
                });
            }
        }
        shared.make_current()?;
        let sync = shared.egl.create_native_fence_sync()?;
        let fd = shared
            .flush()
            .and_then(|()| shared.egl.dup_native_fence_fd(&sync));
        shared.egl.destroy_sync(sync);
        Ok(NativeFence { fd: fd? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gl::PlatformRequest;
    use triptych_scene::layer_content;

    /// On a display with native fences the fd is a close-on-exec sync_file that signals after
    /// the draw; without them the error names the extension.
    #[test]
    fn native_fence_signals_or_names_the_missing_extension() {
        let mut gl =
            GlContext::new(PlatformRequest::Auto).unwrap_or_else(|e| panic!("GL context: {e}"));
        let content = layer_content(2, 0, 512, 512);
        let target = gl.create_target(512, 512).expect("target");
        gl.draw(&target, &content).expect("draw");
        if !gl.info().android_native_fence_sync {
            let err = gl.native_fence().expect_err("extension is absent");
            assert!(
                err.to_string().contains("EGL_ANDROID_native_fence_sync"),
                "{err}"
            );
            return;
        }
        let fence = gl.native_fence().expect("native fence");
        assert!(triptych_sys::fd::is_cloexec(fence.as_fd()).expect("F_GETFD"));
        assert_eq!(
            fence.wait(Duration::from_secs(10)).expect("poll"),
            WaitOutcome::Ready
        );
        let mut got = vec![0u8; target.byte_len()];
        gl.read_pixels(&target, &mut got).expect("read");
        let mut want = vec![0u8; got.len()];
        content.fill(&mut want);
        assert!(got == want);
    }
}
