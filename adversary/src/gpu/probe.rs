//! The escape tests' probe in the GPU process's adversary: the
//! calls of each escape attempt and of each argument-checked rule, made for real once the
//! sandbox is on (see [`crate::attempts`]).

use crate::attempts::{self, RuleCalls, RuleCtx, PROBE_ENV, PROBE_LINE};
use crate::calls::{attempt, Call, IoctlRequest, Outcome, PrctlOption};
use ipc_protocol::messages::GpuStart;
use triptych_sandbox::gpu::{Params, ROLE};

/// The probe named for this role by the hook, if any.
pub fn from_env() -> Option<String> {
    std::env::var(PROBE_ENV).ok().and_then(|v| {
        v.strip_prefix(ROLE)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::to_owned)
    })
}

/// A file Landlock leaves readable to the GPU process on every Linux system: the dynamic
/// loader's cache.
pub const LANDLOCK_READABLE: &std::ffi::CStr = c"/etc/ld.so.cache";

/// The call of GPU escape attempt `name`.
fn call_for<'a>(
    name: &str,
    launcher: i32,
    renderer: i32,
    stderr: std::os::fd::BorrowedFd<'a>,
) -> Option<Call<'a>> {
    Some(match name {
        "open-file" => Call::OpenPath,
        "open-driver-file" => Call::OpenAt {
            path: LANDLOCK_READABLE,
            flags: libc::O_RDONLY | libc::O_CLOEXEC,
        },
        "create-file" => Call::OpenAt {
            path: c"/tmp/triptych-gpu-landlock-probe",
            flags: libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL | libc::O_CLOEXEC,
        },
        "openat2" => Call::Openat2,
        "execve" => Call::Execve,
        "fork" => Call::Fork,
        "socket-inet" => Call::Socket {
            domain: libc::AF_INET,
            ty: libc::SOCK_STREAM,
        },
        "connect" => Call::Connect(stderr),
        "ptrace-renderer" => Call::PtraceAttach(renderer),
        "kill-launcher" => Call::Kill(launcher),
        "pidfd-open-launcher" => Call::PidfdOpen(launcher),
        "unshare-net" => Call::Unshare(libc::CLONE_NEWNET),
        _ => return crate::attempts::futex_attempt(name),
    })
}

/// The allowed and the altered calls of rule `id` of the GPU process's policy.
fn rule_calls<'a>(id: &str, c: &RuleCtx<'a>, renderer: i32) -> Option<RuleCalls<'a>> {
    let dupfd = |fd| Call::Fcntl {
        fd,
        cmd: libc::F_DUPFD,
        arg: 0,
    };
    let sched = |policy| Call::SchedSetscheduler { policy };
    Some(match id {
        "pipe2:cloexec" => (
            vec![Call::Pipe2 {
                flags: libc::O_CLOEXEC,
            }],
            vec![Call::Pipe2 {
                flags: libc::O_CLOEXEC | libc::O_DIRECT,
            }],
        ),
        "fcntl:add-seals" => (
            vec![Call::Fcntl {
                fd: c.memfd,
                cmd: libc::F_ADD_SEALS,
                arg: libc::F_SEAL_GROW,
            }],
            vec![dupfd(c.memfd)],
        ),
        "fcntl:dupfd-cloexec" => (
            vec![Call::Fcntl {
                fd: c.stderr,
                cmd: libc::F_DUPFD_CLOEXEC,
                arg: 0,
            }],
            vec![dupfd(c.stderr)],
        ),
        "prctl:set-ptracer" => (
            vec![Call::Prctl(PrctlOption::SetPtracer(renderer as u32))],
            vec![Call::Prctl(PrctlOption::SetPtracerAny)],
        ),
        "sched_setscheduler:other" => (
            vec![sched(libc::SCHED_OTHER)],
            vec![sched(libc::SCHED_FIFO)],
        ),
        "sched_setscheduler:batch" => (vec![sched(libc::SCHED_BATCH)], vec![sched(libc::SCHED_RR)]),
        "sched_setscheduler:idle" => (vec![sched(libc::SCHED_IDLE)], vec![sched(libc::SCHED_FIFO)]),
        "openat:landlocked" => (
            vec![Call::OpenAt {
                path: LANDLOCK_READABLE,
                flags: libc::O_RDONLY | libc::O_CLOEXEC,
            }],
            vec![
                Call::OpenAt {
                    path: LANDLOCK_READABLE,
                    flags: libc::O_PATH | libc::O_CLOEXEC,
                },
                // A path that does not exist: were the flags let through, nothing is truncated.
                Call::OpenAt {
                    path: c"/usr/lib/triptych-probe-nonexistent",
                    flags: libc::O_RDONLY | libc::O_TRUNC | libc::O_CLOEXEC,
                },
            ],
        ),
        "ioctl:not-terminal-not-seccomp" => (
            vec![Call::Ioctl {
                fd: c.stderr,
                request: IoctlRequest::Fionread,
            }],
            vec![Call::Ioctl {
                fd: c.stderr,
                request: IoctlRequest::TioclinuxGetShiftState,
            }],
        ),
        _ => return attempts::common_rule_calls(id, std::process::id() as i32, c),
    })
}

