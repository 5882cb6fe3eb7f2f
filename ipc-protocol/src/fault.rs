//! Firing injected faults (chaos mode and crash tests) in a child process.
//!
//! A child holds the faults the launcher handed it in `Start`. At each point of the frame path it
//! asks [`fire_due`] whether one is due there; a due fault is removed (it fires once), announced
//! to the launcher through `notify` (so the launcher can time detection and never hands it to a
//! replacement), and then carried out: the process dies by `SIGKILL`, `SIGSEGV` or `abort()`, or,
//! for [`FaultAction::StopFences`] and [`FaultAction::LateFences`], the caller is told to stop
//! signalling or to signal late.

use triptych_sys::signal::Signal;

use crate::messages::{Fault, FaultAction, FaultPoint};

/// Fires the first fault of `faults` due at `point` for `frame` (start-up faults are due at
/// once). Returns the action the caller carries out, [`FaultAction::StopFences`] or
/// [`FaultAction::LateFences`]; the other actions do not return.
pub fn fire_due(
    faults: &mut Vec<Fault>,
    point: FaultPoint,
    frame: u64,
    notify: impl FnOnce(u64, Fault),
) -> Option<FaultAction> {
    let i = faults
        .iter()
        .position(|f| f.point == point && (f.frame <= frame || point == FaultPoint::GpuStartup))?;
    let f = faults.remove(i);
    notify(triptych_trace::now_ns(), f);
    match f.action {
        FaultAction::Kill => {
            let _ = triptych_sys::fault::die_by(Signal::SIGKILL);
        }
        FaultAction::Segv => {
            let _ = triptych_sys::fault::die_by(Signal::SIGSEGV);
        }
        FaultAction::Abort => std::process::abort(),
        FaultAction::StopFences | FaultAction::LateFences => return Some(f.action),
    }
    None
}
