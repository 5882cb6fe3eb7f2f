//! Landlock for the GPU process: the files it can reach are its driver's libraries and data
//! (read-only) and its GPU's device nodes, nothing else. The role's other layer, its seccomp
//! policy, is [`super::policy`]: the two sit side by side, and the policy lets `openat` through
//! to Landlock only where Landlock is in force.
//!
//! # When
//!
//! First thing at start-up (the GPU process's `sandbox::startup`), before any thread exists and
//! before the driver is loaded. A Landlock domain binds the thread that calls
//! `landlock_restrict_self` and the threads it creates later; threads that already exist stay
//! outside it until Linux 7.0 (ABI 8, `LANDLOCK_RESTRICT_SELF_TSYNC`). Confining after EGL
//! initialisation would leave the driver's worker threads (llvmpipe starts one per core) and the
//! channel threads unconfined, and any code running in the process can reach those. Confining first
//! puts every thread of the process inside, so the rule set has to cover what driver initialisation
//! reads too.
//!
//! # What stays reachable
//!
//! - read-only (`READ_FILE`, `READ_DIR`), beneath: the library directories and the dynamic
//!   loader's cache (`dlopen` of the driver), the driver's data and configuration (`drirc`,
//!   glvnd's and EGL's vendor files), the directories named by `LD_LIBRARY_PATH`,
//!   `LIBGL_DRIVERS_PATH`, `__EGL_VENDOR_LIBRARY_DIRS` and `__EGL_VENDOR_LIBRARY_FILENAMES`
//!   (set by whoever starts triptych, passed on by the launcher's allowlist), the sysfs device
//!   tree libdrm enumerates, this process's own `/proc/<pid>`, and Yama's `ptrace_scope`;
//! - read-write with ioctls (`IOCTL_DEV`, ABI 5): `/dev/dri` and NVIDIA's `/dev/nvidia*`.
//!
//! Nothing is writable, creatable or removable anywhere, and no program can be executed. With
//! ABI 4 no TCP port can be bound or connected; with ABI 6 (Linux 6.12) no signal reaches a
//! process outside the domain and no abstract unix socket created outside it can be connected.
//! Mesa's shader cache would write under `$HOME`; the launcher disables it
//! (`MESA_SHADER_CACHE_DISABLE`, and `__GL_SHADER_DISK_CACHE=0` for NVIDIA's driver).
//!
//! # Negotiation
//!
//! The crate negotiates best-effort: the rights are those of [`TESTED_ABI`], downgraded to what
//! the kernel offers; the outcome (`full`, `partial`, `none`) is reported to the launcher in
//! `GpuInfo::landlock` and shown by the summary. Only with Landlock in force does the GPU
//! process's seccomp policy let `openat` through to it; otherwise seccomp refuses every open
//! with `EACCES` as before.
//!
//! See <https://docs.kernel.org/userspace-api/landlock.html>.

use std::path::{Path, PathBuf};

use ipc_protocol::messages::{LandlockEnforced, LandlockReport};
use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

/// The newest ABI whose rights this module asks for (and was tested with).
pub const TESTED_ABI: ABI = ABI::V6;

/// Read-only trees: driver libraries, the loader's cache, driver data and configuration.
const READ: &[&str] = &[
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/lib",
    "/lib64",
    "/etc/ld.so.cache",
    "/etc/drirc",
    "/etc/glvnd",
    "/etc/egl",
    "/usr/share/glvnd",
    "/usr/share/egl",
    "/usr/share/drirc.d",
    "/usr/share/nvidia",
    // libdrm's device enumeration and the C library's CPU count.
    "/sys/dev/char",
    "/sys/devices",
    "/sys/bus/pci",
    "/proc/sys/kernel/yama/ptrace_scope",
    "/proc/driver/nvidia",
];

/// Environment variables naming more read-only paths (colon-separated).
const READ_ENV: &[&str] = &[
    "LD_LIBRARY_PATH",
    "LIBGL_DRIVERS_PATH",
    "__EGL_VENDOR_LIBRARY_DIRS",
    "__EGL_VENDOR_LIBRARY_FILENAMES",
];

/// Whether a directory named by one of the variables in `READ_ENV` is narrow enough to be read
/// beneath: absolute, at least two levels below `/`, and not inside a tree that holds other
/// processes' or users' data. `LD_LIBRARY_PATH=/` must not make the whole filesystem readable.
pub fn narrow(p: &Path) -> bool {
    const BROAD: &[&str] = &["/proc", "/sys", "/dev", "/run", "/var", "/etc"];
    p.is_absolute()
        && p.components().count() >= 3
        && !p.components().any(|c| c.as_os_str() == "..")
        && !BROAD.iter().any(|b| p.starts_with(b))
}

/// The paths readable beneath: the fixed ones that exist, the narrow ones named by
/// `READ_ENV` (others are left out, with a warning), and this process's `/proc/<pid>`.
pub fn readable() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = READ.iter().map(PathBuf::from).collect();
    for name in READ_ENV {
        if let Some(val) = std::env::var_os(name) {
            for p in std::env::split_paths(&val) {
                if narrow(&p) {
                    v.push(p);
                } else if !p.as_os_str().is_empty() {
                    tracing::warn!(variable = name, path = %p.display(), "not readable under Landlock: too broad a directory");
                }
            }
        }
    }
    v.push(PathBuf::from(format!("/proc/{}", std::process::id())));
    v.retain(|p| p.exists());
    v.dedup();
    v
}

