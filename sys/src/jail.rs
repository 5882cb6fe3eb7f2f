//! Confining a child between `fork` and `exec`: the layer of the sandbox that the kernel's
//! credentials and namespaces provide, set up by the launcher before the child runs any code.
//!
//! A [`Confinement`] is a list of steps installed on a `std::process::Command` as its
//! `pre_exec` hook. In the forked child, in this order:
//!
//! 1. **fixed fds**: each fd the child must inherit is first lifted above every target number
//!    (`F_DUPFD_CLOEXEC`), then `dup2`-ed to its number (which clears close-on-exec there), so no
//!    source can be overwritten by another's target;
//! 2. **user namespace**: `setns(fd, CLONE_NEWUSER)` into the namespace the launcher created
//!    ([`crate::userns`]); the GPU process and the renderer share it, which is what lets the
//!    renderer take fds from the GPU process and from nobody outside it;
//! 3. **other namespaces**: `unshare(2)` of new network and IPC namespaces (no interface but an
//!    unconfigured loopback, no System V IPC shared with anyone);
//! 4. **privileges**: `PR_SET_SECUREBITS` with `SECBIT_NOROOT` and friends, all locked, then every
//!    capability dropped from the bounding set and the ambient set, so that the `execve` that
//!    follows grants no capability even to uid 0: the child starts with empty capability sets.
//!    A root launcher's children therefore hold no `CAP_SYS_PTRACE` anywhere.
//! 5. **scheduling**: where asked, `SCHED_BATCH` ([`crate::sched`]), best effort.
//!
//! Everything in the hook is a raw system call on values prepared before the fork: no
//! allocation, no lock, as required between `fork` and `exec` in a threaded parent. The prctl
//! steps (securebits, capabilities, parent-death signal, Yama ptracer) go through rustix's
//! safe wrappers, and so does joining the user namespace (`setns`), each one system call that
//! allocates nothing. The fd steps and `unshare` stay `libc` calls: the fd steps work on numbers
//! the child does not own yet (the `dup2` targets, the lifted copies), which the owned-fd
//! wrappers cannot express, and rustix's `unshare` is `unsafe` as well (it can unshare the fd
//! table under owned fds), so a wrapper would only move the proof, not remove it.
//!
//! See `setns(2)`, `unshare(2)`, `capabilities(7)` ("The securebits flags"),
//! `include/uapi/linux/securebits.h` and `include/uapi/linux/prctl.h`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// `SECBIT_NOROOT` (bit 0) and its lock (bit 1): uid 0 gains no capabilities on `execve`.
pub const SECBIT_NOROOT: i32 = 1 << 0;
/// `SECBIT_NOROOT_LOCKED`.
pub const SECBIT_NOROOT_LOCKED: i32 = 1 << 1;
/// `SECBIT_NO_SETUID_FIXUP` (bit 2): changing uids does not adjust capabilities.
pub const SECBIT_NO_SETUID_FIXUP: i32 = 1 << 2;
/// `SECBIT_NO_SETUID_FIXUP_LOCKED`.
pub const SECBIT_NO_SETUID_FIXUP_LOCKED: i32 = 1 << 3;
/// `SECBIT_KEEP_CAPS_LOCKED` (bit 5): `SECBIT_KEEP_CAPS` (bit 4, off) cannot be turned on.
pub const SECBIT_KEEP_CAPS_LOCKED: i32 = 1 << 5;
/// `SECBIT_NO_CAP_AMBIENT_RAISE` (bit 6): the ambient set cannot be raised.
pub const SECBIT_NO_CAP_AMBIENT_RAISE: i32 = 1 << 6;
/// `SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED`.
pub const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: i32 = 1 << 7;

/// The securebits a confined child runs with.
pub const CHILD_SECUREBITS: i32 = SECBIT_NOROOT
    | SECBIT_NOROOT_LOCKED
    | SECBIT_NO_SETUID_FIXUP
    | SECBIT_NO_SETUID_FIXUP_LOCKED
    | SECBIT_KEEP_CAPS_LOCKED
    | SECBIT_NO_CAP_AMBIENT_RAISE
    | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;

/// The most capability numbers the bounding-set loop tries (`CAP_LAST_CAP` is 40 in Linux 6.x;
/// `PR_CAPBSET_DROP` answers `EINVAL` past the last one, which ends the loop).
const MAX_CAPS: u32 = 64;

/// The most fds one child inherits at fixed numbers.
pub const MAX_INHERITED: usize = 8;

/// Which new namespaces (besides the user namespace) a child gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// A new network namespace.
    pub net: bool,
    /// A new IPC namespace.
    pub ipc: bool,
}

