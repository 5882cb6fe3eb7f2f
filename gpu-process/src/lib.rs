//! The GPU process's library: the GL context, the exporters and the buffer pool. The binary
//! (`main.rs`) wires them to the launcher and the renderer.

pub mod export;
pub mod gl;
#[cfg(debug_assertions)]
pub mod hostile;
pub mod pool;
#[cfg(debug_assertions)]
pub mod probe;
pub mod sandbox;
pub mod transport;
