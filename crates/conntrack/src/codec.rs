//! The ctnetlink codec: netlink messages and attributes in, sessions out,
//! and `IPCTNL_MSG_CT_NEW` / `IPCTNL_MSG_CT_GET` requests back.
//!
//! Kernel bytes are input like a peer's: every length is checked against
//! what is left before it is used, a value must have exactly its type's
//! size, unknown attributes are skipped, and nothing allocates per message
//! (decoding borrows the receive buffer; encoding appends to a reused one).
//!
//! This module keeps the public API; its submodules hold one concern
//! each: the netlink framing and the checked reads of values (`netlink`),
//! the conntrack tuples and the NAT a reply tuple implies (`tuples`), an
//! entry's decoding (`decode`) and the requests' encoding (`encode`).

mod decode;
mod encode;
mod netlink;
#[cfg(test)]
mod tests;
mod tuples;

pub use decode::{CtEntry, decode_entry, decode_key};
pub use encode::Encoder;
pub use netlink::{Attrs, CodecError, Messages, NlMsg};
pub use tuples::{CtTuple, inverted, original_tuple, reply_tuple};
