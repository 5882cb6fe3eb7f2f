//! The `ioctl` request encoding, and the one place that calls `ioctl(2)`.
//!
//! An ioctl request number packs four fields into 32 bits: the data direction, a "type" byte
//! naming the subsystem (`'b'` for DMA-BUF, `'d'` for DRM), a command number, and the size of the
//! argument struct. The layout comes from
//! [`include/uapi/asm-generic/ioctl.h`](https://github.com/torvalds/linux/blob/master/include/uapi/asm-generic/ioctl.h):
//!
//! ```text
//!  31 30 29          16 15       8 7        0
//! +-----+--------------+----------+----------+
//! | dir |     size     |   type   |    nr    |
//! +-----+--------------+----------+----------+
//!   2 b      14 b          8 b        8 b
//! _IOC(dir, type, nr, size) = dir << 30 | size << 16 | type << 8 | nr
//! _IOC_NONE = 0, _IOC_WRITE = 1 (user -> kernel), _IOC_READ = 2 (kernel -> user)
//! ```
//!
//! x86, x86_64, arm, aarch64, riscv, loongarch and s390 use this generic layout. powerpc, mips,
//! sparc and alpha override it (3 direction bits, 13 size bits, different direction values), so
//! the crate refuses to build there rather than compute wrong numbers.
//!
//! Because the size field comes from `size_of` of the Rust mirror of the kernel struct, a wrong
//! field in a mirror changes the request number and the kernel answers `ENOTTY` instead of
//! reading the wrong bytes; the unit tests of [`crate::dma_buf`] and [`crate::drm`] pin both the
//! sizes and the resulting numbers.
//!
//! `ioctl_retry` (crate-private) is the only caller of `libc::ioctl` in the DMA-BUF and DRM modules. It checks
//! the argument's size against the request's size field and retries `EINTR` and `EAGAIN` the way
//! libdrm's `drmIoctl` does.

use std::os::fd::{AsRawFd, BorrowedFd};

#[cfg(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
compile_error!("this architecture does not use the asm-generic ioctl layout that ioctl.rs encodes");

/// Bits of the command number field (`_IOC_NRBITS`).
pub const IOC_NRBITS: u32 = 8;
/// Bits of the type field (`_IOC_TYPEBITS`).
pub const IOC_TYPEBITS: u32 = 8;
/// Bits of the size field (`_IOC_SIZEBITS`).
pub const IOC_SIZEBITS: u32 = 14;
/// Bits of the direction field (`_IOC_DIRBITS`).
pub const IOC_DIRBITS: u32 = 2;

/// Shift of the command number field (`_IOC_NRSHIFT`).
pub const IOC_NRSHIFT: u32 = 0;
/// Shift of the type field (`_IOC_TYPESHIFT`).
pub const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
/// Shift of the size field (`_IOC_SIZESHIFT`).
pub const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
/// Shift of the direction field (`_IOC_DIRSHIFT`).
pub const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;

/// No data is passed (`_IOC_NONE`).
pub const IOC_NONE: u32 = 0;
/// User space writes, the kernel reads (`_IOC_WRITE`).
pub const IOC_WRITE: u32 = 1;
/// The kernel writes, user space reads (`_IOC_READ`).
pub const IOC_READ: u32 = 2;

/// The largest argument size the 14-bit size field can carry.
pub const IOC_SIZE_MAX: usize = (1 << IOC_SIZEBITS) - 1;

/// `_IOC(dir, type, nr, size)`: packs the four fields into a request number.
///
/// Panics (at compile time, when used in a `const`) if `dir` or `size` do not fit their fields.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(
        dir < (1 << IOC_DIRBITS),
        "ioctl direction does not fit in _IOC_DIRBITS"
    );
    assert!(
        size <= IOC_SIZE_MAX,
        "ioctl argument does not fit in _IOC_SIZEBITS"
    );
    (dir << IOC_DIRSHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | ((nr as u32) << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
}

/// `_IO(type, nr)`: a request without an argument struct.
pub const fn io(ty: u8, nr: u8) -> u32 {
    ioc(IOC_NONE, ty, nr, 0)
}

/// `_IOR(type, nr, T)`: the kernel fills a `T`.
pub const fn ior<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_READ, ty, nr, size_of::<T>())
}

/// `_IOW(type, nr, T)`: the kernel reads a `T`.
pub const fn iow<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_WRITE, ty, nr, size_of::<T>())
}

/// `_IOWR(type, nr, T)`: the kernel reads a `T` and writes results back into it.
pub const fn iowr<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size_of::<T>())
}

/// `_IOC_DIR(nr)`.
pub const fn ioc_dir(request: u32) -> u32 {
    (request >> IOC_DIRSHIFT) & ((1 << IOC_DIRBITS) - 1)
}

/// `_IOC_TYPE(nr)`.
pub const fn ioc_type(request: u32) -> u8 {
    ((request >> IOC_TYPESHIFT) & ((1 << IOC_TYPEBITS) - 1)) as u8
}

/// `_IOC_NR(nr)`.
pub const fn ioc_nr(request: u32) -> u8 {
    ((request >> IOC_NRSHIFT) & ((1 << IOC_NRBITS) - 1)) as u8
}

/// `_IOC_SIZE(nr)`.
pub const fn ioc_size(request: u32) -> usize {
    ((request >> IOC_SIZESHIFT) & ((1 << IOC_SIZEBITS) - 1)) as usize
}

