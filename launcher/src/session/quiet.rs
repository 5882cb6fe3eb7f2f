//! Log lines a child can cause, at most one per kind per second: the first is written at once,
//! the rest are counted and summed up in one line when the next second's first arrives. A flood
//! of bad messages costs a few lines of log, not one per message.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The rate limiter.
#[derive(Debug, Default)]
pub struct Quiet {
    kinds: HashMap<&'static str, (Instant, u64)>,
}

impl Quiet {
    /// Runs `log` for the first note of `kind` in each second; counts the others.
    pub fn note(&mut self, kind: &'static str, log: impl FnOnce()) {
        let now = Instant::now();
        match self.kinds.get_mut(kind) {
            Some((since, n)) if now.duration_since(*since) < Duration::from_secs(1) => *n += 1,
            Some((since, n)) => {
                if *n > 0 {
                    tracing::warn!(kind, suppressed = *n, "more of the same were not logged");
                }
                *since = now;
                *n = 0;
                log();
            }
            None => {
                self.kinds.insert(kind, (now, 0));
                log();
            }
        }
    }

    /// How many notes of `kind` are waiting to be summed up.
    #[cfg(test)]
    pub fn suppressed(&self, kind: &str) -> u64 {
        self.kinds.get(kind).map_or(0, |(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_logs_once_per_second() {
        let mut q = Quiet::default();
        let mut logged = 0;
        for _ in 0..10_000 {
            q.note("x", || logged += 1);
        }
        assert_eq!(logged, 1);
        assert_eq!(q.suppressed("x"), 9_999);
    }
}
