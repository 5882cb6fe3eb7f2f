//! The renderer's side of the sandbox test hook: performing one escape attempt, rule check or
//! fd scan under the real policy, and writing what happened to stderr.
//!
//! See [`crate::attempts`] for the hook, the catalogue of attempts and why the hook
//! is harmless. Each attempt is one `crate::calls::Call` with the renderer's real fds and
//! peers (the link to the GPU process, the handover socket, the launcher's and the GPU process's
//! pids); a call the filter traps ends the process right there, reported to the launcher by the
//! `SIGSYS` handler. Otherwise the outcome goes to stderr as
//! `sandbox probe renderer:<name>: <outcome>` and the renderer carries on normally.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use crate::attempts::{self, describe, RuleCalls, RuleCtx, PROBE_ENV, PROBE_LINE, SCAN, SCAN_LAST};
use crate::calls::{attempt, Call, IoctlRequest, Outcome, PrctlOption};
use ipc_protocol::messages::RendererStart;
use triptych_sandbox::renderer::ROLE;

use ipc_protocol::messages::Transport;
use renderer_process::hooks::Fetched;
use renderer_process::link::Link;

/// A probe waiting for the first fetched buffer (`*-on-buffer`) or fence (the scan).
static DEFERRED: Mutex<Option<Deferred>> = Mutex::new(None);

/// A probe that runs once the renderer holds the first frame's fds.
#[derive(Debug)]
struct Deferred {
    name: String,
    window: (i32, i32),
}

/// A probe asked for by the hook.
#[derive(Debug)]
pub struct Probe {
    name: String,
}

/// A probe with what it prepared before the sandbox went on.
#[derive(Debug)]
pub struct Prepared {
    name: String,
    launcher_pid: i32,
    /// A pidfd of the launcher, for the `pidfd-getfd-launcher*` attempts.
    launcher: Option<OwnedFd>,
    /// A copy of the link, to put back after `pidfd-getfd-launcher-at-link`.
    saved_link: Option<OwnedFd>,
}

/// The probe the hook's variable names for the renderer, if any.
pub fn from_env() -> Option<Probe> {
    std::env::var(PROBE_ENV)
        .ok()
        .and_then(|v| Probe::parse(ROLE, &v))
}

fn say(name: &str, outcome: &str) {
    tracing::warn!("{PROBE_LINE}{ROLE}:{name}: {outcome}");
}

impl Probe {
    /// The probe named by the hook's value `v` (`<role>:<name>`), if it is for `role`.
    pub fn parse(role: &str, v: &str) -> Option<Probe> {
        v.strip_prefix(role)
            .and_then(|r| r.strip_prefix(':'))
            .map(|name| Probe {
                name: name.to_owned(),
            })
    }

    /// Prepares, before the sandbox is on, what the attempt needs.
    pub fn prepare(self, link: &Link) -> anyhow::Result<Prepared> {
        let launcher_pid = nix::unistd::getppid().as_raw();
        let mut p = Prepared {
            name: self.name,
            launcher_pid,
            launcher: None,
            saved_link: None,
        };
        if p.name.starts_with("pidfd-getfd-launcher") {
            p.launcher = Some(triptych_sys::pidfd::pidfd_open(launcher_pid)?);
        }
        if p.name == "pidfd-getfd-launcher-at-link" {
            p.saved_link = Some(triptych_sys::fd::dup_cloexec(link.fd())?);
        }
        Ok(p)
    }
}

/// The fds and peers the attempts use.
struct Ctx<'a> {
    link: BorrowedFd<'a>,
    /// The handover socket, or the output where there is none.
    socket: BorrowedFd<'a>,
    output: BorrowedFd<'a>,
    stderr: BorrowedFd<'a>,
    launcher: i32,
    gpu: i32,
    window: (i32, i32),
}