impl Namespaces {
    fn flags(self) -> libc::c_int {
        (if self.net { libc::CLONE_NEWNET } else { 0 })
            | (if self.ipc { libc::CLONE_NEWIPC } else { 0 })
    }
}

/// Errors preparing a confinement.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// Too many fds to inherit.
    #[error("{count} fds to inherit at fixed numbers; at most {MAX_INHERITED}")]
    TooMany {
        /// How many were asked for.
        count: usize,
    },
    /// A target number is negative or used twice.
    #[error("fixed fd number {number} is negative or given twice")]
    BadNumber {
        /// The number.
        number: i32,
    },
}

/// The spawn-time steps for one child.
#[derive(Debug, Default)]
pub struct Confinement {
    inherit: Vec<(OwnedFd, i32)>,
    user_ns: Option<OwnedFd>,
    namespaces: Namespaces,
    drop_privileges: bool,
    any_ptracer: bool,
    fetch_from: Option<(i32, i32)>,
    parent: Option<u32>,
    new_user_namespace: bool,
    close_others: bool,
    batch: bool,
}

impl Confinement {
    /// No steps yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The child inherits `fd` at `number`.
    pub fn inherit(mut self, fd: OwnedFd, number: i32) -> Result<Self, JailError> {
        if number < 0 || self.inherit.iter().any(|(_, n)| *n == number) {
            return Err(JailError::BadNumber { number });
        }
        if self.inherit.len() == MAX_INHERITED {
            return Err(JailError::TooMany {
                count: MAX_INHERITED + 1,
            });
        }
        self.inherit.push((fd, number));
        Ok(self)
    }

    /// The child joins the user namespace behind `ns` (an fd of `/proc/<pid>/ns/user`).
    pub fn join_user_namespace(mut self, ns: OwnedFd) -> Self {
        self.user_ns = Some(ns);
        self
    }

    /// The child gets these new namespaces.
    pub fn unshare(mut self, ns: Namespaces) -> Self {
        self.namespaces = ns;
        self
    }

    /// The child starts with no capabilities (locked securebits, empty bounding set).
    pub fn drop_privileges(mut self) -> Self {
        self.drop_privileges = true;
        self
    }

    /// The child keeps stdio and the fds placed with [`Confinement::inherit`], nothing else:
    /// every other fd, whatever its number and flags, is marked close-on-exec, so exec drops it.
    pub fn close_others(mut self) -> Self {
        self.close_others = true;
        self
    }

    /// The child gets `SIGKILL` when the thread that spawned it dies (`PR_SET_PDEATHSIG`), and
    /// refuses to run (`ESRCH`) if its parent is no longer `parent`: the parent died before the
    /// prctl, and the child would otherwise run orphaned.
    pub fn die_with_parent(mut self, parent: u32) -> Self {
        self.parent = Some(parent);
        self
    }

    /// The child runs under `SCHED_BATCH` ([`crate::sched`]), if the kernel lets it: a refusal
    /// leaves it under the policy it had, which the caller can read with
    /// [`crate::sched::policy_of`].
    pub fn batch_scheduling(mut self) -> Self {
        self.batch = true;
        self
    }

    /// The child unshares a new user namespace of its own (for `doctor`'s check that this is
    /// allowed).
    pub fn new_user_namespace(mut self) -> Self {
        self.new_user_namespace = true;
        self
    }

    /// Last step, for the transport self-test only: lets any process ptrace the child where Yama
    /// restricts ptrace to descendants (`PR_SET_PTRACER_ANY`; ignored where Yama is absent), as
    /// the GPU process names the renderer.
    pub fn any_ptracer(mut self) -> Self {
        self.any_ptracer = true;
        self
    }

    /// Last step, for the transport self-test only: take fd `fd` of process `pid` with
    /// `pidfd_open` + `pidfd_getfd` (and close it again); the spawn fails with the errno if that
    /// is refused. Run on a confined child against a confined sibling, this is exactly what the
    /// renderer does to the GPU process.
    pub fn then_fetch_fd_from(mut self, pid: i32, fd: i32) -> Self {
        self.fetch_from = Some((pid, fd));
        self
    }

