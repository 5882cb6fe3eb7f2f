//! A compromised renderer, for the trust-boundary tests: the renderer's own run, with
//! [`super::RendererAdversary`]'s hooks calling into this module.
//!
//! The attack is named by [`HOSTILE_ENV`] (or, for every renderer of a run, by the file
//! [`crate::every`] reads), read once at start-up, before the sandbox goes on (reading it later
//! would be no different: code running inside the process could do anything this module does). Once the sandbox is on and the output is shared, [`attack`] does what an
//! attacker in control of the renderer could do with what the renderer legitimately holds: its
//! control socket and mailboxes to the launcher (which its releases go through, on their way to
//! the GPU process), its link to the GPU process's fds. Each class is one
//! way of breaking the protocol; the launcher must kill this process for it, record why, restart
//! a clean renderer and finish the run.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ipc_protocol::channel::{Sender, Wire};
use ipc_protocol::messages::{Presented, RendererToLauncher};
use ipc_protocol::{BufferId, FileId, RemoteFd};

/// The environment variable naming the attack.
pub const HOSTILE_ENV: &str = "TRIPTYCH_HOSTILE";

/// What the hostile renderer does once it is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// A datagram larger than any message.
    Huge,
    /// Bytes that decode as no message, with a length prefix far beyond what is present.
    Garbage,
    /// A valid message with fds attached.
    Fds,
    /// `Presented` naming a slot that does not exist.
    BadSlot,
    /// `Presented` whose damage reaches outside the frame.
    BadDamage,
    /// `Presented` claiming more pixels composited than the frame has.
    OverComposited,
    /// `Presented` claiming the last frame at once.
    LastFrame,
    /// A second `Output`.
    SecondOutput,
    /// Names a server for a command stream again, once sandboxed (`CommandsAt`).
    CommandsAt,
    /// A fence timeout naming an fd that is no fence.
    ForgedTimeout,
    /// A trace batch although tracing is off.
    TraceOff,
    /// A trace batch of events the trace file cannot hold or that name someone else: keys the
    /// file reserves, a NaN, a counter with a frame and arguments, another process's pid, a
    /// thread number in the views' tracks, another view. Tracing is on: what it costs is
    /// nothing, and the trace is still written, its events its own.
    PoisonTrace,
    /// Tens of thousands of pongs.
    Flood,
    /// From a thread, pongs for the life of the process at [`STEADY_RATE`] a second, short of
    /// the launcher's budget: legal messages, each of which the launcher reads and handles,
    /// kept coming so that the launcher always has one of this renderer's waiting.
    SteadyFlood,
    /// Garbage on its socket to the launcher, then an exit at once: what it left there must not
    /// be held against its replacement.
    GarbageReleaseExit,
    /// An empty datagram on its socket to the launcher.
    EmptyRelease,
    /// Withholds every buffer, and from a thread sends the same release (of the current
    /// epoch, of a buffer never held) over and over.
    ReleaseFlood,
    /// A claim against the GPU process, a rejection and a failure whose text holds a line forged
    /// to read as the launcher's, escape sequences and a line separator.
    LogForge,
    /// A release of a buffer it never held.
    BogusRelease,
    /// A release of an epoch the launcher never started.
    EpochRelease,
    /// Never release anything (keeps compositing).
    Withhold,
    /// From frame [`STALL_FROM`] on, rejects every frame, naming fds that break their
    /// description (its word alone), and gives the buffers back.
    RejectAll,
    /// At frame [`STALL_FROM`], gives the frame's buffers back as soon as it has them, before it
    /// presents or rejects the frame: a frame taken and thrown away unseen.
    DropUnseen,
    /// Writes a well-formed, forged violation record to the report pipe.
    ForgeReport,
    /// Ignores `SIGSYS`, then makes a call the sandbox refuses.
    SilenceTrap,
    /// `Presented` of a generation the launcher never asked for.
    FutureGeneration,
    /// After its first frame, `Presented` naming the slot it just handed over (on screen).
    HandedOverSlot,
    /// Its one `Output` names a generation the launcher never asked for.
    OutputGeneration,
    /// Its one `Output` claims slots of a terabyte each.
    HugeSlotBytes,
    /// At a resize, `Presented` of the old generation for a frame asked for after it.
    OldGeneration,
    /// At a resize, `Presented` of the old generation (a frame from before it) naming a slot
    /// that does not exist.
    OldGenerationBadSlot,
    /// Reads the byte of its first frame's first pipe fence away (the fence then looks
    /// abandoned), keeps that buffer, and claims the fence timed out.
    DrainFence,
    /// Hands its seccomp listener over and keeps its own copy open.
    KeepListener,
    /// At frame [`CLAIM_AT`], claims [`CLAIMS`] times that its first layer's fence, a true
    /// fence, is no fence: one time more than the launcher looks.
    FenceClaim,
    /// Once frame `TRIPTYCH_DRAIN_AT` is presented, a spinning thread started before
    /// confinement takes every new pipe fence it can from the GPU process's export window,
    /// rejects that frame the moment one appears (a first claim: the launcher starts vouching)
    /// and reads the fences' signal away for a few seconds: the frames made before the GPU
    /// process answers `PrivateFences` lose theirs.
    DrainVouched,
    /// On its first frame whose fences are progress points, asks the kernel to make its
    /// mapping of the GPU process's progress page writable (`mprotect`), then writes to it
    /// anyway: the page is mapped from a read-only file, so the first is refused and the write
    /// costs the renderer its life (`SIGSEGV`), never the GPU process's number.
    ProgressWrite,
    /// An attack on its mailboxes with the launcher (`ring-<name>`, [`crate::ring`]).
    Ring(crate::ring::RingAttack),
    /// Takes every fd of another view's export window from the GPU process (`pidfd_getfd` on
    /// the numbers where that view's buffers and fences lie): its sandbox lets it reach its own
    /// view's window only, so the first call is refused and costs it its life.
    NeighbourFds,
}

