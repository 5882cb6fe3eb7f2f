//! Sealed frame descriptions: what the GPU process tells the renderer, in a form the renderer can
//! show the launcher and cannot forge.
//!
//! The launcher does not see the frame channel between the GPU process and the renderer, so when
//! the renderer says the GPU process lied on it, the launcher has only the renderer's word, and a
//! compromised renderer could make the same claim to frame the GPU process. Sealing turns the
//! description itself into the evidence:
//!
//! - The launcher makes a fresh random [`SealKey`] for every GPU process and hands it over in
//!   `Start`; the renderer never gets it.
//! - The GPU process sends every description as a [`SealedFrame`]: its encoded bytes, a sequence
//!   number counting the descriptions sent on this link from 0, and a keyed BLAKE3 hash under its
//!   key (a MAC) of both and of the link: the inode number of the GPU process's end of the peer
//!   socket, which the launcher made and holds a duplicate of. Descriptions of one link therefore
//!   prove nothing about another link of the same process (a renderer that outlived a restart
//!   through memory it shared cannot mix them).
//! - The renderer cannot check a seal (it has no key). It decodes the body, judges it, and, when it
//!   finds a lie, forwards the sealed description as received ([`Evidence`]).
//! - The launcher checks the seal with that GPU process's key. A valid seal proves the GPU process
//!   sent exactly these bytes under this sequence number; a forged or altered one proves nothing
//!   against anyone (an unsealed datagram could come from either side) and is only counted.
//!
//! What one sealed description proves against its sender, checked by the launcher from what it
//! knows itself: a body that does not decode, another GPU process's epoch, a size generation the
//! launcher never started, a fence of a kind the process does not export (the launcher takes the
//! named fd itself and compares its identity). Two sealed descriptions with consecutive sequence
//! numbers prove the frame numbers must be consecutive too, since an honest GPU process sends its
//! frames in order, one description each, and its link ends at the first one it cannot send; so a
//! frame sent twice or one numbered ahead is proven by the two descriptions around it. A gap in
//! the sequence numbers proves nothing: a renderer could have left descriptions out.
//!
//! BLAKE3's keyed mode is the MAC (the `blake3` crate; its comparison of hashes is constant time).
//! A MAC, not a signature: the launcher holds the key as well, and it is the one party trusted.
//!
//! What seals do not do: the renderer cannot check a seal, so a GPU process that seals wrongly on
//! purpose, or skips a sequence number before a lie, makes that lie unprovable. Such a lie still
//! costs the GPU process what it sent (the renderer never composites it), and one whose every
//! frame is a lie holds all the work and is blamed for the stall: the renderer protecting itself
//! is the guarantee, proof is what lets the launcher act at once.

use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::channel::{SendError, Sender};
use crate::messages::{FrameMsg, GpuToRenderer};

/// Bytes in a [`SealKey`] and a seal.
pub const SEAL_LEN: usize = 32;

/// The key a GPU process seals its descriptions with, made by the launcher for that process
/// alone. Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealKey(pub [u8; SEAL_LEN]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

/// A frame description as the GPU process sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedFrame {
    /// The description's place on its link, from 0.
    pub seq: u64,
    /// The encoded [`FrameMsg`].
    pub body: Vec<u8>,
    /// The keyed BLAKE3 hash of `seq` and `body`.
    pub seal: [u8; SEAL_LEN],
}

impl SealedFrame {
    /// Decodes the body, with the channel's own decoder (the seal is not checked: only the
    /// launcher can).
    pub fn open(&self) -> Result<FrameMsg, crate::channel::Violation> {
        crate::channel::decode::<FrameMsg>(&self.body, Vec::new()).map(|(m, _)| m)
    }

    /// Whether the seal is `key`'s over this sequence number and body on `link`.
    pub fn verify(&self, key: &SealKey, link: u64) -> bool {
        blake3::Hash::from_bytes(self.seal) == mac(key, link, self.seq, &self.body)
    }
}

fn mac(key: &SealKey, link: u64, seq: u64, body: &[u8]) -> blake3::Hash {
    let mut h = blake3::Hasher::new_keyed(&key.0);
    h.update(&link.to_le_bytes());
    h.update(&seq.to_le_bytes());
    h.update(body);
    h.finalize()
}

