//! The report's parts: one [`Check`] per fact, each at one of three [`Level`]s, and how the
//! whole reads for people ([`Report::text`]) and what it means for the exit status
//! ([`Report::failures`]).
//!
//! The level of a check says what a `triptych run` with its default options does about the fact,
//! not whether the fact is the best there is: a missing optional feature with a working fallback
//! is a warning that names the fallback, and only what stops a run is a failure.

use serde::Serialize;

/// How a finding bears on `triptych run` with its default options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The feature is there and a run uses it (or nothing is missing).
    Ok,
    /// An optional feature is missing; the detail names the fallback a run takes instead.
    Warn,
    /// A run cannot work here: the detail says what is missing.
    Fail,
}

impl Level {
    /// `ok`, `warn` or `fail`: the form of the JSON's `level` fields.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }

    /// The tag that opens the check's line in the text report.
    pub fn tag(self) -> &'static str {
        match self {
            Level::Ok => "[ ok ]",
            Level::Warn => "[warn]",
            Level::Fail => "[FAIL]",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was looked at.
    pub name: &'static str,
    /// What a run does about it.
    pub level: Level,
    /// Whether the feature is there and used ([`Level::Ok`]); kept beside `level` for readers
    /// of the JSON that predate it.
    pub ok: bool,
    /// What was found and, below [`Level::Ok`], what a run does instead or why it cannot run.
    pub detail: String,
}

impl Check {
    /// A check at `level`.
    pub fn new(name: &'static str, level: Level, detail: impl Into<String>) -> Check {
        Check {
            name,
            level,
            ok: level == Level::Ok,
            detail: detail.into(),
        }
    }

    /// The feature is there and used.
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check::new(name, Level::Ok, detail)
    }

    /// An optional feature is missing; `detail` names the fallback.
    pub fn warn(name: &'static str, detail: impl Into<String>) -> Check {
        Check::new(name, Level::Warn, detail)
    }

    /// A run cannot work here; `detail` says why.
    pub fn fail(name: &'static str, detail: impl Into<String>) -> Check {
        Check::new(name, Level::Fail, detail)
    }
}

/// Every check, in the order they are printed.
#[derive(Debug, Default)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// The worst level of any check.
    pub fn level(&self) -> Level {
        self.checks
            .iter()
            .map(|c| c.level)
            .max()
            .unwrap_or(Level::Ok)
    }

    /// The names of the checks that stop a run.
    pub fn failures(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.level == Level::Fail)
            .map(|c| c.name)
            .collect()
    }

    /// The text report: a line per check, then `after` (the lines on what `--buffers auto`
    /// will choose), then the verdict.
    pub fn text(&self, after: &[String]) -> String {
        let mut s = String::from("triptych doctor\n");
        for c in &self.checks {
            s += &format!("  {} {:<40} {}\n", c.level.tag(), c.name, c.detail);
        }
        for line in after {
            s += &format!("  {line}\n");
        }
        let warnings = self
            .checks
            .iter()
            .filter(|c| c.level == Level::Warn)
            .count();
        let failures = self.failures();
        s += &match (failures.len(), warnings) {
            (0, 0) => "  result: no failures, no fallbacks: `triptych run` works here\n".to_owned(),
            (0, w) => format!(
                "  result: no failures, {w} {}: `triptych run` works here, taking the \
                 fallbacks the [warn] lines name\n",
                plural(w, "warning", "warnings")
            ),
            (n, _) => format!(
                "  result: {n} {} ({}): `triptych run` cannot work here until {} fixed\n",
                plural(n, "failure", "failures"),
                failures.join(", "),
                plural(n, "it is", "they are")
            ),
        };
        s
    }
}

fn plural(n: usize, one: &'static str, more: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        more
    }
}

/// What `doctor` ends with when a check failed: the exit status is then
/// [`crate::exit::Exit::Failed`].
#[derive(Debug, thiserror::Error)]
#[error("`triptych run` cannot work on this machine: {} failed (the report's [FAIL] lines say why)", .0.join(", "))]
pub struct Failed(pub Vec<&'static str>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_from_ok_to_fail_and_print_their_forms() {
        assert!(Level::Ok < Level::Warn && Level::Warn < Level::Fail);
        for (l, s, tag) in [
            (Level::Ok, "ok", "[ ok ]"),
            (Level::Warn, "warn", "[warn]"),
            (Level::Fail, "fail", "[FAIL]"),
        ] {
            assert_eq!(l.to_string(), s);
            assert_eq!(serde_json::to_value(l).expect("a level serializes"), s);
            assert_eq!(l.tag(), tag);
        }
    }

    #[test]
    fn a_check_is_ok_only_at_level_ok() {
        assert!(Check::ok("a", "x").ok);
        assert!(!Check::warn("a", "x").ok);
        assert!(!Check::fail("a", "x").ok);
        let v = serde_json::to_value(Check::warn("a", "x")).expect("a check serializes");
        assert_eq!(v["level"], "warn");
        assert_eq!(v["ok"], false);
    }

    #[test]
    fn warnings_leave_a_working_machine_and_failures_are_named() {
        let mut r = Report {
            checks: vec![Check::ok("kernel", "6.1"), Check::warn("/dev/dri", "none")],
        };
        assert_eq!(r.level(), Level::Warn);
        assert!(r.failures().is_empty());
        let text = r.text(&["fences: pipe".to_owned()]);
        assert!(text.contains("  [warn] /dev/dri"), "{text}");
        assert!(text.contains("  fences: pipe\n"), "{text}");
        assert!(text.contains("no failures, 1 warning:"), "{text}");
        assert!(!text.contains("[FAIL]"), "{text}");
        r.checks.push(Check::fail("EGL", "no libEGL"));
        assert_eq!(r.level(), Level::Fail);
        assert_eq!(r.failures(), ["EGL"]);
        let text = r.text(&[]);
        assert!(text.contains("  [FAIL] EGL"), "{text}");
        assert!(text.contains("1 failure (EGL)"), "{text}");
        assert!(Failed(r.failures()).to_string().contains("EGL failed"));
    }
}
