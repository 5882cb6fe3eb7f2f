//! The window's overlay, seen from the supervisor: what it says and when the GPU process hears
//! of it.
//!
//! A window's run has one more layer than its scene, the overlay (`GpuStart::overlay`; the
//! renderer's `RendererStart::layers` counts it), which the GPU process draws above every
//! scene layer: hidden, one transparent texel at opacity 0, so the layer set never changes
//! mid-run. The `o` key shows or hides it. While it is shown the supervisor writes its lines
//! at most every [`EVERY`] (frames per second over the last second, the median present
//! latency of the last [`WINDOW`], buffer backend, fence kind, fd transport, restarts so far,
//! sandbox) and sends them (`LauncherToGpu::Overlay`) only when they changed, logging each
//! text sent (`overlay text`, the lines as a list of strings). Every change asks a still
//! scene for one more frame ([`super::display::Shown::changed`]), so an idle window updates
//! its overlay at most twice a second and a toggle shows at the next refresh. A new GPU
//! process starts hidden: it is sent the text again before it is asked for a frame. While the
//! window is paused no frame is made, so the overlay changes with the next step or resume.

use std::collections::VecDeque;

use ipc_protocol::messages::{LandlockEnforced, OverlayText};

use super::*;
use crate::config::SandboxMode;

/// How often a shown overlay's text is written anew.
pub(super) const EVERY: Duration = Duration::from_millis(500);

/// The presents the latency median is taken over: those of the last two seconds.
const WINDOW: Duration = Duration::from_secs(2);

/// The most presents remembered (a fast display presents many in [`WINDOW`]).
const MAX_PRESENTS: usize = 1024;

/// The overlay's state in the supervisor.
#[derive(Debug)]
pub(super) struct Overlay {
    /// The key made it shown.
    shown: bool,
    /// What the current GPU process shows (`None`: hidden).
    sent: Option<Vec<String>>,
    /// When the text is written anew.
    next: Instant,
    /// Recent presents: when, and the frame's present latency (from the GPU done, every
    /// layer's fence signalled, to the frame handed to the display server), in nanoseconds.
    presents: VecDeque<(Instant, u64)>,
}

impl Default for Overlay {
    fn default() -> Self {
        Overlay {
            shown: false,
            sent: None,
            next: Instant::now(),
            presents: VecDeque::new(),
        }
    }
}

impl Overlay {
    /// A frame was handed to the display server `latency_ns` after the GPU process was done.
    pub(super) fn presented(&mut self, latency_ns: u64) {
        let now = Instant::now();
        while self.presents.len() >= MAX_PRESENTS
            || self
                .presents
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > WINDOW)
        {
            self.presents.pop_front();
        }
        self.presents.push_back((now, latency_ns));
    }

    /// A new GPU process shows nothing: it is sent the text at the next tick.
    pub(super) fn new_gpu(&mut self) {
        self.sent = None;
        self.next = Instant::now();
    }

    /// Frames presented in the last second.
    fn fps(&self, now: Instant) -> usize {
        self.presents
            .iter()
            .filter(|(t, _)| now.duration_since(*t) <= Duration::from_secs(1))
            .count()
    }

    /// The median latency of the presents of the last [`WINDOW`], in milliseconds.
    fn p50_ms(&self, now: Instant) -> Option<f64> {
        let mut l: Vec<u64> = self
            .presents
            .iter()
            .filter(|(t, _)| now.duration_since(*t) <= WINDOW)
            .map(|(_, l)| *l)
            .collect();
        l.sort_unstable();
        l.get(l.len() / 2).map(|ns| *ns as f64 / 1e6)
    }
}

impl Supervisor<'_> {
    /// The `o` key: shows or hides the overlay, at once.
    pub(super) fn toggle_overlay(&mut self) {
        let Some(s) = self.display.as_mut() else {
            return;
        };
        s.overlay.shown = !s.overlay.shown;
        if s.overlay.shown {
            tracing::info!("overlay shown");
        } else {
            tracing::info!("overlay hidden");
        }
        s.overlay.next = Instant::now();
        self.update_overlay();
    }

    /// The overlay's lines now.
    fn overlay_lines(&self, now: Instant) -> Vec<String> {
        let o = self.display.as_ref().map(|s| &s.overlay);
        let fps = o.map_or(0, |o| o.fps(now));
        let p50 = o
            .and_then(|o| o.p50_ms(now))
            .map_or("-".to_owned(), |ms| format!("{ms:.1} ms"));
        let info = self.pair.gpu.as_ref().map(|g| &g.info);
        let backend = info.map_or("-", |i| i.backend.as_str());
        let fence = info.map_or("-", |i| i.fence.as_str());
        let landlock = info.is_some_and(|i| i.landlock.enforced != LandlockEnforced::None);
        let sandbox = match (self.args.sandbox, landlock) {
            (SandboxMode::Enforce, true) => "seccomp+landlock",
            (SandboxMode::Enforce, false) => "seccomp",
            (SandboxMode::Learn, true) => "landlock (seccomp learning)",
            (SandboxMode::Learn, false) => "off (seccomp learning)",
        };
        vec![
            format!("fps {fps}"),
            format!("present p50 {p50}"),
            format!("buffers {backend}"),
            format!("fence {fence}"),
            format!("fds {}", self.jail.transport().as_str()),
            format!("restarts {}", self.crashes.len()),
            format!("sandbox {sandbox}"),
        ]
    }

    /// Writes the overlay's text when it is due and sends it to the GPU process when it
    /// changed; sends its hiding once. Called at every tick, before frames are asked for, so
    /// a new GPU process has the text before its first frame.
    pub(super) fn update_overlay(&mut self) {
        let now = Instant::now();
        let Some(s) = self.display.as_ref() else {
            return;
        };
        let lines = match s.overlay.shown {
            true if now < s.overlay.next => return,
            true => Some(self.overlay_lines(now)),
            false => None,
        };
        if let Some(s) = self.display.as_mut().filter(|s| s.overlay.shown) {
            s.overlay.next = now + EVERY;
        }
        if self
            .display
            .as_ref()
            .is_some_and(|s| s.overlay.sent == lines)
        {
            return;
        }
        if let Some(Err(e)) = lines.as_deref().map(triptych_scene::overlay::check) {
            tracing::warn!(error = %e, "the overlay's text is out of bounds; not sent");
            return;
        }
        let Some(g) = self.pair.gpu.as_mut() else {
            return;
        };
        let msg = ViewCommand::Overlay(lines.clone().map(|lines| OverlayText { lines }));
        if let Err(SendError::Full) = g.send_view(FIRST_VIEW, msg) {
            // Sent again at the next update.
            g.unread = true;
            return;
        }
        if let Some(l) = &lines {
            tracing::info!(text = ?l, "overlay text");
        }
        if let Some(s) = self.display.as_mut() {
            s.overlay.sent = lines;
            s.changed();
        }
    }
}
