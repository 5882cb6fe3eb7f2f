//! `mmap`-backed views of shared buffers.
//!
//! A [`Mapping`] owns one `MAP_SHARED` mapping of a file and unmaps it on drop. The renderer maps
//! each imported buffer once and keeps the mapping in its import cache for as long as the buffer
//! id lives; the launcher maps the renderer's output the same way. Mappings hand out raw slices
//! only through methods that take `&self`/`&mut self`, so the borrow checker ties every view to
//! the mapping's lifetime. Another process may write the memory at any time: readers must only
//! read what a fence or a message has told them is complete.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

/// Errors from mapping.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// `mmap` failed.
    #[error("mmap of {len} bytes of fd {fd} failed: {errno}")]
    Mmap {
        /// The fd.
        fd: i32,
        /// The length asked for.
        len: usize,
        /// The error.
        errno: nix::Error,
    },
    /// A zero-length mapping was asked for.
    #[error("cannot map zero bytes")]
    Empty,
}

/// Access wanted on a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `PROT_READ`.
    Read,
    /// `PROT_READ | PROT_WRITE`.
    ReadWrite,
}

/// One shared mapping of a file, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
}

// SAFETY: the mapping is plain shared memory with no thread affinity; all access goes through
// `&self`/`&mut self`, so Rust's aliasing rules hold within this process.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` from offset 0, shared. Never executable.
    pub fn new(fd: BorrowedFd<'_>, len: usize, access: Access) -> Result<Self, MapError> {
        if len == 0 {
            return Err(MapError::Empty);
        }
        let prot = match access {
            Access::Read => libc::PROT_READ,
            Access::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
        };
        // SAFETY: a fresh mapping at an address of the kernel's choosing cannot overlap any Rust
        // object; `fd` is borrowed and open for the call; the kernel checks `len` against the file.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(MapError::Mmap {
                fd: fd.as_raw_fd(),
                len,
                errno: nix::Error::last(),
            });
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(MapError::Mmap {
            fd: fd.as_raw_fd(),
            len,
            errno: nix::Error::EINVAL,
        })?;
        Ok(Self {
            ptr,
            len,
            writable: access == Access::ReadWrite,
        })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: zero-length mappings are refused).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapped bytes.
    ///
    /// Another process may be writing them; the caller's protocol (fences, messages) says when
    /// a range is stable. Reading a byte that changes underneath yields some value of that byte,
    /// never undefined behaviour in this process, because the memory is plain shared memory that
    /// the compiler cannot assume unchanged across the calls that synchronise with the writer.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives (unmapped only in
        // drop), and the returned borrow cannot outlive `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The mapped bytes, writable. Panics if the mapping was made read-only (a programming
    /// error, never a matter of peer input).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        assert!(self.writable, "mapping is read-only");
        // SAFETY: as in `as_slice`, and `&mut self` guarantees no other view from this mapping
        // exists while the returned one does; PROT_WRITE was asked for.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned and no borrow of the memory can
        // outlive `self`.
        let rc = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        if rc != 0 {
            tracing::error!(len = self.len, error = %nix::Error::last(), "munmap failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn two_mappings_share_memory() {
        let fd = crate::memfd::create_sealed(c"m", 8192).expect("memfd");
        let mut w = Mapping::new(fd.as_fd(), 8192, Access::ReadWrite).expect("map rw");
        let r = Mapping::new(fd.as_fd(), 8192, Access::Read).expect("map r");
        w.as_mut_slice()[4097] = 42;
        assert_eq!(r.as_slice()[4097], 42);
        assert!(matches!(
            Mapping::new(fd.as_fd(), 0, Access::Read),
            Err(MapError::Empty)
        ));
    }
}
