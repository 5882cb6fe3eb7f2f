//! System call names, for the launcher's `sandbox violation in <role>: <name>(<args>)` line.
//!
//! Names come from the [`syscalls`](https://docs.rs/syscalls) crate's table for the target
//! architecture (generated from the kernel's own syscall tables), so they exist for every
//! architecture the project builds for; numbers with the x32 bit set are named as x32 calls;
//! numbers no table knows fall back to the policies' own rule names, then to `syscall_<n>`.

/// `__X32_SYSCALL_BIT`.
const X32: i64 = triptych_sys::seccomp::X32_SYSCALL_BIT;

/// The name of system call `nr`: from the table, else from the policies' own rules, else
/// `syscall_<nr>` (x32 calls as `x32:<name>`).
pub fn name(nr: i64) -> String {
    if let Some(sysno) = usize::try_from(nr).ok().and_then(syscalls::Sysno::new) {
        return sysno.name().to_owned();
    }
    if nr & X32 != 0 && nr > 0 {
        return format!("x32:{}", name(nr & !X32));
    }
    let policies = [
        crate::renderer::policy(&crate::renderer::Params::example()),
        crate::gpu::policy(&crate::gpu::Params::example()),
    ];
    for p in &policies {
        if let Some(r) = p.rules.iter().find(|r| r.nr == nr) {
            return r.name.to_owned();
        }
        if let Some(r) = p.refusals.iter().find(|r| r.nr == nr) {
            return r.name.to_owned();
        }
    }
    format!("syscall_{nr}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use triptych_sys::abi;

    #[test]
    fn names_known_numbers() {
        assert_eq!(name(abi::SYS_openat), "openat");
        assert_eq!(name(abi::SYS_pidfd_getfd), "pidfd_getfd");
        assert_eq!(name(999), "syscall_999");
    }

    #[test]
    fn every_number_a_policy_uses_has_the_libc_name() {
        // The policies name calls by the C library's constants (`triptych_sys::abi`); the table
        // must agree with each of them.
        for p in [
            crate::renderer::policy(&crate::renderer::Params::example()),
            crate::gpu::policy(&crate::gpu::Params::example()),
        ] {
            for r in &p.rules {
                assert_eq!(name(r.nr), r.name, "rule {}", r.id);
            }
            for r in &p.refusals {
                assert_eq!(name(r.nr), r.name);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_64_numbers() {
        assert_eq!(name(0), "read");
        assert_eq!(name(59), "execve");
        assert_eq!(name(X32 | 2), "x32:open");
    }
}
