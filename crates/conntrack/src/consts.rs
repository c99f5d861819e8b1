//! Numbers from the kernel's uapi headers (`linux/netlink.h`,
//! `linux/netfilter/nfnetlink.h`, `nfnetlink_conntrack.h`,
//! `nf_conntrack_common.h`, `nf_conntrack_tcp.h`). They are ABI: stable.

/// `NETLINK_NETFILTER`.
pub const NETLINK_NETFILTER: i32 = 12;

/// Netlink message header length (`struct nlmsghdr`).
pub const NLMSG_HDRLEN: usize = 16;
/// `struct nfgenmsg` length.
pub const NFGENMSG_LEN: usize = 4;
/// Netlink attribute header length (`struct nlattr`).
pub const NLA_HDRLEN: usize = 4;

/// `NLMSG_ERROR`.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
pub const NLMSG_DONE: u16 = 3;

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x01;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x04;
/// `NLM_F_DUMP_INTR`: the dump was interrupted by a table change.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_CREATE`.
pub const NLM_F_CREATE: u16 = 0x400;

/// `NLA_F_NESTED`.
pub const NLA_F_NESTED: u16 = 0x8000;
/// Mask of the attribute type bits.
pub const NLA_TYPE_MASK: u16 = 0x3fff;

/// `NFNL_SUBSYS_CTNETLINK`.
pub const NFNL_SUBSYS_CTNETLINK: u16 = 1;
/// `IPCTNL_MSG_CT_NEW`.
pub const IPCTNL_MSG_CT_NEW: u16 = 0;
/// `IPCTNL_MSG_CT_GET`.
pub const IPCTNL_MSG_CT_GET: u16 = 1;
/// `IPCTNL_MSG_CT_DELETE`.
pub const IPCTNL_MSG_CT_DELETE: u16 = 2;
/// `IPCTNL_MSG_CT_GET_STATS`: the table's global counters (cheap).
pub const IPCTNL_MSG_CT_GET_STATS: u16 = 5;

/// `NFNLGRP_CONNTRACK_NEW`, `_UPDATE`, `_DESTROY` (multicast groups).
pub const NFNLGRP_CONNTRACK_NEW: u32 = 1;
/// See [`NFNLGRP_CONNTRACK_NEW`].
pub const NFNLGRP_CONNTRACK_UPDATE: u32 = 2;
/// See [`NFNLGRP_CONNTRACK_NEW`].
pub const NFNLGRP_CONNTRACK_DESTROY: u32 = 3;

/// `AF_INET` as nfgenmsg carries it.
pub const AF_INET: u8 = 2;
/// `AF_INET6`.
pub const AF_INET6: u8 = 10;

/// `enum ctattr_type`.
pub mod cta {
    pub const TUPLE_ORIG: u16 = 1;
    pub const TUPLE_REPLY: u16 = 2;
    pub const STATUS: u16 = 3;
    pub const PROTOINFO: u16 = 4;
    pub const NAT_SRC: u16 = 6;
    pub const TIMEOUT: u16 = 7;
    pub const MARK: u16 = 8;
    pub const COUNTERS_ORIG: u16 = 9;
    pub const COUNTERS_REPLY: u16 = 10;
    pub const NAT_DST: u16 = 13;
    pub const ZONE: u16 = 18;
    pub const TIMESTAMP: u16 = 20;
}

/// `enum ctattr_tuple`.
pub mod tuple {
    pub const IP: u16 = 1;
    pub const PROTO: u16 = 2;
}

/// `enum ctattr_ip`.
pub mod ip {
    pub const V4_SRC: u16 = 1;
    pub const V4_DST: u16 = 2;
    pub const V6_SRC: u16 = 3;
    pub const V6_DST: u16 = 4;
}

/// `enum ctattr_l4proto`.
pub mod proto {
    pub const NUM: u16 = 1;
    pub const SRC_PORT: u16 = 2;
    pub const DST_PORT: u16 = 3;
    pub const ICMP_ID: u16 = 4;
    pub const ICMP_TYPE: u16 = 5;
    pub const ICMP_CODE: u16 = 6;
    pub const ICMPV6_ID: u16 = 7;
    pub const ICMPV6_TYPE: u16 = 8;
    pub const ICMPV6_CODE: u16 = 9;
}

/// `enum ctattr_protoinfo` and `enum ctattr_protoinfo_tcp`.
pub mod protoinfo {
    pub const TCP: u16 = 1;
    pub const TCP_STATE: u16 = 1;
    pub const TCP_WSCALE_ORIGINAL: u16 = 2;
    pub const TCP_WSCALE_REPLY: u16 = 3;
    pub const TCP_FLAGS_ORIGINAL: u16 = 4;
    pub const TCP_FLAGS_REPLY: u16 = 5;
}

/// `enum ctattr_nat` and `enum ctattr_protonat`.
pub mod nat {
    pub const V4_MINIP: u16 = 1;
    pub const V4_MAXIP: u16 = 2;
    pub const PROTO: u16 = 3;
    pub const V6_MINIP: u16 = 4;
    pub const V6_MAXIP: u16 = 5;
    pub const PORT_MIN: u16 = 1;
    pub const PORT_MAX: u16 = 2;
}

/// `enum ctattr_counters`.
pub mod counters {
    pub const PACKETS: u16 = 1;
    pub const BYTES: u16 = 2;
}

/// `enum ctattr_tstamp`.
pub mod tstamp {
    pub const START: u16 = 1;
}

/// `IP_CT_TCP_FLAG_BE_LIBERAL`: the kernel does not check TCP windows for
/// this direction (what a committed entry needs, as its window data is not
/// replicated).
pub const IP_CT_TCP_FLAG_BE_LIBERAL: u8 = 0x08;

/// `enum ip_conntrack_status` bits.
pub mod ips {
    pub const SEEN_REPLY: u32 = 1 << 1;
    pub const ASSURED: u32 = 1 << 2;
    pub const SRC_NAT: u32 = 1 << 4;
    pub const DST_NAT: u32 = 1 << 5;
    pub const SEQ_ADJUST: u32 = 1 << 6;
    pub const FIXED_TIMEOUT: u32 = 1 << 10;
    /// Set by the kernel on a created entry before it reads `CTA_STATUS`;
    /// a status without it is refused as changing an unchangeable bit.
    pub const CONFIRMED: u32 = 1 << 3;
    /// The bits a `IPCTNL_MSG_CT_NEW` may set; the others are the kernel's
    /// own (confirmed, dying, NAT done, helper, offload...).
    pub const SETTABLE: u32 = SEEN_REPLY | ASSURED | SRC_NAT | DST_NAT | SEQ_ADJUST | FIXED_TIMEOUT;
}
