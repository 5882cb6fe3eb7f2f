//! What every view of the GPU process draws with (`Device`): the GL context, the exporter,
//! the channel to the launcher, and the process's own state (its epoch, trace, faults), shared
//! by the frame loop ([`crate::frame_loop`]) and the views it takes in turn ([`crate::view`]).

use std::time::{Duration, Instant};

use ipc_protocol::channel::Sender;
use ipc_protocol::messages::{Fault, FaultAction, FaultPoint, GpuToLauncher};
use triptych_trace::Recorder;

use crate::export::Exporter;
use crate::gl::GlContext;
use crate::hooks::Hooks;
use crate::transport::Handover;

/// Fires the fault due at `point` for `frame`, if any, telling the launcher first. Returns true
/// when the fault is to stop signalling fences.
pub(crate) fn maybe_fire(
    faults: &mut Vec<Fault>,
    point: FaultPoint,
    frame: u64,
    events: &Sender<GpuToLauncher>,
) -> Option<FaultAction> {
    ipc_protocol::fault::fire_due(faults, point, frame, |at_ns, fault| {
        let _ = events.send(&GpuToLauncher::FaultFired { at_ns, fault });
    })
}

/// What every view draws with: the GL context, the exporter, the channel to the launcher, and
/// the process's own state (its epoch, trace, faults).
pub(crate) struct Device {
    pub(crate) epoch: u64,
    /// Where a program built on the library acts (`crate::hooks`); nothing in the product.
    pub(crate) hooks: Box<dyn Hooks>,
    pub(crate) gl: GlContext,
    pub(crate) exporter: Box<dyn Exporter>,
    pub(crate) events: Sender<GpuToLauncher>,
    pub(crate) rec: Recorder,
    /// Faults to fire (chaos testing), at any view's frame of their number.
    pub(crate) faults: Vec<Fault>,
    /// An injected fault stopped the fences: the process is hung for good.
    pub(crate) stop_fences: bool,
    /// Whether the launcher's releases are taken (a hook may stop it, as an attacker would).
    pub(crate) takes_releases: bool,
    /// Where each renderer's `SCM_RIGHTS` socket arrives.
    pub(crate) handover: Handover,
    /// Fences are kept outside the export windows (`LauncherToGpu::PrivateFences` answered).
    pub(crate) private_fences: bool,
    /// How many export windows it has room for (`GpuInfo::views`).
    pub(crate) windows: u32,
    /// Since when the launcher has been owed a wake-up for a paced view's frame
    /// ([`Device::send_frame`]).
    pub(crate) owed_since: Option<Instant>,
}

/// How long a paced view's frame may wait in the launcher's mailbox for its wake-up while this
/// process renders other views' frames: a burst of frames wakes the launcher once, within a
/// quarter of a 60 Hz period.
pub(crate) const WAKE_WITHIN: Duration = Duration::from_millis(4);

impl Device {
    /// Sends a frame's description to the launcher. For a paced view (`defer`) its wake-up is
    /// put off: made once this process has nothing more to render, or once the oldest frame
    /// owed one has waited [`WAKE_WITHIN`] ([`Device::wake_launcher`]), so that the frames of
    /// many views rendered back to back wake the launcher once. Any other message, or a full
    /// mailbox, makes it at once.
    pub(crate) fn send_frame(
        &mut self,
        msg: &GpuToLauncher,
        defer: bool,
    ) -> Result<(), ipc_protocol::channel::SendError> {
        if !defer {
            return self.events.send(msg);
        }
        self.events.send_deferred(msg)?;
        self.owed_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Makes the launcher's wake-up owed for frames: at once with `now`, else if the oldest of
    /// them has waited [`WAKE_WITHIN`].
    pub(crate) fn wake_launcher(&mut self, now: bool) {
        let Some(since) = self.owed_since else {
            return;
        };
        if now || since.elapsed() >= WAKE_WITHIN {
            self.owed_since = None;
            self.events.wake_owed();
        }
    }
}
