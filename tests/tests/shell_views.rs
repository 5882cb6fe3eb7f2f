//! Views added and removed while a shell runs, through the library's API, with real sandboxed
//! renderers: each view's every frame is its own scene's reference, pixel for pixel; adding
//! one past the maximum is refused; a killed view's renderer restarts that view alone; a view
//! removed stops, and a view added after it takes its place.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use triptych::shell::{Buffers, FIRST_VIEW};
use triptych::shell::{
    Error, Event, PresentedFrame, RunConfig, ShellBuilder, Target, ViewConfig, ViewId, ViewRect,
};
use triptych_scene::file::{reference_frame, Scene};
use triptych_tests::edit::next;
use triptych_tests::views::{parse, scenes, SIZE};

/// What the test saw of one view.
#[derive(Default, Debug)]
struct Seen {
    frames: u64,
    last: Option<u64>,
    crashes: Vec<String>,
    gone: Option<Option<String>>,
}

/// The pixels of `px`, frame `frame`, that differ from `scene`'s reference.
fn differing(scene: &Scene, frame: u64, (w, h): (u32, u32), px: &[u8]) -> usize {
    let want = reference_frame(scene, frame, w, h, &[]).expect("predictable");
    px.chunks_exact(4)
        .zip(want.chunks_exact(4))
        .filter(|(a, b)| a != b)
        .count()
}

/// Checks presented frame `f` against `scene`, the scene of its view, pixel for pixel, and
/// against what was seen of the view, and counts it.
fn saw(seen: &mut BTreeMap<ViewId, Seen>, scene: &Scene, f: &PresentedFrame) {
    let px = f.pixels().expect("pixels asked for");
    assert_eq!(
        px.len() as u64,
        u64::from(f.width) * u64::from(f.height) * 4
    );
    let bad = differing(scene, f.frame, (f.width, f.height), px);
    assert_eq!(
        bad, 0,
        "{} frame {}: its own scene's reference",
        f.view, f.frame
    );
    let s = seen.entry(f.view).or_default();
    assert!(s.gone.is_none(), "a frame of {} after it was gone", f.view);
    assert!(s.last < Some(f.frame), "{}: frames in order", f.view);
    s.frames += 1;
    s.last = Some(f.frame);
}

/// A shell of `frames` frames paced at 30 a second, on shm, at [`SIZE`], its first view
/// drawing `scene`, its children from `bin`.
fn builder(bin: &Path, scene: &Path, frames: u64) -> ShellBuilder {
    let mut config = RunConfig::default();
    config.fps = Some(30);
    config.buffers = Buffers::Shm;
    ShellBuilder::with_config(config)
        .binaries(bin)
        .size(SIZE.0, SIZE.1)
        .scene(scene)
        .frames(frames)
}

#[test]
fn views_added_and_removed_while_running_each_present_their_own_scene() {
    let dir = triptych_tests::scratch("shell-views");
    let files = scenes(&dir, 4);
    const FRAMES: u64 = 60;
    let shell = builder(&triptych_tests::bin_dir(), &files[0], FRAMES)
        .max_views(3)
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    // Which scene each view draws, by its number.
    let mut drawn: BTreeMap<ViewId, Scene> = BTreeMap::from([(FIRST_VIEW, parse(&files[0]))]);
    let mut seen: BTreeMap<ViewId, Seen> = BTreeMap::new();
    let mut refused = None;
    let (mut killed, mut removed, mut replaced) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(180);
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::Presented(f) => {
                let scene = drawn.get(&f.view).expect("a frame of a view the shell has");
                saw(&mut seen, scene, &f);
                if f.view == FIRST_VIEW && f.frame == 2 {
                    // Two more views: the maximum is three.
                    for file in &files[1..3] {
                        let id = shell
                            .add_view(ViewConfig::new(file))
                            .expect("a view under the maximum");
                        drawn.insert(id, parse(file));
                    }
                    refused = Some(shell.add_view(ViewConfig::new(&files[3])));
                }
                let views: Vec<ViewId> = drawn.keys().copied().collect();
                if killed.is_none() && views.get(1) == Some(&f.view) && f.frame == 10 {
                    shell.kill(Target::Renderer(f.view));
                    killed = Some(f.view);
                }
                if removed.is_none() && views.get(2) == Some(&f.view) && f.frame == 15 {
                    shell.remove_view(f.view).expect("removing a view");
                    assert!(
                        matches!(shell.remove_view(f.view), Err(Error::NoSuchView(v)) if v == f.view)
                    );
                    assert!(matches!(
                        shell.remove_view(FIRST_VIEW),
                        Err(Error::FirstView)
                    ));
                    removed = Some(f.view);
                    // Its place is free again.
                    let id = shell
                        .add_view(ViewConfig::new(&files[3]))
                        .expect("a view in the removed one's place");
                    drawn.insert(id, parse(&files[3]));
                    replaced = Some(id);
                }
            }
            Event::Crashed { role, view, cause } => {
                let view = view.unwrap_or_else(|| panic!("{role} crashed: {cause}"));
                seen.entry(view).or_default().crashes.push(cause);
            }
            Event::Violation { role, call, .. } => panic!("{role}: {call}"),
            Event::ViewGone { view, failed } => seen.entry(view).or_default().gone = Some(failed),
            Event::Finished => break,
            _ => {}
        }
    }
    let summary = shell.wait().expect("the run's summary");
    assert!(
        matches!(refused, Some(Err(Error::TooManyViews { max: 3 }))),
        "a fourth view is refused: {refused:?}"
    );
    let (killed, removed, replaced) = (
        killed.expect("a view's renderer was killed"),
        removed.expect("a view was removed"),
        replaced.expect("a view was added in its place"),
    );
    assert_eq!(drawn.len(), 4, "{drawn:?}");
    // Every view but the removed one presented every frame; only the killed one crashed.
    for (view, s) in &seen {
        if *view == removed {
            assert_eq!(s.gone, Some(None), "removed, not given up: {s:?}");
            assert!(s.last >= Some(15), "{s:?}");
            continue;
        }
        assert_eq!(
            (s.frames, s.last),
            (FRAMES, Some(FRAMES - 1)),
            "{view}: {s:?}"
        );
        assert_eq!(s.gone, None, "{view}");
        let want = usize::from(*view == killed);
        assert_eq!(s.crashes.len(), want, "{view}: {:?}", s.crashes);
    }
    assert_eq!(seen.len(), 4);
    // The summary names all four, the removed one as removed.
    let views: Vec<_> = summary.views.iter().map(|v| (v.view, v.removed)).collect();
    assert_eq!(
        views,
        vec![
            (0, false),
            (killed.0, false),
            (removed.0, true),
            (replaced.0, false)
        ]
    );
    let restarts: Vec<u32> = summary.views.iter().map(|v| v.restarts).collect();
    assert_eq!(restarts, vec![0, 1, 0, 0], "{:?}", summary.views);
    assert!(summary
        .recovery
        .crashes
        .iter()
        .all(|c| c.view == Some(killed.0)));
}