/// Performs probe `name` (see [`crate::attempts`]) and writes its outcome; a trapped
/// call does not return.
pub fn run_probe(name: &str, start: &GpuStart, launcher: i32, params: &Params) {
    let stderr = std::io::stderr();
    let renderer = start.view.renderer.renderer_pid as i32;
    match triptych_sys::memfd::create_sealed(c"probe", 4096) {
        Ok(memfd) => {
            let c = RuleCtx {
                stderr: std::os::fd::AsFd::as_fd(&stderr),
                memfd: std::os::fd::AsFd::as_fd(&memfd),
                launcher,
            };
            let policy = triptych_sandbox::gpu::policy(params);
            if let Some(lines) =
                attempts::run_rule_probe(name, &policy, &|id| rule_calls(id, &c, renderer))
            {
                for (n, o) in lines {
                    tracing::warn!("{PROBE_LINE}{ROLE}:{n}: {o}");
                }
                return;
            }
        }
        Err(e) => tracing::warn!("{PROBE_LINE}{ROLE}:{name}: failed memfd {e}"),
    }
    let call = call_for(
        name,
        launcher,
        start.view.renderer.renderer_pid as i32,
        std::os::fd::AsFd::as_fd(&stderr),
    );
    let outcome = match call {
        Some(c) => match attempt(c) {
            Outcome::Returned(v) => format!("returned {v}"),
            Outcome::Fd(_) => "returned fd".to_owned(),
            Outcome::Failed(e) => format!("failed {e:?}"),
        },
        None => "unknown probe".to_owned(),
    };
    tracing::warn!("{PROBE_LINE}{ROLE}:{name}: {outcome}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gpu_rule_with_arguments_has_calls() {
        let stderr = std::io::stderr();
        let m = triptych_sys::memfd::create_sealed(c"t", 4096).expect("memfd");
        let c = RuleCtx {
            stderr: std::os::fd::AsFd::as_fd(&stderr),
            memfd: std::os::fd::AsFd::as_fd(&m),
            launcher: 1,
        };
        for r in triptych_sandbox::gpu::policy(&Params {
            pid: 1,
            landlocked: true,
        })
        .rules
        .iter()
        .filter(|r| !r.when.is_empty())
        {
            let (allowed, altered) =
                rule_calls(r.id, &c, 1).unwrap_or_else(|| panic!("no calls for {}", r.id));
            assert!(
                !altered.is_empty() && (!allowed.is_empty() || r.id == "clone:thread"),
                "{}",
                r.id
            );
        }
    }

    #[test]
    fn every_gpu_attempt_has_a_call() {
        let stderr = std::io::stderr();
        for a in crate::attempts::gpu() {
            assert!(
                call_for(a.name, 1, 1, std::os::fd::AsFd::as_fd(&stderr)).is_some(),
                "{}",
                a.name
            );
        }
    }
}
