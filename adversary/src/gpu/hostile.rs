//! A compromised GPU process, for the trust-boundary tests: the GPU process's own run, with
//! [`super::GpuAdversary`]'s hooks calling into this module.
//!
//! The attack is named by [`HOSTILE_ENV`] (or, for every GPU process of a run, by the file
//! [`crate::every`] reads), read once at start-up; once it is sandboxed and has reported `Started`,
//! [`attack`] breaks the protocol with what the process legitimately holds: its control socket
//! and mailboxes to the launcher (which every frame goes through, on its way to the renderer)
//! and the files in its export window (which the renderer takes). Neither the launcher nor the
//! renderer may die or be blamed for it; every attack costs this process its life or its frame.

use std::os::fd::{AsFd, BorrowedFd};

use ipc_protocol::channel::{Sender, Wire};
use ipc_protocol::messages::{BackendRequest, FrameMsg, GpuToLauncher};
use ipc_protocol::{BufferId, FileId, RemoteFd};

/// The environment variable naming the attack.
pub const HOSTILE_ENV: &str = "TRIPTYCH_HOSTILE_GPU";

/// What the hostile GPU process does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// A datagram larger than any message, to the launcher.
    Huge,
    /// Undecodable bytes with a lying length prefix, to the launcher.
    Garbage,
    /// A valid message with fds attached, to the launcher.
    Fds,
    /// A second `Started`.
    SecondStarted,
    /// Names a server for a command stream again, once sandboxed (`CommandsAt`): the launcher
    /// would connect to it and hand over a second stream.
    CommandsAt,
    /// Closes its end of the launcher's command stream (every socket below the fixed fds),
    /// and lives on.
    CloseStream,
    /// A trace batch although tracing is off.
    TraceOff,
    /// Tens of thousands of messages.
    Flood,
    /// Frame [`FRAMING_FROM`]'s description, in its place, fails validation (then it behaves).
    BadFrame,
    /// Keeps a copy of its seccomp listener when it hands it over, with a thread of its own that
    /// waits on the copy to answer its refused calls.
    KeepListener,
    /// Asks for a seccomp notification (`SECCOMP_IOCTL_NOTIF_RECV`) on its stderr: the request a
    /// thread holding a listener would make.
    NotifIoctl,
    /// Writes a line forged to read as the launcher's, escape sequences, a line of
    /// [`LONG_LINE`] bytes and [`FLOOD_LINES`] more lines to its stderr (then it behaves).
    StderrFlood,
    /// Sends trace batches at [`TRACE_FLOOD_RATE`] for [`TRACE_FLOOD`] (then it behaves); the
    /// launcher must be told `--trace`.
    TraceFlood,
    /// From frame [`FRAMING_FROM`] on, sends every frame's description twice.
    FrameTwice,
    /// From frame [`FRAMING_FROM`] on, also sends each frame's description numbered three
    /// frames ahead.
    FrameAhead,
    /// From frame [`FRAMING_FROM`] on, names in each description, as the first layer's buffer,
    /// the one the frame before it named (which the renderer still holds and reads: drawing
    /// into it would tear the frame on screen).
    HeldBuffer,
    /// Frame [`FRAMING_FROM`]'s description, in its place, names no layer at all (a frame that
    /// would hold no buffer, and so could be sent without end).
    NoLayers,
    /// Sends its first description from frame [`FRAMING_FROM`] on under a generation the
    /// launcher never started, instead of its own.
    FrameFutureGeneration,
    /// From frame [`FRAMING_FROM`] on, names an eventfd of its own where the first layer's pipe
    /// fence should be (in every description after it: the run can only finish in a
    /// replacement).
    EventfdFence,
    /// Reports a failure whose text holds a line forged to read as the launcher's, escape
    /// sequences and a line separator.
    LogForge,
    /// From frame [`FRAMING_FROM`] on, stops taking the releases the launcher relays: it runs
    /// out of buffers and stops producing, as if the renderer withheld them.
    IgnoreReleases,
    /// From frame [`FRAMING_FROM`] on, names the first layer's own buffer where its fence
    /// should be (a file that is no fence).
    BufferFence,
    /// From frame [`FRAMING_FROM`] on, says the first layer's fence is the implicit fences of
    /// its own buffer, a sealed memfd: implicit fences lie only on a DMA-BUF.
    ImplicitShm,
    /// From frame [`FRAMING_FROM`] on, where its fences are implicit (DMA-BUFs), names an
    /// eventfd of its export window as the first layer's fence carrier: a file in the window,
    /// described truly, that carries no fences.
    ImplicitEventfd,
    /// Aborts as soon as it is confined, before it reports `Started`, when the launcher asked it
    /// for this buffer backend (`crash-on-start-with:auto|shm|dmabuf`): a process that never
    /// comes up on one rung of the fallback ladder.
    CrashOnStartWith(BackendRequest),
    /// At frame [`FRAMING_FROM`], starts a thread that floods the launcher for a second with
    /// well-formed descriptions of about 30 KiB of an epoch long gone, while it goes on
    /// producing.
    StaleFlood,
    /// From frame [`FRAMING_FROM`] on, reads the byte of each frame's first pipe fence away
    /// once it is signalled (the fence then looks abandoned to the renderer, which rejects the
    /// frame): good frames that an honest renderer must refuse.
    DrainFence,
    /// From frame 0 on, names for each buffer a sparse sealed memfd of its own (one per pool
    /// slot, about 4 GiB long) with the plane at its end: every file passes the shared check,
    /// but a reader that maps 0..plane_end of each slot runs out of address space.
    HugePlanes,
    /// Never answers `PrivateFences`, and from frame [`FRAMING_FROM`] on names as the first
    /// layer's fence an in-window pipe whose writer is closed unsignalled.
    MuteAbandon,
    /// Never answers `PrivateFences`; from frame 3 on, each frame's first fence is an in-window
    /// pipe closed unsignalled 900 ms after the one before it (just inside each fence wait of
    /// the launcher, which waits on them one after another).
    SlowAbandon,
    /// An attack on its mailboxes with the launcher (`ring-<name>`, [`crate::ring`]).
    Ring(crate::ring::RingAttack),
    /// The same attack on its ring to the launcher, made as soon as it has started, before its
    /// first frame (`ring-<name>@start`, any attack but those on its inbox): a paced run's
    /// launcher is taking the ring over from the thread that read the start-up then. Its log
    /// names it (`RingAtStart`) where a frame's attack logs "attacking its ring".
    RingAtStart(crate::ring::RingAttack),
    /// An attack of the standby (`standby-<name>`, [`super::standby`]): only a standby carries
    /// it out; every process of the run paces its frames.
    Standby(super::standby::StandbyAttack),
    /// The first frame of each new scene version (`FrameMsg::scene_version` above the frame
    /// before's) has its fences signalled [`EDIT_SLOW_FENCE`] late, just past the renderer's
    /// fence wait: the renderer keeps every layer's previous buffer, so the frame shows the
    /// scene before the edit, while naming the edit. Nothing else is changed or lied about.
    EditSlowFence,
    /// Draws every edit it is sent, but names in every frame the scene version it started on:
    /// the launcher never hears that an edit is on screen.
    EditVersionStuck,
    /// For [`ROTATE_FRAMES`] frames from [`FRAMING_FROM`] on, each frame names one of its
    /// layers only (frame number modulo the layer count): the renderer takes every other layer
    /// as removed and gives its buffer back, the frame after takes another one.
    LayersRotate,
    /// The last frame of the run has its fences signalled [`SLOW_LAST`] late (a slow GPU, within
    /// the fence wait the test gives): an edit sent meanwhile is never drawn.
    SlowLastFrame,
    /// At frame [`FRAMING_FROM`], names progress point 1 again as the first layer's fence: a
    /// point its page passed long ago, which would let the renderer read the buffer at once.
    ProgressRepeat,
    /// At frame [`FRAMING_FROM`], names a progress fence on the first layer's own buffer file
    /// instead of its progress page.
    ProgressForeign,
    /// From frame [`FRAMING_FROM`] on, names every progress point [`PROGRESS_AHEAD`] beyond the
    /// one it will store: well-formed, ever rising, and never reached (a GPU process that says
    /// its work will finish and never stores that it did).
    ProgressUnreached,
    /// From frame [`FRAMING_FROM`] on, completes each frame [`STORM_DELAY`] late while a
    /// thread of its own wakes the progress page's futex without end: every reader waiting on
    /// the page would loop. (Changing the word as well would also undo its own points, and cost
    /// it its life as a hang.)
    ProgressStorm,
    /// From frame [`FRAMING_FROM`] on, also sends each frame as a frame of a view it was never
    /// given.
    UnknownView,
    /// From frame [`FRAMING_FROM`] on, also sends each frame of its first view as a frame of its
    /// second view: its fds lie in the first view's export window, where the second view's
    /// renderer could never take them (and must not be told to).
    CrossView,
    /// At frame [`FRAMING_FROM`], says its first view is removed, which it was never asked.
    RemovedLie,
    /// Never renders for its second view, while it serves the first: a view starved.
    StarveView,
}

