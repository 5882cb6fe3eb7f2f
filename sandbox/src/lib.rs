//! triptych's seccomp policies, as data: one policy per process role, each rule commented, every
//! number named by the constant the code itself uses.
//!
//! # What this crate owns
//!
//! - the rule model ([`Rule`], [`Arg`], [`Policy`]) and its compilation into seccomp-bpf
//!   programs with [seccompiler](https://docs.rs/seccompiler);
//! - the policies: [`renderer::policy`] and [`gpu::policy`], both built on [`common::rules`];
//! - the fd numbers the rules name ([`fds`]) and the resource limits of each role ([`limits`]);
//! - naming a trapped call for the launcher's log line ([`names`], [`report`]).
//!
//! The catalogue of escape attempts the tests make sandboxed processes perform is not here: it
//! is the adversary crate's (`triptych-adversary`), which no product crate depends on.
//!
//! # How a policy becomes filters
//!
//! A [`Rule`] allows one system call when all of its argument conditions hold; several rules for
//! one call are alternatives. What happens to a call that no rule allows depends on the call:
//!
//! - by default it **traps**: the kernel skips it and sends `SIGSYS`, whose handler
//!   (`triptych_sys::seccomp`) reports the call to the launcher and ends the process;
//! - a call whose rule says [`Otherwise::Errno`] instead **fails with that errno**;
//! - a [`Refusal`] fails with its errno, always (`clone3`, answered `ENOSYS` so the C library
//!   falls back to `clone`, whose flags a filter can inspect) or when its conditions hold (the
//!   renderer's `pidfd_getfd` of a number outside every export window: a hostile description
//!   must cost a rejected frame, not a crash, and a scan of every fd number must be able to run;
//!   a number in another view's window traps, as every call no rule allows does).
//!
//! seccompiler builds filters with one match action and one mismatch action, so a policy
//! compiles to several programs, installed together (`SECCOMP_FILTER_FLAG_TSYNC`, every thread):
//!
//! 1. one *errno filter* per errno value: mismatch `ALLOW`, match `ERRNO(e)`, matching exactly
//!    the calls to refuse (for a guarded rule, the negation of its conditions; for a conditional
//!    refusal, its conditions);
//! 2. the *allowlist*: mismatch `TRAP`, match `ALLOW`; errno-guarded calls and refusals appear
//!    in it unconditionally, because their conditions are enforced by filter 1, and a
//!    conditional refusal with its conditions, so that what it refuses gets its errno.
//!
//! The kernel runs every installed filter and applies the most severe answer (`KILL` > `TRAP` >
//! `ERRNO` > ... > `ALLOW`, `seccomp_run_filters` in `kernel/seccomp.c`): an unlisted call traps
//! whatever the errno filters say, and a guarded call with bad arguments gets its errno because
//! the allowlist allows it and the errno filter does not. The errno filters go on first, because
//! once the allowlist is on, `seccomp(2)` itself traps.
//!
//! # Lifetime
//!
//! A policy is built right before it is installed, from the process's own facts (its pid, the
//! export window, the transport); once installed a filter cannot be removed or relaxed, only
//! tightened, and it is inherited by every thread created later.
//!
//! # Numbers, and the calls this crate makes
//!
//! A policy is data: its rules name system calls, flags and errnos, and make none of the calls.
//! Those numbers are the C library's constants, taken from `triptych_sys::abi`, the kernel
//! layer's list of the constants other crates may name; like every product crate but
//! `triptych-sys`, this one does not depend on `libc` or `nix` itself (`scripts/test.sh`
//! checks it), so each number a policy uses is one that list names. The calls this crate does
//! make go through libraries: installing the filters (seccompiler, and `triptych_sys::notify`
//! for the one with a listener), Landlock (the `landlock` crate) and the resource limits
//! (`triptych_sys::rlimit`).
//!
//! See `Documentation/userspace-api/seccomp_filter.rst` and `seccomp(2)`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod common;
pub mod fds;
pub mod gpu;
pub mod limits;
pub mod names;
pub mod renderer;
pub mod report;

