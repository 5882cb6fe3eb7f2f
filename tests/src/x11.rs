//! A real X server for the window tests: Xvfb started per test, screenshots of a window read
//! back from the server (`GetImage`), and key presses sent as real input through XTEST, so the
//! launcher sees them exactly as it sees a keyboard.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, InputFocus};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

/// An Xvfb server, killed on drop.
#[derive(Debug)]
pub struct Xvfb {
    child: Child,
    /// `:N`.
    pub display: String,
}

impl Xvfb {
    /// Starts Xvfb on a free display (`-displayfd`) with one `width` x `height` x 24 screen.
    /// Panics, naming what is missing, when Xvfb is not installed.
    pub fn start(width: u32, height: u32) -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0"])
            .arg(format!("{width}x{height}x24"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting Xvfb failed ({e}): install it with `apt-get install xvfb` (scripts/test.sh does)")
            });
        let mut out = child.stdout.take().expect("Xvfb's stdout");
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let mut s = String::new();
            let mut b = [0u8; 1];
            while out.read(&mut b).ok() == Some(1) && b[0] != b'\n' {
                s.push(b[0] as char);
            }
            let _ = tx.send(s);
        });
        let n = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("Xvfb did not print its display number within 20 s");
        assert!(!n.is_empty(), "Xvfb exited without a display number");
        Xvfb {
            child,
            display: format!(":{}", n.trim()),
        }
    }

    /// A connection to the server.
    pub fn connect(&self) -> RustConnection {
        x11rb::connect(Some(&self.display))
            .expect("connecting to Xvfb")
            .0
    }

    /// Starts `cmd` (a `triptych run --window ...`) on this server and no other, logging at
    /// `info`, with its stderr read line by line.
    pub fn spawn(&self, mut cmd: Command) -> (Child, Lines) {
        cmd.env("DISPLAY", &self.display)
            .env_remove("WAYLAND_DISPLAY")
            .env("TRIPTYCH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting triptych");
        let lines = Lines::new(child.stderr.take().expect("stderr"));
        (child, lines)
    }
}

/// Ends a window's run as Ctrl-C does (`SIGINT`), and checks that it exits 0 within 30 s.
pub fn interrupt(child: &mut Child, lines: &Lines) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let status = crate::wait_within(child, Duration::from_secs(30), "the launcher");
    assert!(status.success(), "{status:?}\n{}", lines.seen.join("\n"));
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pixels of `window` as the server holds them, as RGBA (alpha 255).
pub fn screenshot(conn: &RustConnection, window: u32) -> (u32, u32, Vec<u8>) {
    let g = conn
        .get_geometry(window)
        .expect("geometry")
        .reply()
        .expect("the window's geometry");
    let img = conn
        .get_image(ImageFormat::Z_PIXMAP, window, 0, 0, g.width, g.height, !0)
        .expect("GetImage")
        .reply()
        .expect("the window's pixels");
    let (w, h) = (u32::from(g.width), u32::from(g.height));
    let mut rgba = Vec::with_capacity((w * h * 4) as usize);
    for px in img.data.chunks_exact(4).take((w * h) as usize) {
        rgba.extend_from_slice(&[px[2], px[1], px[0], 255]);
    }
    (w, h, rgba)
}

/// Presses and releases the key that types `keysym` (an X keysym: `b'g' as u32`, `0x20` for
/// space), as real input, with `window` focused.
pub fn press(conn: &RustConnection, window: u32, keysym: u32) {
    let screen = &conn.setup().roots[0];
    let root = screen.root;
    // XTEST: 6 MotionNotify (xproto event code). The pointer goes to the screen's last pixel,
    // outside the tests' windows, so that it hovers no layer.
    let (cx, cy) = (
        screen.width_in_pixels as i16 - 1,
        screen.height_in_pixels as i16 - 1,
    );
    conn.xtest_fake_input(6, 0, 0, root, cx, cy, 0)
        .expect("motion");
    type_key(conn, window, keysym);
}

/// Like [`press`], leaving the pointer where it is.
pub fn type_key(conn: &RustConnection, window: u32, keysym: u32) {
    let setup = conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let map = conn
        .get_keyboard_mapping(min, max - min + 1)
        .expect("keyboard mapping")
        .reply()
        .expect("keyboard mapping");
    let per = usize::from(map.keysyms_per_keycode);
    let code = map
        .keysyms
        .chunks(per)
        .position(|syms| syms.contains(&keysym))
        .map(|i| min + i as u8)
        .unwrap_or_else(|| panic!("no keycode types keysym {keysym:#x}"));
    let root = setup.roots[0].root;
    // No window manager runs on the test server: give the window the focus as one would.
    // XTEST: 2 KeyPress, 3 KeyRelease (xproto event codes).
    conn.set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)
        .expect("focus");
    x11rb::wrapper::ConnectionExt::sync(conn).expect("sync");
    conn.xtest_fake_input(2, code, 0, root, 0, 0, 0)
        .expect("key press");
    conn.xtest_fake_input(3, code, 0, root, 0, 0, 0)
        .expect("key release");
    conn.flush().expect("flush");
}

