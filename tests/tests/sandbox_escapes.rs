//! Escape attempts made by the real renderer and GPU process under their real policies.
//!
//! For every attempt of the catalogue (`triptych_sandbox::attempts`) a real run is started with
//! the test hook set: the process performs the attempt right after its sandbox went on. It must
//! end the way the catalogue says: killed by `SIGSYS` and reported by the launcher as a
//! violation of the expected system call (log line, summary, crash record), or failed with the
//! expected errno (the process then writes the outcome and lives on). An attempt that succeeded
//! would print `returned ...` and fail the test.

use std::sync::Mutex;

use ipc_protocol::messages::Transport;
use triptych_adversary::attempts::{self, Attempt, Expect};
use triptych_tests::sandbox::{errno_name, run};

/// Runs `attempts` for `role` two at a time; returns the failures.
fn check_all(role: &str, list: &[Attempt], extra: &[&str]) -> Vec<String> {
    let failures = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().expect("lock");
                    *n += 1;
                    *n - 1
                };
                let Some(a) = list.get(i) else { break };
                let r = run(
                    &format!("{role}-{}", a.name),
                    &format!("{role}:{}", a.name),
                    extra,
                );
                let outcome = r.outcome(role, a.name);
                let problem = match a.expect {
                    Expect::Trap(call) => match (&outcome, r.check_one_violation(role, call)) {
                        (None, Ok(())) => None,
                        (Some(o), _) => Some(format!(
                            "expected SIGSYS on {call}, but the call returned: {o}"
                        )),
                        (None, Err(e)) => Some(e),
                    },
                    Expect::Errno(e) => {
                        let want = format!("failed {}", errno_name(e));
                        if outcome.as_deref() != Some(want.as_str()) {
                            Some(format!(
                                "expected {want:?}, got {outcome:?} (violations {:?})",
                                r.violations()
                            ))
                        } else if !r.violations().is_empty() {
                            Some(format!("unexpected violations {:?}", r.violations()))
                        } else {
                            None
                        }
                    }
                };
                if let Some(p) = problem {
                    failures
                        .lock()
                        .expect("lock")
                        .push(format!("{role}:{} ({}): {p}", a.name, a.what));
                }
            });
        }
    });
    failures.into_inner().expect("lock")
}

#[test]
fn every_renderer_escape_attempt_dies_by_sigsys_or_gets_eperm() {
    let list = attempts::renderer(Transport::Pidfd);
    assert!(list.len() >= 40, "{} attempts", list.len());
    let failures = check_all("renderer", &list, &["--transport", "pidfd"]);
    assert!(
        failures.is_empty(),
        "{} of {} attempts did not end as expected:\n{}",
        failures.len(),
        list.len(),
        failures.join("\n")
    );
}

#[test]
fn with_scm_rights_the_renderer_may_not_even_call_pidfd_getfd() {
    let list: Vec<Attempt> = attempts::renderer(Transport::ScmRights)
        .into_iter()
        .filter(|a| {
            a.name.starts_with("pidfd-getfd") || a.name == "open-file" || a.name == "ptrace-gpu"
        })
        .collect();
    assert!(
        list.iter()
            .filter(|a| a.expect == Expect::Trap("pidfd_getfd"))
            .count()
            >= 5
    );
    let failures = check_all("renderer", &list, &["--transport", "scm-rights"]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_gpu_process_can_open_no_file_exec_nothing_and_reach_no_network() {
    let list = attempts::gpu();
    let failures = check_all("gpu", &list, &[]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The launcher's own fds are out of the renderer's reach even through the one pidfd number
/// its filter accepts: with a pidfd of the launcher at that number, `pidfd_getfd` passes the
/// filter and the kernel refuses it (the launcher is not dumpable and lives outside the
/// renderer's user namespace, where the renderer has no CAP_SYS_PTRACE). The same call through
/// the real link succeeds, so the refusal is about the target, not the call.
#[test]
fn pidfd_getfd_against_the_launcher_fails_in_the_kernel() {
    let r = run(
        "launcher-at-link",
        "renderer:pidfd-getfd-launcher-at-link",
        &["--transport", "pidfd"],
    );
    assert_eq!(
        r.outcome("renderer", "pidfd-getfd-launcher-at-link")
            .as_deref(),
        Some("failed EPERM"),
        "{}",
        r.stderr
    );
    assert!(r.violations().is_empty(), "{:?}", r.violations());
    let control = run(
        "link-control",
        "renderer:allowed:pidfd_getfd:window",
        &["--transport", "pidfd"],
    );
    let o = control
        .outcome("renderer", "allowed:pidfd_getfd:window")
        .expect("outcome");
    assert!(
        o.starts_with("fd ") || o == "failed EBADF",
        "the real link must pass both filter and kernel: {o}"
    );
}

/// A violation is recorded in the trace as a `sandbox_violation` instant naming the call.
#[test]
fn a_violation_is_recorded_in_the_trace() {
    let dir = triptych_tests::scratch("violation-trace");
    let trace = dir.join("trace.json");
    let r = run(
        "trace",
        "renderer:open-file",
        &["--trace", trace.to_str().expect("utf-8 path")],
    );
    assert!(
        r.check_one_violation("renderer", "openat").is_ok(),
        "{:?}",
        r.violations()
    );
    let file = std::fs::File::open(&trace).expect("trace written");
    let parsed =
        triptych_trace::parse_chrome_json(std::io::BufReader::new(file)).expect("trace parses");
    let marks: Vec<_> = parsed
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                triptych_trace::EventKind::Instant {
                    marker: triptych_trace::Marker::SandboxViolation,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(marks.len(), 1, "{marks:?}");
    let call = match marks[0].args.get("call") {
        Some(triptych_trace::ArgValue::Str(s)) => s.clone(),
        other => panic!("no call argument: {other:?}"),
    };
    assert!(call.starts_with("openat("), "{call}");
    let _ = std::fs::remove_dir_all(&dir);
}
