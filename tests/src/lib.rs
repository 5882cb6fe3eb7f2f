//! Helpers for triptych's process-level tests: where the built binaries are, how to run the
//! launcher and read what it produced, and how to look at processes through `/proc`.
//!
//! Every wait here has a deadline, generous enough that a loaded machine never reaches it
//! ([`PROCESS_DEADLINE`] for a whole child process): it is there so that a hung child fails its
//! test, naming what it waited for, instead of hanging the suite. No test asserts how long
//! something took; speed is what `triptych-bench` measures. A test waits for the event it needs
//! (a log line, a process in `/proc`, a fd in a child's table, pixels on the screen), never for a
//! fixed time that stands in for it.
//!
//! # Tests that depend on the machine
//!
//! A test whose subject this machine lacks says `skipped: <what is missing>` on stderr and passes
//! ([`skip_or_fail`]), unless the variable below that names its subject is `1`: then it fails.
//! Where a machine has the subject, its variable is set, so that there a broken detection fails
//! instead of skipping. `scripts/test.sh` sets the host's (detected on their own, the way the
//! tests detect them), and the VM run (`tests/vm/run-vm-tests.sh`) sets the VM's.
//!
//! | variable | `1` says that this machine has | set by | tests that need it |
//! | --- | --- | --- | --- |
//! | `TRIPTYCH_REQUIRE_AVX2` | a CPU with AVX2 | `scripts/test.sh` (`/proc/cpuinfo`) | the AVX2 compositing kernel (`sys/src/simd.rs`, `renderer-process/src/composite.rs`) |
//! | `TRIPTYCH_REQUIRE_USERNS` | unprivileged user namespaces | `scripts/test.sh` (`unshare --user`) | `sys/src/userns.rs` |
//! | `TRIPTYCH_REQUIRE_VGEM` | the vgem DRM device | the VM | `sys/tests/vgem.rs`, `vm_dmabuf.rs` |
//! | `TRIPTYCH_REQUIRE_DMABUF` | an EGL display that exports DMA-BUFs from a DRM render node, so that `--buffers auto` picks `dmabuf` | the VM | the GL export tests (`gpu-process/src/gl/dmabuf_export.rs`), `backends.rs`, `drift.rs` |
//! | `TRIPTYCH_REQUIRE_KMS_SWRAST` | a first DRM render node that Mesa drives with `kms_swrast` (as it drives vgem's) | the VM | `gpu-process/src/gl/dmabuf_export.rs` |
//! | `TRIPTYCH_REQUIRE_STRACE` | `strace`, allowed to trace a run and its sandboxed children | `scripts/test.sh` (`strace -f true`) | `mailbox.rs` |
//! | `TRIPTYCH_REQUIRE_NO_DRI` | no DRM device at all (`/dev/dri` empty or absent), so that DMA-BUF export cannot work | `scripts/test.sh` (`/dev/dri`) | `backends.rs`, `doctor.rs`, `gpu-process/src/gl/dmabuf_export.rs` |
//!
//! `TRIPTYCH_REQUIRE_NO_DRI` is the one that asks for an absence: the tests that check how
//! triptych fails without a DRM device (`--buffers dmabuf` failing at once and naming what is
//! missing) cannot run where one exists, and on every build machine, which has none, they must.
#![forbid(unsafe_code)]

pub mod edit;
pub mod fake_gpu;
pub mod sandbox;
pub mod views;
pub mod x11;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The environment variable that names the directory holding the binaries under test, instead
/// of the one [`bin_dir`] derives from the test executable.
pub const BIN_DIR_VAR: &str = "TRIPTYCH_BIN_DIR";

/// The longest any one child process may run in a test before it is killed and the test fails.
pub const PROCESS_DEADLINE: Duration = Duration::from_secs(600);

/// The directory holding the workspace's binaries: `$TRIPTYCH_BIN_DIR` when set, otherwise
/// `target/<profile>`, found from the running test executable (`target/<profile>/deps/<test>`).
///
/// Why not `CARGO_BIN_EXE_<name>`: cargo sets it only for the binaries of the package the
/// integration test belongs to, and these tests live in their own package (`triptych-tests`)
/// while the three binaries belong to three others (`triptych-cli`, `triptych-gpu-process`,
/// `triptych-renderer-process`). Moving the tests into one of them would still leave the other two
/// binaries out, and artifact dependencies, which would name them all, are not in stable cargo.
/// The launcher finds its children next to its own executable, so the three must be in one
/// directory anyway; that directory is what this returns. The cost of the lookup: `cargo test
/// -p triptych-tests` does not build the binaries, so run `cargo build --workspace
/// --all-targets` first (as `scripts/test.sh` does); [`bin`] says so when one is missing.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(BIN_DIR_VAR) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// The path of workspace binary `name`; panics with a hint when it is not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is not built: run `cargo build --workspace --all-targets` first, or set \
         {BIN_DIR_VAR} to the directory that holds triptych, triptych-gpu and triptych-renderer",
        p.display()
    );
    p
}

