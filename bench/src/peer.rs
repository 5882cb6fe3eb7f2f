//! `triptych-bench peer`: the consumer side of the cross-process measurements, in the renderer's
//! role. Started only by `triptych-bench` (hidden from `--help`).
//!
//! Sequence: ask for `SIGKILL` when the bench dies and check the bench is still its parent; name
//! the process; join the bench's bootstrap server; take the bare socket it was given as stdin;
//! receive [`ToPeer::Setup`], pin itself to the named CPU and open one pidfd of the producer (as
//! the renderer opens one of the GPU process); then run blocks of iterations until told to exit.
//!
//! A handoff iteration makes the renderer's own calls up to compositing, from the
//! `renderer_process` library, `triptych_sys` and `ipc_protocol`: receive and decode the
//! `LauncherToRenderer::Frame` (a GPU process's frame as the launcher hands it on), fail the block if its epoch is not the bench's, check the frame's layers
//! and every description ([`validate::layers`]: shape, then pid and export window), look each
//! buffer up in the renderer's import cache ([`ImportCache::get_or_import`], fetching through a
//! [`FrameSource`] on this peer's pidfd of the producer: on a miss `pidfd_getfd`, `fstat`
//! identity check, `lseek(SEEK_END)` size, extent check, seal check, read-only `mmap`, replacing
//! and so unmapping the slot's previous buffer), look at the fence (below) without waiting, and
//! answer with a `RendererToLauncher::Release`, as the renderer gives a buffer back.
//!
//! Fences come as the renderer takes them: a point of the producer's progress page, which the
//! peer maps read-only at `Setup`, checked by the page's identity and one load (items 1 and 2:
//! [`FenceMode::Progress`], the pipeline's shm path), or a file fetched for every frame and polled
//! (item 1b: [`FenceMode::FetchEach`], the pipe path and the DMA-BUF path's sync_files). The
//! counts it reports come from the cache's own counters and the frame source's.
//!
//! A handoff takes the channel the block names: the peer socket alone, or the mailbox socket with
//! its two rings ([`Via`]), which the peer attaches as a renderer attaches its mailboxes
//! ([`ipc_protocol::channel::attach_mailboxes`]).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use ipc_protocol::bootstrap;
use ipc_protocol::channel::{self, Receiver, Sender};
use ipc_protocol::messages::{FrameMsg, LauncherToRenderer, RendererToLauncher};
use ipc_protocol::progress::ProgressReader;
use ipc_protocol::BufferId;
use renderer_process::fetch::{fetch, Counters as FetchCounters, FrameSource};
use renderer_process::import::ImportCache;
use renderer_process::validate;
use triptych_sys::poll::{wait_readable, WaitOutcome};

use super::control::{Counts, FenceMode, FromPeer, PeerSetup, Phase, ToPeer, Via, PEER_ROLE};
use super::fixture::{EPOCH, LAYERS};
use crate::PeerArgs;

/// The consumer's state.
#[derive(Debug)]
struct Consumer {
    producer_pid: u32,
    window: (i32, i32),
    pidfd: OwnedFd,
    frames: Receiver<LauncherToRenderer>,
    releases: Sender<RendererToLauncher>,
    /// The same channel with a mailbox each way.
    frames_mb: Receiver<LauncherToRenderer>,
    releases_mb: Sender<RendererToLauncher>,
    stream: UnixStream,
    /// The renderer's import cache, set to the bench's epoch.
    cache: ImportCache,
    /// The producer's progress page, read-only, for [`FenceMode::Progress`].
    progress: ProgressReader,
    buf: Vec<u8>,
}

impl Consumer {
    fn run(&mut self, phase: &Phase, count: u64) -> anyhow::Result<Counts> {
        let mut c = Counts::default();
        let start = self.cache.counters;
        let cpu0 = triptych_sys::clock::thread_cpu_ns();
        for _ in 0..count {
            match phase {
                Phase::Handoff { fence, via } => self.handoff(Some(*fence), *via, &mut c)?,
                Phase::Transport { via } => self.handoff(None, *via, &mut c)?,
                Phase::Echo { request, reply } => self.echo(*request, *reply, &mut c)?,
                Phase::Getfd { fds } => self.getfd(fds, &mut c)?,
                Phase::ScmRights { fds } => self.scm(*fds, &mut c)?,
            }
            c.iterations += 1;
        }
        c.imports = self.cache.counters.imports - start.imports;
        c.hits = self.cache.counters.hits - start.hits;
        c.cpu_ns = cpu0
            .zip(triptych_sys::clock::thread_cpu_ns())
            .map(|(a, b)| b.saturating_sub(a));
        Ok(c)
    }

