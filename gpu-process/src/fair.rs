//! Sharing the process's rendering time between its views: fair queueing by render time,
//! bounded so that no view waits long.
//!
//! Every view keeps the rendering time it has had (its frames' `render_frame`, drawing to
//! sending, each frame counted for at most [`MAX_CHARGE_NS`]). Of the views that can render,
//! the one that has had the least goes next; among equals, the one whose turn it is, so views of
//! equal cost take turns. When the process has time for every frame asked of it, this changes
//! nothing; when it has not, the views share it, and a view whose frames cost ten times as much
//! gets fewer of them while the others keep their rate (a scene's cost is the application's, not
//! a renderer's; each view pays for its own).
//!
//! Two bounds keep that from starving anyone, and keep the launcher's stall rule able to tell a
//! costly view from a process that stopped serving one:
//! - a view that can render is passed over for at most [`ipc_protocol::rules::FAIR_TURNS`]
//!   frames of each other view, whatever its cost: past that it goes next;
//! - a view that waited (nothing asked of it, no free buffer) is owed nothing for the wait:
//!   when it can render again it counts as having had at least the time of the view rendered
//!   last, less [`CATCH_UP_NS`], so it catches up by at most that much rather than holding the
//!   process until its total equals the others'. A view added later starts level with them.
//!
//! Kept here rather than taken from a scheduling crate: it is a few lines over the process's own
//! list of views, and its rules are the ones above, which the launcher's stall rule relies on.

use ipc_protocol::rules::FAIR_TURNS;

/// How much render time a view that waited may catch up by at once: two frames of a 60 Hz
/// display.
pub const CATCH_UP_NS: u64 = 33_000_000;

/// The most one frame counts for: a first frame that compiles shaders or uploads a scene's
/// images is not held against its view for long.
pub const MAX_CHARGE_NS: u64 = 50_000_000;

/// One view's share: the render time it has had, and how many frames of other views were
/// rendered while it could render and waited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Share {
    spent_ns: u64,
    passed: u64,
}

/// The views' shares of the rendering time.
#[derive(Debug, Default)]
pub struct Shares {
    /// The render time the view rendered last had before its frame: no view about to render
    /// counts less than this less [`CATCH_UP_NS`].
    floor_ns: u64,
}

impl Shares {
    /// The share a view added now starts with.
    pub fn start(&self) -> Share {
        Share {
            spent_ns: self.floor_ns,
            passed: 0,
        }
    }

    /// Of the views `ready` to render, as (index, its share), the one to render next, `turn`
    /// being the index whose turn it is of `n` views.
    pub fn pick(&self, ready: &mut [(usize, &mut Share)], turn: usize, n: usize) -> Option<usize> {
        let floor = self.floor_ns.saturating_sub(CATCH_UP_NS);
        let n = n.max(1);
        for (_, s) in ready.iter_mut() {
            s.spent_ns = s.spent_ns.max(floor);
        }
        let order = |i: usize| (i + n - turn % n) % n;
        // Passed over as often as it may be: it goes now.
        let limit = FAIR_TURNS.saturating_mul(n as u64 - 1);
        let overdue = ready
            .iter()
            .filter(|(_, s)| s.passed > 0 && s.passed >= limit)
            .max_by_key(|(i, s)| (s.passed, std::cmp::Reverse(order(*i))));
        overdue
            .or_else(|| ready.iter().min_by_key(|(i, s)| (s.spent_ns, order(*i))))
            .map(|(i, _)| *i)
    }

