//! `triptych doctor`: what this machine supports, and what `--buffers auto` will choose and why.
//!
//! Every fact is measured, not assumed: the pidfd check really takes an fd from a child process,
//! the user-namespace check really unshares in a child, the sandbox lines really start confined
//! children (and the transport line is the self-test `--transport auto` runs), and the EGL facts
//! come from the GPU process binary itself (`triptych-gpu --egl-facts`), which creates the same context
//! and runs the same backend selection that a run does. The display line ([`display`]) connects to
//! the display server a run would open its window on and asks it what the window's present path
//! needs.

mod display;

use std::process::{Command, Stdio};

use anyhow::Context;
use serde::Serialize;

/// One line of the report.
#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

fn check(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok,
        detail: detail.into(),
    }
}

/// Takes fd 0 of a child through `pidfd_getfd`: the path the renderer uses.
fn pidfd_self_test() -> Check {
    let child = Command::new("/bin/sleep")
        .arg("5")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return check(
                "pidfd_getfd",
                false,
                format!("could not start a test child: {e}"),
            )
        }
    };
    let result = triptych_sys::pidfd::pidfd_open(child.id() as i32)
        .and_then(|pidfd| triptych_sys::pidfd::pidfd_getfd(std::os::fd::AsFd::as_fd(&pidfd), 0));
    let _ = child.kill();
    let _ = child.wait();
    match result {
        Ok(_) => check("pidfd_getfd", true, "took an fd from a child process"),
        Err(e) => check(
            "pidfd_getfd",
            false,
            format!("{e}; the SCM_RIGHTS transport would be needed"),
        ),
    }
}

fn yama() -> Check {
    match triptych_sys::proc::yama_ptrace_scope() {
        None => check(
            "ptrace permission",
            true,
            "Yama not active: same-uid processes may pidfd_getfd",
        ),
        Some(0) => check(
            "ptrace permission",
            true,
            "Yama ptrace_scope 0: same-uid processes may pidfd_getfd",
        ),
        Some(1) => check(
            "ptrace permission",
            true,
            "Yama ptrace_scope 1: the GPU process names the renderer with PR_SET_PTRACER",
        ),
        Some(2) => check(
            "ptrace permission",
            false,
            "Yama ptrace_scope 2: only CAP_SYS_PTRACE may pidfd_getfd",
        ),
        Some(s) => check(
            "ptrace permission",
            false,
            format!("Yama ptrace_scope {s}: pidfd_getfd is refused to everyone"),
        ),
    }
}

fn userns() -> Check {
    let max = triptych_sys::proc::max_user_namespaces();
    let mut cmd = Command::new("/bin/true");
    triptych_sys::jail::Confinement::new()
        .new_user_namespace()
        .install(&mut cmd);
    match cmd.status() {
        Ok(s) if s.success() => check(
            "user namespaces",
            true,
            format!("a child could unshare(CLONE_NEWUSER); max_user_namespaces = {max:?}"),
        ),
        Ok(s) => check(
            "user namespaces",
            false,
            format!("unshare(CLONE_NEWUSER) test exited {s}"),
        ),
        Err(e) => check(
            "user namespaces",
            false,
            format!("unshare(CLONE_NEWUSER) refused: {e}"),
        ),
    }
}

/// The Landlock confinement the GPU process will put on itself (`sandbox/src/gpu/landlock.rs`).
fn landlock() -> Check {
    match triptych_sys::landlock::abi() {
        Ok(abi) => {
            let mut missing = Vec::new();
            for (since, what) in [
                (3, "truncation (ABI 3, Linux 6.2)"),
                (4, "TCP bind and connect (ABI 4, Linux 6.7)"),
                (5, "ioctls on device files (ABI 5, Linux 6.10)"),
                (
                    6,
                    "signal and abstract unix socket scoping (ABI 6, Linux 6.12)",
                ),
            ] {
                if abi < since {
                    missing.push(what);
                }
            }
            let base = format!(
                "ABI {abi}: the GPU process's files are its driver's libraries and data \
                 (read-only) and its device nodes, on every thread"
            );
            if missing.is_empty() {
                check("landlock", true, format!("{base}; fully enforced"))
            } else {
                check(
                    "landlock",
                    true,
                    format!("{base}; partly: this kernel lacks {}", missing.join(", ")),
                )
            }
        }
        Err(why) => check(
            "landlock",
            false,
            format!("{why}: the GPU process's seccomp policy refuses every open instead"),
        ),
    }
}

