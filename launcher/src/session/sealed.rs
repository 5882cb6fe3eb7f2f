//! Judging what the renderer shows of the GPU process's sealed frame descriptions
//! ([`ipc_protocol::seal`]).
//!
//! The renderer forwards the descriptions it found a lie in. The launcher believes none of its
//! words: it checks each seal with the GPU process's key, and then the lie itself from what it
//! knows (the process's epoch, the size generations it started, the fence kind the process
//! reported, the fd the description names, taken from the process itself). The verdict:
//!
//! - [`Verdict::Lied`]: the sealed bytes break the protocol; the GPU process is killed for it;
//! - [`Verdict::Refuted`]: the descriptions hold (a renderer's mistake or its lie; nobody is
//!   blamed, the summary counts it);
//! - [`Verdict::Unsealed`]: a seal does not hold, so nothing shows who made the bytes (a GPU
//!   process writing unsealed garbage and a renderer forging a description look the same);
//!   counted.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use crossbeam_channel::{Receiver, Sender};
use ipc_protocol::frame::FenceKind;
use ipc_protocol::seal::{Evidence, Finding, SealKey};

/// What the launcher knows of the GPU process the evidence is against.
#[derive(Debug)]
pub struct Known<'a> {
    /// Its key.
    pub key: &'a SealKey,
    /// The identity of the link the evidence came over (the inode of the GPU process's end).
    pub link: u64,
    /// Its epoch.
    pub epoch: u64,
    /// The newest size generation the launcher started.
    pub generation: u32,
}

/// What the evidence shows.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The GPU process lied, as the sealed descriptions show.
    Lied(String),
    /// The descriptions show nothing against it, and why.
    Refuted(String),
    /// A seal does not hold.
    Unsealed(String),
    /// The lie is in a fence, which is being looked at ([`Checks`]).
    Checking,
}

/// A fence to look at: the one a sealed description named, in the GPU process's fd table.
#[derive(Debug)]
pub struct FenceToCheck {
    /// The GPU process's epoch.
    pub epoch: u64,
    /// The description's number.
    pub seq: u64,
    /// The fence as named.
    pub fence: ipc_protocol::Fence<ipc_protocol::RemoteFd>,
    /// The GPU process's export window.
    pub window: (i32, i32),
    /// The fence kind it reported it exports.
    pub kind: FenceKind,
}

/// Judges `e` against what is `known` ([`Evidence::judge`]). A fence it names is looked at on a
/// thread of its own ([`Checks::start`]): taking, inspecting and closing a file of the GPU
/// process's is never done on the supervisor's thread.
pub fn judge(
    e: &Evidence,
    known: &Known<'_>,
) -> Result<Verdict, (u64, ipc_protocol::Fence<ipc_protocol::RemoteFd>)> {
    match e.judge(known.key, known.link, known.epoch, known.generation) {
        Finding::Lie(w) => Ok(Verdict::Lied(w)),
        Finding::Holds(w) => Ok(Verdict::Refuted(w)),
        Finding::Unsealed(w) => Ok(Verdict::Unsealed(w)),
        Finding::Fence { seq, fence } => Err((seq, fence)),
    }
}

/// Fence checks in flight, one at a time.
#[derive(Debug)]
pub struct Checks {
    busy: bool,
    tx: Sender<(u64, Verdict)>,
    /// Verdicts arrive here, with the epoch of the GPU process they are about.
    pub done: Receiver<(u64, Verdict)>,
}

impl Default for Checks {
    fn default() -> Self {
        let (tx, done) = crossbeam_channel::bounded(2);
        Self {
            busy: false,
            tx,
            done,
        }
    }
}

impl Checks {
    /// Starts looking at `check` in the process of `pidfd`; false if one is under way or no
    /// thread could be made (the showing is then not judged).
    pub fn start(&mut self, pidfd: &OwnedFd, check: FenceToCheck) -> bool {
        if self.busy {
            return false;
        }
        let Ok(pidfd) = triptych_sys::fd::dup_cloexec(pidfd.as_fd()) else {
            return false;
        };
        let tx = self.tx.clone();
        self.busy = std::thread::Builder::new()
            .name("evidence-fence".into())
            .spawn(move || {
                let v = fence(&pidfd, &check);
                let _ = tx.send((check.epoch, v));
            })
            .is_ok();
        self.busy
    }

    /// A verdict was taken from [`Checks::done`].
    pub fn finished(&mut self) {
        self.busy = false;
    }
}