/// How late [`Attack::EditSlowFence`] signals the fences of a new version's first frame.
pub const EDIT_SLOW_FENCE: std::time::Duration = std::time::Duration::from_millis(340);
/// Frames [`Attack::LayersRotate`] names one layer in.
pub const ROTATE_FRAMES: u64 = 12;
/// How late [`Attack::SlowLastFrame`] signals the last frame's fences.
pub const SLOW_LAST: std::time::Duration = std::time::Duration::from_millis(2500);
/// The frames of the run, once it runs ([`Attack::SlowLastFrame`]).
pub static FRAMES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);

/// Whether the hostile GPU process dies at start-up when asked for `backend`.
pub fn crashes_on_start(attack: Option<Attack>, backend: BackendRequest) -> bool {
    attack == Some(Attack::CrashOnStartWith(backend))
}

/// Whether, after frame `frame`, the hostile GPU process stops taking releases.
pub fn ignores_releases(attack: Option<Attack>, frame: u64) -> bool {
    attack == Some(Attack::IgnoreReleases) && frame == FRAMING_FROM
}

/// Whether the frame loop stops at frame `frame` for an attack that stops it once: at the first
/// frame from [`FRAMING_FROM`] on.
pub fn stall_once(frame: u64) -> bool {
    static STALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    frame >= FRAMING_FROM && !STALLED.swap(true, std::sync::atomic::Ordering::Relaxed)
}

