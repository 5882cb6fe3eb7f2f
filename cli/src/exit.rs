//! The launcher's exit statuses, defined once: `main` exits with them and `--help` lists them
//! ([`HELP`]), so what a script can rely on is written in one place.
//!
//! A run that is interrupted (Ctrl-C, `SIGTERM`, `SIGHUP`) or whose window is closed shuts its
//! children down, prints its summary and exits with [`Exit::Success`]: that is the normal end of
//! a run in a window, and a clean shutdown is not a failure.

/// What the process's exit status says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// The command did what it was asked.
    Success = 0,
    /// It failed: a bad `--scene` file (its located error is logged; no child was started),
    /// a child could not be kept running (its restart budget was spent), `doctor` found what
    /// stops a run on this machine (a `[FAIL]` line; warnings alone exit 0), a file could not
    /// be read or written, or any other error, which is logged.
    Failed = 1,
    /// The command line was not understood (clap prints what and exits with this itself).
    Usage = 2,
    /// `run --verify`: the frame checked differs from the reference composite, or no frame was
    /// presented to check.
    Mismatch = 3,
}

impl Exit {
    /// The status of a command that returned `e`.
    pub fn of(e: &anyhow::Error) -> Exit {
        if e.downcast_ref::<VerifyFailed>().is_some() {
            Exit::Mismatch
        } else {
            Exit::Failed
        }
    }

    /// Ends the process with this status.
    pub fn exit(self) -> ! {
        std::process::exit(self as i32)
    }
}

/// `--verify` found a difference (or had nothing to check); exits with [`Exit::Mismatch`].
#[derive(Debug, thiserror::Error)]
#[error("--verify: {0}")]
pub struct VerifyFailed(pub String);

/// The exit statuses, for `--help`.
pub const HELP: &str = "\
Exit status:
  0  success; also after Ctrl-C, SIGTERM or closing the window (a clean shutdown)
  1  failure: a bad --scene file, a child could not be kept running, doctor found
     what stops a run here (a [FAIL] line), or another error
  2  usage: the command line was not understood
  3  run --verify: the frame checked differs from the reference composite";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_documented_ones() {
        for (e, n) in [
            (Exit::Success, 0),
            (Exit::Failed, 1),
            (Exit::Usage, 2),
            (Exit::Mismatch, 3),
        ] {
            assert_eq!(e as i32, n);
            assert!(HELP.contains(&format!("\n  {n}  ")), "{n} is not in --help");
        }
        // clap's own status for a bad command line is the one documented.
        assert_eq!(
            clap::Error::new(clap::error::ErrorKind::UnknownArgument).exit_code(),
            Exit::Usage as i32
        );
    }

    #[test]
    fn a_verify_failure_has_its_own_status_even_with_context() {
        let e = anyhow::Error::new(VerifyFailed("frame 3 differs".into()));
        assert_eq!(Exit::of(&e), Exit::Mismatch);
        let e = anyhow::Error::new(VerifyFailed("x".into())).context("running");
        assert_eq!(Exit::of(&e), Exit::Mismatch);
        assert_eq!(Exit::of(&anyhow::anyhow!("spawning")), Exit::Failed);
    }
}
