//! Backend selection on this machine: `auto` says what it chose and why, `dmabuf` never falls
//! back silently. (Where a DMA-BUF-capable device exists, e.g. inside the vgem VM, the first test
//! checks that `auto` picked it instead; under `TRIPTYCH_REQUIRE_DMABUF=1` it must have.)

use triptych_tests::*;

/// Whether this machine has a DRM device node, without which DMA-BUF export cannot work.
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
    if required(REQUIRE_DMABUF) {
        // A DMA-BUF-capable machine: a fallback here is a broken detection, not a choice.
        assert_eq!(s["paths"]["backend"], "dmabuf", "{s}");
    }
    if dmabuf_capable() && s["paths"]["backend"] == "dmabuf" {
        // A driver's native fence is a sync_file per frame; fences that lie on the buffer (vgem's,
        // or a driver's implicit ones) are read from a buffer the renderer holds.
        let fence = s["paths"]["fence"].as_str().unwrap_or("");
        if required(REQUIRE_VGEM) {
            assert_eq!(fence, "implicit", "{s}");
        } else {
            assert!(["sync_file", "implicit"].contains(&fence), "{s}");
        }
        assert!(s["paths"]["backend_reason"].is_null());
    } else {
        assert_eq!(s["paths"]["backend"], "shm", "{s}");
        // Shm fences are points of the GPU process's progress page by default.
        assert_eq!(s["paths"]["fence"], "progress");
        let reason = s["paths"]["backend_reason"]
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
        skip_or_fail(
            REQUIRE_NO_DRI,
            &format!(
                "this machine has a DRM device ({:?}), and the test needs one without (the vgem \
                 VM tests cover --buffers dmabuf there)",
                triptych_sys::proc::dri_nodes()
            ),
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
    if required(REQUIRE_DMABUF) {
        assert_eq!(v["auto"]["backend"], "dmabuf", "{}", v["auto"]);
    } else if !dmabuf_capable() {
        assert_eq!(v["auto"]["backend"], "shm", "{}", v["auto"]);
        assert!(v["auto"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("EGL_MESA_image_dma_buf_export")));
    }
}