/// The call of escape attempt `name` (those that need nothing prepared).
fn escape<'a>(name: &str, c: &Ctx<'a>) -> Option<Call<'a>> {
    Some(match name {
        "open-file" => Call::OpenPath,
        "open-legacy" => Call::OpenLegacy,
        "openat2" => Call::Openat2,
        "creat" => Call::Creat,
        "stat-path" => Call::StatPath,
        "execve" => Call::Execve,
        "execveat" => Call::Execveat,
        "fork" => Call::Fork,
        "clone-process" => Call::CloneProcess,
        "clone-newuser" => Call::CloneNewUser,
        "clone3" => Call::Clone3,
        "socket-inet" => Call::Socket {
            domain: libc::AF_INET,
            ty: libc::SOCK_STREAM,
        },
        "socket-unix" => Call::Socket {
            domain: libc::AF_UNIX,
            ty: libc::SOCK_STREAM,
        },
        "socket-netlink" => Call::Socket {
            domain: libc::AF_NETLINK,
            ty: libc::SOCK_RAW,
        },
        "socketpair-inet" => Call::Socketpair {
            domain: libc::AF_INET,
        },
        "socketpair-unix" => Call::Socketpair {
            domain: libc::AF_UNIX,
        },
        "connect" => Call::Connect(c.socket),
        "bind" => Call::Bind(c.socket),
        "listen" => Call::Listen(c.socket),
        "accept4" => Call::Accept4(c.socket),
        "sendto" => Call::Sendto(c.socket),
        "ptrace-gpu" => Call::PtraceAttach(c.gpu),
        "ptrace-launcher" => Call::PtraceSeize(c.launcher),
        "process-vm-readv-gpu" => Call::ProcessVmReadv(c.gpu),
        "process-vm-writev-gpu" => Call::ProcessVmWritev(c.gpu),
        "kill-launcher" => Call::Kill(c.launcher),
        "kill-gpu" => Call::Kill(c.gpu),
        "tgkill-launcher" => Call::Tgkill(c.launcher, c.launcher),
        "tkill-gpu" => Call::Tkill(c.gpu),
        "pidfd-send-signal-gpu" => Call::PidfdSendSignal(c.link),
        "pidfd-open-launcher" => Call::PidfdOpen(c.launcher),
        "pidfd-open-gpu" => Call::PidfdOpen(c.gpu),
        "mmap-exec" => Call::Mmap {
            prot: libc::PROT_READ | libc::PROT_EXEC,
        },
        "mprotect-exec" => Call::Mprotect {
            prot: libc::PROT_READ | libc::PROT_EXEC,
        },
        "pkey-mprotect-exec" => Call::PkeyMprotectExec,
        "ioctl-tiocgwinsz-stderr" => Call::Ioctl {
            fd: c.stderr,
            request: IoctlRequest::Tiocgwinsz,
        },
        "unshare-user" => Call::Unshare(libc::CLONE_NEWUSER),
        "unshare-net" => Call::Unshare(libc::CLONE_NEWNET),
        "setns" => Call::Setns(c.socket),
        "bpf" => Call::Bpf,
        "io-uring-setup" => Call::IoUringSetup,
        "userfaultfd" => Call::Userfaultfd,
        "perf-event-open" => Call::PerfEventOpen,
        "invalid-syscall" => Call::Invalid,
        "x32-open" => Call::X32Open,
        "prctl-dumpable" => Call::Prctl(PrctlOption::SetDumpable),
        "prctl-ptracer-any" => Call::Prctl(PrctlOption::SetPtracerAny),
        "seccomp" => Call::Seccomp,
        "prlimit-set" => Call::PrlimitSet,
        "chroot" => Call::Chroot,
        "mount" => Call::Mount,
        "keyctl" => Call::Keyctl,
        "personality" => Call::Personality,
        "memfd-create" => Call::MemfdCreate,
        "dup" => Call::Dup(c.stderr),
        "dup3-elsewhere" => Call::Dup3 {
            from: c.link,
            to: c.socket,
            flags: libc::O_CLOEXEC,
        },
        "fcntl-dupfd" => Call::Fcntl {
            fd: c.stderr,
            cmd: libc::F_DUPFD,
            arg: 0,
        },
        "madvise-mergeable" => Call::Madvise {
            advice: libc::MADV_MERGEABLE,
        },
        "mremap-fixed" => Call::Mremap { flags: 0 },
        "sched-setaffinity" => Call::SchedSetaffinity,
        "kcmp-gpu" => Call::Kcmp(c.gpu),
        "process-madvise-gpu" => Call::ProcessMadvise(c.link),
        "reboot" => Call::Reboot,
        "init-module" => Call::InitModule,
        "kexec-load" => Call::KexecLoad,
        "acct" => Call::Acct,
        "setuid" => Call::Setuid,
        "capset" => Call::Capset,
        "pidfd-getfd-below-window" => Call::PidfdGetfd {
            pidfd: c.link,
            target: 2,
            flags: 0,
        },
        "pidfd-getfd-next-window" => Call::PidfdGetfd {
            pidfd: c.link,
            target: c.window.1,
            flags: 0,
        },
        "pidfd-getfd-above-windows" => Call::PidfdGetfd {
            pidfd: c.link,
            target: triptych_sandbox::renderer::all_windows().1 as i32,
            flags: 0,
        },
        "pidfd-getfd-negative" => Call::PidfdGetfd {
            pidfd: c.link,
            target: -1,
            flags: 0,
        },
        "pidfd-getfd-flags" => Call::PidfdGetfd {
            pidfd: c.link,
            target: c.window.0,
            flags: 1,
        },
        "pidfd-getfd-through-other-fd" => Call::PidfdGetfd {
            pidfd: c.socket,
            target: c.window.0,
            flags: 0,
        },
        _ => return crate::attempts::futex_attempt(name),
    })
}

