//! `triptych bench-peer`: the consumer side of the cross-process measurements, in the renderer's
//! role. Started only by `triptych bench` (hidden from `--help`).
//!
//! Sequence: ask for `SIGKILL` when the bench dies and check the bench is still its parent; name
//! the process; join the bench's bootstrap server; take the bare socket it was given as stdin;
//! receive [`ToPeer::Setup`], pin itself to the named CPU and open one pidfd of the producer (as
//! the renderer opens one of the GPU process); then run blocks of iterations until told to exit.
//!
//! A handoff iteration does what the renderer's frame loop does up to compositing, with the same
//! calls from `triptych_sys` and `ipc_protocol`: receive and decode the `GpuToRenderer::Frame`,
//! drop it if its epoch is not the current one, validate every layer's description (shape, then
//! pid and export window), look the buffer up in an import cache keyed by pool slot and id (on a
//! miss: `pidfd_getfd`, `fstat` identity check, `lseek(SEEK_END)` size, extent check, seal check,
//! read-only `mmap`, replacing and so unmapping the slot's previous buffer), get the fence
//! (held from import, or fetched per message), poll it with a zero timeout, and answer with a
//! `RendererToGpu::Release` on the release channel.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use ipc_protocol::bootstrap;
use ipc_protocol::channel::{self, Receiver, Sender};
use ipc_protocol::frame::{check_identity, BufferKind};
use ipc_protocol::messages::{FrameMsg, GpuToRenderer, RendererToGpu};
use ipc_protocol::{BufferId, DrmFormat, FileId, Frame, RemoteFd};
use triptych_sys::mapping::{Access, Mapping};
use triptych_sys::poll::{wait_readable, WaitOutcome};

use super::control::{Counts, FenceMode, FromPeer, PeerSetup, Phase, ToPeer, PEER_ROLE};
use super::fixture::EPOCH;
use crate::cli::BenchPeerArgs;

/// The layout a cached mapping depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    kind: BufferKind,
    format: DrmFormat,
    width: u32,
    height: u32,
    offset: u32,
    stride: u32,
}

/// One imported buffer: its fd and mapping live as long as the entry.
#[derive(Debug)]
struct Imported {
    id: BufferId,
    shape: Shape,
    _fd: OwnedFd,
    _map: Mapping,
    fence: OwnedFd,
}

/// The consumer's state.
#[derive(Debug)]
struct Consumer {
    producer_pid: u32,
    window: (i32, i32),
    pidfd: OwnedFd,
    frames: Receiver<GpuToRenderer>,
    releases: Sender<RendererToGpu>,
    stream: UnixStream,
    cache: HashMap<u32, Imported>,
    buf: Vec<u8>,
}

/// `pidfd_getfd` of `remote`, then the identity check the renderer makes.
fn fetch(pidfd: &OwnedFd, field: &str, remote: &RemoteFd) -> anyhow::Result<OwnedFd> {
    let fd = triptych_sys::pidfd::pidfd_getfd(pidfd.as_fd(), remote.fd)
        .with_context(|| format!("fetching {field} (fd {})", remote.fd))?;
    let id = triptych_sys::fd::identity(fd.as_fd())?;
    check_identity(
        field,
        remote.identity,
        FileId {
            dev: id.dev,
            ino: id.ino,
        },
    )?;
    Ok(fd)
}

impl Consumer {
    fn run(&mut self, phase: &Phase, count: u64) -> anyhow::Result<Counts> {
        let mut c = Counts::default();
        for _ in 0..count {
            match phase {
                Phase::Handoff { fence } => self.handoff(Some(*fence), &mut c)?,
                Phase::Transport => self.handoff(None, &mut c)?,
                Phase::Echo { request, reply } => self.echo(*request, *reply, &mut c)?,
                Phase::Getfd { fds } => self.getfd(fds, &mut c)?,
                Phase::ScmRights { fds } => self.scm(*fds, &mut c)?,
            }
            c.iterations += 1;
        }
        Ok(c)
    }

