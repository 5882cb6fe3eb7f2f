//! The supervisor's state, in parts that each own one concern: the pair of children with their
//! ladders ([`Pair`]), the timings ([`Metrics`]), the traces ([`Tracing`]), whether the children
//! answer ([`Liveness`]), what they may send ([`Policing`]), chaos mode ([`Chaos`]), the frame size ([`Geometry`]), the
//! pointer ([`Input`]), the scene drawn ([`Drawn`]) and the embedding application
//! ([`Embedding`]).
//!
//! Each part keeps its fields to itself and changes them only through its methods, which keep
//! its invariants (epochs only rise, a generation changes only with the size, a kill is made
//! once per process, ...). The
//! supervisor (the other files of this module) owns the processes, the sockets and the window,
//! and calls these methods as events come; what a part decides is tested here, without a
//! process, a socket or a display server.

mod chaos;
mod drawn;
mod embedding;
mod geometry;
mod input;
mod liveness;
mod metrics;
mod pair;
mod policing;
mod trace;

pub(super) use chaos::Chaos;
pub(super) use drawn::Drawn;
pub(super) use embedding::Embedding;
pub(super) use geometry::Geometry;
pub(super) use input::Input;
pub(super) use liveness::Liveness;
pub(super) use metrics::Metrics;
pub(super) use pair::{Pair, ViewPair};
pub(super) use policing::{Policing, Who};
pub(super) use trace::Tracing;