/// Lines a child writes to stderr, read on a thread of their own.
#[derive(Debug)]
pub struct Lines {
    rx: Receiver<String>,
    /// Every line seen so far.
    pub seen: Vec<String>,
}

impl Lines {
    /// Reads `stderr` line by line.
    pub fn new(stderr: ChildStderr) -> Lines {
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(crate::sandbox::strip_ansi(&line)).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits up to `timeout` for a line containing `needle`; returns it, or panics with what
    /// was seen.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_from(0, needle, timeout, "")
    }

    /// Like [`Lines::wait_for`], for a line containing `needle` that comes after the line
    /// `after` (already seen).
    pub fn wait_for_after(&mut self, needle: &str, after: &str, timeout: Duration) -> String {
        let start = self
            .seen
            .iter()
            .position(|l| l == after)
            .map_or(0, |i| i + 1);
        self.wait_from(start, needle, timeout, &format!(" after {after:?}"))
    }

    fn wait_from(&mut self, start: usize, needle: &str, timeout: Duration, what: &str) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(l) = self.seen[start.min(self.seen.len())..]
            .iter()
            .find(|l| l.contains(needle))
        {
            return l.clone();
        }
        loop {
            match self.rx.recv_deadline(deadline) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(needle) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?}{what} within {timeout:?}; the launcher said:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// How many lines seen so far contain `needle`, after reading what is there now.
    pub fn count(&mut self, needle: &str) -> usize {
        while let Ok(l) = self.rx.try_recv() {
            self.seen.push(l);
        }
        self.seen.iter().filter(|l| l.contains(needle)).count()
    }
}

/// The XID in the launcher's `window open window=0x...` line.
pub fn window_id(line: &str) -> u32 {
    let at = line.find("window=\"0x").or_else(|| line.find("window=0x"));
    let rest = &line[at.expect("a window= field")..];
    let hex: String = rest
        .trim_start_matches("window=")
        .trim_start_matches('"')
        .trim_start_matches("0x")
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    u32::from_str_radix(&hex, 16).expect("a hex XID")
}

/// A headless weston (pixman renderer, desktop shell, the screenshooter enabled by `--debug`),
/// on a socket in a runtime directory of its own, killed on drop.
#[derive(Debug)]
pub struct Weston {
    child: Child,
    /// `XDG_RUNTIME_DIR` of the server.
    pub runtime_dir: std::path::PathBuf,
    /// `WAYLAND_DISPLAY`.
    pub socket: String,
    /// The server's log, shown when a test fails while the server runs.
    log: std::path::PathBuf,
}

impl Weston {
    /// Starts weston's headless backend with one `width` x `height` output. Panics, naming what
    /// is missing, when weston is not installed.
    pub fn start(width: u32, height: u32) -> Weston {
        let runtime_dir = crate::scratch("weston-runtime");
        std::fs::set_permissions(
            &runtime_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("runtime dir mode");
        let socket = format!("triptych-test-{}", std::process::id());
        // The desktop shell fades and zooms windows in; screenshots must see the pixels as sent.
        let config = runtime_dir.join("weston.ini");
        std::fs::write(
            &config,
            "[shell]\nanimation=none\nstartup-animation=none\nclose-animation=none\n",
        )
        .expect("writing weston.ini");
        let log = runtime_dir.with_extension("log");
        let child = Command::new("weston")
            .args(["--backend=headless-backend.so", "--use-pixman", "--debug", "--idle-time=0"])
            .arg(format!("--config={}", config.display()))
            .arg(format!("--log={}", log.display()))
            .arg(format!("--socket={socket}"))
            .arg(format!("--width={width}"))
            .arg(format!("--height={height}"))
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting weston failed ({e}): install it with `apt-get install weston` (scripts/test.sh does)")
            });
        let sock = runtime_dir.join(&socket);
        assert!(
            crate::wait_until(Duration::from_secs(20), || sock.exists()),
            "weston did not open {} within 20 s",
            sock.display()
        );
        Weston {
            child,
            runtime_dir,
            socket,
            log,
        }
    }

    /// A screenshot of the whole output, taken by `weston-screenshooter` into `dir`, as RGBA.
    pub fn screenshot(&self, dir: &std::path::Path) -> (u32, u32, Vec<u8>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with("wayland-screenshot")
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let mut c = Command::new("weston-screenshooter")
            .current_dir(dir)
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .env("WAYLAND_DISPLAY", &self.socket)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting weston-screenshooter (package weston)");
        let status = crate::wait_within(&mut c, Duration::from_secs(30), "weston-screenshooter");
        assert!(status.success(), "weston-screenshooter: {status:?}");
        let shot = std::fs::read_dir(dir)
            .expect("the screenshot directory")
            .flatten()
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("wayland-screenshot")
            })
            .expect("weston-screenshooter wrote no file");
        crate::read_png(&shot.path())
    }
}

