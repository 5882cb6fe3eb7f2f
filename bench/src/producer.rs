//! The producer side of the cross-process measurements (this process, in the GPU process's
//! role): starting the peer, and the timed loops of each block.
//!
//! The peer is `triptych-bench peer`, this same binary re-executed, joined through the real
//! bootstrap ([`ipc_protocol::bootstrap`]). Its stdin is one end of a `socketpair` (the bare
//! socket the baselines use and the `SCM_RIGHTS` path needs); the frame and release channels are
//! real peer sockets handed over in [`PeerSetup`], as the launcher hands them to the renderer:
//! one alone ([`Via::Socket`]) and one with a mailbox each way ([`Via::Mailbox`], the
//! pipeline's default). A [`Peer`] that is dropped kills and reaps its process.
//!
//! Every timed iteration is a round trip measured here, with one clock: the request goes out,
//! the peer does its part, the answer comes back. After each block the peer's [`Counts`] are
//! compared with what the block must have done. Each block also reads both sides' CPU time
//! (this thread's and the peer's), which [`Peer::last_cpu`] gives per iteration.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use ipc_protocol::bootstrap::CONTROL_FD;
use ipc_protocol::channel::{self, Receiver, Sender};
use ipc_protocol::messages::{LauncherToRenderer, RendererToLauncher};
use triptych_sys::fd::ExportWindow;

use super::control::{Counts, FenceMode, FromPeer, PeerSetup, Phase, ToPeer, Via};
use super::fixture::{Fixture, EPOCH, LAYERS};
use super::stats::time_each;

/// The running peer and the channels to it.
#[derive(Debug)]
pub struct Peer {
    child: Child,
    commands: Sender<ToPeer>,
    events: Receiver<FromPeer>,
    frames: Sender<LauncherToRenderer>,
    releases: Receiver<RendererToLauncher>,
    /// The same channel with a mailbox each way.
    frames_mb: Sender<LauncherToRenderer>,
    releases_mb: Receiver<RendererToLauncher>,
    /// What `releases_mb` took from its ring and from its socket.
    releases_mb_stats: std::sync::Arc<ipc_protocol::mailbox::MailboxStats>,
    stream: UnixStream,
    frame: u64,
    buf: Vec<u8>,
    /// The last block's CPU time, this thread's and the peer's, and its iterations; `None`
    /// where a CPU clock was refused.
    cpu: (Option<u64>, u64),
    /// This thread's CPU time in the current block's untimed preparation of messages, which
    /// the block's CPU time leaves out (the baseline prepares nothing).
    prep_cpu: u64,
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Peer {
    /// Starts `triptych-bench peer`, pinned to `core`, and waits until it is ready.
    pub fn spawn(core: Option<usize>, progress: BorrowedFd<'_>) -> anyhow::Result<Peer> {
        let exe = std::env::current_exe().context("finding this executable")?;
        let (stream, theirs) = UnixStream::pair().context("creating the bare socket pair")?;
        let (control, child_control) =
            channel::socket_pair().context("creating the peer's control socket")?;
        let mut cmd = Command::new(&exe);
        cmd.arg("peer")
            .arg("--parent")
            .arg(std::process::id().to_string())
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null());
        triptych_sys::jail::Confinement::new()
            .inherit(child_control, CONTROL_FD)
            .context("placing the peer's control socket")?
            .install(&mut cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} peer", exe.display()))?;
        // The peer's ends live in the Command: close this process's copies.
        drop(cmd);
        let pid = child.id();
        // Let the peer take fds from this process where Yama restricts ptrace to ancestors, as
        // the GPU process lets the renderer. Without Yama the call fails harmlessly.
        if let Err(e) = triptych_sys::prctl::set_ptracer(pid) {
            tracing::debug!(error = %e, "PR_SET_PTRACER not applied");
        }
        let (commands, events) = channel::duplex::<ToPeer, FromPeer>(control, false);
        let (mine, theirs) = channel::socket_pair().context("creating the peer socket")?;
        let (frames, releases) =
            channel::duplex::<LauncherToRenderer, RendererToLauncher>(mine, false);
        // The mailbox channel, made as the launcher makes a renderer's: the launcher writes the
        // frames' ring and reads the releases'.
        let (mine_mb, theirs_mb) =
            channel::socket_pair().context("creating the peer's mailbox socket")?;
        let (frame_ring, frame_memfd) =
            ipc_protocol::mailbox::create_outgoing(c"triptych-bench-frames")
                .context("creating the frames' mailbox")?;
        let (release_ring, release_memfd) =
            ipc_protocol::mailbox::create(c"triptych-bench-releases")
                .context("creating the releases' mailbox")?;
        let (frames_mb, releases_mb) =
            channel::duplex::<LauncherToRenderer, RendererToLauncher>(mine_mb, false);
        let frames_mb = frames_mb.with_mailbox(frame_ring);
        let releases_mb_stats = std::sync::Arc::<ipc_protocol::mailbox::MailboxStats>::default();
        let releases_mb = releases_mb.with_mailbox(release_ring, releases_mb_stats.clone());
        let window = ExportWindow::GPU;
        let mut peer = Peer {
            child,
            commands,
            events,
            frames,
            releases,
            frames_mb,
            releases_mb,
            releases_mb_stats,
            stream,
            frame: 0,
            buf: Vec::new(),
            cpu: (None, 0),
            prep_cpu: 0,
        };
        peer.commands
            .send_with(
                &ToPeer::Setup(PeerSetup {
                    core,
                    producer_pid: std::process::id(),
                    window: (window.base, window.end()),
                }),
                &[
                    theirs.as_fd(),
                    progress,
                    theirs_mb.as_fd(),
                    frame_memfd.as_fd(),
                    release_memfd.as_fd(),
                ],
            )
            .context("setting the peer up")?;
        drop((theirs, theirs_mb, frame_memfd, release_memfd));
        match peer.event()? {
            FromPeer::Ready { pid: p, .. } if p == pid => {}
            other => bail!("the bench peer answered {other:?} to Setup"),
        }
        tracing::debug!(pid, ?core, "bench peer ready");
        Ok(peer)
    }