    /// One handoff; without a fence mode, only the transport (receive, decode, answer).
    fn handoff(&mut self, mode: Option<FenceMode>, c: &mut Counts) -> anyhow::Result<()> {
        let (GpuToRenderer::Frame(msg), _) = self
            .frames
            .recv()
            .context("receiving a frame description")?;
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
        self.releases
            .send(&RendererToGpu::Release {
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
        let mut ends = Vec::with_capacity(msg.layers.len());
        for (i, l) in msg.layers.iter().enumerate() {
            ensure!(
                !msg.layers[..i].iter().any(|o| o.layer == l.layer),
                "layers: layer {} appears twice",
                l.layer
            );
            let e = l
                .buffer
                .validate_shape()
                .with_context(|| format!("layers[{}].buffer", l.layer))?;
            l.buffer
                .validate_remote(self.producer_pid, self.window.0, self.window.1)
                .with_context(|| format!("layers[{}].buffer", l.layer))?;
            ends.push(e[0]);
        }
        for (l, end) in msg.layers.iter().zip(ends) {
            let fresh_fence = self.import(&l.buffer, end, c)?;
            let entry = self
                .cache
                .get(&l.buffer.id.slot)
                .context("imported buffer missing from the cache")?;
            let fetched;
            let fence = if mode == FenceMode::FetchEach && !fresh_fence {
                fetched = fetch(&self.pidfd, "fence", &l.buffer.fence.fd)?;
                c.fences_fetched += 1;
                fetched.as_fd()
            } else {
                entry.fence.as_fd()
            };
            match wait_readable(fence, Duration::ZERO)
                .with_context(|| format!("polling layer {}'s fence", l.layer))?
            {
                WaitOutcome::Ready => c.fences_ready += 1,
                WaitOutcome::TimedOut => bail!("layer {}'s fence is not signalled", l.layer),
            }
        }
        Ok(first.buffer.id)
    }

    /// Imports `desc` unless its id is cached; returns whether it imported (and so fetched a
    /// fresh fence).
    fn import(&mut self, desc: &Frame<RemoteFd>, end: u64, c: &mut Counts) -> anyhow::Result<bool> {
        let p = desc.planes.first().context("planes: none")?;
        let shape = Shape {
            kind: desc.kind,
            format: desc.format,
            width: desc.width,
            height: desc.height,
            offset: p.offset,
            stride: p.stride,
        };
        if let Some(e) = self.cache.get(&desc.id.slot) {
            if e.id == desc.id {
                ensure!(
                    e.shape == shape,
                    "buffer {}.{} changed shape while its id stayed the same",
                    desc.id.slot,
                    desc.id.generation
                );
                c.hits += 1;
                return Ok(false);
            }
        }
        let fd = fetch(&self.pidfd, "planes[0]", &p.fd)?;
        let size = triptych_sys::fd::seek_size(fd.as_fd())?;
        Frame::<RemoteFd>::validate_extent(0, end, size)?;
        if desc.kind == BufferKind::Shm {
            triptych_sys::memfd::check_no_shrink(fd.as_fd())?;
        }
        let size = usize::try_from(size).context("buffer size does not fit in usize")?;
        let map = Mapping::new(fd.as_fd(), size, Access::Read)?;
        let fence = fetch(&self.pidfd, "fence", &desc.fence.fd)?;
        c.imports += 1;
        c.fences_fetched += 1;
        // Replacing the slot's entry unmaps and closes the previous buffer, as eviction does.
        self.cache.insert(
            desc.id.slot,
            Imported {
                id: desc.id,
                shape,
                _fd: fd,
                _map: map,
                fence,
            },
        );
        Ok(true)
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

/// The bare socket: the peer's stdin, as `triptych bench` started it.
fn stdin_socket() -> anyhow::Result<UnixStream> {
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("duplicating stdin")?;
    let st =
        nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd)).context("fstat of stdin")?;
    ensure!(
        st.st_mode & libc::S_IFMT == libc::S_IFSOCK,
        "stdin is not a socket: bench-peer is started by `triptych bench`, not by hand"
    );
    Ok(UnixStream::from(fd))
}

/// Runs the peer until the bench says `Exit` or goes away.
pub fn run(args: &BenchPeerArgs) -> anyhow::Result<()> {
    triptych_sys::prctl::set_pdeathsig(libc::SIGKILL)
        .context("asking for a parent-death signal")?;
    let parent = nix::unistd::getppid().as_raw() as u32;
    ensure!(
        parent == args.parent,
        "bench-peer's parent is {parent}, not {}: the bench is gone or this was started by hand",
        args.parent
    );
    if let Err(e) = triptych_sys::prctl::set_name(PEER_ROLE) {
        tracing::warn!(error = %e, "could not name the bench peer");
    }
    let stream = stdin_socket()?;
    let (mut commands, events) =
        bootstrap::join::<ToPeer, FromPeer>(PEER_ROLE).context("joining the bench")?;
    let (first, mut fds) = commands.recv().context("waiting for Setup")?;
    let peer_socket = fds.pop().context("Setup came without the peer socket")?;
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
    let (releases, frames) = channel::duplex::<RendererToGpu, GpuToRenderer>(peer_socket, false);
    let mut consumer = Consumer {
        producer_pid: setup.producer_pid,
        window: setup.window,
        pidfd,
        frames,
        releases,
        stream,
        cache: HashMap::new(),
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
