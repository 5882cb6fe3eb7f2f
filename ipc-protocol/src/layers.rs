//! The first check of a frame description, before any fd is fetched: the frame's layer list and
//! every layer's buffer description.
//!
//! The launcher applies [`layers`] to every frame a GPU process sends before it hands the frame
//! on, and the renderer again before it fetches anything (step 2 of its frame loop): a frame
//! has at most
//! [`MAX_LAYERS`] layers, each named once and within the run's layer count; every buffer
//! description passes [`Frame::validate_shape`] (plane count, offsets, strides, sizes, with
//! checked arithmetic) and then [`Frame::validate_remote`] (the fds belong to the current GPU
//! process and lie in its export window). Only a frame that passes is fetched from, so a
//! compromised GPU process cannot steer `pidfd_getfd` outside the window or make the import
//! cache map a layout it did not check. Nothing here owns a resource; it is a pure function of
//! the message, which the benchmark's consumer calls too.
//!
//! [`Frame::validate_shape`]: crate::Frame::validate_shape
//! [`Frame::validate_remote`]: crate::Frame::validate_remote

use crate::frame::{FencePlace, MAX_PLANES};
use crate::messages::FrameMsg;
use crate::DescError;

/// The most layers a frame may have.
pub const MAX_LAYERS: usize = 16;

/// Why a frame's layers were refused.
#[derive(Debug, thiserror::Error)]
pub enum LayersError {
    /// More layers than any frame may have.
    #[error("frame has {0} layers, more than {MAX_LAYERS}")]
    TooMany(usize),
    /// One layer number appears twice.
    #[error("layers: layer {0} appears twice")]
    Duplicate(u32),
    /// A layer number outside the run's layers.
    #[error("layers: layer {0} is outside the {1} layers of this run")]
    Unknown(u32, u32),
    /// A layer's buffer description is malformed or names fds it may not.
    #[error("layers[{layer}].buffer: {source}")]
    Desc {
        /// The layer.
        layer: u32,
        /// What is wrong with its description.
        source: DescError,
    },
    /// A layer's damage does not fit its buffer, or has too many rectangles.
    #[error("layers[{layer}].damage: {source}")]
    Damage {
        /// The layer.
        layer: u32,
        /// What is wrong with it.
        source: crate::damage::DamageError,
    },
    /// A layer's damage claims to be relative to a frame not before this one.
    #[error("layers[{layer}].damage_since: frame {since} is not before frame {frame}")]
    DamageSince {
        /// The layer.
        layer: u32,
        /// The frame it named.
        since: u64,
        /// This frame.
        frame: u64,
    },
}

/// Checks every layer of `msg` for a run of `layers` layers whose GPU process is `gpu_pid` with
/// export window `[window.0, window.1)`. Returns, in the message's order, the end of each
/// layer's plane 0 (what the import checks against the fetched file's size).
pub fn layers(
    msg: &FrameMsg,
    layers: u32,
    gpu_pid: u32,
    window: (i32, i32),
) -> Result<Vec<u64>, LayersError> {
    layers_with(msg, layers, gpu_pid, window, FencePlace::InWindow)
}

/// As [`layers`], with each fence where `fence` says ([`FencePlace`]): in the window, kept
/// private outside it, or not checked (by a reader that takes no fence).
pub fn layers_with(
    msg: &FrameMsg,
    layers: u32,
    gpu_pid: u32,
    window: (i32, i32),
    fence: FencePlace,
) -> Result<Vec<u64>, LayersError> {
    if msg.layers.len() > MAX_LAYERS {
        return Err(LayersError::TooMany(msg.layers.len()));
    }
    let mut ends = Vec::with_capacity(msg.layers.len());
    for (i, l) in msg.layers.iter().enumerate() {
        if msg.layers[..i].iter().any(|o| o.layer == l.layer) {
            return Err(LayersError::Duplicate(l.layer));
        }
        if l.layer >= layers {
            return Err(LayersError::Unknown(l.layer, layers));
        }
        let layer = l.layer;
        let e = l
            .buffer
            .validate_shape()
            .map_err(|source| LayersError::Desc { layer, source })?;
        debug_assert!(e.len() <= MAX_PLANES);
        l.buffer
            .validate_remote_with(gpu_pid, window, fence)
            .map_err(|source| LayersError::Desc { layer, source })?;
        // The damage lies inside the buffer whose shape was just checked.
        crate::damage::check(&l.damage, l.buffer.width, l.buffer.height)
            .map_err(|source| LayersError::Damage { layer, source })?;
        if let Some(since) = l.damage_since.filter(|s| *s >= msg.frame) {
            return Err(LayersError::DamageSince {
                layer,
                since,
                frame: msg.frame,
            });
        }
        ends.push(e[0]);
    }
    Ok(ends)
}