/// The allowed and the altered calls of rule `id` of the renderer's policy.
fn rule_calls<'a>(id: &str, c: &Ctx<'a>) -> Option<RuleCalls<'a>> {
    let (allowed, altered) = match id {
        "mmap:no-exec" => (
            vec![Call::Mmap {
                prot: libc::PROT_READ | libc::PROT_WRITE,
            }],
            vec![Call::Mmap {
                prot: libc::PROT_READ | libc::PROT_EXEC,
            }],
        ),
        "mprotect:no-exec" => (
            vec![Call::Mprotect {
                prot: libc::PROT_READ,
            }],
            vec![Call::Mprotect {
                prot: libc::PROT_READ | libc::PROT_EXEC,
            }],
        ),
        "mremap:maymove" => (
            vec![Call::Mremap {
                flags: libc::MREMAP_MAYMOVE,
            }],
            vec![Call::Mremap { flags: 0 }],
        ),
        "madvise:dontneed" => (
            vec![Call::Madvise {
                advice: libc::MADV_DONTNEED,
            }],
            vec![Call::Madvise {
                advice: libc::MADV_MERGEABLE,
            }],
        ),
        "ioctl:dma-buf-sync" => (
            vec![Call::Ioctl {
                fd: c.output,
                request: IoctlRequest::DmaBufSyncStartRead,
            }],
            vec![Call::Ioctl {
                fd: c.output,
                request: IoctlRequest::Fionread,
            }],
        ),
        // On the output memfd the call fails (ENOTTY) once let through; a buffer held is where
        // it snapshots fences.
        "ioctl:dma-buf-export-sync-file" => (
            vec![Call::Ioctl {
                fd: c.output,
                request: IoctlRequest::DmaBufExportSyncFile,
            }],
            vec![Call::Ioctl {
                fd: c.output,
                request: IoctlRequest::DmaBufImportSyncFile,
            }],
        ),
        "dup3:gpu-link" => (
            vec![Call::Dup3 {
                from: c.link,
                to: c.link,
                flags: libc::O_CLOEXEC,
            }],
            vec![Call::Dup3 {
                from: c.link,
                to: c.link,
                flags: 0,
            }],
        ),
        "pidfd_getfd:window" => (
            vec![Call::PidfdGetfd {
                pidfd: c.link,
                target: c.window.0,
                flags: 0,
            }],
            // (A number outside every view's window is refused with EPERM instead: the scan.)
            vec![
                Call::PidfdGetfd {
                    pidfd: c.link,
                    target: c.window.1,
                    flags: 0,
                },
                Call::PidfdGetfd {
                    pidfd: c.socket,
                    target: c.window.0,
                    flags: 0,
                },
                Call::PidfdGetfd {
                    pidfd: c.link,
                    target: c.window.0,
                    flags: 1,
                },
            ],
        ),
        _ => {
            let ctx = RuleCtx {
                stderr: c.stderr,
                memfd: c.output,
                launcher: c.launcher,
            };
            return attempts::common_rule_calls(id, std::process::id() as i32, &ctx);
        }
    };
    Some((allowed, altered))
}

