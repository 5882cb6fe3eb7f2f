//! triptych's GPU process. The work is the library's: [`gpu_process::start::run`], and
//! `--egl-facts`, the EGL facts for `triptych doctor` ([`gpu_process::start::egl_facts`]).

use gpu_process::start::{self, ROLE};

fn main() {
    ipc_protocol::logging::init("warn");
    let args: Vec<String> = std::env::args().collect();
    let result = if args.iter().any(|a| a == "--egl-facts") {
        start::egl_facts()
    } else {
        start::run(Box::new(gpu_process::hooks::NoHooks))
    };
    if let Err(e) = result {
        tracing::error!(role = ROLE, error = format!("{e:#}"), "GPU process failed");
        std::process::exit(1);
    }
}
