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

use ipc_protocol::frame::FenceKind;
use ipc_protocol::seal::{Evidence, Finding, SealKey};

/// What the launcher knows of the GPU process the evidence is against.
#[derive(Debug)]
pub struct Known<'a> {
    /// Its key.
    pub key: &'a SealKey,
    /// Its epoch.
    pub epoch: u64,
    /// The newest size generation the launcher started.
    pub generation: u32,
    /// Its export window.
    pub window: (i32, i32),
    /// The fence kind it reported it exports.
    pub fence: FenceKind,
    /// Its pidfd, to take a named fence from it.
    pub pidfd: &'a OwnedFd,
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
}

/// Judges `e` against what is `known` ([`Evidence::judge`]), taking a fence it names from the
/// GPU process to look at it.
pub fn judge(e: &Evidence, known: &Known<'_>) -> Verdict {
    match e.judge(known.key, known.epoch, known.generation) {
        Finding::Lie(w) => Verdict::Lied(w),
        Finding::Holds(w) => Verdict::Refuted(w),
        Finding::Unsealed(w) => Verdict::Unsealed(w),
        Finding::Fence { seq, fence: f } => fence(&f, seq, known),
    }
}

/// The fence a sealed description names: of the kind the process exports, in its window, and,
/// where the file at that number is still the one named, a fence of that kind.
fn fence(f: &ipc_protocol::Fence<ipc_protocol::RemoteFd>, seq: u64, known: &Known<'_>) -> Verdict {
    let n = f.fd.fd;
    if f.kind != known.fence {
        return Verdict::Lied(format!(
            "sealed description {seq} names a {:?} fence; it exports {:?} fences",
            f.kind, known.fence
        ));
    }
    if !(known.window.0..known.window.1).contains(&n) {
        return Verdict::Lied(format!(
            "sealed description {seq} names fd {n}, outside its export window [{}, {}), as a fence",
            known.window.0, known.window.1
        ));
    }
    let fd = match triptych_sys::pidfd::pidfd_getfd(known.pidfd.as_fd(), n) {
        Ok(fd) => fd,
        Err(e) => return Verdict::Refuted(format!("fd {n} is no longer exported ({e})")),
    };
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
            what: "no fence".into(),
            frames: vec![Sealer::new(key.clone())
                .seal(&naming(remote, kind))
                .expect("sealed")],
            fence_of_layer: Some(0),
        };
        let pidfd = triptych_sys::pidfd::pidfd_open(std::process::id() as i32).expect("own pidfd");
        judge(
            &e,
            &Known {
                key: &key,
                epoch: 4,
                generation: 0,
                window: (0, 1 << 20),
                fence: FenceKind::Pipe,
                pidfd: &pidfd,
            },
        )
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
