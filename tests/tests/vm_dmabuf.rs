//! The DMA-BUF path against a real kernel: GL textures exported as real DMA-BUFs, real
//! sync_file fences that are unsignalled while rendering runs, CPU reads bracketed with
//! DMA_BUF_IOCTL_SYNC, pixels exactly as the shm path produces them.
//!
//! Needs a DRM device whose EGL can export DMA-BUFs: inside the vgem VM that
//! `tests/vm/run-in-vm.sh` boots (`scripts/test.sh` does this). Elsewhere the test says it was
//! skipped, unless `TRIPTYCH_REQUIRE_VGEM=1` demands the device, in which case it fails.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use triptych_tests::*;

/// Whether a vgem device is here; says the test is skipped when not (fails instead under
/// `TRIPTYCH_REQUIRE_VGEM=1`).
fn vgem_present() -> bool {
    let found = triptych_sys::drm::DrmDevice::find_driver("vgem");
    let present = matches!(found, Ok(Some(_)));
    if !present {
        let why = match found {
            Err(e) => format!(": {e}"),
            _ => String::new(),
        };
        skip_or_fail(
            REQUIRE_VGEM,
            &format!(
                "no vgem device here{why} (modprobe vgem, or run inside tests/vm/run-in-vm.sh)"
            ),
        );
    }
    present
}