    /// View `chosen` of `ready` rendered a frame that took `took_ns`: its time goes up, and
    /// every other view that could render waited one more frame.
    pub fn rendered(&mut self, ready: &mut [(usize, &mut Share)], chosen: usize, took_ns: u64) {
        for (i, s) in ready.iter_mut() {
            if *i == chosen {
                self.floor_ns = self.floor_ns.max(s.spent_ns);
                s.spent_ns = s.spent_ns.saturating_add(took_ns.min(MAX_CHARGE_NS));
                s.passed = 0;
            } else {
                s.passed = s.passed.saturating_add(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the process for `total_ns` over views whose frames cost `costs` (ns each), each
    /// view always ready but from `ready_from` (ns); returns the frames each rendered, and the
    /// longest run of frames of other views any view waited through while ready.
    fn simulate(costs: &[u64], ready_from: &[u64], total_ns: u64) -> (Vec<u64>, u64) {
        let mut shares = Shares::default();
        let mut all = vec![Share::default(); costs.len()];
        let mut frames = vec![0u64; costs.len()];
        let mut waited = vec![0u64; costs.len()];
        let mut longest = 0;
        let (mut now, mut turn) = (0u64, 0usize);
        while now < total_ns {
            let n = costs.len();
            let mut ready: Vec<(usize, &mut Share)> = all
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| ready_from[*i] <= now)
                .collect();
            let Some(i) = shares.pick(&mut ready, turn, n) else {
                now += 1_000_000;
                continue;
            };
            turn = (i + 1) % n;
            let cost = costs[i];
            shares.rendered(&mut ready, i, cost);
            for (k, w) in waited.iter_mut().enumerate() {
                if k == i {
                    *w = 0;
                } else if ready_from[k] <= now {
                    *w += 1;
                    longest = longest.max(*w);
                }
            }
            frames[i] += 1;
            now += cost;
        }
        (frames, longest)
    }

    #[test]
    fn views_of_equal_cost_take_turns() {
        let mut shares = Shares::default();
        let mut all = [Share::default(); 3];
        let mut order = Vec::new();
        let mut turn = 0;
        for _ in 0..6 {
            let mut ready: Vec<(usize, &mut Share)> = all.iter_mut().enumerate().collect();
            let i = shares.pick(&mut ready, turn, 3).expect("one is ready");
            shares.rendered(&mut ready, i, 5);
            turn = (i + 1) % 3;
            order.push(i);
        }
        assert_eq!(order, [0, 1, 2, 0, 1, 2]);
        let mut none: Vec<(usize, &mut Share)> = Vec::new();
        assert_eq!(shares.pick(&mut none, 0, 3), None);
    }

    #[test]
    fn a_costly_view_gets_fewer_frames_and_the_others_keep_most_of_theirs() {
        // One view's frames cost 10 ms, three others' 1 ms; one second of saturation. Round
        // robin by frame would give all four about 77; a pure share of time 25 and 250. The
        // bound lets the costly view fall behind by at most FAIR_TURNS frames of each other
        // view: one frame of it for each 24 ms of the others'.
        let (frames, longest) = simulate(
            &[10_000_000, 1_000_000, 1_000_000, 1_000_000],
            &[0; 4],
            1_000_000_000,
        );
        assert!((28..=31).contains(&frames[0]), "{frames:?}");
        for &f in &frames[1..] {
            assert!((228..=240).contains(&f), "{frames:?}");
        }
        assert!(longest <= FAIR_TURNS * 3, "{longest}");
    }

    #[test]
    fn a_costly_first_frame_does_not_hold_its_view_back_past_the_bound() {
        // View 0's first frame takes a second (a debug build's first draw): it waits at most
        // FAIR_TURNS frames of each of the fifteen others before its next one.
        let mut shares = Shares::default();
        let mut all = [Share::default(); 16];
        let mut turn = 0;
        let mut since = None;
        let mut longest = 0u64;
        for k in 0..400u64 {
            let mut ready: Vec<(usize, &mut Share)> = all.iter_mut().enumerate().collect();
            let i = shares.pick(&mut ready, turn, 16).expect("all ready");
            turn = (i + 1) % 16;
            let cost = if k == 0 { 1_000_000_000 } else { 1_000_000 };
            shares.rendered(&mut ready, i, cost);
            if i == 0 {
                if let Some(s) = since {
                    longest = longest.max(k - s - 1);
                }
                since = Some(k);
            }
        }
        assert!(longest <= FAIR_TURNS * 15, "{longest}");
        assert!(longest > 15, "it did wait more than a round: {longest}");
    }

    #[test]
    fn a_view_that_waited_catches_up_by_a_bounded_amount() {
        // View 1 is ready only after 500 ms: it does not then hold the process for the 500 ms
        // view 0 had, only for the catch-up allowance, and then they alternate.
        let mut shares = Shares::default();
        let mut all = [Share::default(); 2];
        for _ in 0..500 {
            let (a, _) = all.split_at_mut(1);
            let mut ready: Vec<(usize, &mut Share)> = vec![(0, &mut a[0])];
            let i = shares.pick(&mut ready, 0, 2).expect("view 0");
            shares.rendered(&mut ready, i, 1_000_000);
        }
        let mut run = 0;
        let mut turn = 0;
        loop {
            let mut ready: Vec<(usize, &mut Share)> = all.iter_mut().enumerate().collect();
            let i = shares.pick(&mut ready, turn, 2).expect("both ready");
            turn = (i + 1) % 2;
            shares.rendered(&mut ready, i, 1_000_000);
            if i != 1 {
                break;
            }
            run += 1;
        }
        assert!(
            (1..=FAIR_TURNS + 1).contains(&run),
            "view 1 ran {run} frames in a row before view 0 had its turn"
        );
    }
}
