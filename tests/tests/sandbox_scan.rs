//! The renderer, sandboxed, tries `pidfd_getfd` on every fd number 0..=65535 of the GPU process
//! (through its real link, once the first frame's buffers and fences are exported): only numbers
//! inside the export window may yield an fd; every other number is refused by the filter with
//! `EPERM`, whatever is open there (the GPU process's DRM device, its ipc sockets, its stdio).

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
    let total = i64::from(SCAN_LAST) + 1;
    assert_eq!(
        eperm,
        total - i64::from(w.len),
        "every number outside the window must be refused: {o}"
    );
    assert_eq!(
        ebadf + fetched.len() as i64,
        i64::from(w.len),
        "inside the window: taken or not open: {o}"
    );
    assert_eq!(field("other"), "", "{o}");
}