/// The device nodes usable read-write: `/dev/dri` and every `/dev/nvidia*` that exists.
pub fn devices() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("/dev/dri")];
    if let Ok(dir) = std::fs::read_dir("/dev") {
        let mut nv: Vec<PathBuf> = dir
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("nvidia"))
            .map(|e| e.path())
            .collect();
        nv.sort();
        v.extend(nv);
    }
    v.retain(|p| p.exists());
    v
}

fn shown(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

/// Confines this process (every thread created from now on) to [`readable`] and [`devices`].
/// Never fails the process: a kernel without Landlock gives `enforced: "none"` with the reason,
/// and seccomp then refuses every open.
pub fn confine() -> LandlockReport {
    let kernel_abi = triptych_sys::landlock::abi().unwrap_or(0);
    let read = readable();
    let devices = devices();
    let mut report = LandlockReport {
        kernel_abi,
        enforced: LandlockEnforced::None,
        scoped: false,
        reason: None,
        read: shown(&read),
        devices: shown(&devices),
    };
    match restrict(&read, &devices) {
        Ok((status, scoped)) => {
            report.scoped = scoped;
            report.enforced = match status {
                RulesetStatus::FullyEnforced => LandlockEnforced::Full,
                RulesetStatus::PartiallyEnforced => LandlockEnforced::Partial,
                RulesetStatus::NotEnforced => LandlockEnforced::None,
            };
            report.reason = match status {
                RulesetStatus::FullyEnforced => None,
                RulesetStatus::PartiallyEnforced => Some(format!(
                    "the kernel's Landlock ABI {kernel_abi} handles only some of the rights of ABI {}",
                    TESTED_ABI as u32
                )),
                RulesetStatus::NotEnforced => Some(
                    triptych_sys::landlock::abi()
                        .err()
                        .unwrap_or_else(|| "the kernel enforced no Landlock rule".into()),
                ),
            };
        }
        Err(e) => report.reason = Some(format!("landlock: {e}")),
    }
    report
}

fn restrict(read: &[PathBuf], devices: &[PathBuf]) -> Result<(RulesetStatus, bool), String> {
    let read_rights: BitFlags<AccessFs> = AccessFs::ReadFile | AccessFs::ReadDir;
    let device_rights: BitFlags<AccessFs> =
        AccessFs::ReadFile | AccessFs::ReadDir | AccessFs::WriteFile | AccessFs::IoctlDev;
    let wants_scope = triptych_sys::landlock::abi().is_ok_and(|v| v >= 6);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TESTED_ABI))
        .map_err(|e| e.to_string())?
        .handle_access(AccessNet::from_all(TESTED_ABI))
        .map_err(|e| e.to_string())?;
    if wants_scope {
        ruleset = ruleset
            .scope(Scope::from_all(TESTED_ABI))
            .map_err(|e| e.to_string())?;
    }
    let mut created = ruleset.create().map_err(|e| e.to_string())?;
    for (paths, rights) in [(read, read_rights), (devices, device_rights)] {
        for p in paths {
            // A file takes only the rights that apply to files (not READ_DIR); asking for more
            // would make the crate report the ruleset as only partly enforced.
            let rights = if p.is_dir() {
                rights
            } else {
                rights & AccessFs::from_file(TESTED_ABI)
            };
            created = created
                .add_rule(PathBeneath::new(path_fd(p)?, rights))
                .map_err(|e| format!("a rule for {}: {e}", p.display()))?;
        }
    }
    let status = created.restrict_self().map_err(|e| e.to_string())?;
    Ok((status.ruleset, wants_scope))
}

fn path_fd(p: &Path) -> Result<PathFd, String> {
    PathFd::new(p).map_err(|e| format!("opening {}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_writable_is_in_the_read_set() {
        for p in READ {
            assert!(
                !["/tmp", "/home", "/root", "/var", "/run", "/dev/shm"]
                    .iter()
                    .any(|w| p.starts_with(w)),
                "{p}"
            );
        }
    }

    #[test]
    fn broad_directories_from_the_environment_are_refused() {
        for p in [
            "/",
            "/home",
            "/tmp",
            "/usr",
            "relative/lib",
            "/etc/x",
            "/usr/../etc",
        ] {
            assert!(!narrow(Path::new(p)), "{p}");
        }
        for p in [
            "/opt/nvidia/lib",
            "/home/user/.gpu-check/lib",
            "/tmp/checkout/.gpu-check/lib",
            "/usr/lib/x86_64-linux-gnu",
        ] {
            assert!(narrow(Path::new(p)), "{p}");
        }
    }

    #[test]
    fn the_own_proc_directory_is_readable_and_no_other() {
        let r = readable();
        let own = PathBuf::from(format!("/proc/{}", std::process::id()));
        assert!(r.contains(&own), "{r:?}");
        assert!(!r.iter().any(|p| p == Path::new("/proc")), "{r:?}");
    }
}
