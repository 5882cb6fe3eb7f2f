//! The GPU process: the `triptych-gpu` binary's whole run ([`start::run`]: the start-up, then
//! the frame loop in [`frame_loop`]), the GL context, the exporters and the buffer pool, and
//! the points where a program built on this library may act ([`hooks`]; the binary passes
//! none).

#![deny(unsafe_code)]

pub mod damage;
pub mod device;
pub mod export;
pub mod fair;
pub mod frame_loop;
// The GL and EGL calls: the one module of this crate allowed unsafe code (every block with its
// proof); kernel fds are adopted only through triptych-sys.
#[allow(unsafe_code)]
pub mod gl;
pub mod hooks;
pub mod pool;
pub mod sandbox;
pub mod scene;
pub mod start;
pub mod transport;
pub mod view;
