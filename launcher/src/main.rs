//! `triptych`: the command line of the launcher (the library `triptych` does the work).

#![forbid(unsafe_code)]

use triptych::{bench, cli, doctor, scene, session, signals, trace_summary, window};

use std::io::Write;

use anyhow::Context;
use clap::Parser;

fn main() {
    ipc_protocol::logging::init("info");
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Run(args) => run(&args),
        cli::Command::Doctor(args) => doctor::run(&args),
        cli::Command::Bench(args) => bench::run(&args),
        cli::Command::TraceSummary(args) => trace_summary::run(&args),
        cli::Command::BenchPeer(args) => bench::peer::run(&args),
    };
    if let Err(e) = result {
        tracing::error!("{e:#}");
        std::process::exit(1);
    }
}

fn run(args: &cli::RunArgs) -> anyhow::Result<()> {
    // A scene file is read, parsed and its images opened before any child starts: a bad one
    // ends the run here with its located error.
    let mut args = args.clone();
    scene::prepare_run(&mut args)?;
    let args = &args;
    let signals = signals::install()?;
    if let Err(e) = triptych_sys::prctl::set_name("launcher") {
        tracing::warn!(error = %e, "could not name the launcher process");
    }
    // No process of this uid may ptrace the launcher or take its fds (pidfd_getfd needs ptrace
    // access): with this off, only CAP_SYS_PTRACE in the initial user namespace could.
    triptych_sys::prctl::set_dumpable(false).context("making the launcher non-dumpable")?;
    let windowed = window::wanted(args).map_err(|e| anyhow::anyhow!(e))?;
    let summary = if windowed {
        window::run(args, &signals)?
    } else {
        session::run(args, &signals, None)?
    };
    let mut out = std::io::stdout().lock();
    out.write_all(summary.text().as_bytes())
        .context("printing the summary")?;
    if let Some(path) = &args.summary_json {
        let json = serde_json::to_string_pretty(&summary).context("encoding the summary")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.verify {
        match &summary.verified {
            Some(v) if v.mismatches == 0 => {}
            Some(v) => anyhow::bail!(
                "--verify: frame {} differs from the reference composite in {} pixels",
                v.frame,
                v.mismatches
            ),
            None => anyhow::bail!("--verify: no frame was presented to check"),
        }
    }
    Ok(())
}