/// Seals the descriptions of one link, numbering them from 0.
#[derive(Debug)]
pub struct Sealer {
    key: SealKey,
    link: u64,
    next: u64,
}

impl Sealer {
    /// A sealer for a new link, `link` its identity (the inode number of the sender's end).
    pub fn new(key: SealKey, link: u64) -> Self {
        Self { key, link, next: 0 }
    }

    /// Seals `msg` as the link's next description. `None` if it cannot be encoded.
    pub fn seal(&mut self, msg: &FrameMsg) -> Option<SealedFrame> {
        crate::channel::encode(msg).map(|body| self.seal_body(body))
    }

    /// Seals `body`, whatever it holds, as the link's next description.
    pub fn seal_body(&mut self, body: Vec<u8>) -> SealedFrame {
        let seq = self.next;
        self.next += 1;
        SealedFrame {
            seq,
            seal: *mac(&self.key, self.link, seq, &body).as_bytes(),
            body,
        }
    }
}

/// The GPU process's end of a frame link: every description sent is sealed, numbered in the
/// order sent (clones share the numbering).
#[derive(Clone, Debug)]
pub struct FrameSender {
    to: Sender<GpuToRenderer>,
    sealer: Arc<Mutex<Sealer>>,
}

impl FrameSender {
    /// Seals with `key` what goes through `to`, a link of identity `link`, numbering from 0.
    pub fn new(to: Sender<GpuToRenderer>, key: SealKey, link: u64) -> Self {
        Self {
            to,
            sealer: Arc::new(Mutex::new(Sealer::new(key, link))),
        }
    }

    /// Seals `msg` and sends it; sealing and sending are one step, so the numbers go out in
    /// order.
    pub fn send(&self, msg: &FrameMsg) -> Result<(), SendError> {
        let mut sealer = self.sealer.lock().unwrap_or_else(PoisonError::into_inner);
        let sealed = sealer
            .seal(msg)
            .ok_or(SendError::TooLong { kind: "Frame" })?;
        self.to.send(&GpuToRenderer::Frame(sealed))
    }

    /// The channel underneath.
    pub fn channel(&self) -> &Sender<GpuToRenderer> {
        &self.to
    }
}

/// What the renderer found wrong in what the GPU process sent, with the sealed descriptions
/// that show it: `frames` holds the offending description last, and before it the one accepted
/// just before it on the link, where the lie is in the order of the two.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The epoch of the GPU process it is against.
    pub epoch: u64,
    /// What the renderer found, in words.
    pub what: String,
    /// One or two sealed descriptions.
    pub frames: Vec<SealedFrame>,
    /// The layer whose fence is not a fence of the kind exported, where that is the lie.
    pub fence_of_layer: Option<u32>,
}

/// The most descriptions an [`Evidence`] carries.
pub const MAX_EVIDENCE_FRAMES: usize = 2;

/// The most showings of evidence the renderer makes on one link, and the launcher judges for one
/// GPU process: a few, so that showings a GPU process made unprovable on purpose do not hide the
/// next lie, and never so many that its lies make the renderer flood the launcher.
pub const MAX_SHOWINGS: u32 = 4;

/// What sealed evidence shows, judged by the seals and what the judge knows itself.
#[derive(Debug, PartialEq, Eq)]
pub enum Finding {
    /// The sealed bytes break the protocol: the sender lied, and this says how.
    Lie(String),
    /// Nothing here shows a lie, and why.
    Holds(String),
    /// A seal does not hold: nothing shows who made the bytes.
    Unsealed(String),
    /// The lie named is in a fence, which only the sender's own fd table can show: the fence as
    /// the sealed description `seq` names it.
    Fence {
        /// The description's number.
        seq: u64,
        /// The fence it names.
        fence: crate::Fence<crate::RemoteFd>,
    },
}

