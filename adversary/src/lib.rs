//! triptych's adversaries, for the tests only (`publish = false`; no product crate depends on
//! this one): a compromised GPU process, a compromised renderer, and the sandbox's escape probes.
//!
//! Each adversary binary is the child's own library run ([`gpu_process::start::run`],
//! [`renderer_process::start::run`]) with hooks ([`gpu_process::hooks`],
//! [`renderer_process::hooks`]) that attack from inside: the process is started, confined and
//! sandboxed exactly as the product's binary is, by the product's launcher, so what an attack
//! shows holds for the shipped children. The tests put these binaries where the launcher looks
//! for its children (a scratch directory named by `TRIPTYCH_BIN_DIR`, in which they stand as
//! `triptych-gpu` and `triptych-renderer`).
//!
//! - [`gpu`]: the hostile GPU process ([`gpu::hostile`]) and the GPU process's escape probes
//!   ([`gpu::probe`]);
//! - [`renderer`]: the same for the renderer;
//! - [`ring`]: the attacks on a child's mailboxes with the launcher, which both hostile
//!   children carry out;
//! - [`attempts`]: the catalogue of escape attempts and the argument-checked rules' calls;
//!   [`calls`]: the system calls they make; [`hook`]: the names of the probe's variable.
//!
//! What an adversary does is named in its environment, read once at start-up: the attack
//! (`TRIPTYCH_HOSTILE_GPU`, `TRIPTYCH_HOSTILE`) or the probe (`TRIPTYCH_SANDBOX_PROBE`). The
//! launcher passes such variables to the first process of a role only, so a replacement runs
//! clean; an attack meant for every process of a role is named in a file next to the binary's
//! path instead ([`every`]).

pub mod attempts;
pub mod calls;
pub mod gpu;
pub mod hook;
pub mod renderer;
pub mod ring;

/// The attack for every process of a role: the contents of `<argv[0]>.attack`, when that file
/// exists (the tests write it beside the name the launcher starts the binary by). Read before
/// the sandbox is on.
pub fn every() -> Option<String> {
    let argv0 = std::env::args_os().next()?;
    let mut path = std::path::PathBuf::from(argv0).into_os_string();
    path.push(".attack");
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.trim().to_owned())
}