use std::collections::BTreeMap;

use triptych_sys::abi;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// How wide an argument comparison is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// The low 32 bits (`int`, `unsigned int` arguments: fds, flags, ioctl requests).
    Dword,
    /// All 64 bits (`unsigned long` arguments: protection bits, clone flags, pointers).
    Qword,
}

/// A comparison of one argument with a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// Equal.
    Eq(u64),
    /// Not equal.
    Ne(u64),
    /// Unsigned less than.
    Lt(u64),
    /// Unsigned greater or equal.
    Ge(u64),
    /// `arg & mask == value`.
    Masked {
        /// The bits looked at.
        mask: u64,
        /// What they must be.
        value: u64,
    },
}

impl Cmp {
    /// The opposite comparison, where seccompiler can express it.
    fn negated(self) -> Option<Cmp> {
        match self {
            Cmp::Eq(v) => Some(Cmp::Ne(v)),
            Cmp::Ne(v) => Some(Cmp::Eq(v)),
            Cmp::Lt(v) => Some(Cmp::Ge(v)),
            Cmp::Ge(v) => Some(Cmp::Lt(v)),
            Cmp::Masked { .. } => None,
        }
    }

    /// Whether `value` satisfies the comparison (at width `w`).
    pub fn holds(self, w: Width, value: u64) -> bool {
        let v = match w {
            Width::Dword => value & 0xffff_ffff,
            Width::Qword => value,
        };
        match self {
            Cmp::Eq(c) => v == c,
            Cmp::Ne(c) => v != c,
            Cmp::Lt(c) => v < c,
            Cmp::Ge(c) => v >= c,
            Cmp::Masked { mask, value } => v & mask == value,
        }
    }
}

/// One argument condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    /// Argument index, 0 to 5.
    pub index: u8,
    /// Comparison width.
    pub width: Width,
    /// The comparison.
    pub cmp: Cmp,
    /// The constant's name, as the code spells it (for reading and for error messages).
    pub what: &'static str,
}

impl Arg {
    /// `arg[index] == value` on the low 32 bits.
    pub fn eq32(index: u8, value: u64, what: &'static str) -> Arg {
        Arg {
            index,
            width: Width::Dword,
            cmp: Cmp::Eq(value),
            what,
        }
    }

    /// `arg[index] == value` on all 64 bits.
    pub fn eq64(index: u8, value: u64, what: &'static str) -> Arg {
        Arg {
            index,
            width: Width::Qword,
            cmp: Cmp::Eq(value),
            what,
        }
    }

    /// `arg[index] & mask == value` on all 64 bits.
    pub fn masked64(index: u8, mask: u64, value: u64, what: &'static str) -> Arg {
        Arg {
            index,
            width: Width::Qword,
            cmp: Cmp::Masked { mask, value },
            what,
        }
    }

    /// `arg[index] & mask == value` on the low 32 bits (`int` arguments, whose upper half the
    /// kernel ignores).
    pub fn masked32(index: u8, mask: u64, value: u64, what: &'static str) -> Arg {
        Arg {
            index,
            width: Width::Dword,
            cmp: Cmp::Masked { mask, value },
            what,
        }
    }

    /// `lo <= arg[index] < hi` on the low 32 bits (two conditions).
    pub fn range32(index: u8, lo: u64, hi: u64, what: &'static str) -> [Arg; 2] {
        [
            Arg {
                index,
                width: Width::Dword,
                cmp: Cmp::Ge(lo),
                what,
            },
            Arg {
                index,
                width: Width::Dword,
                cmp: Cmp::Lt(hi),
                what,
            },
        ]
    }

