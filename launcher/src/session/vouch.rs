//! The launcher vouching for a GPU process's frames: once the renderer has claimed that the
//! process broke a frame, the launcher stops taking either side's word about the frames that
//! follow and checks each one itself before handing it on.
//!
//! A claim by the renderer (a rejection, a fence it says is no fence or never signalled) is its
//! word against the GPU process's, and the files it is about sit in the GPU process's fd table,
//! where that process can put another file at the number after the renderer took it. So from
//! the first claim against a GPU process on, every frame of that process goes through a
//! thread of the launcher's ([`Vouch`]), which, for each layer:
//!
//! - takes the buffer's fd from the GPU process (`pidfd_getfd`), checks that it is the file the
//!   description names (identity) and one the renderer's import accepts: long enough, sealed
//!   or a real DMA-BUF, mappable ([`ipc_protocol::buffer_file`], the renderer's own check);
//! - takes the fence's fd, checks its identity and that it is a fence of the kind the process
//!   exports (its `/proc/self/fd` link), and waits for it to signal, up to the renderer's own
//!   fence deadline.
//!
//! A frame that passes is handed on as [`LauncherToRenderer::Vouched`], with the very buffer
//! files the launcher checked: the renderer reads those, not whatever the GPU process holds at
//! the numbers by then, and waits on no fence, since the launcher saw them all signalled (and a
//! signalled sync_file or pipe fence stays so). A renderer that rejects such a frame, or claims
//! one of its fences timed out, lies, and is killed for it. A frame that fails is the GPU
//! process's lie, seen by the launcher itself ([`Outcome::Lied`]), and a fence that never
//! signals in time is its hang ([`Outcome::Hung`]): either costs the GPU process its life, and
//! nobody else anything.
//!
//! The cost is a thread, an fd transfer per layer per frame and the launcher's wait on each
//! frame's fences, paid only for a GPU process some renderer has accused; it is logged, marked
//! in the trace as a fallback and counted in the summary (`trust.vouched_frames`) and in the
//! renderer's own counters. Taking, inspecting and closing a GPU process's files and waiting on
//! its fences is never done on the supervisor's thread.
//!
//! [`LauncherToRenderer::Vouched`]: ipc_protocol::messages::LauncherToRenderer::Vouched

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ipc_protocol::frame::FenceKind;
use ipc_protocol::messages::{FrameMsg, ViewId};
use ipc_protocol::progress::ProgressReader;
use ipc_protocol::{FileId, RemoteFd};
use triptych_sys::poll::{wait_signalled, FenceWait};

/// How long a fence found closed unsignalled waits for its process's exit to show, before it is
/// taken for a lie.
const DEATH_GRACE: Duration = Duration::from_millis(100);

/// A frame to vouch for, handed on while the renderer link `link` was current.
#[derive(Debug)]
pub struct Job {
    /// The GPU process's pidfd, duplicated for this frame (so an idle thread holds no fd).
    pub pidfd: OwnedFd,
    /// The frame, already checked by the relay.
    pub msg: FrameMsg,
    /// The renderer link it was handed on to ([`ipc_protocol::relay::Relay::link`]).
    pub link: u64,
}

/// What vouching for a frame found.
#[derive(Debug)]
pub enum Outcome {
    /// Every layer checked and every fence signalled: hand it on with these buffers, one per
    /// layer in the frame's order.
    Vouched {
        /// The frame.
        msg: FrameMsg,
        /// Its buffers, as taken and checked.
        buffers: Vec<OwnedFd>,
    },
    /// The GPU process's files break the frame's description.
    Lied {
        /// What was wrong.
        why: String,
    },
    /// The process exited before its fds could be taken: its exit is recorded as what it is.
    Gone,
    /// A fence did not signal within the deadline.
    Hung {
        /// The frame.
        frame: u64,
        /// The layer.
        layer: u32,
    },
}

/// The vouching thread of one GPU process. Dropping this ends the thread once it has finished
/// the frame in hand.
#[derive(Debug)]
pub struct Vouch {
    jobs: Sender<Job>,
    /// The renderer link frames are handed on to now: a job of an earlier one is skipped, as
    /// the GPU process may already have closed and reused its fds.
    link: Arc<AtomicU64>,
}

/// What the thread sends: the GPU process's epoch, the view and its renderer link the frame was
/// for, and what vouching for it found.
pub type Done = (u64, ViewId, u64, Outcome);

