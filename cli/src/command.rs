//! What the `triptych` binary does with its command line: parse it, run the subcommand, print
//! and write what a run ends with, and exit with the documented status ([`crate::exit`]). The
//! binary's `main` is [`main_with`] with no input source; a program that drives the window
//! with input of its own (a test's, an automation's) passes one
//! ([`crate::window::InputSource`]).

use std::io::Write;

use anyhow::Context;
use clap::Parser;

use triptych::{session, signals};

use crate::window::{self, InputSource};
use crate::{args as cli, doctor, exit, progress, trace_summary};

/// Parses the process's command line, runs it and exits; `input` feeds the window of a
/// windowed run, if there is one.
pub fn main_with(input: Option<Box<dyn InputSource>>) -> ! {
    // Log lines make way for the progress line of a headless run (crate::progress).
    ipc_protocol::logging::init_with_writer("info", progress::log_writer);
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // `--help` and `--version` are "errors" printed to stdout; a bad command line goes to
        // stderr.
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                exit::Exit::Usage.exit()
            }
            exit::Exit::Success.exit()
        }
    };
    let result = match cli.command {
        cli::Command::Run(args) => run(&args, input),
        cli::Command::Doctor(args) => doctor::run(args.json),
        cli::Command::TraceSummary(args) => trace_summary::run(&args.file),
    };
    match result {
        Ok(()) => exit::Exit::Success.exit(),
        Err(e) => {
            tracing::error!("{e:#}");
            exit::Exit::of(&e).exit()
        }
    }
}

/// `triptych run`: the run, then its summary on stdout (and in `--summary-json`).
pub fn run(args: &cli::RunArgs, input: Option<Box<dyn InputSource>>) -> anyhow::Result<()> {
    let windowed = args.windowed().map_err(|e| anyhow::anyhow!(e))?;
    // A scene file is read, parsed and its images opened before any child starts: a bad one
    // ends the run here with its located error.
    let mut config = args.config();
    config.prepare()?;
    let signals = signals::install()?;
    if let Err(e) = triptych_sys::prctl::set_name("launcher") {
        tracing::warn!(error = %e, "could not name the launcher process");
    }
    // No process of this uid may ptrace the launcher or take its fds (pidfd_getfd needs ptrace
    // access): with this off, only CAP_SYS_PTRACE in the initial user namespace could.
    triptych_sys::prctl::set_dumpable(false).context("making the launcher non-dumpable")?;
    let mut answers = None;
    let result = if windowed {
        window::run(&config, &signals, input)
    } else if let (Some(path), Some(editor)) = (&args.control, config.editor()) {
        let (edits, applied, thread) = crate::control::start(path, editor);
        answers = Some(thread);
        let line = progress::Progress::new(config.frames);
        session::run_edited(&config, &signals, Box::new(line), edits, applied)
    } else {
        let line = progress::Progress::new(config.frames);
        session::run_observed(&config, &signals, None, Box::new(line))
    };
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            // A failed run's summary is written too, so whoever reads it sees what ended it.
            if let (Some(failed), Some(path)) =
                (e.downcast_ref::<session::RunFailed>(), &args.summary_json)
            {
                if let Err(w) = write_summary_json(&failed.summary, path) {
                    tracing::error!("{w:#}");
                }
            }
            return Err(e);
        }
    };
    // Every edit is answered before the summary; with --control, standard output is the
    // answers' alone and the summary goes to standard error.
    if let Some(t) = answers.take() {
        let _ = t.join();
    }
    if args.control.is_some() {
        std::io::stderr()
            .lock()
            .write_all(summary.text().as_bytes())
            .context("printing the summary")?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(summary.text().as_bytes())
            .context("printing the summary")?;
    }
    if let Some(path) = &args.summary_json {
        write_summary_json(&summary, path)?;
    }
    if args.verify {
        match &summary.verified {
            Some(v) if v.mismatches == 0 => {}
            Some(v) => {
                return Err(exit::VerifyFailed(format!(
                    "frame {} differs from the reference composite in {} pixels",
                    v.frame, v.mismatches
                ))
                .into())
            }
            None => return Err(exit::VerifyFailed("no frame was presented to check".into()).into()),
        }
        // A view given up is reported as such, not as a frame that failed its check.
        for view in summary.views.iter().skip(1).filter(|v| v.failed.is_none()) {
            match &view.verified {
                Some(v) if v.mismatches == 0 => {}
                Some(v) => {
                    return Err(exit::VerifyFailed(format!(
                        "view {}: frame {} differs from the reference composite in {} pixels",
                        view.view, v.frame, v.mismatches
                    ))
                    .into())
                }
                None => {
                    return Err(exit::VerifyFailed(format!(
                        "view {}: no frame was presented to check",
                        view.view
                    ))
                    .into())
                }
            }
        }
    }
    Ok(())
}

fn write_summary_json(
    summary: &triptych::summary::RunSummary,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(summary).context("encoding the summary")?;
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}