/// Set when [`Attack::DrainVouched`]'s drainer should start.
pub static DRAIN_NOW: AtomicBool = AtomicBool::new(false);
/// The frame [`Attack::DrainVouched`] rejects.
pub static DRAIN_AT: AtomicU64 = AtomicU64::new(u64::MAX);

/// The channel and epoch [`Attack::DrainVouched`]'s drainer claims with.
pub static DRAIN_EVENTS: std::sync::Mutex<Option<(Sender<RendererToLauncher>, u64)>> =
    std::sync::Mutex::new(None);

/// Starts [`Attack::DrainVouched`]'s drainer (before confinement; the filter applies to it too).
pub fn start_drainer() {
    let at = std::env::var("TRIPTYCH_DRAIN_AT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    DRAIN_AT.store(at, Ordering::Release);
    std::thread::spawn(|| {
        while !DRAIN_NOW.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_micros(200));
        }
        // SAFETY: the renderer's link to the GPU process sits at this fixed number for the
        // process's whole life (`Link` never closes it, only replaces the file there).
        let link =
            unsafe { std::os::fd::BorrowedFd::borrow_raw(triptych_sandbox::fds::GPU_LINK_FD) };
        let window = triptych_sys::fd::ExportWindow::GPU;
        let mut seen: Vec<(u64, u64)> = Vec::new();
        let mut pipes: Vec<OwnedFd> = Vec::new();
        let mut drained = 0u32;
        let mut claimed = false;
        let start = std::time::Instant::now();
        let mut first = true;
        while start.elapsed() < Duration::from_secs(4) {
            for n in window.base..window.end() {
                let Ok(fd) = triptych_sys::pidfd::pidfd_getfd(link, n) else {
                    continue;
                };
                let Ok(id) = triptych_sys::fd::identity(fd.as_fd()) else {
                    continue;
                };
                let key = (id.dev, id.ino);
                if !triptych_sys::fd::is_fifo(fd.as_fd()).unwrap_or(false) || seen.contains(&key) {
                    continue;
                }
                seen.push(key);
                // The fences already out when the drainer was armed are left alone.
                if first {
                    continue;
                }
                pipes.push(fd);
                if !claimed {
                    claimed = true;
                    if let Some((events, epoch)) = DRAIN_EVENTS.lock().ok().and_then(|g| g.clone())
                    {
                        let frame = DRAIN_AT.load(Ordering::Acquire);
                        let _ = events.send(&RendererToLauncher::Rejected {
                            epoch,
                            frame,
                            reason: "a claim timed to the GPU's export".into(),
                        });
                        tracing::warn!(frame, "hostile renderer: claimed as a new fence appeared");
                    }
                }
            }
            first = false;
            for _ in 0..200 {
                for fd in &pipes {
                    if triptych_sys::poll::wait_signalled(fd.as_fd(), Duration::ZERO)
                        .is_ok_and(|w| w == triptych_sys::poll::FenceWait::Signalled)
                        && matches!(
                            crate::calls::attempt(crate::calls::Call::ReadFd(fd.as_fd())),
                            crate::calls::Outcome::Returned(n) if n > 0
                        )
                    {
                        drained += 1;
                    }
                }
            }
        }
        tracing::warn!(
            drained,
            pipes = pipes.len(),
            "hostile renderer: drainer done"
        );
    });
}

