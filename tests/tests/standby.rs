//! The standby GPU process: a GPU process killed a hundred times in one run is replaced each
//! time by promoting the warm standby, never by a cold start, with no stale or torn frame on
//! screen; the standby's own death is recovered too. Real processes, real kills, through the
//! library's shell as an application drives it.

use std::time::{Duration, Instant};

use triptych::shell::{Event, Role, ShellBuilder};
use triptych_tests::{alive, bin_dir, check_pixels};

/// GPU process kills, each once the standby is ready.
const KILLS: u32 = 100;

#[test]
fn a_gpu_process_killed_a_hundred_times_is_replaced_by_its_standby_every_time() {
    let shell = ShellBuilder::new()
        .binaries(bin_dir())
        .size(96, 64)
        .layers(3)
        .frames(u64::MAX / 2)
        .pixels(true)
        .restarts(10_000, 60)
        .spawn()
        .expect("spawning a shell");
    let deadline = Instant::now() + Duration::from_secs(600);
    // The standby ready now, if one is.
    let mut standby: Option<u32> = None;
    let mut standbys_seen = Vec::new();
    // A frame was presented since the last kill's crash event (the replacement is on screen).
    let mut presented_since_crash = true;
    let mut gpu_kills = 0u32;
    let mut standby_killed: Option<u32> = None;
    let mut crashes: Vec<(Role, String)> = Vec::new();
    let mut last: Option<u64> = None;
    let mut frames = 0u64;
    let mut since_crash = 0u64;
    loop {
        let e = match shell.receiver().recv_deadline(deadline) {
            Ok(e) => e,
            Err(e) => panic!("no event in time ({e:?}) after {gpu_kills} kills"),
        };
        match e {
            Event::Presented(f) => {
                // Every frame: never before the one before it (a replacement may draw again the
                // frame its predecessor's last one in flight showed), and its pixels exactly the
                // frame it names (nothing stale, nothing torn).
                assert!(
                    last.is_none_or(|l| f.frame >= l),
                    "frame {} after {last:?}",
                    f.frame
                );
                let px = f.pixels().expect("pixels were asked for");
                let bad = check_pixels(f.frame, 3, f.width, f.height, px);
                if !bad.is_empty() {
                    // Which frame it shows, if a nearby one.
                    let shows = (f.frame.saturating_sub(64)..f.frame + 8)
                        .find(|n| check_pixels(*n, 3, f.width, f.height, px).is_empty());
                    let what = format!(
                        "frame {} after {gpu_kills} kills ({} crash events; {since_crash} frames since the last) shows frame {shows:?}: {:?}",
                        f.frame,
                        crashes.len(),
                        &bad[..bad.len().min(4)]
                    );
                    shell.shutdown();
                    let s = shell.wait();
                    panic!("{what}; the run: {:?}", s.map(|s| (s.renderer, s.frames)));
                }
                last = Some(f.frame);
                frames += 1;
                since_crash += 1;
                presented_since_crash = true;
            }
            Event::StandbyReady { pid } => {
                assert!(
                    !standbys_seen.contains(&pid),
                    "standby {pid} reported ready twice"
                );
                standbys_seen.push(pid);
                standby = Some(pid);
            }
            Event::Crashed { role, cause, .. } => {
                crashes.push((role, cause));
                since_crash = 0;
                presented_since_crash = false;
            }
            Event::Fallback(f) => panic!("no fallback expected: {f}"),
            Event::Violation { role, call, .. } => panic!("{role} violated its sandbox: {call}"),
            Event::EditSuperseded { version } => panic!("edit {version} superseded, none made"),
            Event::Applied { version, .. } => panic!("edit {version} shown, none made"),
            Event::Finished => break,
            other => panic!("an event this test does not know: {other:?}"),
        }
        let Some(pid) = standby else { continue };
        if !presented_since_crash {
            continue;
        }
        if gpu_kills == KILLS / 2 && standby_killed.is_none() {
            // Halfway: the standby itself dies; the next one must be made and promoted.
            let st = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .expect("running kill");
            assert!(st.success(), "killing standby {pid}");
            standby_killed = Some(pid);
            standby = None;
            presented_since_crash = false;
        } else if gpu_kills < KILLS {
            shell.kill(Role::Gpu);
            gpu_kills += 1;
            standby = None;
            presented_since_crash = false;
        } else {
            shell.shutdown();
        }
    }
    // The shell drops a frame's event when the application falls behind (a loaded machine
    // descheduling this thread); nearly every frame must still have been seen and checked.
    let dropped = shell.dropped_events();
    let summary = shell.wait().expect("the run's summary");
    assert!(
        frames > 0 && dropped * 20 <= summary.frames.count,
        "{dropped} frame events dropped of {} presented; {frames} checked",
        summary.frames.count
    );
    let rec = &summary.recovery;
    eprintln!(
        "{frames} frames checked ({dropped} events dropped); {} crashes; restart to first frame p50 {:.1} ms p99 {:.1} ms; standby {:?}",
        rec.crashes.len(),
        rec.restart_to_first_frame.p50_us / 1e3,
        rec.restart_to_first_frame.p99_us / 1e3,
        rec.standby
    );
    assert_eq!(gpu_kills, KILLS);
    let standby_killed = standby_killed.expect("the standby was killed");
    // Every kill, and the standby's death, is one GPU crash record; the renderer never crashed.
    assert_eq!(
        crashes.len(),
        KILLS as usize + 1,
        "crash events: {crashes:?}"
    );
    assert!(crashes.iter().all(|(r, _)| *r == Role::Gpu), "{crashes:?}");
    assert_eq!(rec.crashes.len(), KILLS as usize + 1, "{:?}", rec.crashes);
    let (dead_standbys, kills): (Vec<_>, Vec<_>) = rec.crashes.iter().partition(|c| c.standby);
    assert_eq!(dead_standbys.len(), 1, "{dead_standbys:?}");
    assert_eq!(dead_standbys[0].pid, standby_killed);
    assert!(dead_standbys[0].cause.to_string().contains("SIGKILL"));
    // Every GPU process kill was recovered by promoting the standby, each up on screen.
    for c in &kills {
        assert_eq!(
            c.replacement.as_deref(),
            Some("standby promoted"),
            "a cold start: {c:?}"
        );
        assert!(c.recovery_us.is_some(), "not recovered: {c:?}");
    }
    assert_eq!(rec.standby.promotions, u64::from(KILLS));
    assert_eq!(
        rec.standby.cold_starts, 1,
        "only the run's first start is cold"
    );
    assert_eq!(rec.standby.deaths, 1);
    assert!(rec.standby.enabled);
    assert!(
        rec.standby.rss_kib.is_some_and(|k| k > 0),
        "{:?}",
        rec.standby
    );
    // Nothing stale was composited.
    assert_eq!(summary.renderer.stale_composited, 0);
    // No child outlived the run: the GPU processes, the standbys, the renderer.
    let p = &summary.processes.pids;
    for pid in standbys_seen
        .iter()
        .copied()
        .chain(rec.crashes.iter().map(|c| c.pid))
        .chain([p.gpu, p.renderer, p.standby])
        .filter(|p| *p != 0)
    {
        assert!(!alive(pid), "child {pid} outlived the run");
    }
}

