//! One executable: an application outside this workspace, depending on the library by path and
//! built with plain `cargo build`, ships nothing but its own executable, and its children are
//! that executable started in each role (`triptych::run_child_if_asked`).
//!
//! The test writes the application into a scratch directory (with this workspace's lock file,
//! so it builds the versions tested here), builds it into a target directory of its own (no
//! `triptych-gpu` or `triptych-renderer` is anywhere near it), and runs it with no children's
//! directory named: every frame is presented, a GPU process killed at frame 20 is replaced, the
//! children are confined (seccomp on every thread, no capabilities), and the summary names the
//! one-executable start. The same application, run with the policies in learning mode, is the
//! drift test of an application-shaped binary: its children make no call the policies do not
//! name, whatever the application's start-up did before the call.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use triptych_tests::{finish_within, required, scratch, show, summary};

/// The application: the call first, then a shell of 60 frames whose GPU process is killed at
/// frame 20, the summary written where its first argument says; `learn` as the second argument
/// runs the policies in learning mode.
const MAIN: &str = r#"
fn main() -> anyhow::Result<()> {
    triptych::run_child_if_asked();
    let mut args = std::env::args().skip(1);
    let out = args.next().expect("where to write the summary");
    let mut config = triptych::config::RunConfig::default();
    config.frames = 60;
    config.size = triptych::config::Size { width: 96, height: 64 };
    config.chaos.faults = vec![triptych::config::parse_fault("gpu-render:kill@20")
        .map_err(anyhow::Error::msg)?];
    if args.next().as_deref() == Some("learn") {
        config.sandbox = triptych::config::SandboxMode::Learn;
    }
    let shell = triptych::shell::ShellBuilder::with_config(config).spawn()?;
    for event in shell.events() {
        if matches!(event, triptych::shell::Event::Finished) {
            break;
        }
    }
    let summary = shell.wait()?;
    std::fs::write(out, serde_json::to_string_pretty(&summary)?)?;
    Ok(())
}
"#;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace above tests/")
        .to_path_buf()
}

/// Writes the application and builds it with plain `cargo build`; returns its executable.
fn build_app(dir: &Path) -> PathBuf {
    let ws = workspace();
    let manifest = format!(
        r#"[package]
name = "shell-app"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
triptych = {{ path = "{}", default-features = false, features = ["children"] }}
anyhow = "1"
serde_json = "1"

# Not a member of the workspace it is tested from.
[workspace]
"#,
        ws.join("launcher").display()
    );
    std::fs::create_dir_all(dir.join("src")).expect("the application's src/");
    std::fs::write(dir.join("Cargo.toml"), manifest).expect("the application's manifest");
    std::fs::write(dir.join("src/main.rs"), MAIN).expect("the application's main.rs");
    std::fs::copy(ws.join("Cargo.lock"), dir.join("Cargo.lock")).expect("the lock file");
    // A target directory of its own, beside this workspace's (whose lock the running test
    // command may hold), kept between runs so only a change rebuilds.
    let target = ws.join("target").join("one-executable-app");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.arg("build")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("starting cargo build");
    let o = finish_within(
        child,
        Duration::from_secs(1200),
        "cargo build of the application",
    );
    assert!(
        o.status.success(),
        "the application did not build: {}",
        show(&o)
    );
    let exe = target.join("debug").join("shell-app");
    assert!(exe.is_file(), "no {}", exe.display());
    for child in ["triptych-gpu", "triptych-renderer"] {
        for d in [target.join("debug"), target.clone()] {
            assert!(
                !d.join(child).exists(),
                "{child} is in {}: the run would not prove one executable",
                d.display()
            );
        }
    }
    exe
}

/// Runs the application; returns its summary.
fn run_app(exe: &Path, dir: &Path, mode: &str) -> serde_json::Value {
    let out = dir.join(format!("summary-{mode}.json"));
    let mut cmd = Command::new(exe);
    cmd.arg(&out)
        .arg(mode)
        .env_remove("TRIPTYCH_BIN_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("starting the application");
    let o = finish_within(child, Duration::from_secs(120), "the application");
    assert!(o.status.success(), "{mode}: {}", show(&o));
    summary(&out)
}

#[test]
fn an_application_built_with_plain_cargo_runs_its_children_from_its_own_executable() {
    let dir = scratch("one-executable");
    let exe = build_app(&dir);

    let s = run_app(&exe, &dir, "enforce");
    let children = s["processes"]["children"].as_str().expect("children");
    assert!(
        children.starts_with("one executable"),
        "the summary names {children:?}"
    );
    assert_eq!(s["frames"]["last"], 59, "every frame presented: {s}");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "the one GPU kill: {s}");
    assert_eq!(crashes[0]["role"], "gpu", "{s}");
    assert!(
        s["recovery"]["faults_fired"]
            .to_string()
            .contains("Kill at frame 20"),
        "{s}"
    );
    for role in ["gpu", "renderer"] {
        let l = &s["sandbox"][role];
        let threads = l["threads"].as_u64().expect("threads");
        assert!(threads > 0, "{role}: {l}");
        assert_eq!(
            l["seccomp_threads"], threads,
            "{role}: seccomp on every thread: {l}"
        );
        assert_eq!(l["no_new_privs_threads"], threads, "{role}: {l}");
        assert_eq!(l["cap_effective"], "0000000000000000", "{role}: {l}");
        assert_eq!(l["cap_bounding"], "0000000000000000", "{role}: {l}");
    }
    assert_eq!(
        s["sandbox"]["violations"].as_array().map(Vec::len),
        Some(0),
        "{s}"
    );
    // Where the machine has user namespaces, the application's children are in one, as the
    // command line's are: the launcher's checks of what the kernel allows work from any
    // executable.
    if required("TRIPTYCH_REQUIRE_USERNS") {
        assert_eq!(s["sandbox"]["user_namespace"], true, "{s}");
        for role in ["gpu", "renderer"] {
            assert_eq!(s["sandbox"][role]["user_namespace"], true, "{role}: {s}");
        }
    }

    // The drift test of an application-shaped binary.
    let s = run_app(&exe, &dir, "learn");
    assert_eq!(s["sandbox"]["mode"], "learn", "{s}");
    assert_eq!(s["frames"]["last"], 59, "{s}");
    let learned = &s["sandbox"]["learned"];
    assert_eq!(
        learned.as_array().map(Vec::len),
        Some(0),
        "the application's children made calls their policies do not name: {learned:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
