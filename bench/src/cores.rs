//! Which CPUs the measurements run on, and pinning to them with `sched_setaffinity(2)`.
//!
//! A cross-process figure has two sides: the producer (this process, in the GPU process's role)
//! and the consumer (`triptych-bench peer`, in the renderer's role). With two or more CPUs
//! allowed, each side is pinned to its own named CPU, the first two of this process's affinity
//! mask, so a value and its baseline always cross the same pair of cores. With one CPU both sides
//! share it and every round trip includes a context switch; the report says so. Pinning applies
//! to the calling thread only; [`Cores::restore`] gives the thread its original mask back before
//! the pipeline runs, so the processes of `triptych run` are not squeezed onto one core.
//!
//! See <https://man7.org/linux/man-pages/man2/sched_setaffinity.2.html>.

use anyhow::Context;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use serde::Serialize;

/// The CPUs of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Cores {
    /// CPUs this process was allowed at start, ascending.
    pub allowed: Vec<usize>,
    /// The producer's CPU (this process).
    pub producer: usize,
    /// The consumer's CPU (the peer process).
    pub consumer: usize,
    /// Whether both sides share one CPU (only one was allowed).
    pub shared: bool,
    #[serde(skip)]
    original: CpuSet,
}

impl Cores {
    /// Reads this thread's affinity and picks the producer's and the consumer's CPUs.
    pub fn choose() -> anyhow::Result<Cores> {
        let original =
            sched_getaffinity(Pid::from_raw(0)).context("reading this thread's CPU affinity")?;
        let allowed: Vec<usize> = (0..CpuSet::count())
            .filter(|&c| original.is_set(c).unwrap_or(false))
            .collect();
        let (&producer, rest) = allowed
            .split_first()
            .context("this thread's CPU affinity mask is empty")?;
        let consumer = rest.first().copied().unwrap_or(producer);
        Ok(Cores {
            shared: consumer == producer,
            allowed,
            producer,
            consumer,
            original,
        })
    }

    /// One line for people: which CPU each side runs on.
    pub fn describe(&self) -> String {
        if self.shared {
            format!(
                "one CPU only: producer and consumer share cpu {} (every round trip includes a context switch)",
                self.producer
            )
        } else {
            format!(
                "producer (GPU-process side) on cpu {}, consumer (renderer side) on cpu {}",
                self.producer, self.consumer
            )
        }
    }

    /// Gives the calling thread back the affinity it had when [`Cores::choose`] ran.
    pub fn restore(&self) -> anyhow::Result<()> {
        sched_setaffinity(Pid::from_raw(0), &self.original)
            .context("restoring this thread's CPU affinity")
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin(cpu: usize) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)
        .with_context(|| format!("cpu {cpu} is beyond the CPU set's size"))?;
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| format!("pinning to cpu {cpu}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_and_restores_in_a_thread() {
        std::thread::spawn(|| {
            let cores = Cores::choose().expect("choose");
            assert!(cores.allowed.contains(&cores.producer));
            assert!(cores.allowed.contains(&cores.consumer));
            assert_eq!(cores.shared, cores.allowed.len() == 1);
            pin(cores.consumer).expect("pin");
            let now = sched_getaffinity(Pid::from_raw(0)).expect("get");
            let set: Vec<usize> = (0..CpuSet::count())
                .filter(|&c| now.is_set(c).unwrap_or(false))
                .collect();
            assert_eq!(set, [cores.consumer]);
            cores.restore().expect("restore");
            let back = sched_getaffinity(Pid::from_raw(0)).expect("get");
            assert_eq!(back, cores.original);
        })
        .join()
        .expect("thread");
    }
}
