//! A compromised GPU process, for the trust-boundary tests: the GPU process's own run, with
//! [`super::GpuAdversary`]'s hooks calling into this module.
//!
//! The attack is named by [`HOSTILE_ENV`] (or, for every GPU process of a run, by the file
//! [`crate::every`] reads), read once at start-up; once it is sandboxed and has reported `Started`,
//! [`attack`] breaks the protocol with what the process legitimately holds: its control socket
//! to the launcher and its peer socket to the renderer. Neither the launcher nor the renderer
//! may die or be blamed for it; attacks on the launcher cost this process its life.

use std::os::fd::{AsFd, BorrowedFd};

use ipc_protocol::channel::{Sender, Wire};
use ipc_protocol::messages::{BackendRequest, FrameMsg, GpuToLauncher};
use ipc_protocol::seal::FrameSender;
use ipc_protocol::{FileId, RemoteFd};

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
    /// `Produced` of the last frame at once.
    SkipAhead,
    /// A second `Started`.
    SecondStarted,
    /// A trace batch although tracing is off.
    TraceOff,
    /// Tens of thousands of messages.
    Flood,
    /// Garbage on the frame channel to the renderer (then it behaves).
    FrameGarbage,
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
    /// From frame [`FRAMING_FROM`] on, sends every frame's description to the renderer twice.
    FrameTwice,
    /// Unsealed garbage on the frame channel first (a lie the renderer cannot prove, reported in
    /// words), then [`Attack::FrameTwice`].
    GarbageThenTwice,
    /// At frame [`FRAMING_FROM`], a description of another epoch under a seal that does not
    /// hold (a showing the launcher cannot judge), then [`Attack::FrameTwice`].
    UnsealedThenTwice,
    /// From frame [`FRAMING_FROM`] on, also sends each frame's description numbered three
    /// frames ahead (never reported as produced).
    FrameAhead,
    /// Sends its first description from frame [`FRAMING_FROM`] on under a generation the
    /// launcher never started, instead of its own.
    FrameFutureGeneration,
    /// From frame [`FRAMING_FROM`] on, names an eventfd of its own where the first layer's pipe
    /// fence should be (in every description after it: the run can only finish in a
    /// replacement).
    EventfdFence,
    /// At its first frame from [`FRAMING_FROM`] on, tells the launcher the renderer broke the
    /// release channel and stopped reading frames, neither of which it did.
    ForgedClaim,
    /// At its first frame from [`FRAMING_FROM`] on, before that frame's fence signals (the
    /// renderer waits on it and takes no frame meanwhile), sends copies of it until the
    /// renderer's queue is full, then claims the renderer stopped reading frames.
    FloodFrames,
    /// Reports a failure whose text holds a line forged to read as the launcher's, escape
    /// sequences and a line separator.
    LogForge,
    /// From frame [`FRAMING_FROM`] on, stops taking releases off its socket: it runs out of
    /// buffers and reports being starved, as if the renderer withheld them.
    IgnoreReleases,
    /// Sends frame [`FRAMING_FROM`] to the renderer without reporting it produced.
    Unreported,
    /// From frame [`FRAMING_FROM`] on, names the first layer's own buffer where its fence
    /// should be (a file that is no fence).
    BufferFence,
    /// Aborts as soon as it is confined, before it reports `Started`, when the launcher asked it
    /// for this buffer backend (`crash-on-start-with:auto|shm|dmabuf`): a process that never
    /// comes up on one rung of the fallback ladder.
    CrashOnStartWith(BackendRequest),
    /// At frame [`FRAMING_FROM`], starts a thread that floods the renderer for a second with
    /// well-formed descriptions of about 30 KiB of an epoch long gone (which the renderer drops
    /// unread), while it goes on producing.
    StaleFlood,
    /// An attack on its mailboxes with the launcher (`ring-<name>`, [`crate::ring`]).
    Ring(crate::ring::RingAttack),
    /// An attack of the standby (`standby-<name>`, [`super::standby`]): only a standby carries
    /// it out; every process of the run paces its frames.
    Standby(super::standby::StandbyAttack),
}

