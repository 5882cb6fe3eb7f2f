//! `mmap`-backed views of shared buffers.
//!
//! A [`Mapping`] owns one `MAP_SHARED` mapping of a file and unmaps it on drop. The renderer maps
//! each imported buffer once and keeps the mapping in its import cache for as long as the buffer
//! id lives; the launcher maps the renderer's output the same way. Mappings hand out raw slices
//! only through methods that take `&self`/`&mut self`, so the borrow checker ties every view to
//! the mapping's lifetime. Another process may write the memory at any time: readers must only
//! read what a fence or a message has told them is complete.
//!
//! # Memory a peer can write
//!
//! A mapping another process can write (a GPU process's buffer in the renderer, the renderer's
//! output in the launcher) is never read through a `&[u8]`: the compiler may assume a shared
//! reference's target does not change, and a compromised peer can change it at any moment.
//! Such memory is read only through [`PeerBytes`], which forms no Rust reference into it and
//! hands out nothing but copies ([`PeerBytes::copy_to`]): each value a reader decides on is
//! read once, into its own memory, and the copy cannot change under it (no double fetch).
//! [`Mapping::as_slice`] is for memory no other process can write.

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

/// A view of bytes another process may write at any time: it can only be copied out of, or
/// loaded once into registers by the compositor's kernel (`crate::simd`), which reads each
/// byte once and decides only on what it loaded.
#[derive(Clone, Copy, Debug)]
pub struct PeerBytes<'a> {
    pub(crate) ptr: *const u8,
    pub(crate) len: usize,
    _borrow: PhantomData<&'a [u8]>,
}

// SAFETY: a PeerBytes is a read-only view used only to copy out of; the memory it points at
// outlives `'a` (it borrows a Mapping or a slice), and copying from another thread is as sound
// as copying from this one.
unsafe impl Send for PeerBytes<'_> {}
// SAFETY: as above; it hands out no references, only copies.
unsafe impl Sync for PeerBytes<'_> {}

