//! A stand-in GPU process for renderer tests: the test bootstraps the real renderer binary
//! exactly as the launcher does, names itself as the GPU process, and exports real files (sealed
//! memfds, eventfds) from its own export window for the renderer to take with `pidfd_getfd`.
//! It lets a test send descriptions no honest GPU process would, and fences that never signal.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipc_protocol::bootstrap::CONTROL_FD;
use ipc_protocol::channel::{self, Sender};
use ipc_protocol::messages::*;
use ipc_protocol::{FileId, RemoteFd};
use triptych_sys::fd::ExportWindow;

/// How long a test waits for the renderer's next event: generous, so only a renderer that
/// stopped talking reaches it.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(10);

/// The renderer under test, and this process's ends of its channels.
#[derive(Debug)]
pub struct FakeGpu {
    /// The renderer process.
    pub renderer: std::process::Child,
    /// Commands to the renderer (as the launcher).
    pub commands: Sender<LauncherToRenderer>,
    /// Events from the renderer (as the launcher).
    pub events: crossbeam_channel::Receiver<channel::Delivery<RendererToLauncher>>,
    /// Frames to the renderer (as the GPU process), sealed with a key of the test's.
    pub frames: ipc_protocol::seal::FrameSender,
    /// Releases from the renderer (as the GPU process).
    pub releases: crossbeam_channel::Receiver<channel::Delivery<RendererToGpu>>,
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
        // This stand-in reports nothing: everything counts as produced.
        Self::start_produced(
            window,
            width,
            height,
            layers,
            fence_timeout_ms,
            Some(u64::MAX),
        )
    }

    /// As [`FakeGpu::start`], with the renderer told that frames up to `produced` were
    /// reported produced (more with `LauncherToRenderer::Produced`).
    pub fn start_produced(
        window: ExportWindow,
        width: u32,
        height: u32,
        layers: u32,
        fence_timeout_ms: u32,
        produced: Option<u64>,
    ) -> FakeGpu {
        let (control, child_control) = channel::socket_pair().expect("control socket");
        let mut cmd = Command::new(crate::bin("triptych-renderer"));
        cmd.stdin(Stdio::null()).stderr(Stdio::null());
        triptych_sys::jail::Confinement::new()
            .inherit(child_control, CONTROL_FD)
            .expect("inherit")
            .install(&mut cmd);
        let renderer = cmd.spawn().expect("spawn renderer");
        drop(cmd);
        let (commands, events) =
            channel::duplex::<LauncherToRenderer, RendererToLauncher>(control, false);
        let events = channel::forward("fake-gpu-events", events).expect("forward");
        let (mine, theirs) = channel::socket_pair().expect("peer socket");
        let (frames, releases) = channel::duplex::<GpuToRenderer, RendererToGpu>(mine, false);
        let releases = channel::forward("fake-gpu-releases", releases).expect("forward");
        commands
            .send_with(
                &LauncherToRenderer::Start(RendererStart {
                    gpu: GpuLink {
                        epoch: 1,
                        gpu_pid: std::process::id(),
                        gpu_window: (window.base, window.end()),
                        first_frame: 0,
                        produced,
                    },
                    layers,
                    faults: Vec::new(),
                    trace: false,
                    width,
                    height,
                    transport: Transport::Pidfd,
                    fence_timeout_ms,
                    reports: ViolationReports::Signal,
                    output_order: Default::default(),
                    backdrop: triptych_scene::BACKDROP,
                    generation: 0,
                    max_width: width,
                    max_height: height,
                    damage: true,
                }),
                &[theirs.as_fd()],
            )
            .expect("start");
        FakeGpu {
            renderer,
            commands,
            events,
            frames: ipc_protocol::seal::FrameSender::new(
                frames,
                ipc_protocol::seal::SealKey([0x7e; ipc_protocol::seal::SEAL_LEN]),
                1,
            ),
            releases,
            window,
        }
    }

    /// The next event from the renderer, skipping pongs and trace batches; panics when none
    /// comes within [`EVENT_DEADLINE`].
    pub fn next_event(&self) -> RendererToLauncher {
        let deadline = Instant::now() + EVENT_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Ok((RendererToLauncher::Pong(_), _)))
                | Ok(Ok((RendererToLauncher::Trace(_), _))) => continue,
                Ok(Ok((e, _))) => return e,
                Ok(Err(v)) => panic!("the renderer broke the protocol: {v}"),
                Err(e) => panic!("no event from the renderer within {EVENT_DEADLINE:?}: {e:?}"),
            }
        }
    }

    /// The first event `pick` accepts, skipping any other; panics when none comes within
    /// [`EVENT_DEADLINE`].
    pub fn event_matching<T>(&self, mut pick: impl FnMut(RendererToLauncher) -> Option<T>) -> T {
        let deadline = Instant::now() + EVENT_DEADLINE;
        loop {
            assert!(
                Instant::now() < deadline,
                "the awaited event did not come within {EVENT_DEADLINE:?}"
            );
            if let Some(t) = pick(self.next_event()) {
                return t;
            }
        }
    }
}
