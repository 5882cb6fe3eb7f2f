//! Four views in one real window, on a real X server (Xvfb) and a real Wayland compositor
//! (weston's headless backend): the views are tiled, each in a surface of its own (an X11 child
//! window, a `wl_subsurface`) showing its own renderer's output memfd, and what the server shows
//! at each tile is that view's scene's reference composite, every pixel. One view's renderer is
//! killed, then the GPU process: the run presents every frame of every view, the killed view's
//! included, and the last frames on screen are the references again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use triptych::window::Grid;
use triptych_scene::file::{reference_frame, reference_frame_shown, Scene};
use triptych_tests::views::{first_gpu, kill, parse, renderer_of, scenes, SIZE};
use triptych_tests::x11::{find, screenshot, window_id, Lines, Weston, Xvfb};
use triptych_tests::{children_named, scratch, summary, triptych, wait_until, wait_within};

const VIEWS: usize = 4;
const FRAMES: u64 = 180;

/// `triptych run` of `frames` frames of the four views in a window, with the display's
/// environment set by the caller.
fn command(dir: &Path, files: &[PathBuf], frames: u64) -> Command {
    let mut cmd = triptych(&["run", "--window", "--buffers", "shm"]);
    cmd.args(["--size", &format!("{}x{}", SIZE.0, SIZE.1)])
        .args(["--frames", &frames.to_string()])
        .arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(dir.join("s.json"))
        .env(
            "TRIPTYCH_LOG",
            std::env::var("TRIPTYCH_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for f in files {
        cmd.arg("--view").arg(f);
    }
    cmd
}

/// Kills view 2's renderer once every renderer runs, then the GPU process once that view is
/// back, and waits for every view's last frame to be on screen.
fn kill_and_recover(child: &std::process::Child, lines: &mut Lines) {
    let launcher = child.id();
    lines.wait_for("GPU process started", Duration::from_secs(60));
    assert!(
        wait_until(Duration::from_secs(30), || children_named(
            launcher, "renderer"
        )
        .len()
            == VIEWS),
        "four renderers"
    );
    std::thread::sleep(Duration::from_millis(500));
    kill(renderer_of(launcher, 2).expect("view 2's renderer"));
    lines.wait_for(
        "child crashed; restarting it role=renderer view=Some(2)",
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_millis(500));
    kill(first_gpu(launcher).expect("the GPU process"));
    lines.wait_for(
        "child crashed; restarting it role=gpu",
        Duration::from_secs(30),
    );
    for view in 0..VIEWS {
        lines.wait_for(
            &format!(
                "the last frame is on screen; it stays until the window is closed view={view} "
            ),
            Duration::from_secs(120),
        );
    }
}

/// Asserts that the view at each place of the grid, starting at `origin` of `shot` (`sw`
/// wide), shows its scene's reference of its last frame, every pixel.
fn assert_tiles(shot: &[u8], sw: u32, origin: (u32, u32), scenes: &[Scene]) {
    let grid = Grid::for_views(VIEWS as u32);
    let (w, h) = SIZE;
    for (place, scene) in (0u32..).zip(scenes) {
        let want = reference_frame(scene, FRAMES - 1, w, h, &[]).expect("predictable");
        let (ox, oy) = grid.origin(place, (w, h));
        let (ox, oy) = (origin.0 + ox as u32, origin.1 + oy as u32);
        let mut bad = 0;
        let mut first = None;
        for y in 0..h {
            for x in 0..w {
                let s = (((oy + y) * sw + ox + x) * 4) as usize;
                let r = ((y * w + x) * 4) as usize;
                if shot[s..s + 3] != want[r..r + 3] {
                    bad += 1;
                    first.get_or_insert((x, y, shot[s..s + 3].to_vec(), want[r..r + 3].to_vec()));
                }
            }
        }
        assert_eq!(
            bad, 0,
            "view {place}'s tile at ({ox}, {oy}): first {first:?}"
        );
    }
}

/// Asserts what the summary says of the run: every view presented every frame, view 2's
/// renderer restarted once, the GPU process once, and the present path is `path`.
fn assert_summary(s: &serde_json::Value, path: &str) {
    let views = s["views"].as_array().expect("views");
    assert_eq!(views.len(), VIEWS, "{s}");
    for (i, v) in views.iter().enumerate() {
        assert_eq!(v["frames"], FRAMES, "view {i} presented every frame: {v}");
        assert_eq!(v["last"], FRAMES - 1, "{v}");
        assert_eq!(v["restarts"], u64::from(i == 2), "view {i}: {v}");
    }
    let roles: Vec<_> = s["recovery"]["crashes"]
        .as_array()
        .expect("crashes")
        .iter()
        .map(|c| c["role"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(roles, ["renderer", "gpu"], "{s}");
    assert!(
        s["paths"]["present"]
            .as_str()
            .is_some_and(|p| p.starts_with(path)),
        "{}",
        s["paths"]["present"]
    );
}

fn stop(child: &mut std::process::Child, lines: &Lines) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let status = wait_within(child, Duration::from_secs(30), "the windowed launcher");
    assert!(status.success(), "{status:?}\n{}", lines.seen.join("\n"));
}

#[test]
fn four_views_tile_one_x11_window_in_child_windows_and_survive_kills() {
    let x = Xvfb::start(640, 480);
    let conn = x.connect();
    let dir = scratch("window-views-x11");
    let files = scenes(&dir, VIEWS);
    let mut cmd = command(&dir, &files, FRAMES);
    cmd.env("DISPLAY", &x.display).env_remove("WAYLAND_DISPLAY");
    let mut child = cmd.spawn().expect("starting triptych");
    let mut lines = Lines::new(child.stderr.take().expect("stderr"));
    let open = lines.wait_for("window open", Duration::from_secs(30));
    let xid = window_id(&open);
    kill_and_recover(&child, &mut lines);
    // The window holds the four tiles; GetImage of it includes its child windows.
    let (w, h, px) = screenshot(&conn, xid);
    let grid = Grid::for_views(VIEWS as u32);
    assert_eq!((w, h), grid.window(SIZE), "the window holds the grid");
    let scenes: Vec<Scene> = files.iter().map(|f| parse(f)).collect();
    assert_tiles(&px, w, (0, 0), &scenes);
    stop(&mut child, &lines);
    assert_summary(&summary(&dir.join("s.json")), "X11 MIT-SHM");
}

#[test]
fn four_views_tile_one_wayland_window_in_subsurfaces_and_survive_kills() {
    let weston = Weston::start(640, 480);
    let dir = scratch("window-views-wayland");
    let files = scenes(&dir, VIEWS);
    let mut cmd = command(&dir, &files, FRAMES);
    cmd.env_remove("DISPLAY")
        .env("XDG_RUNTIME_DIR", &weston.runtime_dir)
        .env("WAYLAND_DISPLAY", &weston.socket);
    let mut child = cmd.spawn().expect("starting triptych");
    let mut lines = Lines::new(child.stderr.take().expect("stderr"));
    lines.wait_for("window open", Duration::from_secs(30));
    kill_and_recover(&child, &mut lines);
    let scenes: Vec<Scene> = files.iter().map(|f| parse(f)).collect();
    let (w, h) = SIZE;
    let first = reference_frame(&scenes[0], FRAMES - 1, w, h, &[]).expect("predictable");
    let (sw, sh, shot) = weston.screenshot(&dir);
    let origin = find(&shot, sw, sh, &first, w, h).expect("view 0's last frame is on the output");
    assert_tiles(&shot, sw, origin, &scenes);
    stop(&mut child, &lines);
    assert_summary(&summary(&dir.join("s.json")), "Wayland wl_shm");
}

#[test]
fn the_pointer_moves_a_layer_of_the_view_under_it_and_the_kill_key_hits_that_view() {
    let x = Xvfb::start(640, 480);
    let conn = x.connect();
    let dir = scratch("window-views-input");
    let files = scenes(&dir, VIEWS);
    let mut cmd = command(&dir, &files, 100_000);
    cmd.env("DISPLAY", &x.display).env_remove("WAYLAND_DISPLAY");
    let mut child = cmd.spawn().expect("starting triptych");
    let mut lines = Lines::new(child.stderr.take().expect("stderr"));
    let open = lines.wait_for("window open", Duration::from_secs(30));
    let xid = window_id(&open);
    lines.wait_for("GPU process started", Duration::from_secs(60));
    triptych_tests::x11::press(&conn, xid, 0x20);
    let paused = lines.wait_for("paused=true", Duration::from_secs(20));
    // A step once paused: every view's frames are on screen, and stay.
    triptych_tests::x11::press(&conn, xid, u32::from(b'.'));
    for view in 0..VIEWS {
        lines.wait_for_after(
            &format!("the stepped frame is on screen view={view} "),
            &paused,
            Duration::from_secs(20),
        );
    }
    // View 3's tile is the bottom right one: its checker (its top layer, the one a pointer
    // picks) is under (30, 20) in the view's own coordinates.
    let grid = Grid::for_views(VIEWS as u32);
    let (ox, oy) = grid.origin(3, SIZE);
    let (px, py) = (ox as i16 + 30, oy as i16 + 20);
    triptych_tests::x11::drag(&conn, (px, py), (px + 50, py + 60));
    let picked = lines.wait_for("dragging a layer", Duration::from_secs(20));
    assert!(
        picked.contains("layer=1 x=30 y=20"),
        "the view's own layer, at its own coordinates: {picked}"
    );
    let put = lines.wait_for("put a layer down", Duration::from_secs(20));
    // The pointer stays over the layer: it is outlined.
    triptych_tests::x11::type_key(&conn, xid, u32::from(b'.'));
    let shown: Vec<u64> = (0..VIEWS)
        .map(|view| {
            let l = lines.wait_for_after(
                &format!("the stepped frame is on screen view={view} "),
                &put,
                Duration::from_secs(20),
            );
            l.split("frame=")
                .nth(1)
                .and_then(|t| t.split_whitespace().next()?.parse().ok())
                .expect("a frame number")
        })
        .collect();
    // Only view 3's checker moved, outlined under the pointer; the other views are as their
    // scenes draw them.
    let (w, _, shot) = screenshot(&conn, xid);
    let scenes: Vec<Scene> = files.iter().map(|f| parse(f)).collect();
    for (place, scene) in (0u32..).zip(&scenes) {
        let mut moves = triptych_scene::Moves::default();
        let hover = (place == 3).then(|| {
            moves.add(1, 50, 60);
            1
        });
        let want = reference_frame_shown(scene, shown[place as usize], SIZE, &[], &moves, hover)
            .expect("predictable");
        let (tx, ty) = grid.origin(place, SIZE);
        let bad = (0..SIZE.1)
            .flat_map(|y| (0..SIZE.0).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let s = (((ty as u32 + y) * w + tx as u32 + x) * 4) as usize;
                let r = ((y * SIZE.0 + x) * 4) as usize;
                shot[s..s + 3] != want[r..r + 3]
            })
            .count();
        assert_eq!(
            bad, 0,
            "view {place}: pixels off its reference, moves {moves:?}"
        );
    }
    // The view last pressed on has the keys: `r` kills its renderer.
    triptych_tests::x11::press(&conn, xid, u32::from(b'r'));
    lines.wait_for(
        "kill key: SIGKILL to the renderer view=3",
        Duration::from_secs(20),
    );
    lines.wait_for(
        "child crashed; restarting it role=renderer view=Some(3)",
        Duration::from_secs(30),
    );
    stop(&mut child, &lines);
}