impl Evidence {
    /// Judges the evidence against the GPU process whose key is `key`, of epoch `epoch`, on the
    /// link `link`, when the newest size generation started is `generation`. Checked in order:
    /// the number of descriptions, every seal, every body decodes, every epoch and generation,
    /// the order of two consecutive descriptions' frames, then the fence named, if that is the
    /// lie.
    pub fn judge(&self, key: &SealKey, link: u64, epoch: u64, generation: u32) -> Finding {
        if self.frames.is_empty() || self.frames.len() > MAX_EVIDENCE_FRAMES {
            return Finding::Holds(format!("{} descriptions shown", self.frames.len()));
        }
        if let Some(f) = self.frames.iter().find(|f| !f.verify(key, link)) {
            return Finding::Unsealed(format!("the seal of description {} does not hold", f.seq));
        }
        let mut opened = Vec::with_capacity(self.frames.len());
        for f in &self.frames {
            match f.open() {
                Ok(m) => opened.push((f.seq, m)),
                Err(v) => {
                    return Finding::Lie(format!(
                        "sealed description {} does not decode: {v}",
                        f.seq
                    ))
                }
            }
        }
        for (seq, m) in &opened {
            if m.epoch != epoch {
                return Finding::Lie(format!(
                    "sealed description {seq} gives epoch {}, its own is {epoch}",
                    m.epoch
                ));
            }
            if m.generation > generation {
                return Finding::Lie(format!(
                    "sealed description {seq} is of size generation {}, which was never started (the newest is {generation})",
                    m.generation
                ));
            }
        }
        if let [(sa, a), (sb, b)] = &opened[..] {
            if sa.checked_add(1) == Some(*sb) && a.frame.checked_add(1) != Some(b.frame) {
                return Finding::Lie(format!(
                    "sealed frame {} right after frame {} (descriptions {sa} and {sb})",
                    b.frame, a.frame
                ));
            }
        }
        let Some(layer) = self.fence_of_layer else {
            return Finding::Holds("the sealed descriptions hold".to_owned());
        };
        let Some((seq, m)) = opened.last() else {
            return Finding::Holds("no description".to_owned());
        };
        match m.layers.iter().find(|l| l.layer == layer) {
            Some(l) => Finding::Fence {
                seq: *seq,
                fence: l.buffer.fence.clone(),
            },
            None => Finding::Holds(format!("description {seq} has no layer {layer}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(frame: u64) -> FrameMsg {
        FrameMsg {
            epoch: 3,
            generation: 0,
            frame,
            sent_ns: 9,
            layers: Vec::new(),
        }
    }

    #[test]
    fn a_seal_holds_for_its_key_sequence_and_body_only() {
        let key = SealKey([7; SEAL_LEN]);
        let mut s = Sealer::new(key.clone(), 77);
        let a = s.seal(&msg(10)).expect("sealed");
        let b = s.seal(&msg(11)).expect("sealed");
        assert_eq!((a.seq, b.seq), (0, 1));
        assert!(a.verify(&key, 77) && b.verify(&key, 77));
        assert!(!a.verify(&key, 78), "another link");
        assert_eq!(a.open().expect("opens"), msg(10));
        assert!(!a.verify(&SealKey([8; SEAL_LEN]), 77));
        let mut renumbered = b.clone();
        renumbered.seq = 0;
        assert!(!renumbered.verify(&key, 77));
        let mut altered = a.clone();
        if let Some(x) = altered.body.last_mut() {
            *x ^= 1;
        }
        assert!(!altered.verify(&key, 77));
        let mut reseal = a;
        reseal.seal[0] ^= 1;
        assert!(!reseal.verify(&key, 77));
    }

    fn evidence(frames: Vec<SealedFrame>) -> Evidence {
        Evidence {
            epoch: 3,
            what: "said".into(),
            frames,
            fence_of_layer: None,
        }
    }

    fn judged(e: &Evidence, key: &SealKey) -> Finding {
        e.judge(key, 77, 3, 2)
    }

    #[test]
    fn consecutive_descriptions_of_frames_out_of_order_are_a_lie() {
        let key = SealKey([3; SEAL_LEN]);
        let mut s = Sealer::new(key.clone(), 77);
        let a = s.seal(&msg(10)).expect("sealed");
        let twice = s.seal(&msg(10)).expect("sealed");
        let ahead = s.seal(&msg(14)).expect("sealed");
        let v = judged(&evidence(vec![a.clone(), twice.clone()]), &key);
        assert!(
            matches!(&v, Finding::Lie(w) if w.contains("frame 10 right after frame 10")),
            "{v:?}"
        );
        let v = judged(&evidence(vec![twice, ahead.clone()]), &key);
        assert!(matches!(v, Finding::Lie(_)), "{v:?}");
        // A gap in the numbering shows nothing: the renderer could have left one out.
        let v = judged(&evidence(vec![a, ahead]), &key);
        assert!(matches!(v, Finding::Holds(_)), "{v:?}");
    }

    #[test]
    fn in_order_descriptions_hold_and_forged_ones_show_nothing() {
        let key = SealKey([3; SEAL_LEN]);
        let mut s = Sealer::new(key.clone(), 77);
        let a = s.seal(&msg(10)).expect("sealed");
        let mut later = msg(11);
        later.generation = 2;
        let b = s.seal(&later).expect("sealed");
        let v = judged(&evidence(vec![a.clone(), b.clone()]), &key);
        assert!(matches!(v, Finding::Holds(_)), "{v:?}");
        // Made by someone without the key: a renderer framing the GPU process.
        let mut forger = Sealer::new(SealKey([9; SEAL_LEN]), 77);
        let mut forged = forger.seal(&msg(10)).expect("sealed");
        forged.seq = 1;
        let v = judged(&evidence(vec![a.clone(), forged]), &key);
        assert!(matches!(v, Finding::Unsealed(_)), "{v:?}");
        // A true seal moved onto other bytes.
        let mut moved = b;
        moved.body = a.body.clone();
        assert!(matches!(
            judged(&evidence(vec![a.clone(), moved]), &key),
            Finding::Unsealed(_)
        ));
        assert!(matches!(
            judged(&evidence(Vec::new()), &key),
            Finding::Holds(_)
        ));
        assert!(matches!(
            judged(&evidence(vec![a.clone(), a.clone(), a]), &key),
            Finding::Holds(_)
        ));
    }

    #[test]
    fn one_description_shows_a_wrong_epoch_a_generation_never_started_or_bad_bytes() {
        let key = SealKey([5; SEAL_LEN]);
        let mut s = Sealer::new(key.clone(), 77);
        let mut other = msg(3);
        other.epoch = 1000;
        let v = judged(&evidence(vec![s.seal(&other).expect("sealed")]), &key);
        assert!(
            matches!(&v, Finding::Lie(w) if w.contains("epoch 1000")),
            "{v:?}"
        );
        let mut future = msg(4);
        future.generation = 3;
        let v = judged(&evidence(vec![s.seal(&future).expect("sealed")]), &key);
        assert!(
            matches!(&v, Finding::Lie(w) if w.contains("generation 3")),
            "{v:?}"
        );
        let v = judged(&evidence(vec![s.seal_body(vec![0xff; 12])]), &key);
        assert!(
            matches!(&v, Finding::Lie(w) if w.contains("does not decode")),
            "{v:?}"
        );
    }

    #[test]
    fn a_fence_lie_names_the_fence_for_the_judge_to_take() {
        let key = SealKey([6; SEAL_LEN]);
        let mut s = Sealer::new(key.clone(), 77);
        let mut e = evidence(vec![s.seal(&msg(1)).expect("sealed")]);
        e.fence_of_layer = Some(0);
        // No layer 0 in it.
        assert!(matches!(judged(&e, &key), Finding::Holds(_)));
    }

    #[test]
    fn descriptions_of_two_links_do_not_make_one_order() {
        // A renderer that kept a description of its predecessor's link shows it beside one of
        // its own, numbered 0 and 1.
        let key = SealKey([4; SEAL_LEN]);
        let old = Sealer::new(key.clone(), 1).seal(&msg(100)).expect("sealed");
        let mut new = Sealer::new(key.clone(), 2);
        let _ = new.seal(&msg(105));
        let b = new.seal(&msg(106)).expect("sealed");
        let v = evidence(vec![old, b]).judge(&key, 2, 3, 2);
        assert!(matches!(v, Finding::Unsealed(_)), "{v:?}");
    }

    #[test]
    fn the_key_is_never_printed() {
        let shown = format!("{:?}", Sealer::new(SealKey([0xab; SEAL_LEN]), 77));
        assert!(!shown.contains("171") && !shown.contains("ab"), "{shown}");
    }
}
