//! The renderer's policy: the tightest of the roles.
//!
//! The renderer parses every description a (possibly compromised) GPU process sends, so it is
//! the process an attacker would take over first. After its sandbox is on it may only:
//!
//! - take fds from the GPU process with `pidfd_getfd`, and only through the one pidfd at
//!   [`GPU_LINK_FD`], only numbers inside its own view's export window, only with flags 0. A
//!   number outside every export window fails with `EPERM` (see the crate docs for why not a
//!   trap); a number in another view's window, another pidfd or other flags trap: no honest
//!   renderer asks for those (it checks every description against its own window first), so
//!   one that does is reaching for another view's buffers, and dies for it, named. With the
//!   `SCM_RIGHTS` transport not even that: fds only arrive on its sockets;
//! - replace that pidfd in place (`dup3` onto [`GPU_LINK_FD`]) when the launcher hands over a
//!   new one after a GPU process restart, since `pidfd_open` is refused;
//! - map memory readable and writable, never executable (no `PROT_EXEC` in `mmap` or
//!   `mprotect`);
//! - issue two ioctls: `DMA_BUF_IOCTL_SYNC`, which brackets CPU reads of a DMA-BUF, and
//!   `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`, which snapshots a held DMA-BUF's implicit fences as a
//!   sync_file to wait on (it reads the fences; `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`, which would add
//!   one that holds up the buffer's writer, traps like every other ioctl);
//! - and what [`crate::common`] allows every role.
//!
//! Everything else traps. In particular `open`/`openat`, `execve`, `socket`/`connect`, `clone`
//! without `CLONE_THREAD`, `unshare`, `setns`, `ptrace`, `process_vm_readv`/`writev`,
//! `pidfd_open`, `kill` of anyone and `tgkill` of another process, `bpf`, `io_uring_setup`,
//! `userfaultfd` and `perf_event_open`.

use ipc_protocol::messages::Transport;
use triptych_sys::abi;
use triptych_sys::dma_buf::{DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_IOCTL_SYNC};
use triptych_sys::fd::ExportWindow;
use triptych_sys::pidfd::SYS_PIDFD_GETFD;

use crate::fds::GPU_LINK_FD;
use crate::{common, Arg, Cmp, Policy, Refusal, Rule, Width};

/// The role name.
pub const ROLE: &str = ipc_protocol::Role::Renderer.as_str();

/// What the renderer's policy depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// The renderer's own pid (`tgkill` to itself only).
    pub pid: u32,
    /// How fds travel.
    pub transport: Transport,
    /// The GPU process's export window `[base, end)`.
    pub window: (i32, i32),
}

impl Params {
    /// Parameters for reading the policy (`triptych doctor`, tests, names): pid 1, pidfd
    /// transport, the GPU process's window.
    pub fn example() -> Params {
        Params {
            pid: 1,
            transport: Transport::Pidfd,
            window: (ExportWindow::GPU.base, ExportWindow::GPU.end()),
        }
    }
}

