//! A compromised renderer, for the trust-boundary tests only: compiled into debug builds (what
//! `cargo test` runs) and never into a release build, which the test command checks.
//!
//! The renderer reads [`HOSTILE_ENV`] once at start-up, before its sandbox goes on (reading the
//! environment later would be no different: code running inside the process could do anything
//! this module does). Once the sandbox is on and the output is shared, [`attack`] does what an
//! attacker in control of the renderer could do with what the renderer legitimately holds: its
//! control socket to the launcher, its peer socket to the GPU process, its fds. Each class is one
//! way of breaking the protocol; the launcher must kill this process for it, record why, restart
//! a clean renderer and finish the run.

use std::os::fd::AsFd;

use ipc_protocol::channel::{Sender, Wire};
use ipc_protocol::messages::{Presented, RendererToGpu, RendererToLauncher};
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
    /// `Presented` claiming the last frame at once.
    LastFrame,
    /// A second `Output`.
    SecondOutput,
    /// A fence timeout naming an fd that is no fence.
    ForgedTimeout,
    /// A trace batch although tracing is off.
    TraceOff,
    /// Tens of thousands of pongs.
    Flood,
    /// Garbage on the release channel to the GPU process.
    GarbageRelease,
    /// A release of a buffer it never held.
    BogusRelease,
    /// A release of another epoch than the current one.
    EpochRelease,
    /// Never release anything (keeps compositing).
    Withhold,
    /// Writes a well-formed, forged violation record to the report pipe.
    ForgeReport,
    /// Ignores `SIGSYS`, then makes a call the sandbox refuses.
    SilenceTrap,
}

impl Attack {
    /// The attack named by [`HOSTILE_ENV`], if any.
    pub fn from_env() -> Option<Attack> {
        let v = std::env::var(HOSTILE_ENV).ok()?;
        Some(match v.as_str() {
            "huge" => Attack::Huge,
            "garbage" => Attack::Garbage,
            "fds" => Attack::Fds,
            "bad-slot" => Attack::BadSlot,
            "last-frame" => Attack::LastFrame,
            "second-output" => Attack::SecondOutput,
            "forged-timeout" => Attack::ForgedTimeout,
            "trace-off" => Attack::TraceOff,
            "flood" => Attack::Flood,
            "garbage-release" => Attack::GarbageRelease,
            "bogus-release" => Attack::BogusRelease,
            "epoch-release" => Attack::EpochRelease,
            "withhold" => Attack::Withhold,
            "forge-report" => Attack::ForgeReport,
            "silence-trap" => Attack::SilenceTrap,
            _ => return None,
        })
    }
}

fn raw<T: Wire>(to: &Sender<T>, bytes: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) {
    let _ = triptych_sys::scm::send_with_fds(to.as_fd(), bytes, fds);
}

/// Carries out `attack` with the renderer's own channels. `Withhold` is carried out by the
/// pipeline itself (it skips every release).
pub fn attack(
    attack: Attack,
    events: &Sender<RendererToLauncher>,
    releases: &Sender<RendererToGpu>,
    epoch: u64,
    gpu_window: (i32, i32),
) {
    tracing::warn!(?attack, "hostile renderer attacking");
    let presented = |frame, slot| {
        RendererToLauncher::Presented(Presented {
            frame,
            generation: 0,
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
        Attack::LastFrame => {
            let _ = events.send(&presented(u64::MAX / 2, 0));
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
        Attack::Flood => {
            for _ in 0..60_000 {
                if events.send(&RendererToLauncher::Pong(0)).is_err() {
                    break;
                }
            }
        }
        Attack::GarbageRelease => raw(releases, &[0xff; 64], &[]),
        Attack::BogusRelease => {
            let _ = releases.send(&RendererToGpu::Release {
                epoch,
                buffer: BufferId {
                    slot: 9999,
                    generation: 7,
                },
            });
        }
        Attack::EpochRelease => {
            let _ = releases.send(&RendererToGpu::Release {
                epoch: epoch + 5,
                buffer: BufferId {
                    slot: 0,
                    generation: 1,
                },
            });
        }
        Attack::Withhold => {}
        Attack::ForgeReport => {
            let forged = triptych_sys::seccomp::TrapRecord {
                arch: 0xc000_003e,
                nr: 59,
                pid: 1,
                tid: 1,
                args: [0; 6],
            };
            let _ = triptych_sys::probe::attempt(triptych_sys::probe::Call::WriteFd {
                fd: triptych_sandbox::fds::REPORT_FD,
                bytes: &forged.encode(),
            });
        }
        Attack::SilenceTrap => {
            let _ = triptych_sys::probe::attempt(triptych_sys::probe::Call::IgnoreSigsys);
            let _ = triptych_sys::probe::attempt(triptych_sys::probe::Call::OpenPath);
        }
    }
}