/// The first frame the framing attacks act at.
pub const FRAMING_FROM: u64 = 3;

/// How far beyond its true points [`Attack::ProgressUnreached`] names them.
pub const PROGRESS_AHEAD: u64 = 1 << 40;

/// How late [`Attack::ProgressStorm`] completes each frame.
pub const STORM_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// [`Attack::ProgressStorm`]: a thread that wakes every waiter on its page's word, without end.
pub fn progress_storm(page: &'static triptych_sys::mapping::SharedMemory) {
    use std::sync::atomic::Ordering;
    static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if STARTED.swap(true, Ordering::Relaxed) {
        return;
    }
    let Some(word) = page.atomic_u32(0) else {
        return;
    };
    let started = std::thread::Builder::new()
        .name("progress-storm".into())
        .spawn(move || loop {
            let _ = triptych_sys::futex::wake(word, u32::MAX);
        })
        .is_ok();
    tracing::warn!(
        started,
        "hostile GPU: a storm of wake-ups on the progress page"
    );
}

/// The line [`Attack::StderrFlood`] forges: the launcher's own violation line, word for word.
pub const FORGED_LINE: &str =
    "2026-12-05T00:00:00.000000Z ERROR sandbox violation in gpu: ptrace(0x0, 0x0, 0x0, 0x0, 0x0, 0x0)";
/// Bytes of the one long line [`Attack::StderrFlood`] writes.
pub const LONG_LINE: usize = 100_000;
/// Lines [`Attack::StderrFlood`] floods with.
pub const FLOOD_LINES: usize = 200_000;
/// How long [`Attack::TraceFlood`] sends.
pub const TRACE_FLOOD: std::time::Duration = std::time::Duration::from_secs(5);
/// Trace bytes a second [`Attack::TraceFlood`] sends (the launcher allows 16 MiB).
pub const TRACE_FLOOD_RATE: f64 = 6.0 * 1024.0 * 1024.0;

impl Attack {
    /// The attack named by [`HOSTILE_ENV`], if any.
    pub fn from_env() -> Option<Attack> {
        let v = std::env::var(HOSTILE_ENV).ok().or_else(crate::every)?;
        if let Some(backend) = v.strip_prefix("crash-on-start-with:") {
            return Some(Attack::CrashOnStartWith(match backend {
                "auto" => BackendRequest::Auto,
                "shm" => BackendRequest::Shm,
                "dmabuf" => BackendRequest::DmaBuf,
                _ => return None,
            }));
        }
        if let Some(ring) = v
            .strip_suffix("@start")
            .and_then(crate::ring::RingAttack::from_name)
            .filter(|r| !r.on_inbox())
        {
            return Some(Attack::RingAtStart(ring));
        }
        if let Some(ring) = crate::ring::RingAttack::from_name(&v) {
            return Some(Attack::Ring(ring));
        }
        if let Some(name) = v.strip_prefix("standby-") {
            return super::standby::StandbyAttack::from_name(name).map(Attack::Standby);
        }
        Some(match v.as_str() {
            "huge" => Attack::Huge,
            "garbage" => Attack::Garbage,
            "fds" => Attack::Fds,
            "second-started" => Attack::SecondStarted,
            "commands-at" => Attack::CommandsAt,
            "close-stream" => Attack::CloseStream,
            "trace-off" => Attack::TraceOff,
            "flood" => Attack::Flood,
            "bad-frame" => Attack::BadFrame,
            "keep-listener" => Attack::KeepListener,
            "notif-ioctl" => Attack::NotifIoctl,
            "stderr-flood" => Attack::StderrFlood,
            "trace-flood" => Attack::TraceFlood,
            "frame-twice" => Attack::FrameTwice,
            "frame-ahead" => Attack::FrameAhead,
            "held-buffer" => Attack::HeldBuffer,
            "no-layers" => Attack::NoLayers,
            "frame-future-generation" => Attack::FrameFutureGeneration,
            "eventfd-fence" => Attack::EventfdFence,
            "buffer-fence" => Attack::BufferFence,
            "implicit-on-shm" => Attack::ImplicitShm,
            "implicit-eventfd" => Attack::ImplicitEventfd,
            "log-forge" => Attack::LogForge,
            "ignore-releases" => Attack::IgnoreReleases,
            "stale-flood" => Attack::StaleFlood,
            "drain-fence" => Attack::DrainFence,
            "huge-planes" => Attack::HugePlanes,
            "mute-abandon" => Attack::MuteAbandon,
            "slow-abandon" => Attack::SlowAbandon,
            "edit-slow-fence" => Attack::EditSlowFence,
            "edit-version-stuck" => Attack::EditVersionStuck,
            "layers-rotate" => Attack::LayersRotate,
            "unknown-view" => Attack::UnknownView,
            "cross-view" => Attack::CrossView,
            "removed-lie" => Attack::RemovedLie,
            "starve-view" => Attack::StarveView,
            "slow-last-frame" => Attack::SlowLastFrame,
            "progress-repeat" => Attack::ProgressRepeat,
            "progress-foreign" => Attack::ProgressForeign,
            "progress-unreached" => Attack::ProgressUnreached,
            "progress-storm" => Attack::ProgressStorm,
            _ => return None,
        })
    }
}

