//! A fence that never signals: the real renderer reports a timeout within its deadline, keeps
//! the layer's previous buffer on screen, and gives the unsignalled buffer back unused.

use std::os::fd::AsFd;
use std::time::Duration;

use ipc_protocol::frame::{BufferKind, DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_LINEAR};
use ipc_protocol::messages::*;
use ipc_protocol::{BufferId, DrmFormat, Fence, FenceKind, Frame, Plane};
use triptych_sys::eventfd::EventFence;
use triptych_sys::fd::ExportWindow;
use triptych_sys::mapping::{Access, Mapping};
use triptych_tests::fake_gpu::{remote, FakeGpu};

const W: u32 = 64;
const H: u32 = 32;

/// A sealed memfd of one layer filled with `colour`, placed in the window.
fn layer(window: ExportWindow, colour: [u8; 4]) -> std::os::fd::OwnedFd {
    let size = u64::from(W * H * 4);
    let fd = triptych_sys::memfd::create_sealed(c"layer", size).expect("memfd");
    let mut map = Mapping::new(fd.as_fd(), size as usize, Access::ReadWrite).expect("map");
    for px in map.as_mut_slice().chunks_exact_mut(4) {
        px.copy_from_slice(&colour);
    }
    window.place(fd.as_fd()).expect("place")
}

fn frame(n: u64, slot: u32, buf: &std::os::fd::OwnedFd, fence: &std::os::fd::OwnedFd) -> FrameMsg {
    FrameMsg {
        epoch: 1,
        generation: 0,
        frame: n,
        sent_ns: triptych_trace::now_ns(),
        scene_version: 0,
        layers: vec![LayerMsg {
            layer: 0,
            placement: LayerPlacement {
                x: 0,
                y: 0,
                z: 0,
                opacity: 255,
            },
            buffer: Frame {
                id: BufferId {
                    slot,
                    generation: 1,
                },
                kind: BufferKind::Shm,
                format: DrmFormat {
                    fourcc: DRM_FORMAT_ABGR8888,
                    modifier: DRM_FORMAT_MOD_LINEAR,
                },
                width: W,
                height: H,
                planes: vec![Plane {
                    fd: remote(buf),
                    offset: 0,
                    stride: W * 4,
                }],
                fence: Fence {
                    kind: FenceKind::EventFd,
                    fd: remote(fence),
                    point: 0,
                },
            },
            damage: Vec::new(),
            damage_since: None,
        }],
    }
}

#[test]
fn an_unsignalled_fence_times_out_and_the_previous_buffer_stays() {
    let window = ExportWindow { base: 900, len: 64 };
    let timeout = Duration::from_millis(300);
    let g = FakeGpu::start(window, W, H, 1, timeout.as_millis() as u32);
    let RendererToLauncher::Output {
        fd,
        generation: _,
        slots,
        slot_bytes,
    } = g.next_event()
    else {
        panic!("expected Output")
    };
    let pidfd =
        triptych_sys::pidfd::pidfd_open(g.renderer.id() as i32).expect("pidfd of the renderer");
    let out = triptych_sys::pidfd::pidfd_getfd(pidfd.as_fd(), fd.fd).expect("take the output");
    let out = Mapping::new(
        out.as_fd(),
        (slot_bytes * u64::from(slots)) as usize,
        Access::Read,
    )
    .expect("map output");
    let pixel = |slot: u32| -> [u8; 4] {
        let i = slot as usize * slot_bytes as usize + ((H / 2 * W + W / 2) * 4) as usize;
        out.as_slice()[i..i + 4].try_into().expect("4 bytes")
    };

    let red = [200, 10, 10, 255];
    let a = layer(window, red);
    let fa = EventFence::new().expect("eventfd");
    fa.signal().expect("signal");
    let fa_fd = window.place(fa.as_fd()).expect("place");
    g.send_frame(&frame(0, 0, &a, &fa_fd));
    let RendererToLauncher::Presented(p0) = g.next_event() else {
        panic!("frame 0 not presented")
    };
    assert_eq!(pixel(p0.slot), red);
    g.commands.send(&LauncherToRenderer::SlotFree(p0.slot)).ok();

    // Frame 1: a new buffer whose fence never signals.
    let b = layer(window, [10, 200, 10, 255]);
    let fb = EventFence::new().expect("eventfd");
    let fb_fd = window.place(fb.as_fd()).expect("place");
    g.send_frame(&frame(1, 1, &b, &fb_fd));
    match g.next_event() {
        RendererToLauncher::FenceTimeout {
            epoch: 1,
            frame: 1,
            layer: 0,
            ..
        } => {}
        other => panic!("expected a fence timeout, got {other:?}"),
    }
    // Only the events are checked: how long the renderer waited is its deadline's business
    // (`triptych_sys::poll::wait_readable` says TimedOut only once the deadline has passed),
    // and no assertion here depends on how fast the machine is.
    // The frame is still composited, from the previous buffer.
    let RendererToLauncher::Presented(p1) = g.next_event() else {
        panic!("frame 1 not presented")
    };
    assert_eq!(p1.frame, 1);
    assert_eq!(
        pixel(p1.slot),
        red,
        "the layer must keep its previous buffer"
    );
    // The unsignalled buffer is handed back unused.
    let (_, buffer) = g.next_release();
    assert_eq!(
        buffer,
        BufferId {
            slot: 1,
            generation: 1
        },
        "the release of buffer 1"
    );
    g.commands
        .send(&LauncherToRenderer::Shutdown)
        .expect("shutdown");
    let s = g.event_matching(|e| match e {
        RendererToLauncher::Stats(s) => Some(s),
        _ => None,
    });
    assert_eq!(s.fence_timeouts, 1);
    assert_eq!(s.stale_composited, 0);
    drop(fb);
}
