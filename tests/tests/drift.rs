//! Syscall drift: every system call each role makes during a run is one its policy names.
//!
//! The seccomp policies are allowlists written against one C library, one Mesa and one kernel.
//! A newer one that starts making a new call (glibc's `clone3`, `rseq`, vDSO `getrandom`, a
//! driver's new ioctl) would kill the children of every user who upgrades. These tests run the
//! real processes with `--sandbox learn`: the same policies, but a call outside them is recorded
//! by the launcher (from the kernel's user notification) and let run. The run's summary lists
//! every such call; the drift test fails on any, printing the delta. The test command runs it on
//! this machine, in the Debian 13 userspace (`tests/userspace/`) and, with real DMA-BUFs, in
//! the VM under both kernels (`tests/vm/`).

use triptych_tests::sandbox::{run, ProbeRun};
use triptych_tests::{output, scratch, show, skip_or_fail, summary, triptych, REQUIRE_DMABUF};

/// The calls the summary lists as outside the policies: `(role, call, count, first example)`.
fn learned(s: &serde_json::Value) -> Vec<(String, String, u64, String)> {
    s["sandbox"]["learned"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["role"].as_str().unwrap_or("?").to_owned(),
                        c["call"].as_str().unwrap_or("?").to_owned(),
                        c["count"].as_u64().unwrap_or(0),
                        c["examples"][0].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What userspace this is, for failure messages.
fn userspace() -> String {
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_owned())
            })
        })
        .unwrap_or_else(|| "unknown userspace".into());
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{os}, kernel {kernel}")
}

fn learn_probe(probe: &str) -> ProbeRun {
    run(
        &format!("learn-{}", probe.replace(':', "-")),
        probe,
        &["--sandbox", "learn"],
    )
}

#[test]
fn learning_mode_records_a_call_outside_the_policy_and_lets_it_run() {
    // Each call is recorded; the harmless ones run, process creation is refused even here.
    for (probe, role, call, outcome_starts) in [
        ("renderer:stat-path", "renderer", "newfstatat", "returned"),
        ("gpu:socket-inet", "gpu", "socket", "returned"),
        ("renderer:fork", "renderer", "clone", "failed EPERM"),
    ] {
        let r = learn_probe(probe);
        assert_eq!(r.summary["sandbox"]["mode"], "learn", "{probe}");
        let (_, name) = probe.split_once(':').expect("role:name");
        let outcome = r.outcome(role, name);
        assert!(
            outcome
                .as_deref()
                .is_some_and(|o| o.starts_with(outcome_starts)),
            "{probe}: in learning mode the call must end {outcome_starts:?}, got {outcome:?}\n{}",
            r.stderr
        );
        let l = learned(&r.summary);
        assert!(
            l.iter()
                .any(|(ro, c, n, _)| ro == role && c == call && *n >= 1),
            "{probe}: the summary must list {role} calling {call}, it lists {l:?}"
        );
        assert!(
            r.violations().is_empty(),
            "{probe}: nothing is a violation in learning mode: {:?}",
            r.violations()
        );
        assert_eq!(
            r.summary["recovery"]["crashes"].as_array().map(Vec::len),
            Some(0),
            "{probe}: no child died"
        );
        assert!(
            r.stderr
                .contains(&format!("learning mode: {role} calls {call}(")),
            "{probe}: the launcher logs the first call of its kind\n{}",
            r.stderr
        );
    }
}

