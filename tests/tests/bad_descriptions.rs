//! The real renderer process, fed malformed descriptions by this test playing the GPU process.
//!
//! The test bootstraps a renderer exactly as the launcher does, names itself as the GPU process,
//! exports a real sealed memfd and eventfd into its own export window, and then sends one
//! description per class of defect. Each must come back as `Rejected` with a reason naming the
//! field, the renderer must stay alive, and a good description sent afterwards must still be
//! composited.

use std::os::fd::{AsFd, AsRawFd};

use ipc_protocol::frame::{
    BufferKind, DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR,
};
use ipc_protocol::messages::*;
use ipc_protocol::{BufferId, DrmFormat, Fence, FenceKind, FileId, Frame, Plane, RemoteFd};
use triptych_sys::fd::ExportWindow;
use triptych_tests::fake_gpu::{remote, FakeGpu};

#[test]
fn each_class_of_bad_description_is_rejected_by_name() {
    // A window of our own, away from the numbers the test harness uses.
    let window = ExportWindow { base: 900, len: 64 };
    let g = FakeGpu::start(window, 64, 32, 1, 2000);
    match g.next_event() {
        RendererToLauncher::Output { .. } => {}
        other => panic!("expected Output first, got {other:?}"),
    }
    let size = 64 * 32 * 4;
    let memfd = triptych_sys::memfd::create_sealed(c"fake-layer", size).expect("memfd");
    let buf = window.place(memfd.as_fd()).expect("place");
    let small = window
        .place(
            triptych_sys::memfd::create_sealed(c"small", 100)
                .expect("memfd")
                .as_fd(),
        )
        .expect("place");
    let fence = triptych_sys::eventfd::EventFence::new().expect("eventfd");
    fence.signal().expect("signal");
    let fence_fd = window.place(fence.as_fd()).expect("place");
    let outside = triptych_sys::fd::dup_cloexec(memfd.as_fd()).expect("dup");

    let good = good_frame(0, &buf, &fence_fd);
    let mut cases: Vec<(&str, Frame<RemoteFd>)> = Vec::new();
    let mut f = good.clone();
    f.planes.clear();
    cases.push(("planes: 0 given", f));
    let mut f = good.clone();
    f.planes = vec![f.planes[0].clone(); 5];
    cases.push(("planes: 5 given", f));
    let mut f = good.clone();
    f.planes[0].stride = 0;
    cases.push(("planes[0].stride: zero", f));
    let mut f = good.clone();
    f.planes[0].stride = 200;
    cases.push(("planes[0].stride: 200 is less than one row of 256", f));
    let mut f = good.clone();
    f.planes[0].stride = u32::MAX / 2;
    cases.push(("overflows", f));
    let mut f = good.clone();
    f.planes[0].offset = 4;
    cases.push(("beyond the buffer's 8192 bytes", f));
    let mut f = good.clone();
    f.planes[0].fd = remote(&small);
    cases.push(("beyond the buffer's 100 bytes", f));
    let mut f = good.clone();
    f.format.fourcc = ipc_protocol::frame::fourcc(b"NV12");
    cases.push(("format.fourcc: NV12", f));
    let mut f = good.clone();
    f.format.modifier = DRM_FORMAT_MOD_INVALID;
    cases.push(("format.modifier", f));
    let mut f = good.clone();
    f.width = 0;
    cases.push(("size: 0x32", f));
    let mut f = good.clone();
    f.planes[0].fd.fd = outside.as_raw_fd();
    cases.push(("planes[0].fd", f));
    let mut f = good.clone();
    f.planes[0].fd.identity.ino ^= 1;
    cases.push(("planes[0]: fetched file is", f));
    let mut f = good.clone();
    f.fence.fd.pid = 1;
    cases.push(("fence.pid: 1 is not the exporting process", f));
    let mut f = good.clone();
    f.planes[0].fd.fd = window.end() - 1;
    f.planes[0].fd.identity = FileId { dev: 0, ino: 0 };
    cases.push(("has no fd", f));

    for (i, (needle, desc)) in cases.into_iter().enumerate() {
        // A fresh slot per case so the import cache never serves an earlier good import.
        let mut desc = desc;
        desc.id = BufferId {
            slot: 10 + i as u32,
            generation: 1,
        };
        let msg = one_layer(i as u64, desc, Vec::new(), None);
        g.send_frame(&msg);
        match g.next_event() {
            RendererToLauncher::Rejected { frame, reason, .. } => {
                assert_eq!(frame, i as u64);
                assert!(
                    reason.contains(needle),
                    "case {i}: reason {reason:?} does not name {needle:?}"
                );
            }
            other => panic!("case {i} ({needle}): expected a rejection, got {other:?}"),
        }
    }
    // Damage that does not fit the buffer, or names a frame not before its own.
    let rect = |x, y, w, h| ipc_protocol::damage::Rect { x, y, w, h };
    let damage_cases: Vec<(&str, Vec<ipc_protocol::damage::Rect>, Option<u64>)> = vec![
        ("reaches outside the 64x32", vec![rect(60, 0, 8, 8)], None),
        ("reaches outside", vec![rect(u32::MAX, 0, 2, 1)], None),
        ("is empty", vec![rect(1, 1, 0, 4)], None),
        ("17 damage rectangles", vec![rect(0, 0, 1, 1); 17], None),
        (
            "damage_since: frame 18 is not before frame 18",
            Vec::new(),
            Some(18),
        ),
    ];
    let damage_count = damage_cases.len() as u64;
    for (i, (needle, damage, since)) in damage_cases.into_iter().enumerate() {
        let mut desc = good.clone();
        desc.id = BufferId {
            slot: 40 + i as u32,
            generation: 1,
        };
        let frame = 14 + i as u64;
        let msg = one_layer(frame, desc, damage, since);
        g.send_frame(&msg);
        match g.next_event() {
            RendererToLauncher::Rejected {
                frame: f, reason, ..
            } => {
                assert_eq!(f, frame);
                assert!(
                    reason.contains("damage") && reason.contains(needle),
                    "damage case {i}: reason {reason:?} does not name {needle:?}"
                );
            }
            other => panic!("damage case {i} ({needle}): expected a rejection, got {other:?}"),
        }
    }
    // Still alive and still compositing.
    let msg = one_layer(14 + damage_count, good, Vec::new(), None);
    g.send_frame(&msg);
    match g.next_event() {
        RendererToLauncher::Presented(p) => assert_eq!(p.frame, 14 + damage_count),
        other => panic!("expected the good frame to be presented, got {other:?}"),
    }
    g.commands
        .send(&LauncherToRenderer::Shutdown)
        .expect("shutdown");
    match g.next_event() {
        RendererToLauncher::Stats(s) => {
            assert_eq!(s.rejected, 14 + damage_count, "{s:?}");
            assert_eq!(s.frames, 1, "{s:?}");
        }
        other => panic!("expected Stats, got {other:?}"),
    }
}

