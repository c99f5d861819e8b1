//! Conntrack tuples: one direction of a flow as ctnetlink reports it, and
//! the translation a reply tuple implies. Kept apart from the framing
//! because decoding and encoding both map between tuples and the table's
//! session key and NAT translation, ICMP's type/code included.

use super::netlink::{Attrs, CodecError, be16, byte, exact};
use crate::consts::*;
use hotsync_table::{NatTranslation, SessionEntry, SessionKey, ip_proto};

/// One direction's tuple as ctnetlink reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CtTuple {
    /// Source address (IPv4 in the first 4 bytes).
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// IP protocol number.
    pub protocol: u8,
    /// Source port, ICMP id or GRE key.
    pub src_port: u16,
    /// Destination port, ICMP type<<8|code, or GRE key.
    pub dst_port: u16,
}

pub(super) fn parse_tuple(family: u8, buf: &[u8]) -> Result<CtTuple, CodecError> {
    let mut t = CtTuple::default();
    let (mut have_src, mut have_dst, mut have_proto) = (false, false, false);
    let (mut icmp_type, mut icmp_code) = (0u8, 0u8);
    for a in Attrs::new(buf) {
        let (ty, v) = a?;
        match ty {
            tuple::IP => {
                for a in Attrs::new(v) {
                    let (ty, v) = a?;
                    let v4 = family == AF_INET;
                    match ty {
                        ip::V4_SRC | ip::V4_DST if !v4 => return Err(CodecError::FamilyMismatch),
                        ip::V6_SRC | ip::V6_DST if v4 => return Err(CodecError::FamilyMismatch),
                        ip::V4_SRC => {
                            t.src[..4].copy_from_slice(&exact::<4>("CTA_IP_V4_SRC", v)?);
                            have_src = true;
                        }
                        ip::V4_DST => {
                            t.dst[..4].copy_from_slice(&exact::<4>("CTA_IP_V4_DST", v)?);
                            have_dst = true;
                        }
                        ip::V6_SRC => {
                            t.src = exact::<16>("CTA_IP_V6_SRC", v)?;
                            have_src = true;
                        }
                        ip::V6_DST => {
                            t.dst = exact::<16>("CTA_IP_V6_DST", v)?;
                            have_dst = true;
                        }
                        _ => {}
                    }
                }
            }
            tuple::PROTO => {
                for a in Attrs::new(v) {
                    let (ty, v) = a?;
                    match ty {
                        proto::NUM => {
                            t.protocol = byte("CTA_PROTO_NUM", v)?;
                            have_proto = true;
                        }
                        proto::SRC_PORT => t.src_port = be16("CTA_PROTO_SRC_PORT", v)?,
                        proto::DST_PORT => t.dst_port = be16("CTA_PROTO_DST_PORT", v)?,
                        proto::ICMP_ID | proto::ICMPV6_ID => {
                            t.src_port = be16("CTA_PROTO_ICMP_ID", v)?
                        }
                        proto::ICMP_TYPE | proto::ICMPV6_TYPE => {
                            icmp_type = byte("CTA_PROTO_ICMP_TYPE", v)?
                        }
                        proto::ICMP_CODE | proto::ICMPV6_CODE => {
                            icmp_code = byte("CTA_PROTO_ICMP_CODE", v)?
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if !(have_src && have_dst) {
        return Err(CodecError::Missing("tuple address"));
    }
    if !have_proto {
        return Err(CodecError::Missing("CTA_PROTO_NUM"));
    }
    if is_icmp(t.protocol) {
        t.dst_port = u16::from(icmp_type) << 8 | u16::from(icmp_code);
    }
    Ok(t)
}

pub(super) fn is_icmp(protocol: u8) -> bool {
    protocol == ip_proto::ICMP || protocol == ip_proto::ICMPV6
}

/// The reply type of an ICMP/ICMPv6 request type (the kernel's `invmap`);
/// other types are kept.
fn icmp_reply_type(protocol: u8, ty: u8) -> u8 {
    match (protocol, ty) {
        (ip_proto::ICMP, 8) => 0,
        (ip_proto::ICMP, 0) => 8,
        (ip_proto::ICMP, 13) => 14,
        (ip_proto::ICMP, 14) => 13,
        (ip_proto::ICMP, 15) => 16,
        (ip_proto::ICMP, 16) => 15,
        (ip_proto::ICMP, 17) => 18,
        (ip_proto::ICMP, 18) => 17,
        (ip_proto::ICMPV6, 128) => 129,
        (ip_proto::ICMPV6, 129) => 128,
        (ip_proto::ICMPV6, 139) => 140,
        (ip_proto::ICMPV6, 140) => 139,
        (_, t) => t,
    }
}

/// The reply tuple of an untranslated flow with original tuple `o`.
pub fn inverted(o: &CtTuple) -> CtTuple {
    let mut r = CtTuple {
        src: o.dst,
        dst: o.src,
        protocol: o.protocol,
        src_port: o.dst_port,
        dst_port: o.src_port,
    };
    if is_icmp(o.protocol) {
        let ty = icmp_reply_type(o.protocol, (o.dst_port >> 8) as u8);
        r.src_port = o.src_port;
        r.dst_port = u16::from(ty) << 8 | (o.dst_port & 0xff);
    }
    r
}

/// Whether `reply` is not simply the inverse of `orig`. For ICMP only the
/// addresses and the id count: the reply's type follows from the request's.
pub(super) fn is_translated(orig: &CtTuple, reply: &CtTuple) -> bool {
    let inv = inverted(orig);
    if is_icmp(orig.protocol) {
        (reply.src, reply.dst, reply.src_port) != (inv.src, inv.dst, inv.src_port)
    } else {
        *reply != inv
    }
}

/// The table's translation for a reply tuple that is not the inverse of
/// the original (see [`hotsync_table::NatTranslation`]).
pub(super) fn nat_of(orig: &CtTuple, reply: &CtTuple) -> NatTranslation {
    if is_icmp(orig.protocol) {
        NatTranslation {
            src_addr: reply.dst,
            dst_addr: reply.src,
            src_port: reply.src_port,
            dst_port: orig.dst_port,
        }
    } else {
        NatTranslation {
            src_addr: reply.dst,
            dst_addr: reply.src,
            src_port: reply.dst_port,
            dst_port: reply.src_port,
        }
    }
}

/// The reply tuple a session stands for (its translation, or the inverse).
pub fn reply_tuple(key: &SessionKey, entry: &SessionEntry) -> CtTuple {
    let orig = original_tuple(key);
    if !entry.has_nat() {
        return inverted(&orig);
    }
    let n = &entry.nat;
    if is_icmp(key.protocol) {
        let inv = inverted(&orig);
        CtTuple {
            src: n.dst_addr,
            dst: n.src_addr,
            protocol: key.protocol,
            src_port: n.src_port,
            dst_port: inv.dst_port,
        }
    } else {
        CtTuple {
            src: n.dst_addr,
            dst: n.src_addr,
            protocol: key.protocol,
            src_port: n.dst_port,
            dst_port: n.src_port,
        }
    }
}

/// The original tuple of a session key.
pub fn original_tuple(key: &SessionKey) -> CtTuple {
    CtTuple {
        src: key.src_addr,
        dst: key.dst_addr,
        protocol: key.protocol,
        src_port: key.src_port,
        dst_port: key.dst_port,
    }
}
