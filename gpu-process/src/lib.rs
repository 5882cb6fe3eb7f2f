//! The GPU process's library: the GL context, the exporters and the buffer pool. The binary
//! (`main.rs`) wires them to the launcher and the renderer.

pub mod export;
pub mod gl;
#[cfg(feature = "test-hooks")]
pub mod hostile;
pub mod pool;
#[cfg(feature = "test-hooks")]
pub mod probe;
pub mod sandbox;
pub mod transport;