/// `TRIPTYCH_REQUIRE_VGEM`: see [the table](crate#tests-that-depend-on-the-machine).
pub const REQUIRE_VGEM: &str = "TRIPTYCH_REQUIRE_VGEM";
/// `TRIPTYCH_REQUIRE_DMABUF`: see [the table](crate#tests-that-depend-on-the-machine).
pub const REQUIRE_DMABUF: &str = "TRIPTYCH_REQUIRE_DMABUF";
/// `TRIPTYCH_REQUIRE_NO_DRI`: see [the table](crate#tests-that-depend-on-the-machine).
pub const REQUIRE_NO_DRI: &str = "TRIPTYCH_REQUIRE_NO_DRI";
/// `TRIPTYCH_REQUIRE_STRACE`: see [the table](crate#tests-that-depend-on-the-machine).
pub const REQUIRE_STRACE: &str = "TRIPTYCH_REQUIRE_STRACE";

/// Whether variable `var` (one of the `REQUIRE_*` variables) is `1`: this machine has what it
/// names, and a test that needs it must run.
pub fn required(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v == "1")
}

/// Reports that this machine lacks what the calling test needs, `reason` saying what is
/// missing; the caller returns after it. Panics when `var` is `1` (see [`required`]): the
/// machine was said to have it, so its absence is a failure. Otherwise writes `skipped:
/// <reason>` straight to stderr, where libtest, which captures the `eprintln!` of passing
/// tests, does not hide it.
///
/// `var` names what the test needs, whatever that is: mostly a capability
/// (`TRIPTYCH_REQUIRE_VGEM`: a vgem device), but for a test of how triptych fails without a DRM
/// device it is the absence of one (`TRIPTYCH_REQUIRE_NO_DRI`: a machine with no `/dev/dri`,
/// where `reason` then names the device that is there).
#[track_caller]
pub fn skip_or_fail(var: &str, reason: &str) {
    use std::io::Write as _;
    assert!(
        !required(var),
        "{var}=1 says this machine can run the test, but: {reason}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {reason} (set {var}=1 to make this a failure)"
    );
}

/// A fresh scratch directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    // Unique per call: two tests of one binary running at once may use the same name (the same
    // escape attempt under two transports), and must not remove each other's files.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("triptych-test-{}-{n}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Deadlines for a run inside the test VM, which is emulated in software (no KVM) and so many
/// times slower than this machine: the first frame's shader compilation alone can take longer
/// than the default fence deadline there. Outside the VM (`TRIPTYCH_REQUIRE_VGEM` unset) none.
/// The fence deadline stays below vgem's own 10 s signal.
pub fn emulated_vm_args() -> &'static [&'static str] {
    if required(REQUIRE_VGEM) {
        &["--hang-timeout-ms", "60000", "--fence-timeout-ms", "8000"]
    } else {
        &[]
    }
}

/// `triptych` with `args`.
pub fn triptych(args: &[&str]) -> Command {
    let mut c = Command::new(bin("triptych"));
    c.args(args);
    c
}

/// Runs `cmd` with its output captured, returning that output; panics on a spawn error, and
/// kills the process and panics if it runs past [`PROCESS_DEADLINE`].
pub fn output(mut cmd: Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning triptych");
    finish_within(child, PROCESS_DEADLINE, &format!("{cmd:?}"))
}

/// Collects the output of `child` (its piped stdout and stderr, drained on their own threads so
/// a full pipe never stalls it) until it exits; kills it and panics naming `what`, with what it
/// printed, if it runs past `timeout` from now.
pub fn finish_within(mut child: Child, timeout: Duration, what: &str) -> Output {
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let (status, finished) = wait_or_kill(&mut child, timeout);
    let o = Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    };
    assert!(
        finished,
        "{what} ran past {timeout:?} and was killed\n{}",
        show(&o)
    );
    o
}

/// Waits for `child` to exit within `timeout`; kills it (and so, through their parent-death
/// signal, any children of a launcher) and panics naming `what` when it does not.
pub fn wait_within(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let (status, finished) = wait_or_kill(child, timeout);
    assert!(
        finished,
        "{what} did not exit within {timeout:?} and was killed"
    );
    status
}

