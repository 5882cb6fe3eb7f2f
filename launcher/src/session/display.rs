//! The supervisor's side of a window: which slots the X server still reads, which frames the
//! display has asked for, and what the keys do (see `crate::window`).

use std::collections::VecDeque;

use super::*;
use crate::window::{Action, Display, DisplayEvent};

/// Frames asked of the GPU process and not yet presented, at most.
const IN_FLIGHT: u64 = 2;

/// A window's state in the supervisor.
#[derive(Debug)]
pub(super) struct Shown {
    pub(super) d: Display,
    /// The segment of the current renderer's output, with that renderer's pid.
    seg: Option<(u32, u32)>,
    /// A previous renderer's segment, detached once the new one's first frame is on screen.
    retire: Option<u32>,
    /// Puts the server has not finished: (segment, offset, frame, the slot to hand back then).
    pending: VecDeque<(u32, u32, u64, Option<u32>)>,
    /// What is on screen: (segment, offset), for a redraw.
    on_screen: Option<(u32, u32)>,
    paused: bool,
    step: bool,
    /// The next frame to ask for.
    next_request: u64,
    /// The GPU process's epoch the requests went to.
    epoch: u64,
    next_tick: Instant,
    /// The window was closed or `q` pressed.
    pub(super) quit: bool,
}

impl Shown {
    pub(super) fn new(d: Display) -> Shown {
        Shown {
            d,
            seg: None,
            retire: None,
            pending: VecDeque::new(),
            on_screen: None,
            paused: false,
            step: false,
            next_request: 0,
            epoch: 0,
            next_tick: Instant::now(),
            quit: false,
        }
    }
}

