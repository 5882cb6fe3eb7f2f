//! The cross-process items (1 to 4): the handoff, first imports, pixels through a socket and
//! fd transfer, each against its baseline, measured with the peer.

use super::*;

/// The mean CPU time per round trip, both sides together, over the timed blocks of a figure
/// and of its baseline: `(sum of ns, iterations)` each.
#[derive(Clone, Copy, Default)]
struct CpuSums {
    value: (f64, u64),
    baseline: (f64, u64),
}

impl CpuSums {
    fn add(to: &mut (f64, u64), per_iteration: Option<f64>, n: u64) {
        if let Some(ns) = per_iteration {
            to.0 += ns * n as f64;
            to.1 += n;
        }
    }

    fn mean(of: (f64, u64)) -> Option<f64> {
        (of.1 > 0).then(|| of.0 / of.1 as f64)
    }

    /// `item` with the two means and their ratio in its extras.
    fn onto(self, item: Item) -> Item {
        let (v, b) = (Self::mean(self.value), Self::mean(self.baseline));
        let mut item = item;
        if let Some(v) = v {
            item = item.with("value_cpu_ns_per_round_trip", v.round());
        }
        if let Some(b) = b {
            item = item.with("baseline_cpu_ns_per_round_trip", b.round());
        }
        if let (Some(v), Some(b)) = (v, b.filter(|b| *b > 0.0)) {
            item = item.with("cpu_ratio", (v / b * 1000.0).round() / 1000.0);
        }
        item
    }
}

