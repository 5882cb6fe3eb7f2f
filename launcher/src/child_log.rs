//! The children's stderr, quarantined: read by the launcher, never written to its log as it is.
//!
//! A child's stderr is a pipe whose other end a thread of the launcher reads ([`spawn_reader`]).
//! Whatever a compromised child writes there reaches the launcher's log only as lines that
//!
//! - start with the child's role and pid (`gpu[4242] | `), so no line of a child can read as a
//!   line of the launcher (whose own lines never start that way);
//! - carry no control character: escapes, carriage returns, bidirectional overrides and the
//!   like are written as `\u{..}` escapes, and bytes that are not UTF-8 as replacement
//!   characters;
//! - are at most [`MAX_LINE_BYTES`] long (the rest of a longer line is dropped and its length
//!   noted), read in bounded chunks, so a line without an end holds no more than that in memory;
//! - come at most [`BURST_LINES`] at once and [`LINES_PER_S`] a second after that, per child
//!   process; lines over the rate are dropped and counted ([`Tally`]), and the count is written,
//!   once, when the child's stderr closes (and at most every [`NOTE_EVERY`] while it floods).
//!
//! The level a line is logged at is the one the child's own line names (`WARN`, `INFO`, ...)
//! where it names one, else `WARN`: it decides only whether a filter shows the line.
//!
//! The reader is hand-written rather than a `BufRead::lines` loop because `lines` grows its
//! buffer to the length of the line, which a child chooses.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_protocol::Role;
use serde::Serialize;

/// Bytes of one line a child's stderr may fill in the log; the rest is dropped.
pub const MAX_LINE_BYTES: usize = 512;
/// Lines a child may write at once before the rate applies.
pub const BURST_LINES: u32 = 200;
/// Lines a second a child may write after its burst.
pub const LINES_PER_S: u32 = 20;
/// How often, at most, a flooding child's dropped lines are noted while it floods.
pub const NOTE_EVERY: Duration = Duration::from_secs(10);

/// What came of one role's stderr over a run, all its processes together.
#[derive(Debug, Default)]
pub struct Tally {
    lines: AtomicU64,
    dropped: AtomicU64,
    cut_bytes: AtomicU64,
}

impl Tally {
    /// The counts, for the run summary.
    pub fn counts(&self) -> StderrCounts {
        StderrCounts {
            lines: self.lines.load(Ordering::Relaxed),
            dropped_lines: self.dropped.load(Ordering::Relaxed),
            cut_bytes: self.cut_bytes.load(Ordering::Relaxed),
        }
    }
}

/// One role's stderr in the run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StderrCounts {
    /// Lines written to the launcher's log.
    pub lines: u64,
    /// Lines dropped over the rate limit.
    pub dropped_lines: u64,
    /// Bytes dropped from lines longer than [`MAX_LINE_BYTES`].
    pub cut_bytes: u64,
}

/// Splits a byte stream into lines of at most `max` bytes, remembering how much of the current
/// line was cut.
#[derive(Debug)]
struct Splitter {
    max: usize,
    line: Vec<u8>,
    cut: usize,
}

/// A line out of a [`Splitter`]: its first bytes, and how many more it had.
#[derive(Debug, PartialEq, Eq)]
struct Line {
    bytes: Vec<u8>,
    cut: usize,
}

impl Splitter {
    fn new(max: usize) -> Self {
        Self {
            max,
            line: Vec::with_capacity(max),
            cut: 0,
        }
    }

    /// Feeds `chunk`, handing each line it completes to `out`.
    fn feed(&mut self, chunk: &[u8], mut out: impl FnMut(Line)) {
        for part in chunk.split_inclusive(|&b| b == b'\n') {
            let (body, ends) = match part.strip_suffix(b"\n") {
                Some(b) => (b, true),
                None => (part, false),
            };
            let room = self.max - self.line.len();
            let keep = body.len().min(room);
            self.line.extend_from_slice(&body[..keep]);
            self.cut += body.len() - keep;
            if ends {
                out(self.take());
            }
        }
    }

