//! The supervisor's side of a window: which slots the display server still reads, which frames
//! the display has asked for, and what the keys do (see `crate::window`).
//!
//! A slot goes back to the renderer only once the launcher holds it no more: on X11 (MIT-SHM),
//! when the put of the slot that replaced it is complete; on Wayland, when the compositor has
//! released its buffer and another slot is on screen, in whichever order the two happen. The
//! slot on screen is always kept (a redraw and the PNG at exit read it).

use std::collections::{HashSet, VecDeque};

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
    /// The slot on screen (Wayland).
    shown_slot: Option<u32>,
    /// Slots of the current output the compositor has not released (Wayland).
    reading: HashSet<u32>,
    /// Slots replaced on screen, to hand back once released (Wayland).
    to_free: HashSet<u32>,
    /// A frame callback is outstanding (Wayland): the next frame is asked for at its `done`.
    awaiting_frame: bool,

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
            shown_slot: None,
            reading: HashSet::new(),
            to_free: HashSet::new(),
            awaiting_frame: false,
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
    pub(super) fn display_attach(
        &mut self,
        renderer_pid: u32,
        fd: OwnedFd,
        slots: u32,
    ) -> anyhow::Result<()> {
        let Some(s) = self.display.as_mut() else {
            return Ok(());
        };
        let (w, h) = (self.args.size.width, self.args.size.height);
        let slot_bytes =
            u32::try_from(u64::from(w) * u64::from(h) * 4).context("a frame beyond 4 GiB")?;
        let seg =
            s.d.presenter
                .attach(fd, slots, slot_bytes, (w as u16, h as u16))?;
        s.reading.clear();
        s.to_free.clear();
        s.shown_slot = None;
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
        s.d.presenter.put(seg, offset, frame, size, || pixels)?;
        s.on_screen = Some((seg, offset));
        if s.d.presenter.releases() {
            s.awaiting_frame = true;
            s.reading.insert(slot);
            let prev = s.shown_slot.replace(slot);

            // The slot replaced goes back now if its buffer was released already, else once it
            // is; `back` is that same slot.
            if let Some(prev) = prev.filter(|p| *p != slot) {
                let s = self.display.as_mut().context("the window")?;
                if s.reading.contains(&prev) {
                    s.to_free.insert(prev);
                } else {
                    self.free_slot(prev);
                }
            }
            let _ = back;
        } else if s.d.presenter.completes() {
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
            DisplayEvent::Released(c) => {
                let slot_bytes =
                    u64::from(self.args.size.width) * u64::from(self.args.size.height) * 4;
                let Some(s) = self.display.as_mut() else {
                    return Ok(());
                };
                if s.seg.is_some_and(|(_, cur)| cur == c.seg) && slot_bytes > 0 {
                    let slot = (u64::from(c.offset) / slot_bytes) as u32;
                    s.reading.remove(&slot);
                    if s.to_free.remove(&slot) {
                        self.free_slot(slot);
                    }
                }
            }
            DisplayEvent::FrameDone(frame) => {
                let Some(s) = self.display.as_mut() else {
                    return Ok(());
                };
                s.awaiting_frame = false;
                if let Some(old) = s.retire.take() {
                    s.d.presenter.detach(old);
                }
                self.on_screen(frame);
            }
            DisplayEvent::Exposed => {
                if let Some(s) = self.display.as_ref() {
                    if let Some((seg, off)) = s.on_screen {
                        let size = (self.args.size.width as u16, self.args.size.height as u16);
                        let _ = s.d.presenter.put(seg, off, u64::MAX, size, || None);
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
        // On Wayland the compositor's frame callback paces; the timer only bounds the rate.
        let asked = !s.awaiting_frame;
        let room = asked && s.next_request < presented + IN_FLIGHT;
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