/// Keeps the listener (a copy of which went to the launcher) and lets every call it is notified
/// of run, from a thread of this process: what a process that held on to its listener could do.
pub fn keep_listener(copy: std::os::fd::OwnedFd) {
    let _ = std::thread::Builder::new()
        .name("kept-listener".into())
        .spawn(move || {
            while let Ok(n) = triptych_sys::notify::recv_notification(copy.as_fd()) {
                tracing::warn!(nr = n.record.nr, "answered its own refused call");
                let _ = triptych_sys::notify::let_run(copy.as_fd(), n.id);
            }
        });
}

/// Sends the launcher 60 000 messages as fast as it can.
pub fn flood(events: &Sender<GpuToLauncher>) {
    tracing::warn!("hostile GPU process: a flood of messages");
    for _ in 0..60_000 {
        if events.send(&GpuToLauncher::Pong(0)).is_err() {
            break;
        }
    }
}

fn raw<T: Wire>(to: &Sender<T>, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
    let _ = triptych_sys::scm::send_with_fds(to.as_fd(), bytes, fds);
}

/// Carries out `attack` on the launcher (`events`), once `Started` is reported.
pub fn attack(
    attack: Attack,
    events: &Sender<GpuToLauncher>,
    info: &ipc_protocol::messages::GpuInfo,
) {
    tracing::warn!(?attack, "hostile GPU process attacking");
    match attack {
        Attack::Huge => raw(events, &vec![7u8; 200_000], &[]),
        Attack::Garbage => raw(events, &[4, 0xff, 0xff, 0xff, 0xff, 0x0f, 1], &[]),
        Attack::Fds => {
            let m = ipc_protocol::channel::encode(&GpuToLauncher::Pong(0)).unwrap_or_default();
            raw(events, &m, &[events.as_fd(), events.as_fd()]);
        }
        Attack::SecondStarted => {
            let _ = events.send(&GpuToLauncher::Started(info.clone()));
        }
        Attack::CommandsAt => {
            let _ = events.send(&GpuToLauncher::CommandsAt("/tmp/elsewhere/socket".into()));
        }
        Attack::CloseStream => {
            // The stream's socket is the one socket with a number of the kernel's choosing
            // (the control socket and the handed-over ones sit at fixed numbers, 200 and up).
            for fd in 3..200 {
                // `fstat` of a number that is not open fails harmlessly.
                let socket = nix::sys::stat::fstat(fd)
                    .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFSOCK);
                if socket {
                    let r = nix::unistd::close(fd);
                    tracing::warn!(fd, ?r, "closed the launcher's command stream");
                }
            }
        }
        Attack::TraceOff => {
            let _ = events.send(&GpuToLauncher::Trace(Vec::new()));
        }
        Attack::Flood => flood(events),
        // The copy and its thread were made at the handover; the framing attacks act on the
        // frames as they are sent (`after_send`).
        Attack::KeepListener
        | Attack::FrameTwice
        | Attack::FrameAhead
        | Attack::HeldBuffer
        | Attack::NoLayers
        | Attack::FrameFutureGeneration
        | Attack::EventfdFence
        | Attack::BadFrame
        | Attack::BufferFence
        | Attack::ImplicitShm
        | Attack::ImplicitEventfd
        | Attack::IgnoreReleases
        | Attack::StaleFlood
        | Attack::DrainFence
        | Attack::HugePlanes
        | Attack::MuteAbandon
        | Attack::SlowAbandon
        | Attack::EditSlowFence
        | Attack::EditVersionStuck
        | Attack::LayersRotate
        | Attack::SlowLastFrame
        | Attack::ProgressRepeat
        | Attack::ProgressForeign
        | Attack::ProgressUnreached
        | Attack::ProgressStorm
        | Attack::UnknownView
        | Attack::CrossView
        | Attack::RemovedLie
        | Attack::StarveView
        | Attack::Standby(_)
        | Attack::CrashOnStartWith(_) => {}
        Attack::Ring(r) | Attack::RingAtStart(r) => {
            crate::ring::attack(r, events, || GpuToLauncher::Pong(0))
        }
        Attack::LogForge => {
            let forged = format!("x\n{FORGED_LINE}\n\x1b[31mred\x1b[0m \u{2028}after");
            let _ = events.send(&GpuToLauncher::Failed(forged));
        }
        Attack::NotifIoctl => {
            let stderr = std::io::stderr();
            let outcome = crate::calls::attempt(crate::calls::Call::Ioctl {
                fd: stderr.as_fd(),
                request: crate::calls::IoctlRequest::SeccompNotifRecv,
            });
            tracing::warn!(?outcome, "SECCOMP_IOCTL_NOTIF_RECV returned");
        }
        Attack::StderrFlood => stderr_flood(),
        Attack::TraceFlood => trace_flood(events, info.pid),
    }
}

