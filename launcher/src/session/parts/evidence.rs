//! Breaches and stalls seen while handling something else, waiting for the main loop to act on
//! them.
//!
//! A breach found in the middle of another child's message (a GPU process's claim against the
//! renderer that holds, a GPU message read while a `Presented` waited for its `Produced`) is not
//! acted on there: the process is killed from the main loop, after the message at hand. Until
//! then it is kept here, with these rules:
//!
//! - of the GPU process's breaches, the first is the one acted on (what it sent after it is
//!   read on for the frames it reported);
//! - a renderer's breach names the renderer's pid, and is acted on against that renderer only,
//!   never against a replacement started meanwhile;
//! - through a stall, what waited unread at either end of the peer socket is kept from one look
//!   to the next ([`witness::unread`]); once frames flow again it is forgotten, so one stall's
//!   look is never compared with the next stall's.

use std::time::Duration;

use ipc_protocol::rules::Breach;

use super::super::witness::{self, Unread, UnreadHead};

/// What the main loop is to act on.
#[derive(Debug, Default)]
pub struct Evidence {
    /// A renderer violation the GPU process reported and the launcher saw, with the pid of the
    /// renderer that made it.
    renderer_breach: Option<(u32, Breach)>,
    /// A GPU violation found while handling a renderer message.
    gpu_breach: Option<Breach>,
    /// During a stall: what was seen waiting at the head of the renderer's queue of frames and
    /// of the GPU process's queue of releases, and since when.
    unread_frames: Option<UnreadHead>,
    unread_releases: Option<UnreadHead>,
}

impl Evidence {
    /// The GPU process broke the protocol; the first breach is kept.
    pub fn gpu_breach(&mut self, b: Breach) {
        self.gpu_breach.get_or_insert(b);
    }

    /// Whether a GPU breach waits to be acted on.
    pub fn gpu_breached(&self) -> bool {
        self.gpu_breach.is_some()
    }

    /// The GPU breach to act on, taken.
    pub fn take_gpu_breach(&mut self) -> Option<Breach> {
        self.gpu_breach.take()
    }

    /// Renderer `pid` broke the protocol, as the launcher saw.
    pub fn renderer_breach(&mut self, pid: u32, b: Breach) {
        self.renderer_breach = Some((pid, b));
    }

    /// The renderer breach to act on against `running` (the renderer running now, if any):
    /// one made by another renderer is dropped.
    pub fn take_renderer_breach(&mut self, running: Option<u32>) -> Option<Breach> {
        self.renderer_breach
            .take()
            .filter(|(pid, _)| Some(*pid) == running)
            .map(|(_, b)| b)
    }

    /// What waits at the renderer's end (`frames`) and the GPU process's end (`releases`) now,
    /// compared with the last look of this stall: whether either reader stopped, after
    /// `at_least` or [`witness::UNREAD_FOR`], whichever is longer.
    pub fn unread(
        &mut self,
        frames: Option<UnreadHead>,
        releases: Option<UnreadHead>,
        at_least: Duration,
    ) -> (Unread, Unread) {
        (
            witness::unread(frames, &mut self.unread_frames, at_least),
            witness::unread(releases, &mut self.unread_releases, at_least),
        )
    }

    /// The run is not stalled: what a stall's look saw is forgotten.
    pub fn forget_unread(&mut self) {
        self.unread_frames = None;
        self.unread_releases = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn breach(what: &str) -> Breach {
        Breach::new("peer socket", what)
    }

    #[test]
    fn the_first_gpu_breach_is_the_one_acted_on() {
        let mut e = Evidence::default();
        assert!(!e.gpu_breached());
        e.gpu_breach(breach("first"));
        e.gpu_breach(breach("second"));
        assert!(e.gpu_breached());
        assert_eq!(e.take_gpu_breach().map(|b| b.what), Some("first".into()));
        assert!(!e.gpu_breached());
        assert_eq!(e.take_gpu_breach(), None, "acted on once");
    }

    #[test]
    fn a_renderer_breach_is_never_held_against_a_replacement() {
        let mut e = Evidence::default();
        e.renderer_breach(10, breach("bad release"));
        // Renderer 10 was replaced by 11 before the main loop got to it: dropped, not kept.
        assert_eq!(e.take_renderer_breach(Some(11)), None);
        assert_eq!(e.take_renderer_breach(Some(10)), None, "dropped for good");
        e.renderer_breach(11, breach("bad release"));
        assert_eq!(e.take_renderer_breach(None), None, "no renderer running");
        e.renderer_breach(11, breach("older"));
        e.renderer_breach(11, breach("newer"));
        assert_eq!(
            e.take_renderer_breach(Some(11)).map(|b| b.what),
            Some("newer".into())
        );
    }

    fn head(pid: u32, ago_ms: u64) -> UnreadHead {
        UnreadHead {
            pid,
            bytes: 64,
            message: Some((1, 7)),
            since: Instant::now()
                .checked_sub(Duration::from_millis(ago_ms))
                .expect("an instant in the past"),
            full: false,
        }
    }

    #[test]
    fn a_stalls_looks_are_compared_per_end_and_forgotten_when_frames_flow() {
        let mut e = Evidence::default();
        let zero = Duration::ZERO;
        // First look: both ends watched.
        assert_eq!(
            e.unread(Some(head(1, 900)), Some(head(2, 900)), zero),
            (Unread::Watch, Unread::Watch)
        );
        // The same frame still waits at the renderer's end; the releases were taken.
        let (frames, releases) = e.unread(Some(head(1, 0)), None, zero);
        assert!(
            matches!(frames, Unread::Stopped { bytes: 64, .. }),
            "{frames:?}"
        );
        assert_eq!(releases, Unread::Reads);
        // Frames flowed again: the next stall starts its watch afresh.
        e.forget_unread();
        assert_eq!(
            e.unread(Some(head(1, 0)), None, zero),
            (Unread::Watch, Unread::Reads)
        );
    }
}