/// The renderer's policy.
pub fn policy(p: &Params) -> Policy {
    let mut rules = common::rules(p.pid);
    rules.extend([
        // Anonymous memory, thread stacks, read-only mappings of fetched buffers, the writable
        // output: never executable.
        Rule::with(
            "mmap:no-exec",
            abi::SYS_mmap,
            "mmap",
            vec![Arg::masked64(2, abi::PROT_EXEC as u64, 0, "no PROT_EXEC")],
            "memory and buffer mappings",
        ),
        Rule::with(
            "mprotect:no-exec",
            abi::SYS_mprotect,
            "mprotect",
            vec![Arg::masked64(2, abi::PROT_EXEC as u64, 0, "no PROT_EXEC")],
            "thread stack guard pages, malloc",
        ),
        // realloc of a large block.
        Rule::with(
            "mremap:maymove",
            abi::SYS_mremap,
            "mremap",
            vec![Arg::eq32(3, abi::MREMAP_MAYMOVE as u64, "MREMAP_MAYMOVE")],
            "realloc",
        ),
        // Freeing a finished thread's stack, returning heap memory.
        Rule::with(
            "madvise:dontneed",
            abi::SYS_madvise,
            "madvise",
            vec![Arg::eq32(2, abi::MADV_DONTNEED as u64, "MADV_DONTNEED")],
            "thread exit, free",
        ),
        // The only ioctl: bracketing CPU reads of a DMA-BUF (`_IOW('b', 0, struct dma_buf_sync)`,
        // include/uapi/linux/dma-buf.h; triptych_sys::dma_buf computes and pins it).
        Rule::with(
            "ioctl:dma-buf-sync",
            abi::SYS_ioctl,
            "ioctl",
            vec![Arg::eq32(
                1,
                u64::from(DMA_BUF_IOCTL_SYNC),
                "DMA_BUF_IOCTL_SYNC",
            )],
            "CPU access to DMA-BUFs",
        ),
        // Snapshotting a held DMA-BUF's implicit fences, a frame's fence where fences are
        // implicit (`_IOWR('b', 2, struct dma_buf_export_sync_file)`).
        Rule::with(
            "ioctl:dma-buf-export-sync-file",
            abi::SYS_ioctl,
            "ioctl",
            vec![Arg::eq32(
                1,
                u64::from(DMA_BUF_IOCTL_EXPORT_SYNC_FILE),
                "DMA_BUF_IOCTL_EXPORT_SYNC_FILE",
            )],
            "implicit fences of DMA-BUFs",
        ),
        // Putting a handed-over link (a pidfd of a restarted GPU process, or a new SCM_RIGHTS
        // socket) at the one number the rules name, close-on-exec.
        Rule::with(
            "dup3:gpu-link",
            abi::SYS_dup3,
            "dup3",
            vec![
                Arg::eq32(1, GPU_LINK_FD as u64, "GPU_LINK_FD"),
                Arg::eq32(2, abi::O_CLOEXEC as u64, "O_CLOEXEC"),
            ],
            "replacing the GPU link after a restart",
        ),
    ]);
    let mut refusals = common::refusals();
    if p.transport == Transport::Pidfd {
        let (base, end) = p.window;
        rules.push(Rule::with(
            "pidfd_getfd:window",
            SYS_PIDFD_GETFD,
            "pidfd_getfd",
            [
                vec![Arg::eq32(0, GPU_LINK_FD as u64, "GPU_LINK_FD")],
                Arg::range32(1, base as u64, end as u64, "the view's export window").to_vec(),
                vec![Arg::eq32(2, 0, "flags 0")],
            ]
            .concat(),
            "taking exported buffers and fences from the GPU process",
        ));
        // Below or above every view's window: refused, the renderer lives (a scan runs on).
        let (all_base, all_end) = all_windows();
        for (cmp, what) in [
            (Cmp::Lt(all_base), "below every export window"),
            (Cmp::Ge(all_end), "above every export window"),
        ] {
            refusals.push(Refusal {
                nr: SYS_PIDFD_GETFD,
                name: "pidfd_getfd",
                errno: abi::EPERM,
                why: "a number outside every export window: a bad description, refused",
                when: vec![
                    Arg::eq32(0, GPU_LINK_FD as u64, "GPU_LINK_FD"),
                    Arg {
                        index: 1,
                        width: Width::Dword,
                        cmp,
                        what,
                    },
                    Arg::eq32(2, 0, "flags 0"),
                ],
            });
        }
    }
    Policy {
        role: ROLE,
        rules,
        refusals,
    }
}

