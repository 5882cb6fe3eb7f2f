//! The report pipe's reader: where the kernel cannot report violations itself, the child's
//! `SIGSYS` handler writes records to the pipe; where it can, anything written there is a
//! forgery.

use super::*;

/// Reads trap records from `pipe` until it closes (the child is gone). With signal reports each
/// is a violation, logged; with user notification the child has no business writing there, and
/// the first byte is a forgery that kills it. A garbled record is a forgery too.
pub(super) fn report_reader(
    role: Role,
    pid: u32,
    pipe: OwnedFd,
    mode: ViolationReports,
    tx: crossbeam_channel::Sender<Report>,
    pidfd: OwnedFd,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name(format!("{role}-{pid}-sandbox"))
        .spawn(move || {
            let mut f = std::fs::File::from(pipe);
            read_reports(role, pid, &mut f, mode, &tx, &pidfd);
            // The fds close before the channel: once `reaped` sees it disconnect, nothing of the
            // child is open here.
            drop(f);
            drop(pidfd);
            drop(tx);
        })
        .context("spawning the sandbox report reader")?;
    Ok(())
}

/// The report reader's loop ([`report_reader`]).
fn read_reports(
    role: Role,
    pid: u32,
    f: &mut std::fs::File,
    mode: ViolationReports,
    tx: &crossbeam_channel::Sender<Report>,
    pidfd: &OwnedFd,
) {
    let forged = |what: String| {
        tracing::error!(role = %role, pid, %what, "forged sandbox report");
        let _ = tx.send(Report::Forged(what));
        let _ = triptych_sys::pidfd::pidfd_send_signal(pidfd.as_fd(), Signal::SIGKILL);
    };
    if mode == ViolationReports::Notify {
        let mut one = [0u8; 1];
        if matches!(f.read(&mut one), Ok(1)) {
            forged("wrote to the report pipe, which the kernel's reports replace".into());
        }
        return;
    }
    let mut buf = [0u8; RECORD_LEN];
    while f.read_exact(&mut buf).is_ok() {
        match TrapRecord::decode(&buf) {
            Ok(r) => {
                let v = Violation::new(role.as_str(), r);
                tracing::error!(pid, tid = r.tid, "{v}");
                let _ = tx.send(Report::Violation(v));
            }
            Err(e) => return forged(format!("a garbled sandbox report: {e}")),
        }
    }
}
