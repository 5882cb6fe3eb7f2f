//! The launcher as the witness between its children: a claim one child makes against the other
//! is acted on only as far as the launcher can see for itself that it holds.
//!
//! Every peer socket between a GPU process and a renderer is made by the launcher, which keeps a
//! duplicate of each end ([`LinkEvidence`]). What waits unread at an end is the kernel's record,
//! which neither child can forge for the other:
//!
//! - **A bad release** ([`RendererClaim::BadRelease`]): the GPU process takes a release off its
//!   end only once it decodes and is of its epoch, so the message it objects to is still at the
//!   head of its queue. The launcher reads it there ([`channel::peek_waiting`]) and applies the
//!   same rule ([`rules::release`]). It breaks the protocol: the renderer is killed for it. It
//!   is a good release, or nothing waits: the GPU process lied, and is killed for it.
//! - **Frames unread** ([`RendererClaim::FramesUnread`]): a full queue of frames is a state the
//!   GPU process can make itself, so the claim is only counted; a renderer that really stopped
//!   reading is found by the stall check (the same frame at the head of its queue for a while).
//! - A claim against a renderer that is no longer the one running (a dying renderer's last
//!   bytes, read after its replacement started) concerns nobody alive: counted, never held
//!   against the replacement.

use std::os::fd::{AsFd, OwnedFd};

use ipc_protocol::channel;
use ipc_protocol::messages::{RendererClaim, RendererToGpu};
use ipc_protocol::rules::{self, Breach};

use super::Supervisor;

/// How long the same frame must wait unread at the head of a renderer's queue before the
/// renderer is taken to have stopped reading (its reader takes frames as they come; the longest
/// it may pause on purpose is a quarter second, for a resize it has yet to hear of).
pub(super) const UNREAD_FOR: std::time::Duration = std::time::Duration::from_millis(500);

/// What waited at the head of one end of a peer socket (a renderer's frames, a GPU process's
/// releases), and since when it was seen there.
#[derive(Debug)]
pub(super) struct UnreadHead {
    /// The process whose end it is.
    pub(super) pid: u32,
    /// Bytes queued.
    pub(super) bytes: usize,
    /// What identifies the message at the head, where it decodes (a frame's epoch and number,
    /// a release's epoch and buffer).
    pub(super) message: Option<(u64, u64)>,
    /// When it was first seen.
    pub(super) since: std::time::Instant,
    /// Whether the sender's end could not send more (its bytes in flight at the limit): a
    /// sender that floods keeps the queue there while the reader takes from it.
    pub(super) full: bool,
}

impl UnreadHead {
    /// What waits at `end`, of process `pid`, now, as sent from `sender` (the other end);
    /// `None` when nothing does.
    pub(super) fn at<T: ipc_protocol::channel::Wire>(
        end: &OwnedFd,
        sender: &OwnedFd,
        pid: u32,
        key: impl Fn(&T) -> (u64, u64),
    ) -> Option<UnreadHead> {
        let bytes = triptych_sys::scm::queued_bytes(end.as_fd()).ok()?;
        let message = match channel::peek_waiting::<T>(end.as_fd()) {
            Ok(Some(Ok(m))) => Some(key(&m)),
            _ => None,
        };
        let full = !triptych_sys::poll::writable_now(sender.as_fd()).unwrap_or(true);
        (bytes > 0).then(|| UnreadHead {
            pid,
            bytes,
            message,
            since: std::time::Instant::now(),
            full,
        })
    }

    /// Whether `self` shows the queue as `before` did, untouched: the same process, the same
    /// message at the head, the same bytes queued, and the sender below its limit both times.
    /// Identical messages streaming through a full queue (a sender flooding while the reader
    /// reads) do not count.
    pub(super) fn same_as(&self, before: &UnreadHead) -> bool {
        self.pid == before.pid
            && self.message == before.message
            && self.bytes == before.bytes
            && !self.full
            && !before.full
    }
}

/// What the same message waiting at one end through a stall says.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Unread {
    /// It has waited [`UNREAD_FOR`] (or `at_least`, if longer): its reader stopped; `bytes`
    /// wait, for `ms`.
    Stopped { bytes: usize, ms: u64 },
    /// Seen for the first time, or not for long enough: look again on a later tick.
    Watch,
    /// Nothing waits, or what waited was taken: its reader reads.
    Reads,
}

/// Compares what waits at an end now with what waited `before`, keeping what to compare with
/// next time in `before`.
pub(super) fn unread(
    now: Option<UnreadHead>,
    before: &mut Option<UnreadHead>,
    at_least: std::time::Duration,
) -> Unread {
    match (now, before.take()) {
        (Some(now), Some(b)) if now.same_as(&b) => {
            let waited = b.since.elapsed();
            let bytes = now.bytes;
            *before = Some(b);
            if waited >= UNREAD_FOR.max(at_least) {
                Unread::Stopped {
                    bytes,
                    ms: waited.as_millis() as u64,
                }
            } else {
                Unread::Watch
            }
        }
        (Some(now), None) => {
            *before = Some(now);
            Unread::Watch
        }
        (Some(now), Some(_)) => {
            *before = Some(now);
            Unread::Reads
        }
        (None, _) => Unread::Reads,
    }
}

