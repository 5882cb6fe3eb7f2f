//! Dying on purpose, by a chosen signal, for fault injection (chaos mode and crash tests).
//!
//! `raise(SIGSEGV)` alone does not kill a Rust program: the standard library installs a SIGSEGV
//! handler (to report stack overflows) that returns for faults outside a guard page, and a
//! raised signal is not re-raised by returning from its handler. So the disposition is put back
//! to the default and the signal unblocked first; then the kernel terminates the process exactly
//! as it would for a real fault (with a core dump where those are enabled).

use nix::sys::signal::{self, SigHandler, SigSet, Signal};

/// Terminates the calling process with `sig`. Returns only if the signal could not be raised.
pub fn die_by(sig: Signal) -> nix::Result<()> {
    if !matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
        // SAFETY: installing SIG_DFL runs no code of ours in signal context; it only tells the
        // kernel to apply the default action, which for the signals used here ends the process.
        // (SIGKILL and SIGSTOP cannot be caught, so their disposition is always the default.)
        unsafe { signal::signal(sig, SigHandler::SigDfl) }?;
    }
    let mut set = SigSet::empty();
    set.add(sig);
    set.thread_unblock()?;
    signal::raise(sig)
}