/// The view whose renderers alone carry the attack out, when it is named `NAME@VIEW` (the
/// renderer knows its view by its export window, [`own_view`]); `None`: every renderer named.
pub fn view_filter() -> Option<u32> {
    let v = std::env::var(HOSTILE_ENV).ok().or_else(crate::every)?;
    v.split_once('@').and_then(|(_, view)| view.parse().ok())
}

/// The view a renderer serves, from its export window `window`.
pub fn own_view(window: (i32, i32)) -> Option<u32> {
    let base = window.0 - triptych_sys::fd::ExportWindow::GPU.base;
    u32::try_from(base / triptych_sys::fd::ExportWindow::GPU.len).ok()
}

/// Pongs a second [`Attack::SteadyFlood`] sends: three fifths of the launcher's budget
/// ([`ipc_protocol::rules::MAX_MESSAGES_PER_S`]), so that a batch late by a few milliseconds
/// never takes it over.
pub const STEADY_RATE: u32 = ipc_protocol::rules::MAX_MESSAGES_PER_S / 5 * 3;

/// How often [`Attack::SteadyFlood`] sends its next batch.
const STEADY_EVERY: Duration = Duration::from_millis(5);

/// Bytes per slot the [`Attack::HugeSlotBytes`] output claims: 1 TiB.
pub const HUGE_SLOT_BYTES: u64 = 1 << 40;

/// Generations beyond the current one the forged `Presented` and `Output` name.
pub const FUTURE: u32 = 5;

/// A one-shot attack (after a frame, at a resize) has been carried out.
static DONE: AtomicBool = AtomicBool::new(false);

/// The buffer [`Attack::DrainFence`] keeps (never released), as `slot << 32 | generation`, plus
/// one; 0 while none is kept.
static KEPT: AtomicU64 = AtomicU64::new(0);

/// Whether the loop stops at frame `frame` for an attack that stops it once: at the first
/// frame from [`STALL_FROM`] on.
pub fn stall_once(frame: u64) -> bool {
    frame >= STALL_FROM && once()
}

/// The first frame at which an attack that stops the loop once stops it.
pub const STALL_FROM: u64 = 3;

fn once() -> bool {
    !DONE.swap(true, Ordering::AcqRel)
}