/// Items 1, 1b, 1c, 1d, 2, 3 and 4.
pub(super) fn cross_process(
    items: &mut Vec<Item>,
    peer: &mut Peer,
    fx: &mut Fixture,
    plans: &Plans,
    bytes: MessageBytes,
    cores: &[usize],
    note: &str,
) -> anyhow::Result<()> {
    let ipc = plans.ipc;
    let request = vec![0x5au8; bytes.frame];
    let bare = format!(
        "bare UnixStream round trip, {} B out, {} B back",
        bytes.frame, bytes.release
    );

    // Import the current generation once, untimed, so the steady blocks find it cached.
    peer.handoff(fx, 1, Some(FenceMode::Progress), Via::Mailbox, true, true)?;
    let steady = |peer: &mut Peer, fx: &mut Fixture, fence: Option<FenceMode>, via: Via| {
        let peer = std::cell::RefCell::new(peer);
        let cpu = std::cell::Cell::new(CpuSums::default());
        let (v, b) = interleave(
            ipc,
            |n, warm| {
                let mut p = peer.borrow_mut();
                let s = p.handoff(fx, n, fence, via, false, warm)?;
                if !warm {
                    let mut c = cpu.get();
                    CpuSums::add(&mut c.value, p.last_cpu(), n);
                    cpu.set(c);
                }
                Ok(s)
            },
            |n, warm| {
                let mut p = peer.borrow_mut();
                let s = p.echo(n, &request, bytes.release)?;
                if !warm {
                    let mut c = cpu.get();
                    CpuSums::add(&mut c.baseline, p.last_cpu(), n);
                    cpu.set(c);
                }
                Ok(s)
            },
        )?;
        anyhow::Ok((v, b, cpu.get()))
    };
    // The pipeline's path: the launcher's channel to the renderer with its mailboxes, each
    // fence a point of the progress page.
    // Each handoff item: its figures against the bare round trip beside them.
    let item = |id: &'static str, name: &'static str, value: String, v: Figure, b, goal| {
        Item::measured(
            &Label {
                item: id,
                name,
                value,
                baseline: bare.clone(),
                unit: "ns per round trip",
            },
            v,
            Figure::of(b, 1),
            goal,
            ipc,
            cores,
            note,
        )
    };
    let (v1, b1, cpu1) =
        steady(peer, fx, Some(FenceMode::Progress), Via::Mailbox).context("measuring item 1")?;
    let item1 = Figure::of(v1, 1);
    items.push(cpu1.onto(item(
        "1",
        "handoff_steady",
        format!("handoff, imported buffers: {LAYERS}-layer FrameMsg in a mailbox + progress-page fences"),
        item1,
        b1,
        Some(1.10),
    )));
    let (v, b, _) =
        steady(peer, fx, Some(FenceMode::FetchEach), Via::Mailbox).context("measuring item 1b")?;
    items.push(item(
        "1b",
        "handoff_steady_fence_fetch",
        "as 1, each fence a file fetched (pidfd_getfd + fstat) and polled".into(),
        Figure::of(v, 1),
        b,
        None,
    ));
    // Its CPU time per round trip is item 14's floor: half of it is one hop of a record from
    // one process to another that sleeps.
    let (v, b, cpu) = steady(peer, fx, None, Via::Mailbox).context("measuring item 1c")?;
    items.push(cpu.onto(item(
        "1c",
        "handoff_transport_only",
        "the channel alone: same FrameMsg and Release in mailboxes, no checks".into(),
        Figure::of(v, 1),
        b,
        None,
    )));
    // Item 1 on the socket alone, as a run with `--mailbox off` hands frames on.
    let (v, b, cpu) =
        steady(peer, fx, Some(FenceMode::Progress), Via::Socket).context("measuring item 1d")?;
    items.push(cpu.onto(item(
        "1d",
        "handoff_steady_socket",
        "as 1, on the socket alone (--mailbox off)".into(),
        Figure::of(v, 1),
        b,
        None,
    )));

    let (v, b) = {
        let peer = std::cell::RefCell::new(&mut *peer);
        interleave(
            ipc,
            |n, warm| {
                peer.borrow_mut().handoff(
                    fx,
                    n,
                    Some(FenceMode::Progress),
                    Via::Mailbox,
                    true,
                    warm,
                )
            },
            |n, _| peer.borrow_mut().echo(n, &request, bytes.release),
        )
        .context("measuring item 2")?
    };
    items.push(item(
        "2",
        "handoff_first_import",
        format!("handoff, first import of all {LAYERS} layers (fetch, map)"),
        Figure::of(v, 1),
        b,
        Some(1.6),
    ));

    // Item 3: the pixels of one frame through the same kind of socket. The value is item 1's
    // figure, from this run.
    let pixels = vec![0xa5u8; bytes.pixels];
    let px = plans.pixels;
    peer.echo(px.warmup, &pixels, bytes.release)
        .context("warming up item 3")?;
    let mut samples = Vec::with_capacity(px.iterations as usize);
    for r in 0..px.rounds.max(1) {
        let n = px.iterations / px.rounds.max(1) + u64::from(r < px.iterations % px.rounds.max(1));
        samples.extend(
            peer.echo(n, &pixels, bytes.release)
                .context("measuring item 3")?,
        );
    }
    let mut it = Item::measured(
        &Label {
            item: "3",
            name: "handoff_vs_pixel_push",
            value: "handoff, imported buffers (item 1's figure)".into(),
            baseline: format!(
                "{WIDTH}x{HEIGHT} RGBA pixels ({} B) through a UnixStream",
                bytes.pixels
            ),
            unit: "ns per round trip",
        },
        item1,
        Figure::of(samples, 1),
        Some(0.01),
        px,
        cores,
        note,
    );
    it.warmup = ipc.warmup;
    items.push(it.with("baseline_warmup", px.warmup));

    // Item 4: per fd, a batch per round trip.
    let numbers = fx.batch_numbers();
    let fds = fx.batch_fds();
    let (v, b) = {
        let peer = std::cell::RefCell::new(&mut *peer);
        interleave(
            ipc,
            |n, _| peer.borrow_mut().getfd(n, &numbers),
            |n, _| peer.borrow_mut().scm(n, &fds),
        )
        .context("measuring item 4")?
    };
    items.push(
        Item::measured(
            &Label {
                item: "4",
                name: "fd_pidfd_getfd_vs_scm_rights",
                value: format!("pidfd_getfd, per fd ({FD_BATCH} fds per round trip)"),
                baseline: format!("SCM_RIGHTS, per fd ({FD_BATCH} fds per round trip)"),
                unit: "ns per fd (one round trip / fds moved in it)",
            },
            Figure::of(v, FD_BATCH as u64),
            Figure::of(b, FD_BATCH as u64),
            Some(1.0),
            ipc,
            cores,
            note,
        )
        .with("fds_per_round_trip", FD_BATCH),
    );
    Ok(())
}