impl Prepared {
    /// Runs the probe; the sandbox is on. A trapped call does not return.
    pub fn run(mut self, link: &mut Link, start: &RendererStart, output: BorrowedFd<'_>) {
        let name = self.name.clone();
        if attempts::needs_buffer(&name) || name == SCAN {
            *DEFERRED.lock().unwrap_or_else(|p| p.into_inner()) = Some(Deferred {
                name,
                window: start.gpu.gpu_window,
            });
            return;
        }
        if name == "pidfd-getfd-launcher-at-link" {
            self.launcher_at_link(link, start);
            return;
        }
        let launcher_pidfd = self.launcher.take();
        let stderr = std::io::stderr();
        let c = Ctx {
            link: link.fd(),
            socket: link.handover().unwrap_or(output),
            output,
            stderr: stderr.as_fd(),
            launcher: self.launcher_pid,
            gpu: start.gpu.gpu_pid as i32,
            window: start.gpu.gpu_window,
        };
        if name == "pidfd-getfd-launcher" {
            let pidfd = launcher_pidfd
                .as_ref()
                .map(|f| f.as_fd())
                .unwrap_or(c.socket);
            say(
                &name,
                &describe(&attempt(Call::PidfdGetfd {
                    pidfd,
                    target: 2,
                    flags: 0,
                })),
            );
            return;
        }
        let policy = triptych_sandbox::renderer::policy(&triptych_sandbox::renderer::Params {
            pid: std::process::id(),
            transport: start.transport,
            window: start.gpu.gpu_window,
        });
        if let Some(lines) = attempts::run_rule_probe(&name, &policy, &|id| rule_calls(id, &c)) {
            for (n, o) in lines {
                say(&n, &o);
            }
            return;
        }
        match escape(&name, &c) {
            Some(call) => say(&name, &describe(&attempt(call))),
            None => say(&name, "unknown probe"),
        }
    }

    /// Puts a pidfd of the launcher at the link's number, so `pidfd_getfd` passes the filter,
    /// and tries to take a launcher fd from inside the export window; then restores the link.
    fn launcher_at_link(&mut self, link: &mut Link, start: &RendererStart) {
        let name = &self.name;
        let (Some(launcher), Some(saved)) = (self.launcher.take(), self.saved_link.take()) else {
            say(name, "failed not prepared");
            return;
        };
        if let Err(e) = link.slot_mut().replace(launcher) {
            say(name, &format!("failed {e}"));
            return;
        }
        let outcome = attempt(Call::PidfdGetfd {
            pidfd: link.fd(),
            target: start.gpu.gpu_window.0,
            flags: 0,
        });
        say(name, &describe(&outcome));
        if let Err(e) = link.slot_mut().replace(saved) {
            tracing::error!(error = %e, "could not restore the GPU link after the probe");
        }
    }
}