    /// One handoff on the channel `via` names; without a fence mode, only the transport
    /// (receive, decode, answer).
    fn handoff(&mut self, mode: Option<FenceMode>, via: Via, c: &mut Counts) -> anyhow::Result<()> {
        let frames = match via {
            Via::Socket => &mut self.frames,
            Via::Mailbox => &mut self.frames_mb,
        };
        let (LauncherToRenderer::Frame { msg, .. }, _) =
            frames.recv().context("receiving a frame description")?
        else {
            bail!("the bench sent the peer something other than a frame");
        };
        ensure!(
            msg.epoch == EPOCH,
            "frame {} is of epoch {}, not {EPOCH}",
            msg.frame,
            msg.epoch
        );
        let answer = match mode {
            Some(mode) => self.consume(&msg, mode, c)?,
            None => {
                msg.layers
                    .first()
                    .context("a frame without layers")?
                    .buffer
                    .id
            }
        };
        let releases = match via {
            Via::Socket => &self.releases,
            Via::Mailbox => &self.releases_mb,
        };
        releases
            .send(&RendererToLauncher::Release {
                epoch: msg.epoch,
                buffer: answer,
            })
            .context("sending a release")
    }

    /// Validates, imports or looks up, gets and polls the fences; returns the id to release.
    fn consume(
        &mut self,
        msg: &FrameMsg,
        mode: FenceMode,
        c: &mut Counts,
    ) -> anyhow::Result<BufferId> {
        let first = msg.layers.first().context("a frame without layers")?;
        let ends = validate::layers(msg, LAYERS, self.producer_pid, self.window)?;
        let mut src = FrameSource::Pidfd(self.pidfd.as_fd(), FetchCounters::default());
        for (l, end) in msg.layers.iter().zip(ends) {
            let layer = l.layer;
            self.cache
                .get_or_import(&mut src, &l.buffer, end)
                .with_context(|| format!("layers[{layer}]"))?;
            if mode == FenceMode::Progress {
                // As the renderer takes a progress fence: the page's identity, then one load.
                let f = &l.buffer.fence;
                ensure!(
                    f.kind == ipc_protocol::FenceKind::Progress
                        && f.fd.identity == self.progress.identity(),
                    "layer {layer}: not a point of the progress page"
                );
                ensure!(
                    self.progress.signalled(f.point),
                    "layer {layer}'s point {} is not reached",
                    f.point
                );
                c.fences_ready += 1;
                continue;
            }
            let fence = fetch(&mut src, "fence", &l.buffer.fence.fd)
                .with_context(|| format!("layers[{layer}].fence"))?;
            match wait_readable(fence.as_fd(), Duration::ZERO)
                .with_context(|| format!("polling layer {layer}'s fence"))?
            {
                WaitOutcome::Ready => c.fences_ready += 1,
                WaitOutcome::TimedOut => bail!("layer {layer}'s fence is not signalled"),
            }
        }
        c.fences_fetched += src.counters().fences_via_pidfd;
        Ok(first.buffer.id)
    }

    fn echo(&mut self, request: usize, reply: usize, c: &mut Counts) -> anyhow::Result<()> {
        if self.buf.len() < request.max(reply) {
            self.buf.resize(request.max(reply), 0);
        }
        self.stream
            .read_exact(&mut self.buf[..request])
            .with_context(|| format!("reading {request} bytes from the bare socket"))?;
        c.bytes += request as u64;
        self.stream
            .write_all(&self.buf[..reply])
            .with_context(|| format!("writing {reply} bytes to the bare socket"))
    }

    fn getfd(&mut self, fds: &[i32], c: &mut Counts) -> anyhow::Result<()> {
        let mut b = [0u8; 1];
        self.stream
            .read_exact(&mut b)
            .context("reading a request from the bare socket")?;
        for &n in fds {
            ensure!(
                n >= self.window.0 && n < self.window.1,
                "fd {n} is outside the export window"
            );
            let fd = triptych_sys::pidfd::pidfd_getfd(self.pidfd.as_fd(), n)
                .with_context(|| format!("pidfd_getfd of fd {n}"))?;
            drop(fd);
            c.fds += 1;
        }
        self.stream
            .write_all(&b)
            .context("answering on the bare socket")
    }

