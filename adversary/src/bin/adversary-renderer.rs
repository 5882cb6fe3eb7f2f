//! The renderer's adversary: the renderer's own run, with the hooks of
//! [`triptych_adversary::renderer::RendererAdversary`].

use triptych_adversary::renderer::RendererAdversary;

fn main() {
    ipc_protocol::logging::init("warn");
    // Named before anything else runs, as the product's start-up reads nothing.
    let hooks = RendererAdversary::from_env();
    if let Err(e) = renderer_process::start::run(Box::new(hooks)) {
        tracing::error!(
            role = "renderer",
            error = format!("{e:#}"),
            "renderer failed"
        );
        std::process::exit(1);
    }
}
