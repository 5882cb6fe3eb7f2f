//! The renderer's compositor, timed in-process on criterion, each value against a baseline timed
//! beside it in every sample ([`paired`]): items 5a, 5b ([`composite`]) and 10 ([`damage`]) of
//! the benchmarks' table (`docs/benchmarks.md`). `cargo bench -p triptych-renderer-process` runs
//! them; after criterion's own report a table prints each median ratio with its goal. The
//! cross-process items are `triptych-bench`'s.

mod composite;
mod damage;
mod paired;

use std::os::fd::AsFd;

use criterion::Criterion;
use triptych_sys::mapping::{Access, Mapping};

/// The frame's width.
const WIDTH: u32 = 1920;
/// The frame's height.
const HEIGHT: u32 = 1080;
/// Bytes of one 1080p RGBA frame.
const FRAME_BYTES: usize = WIDTH as usize * HEIGHT as usize * 4;

/// A writable mapping of a new sealed memfd of `bytes`, as the renderer's buffers and outputs
/// are.
fn shared(name: &str, bytes: usize) -> Mapping {
    let cname = std::ffi::CString::new(name).expect("a memfd name without NUL");
    let fd = triptych_sys::memfd::create_sealed(&cname, bytes as u64).expect("a sealed memfd");
    Mapping::new(fd.as_fd(), bytes, Access::ReadWrite).expect("mapping the memfd")
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let items = [
        composite::measure(&mut c, composite::Kind::Opaque),
        composite::measure(&mut c, composite::Kind::Translucent),
        damage::measure(&mut c),
    ];
    c.final_summary();
    paired::report(&items);
}