/// Issues `ioctl(fd, request, arg)`, retrying while it fails with `EINTR` or `EAGAIN`.
///
/// Panics if `size_of::<T>()` differs from the size encoded in `request`: that is a mismatch
/// between a request constant and its struct in this crate, a programming error.
///
/// # Safety
///
/// `T` must be the exact `#[repr(C)]` mirror of the struct the kernel reads and/or writes for
/// `request`, and every pointer stored inside `*arg` must be valid for the access the kernel
/// makes through it (for the length stored next to it) for the duration of the call. The kernel
/// then accesses only the `size_of::<T>()` bytes of `*arg`, which `&mut` makes exclusive.
pub(crate) unsafe fn ioctl_retry<T>(
    fd: BorrowedFd<'_>,
    request: u32,
    arg: &mut T,
) -> Result<(), nix::Error> {
    assert_eq!(
        size_of::<T>(),
        ioc_size(request),
        "ioctl {request:#010x}: argument size differs from the size field"
    );
    let ptr: *mut T = arg;
    loop {
        // SAFETY: `fd` is a `BorrowedFd`, so the descriptor stays open for the whole call.
        // `ptr` comes from a `&mut T`, so it is aligned, valid for `size_of::<T>()` bytes (the
        // size the request announces, checked above) and not aliased while the kernel uses it.
        // The caller guarantees that `T` is what the kernel expects for `request` and that any
        // pointers inside it are valid. `as _` converts to the platform's request type
        // (`c_ulong` on glibc, `c_int` on musl), as the C macros' implicit conversion does.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, ptr) };
        if rc != -1 {
            return Ok(());
        }
        match nix::Error::last() {
            nix::Error::EINTR | nix::Error::EAGAIN => continue,
            errno => return Err(errno),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_layout_matches_asm_generic_header() {
        assert_eq!(
            (IOC_NRSHIFT, IOC_TYPESHIFT, IOC_SIZESHIFT, IOC_DIRSHIFT),
            (0, 8, 16, 30)
        );
        assert_eq!(IOC_DIRBITS + IOC_SIZEBITS + IOC_TYPEBITS + IOC_NRBITS, 32);
        assert_eq!(IOC_SIZE_MAX, 16383);
    }

    #[test]
    fn encodes_known_requests() {
        // BLKSSZGET = _IO(0x12, 104) (include/uapi/linux/fs.h) = 0x12 << 8 | 104 = 0x1268.
        assert_eq!(io(0x12, 104), 0x0000_1268);
        // TIOCGPTN = _IOR('T', 0x30, unsigned int) (include/uapi/asm-generic/ioctls.h)
        //          = 2 << 30 | 4 << 16 | 0x54 << 8 | 0x30 = 0x8004_5430.
        assert_eq!(ior::<std::ffi::c_uint>(b'T', 0x30), 0x8004_5430);
        // TIOCSPTLCK = _IOW('T', 0x31, int) = 1 << 30 | 4 << 16 | 0x54 << 8 | 0x31 = 0x4004_5431.
        assert_eq!(iow::<std::ffi::c_int>(b'T', 0x31), 0x4004_5431);
        // _IOWR(0xAB, 0xCD, [u8; 0x123]) = 3 << 30 | 0x123 << 16 | 0xAB << 8 | 0xCD = 0xC123_ABCD.
        assert_eq!(iowr::<[u8; 0x123]>(0xAB, 0xCD), 0xC123_ABCD);
    }

    /// The libc crate spells these generic-layout numbers out as literals; agreeing with them is
    /// an independent check of the formula.
    #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64"))]
    #[test]
    fn agrees_with_libc_literals() {
        // `as libc::Ioctl` is the C conversion to the request type (`c_ulong` on glibc).
        assert_eq!(io(0x12, 104) as libc::Ioctl, libc::BLKSSZGET);
        assert_eq!(
            ior::<std::ffi::c_uint>(b'T', 0x30) as libc::Ioctl,
            libc::TIOCGPTN
        );
        assert_eq!(
            iow::<std::ffi::c_int>(b'T', 0x31) as libc::Ioctl,
            libc::TIOCSPTLCK
        );
        assert_eq!(
            iow::<std::ffi::c_int>(b'T', 0x36) as libc::Ioctl,
            libc::TIOCSIG
        );
    }

    #[test]
    fn decoding_inverts_encoding() {
        for &(dir, ty, nr, size) in &[
            (IOC_NONE, 0u8, 0u8, 0usize),
            (IOC_READ, b'd', 0xB2, 32),
            (IOC_WRITE, b'b', 0, 8),
            (IOC_READ | IOC_WRITE, 0xFF, 0xFF, IOC_SIZE_MAX),
        ] {
            let request = ioc(dir, ty, nr, size);
            assert_eq!(ioc_dir(request), dir);
            assert_eq!(ioc_type(request), ty);
            assert_eq!(ioc_nr(request), nr);
            assert_eq!(ioc_size(request), size);
        }
    }

    #[test]
    #[should_panic(expected = "_IOC_SIZEBITS")]
    fn oversized_argument_is_refused() {
        let size = std::hint::black_box(IOC_SIZE_MAX + 1);
        let _ = ioc(IOC_READ, b'x', 0, size);
    }
}
