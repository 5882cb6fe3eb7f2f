//! The GPU process's policy: looser than the renderer's, applied after EGL and the driver are
//! initialised (driver loading opens files, probes devices and starts threads).
//!
//! The GPU process keeps talking to its driver for the whole run, so it keeps `ioctl` (any
//! request: DRM and DMA-BUF ioctls are the driver's interface), executable memory (llvmpipe and
//! other Mesa drivers compile shaders to machine code at draw time), and the calls that create
//! and export buffers (`memfd_create`, `ftruncate`, `eventfd2`, `fcntl` sealing and moving fds
//! into the export window). What it loses is everything that reaches *outside* the process:
//!
//! - **files**: where Landlock confines the process ([`landlock`]: driver
//!   libraries and data read-only, the GPU's device nodes), `openat` is let through to it, since
//!   a driver may open its own files lazily, after initialisation; Landlock refuses everything
//!   else with `EACCES`. `O_PATH` opens, which Landlock does not check, trap, and so do opens
//!   with `O_TRUNC`, which Landlock checks only from ABI 3 (Linux 6.2). Without Landlock,
//!   `openat` fails with `EACCES`, and so do `open`, `openat2` and `creat` always, instead of
//!   trapping, because drivers probe optional files (shader caches, configuration) lazily and
//!   cope with a refusal;
//! - **programs**: `execve`, `execveat`, and `clone` without `CLONE_THREAD` trap;
//! - **the network**: `socket`, `connect`, `bind`, `listen`, `accept` trap (and the process has
//!   its own empty network namespace besides);
//! - **other processes**: `ptrace`, `process_vm_*`, `kill`, `pidfd_*`, `tgkill` of others trap.

pub mod landlock;

use triptych_sys::prctl::PR_SET_PTRACER;

use triptych_sys::{abi, notify};

use crate::{common, Arg, Cmp, Policy, Refusal, Rule, Width};

/// `arg[1] != request` on the low 32 bits: an ioctl request the GPU process may not make.
fn ne_request(request: u64, what: &'static str) -> Arg {
    Arg {
        index: 1,
        width: Width::Dword,
        cmp: Cmp::Ne(request),
        what,
    }
}

/// The role name.
pub const ROLE: &str = ipc_protocol::Role::Gpu.as_str();

/// What the GPU process's policy depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// The GPU process's own pid.
    pub pid: u32,
    /// Whether Landlock confines the files the process can reach (then `openat` is let
    /// through to Landlock).
    pub landlocked: bool,
}

impl Params {
    /// Parameters for reading the policy (without Landlock: the stricter seccomp side).
    pub fn example() -> Params {
        Params {
            pid: 1,
            landlocked: false,
        }
    }
}