impl Vouch {
    /// Starts vouching for `view`'s frames from the GPU process of `epoch` (exporting fences
    /// of `kind`) on renderer link `link`, waiting up to
    /// `fence_timeout` on each frame's fences; each outcome goes to `done`. `None` if no thread
    /// could be made.
    pub fn start(
        epoch: u64,
        view: ViewId,
        link: u64,
        kind: FenceKind,
        progress: Option<Arc<ProgressReader>>,
        fence_timeout: Duration,
        done: Sender<Done>,
    ) -> Option<Vouch> {
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        let link = Arc::new(AtomicU64::new(link));
        let current = link.clone();
        std::thread::Builder::new()
            .name("vouch".into())
            .spawn(move || {
                for job in rx {
                    if job.link != current.load(Ordering::Acquire) {
                        continue;
                    }
                    let link = job.link;
                    let outcome = vouch(job, kind, progress.clone(), fence_timeout);
                    if done.send((epoch, view, link, outcome)).is_err() {
                        return;
                    }
                }
            })
            .ok()?;
        Some(Vouch { jobs, link })
    }

    /// The renderer was replaced: frames are handed on to link `link` from now on.
    pub fn relinked(&self, link: u64) {
        self.link.store(link, Ordering::Release);
    }

    /// Queues `job`; false if the thread is gone. The relay lets the GPU process have at most a
    /// pool of frames out, so the queue stays that short.
    pub fn submit(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }
}

/// Why a described fd was not taken.
enum NotTaken {
    /// The process has exited: its death, not a lie, and its exit says how.
    Gone,
    /// The file at that number is not the one described, or none is there.
    Lie(String),
}

/// Takes fd `remote` from the process of `pidfd` and checks it is the file described.
fn take(pidfd: &OwnedFd, field: &str, remote: &RemoteFd) -> Result<OwnedFd, NotTaken> {
    let n = remote.fd;
    let fd = match triptych_sys::pidfd::pidfd_getfd(pidfd.as_fd(), n) {
        Ok(fd) => fd,
        Err(triptych_sys::pidfd::PidfdError::NoProcess { .. }) => return Err(NotTaken::Gone),
        Err(e) => {
            return Err(NotTaken::Lie(format!(
                "{field}: fd {n} could not be taken ({e})"
            )))
        }
    };
    let lie = |what: String| NotTaken::Lie(what);
    let id = triptych_sys::fd::identity(fd.as_fd())
        .map_err(|e| lie(format!("{field}: fd {n} cannot be examined ({e})")))?;
    let got = FileId {
        dev: id.dev,
        ino: id.ino,
    };
    if got != remote.identity {
        return Err(lie(format!(
            "{field}: fd {n} is not the file described (identity {}:{}, described {}:{})",
            got.dev, got.ino, remote.identity.dev, remote.identity.ino
        )));
    }
    Ok(fd)
}

