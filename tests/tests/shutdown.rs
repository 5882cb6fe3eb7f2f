//! No child outlives the launcher: not after a normal run, not after Ctrl-C, not after SIGKILL.

use std::process::Stdio;
use std::time::Duration;

use triptych_tests::*;

fn start_long_run(tag: &str) -> (std::process::Child, u32, u32) {
    let dir = scratch(tag);
    let mut child = triptych(&["run", "--frames", "100000000", "--size", "64x48", "--out"])
        .arg(dir.join("f.png"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn triptych");
    let pid = child.id();
    let mut kids = (Vec::new(), Vec::new());
    let up = wait_until(Duration::from_secs(20), || {
        kids = (children_named(pid, "gpu"), children_named(pid, "renderer"));
        kids.0.len() == 1 && kids.1.len() == 1
    });
    if !up {
        let _ = child.kill();
        panic!(
            "children did not start: gpu {:?}, renderer {:?}",
            kids.0, kids.1
        );
    }
    // The kill must land mid-run, with frames flowing: wait until one has reached the renderer.
    let renderer = kids.1[0];
    if !wait_until(Duration::from_secs(60), || holds_a_frame_buffer(renderer)) {
        let _ = child.kill();
        panic!(
            "no frame reached the renderer; it holds {:?}",
            triptych_sys::proc::fd_links(renderer)
        );
    }
    (child, kids.0[0], renderer)
}

/// Whether `renderer` holds a buffer that the GPU process exported (a memfd of the shm backend
/// or a DMA-BUF): it imports one when the first frame drawn in it arrives.
fn holds_a_frame_buffer(renderer: u32) -> bool {
    triptych_sys::proc::fd_links(renderer)
        .unwrap_or_default()
        .iter()
        .any(|(_, link)| link.contains("triptych-shm") || link.contains("dmabuf"))
}

#[test]
fn sigkill_of_the_launcher_takes_the_children_down() {
    let (mut launcher, gpu, renderer) = start_long_run("sigkill");
    assert!(alive(gpu) && alive(renderer));
    launcher.kill().expect("SIGKILL the launcher");
    launcher.wait().expect("reap the launcher");
    // PR_SET_PDEATHSIG delivers SIGKILL to both; they are reaped by init or the subreaper.
    assert!(
        wait_until(Duration::from_secs(5), || !alive(gpu) && !alive(renderer)),
        "children outlived a SIGKILLed launcher: gpu alive {}, renderer alive {}",
        alive(gpu),
        alive(renderer)
    );
}

#[test]
fn ctrl_c_shuts_down_cleanly() {
    let (mut launcher, gpu, renderer) = start_long_run("sigint");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(launcher.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let mut status = None;
    let exited = wait_until(Duration::from_secs(20), || {
        status = launcher.try_wait().expect("try_wait");
        status.is_some()
    });
    assert!(exited, "the launcher did not exit within 20 s of Ctrl-C");
    let status = status.expect("exited");
    assert!(
        status.success(),
        "launcher exited with {status:?} after Ctrl-C"
    );
    assert!(
        !alive(gpu) && !alive(renderer),
        "a child is still running after the launcher exited"
    );
}

#[test]
fn normal_run_leaves_no_child() {
    let dir = scratch("normal");
    let mut cmd = triptych(&["run", "--frames", "5", "--size", "64x48", "--out"]);
    cmd.arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(dir.join("s.json"));
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&dir.join("s.json"));
    for role in ["gpu", "renderer"] {
        let pid = s["processes"]["pids"][role].as_u64().expect("pid") as u32;
        assert!(!alive(pid), "{role} {pid} outlived the launcher");
    }
}