/// The GPU process's policy.
pub fn policy(p: &Params) -> Policy {
    let mut rules = common::rules(p.pid);
    rules.extend([
        // Shader code is compiled and mapped executable at draw time.
        Rule::any(abi::SYS_mmap, "mmap", "buffers, driver memory, JIT code"),
        Rule::any(
            abi::SYS_mprotect,
            "mprotect",
            "JIT code (write, then execute)",
        ),
        Rule::any(abi::SYS_mremap, "mremap", "realloc, driver memory"),
        Rule::any(
            abi::SYS_madvise,
            "madvise",
            "driver and allocator memory advice",
        ),
        // The driver's whole interface (DRM, DMA-BUF, sync_file ioctls), except the two
        // terminal requests that would let it type into, or read, the launcher's terminal
        // (include/uapi/asm-generic/ioctls.h: TIOCSTI 0x5412, TIOCLINUX 0x541C), and the
        // requests that read or answer seccomp notifications: a copy of the listener kept past
        // the handover could otherwise let the process's own threads answer its refused calls
        // and run them (include/uapi/linux/seccomp.h; `SECCOMP_IOCTL_NOTIF_ADDFD` needs a
        // notification the launcher has already received, which ends the process).
        Rule::with(
            "ioctl:not-terminal-not-seccomp",
            abi::SYS_ioctl,
            "ioctl",
            vec![
                ne_request(abi::TIOCSTI, "not TIOCSTI"),
                ne_request(abi::TIOCLINUX, "not TIOCLINUX"),
                ne_request(
                    notify::SECCOMP_IOCTL_NOTIF_RECV.into(),
                    "not SECCOMP_IOCTL_NOTIF_RECV",
                ),
                ne_request(
                    notify::SECCOMP_IOCTL_NOTIF_SEND.into(),
                    "not SECCOMP_IOCTL_NOTIF_SEND",
                ),
                ne_request(
                    notify::SECCOMP_IOCTL_NOTIF_ID_VALID.into(),
                    "not SECCOMP_IOCTL_NOTIF_ID_VALID",
                ),
                ne_request(
                    notify::SECCOMP_IOCTL_NOTIF_SET_FLAGS.into(),
                    "not SECCOMP_IOCTL_NOTIF_SET_FLAGS",
                ),
            ],
            "the GPU driver",
        ),
        // Creating buffers and fences while running.
        // A scene's images arrive after the sandbox is on (a standby is confined long before its
        // `Start`): files the launcher opened, read at fixed offsets so the offset shared with
        // the launcher's copy never moves. The same as `read` on a held fd, at an offset.
        Rule::any(
            abi::SYS_pread64,
            "pread64",
            "reading a scene image the launcher handed over",
        ),
        Rule::any(abi::SYS_memfd_create, "memfd_create", "shm buffers"),
        Rule::any(abi::SYS_ftruncate, "ftruncate", "sizing shm buffers"),
        Rule::any(abi::SYS_eventfd2, "eventfd2", "the driver's own eventfds"),
        Rule::with(
            "pipe2:cloexec",
            abi::SYS_pipe2,
            "pipe2",
            vec![Arg::eq32(1, abi::O_CLOEXEC as u64, "O_CLOEXEC")],
            "pipe fences of shm buffers (the renderer gets the read end)",
        ),
        Rule::with(
            "fcntl:add-seals",
            abi::SYS_fcntl,
            "fcntl",
            vec![Arg::eq32(1, abi::F_ADD_SEALS as u64, "F_ADD_SEALS")],
            "sealing shm buffers against shrinking, growing and (after mapping) new writes",
        ),
        Rule::with(
            "fcntl:dupfd-cloexec",
            abi::SYS_fcntl,
            "fcntl",
            vec![Arg::eq32(1, abi::F_DUPFD_CLOEXEC as u64, "F_DUPFD_CLOEXEC")],
            "moving exported fds into the export window",
        ),
        Rule::any(abi::SYS_dup, "dup", "driver fd handling"),
        // Where Yama restricts ptrace, a new renderer is named as the one process that may take
        // this process's exported fds.
        Rule::with(
            "prctl:set-ptracer",
            abi::SYS_prctl,
            "prctl",
            vec![
                Arg::eq32(0, PR_SET_PTRACER as u32 as u64, "PR_SET_PTRACER"),
                // Naming one process, never PR_SET_PTRACER_ANY ((unsigned long)-1).
                Arg {
                    index: 1,
                    width: Width::Qword,
                    cmp: Cmp::Ne(u64::MAX),
                    what: "not PR_SET_PTRACER_ANY",
                },
            ],
            "naming a new renderer for Yama",
        ),
        Rule::any(
            abi::SYS_sched_setaffinity,
            "sched_setaffinity",
            "driver worker threads",
        ),
        Rule::any(abi::SYS_setpriority, "setpriority", "driver worker threads"),
        // Mesa starts some worker threads lazily (the shader cache writer) and moves them to a
        // background scheduling class; real-time classes stay refused.
        Rule::with(
            "sched_setscheduler:other",
            abi::SYS_sched_setscheduler,
            "sched_setscheduler",
            vec![Arg::eq32(1, abi::SCHED_OTHER as u64, "SCHED_OTHER")],
            "driver worker threads",
        ),
        Rule::with(
            "sched_setscheduler:batch",
            abi::SYS_sched_setscheduler,
            "sched_setscheduler",
            vec![Arg::eq32(1, abi::SCHED_BATCH as u64, "SCHED_BATCH")],
            "driver worker threads",
        ),
        Rule::with(
            "sched_setscheduler:idle",
            abi::SYS_sched_setscheduler,
            "sched_setscheduler",
            vec![Arg::eq32(1, abi::SCHED_IDLE as u64, "SCHED_IDLE")],
            "driver worker threads",
        ),
    ]);
    let mut refusals = common::refusals();
    let eacces = |nr: i64, name: &'static str| {
        Refusal::always(
            nr,
            name,
            abi::EACCES,
            "no file may be opened; drivers cope with the refusal",
        )
    };
    if p.landlocked {
        rules.push(Rule::with(
            "openat:landlocked",
            abi::SYS_openat,
            "openat",
            vec![Arg {
                index: 2,
                width: Width::Dword,
                cmp: Cmp::Masked {
                    mask: (abi::O_PATH | abi::O_TRUNC) as u64,
                    value: 0,
                },
                what: "neither O_PATH nor O_TRUNC",
            }],
            "the driver's own files, lazily; Landlock decides which (O_PATH is beyond it, and \
             before ABI 3 (Linux 6.2) so is truncation by O_TRUNC)",
        ));
    } else {
        refusals.push(eacces(abi::SYS_openat, "openat"));
    }
    refusals.push(eacces(abi::SYS_openat2, "openat2"));
    #[cfg(target_arch = "x86_64")]
    {
        refusals.push(eacces(abi::SYS_open, "open"));
        refusals.push(eacces(abi::SYS_creat, "creat"));
    }
    Policy {
        role: ROLE,
        rules,
        refusals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Otherwise;

    #[test]
    fn no_files_no_exec_no_network() {
        let p = policy(&Params::example());
        let z = [0u64; 6];
        assert_eq!(
            p.decide(abi::SYS_openat, &z),
            Err(Otherwise::Errno(abi::EACCES))
        );
        for nr in [
            abi::SYS_execve,
            abi::SYS_execveat,
            abi::SYS_socket,
            abi::SYS_connect,
            abi::SYS_ptrace,
            abi::SYS_kill,
        ] {
            assert_eq!(
                p.decide(nr, &z),
                Err(Otherwise::Trap),
                "{}",
                crate::names::name(nr)
            );
        }
        assert_eq!(
            p.decide(abi::SYS_clone, &[abi::SIGCHLD as u64, 0, 0, 0, 0, 0]),
            Err(Otherwise::Trap)
        );
        // include/uapi/linux/sched.h: SCHED_FIFO 1 is real-time, SCHED_BATCH 3 is not.
        assert_eq!(
            p.decide(abi::SYS_sched_setscheduler, &[0, 1, 0, 0, 0, 0]),
            Err(Otherwise::Trap)
        );
        assert_eq!(
            p.decide(abi::SYS_sched_setscheduler, &[0, 3, 0, 0, 0, 0]),
            Ok(())
        );
        p.compile().expect("compile");
    }

    #[test]
    fn a_kept_listener_cannot_be_read_or_answered() {
        let p = policy(&Params::example());
        let ioctl = |request: u32| [2, u64::from(request), 0, 0, 0, 0];
        for request in [
            notify::SECCOMP_IOCTL_NOTIF_RECV,
            notify::SECCOMP_IOCTL_NOTIF_SEND,
            notify::SECCOMP_IOCTL_NOTIF_ID_VALID,
            notify::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            abi::TIOCSTI as u32,
            abi::TIOCLINUX as u32,
        ] {
            assert_eq!(
                p.decide(abi::SYS_ioctl, &ioctl(request)),
                Err(Otherwise::Trap),
                "ioctl {request:#x}"
            );
        }
        // The driver's requests still pass (DRM_IOCTL_VERSION, SYNC_IOC_MERGE).
        for request in [0xc040_6400u32, 0xc030_3e03] {
            assert_eq!(p.decide(abi::SYS_ioctl, &ioctl(request)), Ok(()));
        }
    }

    #[test]
    fn with_landlock_openat_goes_through_except_o_path() {
        let p = policy(&Params {
            pid: 1,
            landlocked: true,
        });
        let flags = |f: i32| [0, 0, f as u64, 0, 0, 0];
        assert_eq!(
            p.decide(abi::SYS_openat, &flags(abi::O_RDONLY | abi::O_CLOEXEC)),
            Ok(())
        );
        assert_eq!(
            p.decide(abi::SYS_openat, &flags(abi::O_PATH | abi::O_CLOEXEC)),
            Err(Otherwise::Trap)
        );
        assert_eq!(
            p.decide(abi::SYS_openat, &flags(abi::O_RDONLY | abi::O_TRUNC)),
            Err(Otherwise::Trap)
        );
        assert_eq!(
            p.decide(abi::SYS_openat2, &[0; 6]),
            Err(Otherwise::Errno(abi::EACCES))
        );
        p.compile().expect("compile");
    }
}
