//! Landlock confines the GPU process's files to its driver's libraries and data (read-only) and
//! its GPU's device nodes, on every thread, and the run goes on when it opens anything else.
//!
//! With Landlock in force the GPU process's seccomp policy lets `openat` through, so what
//! refuses a file outside the set here is Landlock itself: the same process opens a file inside
//! the set without trouble. Each probe is made by the real GPU process, under its real sandbox,
//! right after the sandbox went on (see `triptych_sandbox::attempts`).

use triptych_tests::sandbox::{run, ProbeRun};

fn probe(name: &str) -> ProbeRun {
    let r = run(&format!("landlock-{name}"), &format!("gpu:{name}"), &[]);
    let kernel = triptych_sys::landlock::abi();
    let l = &r.summary["sandbox"]["gpu_landlock"];
    match kernel {
        Ok(abi) => {
            assert_eq!(l["kernel_abi"].as_u64(), Some(u64::from(abi)), "{l}");
            let want = if abi >= 6 { "full" } else { "partial" };
            assert_eq!(l["enforced"], want, "with kernel ABI {abi}: {l}");
            assert_eq!(l["scoped"], abi >= 6, "{l}");
        }
        Err(why) => panic!("this test needs a kernel with Landlock: {why}"),
    }
    assert!(
        r.violations().is_empty(),
        "gpu:{name}: no seccomp violation: {:?}",
        r.violations()
    );
    assert_eq!(
        r.summary["recovery"]["crashes"].as_array().map(Vec::len),
        Some(0),
        "gpu:{name}: the GPU process lives on\n{}",
        r.stderr
    );
    // The run goes on to its last frame (frame ids count from 0; `frames.count` counts presentations,
    // and the renderer may skip a frame that a newer one overtook while the probe ran).
    assert_eq!(
        r.summary["frames"]["last"].as_u64(),
        Some(5),
        "gpu:{name}: the run goes on to its last frame\n{}",
        r.stderr
    );
    r
}

#[test]
fn a_file_outside_the_set_gets_eacces_and_the_run_goes_on() {
    let r = probe("open-file");
    assert_eq!(
        r.outcome("gpu", "open-file").as_deref(),
        Some("failed EACCES"),
        "{}",
        r.stderr
    );
}

#[test]
fn nothing_can_be_created_even_where_the_user_may_write() {
    // A file left by an earlier run would answer EEXIST before Landlock is asked.
    let _ = std::fs::remove_file("/tmp/triptych-gpu-landlock-probe");
    let r = probe("create-file");
    assert_eq!(
        r.outcome("gpu", "create-file").as_deref(),
        Some("failed EACCES"),
        "{}",
        r.stderr
    );
    assert!(!std::path::Path::new("/tmp/triptych-gpu-landlock-probe").exists());
}

#[test]
fn a_driver_file_in_the_set_opens_so_the_refusals_are_landlocks() {
    let r = probe("open-driver-file");
    let outcome = r.outcome("gpu", "open-driver-file");
    assert!(
        outcome
            .as_deref()
            .is_some_and(|o| o.starts_with("returned ")),
        "the open must succeed, got {outcome:?}\n{}",
        r.stderr
    );
    let read = r.summary["sandbox"]["gpu_landlock"]["read"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        read.iter().any(|p| p == "/usr/lib" || p == "/lib"),
        "the driver libraries are readable: {read:?}"
    );
    assert!(
        !read
            .iter()
            .any(|p| p == "/" || p == "/etc" || p == "/home" || p == "/tmp"),
        "nothing broad is readable: {read:?}"
    );
}
