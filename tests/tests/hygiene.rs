//! Process hygiene: a child starts with exactly the fds the launcher places for it and an
//! environment built from an allowlist, whatever the launcher itself inherited.

use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::time::Duration;

use triptych_tests::*;

/// Fds of `pid` whose `/proc` link contains `needle`.
fn holding(pid: u32, needle: &str) -> Vec<(i32, String)> {
    triptych_sys::proc::fd_links(pid)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, l)| l.contains(needle))
        .collect()
}

#[test]
fn children_hold_none_of_what_the_launchers_parent_left_open() {
    // One file, left open in the launcher at a low number, at a number inside the GPU process's
    // export window, and far above it; every copy without close-on-exec (the confinement below
    // places them as a careless parent would).
    let leaked = triptych_sys::memfd::create_sealed(c"hygiene-leak", 4096).expect("memfd");
    let dup = |fd: &OwnedFd| triptych_sys::fd::dup_cloexec(fd.as_fd()).expect("dup");
    let window = triptych_sys::fd::ExportWindow::GPU;
    let mut cmd = triptych(&["run", "--frames", "4000", "--size", "64x48", "--out"]);
    let dir = scratch("hygiene");
    cmd.arg(dir.join("f.png"))
        .env("HYGIENE_SECRET", "must-not-reach-a-child")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    triptych_sys::jail::Confinement::new()
        .inherit(dup(&leaked), 7)
        .expect("inherit")
        .inherit(dup(&leaked), window.base + 3)
        .expect("inherit")
        .inherit(dup(&leaked), 1500)
        .expect("inherit")
        .install(&mut cmd);
    let mut launcher = cmd.spawn().expect("spawn launcher");
    let pid = launcher.id();
    assert!(
        wait_until(Duration::from_secs(20), || holding(pid, "hygiene-leak")
            .len()
            == 3),
        "the launcher itself should hold the three copies: {:?}",
        holding(pid, "hygiene-leak")
    );
    // Both children running under their sandboxes: well past exec, so what they hold now is
    // what they inherited or opened themselves.
    let sandboxed = |p: &u32| {
        std::fs::read_to_string(format!("/proc/{p}/status")).is_ok_and(|s| {
            s.lines()
                .any(|l| l.split_whitespace().eq(["Seccomp:", "2"]))
        })
    };
    let mut seen = Vec::new();
    let found = wait_until(Duration::from_secs(30), || {
        seen = ["gpu", "renderer"]
            .iter()
            .flat_map(|r| children_named(pid, r))
            .collect();
        seen.len() == 2 && seen.iter().all(sandboxed)
    });
    assert!(
        found,
        "both children should be running, sandboxed: {seen:?}"
    );
    for child in &seen {
        let held = holding(*child, "hygiene-leak");
        assert!(held.is_empty(), "child {child} holds {held:?}");
        let env = std::fs::read(format!("/proc/{child}/environ")).expect("environ");
        let env = String::from_utf8_lossy(&env);
        assert!(
            !env.contains("HYGIENE_SECRET"),
            "child {child} inherited the environment: {env}"
        );
    }
    let st = wait_within(&mut launcher, PROCESS_DEADLINE, "the launcher");
    assert!(st.success(), "{st}");
}

#[test]
fn pool_buffers_reach_the_renderer_read_only_and_fences_wait_only() {
    // Take, as the renderer does, the files the GPU process exports, and try what a
    // compromised renderer would: map a pool buffer writable, write to it, signal a fence.
    // With pipe fences: progress fences are no files (a renderer's attempt to write its
    // progress page is `hostile_renderer.rs`'s).
    let dir = scratch("hygiene-exports");
    let mut cmd = triptych(&[
        "run",
        "--frames",
        "4000",
        "--size",
        "64x48",
        "--buffers",
        "shm",
        "--progress-fences",
        "off",
    ]);
    cmd.arg("--out")
        .arg(dir.join("f.png"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut launcher = cmd.spawn().expect("spawn launcher");
    let pid = launcher.id();
    let mut gpu = None;
    let window = triptych_sys::fd::ExportWindow::GPU;
    let exported = |g: u32| -> Vec<(i32, String)> {
        triptych_sys::proc::fd_links(g)
            .unwrap_or_default()
            .into_iter()
            .filter(|(n, _)| window.contains(*n))
            .collect()
    };
    let found = wait_until(Duration::from_secs(30), || {
        gpu = children_named(pid, "gpu").first().copied();
        gpu.is_some_and(|g| {
            let e = exported(g);
            e.iter().any(|(_, l)| l.contains("triptych-shm"))
                && e.iter().any(|(_, l)| l.starts_with("pipe:"))
        })
    });
    assert!(
        found,
        "the GPU process exported no shm buffer and pipe fence"
    );
    let g = gpu.expect("gpu");
    let pidfd = triptych_sys::pidfd::pidfd_open(g as i32).expect("pidfd");
    let mut buffers = 0;
    let mut fences = 0;
    // A fence lives for a frame: look again until one was caught as well as a buffer.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while (buffers == 0 || fences == 0) && std::time::Instant::now() < deadline {
        for (n, link) in exported(g) {
            let Ok(fd) = triptych_sys::pidfd::pidfd_getfd(pidfd.as_fd(), n) else {
                continue; // recycled meanwhile
            };
            if link.contains("triptych-shm") {
                buffers += 1;
                let writable = triptych_sys::mapping::Mapping::new(
                    fd.as_fd(),
                    4096,
                    triptych_sys::mapping::Access::ReadWrite,
                );
                assert!(writable.is_err(), "pool buffer {link} mapped writable");
                assert!(
                    nix::unistd::write(&fd, b"x").is_err(),
                    "pool buffer {link} written"
                );
                triptych_sys::mapping::Mapping::new(
                    fd.as_fd(),
                    4096,
                    triptych_sys::mapping::Access::Read,
                )
                .expect("read-only mapping");
            } else if link.starts_with("pipe:") {
                fences += 1;
                assert!(
                    triptych_sys::fd::is_pipe_read_end(fd.as_fd()).expect("fcntl"),
                    "fence {link} is not a pipe's read end"
                );
                assert!(
                    nix::unistd::write(&fd, b"x").is_err(),
                    "fence {link} written"
                );
            }
        }
    }
    assert!(
        buffers > 0 && fences > 0,
        "{buffers} buffers, {fences} fences"
    );
    let _ = launcher.kill();
    let _ = launcher.wait();
}
