//! The cross-process items (1 to 4): the handoff, first imports, pixels through a socket and
//! fd transfer, each against its baseline, measured with the peer.

use super::*;

/// Items 1, 1b, 2, 3 and 4.
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
    peer.handoff(fx, 1, Some(FenceMode::Progress), true, true)?;
    let steady = |peer: &mut Peer, fx: &mut Fixture, fence: Option<FenceMode>| {
        let peer = std::cell::RefCell::new(peer);
        interleave(
            ipc,
            |n, warm| peer.borrow_mut().handoff(fx, n, fence, false, warm),
            |n, _| peer.borrow_mut().echo(n, &request, bytes.release),
        )
    };
    // The pipeline's shm path: each fence a point of the progress page.
    let (v1, b1) = steady(peer, fx, Some(FenceMode::Progress)).context("measuring item 1")?;
    let item1 = Figure::of(v1, 1);
    items.push(Item::measured(
        &Label {
            item: "1",
            name: "handoff_steady",
            value: format!(
                "handoff, imported buffers: {LAYERS}-layer FrameMsg + progress-page fences"
            ),
            baseline: bare.clone(),
            unit: "ns per round trip",
        },
        item1,
        Figure::of(b1, 1),
        Some(1.10),
        ipc,
        cores,
        note,
    ));
    let (v, b) = steady(peer, fx, Some(FenceMode::FetchEach)).context("measuring item 1b")?;
    items.push(Item::measured(
        &Label {
            item: "1b",
            name: "handoff_steady_fence_fetch",
            value: "as 1, each fence a file fetched (pidfd_getfd + fstat) and polled".into(),
            baseline: bare.clone(),
            unit: "ns per round trip",
        },
        Figure::of(v, 1),
        Figure::of(b, 1),
        None,
        ipc,
        cores,
        note,
    ));
    let (v, b) = steady(peer, fx, None).context("measuring item 1c")?;
    items.push(Item::measured(
        &Label {
            item: "1c",
            name: "handoff_transport_only",
            value: "the channel alone: same FrameMsg and Release, no checks".into(),
            baseline: bare.clone(),
            unit: "ns per round trip",
        },
        Figure::of(v, 1),
        Figure::of(b, 1),
        None,
        ipc,
        cores,
        note,
    ));

    let (v, b) = {
        let peer = std::cell::RefCell::new(&mut *peer);
        interleave(
            ipc,
            |n, warm| {
                peer.borrow_mut()
                    .handoff(fx, n, Some(FenceMode::Progress), true, warm)
            },
            |n, _| peer.borrow_mut().echo(n, &request, bytes.release),
        )
        .context("measuring item 2")?
    };
    items.push(Item::measured(
        &Label {
            item: "2",
            name: "handoff_first_import",
            value: format!("handoff, first import of all {LAYERS} layers (fetch, map)"),
            baseline: bare,
            unit: "ns per round trip",
        },
        Figure::of(v, 1),
        Figure::of(b, 1),
        Some(1.6),
        ipc,
        cores,
        note,
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