/// Duplicates of the two ends of one peer socket, kept by the launcher as evidence.
#[derive(Debug)]
pub(super) struct LinkEvidence {
    /// The renderer's end: frames queued there are frames it has not taken.
    pub(super) renderer_end: OwnedFd,
    /// The GPU process's end: releases queued there are releases it has not taken.
    pub(super) gpu_end: OwnedFd,
}

/// What the launcher found of a claim.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It holds: the accused broke the protocol, as the launcher saw.
    Holds(String),
    /// The launcher's own look refutes it: the accuser lied.
    Refuted(String),
    /// The launcher cannot tell: nobody is killed.
    Unknown(String),
}

/// Judges `claim` by what waits at the two ends of `link`, for a GPU process of `epoch`.
pub(super) fn judge(link: &LinkEvidence, claim: &RendererClaim, epoch: u64) -> Verdict {
    match claim {
        RendererClaim::BadRelease(what) => {
            match channel::peek_waiting::<RendererToGpu>(link.gpu_end.as_fd()) {
                Ok(Some(Err(v))) => Verdict::Holds(format!("{v}")),
                Ok(Some(Ok(m))) => match rules::release(&m, epoch) {
                    Err(why) => Verdict::Holds(why),
                    Ok(()) => Verdict::Refuted(format!(
                        "claimed the renderer sent {what}, but the message waiting on its release channel is a valid {m:?}"
                    )),
                },
                Ok(None) => Verdict::Refuted(format!(
                    "claimed the renderer sent {what}, but nothing waits on its release channel"
                )),
                Err(e) => Verdict::Unknown(format!("its release channel could not be read: {e}")),
            }
        }
        // A full queue of frames is a state the GPU process can make itself (frames sent faster
        // than a renderer waiting on an unsignalled fence takes them): never evidence. A
        // renderer that stopped reading is found by the stall check, which needs the same frame
        // at the head for a while.
        RendererClaim::FramesUnread => {
            let queued = triptych_sys::scm::queued_bytes(link.renderer_end.as_fd()).unwrap_or(0);
            Verdict::Unknown(format!(
                "{queued} bytes of frames wait at its end, a state the GPU process can make itself"
            ))
        }
    }
}

