//! The launcher's own look at a fence the renderer says is no fence.
//!
//! The launcher handed the renderer the frame, so it knows which fd the GPU process named as
//! the layer's fence and of which kind ([`ipc_protocol::relay::Relay::fence`]); the renderer's
//! word only says where to look. On a thread of its own (taking, inspecting and closing a file
//! of the GPU process's is never done on the supervisor's thread) it takes that fd from the
//! GPU process and compares its identity and kind:
//!
//! - [`Verdict::Lied`]: the file at that number is the one described, and no fence of the kind
//!   named (or the kind is one the process does not export): the GPU process is killed for it;
//! - [`Verdict::Refuted`]: it is a fence of that kind, or no longer the file described (the
//!   process may have replaced it since, so nothing is proven either way): counted.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use crossbeam_channel::{Receiver, Sender};
use ipc_protocol::frame::FenceKind;

/// What the look shows.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The GPU process lied.
    Lied(String),
    /// The look shows nothing against it, and why.
    Refuted(String),
}

/// A fence to look at: the one a frame handed on named, in the GPU process's fd table.
#[derive(Debug)]
pub struct FenceToLook {
    /// The GPU process's epoch.
    pub epoch: u64,
    /// The frame.
    pub frame: u64,
    /// The fence as named.
    pub fence: ipc_protocol::Fence<ipc_protocol::RemoteFd>,
    /// The GPU process's export window.
    pub window: (i32, i32),
    /// The fence kind it reported it exports.
    pub kind: FenceKind,
}

/// Looks in flight. Each runs on a thread of its own; the supervisor starts at most
/// `MAX_FENCE_LOOKS` per GPU process, so their number stays bounded.
#[derive(Debug)]
pub struct Looks {
    tx: Sender<(u64, Verdict)>,
    /// Verdicts arrive here, with the epoch of the GPU process they are about.
    pub done: Receiver<(u64, Verdict)>,
}

impl Default for Looks {
    fn default() -> Self {
        let (tx, done) = crossbeam_channel::unbounded();
        Self { tx, done }
    }
}

impl Looks {
    /// Starts looking at `look` in the process of `pidfd`; false if no thread could be made
    /// (the claim is then only counted).
    pub fn start(&mut self, pidfd: &OwnedFd, look: FenceToLook) -> bool {
        let Ok(pidfd) = triptych_sys::fd::dup_cloexec(pidfd.as_fd()) else {
            return false;
        };
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name("fence-look".into())
            .spawn(move || {
                let v = fence(&pidfd, &look);
                let _ = tx.send((look.epoch, v));
            })
            .is_ok()
    }
}

/// The fence a frame named: of the kind the process exports, in its window, and, where the
/// file at that number is still the one named, a fence of that kind.
fn fence(pidfd: &OwnedFd, c: &FenceToLook) -> Verdict {
    let (f, frame) = (&c.fence, c.frame);
    let n = f.fd.fd;
    if f.kind != c.kind {
        return Verdict::Lied(format!(
            "frame {frame} names a {:?} fence; it exports {:?} fences",
            f.kind, c.kind
        ));
    }
    if f.kind == FenceKind::Progress {
        // The relay checked the page and the point before it handed the frame on.
        return Verdict::Refuted(format!(
            "frame {frame} names progress point {} of its page, a number, not a file",
            f.point
        ));
    }
    if !(c.window.0..c.window.1).contains(&n) {
        return Verdict::Lied(format!(
            "frame {frame} names fd {n}, outside its export window [{}, {}), as a fence",
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
    if f.kind == FenceKind::Implicit {
        return match super::corroborate::implicit_snapshot(fd.as_fd()) {
            Ok(_) => Verdict::Refuted(format!("fd {n} is a DMA-BUF that gives its fences")),
            Err(super::corroborate::NoSnapshot::NotDmaBuf(why)) => Verdict::Lied(format!(
                "frame {frame} names fd {n} for implicit fences: {why}"
            )),
            Err(super::corroborate::NoSnapshot::Failed(why)) => {
                Verdict::Refuted(format!("fd {n}: {why}"))
            }
        };
    }
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default();
    if super::corroborate::is_kind(&link, f.kind) {
        Verdict::Refuted(format!("fd {n} is a {:?} fence", f.kind))
    } else {
        Verdict::Lied(format!(
            "frame {frame} names fd {n}, {link:?}, as a {:?} fence",
            f.kind
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_protocol::{Fence, FileId, RemoteFd};

    fn verdict_on(fd: &OwnedFd, kind: FenceKind) -> Verdict {
        let id = triptych_sys::fd::identity(fd.as_fd()).expect("identity");
        let remote = RemoteFd {
            pid: std::process::id(),
            fd: fd.as_raw_fd(),
            identity: FileId {
                dev: id.dev,
                ino: id.ino,
            },
        };
        let pidfd = triptych_sys::pidfd::pidfd_open(std::process::id() as i32).expect("own pidfd");
        let mut looks = Looks::default();
        assert!(looks.start(
            &pidfd,
            FenceToLook {
                epoch: 4,
                frame: 1,
                fence: Fence {
                    kind,
                    fd: remote,
                    point: 0,
                },
                window: (0, 1 << 20),
                kind: FenceKind::Pipe,
            }
        ));
        let (epoch, v) = looks
            .done
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("a verdict");
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
