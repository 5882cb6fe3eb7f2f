//! Backend selection on this machine: `auto` says what it chose and why, `dmabuf` never falls
//! back silently. (Where a DMA-BUF-capable device exists, e.g. inside the vgem VM, the first test
//! checks that `auto` picked it instead.)

use triptych_tests::*;

fn dmabuf_capable() -> bool {
    !triptych_sys::proc::dri_nodes().is_empty()
}

#[test]
fn auto_reports_its_choice_and_why() {
    let dir = scratch("auto");
    let json = dir.join("s.json");
    let mut cmd = triptych(&[
        "run",
        "--frames",
        "5",
        "--size",
        "64x48",
        "--buffers",
        "auto",
    ]);
    // Generous deadlines: inside the emulated VM the first GL frame alone can take seconds.
    cmd.args([
        "--fence-timeout-ms",
        "30000",
        "--hang-timeout-ms",
        "60000",
        "--out",
    ]);
    cmd.arg(dir.join("f.png")).arg("--summary-json").arg(&json);
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&json);
    let stdout = String::from_utf8_lossy(&o.stdout);
    if dmabuf_capable() && s["backend"] == "dmabuf" {
        assert_eq!(s["fence"], "sync_file");
        assert!(s["backend_reason"].is_null());
    } else {
        assert_eq!(s["backend"], "shm", "{s}");
        assert_eq!(s["fence"], "pipe");
        let reason = s["backend_reason"]
            .as_str()
            .expect("a reason for the fallback");
        assert!(
            reason.contains("EGL_MESA_image_dma_buf_export") || reason.contains("DMA-BUF"),
            "{reason}"
        );
        assert!(stdout.contains("buffers: shm (fallback: "), "{stdout}");
        // The log says so too.
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("falling back to shm"),
            "{}",
            show(&o)
        );
    }
}

#[test]
fn dmabuf_without_support_fails_fast_naming_the_missing_piece() {
    if dmabuf_capable() {
        eprintln!(
            "skipped: this machine has /dev/dri; the vgem VM tests cover --buffers dmabuf there"
        );
        return;
    }
    let dir = scratch("dmabuf-fail");
    let mut cmd = triptych(&["run", "--frames", "5", "--buffers", "dmabuf", "--out"]);
    cmd.arg(dir.join("f.png"));
    let o = output(cmd);
    assert!(
        !o.status.success(),
        "--buffers dmabuf must not fall back: {}",
        show(&o)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--buffers dmabuf cannot work here"), "{err}");
    assert!(
        err.contains("EGL_MESA_image_dma_buf_export"),
        "the missing extension is not named: {err}"
    );
    assert!(
        err.contains("/dev/dri"),
        "the missing device is not named: {err}"
    );
    assert!(!dir.join("f.png").exists());
    // "At once": the GPU process never started, so no frame was rendered.
    assert!(!err.contains("GPU process started"), "{err}");
}

#[test]
fn doctor_reports_the_same_choice() {
    let o = output(triptych(&["doctor", "--json"]));
    assert!(o.status.success(), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("doctor --json");
    let names: Vec<&str> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for n in [
        "kernel",
        "pidfd_getfd",
        "ptrace permission",
        "seccomp",
        "user namespaces",
        "/dev/dri",
        "EGL",
        "EGL_MESA_image_dma_buf_export",
        "EGL_EXT_image_dma_buf_import_modifiers",
        "EGL_ANDROID_native_fence_sync",
    ] {
        assert!(names.contains(&n), "doctor lacks {n}: {names:?}");
    }
    let expected = if dmabuf_capable() { None } else { Some("shm") };
    if let Some(b) = expected {
        assert_eq!(v["auto"]["backend"], b, "{}", v["auto"]);
        assert!(v["auto"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("EGL_MESA_image_dma_buf_export")));
    }
}
