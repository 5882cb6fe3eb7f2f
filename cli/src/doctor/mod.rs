//! `triptych doctor`: what this machine supports, what `triptych run` will do about what it
//! lacks, and what `--buffers auto` will choose and why.
//!
//! Every fact is measured, not assumed: the pidfd check really takes an fd from a child process,
//! the user-namespace check really unshares in a child, the sandbox lines really start confined
//! children (and the transport line is the self-test `--transport auto` runs), and the EGL facts
//! come from the GPU process binary itself (`triptych-gpu --egl-facts`), which creates the same
//! context and runs the same backend selection that a run does. The display line ([`display`])
//! connects to the display server a run would open its window on and asks it what the window's
//! present path needs.
//!
//! Each line has a level ([`report::Level`]): **ok**, the feature is there and used; **warn**,
//! an optional feature is missing and the line names the fallback a run takes instead; **fail**,
//! a run with the default options cannot work here. The levels are decided where the facts are
//! read ([`kernel`], [`egl`], [`display`]), from what the engine does without each. `doctor`
//! prints the whole report, then exits 0 when nothing failed (warnings allowed) and 1
//! ([`crate::exit::Exit::Failed`]) when something did ([`report::Failed`]).

mod display;
mod egl;
mod kernel;
mod report;

use anyhow::Context;

use report::{Check, Report};

pub use report::Failed;

/// Runs the report, printed as text or (`json`) as JSON; `Err(`[`Failed`]`)` after printing it
/// when a check failed.
pub fn run(json: bool) -> anyhow::Result<()> {
    let mut report = Report {
        checks: vec![
            kernel::kernel(),
            kernel::pidfd(),
            kernel::yama(),
            kernel::seccomp(),
            kernel::violation_reports(),
            kernel::user_namespaces(),
            kernel::landlock(),
            kernel::memfd_noexec(),
            kernel::mailbox(),
            kernel::ring_sleep(),
            kernel::views(),
        ],
    };
    report.checks.extend(kernel::sandbox());
    let (children, dir) = egl::children();
    let raw = egl::ask(dir.as_deref());
    let facts = egl::facts(&raw);
    report
        .checks
        .push(egl::dri(&triptych_sys::proc::dri_nodes(), &facts));
    report.checks.push(children);
    report.checks.extend(egl::checks(&facts, dir.is_some()));
    report.checks.push(egl::standby(&facts));
    let shown = display::ask();
    report
        .checks
        .push(Check::new("display", shown.level(), shown.line()));
    if json {
        let v = serde_json::json!({
            "level": report.level(),
            "checks": report.checks,
            "auto": raw["auto"],
            "egl": raw,
            "standby": egl::standby_json(&facts),
            "display": shown,
        });
        let text = serde_json::to_string_pretty(&v).context("encoding the report")?;
        write_out(&text)?;
    } else {
        write_out(&report.text(&egl::choice(&facts)))?;
    }
    let failures = report.failures();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failed(failures).into())
    }
}

fn write_out(s: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes()).context("printing the report")?;
    out.write_all(b"\n").context("printing the report")?;
    Ok(())
}
