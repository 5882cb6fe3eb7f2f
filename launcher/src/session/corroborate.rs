//! Checking a renderer's claim that a GPU process's fence never signalled, before anyone is
//! blamed.
//!
//! The renderer names the fence as its description did: a number in the GPU process's export
//! window. The launcher takes that fd from the GPU process itself (`pidfd_getfd`), checks that it
//! is a fence of the kind the GPU process exports, and waits on it for a short grace period (a
//! quarter of the renderer's deadline, 50 ms to 1 s) on a thread of its own, so the supervisor
//! never waits. Every fence kind the GPU process hands out
//! is wait-only (a sync_file; the read end of a pipe that gets one byte and then its write end
//! closed on completion). A renderer can read a pipe fence's byte away, which makes a signalled
//! fence look abandoned (closed without data), never unsignalled: so an abandoned fence refutes
//! the claim as a signalled one does (only a GPU process that died abandons a fence, and its
//! death is handled as a crash anyway). The verdict:
//!
//! - still unsignalled: the GPU process is hung, and blamed;
//! - signalled, or no longer exported: the claim is refuted; nobody is blamed, the summary counts
//!   it;
//! - not a fence of that kind, or outside the window: the renderer named something it was never
//!   given as a fence, a protocol violation.
//!
//! One claim is checked at a time; claims that arrive meanwhile are dropped.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use ipc_protocol::frame::FenceKind;
use std::sync::Arc;

use ipc_protocol::progress::ProgressReader;
use ipc_protocol::RemoteFd;
use triptych_sys::poll::{wait_signalled, FenceWait};

/// A claim to check.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The view whose renderer claimed it.
    pub view: ipc_protocol::messages::ViewId,
    /// The renderer link of the view it was claimed on ([`ipc_protocol::relay::Relay::link`]):
    /// a verdict about a renderer replaced since judges nobody.
    pub link: u64,
    /// GPU epoch.
    pub epoch: u64,
    /// Frame.
    pub frame: u64,
    /// Layer.
    pub layer: u32,
    /// The fence as the renderer named it.
    pub fence: RemoteFd,
    /// The view's export window in the GPU process.
    pub window: (i32, i32),
    /// The fence kind the GPU process exports.
    pub kind: FenceKind,
    /// With progress fences: the process's page, and the point the frame named for the layer
    /// (`None` if the frame is no longer among those the relay keeps).
    pub progress: Option<(Arc<ProgressReader>, Option<u64>)>,
}

/// What the check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Finding {
    /// Unsignalled after the grace period: the GPU process is hung.
    Hung,
    /// The claim does not hold, and why.
    Refuted(String),
    /// The renderer named something that is no fence it was given.
    Bogus(String),
}

/// The claims in flight.
#[derive(Debug)]
pub struct Checks {
    busy: Vec<ipc_protocol::messages::ViewId>,
    tx: Sender<(Claim, Finding)>,
    /// Verdicts arrive here.
    pub done: Receiver<(Claim, Finding)>,
}

impl Default for Checks {
    fn default() -> Self {
        let (tx, done) = crossbeam_channel::bounded(4);
        Self {
            busy: Vec::new(),
            tx,
            done,
        }
    }
}

/// The `/proc/self/fd` link prefix of a fence of `kind`; none for a progress fence, which is
/// no file, and for implicit fences, which lie on a DMA-BUF ([`implicit_snapshot`]).
fn link_prefix(kind: FenceKind) -> Option<&'static str> {
    match kind {
        FenceKind::SyncFile => Some("anon_inode:sync_file"),
        FenceKind::EventFd => Some("anon_inode:[eventfd]"),
        FenceKind::Pipe => Some("pipe:["),
        FenceKind::Progress | FenceKind::Implicit => None,
    }
}

/// Why the implicit fences of a file could not be snapshotted ([`implicit_snapshot`]).
#[derive(Debug)]
pub enum NoSnapshot {
    /// The file is no DMA-BUF: it carries no implicit fences, and naming it for them is a lie.
    NotDmaBuf(String),
    /// This process could not examine it or take its fences (out of fds or memory, say):
    /// nobody's lie.
    Failed(String),
}

/// The implicit fences of `holder`, the file a frame named for them
/// ([`FenceKind::Implicit`]), snapshotted now as a sync_file; or why not.
pub fn implicit_snapshot(holder: BorrowedFd<'_>) -> Result<OwnedFd, NoSnapshot> {
    match triptych_sys::dma_buf::is_dma_buf(holder) {
        Ok(true) => {}
        Ok(false) => {
            return Err(NoSnapshot::NotDmaBuf(
                "no DMA-BUF, so it carries no implicit fences".into(),
            ))
        }
        Err(e) => return Err(NoSnapshot::Failed(format!("cannot be examined: {e}"))),
    }
    triptych_sys::dma_buf::export_sync_file(holder, triptych_sys::dma_buf::SyncAccess::Read)
        .map_err(|e| NoSnapshot::Failed(format!("its fences cannot be taken: {e}")))
}

/// Whether `link`, an fd's `/proc` link, names a fence of `kind`.
pub fn is_kind(link: &str, kind: FenceKind) -> bool {
    link_prefix(kind).is_some_and(|p| link.starts_with(p))
}