#[test]
fn an_enforcing_run_says_so_and_lists_nothing_learned() {
    let dir = scratch("drift-enforce");
    let json = dir.join("s.json");
    let mut cmd = triptych(&["run", "--frames", "4", "--size", "64x48"]);
    cmd.arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(&json);
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&json);
    assert_eq!(s["sandbox"]["mode"], "enforce");
    assert_eq!(s["sandbox"]["learned"].as_array().map(Vec::len), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// One learning run; returns the delta, each line naming the role and the call.
fn drift(tag: &str, extra: &[&str]) -> Vec<String> {
    let dir = scratch(&format!("drift-{tag}"));
    let json = dir.join("s.json");
    let mut cmd = triptych(&[
        "run",
        "--sandbox",
        "learn",
        "--frames",
        "90",
        "--size",
        "160x120",
        // Both roles die once and are replaced, so start-up, recovery and re-linking run
        // under the policies too.
        "--fault",
        "gpu-after-export:kill@25",
        "--fault",
        "renderer-composite:kill@55",
    ]);
    cmd.args(extra)
        .args(triptych_tests::emulated_vm_args())
        .arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(&json)
        .arg("--trace")
        .arg(dir.join("t.json"));
    let o = output(cmd);
    assert!(o.status.success(), "{tag}: {}", show(&o));
    let s = summary(&json);
    assert_eq!(s["sandbox"]["mode"], "learn");
    assert_eq!(
        s["sandbox"]["learned_overflow"].as_u64(),
        Some(0),
        "{tag}: {s}"
    );
    let crashes = s["recovery"]["crashes"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert!(
        crashes >= 2,
        "{tag}: both injected faults ran: {crashes} crashes"
    );
    let _ = std::fs::remove_dir_all(&dir);
    learned(&s)
        .into_iter()
        .map(|(role, call, n, example)| {
            format!("{tag}: {role} made {call} {n} time(s), e.g. {example}")
        })
        .collect()
}

/// Why `--buffers dmabuf` cannot work here, as `triptych doctor` says (`None`: it can, as
/// `--buffers auto` would pick it).
fn dmabuf_unavailable() -> Option<String> {
    let o = output(triptych(&["doctor", "--json"]));
    assert!(o.status.success(), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("doctor --json");
    let auto = &v["auto"];
    if auto["backend"] == "dmabuf" {
        return None;
    }
    Some(format!(
        "doctor's --buffers auto would use {} because {}",
        auto["backend"],
        auto["reason"].as_str().unwrap_or("(no reason given)")
    ))
}

#[test]
fn every_call_each_role_makes_is_named_by_its_policy() {
    let mut delta = Vec::new();
    delta.extend(drift("pidfd", &["--transport", "pidfd"]));
    delta.extend(drift("scm-rights", &["--transport", "scm-rights"]));
    // A scene file: PNG decoding (after the sandbox is on), shader compilation and drawing,
    // on every start of the GPU process.
    delta.extend(drift("scene", &["--scene", "default"]));
    // The scene edited while it runs: parsing an update, new textures from the same program,
    // a turned and scaled quad, a pixels layer and the application's pixels from a memfd.
    let control = scratch("drift-edits-control").join("edits.jsonl");
    std::fs::write(
        &control,
        concat!(
            r##"{"set": {"card": {"transform": {"rotate": 30, "scale": 1.5}}}}"##,
            "\n",
            r##"{"add": [{"name": "canvas", "kind": "pixels", "width": 4, "height": 2, "rect": {"x": 4, "y": 4, "w": 8, "h": 4}}]}"##,
            "\n",
            r##"{"pixels": {"layer": "canvas", "x": 1, "y": 0, "width": 2, "height": 1, "rgba": [255, 0, 0, 255, 0, 0, 255, 255]}}"##,
            "\n",
            r##"{"remove": ["canvas"]}"##,
            "\n",
        ),
    )
    .expect("writing the control lines");
    let control = control.display().to_string();
    delta.extend(drift("edits", &["--control", &control]));
    // Where DMA-BUF export works (the VM), the DMA-BUF path runs as well.
    match dmabuf_unavailable() {
        None => delta.extend(drift("dmabuf", &["--buffers", "dmabuf"])),
        Some(why) => skip_or_fail(
            REQUIRE_DMABUF,
            &format!("the run with --buffers dmabuf: {why}"),
        ),
    }
    assert!(
        delta.is_empty(),
        "on {}, the children made {} call(s) their policies do not name (add a rule with its \
         reason to sandbox/src/, or find out why the call is new):\n{}",
        userspace(),
        delta.len(),
        delta.join("\n")
    );
}
