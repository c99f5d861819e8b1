//! The hotsync protocol as a sans-IO state machine, in the manner of
//! quinn-proto: bytes and the current time go in; bytes to send, timer
//! deadlines, actions the driver must carry out (`Peer::poll_action`) and
//! notices (`Peer::poll_event`) come out. No sockets, no clock, no threads, so a
//! deterministic simulator can run thousands of fault schedules a second
//! (see `tests/simulator.rs`), and the `node` crate only moves bytes.
//!
//! One [`Peer`] is one node's side of the relationship. It runs two
//! connections: the session connection (handshake, heartbeats, roles,
//! session records, resyncs) and the config connection (configuration
//! batches and changes, low priority).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod bulk_window;
mod config_apply;
mod config_items;
mod config_pace;
mod config_queue;
mod conn;
mod election;
mod error;
mod event;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod handshake;
mod incremental;
mod jobs;
mod peer;
mod receive;
mod relationship;
mod resync;
mod role;
mod settings;
mod stats;
mod step_down;
#[cfg(feature = "testing")]
pub mod testing;

pub use config_apply::{CONFIG_BACKLOG_BYTES, CONFIG_BACKLOG_ITEMS, ConfigDone, ConfigWork};
pub use config_items::ConfigItems;
pub use config_queue::{ConfigOpKind, ConfigSink, ItemOutcome, OpDelivery, RejectConfig};
pub use conn::{ConnKind, PerConn, Phase};
pub use error::{CloseReason, Field, ProtoError, RequestError};
pub use event::{Action, Event, PeerInfo, PeerState};
pub use handshake::CAP_AUTH;
pub use jobs::{ConfigOutcome, JobKind, JobState, JobStatus};
pub use peer::Peer;
pub use relationship::Unsynced;
pub use role::{Claim, Role, outranks, resolve};
pub use settings::ProtoConfig;
pub use stats::Stats;
