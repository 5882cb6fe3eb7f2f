//! The progress line of a headless run: frames presented of the total, frames per second and
//! restarts so far, on stderr, only when stderr is a terminal.
//!
//! The line observes the engine's run ([`triptych::session::RunObserver`]): the supervisor's
//! loop calls [`Progress::update`] after every event it handles; the call reads the clock and
//! returns unless a tenth of a second has passed since the line was last drawn, so the frame
//! path pays one clock read per event. The line appears once a run has lasted a
//! second (a short run never shows one) and is cleared when the loop ends, before the summary
//! is printed.
//!
//! Log lines must not land in the middle of it: `main` installs [`log_writer`] as the log's
//! writer, which clears the line, writes the log line and draws the line again
//! (`ProgressBar::suspend`) while one is shown, and writes straight to stderr otherwise.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the line is redrawn at most.
const PERIOD: Duration = Duration::from_millis(100);

/// How long a run lasts before the line appears.
const DELAY: Duration = Duration::from_secs(1);

/// The line: frames presented of the total, fps, restarts, elapsed time, and a bar as wide as
/// the terminal leaves room for (a line that wrapped could not be cleared as one).
const TEMPLATE: &str = "{pos}/{len} frames, {msg}, {elapsed} {wide_bar}";

/// The line being shown, for [`log_writer`].
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn shown() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    SHOWN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The progress line of one run; cleared when dropped.
#[derive(Debug)]
pub struct Progress {
    /// Whether the line may be shown at all.
    enabled: bool,
    total: u64,
    started: Instant,
    last: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A line for a headless run of `total` frames; shown only where stderr is a terminal.
    pub fn new(total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            enabled: std::io::stderr().is_terminal(),
            total,
            started: now,
            last: now,
            bar: None,
        }
    }

    /// Redraws the line with `frames` presented and `restarts` so far, at most every
    /// [`PERIOD`].
    pub fn update(&mut self, frames: u64, restarts: usize) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.last) < PERIOD {
            return;
        }
        self.last = now;
        let elapsed = now.duration_since(self.started);
        if elapsed < DELAY {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(
                Some(self.total),
                ProgressDrawTarget::stderr_with_hz(10),
            );
            // The template is a constant; a bad one would be a bug caught by the tests below.
            if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
                bar.set_style(style);
            }
            *shown() = Some(bar.clone());
            bar
        });
        let fps = frames as f64 / elapsed.as_secs_f64();
        bar.set_message(format!(
            "{fps:.0} fps, {restarts} restart{}",
            if restarts == 1 { "" } else { "s" }
        ));
        bar.set_position(frames);
    }

    /// Removes the line from the terminal.
    pub fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            *shown() = None;
            bar.finish_and_clear();
        }
    }
}

impl triptych::session::RunObserver for Progress {
    fn progress(&mut self, frames: u64, restarts: usize) {
        self.update(frames, restarts);
    }

    fn ended(&mut self) {
        self.clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The log's writer: stderr, making way for the progress line while one is shown.
pub fn log_writer() -> LogWriter {
    LogWriter
}

/// See [`log_writer`].
#[derive(Debug)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The log formats a whole line and writes it in one call, so one suspension covers it.
        let bar = shown().clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().lock().write_all(buf))?,
            None => std::io::stderr().lock().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }

    #[test]
    fn never_shown_off_a_terminal() {
        let mut p = Progress::new(10);
        // As off a terminal, whatever the test runner's stderr is.
        p.enabled = false;
        p.started -= Duration::from_secs(5);
        p.last -= Duration::from_secs(5);
        p.update(3, 0);
        assert!(p.bar.is_none());
        // The test runner's stderr is a pipe under cargo test in CI; where it is a terminal
        // the line may be shown, and is cleared here.
        let mut p = Progress::new(10);
        assert_eq!(p.enabled, std::io::stderr().is_terminal());
        p.clear();
        assert!(shown().is_none());
    }
}