/// Runs the report.
pub fn run(json: bool) -> anyhow::Result<()> {
    let mut checks = vec![
        check("kernel", true, triptych_sys::proc::kernel_release()),
        pidfd_self_test(),
        yama(),
    ];
    match triptych_sys::proc::seccomp_actions() {
        Some(a) => checks.push(check(
            "seccomp",
            a.contains("trap") && a.contains("errno"),
            format!("actions: {a}"),
        )),
        None => checks.push(check(
            "seccomp",
            false,
            "/proc/sys/kernel/seccomp/actions_avail is missing",
        )),
    }
    checks.push(match triptych_sys::notify::available() {
        Ok(()) => check(
            "violation reports",
            true,
            ipc_protocol::messages::ViolationReports::Notify.as_str(),
        ),
        Err(why) => check(
            "violation reports",
            false,
            format!(
                "{}, because {why}: a compromised child can forge or suppress its reports",
                ipc_protocol::messages::ViolationReports::Signal.as_str()
            ),
        ),
    });
    checks.push(userns());
    checks.push(landlock());
    checks.push(if triptych_sys::memfd::noexec_seal() {
        check(
            "memfd MFD_NOEXEC_SEAL",
            true,
            "buffers are memfds sealed non-executable (F_SEAL_EXEC, Linux 6.3)",
        )
    } else {
        check(
            "memfd MFD_NOEXEC_SEAL",
            false,
            "not offered (Linux 6.3 or later): buffers are memfds without F_SEAL_EXEC",
        )
    });
    // The sandbox layers a run would get, and the transport `--transport auto` would take: the
    // same checks and self-test a run makes (triptych::machine).
    for triptych::machine::Finding { name, ok, detail } in triptych::machine::sandbox() {
        checks.push(check(name, ok, detail));
    }
    let dri = triptych_sys::proc::dri_nodes();
    checks.push(check(
        "/dev/dri",
        !dri.is_empty(),
        if dri.is_empty() {
            "no DRM device nodes".to_owned()
        } else {
            dri.join(", ")
        },
    ));
    let egl = triptych::machine::command_line_children_dir().and_then(|dir| {
        let gpu = dir.join(ipc_protocol::Role::Gpu.binary());
        let o = Command::new(gpu)
            .arg("--egl-facts")
            .stderr(Stdio::inherit())
            .output()
            .context("running triptych-gpu --egl-facts")?;
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).context("reading the GPU process's EGL facts")?;
        Ok(v)
    });
    let egl = match egl {
        Ok(v) => v,
        Err(e) => serde_json::json!({ "ok": false, "error": format!("{e:#}") }),
    };
    if egl["ok"] == true {
        let i = &egl["info"];
        checks.push(check(
            "EGL",
            true,
            format!(
                "platform {}, vendor {}, renderer {}, {}",
                i["platform"], i["egl_vendor"], i["gl_renderer"], i["gl_version"]
            ),
        ));
        for (name, key) in [
            ("EGL_MESA_image_dma_buf_export", "mesa_image_dma_buf_export"),
            ("EGL_EXT_image_dma_buf_import", "ext_image_dma_buf_import"),
            (
                "EGL_EXT_image_dma_buf_import_modifiers",
                "ext_image_dma_buf_import_modifiers",
            ),
            ("EGL_ANDROID_native_fence_sync", "android_native_fence_sync"),
        ] {
            let on = i[key] == true;
            checks.push(check(name, on, if on { "offered" } else { "not offered" }));
        }
    } else {
        checks.push(check(
            "EGL",
            false,
            egl["error"].as_str().unwrap_or("unknown error").to_owned(),
        ));
    }
    let auto = &egl["auto"];
    let auto_line = match (auto["backend"].as_str(), auto["reason"].as_str()) {
        (Some(b), Some(r)) => format!("{b}, because {r}"),
        (Some(b), None) => format!("{b}: DMA-BUF export works here"),
        _ => "nothing: the GPU process could not create a GL context".to_owned(),
    };
    let fence_line = auto["fence"].as_str().unwrap_or("none").to_owned();
    let shown = display::ask();
    checks.push(check("display", shown.ok(), shown.line()));
    if json {
        let v = serde_json::json!({
            "checks": checks,
            "auto": auto,
            "egl": egl,
            "display": shown,
        });
        let text = serde_json::to_string_pretty(&v).context("encoding the report")?;
        write_out(&text)?;
    } else {
        let mut s = String::from("triptych doctor\n");
        for c in &checks {
            s += &format!(
                "  [{}] {:<40} {}\n",
                if c.ok { " ok " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        s += &format!("  --buffers auto will use: {auto_line}\n  fences: {fence_line}\n");
        write_out(&s)?;
    }
    Ok(())
}

fn write_out(s: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes()).context("printing the report")?;
    out.write_all(b"\n").context("printing the report")?;
    Ok(())
}