impl Attack {
    /// The attack named by [`HOSTILE_ENV`], if any (without its view, [`view_filter`]).
    pub fn from_env() -> Option<Attack> {
        let v = std::env::var(HOSTILE_ENV).ok().or_else(crate::every)?;
        let v = v
            .split_once('@')
            .map_or(v.as_str(), |(name, _)| name)
            .to_owned();
        if let Some(ring) = crate::ring::RingAttack::from_name(&v) {
            return Some(Attack::Ring(ring));
        }
        Some(match v.as_str() {
            "huge" => Attack::Huge,
            "garbage" => Attack::Garbage,
            "fds" => Attack::Fds,
            "bad-slot" => Attack::BadSlot,
            "bad-damage" => Attack::BadDamage,
            "over-composited" => Attack::OverComposited,
            "last-frame" => Attack::LastFrame,
            "second-output" => Attack::SecondOutput,
            "commands-at" => Attack::CommandsAt,
            "forged-timeout" => Attack::ForgedTimeout,
            "trace-off" => Attack::TraceOff,
            "poison-trace" => Attack::PoisonTrace,
            "flood" => Attack::Flood,
            "steady-flood" => Attack::SteadyFlood,
            "keep-listener" => Attack::KeepListener,
            "garbage-release-exit" => Attack::GarbageReleaseExit,
            "empty-release" => Attack::EmptyRelease,
            "release-flood" => Attack::ReleaseFlood,
            "log-forge" => Attack::LogForge,
            "bogus-release" => Attack::BogusRelease,
            "epoch-release" => Attack::EpochRelease,
            "withhold" => Attack::Withhold,
            "reject-all" => Attack::RejectAll,
            "drop-unseen" => Attack::DropUnseen,
            "forge-report" => Attack::ForgeReport,
            "silence-trap" => Attack::SilenceTrap,
            "future-generation" => Attack::FutureGeneration,
            "handed-over-slot" => Attack::HandedOverSlot,
            "output-generation" => Attack::OutputGeneration,
            "huge-slot-bytes" => Attack::HugeSlotBytes,
            "old-generation" => Attack::OldGeneration,
            "old-generation-bad-slot" => Attack::OldGenerationBadSlot,
            "drain-fence" => Attack::DrainFence,
            "fence-claim" => Attack::FenceClaim,
            "drain-vouched" => Attack::DrainVouched,
            "progress-write" => Attack::ProgressWrite,
            "neighbour-fds" => Attack::NeighbourFds,
            _ => return None,
        })
    }
}

fn raw<T: Wire>(to: &Sender<T>, bytes: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) {
    let _ = triptych_sys::scm::send_with_fds(to.as_fd(), bytes, fds);
}

