//! triptych's renderer process. The work is the library's: [`renderer_process::start::run`].
#![forbid(unsafe_code)]

use renderer_process::start::{self, ROLE};

fn main() {
    ipc_protocol::logging::init("warn");
    if let Err(e) = start::run(Box::new(renderer_process::hooks::NoHooks)) {
        tracing::error!(role = ROLE, error = format!("{e:#}"), "renderer failed");
        std::process::exit(1);
    }
}
