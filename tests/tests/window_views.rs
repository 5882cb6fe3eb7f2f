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
use triptych_tests::views::{first_gpu, kill, parse, renderer_of, scene_files, scenes, SIZE};
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

/// An application's window of [`APP_WINDOW`] with views added, placed and removed while it
/// runs (`triptych-views-app`), its commands answered on its stdout.
struct App {
    child: std::process::Child,
    lines: Lines,
    answers: std::sync::mpsc::Receiver<String>,
    stdin: std::process::ChildStdin,
    /// Every answer and note read so far.
    seen: Vec<String>,
}

/// The application's window size: each check composes what the window should show.
const APP_WINDOW: (u32, u32) = (480, 240);

impl App {
    fn start(scene: &Path, env: &[(&str, &std::ffi::OsStr)], remove: &str) -> App {
        let bin = triptych_tests::bin_dir();
        let mut child = Command::new(triptych_tests::bin("triptych-views-app"))
            .arg(&bin)
            .args([APP_WINDOW.0.to_string(), APP_WINDOW.1.to_string()])
            .arg(scene)
            .envs(env.iter().copied())
            .env_remove(remove)
            .env("TRIPTYCH_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting triptych-views-app");
        let lines = Lines::new(child.stderr.take().expect("stderr"));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, answers) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut app = App {
            child,
            lines,
            answers,
            stdin,
            seen: Vec::new(),
        };
        app.expect("ready");
        app
    }

    /// Waits for a line of the application's starting with `start`.
    fn expect(&mut self, start: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.answers.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(start) {
                        return line;
                    }
                    assert!(
                        !line.starts_with("crashed"),
                        "{line}\n{}",
                        self.seen.join("\n")
                    );
                }
                Err(_) => panic!(
                    "no {start:?} from the application: {}\n{}",
                    self.seen.join("\n"),
                    self.lines.seen.join("\n")
                ),
            }
        }
    }

    /// Sends `command` and returns the application's answer.
    fn ask(&mut self, command: &str) -> String {
        use std::io::Write;
        writeln!(self.stdin, "{command}").expect("a command to the application");
        self.expect_any(&["added", "placed", "removed", "refused", "quitting"])
    }

    fn expect_any(&mut self, starts: &[&str]) -> String {
        loop {
            let line = self.expect("");
            if starts.iter().any(|s| line.starts_with(s)) {
                return line;
            }
        }
    }
}

/// A view's scene at its rectangle in the window (x, y, width, height).
type Placed<'a> = (&'a Scene, (i32, i32, u32, u32));

