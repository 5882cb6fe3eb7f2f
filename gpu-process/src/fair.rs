//! Sharing the process's rendering time between its views: fair queueing by render time.
//!
//! Every view keeps the rendering time it has had (its frames' `render_frame`, drawing to
//! sending). Of the views that can render, the one that has had the least goes next; among
//! equals the one whose turn it is, so views of equal cost take turns. When the process has
//! time for every frame asked of it this changes nothing; when it has not, every view gets an
//! equal share of it, and a view whose frames cost ten times as much gets a tenth as many of
//! them, while the others keep their rate (a scene's cost is the application's, not a
//! renderer's; each view pays for its own).
//!
//! A view that waited (nothing asked of it, no free buffer) is owed nothing for the wait: when
//! it can render again it is counted as having had at least the time of the view rendered last,
//! less [`CATCH_UP_NS`], so it catches up by at most that much rather than holding the process
//! until its total equals the others'. A view added later starts level with the others.
//!
//! Kept here rather than taken from a scheduling crate: it is a dozen lines over the process's
//! own list of views, and its rules are the ones above.

/// How much render time a view that waited may catch up by at once: two frames of a 60 Hz
/// display.
pub const CATCH_UP_NS: u64 = 33_000_000;

/// The views' shares of the rendering time.
#[derive(Debug, Default)]
pub struct Shares {
    /// The render time the view rendered last had before its frame: no view about to render
    /// counts less than this less [`CATCH_UP_NS`].
    floor_ns: u64,
}

impl Shares {
    /// The render time a view added now starts with.
    pub fn start(&self) -> u64 {
        self.floor_ns
    }

    /// Of the views `ready` to render, as (index, its render time so far), the one to render
    /// next, `turn` being the index whose turn it is of `n` views. A view that waited is raised
    /// to the floor first.
    pub fn pick(&self, ready: &mut [(usize, &mut u64)], turn: usize, n: usize) -> Option<usize> {
        let floor = self.floor_ns.saturating_sub(CATCH_UP_NS);
        let n = n.max(1);
        for (_, spent) in ready.iter_mut() {
            **spent = (**spent).max(floor);
        }
        ready
            .iter()
            .min_by_key(|(i, spent)| (**spent, (i + n - turn % n) % n))
            .map(|(i, _)| *i)
    }

    /// A view whose render time was `spent_ns` rendered a frame that took `took_ns`.
    pub fn rendered(&mut self, spent_ns: &mut u64, took_ns: u64) {
        self.floor_ns = self.floor_ns.max(*spent_ns);
        *spent_ns = spent_ns.saturating_add(took_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the process for `total_ns` over views whose frames cost `costs` (ns each), each
    /// view always ready but from `ready_from` (ns); returns the frames each rendered.
    fn simulate(costs: &[u64], ready_from: &[u64], total_ns: u64) -> Vec<u64> {
        let mut shares = Shares::default();
        let mut spent = vec![0u64; costs.len()];
        let mut frames = vec![0u64; costs.len()];
        let (mut now, mut turn) = (0u64, 0usize);
        while now < total_ns {
            let n = costs.len();
            let mut ready: Vec<(usize, &mut u64)> = spent
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| ready_from[*i] <= now)
                .collect();
            let Some(i) = shares.pick(&mut ready, turn, n) else {
                now += 1_000_000;
                continue;
            };
            turn = (i + 1) % n;
            shares.rendered(&mut spent[i], costs[i]);
            frames[i] += 1;
            now += costs[i];
        }
        frames
    }

    #[test]
    fn views_of_equal_cost_take_turns() {
        let mut shares = Shares::default();
        let mut spent = [0u64; 3];
        let mut order = Vec::new();
        let mut turn = 0;
        for _ in 0..6 {
            let mut ready: Vec<(usize, &mut u64)> = spent.iter_mut().enumerate().collect();
            let i = shares.pick(&mut ready, turn, 3).expect("one is ready");
            shares.rendered(&mut spent[i], 5);
            turn = (i + 1) % 3;
            order.push(i);
        }
        assert_eq!(order, [0, 1, 2, 0, 1, 2]);
        let mut none: Vec<(usize, &mut u64)> = Vec::new();
        assert_eq!(shares.pick(&mut none, 0, 3), None);
    }

    #[test]
    fn a_costly_view_gets_its_share_and_the_others_keep_theirs() {
        // One view's frames cost 10 ms, three others' 1 ms; one second of saturation.
        let frames = simulate(
            &[10_000_000, 1_000_000, 1_000_000, 1_000_000],
            &[0; 4],
            1_000_000_000,
        );
        // A quarter of the time each: 25 frames of the costly view, 250 of each cheap one
        // (round robin by frame would have given all four about 77).
        assert!((24..=26).contains(&frames[0]), "{frames:?}");
        for &f in &frames[1..] {
            assert!((245..=255).contains(&f), "{frames:?}");
        }
    }

    #[test]
    fn a_view_that_waited_catches_up_by_a_bounded_amount() {
        // View 1 is ready only after 500 ms: it does not then hold the process for the 500 ms
        // view 0 had, only for the catch-up allowance, and then they alternate.
        let mut shares = Shares::default();
        let mut spent = [0u64; 2];
        for _ in 0..500 {
            let mut ready: Vec<(usize, &mut u64)> = vec![(0, &mut spent[0])];
            let i = shares.pick(&mut ready, 0, 2).expect("view 0");
            shares.rendered(&mut spent[i], 1_000_000);
        }
        let mut run = 0;
        let mut turn = 0;
        loop {
            let mut ready: Vec<(usize, &mut u64)> = spent.iter_mut().enumerate().collect();
            let i = shares.pick(&mut ready, turn, 2).expect("both ready");
            turn = (i + 1) % 2;
            shares.rendered(&mut spent[i], 1_000_000);
            if i != 1 {
                break;
            }
            run += 1;
        }
        assert!(
            (33..=35).contains(&run),
            "view 1 ran {run} frames in a row before view 0 had its turn"
        );
    }
}
