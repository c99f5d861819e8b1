//! The configuration model of a hotsync node, its VRP-style parser, and the
//! configuration sync rules (see `docs/CONFIG.md`).
//!
//! - [`ConfigStore::parse`] reads a `display current-configuration` text
//!   into ordered items per system (the root and each virtual system);
//!   [`ConfigStore::render`] prints it back.
//! - [`ConfigStore::execute`] applies one command typed in `system-view`
//!   and returns the [`ConfigChange`] to mirror on the peer.
//! - [`ConfigStore::syncable`] is what `hrp sync config` sends;
//!   [`ConfigStore::apply_batch_item`] and [`ConfigStore::apply_change`]
//!   are the receiving side (B3, B5, B7, B8, B10); [`is_syncable`] is the
//!   single rule for what may cross.
//! - [`HrpSettings::from_store`] reads the node's own `hrp` lines;
//!   [`check_node_file`] reports every error of a node file.
//!
//! An item crosses the wire as `{vsys, text}`: [`ConfigItem::render`] and
//! [`ConfigItem::parse`]. The root system is named `""` ([`ROOT`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod check;
mod command;
mod error;
pub mod fuzzing;
mod hrp;
mod item;
mod limits;
mod order;
mod parse;
mod secret;
mod store;
mod sync;
mod syntax;

pub use check::{Diagnostic, NodeFile, check_node_file};
pub use command::{ChangeOp, ConfigChange};
pub use error::{ApplyError, CommandError, ParseError, SettingsError};
pub use hrp::{ConntrackSettings, HrpEndpoint, HrpSettings, IGNORED_HRP};
pub use item::{BodyLine, Category, ConfigItem, Container, Identity};
pub use limits::{MAX_COMMAND_BYTES, MAX_LINE_BYTES, MAX_NAME_CHARS, is_forbidden_char, printable};
pub use order::Placement;
pub use secret::{SECRET_MASK, mask_secrets};
pub use store::{ConfigStore, Items, ROOT};
pub use sync::{BatchOutcome, BatchReport, Conflict, ConflictKind, RejectReason, is_syncable};