/// Carries out `attack` with the renderer's own channels, once its output is shared.
/// `Withhold` is carried out by the pipeline itself (it skips every release), and so are the
/// attacks that wait for a frame or a resize (the hooks below).
pub fn attack(
    attack: Attack,
    events: &Sender<RendererToLauncher>,
    epoch: u64,
    generation: u32,
    gpu_window: (i32, i32),
) {
    tracing::warn!(?attack, "hostile renderer attacking");
    let presented = |frame, slot| {
        RendererToLauncher::Presented(Presented {
            frame,
            generation,
            epoch,
            slot,
            sent_ns: 0,
            ready_ns: 0,
            composited_ns: 0,
            damage: Vec::new(),
            composited_px: 0,
        })
    };
    match attack {
        Attack::Huge => raw(events, &vec![0u8; 200_000], &[]),
        Attack::Garbage => raw(events, &[1, 0xff, 0xff, 0xff, 0xff, 0x0f, 9, 9], &[]),
        Attack::Fds => {
            let m = ipc_protocol::channel::encode(&RendererToLauncher::Pong(0)).unwrap_or_default();
            raw(
                events,
                &m,
                &[events.as_fd(), events.as_fd(), events.as_fd()],
            );
        }
        Attack::BadSlot => {
            let _ = events.send(&presented(0, 99));
        }
        Attack::BadDamage => {
            if let RendererToLauncher::Presented(mut p) = presented(0, 0) {
                p.damage = vec![ipc_protocol::damage::Rect {
                    x: 1,
                    y: 0,
                    w: u32::MAX,
                    h: 1,
                }];
                let _ = events.send(&RendererToLauncher::Presented(p));
            }
        }
        Attack::OverComposited => {
            if let RendererToLauncher::Presented(mut p) = presented(0, 0) {
                p.composited_px = u64::MAX;
                let _ = events.send(&RendererToLauncher::Presented(p));
            }
        }
        Attack::LastFrame => {
            let _ = events.send(&presented(u64::MAX / 2, 0));
        }
        Attack::CommandsAt => {
            let _ = events.send(&RendererToLauncher::CommandsAt(
                "/tmp/elsewhere/socket".into(),
            ));
        }
        Attack::SecondOutput => {
            let _ = events.send(&RendererToLauncher::Output {
                generation: 0,
                fd: RemoteFd {
                    pid: std::process::id(),
                    fd: 0,
                    identity: FileId { dev: 0, ino: 0 },
                },
                slots: 3,
                slot_bytes: 4,
            });
        }
        Attack::ForgedTimeout => {
            let _ = events.send(&RendererToLauncher::FenceTimeout {
                epoch,
                frame: 0,
                layer: 0,
                // The window's last number, which so few buffers never reach: nothing is
                // exported there. (Its first number may hold a buffer by now, which would make
                // the claim a false one the launcher punishes, not an unfounded one.)
                fence: RemoteFd {
                    pid: 0,
                    fd: gpu_window.1 - 1,
                    identity: FileId { dev: 0, ino: 0 },
                },
            });
        }
        Attack::TraceOff => {
            let _ = events.send(&RendererToLauncher::Trace(Vec::new()));
        }
        Attack::PoisonTrace => {
            use triptych_trace::{ArgValue, Args, Event, EventKind, Stage};
            let mut args = Args::new();
            args.insert(triptych_trace::FRAME_ARG.into(), ArgValue::Int(99));
            args.insert("tid".into(), ArgValue::Int(5));
            args.insert(triptych_trace::VIEW_ARG.into(), ArgValue::Int(0));
            args.insert("nan".into(), ArgValue::Float(f64::NAN));
            args.insert("poisoned".into(), ArgValue::Bool(true));
            let now = triptych_trace::now_ns();
            let span = Event {
                kind: EventKind::Span {
                    stage: Stage::Composite,
                    dur_ns: 1,
                },
                ts_ns: now,
                pid: 1,
                tid: triptych_trace::VIEW_TRACK_BASE + 7,
                frame: Some(0),
                args: args.clone(),
            };
            let counter = Event {
                kind: EventKind::Counter {
                    name: "poisoned".into(),
                    value: f64::INFINITY,
                },
                ts_ns: now,
                pid: 1,
                tid: 1,
                frame: Some(3),
                args,
            };
            let _ = events.send(&RendererToLauncher::Trace(vec![span, counter]));
        }
        Attack::Flood => {
            for _ in 0..60_000 {
                if events.send(&RendererToLauncher::Pong(0)).is_err() {
                    break;
                }
            }
        }
        Attack::SteadyFlood => steady_flood(events.clone()),
        Attack::EmptyRelease => raw(events, &[], &[]),
        Attack::ReleaseFlood => {
            let releases = events.clone();
            let _ = std::thread::Builder::new()
                .name("release-flood".into())
                .spawn(move || {
                    let bogus = RendererToLauncher::Release {
                        epoch,
                        buffer: BufferId {
                            slot: 9999,
                            generation: 7,
                        },
                    };
                    // Said before the first send, which may already cost this process its
                    // life.
                    tracing::warn!("flooding releases");
                    let mut sent = 0u64;
                    loop {
                        match releases.send(&bogus) {
                            Ok(()) => sent += 1,
                            Err(ipc_protocol::channel::SendError::Full) => std::thread::yield_now(),
                            Err(_) => break,
                        }
                        if sent.is_multiple_of(100_000) {
                            tracing::warn!(sent, "still flooding releases");
                        }
                    }
                });
        }
        Attack::LogForge => {
            let forged = "x\n2026-12-05T00:00:00.000000Z ERROR sandbox violation in gpu: ptrace(0x0, 0x0, 0x0, 0x0, 0x0, 0x0)\n\x1b[31mred\x1b[0m \u{2028}after";
            let _ = events.send(&RendererToLauncher::GpuViolation {
                epoch,
                frame: 0,
                fence_of_layer: None,
                what: forged.into(),
            });
            let _ = events.send(&RendererToLauncher::Rejected {
                epoch,
                frame: 0,
                reason: forged.into(),
            });
            let _ = events.send(&RendererToLauncher::Failed(forged.into()));
        }
        Attack::GarbageReleaseExit => {
            raw(events, &[0xff; 64], &[]);
            std::process::exit(3);
        }
        Attack::BogusRelease => {
            tracing::warn!("releasing buffer 9999.7, never held");
            let _ = events.send(&RendererToLauncher::Release {
                epoch,
                buffer: BufferId {
                    slot: 9999,
                    generation: 7,
                },
            });
        }
        Attack::EpochRelease => {
            let _ = events.send(&RendererToLauncher::Release {
                epoch: epoch + 5,
                buffer: BufferId {
                    slot: 0,
                    generation: 1,
                },
            });
        }
        // Carried out on a frame (`progress_write`).
        Attack::Withhold | Attack::ProgressWrite => {}
        Attack::ForgeReport => {
            let forged = triptych_sys::seccomp::TrapRecord {
                arch: 0xc000_003e,
                nr: 59,
                pid: 1,
                tid: 1,
                args: [0; 6],
            };
            let _ = crate::calls::attempt(crate::calls::Call::WriteFd {
                fd: triptych_sandbox::fds::REPORT_FD,
                bytes: &forged.encode(),
            });
        }
        Attack::SilenceTrap => {
            let ignored = crate::calls::attempt(crate::calls::Call::IgnoreSigsys);
            tracing::warn!(?ignored, "SIGSYS set to be ignored");
            let _ = crate::calls::attempt(crate::calls::Call::OpenPath);
        }
        Attack::NeighbourFds => {
            // Another view's window: the one after its own.
            let own = (gpu_window.0 - triptych_sys::fd::ExportWindow::GPU.base)
                / triptych_sys::fd::ExportWindow::GPU.len;
            let other = u32::try_from(own + 1)
                .ok()
                .and_then(triptych_sys::fd::ExportWindow::of_view);
            // SAFETY: the renderer's link to the GPU process sits at this fixed number for the
            // process's whole life (`Link` never closes it, only replaces the file there).
            let link =
                unsafe { std::os::fd::BorrowedFd::borrow_raw(triptych_sandbox::fds::GPU_LINK_FD) };
            if let Some(w) = other {
                tracing::warn!(base = w.base, end = w.end(), "taking another view's fds");
                let mut taken = 0u32;
                for n in w.base..w.end() {
                    if triptych_sys::pidfd::pidfd_getfd(link, n).is_ok() {
                        taken += 1;
                    }
                }
                tracing::warn!(taken, "another view's fds taken");
            }
        }
        Attack::FutureGeneration => {
            let _ = events.send(&RendererToLauncher::Presented(Presented {
                frame: 0,
                generation: generation + FUTURE,
                epoch,
                slot: 0,
                sent_ns: 0,
                ready_ns: 0,
                composited_ns: 0,
                damage: Vec::new(),
                composited_px: 0,
            }));
        }
        Attack::HandedOverSlot
        | Attack::OutputGeneration
        | Attack::HugeSlotBytes
        | Attack::OldGeneration
        | Attack::OldGenerationBadSlot
        | Attack::DrainFence
        | Attack::FenceClaim
        | Attack::DropUnseen
        | Attack::RejectAll
        | Attack::DrainVouched
        | Attack::KeepListener => {}
        Attack::Ring(r) => crate::ring::attack(r, events, || RendererToLauncher::Pong(0)),
    }
}

