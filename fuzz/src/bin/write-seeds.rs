//! Writes the seed corpus of every fuzz target (`fuzz/corpus/<target>/`): one valid message of
//! each kind a target decodes, encoded exactly as the channel carries it (for the mailbox,
//! rings of such records, and records and indices that break each of its rules). Run from
//! `fuzz/` with
//! `cargo run --bin write-seeds` after a protocol change.

use std::path::Path;

use ipc_protocol::channel::{encode, Wire};
use ipc_protocol::frame::{BufferKind, FenceKind, DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_LINEAR};
use ipc_protocol::mailbox;
use ipc_protocol::messages::*;
use ipc_protocol::{BufferId, DrmFormat, Fence, FileId, Frame, Plane, RemoteFd};

fn write<T: Wire>(dir: &Path, name: &str, prefix: &[u8], msg: &T) {
    let mut bytes = prefix.to_vec();
    bytes.extend(encode(msg).expect("a seed message fits"));
    std::fs::write(dir.join(name), bytes).expect("writing a seed");
}

fn remote(fd: i32) -> RemoteFd {
    RemoteFd {
        pid: 1234,
        fd,
        identity: FileId { dev: 12, ino: 3456 },
    }
}

fn presented() -> RendererToLauncher {
    RendererToLauncher::Presented(Presented {
        frame: 0,
        generation: 0,
        epoch: 1,
        slot: 1,
        sent_ns: 1,
        ready_ns: 2,
        composited_ns: 3,
        damage: vec![ipc_protocol::damage::Rect {
            x: 0,
            y: 0,
            w: 64,
            h: 48,
        }],
        composited_px: 64 * 48,
    })
}

/// One mailbox record: the 8-byte head (length, kind, reserved) and `payload`, padded to a
/// record's size.
fn record(len: u16, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; mailbox::RECORD_BYTES];
    r[..2].copy_from_slice(&len.to_le_bytes());
    r[2] = kind;
    r[8..8 + payload.len()].copy_from_slice(payload);
    r
}

fn message_record<T: Wire>(msg: &T) -> Vec<u8> {
    let bytes = encode(msg).expect("a seed message fits");
    record(bytes.len() as u16, 1, &bytes)
}

/// A mailbox target input: the write index `ahead` of the reader's, then `records`.
fn write_ring(dir: &Path, name: &str, ahead: u32, records: &[Vec<u8>]) {
    let mut bytes = ahead.to_le_bytes().to_vec();
    for r in records {
        bytes.extend(r);
    }
    std::fs::write(dir.join(name), bytes).expect("writing a seed");
}

fn mailbox_seeds(dir: &Path) {
    let pong = message_record(&RendererToLauncher::Pong(7));
    let presented = message_record(&presented());
    let announce = record(0, 2, &[]);
    write_ring(dir, "presented", 1, &[presented.clone()]);
    write_ring(dir, "pong", 1, &[pong.clone()]);
    write_ring(dir, "announcement", 1, std::slice::from_ref(&announce));
    write_ring(
        dir,
        "pong-announcement-presented",
        3,
        &[pong.clone(), announce.clone(), presented.clone()],
    );
    let run: Vec<_> = (0..12u64)
        .map(|i| match i % 3 {
            0 => message_record(&RendererToLauncher::Pong(i)),
            1 => announce.clone(),
            _ => presented.clone(),
        })
        .collect();
    write_ring(dir, "twelve", 12, &run);
    // Broken: the write index, then each record rule.
    write_ring(
        dir,
        "index-past-the-ring",
        mailbox::RECORDS + 1,
        &[pong.clone()],
    );
    write_ring(dir, "index-behind", u32::MAX, &[pong.clone()]);
    write_ring(dir, "index-past-the-records", 4, &[pong.clone()]);
    let payload_max = mailbox::PAYLOAD_MAX as u16;
    write_ring(
        dir,
        "too-long",
        1,
        &[record(payload_max + 1, 1, &[0xff; 4])],
    );
    write_ring(dir, "empty-message", 1, &[record(0, 1, &[])]);
    write_ring(
        dir,
        "announcement-with-bytes",
        1,
        &[record(3, 2, &[1, 2, 3])],
    );
    write_ring(
        dir,
        "unknown-kind",
        2,
        &[pong.clone(), record(4, 9, &[0; 4])],
    );
    write_ring(dir, "undecodable", 1, &[record(2, 1, &[0xff, 0xff])]);
    let mut trailing = encode(&RendererToLauncher::Pong(7)).expect("pong");
    trailing.push(0);
    write_ring(
        dir,
        "trailing",
        1,
        &[record(trailing.len() as u16, 1, &trailing)],
    );
}

