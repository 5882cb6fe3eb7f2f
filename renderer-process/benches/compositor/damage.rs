//! Item 10: what the renderer's frame costs when only a 64x64 layer changed, against a full
//! composite of the same layers.
//!
//! The frame has three layers at 1920x1080, as a desktop with one small animated widget:
//!
//! - a full-frame opaque layer (the scene's layer 0, opacity 255);
//! - a large translucent panel (a scene panel, 960x540 at opacity 200) in the middle;
//! - a 64x64 layer over the panel's corner whose content changes every frame: two buffers of
//!   different content, taken in turn, as a layer's pool hands the renderer a new buffer.
//!
//! The value is the renderer's own work for such a frame, with its own calls, in the order its
//! frame loop makes them (`renderer-process/src/pipeline.rs`): the snapshot of what the frame
//! shows, [`output_damage`] against the frame presented before (the small layer's content
//! damage: all of it, relative to the frame before), [`Slots::present`] for the output slot the
//! frame goes to (three slots in turn, so each slot is three frames old and misses their
//! damage), and [`composite_region`] of the resulting region into that slot. The slots are
//! brought up to date with one full composite each before anything is timed, so every timed
//! frame is a steady-state one; each timed frame's region is checked to be the 64x64 square.
//!
//! The baseline is the frame without damage tracking: [`composite_in`] of the same three layers
//! over the whole frame into another output mapping. Buffers and outputs are memfd mappings, as
//! in the renderer. At the end, the slot written last must equal, byte for byte, a full
//! composite of the layers it shows: the check that the region was the right one.

use std::cell::RefCell;
use std::collections::BTreeMap;

use criterion::Criterion;
use ipc_protocol::damage::Region;
use ipc_protocol::frame::DRM_FORMAT_ABGR8888;
use renderer_process::composite::{composite_in, composite_region, Layer, OutputOrder};
use renderer_process::damage::{output_damage, ContentDamage, Slots, Snapshot, View};
use triptych_scene::LayerContent;
use triptych_sys::mapping::Mapping;

use crate::paired::Item;
use crate::{shared, FRAME_BYTES, HEIGHT, WIDTH};

/// Side of the changing layer.
pub const SMALL: u32 = 64;

/// Output slots, as the renderer keeps.
const SLOTS: u32 = 3;

/// The small layer's place: over the panel's top-left corner, so its pixels blend three layers.
const SMALL_AT: (i32, i32) = (448, 256);

/// The panel's place: centred.
const PANEL_AT: (i32, i32) = ((WIDTH / 4) as i32, (HEIGHT / 4) as i32);

/// Opacity of the panel.
const PANEL_OPACITY: u8 = 200;

/// A mapped layer buffer filled with `content`.
fn buffer(name: &str, content: &LayerContent) -> Mapping {
    let mut m = shared(name, content.width as usize * content.height as usize * 4);
    content.fill(m.as_mut_slice());
    m
}

/// The small layer's two contents: opaque, every texel different from the other's.
fn small_content(which: u64) -> LayerContent {
    let (fill, mark) = if which == 0 {
        ([200, 40, 60, 255], [250, 250, 250, 255])
    } else {
        ([40, 180, 90, 255], [10, 10, 10, 255])
    };
    LayerContent {
        width: SMALL,
        height: SMALL,
        background: fill,
        rects: vec![(
            triptych_scene::Rect {
                x: 8 + 24 * which as u32,
                y: 16,
                w: 16,
                h: 32,
            },
            mark,
        )],
    }
}

/// A layer's buffer and where it is composited (its z is its index).
struct Placed<'a> {
    buffer: &'a Mapping,
    w: u32,
    h: u32,
    x: i32,
    y: i32,
    opacity: u8,
}

fn layers<'a>(placed: &[Placed<'a>]) -> Vec<Layer<'a>> {
    placed
        .iter()
        .enumerate()
        .map(|(z, p)| Layer {
            pixels: p.buffer.peer_bytes(),
            stride: p.w as usize * 4,
            width: p.w,
            height: p.h,
            fourcc: DRM_FORMAT_ABGR8888,
            x: p.x,
            y: p.y,
            z: z as i32,
            opacity: p.opacity,
        })
        .collect()
}

/// What the renderer remembers between frames.
struct Renderer {
    slots: Slots,
    outputs: Vec<Mapping>,
    presented: Option<Snapshot>,
    frame: u64,
}