    fn condition(&self, cmp: Cmp) -> Result<SeccompCondition, PolicyError> {
        let len = match self.width {
            Width::Dword => SeccompCmpArgLen::Dword,
            Width::Qword => SeccompCmpArgLen::Qword,
        };
        let (op, value) = match cmp {
            Cmp::Eq(v) => (SeccompCmpOp::Eq, v),
            Cmp::Ne(v) => (SeccompCmpOp::Ne, v),
            Cmp::Lt(v) => (SeccompCmpOp::Lt, v),
            Cmp::Ge(v) => (SeccompCmpOp::Ge, v),
            Cmp::Masked { mask, value } => (SeccompCmpOp::MaskedEq(mask), value),
        };
        SeccompCondition::new(self.index, len, op, value).map_err(|e| {
            PolicyError::Compile(format!("argument {} ({}): {e}", self.index, self.what))
        })
    }
}

/// What happens to a call when none of its rules allows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Otherwise {
    /// `SIGSYS`: reported, then the process dies.
    Trap,
    /// The call fails with this errno and the process goes on.
    Errno(i32),
}

/// One allowed system call, possibly only with some arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// A short name for the rule, unique in its policy (`"ioctl:dma-buf-sync"`).
    pub id: &'static str,
    /// The system call number (`triptych_sys::abi::SYS_*` or this workspace's own constants).
    pub nr: i64,
    /// Its name.
    pub name: &'static str,
    /// Conditions that must all hold; empty means any arguments.
    pub when: Vec<Arg>,
    /// What happens when no rule for this call holds.
    pub otherwise: Otherwise,
    /// Why the process needs the call.
    pub why: &'static str,
}

impl Rule {
    /// Allows `name` with any arguments.
    pub fn any(nr: i64, name: &'static str, why: &'static str) -> Rule {
        Rule {
            id: name,
            nr,
            name,
            when: Vec::new(),
            otherwise: Otherwise::Trap,
            why,
        }
    }

    /// Allows `name` only when `when` holds; anything else traps.
    pub fn with(
        id: &'static str,
        nr: i64,
        name: &'static str,
        when: Vec<Arg>,
        why: &'static str,
    ) -> Rule {
        Rule {
            id,
            nr,
            name,
            when,
            otherwise: Otherwise::Trap,
            why,
        }
    }

    /// Allows `name` only when `when` holds; anything else fails with `errno`.
    pub fn guarded(
        id: &'static str,
        nr: i64,
        name: &'static str,
        when: Vec<Arg>,
        errno: i32,
        why: &'static str,
    ) -> Rule {
        Rule {
            id,
            nr,
            name,
            when,
            otherwise: Otherwise::Errno(errno),
            why,
        }
    }

    /// Whether the rule allows a call with these arguments.
    pub fn allows(&self, args: &[u64; 6]) -> bool {
        self.when
            .iter()
            .all(|a| a.cmp.holds(a.width, args[a.index as usize]))
    }
}

/// A call that fails with an errno: always, or only when all its conditions hold (the call is
/// otherwise up to the rules, and traps where none allows it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The system call number.
    pub nr: i64,
    /// Its name.
    pub name: &'static str,
    /// The errno.
    pub errno: i32,
    /// Why.
    pub why: &'static str,
    /// When it is refused (none: always).
    pub when: Vec<Arg>,
}

impl Refusal {
    /// Call `nr` always fails with `errno`.
    pub fn always(nr: i64, name: &'static str, errno: i32, why: &'static str) -> Refusal {
        Refusal {
            nr,
            name,
            errno,
            why,
            when: Vec::new(),
        }
    }

    /// Whether it refuses a call with these arguments.
    pub fn holds(&self, args: &[u64; 6]) -> bool {
        self.when
            .iter()
            .all(|a| a.cmp.holds(a.width, args[a.index as usize]))
    }
}

/// The policy of one role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The role name (`"renderer"`, `"gpu"`): the process name, its spans, its crash records.
    pub role: &'static str,
    /// What is allowed.
    pub rules: Vec<Rule>,
    /// What always fails with an errno.
    pub refusals: Vec<Refusal>,
}

