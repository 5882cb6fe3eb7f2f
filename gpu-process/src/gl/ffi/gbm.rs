//! libgbm: a `gbm_device` on a DRM node (what the GBM platform's display is made on) and the
//! linear buffers exportable layer targets are made of, each exported as a dma-buf.
//!
//! libgbm is opened with `dlopen` ([`GbmDevice`]), not through the `gbm` crate, although that
//! crate covers what is used here (a device on a DRM fd, a linear buffer, its dma-buf fd, stride,
//! offset and modifier): its `gbm-sys` links libgbm (`#[link(name = "gbm")]`). The build would
//! then need the development library (`libgbm.so`, from libgbm-dev), and the binary would carry a
//! `DT_NEEDED` on `libgbm.so.1`, so on a machine without libgbm1 the dynamic loader would refuse
//! to start the GPU process at all, before it could say what is missing. Loaded here, a missing
//! libgbm is one named reason in the platform attempts and the dma-buf fallback, and every path
//! that needs no GBM (device and surfaceless platforms, the shm export) still works.
//!
//! # Lifetimes
//!
//! The library is opened once, on first use, and stays loaded for the life of the process (it
//! sits in a `static`), so the function pointers taken from it never dangle. [`GbmDevice`] owns
//! the device and its open node; a [`GbmBuffer`] holds an `Rc` of its device, so the device
//! outlives every buffer made on it. The owner of a GBM platform display terminates the display
//! before it drops the device.

use std::ffi::{c_int, c_void};
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::OnceLock;

use super::ensure_cloexec;

/// The soname Mesa installs; the unversioned name is a development symlink only.
const LIBGBM: &str = "libgbm.so.1";

// libgbm, prototypes from Mesa's `gbm.h`.
type FnGbmCreateDevice = unsafe extern "C" fn(c_int) -> *mut c_void;
type FnGbmDeviceDestroy = unsafe extern "C" fn(*mut c_void);
type FnGbmBoCreate = unsafe extern "C" fn(*mut c_void, u32, u32, u32, u32) -> *mut c_void;
type FnGbmBoDestroy = unsafe extern "C" fn(*mut c_void);
type FnGbmBoGetFd = unsafe extern "C" fn(*mut c_void) -> c_int;
type FnGbmBoGetStride = unsafe extern "C" fn(*mut c_void) -> u32;
type FnGbmBoGetOffset = unsafe extern "C" fn(*mut c_void, c_int) -> u32;
type FnGbmBoGetModifier = unsafe extern "C" fn(*mut c_void) -> u64;
type FnGbmBoGetPlaneCount = unsafe extern "C" fn(*mut c_void) -> c_int;

/// `gbm.h`: `GBM_BO_USE_RENDERING = (1 << 2)`, the buffer is a render target.
const GBM_BO_USE_RENDERING: u32 = 1 << 2;
/// `gbm.h`: `GBM_BO_USE_LINEAR = (1 << 4)`, the buffer is laid out linearly.
const GBM_BO_USE_LINEAR: u32 = 1 << 4;

/// libgbm's entry points, loaded at run time (the module docs say why not through the `gbm`
/// crate).
struct Gbm {
    _lib: libloading::Library,
    create_device: FnGbmCreateDevice,
    device_destroy: FnGbmDeviceDestroy,
    bo_create: FnGbmBoCreate,
    bo_destroy: FnGbmBoDestroy,
    bo_get_fd: FnGbmBoGetFd,
    bo_get_stride: FnGbmBoGetStride,
    bo_get_offset: FnGbmBoGetOffset,
    bo_get_modifier: FnGbmBoGetModifier,
    bo_get_plane_count: FnGbmBoGetPlaneCount,
}

static GBM: OnceLock<Result<Gbm, String>> = OnceLock::new();