fn stderr_flood() {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let mut head = format!("{FORGED_LINE}\n\x1b[2J\x1b[Hthe screen was cleared\r{FORGED_LINE}\n");
    head.push_str(&"L".repeat(LONG_LINE));
    head.push('\n');
    let _ = err.write_all(head.as_bytes());
    let mut written = 0;
    let mut chunk = String::new();
    while written < FLOOD_LINES {
        chunk.clear();
        for i in written..(written + 1000).min(FLOOD_LINES) {
            chunk.push_str(&format!("flood line {i}: {FORGED_LINE}\n"));
        }
        written = (written + 1000).min(FLOOD_LINES);
        if err.write_all(chunk.as_bytes()).is_err() {
            break;
        }
    }
    drop(err);
    tracing::warn!(written, "stderr flood over");
}

fn trace_flood(events: &Sender<GpuToLauncher>, pid: u32) {
    use triptych_trace::{ArgValue, Args, Event, EventKind, Stage};
    let pad = ArgValue::Str("t".repeat(1024));
    let batch: Vec<Event> = (0..48)
        .map(|_| {
            let mut args = Args::new();
            args.insert("pad".into(), pad.clone());
            Event {
                kind: EventKind::Span {
                    stage: Stage::GpuRender,
                    dur_ns: 1,
                },
                ts_ns: triptych_trace::now_ns(),
                pid,
                tid: 0,
                frame: None,
                args,
            }
        })
        .collect();
    let bytes = batch.len() as f64 * 1100.0;
    let start = std::time::Instant::now();
    let (mut sent, mut batches) = (0u64, 0u32);
    while start.elapsed() < TRACE_FLOOD {
        let due = start
            + std::time::Duration::from_secs_f64(f64::from(batches) * bytes / TRACE_FLOOD_RATE);
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
        batches += 1;
        match events.send(&GpuToLauncher::Trace(batch.clone())) {
            Ok(()) => sent += batch.len() as u64,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
    tracing::warn!(sent, "trace flood over");
}

/// The eventfd [`Attack::EventfdFence`] names as a fence: its number and identity.
static EVENTFD: std::sync::OnceLock<Option<(i32, FileId)>> = std::sync::OnceLock::new();

/// An eventfd at the export window's last free number (where the renderer takes fences from),
/// open for the rest of the process's life.
fn eventfd_in(window: (i32, i32)) -> Option<(i32, FileId)> {
    use std::os::fd::AsRawFd;
    let efd = nix::sys::eventfd::EventFd::from_value_and_flags(
        1,
        nix::sys::eventfd::EfdFlags::EFD_CLOEXEC,
    )
    .ok()?;
    let efd = std::os::fd::OwnedFd::from(efd);
    let id = triptych_sys::fd::identity(efd.as_fd()).ok()?;
    // Never closed: the number stays the eventfd's.
    let at = nix::fcntl::fcntl(
        efd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(window.1 - 1),
    )
    .ok()?;
    (at < window.1).then_some((
        at,
        FileId {
            dev: id.dev,
            ino: id.ino,
        },
    ))
}

/// Frames of the framing attacks carried out, for the test to see that they happened.
static FRAMED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Whether [`Attack::FrameFutureGeneration`] sent its one lie.
static FUTURE_SENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The buffer the first layer of the frame before named ([`Attack::HeldBuffer`]).
static LAST_FIRST: std::sync::Mutex<Option<BufferId>> = std::sync::Mutex::new(None);

/// Before frame `msg` goes to the launcher: the attacks that send a lie instead of it.
pub fn before_send(attack: Attack, msg: &mut FrameMsg, window: (i32, i32)) {
    use std::sync::atomic::Ordering;
    match attack {
        Attack::HugePlanes => return huge_planes(msg),
        Attack::SlowAbandon => return slow_abandon(msg),
        Attack::MuteAbandon if msg.frame >= FRAMING_FROM => {
            let Some(first) = msg.layers.first_mut() else {
                return;
            };
            let Some(fd) = abandoned_pipe() else {
                return;
            };
            first.buffer.fence.fd = fd;
        }
        Attack::HeldBuffer => {
            let Some(first) = msg.layers.first_mut() else {
                return;
            };
            let mut last = LAST_FIRST.lock().unwrap_or_else(|e| e.into_inner());
            let own = first.buffer.id;
            let previous = last.replace(own);
            match previous {
                Some(held) if msg.frame >= FRAMING_FROM && held != own => first.buffer.id = held,
                _ => return,
            }
        }
        Attack::FrameFutureGeneration
            if msg.frame >= FRAMING_FROM && !FUTURE_SENT.swap(true, Ordering::Relaxed) =>
        {
            msg.generation += 3
        }
        Attack::NoLayers if msg.frame == FRAMING_FROM => msg.layers.clear(),
        Attack::EditVersionStuck => {
            static FIRST: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
            let first = *FIRST.get_or_init(|| msg.scene_version);
            if msg.scene_version == first {
                return;
            }
            msg.scene_version = first;
        }
        Attack::LayersRotate
            if (FRAMING_FROM..FRAMING_FROM + ROTATE_FRAMES).contains(&msg.frame)
                && msg.layers.len() > 1 =>
        {
            let keep = (msg.frame % msg.layers.len() as u64) as usize;
            let one = msg.layers.swap_remove(keep);
            msg.layers = vec![one];
        }
        Attack::BufferFence if msg.frame >= FRAMING_FROM => {
            let Some(first) = msg.layers.first_mut() else {
                return;
            };
            let Some(plane) = first.buffer.planes.first() else {
                return;
            };
            first.buffer.fence.fd = plane.fd;
        }
        Attack::ImplicitShm if msg.frame >= FRAMING_FROM => {
            let Some(first) = msg.layers.first_mut() else {
                return;
            };
            let Some(plane) = first.buffer.planes.first() else {
                return;
            };
            first.buffer.fence = ipc_protocol::Fence {
                kind: ipc_protocol::frame::FenceKind::Implicit,
                fd: plane.fd,
                point: 0,
            };
        }
        Attack::ImplicitEventfd if msg.frame >= FRAMING_FROM => {
            let Some(first) = msg.layers.first_mut() else {
                return;
            };
            if first.buffer.fence.kind != ipc_protocol::frame::FenceKind::Implicit {
                return;
            }
            let Some((fd, identity)) = *EVENTFD.get_or_init(|| eventfd_in(window)) else {
                return;
            };
            first.buffer.fence.fd = RemoteFd {
                pid: first.buffer.fence.fd.pid,
                fd,
                identity,
            };
        }
        Attack::BadFrame if msg.frame == FRAMING_FROM => {
            // In its place in the order, but with no planes and a fence outside the window.
            let Some(first) = msg.layers.first_mut() else {
                return;
            };
            first.buffer.planes.clear();
            first.buffer.fence.fd = RemoteFd {
                pid: std::process::id(),
                fd: 3,
                identity: FileId { dev: 0, ino: 0 },
            };
        }
        Attack::ProgressRepeat if msg.frame == FRAMING_FROM => {
            let Some(first) = msg.layers.first_mut() else {
                return;
            };
            first.buffer.fence.point = 1;
        }
        Attack::ProgressForeign if msg.frame == FRAMING_FROM => {
            let Some(first) = msg.layers.first_mut() else {
                return;
            };
            let Some(plane) = first.buffer.planes.first() else {
                return;
            };
            first.buffer.fence.fd.identity = plane.fd.identity;
        }
        Attack::ProgressUnreached if msg.frame >= FRAMING_FROM => {
            for l in &mut msg.layers {
                l.buffer.fence.point = l.buffer.fence.point.saturating_add(PROGRESS_AHEAD);
            }
        }
        Attack::EventfdFence if msg.frame >= FRAMING_FROM => {
            let Some((fd, identity)) = *EVENTFD.get_or_init(|| eventfd_in(window)) else {
                return;
            };
            let Some(first) = msg.layers.first_mut() else {
                return;
            };
            first.buffer.fence.fd = RemoteFd {
                pid: first.buffer.fence.fd.pid,
                fd,
                identity,
            };
        }
        _ => return,
    }
    let n = FRAMED.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::warn!(
        ?attack,
        frame = msg.frame,
        framed = n,
        "sending the renderer a lie"
    );
}

/// After frame `msg` went to the launcher: the framing attacks, which send frames it never
/// made, using only what this process holds.
pub fn after_send(
    attack: Attack,
    msg: &FrameMsg,
    view: ipc_protocol::messages::ViewId,
    events: &Sender<GpuToLauncher>,
) {
    use ipc_protocol::messages::ViewId;
    use std::sync::atomic::Ordering;
    match attack {
        Attack::EditSlowFence => {
            static LAST: std::sync::OnceLock<std::sync::atomic::AtomicU64> =
                std::sync::OnceLock::new();
            let last = LAST.get_or_init(|| std::sync::atomic::AtomicU64::new(msg.scene_version));
            if msg.scene_version > last.swap(msg.scene_version, Ordering::Relaxed) {
                tracing::warn!(
                    frame = msg.frame,
                    version = msg.scene_version,
                    "hostile GPU: the first frame of a new scene version, its fences late"
                );
                std::thread::sleep(EDIT_SLOW_FENCE);
            }
            return;
        }
        Attack::SlowLastFrame => {
            if msg.frame.checked_add(1) == Some(FRAMES.load(Ordering::Relaxed)) {
                tracing::warn!(
                    frame = msg.frame,
                    "hostile GPU: the last frame, its fences late"
                );
                std::thread::sleep(SLOW_LAST);
            }
            return;
        }
        _ => {}
    }
    if msg.frame < FRAMING_FROM {
        return;
    }
    let mut lie = msg.clone();
    let mut lie_view = view;
    match attack {
        Attack::FrameTwice => {}
        Attack::FrameAhead => lie.frame += 3,
        Attack::UnknownView => lie_view = ViewId(9),
        Attack::CrossView if view == ViewId(0) => lie_view = ViewId(1),
        Attack::RemovedLie => {
            if stall_once(msg.frame) {
                let sent = events.send(&GpuToLauncher::Removed(view)).is_ok();
                tracing::warn!(
                    sent,
                    frame = msg.frame,
                    "hostile GPU: said its view is removed"
                );
            }
            return;
        }
        Attack::DrainFence => return drain_fence(msg),
        Attack::StaleFlood => {
            static STARTED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !STARTED.swap(true, Ordering::Relaxed) {
                stale_flood(msg, events.clone());
            }
            return;
        }
        _ => return,
    }
    if events
        .send(&GpuToLauncher::Frame {
            view: lie_view,
            msg: lie,
        })
        .is_ok()
    {
        let n = FRAMED.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            ?attack,
            frame = msg.frame,
            framed = n,
            "sent the launcher a lie"
        );
    }
}

/// The read end of a pipe whose write end is already closed, placed in the export window, kept
/// open (the last 32) so the launcher can still take it.
fn abandoned_pipe() -> Option<RemoteFd> {
    static KEPT: std::sync::Mutex<std::collections::VecDeque<std::os::fd::OwnedFd>> =
        std::sync::Mutex::new(std::collections::VecDeque::new());
    let (read, write) = triptych_sys::fd::pipe_cloexec().ok()?;
    drop(write);
    let placed = triptych_sys::fd::ExportWindow::GPU
        .place(read.as_fd())
        .ok()?;
    drop(read);
    let r = remote_of(&placed)?;
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() == 32 {
        kept.pop_front();
    }
    kept.push_back(placed);
    Some(r)
}

fn remote_of(fd: &std::os::fd::OwnedFd) -> Option<RemoteFd> {
    use std::os::fd::AsRawFd;
    let id = triptych_sys::fd::identity(fd.as_fd()).ok()?;
    Some(RemoteFd {
        pid: std::process::id(),
        fd: fd.as_raw_fd(),
        identity: FileId {
            dev: id.dev,
            ino: id.ino,
        },
    })
}

/// Pipe fences [`Attack::SlowAbandon`] keeps open in the window (the last 64), so the
/// launcher can still take them.
static KEPT_READ: std::sync::Mutex<Vec<std::os::fd::OwnedFd>> = std::sync::Mutex::new(Vec::new());

/// Set when the launcher asks for private fences.
pub static ASKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn slow_abandon(msg: &mut FrameMsg) {
    use std::sync::atomic::Ordering;
    static CLOSER: std::sync::OnceLock<
        std::sync::Mutex<std::sync::mpsc::Sender<std::os::fd::OwnedFd>>,
    > = std::sync::OnceLock::new();
    if msg.frame < FRAMING_FROM {
        return;
    }
    let Some(first) = msg.layers.first_mut() else {
        return;
    };
    if !ASKED.load(Ordering::Relaxed) {
        if let Some(fd) = abandoned_pipe() {
            first.buffer.fence.fd = fd;
        }
        return;
    }
    let Ok((read, write)) = triptych_sys::fd::pipe_cloexec() else {
        return;
    };
    let Ok(placed) = triptych_sys::fd::ExportWindow::GPU.place(read.as_fd()) else {
        return;
    };
    let Some(r) = remote_of(&placed) else {
        return;
    };
    {
        let mut kept = KEPT_READ.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() > 64 {
            kept.remove(0);
        }
        kept.push(placed);
    }
    first.buffer.fence.fd = r;
    let closer = CLOSER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<std::os::fd::OwnedFd>();
        let _ = std::thread::Builder::new()
            .name("slow-abandon".into())
            .spawn(move || {
                let mut n = 0u64;
                for w in rx {
                    std::thread::sleep(std::time::Duration::from_millis(900));
                    drop(w);
                    n += 1;
                    if n % 10 == 1 {
                        tracing::warn!(n, "hostile GPU: a fence abandoned after 900 ms");
                    }
                }
            });
        std::sync::Mutex::new(tx)
    });
    if let Ok(tx) = closer.lock() {
        let _ = tx.send(write);
    }
}