/// Checks a claim about a progress fence against the page itself: read-only memory only the
/// GPU process writes, so what it holds is that process's own word. A point unreached because
/// the process died is its death, recorded as such, not a hang: a page, unlike a pipe, does not
/// show its writer's end, so the process's pidfd is asked.
fn check_progress(gpu: &OwnedFd, claim: &Claim, grace: Duration) -> Finding {
    let Some((page, point)) = &claim.progress else {
        return Finding::Bogus(
            "a progress fence, where the GPU process has no progress page".into(),
        );
    };
    if claim.fence.fd != -1 {
        return Finding::Bogus(format!(
            "fd {} named for a progress fence, which names none",
            claim.fence.fd
        ));
    }
    let Some(point) = *point else {
        return Finding::Refuted("the frame is no longer among those kept".into());
    };
    match page.wait(point, grace, None, || false) {
        Ok(true) => Finding::Refuted(format!(
            "progress point {point} is reached (the page holds {})",
            page.reached()
        )),
        Ok(false)
            if matches!(
                triptych_sys::poll::wait_readable(gpu.as_fd(), DEATH_GRACE),
                Ok(triptych_sys::poll::WaitOutcome::Ready)
            ) =>
        {
            Finding::Refuted(format!(
                "progress point {point} is unreached, and the GPU process has exited"
            ))
        }
        Ok(false) => Finding::Hung,
        Err(e) => Finding::Refuted(format!("the progress page: {e}")),
    }
}

/// How long an unreached point's GPU process is given for its exit to show, before it is
/// taken for hung.
const DEATH_GRACE: Duration = Duration::from_millis(100);

/// Checks `claim` against the fd itself; `grace` is how long it still may take to signal.
pub fn check(gpu: &OwnedFd, claim: &Claim, grace: Duration) -> Finding {
    if claim.kind == FenceKind::Progress {
        return check_progress(gpu, claim, grace);
    }
    let n = claim.fence.fd;
    if !(claim.window.0..claim.window.1).contains(&n) {
        return Finding::Bogus(format!(
            "fence fd {n} outside the export window [{}, {})",
            claim.window.0, claim.window.1
        ));
    }
    let fd = match triptych_sys::pidfd::pidfd_getfd(gpu.as_fd(), n) {
        Ok(fd) => fd,
        Err(e) => return Finding::Refuted(format!("fence fd {n} is no longer exported ({e})")),
    };
    let fd = if claim.kind == FenceKind::Implicit {
        // The file the frame named, by number and identity, is the one the renderer waits on;
        // another at that number now says nothing about the frame.
        match triptych_sys::fd::identity(fd.as_fd()) {
            Ok(id) if id.dev == claim.fence.identity.dev && id.ino == claim.fence.identity.ino => {}
            _ => return Finding::Refuted(format!("fd {n} is no longer the file described")),
        }
        match implicit_snapshot(fd.as_fd()) {
            Ok(sync) => sync,
            // The very file, and no DMA-BUF: an honest renderer refuses such a frame
            // outright, it never waits on it.
            Err(NoSnapshot::NotDmaBuf(why)) => {
                return Finding::Bogus(format!("fd {n} of the GPU process: {why}"))
            }
            Err(NoSnapshot::Failed(why)) => {
                return Finding::Refuted(format!("fd {n} of the GPU process: {why}"))
            }
        }
    } else {
        fd
    };
    let link = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))
    .map(|l| l.to_string_lossy().into_owned())
    .unwrap_or_default();
    if claim.kind != FenceKind::Implicit && !is_kind(&link, claim.kind) {
        return Finding::Bogus(format!(
            "fd {n} of the GPU process is {link:?}, not a {:?} fence",
            claim.kind
        ));
    }
    match wait_signalled(fd.as_fd(), grace) {
        Ok(FenceWait::Signalled) => Finding::Refuted(format!("fence fd {n} is signalled")),
        Ok(FenceWait::TimedOut) => Finding::Hung,
        // Its write end is closed: a live GPU process signalled it (and a reader took the
        // byte), or a dead one left it, whose death is a crash of its own.
        Ok(FenceWait::Abandoned) => {
            Finding::Refuted(format!("fence fd {n} was closed by its writer"))
        }
        Err(e) => Finding::Refuted(format!("fence fd {n}: {e}")),
    }
}

impl Checks {
    /// Starts checking `claim` unless a check of its view's is already running: one view's
    /// claims never keep another's from being checked.
    pub fn fence_claim(&mut self, gpu_pidfd: &OwnedFd, claim: Claim, grace: Duration) {
        if self.busy.contains(&claim.view) {
            return;
        }
        let Ok(pidfd) = triptych_sys::fd::dup_cloexec(gpu_pidfd.as_fd()) else {
            return;
        };
        let tx = self.tx.clone();
        let view = claim.view;
        let spawned = std::thread::Builder::new()
            .name("fence-check".into())
            .spawn(move || {
                let finding = check(&pidfd, &claim, grace);
                let _ = tx.send((claim, finding));
            });
        if spawned.is_ok() {
            self.busy.push(view);
        }
    }

    /// A verdict about a claim of `view`'s was taken from [`Checks::done`].
    pub fn finished(&mut self, view: ipc_protocol::messages::ViewId) {
        self.busy.retain(|v| *v != view);
    }
}