/// Errors building or installing a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy contradicts itself.
    #[error("policy {role}: {problem}")]
    Invalid {
        /// The role.
        role: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// seccompiler refused to build a program.
    #[error("compiling the filter failed: {0}")]
    Compile(String),
    /// The kernel refused a filter.
    #[error("installing the {which} filter on every thread failed: {error}")]
    Install {
        /// Which program.
        which: String,
        /// The error.
        error: String,
    },
}

/// The BPF programs of a policy, in installation order.
#[derive(Debug)]
pub struct Compiled {
    /// `(what, program)`: errno filters first, the allowlist last.
    pub programs: Vec<(String, BpfProgram)>,
}

/// What was installed.
#[derive(Debug)]
pub struct Installed {
    /// The user-notification listener of the allowlist, when it was installed with one
    /// ([`Policy::install_notifying`]); whoever holds it hears of every refused call.
    pub listener: Option<std::os::fd::OwnedFd>,
    /// Filters installed.
    pub filters: usize,
    /// Rules in the policy.
    pub rules: usize,
    /// BPF instructions in all.
    pub instructions: usize,
}

/// Every condition of `when`, as seccompiler takes them (all must hold).
fn conditions(when: &[Arg]) -> Result<Vec<SeccompCondition>, PolicyError> {
    when.iter().map(|a| a.condition(a.cmp)).collect()
}

fn target_arch() -> Result<TargetArch, PolicyError> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| PolicyError::Compile(format!("{e}")))
}

