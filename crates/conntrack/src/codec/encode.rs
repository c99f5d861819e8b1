//! Encoding: the requests hotsync sends the kernel (dump, stats probe,
//! delete, commit), appended to one reused buffer so a takeover's batch
//! of commits does not allocate per message.

use super::netlink::align4;
use super::tuples::{CtTuple, is_icmp, original_tuple, reply_tuple};
use crate::consts::*;
use hotsync_table::{SessionEntry, SessionKey, ip_proto};

/// Appends netlink messages to a reused buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    pub(super) buf: Vec<u8>,
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
