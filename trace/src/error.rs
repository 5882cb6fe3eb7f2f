//! Why a trace file could not be read.
//!
//! Every structural error names where it is: the top-level field, or the
//! index of the offending entry in `traceEvents` together with its phase and
//! field, so a person can find it in the file with a JSON viewer.

/// A trace file that [`parse_chrome_json`](crate::parse_chrome_json) refuses.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The bytes are not JSON (or could not be read); the message carries the
    /// line and column.
    #[error("trace file is not readable JSON: {0}")]
    Json(#[from] serde_json::Error),

    /// A field of the top-level object is missing or wrong.
    #[error("trace file top level: `{field}` {problem}")]
    TopLevel {
        /// The field, as a JSON path such as `otherData.clock_origin_ns`.
        field: &'static str,
        /// What is wrong with it, with the value found.
        problem: String,
    },

    /// An entry of `traceEvents` is malformed.
    #[error("trace event #{index} (ph {ph:?}): `{field}` {problem}")]
    Event {
        /// Position in the `traceEvents` array, from 0.
        index: usize,
        /// The entry's phase, or `"?"` when it has none.
        ph: String,
        /// The field, such as `dur` or `args.frame`.
        field: String,
        /// What is wrong with it, with the value found.
        problem: String,
    },
}
