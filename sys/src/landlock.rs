//! The kernel's Landlock ABI version, for `triptych doctor` and the run summary.
//!
//! The GPU process confines itself with the `landlock` crate, which negotiates the ABI on its own
//! and reports what it enforced. What the crate does not offer is asking the kernel for its ABI
//! version without building a ruleset (its query is private), which the launcher needs to say
//! what a run *would* get; that one call lives here. See `landlock_create_ruleset(2)`
//! (`LANDLOCK_CREATE_RULESET_VERSION`).

/// `LANDLOCK_CREATE_RULESET_VERSION` from `include/uapi/linux/landlock.h`.
pub const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1 << 0;

/// `SYS_landlock_create_ruleset`, the same number on every architecture (`asm-generic`).
pub const SYS_LANDLOCK_CREATE_RULESET: i64 = 444;

/// The kernel's Landlock ABI version, or why there is none (`ENOSYS`: not built in;
/// `EOPNOTSUPP`: built in but not enabled at boot, e.g. missing from `lsm=`).
pub fn abi() -> Result<u32, String> {
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag, the call reads and
    // writes no memory and creates nothing; it returns the ABI version or -1 with errno set.
    let r = unsafe {
        libc::syscall(
            SYS_LANDLOCK_CREATE_RULESET,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if r >= 1 {
        return u32::try_from(r).map_err(|_| format!("an ABI version out of range: {r}"));
    }
    Err(match nix::Error::last() {
        nix::Error::ENOSYS => "the kernel is built without Landlock (ENOSYS)".to_owned(),
        nix::Error::EOPNOTSUPP => {
            "Landlock is built in but not enabled at boot (EOPNOTSUPP: add it to lsm=)".to_owned()
        }
        e => format!("landlock_create_ruleset(VERSION) failed: {e}"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_syscall_number_is_the_generic_one() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            super::SYS_LANDLOCK_CREATE_RULESET,
            libc::SYS_landlock_create_ruleset
        );
    }
}