/// A shm buffer description of the 64x32 layer at `buf`, slot `slot`, fenced by `fence`.
fn good_frame(
    slot: u32,
    buf: &std::os::fd::OwnedFd,
    fence: &std::os::fd::OwnedFd,
) -> Frame<RemoteFd> {
    Frame {
        id: BufferId {
            slot,
            generation: 1,
        },
        kind: BufferKind::Shm,
        format: DrmFormat {
            fourcc: DRM_FORMAT_ABGR8888,
            modifier: DRM_FORMAT_MOD_LINEAR,
        },
        width: 64,
        height: 32,
        planes: vec![Plane {
            fd: remote(buf),
            offset: 0,
            stride: 256,
        }],
        fence: Fence {
            kind: FenceKind::EventFd,
            fd: remote(fence),
            point: 0,
        },
    }
}

/// Frame `frame` of epoch 1 and generation 0, with one layer at the origin showing `buffer`.
fn one_layer(
    frame: u64,
    buffer: Frame<RemoteFd>,
    damage: Vec<ipc_protocol::damage::Rect>,
    damage_since: Option<u64>,
) -> FrameMsg {
    FrameMsg {
        epoch: 1,
        generation: 0,
        frame,
        sent_ns: 0,
        scene_version: 0,
        layers: vec![LayerMsg {
            layer: 0,
            placement: LayerPlacement {
                x: 0,
                y: 0,
                z: 0,
                opacity: 255,
            },
            buffer,
            damage,
            damage_since,
        }],
    }
}
