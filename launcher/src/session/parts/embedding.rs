//! The application embedding this run, if one does ([`crate::shell`]): the link to it, whether
//! it asked the run to end, and whether it missed a frame.
//!
//! Events go to the application without waiting ([`Link::send`]); a frame event is sent only
//! while the channel has room for the events that are not frames. A frame event dropped leaves
//! the next frame's damage relative to a frame the application never saw, so the next frame it
//! gets is damaged whole ([`Embedding::frame_event`]).

use crossbeam_channel::Receiver;

use crate::embedding::{Control, Event, Link};
use ipc_protocol::messages::ViewId;

/// The embedding application's link, if any.
#[derive(Debug)]
pub struct Embedding {
    link: Option<Link>,
    /// The application asked the run to end.
    quit: bool,
    /// The views a frame event was dropped of for the application since the last one it got
    /// of them.
    owed: std::collections::BTreeSet<ViewId>,
}

/// How a frame is to be told to the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameEvent {
    /// It missed a frame: this one is damaged whole.
    pub whole: bool,
    /// It asked for the frames' pixels.
    pub pixels: bool,
}

impl Embedding {
    /// The link to the embedding application, or none for a run of its own.
    pub fn new(link: Option<Link>) -> Embedding {
        Embedding {
            link,
            quit: false,
            owed: Default::default(),
        }
    }

    /// Hands `e` to the application, if there is one, without waiting.
    pub fn send(&self, e: Event) {
        if let Some(l) = &self.link {
            l.send(e);
        }
    }

    /// Where the application's commands arrive (never, without one).
    pub fn control(&self) -> Receiver<Control> {
        self.link
            .as_ref()
            .map_or_else(crossbeam_channel::never, |l| l.control.clone())
    }

    /// The application asked the run to end, or let go of its shell.
    pub fn quit(&mut self) {
        self.quit = true;
    }

    /// Whether the application asked the run to end.
    pub fn quitting(&self) -> bool {
        self.quit
    }

    /// A frame of `view` was presented: how to tell the application, if there is one and its
    /// channel has room for a frame event (otherwise the frame is owed, and the view's next one
    /// is whole).
    pub fn frame_event(&mut self, view: ViewId) -> Option<FrameEvent> {
        let l = self.link.as_ref()?;
        if !l.frame_fits() {
            self.owed.insert(view);
            return None;
        }
        Some(FrameEvent {
            whole: self.owed.remove(&view),
            pixels: l.pixels,
        })
    }

    /// `view` is gone: no frame of it is owed.
    pub fn forget(&mut self, view: ViewId) {
        self.owed.remove(&view);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedding::EVENT_QUEUE;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn link(pixels: bool) -> (Link, Receiver<Event>, crossbeam_channel::Sender<Control>) {
        let (events, app_events) = crossbeam_channel::bounded(EVENT_QUEUE);
        let (app_control, control) = crossbeam_channel::bounded(4);
        let l = Link {
            events,
            control,
            pixels,
            dropped: Arc::new(AtomicU64::new(0)),
            max_size: (64, 64),
            children: crate::child::Children::ThisExecutable,
        };
        (l, app_events, app_control)
    }

    #[test]
    fn a_run_of_its_own_tells_nobody_and_hears_nothing() {
        let mut e = Embedding::new(None);
        assert_eq!(e.frame_event(ViewId(0)), None);
        e.send(Event::Finished);
        assert!(e.control().try_recv().is_err());
        assert!(!e.quitting());
        e.quit();
        assert!(e.quitting());
    }

    #[test]
    fn after_a_frame_event_is_dropped_the_views_next_one_is_whole() {
        let (l, app, _control) = link(true);
        let dropped = l.dropped.clone();
        let mut e = Embedding::new(Some(l));
        assert_eq!(
            e.frame_event(ViewId(0)),
            Some(FrameEvent {
                whole: false,
                pixels: true
            })
        );
        // The application falls behind: frames stop fitting before the channel is full, so
        // there is room left for a crash or the final event.
        let mut sent = 0;
        while e.frame_event(ViewId(0)).is_some() {
            e.send(Event::Finished);
            sent += 1;
            assert!(sent < EVENT_QUEUE, "frames never stopped fitting");
        }
        assert_eq!(
            dropped.load(Ordering::Relaxed),
            1,
            "the frame dropped is counted"
        );
        e.send(Event::Fallback("shm".into()));
        assert_eq!(dropped.load(Ordering::Relaxed), 1, "other events still fit");
        assert_eq!(e.frame_event(ViewId(0)), None, "still no room");
        // It catches up: the next frame is whole, and the one after it is not.
        while app.try_recv().is_ok() {}
        // Only the view whose frame was dropped owes a whole one.
        assert_eq!(e.frame_event(ViewId(1)).map(|f| f.whole), Some(false));
        assert_eq!(e.frame_event(ViewId(0)).map(|f| f.whole), Some(true));
        assert_eq!(e.frame_event(ViewId(0)).map(|f| f.whole), Some(false));
    }

    #[test]
    fn the_applications_commands_arrive_on_the_control_channel() {
        let (l, _app, control) = link(false);
        let mut e = Embedding::new(Some(l));
        control.send(Control::Shutdown).expect("the run listens");
        assert!(matches!(e.control().try_recv(), Ok(Control::Shutdown)));
        assert_eq!(e.frame_event(ViewId(0)).map(|f| f.pixels), Some(false));
    }
}
