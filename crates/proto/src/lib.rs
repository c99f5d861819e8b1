//! The hotsync protocol as a sans-IO state machine, in the manner of
//! quinn-proto: bytes and the current time go in; bytes to send, timer
//! deadlines and events come out. No sockets, no clock, no threads, so a
//! deterministic simulator can run thousands of fault schedules a second
//! (see `tests/simulator.rs`), and the `node` crate only moves bytes.
//!
//! One [`Peer`] is one node's side of the relationship. It runs two
//! connections: the session connection (handshake, heartbeats, roles,
//! session records, resyncs) and the config connection (configuration
//! batches and changes, low priority).

mod auth;
mod conn;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod jobs;
mod peer;
mod role;
mod settings;
mod stats;

pub use conn::{ConnKind, Phase};
pub use error::{ProtoError, RequestError};
pub use jobs::{ConfigOutcome, JobKind, JobState, JobStatus};
pub use peer::{CAP_AUTH, ConfigSink, Event, ItemOutcome, Peer, PeerInfo, PeerState, RejectConfig};
pub use role::{Claim, Role, outranks, resolve};
pub use settings::ProtoConfig;
pub use stats::Stats;