impl Drop for Weston {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A client the server cut off, or the server's own end, is told only here.
            let exited = self.child.try_wait().ok().flatten();
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!(
                "weston ({}), the last lines of its log:",
                exited.map_or("still running".to_string(), |s| format!("exited: {s}"))
            );
            for l in tail.iter().rev() {
                eprintln!("  {l}");
            }
        }
        let _ = std::fs::remove_file(&self.log);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
    }
}

/// Where the `w` x `h` image `want` (RGBA) appears in `shot` (`sw` wide), comparing colour
/// only; `None` if nowhere.
pub fn find(shot: &[u8], sw: u32, sh: u32, want: &[u8], w: u32, h: u32) -> Option<(u32, u32)> {
    let at = |img: &[u8], iw: u32, x: u32, y: u32| {
        let i = ((y * iw + x) * 4) as usize;
        [img[i], img[i + 1], img[i + 2]]
    };
    for oy in 0..=sh.checked_sub(h)? {
        for ox in 0..=sw.checked_sub(w)? {
            if at(shot, sw, ox, oy) != at(want, w, 0, 0) {
                continue;
            }
            let all =
                (0..h).all(|y| (0..w).all(|x| at(shot, sw, ox + x, oy + y) == at(want, w, x, y)));
            if all {
                return Some((ox, oy));
            }
        }
    }
    None
}

/// Moves the pointer to (`x`, `y`) in root coordinates, as real input, without a button.
pub fn hover(conn: &RustConnection, (x, y): (i16, i16)) {
    let root = conn.setup().roots[0].root;
    // XTEST: 6 MotionNotify (xproto event code).
    conn.xtest_fake_input(6, 0, 0, root, x, y, 0)
        .expect("motion");
    x11rb::wrapper::ConnectionExt::sync(conn).expect("sync");
}

/// Drags with the first button from (`x0`, `y0`) to (`x1`, `y1`) in root coordinates (the
/// window sits at the origin: no window manager runs on the test server), as real input.
pub fn drag(conn: &RustConnection, (x0, y0): (i16, i16), (x1, y1): (i16, i16)) {
    let root = conn.setup().roots[0].root;
    // XTEST: 6 MotionNotify, 4 ButtonPress, 5 ButtonRelease (xproto event codes).
    conn.xtest_fake_input(6, 0, 0, root, x0, y0, 0)
        .expect("motion");
    conn.xtest_fake_input(4, 1, 0, root, 0, 0, 0)
        .expect("press");
    let steps = 4;
    for i in 1..=steps {
        let x = x0 + (x1 - x0) * i / steps;
        let y = y0 + (y1 - y0) * i / steps;
        conn.xtest_fake_input(6, 0, 0, root, x, y, 0)
            .expect("motion");
    }
    conn.xtest_fake_input(5, 1, 0, root, 0, 0, 0)
        .expect("release");
    x11rb::wrapper::ConnectionExt::sync(conn).expect("sync");
}

/// Keys and resizes for a launcher's window through a FIFO, for display servers that take no
/// input from outside: the run is `triptych-input-shim` (this crate's binary: the `triptych`
/// command line with its window's input read from the FIFO, `tests/src/bin/input-shim.rs`).
#[derive(Debug)]
pub struct TestInput {
    /// The FIFO, named to the shim in `TRIPTYCH_TEST_WINDOW_INPUT`.
    pub path: std::path::PathBuf,
    writer: Option<std::fs::File>,
}

impl TestInput {
    /// Makes the FIFO in `dir`.
    pub fn new(dir: &std::path::Path) -> TestInput {
        let path = dir.join("window-input");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        TestInput { path, writer: None }
    }

    /// The `triptych` command line `args`, run by the shim with its window's input read from
    /// this FIFO.
    pub fn triptych(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(crate::bin("triptych-input-shim"));
        c.args(args).env("TRIPTYCH_TEST_WINDOW_INPUT", &self.path);
        c
    }

    /// Sends one command line (`key g`, `key space`, `resize 400x300`). The first waits, up
    /// to 30 s, for the launcher to open its end.
    pub fn send(&mut self, command: &str) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if self.writer.is_none() {
            let mut opened = None;
            // Non-blocking, so that a launcher that never opens it fails the test (ENXIO
            // until a reader is there) instead of hanging it.
            let there = crate::wait_until(Duration::from_secs(30), || {
                opened = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
                    .open(&self.path)
                    .ok();
                opened.is_some()
            });
            assert!(there, "the launcher never opened {}", self.path.display());
            self.writer = opened;
        }
        let w = self.writer.as_mut().expect("the FIFO's writer");
        writeln!(w, "{command}").expect("writing to the test input FIFO");
    }
}