/// The fence a sealed description names: of the kind the process exports, in its window, and,
/// where the file at that number is still the one named, a fence of that kind.
fn fence(pidfd: &OwnedFd, c: &FenceToCheck) -> Verdict {
    let (f, seq) = (&c.fence, c.seq);
    let n = f.fd.fd;
    if f.kind != c.kind {
        return Verdict::Lied(format!(
            "sealed description {seq} names a {:?} fence; it exports {:?} fences",
            f.kind, c.kind
        ));
    }
    if !(c.window.0..c.window.1).contains(&n) {
        return Verdict::Lied(format!(
            "sealed description {seq} names fd {n}, outside its export window [{}, {}), as a fence",
            c.window.0, c.window.1
        ));
    }
    let fd = match triptych_sys::pidfd::pidfd_getfd(pidfd.as_fd(), n) {
        Ok(fd) => fd,
        Err(e) => return Verdict::Refuted(format!("fd {n} is no longer exported ({e})")),
    };
    // The identity tells apart files of real filesystems (pipes, memfds, DMA-BUFs); every
    // anonymous-inode file (a sync_file, an eventfd) shares one, so for those the kind decides.
    match triptych_sys::fd::identity(fd.as_fd()) {
        Ok(id) if id.dev == f.fd.identity.dev && id.ino == f.fd.identity.ino => {}
        _ => return Verdict::Refuted(format!("fd {n} is no longer the file described")),
    }
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default();
    if super::corroborate::is_kind(&link, f.kind) {
        Verdict::Refuted(format!("fd {n} is a {:?} fence", f.kind))
    } else {
        Verdict::Lied(format!(
            "sealed description {seq} names fd {n}, {link:?}, as a {:?} fence",
            f.kind
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_protocol::messages::{FrameMsg, LayerMsg, LayerPlacement};
    use ipc_protocol::seal::{Sealer, SEAL_LEN};
    use ipc_protocol::{BufferId, DrmFormat, Fence, FileId, Frame, Plane, RemoteFd};

    /// A description whose only layer names `fence` of `kind` as its fence.
    fn naming(fence: RemoteFd, kind: FenceKind) -> FrameMsg {
        FrameMsg {
            epoch: 4,
            generation: 0,
            frame: 1,
            sent_ns: 1,
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
                    kind: ipc_protocol::frame::BufferKind::Shm,
                    format: DrmFormat {
                        fourcc: ipc_protocol::frame::DRM_FORMAT_ABGR8888,
                        modifier: 0,
                    },
                    width: 1,
                    height: 1,
                    planes: vec![Plane {
                        fd: fence,
                        offset: 0,
                        stride: 4,
                    }],
                    fence: Fence { kind, fd: fence },
                },
                damage: Vec::new(),
                damage_since: None,
            }],
        }
    }

    fn verdict_on(fd: &OwnedFd, kind: FenceKind) -> Verdict {
        let key = SealKey([3; SEAL_LEN]);
        let id = triptych_sys::fd::identity(fd.as_fd()).expect("identity");
        let remote = RemoteFd {
            pid: std::process::id(),
            fd: fd.as_raw_fd(),
            identity: FileId {
                dev: id.dev,
                ino: id.ino,
            },
        };
        let e = Evidence {
            epoch: 4,
            what: "no fence".into(),
            frames: vec![Sealer::new(key.clone(), 9)
                .seal(&naming(remote, kind))
                .expect("sealed")],
            fence_of_layer: Some(0),
        };
        let known = Known {
            key: &key,
            link: 9,
            epoch: 4,
            generation: 0,
        };
        let Err((seq, fence)) = judge(&e, &known) else {
            panic!("no fence to look at");
        };
        let pidfd = triptych_sys::pidfd::pidfd_open(std::process::id() as i32).expect("own pidfd");
        let mut checks = Checks::default();
        assert!(checks.start(
            &pidfd,
            FenceToCheck {
                epoch: 4,
                seq,
                fence,
                window: (0, 1 << 20),
                kind: FenceKind::Pipe,
            }
        ));
        let (epoch, v) = checks
            .done
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("a verdict");
        checks.finished();
        assert_eq!(epoch, 4);
        v
    }

    #[test]
    fn a_fence_named_is_taken_from_the_process_and_judged_by_what_it_is() {
        let (read, _write) = triptych_sys::fd::pipe_cloexec().expect("pipe");
        let v = verdict_on(&read, FenceKind::Pipe);
        assert!(matches!(v, Verdict::Refuted(_)), "{v:?}");
        let memfd = triptych_sys::memfd::create_sealed(c"not-a-fence", 64).expect("memfd");
        let v = verdict_on(&memfd, FenceKind::Pipe);
        assert!(
            matches!(&v, Verdict::Lied(w) if w.contains("memfd")),
            "{v:?}"
        );
        // A kind the process does not export.
        let v = verdict_on(&read, FenceKind::SyncFile);
        assert!(
            matches!(&v, Verdict::Lied(w) if w.contains("exports Pipe")),
            "{v:?}"
        );
    }
}