impl Renderer {
    /// One frame, as the renderer's frame loop does it: the snapshot, the output damage, the
    /// slot's region, the composite of that region. Returns the region's pixels.
    fn frame(&mut self, placed: &[Placed<'_>]) -> u64 {
        self.frame += 1;
        let frame = self.frame;
        let views: BTreeMap<u32, View> = placed
            .iter()
            .enumerate()
            .map(|(i, p)| {
                // Only the small layer's content changes: it shows this frame's.
                let content = if i == 2 { (1, frame) } else { (1, 0) };
                let v = View {
                    x: p.x,
                    y: p.y,
                    w: p.w,
                    h: p.h,
                    z: i as i32,
                    opacity: p.opacity,
                    content,
                };
                (i as u32, v)
            })
            .collect();
        let now = Snapshot {
            width: WIDTH,
            height: HEIGHT,
            layers: views,
        };
        let mut content = BTreeMap::new();
        content.insert(
            2,
            ContentDamage {
                since: Some(frame - 1),
                region: Region::full(SMALL, SMALL),
            },
        );
        let damage = output_damage(self.presented.as_ref(), &now, &content);
        self.presented = Some(now);
        let slot = (frame % u64::from(SLOTS)) as u32;
        let region = self.slots.present(slot, damage, WIDTH, HEIGHT);
        let out = &mut self.outputs[slot as usize];
        composite_region(
            out.as_mut_slice(),
            WIDTH,
            HEIGHT,
            &mut layers(placed),
            &region,
            OutputOrder::Rgba,
            triptych_scene::BACKDROP,
        );
        std::hint::black_box(out.as_slice().as_ptr());
        region.area()
    }
}

/// Measures the damaged frame against a full composite.
pub fn measure(c: &mut Criterion) -> Item {
    let base = buffer(
        "bench-base",
        &triptych_scene::layer_content(7, 0, WIDTH, HEIGHT),
    );
    let panel_content = triptych_scene::layer_content(7, 1, WIDTH, HEIGHT);
    let panel = buffer("bench-panel", &panel_content);
    let small = [
        buffer("bench-small-a", &small_content(0)),
        buffer("bench-small-b", &small_content(1)),
    ];
    let placed = |frame: u64| {
        [
            Placed {
                buffer: &base,
                w: WIDTH,
                h: HEIGHT,
                x: 0,
                y: 0,
                opacity: 255,
            },
            Placed {
                buffer: &panel,
                w: panel_content.width,
                h: panel_content.height,
                x: PANEL_AT.0,
                y: PANEL_AT.1,
                opacity: PANEL_OPACITY,
            },
            Placed {
                buffer: &small[(frame % 2) as usize],
                w: SMALL,
                h: SMALL,
                x: SMALL_AT.0,
                y: SMALL_AT.1,
                opacity: 255,
            },
        ]
    };
    let mut r = Renderer {
        slots: Slots::new(SLOTS as usize),
        outputs: (0..SLOTS)
            .map(|i| shared(&format!("bench-slot-{i}"), FRAME_BYTES))
            .collect(),
        presented: None,
        frame: 0,
    };
    // Every slot gets its full composite once (its first frame is damaged whole), untimed.
    for _ in 0..SLOTS {
        let px = r.frame(&placed(r.frame + 1));
        assert_eq!(
            px,
            u64::from(WIDTH) * u64::from(HEIGHT),
            "a slot's first frame composites the whole frame"
        );
    }
    let full_out = RefCell::new(shared("bench-full", FRAME_BYTES));
    let renderer = RefCell::new(r);
    let want = u64::from(SMALL) * u64::from(SMALL);
    let mut it = Item::new(
        "10",
        format!("renderer frame, {SMALL}x{SMALL} of 3 layers changed: damage + region"),
        "full composite of the same 3 layers at 1080p".into(),
        0.02,
    );
    it.measure(
        c,
        "damaged_frame_1080p",
        "64x64_changed",
        || {
            let mut r = renderer.borrow_mut();
            let frame = r.frame + 1;
            let px = r.frame(&placed(frame));
            assert_eq!(
                px, want,
                "frame {frame} composites the {SMALL}x{SMALL} that changed"
            );
        },
        || {
            let mut out = full_out.borrow_mut();
            let frame = renderer.borrow().frame;
            composite_in(
                out.as_mut_slice(),
                WIDTH,
                HEIGHT,
                &mut layers(&placed(frame)),
                OutputOrder::Rgba,
                triptych_scene::BACKDROP,
            );
            std::hint::black_box(out.as_slice().as_ptr());
        },
    );
    // The slot written last holds the frame it was given: equal to a full composite of it.
    let r = renderer.into_inner();
    let mut out = full_out.into_inner();
    composite_in(
        out.as_mut_slice(),
        WIDTH,
        HEIGHT,
        &mut layers(&placed(r.frame)),
        OutputOrder::Rgba,
        triptych_scene::BACKDROP,
    );
    let slot = &r.outputs[(r.frame % u64::from(SLOTS)) as usize];
    if let Some(i) = slot
        .as_slice()
        .iter()
        .zip(out.as_slice())
        .position(|(a, b)| a != b)
    {
        let px = i / 4;
        panic!(
            "the damaged composite of frame {} differs from a full composite at ({}, {})",
            r.frame,
            px % WIDTH as usize,
            px / WIDTH as usize
        );
    }
    // And the small layer really is in it (the frame is not the same whatever the layer shows).
    let (x, y) = (SMALL_AT.0 as u32 + 1, SMALL_AT.1 as u32 + 1);
    let i = ((y * WIDTH + x) * 4) as usize;
    let shown = small_content(r.frame % 2).texel(1, 1);
    assert_eq!(
        slot.as_slice()[i..i + 4],
        shown,
        "the output pixel ({x}, {y}) is the small layer's"
    );
    it
}
