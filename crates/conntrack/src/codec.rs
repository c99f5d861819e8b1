//! The ctnetlink codec: netlink messages and attributes in, sessions out,
//! and `IPCTNL_MSG_CT_NEW` / `IPCTNL_MSG_CT_GET` requests back.
//!
//! Kernel bytes are input like a peer's: every length is checked against
//! what is left before it is used, a value must have exactly its type's
//! size, unknown attributes are skipped, and nothing allocates per message
//! (decoding borrows the receive buffer; encoding appends to a reused one).

use crate::consts::*;
use hotsync_table::{NatTranslation, SessionEntry, SessionKey, SessionState, flags, ip_proto};

/// Why kernel bytes were refused. The message is skipped and counted; a
/// framing error ([`CodecError::Truncated`] of a netlink header) abandons
/// the rest of the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// A header or a length runs past the end of its buffer.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// An attribute's value does not have its type's size.
    #[error("attribute {0} has length {1}")]
    BadLength(&'static str, usize),
    /// The message's family is neither `AF_INET` nor `AF_INET6`.
    #[error("unsupported address family {0}")]
    UnsupportedFamily(u8),
    /// A required attribute is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// An address of the other family than the message's.
    #[error("address of another family than the message")]
    FamilyMismatch,
}

impl CodecError {
    /// A stable short label, used as a counter key.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Truncated(_) => "truncated",
            Self::BadLength(..) => "bad_length",
            Self::UnsupportedFamily(_) => "unsupported_family",
            Self::Missing(_) => "missing_attribute",
            Self::FamilyMismatch => "family_mismatch",
        }
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink message of a datagram, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct NlMsg<'a> {
    /// `nlmsg_type`.
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`: for an event, the port id of the socket whose request
    /// caused it (0 when the kernel itself did).
    pub pid: u32,
    /// Everything after the header.
    pub payload: &'a [u8],
}

impl NlMsg<'_> {
    /// For `NLMSG_ERROR`: the error number (negative errno, 0 for an ack)
    /// and the sequence number of the request it answers.
    pub fn error(&self) -> Result<(i32, u32), CodecError> {
        let p = self.payload;
        if p.len() < 4 + NLMSG_HDRLEN {
            return Err(CodecError::Truncated("nlmsgerr"));
        }
        let errno = i32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
        let seq = u32::from_ne_bytes([p[12], p[13], p[14], p[15]]);
        Ok((errno, seq))
    }

    /// The ctnetlink message type, `None` for another subsystem.
    pub fn ct_type(&self) -> Option<u16> {
        (self.ty >> 8 == NFNL_SUBSYS_CTNETLINK).then_some(self.ty & 0xff)
    }
}

/// The netlink messages of one received datagram.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    /// Iterates `buf`, which holds whole messages as `recv` returned them.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<NlMsg<'a>, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let b = self.rest;
        let bad = |s: &mut Self| {
            s.rest = &[];
            Some(Err(CodecError::Truncated("netlink message")))
        };
        if b.len() < NLMSG_HDRLEN {
            return bad(self);
        }
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            return bad(self);
        }
        let msg = NlMsg {
            ty: u16::from_ne_bytes([b[4], b[5]]),
            flags: u16::from_ne_bytes([b[6], b[7]]),
            seq: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
            pid: u32::from_ne_bytes([b[12], b[13], b[14], b[15]]),
            payload: &b[NLMSG_HDRLEN..len],
        };
        self.rest = &b[align4(len).min(b.len())..];
        Some(Ok(msg))
    }
}

/// The attributes of one level, borrowed: `(type without flag bits, value)`.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    /// Iterates the attributes in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.rest;
        // Fewer than a header's bytes is trailing padding.
        if b.len() < NLA_HDRLEN {
            self.rest = &[];
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > b.len() {
            self.rest = &[];
            return Some(Err(CodecError::Truncated("attribute")));
        }
        let value = &b[NLA_HDRLEN..len];
        self.rest = &b[align4(len).min(b.len())..];
        Some(Ok((ty, value)))
    }
}

fn exact<const N: usize>(name: &'static str, v: &[u8]) -> Result<[u8; N], CodecError> {
    v.try_into()
        .map_err(|_| CodecError::BadLength(name, v.len()))
}

fn be16(name: &'static str, v: &[u8]) -> Result<u16, CodecError> {
    exact::<2>(name, v).map(u16::from_be_bytes)
}

fn be32(name: &'static str, v: &[u8]) -> Result<u32, CodecError> {
    exact::<4>(name, v).map(u32::from_be_bytes)
}

fn be64(name: &'static str, v: &[u8]) -> Result<u64, CodecError> {
    exact::<8>(name, v).map(u64::from_be_bytes)
}

fn byte(name: &'static str, v: &[u8]) -> Result<u8, CodecError> {
    exact::<1>(name, v).map(|[b]| b)
}

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

fn parse_tuple(family: u8, buf: &[u8]) -> Result<CtTuple, CodecError> {
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

fn is_icmp(protocol: u8) -> bool {
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
fn is_translated(orig: &CtTuple, reply: &CtTuple) -> bool {
    let inv = inverted(orig);
    if is_icmp(orig.protocol) {
        (reply.src, reply.dst, reply.src_port) != (inv.src, inv.dst, inv.src_port)
    } else {
        *reply != inv
    }
}

/// The table's translation for a reply tuple that is not the inverse of
/// the original (see [`hotsync_table::NatTranslation`]).
fn nat_of(orig: &CtTuple, reply: &CtTuple) -> NatTranslation {
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

/// Appends netlink messages to a reused buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
    msg_start: usize,
    nests: Vec<usize>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The encoded messages.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes encoded so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is encoded.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Forgets the messages, keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.nests.clear();
    }

    /// Starts a ctnetlink message with its nfgenmsg header.
    pub fn begin(&mut self, ct_type: u16, flags: u16, seq: u32, family: u8) {
        self.msg_start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf
            .extend_from_slice(&(NFNL_SUBSYS_CTNETLINK << 8 | ct_type).to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&[family, 0, 0, 0]);
    }

    /// Ends the message begun last (writes its length).
    pub fn end(&mut self) {
        let len = (self.buf.len() - self.msg_start) as u32;
        self.buf[self.msg_start..self.msg_start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Appends one attribute.
    pub fn attr(&mut self, ty: u16, value: &[u8]) {
        let len = (NLA_HDRLEN + value.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    /// Opens a nested attribute; close it with [`Encoder::nest_end`].
    pub fn nest(&mut self, ty: u16) {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    }

    /// Closes the innermost nested attribute.
    pub fn nest_end(&mut self) {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
    }

    fn tuple(&mut self, ty: u16, family: u8, t: &CtTuple) {
        self.nest(ty);
        self.nest(tuple::IP);
        if family == AF_INET {
            self.attr(ip::V4_SRC, &t.src[..4]);
            self.attr(ip::V4_DST, &t.dst[..4]);
        } else {
            self.attr(ip::V6_SRC, &t.src);
            self.attr(ip::V6_DST, &t.dst);
        }
        self.nest_end();
        self.nest(tuple::PROTO);
        self.attr(proto::NUM, &[t.protocol]);
        if t.protocol == ip_proto::ICMP {
            self.attr(proto::ICMP_ID, &t.src_port.to_be_bytes());
            self.attr(proto::ICMP_TYPE, &[(t.dst_port >> 8) as u8]);
            self.attr(proto::ICMP_CODE, &[t.dst_port as u8]);
        } else if t.protocol == ip_proto::ICMPV6 {
            self.attr(proto::ICMPV6_ID, &t.src_port.to_be_bytes());
            self.attr(proto::ICMPV6_TYPE, &[(t.dst_port >> 8) as u8]);
            self.attr(proto::ICMPV6_CODE, &[t.dst_port as u8]);
        } else {
            self.attr(proto::SRC_PORT, &t.src_port.to_be_bytes());
            self.attr(proto::DST_PORT, &t.dst_port.to_be_bytes());
        }
        self.nest_end();
        self.nest_end();
    }

    /// A NAT setup (`CTA_NAT_SRC`/`_DST`) to one address and port, so the
    /// kernel translates the flow's packets, not only matches its replies.
    fn nat_setup(&mut self, ty: u16, family: u8, addr: &[u8; 16], port: Option<u16>) {
        self.nest(ty);
        if family == AF_INET {
            self.attr(nat::V4_MINIP, &addr[..4]);
            self.attr(nat::V4_MAXIP, &addr[..4]);
        } else {
            self.attr(nat::V6_MINIP, addr);
            self.attr(nat::V6_MAXIP, addr);
        }
        if let Some(p) = port {
            self.nest(nat::PROTO);
            self.attr(nat::PORT_MIN, &p.to_be_bytes());
            self.attr(nat::PORT_MAX, &p.to_be_bytes());
            self.nest_end();
        }
        self.nest_end();
    }

    /// A dump request for every entry of both families.
    pub fn dump_request(&mut self, seq: u32) {
        self.begin(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, 0);
        self.end();
    }

    /// A request for the table's global counters, acknowledged: a cheap
    /// probe of the module and the capability (a dump reads every entry).
    pub fn stats_request(&mut self, seq: u32) {
        self.begin(IPCTNL_MSG_CT_GET_STATS, NLM_F_REQUEST | NLM_F_ACK, seq, 0);
        self.end();
    }

    /// An `IPCTNL_MSG_CT_DELETE` for the session's entry.
    pub fn delete(&mut self, key: &SessionKey, seq: u32, ack: bool) {
        let family = if key.family == 4 { AF_INET } else { AF_INET6 };
        let flags = NLM_F_REQUEST | if ack { NLM_F_ACK } else { 0 };
        self.begin(IPCTNL_MSG_CT_DELETE, flags, seq, family);
        self.tuple(cta::TUPLE_ORIG, family, &original_tuple(key));
        if key.ct_zone != 0 {
            self.attr(cta::ZONE, &key.ct_zone.to_be_bytes());
        }
        self.end();
    }

    /// An `IPCTNL_MSG_CT_NEW` creating (or, when it exists, updating) the
    /// session's entry with `timeout` seconds to live. TCP entries get the
    /// "be liberal" flag in both directions: the window data is not
    /// replicated, so the kernel must not judge mid-stream packets by it.
    /// With `nat_setup`, a translated entry carries its NAT setup (only a
    /// new entry accepts one).
    pub fn commit(
        &mut self,
        key: &SessionKey,
        e: &SessionEntry,
        timeout: u32,
        seq: u32,
        ack: bool,
        nat_setup: bool,
    ) {
        let family = if key.family == 4 { AF_INET } else { AF_INET6 };
        let flags = NLM_F_REQUEST | NLM_F_CREATE | if ack { NLM_F_ACK } else { 0 };
        self.begin(IPCTNL_MSG_CT_NEW, flags, seq, family);
        let orig = original_tuple(key);
        self.tuple(cta::TUPLE_ORIG, family, &orig);
        self.tuple(cta::TUPLE_REPLY, family, &reply_tuple(key, e));
        let status = e.ct_status & ips::SETTABLE | ips::CONFIRMED;
        self.attr(cta::STATUS, &status.to_be_bytes());
        self.attr(cta::TIMEOUT, &timeout.max(1).to_be_bytes());
        self.attr(cta::MARK, &e.mark.to_be_bytes());
        if key.ct_zone != 0 {
            self.attr(cta::ZONE, &key.ct_zone.to_be_bytes());
        }
        if nat_setup && e.has_nat() {
            // As conntrackd does: the translation as NAT setups, from which
            // the kernel derives the same reply tuple.
            let n = &e.nat;
            let ports = !is_icmp(key.protocol);
            if n.src_addr != key.src_addr || (ports && n.src_port != key.src_port) {
                self.nat_setup(
                    cta::NAT_SRC,
                    family,
                    &n.src_addr,
                    ports.then_some(n.src_port),
                );
            }
            if n.dst_addr != key.dst_addr || (ports && n.dst_port != key.dst_port) {
                self.nat_setup(
                    cta::NAT_DST,
                    family,
                    &n.dst_addr,
                    ports.then_some(n.dst_port),
                );
            }
        }
        if key.protocol == ip_proto::TCP {
            let liberal = [IP_CT_TCP_FLAG_BE_LIBERAL, IP_CT_TCP_FLAG_BE_LIBERAL];
            self.nest(cta::PROTOINFO);
            self.nest(protoinfo::TCP);
            self.attr(protoinfo::TCP_STATE, &[e.state]);
            self.attr(protoinfo::TCP_WSCALE_ORIGINAL, &[e.tcp_wscale[0]]);
            self.attr(protoinfo::TCP_WSCALE_REPLY, &[e.tcp_wscale[1]]);
            self.attr(protoinfo::TCP_FLAGS_ORIGINAL, &liberal);
            self.attr(protoinfo::TCP_FLAGS_REPLY, &liberal);
            self.nest_end();
            self.nest_end();
        }
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn session(protocol: u8, v6: bool) -> (SessionKey, SessionEntry) {
        let (s, d) = if v6 {
            (
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            )
        };
        let dport = if is_icmp(protocol) { 8 << 8 } else { 443 };
        let key = SessionKey::new(0, protocol, s, 40000, d, dport).with_ct_zone(3);
        let entry = SessionEntry {
            timeout: 300,
            mark: 0x42,
            ct_status: ips::SEEN_REPLY | ips::ASSURED | 0x8, // + IPS_CONFIRMED, not settable
            state: 3,
            flags: flags::BACKUP | flags::ASSURED,
            tcp_wscale: if protocol == ip_proto::TCP {
                [7, 9]
            } else {
                [0, 0]
            },
            created: 1000,
            last_seen: 1000,
            ..SessionEntry::default()
        };
        (key, entry)
    }

    /// The commit encoding decodes back to the same session (what the
    /// kernel would report, status bits aside).
    #[test]
    fn commit_message_decodes_to_the_session() {
        for protocol in [ip_proto::TCP, ip_proto::UDP, ip_proto::ICMP, 47, 132] {
            for v6 in [false, true] {
                let protocol = if protocol == ip_proto::ICMP && v6 {
                    ip_proto::ICMPV6
                } else {
                    protocol
                };
                let (k, mut e) = session(protocol, v6);
                let mut enc = Encoder::new();
                enc.commit(&k, &e, e.timeout, 1, false, true);
                let msg = Messages::new(enc.bytes()).next().unwrap().unwrap();
                assert_eq!(msg.ct_type(), Some(IPCTNL_MSG_CT_NEW));
                let got = decode_entry(msg.payload, 1000).unwrap();
                e.ct_status = e.ct_status & ips::SETTABLE | ips::CONFIRMED;
                assert_eq!(got.key, k, "{protocol} v6={v6}");
                assert_eq!(got.entry, e, "{protocol} v6={v6}");
            }
        }
    }

    #[test]
    fn nat_reply_tuple_roundtrips() {
        let (k, mut e) = session(ip_proto::TCP, false);
        e.flags |= flags::NAT;
        e.nat.src_addr[..4].copy_from_slice(&[203, 0, 113, 9]);
        e.nat.dst_addr = k.dst_addr;
        e.nat.src_port = 61000;
        e.nat.dst_port = k.dst_port;
        let mut enc = Encoder::new();
        enc.commit(&k, &e, 300, 1, false, true);
        let msg = Messages::new(enc.bytes()).next().unwrap().unwrap();
        let got = decode_entry(msg.payload, 1000).unwrap();
        assert_eq!(got.entry.nat, e.nat);
        assert!(got.entry.has_nat());
        assert_eq!(got.reply.dst[..4], [203, 0, 113, 9]);
        assert_eq!(got.reply.dst_port, 61000);
    }

    #[test]
    fn icmp_echo_reply_is_not_nat() {
        let (k, e) = session(ip_proto::ICMP, false);
        let r = reply_tuple(&k, &e);
        assert_eq!(r.dst_port >> 8, 0, "echo request's reply is an echo reply");
        assert_eq!(r.src_port, k.src_port);
    }

    #[test]
    fn hostile_lengths_are_typed_errors() {
        let (k, e) = session(ip_proto::TCP, false);
        let mut enc = Encoder::new();
        enc.commit(&k, &e, 300, 1, false, true);
        let good = enc.bytes().to_vec();
        // Every truncation of the message is refused or decodes; none panics.
        for n in 0..good.len() {
            let mut b = good[..n].to_vec();
            if b.len() >= 4 {
                b[..4].copy_from_slice(&(n as u32).to_ne_bytes());
            }
            for m in Messages::new(&b).flatten() {
                let _ = decode_entry(m.payload, 0);
            }
        }
        // A netlink length beyond the buffer.
        let mut b = good.clone();
        b[..4].copy_from_slice(&(good.len() as u32 + 4).to_ne_bytes());
        assert!(matches!(
            Messages::new(&b).next(),
            Some(Err(CodecError::Truncated(_)))
        ));
        // An unknown family.
        let mut b = good.clone();
        b[NLMSG_HDRLEN] = 7;
        let m = Messages::new(&b).next().unwrap().unwrap();
        assert_eq!(
            decode_entry(m.payload, 0),
            Err(CodecError::UnsupportedFamily(7))
        );
        // A status of the wrong size: find CTA_STATUS and stretch its length.
        let payload = &good[NLMSG_HDRLEN + NFGENMSG_LEN..];
        let mut off = NLMSG_HDRLEN + NFGENMSG_LEN;
        for a in Attrs::new(payload) {
            let (ty, v) = a.unwrap();
            if ty == cta::STATUS {
                let mut b = good.clone();
                b[off..off + 2].copy_from_slice(&6u16.to_ne_bytes());
                let m = Messages::new(&b).next().unwrap().unwrap();
                assert!(matches!(
                    decode_entry(m.payload, 0),
                    Err(CodecError::BadLength(..)) | Err(CodecError::Truncated(_))
                ));
            }
            off += align4(NLA_HDRLEN + v.len());
        }
    }

    #[test]
    fn unknown_attributes_are_skipped() {
        let (k, e) = session(ip_proto::UDP, false);
        let mut enc = Encoder::new();
        enc.commit(&k, &e, 300, 1, false, true);
        // Re-encode with an unknown top-level attribute and an unknown nest.
        let mut enc2 = Encoder::new();
        enc2.begin(IPCTNL_MSG_CT_NEW, 0, 1, AF_INET);
        enc2.attr(200, &[1, 2, 3]);
        enc2.nest(201);
        enc2.attr(1, &[9; 9]);
        enc2.nest_end();
        let m = Messages::new(enc.bytes()).next().unwrap().unwrap();
        enc2.buf.extend_from_slice(&m.payload[NFGENMSG_LEN..]);
        enc2.end();
        let m2 = Messages::new(enc2.bytes()).next().unwrap().unwrap();
        assert_eq!(
            decode_entry(m2.payload, 0).unwrap(),
            decode_entry(m.payload, 0).unwrap()
        );
    }
}