impl<'a> PeerBytes<'a> {
    /// A view of memory of this process (tests, benchmarks, a local copy).
    pub fn from_local(bytes: &'a [u8]) -> Self {
        Self {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
            _borrow: PhantomData,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes `[start, start + len)`, if they lie inside.
    pub fn sub(&self, start: usize, len: usize) -> Option<PeerBytes<'a>> {
        let end = start.checked_add(len)?;
        if end > self.len {
            return None;
        }
        Some(Self {
            // SAFETY: `start <= end <= self.len`, so the offset stays inside the view.
            ptr: unsafe { self.ptr.add(start) },
            len,
            _borrow: PhantomData,
        })
    }

    /// Copies the first `dst.len()` bytes into `dst`; false (and nothing copied) if there are
    /// fewer.
    pub fn copy_to(&self, dst: &mut [u8]) -> bool {
        if dst.len() > self.len {
            return false;
        }
        // SAFETY: `ptr` is valid for `self.len >= dst.len()` bytes for `'a` (see the type), `dst`
        // is our own exclusive buffer, and the two cannot overlap (a peer's mapping is not part
        // of `dst`, and a local view is borrowed shared while `dst` is borrowed mutably). The copy
        // goes through raw pointers: no reference into the peer's memory is ever formed.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr, dst.as_mut_ptr(), dst.len()) };
        true
    }

    /// A copy of all the bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len];
        self.copy_to(&mut v);
        v
    }
}

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

    /// The mapped bytes, of a mapping no other process can write (this process's own buffer,
    /// or a file sealed against writes it alone created). For memory a peer can write, use
    /// [`Mapping::peer_bytes`].
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives (unmapped only in
        // drop), and the returned borrow cannot outlive `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The mapped bytes as memory a peer may write: readable only by copying.
    pub fn peer_bytes(&self) -> PeerBytes<'_> {
        PeerBytes {
            ptr: self.ptr.as_ptr(),
            len: self.len,
            _borrow: PhantomData,
        }
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

/// A writable shared mapping that another process may read and write at any moment (a
/// mailbox's ring, `ipc_protocol::mailbox`). It hands out no slice of its memory, only atomics
/// ([`SharedMemory::atomic_u32`]), copies in ([`SharedMemory::write_shared`]) and copies out
/// ([`SharedMemory::peer_bytes`]): a `&[u8]` into memory that changes under it would be unsound.
#[derive(Debug)]
pub struct SharedMemory {
    map: Mapping,
}

impl SharedMemory {
    /// Maps `len` bytes of `fd` from offset 0, shared, readable and writable.
    pub fn new(fd: BorrowedFd<'_>, len: usize) -> Result<Self, MapError> {
        Ok(SharedMemory {
            map: Mapping::new(fd, len, Access::ReadWrite)?,
        })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.map.len
    }

    /// Whether the mapping is empty (never: zero-length mappings are refused).
    pub fn is_empty(&self) -> bool {
        self.map.len == 0
    }

    /// The bytes, readable only by copying.
    pub fn peer_bytes(&self) -> PeerBytes<'_> {
        self.map.peer_bytes()
    }

    /// The 32-bit atomic at `offset`, in memory another process may change at any moment
    /// (which an atomic allows). `None` unless `offset` is 4-aligned and inside the mapping.
    pub fn atomic_u32(&self, offset: usize) -> Option<&std::sync::atomic::AtomicU32> {
        self.atomic(offset)
    }

    /// The 64-bit atomic at `offset`, as [`SharedMemory::atomic_u32`]; `None` unless `offset` is
    /// 8-aligned and inside the mapping.
    pub fn atomic_u64(&self, offset: usize) -> Option<&std::sync::atomic::AtomicU64> {
        self.atomic(offset)
    }

    /// The atomic `A` (an `AtomicU32` or `AtomicU64`: as large as it is aligned) at `offset`.
    fn atomic<A>(&self, offset: usize) -> Option<&A> {
        let size = std::mem::size_of::<A>();
        if !offset.is_multiple_of(size) || offset.checked_add(size)? > self.map.len {
            return None;
        }
        // SAFETY: the mapping is page-aligned and `offset` a multiple of the atomic's size,
        // which for the two callers is its alignment, so the address is aligned for `A`; its
        // bytes lie inside the mapping, which is writable (a SharedMemory is always mapped
        // read-write, so a store cannot fault) and lives as long as the returned borrow; no
        // slice of this memory exists (the type hands none out), and an atomic may be changed by
        // anyone at any time, so another process writing the same bytes breaks no assumption
        // the compiler makes.
        Some(unsafe { &*self.map.ptr.as_ptr().add(offset).cast::<A>() })
    }

    /// Writes `bytes` at `offset`, memory another process may read (and write) at any moment;
    /// false, and nothing written, if they do not fit. No reference into the memory is formed.
    pub fn write_shared(&self, offset: usize, bytes: &[u8]) -> bool {
        let fits = offset
            .checked_add(bytes.len())
            .is_some_and(|end| end <= self.map.len);
        if !fits || !self.map.writable {
            return false;
        }
        // SAFETY: `[offset, offset + len)` lies inside the mapping, which is writable and lives
        // for the call; `bytes` is this process's own memory and cannot overlap it, and no
        // slice of the mapping exists for the write to change under (the type hands none out).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.map.ptr.as_ptr().add(offset),
                bytes.len(),
            );
        }
        true
    }
}

/// A read-only shared mapping of memory another process writes (a GPU process's fence progress
/// page, `ipc_protocol::progress`). This process cannot write it: the file was opened read-only,
/// so the kernel refuses a writable mapping and `mprotect` to one. It hands out no reference
/// into the memory, only values loaded atomically ([`ReadOnlyShared::load_u64`]) and a futex wait
/// on a word ([`ReadOnlyShared::wait_u32`]), neither of which stores.
#[derive(Debug)]
pub struct ReadOnlyShared {
    map: Mapping,
}