impl Supervisor<'_> {
    /// The GPU process claims renderer `renderer` broke the protocol. `Err` is the GPU process's
    /// own breach: a claim the launcher's look refutes.
    pub(super) fn gpu_claim(&mut self, renderer: u32, claim: RendererClaim) -> Result<(), Breach> {
        let epoch = self.pair.gpu.as_ref().map_or(0, |g| g.epoch);
        let current = self
            .pair
            .renderer
            .as_ref()
            .filter(|r| r.child.proc.pid == renderer);
        let verdict = match current.and_then(|r| r.link.as_ref()) {
            Some(link) => judge(link, &claim, epoch),
            None => Verdict::Unknown(format!(
                "it concerns renderer {renderer}, which is not the one running"
            )),
        };
        match verdict {
            Verdict::Holds(what) => {
                self.evidence.renderer_breach(
                    renderer,
                    Breach::new(
                        "peer socket",
                        format!("{what} (reported by the GPU process, seen by the launcher)"),
                    ),
                );
                Ok(())
            }
            Verdict::Refuted(what) => Err(Breach::new("RendererViolation", what)),
            Verdict::Unknown(why) => {
                super::push_bounded(
                    &mut self.summary.trust.uncorroborated,
                    format!("GPU process says renderer {renderer} broke the protocol ({claim:?}); not acted on: {why}"),
                );
                self.policing.note("renderer-violation-claim", || {
                    tracing::warn!(renderer, ?claim, %why, "the GPU process's claim against a renderer is not acted on")
                });
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_protocol::channel::{duplex, Sender};
    use ipc_protocol::messages::GpuToRenderer;
    use ipc_protocol::BufferId;

    /// A peer socket as the launcher makes one: the two children's senders and its evidence.
    fn link() -> (Sender<RendererToGpu>, Sender<GpuToRenderer>, LinkEvidence) {
        let (gpu, renderer) = channel::socket_pair().expect("pair");
        let evidence = LinkEvidence {
            renderer_end: triptych_sys::fd::dup_cloexec(renderer.as_fd()).expect("dup"),
            gpu_end: triptych_sys::fd::dup_cloexec(gpu.as_fd()).expect("dup"),
        };
        let (to_renderer, _) = duplex::<GpuToRenderer, RendererToGpu>(gpu, true);
        let (to_gpu, _) = duplex::<RendererToGpu, GpuToRenderer>(renderer, true);
        (to_gpu, to_renderer, evidence)
    }

    fn release(epoch: u64) -> RendererToGpu {
        RendererToGpu::Release {
            epoch,
            buffer: BufferId {
                slot: 0,
                generation: 1,
            },
        }
    }

    fn bad() -> RendererClaim {
        RendererClaim::BadRelease("garbage".into())
    }

    #[test]
    fn a_bad_release_claim_holds_only_with_the_message_waiting() {
        let (to_gpu, _, ev) = link();
        // Nothing waits: the claim is a lie.
        assert!(matches!(judge(&ev, &bad(), 3), Verdict::Refuted(_)));
        // A good release waits: a lie too.
        to_gpu.send(&release(3)).expect("send");
        assert!(matches!(judge(&ev, &bad(), 3), Verdict::Refuted(w) if w.contains("valid")));
        // Looking took nothing off the queue.
        assert!(triptych_sys::scm::queued_bytes(ev.gpu_end.as_fd()).expect("queued") > 0);
        // A release of another epoch at the head: it holds.
        let (to_gpu, _, ev) = link();
        to_gpu.send(&release(9)).expect("send");
        assert!(matches!(judge(&ev, &bad(), 3), Verdict::Holds(w) if w.contains("epoch 9")));
        // Garbage at the head: it holds.
        let (to_gpu, _, ev) = link();
        triptych_sys::scm::send_with_fds(to_gpu.as_fd(), &[0xff; 40], &[]).expect("send");
        assert!(matches!(judge(&ev, &bad(), 3), Verdict::Holds(w) if w.contains("undecodable")));
    }

    fn head(message: u64, ago_ms: u64) -> UnreadHead {
        UnreadHead {
            pid: 7,
            bytes: 40,
            message: Some((1, message)),
            since: std::time::Instant::now()
                .checked_sub(std::time::Duration::from_millis(ago_ms))
                .expect("an instant in the past"),
            full: false,
        }
    }

    #[test]
    fn only_the_same_message_waiting_long_enough_says_the_reader_stopped() {
        let zero = std::time::Duration::ZERO;
        let mut before = None;
        // Seen first: watched.
        assert_eq!(unread(Some(head(3, 0)), &mut before, zero), Unread::Watch);
        // Another message at the head: the reader took the first.
        assert_eq!(unread(Some(head(4, 0)), &mut before, zero), Unread::Reads);
        // The same one, not yet for long.
        assert_eq!(unread(Some(head(4, 0)), &mut before, zero), Unread::Watch);
        // The same one since long enough (what was kept is when it was first seen).
        let mut before = Some(head(4, 600));
        assert!(matches!(
            unread(Some(head(4, 0)), &mut before, zero),
            Unread::Stopped { bytes: 40, .. }
        ));
        // Unless a longer wait is asked for.
        let second = std::time::Duration::from_secs(1);
        assert_eq!(unread(Some(head(4, 0)), &mut before, second), Unread::Watch);
        // Nothing waits.
        assert_eq!(unread(None, &mut before, zero), Unread::Reads);
        assert!(before.is_none());
        // A full queue of the same message is a flood streaming through, not a stuck reader.
        let mut before = Some(UnreadHead {
            full: true,
            ..head(4, 600)
        });
        assert_eq!(unread(Some(head(4, 0)), &mut before, zero), Unread::Reads);
        // Nor is the same message at the head with other bytes behind it.
        let mut before = Some(head(4, 600));
        let more = UnreadHead {
            bytes: 80,
            ..head(4, 0)
        };
        assert_eq!(unread(Some(more), &mut before, zero), Unread::Reads);
    }

    #[test]
    fn an_empty_release_or_a_shut_end_holds() {
        let (to_gpu, _, ev) = link();
        triptych_sys::scm::send_with_fds(to_gpu.as_fd(), &[], &[]).expect("send");
        assert!(matches!(judge(&ev, &bad(), 3), Verdict::Holds(w) if w.contains("empty")));
        let (to_gpu, _, ev) = link();
        triptych_sys::socket::shutdown_write(to_gpu.as_fd()).expect("shutdown");
        assert!(matches!(judge(&ev, &bad(), 3), Verdict::Holds(_)));
    }

    #[test]
    fn frames_unread_is_only_counted() {
        let (_, to_renderer, ev) = link();
        let claim = RendererClaim::FramesUnread;
        assert!(matches!(judge(&ev, &claim, 1), Verdict::Unknown(_)));
        let frame = GpuToRenderer::Frame(ipc_protocol::seal::SealedFrame {
            seq: 0,
            body: vec![1; 40],
            seal: [0; ipc_protocol::seal::SEAL_LEN],
        });
        // One frame waits, but there is room: a renderer a moment behind is not blamed.
        to_renderer.send(&frame).expect("send");
        assert!(matches!(judge(&ev, &claim, 1), Verdict::Unknown(_)));
        // A full queue too: the GPU process can fill it.
        while to_renderer.send(&frame).is_ok() {}
        assert!(matches!(judge(&ev, &claim, 1), Verdict::Unknown(_)));
    }
}