/// Waits up to `timeout` for `child`; past it, kills and reaps it. Returns its status and
/// whether it exited by itself.
fn wait_or_kill(child: &mut Child, timeout: Duration) -> (ExitStatus, bool) {
    let mut status = None;
    let exited = wait_until(timeout, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    match status {
        Some(s) => (s, exited),
        None => {
            let _ = child.kill();
            (child.wait().expect("reaping a killed child"), false)
        }
    }
}

/// Stdout and stderr, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Reads a summary written with `--summary-json`.
pub fn summary(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Decodes an RGBA or RGB PNG into (width, height, RGBA pixels).
pub fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut dec = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("png header");
    let mut buf = vec![0; dec.output_buffer_size()];
    let info = dec.next_frame(&mut buf).expect("png data");
    buf.truncate(info.buffer_size());
    match info.color_type {
        png::ColorType::Rgba => (info.width, info.height, buf),
        // Screenshots come as RGB: opaque.
        png::ColorType::Rgb => {
            let rgba = buf
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect();
            (info.width, info.height, rgba)
        }
        other => panic!("{}: a PNG of colour type {other:?}", path.display()),
    }
}

/// Checks a composited frame against the scene's prediction at a grid of points plus every
/// layer's corners; returns the mismatches.
pub fn check_pixels(frame: u64, layers: u32, w: u32, h: u32, pixels: &[u8]) -> Vec<String> {
    let mut points = Vec::new();
    for gy in 0..9 {
        for gx in 0..9 {
            points.push((gx * (w - 1) / 8, gy * (h - 1) / 8));
        }
    }
    for l in 0..layers {
        let p = triptych_scene::placement(frame, l, layers, w, h);
        let (lw, lh) = triptych_scene::layer_size(l, w, h);
        for (dx, dy) in [
            (0i64, 0i64),
            (i64::from(lw) - 1, 0),
            (0, i64::from(lh) - 1),
            (i64::from(lw) - 1, i64::from(lh) - 1),
        ] {
            let (x, y) = (i64::from(p.x) + dx, i64::from(p.y) + dy);
            if x >= 0 && y >= 0 && x < i64::from(w) && y < i64::from(h) {
                points.push((x as u32, y as u32));
            }
        }
    }
    let mut bad = Vec::new();
    for (x, y) in points {
        let i = ((y * w + x) * 4) as usize;
        let want = triptych_scene::expected_pixel(frame, layers, w, h, x, y);
        if pixels[i..i + 4] != want {
            bad.push(format!(
                "({x}, {y}): got {:?}, expected {want:?}",
                &pixels[i..i + 4]
            ));
        }
    }
    bad
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // The state follows the parenthesised command name.
            let state = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
        Err(_) => false,
    }
}

/// Waits until `cond` holds or `timeout` passes, asking every 10 ms; returns whether it held.
pub fn wait_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    poll_until(timeout, Duration::from_millis(10), cond)
}

/// Like [`wait_until`], asking every `every`: for a condition that is costly to ask (a
/// screenshot taken by another program).
pub fn poll_until(timeout: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(every);
    }
    cond()
}

/// The pids of the children of `pid` with process name `comm`.
pub fn children_named(pid: u32, comm: &str) -> Vec<u32> {
    triptych_sys::proc::children(pid)
        .into_iter()
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|n| n.trim_end() == comm)
        })
        .collect()
}

// The hostile-child tests compare every attacked run with a clean one of the same shape.

/// The launcher's fd count at the end and peak memory of a clean run of the same shape.
pub fn clean_baseline() -> (u64, u64) {
    clean_baseline_with(false)
}

