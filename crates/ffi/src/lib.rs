//! The C ABI of hotsync: `libhotsync.a` / `libhotsync.so` and
//! `include/hotsync.h` (generated from this crate by cbindgen; see
//! `tests/header.rs`).
//!
//! The shape follows quiche and rustls-ffi: opaque handles
//! ([`hotsync_node`], [`hotsync_table`]), plain `#[repr(C)]` structs for
//! sessions and reports ([`types`]), a [`hotsync_status`] from every call
//! with a per-thread message, and no panic ever unwinding into C.
//!
//! - [`types`]: the C structs, mirrors of the Rust types with field-by-field
//!   conversions (the table's types stay free to change).
//! - `error`: status codes, messages, the panic guard.
//! - `node`: the control plane in safe Rust.
//! - `exports`: the `extern "C"` functions, the only module with `unsafe`.
//!
//! Rust programs embed `hotsync-node` directly; this crate is for C (its
//! rlib exists for its own tests).
#![warn(missing_docs)]
#![allow(non_camel_case_types)]

mod error;
mod exports;
mod node;
pub mod types;

pub use error::hotsync_status;
pub use exports::*;
pub use node::{hotsync_node, hotsync_table};

/// The ABI version this header describes. `hotsync_abi_version()` returns
/// the library's; a caller compares the two. It changes whenever a
/// function's signature or a struct's layout changes.
pub const HOTSYNC_ABI_VERSION: u32 = 1;
