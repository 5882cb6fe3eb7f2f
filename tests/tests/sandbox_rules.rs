//! Every rule that looks at arguments, in both policies, called once with allowed and once with
//! altered arguments, in the real process under its real policy (as Firecracker's policy tests
//! do).
//!
//! The rules are read from the policies themselves, so a rule added later is covered (or the
//! process answers `unknown rule` and this test fails). Allowed calls must pass the filter (any
//! kernel answer but a trap or the rule's errno); altered calls must trap with the rule's system
//! call, or fail with the rule's errno where the rule says so.

use std::sync::Mutex;

use ipc_protocol::messages::Transport;
use triptych_adversary::attempts::{ALLOWED, ALL_ALLOWED, ALTERED};
use triptych_sandbox::{gpu, renderer, Otherwise, Policy, Rule};
use triptych_tests::sandbox::{errno_name, run};

fn with_arguments(p: Policy) -> Vec<Rule> {
    p.rules.into_iter().filter(|r| !r.when.is_empty()).collect()
}

fn renderer_rules() -> Vec<Rule> {
    with_arguments(renderer::policy(&renderer::Params::example()))
}

fn gpu_rules() -> Vec<Rule> {
    // The policy the real process installs: with Landlock on, `openat` is a rule with arguments.
    with_arguments(gpu::policy(&gpu::Params {
        pid: 1,
        landlocked: triptych_sys::landlock::abi().is_ok(),
    }))
}

fn check_allowed(role: &str, rules: &[Rule]) {
    let r = run(
        &format!("{role}-all-allowed"),
        &format!("{role}:{ALL_ALLOWED}"),
        &["--transport", "pidfd"],
    );
    assert_eq!(
        r.outcome(role, ALL_ALLOWED).as_deref(),
        Some("done"),
        "{}",
        r.stderr
    );
    assert!(
        r.violations().is_empty(),
        "an allowed call trapped: {:?}",
        r.violations()
    );
    let mut bad = Vec::new();
    for rule in rules {
        let o = r.outcome(role, &format!("{ALLOWED}{}", rule.id));
        let refused = |o: &str| {
            o.contains("unknown")
                || matches!(rule.otherwise, Otherwise::Errno(e) if o.contains(&errno_name(e)))
        };
        match o {
            Some(o) if !refused(&o) => {}
            other => bad.push(format!("{}: {other:?}", rule.id)),
        }
    }
    assert!(
        bad.is_empty(),
        "allowed calls refused: {bad:?}\n{}",
        r.stderr
    );
}

fn check_altered(role: &str, rules: &[Rule]) {
    let bad = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().expect("lock");
                    *n += 1;
                    *n - 1
                };
                let Some(rule) = rules.get(i) else { break };
                let name = format!("{ALTERED}{}", rule.id);
                let r = run(
                    &format!("{role}-altered-{i}"),
                    &format!("{role}:{name}"),
                    &["--transport", "pidfd"],
                );
                let outcome = r.outcome(role, &name);
                let problem = match rule.otherwise {
                    Otherwise::Trap => match (&outcome, r.check_one_violation(role, rule.name)) {
                        (None, Ok(())) => None,
                        (Some(o), _) => Some(format!("altered call returned: {o}")),
                        (None, Err(e)) => Some(e),
                    },
                    Otherwise::Errno(e) => {
                        // Every alteration must get the rule's errno, and nothing trap.
                        let want = format!("failed {}", errno_name(e));
                        match &outcome {
                            Some(o)
                                if o.split("; ").all(|x| x == want)
                                    && r.violations().is_empty() =>
                            {
                                None
                            }
                            other => Some(format!(
                                "expected only {want:?}, got {other:?}, violations {:?}",
                                r.violations()
                            )),
                        }
                    }
                };
                if let Some(p) = problem {
                    bad.lock()
                        .expect("lock")
                        .push(format!("{role} {}: {p}", rule.id));
                }
            });
        }
    });
    let bad = bad.into_inner().expect("lock");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn every_renderer_rule_with_arguments_allows_its_allowed_arguments() {
    let rules = renderer_rules();
    assert!(rules.len() >= 15, "{} rules", rules.len());
    check_allowed("renderer", &rules);
}

#[test]
fn every_renderer_rule_with_arguments_refuses_altered_arguments() {
    check_altered("renderer", &renderer_rules());
}

#[test]
fn every_gpu_rule_with_arguments_allows_its_allowed_arguments() {
    let rules = gpu_rules();
    assert!(rules.len() >= 15, "{} rules", rules.len());
    check_allowed("gpu", &rules);
}

#[test]
fn every_gpu_rule_with_arguments_refuses_altered_arguments() {
    check_altered("gpu", &gpu_rules());
}

#[test]
fn the_scm_rights_policy_has_no_pidfd_getfd_rule() {
    let scm = renderer::policy(&renderer::Params {
        transport: Transport::ScmRights,
        ..renderer::Params::example()
    });
    assert!(scm.rules.iter().all(|r| r.name != "pidfd_getfd"));
}
