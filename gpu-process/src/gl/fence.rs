//! Fences: a GL sync object this process waits on itself ([`GlFence`]), and a native fence, a
//! sync_file fd that signals when GL has finished the commands before it
//! ([`EGL_ANDROID_native_fence_sync`], [`NativeFence`]), which travels to the renderer with the
//! buffer. Both are `#[must_use]`, and every wait has a deadline and an explicit outcome
//! ([`WaitOutcome`]).
//!
//! # GL sync objects
//!
//! [`GlContext::fence`] inserts a [`glFenceSync`] after the commands issued so far;
//! [`GlFence::wait`] flushes and waits with `glClientWaitSync` until the deadline. The sync object
//! belongs to the context, and the fence deletes it in `Drop`.
//!
//! # Native fences
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
//! the caller then waits on a [`GlFence`] itself and signals a CPU fence instead.
//!
//! [`EGL_ANDROID_native_fence_sync`]: https://registry.khronos.org/EGL/extensions/ANDROID/EGL_ANDROID_native_fence_sync.txt
//! [`glFenceSync`]: https://registry.khronos.org/OpenGL-Refpages/es3.0/html/glFenceSync.xhtml

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glow::HasContext;

use super::context::{GlContext, Shared};
use super::error::GlError;

/// How a wait on a fence ended (`Ready`: everything before the fence has completed): the one
/// wait outcome of the project, from the OS layer.
pub use triptych_sys::poll::WaitOutcome;

/// A GL sync object (`glFenceSync`) that signals when every GL command issued before it has
/// completed. Deleted when dropped.
#[must_use = "a fence is only useful if waited on"]
pub struct GlFence {
    shared: Rc<Shared>,
    sync: glow::NativeFence,
}

impl fmt::Debug for GlFence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlFence")
            .field("sync", &self.sync.0)
            .finish()
    }
}

impl GlFence {
    /// Waits until the fence signals or `deadline` passes (`glClientWaitSync`, flushing first).
    pub fn wait(&self, deadline: Instant) -> Result<WaitOutcome, GlError> {
        self.shared.make_current()?;
        let mut flags = glow::SYNC_FLUSH_COMMANDS_BIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // glow takes the timeout as i32 nanoseconds (GLuint64 in GL); wait in slices of at
            // most i32::MAX ns (~2.1 s) until the deadline.
            let slice = i32::try_from(left.as_nanos()).unwrap_or(i32::MAX);
            // SAFETY: this context is current (above); `sync` was created by it and is deleted
            // only in Drop, so it is a valid sync name; flags is 0 or SYNC_FLUSH_COMMANDS_BIT.
            let status = unsafe { self.shared.gl.client_wait_sync(self.sync, flags, slice) };
            flags = 0;
            match status {
                glow::ALREADY_SIGNALED | glow::CONDITION_SATISFIED => {
                    return Ok(WaitOutcome::Ready)
                }
                glow::TIMEOUT_EXPIRED if Instant::now() >= deadline => {
                    return Ok(WaitOutcome::TimedOut)
                }
                glow::TIMEOUT_EXPIRED => continue,
                _ => {
                    self.shared.check("glClientWaitSync")?;
                    return Err(GlError::Gl {
                        call: "glClientWaitSync (WAIT_FAILED)",
                        code: status,
                    });
                }
            }
        }
    }

    /// Whether the fence has signalled, without waiting.
    pub fn is_signaled(&self) -> Result<bool, GlError> {
        self.wait(Instant::now()).map(|o| o == WaitOutcome::Ready)
    }
}

impl Drop for GlFence {
    fn drop(&mut self) {
        if let Err(error) = self.shared.make_current() {
            tracing::warn!(%error, "GL sync object leaked: context not current");
            return;
        }
        // SAFETY: this context is current; `sync` was created by it and is deleted only here.
        unsafe { self.shared.gl.delete_sync(self.sync) };
    }
}

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
    /// Inserts a GL sync object after the commands issued so far (`glFenceSync`).
    pub fn fence(&mut self) -> Result<GlFence, GlError> {
        self.shared.make_current()?;
        // SAFETY: context current; SYNC_GPU_COMMANDS_COMPLETE with flags 0 is the only valid
        // combination in ES 3.0.
        let sync = unsafe {
            self.shared
                .gl
                .fence_sync(glow::SYNC_GPU_COMMANDS_COMPLETE, 0)
        }
        .map_err(|message| GlError::CreateObject {
            object: "sync object",
            message,
        })?;
        Ok(GlFence {
            shared: Rc::clone(&self.shared),
            sync,
        })
    }

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

    #[test]
    fn gl_fence_signals_after_draw() {
        let mut gl =
            GlContext::new(PlatformRequest::Auto).unwrap_or_else(|e| panic!("GL context: {e}"));
        let content = layer_content(1, 0, 256, 256);
        let target = gl.create_target(256, 256).expect("target");
        gl.draw(&target, &content).expect("draw");
        let fence = gl.fence().expect("fence");
        assert_eq!(
            fence
                .wait(Instant::now() + Duration::from_secs(10))
                .expect("wait"),
            WaitOutcome::Ready
        );
        assert!(fence.is_signaled().expect("status"));
    }
}
