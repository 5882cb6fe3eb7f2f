//! The closed set of typed messages that triptych's three processes exchange, and the buffer
//! description that crosses from the GPU process to the renderer.
//!
//! Channels are `SOCK_SEQPACKET` sockets with bounded, validating receive paths
//! ([`channel`]); each child finds its control socket at a fixed fd number ([`bootstrap`]) and
//! learns its peer's socket only from the launcher; the two fd-passing sockets (the launcher's
//! handovers, and frame fds under `SCM_RIGHTS`) have their formats here too ([`wire`]). Every
//! message type here is an enum or a
//! struct of plain data, so a peer can only say what the protocol lets it say; what it says is
//! still checked on arrival ([`frame::Frame::validate_shape`] and friends), because the renderer
//! must assume the GPU process may be compromised and the launcher must assume both children may
//! be.
//!
//! One frame's path, and the message that carries each step:
//!
//! 1. GPU process renders layer textures and exports them ([`frame::Frame`] with
//!    [`frame::RemoteFd`]s in its export window) -> [`messages::GpuToLauncher::Frame`].
//! 2. Launcher checks the description ([`layers`], and what it knows: the epoch, the frame's
//!    number, the size generation, the buffers the renderer holds) and hands it on ->
//!    [`messages::LauncherToRenderer::Frame`].
//! 3. Renderer fetches the fds (`pidfd_getfd`), checks their identity and extent, waits on the
//!    fences, composites into an output slot -> [`messages::RendererToLauncher::Presented`].
//! 4. Launcher presents the slot and hands back the one it showed before ->
//!    [`messages::LauncherToRenderer::SlotFree`].
//! 5. Renderer releases each buffer it no longer shows -> [`messages::RendererToLauncher::Release`],
//!    which the launcher checks against what it handed over and relays ->
//!    [`messages::ViewCommand::Release`].
//!
//! So every description and every release passes through the launcher: what one child says the
//! other was sent or gave back is never a claim, and no message per frame goes between the two
//! children directly.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bootstrap;
pub mod buffer_file;
pub mod channel;
pub mod codec;
pub mod commands;
pub mod damage;
pub mod fault;
pub mod frame;
pub mod layers;
pub mod logging;
pub mod mailbox;
pub mod messages;
pub mod progress;
pub mod relay;
pub mod role;
pub mod rules;
pub mod wire;

pub use frame::{BufferId, DescError, DrmFormat, Fence, FenceKind, FileId, Frame, Plane, RemoteFd};
pub use role::Role;