fn gbm() -> Result<&'static Gbm, String> {
    GBM.get_or_init(|| {
        // SAFETY: loading libgbm runs Mesa's initialisers, which have no preconditions.
        let lib = unsafe { libloading::Library::new(LIBGBM) }
            .map_err(|e| format!("{LIBGBM} could not be loaded ({e}); install libgbm1"))?;
        macro_rules! sym {
            ($name:literal, $ty:ty) => {{
                // SAFETY: `$ty` is the prototype `gbm.h` gives for this function; the pointer is
                // copied out of its `Symbol`, which is sound because the library is stored beside
                // it in a `static` and never unloaded.
                let sym = unsafe { lib.get::<$ty>(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("{LIBGBM} has no {} ({e})", $name))?;
                *sym
            }};
        }
        Ok(Gbm {
            create_device: sym!("gbm_create_device", FnGbmCreateDevice),
            device_destroy: sym!("gbm_device_destroy", FnGbmDeviceDestroy),
            bo_create: sym!("gbm_bo_create", FnGbmBoCreate),
            bo_destroy: sym!("gbm_bo_destroy", FnGbmBoDestroy),
            bo_get_fd: sym!("gbm_bo_get_fd", FnGbmBoGetFd),
            bo_get_stride: sym!("gbm_bo_get_stride", FnGbmBoGetStride),
            bo_get_offset: sym!("gbm_bo_get_offset", FnGbmBoGetOffset),
            bo_get_modifier: sym!("gbm_bo_get_modifier", FnGbmBoGetModifier),
            bo_get_plane_count: sym!("gbm_bo_get_plane_count", FnGbmBoGetPlaneCount),
            _lib: lib,
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// A `gbm_device` on an open DRM node; the node stays open as long as the device.
pub(crate) struct GbmDevice {
    gbm: &'static Gbm,
    device: NonNull<c_void>,
    // Field order: `device` is destroyed in `Drop::drop`, before `node` is closed.
    node: File,
}

impl std::fmt::Debug for GbmDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbmDevice")
            .field("node_fd", &self.node.as_raw_fd())
            .finish_non_exhaustive()
    }
}

impl GbmDevice {
    /// Opens `node` (read-write, close-on-exec as `std` always opens) and creates a device on it.
    pub(crate) fn open(node: &Path) -> Result<Self, String> {
        let gbm = gbm()?;
        let file = File::options()
            .read(true)
            .write(true)
            .open(node)
            .map_err(|e| format!("opening {} failed: {e}", node.display()))?;
        // SAFETY: `file` is an open DRM node and stays open for the device's whole life (it is
        // stored beside it and closed only after gbm_device_destroy).
        let device = unsafe { (gbm.create_device)(file.as_raw_fd()) };
        let device = NonNull::new(device)
            .ok_or_else(|| format!("gbm_create_device on {} failed", node.display()))?;
        Ok(Self {
            gbm,
            device,
            node: file,
        })
    }

    /// The `struct gbm_device *`, for `EGL_PLATFORM_GBM_KHR`.
    pub(crate) fn as_ptr(&self) -> NonNull<c_void> {
        self.device
    }

    /// Allocates a `width` x `height` linear, renderable buffer of DRM `fourcc`
    /// (`gbm_bo_create(.., GBM_BO_USE_RENDERING | GBM_BO_USE_LINEAR)`) and exports it as a
    /// dma-buf. The buffer object keeps `self` alive.
    pub(crate) fn create_linear_buffer(
        self: &Rc<Self>,
        width: u32,
        height: u32,
        fourcc: u32,
    ) -> Result<GbmBuffer, String> {
        let gbm = self.gbm;
        // SAFETY: `self.device` is a live gbm_device (destroyed only when the last `Rc` drops,
        // and the returned buffer holds one); the other arguments are plain integers that libgbm
        // validates (NULL on failure).
        let bo = unsafe {
            (gbm.bo_create)(
                self.device.as_ptr(),
                width,
                height,
                fourcc,
                GBM_BO_USE_RENDERING | GBM_BO_USE_LINEAR,
            )
        };
        let Some(bo) = NonNull::new(bo) else {
            return Err(format!(
                "gbm_bo_create({width}x{height}, fourcc {fourcc:#010x}, RENDERING|LINEAR) failed: {}",
                std::io::Error::last_os_error()
            ));
        };
        let mut buffer = GbmBuffer {
            device: Rc::clone(self),
            bo,
            fd: None,
            stride: 0,
            offset: 0,
            modifier: 0,
        };
        // SAFETY: (all five calls) `bo` is the live buffer object just created (destroyed only in
        // `GbmBuffer::drop`); plane 0 exists for every format.
        let (planes, stride, offset, modifier, fd) = unsafe {
            (
                (gbm.bo_get_plane_count)(bo.as_ptr()),
                (gbm.bo_get_stride)(bo.as_ptr()),
                (gbm.bo_get_offset)(bo.as_ptr(), 0),
                (gbm.bo_get_modifier)(bo.as_ptr()),
                (gbm.bo_get_fd)(bo.as_ptr()),
            )
        };
        if fd < 0 {
            return Err(format!(
                "gbm_bo_get_fd failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: gbm_bo_get_fd returns a new dma-buf fd (a PRIME export) that the caller owns
        // and must close; it is adopted exactly once (and not negative: checked above).
        let fd = unsafe { triptych_sys::fd::adopt(fd) }.ok_or("gbm_bo_get_fd returned no fd")?;
        if planes != 1 {
            return Err(format!("gbm buffer has {planes} planes, expected 1"));
        }
        buffer.fd = Some(ensure_cloexec(fd).map_err(|e| e.to_string())?);
        buffer.stride = stride;
        buffer.offset = offset;
        buffer.modifier = modifier;
        Ok(buffer)
    }
}

/// A GBM buffer object and the dma-buf it was exported as. Keeps its device alive.
pub(crate) struct GbmBuffer {
    device: Rc<GbmDevice>,
    bo: NonNull<c_void>,
    fd: Option<OwnedFd>,
    pub(crate) stride: u32,
    pub(crate) offset: u32,
    /// `gbm_bo_get_modifier`: `DRM_FORMAT_MOD_INVALID` when the driver tracks none.
    pub(crate) modifier: u64,
}

impl std::fmt::Debug for GbmBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbmBuffer")
            .field("stride", &self.stride)
            .field("offset", &self.offset)
            .field("modifier", &format_args!("{:#018x}", self.modifier))
            .finish_non_exhaustive()
    }
}

impl GbmBuffer {
    /// The dma-buf fd.
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.fd.as_ref().map(|f| f.as_fd())
    }
}

impl Drop for GbmBuffer {
    fn drop(&mut self) {
        // SAFETY: `bo` came from gbm_bo_create on `device`, which this value keeps alive (the
        // `Rc` field drops after this body), and is destroyed only here. The dma-buf fd and any
        // EGLImage imported from it hold their own references to the memory.
        unsafe { (self.device.gbm.bo_destroy)(self.bo.as_ptr()) };
    }
}

impl Drop for GbmDevice {
    fn drop(&mut self) {
        // SAFETY: `device` came from gbm_create_device and is destroyed only here; the owner
        // terminates the EGL display made on it before dropping this (see platform.rs), and the
        // node fd is still open (fields drop after this body).
        unsafe { (self.gbm.device_destroy)(self.device.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The usage flags have the values `gbm.h` gives them.
    #[test]
    fn usage_flags_match_gbm_h() {
        assert_eq!(GBM_BO_USE_RENDERING, 4);
        assert_eq!(GBM_BO_USE_LINEAR, 16);
    }
}