#[test]
fn a_shell_built_with_views_recovers_every_one_from_a_gpu_process_crash() {
    let dir = triptych_tests::scratch("shell-views-gpu");
    let files = scenes(&dir, 3);
    const FRAMES: u64 = 40;
    let shell = builder(&triptych_tests::bin_dir(), &files[0], FRAMES)
        .view(ViewConfig::new(&files[1]))
        .view(ViewConfig::new(&files[2]))
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    let drawn: Vec<Scene> = files.iter().map(|f| parse(f)).collect();
    let mut seen: BTreeMap<ViewId, Seen> = BTreeMap::new();
    let mut gpu_crashes = Vec::new();
    let mut killed = false;
    let deadline = Instant::now() + Duration::from_secs(180);
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::Presented(f) => {
                saw(&mut seen, &drawn[f.view.0 as usize], &f);
                if !killed && f.view == ViewId(2) && f.frame == 12 {
                    shell.kill(Target::Gpu);
                    killed = true;
                }
            }
            Event::Crashed {
                view: None, cause, ..
            } => gpu_crashes.push(cause),
            Event::Crashed { role, view, cause } => panic!("{role} of {view:?}: {cause}"),
            Event::ViewGone { view, failed } => panic!("{view} gone: {failed:?}"),
            Event::Finished => break,
            _ => {}
        }
    }
    let summary = shell.wait().expect("the run's summary");
    assert_eq!(gpu_crashes.len(), 1, "{gpu_crashes:?}");
    assert_eq!(seen.len(), 3);
    for (view, s) in &seen {
        assert_eq!(
            (s.frames, s.last),
            (FRAMES, Some(FRAMES - 1)),
            "{view}: {s:?}"
        );
    }
    assert_eq!(summary.views.len(), 3);
}

#[test]
fn a_view_given_up_frees_its_place_and_is_removed_once() {
    // Every renderer of view 1 (the adversary's, from inside its sandbox) breaks the protocol
    // at once: past its restart ladder the view is given up.
    let dir = triptych_tests::scratch("shell-views-given-up");
    let files = scenes(&dir, 3);
    let bin = triptych_tests::adversary_bin(&dir);
    triptych_tests::attack_every(&bin, "triptych-renderer", "bogus-release@1");
    let shell = builder(&bin, &files[0], 90)
        .view(ViewConfig::new(&files[1]))
        .max_views(2)
        .spawn()
        .expect("spawning a shell");
    let mut gone = Vec::new();
    let mut replaced = None;
    let deadline = Instant::now() + Duration::from_secs(180);
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::ViewGone { view, failed } => {
                gone.push((view, failed.is_some()));
                // The adversary picks its view by export window, and the view added next may
                // take the given-up view's window once the GPU process has let go of it:
                // renderers started from now on are honest.
                std::fs::remove_file(bin.join("triptych-renderer.attack"))
                    .expect("ending the attack");
                // Its place is free: a view in it (the maximum is two), then the given-up one
                // removed, which frees what the run kept of it and says nothing more.
                let id = shell
                    .add_view(ViewConfig::new(&files[2]))
                    .expect("the given-up view's place is free");
                shell.remove_view(view).expect("a view given up is removed");
                assert!(matches!(shell.remove_view(view), Err(Error::NoSuchView(_))));
                replaced = Some(id);
            }
            Event::Crashed { view, .. } => {
                assert_eq!(view, Some(ViewId(1)), "only view 1's renderers crash")
            }
            Event::Finished => break,
            _ => {}
        }
    }
    let summary = shell.wait().expect("the run's summary");
    assert_eq!(gone, [(ViewId(1), true)], "one ViewGone, for the failure");
    let replaced = replaced.expect("a view replaced the given-up one");
    let views: Vec<_> = summary
        .views
        .iter()
        .map(|v| (v.view, v.failed.is_some(), v.removed, v.frames))
        .collect();
    assert_eq!(views[0], (0, false, false, 90), "{views:?}");
    assert_eq!(
        (views[1].0, views[1].1, views[1].2),
        (1, true, true),
        "{views:?}"
    );
    assert_eq!(views[2], (replaced.0, false, false, 90), "{views:?}");
}