#[test]
fn without_the_standby_every_gpu_process_starts_cold() {
    let mut config = triptych::config::RunConfig::default();
    config.supervision.standby = false;
    let shell = ShellBuilder::with_config(config)
        .binaries(bin_dir())
        .size(96, 64)
        .layers(3)
        .frames(u64::MAX / 2)
        .restarts(100, 60)
        .spawn()
        .expect("spawning a shell");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut kills = 0;
    let mut presented = 0u64;
    loop {
        match shell.receiver().recv_deadline(deadline).expect("an event") {
            Event::Presented(_) => {
                presented += 1;
                // A kill every 50 frames, three in all.
                if presented.is_multiple_of(50) {
                    if kills < 3 {
                        shell.kill(Role::Gpu);
                        kills += 1;
                    } else {
                        shell.shutdown();
                    }
                }
            }
            Event::StandbyReady { pid } => panic!("standby {pid} made with the standby off"),
            Event::Finished => break,
            _ => {}
        }
    }
    let s = shell.wait().expect("the run's summary");
    assert!(!s.recovery.standby.enabled);
    assert_eq!(s.recovery.standby.promotions, 0);
    assert_eq!(s.recovery.standby.cold_starts, 4);
    assert_eq!(s.processes.pids.standby, 0);
    for c in &s.recovery.crashes {
        assert_eq!(c.replacement.as_deref(), Some("cold"), "{c:?}");
    }
}
