//! A trapped system call, as the launcher logs and records it.
//!
//! The child's `SIGSYS` handler writes a fixed-size record (`triptych_sys::seccomp::TrapRecord`)
//! into a pipe; the launcher reads it, names the call ([`crate::names`]) and prints
//! `sandbox violation in <role>: <name>(<args>)`, records a `sandbox_violation` instant in the
//! trace and a line in the run summary.

use triptych_sys::seccomp::TrapRecord;

/// One sandbox violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The role of the process.
    pub role: String,
    /// What the handler recorded.
    pub record: TrapRecord,
    /// The call's name.
    pub name: String,
}

impl Violation {
    /// Names the call of `record`, made by a process of `role`.
    pub fn new(role: &str, record: TrapRecord) -> Self {
        Self {
            role: role.to_owned(),
            name: crate::names::name(i64::from(record.nr)),
            record,
        }
    }

    /// `name(arg0, ..., arg5)` with the arguments in hex.
    pub fn call(&self) -> String {
        let args: Vec<String> = self.record.args.iter().map(|a| format!("{a:#x}")).collect();
        format!("{}({})", self.name, args.join(", "))
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sandbox violation in {}: {}", self.role, self.call())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use triptych_sys::abi;

    #[test]
    fn formats_the_line() {
        let v = Violation::new(
            "renderer",
            TrapRecord {
                arch: 0,
                nr: abi::SYS_ptrace as i32,
                pid: 7,
                tid: 8,
                args: [16, 42, 0, 0, 0, 0],
            },
        );
        assert_eq!(
            v.to_string(),
            "sandbox violation in renderer: ptrace(0x10, 0x2a, 0x0, 0x0, 0x0, 0x0)"
        );
    }
}
