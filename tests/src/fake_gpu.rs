//! A stand-in GPU process for renderer tests: the test bootstraps the real renderer binary
//! exactly as the launcher does, names itself as the GPU process, and exports real files (sealed
//! memfds, eventfds) from its own export window for the renderer to take with `pidfd_getfd`.
//! It lets a test send descriptions no honest GPU process would, and fences that never signal.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use ipc_protocol::bootstrap::{Hello, IPC_FLAG};
use ipc_protocol::messages::*;
use ipc_protocol::{FileId, RemoteFd};
use triptych_sys::fd::ExportWindow;

/// The renderer under test, and this process's ends of its channels.
#[derive(Debug)]
pub struct FakeGpu {
    /// The renderer process.
    pub renderer: std::process::Child,
    /// Commands to the renderer (as the launcher).
    pub commands: IpcSender<LauncherToRenderer>,
    /// Events from the renderer (as the launcher).
    pub events: IpcReceiver<RendererToLauncher>,
    /// Frames to the renderer (as the GPU process).
    pub frames: IpcSender<GpuToRenderer>,
    /// Releases from the renderer (as the GPU process).
    pub releases: IpcReceiver<RendererToGpu>,
    /// The export window this process uses.
    pub window: ExportWindow,
}

impl Drop for FakeGpu {
    fn drop(&mut self) {
        let _ = self.renderer.kill();
        let _ = self.renderer.wait();
    }
}

/// Describes `fd` of this process.
pub fn remote(fd: &OwnedFd) -> RemoteFd {
    let id = triptych_sys::fd::identity(fd.as_fd()).expect("fstat");
    RemoteFd {
        pid: std::process::id(),
        fd: fd.as_raw_fd(),
        identity: FileId {
            dev: id.dev,
            ino: id.ino,
        },
    }
}

impl FakeGpu {
    /// Starts the real renderer for frames of `width` x `height` with `layers` layers.
    pub fn start(
        window: ExportWindow,
        width: u32,
        height: u32,
        layers: u32,
        fence_timeout_ms: u32,
    ) -> FakeGpu {
        let (server, name) =
            IpcOneShotServer::<Hello<LauncherToRenderer, RendererToLauncher>>::new()
                .expect("server");
        let renderer = Command::new(crate::bin("triptych-renderer"))
            .arg(IPC_FLAG)
            .arg(&name)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn renderer");
        let (_, hello) = server.accept().expect("renderer hello");
        assert_eq!(hello.role, "renderer");
        let (frames_tx, frames_rx) = ipc::channel().expect("channel");
        let (rel_tx, rel_rx) = ipc::channel().expect("channel");
        hello
            .commands
            .send(LauncherToRenderer::Start(RendererStart {
                gpu: GpuLink {
                    epoch: 1,
                    gpu_pid: std::process::id(),
                    gpu_window: (window.base, window.end()),
                    frames: frames_rx,
                    releases: rel_tx,
                },
                layers,
                faults: Vec::new(),
                trace: false,
                width,
                height,
                transport: Transport::Pidfd,
                fence_timeout_ms,
            }))
            .expect("start");
        FakeGpu {
            renderer,
            commands: hello.commands,
            events: hello.events,
            frames: frames_tx,
            releases: rel_rx,
            window,
        }
    }

    /// The next event from the renderer, skipping pongs and trace batches.
    pub fn next_event(&self) -> RendererToLauncher {
        loop {
            match self.events.try_recv_timeout(Duration::from_secs(10)) {
                Ok(RendererToLauncher::Pong(_)) | Ok(RendererToLauncher::Trace(_)) => continue,
                Ok(e) => return e,
                Err(e) => panic!("no event from the renderer: {e:?}"),
            }
        }
    }
}
