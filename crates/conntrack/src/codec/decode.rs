//! Decoding: a `CT_NEW` / `CT_DELETE` payload (a dump reply or an event)
//! into the table's session key and entry, every value checked by the
//! framing's reads.

use super::netlink::{Attrs, CodecError, be16, be32, be64, byte};
use super::tuples::{CtTuple, inverted, is_translated, nat_of, parse_tuple};
use crate::consts::*;
use hotsync_table::{SessionEntry, SessionKey, SessionState, flags};

/// A conntrack entry read from a dump or an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtEntry {
    /// The session key (vsys 0; the caller sets its own).
    pub key: SessionKey,
    /// The entry; `last_seen` is `now`, so `timeout` counts from it.
    pub entry: SessionEntry,
    /// The reply tuple as reported.
    pub reply: CtTuple,
}

/// Decodes the payload of an `IPCTNL_MSG_CT_NEW` / `_DELETE` message (a
/// dump reply or an event). `now` is the caller's clock in Unix seconds.
pub fn decode_entry(payload: &[u8], now: u32) -> Result<CtEntry, CodecError> {
    if payload.len() < NFGENMSG_LEN {
        return Err(CodecError::Truncated("nfgenmsg"));
    }
    let family = payload[0];
    let fam_byte = match family {
        AF_INET => 4,
        AF_INET6 => 6,
        f => return Err(CodecError::UnsupportedFamily(f)),
    };
    let mut orig = None;
    let mut reply = None;
    let mut e = SessionEntry {
        created: now,
        last_seen: now,
        ..SessionEntry::default()
    };
    let mut zone = 0u16;
    let mut tcp_state = None;
    for a in Attrs::new(&payload[NFGENMSG_LEN..]) {
        let (ty, v) = a?;
        match ty {
            cta::TUPLE_ORIG => orig = Some(parse_tuple(family, v)?),
            cta::TUPLE_REPLY => reply = Some(parse_tuple(family, v)?),
            cta::STATUS => e.ct_status = be32("CTA_STATUS", v)?,
            cta::TIMEOUT => e.timeout = be32("CTA_TIMEOUT", v)?,
            cta::MARK => e.mark = be32("CTA_MARK", v)?,
            cta::ZONE => zone = be16("CTA_ZONE", v)?,
            cta::COUNTERS_ORIG | cta::COUNTERS_REPLY => {
                let dir = usize::from(ty == cta::COUNTERS_REPLY);
                for a in Attrs::new(v) {
                    let (ty, v) = a?;
                    match ty {
                        counters::PACKETS => e.packets[dir] = be64("CTA_COUNTERS_PACKETS", v)?,
                        counters::BYTES => e.bytes[dir] = be64("CTA_COUNTERS_BYTES", v)?,
                        _ => {}
                    }
                }
            }
            cta::TIMESTAMP => {
                for a in Attrs::new(v) {
                    let (ty, v) = a?;
                    if ty == tstamp::START {
                        let ns = be64("CTA_TIMESTAMP_START", v)?;
                        e.created = u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX);
                    }
                }
            }
            cta::PROTOINFO => {
                for a in Attrs::new(v) {
                    let (ty, v) = a?;
                    if ty != protoinfo::TCP {
                        continue;
                    }
                    for a in Attrs::new(v) {
                        let (ty, v) = a?;
                        match ty {
                            protoinfo::TCP_STATE => {
                                tcp_state = Some(byte("CTA_PROTOINFO_TCP_STATE", v)?)
                            }
                            protoinfo::TCP_WSCALE_ORIGINAL => {
                                e.tcp_wscale[0] = byte("CTA_PROTOINFO_TCP_WSCALE", v)?
                            }
                            protoinfo::TCP_WSCALE_REPLY => {
                                e.tcp_wscale[1] = byte("CTA_PROTOINFO_TCP_WSCALE", v)?
                            }
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let orig = orig.ok_or(CodecError::Missing("CTA_TUPLE_ORIG"))?;
    let reply = match reply {
        Some(r) => r,
        None => inverted(&orig),
    };
    let key = SessionKey {
        src_addr: orig.src,
        dst_addr: orig.dst,
        vsys: 0,
        ct_zone: zone,
        src_port: orig.src_port,
        dst_port: orig.dst_port,
        family: fam_byte,
        protocol: orig.protocol,
    };
    e.flags = flags::BACKUP;
    if e.ct_status & crate::consts::ips::ASSURED != 0 {
        e.flags |= flags::ASSURED;
    }
    if is_translated(&orig, &reply) {
        e.flags |= flags::NAT;
        e.nat = nat_of(&orig, &reply);
    }
    e.state = match tcp_state {
        Some(s) => s,
        None if e.ct_status & crate::consts::ips::SEEN_REPLY != 0 => {
            SessionState::Established as u8
        }
        None => SessionState::None as u8,
    };
    Ok(CtEntry {
        key,
        entry: e,
        reply,
    })
}

/// Decodes the original tuple and zone of a message (enough to remove the
/// session a destroy event names).
pub fn decode_key(payload: &[u8]) -> Result<SessionKey, CodecError> {
    decode_entry(payload, 0).map(|c| c.key)
}