fn main() {
    let root = Path::new("corpus");
    let dirs = ["child_to_launcher", "relay", "violation_report", "mailbox"];
    for d in dirs {
        std::fs::create_dir_all(root.join(d)).expect("corpus dir");
    }
    let c2l = root.join("child_to_launcher");
    write(&c2l, "gpu-pong", &[0], &GpuToLauncher::Pong(7));
    write(
        &c2l,
        "gpu-serving",
        &[0],
        &GpuToLauncher::Serving {
            view: ViewId(0),
            renderer: 9,
        },
    );
    write(
        &c2l,
        "gpu-failed",
        &[0],
        &GpuToLauncher::Failed("no EGL".into()),
    );
    write(
        &c2l,
        "gpu-fault",
        &[0],
        &GpuToLauncher::FaultFired {
            at_ns: 5,
            fault: Fault {
                frame: 2,
                point: FaultPoint::GpuRender,
                action: FaultAction::Kill,
            },
        },
    );
    write(&c2l, "renderer-presented", &[1], &presented());
    write(
        &c2l,
        "renderer-output",
        &[1],
        &RendererToLauncher::Output {
            generation: 0,
            fd: remote(4),
            slots: 3,
            slot_bytes: 1228800,
        },
    );
    write(
        &c2l,
        "renderer-timeout",
        &[1],
        &RendererToLauncher::FenceTimeout {
            epoch: 1,
            frame: 4,
            layer: 2,
            fence: remote(530),
        },
    );
    write(
        &c2l,
        "renderer-stats",
        &[1],
        &RendererToLauncher::Stats(RendererStats::default()),
    );
    let release = |slot| RendererToLauncher::Release {
        epoch: 1,
        buffer: BufferId {
            slot,
            generation: 1,
        },
    };
    write(&c2l, "renderer-release", &[1], &release(2));
    write(
        &c2l,
        "renderer-gpu-violation",
        &[1],
        &RendererToLauncher::GpuViolation {
            epoch: 1,
            frame: 4,
            fence_of_layer: Some(0),
            what: "a pipe fence that is no pipe".into(),
        },
    );
    let layer = |l: u32| LayerMsg {
        layer: l,
        placement: LayerPlacement {
            x: -3,
            y: 7,
            z: l as i32,
            opacity: 200,
        },
        buffer: Frame {
            id: BufferId {
                slot: l,
                generation: 1,
            },
            kind: BufferKind::Shm,
            format: DrmFormat {
                fourcc: DRM_FORMAT_ABGR8888,
                modifier: DRM_FORMAT_MOD_LINEAR,
            },
            width: 64,
            height: 48,
            planes: vec![Plane {
                fd: remote(512 + l as i32),
                offset: 0,
                stride: 256,
            }],
            fence: Fence {
                kind: FenceKind::Pipe,
                fd: remote(600 + l as i32),
                point: 0,
            },
        },
        damage: vec![ipc_protocol::damage::Rect {
            x: 4,
            y: 4,
            w: 16,
            h: 8,
        }],
        damage_since: None,
    };
    let frame = |frame: u64, slots: [u32; 3]| {
        let mut layers: Vec<LayerMsg> = (0..3).map(layer).collect();
        for (l, s) in layers.iter_mut().zip(slots) {
            l.buffer.id.slot = s;
        }
        GpuToLauncher::Frame {
            view: ViewId(0),
            msg: FrameMsg {
                epoch: 1,
                generation: 0,
                frame,
                sent_ns: 99,
                scene_version: 0,
                layers,
            },
        }
    };
    write(&c2l, "gpu-frame", &[0], &frame(0, [0, 1, 2]));
    // The relay's steps: a tag, a length, the message.
    let step = |tag: u8, bytes: Vec<u8>| {
        let mut s = vec![tag, bytes.len() as u8];
        s.extend(bytes);
        s
    };
    let relay = root.join("relay");
    // The relay target's first byte: odd when the GPU process announced progress fences.
    let flagged = |flag: u8, steps: &[u8]| [&[flag][..], steps].concat();
    let answer_of = |frame: u64| RendererToLauncher::Rejected {
        epoch: 1,
        frame,
        reason: "seed".into(),
    };
    let mut steady = Vec::new();
    for (n, slots) in [(0, [0, 3, 6]), (1, [1, 4, 7]), (2, [2, 5, 8])] {
        steady.extend(step(0, encode(&frame(n, slots)).expect("frame")));
        let answer = RendererToLauncher::Rejected {
            epoch: 1,
            frame: n,
            reason: "seed".into(),
        };
        steady.extend(step(1, encode(&answer).expect("answer")));
        steady.extend(step(1, encode(&release(slots[0])).expect("release")));
    }
    std::fs::write(relay.join("steady"), flagged(0, &steady)).expect("seed");
    let mut switch = steady.clone();
    switch.extend(step(2, vec![9, 1]));
    switch.extend(step(0, encode(&frame(3, [0, 3, 6])).expect("frame")));
    switch.extend(step(
        0,
        encode(&GpuToLauncher::Serving {
            view: ViewId(0),
            renderer: 9,
        })
        .expect("serving"),
    ));
    switch.extend(step(0, encode(&frame(1, [0, 3, 6])).expect("frame")));
    switch.extend(step(3, Vec::new()));
    std::fs::write(relay.join("new-renderer"), flagged(0, &switch)).expect("seed");
    let mut twice = step(0, encode(&frame(0, [0, 3, 6])).expect("frame"));
    twice.extend(step(0, encode(&frame(0, [1, 4, 7])).expect("frame")));
    twice.extend(step(1, encode(&release(5)).expect("release")));
    std::fs::write(relay.join("lies"), flagged(0, &twice)).expect("seed");
    let mut vouched = step(0, encode(&frame(0, [0, 3, 6])).expect("frame"));
    vouched.extend(step(
        0,
        encode(&GpuToLauncher::PrivateFences).expect("private"),
    ));
    vouched.extend(step(0, encode(&frame(1, [1, 4, 7])).expect("frame")));
    std::fs::write(relay.join("vouched"), flagged(0, &vouched)).expect("seed");
    // Scene edits: one sent and due, then a frame of it, one that names less, one with a layer
    // left out, a frame that kept an old buffer.
    let edited = |n: u64, slots: &[u32], version: u64| {
        let GpuToLauncher::Frame { msg: mut f, .. } = frame(n, [0, 3, 6]) else {
            unreachable!("frame() makes frames")
        };
        f.layers.truncate(slots.len());
        for (l, s) in f.layers.iter_mut().zip(slots) {
            l.buffer.id.slot = *s;
        }
        f.scene_version = version;
        GpuToLauncher::Frame {
            view: ViewId(0),
            msg: f,
        }
    };
    let mut edits = step(4, vec![1, 1]);
    edits.extend(step(0, encode(&edited(0, &[0, 3, 6], 1)).expect("frame")));
    edits.extend(step(5, vec![0]));
    edits.extend(step(1, encode(&answer_of(0)).expect("answer")));
    edits.extend(step(0, encode(&edited(1, &[1, 4], 1)).expect("frame")));
    edits.extend(step(0, encode(&edited(2, &[2], 0)).expect("frame")));
    std::fs::write(relay.join("edits"), flagged(0, &edits)).expect("seed");
    // Progress fences on the target's page (dev 7, ino 4242): rising points, then one repeated.
    let pointed = |n: u64, slots: [u32; 3], first_point: u64| {
        let GpuToLauncher::Frame { msg: mut f, .. } = frame(n, slots) else {
            unreachable!("frame() makes frames")
        };
        for (i, l) in f.layers.iter_mut().enumerate() {
            l.buffer.fence = Fence {
                kind: FenceKind::Progress,
                fd: RemoteFd {
                    pid: 1234,
                    fd: -1,
                    identity: FileId { dev: 7, ino: 4242 },
                },
                point: first_point + i as u64,
            };
        }
        GpuToLauncher::Frame {
            view: ViewId(0),
            msg: f,
        }
    };
    let mut progress = Vec::new();
    for (n, slots) in [(0, [0, 3, 6]), (1, [1, 4, 7])] {
        progress.extend(step(
            0,
            encode(&pointed(n, slots, 1 + 3 * n)).expect("frame"),
        ));
        progress.extend(step(1, encode(&answer_of(n)).expect("answer")));
    }
    progress.extend(step(0, encode(&pointed(2, [2, 5, 8], 2)).expect("frame")));
    std::fs::write(relay.join("progress"), flagged(1, &progress)).expect("seed");
    let rec = triptych_sys::seccomp::TrapRecord {
        arch: 0xc000_003e,
        nr: 257,
        pid: 10,
        tid: 11,
        args: [0xffff_ff9c, 0x7fff_0000, 0, 0, 0, 0],
    };
    std::fs::write(root.join("violation_report").join("openat"), rec.encode()).expect("seed");
    mailbox_seeds(&root.join("mailbox"));
    println!("seeds written under {}", root.display());
}