/// As [`clean_baseline`], with pipe fences where `pipes` (`--progress-fences off`: the launcher
/// keeps no progress page, one fd fewer).
pub fn clean_baseline_with(pipes: bool) -> (u64, u64) {
    static BASE: [std::sync::OnceLock<(u64, u64)>; 2] =
        [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    *BASE[usize::from(pipes)].get_or_init(|| {
        let dir = scratch(if pipes {
            "hostile-baseline-pipes"
        } else {
            "hostile-baseline"
        });
        let json = dir.join("summary.json");
        let mut cmd = triptych(&["run"]);
        cmd.args(["--frames", "40", "--size", "96x64", "--buffers", "shm"]);
        if pipes {
            cmd.args(["--progress-fences", "off"]);
        }
        cmd.arg("--out")
            .arg(dir.join("f.png"))
            .arg("--summary-json")
            .arg(&json);
        let o = output(cmd);
        assert!(o.status.success(), "{}", show(&o));
        let s = summary(&json);
        let fc = &s["processes"]["fd_counts"];
        (
            fc["launcher_at_end"].as_u64().expect("fds"),
            fc["launcher_peak_rss_kib"].as_u64().expect("rss"),
        )
    })
}

/// The launcher ends the attacked run with the fds of a clean one and no more than 32 MiB
/// more memory at its peak.
pub fn at_baseline(attack: &str, s: &serde_json::Value) {
    at_baseline_with(attack, s, false)
}

/// As [`at_baseline`], against a clean run with pipe fences where `pipes`.
pub fn at_baseline_with(attack: &str, s: &serde_json::Value, pipes: bool) {
    let (fds, rss) = clean_baseline_with(pipes);
    let fc = &s["processes"]["fd_counts"];
    assert_eq!(
        fc["launcher_at_end"].as_u64(),
        Some(fds),
        "{attack}: launcher fds: {fc}"
    );
    let peak = fc["launcher_peak_rss_kib"].as_u64().expect("rss");
    assert!(
        peak <= rss + 32 * 1024,
        "{attack}: launcher peak memory {peak} KiB against {rss} KiB in a clean run"
    );
}

/// Makes `dir/bin`, a directory of children for the launcher (`TRIPTYCH_BIN_DIR`) in which
/// `triptych-gpu` and `triptych-renderer` are the adversary binaries (`triptych-adversary`):
/// the children's own runs, started, confined and sandboxed by the real launcher as the product
/// binaries are, doing what their environment names (nothing, when it names nothing). Returns
/// the directory.
pub fn adversary_bin(dir: &std::path::Path) -> PathBuf {
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).expect("the adversaries' directory");
    for (child, adversary) in [
        ("triptych-gpu", "triptych-adversary-gpu"),
        ("triptych-renderer", "triptych-adversary-renderer"),
    ] {
        std::os::unix::fs::symlink(bin(adversary), bin_dir.join(child))
            .expect("linking an adversary");
    }
    bin_dir
}

/// Names `attack` for every process of `child` (`triptych-gpu` or `triptych-renderer`) whose
/// binary is in `bin_dir` (made by [`adversary_bin`]), replacements included: the launcher
/// passes the attack's variable to the first process of a role only.
pub fn attack_every(bin_dir: &std::path::Path, child: &str, attack: &str) {
    std::fs::write(bin_dir.join(format!("{child}.attack")), attack).expect("naming the attack");
}

/// `triptych run` of `frames` small shm frames with a hostile child: `variable` names the mode
/// (`TRIPTYCH_HOSTILE` for the renderer, `TRIPTYCH_HOSTILE_GPU`), `attack` the attack, `extra`
/// further arguments; the children are the adversaries of [`adversary_bin`]`(dir)`; the summary
/// goes to `dir/summary.json`. Traced, so the attacks meet the
/// trace path too, unless the attack is on tracing itself (a batch with tracing off) or `extra`
/// names its own trace.
pub fn hostile_command(
    variable: &str,
    attack: &str,
    frames: u64,
    extra: &[&str],
    dir: &std::path::Path,
) -> Command {
    let mut cmd = triptych(&["run"]);
    cmd.args([
        "--frames",
        &frames.to_string(),
        "--size",
        "96x64",
        "--buffers",
        "shm",
    ])
    .args(extra)
    .arg("--out")
    .arg(dir.join("f.png"))
    .arg("--summary-json")
    .arg(dir.join("summary.json"))
    .env("TRIPTYCH_BIN_DIR", adversary_bin(dir))
    .env(variable, attack);
    if attack != "trace-off" && !extra.contains(&"--trace") {
        cmd.arg("--trace").arg(dir.join("trace.json"));
    }
    cmd
}

/// Checks that a child's forged text reached the launcher's `log` only escaped inside a line of
/// its own: no line starts with the forged line's timestamp `forged_start`, no raw escape or
/// line separator is there, and the escaped text is.
pub fn assert_no_forged_line(log: &str, forged_start: &str) {
    assert!(
        !log.contains('\u{1b}') && !log.contains('\u{2028}'),
        "raw control characters:\n{log}"
    );
    for line in log.lines() {
        assert!(
            !line.starts_with(forged_start),
            "a forged line stands on its own in the log: {line:?}"
        );
    }
    assert!(
        log.contains("\\u{1b}[31mred"),
        "the forged text was never logged:\n{log}"
    );
}