impl Policy {
    /// The rules of call `nr`.
    pub fn rules_of(&self, nr: i64) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(move |r| r.nr == nr)
    }

    /// The rule called `id`.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Whether the policy lets call `nr` with `args` run (`Ok`), or how it refuses it.
    /// This is the policy's meaning; the compiled filters must agree with it.
    pub fn decide(&self, nr: i64, args: &[u64; 6]) -> Result<(), Otherwise> {
        if let Some(r) = self.refusals.iter().find(|r| r.nr == nr && r.holds(args)) {
            return Err(Otherwise::Errno(r.errno));
        }
        let mut any = false;
        let mut otherwise = Otherwise::Trap;
        for r in self.rules_of(nr) {
            any = true;
            otherwise = r.otherwise;
            if r.allows(args) {
                return Ok(());
            }
        }
        Err(if any { otherwise } else { Otherwise::Trap })
    }

    /// Checks the policy for contradictions.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |problem: String| PolicyError::Invalid {
            role: self.role,
            problem,
        };
        let mut ids = std::collections::BTreeSet::new();
        for r in &self.rules {
            if !ids.insert(r.id) {
                return Err(bad(format!("rule id {:?} is used twice", r.id)));
            }
            if r.when.iter().any(|a| a.index > 5) {
                return Err(bad(format!("rule {}: argument index above 5", r.id)));
            }
            let same: Vec<&Rule> = self.rules_of(r.nr).collect();
            if same.iter().any(|o| o.otherwise != r.otherwise) {
                return Err(bad(format!(
                    "{}: rules disagree on what happens otherwise",
                    r.name
                )));
            }
            if let Otherwise::Errno(_) = r.otherwise {
                if same.len() != 1 {
                    return Err(bad(format!(
                        "{}: an errno-guarded call may have one rule only",
                        r.name
                    )));
                }
                if r.when.iter().any(|a| a.cmp.negated().is_none()) {
                    return Err(bad(format!(
                        "{}: an errno-guarded rule cannot use a masked comparison",
                        r.name
                    )));
                }
            }
            if same.iter().any(|o| o.when.is_empty()) && same.len() > 1 {
                return Err(bad(format!(
                    "{}: an unconditional rule makes its other rules pointless",
                    r.name
                )));
            }
        }
        for f in &self.refusals {
            let always = |o: &&Refusal| o.nr == f.nr && o.when.is_empty();
            if f.when.is_empty() && self.rules_of(f.nr).next().is_some() {
                return Err(bad(format!("{} is both allowed and refused", f.name)));
            }
            if !f.when.is_empty() && self.rules_of(f.nr).any(|r| r.when.is_empty()) {
                return Err(bad(format!(
                    "{}: a conditional refusal of a call a rule allows always",
                    f.name
                )));
            }
            if !f.when.is_empty() && self.refusals.iter().find(always).is_some() {
                return Err(bad(format!(
                    "{}: a conditional refusal of a call refused always",
                    f.name
                )));
            }
            if self
                .rules_of(f.nr)
                .any(|r| matches!(r.otherwise, Otherwise::Errno(_)))
            {
                return Err(bad(format!(
                    "{}: a refusal of an errno-guarded call",
                    f.name
                )));
            }
            if f.when.iter().any(|a| a.index > 5) {
                return Err(bad(format!(
                    "refusal of {}: argument index above 5",
                    f.name
                )));
            }
        }
        Ok(())
    }

    /// Compiles the policy into its programs (see the crate docs).
    pub fn compile(&self) -> Result<Compiled, PolicyError> {
        self.validate()?;
        let arch = target_arch()?;
        let compile_err = |e: seccompiler::BackendError| PolicyError::Compile(e.to_string());
        // Errno filters, one per errno value.
        let mut by_errno: BTreeMap<i32, BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
        for r in &self.rules {
            if let Otherwise::Errno(e) = r.otherwise {
                // Refused when any condition fails: one single-condition rule per negation.
                let mut chain = Vec::new();
                for a in &r.when {
                    let neg = a
                        .cmp
                        .negated()
                        .ok_or_else(|| PolicyError::Compile(format!("{}: no negation", r.id)))?;
                    chain.push(SeccompRule::new(vec![a.condition(neg)?]).map_err(compile_err)?);
                }
                if !chain.is_empty() {
                    by_errno.entry(e).or_default().insert(r.nr, chain);
                }
            }
        }
        for f in &self.refusals {
            let chain = by_errno
                .entry(f.errno)
                .or_default()
                .entry(f.nr)
                .or_default();
            // An empty chain refuses every call of the number.
            if !f.when.is_empty() {
                let conds = conditions(&f.when)?;
                chain.push(SeccompRule::new(conds).map_err(compile_err)?);
            }
        }
        let mut programs = Vec::new();
        for (errno, rules) in by_errno {
            let filter = SeccompFilter::new(
                rules,
                SeccompAction::Allow,
                SeccompAction::Errno(errno as u32),
                arch,
            )
            .map_err(compile_err)?;
            let prog: BpfProgram = filter.try_into().map_err(compile_err)?;
            programs.push((format!("{} errno {errno}", self.role), prog));
        }
        // The allowlist.
        let mut allow: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for r in &self.rules {
            let chain = allow.entry(r.nr).or_default();
            if r.when.is_empty() || matches!(r.otherwise, Otherwise::Errno(_)) {
                chain.clear();
                continue;
            }
            let conds = conditions(&r.when)?;
            chain.push(SeccompRule::new(conds).map_err(compile_err)?);
        }
        for f in &self.refusals {
            if f.when.is_empty() {
                allow.insert(f.nr, Vec::new());
                continue;
            }
            // What it refuses must reach filter 1's errno, not trap here.
            let conds = conditions(&f.when)?;
            allow
                .entry(f.nr)
                .or_default()
                .push(SeccompRule::new(conds).map_err(compile_err)?);
        }
        let filter = SeccompFilter::new(allow, SeccompAction::Trap, SeccompAction::Allow, arch)
            .map_err(compile_err)?;
        let prog: BpfProgram = filter.try_into().map_err(compile_err)?;
        programs.push((format!("{} allowlist", self.role), prog));
        Ok(Compiled { programs })
    }

    /// Sets `no_new_privs` and installs the policy on every thread of the calling process.
    /// Irreversible.
    pub fn install(&self) -> Result<Installed, PolicyError> {
        let compiled = self.compile()?;
        let instructions = compiled.programs.iter().map(|(_, p)| p.len()).sum();
        let filters = compiled.programs.len();
        for (which, prog) in &compiled.programs {
            seccompiler::apply_filter_all_threads(prog).map_err(|e| PolicyError::Install {
                which: which.clone(),
                error: e.to_string(),
            })?;
        }
        Ok(Installed {
            listener: None,
            filters,
            rules: self.rules.len() + self.refusals.len(),
            instructions,
        })
    }

    /// Like [`Policy::install`], but a call the allowlist refuses is reported to whoever holds
    /// the returned listener (`SECCOMP_RET_USER_NOTIF`, see `triptych_sys::notify`) instead of
    /// trapping: the kernel suspends the calling thread and queues the call, with its arguments,
    /// on the listener. The caller hands the listener over and closes its copy at once.
    ///
    /// seccompiler has no user-notification action, so the allowlist is compiled with `TRAP`
    /// as its mismatch action and every `RET TRAP` instruction is then rewritten to
    /// `RET USER_NOTIF`; the program has no other return of that value.
    pub fn install_notifying(&self) -> Result<Installed, PolicyError> {
        let compiled = self.compile()?;
        let instructions = compiled.programs.iter().map(|(_, p)| p.len()).sum();
        let filters = compiled.programs.len();
        let mut listener = None;
        let last = compiled.programs.len().saturating_sub(1);
        for (i, (which, prog)) in compiled.programs.iter().enumerate() {
            if i < last {
                seccompiler::apply_filter_all_threads(prog).map_err(|e| PolicyError::Install {
                    which: which.clone(),
                    error: e.to_string(),
                })?;
                continue;
            }
            let program = notifying(prog);
            listener = Some(
                triptych_sys::notify::install_with_listener(&program).map_err(|e| {
                    PolicyError::Install {
                        which: which.clone(),
                        error: e.to_string(),
                    }
                })?,
            );
        }
        Ok(Installed {
            listener,
            filters,
            rules: self.rules.len() + self.refusals.len(),
            instructions,
        })
    }
}