/// Vouches for one frame, or says why not.
fn vouch(
    job: Job,
    kind: FenceKind,
    progress: Option<Arc<ProgressReader>>,
    fence_timeout: Duration,
) -> Outcome {
    let frame = job.msg.frame;
    let pidfd = &job.pidfd;
    let lied = |why: String| Outcome::Lied {
        why: format!("frame {frame}, vouched for by the launcher: {why}"),
    };
    let mut buffers = Vec::with_capacity(job.msg.layers.len());
    let mut fences = Vec::with_capacity(job.msg.layers.len());
    let mut points = Vec::new();
    for l in &job.msg.layers {
        let layer = l.layer;
        let b = &l.buffer;
        let (Some(plane), Ok(ends)) = (b.planes.first(), b.validate_shape()) else {
            return lied(format!("layers[{layer}]: a buffer without a plane"));
        };
        let Some(end) = ends.first().copied() else {
            return lied(format!("layers[{layer}]: a buffer without a plane"));
        };
        let field = format!("layers[{layer}].planes[0]");
        let fd = match take(pidfd, &field, &plane.fd) {
            Ok(fd) => fd,
            Err(NotTaken::Gone) => return Outcome::Gone,
            Err(NotTaken::Lie(why)) => return lied(why),
        };
        if let Err(e) = ipc_protocol::buffer_file::check(fd.as_fd(), b.kind, end) {
            return lied(format!("layers[{layer}]: {e}"));
        }
        buffers.push(fd);
        let field = format!("layers[{layer}].fence");
        if b.fence.kind != kind {
            return lied(format!(
                "{field}: a {:?} fence; the process exports {kind:?} fences",
                b.fence.kind
            ));
        }
        if kind == FenceKind::Progress {
            // A point of the page (checked by the relay): nothing to take.
            points.push((layer, b.fence.point));
            continue;
        }
        let fence = match take(pidfd, &field, &b.fence.fd) {
            Ok(fd) => fd,
            Err(NotTaken::Gone) => return Outcome::Gone,
            Err(NotTaken::Lie(why)) => return lied(why),
        };
        if kind == FenceKind::Implicit {
            // The fences of a DMA-BUF (the buffer, or its carrier), as they are now.
            // As a fence that cannot be polled below, one whose fences cannot be taken is
            // counted against the process that named it.
            match super::corroborate::implicit_snapshot(fence.as_fd()) {
                Ok(sync) => fences.push((layer, sync)),
                Err(
                    super::corroborate::NoSnapshot::NotDmaBuf(why)
                    | super::corroborate::NoSnapshot::Failed(why),
                ) => return lied(format!("{field}: fd {}: {why}", b.fence.fd.fd)),
            }
            continue;
        }
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fence.as_raw_fd()))
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !super::corroborate::is_kind(&link, kind) {
            return lied(format!(
                "{field}: fd {} is {link:?}, not a {kind:?} fence",
                b.fence.fd.fd
            ));
        }
        fences.push((layer, fence));
    }
    let deadline = Instant::now() + fence_timeout;
    for (layer, point) in points {
        let Some(page) = &progress else {
            return lied(format!(
                "layers[{layer}].fence: a progress fence, and it was given no progress page"
            ));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        match page.wait(point, left, None, || false) {
            Ok(true) => {}
            // A process that dies mid-render never reaches its point: its death, not a hang.
            Ok(false)
                if matches!(
                    triptych_sys::poll::wait_readable(pidfd.as_fd(), DEATH_GRACE),
                    Ok(triptych_sys::poll::WaitOutcome::Ready)
                ) =>
            {
                return Outcome::Gone
            }
            Ok(false) => return Outcome::Hung { frame, layer },
            Err(e) => return lied(format!("layers[{layer}].fence: {e}")),
        }
    }
    for (layer, fence) in fences {
        let left = deadline.saturating_duration_since(Instant::now());
        match wait_signalled(fence.as_fd(), left) {
            Ok(FenceWait::Signalled) => {}
            Ok(FenceWait::TimedOut) => return Outcome::Hung { frame, layer },
            // A pipe fence closed without its byte, or whose byte was read away. It is here only
            // kept private, outside the window (pipe fences are vouched for only once the process
            // keeps them so, and the relay refuses any other): only the GPU process holds it
            // besides the launcher, which never reads it.
            // A process that dies mid-render closes its write ends before its pidfd says it
            // exited: a moment's wait tells its death from a lie.
            Ok(FenceWait::Abandoned)
                if matches!(
                    triptych_sys::poll::wait_readable(pidfd.as_fd(), DEATH_GRACE),
                    Ok(triptych_sys::poll::WaitOutcome::Ready)
                ) =>
            {
                return Outcome::Gone
            }
            Ok(FenceWait::Abandoned) => {
                return lied(format!(
                    "layers[{layer}].fence, which it keeps private: closed by its writer unsignalled, or its signal read away"
                ))
            }
            Err(e) => return lied(format!("layers[{layer}].fence: {e}")),
        }
    }
    Outcome::Vouched {
        msg: job.msg,
        buffers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_protocol::frame::{BufferKind, DrmFormat, Fence, Frame, Plane};
    use ipc_protocol::messages::{LayerMsg, LayerPlacement};
    use ipc_protocol::BufferId;

    fn remote(fd: &OwnedFd) -> RemoteFd {
        let id = triptych_sys::fd::identity(fd.as_fd()).expect("identity");
        RemoteFd {
            pid: std::process::id(),
            fd: fd.as_raw_fd(),
            identity: FileId {
                dev: id.dev,
                ino: id.ino,
            },
        }
    }

    fn frame(buffer: &OwnedFd, fence: &OwnedFd, width: u32) -> FrameMsg {
        FrameMsg {
            epoch: 1,
            generation: 0,
            frame: 7,
            sent_ns: 0,
            scene_version: 0,
            layers: vec![LayerMsg {
                layer: 0,
                placement: LayerPlacement {
                    x: 0,
                    y: 0,
                    z: 0,
                    opacity: 255,
                },
                buffer: Frame {
                    id: BufferId {
                        slot: 0,
                        generation: 1,
                    },
                    kind: BufferKind::Shm,
                    format: DrmFormat {
                        fourcc: ipc_protocol::frame::DRM_FORMAT_ABGR8888,
                        modifier: ipc_protocol::frame::DRM_FORMAT_MOD_LINEAR,
                    },
                    width,
                    height: 4,
                    planes: vec![Plane {
                        fd: remote(buffer),
                        offset: 0,
                        stride: width * 4,
                    }],
                    fence: Fence {
                        kind: FenceKind::Pipe,
                        fd: remote(fence),
                        point: 0,
                    },
                },
                damage: Vec::new(),
                damage_since: None,
            }],
        }
    }

    fn outcome(msg: FrameMsg, timeout: Duration) -> Outcome {
        let pidfd = triptych_sys::pidfd::pidfd_open(std::process::id() as i32).expect("pidfd");
        outcome_in(pidfd, msg, timeout)
    }

    fn outcome_in(pidfd: OwnedFd, msg: FrameMsg, timeout: Duration) -> Outcome {
        let (tx, rx) = crossbeam_channel::unbounded();
        let v = Vouch::start(1, ViewId(2), 3, FenceKind::Pipe, None, timeout, tx).expect("thread");
        // A job of an earlier link is skipped: nothing comes of it.
        let stale = triptych_sys::fd::dup_cloexec(pidfd.as_fd()).expect("dup");
        assert!(v.submit(Job {
            pidfd: stale,
            msg: msg.clone(),
            link: 2
        }));
        assert!(v.submit(Job {
            pidfd,
            msg,
            link: 3
        }));
        let (epoch, view, link, o) = rx.recv_timeout(Duration::from_secs(10)).expect("outcome");
        assert_eq!((epoch, view, link), (1, ViewId(2), 3));
        o
    }

    #[test]
    fn a_good_frame_is_vouched_for_with_its_own_buffer_and_a_bad_one_is_a_lie() {
        let buffer = triptych_sys::memfd::create_sealed(c"buffer", 4096).expect("memfd");
        let (read, write) = triptych_sys::fd::pipe_cloexec().expect("pipe");
        // Not signalled yet: the launcher waits out the deadline and finds a hang.
        let o = outcome(frame(&buffer, &read, 16), Duration::from_millis(50));
        assert!(matches!(o, Outcome::Hung { frame: 7, layer: 0 }), "{o:?}");
        let mut w = std::fs::File::from(write);
        std::io::Write::write_all(&mut w, &[1]).expect("signal");
        drop(w);
        match outcome(frame(&buffer, &read, 16), Duration::from_secs(5)) {
            Outcome::Vouched { buffers, .. } => {
                let a = triptych_sys::fd::identity(buffers[0].as_fd()).expect("id");
                let b = triptych_sys::fd::identity(buffer.as_fd()).expect("id");
                assert_eq!((a.dev, a.ino), (b.dev, b.ino), "the very file described");
            }
            o => panic!("{o:?}"),
        }
        // A plane longer than the file.
        let o = outcome(frame(&buffer, &read, 512), Duration::from_secs(5));
        assert!(
            matches!(&o, Outcome::Lied { why, .. } if why.contains("beyond")),
            "{o:?}"
        );
        // A process that has exited: its death, no lie.
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .expect("sleep");
        let dead = triptych_sys::pidfd::pidfd_open(child.id() as i32).expect("pidfd");
        child.kill().expect("kill");
        child.wait().expect("reaped");
        let o = outcome_in(dead, frame(&buffer, &read, 16), Duration::from_secs(5));
        assert!(matches!(o, Outcome::Gone), "{o:?}");
        // The buffer's file at the fence's place.
        let o = outcome(frame(&buffer, &buffer, 16), Duration::from_secs(5));
        assert!(
            matches!(&o, Outcome::Lied { why, .. } if why.contains("not a Pipe fence")),
            "{o:?}"
        );
    }
}