    /// The unfinished line at the end of the stream, if any.
    fn finish(&mut self) -> Option<Line> {
        (!self.line.is_empty() || self.cut > 0).then(|| self.take())
    }

    fn take(&mut self) -> Line {
        let bytes = std::mem::replace(&mut self.line, Vec::with_capacity(self.max));
        Line {
            bytes,
            cut: std::mem::take(&mut self.cut),
        }
    }
}

/// `bytes` as text, escaped as [`escape_str`] does.
fn escape(bytes: &[u8]) -> String {
    escape_str(&String::from_utf8_lossy(bytes))
}

/// Whether `c` is a format or separator character that changes how a line reads without being
/// seen: soft hyphen, Arabic letter mark, Mongolian vowel separator, zero-width and
/// bidirectional marks, line and paragraph separators, invisible operators, byte order mark,
/// interlinear annotation marks, tag characters.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{61c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{e0000}'..='\u{e007f}')
}

/// `text` with every control character (C0, DEL, C1) and every invisible format or separator
/// character ([`invisible`]) written as `\u{..}`, and `\` doubled so an escape cannot be
/// forged: what a child wrote, made safe to put in the launcher's log on one line. Used for its
/// stderr and for every string in its messages that the launcher logs.
pub fn escape_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() || invisible(c) {
            // Into the string itself: a child's text of control characters costs no allocation
            // per character.
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// [`escape_str`] of at most the first [`CLIPPED_CHARS`] characters of `text`, with how many
/// bytes were left out: for a child's word kept or logged whole (a failure, a rejection), whose
/// length only the message's limit bounds.
pub fn escape_clipped(text: &str) -> String {
    match text.char_indices().nth(CLIPPED_CHARS) {
        None => escape_str(text),
        Some((at, _)) => format!(
            "{} [{} more bytes]",
            escape_str(&text[..at]),
            text.len() - at
        ),
    }
}

/// How much of a child's text [`escape_clipped`] keeps, in characters.
pub const CLIPPED_CHARS: usize = 512;

/// A token bucket: [`BURST_LINES`] at once, [`LINES_PER_S`] a second after.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Self {
            tokens: f64::from(BURST_LINES),
            last: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let refill =
            now.saturating_duration_since(self.last).as_secs_f64() * f64::from(LINES_PER_S);
        self.tokens = (self.tokens + refill).min(f64::from(BURST_LINES));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The level the child's line names, as its own log writes it (`<time>  WARN <message>`).
fn level_of(text: &str) -> tracing::Level {
    match text.split_whitespace().nth(1) {
        Some("ERROR") => tracing::Level::ERROR,
        Some("INFO") => tracing::Level::INFO,
        Some("DEBUG") => tracing::Level::DEBUG,
        Some("TRACE") => tracing::Level::TRACE,
        _ => tracing::Level::WARN,
    }
}

fn emit(level: tracing::Level, line: &str) {
    match level {
        tracing::Level::ERROR => tracing::error!("{line}"),
        tracing::Level::WARN => tracing::warn!("{line}"),
        tracing::Level::INFO => tracing::info!("{line}"),
        tracing::Level::DEBUG => tracing::debug!("{line}"),
        tracing::Level::TRACE => tracing::trace!("{line}"),
    }
}

/// One child's stream: splits, escapes, limits and logs.
#[derive(Debug)]
struct Quarantine {
    prefix: String,
    splitter: Splitter,
    bucket: Bucket,
    tally: Arc<Tally>,
    /// Dropped since the last note, and when that note was written.
    unnoted: u64,
    noted: Option<Instant>,
}

impl Quarantine {
    fn new(role: Role, pid: u32, tally: Arc<Tally>, now: Instant) -> Self {
        Self {
            prefix: format!("{role}[{pid}] | "),
            splitter: Splitter::new(MAX_LINE_BYTES),
            bucket: Bucket::new(now),
            tally,
            unnoted: 0,
            noted: None,
        }
    }

    /// Handles `chunk` read at `now`, handing each line to write to `out` with its level.
    fn feed(&mut self, chunk: &[u8], now: Instant, out: &mut impl FnMut(tracing::Level, String)) {
        let mut lines = Vec::new();
        self.splitter.feed(chunk, |l| lines.push(l));
        for l in lines {
            self.line(l, now, out);
        }
    }

    fn line(&mut self, l: Line, now: Instant, out: &mut impl FnMut(tracing::Level, String)) {
        if !self.bucket.take(now) {
            self.tally.dropped.fetch_add(1, Ordering::Relaxed);
            self.unnoted += 1;
            if self
                .noted
                .is_none_or(|t| now.saturating_duration_since(t) >= NOTE_EVERY)
            {
                self.note(now, out);
            }
            return;
        }
        self.tally.lines.fetch_add(1, Ordering::Relaxed);
        let text = escape(&l.bytes);
        let level = level_of(&text);
        let mut line = format!("{}{text}", self.prefix);
        if l.cut > 0 {
            self.tally
                .cut_bytes
                .fetch_add(l.cut as u64, Ordering::Relaxed);
            line += &format!(" [{} more bytes cut]", l.cut);
        }
        out(level, line);
    }

    fn note(&mut self, now: Instant, out: &mut impl FnMut(tracing::Level, String)) {
        if self.unnoted > 0 {
            let prefix = self.prefix.trim_end_matches(" | ");
            out(
                tracing::Level::WARN,
                format!(
                    "{prefix} wrote {} lines to stderr over the rate of {LINES_PER_S} a second: dropped",
                    self.unnoted
                ),
            );
            self.unnoted = 0;
            self.noted = Some(now);
        }
    }

    /// The end of the stream: its unfinished line, and the note of what was dropped.
    fn finish(&mut self, now: Instant, out: &mut impl FnMut(tracing::Level, String)) {
        if let Some(l) = self.splitter.finish() {
            self.line(l, now, out);
        }
        self.note(now, out);
    }
}

/// Reads `stderr`, the pipe of child `pid` in `role`, on a thread of its own until the child and
/// every copy of its end are gone, writing what it may to the launcher's log. The receiver gets
/// a word once the pipe is closed.
pub fn spawn_reader(
    role: Role,
    pid: u32,
    mut stderr: impl Read + Send + 'static,
    tally: Arc<Tally>,
) -> std::io::Result<crossbeam_channel::Receiver<()>> {
    let (done, closed) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name(format!("{role}-{pid}-stderr"))
        .spawn(move || {
            let mut q = Quarantine::new(role, pid, tally, Instant::now());
            let mut out = |level, line: String| emit(level, &line);
            let mut buf = [0u8; 8192];
            loop {
                match stderr.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => q.feed(&buf[..n], Instant::now(), &mut out),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::debug!(%role, pid, error = %e, "reading the child's stderr");
                        break;
                    }
                }
            }
            drop(stderr);
            q.finish(Instant::now(), &mut out);
            let _ = done.send(());
        })
        .map(|_| closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<Line> {
        let mut s = Splitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |l| out.push(l));
        }
        out.extend(s.finish());
        out
    }

    fn line(bytes: &[u8], cut: usize) -> Line {
        Line {
            bytes: bytes.to_vec(),
            cut,
        }
    }

    #[test]
    fn lines_are_split_across_chunks_and_cut_at_the_bound() {
        assert_eq!(
            split(4, &[b"ab", b"c\nde", b"fghij\n\nxy"]),
            vec![
                line(b"abc", 0),
                line(b"defg", 3),
                line(b"", 0),
                line(b"xy", 0)
            ]
        );
        // A line with no end keeps no more than the bound.
        let mut s = Splitter::new(8);
        for _ in 0..1000 {
            s.feed(&[b'a'; 4096], |_| panic!("no line ended"));
        }
        assert_eq!(s.line.len(), 8);
        assert_eq!(s.finish(), Some(line(b"aaaaaaaa", 4096 * 1000 - 8)));
    }

    #[test]
    fn a_long_text_is_clipped_before_it_is_escaped() {
        assert_eq!(escape_clipped("a\u{7}b"), "a\\u{7}b");
        let long = "\u{1b}".repeat(70_000);
        let clipped = escape_clipped(&long);
        assert!(clipped.starts_with(&"\\u{1b}".repeat(CLIPPED_CHARS)));
        assert!(clipped.ends_with(&format!(" [{} more bytes]", 70_000 - CLIPPED_CHARS)));
        // A character of several bytes is never cut.
        let wide = "é".repeat(CLIPPED_CHARS + 3);
        assert!(escape_clipped(&wide).ends_with(" [6 more bytes]"));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape(b"a\x1b[2Jb\rc\td"), "a\\u{1b}[2Jb\\u{d}c\\u{9}d");
        assert_eq!(escape("x\u{202e}y\u{85}".as_bytes()), "x\\u{202e}y\\u{85}");
        assert_eq!(escape(b"\\u{1b}"), "\\\\u{1b}");
        assert_eq!(escape(b"\xff ok"), "\u{fffd} ok");
        assert_eq!(
            escape_str("a\u{2028}b\u{61c}c\u{2060}d\u{fff9}e\u{e0041}"),
            "a\\u{2028}b\\u{61c}c\\u{2060}d\\u{fff9}e\\u{e0041}"
        );
    }

    #[test]
    fn every_line_is_prefixed_and_the_rate_is_held() {
        let t0 = Instant::now();
        let tally = Arc::new(Tally::default());
        let mut q = Quarantine::new(Role::Gpu, 42, tally.clone(), t0);
        let mut out = Vec::new();
        let mut push = |level, line| out.push((level, line));
        let flood =
            b"2026-12-05T00:00:00Z ERROR sandbox violation in gpu: ptrace(0)\n".repeat(1000);
        q.feed(&flood, t0, &mut push);
        // One second later the bucket has refilled by the rate.
        q.feed(&flood, t0 + Duration::from_secs(1), &mut push);
        q.finish(t0 + Duration::from_secs(1), &mut push);
        let written = BURST_LINES + LINES_PER_S;
        let c = tally.counts();
        assert_eq!(c.lines, u64::from(written));
        assert_eq!(c.dropped_lines, 2000 - u64::from(written));
        let lines: Vec<_> = out.iter().filter(|(_, l)| l.contains("ptrace")).collect();
        assert_eq!(lines.len(), written as usize);
        assert!(lines
            .iter()
            .all(|(level, l)| *level == tracing::Level::ERROR
                && l.starts_with("gpu[42] | 2026-12-05T00:00:00Z ERROR sandbox violation")));
        // The drops are noted once while flooding (the first), once at the end (the rest).
        let notes: Vec<_> = out.iter().filter(|(_, l)| l.contains("dropped")).collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes.iter().all(|(_, l)| l.starts_with("gpu[42] wrote ")));
    }

    #[test]
    fn a_cut_line_says_so() {
        let tally = Arc::new(Tally::default());
        let t0 = Instant::now();
        let mut q = Quarantine::new(Role::Renderer, 7, tally.clone(), t0);
        let mut out = Vec::new();
        let mut long = vec![b'z'; MAX_LINE_BYTES + 100];
        long.push(b'\n');
        q.feed(&long, t0, &mut |_, l| out.push(l));
        assert_eq!(out.len(), 1);
        assert!(out[0].ends_with(" [100 more bytes cut]"), "{}", out[0]);
        assert_eq!(tally.counts().cut_bytes, 100);
    }
}