/// The renderer's one `Output`, as the attack would send it.
pub fn forge_output(attack: Option<Attack>, m: RendererToLauncher) -> RendererToLauncher {
    match (attack, m) {
        (
            Some(Attack::OutputGeneration),
            RendererToLauncher::Output {
                generation,
                fd,
                slots,
                slot_bytes,
            },
        ) => RendererToLauncher::Output {
            generation: generation + FUTURE,
            fd,
            slots,
            slot_bytes,
        },
        (
            Some(Attack::HugeSlotBytes),
            RendererToLauncher::Output {
                generation,
                fd,
                slots,
                ..
            },
        ) => RendererToLauncher::Output {
            generation,
            fd,
            slots,
            slot_bytes: HUGE_SLOT_BYTES,
        },
        (_, m) => m,
    }
}

/// After the renderer handed a frame over: [`Attack::HandedOverSlot`] hands the same slot over
/// again, for the next frame, before the launcher could have given it back.
pub fn after_present(
    attack: Option<Attack>,
    events: &Sender<RendererToLauncher>,
    epoch: u64,
    generation: u32,
    slot: u32,
    frame: u64,
) {
    if attack == Some(Attack::HandedOverSlot) && once() {
        tracing::warn!(slot, "hostile renderer: handing the same slot over again");
        let _ = events.send(&RendererToLauncher::Presented(Presented {
            frame: frame + 1,
            generation,
            epoch,
            slot,
            sent_ns: 0,
            ready_ns: 0,
            composited_ns: 0,
            damage: Vec::new(),
            composited_px: 0,
        }));
    }
}

