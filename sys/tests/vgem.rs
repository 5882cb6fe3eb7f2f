//! The DMA-BUF and DRM layer against a real kernel: vgem's dumb buffers, PRIME export, CPU access
//! through the DMA-BUF, and implicit fences exported as `sync_file`s.
//!
//! Needs a vgem node (`modprobe vgem` gives `/dev/dri/card0` on a machine without a GPU). Where
//! there is none the test says so on stderr and passes, unless `TRIPTYCH_REQUIRE_VGEM=1`, in
//! which case it fails: CI runs it that way inside `tests/vm/run-in-vm.sh`, which boots a kernel
//! with vgem loaded:
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-vm cargo test -p triptych-sys --no-run   # prints the binary
//! TRIPTYCH_REQUIRE_VGEM=1 tests/vm/run-in-vm.sh /work/target-vm/debug/deps/vgem-<hash> --nocapture
//! ```
//!
//! The sequence mirrors a frame: the exporter creates and exports a buffer, writes it inside a
//! CPU-access bracket, a "GPU" (vgem) attaches a write fence, the fence is exported as a
//! `sync_file` that must not be readable until the fence signals, and the reader then maps and
//! reads the bytes through a second export.

use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use triptych_sys::dma_buf::{self, CpuAccess, SyncAccess};
use triptych_sys::drm::{DrmDevice, PrimeAccess};
use triptych_sys::fd::{identity, is_cloexec};
use triptych_sys::mapping::{self, Mapping};
use triptych_sys::poll::{wait_readable, WaitOutcome};

const REQUIRE_VAR: &str = "TRIPTYCH_REQUIRE_VGEM";

/// Writes straight to the stderr file descriptor: libtest captures `eprintln!` of passing tests,
/// and a skip must be visible in every run.
fn note(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// The vgem device, or `None` after printing why the test is skipped. Panics instead of skipping
/// when `TRIPTYCH_REQUIRE_VGEM=1`.
fn vgem_or_skip() -> Option<DrmDevice> {
    let required = std::env::var_os(REQUIRE_VAR).is_some_and(|v| v == "1");
    let found = DrmDevice::find_driver("vgem");
    let reason = match found {
        Ok(Some(dev)) => return Some(dev),
        Ok(None) => match std::fs::read_dir("/dev/dri") {
            Ok(dir) => {
                let nodes: Vec<String> = dir
                    .filter_map(Result::ok)
                    .map(|e| e.path().display().to_string())
                    .collect();
                format!("no DRM node has driver vgem (nodes: {nodes:?})")
            }
            Err(e) => format!("/dev/dri: {e}"),
        },
        Err(error) => error.to_string(),
    };
    assert!(
        !required,
        "{REQUIRE_VAR}=1 but there is no vgem device: {reason}; load it with `modprobe vgem`"
    );
    note(&format!(
        "skipped: no vgem device (run tests/vm/run-in-vm.sh); {reason}"
    ));
    None
}

fn fd_link(fd: BorrowedFd<'_>) -> String {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    std::fs::read_link(&path)
        .unwrap_or_else(|e| panic!("readlink {path}: {e}"))
        .display()
        .to_string()
}

fn fdinfo(fd: BorrowedFd<'_>) -> String {
    let path = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8)) as u8
}

