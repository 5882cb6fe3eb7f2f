//! A stand-in GPU process for renderer tests: the test bootstraps the real renderer binary
//! exactly as the launcher does, names itself as the GPU process, and exports real files (sealed
//! memfds, eventfds) from its own export window for the renderer to take with `pidfd_getfd`.
//! It plays the launcher's relay too (frames go to the renderer as the launcher hands them on,
//! releases come back to it), so a test can hand the renderer descriptions the launcher's checks
//! would pass and the fds would not, and fences that never signal.

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
    /// Releases the renderer sent, taken off the events while looking for others.
    released: std::cell::RefCell<std::collections::VecDeque<(u64, ipc_protocol::BufferId)>>,
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
        // Its commands come over ipc-channel, as from the launcher: the token, then its server.
        let commands =
            ipc_protocol::bootstrap::open_stream(commands, "renderer").expect("the stream");
        match events.recv_timeout(EVENT_DEADLINE) {
            Ok(Ok((RendererToLauncher::CommandsAt(name), _))) => commands
                .link()
                .expect("a link")
                .connect(name)
                .expect("connecting"),
            other => panic!("the renderer's first message: {other:?}"),
        }
        commands
            .send(&LauncherToRenderer::Start(RendererStart {
                gpu: GpuLink {
                    epoch: 1,
                    gpu_pid: std::process::id(),
                    gpu_window: (window.base, window.end()),
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
            }))
            .expect("start");
        FakeGpu {
            renderer,
            commands,
            events,
            released: Default::default(),
            window,
        }
    }

    /// Hands the renderer frame `msg`, as the launcher hands on a GPU process's frame.
    pub fn send_frame(&self, msg: &FrameMsg) {
        self.commands
            .send(&LauncherToRenderer::Frame {
                msg: msg.clone(),
                relayed_ns: triptych_trace::now_ns(),
            })
            .expect("send frame");
    }

    /// The next release from the renderer (epoch and buffer); panics when none comes within
    /// [`EVENT_DEADLINE`].
    pub fn next_release(&self) -> (u64, ipc_protocol::BufferId) {
        let deadline = Instant::now() + EVENT_DEADLINE;
        loop {
            if let Some(r) = self.released.borrow_mut().pop_front() {
                return r;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Ok((RendererToLauncher::Release { epoch, buffer }, _))) => {
                    return (epoch, buffer)
                }
                Ok(Ok(_)) => continue,
                Ok(Err(v)) => panic!("the renderer broke the protocol: {v}"),
                Err(e) => panic!("no release from the renderer within {EVENT_DEADLINE:?}: {e:?}"),
            }
        }
    }

    /// The next event from the renderer, skipping pongs and trace batches, and keeping releases
    /// for [`FakeGpu::next_release`]; panics when none comes within [`EVENT_DEADLINE`].
    pub fn next_event(&self) -> RendererToLauncher {
        let deadline = Instant::now() + EVENT_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Ok((RendererToLauncher::Release { epoch, buffer }, _))) => {
                    self.released.borrow_mut().push_back((epoch, buffer));
                }
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
