//! Chaos mode: a reproducible plan of kills at chosen points of the frame path.
//!
//! A seed expands (with a small xorshift generator, so the plan is the same on every machine)
//! into kills spread over the run. Each kill is one of:
//!
//! - an injected fault, delivered to the child in its `Start` message and fired by the child
//!   itself at an exact point: while the GPU process renders, between export and fetch (after the
//!   descriptions went out, before the fences signal), while the renderer waits on fences, or in
//!   the middle of compositing; by `SIGKILL`, `SIGSEGV` or `abort()`, or, for the GPU process, by
//!   ceasing to signal fences (a hang that only the fence deadline reveals);
//! - an external `SIGKILL` from the launcher through the child's pidfd, at a frame chosen by the
//!   plan, landing wherever the child happens to be.
//!
//! A fault fires once: the launcher hears of it (`FaultFired`) and never hands it to a
//! replacement process, which resumes at the frame after the last one presented.

use ipc_protocol::messages::{Fault, FaultAction, FaultPoint};

/// Who an external kill hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The GPU process.
    Gpu,
    /// The renderer.
    Renderer,
}

/// A kill the launcher makes itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExternalKill {
    /// Once this frame has been presented.
    pub after_frame: u64,
    /// Whom.
    pub target: Target,
}

/// The whole plan.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Faults for the GPU process.
    pub gpu: Vec<Fault>,
    /// Faults for the renderer.
    pub renderer: Vec<Fault>,
    /// Kills from outside, in frame order.
    pub external: Vec<ExternalKill>,
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

impl Plan {
    /// `kills` kills spread over frames `1..frames - 1`, chosen by `seed`.
    pub fn new(seed: u64, kills: u32, frames: u64) -> Self {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut plan = Plan::default();
        // Leave the first and last few frames alone, and at least two frames between kills so
        // each replacement gets to present before the next kill.
        let usable = frames.saturating_sub(4).max(1);
        let spacing = (usable / u64::from(kills.max(1))).max(2);
        for k in 0..u64::from(kills) {
            let frame = 2 + k * spacing + rng.below(spacing / 2 + 1);
            if frame + 2 >= frames {
                break;
            }
            let action = match rng.below(3) {
                0 => FaultAction::Kill,
                1 => FaultAction::Segv,
                _ => FaultAction::Abort,
            };
            match rng.below(6) {
                0 => plan.gpu.push(Fault {
                    frame,
                    point: FaultPoint::GpuRender,
                    action,
                }),
                1 => plan.gpu.push(Fault {
                    frame,
                    point: FaultPoint::GpuAfterExport,
                    // One in three of these is a hang rather than a death.
                    action: if rng.below(3) == 0 {
                        FaultAction::StopFences
                    } else {
                        action
                    },
                }),
                2 => plan.renderer.push(Fault {
                    frame,
                    point: FaultPoint::RendererFenceWait,
                    action,
                }),
                3 => plan.renderer.push(Fault {
                    frame,
                    point: FaultPoint::RendererComposite,
                    action,
                }),
                4 => plan.external.push(ExternalKill {
                    after_frame: frame,
                    target: Target::Gpu,
                }),
                _ => plan.external.push(ExternalKill {
                    after_frame: frame,
                    target: Target::Renderer,
                }),
            }
        }
        plan
    }

    /// Adds faults given one by one on the command line.
    pub fn with_faults(mut self, faults: &[Fault]) -> Self {
        for f in faults {
            match f.point {
                FaultPoint::GpuStartup | FaultPoint::GpuRender | FaultPoint::GpuAfterExport => {
                    self.gpu.push(*f)
                }
                FaultPoint::RendererFenceWait | FaultPoint::RendererComposite => {
                    self.renderer.push(*f)
                }
            }
        }
        self
    }

    /// Every kill in the plan.
    pub fn len(&self) -> usize {
        self.gpu.len() + self.renderer.len() + self.external.len()
    }
}

/// Parses `POINT:ACTION@FRAME` (see `triptych run --help`).
pub fn parse_fault(s: &str) -> Result<Fault, String> {
    let (spec, frame) = s
        .split_once('@')
        .ok_or_else(|| format!("fault {s:?} lacks @FRAME"))?;
    let (point, action) = spec
        .split_once(':')
        .ok_or_else(|| format!("fault {s:?} lacks :ACTION"))?;
    let frame: u64 = frame
        .parse()
        .map_err(|_| format!("frame {frame:?} in fault {s:?} is not a number"))?;
    let point = match point {
        "gpu-render" => FaultPoint::GpuRender,
        "gpu-after-export" => FaultPoint::GpuAfterExport,
        "renderer-fence-wait" => FaultPoint::RendererFenceWait,
        "renderer-composite" => FaultPoint::RendererComposite,
        other => return Err(format!("unknown fault point {other:?} in {s:?}")),
    };
    let action = match action {
        "kill" => FaultAction::Kill,
        "segv" => FaultAction::Segv,
        "abort" => FaultAction::Abort,
        "stop-fences" if matches!(point, FaultPoint::GpuRender | FaultPoint::GpuAfterExport) => {
            FaultAction::StopFences
        }
        "late-fences" if matches!(point, FaultPoint::GpuRender | FaultPoint::GpuAfterExport) => {
            FaultAction::LateFences
        }
        other => {
            return Err(format!(
                "unknown or misplaced fault action {other:?} in {s:?}"
            ))
        }
    };
    Ok(Fault {
        frame,
        point,
        action,
    })
}

/// A short description of a fault, for crash records.
pub fn describe(f: &Fault) -> String {
    format!("{:?} at frame {} ({:?})", f.action, f.frame, f.point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_reproducible_and_spread() {
        let a = Plan::new(7, 100, 1000);
        let b = Plan::new(7, 100, 1000);
        assert_eq!(a.gpu, b.gpu);
        assert_eq!(a.external, b.external);
        assert!(a.len() >= 95, "{}", a.len());
        assert_ne!(Plan::new(8, 100, 1000).gpu, a.gpu);
        for f in a.gpu.iter().chain(&a.renderer) {
            assert!(f.frame >= 2 && f.frame + 2 < 1000);
        }
    }
}