#[test]
fn dumb_buffer_prime_export_cpu_access_and_fences() {
    let Some(dev) = vgem_or_skip() else { return };
    let started = Instant::now();
    assert_eq!(dev.driver_name().expect("driver name"), "vgem");
    note(&format!("vgem device: {}", dev.path().display()));

    // A device fd is not a DMA-BUF.
    assert!(!dma_buf::is_dma_buf(dev.as_fd()).expect("fstatfs on the device"));

    // 1. A 64x32 buffer at 32 bpp.
    let buf = dev.create_dumb(64, 32, 32).expect("create dumb buffer");
    note(&format!("dumb buffer: {buf:?}"));
    assert!(buf.pitch >= 64 * 4, "pitch {}", buf.pitch);
    assert!(buf.size >= u64::from(buf.pitch) * 32, "size {}", buf.size);
    let len = usize::try_from(buf.size).expect("buffer size fits usize");

    // 2. PRIME export, read-write, and a second export of the same buffer for the reader. DRM
    //    caches one DMA-BUF per buffer object: the second export is a new fd of the same file,
    //    with the access of the first export.
    let exported = dev
        .prime_export(buf.handle, PrimeAccess::ReadWrite)
        .expect("PRIME export");
    let reader_fd = dev
        .prime_export(buf.handle, PrimeAccess::ReadOnly)
        .expect("PRIME export 2");
    assert_ne!(exported.as_raw_fd(), reader_fd.as_raw_fd());
    assert_eq!(
        identity(exported.as_fd()).expect("fstat"),
        identity(reader_fd.as_fd()).expect("fstat"),
        "two exports of one buffer must be the same DMA-BUF"
    );
    for fd in [exported.as_fd(), reader_fd.as_fd()] {
        assert!(
            is_cloexec(fd).expect("F_GETFD"),
            "PRIME export must be close-on-exec"
        );
        assert!(
            dma_buf::is_dma_buf(fd).expect("fstatfs"),
            "exported fd is not a DMA-BUF"
        );
        let link = fd_link(fd);
        assert!(link.starts_with("/dmabuf:"), "DMA-BUF fd link is {link:?}");
        let info = fdinfo(fd);
        let exp_name = info
            .lines()
            .find(|l| l.starts_with("exp_name:"))
            .unwrap_or_else(|| panic!("no exp_name: line in fdinfo:\n{info}"));
        note(&format!(
            "fd {} -> {link}; fdinfo {exp_name:?}",
            fd.as_raw_fd()
        ));
    }

    // 3. Write through a mapping of the DMA-BUF, inside a write bracket.
    let mut writer = Mapping::new(exported.as_fd(), len, mapping::Access::ReadWrite)
        .expect("map the DMA-BUF read-write");
    {
        let access = CpuAccess::begin(exported.as_fd(), SyncAccess::Write).expect("SYNC_START");
        for (i, byte) in writer.as_mut_slice().iter_mut().enumerate() {
            *byte = pattern(i);
        }
        access.end().expect("SYNC_END");
    }
    // A buffer first exported without DRM_RDWR refuses writable shared mappings.
    let ro_buf = dev
        .create_dumb(16, 16, 32)
        .expect("create second dumb buffer");
    let ro_fd = dev
        .prime_export(ro_buf.handle, PrimeAccess::ReadOnly)
        .expect("read-only export");
    let ro_len = usize::try_from(ro_buf.size).expect("size fits usize");
    match Mapping::new(ro_fd.as_fd(), ro_len, mapping::Access::ReadWrite) {
        Err(mapping::MapError::Mmap { errno, .. }) => assert_eq!(errno, nix::Error::EACCES),
        other => panic!("a DMA-BUF exported without DRM_RDWR mapped writable: {other:?}"),
    }
    Mapping::new(ro_fd.as_fd(), ro_len, mapping::Access::Read).expect("read-only mapping");
    dev.destroy_dumb(ro_buf)
        .expect("destroy second dumb buffer");
    let reader =
        Mapping::new(reader_fd.as_fd(), len, mapping::Access::Read).expect("map read-only");
    {
        let _access = CpuAccess::begin(reader_fd.as_fd(), SyncAccess::Read).expect("SYNC_START");
        let mismatch = reader
            .as_slice()
            .iter()
            .enumerate()
            .find(|(i, b)| **b != pattern(*i));
        assert_eq!(
            mismatch, None,
            "bytes read through the second export differ"
        );
    }

    // 4. No fence yet: an exported sync_file is already signalled.
    let idle = dma_buf::export_sync_file(exported.as_fd(), SyncAccess::Read).expect("export");
    assert_eq!(
        wait_readable(idle.as_fd(), Duration::ZERO).expect("poll idle sync_file"),
        WaitOutcome::Ready
    );

    // 5. A "GPU" write in flight: vgem attaches an unsignalled write fence.
    let fence = dev
        .vgem_fence_attach(buf.handle, true)
        .expect("attach vgem write fence");
    let sync_file =
        dma_buf::export_sync_file(exported.as_fd(), SyncAccess::Read).expect("export sync_file");
    assert!(
        is_cloexec(sync_file.as_fd()).expect("F_GETFD"),
        "sync_file must be close-on-exec"
    );
    let link = fd_link(sync_file.as_fd());
    assert_eq!(link, "anon_inode:sync_file");
    assert!(!dma_buf::is_dma_buf(sync_file.as_fd()).expect("fstatfs"));
    note(&format!("sync_file fd {} -> {link}", sync_file.as_raw_fd()));

    // Not readable while the fence is pending; neither is the DMA-BUF itself for readers.
    assert_eq!(
        wait_readable(sync_file.as_fd(), Duration::from_millis(100)).expect("poll sync_file"),
        WaitOutcome::TimedOut,
        "the sync_file signalled before the vgem fence"
    );
    assert_eq!(
        wait_readable(exported.as_fd(), Duration::ZERO).expect("poll DMA-BUF"),
        WaitOutcome::TimedOut,
        "the DMA-BUF polled readable with a write fence pending"
    );
    // The idle sync_file exported before the fence is a snapshot and stays signalled.
    assert_eq!(
        wait_readable(idle.as_fd(), Duration::ZERO).expect("poll"),
        WaitOutcome::Ready
    );

    // 6. The write completes.
    let fence_id = fence.raw();
    dev.vgem_fence_signal(fence).expect("signal vgem fence");
    let waited = Instant::now();
    assert_eq!(
        wait_readable(sync_file.as_fd(), Duration::from_secs(5)).expect("poll sync_file"),
        WaitOutcome::Ready,
        "the sync_file did not signal after vgem fence {fence_id} was signalled"
    );
    note(&format!(
        "sync_file readable {:?} after signalling fence {fence_id}",
        waited.elapsed()
    ));
    assert_eq!(
        wait_readable(exported.as_fd(), Duration::from_secs(5)).expect("poll DMA-BUF"),
        WaitOutcome::Ready
    );

    // 7. Reading after the fence: the bracket no longer waits, the bytes are intact.
    {
        let access = CpuAccess::begin(reader_fd.as_fd(), SyncAccess::Read).expect("SYNC_START");
        assert_eq!(reader.as_slice()[len - 1], pattern(len - 1));
        access.end().expect("SYNC_END");
    }

    // 8. The DMA-BUF keeps the memory alive after the handle is destroyed.
    dev.destroy_dumb(buf).expect("destroy dumb buffer");
    assert!(reader
        .as_slice()
        .iter()
        .enumerate()
        .all(|(i, b)| *b == pattern(i)));
    assert!(
        dev.gem_close(buf.handle).is_err(),
        "the handle was destroyed; closing it again must fail"
    );
    note(&format!("vgem sequence passed in {:?}", started.elapsed()));
}