/// [`Attack::HugePlanes`].
fn huge_planes(msg: &mut FrameMsg) {
    static FILES: std::sync::Mutex<Vec<(u32, RemoteFd, std::os::fd::OwnedFd)>> =
        std::sync::Mutex::new(Vec::new());
    let mut files = FILES.lock().unwrap_or_else(|e| e.into_inner());
    for l in &mut msg.layers {
        let b = &mut l.buffer;
        let height = b.height;
        let slot = b.id.slot;
        let Some(p) = b.planes.first_mut() else {
            continue;
        };
        let len = u64::from(p.stride) * u64::from(height);
        let offset = (u64::from(u32::MAX) - len) & !4095;
        let end = offset + len;
        if !files.iter().any(|(s, _, _)| *s == slot) {
            let Ok(fd) = triptych_sys::memfd::create_sealed(c"huge", end) else {
                tracing::warn!("hostile GPU: no huge memfd");
                return;
            };
            let Ok(placed) = triptych_sys::fd::ExportWindow::GPU.place(fd.as_fd()) else {
                return;
            };
            let Some(r) = remote_of(&placed) else {
                return;
            };
            tracing::warn!(slot, end, "hostile GPU: a huge sparse plane");
            files.push((slot, r, placed));
        }
        let Some((_, r, _)) = files.iter().find(|(s, _, _)| *s == slot) else {
            return;
        };
        p.fd = *r;
        p.offset = offset as u32;
    }
}

