//! The timings the summary reports: per frame, the hand-off, end-to-end and present latencies;
//! per crash, how long it took to notice and to recover; and the time from the first frame
//! presented to the last.
//!
//! Every series is a [`Samples`] reservoir, so a run of any length costs the same memory. Times
//! come in as the trace clock's nanoseconds ([`triptych_trace::now_ns`], what the children stamp
//! their messages with) or as [`Instant`]s, always from the caller, never read here: a clock
//! that goes backwards between two processes' stamps gives 0, never a wrapped value.

use std::time::Instant;

use crate::summary::{Latency, Samples};

/// The timings of a run so far.
#[derive(Debug)]
pub struct Metrics {
    /// From a crash's detection to the replacement's first frame.
    recoveries: Samples,
    /// From a kill to its detection.
    detections: Samples,
    /// From a frame's description sent to its fences signalled.
    handoff: Samples,
    /// From a frame's description sent to its hand-over to the launcher.
    end_to_end: Samples,
    /// From a frame's fences signalled to its hand-over to the display server.
    present_latency: Samples,
    first_present: Option<Instant>,
    last_present: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            recoveries: Samples::default(),
            detections: Samples::default(),
            handoff: Samples::default(),
            end_to_end: Samples::default(),
            present_latency: Samples::default(),
            first_present: None,
            last_present: Instant::now(),
        }
    }
}

/// What the summary takes of the timings at the end of a run.
#[derive(Debug)]
pub struct Timings {
    /// From the first frame presented to the last, in seconds (0 with fewer than two).
    pub seconds: f64,
    /// Description sent to fences signalled.
    pub handoff: Latency,
    /// Description sent to the launcher's hand-over.
    pub end_to_end: Latency,
    /// Fences signalled to the display server's hand-over.
    pub present_latency: Latency,
    /// Kill (or injected fault) to detection.
    pub detection: Latency,
    /// Detection to the replacement's first frame.
    pub restart_to_first_frame: Latency,
}

impl Metrics {
    /// A frame presented at `at`: sent at `sent_ns`, its fences signalled at `ready_ns`, its
    /// `Presented` taken at `received_ns`, handed over (to the window, or headless to the
    /// output) at `handed_ns`. Returns its present latency, in nanoseconds.
    pub fn presented(
        &mut self,
        (sent_ns, ready_ns): (u64, u64),
        received_ns: u64,
        handed_ns: u64,
        at: Instant,
    ) -> u64 {
        self.handoff.push(ready_ns.saturating_sub(sent_ns));
        self.end_to_end.push(received_ns.saturating_sub(sent_ns));
        let present_ns = handed_ns.saturating_sub(ready_ns);
        self.present_latency.push(present_ns);
        self.last_present = at;
        self.first_present.get_or_insert(at);
        present_ns
    }

    /// A crash detected at `detected_ns`, caused at `since_ns` when that is known (an injected
    /// fault's report, a chaos kill): returns the detection time, in microseconds.
    pub fn detected(&mut self, since_ns: Option<u64>, detected_ns: u64) -> Option<f64> {
        let ns = detected_ns.saturating_sub(since_ns?);
        self.detections.push(ns);
        Some(ns as f64 / 1000.0)
    }

    /// The first frame of a replacement, at `now`, for a crash detected at `detected`: returns
    /// the recovery time, in whole microseconds.
    pub fn recovered(&mut self, detected: Instant, now: Instant) -> u64 {
        let us = now.saturating_duration_since(detected).as_micros() as u64;
        self.recoveries.push(us * 1000);
        us
    }

    /// The timings, for the summary.
    pub fn timings(self) -> Timings {
        let seconds = self
            .first_present
            .map(|f| self.last_present.duration_since(f).as_secs_f64())
            .unwrap_or(0.0);
        Timings {
            seconds,
            handoff: self.handoff.latency(),
            end_to_end: self.end_to_end.latency(),
            present_latency: self.present_latency.latency(),
            detection: self.detections.latency(),
            restart_to_first_frame: self.recoveries.latency(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_run_without_frames_reports_nothing() {
        let t = Metrics::default().timings();
        assert_eq!(t.seconds, 0.0);
        for l in [
            t.handoff,
            t.end_to_end,
            t.present_latency,
            t.detection,
            t.restart_to_first_frame,
        ] {
            assert_eq!(l.count, 0);
        }
    }

    #[test]
    fn each_frame_splits_into_handoff_end_to_end_and_present() {
        let mut m = Metrics::default();
        let t0 = Instant::now();
        // Sent at 1 ms, ready at 3 ms, received at 4 ms, handed over at 4.5 ms.
        let present = m.presented((1_000_000, 3_000_000), 4_000_000, 4_500_000, t0);
        assert_eq!(present, 1_500_000);
        m.presented(
            (10_000_000, 11_000_000),
            14_000_000,
            14_100_000,
            t0 + Duration::from_millis(500),
        );
        let t = m.timings();
        assert_eq!(t.handoff.count, 2);
        assert_eq!(t.handoff.max_us, 2000.0);
        assert_eq!(t.end_to_end.max_us, 4000.0);
        assert_eq!(t.present_latency.max_us, 3100.0, "the second frame's");
        // From the first frame to the last, not from the start of the run.
        assert!((t.seconds - 0.5).abs() < 1e-9, "{}", t.seconds);
    }

    #[test]
    fn stamps_out_of_order_give_zero_not_a_wrapped_latency() {
        let mut m = Metrics::default();
        // A renderer whose clock reads "ready" before "sent", and a handover before "ready".
        let present = m.presented((5_000, 1_000), 500, 900, Instant::now());
        assert_eq!(present, 0);
        let t = m.timings();
        assert_eq!(t.handoff.max_us, 0.0);
        assert_eq!(t.end_to_end.max_us, 0.0);
        assert_eq!(t.handoff.count, 1);
    }

    #[test]
    fn one_frame_has_no_duration_and_later_frames_extend_it() {
        let mut m = Metrics::default();
        let t0 = Instant::now();
        m.presented((0, 0), 0, 0, t0);
        let mut one = Metrics::default();
        one.presented((0, 0), 0, 0, t0);
        assert_eq!(one.timings().seconds, 0.0);
        m.presented((0, 0), 0, 0, t0 + Duration::from_secs(2));
        m.presented((0, 0), 0, 0, t0 + Duration::from_secs(3));
        assert!((m.timings().seconds - 3.0).abs() < 1e-9);
    }

    #[test]
    fn detection_counts_only_crashes_with_a_known_cause_time() {
        let mut m = Metrics::default();
        assert_eq!(m.detected(None, 5_000_000), None, "an unplanned crash");
        assert_eq!(m.detected(Some(2_000_000), 5_000_000), Some(3000.0));
        // A fault reported as fired after it was detected: no negative time.
        assert_eq!(m.detected(Some(9_000_000), 5_000_000), Some(0.0));
        let t = m.timings();
        assert_eq!(t.detection.count, 2);
        assert_eq!(t.detection.max_us, 3000.0);
    }

    #[test]
    fn recovery_is_measured_from_detection_in_microseconds() {
        let mut m = Metrics::default();
        let t0 = Instant::now();
        assert_eq!(m.recovered(t0, t0 + Duration::from_micros(2500)), 2500);
        // A detection stamped after the frame (clocks read in another order) gives 0.
        assert_eq!(m.recovered(t0 + Duration::from_secs(1), t0), 0);
        let t = m.timings();
        assert_eq!(t.restart_to_first_frame.count, 2);
        assert_eq!(t.restart_to_first_frame.max_us, 2500.0);
    }
}
