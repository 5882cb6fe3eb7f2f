//! `triptych doctor` tells fallbacks from failures: on this machine (software GL, no DRM device)
//! it exits 0 with warnings that name each fallback, and where the GPU process cannot load
//! libEGL it fails, naming EGL, as `triptych run` does there.

use triptych_tests::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `doctor` (`--json` with `json`), with no display named, so that the display line is the
/// headless one whatever the test runner's environment holds.
fn doctor(json: bool, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = triptych(if json {
        &["doctor", "--json"][..]
    } else {
        &["doctor"]
    });
    cmd.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    output(cmd)
}

/// The words of `text` that are Rust `Debug` forms rather than the documented names: `Some`,
/// `None`, and the variant names of the enums the report describes (the fence, buffer and
/// transport kinds, the violation reports, Landlock's enforcement, the EGL platform).
fn debug_forms(text: &str) -> Vec<String> {
    const VARIANTS: &[&str] = &[
        "Some",
        "None",
        "Ok",
        "Err",
        "Pipe",
        "SyncFile",
        "EventFd",
        "Shm",
        "DmaBuf",
        "Pidfd",
        "ScmRights",
        "Notify",
        "Signal",
        "Full",
        "Partial",
        "Device",
        "Surfaceless",
        "Gbm",
    ];
    let mut found: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| VARIANTS.contains(w))
        .map(str::to_owned)
        .collect();
    // A JSON value printed whole keeps its quotes (`platform "device"`).
    found.extend(
        text.lines()
            .filter(|l| l.contains('"'))
            .map(|l| format!("quoted value in: {l}")),
    );
    found
}

#[test]
fn the_debug_form_check_catches_what_it_is_for() {
    assert_eq!(debug_forms("fences: Pipe"), ["Pipe"]);
    assert_eq!(debug_forms("max = Some(4)"), ["Some"]);
    assert_eq!(debug_forms("platform \"device\"").len(), 1);
    assert!(debug_forms("fences: pipe; X11 ShmPutImage; none").is_empty());
}