    fn scm(&mut self, expected: usize, c: &mut Counts) -> anyhow::Result<()> {
        let mut b = [0u8; 1];
        let (n, fds) = triptych_sys::scm::recv_with_fds(self.stream.as_fd(), &mut b, expected)?;
        ensure!(n == 1, "the bare socket closed while receiving fds");
        ensure!(
            fds.len() == expected,
            "{} fds arrived with SCM_RIGHTS, {expected} expected",
            fds.len()
        );
        c.fds += fds.len() as u64;
        drop(fds);
        self.stream
            .write_all(&b)
            .context("answering on the bare socket")
    }
}

/// The bare socket: the peer's stdin, as `triptych-bench` started it.
fn stdin_socket() -> anyhow::Result<UnixStream> {
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("duplicating stdin")?;
    let st =
        nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd)).context("fstat of stdin")?;
    ensure!(
        st.st_mode & libc::S_IFMT == libc::S_IFSOCK,
        "stdin is not a socket: the peer is started by `triptych-bench`, not by hand"
    );
    Ok(UnixStream::from(fd))
}

/// Runs the peer until the bench says `Exit` or goes away.
pub fn run(args: &PeerArgs) -> anyhow::Result<()> {
    triptych_sys::prctl::set_pdeathsig(libc::SIGKILL)
        .context("asking for a parent-death signal")?;
    let parent = nix::unistd::getppid().as_raw() as u32;
    ensure!(
        parent == args.parent,
        "the peer's parent is {parent}, not {}: the bench is gone or this was started by hand",
        args.parent
    );
    if let Err(e) = triptych_sys::prctl::set_name(PEER_ROLE) {
        tracing::warn!(error = %e, "could not name the bench peer");
    }
    let stream = stdin_socket()?;
    let (mut commands, events) =
        bootstrap::join::<ToPeer, FromPeer>(PEER_ROLE).context("joining the bench")?;
    let (first, fds) = commands.recv().context("waiting for Setup")?;
    let mut fds = fds.into_iter();
    let peer_socket = fds.next().context("Setup came without the peer socket")?;
    let page = fds.next().context("Setup came without the progress page")?;
    let progress = ProgressReader::attach(page.as_fd()).context("mapping the progress page")?;
    let mailbox_socket = fds
        .next()
        .context("Setup came without the mailbox socket")?;
    let rings: Vec<OwnedFd> = fds.collect();
    let setup: PeerSetup = match first {
        ToPeer::Setup(s) => s,
        ToPeer::Exit => return Ok(()),
        other => bail!("expected Setup from the bench, got {other:?}"),
    };
    if let Some(core) = setup.core {
        super::cores::pin(core)?;
    }
    let pidfd = triptych_sys::pidfd::pidfd_open(setup.producer_pid as i32)
        .with_context(|| format!("opening a pidfd of the bench {}", setup.producer_pid))?;
    events
        .send(&FromPeer::Ready {
            pid: std::process::id(),
            core: setup.core,
        })
        .context("telling the bench it is ready")?;
    let (releases, frames) =
        channel::duplex::<RendererToLauncher, LauncherToRenderer>(peer_socket, false);
    // Attached as a renderer attaches its mailboxes: the memfds of the ring it writes, then of
    // the one it reads.
    let (releases_mb, frames_mb) =
        channel::duplex::<RendererToLauncher, LauncherToRenderer>(mailbox_socket, false);
    let rings = match <[OwnedFd; 2]>::try_from(rings) {
        Ok([frame_ring, release_ring]) => vec![release_ring, frame_ring],
        Err(v) => bail!("Setup came with {} ring memfds, not 2", v.len()),
    };
    let (releases_mb, frames_mb) =
        ipc_protocol::channel::attach_mailboxes(rings, releases_mb, frames_mb)
            .context("attaching the mailboxes")?;
    let mut cache = ImportCache::default();
    cache.set_epoch(EPOCH);
    let mut consumer = Consumer {
        producer_pid: setup.producer_pid,
        window: setup.window,
        pidfd,
        frames,
        releases,
        frames_mb,
        releases_mb,
        stream,
        cache,
        progress,
        buf: Vec::new(),
    };
    loop {
        let Ok((cmd, _)) = commands.recv() else {
            // The bench is gone: nothing left to measure for.
            return Ok(());
        };
        match cmd {
            ToPeer::Run { phase, count } => match consumer.run(&phase, count) {
                Ok(c) => events
                    .send(&FromPeer::Done(c))
                    .context("reporting a block")?,
                Err(e) => {
                    let _ = events.send(&FromPeer::Failed(format!("{e:#}")));
                    return Err(e);
                }
            },
            ToPeer::Exit => return Ok(()),
            ToPeer::Setup(_) => bail!("a second Setup from the bench"),
        }
    }
}