#[test]
fn dmabuf_frames_arrive_as_real_dma_bufs_with_real_fences() {
    if !vgem_present() {
        return;
    }
    let dir = scratch("vm-dmabuf");
    let png = dir.join("f.png");
    let json = dir.join("s.json");
    let frames = 300u64;
    // Software emulation in the VM is slow: generous deadlines, so only real hangs count. Whether
    // a fence is still unsignalled when the renderer first polls it is a race with rendering; at
    // frame 40 the GPU process signals 400 ms late, so at least that frame's fences are.
    let mut child = triptych(&[
        "run",
        "--buffers",
        "dmabuf",
        "--frames",
        "300",
        "--size",
        "128x96",
        "--layers",
        "3",
    ])
    .args(["--hang-timeout-ms", "60000", "--fence-timeout-ms", "30000"])
    .args(["--fault", "gpu-after-export:late-fences@40"])
    .arg("--out")
    .arg(&png)
    .arg("--summary-json")
    .arg(&json)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn triptych");
    let launcher = child.id();
    // While it runs, look at the renderer's fd table: dma-bufs (fdinfo has exp_name:) and
    // sync_files (anon_inode:sync_file) must both show up.
    let mut seen_dmabuf = false;
    let mut seen_sync_file = false;
    let mut exporters = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while child.try_wait().expect("try_wait").is_none() && Instant::now() < deadline {
        for r in children_named(launcher, "renderer") {
            for (fd, link) in triptych_sys::proc::fd_links(r).unwrap_or_default() {
                if link == "anon_inode:sync_file" {
                    seen_sync_file = true;
                }
                if let Ok(info) = std::fs::read_to_string(format!("/proc/{r}/fdinfo/{fd}")) {
                    if let Some(l) = info.lines().find(|l| l.starts_with("exp_name:")) {
                        seen_dmabuf = true;
                        exporters.insert(l.trim_start_matches("exp_name:").trim().to_owned());
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let o = finish_within(child, PROCESS_DEADLINE, "triptych run");
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        seen_dmabuf,
        "no dma-buf fd (exp_name:) was ever seen in the renderer"
    );
    // sync_files live in the renderer only while a fence is pending, which may be too short to
    // catch here; the hang test below holds one for seconds.
    eprintln!("sync_file seen during the run: {seen_sync_file}");
    eprintln!("dma-buf exporters seen in the renderer: {exporters:?}");
    let s = summary(&json);
    assert_eq!(s["paths"]["backend"], "dmabuf", "{s}");
    // Each layer's fence is the implicit fences of the buffer's carrier, which the renderer
    // took once with the buffer: no fence file travels per frame.
    assert_eq!(s["paths"]["fence"], "implicit");
    let r = &s["renderer"];
    assert!(
        r["dmabuf_layers"].as_u64().unwrap_or(0) >= frames * 3,
        "{r}"
    );
    let fetched = &r["fetched"];
    assert!(
        fetched["fences_implicit"].as_u64().unwrap_or(0) >= frames * 3,
        "{fetched}"
    );
    // One carrier per pool buffer, taken with it: as many as the buffers, never one a frame.
    assert_eq!(
        fetched["fences_via_pidfd"], fetched["buffers_via_pidfd"],
        "{fetched}"
    );
    assert!(
        fetched["buffers_via_pidfd"].as_u64().unwrap_or(u64::MAX) <= 3 * 8,
        "{fetched}"
    );
    assert_eq!(r["shm_layers"], 0);
    assert!(
        r["fences_pending"].as_u64().unwrap_or(0) >= 3,
        "the late frame's three fences were not all unsignalled when first polled: {r}"
    );
    eprintln!(
        "fences unsignalled when first polled: {}",
        r["fences_pending"]
    );
    assert_eq!(r["fence_timeouts"], 0, "{r}");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert!(crashes.is_empty(), "a late frame is no crash: {crashes:?}");
    let (w, h, px) = read_png(&png);
    let bad = check_pixels(frames - 1, 3, w, h, &px);
    assert!(bad.is_empty(), "{:?}", &bad[..bad.len().min(5)]);
    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn an_unsignalled_sync_file_is_held_by_the_renderer_until_its_deadline() {
    if !vgem_present() {
        return;
    }
    let dir = scratch("vm-hang");
    let png = dir.join("f.png");
    let json = dir.join("s.json");
    // The GPU process stops signalling at frame 10: the renderer holds that frame's sync_files,
    // unsignalled, for the fence deadline, then the launcher replaces the GPU process.
    let mut child = triptych(&[
        "run",
        "--buffers",
        "dmabuf",
        "--frames",
        "30",
        "--size",
        "64x48",
        "--layers",
        "2",
    ])
    .args([
        "--fault",
        "gpu-after-export:stop-fences@10",
        "--fence-timeout-ms",
        "6000",
    ])
    .args(["--hang-timeout-ms", "60000"])
    .arg("--out")
    .arg(&png)
    .arg("--summary-json")
    .arg(&json)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn triptych");
    let launcher = child.id();
    let mut held = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while child.try_wait().expect("try_wait").is_none()
        && Instant::now() < deadline
        && held.is_none()
    {
        for r in children_named(launcher, "renderer") {
            let links = triptych_sys::proc::fd_links(r).unwrap_or_default();
            if links.iter().any(|(_, l)| l == "anon_inode:sync_file") {
                held = Some(Instant::now());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let o = finish_within(child, PROCESS_DEADLINE, "triptych run");
    assert!(o.status.success(), "{}", show(&o));
    assert!(held.is_some(), "the renderer never held a sync_file");
    let s = summary(&json);
    assert_eq!(s["paths"]["backend"], "dmabuf", "{s}");
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "{crashes:?}");
    assert!(
        crashes[0]["cause"]["fence_timeout"].is_object(),
        "{}",
        crashes[0]
    );
    assert_eq!(s["renderer"]["stale_composited"], 0);
    let (w, h, px) = read_png(&png);
    assert!(check_pixels(29, 2, w, h, &px).is_empty());
}

/// A scene in which only a 16x16 layer changes: on real DMA-BUFs the GPU process redraws just
/// that layer into each reused buffer (buffer age), the renderer composites just its place, and
/// the last frame still equals the CPU reference and a run that does every frame whole.
#[test]
fn damage_on_real_dma_bufs_redraws_only_what_changed_and_stays_exact() {
    if !vgem_present() {
        return;
    }
    let dir = scratch("vm-dmabuf-damage");
    let scene = dir.join("scene.toml");
    std::fs::write(
        &scene,
        r##"
[[layers]]
name = "back"
kind = "checker"
cell = 8
colors = ["#203040", "#304050"]
rect = { x = 0, y = 0, w = "100%", h = "100%" }

[[layers]]
name = "ticker"
kind = "checker"
cell = 4
colors = ["#ff0000", "#00ff00"]
rect = { x = 40, y = 30, w = 16, h = 16 }
animation.scroll = { dx = 60, dy = 0, period = 1.0 }
"##,
    )
    .expect("write scene");
    let frames = 40u64;
    let run = |tag: &str, extra: &[&str]| {
        let png = dir.join(format!("{tag}.png"));
        let json = dir.join(format!("{tag}.json"));
        let mut cmd = triptych(&["run", "--headless", "--verify", "--buffers", "dmabuf"]);
        cmd.args(["--frames", &frames.to_string(), "--size", "128x96"])
            .args(emulated_vm_args())
            .args(extra)
            .arg("--scene")
            .arg(&scene)
            .arg("--out")
            .arg(&png)
            .arg("--summary-json")
            .arg(&json);
        let o = output(cmd);
        assert!(o.status.success(), "{tag}: {}", show(&o));
        let s = summary(&json);
        assert_eq!(s["paths"]["backend"], "dmabuf", "{s}");
        (s, read_png(&png).2)
    };
    let (on, px_on) = run("on", &[]);
    let frame_px = 128 * 96;
    assert_eq!(
        on["damage"]["damaged_px"].as_u64(),
        Some(frame_px + (frames - 1) * 16 * 16),
        "{}",
        on["damage"]
    );
    assert_eq!(on["paths"]["fence"], "implicit", "{}", on["paths"]);
    // The whole-frame run takes a sync_file per layer per frame, as a native fence is taken.
    let (off, px_off) = run("off", &["--no-damage", "--progress-fences", "off"]);
    assert_eq!(off["damage"]["on"], false);
    assert_eq!(off["paths"]["fence"], "sync_file", "{}", off["paths"]);
    assert!(
        off["renderer"]["fetched"]["fences_via_pidfd"]
            .as_u64()
            .unwrap_or(0)
            >= frames * 2,
        "{}",
        off["renderer"]
    );
    assert_eq!(off["renderer"]["fetched"]["fences_implicit"], 0);
    assert!(
        px_on == px_off,
        "the damage-driven frame differs from the whole one"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A hostile GPU process (the adversary binary, sandboxed as the real one) that names, from its
/// third frame on, an eventfd of its export window as the fence carrier of a DMA-BUF layer: the
/// renderer takes it, finds no DMA-BUF and says so; the launcher looks at the very file, finds
/// the same, and kills the GPU process as a proven liar. The renderer keeps its pid, and every
/// frame is presented by the GPU process that replaces it.
#[test]
fn a_fence_carrier_that_is_no_dma_buf_costs_the_gpu_process() {
    if !vgem_present() {
        return;
    }
    let dir = scratch("vm-implicit-eventfd");
    let json = dir.join("summary.json");
    let frames = 12u64;
    let mut cmd = triptych(&["run", "--buffers", "dmabuf", "--size", "64x48"]);
    cmd.args(["--frames", &frames.to_string()])
        .args(emulated_vm_args())
        .arg("--out")
        .arg(dir.join("f.png"))
        .arg("--summary-json")
        .arg(&json)
        .env("TRIPTYCH_BIN_DIR", adversary_bin(&dir))
        .env("TRIPTYCH_HOSTILE_GPU", "implicit-eventfd");
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.contains("ImplicitEventfd"),
        "the attack never happened:\n{log}"
    );
    let s = summary(&json);
    assert_eq!(s["paths"]["fence"], "implicit", "{s}");
    assert_eq!(
        s["frames"]["last"],
        frames - 1,
        "every frame presented: {s}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "one crash, the GPU process's: {s}");
    assert_eq!(crashes[0]["role"], "gpu", "{s}");
    let cause = crashes[0]["cause"].to_string();
    assert!(
        cause.contains("implicit fences") && cause.contains("no DMA-BUF"),
        "{cause}"
    );
    assert_eq!(s["trust"]["proven_gpu_lies"], 1, "{s}");
    assert_eq!(
        s["renderer"]["gpu_switches"], 1,
        "one renderer all along: {s}"
    );
}