/// `BPF_RET | BPF_K`: return the constant `k`.
const BPF_RET_K: u16 = 0x06;

/// `prog` with every `RET TRAP` turned into `RET USER_NOTIF`.
fn notifying(prog: &BpfProgram) -> Vec<abi::sock_filter> {
    use triptych_sys::notify::{SECCOMP_RET_TRAP, SECCOMP_RET_USER_NOTIF};
    prog.iter()
        .map(|i| abi::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: if i.code == BPF_RET_K && i.k == SECCOMP_RET_TRAP {
                SECCOMP_RET_USER_NOTIF
            } else {
                i.k
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notifying_allowlist_returns_user_notif_where_it_trapped() {
        let compiled = toy().compile().expect("compile");
        let (_, allow) = compiled.programs.last().expect("allowlist");
        let traps = allow
            .iter()
            .filter(|i| i.code == BPF_RET_K && i.k == triptych_sys::notify::SECCOMP_RET_TRAP)
            .count();
        assert!(traps > 0);
        let n = notifying(allow);
        assert_eq!(n.len(), allow.len());
        let notifs = n
            .iter()
            .filter(|i| i.code == BPF_RET_K && i.k == triptych_sys::notify::SECCOMP_RET_USER_NOTIF)
            .count();
        assert_eq!(notifs, traps);
        assert!(!n
            .iter()
            .any(|i| i.code == BPF_RET_K && i.k == triptych_sys::notify::SECCOMP_RET_TRAP));
    }

    fn toy() -> Policy {
        Policy {
            role: "toy",
            rules: vec![
                Rule::any(abi::SYS_read, "read", "reading"),
                Rule::with(
                    "ioctl:one",
                    abi::SYS_ioctl,
                    "ioctl",
                    vec![Arg::eq32(1, 7, "SEVEN")],
                    "one request",
                ),
                Rule::guarded(
                    "pidfd_getfd:window",
                    abi::SYS_pidfd_getfd,
                    "pidfd_getfd",
                    [
                        vec![Arg::eq32(0, 3, "LINK")],
                        Arg::range32(1, 10, 20, "WINDOW").to_vec(),
                    ]
                    .concat(),
                    abi::EPERM,
                    "window",
                ),
            ],
            refusals: vec![Refusal::always(
                abi::SYS_clone3,
                "clone3",
                abi::ENOSYS,
                "fallback",
            )],
        }
    }

    #[test]
    fn decide_follows_the_rules() {
        let p = toy();
        let z = [0u64; 6];
        assert_eq!(p.decide(abi::SYS_read, &z), Ok(()));
        assert_eq!(p.decide(abi::SYS_write, &z), Err(Otherwise::Trap));
        assert_eq!(p.decide(abi::SYS_ioctl, &[0, 7, 0, 0, 0, 0]), Ok(()));
        assert_eq!(
            p.decide(abi::SYS_ioctl, &[0, 8, 0, 0, 0, 0]),
            Err(Otherwise::Trap)
        );
        assert_eq!(
            p.decide(abi::SYS_ioctl, &[0, 7 | 1 << 32, 0, 0, 0, 0]),
            Ok(()),
            "Dword ignores high bits"
        );
        assert_eq!(p.decide(abi::SYS_pidfd_getfd, &[3, 10, 0, 0, 0, 0]), Ok(()));
        assert_eq!(
            p.decide(abi::SYS_pidfd_getfd, &[3, 20, 0, 0, 0, 0]),
            Err(Otherwise::Errno(abi::EPERM))
        );
        assert_eq!(
            p.decide(abi::SYS_pidfd_getfd, &[4, 15, 0, 0, 0, 0]),
            Err(Otherwise::Errno(abi::EPERM))
        );
        assert_eq!(
            p.decide(abi::SYS_clone3, &z),
            Err(Otherwise::Errno(abi::ENOSYS))
        );
    }

    #[test]
    fn compiles_to_errno_filters_then_the_allowlist() {
        let c = toy().compile().expect("compile");
        let names: Vec<&str> = c.programs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["toy errno 1", "toy errno 38", "toy allowlist"]);
    }

    #[test]
    fn contradictions_are_refused() {
        let mut p = toy();
        p.rules.push(Rule::any(abi::SYS_clone3, "clone3", "both"));
        assert!(matches!(p.validate(), Err(PolicyError::Invalid { .. })));
        let mut p = toy();
        p.rules
            .push(Rule::any(abi::SYS_ioctl, "ioctl", "any and some"));
        assert!(p.validate().is_err());
        let mut p = toy();
        p.rules.push(Rule::guarded(
            "pidfd_getfd:other",
            abi::SYS_pidfd_getfd,
            "pidfd_getfd",
            vec![Arg::eq32(0, 4, "X")],
            abi::EPERM,
            "two guarded",
        ));
        assert!(p.validate().is_err());
        // A refusal under conditions of a call a rule allows always would make the rule allow
        // only what the refusal refuses.
        let mut p = toy();
        p.refusals.push(Refusal {
            when: vec![Arg::eq32(0, 5, "FIVE")],
            ..Refusal::always(abi::SYS_read, "read", abi::EPERM, "conditional")
        });
        assert!(p.validate().is_err());
        // Under conditions, beside a rule with conditions: refused where they hold, allowed
        // where the rule allows, trapped elsewhere.
        let mut p = toy();
        p.refusals.push(Refusal {
            when: vec![Arg::eq32(1, 9, "NINE")],
            ..Refusal::always(abi::SYS_ioctl, "ioctl", abi::EPERM, "conditional")
        });
        p.validate().expect("valid");
        assert_eq!(
            p.decide(abi::SYS_ioctl, &[0, 9, 0, 0, 0, 0]),
            Err(Otherwise::Errno(abi::EPERM))
        );
        assert_eq!(p.decide(abi::SYS_ioctl, &[0, 7, 0, 0, 0, 0]), Ok(()));
        assert_eq!(
            p.decide(abi::SYS_ioctl, &[0, 8, 0, 0, 0, 0]),
            Err(Otherwise::Trap)
        );
        p.compile().expect("compiles");
    }
}