/// Whether the hostile GPU process dies at start-up when asked for `backend`.
pub fn crashes_on_start(attack: Option<Attack>, backend: BackendRequest) -> bool {
    attack == Some(Attack::CrashOnStartWith(backend))
}

/// Whether the hostile GPU process leaves frame `frame` unreported to the launcher.
pub fn omits_produced(attack: Option<Attack>, frame: u64) -> bool {
    attack == Some(Attack::Unreported) && frame == FRAMING_FROM
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
            "skip-ahead" => Attack::SkipAhead,
            "second-started" => Attack::SecondStarted,
            "trace-off" => Attack::TraceOff,
            "flood" => Attack::Flood,
            "frame-garbage" => Attack::FrameGarbage,
            "bad-frame" => Attack::BadFrame,
            "keep-listener" => Attack::KeepListener,
            "notif-ioctl" => Attack::NotifIoctl,
            "stderr-flood" => Attack::StderrFlood,
            "trace-flood" => Attack::TraceFlood,
            "frame-twice" => Attack::FrameTwice,
            "garbage-then-twice" => Attack::GarbageThenTwice,
            "unsealed-then-twice" => Attack::UnsealedThenTwice,
            "frame-ahead" => Attack::FrameAhead,
            "frame-future-generation" => Attack::FrameFutureGeneration,
            "eventfd-fence" => Attack::EventfdFence,
            "buffer-fence" => Attack::BufferFence,
            "forged-claim" => Attack::ForgedClaim,
            "flood-frames" => Attack::FloodFrames,
            "log-forge" => Attack::LogForge,
            "ignore-releases" => Attack::IgnoreReleases,
            "stale-flood" => Attack::StaleFlood,
            "unreported" => Attack::Unreported,
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

fn raw<T: Wire>(to: &Sender<T>, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
    let _ = triptych_sys::scm::send_with_fds(to.as_fd(), bytes, fds);
}

/// Carries out `attack` on the launcher (`events`) or the renderer (`frames`).
pub fn attack(
    attack: Attack,
    events: &Sender<GpuToLauncher>,
    frames: Option<&FrameSender>,
    total: u64,
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
        Attack::SkipAhead => {
            let _ = events.send(&GpuToLauncher::Produced {
                frame: total.saturating_sub(1),
            });
        }
        Attack::SecondStarted => {
            let _ = events.send(&GpuToLauncher::Started(info.clone()));
        }
        Attack::TraceOff => {
            let _ = events.send(&GpuToLauncher::Trace(Vec::new()));
        }
        Attack::Flood => {
            for _ in 0..60_000 {
                if events.send(&GpuToLauncher::Pong(0)).is_err() {
                    break;
                }
            }
        }
        Attack::FrameGarbage | Attack::GarbageThenTwice => {
            if let Some(f) = frames {
                // Unsealed: bytes the renderer cannot show as this process's.
                raw(f.channel(), &[0xff; 48], &[]);
                raw(f.channel(), &vec![0u8; 100_000], &[]);
            }
        }
        // The copy and its thread were made at the handover; the framing attacks act on the
        // frames as they are sent (`after_send`).
        Attack::KeepListener
        | Attack::FrameTwice
        | Attack::FrameAhead
        | Attack::FrameFutureGeneration
        | Attack::EventfdFence
        | Attack::BadFrame
        | Attack::UnsealedThenTwice
        | Attack::BufferFence
        | Attack::ForgedClaim
        | Attack::FloodFrames
        | Attack::IgnoreReleases
        | Attack::StaleFlood
        | Attack::Unreported
        | Attack::Standby(_)
        | Attack::CrashOnStartWith(_) => {}
        Attack::Ring(r) => crate::ring::attack(r, events, || GpuToLauncher::Pong(0)),
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

/// Before frame `msg` goes to the renderer: the attacks that send a lie instead of it.
pub fn before_send(attack: Attack, msg: &mut FrameMsg, window: (i32, i32)) {
    use std::sync::atomic::Ordering;
    match attack {
        Attack::FrameFutureGeneration
            if msg.frame >= FRAMING_FROM && !FUTURE_SENT.swap(true, Ordering::Relaxed) =>
        {
            msg.generation += 3
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

/// After frame `msg` went to the renderer: the framing attacks, which lie to the renderer about
/// frames, or to the launcher about the renderer, using only what this process holds.
pub fn after_send(
    attack: Attack,
    msg: &FrameMsg,
    to_renderer: &FrameSender,
    events: &Sender<GpuToLauncher>,
    renderer: u32,
) {
    use std::sync::atomic::Ordering;
    if msg.frame < FRAMING_FROM {
        return;
    }
    let mut lie = msg.clone();
    match attack {
        Attack::FrameTwice | Attack::GarbageThenTwice => {}
        Attack::UnsealedThenTwice => {
            if msg.frame == FRAMING_FROM {
                let mut stale = msg.clone();
                stale.epoch += 7;
                let unsealed = ipc_protocol::seal::SealedFrame {
                    seq: 0,
                    body: ipc_protocol::channel::encode(&stale).unwrap_or_default(),
                    seal: [0; ipc_protocol::seal::SEAL_LEN],
                };
                let _ = to_renderer
                    .channel()
                    .send(&ipc_protocol::messages::GpuToRenderer::Frame(unsealed));
            }
        }
        Attack::FrameAhead => lie.frame += 3,
        Attack::StaleFlood => {
            static STARTED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !STARTED.swap(true, Ordering::Relaxed) {
                stale_flood(msg, to_renderer.clone());
            }
            return;
        }
        Attack::FloodFrames => {
            static FLOODED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !FLOODED.swap(true, Ordering::Relaxed) {
                flood_frames(msg, to_renderer, events, renderer);
            }
            return;
        }
        Attack::ForgedClaim => {
            // Once, at the first frame from FRAMING_FROM on (a replacement resumes later).
            static CLAIMED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !CLAIMED.swap(true, Ordering::Relaxed) {
                let _ = events.send(&GpuToLauncher::RendererViolation {
                    renderer,
                    claim: ipc_protocol::messages::RendererClaim::FramesUnread,
                });
                let _ = events.send(&GpuToLauncher::RendererViolation {
                    renderer,
                    claim: ipc_protocol::messages::RendererClaim::BadRelease(
                        "an undecodable 40-byte message".into(),
                    ),
                });
                FRAMED.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        _ => return,
    }
    if to_renderer.send(&lie).is_ok() {
        let n = FRAMED.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            ?attack,
            frame = msg.frame,
            framed = n,
            "sent the renderer a lie"
        );
    }
}

/// [`Attack::FloodFrames`]: copies of `msg` until the renderer's queue is full (or for 400 ms),
/// then the claim.
fn flood_frames(
    msg: &FrameMsg,
    to_renderer: &FrameSender,
    events: &Sender<GpuToLauncher>,
    renderer: u32,
) {
    let start = std::time::Instant::now();
    let (mut sent, mut claimed) = (0u64, false);
    while start.elapsed() < std::time::Duration::from_millis(400) && !claimed {
        match to_renderer.send(msg) {
            Ok(()) => sent += 1,
            Err(ipc_protocol::channel::SendError::Full) => {
                claimed = true;
                let _ = events.send(&GpuToLauncher::RendererViolation {
                    renderer,
                    claim: ipc_protocol::messages::RendererClaim::FramesUnread,
                });
            }
            Err(_) => break,
        }
    }
    tracing::warn!(renderer, sent, claimed, "flooded the renderer with frames");
}

/// [`Attack::StaleFlood`]: copies of `msg` under an epoch long gone, padded with copies of its
/// layers to about 30 KiB, sent from a thread for a second.
fn stale_flood(msg: &FrameMsg, to_renderer: FrameSender) {
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
            let m = stale;
            while start.elapsed() < std::time::Duration::from_secs(1) {
                match to_renderer.send(&m) {
                    Ok(()) => sent += 1,
                    Err(_) => std::thread::yield_now(),
                }
            }
            tracing::warn!(sent, "stale flood over");
        });
}
