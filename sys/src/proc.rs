//! Reading `/proc` and other kernel facts: fd counts for the leak checks, process status for the
//! sandbox checks, and the facts `triptych doctor` reports.
//!
//! Nothing here needs privileges beyond reading one's own children's `/proc` entries. The
//! sandboxed renderer never calls these (it cannot open files); the launcher and tests do.

use std::path::Path;

/// Errors reading `/proc`.
#[derive(Debug, thiserror::Error)]
#[error("reading {path} failed: {source}")]
pub struct ProcError {
    /// The path.
    pub path: String,
    /// The error.
    pub source: std::io::Error,
}

fn read(path: &str) -> Result<String, ProcError> {
    std::fs::read_to_string(path).map_err(|source| ProcError {
        path: path.to_owned(),
        source,
    })
}

/// The open fds of process `pid` with what each points to (`/proc/<pid>/fd/<n>` link targets).
pub fn fd_links(pid: u32) -> Result<Vec<(i32, String)>, ProcError> {
    links_in(format!("/proc/{pid}/fd"))
}

/// The fds of thread `tid` of process `pid`, as [`fd_links`]: a thread made without
/// `CLONE_FILES` has a table of its own, which `/proc/<pid>/fd` does not show.
pub fn task_fd_links(pid: u32, tid: u32) -> Result<Vec<(i32, String)>, ProcError> {
    links_in(format!("/proc/{pid}/task/{tid}/fd"))
}

fn links_in(dir: String) -> Result<Vec<(i32, String)>, ProcError> {
    let rd = std::fs::read_dir(&dir).map_err(|source| ProcError {
        path: dir.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(n) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let target = std::fs::read_link(e.path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((n, target));
    }
    out.sort();
    Ok(out)
}

/// How many fds process `pid` has open.
pub fn fd_count(pid: u32) -> Result<usize, ProcError> {
    fd_links(pid).map(|v| v.len())
}

/// One field (`Name:` without the colon) of `/proc/<pid>/task/<tid>/status`, trimmed.
pub fn status_field(pid: u32, tid: Option<u32>, field: &str) -> Result<Option<String>, ProcError> {
    let path = match tid {
        Some(t) => format!("/proc/{pid}/task/{t}/status"),
        None => format!("/proc/{pid}/status"),
    };
    let text = read(&path)?;
    Ok(text.lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    }))
}

/// Process `pid`'s memory in KiB: its resident set (`VmRSS` of `status`) and its proportional
/// share of it (`Pss` of `smaps_rollup`, shared pages divided among the processes mapping them;
/// `None` where the kernel or the process's dumpability keeps it from the caller).
pub fn memory_kib(pid: u32) -> Result<(Option<u64>, Option<u64>), ProcError> {
    let kib = |v: &str| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok();
    let rss = status_field(pid, None, "VmRSS")?.as_deref().and_then(kib);
    let pss = read(&format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("Pss:")).and_then(kib));
    Ok((rss, pss))
}

/// The CPU time process `pid` has used, user and system, over all its threads, in nanoseconds
/// (`utime` and `stime` of `/proc/<pid>/stat`, counted in clock ticks); `None` where the
/// file's fields are not what the kernel writes.
pub fn cpu_ns(pid: u32) -> Result<Option<u64>, ProcError> {
    let text = read(&format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold anything: the fields follow the last `)`.
    let Some((_, rest)) = text.rsplit_once(')') else {
        return Ok(None);
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (field 3), ..., utime (14), stime (15).
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let (Some(user), Some(system)) = (ticks(11), ticks(12)) else {
        return Ok(None);
    };
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|hz| u64::try_from(hz).ok())
        .filter(|hz| *hz > 0);
    let Some(hz) = hz else {
        return Ok(None);
    };
    Ok(Some((user + system).saturating_mul(1_000_000_000) / hz))
}

/// The thread ids of process `pid`.
pub fn threads(pid: u32) -> Result<Vec<u32>, ProcError> {
    let dir = format!("/proc/{pid}/task");
    let rd = std::fs::read_dir(&dir).map_err(|source| ProcError {
        path: dir.clone(),
        source,
    })?;
    let mut v: Vec<u32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// Yama's `ptrace_scope` (0 to 3), or `None` where Yama is not active.
pub fn yama_ptrace_scope() -> Option<u8> {
    read("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// The running kernel's release string, from `uname(2)`.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// The seccomp actions the kernel offers (`/proc/sys/kernel/seccomp/actions_avail`).
pub fn seccomp_actions() -> Option<String> {
    read("/proc/sys/kernel/seccomp/actions_avail")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The DRM device nodes under `/dev/dri`.
pub fn dri_nodes() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(Path::new("/dev/dri"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The maximum number of user namespaces (`/proc/sys/user/max_user_namespaces`).
pub fn max_user_namespaces() -> Option<u64> {
    read("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// The parent pid of `pid`.
pub fn parent_pid(pid: u32) -> Result<Option<u32>, ProcError> {
    Ok(status_field(pid, None, "PPid")?.and_then(|s| s.parse().ok()))
}

/// The pids of every process whose parent is `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut v: Vec<u32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|p| parent_pid(*p).ok().flatten() == Some(pid))
        .collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_rises_with_work() {
        let me = std::process::id();
        let before = cpu_ns(me).expect("stat").expect("fields");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(100) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = cpu_ns(me).expect("stat").expect("fields");
        // A tenth of a second of spinning, counted in ticks (of 10 ms or less).
        assert!(after >= before + 50_000_000, "{before} -> {after}");
    }

    #[test]
    fn counts_own_fds() {
        let me = std::process::id();
        let before = fd_count(me).expect("count");
        let f = std::fs::File::open("/proc/self/status").expect("open");
        assert_eq!(fd_count(me).expect("count"), before + 1);
        drop(f);
        assert_eq!(fd_count(me).expect("count"), before);
        assert!(status_field(me, None, "Name").expect("status").is_some());
        assert!(threads(me).expect("threads").contains(&me));
    }
}
