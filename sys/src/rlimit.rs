//! Resource limits of the calling process: `getrlimit(2)` and `setrlimit(2)`.
//!
//! Two users: the GPU process raises its soft `RLIMIT_NOFILE` so the export window's fd numbers
//! ([`crate::fd::ExportWindow`]) can be used, and each sandboxed role lowers its limits, soft
//! and hard together, right before its seccomp filter goes on (the table is
//! `triptych_sandbox::limits`). Lowering a hard limit needs no privilege and cannot be undone by
//! the process; raising one needs `CAP_SYS_RESOURCE`. Limits are per process and inherited
//! across `fork` and `execve`.
//!
//! The calls are nix's (the C library's `getrlimit` and `setrlimit`); [`Resource`] is nix's
//! type, re-exported so the other crates name a limit without depending on nix. See
//! <https://man7.org/linux/man-pages/man2/getrlimit.2.html>.

#![forbid(unsafe_code)]

pub use nix::sys::resource::Resource;

use crate::Errno;

/// The soft and hard limits of `resource`.
pub fn get(resource: Resource) -> Result<(u64, u64), Errno> {
    nix::sys::resource::getrlimit(resource)
}

/// Sets the soft and hard limits of `resource`.
pub fn set(resource: Resource, soft: u64, hard: u64) -> Result<(), Errno> {
    nix::sys::resource::setrlimit(resource, soft, hard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_what_is_there_round_trips() {
        // Limits are per process: set them to what they already are, so other tests see no
        // change.
        let (soft, hard) = get(Resource::RLIMIT_NOFILE).expect("get");
        assert!(soft <= hard);
        set(Resource::RLIMIT_NOFILE, soft, hard).expect("set");
        assert_eq!(
            get(Resource::RLIMIT_NOFILE).expect("get again"),
            (soft, hard)
        );
    }
}
