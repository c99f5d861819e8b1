//! The sharded session table (see `docs/ARCHITECTURE.md`).
pub mod model;
pub use model::*;
