//! Linux netfilter connection tracking as a hotsync data plane.
//!
//! - [`codec`]: the ctnetlink messages, decoded from the kernel's bytes
//!   with every length checked (input like a peer's) and encoded into a
//!   reused buffer;
//! - [`socket`]: a netlink socket (optionally opened in a named network
//!   namespace) that dumps, receives events and commits batches;
//! - [`filter`]: the ignore lists that keep entries local-only (B11);
//! - [`dataplane`]: the source thread (subscribe, dump, follow events,
//!   re-dump after lost events) and the takeover commit;
//! - [`mirror`]: mirror mode, the standby writing replicated entries to
//!   its kernel continuously.
//!
//! See `docs/CONNTRACK.md`.
#![warn(missing_docs)]

pub mod codec;
mod consts;
pub mod dataplane;
pub mod filter;
pub mod fuzzing;
pub mod mirror;
pub mod socket;
mod sys;

pub use dataplane::{ConntrackConfig, DataPlane, Mode, Stats};
pub use filter::Filter;
pub use socket::{Counts, CtError, CtSocket, Event, Membership, Subscribe, in_netns};
