//! Writes the seed corpus of every fuzz target (`fuzz/corpus/<target>/`): one valid message of
//! each kind a target decodes, encoded exactly as the channel carries it. Run from `fuzz/` with
//! `cargo run --bin write-seeds` after a protocol change.

use std::path::Path;

use ipc_protocol::channel::{encode, Wire};
use ipc_protocol::frame::{BufferKind, FenceKind, DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_LINEAR};
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

fn main() {
    let root = Path::new("corpus");
    let dirs = ["child_to_launcher", "renderer_to_gpu", "gpu_to_renderer", "violation_report"];
    for d in dirs {
        std::fs::create_dir_all(root.join(d)).expect("corpus dir");
    }
    let c2l = root.join("child_to_launcher");
    write(&c2l, "gpu-produced", &[0], &GpuToLauncher::Produced { frame: 3 });
    write(&c2l, "gpu-pong", &[0], &GpuToLauncher::Pong(7));
    write(&c2l, "gpu-starved", &[0], &GpuToLauncher::Starved { layer: 1, frame: 9 });
    write(&c2l, "gpu-failed", &[0], &GpuToLauncher::Failed("no EGL".into()));
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
    write(
        &c2l,
        "renderer-presented",
        &[1],
        &RendererToLauncher::Presented(Presented {
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
        }),
    );
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
    write(&c2l, "renderer-stats", &[1], &RendererToLauncher::Stats(RendererStats::default()));
    let r2g = root.join("renderer_to_gpu");
    let release = |slot| RendererToGpu::Release {
        epoch: 1,
        buffer: BufferId { slot, generation: 1 },
    };
    let one = encode(&release(2)).expect("release");
    let mut stream = Vec::new();
    for s in [0, 1, 2, 1] {
        let b = encode(&release(s)).expect("release");
        stream.push(b.len() as u8);
        stream.extend(b);
    }
    std::fs::write(r2g.join("releases"), stream).expect("seed");
    let mut single = vec![one.len() as u8];
    single.extend(one);
    std::fs::write(r2g.join("release"), single).expect("seed");
    let layer = |l: u32| LayerMsg {
        layer: l,
        placement: LayerPlacement {
            x: -3,
            y: 7,
            z: l as i32,
            opacity: 200,
        },
        buffer: Frame {
            id: BufferId { slot: l, generation: 1 },
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
    write(
        &root.join("gpu_to_renderer"),
        "frame-3-layers",
        &[],
        &GpuToRenderer::Frame(FrameMsg {
            epoch: 1,
            generation: 0,
            frame: 0,
            sent_ns: 99,
            layers: (0..3).map(layer).collect(),
        }),
    );
    let rec = triptych_sys::seccomp::TrapRecord {
        arch: 0xc000_003e,
        nr: 257,
        pid: 10,
        tid: 11,
        args: [0xffff_ff9c, 0x7fff_0000, 0, 0, 0, 0],
    };
    std::fs::write(root.join("violation_report").join("openat"), rec.encode()).expect("seed");
    println!("seeds written under {}", root.display());
}
