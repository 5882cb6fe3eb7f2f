//! Headless frames paced to a rate (`triptych run --fps N`), as a display paces a window's: the
//! launcher asks the GPU process for one frame a period, and the run recovers a killed GPU
//! process with its frames still paced.

use triptych_tests::*;

#[test]
fn paced_frames_come_no_faster_than_their_rate_and_survive_a_gpu_kill() {
    let dir = scratch("paced");
    let json = dir.join("summary.json");
    let png = dir.join("f.png");
    let mut cmd = triptych(&["run", "--frames", "40", "--size", "96x64", "--fps", "20"]);
    cmd.args(["--fault", "gpu-render:kill@15"])
        .arg("--out")
        .arg(&png)
        .arg("--summary-json")
        .arg(&json);
    let o = output(cmd);
    assert!(o.status.success(), "{}", show(&o));
    let s = summary(&json);
    let f = &s["frames"];
    assert_eq!(f["count"], 40, "{f}");
    assert_eq!(f["paced_fps"], 20, "{f}");
    // Forty frames at twenty a second take at least 39 periods: a slow machine is slower
    // still, never faster (unpaced, this run takes a fraction of a second).
    let seconds = f["seconds"].as_f64().expect("seconds");
    assert!(
        seconds >= 1.9,
        "{seconds} s for 40 frames at 20 a second: {f}"
    );
    let crashes = s["recovery"]["crashes"].as_array().expect("crashes");
    assert_eq!(crashes.len(), 1, "{crashes:?}");
    assert_eq!(crashes[0]["role"], "gpu");
    let (w, h, px) = read_png(&png);
    let bad = check_pixels(39, 3, w, h, &px);
    assert!(bad.is_empty(), "{:?}", &bad[..bad.len().min(5)]);
}

#[test]
fn a_rate_out_of_range_is_refused_before_anything_starts() {
    let o = output(triptych(&["run", "--frames", "3", "--fps", "0"]));
    assert!(!o.status.success(), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("fps = 0: 1 to 1000"), "{err}");
}
