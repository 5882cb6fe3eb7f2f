//! Fence progress pages: a shm frame's fence as a number in memory, not a file per frame.
//!
//! A pipe fence costs a pipe per layer per frame and an fd transfer (`pidfd_getfd` or
//! `SCM_RIGHTS`) to the renderer. A progress page replaces both with one page of shared memory
//! per GPU process:
//!
//! - The launcher makes the page ([`create`]): a memfd of [`PAGE_LEN`] bytes, sealed against
//!   shrinking, growing and further seals. It hands the GPU process the file opened read-write
//!   (`LauncherToGpu::Progress`), and every renderer that takes this process's frames the same
//!   file opened read-only (with the handover, `crate::wire`). The renderer's kernel refuses it a
//!   writable mapping, so only the GPU process (and the launcher, which never writes) can change
//!   the number.
//! - The GPU process counts its submissions: each layer it renders is given the next *point*
//!   ([`ProgressWriter::next_point`]), which its description names as the fence
//!   (`FenceKind::Progress`, [`crate::frame::Fence::point`]). Once the work of a frame is done it
//!   stores the frame's last point at offset 0 ([`ProgressWriter::publish`]) and wakes the waiters
//!   of the word there ([`ProgressWriter::wake`]; `FUTEX_WAKE` on the low half, a no-op syscall
//!   without waiters).
//! - A reader ([`ProgressReader`]) sees a fence signalled once the stored number reaches its
//!   point, and waits with `FUTEX_WAIT` on the low half (which needs read access only), in slices,
//!   so a writer that stores a number whose low half does not change only delays the look to the
//!   slice's end.
//!
//! A compromised GPU process can store any number: one ahead of its work shows its own frames
//! unfinished (as writing a pipe fence's byte early would), one behind makes its frames time out,
//! which the launcher checks by reading the page itself and blames on that process. Nothing it
//! stores reaches another process's memory or changes how a reader parses anything: the reader
//! loads one aligned number and compares it.
//!
//! The page is the project's own code rather than a crate's: it is one atomic word and a futex,
//! built on the OS layer's `ReadOnlyShared` and `SharedMemory` mappings.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use triptych_sys::futex::Waited;
use triptych_sys::mapping::{ReadOnlyShared, SharedMemory};

use crate::frame::FileId;

/// The bytes of a progress page: one page; the number lies at offset 0.
pub const PAGE_LEN: usize = 4096;

/// How long one futex wait lasts before the reader looks again (a writer whose stored number
/// keeps its low half delays a look by at most this).
const SLICE: Duration = Duration::from_millis(20);

/// Early ends of one wait (a wake-up or a changed number, the point still unreached) after
/// which the reader only looks once a slice ([`ProgressReader::wait`]). An honest writer stores
/// once a frame, so a wait sees one or two.
const SPURIOUS: u32 = 8;