// SAFETY: through `&self` the type only loads atomically and waits on a futex word; it forms no
// reference into the memory that outlives a call, so sharing it between threads is as safe as
// sharing an atomic.
unsafe impl Sync for ReadOnlyShared {}

impl ReadOnlyShared {
    /// Maps `len` bytes of `fd` from offset 0, shared and read-only.
    pub fn new(fd: BorrowedFd<'_>, len: usize) -> Result<Self, MapError> {
        Ok(ReadOnlyShared {
            map: Mapping::new(fd, len, Access::Read)?,
        })
    }

    /// Where the mapping starts in this process, and its length: for a probe that asks the
    /// kernel to make it writable (`mprotect`), which it must refuse. Nothing here reads or
    /// writes through it.
    pub fn span(&self) -> (usize, usize) {
        (self.map.ptr.as_ptr() as usize, self.map.len)
    }

    fn word<T>(&self, offset: usize) -> Option<*const T> {
        let size = std::mem::size_of::<T>();
        if !offset.is_multiple_of(size) || offset.checked_add(size)? > self.map.len {
            return None;
        }
        // SAFETY: `offset + size` lies inside the mapping (checked above), so the pointer stays
        // in bounds of one allocation.
        Some(unsafe { self.map.ptr.as_ptr().add(offset).cast::<T>() })
    }

    /// The 64-bit value at `offset`, loaded with acquire ordering; `None` unless `offset` is
    /// 8-aligned and inside the mapping.
    pub fn load_u64(&self, offset: usize) -> Option<u64> {
        let p = self.word::<std::sync::atomic::AtomicU64>(offset)?;
        // SAFETY: the address is 8-aligned (page-aligned mapping, 8-aligned offset) and inside
        // a mapping that lives for the call. An acquire load of a lock-free 64-bit atomic on
        // x86-64 and aarch64 is a plain load, which read-only memory allows; the reference is
        // used for this one load and never for a store, and the memory changing under it (the
        // writer is another process) is what an atomic allows.
        Some(unsafe { (*p).load(std::sync::atomic::Ordering::Acquire) })
    }

    /// Waits while the 32-bit word at `offset` holds `expected`, for at most `timeout`
    /// (`FUTEX_WAIT` on a shared mapping, which needs read access only); `None` unless `offset`
    /// is 4-aligned and inside the mapping.
    pub fn wait_u32(
        &self,
        offset: usize,
        expected: u32,
        timeout: std::time::Duration,
    ) -> Option<Result<crate::futex::Waited, crate::Errno>> {
        let p = self.word::<std::sync::atomic::AtomicU32>(offset)?;
        // SAFETY: as in `load_u64`; the futex call only reads the word (and the kernel compares
        // it itself), so a read-only mapping serves.
        let word = unsafe { &*p };
        Some(crate::futex::wait(word, expected, timeout))
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
    fn peer_bytes_copy_what_the_writer_wrote_and_refuse_out_of_range() {
        let fd = crate::memfd::create_sealed(c"p", 4096).expect("memfd");
        let mut w = Mapping::new(fd.as_fd(), 4096, Access::ReadWrite).expect("map rw");
        let r = Mapping::new(fd.as_fd(), 4096, Access::Read).expect("map r");
        w.as_mut_slice()[100..104].copy_from_slice(&[1, 2, 3, 4]);
        let view = r.peer_bytes().sub(100, 4).expect("in range");
        let mut got = [0u8; 4];
        assert!(view.copy_to(&mut got));
        assert_eq!(got, [1, 2, 3, 4]);
        // The copy is ours: the writer changing the memory afterwards does not change it.
        w.as_mut_slice()[100] = 9;
        assert_eq!(got[0], 1);
        assert!(r.peer_bytes().sub(4090, 7).is_none());
        assert!(!view.copy_to(&mut [0u8; 5]));
    }

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
