//! Helpers for the sandbox tests: a short real run with the test hook set, and reading what it
//! produced.
//!
//! Every sandbox test runs the real `triptych run` (launcher, GPU process, renderer, each under
//! its real policy) with `TRIPTYCH_SANDBOX_PROBE=<role>:<name>` (see
//! `triptych_sandbox::attempts`, in debug builds only). A trapped attempt kills the process by `SIGSYS`; the launcher
//! names the call in its log and in the summary, replaces the process (without the hook) and
//! finishes the run, so every probe run ends with a summary to check.

use std::process::Output;

use triptych_adversary::hook::{PROBE_ENV, PROBE_LINE};

/// What one probe run left behind.
#[derive(Debug)]
pub struct ProbeRun {
    /// The launcher's exit and output.
    pub output: Output,
    /// stderr of all three processes, without terminal colours.
    pub stderr: String,
    /// The JSON summary.
    pub summary: serde_json::Value,
}

/// Removes ANSI colour sequences (`ESC [ ... m`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Runs `triptych run` (a few small frames) with the hook set to `probe` (`<role>:<name>`),
/// plus `extra` arguments.
pub fn run(tag: &str, probe: &str, extra: &[&str]) -> ProbeRun {
    let dir = crate::scratch(&format!("sandbox-{tag}"));
    let json = dir.join("summary.json");
    let mut cmd = crate::triptych(&["run", "--frames", "6", "--size", "64x48", "--layers", "2"]);
    cmd.arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(&json)
        .args(extra)
        .args(crate::emulated_vm_args())
        .env("TRIPTYCH_BIN_DIR", crate::adversary_bin(&dir))
        .env(PROBE_ENV, probe)
        .env("TRIPTYCH_LOG", "info");
    let output = crate::output(cmd);
    let stderr = strip_ansi(&String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "probe {probe}: {}\n{stderr}",
        crate::show(&output)
    );
    let summary = crate::summary(&json);
    let _ = std::fs::remove_dir_all(&dir);
    ProbeRun {
        output,
        stderr,
        summary,
    }
}

impl ProbeRun {
    /// The outcome the process wrote for probe `role:name` (`failed EPERM`, `returned 0`, ...),
    /// if it lived to write one.
    pub fn outcome(&self, role: &str, name: &str) -> Option<String> {
        let prefix = format!("{PROBE_LINE}{role}:{name}: ");
        self.stderr.lines().find_map(|l| {
            l.find(&prefix)
                .map(|i| l[i + prefix.len()..].trim().to_owned())
        })
    }

    /// The violations in the summary.
    pub fn violations(&self) -> Vec<String> {
        self.summary["sandbox"]["violations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the run shows exactly one violation, of `role` calling `call`, in the summary,
    /// in the launcher's log, and as the cause of a crash record.
    pub fn check_one_violation(&self, role: &str, call: &str) -> Result<(), String> {
        let v = self.violations();
        let want = format!("sandbox violation in {role}: {call}(");
        if v.len() != 1 || !v[0].starts_with(&want) {
            return Err(format!(
                "summary violations {v:?}, expected one starting {want:?}"
            ));
        }
        if !self.stderr.contains(&v[0]) {
            return Err(format!("the launcher's log lacks {:?}", v[0]));
        }
        let crashes = self.summary["recovery"]["crashes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let cause = format!("{call}(");
        if !crashes.iter().any(|c| {
            c["role"] == role
                && c["cause"]["sandbox_violation"]["syscall"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(&cause))
        }) {
            return Err(format!(
                "no crash record with a sandbox violation cause: {crashes:?}"
            ));
        }
        Ok(())
    }
}

/// The name of an errno as the probes print it (`EPERM`).
pub fn errno_name(e: i32) -> String {
    format!("{:?}", nix::Error::from_raw(e))
}
