//! The GPU process's adversary: the GPU process's own run, with the hooks of
//! [`triptych_adversary::gpu::GpuAdversary`].

use triptych_adversary::gpu::GpuAdversary;

fn main() {
    ipc_protocol::logging::init("warn");
    // Named before anything else runs, as the product's start-up reads nothing.
    let hooks = GpuAdversary::from_env();
    if let Err(e) = gpu_process::start::run(Box::new(hooks)) {
        tracing::error!(role = "gpu", error = format!("{e:#}"), "GPU process failed");
        std::process::exit(1);
    }
}