/// At a resize from `old` to a newer generation: [`Attack::OldGeneration`] and
/// [`Attack::OldGenerationBadSlot`] hand over a frame of the old size.
pub fn at_resize(
    attack: Option<Attack>,
    events: &Sender<RendererToLauncher>,
    epoch: u64,
    old: u32,
) {
    let (frame, slot) = match attack {
        // Far beyond anything asked for before the resize.
        Some(Attack::OldGeneration) => (u64::MAX / 2, 0),
        // Frame 0, asked for before any resize that follows a frame on screen.
        Some(Attack::OldGenerationBadSlot) => (0, 99),
        _ => return,
    };
    if !once() {
        return;
    }
    tracing::warn!(
        frame,
        slot,
        generation = old,
        "hostile renderer: a frame of the old size"
    );
    let _ = events.send(&RendererToLauncher::Presented(Presented {
        frame,
        generation: old,
        epoch,
        slot,
        sent_ns: 0,
        ready_ns: 0,
        composited_ns: 0,
        damage: Vec::new(),
        composited_px: 0,
    }));
}

/// [`Attack::DropUnseen`]: at frame [`STALL_FROM`], every buffer of the frame back at once.
fn drop_unseen(events: &Sender<RendererToLauncher>, msg: &ipc_protocol::messages::FrameMsg) {
    if msg.frame < STALL_FROM || !once() {
        return;
    }
    for l in &msg.layers {
        let _ = events.send(&RendererToLauncher::Release {
            epoch: msg.epoch,
            buffer: l.buffer.id,
        });
    }
    tracing::warn!(
        frame = msg.frame,
        "hostile renderer: gave a frame's buffers back unseen"
    );
}

/// The frame whose fence [`Attack::FenceClaim`] claims is no fence.
pub const CLAIM_AT: u64 = 5;
/// Claims [`Attack::FenceClaim`] makes.
pub const CLAIMS: u32 = 5;

/// [`Attack::FenceClaim`]: at frame [`CLAIM_AT`], the claim, [`CLAIMS`] times.
fn fence_claim(events: &Sender<RendererToLauncher>, msg: &ipc_protocol::messages::FrameMsg) {
    if msg.frame != CLAIM_AT || !once() {
        return;
    }
    for _ in 0..CLAIMS {
        let sent = events.send(&RendererToLauncher::GpuViolation {
            epoch: msg.epoch,
            frame: msg.frame,
            fence_of_layer: msg.layers.first().map(|l| l.layer),
            what: "a fence that is no fence".into(),
        });
        tracing::warn!(
            frame = msg.frame,
            ok = sent.is_ok(),
            "hostile renderer: claimed a true fence is no fence"
        );
    }
}

/// Once a frame's fences are fetched: [`Attack::DrainFence`] waits for the first layer's pipe
/// fence of its first frame to signal, reads the byte away (for this process and every holder
/// of the fence, the launcher's check included, the fence now looks abandoned), keeps that
/// buffer for good (so its fence stays exported, as the GPU process keeps a fence until the
/// release) and claims the fence timed out.
pub fn on_fetched(
    attack: Option<Attack>,
    events: &Sender<RendererToLauncher>,
    msg: &ipc_protocol::messages::FrameMsg,
    fetched: &[(
        u32,
        renderer_process::decide::Shown,
        Option<renderer_process::fetch::Waitable>,
    )],
) {
    match attack {
        Some(Attack::FenceClaim) => return fence_claim(events, msg),
        Some(Attack::DropUnseen) => return drop_unseen(events, msg),
        Some(Attack::DrainFence) => {}
        _ => return,
    }
    let Some((layer, shown, Some(fence))) = fetched
        .first()
        .map(|(l, s, f)| (l, s, f.as_ref().and_then(|f| f.fd())))
    else {
        return;
    };
    let (layer, buffer, epoch, frame) = (*layer, shown.id, msg.epoch, msg.frame);
    let Some(named) = msg
        .layers
        .iter()
        .find(|l| l.layer == layer)
        .map(|l| l.buffer.fence.fd)
    else {
        return;
    };
    if !once() {
        return;
    }
    let signalled = triptych_sys::poll::wait_signalled(fence.as_fd(), Duration::from_secs(10));
    let read = crate::calls::attempt(crate::calls::Call::ReadFd(fence.as_fd()));
    tracing::warn!(
        frame,
        layer,
        ?signalled,
        ?read,
        "hostile renderer: read a fence's byte away"
    );
    KEPT.store(
        ((u64::from(buffer.slot) << 32) | u64::from(buffer.generation)) + 1,
        Ordering::Release,
    );
    let _ = events.send(&RendererToLauncher::FenceTimeout {
        epoch,
        frame,
        layer,
        fence: named,
    });
}

