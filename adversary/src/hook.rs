//! The names the escape tests' probe uses: the variable that names a probe, and the prefix of
//! the line that reports its outcome. No product binary reads the variable or writes the line:
//! only the adversary binaries do (the test command checks the release binaries for both).

/// The environment variable of the test hook: `<role>:<name>`.
pub const PROBE_ENV: &str = "TRIPTYCH_SANDBOX_PROBE";

/// The prefix of the line a probe writes to stderr: `sandbox probe <role>:<name>: <outcome>`.
pub const PROBE_LINE: &str = "sandbox probe ";