#[test]
fn doctor_warns_of_fallbacks_and_exits_0_on_this_machine() {
    let o = doctor(false, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().map(str::trim_start).collect();
    assert!(
        !lines.iter().any(|l| l.starts_with("[FAIL]")),
        "a failure on this machine:\n{text}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("result: no failures")),
        "{text}"
    );
    let forms = debug_forms(&text);
    assert!(forms.is_empty(), "Debug forms {forms:?} in:\n{text}");
    // Every warning names what a run does instead.
    for l in lines.iter().filter(|l| l.starts_with("[warn]")) {
        assert!(
            l.contains("fall") || l.contains("instead") || l.contains("scm_rights"),
            "a warning without its fallback: {l}"
        );
    }
    let fence = lines.iter().find(|l| l.starts_with("fences: "));
    let fence = fence.unwrap_or_else(|| panic!("no fences line:\n{text}"));
    assert!(
        ["fences: progress page", "fences: sync_file"]
            .iter()
            .any(|f| fence.starts_with(f)),
        "{fence}"
    );
    let dri = triptych_sys::proc::dri_nodes();
    if dri.is_empty() {
        let line = lines.iter().find(|l| l.contains(" /dev/dri "));
        let line = line.unwrap_or_else(|| panic!("no /dev/dri line:\n{text}"));
        assert!(line.starts_with("[warn]"), "{line}");
        assert!(line.contains("no DRM device"), "{line}");
        assert!(line.contains("fall back to shm"), "{line}");
    } else {
        skip_or_fail(
            REQUIRE_NO_DRI,
            &format!("this machine has a DRM device ({dri:?}), so /dev/dri is no warning"),
        );
    }

    // The standby GPU process: on by default, and what a warm one holds, from the GPU process
    // that answered the EGL check.
    let standby = lines
        .iter()
        .find(|l| l.starts_with("[ ok ] standby GPU process "));
    let standby = standby.unwrap_or_else(|| panic!("no ok standby line:\n{text}"));
    assert!(
        standby.contains("on by default (--standby off to turn off)")
            && standby.contains("MiB resident")
            && standby.contains("(measured with the EGL check)"),
        "{standby}"
    );

    let o = doctor(true, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("doctor --json is not JSON ({e}): {}", show(&o)));
    assert_ne!(v["level"], "fail", "{v}");
    for c in v["checks"].as_array().expect("checks") {
        let level = c["level"]
            .as_str()
            .unwrap_or_else(|| panic!("no level: {c}"));
        assert!(["ok", "warn"].contains(&level), "{c}");
        assert_eq!(c["ok"], level == "ok", "{c}");
    }
    assert!(v["auto"]["backend"].is_string(), "{}", v["auto"]);
    // The standby's memory, in KiB: resident always, proportional where smaps_rollup is readable.
    let rss = v["standby"]["rss_kib"].as_u64();
    assert!(rss.is_some_and(|k| k > 0), "{}", v["standby"]);
    assert_eq!(
        v["standby"]["rss_kib"], v["egl"]["memory"]["rss_kib"],
        "{v}"
    );
    let pss = &v["standby"]["pss_kib"];
    assert!(
        pss.is_null() || pss.as_u64().is_some_and(|k| k > 0),
        "{pss}"
    );
    let standby = v["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "standby GPU process"))
        .unwrap_or_else(|| panic!("no standby check: {v}"));
    assert_eq!(standby["level"], "ok", "{standby}");
    // How many views a run may have here, and what bounds it.
    let views = v["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "views"))
        .unwrap_or_else(|| panic!("no views check: {v}"));
    assert_eq!(views["level"], "ok", "{views}");
    let most = triptych::config::default_max_views().min(64);
    assert!(
        views["detail"]
            .as_str()
            .is_some_and(|d| d.contains("views a run by default")
                && d.contains(&format!("{most} by this machine's memory"))),
        "{views}"
    );
    // The fence is named as the run summary names it.
    assert!(
        ["progress", "sync_file", "implicit"].contains(&v["auto"]["fence"].as_str().unwrap_or("")),
        "{}",
        v["auto"]
    );
}

/// A directory whose `libEGL.so.1` and `libEGL.so` are not libraries. With it first in
/// `LD_LIBRARY_PATH`, the dynamic loader finds these first and stops there with an error
/// ("file too short"), as it stops on a machine where libEGL is missing: the GPU process can
/// load no libEGL, under either name the EGL loader tries. The variable is one the launcher
/// passes to its children (`launcher/src/child.rs`, `ENV_ALLOWED`), so a run's GPU process gets
/// it as `doctor`'s does.
fn without_libegl(test: &str) -> String {
    let dir = scratch(test);
    for name in ["libEGL.so.1", "libEGL.so"] {
        std::fs::write(dir.join(name), b"").expect("writing a stand-in libEGL");
    }
    match std::env::var("LD_LIBRARY_PATH") {
        Ok(old) if !old.is_empty() => format!("{}:{old}", dir.display()),
        _ => dir.display().to_string(),
    }
}

#[test]
fn doctor_without_libegl_fails_naming_egl_as_a_run_does() {
    let path = without_libegl("doctor-no-egl");
    let env = [("LD_LIBRARY_PATH", path.as_str())];
    let o = doctor(false, &env);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let text = stdout(&o);
    let egl = text
        .lines()
        .map(str::trim_start)
        .find(|l| l.starts_with("[FAIL] EGL "))
        .unwrap_or_else(|| panic!("no failed EGL line:\n{text}"));
    assert!(egl.contains("libEGL"), "libEGL is not named: {egl}");
    assert!(egl.contains("`triptych run` fails"), "{egl}");
    assert!(text.contains("failure") && text.contains("(EGL"), "{text}");
    // The EGL extensions cannot be asked without a context, and are not listed as if missing.
    assert!(!text.contains("EGL_MESA_image_dma_buf_export"), "{text}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("EGL failed"), "{}", show(&o));

    let o = doctor(true, &env);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("doctor --json is not JSON ({e}): {}", show(&o)));
    assert_eq!(v["level"], "fail", "{v}");
    let checks = v["checks"].as_array().expect("checks");
    let egl = checks
        .iter()
        .find(|c| c["name"] == "EGL")
        .expect("EGL check");
    assert_eq!(egl["level"], "fail", "{egl}");
    assert_eq!(v["egl"]["ok"], false, "{}", v["egl"]);

    // A run here fails as doctor says, for the same reason.
    let dir = scratch("run-no-egl");
    let mut cmd = triptych(&["run", "--headless", "--frames", "1", "--out"]);
    cmd.arg(dir.join("f.png")).env("LD_LIBRARY_PATH", &path);
    let o = output(cmd);
    assert!(!o.status.success(), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("creating the GL context") && err.contains("libEGL"),
        "{}",
        show(&o)
    );
}