/// The rejection [`Attack::RejectAll`] answers frame `msg` with, if any.
pub fn rejects(attack: Option<Attack>, msg: &ipc_protocol::messages::FrameMsg) -> Option<String> {
    (attack == Some(Attack::RejectAll) && msg.frame >= STALL_FROM).then(|| {
        tracing::warn!(
            frame = msg.frame,
            "hostile renderer: rejecting a good frame"
        );
        "layers[0].buffer: the file at fd 512 is not the one described".to_owned()
    })
}

/// Whether the attack keeps `buffer` instead of releasing it.
pub fn withholds(attack: Option<Attack>, buffer: BufferId) -> bool {
    match attack {
        Some(Attack::Withhold | Attack::ReleaseFlood) => true,
        Some(Attack::DrainFence) => {
            KEPT.load(Ordering::Acquire)
                == ((u64::from(buffer.slot) << 32) | u64::from(buffer.generation)) + 1
        }
        _ => false,
    }
}

/// [`Attack::ProgressWrite`]: makes the progress page writable, or tries to, and writes to it.
pub fn progress_write(link: &renderer_process::link::Link) {
    let Some(page) = link.progress() else {
        return;
    };
    let (addr, len) = page.span();
    let before = page.reached();
    // SAFETY: `addr..addr + len` is this process's own mapping of the page, which lives as long
    // as `link`; asking to change its protection touches no memory.
    let rc = unsafe {
        libc::mprotect(
            addr as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    };
    let errno = (rc != 0).then(nix::Error::last);
    tracing::warn!(
        ?errno,
        reached = before,
        "hostile renderer: asked to make the progress page writable"
    );
    // SAFETY: deliberately not: a write to a mapping the kernel keeps read-only faults, and the
    // fault (SIGSEGV) ends this process, which is the attack's expected end. Were the page
    // writable, this would store a number the GPU process never reached.
    unsafe { std::ptr::write_volatile(addr as *mut u64, u64::MAX) };
    tracing::warn!("hostile renderer: wrote the GPU process's progress page");
}

/// [`Attack::SteadyFlood`]: from a thread, a batch of pongs every [`STEADY_EVERY`] (a late
/// batch is not made up for), [`STEADY_RATE`] a second in all.
fn steady_flood(events: Sender<RendererToLauncher>) {
    let batch = u64::from(STEADY_RATE) * STEADY_EVERY.as_millis() as u64 / 1000;
    let spawned = std::thread::Builder::new()
        .name("steady-flood".into())
        .spawn(move || {
            tracing::warn!(batch, "hostile renderer: a steady flood of pongs");
            let mut sent = 0u64;
            // Logged each time the count has grown fourfold.
            let mut told = batch;
            loop {
                let start = std::time::Instant::now();
                for _ in 0..batch {
                    match events.send(&RendererToLauncher::Pong(0)) {
                        Ok(()) => sent += 1,
                        Err(ipc_protocol::channel::SendError::Full) => {}
                        Err(_) => return,
                    }
                }
                if sent >= told {
                    tracing::warn!(sent, "hostile renderer: still flooding pongs");
                    told = sent.saturating_mul(4);
                }
                std::thread::sleep(STEADY_EVERY.saturating_sub(start.elapsed()));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "hostile renderer: could not start the flood's thread");
    }
}
