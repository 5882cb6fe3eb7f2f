//! The names the test hook of the escape tests uses. Only the names live here, in every build:
//! the code that reads the hook and makes the attempts (`attempts`, and the children's probe
//! modules) is compiled only into debug builds (`cfg(debug_assertions)`: what `cargo test`
//! runs), so a release binary neither reads [`PROBE_ENV`] nor contains the string; the test
//! command checks that on the release binaries.

/// The environment variable of the test hook: `<role>:<name>`.
pub const PROBE_ENV: &str = "TRIPTYCH_SANDBOX_PROBE";

/// The prefix of the line a probe writes to stderr: `sandbox probe <role>:<name>: <outcome>`.
pub const PROBE_LINE: &str = "sandbox probe ";