/// [`Attack::DrainFence`]: hands a copy of the first layer's fence (this process's own export)
/// to a thread that waits for it to signal and reads its byte away. The frame loop signals the
/// fence after this hook returns, so the wait cannot be made here.
fn drain_fence(msg: &FrameMsg) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static DRAINER: OnceLock<
        std::sync::Mutex<std::sync::mpsc::Sender<(u64, std::os::fd::OwnedFd)>>,
    > = OnceLock::new();
    static DRAINED: AtomicU64 = AtomicU64::new(0);
    let Some(l) = msg.layers.first() else {
        return;
    };
    // SAFETY: the number is this process's own export of the fence, open until the buffer comes
    // back, which cannot happen before this hook returns (the frame loop runs it).
    let fence = unsafe { BorrowedFd::borrow_raw(l.buffer.fence.fd.fd) };
    let Ok(copy) = triptych_sys::fd::dup_cloexec(fence) else {
        return;
    };
    let drainer = DRAINER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<(u64, std::os::fd::OwnedFd)>();
        let _ = std::thread::Builder::new()
            .name("drain-fence".into())
            .spawn(move || {
                for (frame, fence) in rx {
                    let signalled = triptych_sys::poll::wait_signalled(
                        fence.as_fd(),
                        std::time::Duration::from_secs(2),
                    );
                    let read = crate::calls::attempt(crate::calls::Call::ReadFd(fence.as_fd()));
                    let n = DRAINED.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(
                        frame,
                        ?signalled,
                        ?read,
                        drained = n,
                        "hostile GPU: read a fence's byte away"
                    );
                }
            });
        std::sync::Mutex::new(tx)
    });
    if let Ok(tx) = drainer.lock() {
        let _ = tx.send((msg.frame, copy));
    }
}

/// [`Attack::StaleFlood`]: copies of `msg` under an epoch long gone, padded with copies of its
/// layers to about 30 KiB, sent from a thread for a second.
fn stale_flood(msg: &FrameMsg, events: Sender<GpuToLauncher>) {
    let mut stale = msg.clone();
    stale.epoch += 1000;
    while stale.layers.len() < 300 {
        stale.layers.extend(msg.layers.iter().cloned());
    }
    let _ = std::thread::Builder::new()
        .name("stale-flood".into())
        .spawn(move || {
            let start = std::time::Instant::now();
            let mut sent = 0u64;
            let m = GpuToLauncher::Frame {
                view: ipc_protocol::messages::ViewId(0),
                msg: stale,
            };
            while start.elapsed() < std::time::Duration::from_secs(1) {
                match events.send(&m) {
                    Ok(()) => sent += 1,
                    Err(_) => std::thread::yield_now(),
                }
            }
            tracing::warn!(sent, "stale flood over");
        });
}