    /// Installs the steps as `cmd`'s `pre_exec` hook; they run before hooks installed later.
    /// The fds are closed in this process when `cmd` is dropped.
    pub fn install(self, cmd: &mut Command) {
        let lift_base = self.inherit.iter().map(|(_, n)| *n).max().unwrap_or(0) + 1;
        let steps = self;
        // SAFETY: the closure runs in the child between fork and exec. It makes only raw system
        // calls (fcntl, dup2, close, unshare, close_range; setns and prctl through rustix) on
        // integers and on fds owned by the closure, which stay open in the child; it allocates
        // nothing and takes no lock, so it is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || steps.run_in_child(lift_base));
        }
    }

    fn run_in_child(&self, lift_base: i32) -> std::io::Result<()> {
        let mut lifted = [-1i32; MAX_INHERITED];
        for (i, (fd, _)) in self.inherit.iter().enumerate() {
            // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes an int; `fd` is open in the child.
            let l = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, lift_base) };
            if l < 0 {
                return Err(std::io::Error::last_os_error());
            }
            lifted[i] = l;
        }
        for (i, (_, number)) in self.inherit.iter().enumerate() {
            // SAFETY: dup2 on two ints; the target numbers are reserved for the child's
            // inheritance and the lifted copies are above all of them.
            if unsafe { libc::dup2(lifted[i], *number) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: closes the lifted copy, which nothing else refers to.
            unsafe { libc::close(lifted[i]) };
        }
        if self.close_others {
            // Process hygiene: the child keeps stdio and the numbers placed above, nothing else.
            // Every other fd, whatever its number and flags (an fd the launcher's own parent left
            // open without O_CLOEXEC, say), is marked close-on-exec, so exec drops it. Marking
            // rather than closing keeps the standard library's exec-error pipe working until exec.
            // The user namespace fd and the lifted copies are closed by exec the same way.
            let mut keep = [0i32; MAX_INHERITED];
            for (i, (_, number)) in self.inherit.iter().enumerate() {
                keep[i] = *number;
            }
            let keep = &mut keep[..self.inherit.len()];
            keep.sort_unstable();
            let mut from: u32 = 3;
            for &k in keep.iter() {
                let k = k as u32;
                if k >= from {
                    if k > from {
                        cloexec_range(from, k - 1)?;
                    }
                    from = k + 1;
                }
            }
            cloexec_range(from, u32::MAX)?;
        }
        if let Some(ns) = &self.user_ns {
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::User),
            )?;
        }
        let flags = self.namespaces.flags();
        // SAFETY: unshare takes a flag word.
        if flags != 0 && unsafe { libc::unshare(flags) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if self.drop_privileges {
            use rustix::thread::{CapabilitiesSecureBits, CapabilitySet};
            rustix::thread::set_capabilities_secure_bits(
                CapabilitiesSecureBits::from_bits_retain(CHILD_SECUREBITS as u32),
            )?;
            for cap in 0..MAX_CAPS {
                // One capability by number, named or not: EINVAL past the kernel's last one.
                let one = CapabilitySet::from_bits_retain(1 << cap);
                if let Err(e) = rustix::thread::remove_capability_from_bounding_set(one) {
                    if e == rustix::io::Errno::INVAL && cap > 0 {
                        break;
                    }
                    return Err(e.into());
                }
            }
            rustix::thread::clear_ambient_capability_set()?;
        }
        if self.new_user_namespace {
            // SAFETY: unshare takes a flag word.
            if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        if self.batch {
            // Refused, the child keeps its policy; the launcher reads it back.
            let _ = crate::sched::set_batch();
        }
        if let Some(parent) = self.parent {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            let ppid = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
            if ppid as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        if self.any_ptracer {
            // EINVAL without Yama is expected.
            let _ = rustix::process::set_ptracer(rustix::process::PTracer::Any);
        }
        if let Some((pid, fd)) = self.fetch_from {
            // SAFETY: pidfd_open, pidfd_getfd and close take integers only; the fds they return
            // are closed at once.
            unsafe {
                let pidfd = libc::syscall(crate::pidfd::SYS_PIDFD_OPEN, pid, 0);
                if pidfd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let got = libc::syscall(crate::pidfd::SYS_PIDFD_GETFD, pidfd, fd, 0);
                let e = std::io::Error::last_os_error();
                libc::close(pidfd as i32);
                if got < 0 {
                    return Err(e);
                }
                libc::close(got as i32);
            }
        }
        Ok(())
    }
}

/// `close_range(2)`'s `CLOSE_RANGE_CLOEXEC` (`include/uapi/linux/close_range.h`): mark the fds
/// in the range close-on-exec instead of closing them (Linux 5.11).
pub const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

/// Marks every open fd in `[first, last]` close-on-exec. Async-signal-safe: one system call.
fn cloexec_range(first: u32, last: u32) -> std::io::Result<()> {
    // SAFETY: close_range takes two integers and a flag word and touches only this process's
    // fd table; with CLOSE_RANGE_CLOEXEC it closes nothing, so no fd owned elsewhere goes away.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, CLOSE_RANGE_CLOEXEC) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_range_flag_matches_the_uapi_header() {
        assert_eq!(CLOSE_RANGE_CLOEXEC, 4);
    }

    #[test]
    fn a_child_asked_to_run_as_a_batch_task_does() {
        // Field 41 of /proc/PID/stat is the policy (`proc(5)`); SCHED_BATCH is 3.
        let policy = |batch: bool| {
            let mut cmd = Command::new("/bin/sh");
            cmd.arg("-c").arg("cut -d' ' -f41 /proc/$$/stat");
            cmd.stdout(std::process::Stdio::piped());
            let c = Confinement::new();
            if batch { c.batch_scheduling() } else { c }.install(&mut cmd);
            let out = cmd.output().expect("spawn");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        assert_eq!(policy(true), libc::SCHED_BATCH.to_string());
        // Not asked, it keeps this thread's (fields after the command name's closing bracket
        // start at field 3).
        let own = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        let own = own
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(41 - 3));
        assert_eq!(Some(policy(false).as_str()), own);
    }

    #[test]
    fn only_the_placed_fds_survive_exec() {
        // Two fds without O_CLOEXEC, one low and one high: neither may reach the child.
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let low = crate::fd::dup_cloexec(std::os::fd::AsFd::as_fd(&b)).expect("dup");
        crate::fd::clear_cloexec(std::os::fd::AsFd::as_fd(&low)).expect("clear");
        // SAFETY: fcntl(F_DUPFD) on an fd we hold; the result is owned by `high` below.
        let raw = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&b), libc::F_DUPFD, 900) };
        assert!(raw >= 900);
        // SAFETY: `raw` was just returned by fcntl and nothing else owns it.
        let high = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg("ls /proc/self/fd | sort -n | tr '\\n' ' '");
        cmd.stdout(std::process::Stdio::piped());
        Confinement::new()
            .inherit(OwnedFd::from(a), 250)
            .expect("inherit")
            .close_others()
            .install(&mut cmd);
        let out = cmd.output().expect("spawn");
        let listed = String::from_utf8_lossy(&out.stdout).to_string();
        let fds: Vec<i32> = listed
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let low_n = std::os::fd::AsRawFd::as_raw_fd(&low);
        assert!(fds.contains(&250), "placed fd missing: {listed}");
        assert!(
            !fds.contains(&low_n) && !fds.contains(&raw),
            "inherited {listed}"
        );
        // stdio, 250, and the fd `ls` opens on /proc/self/fd; nothing else.
        assert!(fds.len() <= 5, "child had {listed}");
        drop(high);
    }

    #[test]
    fn securebits_match_the_uapi_header() {
        // include/uapi/linux/securebits.h: issecure_mask(SECURE_NOROOT) = 1 << 0, its lock
        // 1 << 1, NO_SETUID_FIXUP 1 << 2 and 1 << 3, KEEP_CAPS_LOCKED 1 << 5,
        // NO_CAP_AMBIENT_RAISE 1 << 6 and 1 << 7.
        assert_eq!(CHILD_SECUREBITS, 0b1110_1111);
        // The same bits by rustix's names, which the jail hands to PR_SET_SECUREBITS.
        use rustix::thread::CapabilitiesSecureBits as B;
        let named = B::NO_ROOT
            | B::NO_ROOT_LOCKED
            | B::NO_SETUID_FIXUP
            | B::NO_SETUID_FIXUP_LOCKED
            | B::KEEP_CAPS_LOCKED
            | B::NO_CAP_AMBIENT_RAISE
            | B::NO_CAP_AMBIENT_RAISE_LOCKED;
        assert_eq!(named.bits(), CHILD_SECUREBITS as u32);
    }

    #[test]
    fn inherited_fds_arrive_at_their_numbers() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let ino = crate::fd::identity(std::os::fd::AsFd::as_fd(&a))
            .expect("id")
            .ino;
        let mut cmd = Command::new("/bin/sh");
        // The same socket (by inode) is open at 250 in the child.
        cmd.arg("-c").arg(format!(
            "test \"$(stat -L -c %i /proc/self/fd/250)\" = {ino}"
        ));
        Confinement::new()
            .inherit(OwnedFd::from(a), 250)
            .expect("inherit")
            .install(&mut cmd);
        assert!(cmd.status().expect("spawn").success());
    }

    #[test]
    fn numbers_are_checked() {
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let c = Confinement::new()
            .inherit(OwnedFd::from(a), 5)
            .expect("inherit");
        assert!(matches!(
            c.inherit(OwnedFd::from(b), 5),
            Err(JailError::BadNumber { number: 5 })
        ));
    }
}
