//! The renderer, sandboxed, tries `pidfd_getfd` on every fd number 0..=65535 of the GPU process
//! (through its real link, once the first frame's buffers and fences are exported) but those of
//! the other views' export windows, a call its filter traps (`tests/tests/views.rs`): only
//! numbers inside its own window may yield an fd; every number outside every window is refused
//! by the filter with `EPERM`, whatever is open there (the GPU process's DRM device, its ipc
//! sockets, its stdio).

use triptych_adversary::attempts::{SCAN, SCAN_LAST};
use triptych_sys::fd::ExportWindow;
use triptych_tests::sandbox::run;

#[test]
fn only_the_export_window_can_be_taken() {
    let r = run(
        "scan",
        &format!("renderer:{SCAN}"),
        &["--transport", "pidfd"],
    );
    assert!(r.violations().is_empty(), "{:?}", r.violations());
    let o = r
        .outcome("renderer", SCAN)
        .unwrap_or_else(|| panic!("no scan outcome:\n{}", r.stderr));
    let field = |k: &str| {
        o.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k} in {o:?}"))
            .to_owned()
    };
    let w = ExportWindow::GPU;
    let fetched: Vec<i32> = field("fetched")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    assert!(
        fetched.iter().all(|n| w.contains(*n)),
        "fds outside the window were taken: {fetched:?}"
    );
    // The first frame's buffers and fences at least (two layers in a probe run).
    assert!(fetched.len() >= 4, "too few fds found in the window: {o}");
    let eperm: i64 = field("EPERM").parse().expect("EPERM count");
    let ebadf: i64 = field("EBADF").parse().expect("EBADF count");
    let skipped: i64 = field("skipped").parse().expect("skipped count");
    let (all_base, all_end) = triptych_sandbox::renderer::all_windows();
    assert_eq!(
        skipped,
        (all_end - all_base) as i64 - i64::from(w.len),
        "the other views' windows, and nothing else, are left out: {o}"
    );
    let total = i64::from(SCAN_LAST) + 1;
    assert_eq!(
        eperm,
        total - (all_end - all_base) as i64,
        "every number outside every window must be refused: {o}"
    );
    assert_eq!(
        ebadf + fetched.len() as i64,
        i64::from(w.len),
        "inside the window: taken or not open: {o}"
    );
    assert_eq!(field("other"), "", "{o}");
}
