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
use ipc_protocol::seal::{Evidence, SealKey, MAX_EVIDENCE_FRAMES};

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

/// Judges `e` against what is `known`.
pub fn judge(e: &Evidence, known: &Known<'_>) -> Verdict {
    if e.frames.is_empty() || e.frames.len() > MAX_EVIDENCE_FRAMES {
        return Verdict::Refuted(format!("{} descriptions shown", e.frames.len()));
    }
    if let Some(f) = e.frames.iter().find(|f| !f.verify(known.key)) {
        return Verdict::Unsealed(format!("the seal of description {} does not hold", f.seq));
    }
    let mut opened = Vec::with_capacity(e.frames.len());
    for f in &e.frames {
        match f.open() {
            Ok(m) => opened.push((f.seq, m)),
            Err(v) => {
                return Verdict::Lied(format!("sealed description {} does not decode: {v}", f.seq))
            }
        }
    }
    for (seq, m) in &opened {
        if m.epoch != known.epoch {
            return Verdict::Lied(format!(
                "sealed description {seq} gives epoch {}, its own is {}",
                m.epoch, known.epoch
            ));
        }
        if m.generation > known.generation {
            return Verdict::Lied(format!(
                "sealed description {seq} is of size generation {}, which was never started (the newest is {})",
                m.generation, known.generation
            ));
        }
    }
    if let [(sa, a), (sb, b)] = &opened[..] {
        if sa.checked_add(1) == Some(*sb) && a.frame.checked_add(1) != Some(b.frame) {
            return Verdict::Lied(format!(
                "sealed frame {} right after frame {} (descriptions {sa} and {sb})",
                b.frame, a.frame
            ));
        }
    }
    let Some(layer) = e.fence_of_layer else {
        return Verdict::Refuted("the sealed descriptions hold".to_owned());
    };
    let Some((seq, m)) = opened.last() else {
        return Verdict::Refuted("no description".to_owned());
    };
    let Some(l) = m.layers.iter().find(|l| l.layer == layer) else {
        return Verdict::Refuted(format!("description {seq} has no layer {layer}"));
    };
    fence(&l.buffer.fence, *seq, known)
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
    use ipc_protocol::messages::FrameMsg;
    use ipc_protocol::seal::{Sealer, SEAL_LEN};

    fn msg(frame: u64, generation: u32) -> FrameMsg {
        FrameMsg {
            epoch: 4,
            generation,
            frame,
            sent_ns: 1,
            layers: Vec::new(),
        }
    }

    fn evidence(frames: Vec<ipc_protocol::seal::SealedFrame>) -> Evidence {
        Evidence {
            what: "said".into(),
            frames,
            fence_of_layer: None,
        }
    }

    fn verdict(e: &Evidence, key: &SealKey) -> Verdict {
        let pidfd = triptych_sys::pidfd::pidfd_open(std::process::id() as i32).expect("own pidfd");
        judge(
            e,
            &Known {
                key,
                epoch: 4,
                generation: 2,
                window: (512, 768),
                fence: FenceKind::Pipe,
                pidfd: &pidfd,
            },
        )
    }

    #[test]
    fn consecutive_descriptions_of_frames_out_of_order_are_a_lie() {
        let key = SealKey([3; SEAL_LEN]);
        let mut s = Sealer::new(key.clone());
        let a = s.seal(&msg(10, 0)).expect("sealed");
        let twice = s.seal(&msg(10, 0)).expect("sealed");
        let ahead = s.seal(&msg(14, 0)).expect("sealed");
        let v = verdict(&evidence(vec![a.clone(), twice.clone()]), &key);
        assert!(
            matches!(&v, Verdict::Lied(w) if w.contains("frame 10 right after frame 10")),
            "{v:?}"
        );
        let v = verdict(&evidence(vec![twice, ahead.clone()]), &key);
        assert!(matches!(v, Verdict::Lied(_)), "{v:?}");
        // A gap in the numbering shows nothing: the renderer could have left one out.
        let v = verdict(&evidence(vec![a, ahead]), &key);
        assert!(matches!(v, Verdict::Refuted(_)), "{v:?}");
    }

    #[test]
    fn in_order_descriptions_hold_and_forged_ones_show_nothing() {
        let key = SealKey([3; SEAL_LEN]);
        let mut s = Sealer::new(key.clone());
        let a = s.seal(&msg(10, 0)).expect("sealed");
        let b = s.seal(&msg(11, 2)).expect("sealed");
        let v = verdict(&evidence(vec![a.clone(), b.clone()]), &key);
        assert!(matches!(v, Verdict::Refuted(_)), "{v:?}");
        // Made by someone without the key: a renderer framing the GPU process.
        let mut forger = Sealer::new(SealKey([9; SEAL_LEN]));
        let forged = forger.seal(&msg(10, 0)).expect("sealed");
        let mut renumbered = forged.clone();
        renumbered.seq = 1;
        let v = verdict(&evidence(vec![a.clone(), renumbered]), &key);
        assert!(matches!(v, Verdict::Unsealed(_)), "{v:?}");
        // A true seal moved onto other bytes.
        let mut moved = b;
        moved.body = a.body.clone();
        assert!(matches!(
            verdict(&evidence(vec![a, moved]), &key),
            Verdict::Unsealed(_)
        ));
        assert!(matches!(
            verdict(&evidence(Vec::new()), &key),
            Verdict::Refuted(_)
        ));
    }

    #[test]
    fn one_description_shows_a_wrong_epoch_or_a_generation_never_started() {
        let key = SealKey([5; SEAL_LEN]);
        let mut s = Sealer::new(key.clone());
        let mut other = msg(3, 0);
        other.epoch = 1000;
        let v = verdict(&evidence(vec![s.seal(&other).expect("sealed")]), &key);
        assert!(
            matches!(&v, Verdict::Lied(w) if w.contains("epoch 1000")),
            "{v:?}"
        );
        let v = verdict(&evidence(vec![s.seal(&msg(4, 3)).expect("sealed")]), &key);
        assert!(
            matches!(&v, Verdict::Lied(w) if w.contains("generation 3")),
            "{v:?}"
        );
        let garbage = s.seal_body(vec![0xff; 12]);
        let v = verdict(&evidence(vec![garbage]), &key);
        assert!(
            matches!(&v, Verdict::Lied(w) if w.contains("does not decode")),
            "{v:?}"
        );
    }
}