/// `[base, end)` of every view's export window together.
pub fn all_windows() -> (u64, u64) {
    let first = ExportWindow::GPU;
    let last = ExportWindow::of_view(ExportWindow::MAX_VIEWS - 1).unwrap_or(first);
    (first.base as u64, last.end() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Otherwise;

    fn args(a: [u64; 6]) -> [u64; 6] {
        a
    }

    #[test]
    fn pidfd_getfd_only_through_the_link_inside_the_window() {
        let p = policy(&Params::example());
        let (base, end) = (
            ExportWindow::GPU.base as u64,
            ExportWindow::GPU.end() as u64,
        );
        let link = GPU_LINK_FD as u64;
        let nr = SYS_PIDFD_GETFD;
        assert_eq!(p.decide(nr, &args([link, base, 0, 0, 0, 0])), Ok(()));
        assert_eq!(p.decide(nr, &args([link, end - 1, 0, 0, 0, 0])), Ok(()));
        // Outside every window: refused.
        let (_, all_end) = all_windows();
        for bad in [
            [link, base - 1, 0, 0, 0, 0],
            [link, 0, 0, 0, 0, 0],
            [link, all_end, 0, 0, 0, 0],
            [link, u64::from(u32::MAX), 0, 0, 0, 0],
        ] {
            assert_eq!(
                p.decide(nr, &bad),
                Err(Otherwise::Errno(abi::EPERM)),
                "{bad:?}"
            );
        }
        // Another view's window, another pidfd, other flags: the renderer dies for it.
        for bad in [
            [link, end, 0, 0, 0, 0],
            [link, all_end - 1, 0, 0, 0, 0],
            [link + 1, base, 0, 0, 0, 0],
            [link, base, 1, 0, 0, 0],
            [link + 1, 0, 0, 0, 0, 0],
        ] {
            assert_eq!(p.decide(nr, &bad), Err(Otherwise::Trap), "{bad:?}");
        }
        // View 2's renderer: view 0's window is another view's.
        let w2 = ExportWindow::of_view(2).expect("a window");
        let v2 = policy(&Params {
            window: (w2.base, w2.end()),
            ..Params::example()
        });
        assert_eq!(
            v2.decide(nr, &args([link, w2.base as u64, 0, 0, 0, 0])),
            Ok(())
        );
        assert_eq!(
            v2.decide(nr, &args([link, base, 0, 0, 0, 0])),
            Err(Otherwise::Trap)
        );
        v2.compile().expect("compiles");
        let scm = policy(&Params {
            transport: Transport::ScmRights,
            ..Params::example()
        });
        assert_eq!(
            scm.decide(nr, &args([link, base, 0, 0, 0, 0])),
            Err(Otherwise::Trap)
        );
    }

    #[test]
    fn the_named_escapes_trap() {
        let p = policy(&Params::example());
        let z = [0u64; 6];
        for nr in [
            abi::SYS_openat,
            abi::SYS_execve,
            abi::SYS_socket,
            abi::SYS_connect,
            abi::SYS_unshare,
            abi::SYS_setns,
            abi::SYS_ptrace,
            abi::SYS_process_vm_readv,
            abi::SYS_process_vm_writev,
            abi::SYS_pidfd_open,
            abi::SYS_kill,
            abi::SYS_bpf,
            abi::SYS_io_uring_setup,
            abi::SYS_userfaultfd,
            abi::SYS_perf_event_open,
        ] {
            assert_eq!(
                p.decide(nr, &z),
                Err(Otherwise::Trap),
                "{}",
                crate::names::name(nr)
            );
        }
        let exec = abi::PROT_READ as u64 | abi::PROT_EXEC as u64;
        assert_eq!(
            p.decide(abi::SYS_mmap, &[0, 4096, exec, 0, 0, 0]),
            Err(Otherwise::Trap)
        );
        assert_eq!(
            p.decide(abi::SYS_mprotect, &[0, 4096, exec, 0, 0, 0]),
            Err(Otherwise::Trap)
        );
        assert_eq!(
            p.decide(abi::SYS_tgkill, &[2, 2, 0, 0, 0, 0]),
            Err(Otherwise::Trap)
        );
        assert_eq!(p.decide(abi::SYS_tgkill, &[1, 1, 0, 0, 0, 0]), Ok(()));
        assert_eq!(
            p.decide(
                abi::SYS_ioctl,
                &[0, u64::from(DMA_BUF_IOCTL_SYNC), 0, 0, 0, 0]
            ),
            Ok(())
        );
        assert_eq!(
            p.decide(
                abi::SYS_ioctl,
                &[0, u64::from(DMA_BUF_IOCTL_EXPORT_SYNC_FILE), 0, 0, 0, 0]
            ),
            Ok(())
        );
        assert_eq!(
            p.decide(
                abi::SYS_ioctl,
                &[
                    0,
                    u64::from(triptych_sys::dma_buf::DMA_BUF_IOCTL_IMPORT_SYNC_FILE),
                    0,
                    0,
                    0,
                    0
                ]
            ),
            Err(Otherwise::Trap)
        );
        assert_eq!(
            p.decide(abi::SYS_ioctl, &[0, abi::FIONREAD, 0, 0, 0, 0]),
            Err(Otherwise::Trap)
        );
        assert_eq!(
            p.decide(abi::SYS_clone3, &z),
            Err(Otherwise::Errno(abi::ENOSYS))
        );
    }

    #[test]
    fn compiles_for_both_transports() {
        for transport in [Transport::Pidfd, Transport::ScmRights] {
            let c = policy(&Params {
                transport,
                ..Params::example()
            })
            .compile()
            .expect("compile");
            assert!(
                c.programs.iter().all(|(_, p)| p.len() < 4096),
                "a filter exceeds BPF_MAXINSNS"
            );
        }
    }
}
