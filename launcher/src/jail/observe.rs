//! Reading what a running child's sandbox really is, from `/proc/<pid>`.

use super::*;

/// The sandbox state of `pid`, from `/proc/<pid>`.
pub fn observe(pid: u32) -> anyhow::Result<RoleLayers> {
    use triptych_sys::proc::{status_field, threads};
    let field = |tid: Option<u32>, name: &str| -> anyhow::Result<String> {
        status_field(pid, tid, name)?.with_context(|| format!("/proc/{pid}/status has no {name}"))
    };
    let tids = threads(pid)?;
    let mut filtered = 0;
    let mut nnp = 0;
    for t in &tids {
        if field(Some(*t), "Seccomp")? == "2" {
            filtered += 1;
        }
        if field(Some(*t), "NoNewPrivs")? == "1" {
            nnp += 1;
        }
    }
    let ns_differs = |kind: &str| -> anyhow::Result<bool> {
        let mine = std::fs::read_link(format!("/proc/self/ns/{kind}"))?;
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))?;
        Ok(mine != theirs)
    };
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let soft = |name: &str| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l[name.len()..].split_whitespace().next().map(str::to_owned))
    };
    Ok(RoleLayers {
        threads: tids.len(),
        seccomp_threads: filtered,
        no_new_privs_threads: nnp,
        seccomp_filters: field(None, "Seccomp_filters")
            .ok()
            .and_then(|v| v.parse().ok()),
        user_namespace: ns_differs("user")?,
        net_namespace: ns_differs("net")?,
        ipc_namespace: ns_differs("ipc")?,
        cap_effective: field(None, "CapEff")?,
        cap_bounding: field(None, "CapBnd")?,
        max_open_files: soft("Max open files"),
        max_file_size: soft("Max file size"),
    })
}