/// What the window should show: each view's scene's reference at its rectangle, the later
/// views above the earlier ones.
fn composed(views: &[Placed<'_>]) -> Vec<u8> {
    let (ww, wh) = APP_WINDOW;
    let mut out = vec![0u8; (ww * wh * 4) as usize];
    for (scene, (vx, vy, w, h)) in views {
        let px = reference_frame(scene, 0, *w, *h, &[]).expect("predictable");
        for y in 0..*h {
            for x in 0..*w {
                let (wx, wy) = (vx + x as i32, vy + y as i32);
                if wx < 0 || wy < 0 || wx as u32 >= ww || wy as u32 >= wh {
                    continue;
                }
                let o = ((wy as u32 * ww + wx as u32) * 4) as usize;
                let i = ((y * w + x) * 4) as usize;
                out[o..o + 4].copy_from_slice(&px[i..i + 4]);
            }
        }
    }
    out
}

/// The pixels of the window in `shot` (`sw` wide, the window at `origin`) that differ from
/// `want`, and the first of them.
fn off(shot: &[u8], sw: u32, origin: (u32, u32), want: &[u8]) -> (usize, Option<(u32, u32)>) {
    let (ww, wh) = APP_WINDOW;
    let mut bad = (0, None);
    for y in 0..wh {
        for x in 0..ww {
            let s = (((origin.1 + y) * sw + origin.0 + x) * 4) as usize;
            let r = ((y * ww + x) * 4) as usize;
            if shot.get(s..s + 3) != want.get(r..r + 3) {
                bad.0 += 1;
                bad.1.get_or_insert((x, y));
            }
        }
    }
    bad
}

/// Once the first view's first frame is shown, adds, places and removes views in the
/// application's window, checking after each step that
/// the window shows every view's scene at its own rectangle and size (`shoot` takes the window's
/// screenshot: width, and RGBA pixels from its top-left corner on).
fn placed_views_script(
    app: &mut App,
    files: &[PathBuf],
    shoot: &dyn Fn() -> (u32, (u32, u32), Vec<u8>),
) {
    let scenes: Vec<Scene> = files.iter().map(|f| parse(f)).collect();
    let check = |app: &App, what: &str, views: &[Placed<'_>]| {
        let want = composed(views);
        let mut last = (0, None);
        let ok =
            triptych_tests::poll_until(Duration::from_secs(20), Duration::from_millis(200), || {
                let (sw, origin, shot) = shoot();
                last = off(&shot, sw, origin, &want);
                last.0 == 0
            });
        assert!(
            ok,
            "{what}: {} pixels off, first at {:?}\n{}",
            last.0,
            last.1,
            app.seen.join("\n")
        );
    };
    let (ww, wh) = APP_WINDOW;
    let (half, i32w) = (ww / 2, |n: u32| n as i32);
    check(
        app,
        "the first view fills the window",
        &[(&scenes[0], (0, 0, ww, wh))],
    );
    // A view added, tiled: the two take half the window each, the first resized.
    assert_eq!(app.ask(&format!("add {}", files[1].display())), "added 1");
    app.expect(&format!("shown 1 {half}x{wh}"));
    check(
        app,
        "two tiled views",
        &[
            (&scenes[0], (0, 0, half, wh)),
            (&scenes[1], (i32w(half), 0, half, wh)),
        ],
    );
    // Placed by the application, smaller: the first view is tiled alone again, under it.
    let r1 = (300, 130, 120, 90);
    assert_eq!(app.ask("place 1 300 130 120 90"), "placed 1");
    check(
        app,
        "view 1 placed",
        &[(&scenes[0], (0, 0, ww, wh)), (&scenes[1], r1)],
    );
    // One more, placed from its start.
    let r2 = (10, 10, 160, 120);
    assert_eq!(
        app.ask(&format!("add {} 10 10 160 120", files[2].display())),
        "added 2"
    );
    app.expect("shown 2 160x120");
    check(
        app,
        "view 2 placed from its start",
        &[
            (&scenes[0], (0, 0, ww, wh)),
            (&scenes[1], r1),
            (&scenes[2], r2),
        ],
    );
    // Moved over view 1: a view added later lies above.
    let r2 = (250, 100, 160, 120);
    assert_eq!(app.ask("place 2 250 100 160 120"), "placed 2");
    check(
        app,
        "view 2 over view 1",
        &[
            (&scenes[0], (0, 0, ww, wh)),
            (&scenes[1], r1),
            (&scenes[2], r2),
        ],
    );
    // The first view is the window itself: it is not moved from the corner.
    let refused = app.ask("place 0 5 5 100 100");
    assert!(refused.starts_with("refused the first view"), "{refused}");
    // Removed: its surface goes, and the first view shows where it was.
    assert_eq!(app.ask("remove 1"), "removed 1");
    check(
        app,
        "view 1 removed",
        &[(&scenes[0], (0, 0, ww, wh)), (&scenes[2], r2)],
    );
    assert_eq!(app.ask("quit"), "quitting");
    let summary = app.expect("summary ");
    let s: serde_json::Value =
        serde_json::from_str(&summary["summary ".len()..]).expect("the summary's JSON");
    let views = s["views"].as_array().expect("views");
    let shape: Vec<_> = views
        .iter()
        .map(|v| {
            (
                v["view"].as_u64().unwrap_or(99),
                v["width"].as_u64().unwrap_or(0),
                v["height"].as_u64().unwrap_or(0),
                v["removed"].as_bool().unwrap_or(false),
                v["placed"].clone(),
            )
        })
        .collect();
    assert!(
        shape.contains(&(
            0,
            u64::from(ww),
            u64::from(wh),
            false,
            serde_json::Value::Null
        )),
        "{shape:?}"
    );
    assert!(
        shape.contains(&(1, 120, 90, true, serde_json::json!([300, 130]))),
        "{shape:?}"
    );
    assert!(
        shape.contains(&(2, 160, 120, false, serde_json::json!([250, 100]))),
        "{shape:?}"
    );
    let status = wait_within(
        &mut app.child,
        Duration::from_secs(30),
        "triptych-views-app",
    );
    assert!(
        status.success(),
        "{status:?}\n{}",
        app.lines.seen.join("\n")
    );
}

#[test]
fn an_application_adds_places_and_removes_views_in_its_x11_window() {
    let x = Xvfb::start(640, 480);
    let conn = x.connect();
    let dir = scratch("window-views-placed-x11");
    let files = scene_files(&dir, 3, false);
    let mut app = App::start(
        &files[0],
        &[("DISPLAY", x.display.as_ref())],
        "WAYLAND_DISPLAY",
    );
    let open = app.lines.wait_for("window open", Duration::from_secs(30));
    let xid = window_id(&open);
    app.expect(&format!("shown 0 {}x{}", APP_WINDOW.0, APP_WINDOW.1));
    placed_views_script(&mut app, &files, &|| {
        let (w, _, px) = screenshot(&conn, xid);
        (w, (0, 0), px)
    });
}

#[test]
fn an_application_adds_places_and_removes_views_in_its_wayland_window() {
    let weston = Weston::start(640, 480);
    let dir = scratch("window-views-placed-wayland");
    let files = scene_files(&dir, 3, false);
    let mut app = App::start(
        &files[0],
        &[
            ("XDG_RUNTIME_DIR", weston.runtime_dir.as_os_str()),
            ("WAYLAND_DISPLAY", weston.socket.as_ref()),
        ],
        "DISPLAY",
    );
    // Where the window lies on the output: where the first view's frame is, alone in it.
    app.expect(&format!("shown 0 {}x{}", APP_WINDOW.0, APP_WINDOW.1));
    let first = composed(&[(&parse(&files[0]), (0, 0, APP_WINDOW.0, APP_WINDOW.1))]);
    let mut origin = None;
    triptych_tests::poll_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let (sw, sh, shot) = weston.screenshot(&dir);
        origin = find(&shot, sw, sh, &first, APP_WINDOW.0, APP_WINDOW.1);
        origin.is_some()
    });
    let origin = origin.expect("the window on the output");
    let shots = dir.clone();
    placed_views_script(&mut app, &files, &move || {
        let (sw, _, shot) = weston.screenshot(&shots);
        (sw, origin, shot)
    });
}