/// A frame's size and its generation.
type Shape = ((u32, u32), u32);

#[test]
fn each_view_has_a_size_of_its_own_and_a_placed_view_keeps_it() {
    let dir = triptych_tests::scratch("shell-views-sizes");
    let files = scenes(&dir, 3);
    const FRAMES: u64 = 45;
    let shell = builder(&triptych_tests::bin_dir(), &files[0], FRAMES)
        .max_size(320, 240)
        .view(ViewConfig::new(&files[1]).rect(ViewRect::new(0, 0, 64, 200)))
        .view(ViewConfig::new(&files[2]))
        .pixels(true)
        .spawn()
        .expect("spawning a shell");
    let drawn: Vec<Scene> = files.iter().map(|f| parse(f)).collect();
    let mut seen: BTreeMap<ViewId, Seen> = BTreeMap::new();
    // Each view's (size, generation) in the order they came.
    let mut sizes: BTreeMap<ViewId, Vec<Shape>> = BTreeMap::new();
    let (mut placed, mut resized) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(180);
    while let Some(e) = next(&shell, deadline) {
        match e {
            Event::Presented(f) => {
                saw(&mut seen, &drawn[f.view.0 as usize], &f);
                let s = sizes.entry(f.view).or_default();
                let now = ((f.width, f.height), f.generation);
                if s.last() != Some(&now) {
                    s.push(now);
                }
                if !placed && f.view == ViewId(2) && f.frame == 10 {
                    // View 2, tiled so far, placed at a size of its own; far too large is
                    // clamped to the largest frame.
                    shell
                        .set_view_rect(ViewId(2), ViewRect::new(5, 5, 100, 5000))
                        .expect("placing a view");
                    assert!(matches!(
                        shell.set_view_rect(ViewId(7), ViewRect::new(0, 0, 1, 1)),
                        Err(Error::NoSuchView(ViewId(7)))
                    ));
                    placed = true;
                }
                if placed && !resized && f.view == FIRST_VIEW && f.frame == 25 {
                    // Only the views not placed follow the shell's size.
                    shell.resize(200, 100);
                    resized = true;
                }
            }
            Event::Crashed { role, view, cause } => panic!("{role} of {view:?}: {cause}"),
            Event::ViewGone { view, failed } => panic!("{view} gone: {failed:?}"),
            Event::Finished => break,
            _ => {}
        }
    }
    let summary = shell.wait().expect("the run's summary");
    // Every view presents its last frame. A resized view's frames asked for at its old size and
    // made after the resize are dropped, never shown (by the launcher, which counts them, or by
    // the renderer, which never composites them; at most those in flight at its one resize);
    // the view never resized presents every frame.
    let mut dropped = 0;
    for (view, s) in &seen {
        assert_eq!(s.last, Some(FRAMES - 1), "{view}: {s:?}");
        if *view == ViewId(1) {
            assert_eq!(s.frames, FRAMES, "{view}: {s:?}");
        }
        assert!(s.frames + 2 >= FRAMES, "{view}: {s:?}");
        dropped += FRAMES - s.frames;
    }
    assert!(
        summary.frames.dropped_for_resize <= dropped,
        "{} dropped by the launcher, {dropped} missing: {seen:?}",
        summary.frames.dropped_for_resize
    );
    assert_eq!(
        sizes[&FIRST_VIEW],
        [(SIZE, 0), ((200, 100), 1)],
        "the first view follows the shell's size"
    );
    assert_eq!(sizes[&ViewId(1)], [((64, 200), 0)], "placed from its start");
    assert_eq!(
        sizes[&ViewId(2)],
        [(SIZE, 0), ((100, 240), 1)],
        "placed while running, clamped, then left alone by the resize"
    );
    let ends: Vec<_> = summary
        .views
        .iter()
        .map(|v| (v.view, v.width, v.height, v.placed))
        .collect();
    assert_eq!(
        ends,
        [
            (0, 200, 100, None),
            (1, 64, 200, Some([0, 0])),
            (2, 100, 240, Some([5, 5]))
        ]
    );
}
