//! The sandbox as the kernel sees it, read from `/proc` of the real running children: every
//! thread filtered (`Seccomp: 2`) with `NoNewPrivs: 1`, no capabilities even though the tests
//! run as root, and namespaces of their own. And a harmless run reports the same in its summary.

use std::process::Stdio;
use std::time::Duration;

use triptych_sys::proc::{status_field, threads};
use triptych_tests::*;

fn field(pid: u32, tid: Option<u32>, name: &str) -> String {
    status_field(pid, tid, name)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("/proc/{pid} status has no {name}"))
}

fn check_process(role: &str, pid: u32, min_threads: usize) {
    assert!(
        wait_until(Duration::from_secs(20), || threads(pid)
            .map_or(0, |t| t.len())
            >= min_threads),
        "the {role} never had {min_threads} threads"
    );
    let tids = threads(pid).expect("threads");
    for tid in &tids {
        assert_eq!(
            field(pid, Some(*tid), "Seccomp"),
            "2",
            "{role} thread {tid} is not filtered"
        );
        assert_eq!(
            field(pid, Some(*tid), "NoNewPrivs"),
            "1",
            "{role} thread {tid} lacks no_new_privs"
        );
    }
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(
            field(pid, None, cap),
            "0000000000000000",
            "{role} holds capabilities ({cap})"
        );
    }
    let filters: u32 = field(pid, None, "Seccomp_filters").parse().expect("count");
    assert!(filters >= 2, "{role}: {filters} filters");
    for ns in ["user", "net", "ipc"] {
        let mine = std::fs::read_link(format!("/proc/self/ns/{ns}")).expect("own ns");
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).expect("child ns");
        assert_ne!(mine, theirs, "the {role} shares the test's {ns} namespace");
    }
}

#[test]
fn every_thread_of_both_children_is_filtered_and_unprivileged() {
    let dir = scratch("sandbox-status");
    let mut launcher = triptych(&["run", "--frames", "100000000", "--size", "64x48", "--out"])
        .arg(dir.join("f.png"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn triptych");
    let pid = launcher.id();
    let mut kids = (Vec::new(), Vec::new());
    let up = wait_until(Duration::from_secs(20), || {
        kids = (children_named(pid, "gpu"), children_named(pid, "renderer"));
        kids.0.len() == 1 && kids.1.len() == 1
    });
    let result = std::panic::catch_unwind(|| {
        assert!(up, "children did not start: {kids:?}");
        // The renderer's receiving thread and fence waiter start only after its sandbox is on;
        // the GPU process's driver threads start before it, and are filtered all the same
        // (TSYNC).
        check_process("renderer", kids.1[0], 3);
        check_process("gpu", kids.0[0], 2);
        // Both share one user namespace: that is what lets the renderer take the GPU process's
        // fds while it cannot take the launcher's.
        let ns = |p: u32| std::fs::read_link(format!("/proc/{p}/ns/user")).expect("ns");
        assert_eq!(ns(kids.0[0]), ns(kids.1[0]));
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    wait_within(
        &mut launcher,
        PROCESS_DEADLINE,
        "the launcher, after SIGINT",
    );
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn a_harmless_run_works_under_the_sandbox_and_says_which_layers_were_on() {
    let dir = scratch("sandbox-harmless");
    let json = dir.join("s.json");
    let mut cmd = triptych(&["run", "--frames", "20", "--size", "64x48", "--out"]);
    cmd.arg(dir.join("f.png")).arg("--summary-json").arg(&json);
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&json);
    assert_eq!(s["frames"]["count"], 20);
    assert!(
        s["recovery"]["crashes"]
            .as_array()
            .is_some_and(|c| c.is_empty()),
        "{}",
        s["recovery"]["crashes"]
    );
    let sb = &s["sandbox"];
    assert_eq!(sb["violations"], serde_json::json!([]), "{sb}");
    for role in ["renderer", "gpu"] {
        let l = &sb[role];
        assert_eq!(l["seccomp_threads"], l["threads"], "{role}: {l}");
        assert_eq!(l["no_new_privs_threads"], l["threads"], "{role}: {l}");
        assert_eq!(l["cap_effective"], "0000000000000000", "{role}: {l}");
        assert_eq!(l["user_namespace"], true, "{role}: {l}");
        assert_eq!(l["net_namespace"], true, "{role}: {l}");
        assert_eq!(l["ipc_namespace"], true, "{role}: {l}");
    }
    assert_eq!(sb["renderer"]["max_open_files"], "512", "{sb}");
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "sandbox renderer: seccomp on",
        "sandbox gpu: seccomp on",
        "user+net+ipc namespaces",
        "no capabilities",
        "sandbox violations: none",
        "fd transport chosen: auto: ",
    ] {
        assert!(text.contains(needle), "summary lacks {needle:?}:\n{text}");
    }
    let d = output(triptych(&["doctor"]));
    let text = String::from_utf8_lossy(&d.stdout);
    for needle in [
        "sandbox: user namespace",
        "sandbox: network and IPC namespaces",
        "sandbox: seccomp policies",
        "--transport auto will use pidfd_getfd",
    ] {
        assert!(text.contains(needle), "doctor lacks {needle:?}:\n{text}");
    }
}