    /// The next event from the peer; a closed channel is explained by the peer's exit status.
    fn event(&mut self) -> anyhow::Result<FromPeer> {
        match self.events.recv() {
            Ok((FromPeer::Failed(e), _)) => bail!("the bench peer failed: {e}"),
            Ok((ev, _)) => Ok(ev),
            Err(e) => {
                let st = self.child.wait().ok();
                bail!("the bench peer's events closed ({e}); it exited with {st:?}")
            }
        }
    }

    /// Explains a failure in the middle of a block with the peer's own error, if it sent one.
    fn explain(&mut self, e: anyhow::Error) -> anyhow::Error {
        // The peer sends its error just before it exits; a dead peer's queue is still read.
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            if let Ok((FromPeer::Failed(why), _)) = self.events.recv() {
                return e.context(format!("the bench peer failed: {why}"));
            }
        }
        e
    }

    /// Runs one block: tells the peer, runs `body`, checks the peer's counts with `check`.
    fn block(
        &mut self,
        phase: Phase,
        count: u64,
        body: impl FnOnce(&mut Self) -> anyhow::Result<Vec<u64>>,
        check: impl FnOnce(&Counts) -> anyhow::Result<()>,
    ) -> anyhow::Result<Vec<u64>> {
        self.commands
            .send(&ToPeer::Run {
                phase: phase.clone(),
                count,
            })
            .context("starting a block on the peer")?;
        self.prep_cpu = 0;
        let cpu0 = triptych_sys::clock::thread_cpu_ns();
        let samples = match body(self) {
            Ok(s) => s,
            Err(e) => return Err(self.explain(e)),
        };
        let own = cpu0
            .zip(triptych_sys::clock::thread_cpu_ns())
            .map(|(a, b)| b.saturating_sub(a).saturating_sub(self.prep_cpu));
        let counts = match self.event()? {
            FromPeer::Done(c) => c,
            other => bail!("the bench peer answered {other:?} at the end of a block"),
        };
        ensure!(
            counts.iterations == count,
            "the bench peer handled {} of {count} iterations of {phase:?}",
            counts.iterations
        );
        check(&counts)
            .with_context(|| format!("the bench peer's counts after {phase:?}: {counts:?}"))?;
        self.cpu = (
            own.zip(counts.cpu_ns).map(|(a, b)| a.saturating_add(b)),
            count,
        );
        Ok(samples)
    }

    /// The mailbox channel's counts: frames posted to the ring, of them announcements (the
    /// message itself on the socket), releases taken from the ring, and taken from the socket.
    fn ring_counts(&self) -> (u64, u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let (posted, announced) = self.frames_mb.mailbox_counts().unwrap_or((0, 0));
        let s = &self.releases_mb_stats;
        (
            posted,
            announced,
            s.records.load(Relaxed),
            s.on_socket.load(Relaxed),
        )
    }

    /// The CPU time of the last block per iteration, both sides together (this thread's and
    /// the peer's), in nanoseconds; `None` before any block.
    pub fn last_cpu(&self) -> Option<f64> {
        let (ns, n) = self.cpu;
        ns.filter(|_| n > 0).map(|ns| ns as f64 / n as f64)
    }

    /// `n` handoff round trips on the channel `via` names. With `first_import`, every message
    /// names new buffer ids, so the peer imports every layer; otherwise the ids stay those it
    /// has cached. Without a fence mode the peer only receives and answers (the transport
    /// alone). Warm-up blocks (`warmup`) are not checked against the steady-state counts.
    pub fn handoff(
        &mut self,
        fx: &mut Fixture,
        n: u64,
        fence: Option<FenceMode>,
        via: Via,
        first_import: bool,
        warmup: bool,
    ) -> anyhow::Result<Vec<u64>> {
        let layers = u64::from(LAYERS);
        let phase = match fence {
            Some(fence) => Phase::Handoff { fence, via },
            None => Phase::Transport { via },
        };
        self.block(
            phase,
            n,
            |p| {
                let rings_before = p.ring_counts();
                let mut frame = p.frame;
                let mut prep_cpu = 0u64;
                let (frames, releases) = match via {
                    Via::Socket => (&p.frames, &mut p.releases),
                    Via::Mailbox => (&p.frames_mb, &mut p.releases_mb),
                };
                let samples = time_each_prepared(
                    n,
                    |_| {
                        // Untimed, and left out of the block's CPU time too.
                        let c0 = triptych_sys::clock::thread_cpu_ns();
                        if first_import {
                            fx.next_generation();
                        }
                        frame += 1;
                        let msg = fx.message(frame, fence == Some(FenceMode::Progress));
                        if let Some((a, b)) = c0.zip(triptych_sys::clock::thread_cpu_ns()) {
                            prep_cpu += b.saturating_sub(a);
                        }
                        msg
                    },
                    |msg| {
                        frames.send(&msg).context("sending a frame description")?;
                        match releases.recv() {
                            Ok((RendererToLauncher::Release { epoch, .. }, _))
                                if epoch == EPOCH =>
                            {
                                Ok(())
                            }
                            Ok((other, _)) => bail!("the bench peer answered {other:?}"),
                            Err(e) => bail!("receiving a release: {e}"),
                        }
                    },
                );
                p.frame = frame;
                p.prep_cpu = prep_cpu;
                let samples = samples?;
                // Each frame and each release took the channel named, as a record where the
                // mailbox is on, never the socket.
                let (posted, announced, taken, on_socket) = p.ring_counts();
                let records = match via {
                    Via::Mailbox => n,
                    Via::Socket => 0,
                };
                ensure!(
                    (posted - rings_before.0, taken - rings_before.2) == (records, records)
                        && announced == rings_before.1
                        && on_socket == rings_before.3,
                    "{n} round trips via {via:?} posted {} frames and took {} releases as records ({} and {} on the socket)",
                    posted - rings_before.0,
                    taken - rings_before.2,
                    announced - rings_before.1,
                    on_socket - rings_before.3
                );
                Ok(samples)
            },
            |c| {
                if warmup {
                    return Ok(());
                }
                let Some(fence) = fence else {
                    ensure!(
                        *c == Counts {
                            iterations: n,
                            cpu_ns: c.cpu_ns,
                            ..Counts::default()
                        },
                        "expected no work but receiving"
                    );
                    return Ok(());
                };
                let (imports, hits) = if first_import {
                    (n * layers, 0)
                } else {
                    (0, n * layers)
                };
                let fetched = match (first_import, fence) {
                    (_, FenceMode::Progress) => 0,
                    (_, FenceMode::FetchEach) => n * layers,
                };
                ensure!(c.imports == imports, "expected {imports} imports");
                ensure!(c.hits == hits, "expected {hits} cache hits");
                ensure!(
                    c.fences_fetched == fetched,
                    "expected {fetched} fence fetches"
                );
                ensure!(
                    c.fences_ready == n * layers,
                    "expected {} signalled fences",
                    n * layers
                );
                Ok(())
            },
        )
    }

    /// `n` bare round trips: `request` bytes out, `reply` bytes back.
    pub fn echo(&mut self, n: u64, request: &[u8], reply: usize) -> anyhow::Result<Vec<u64>> {
        let len = request.len();
        self.block(
            Phase::Echo {
                request: len,
                reply,
            },
            n,
            |p| {
                p.buf.resize(reply, 0);
                time_each(n, |_| {
                    p.stream
                        .write_all(request)
                        .context("writing to the bare socket")?;
                    p.stream
                        .read_exact(&mut p.buf[..reply])
                        .context("reading the bare socket's answer")
                })
            },
            |c| {
                ensure!(
                    c.bytes == n * len as u64,
                    "expected {} bytes",
                    n * len as u64
                );
                Ok(())
            },
        )
    }

    /// `n` round trips in each of which the peer takes `fds` with `pidfd_getfd`.
    pub fn getfd(&mut self, n: u64, fds: &[i32]) -> anyhow::Result<Vec<u64>> {
        let k = fds.len() as u64;
        self.block(
            Phase::Getfd { fds: fds.to_vec() },
            n,
            |p| {
                let mut b = [0u8; 1];
                time_each(n, |_| {
                    p.stream
                        .write_all(b"g")
                        .context("writing to the bare socket")?;
                    p.stream
                        .read_exact(&mut b)
                        .context("reading the bare socket's answer")
                })
            },
            |c| {
                ensure!(c.fds == n * k, "expected {} fds taken", n * k);
                Ok(())
            },
        )
    }

    /// `n` round trips in each of which `fds` travel to the peer with `SCM_RIGHTS`.
    pub fn scm(&mut self, n: u64, fds: &[BorrowedFd<'_>]) -> anyhow::Result<Vec<u64>> {
        let k = fds.len() as u64;
        self.block(
            Phase::ScmRights { fds: fds.len() },
            n,
            |p| {
                let mut b = [0u8; 1];
                time_each(n, |_| {
                    triptych_sys::scm::send_with_fds(p.stream.as_fd(), b"s", fds)?;
                    p.stream
                        .read_exact(&mut b)
                        .context("reading the bare socket's answer")
                })
            },
            |c| {
                ensure!(c.fds == n * k, "expected {} fds received", n * k);
                Ok(())
            },
        )
    }

    /// Tells the peer to exit and reaps it.
    pub fn exit(mut self) -> anyhow::Result<()> {
        self.commands
            .send(&ToPeer::Exit)
            .context("telling the peer to exit")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(st) = self.child.try_wait().context("waiting for the peer")? {
                ensure!(st.success(), "the bench peer exited with {st}");
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the bench peer did not exit within 5 s of being told to");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Like [`time_each`], but each iteration's input is made by `prepare` before the clock starts:
/// building a message is the producer's work, not the handoff's.
fn time_each_prepared<T>(
    n: u64,
    mut prepare: impl FnMut(u64) -> anyhow::Result<T>,
    mut step: impl FnMut(T) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let input = prepare(i)?;
        let t0 = Instant::now();
        step(input)?;
        out.push(t0.elapsed().as_nanos() as u64);
    }
    Ok(out)
}