/// Errors making, taking or waiting on a progress page.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    /// The memfd could not be made.
    #[error("making the progress page: {0}")]
    Create(#[from] triptych_sys::memfd::MemfdError),
    /// An fd operation failed.
    #[error("progress page: {0}")]
    Fd(#[from] triptych_sys::fd::FdError),
    /// Mapping failed.
    #[error("mapping the progress page: {0}")]
    Map(#[from] triptych_sys::mapping::MapError),
    /// The file handed over is smaller than a page.
    #[error("the progress page handed over has {0} bytes, fewer than {PAGE_LEN}")]
    TooSmall(u64),
    /// The futex wait failed.
    #[error("waiting on the progress page: {0}")]
    Wait(triptych_sys::Errno),
}

/// A new page: the read-write file (for the GPU process) and a read-only one of the same file
/// (for readers), sealed against resizing.
pub fn create(name: &str) -> Result<(OwnedFd, OwnedFd), ProgressError> {
    let name = CString::new(name).unwrap_or_default();
    let rw = triptych_sys::memfd::create_sealed(&name, PAGE_LEN as u64)?;
    let ro = triptych_sys::fd::reopen_read_only(rw.as_fd())?;
    Ok((rw, ro))
}

/// The identity of a page's file, which every description naming it carries.
pub fn identity(fd: BorrowedFd<'_>) -> Result<FileId, ProgressError> {
    let id = triptych_sys::fd::identity(fd)?;
    Ok(FileId {
        dev: id.dev,
        ino: id.ino,
    })
}

fn check_size(fd: BorrowedFd<'_>) -> Result<(), ProgressError> {
    let size = triptych_sys::fd::seek_size(fd)?;
    if size < PAGE_LEN as u64 {
        return Err(ProgressError::TooSmall(size));
    }
    Ok(())
}

/// The GPU process's side: hands out points and stores the number reached.
#[derive(Debug)]
pub struct ProgressWriter {
    mem: SharedMemory,
    identity: FileId,
    /// The last point handed out.
    next: u64,
    /// The number stored.
    published: u64,
    /// Whether a number was stored since the last wake.
    unwoken: bool,
}

impl ProgressWriter {
    /// Maps the page the launcher handed over, read-write.
    pub fn attach(fd: OwnedFd) -> Result<Self, ProgressError> {
        check_size(fd.as_fd())?;
        let identity = identity(fd.as_fd())?;
        let mem = SharedMemory::new(fd.as_fd(), PAGE_LEN)?;
        Ok(Self {
            mem,
            identity,
            next: 0,
            published: 0,
            unwoken: false,
        })
    }

    /// The page's identity.
    pub fn identity(&self) -> FileId {
        self.identity
    }

    /// The point of the next submission: one more than the last.
    pub fn next_point(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// The work of every point up to `point` is done: stores it (release ordering, so the
    /// pixels written before are visible to a reader that sees the number).
    pub fn publish(&mut self, point: u64) {
        if point <= self.published {
            return;
        }
        self.published = point;
        if let Some(word) = self.mem.atomic_u64(0) {
            word.store(point, std::sync::atomic::Ordering::Release);
        }
        self.unwoken = true;
    }

    /// Wakes every reader waiting on the page, if a number was stored since the last wake.
    pub fn wake(&mut self) {
        if !std::mem::take(&mut self.unwoken) {
            return;
        }
        if let Some(word) = self.mem.atomic_u32(0) {
            let _ = triptych_sys::futex::wake(word, u32::MAX);
        }
    }
}

/// A reader's side: the renderer's and the launcher's, read-only.
#[derive(Debug)]
pub struct ProgressReader {
    mem: ReadOnlyShared,
    identity: FileId,
}

impl ProgressReader {
    /// Maps a page read-only (with `lseek`, `fstat` and `mmap`, which the renderer's sandbox
    /// allows). Readers are handed the read-only file ([`create`]); the launcher maps that one
    /// too.
    pub fn attach(fd: BorrowedFd<'_>) -> Result<Self, ProgressError> {
        check_size(fd)?;
        let identity = identity(fd)?;
        Ok(Self {
            mem: ReadOnlyShared::new(fd, PAGE_LEN)?,
            identity,
        })
    }

    /// The page's identity.
    pub fn identity(&self) -> FileId {
        self.identity
    }

    /// Where the page is mapped in this process and its length (see
    /// `triptych_sys::mapping::ReadOnlyShared::span`).
    pub fn span(&self) -> (usize, usize) {
        self.mem.span()
    }

    /// The number the writer stored last.
    pub fn reached(&self) -> u64 {
        self.mem.load_u64(0).unwrap_or(0)
    }

    /// Whether `point` has been reached.
    pub fn signalled(&self, point: u64) -> bool {
        self.reached() >= point
    }

    /// Waits until `point` is reached or `timeout` passes, in slices of at most `slice` (each
    /// ends early on a wake-up or a changed number); `stop` is asked between slices and ends the
    /// wait early when it says so. Ok(true): reached.
    ///
    /// A writer that wakes the word without end, or changes it without reaching the point,
    /// would keep the reader looping. After eight such early ends in one wait, the reader
    /// stops listening for wake-ups and only looks once a slice: a storm costs the reader a look
    /// a slice, and delays the point's discovery by a slice at most.
    pub fn wait(
        &self,
        point: u64,
        timeout: Duration,
        slice: Option<Duration>,
        mut stop: impl FnMut() -> bool,
    ) -> Result<bool, ProgressError> {
        let deadline = Instant::now() + timeout;
        let slice = slice.unwrap_or(SLICE);
        let mut spurious = 0u32;
        loop {
            let now = self.reached();
            if now >= point {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || stop() {
                return Ok(false);
            }
            if spurious >= SPURIOUS {
                std::thread::sleep(left.min(slice));
                continue;
            }
            match self.mem.wait_u32(0, now as u32, left.min(slice)) {
                Some(Ok(Waited::Woken | Waited::Changed | Waited::Interrupted)) => spurious += 1,
                Some(Ok(Waited::TimedOut)) => {}
                Some(Err(e)) => return Err(ProgressError::Wait(e)),
                None => return Ok(false),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_sees_what_the_writer_publishes_and_cannot_write_the_page() {
        let (rw, ro) = create("test-progress").expect("page");
        let reader = ProgressReader::attach(ro.as_fd()).expect("reader");
        assert!(triptych_sys::fd::is_read_only(ro.as_fd()).expect("flags"));
        assert!(!triptych_sys::fd::is_read_only(rw.as_fd()).expect("flags"));
        // The kernel refuses the read-only file a writable mapping.
        assert!(SharedMemory::new(ro.as_fd(), PAGE_LEN).is_err());
        let mut writer = ProgressWriter::attach(rw).expect("writer");
        assert_eq!(writer.identity(), reader.identity());
        let (a, b) = (writer.next_point(), writer.next_point());
        assert_eq!((a, b), (1, 2));
        assert!(!reader.signalled(a));
        assert!(!reader
            .wait(a, Duration::from_millis(30), None, || false)
            .expect("wait"));
        let waiter = std::thread::spawn(move || {
            let t = Instant::now();
            let ok = reader
                .wait(
                    b,
                    Duration::from_secs(10),
                    Some(Duration::from_secs(5)),
                    || false,
                )
                .expect("wait");
            (ok, t.elapsed(), reader)
        });
        std::thread::sleep(Duration::from_millis(50));
        writer.publish(b);
        writer.wake();
        let (ok, took, reader) = waiter.join().expect("waiter");
        assert!(ok);
        // Woken, not found at the end of a 5 s slice.
        assert!(took < Duration::from_secs(4), "{took:?}");
        assert!(reader.signalled(a) && reader.signalled(b));
        // Never backwards by the writer's own hand.
        writer.publish(a);
        assert_eq!(reader.reached(), b);
    }

    #[test]
    fn a_storm_of_wake_ups_costs_the_reader_a_look_a_slice() {
        let (rw, ro) = create("test-progress-storm").expect("page");
        let reader = ProgressReader::attach(ro.as_fd()).expect("reader");
        let writer = SharedMemory::new(rw.as_fd(), PAGE_LEN).expect("map");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let storm = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(w) = writer.atomic_u32(0) {
                        // Changes the word without reaching the point, and wakes.
                        w.store((n % 1000) as u32, std::sync::atomic::Ordering::Release);
                        let _ = triptych_sys::futex::wake(w, u32::MAX);
                    }
                    n += 1;
                }
                n
            })
        };
        let mut looks = 0u32;
        let ok = reader
            .wait(
                1 << 40,
                Duration::from_millis(300),
                Some(Duration::from_millis(20)),
                || {
                    looks += 1;
                    false
                },
            )
            .expect("wait");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let wakes = storm.join().expect("storm");
        assert!(!ok);
        assert!(wakes > 1000, "the storm never raged: {wakes}");
        // At most the early ends allowed, then one look a 20 ms slice over 300 ms.
        assert!(looks <= SPURIOUS + 20, "{looks} looks");
    }

    #[test]
    fn a_wait_can_be_stopped_and_a_short_file_is_refused() {
        let (_rw, ro) = create("test-progress-stop").expect("page");
        let reader = ProgressReader::attach(ro.as_fd()).expect("reader");
        let t = Instant::now();
        let ok = reader
            .wait(
                1,
                Duration::from_secs(10),
                Some(Duration::from_millis(5)),
                || t.elapsed() > Duration::from_millis(30),
            )
            .expect("wait");
        assert!(!ok);
        assert!(t.elapsed() < Duration::from_secs(5));
        let short = triptych_sys::memfd::create_sealed(c"short", 64).expect("memfd");
        let ro = triptych_sys::fd::reopen_read_only(short.as_fd()).expect("reopen");
        assert!(matches!(
            ProgressReader::attach(ro.as_fd()),
            Err(ProgressError::TooSmall(64))
        ));
    }
}
