//! `triptych-bench`: the benchmarks' command line (the library `triptych_bench` does the work).
//! Exit status 0 when every figure was measured, 1 when any measurement failed, 2 for a command
//! line that was not understood.

#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    ipc_protocol::logging::init("info");
    let cli = triptych_bench::Cli::parse();
    let result = match &cli.command {
        Some(triptych_bench::Command::Peer(args)) => triptych_bench::peer::run(args),
        None => triptych_bench::run(&cli.args),
    };
    if let Err(e) = result {
        tracing::error!("{e:#}");
        std::process::exit(1);
    }
}