impl Supervisor<'_> {
    /// A renderer's output was mapped: the X server attaches it too.
    pub(super) fn display_attach(&mut self, renderer_pid: u32, fd: OwnedFd) -> anyhow::Result<()> {
        let Some(s) = self.display.as_mut() else {
            return Ok(());
        };
        let seg = s.d.presenter.attach(fd)?;
        if let Some((_, old)) = s.seg.replace((renderer_pid, seg)) {
            if let Some(earlier) = s.retire.replace(old) {
                s.d.presenter.detach(earlier);
            }
        }
        Ok(())
    }

    /// Puts `slot` of the current renderer on screen; `back` (the slot it replaces) goes back
    /// to the renderer once the server has read the new one.
    pub(super) fn display_put(
        &mut self,
        slot: u32,
        frame: u64,
        back: Option<u32>,
    ) -> anyhow::Result<()> {
        let slot_bytes = u64::from(self.args.size.width) * u64::from(self.args.size.height) * 4;
        let size = (self.args.size.width as u16, self.args.size.height as u16);
        let pixels = self
            .renderer
            .as_ref()
            .and_then(|r| r.screen.as_ref())
            .and_then(|sc| sc.raw_slot(slot));
        let Some(s) = self.display.as_mut() else {
            return Ok(());
        };
        let Some((_, seg)) = s.seg else {
            return Ok(());
        };
        let offset = u32::try_from(u64::from(slot) * slot_bytes).context("a slot beyond 4 GiB")?;
        s.d.presenter.put(seg, offset, size, || pixels)?;
        s.on_screen = Some((seg, offset));
        if s.d.presenter.path == crate::window::x11::Path::Shm {
            s.pending.push_back((seg, offset, frame, back));
        } else {
            self.on_screen(frame);
            if let Some(back) = back {
                self.free_slot(back);
            }
        }
        Ok(())
    }

    /// The server has `frame`'s pixels.
    fn on_screen(&self, frame: u64) {
        if frame + 1 == self.args.frames {
            tracing::info!(
                frame,
                "the last frame is on screen; it stays until the window is closed"
            );
        }
    }

    fn free_slot(&mut self, slot: u32) {
        if let Some(r) = self.renderer.as_mut() {
            if let Err(e) = r.child.commands.send(&LauncherToRenderer::SlotFree(slot)) {
                r.send_failed(e);
            }
        }
    }

    /// Handles one event from the window.
    pub(super) fn display_event(&mut self, e: DisplayEvent) -> anyhow::Result<()> {
        match e {
            DisplayEvent::Completed(c) => {
                let Some(s) = self.display.as_mut() else {
                    return Ok(());
                };
                let Some(i) = s
                    .pending
                    .iter()
                    .position(|(seg, off, _, _)| *seg == c.seg && *off == c.offset)
                else {
                    return Ok(());
                };
                let (seg, _, frame, back) = s.pending.remove(i).unwrap_or((0, 0, 0, None));
                self.on_screen(frame);
                let Some(s) = self.display.as_mut() else {
                    return Ok(());
                };
                let current = s.seg.is_some_and(|(_, cur)| cur == seg);
                if current {
                    if let Some(old) = s.retire.take() {
                        s.d.presenter.detach(old);
                    }
                    if let Some(back) = back {
                        self.free_slot(back);
                    }
                }
            }
            DisplayEvent::Exposed => {
                if let Some(s) = self.display.as_ref() {
                    if let Some((seg, off)) = s.on_screen {
                        let size = (self.args.size.width as u16, self.args.size.height as u16);
                        let _ = s.d.presenter.put(seg, off, size, || None);
                    }
                }
            }
            DisplayEvent::Resized(w, h) => {
                tracing::info!(
                    width = w,
                    height = h,
                    "window resized; frames keep their size"
                );
            }
            DisplayEvent::Closed => self.quit("the window was closed"),
            DisplayEvent::Key(a) => self.key(a)?,
        }
        Ok(())
    }

    fn quit(&mut self, why: &str) {
        tracing::info!("{why}: shutting down");
        if let Some(s) = self.display.as_mut() {
            s.quit = true;
        }
    }

    fn key(&mut self, a: Action) -> anyhow::Result<()> {
        match a {
            Action::Quit => self.quit("quit key"),
            Action::TogglePause => {
                if let Some(s) = self.display.as_mut() {
                    s.paused = !s.paused;
                    tracing::info!(paused = s.paused, "pause key");
                }
            }
            Action::Step => {
                if let Some(s) = self.display.as_mut() {
                    s.step = true;
                }
            }
            Action::KillGpu => {
                if let Some(g) = self.gpu.as_mut() {
                    tracing::warn!(
                        pid = g.child.proc.pid,
                        "kill key: SIGKILL to the GPU process"
                    );
                    g.child.proc.kill();
                }
            }
            Action::KillRenderer => {
                if let Some(r) = self.renderer.as_mut() {
                    tracing::warn!(pid = r.child.proc.pid, "kill key: SIGKILL to the renderer");
                    r.child.proc.kill();
                }
            }
        }
        Ok(())
    }

    /// A (new) GPU process of `epoch` starts at `first`: requests start again from there.
    pub(super) fn display_gpu_started(&mut self, epoch: u64, first: u64) {
        if let Some(s) = self.display.as_mut() {
            s.epoch = epoch;
            s.next_request = first;
            s.next_tick = Instant::now();
        }
    }

    /// At a refresh tick, asks the GPU process for the next frame, unless paused, at the last
    /// frame, or [`IN_FLIGHT`] frames are asked for already. Returns how long until the next
    /// tick.
    pub(super) fn display_tick(&mut self) -> Option<Duration> {
        let frames = self.args.frames;
        let presented = self.resume_from();
        let s = self.display.as_mut()?;
        let now = Instant::now();
        if now < s.next_tick {
            return Some(s.next_tick - now);
        }
        s.next_tick = (s.next_tick + s.d.refresh).max(now);
        let room = s.next_request < presented + IN_FLIGHT;
        let more = s.next_request < frames;
        if room && more && (!s.paused || std::mem::take(&mut s.step)) {
            let up_to = s.next_request;
            s.next_request += 1;
            if let Some(g) = self.gpu.as_mut().filter(|g| g.epoch == s.epoch) {
                if let Err(SendError::Full) =
                    g.child.commands.send(&LauncherToGpu::Render { up_to })
                {
                    g.unread = true;
                }
            }
        }
        // Nothing asked for and not shown yet: nothing is late, whatever the time.
        if s.next_request <= presented {
            self.last_progress = now;
        }
        Some(s.d.refresh)
    }
}
