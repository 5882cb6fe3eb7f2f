//! The launcher's relay between a GPU process and the renderer (`ipc_protocol::relay`): a stream
//! of what either child may send it, decoded as the launcher decodes it, in any order. Each
//! step is a tag byte and a length byte, then that many bytes:
//!
//! - tag 0: a `GpuToLauncher` (a `Frame` is checked, layers and all, and handed on or refused;
//!   `Serving` is checked against the renderer announced; `PrivateFences` makes frames name
//!   their fences outside the window);
//! - tag 1: a `RendererToLauncher` (a `Release` is checked against what the renderer holds and
//!   the frames it answered; `Presented`, `Rejected` and `GpuViolation` answer a frame);
//! - tag 2: a new renderer announced (its pid and the frame it resumes from, from the bytes);
//! - tag 3: a new size generation started.
//!
//! The first byte says whether the GPU process announced progress fences: then every fence
//! handed on is a point of its page, each above the one before; otherwise none is.
//!
//! Whatever comes, the relay's state stays bounded: never more buffers held than the pools
//! hold, and a layer is starved only when the renderer holds its whole pool.
#![no_main]

use ipc_protocol::channel::decode;
use ipc_protocol::frame::{FenceKind, FileId};
use ipc_protocol::messages::{GpuToLauncher, RendererToLauncher};
use ipc_protocol::relay::{Handed, Relay};
use libfuzzer_sys::fuzz_target;

const LAYERS: u32 = 3;
const POOL: u32 = 3;

/// The progress page of the runs whose first byte is odd.
const PAGE: FileId = FileId { dev: 7, ino: 4242 };

fuzz_target!(|data: &[u8]| {
    let mut relay = Relay::new(1, 1234, (512, 768), LAYERS, POOL, 0);
    // An odd first byte: the GPU process announced progress fences on `PAGE`.
    let progress = data.first().is_some_and(|b| b % 2 == 1);
    // An even one: pipe fences, as the shm backend's without a page.
    let kind = if progress {
        FenceKind::Progress
    } else {
        FenceKind::Pipe
    };
    relay.fence_kind(kind);
    if progress {
        relay.progress_page(Some(PAGE));
    }
    let mut last_point = 0u64;
    let mut generation = 0u32;
    let mut rest = data.get(1..).unwrap_or_default();
    while let [tag, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (msg, next) = tail.split_at(n);
        rest = next;
        match tag % 6 {
            0 => match decode::<GpuToLauncher>(msg, Vec::new()) {
                Ok((GpuToLauncher::Frame { msg: f, .. }, _)) => {
                    let handed = relay.frame(&f, generation, std::time::Instant::now());
                    if matches!(handed, Ok(Handed::On)) {
                        // Every fence handed on is of the kind announced; progress points only
                        // rise, and only on the page.
                        for l in &f.layers {
                            let fence = &l.buffer.fence;
                            assert_eq!(fence.kind, kind);
                            if progress {
                                assert_eq!(fence.fd.identity, PAGE);
                                assert!(fence.point > last_point);
                                last_point = fence.point;
                            }
                        }
                    }
                }
                Ok((GpuToLauncher::Serving { renderer, .. }, _)) => {
                    let _ = relay.serving(renderer);
                }
                Ok((GpuToLauncher::PrivateFences, _)) => relay.fences_private(),
                _ => {}
            },
            1 => match decode::<RendererToLauncher>(msg, Vec::new()) {
                Ok((RendererToLauncher::Release { epoch, buffer }, _)) => {
                    if relay.release(epoch, buffer, generation) == Ok(true) {
                        // Given back once: a second release of it is refused.
                        assert!(relay.release(epoch, buffer, generation).is_err());
                    }
                }
                Ok((RendererToLauncher::Presented(p), _)) => {
                    // A frame answers only a scene version the launcher sent.
                    if let Some(v) = relay.answered(p.frame) {
                        assert!(v <= relay.scene_sent_version());
                    }
                }
                Ok((RendererToLauncher::Rejected { frame, .. }, _)) => {
                    let _ = relay.answered(frame);
                }
                _ => {}
            },
            // The launcher sends a scene edit, and the GPU process answers a ping after it.
            4 => {
                let v = relay
                    .scene_sent_version()
                    .saturating_add(msg.first().copied().map_or(0, u64::from) % 3);
                relay.scene_sent(v);
                if msg.get(1).is_some_and(|b| b % 2 == 1) {
                    relay.scene_due(v);
                }
            }
            // The renderer says a frame kept an old buffer.
            5 => relay.kept_old(msg.first().copied().map_or(0, u64::from)),
            2 => {
                let pid = msg.first().copied().map_or(0, u32::from);
                let resume = msg.get(1).copied().map_or(0, u64::from);
                relay.new_renderer(pid, resume);
                assert_eq!(relay.held(), 0);
            }
            _ => generation = generation.saturating_add(1),
        }
        assert!(relay.held() <= (LAYERS * POOL) as usize);
        let _ = relay.holder(
            std::time::Instant::now(),
            std::time::Duration::from_millis(10),
        );
        if relay.starved().is_some() {
            assert!(relay.held() >= POOL as usize);
        }
    }
});
