//! The fd numbers that seccomp rules and the launcher agree on.
//!
//! A filter compares arguments with constants only, so an fd that a rule names must sit at a
//! number fixed in advance. The launcher places the inherited ones between fork and exec
//! (`triptych_sys::jail`); the child claims each number once at start-up
//! (`triptych_sys::fixed::FixedFd`), which keeps the number occupied for the life of the process.
//!
//! The numbers sit well above what a process opens in the normal course of things (the lowest
//! free number is always taken first) and below [`crate::limits::RENDERER_NOFILE`], the
//! renderer's fd limit.

/// Write end of the pipe the `SIGSYS` handler reports trapped calls to (both children). The
/// launcher reads the other end.
pub const REPORT_FD: i32 = 200;

/// The child's end of the unix socket over which the launcher hands over links to the other
/// child: a pidfd of the GPU process, or a socket to it for the `SCM_RIGHTS` transport (both
/// children).
pub const HANDOVER_FD: i32 = 201;

/// The renderer's link to the current GPU process: the pidfd `pidfd_getfd` may use (the policy
/// allows no other), or the `SCM_RIGHTS` socket the GPU process sends fds on. Replaced in place
/// (`dup3`) when the GPU process is replaced, so rules never need another number.
pub const GPU_LINK_FD: i32 = 202;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_distinct_and_below_the_renderer_limit() {
        let all = [REPORT_FD, HANDOVER_FD, GPU_LINK_FD];
        for (i, a) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|b| a != b));
            assert!((*a as u64) < crate::limits::RENDERER_NOFILE);
            assert!(*a > 2);
        }
    }
}