/// `pidfd_getfd` through `link` on every fd number of the GPU process but those of the other
/// views' export windows (each of which would cost the renderer its life: `tests/tests/views.rs`
/// makes that call on its own); only its own window, `window`, may yield fds. Runs once the
/// first frame's buffers and fences are in the window.
fn scan(link: BorrowedFd<'_>, window: (i32, i32)) -> String {
    let mut fetched = Vec::new();
    let (mut eperm, mut ebadf, mut other) = (0u32, 0u32, Vec::new());
    let (all_base, all_end) = triptych_sandbox::renderer::all_windows();
    let others = |n: i32| {
        let n = n as u64;
        (all_base..all_end).contains(&n) && !(window.0..window.1).contains(&(n as i32))
    };
    let mut skipped = 0u32;
    for n in 0..=SCAN_LAST {
        if others(n) {
            skipped += 1;
            continue;
        }
        match attempt(Call::PidfdGetfd {
            pidfd: link,
            target: n,
            flags: 0,
        }) {
            Outcome::Fd(_) => fetched.push(n),
            Outcome::Failed(nix::Error::EPERM) => eperm += 1,
            Outcome::Failed(nix::Error::EBADF) => ebadf += 1,
            o => other.push(format!("{n}:{}", describe(&o))),
        }
    }
    let list: Vec<String> = fetched.iter().map(|n| n.to_string()).collect();
    format!(
        "scanned 0..={SCAN_LAST} fetched={} EPERM={eperm} EBADF={ebadf} skipped={skipped} other={}",
        list.join(","),
        other.join(",")
    )
}

/// Called once a frame's fds are fetched: runs a pending `*-on-buffer` attempt on the first
/// layer's buffer, or the scan (while the first frame's buffers and fences all sit in the
/// export window).
pub fn on_fetched(f: &Fetched<'_>) {
    let Some(Deferred { name, window }) = DEFERRED.lock().unwrap_or_else(|p| p.into_inner()).take()
    else {
        return;
    };
    if name == SCAN {
        let outcome = match f.link.transport() {
            Transport::Pidfd => {
                format!(
                    "{} window=[{}, {})",
                    scan(f.link.fd(), window),
                    window.0,
                    window.1
                )
            }
            Transport::ScmRights => "failed no pidfd (the SCM_RIGHTS transport runs)".to_owned(),
        };
        say(&name, &outcome);
        return;
    }
    let request = match name.as_str() {
        "ioctl-fionread-on-buffer" => IoctlRequest::Fionread,
        "ioctl-import-sync-file-on-buffer" => IoctlRequest::DmaBufImportSyncFile,
        _ => {
            say(&name, "unknown probe");
            return;
        }
    };
    let Some(fd) = f.layers.first().and_then(|(_, s, _)| (f.buffer)(s.id)) else {
        say(&name, "failed no buffer was imported");
        return;
    };
    say(&name, &describe(&attempt(Call::Ioctl { fd, request })));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    /// Every attempt of the catalogue and every rule with arguments has its call here, so the
    /// sandbox tests can never pass by hitting an `unknown probe`.
    #[test]
    fn every_attempt_and_rule_has_a_call() {
        let (a, b) = UnixStream::pair().expect("pair");
        let stderr = std::io::stderr();
        let c = Ctx {
            link: a.as_fd(),
            socket: b.as_fd(),
            output: a.as_fd(),
            stderr: stderr.as_fd(),
            launcher: 1,
            gpu: 1,
            window: (512, 768),
        };
        let special = ["pidfd-getfd-launcher", "pidfd-getfd-launcher-at-link", SCAN];
        for t in [Transport::Pidfd, Transport::ScmRights] {
            for at in attempts::renderer(t) {
                if special.contains(&at.name) || attempts::needs_buffer(at.name) {
                    continue;
                }
                assert!(escape(at.name, &c).is_some(), "no call for {}", at.name);
            }
            let p = triptych_sandbox::renderer::policy(&triptych_sandbox::renderer::Params {
                transport: t,
                ..triptych_sandbox::renderer::Params::example()
            });
            for r in p.rules.iter().filter(|r| !r.when.is_empty()) {
                let (allowed, altered) =
                    rule_calls(r.id, &c).unwrap_or_else(|| panic!("no calls for rule {}", r.id));
                assert!(!altered.is_empty(), "{}", r.id);
                assert!(!allowed.is_empty() || r.id == "clone:thread", "{}", r.id);
            }
        }
    }

    #[test]
    fn the_hook_names_role_and_probe() {
        assert_eq!(
            Probe::parse("renderer", "renderer:open-file").map(|p| p.name),
            Some("open-file".to_owned())
        );
        assert!(Probe::parse("renderer", "gpu:open-file").is_none());
        assert!(Probe::parse("renderer", "rendererx:open-file").is_none());
    }
}
