//! The data model: what a session is and how it is named.
//!
//! Both types are fixed-size plain-old-data with no padding and no heap
//! pointers: the table stores them inline, the digest hashes their bytes, and
//! the wire crate archives them to a flat rkyv layout.

use bytemuck::{Pod, Zeroable};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Address family of a session (stored as a `u8` in [`SessionKey::family`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum IpFamily {
    /// IPv4: addresses use the first 4 bytes of the 16-byte fields.
    V4 = 4,
    /// IPv6.
    V6 = 6,
}

impl IpFamily {
    /// Decodes the stored byte; `None` for anything but 4 and 6.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            4 => Some(Self::V4),
            6 => Some(Self::V6),
            _ => None,
        }
    }
}

/// IP protocol numbers the session model knows by name.
pub mod ip_proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// Identity of a session: what the kernel's conntrack tuple holds (the
/// original direction) inside one virtual system and one conntrack zone.
///
/// 42 bytes, alignment 2, no padding. The two port fields carry what the
/// protocol's tuple carries there: TCP/UDP/SCTP/DCCP ports; for ICMP and
/// ICMPv6 the identifier (`src_port`) and type/code (`dst_port`, type in the
/// high byte); for GRE the source and destination keys (the PPTP call ids,
/// 16 bits each as in the kernel's tuple). Entries that differ only in the
/// zone or a GRE key are distinct sessions, as in the kernel.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Pod, Zeroable, Default)]
#[repr(C)]
pub struct SessionKey {
    /// Source address; IPv4 in the first 4 bytes, the rest zero.
    pub src_addr: [u8; 16],
    /// Destination address; IPv4 in the first 4 bytes, the rest zero.
    pub dst_addr: [u8; 16],
    /// Virtual-system id (0 is the root system).
    pub vsys: u16,
    /// Conntrack zone (`CTA_ZONE`; 0 is the default zone). Part of the
    /// identity: the kernel keeps one table per zone.
    pub ct_zone: u16,
    /// Source port, ICMP identifier, or GRE source key.
    pub src_port: u16,
    /// Destination port, ICMP type (high byte) and code (low byte), or GRE
    /// destination key.
    pub dst_port: u16,
    /// [`IpFamily`] as a byte (4 or 6).
    pub family: u8,
    /// IP protocol number (see [`ip_proto`]).
    pub protocol: u8,
}

/// Writes an address into a 16-byte field the way [`SessionKey`] stores it.
pub fn addr_bytes(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    }
}

/// Reads a 16-byte address field back for the given family byte.
pub fn addr_from_bytes(family: u8, b: &[u8; 16]) -> IpAddr {
    if family == IpFamily::V4 as u8 {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*b))
    }
}

impl SessionKey {
    /// Builds a key from addresses; the family follows `src`.
    pub fn new(
        vsys: u16,
        protocol: u8,
        src: IpAddr,
        src_port: u16,
        dst: IpAddr,
        dst_port: u16,
    ) -> Self {
        let family = if src.is_ipv4() {
            IpFamily::V4
        } else {
            IpFamily::V6
        };
        Self {
            src_addr: addr_bytes(src),
            dst_addr: addr_bytes(dst),
            vsys,
            ct_zone: 0,
            src_port,
            dst_port,
            family: family as u8,
            protocol,
        }
    }

    /// The same key in conntrack zone `zone`.
    pub fn with_ct_zone(mut self, zone: u16) -> Self {
        self.ct_zone = zone;
        self
    }

    /// The address family, or `None` if the stored byte is invalid.
    pub fn ip_family(&self) -> Option<IpFamily> {
        IpFamily::from_u8(self.family)
    }

    /// Source address.
    pub fn src(&self) -> IpAddr {
        addr_from_bytes(self.family, &self.src_addr)
    }

    /// Destination address.
    pub fn dst(&self) -> IpAddr {
        addr_from_bytes(self.family, &self.dst_addr)
    }

    /// The key's bytes, as hashed by the table and the digest.
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vsys{} zone{} proto{} {}:{} -> {}:{}",
            self.vsys,
            self.ct_zone,
            self.protocol,
            self.src(),
            self.src_port,
            self.dst(),
            self.dst_port
        )
    }
}

/// Position of a session in its protocol's state machine. The numbers are
/// the kernel's TCP conntrack states (`enum tcp_conntrack`), so a conntrack
/// state byte is stored as is; a byte with no name here is still stored and
/// replicated (a newer kernel may report more states).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SessionState {
    /// No state (UDP/ICMP before a reply, or unknown).
    None = 0,
    /// TCP SYN seen.
    SynSent = 1,
    /// TCP SYN+ACK seen.
    SynReceived = 2,
    /// TCP handshake complete, or a UDP/ICMP flow with replies.
    Established = 3,
    /// TCP FIN seen from one side.
    FinWait = 4,
    /// TCP FIN seen from both sides.
    CloseWait = 5,
    /// TCP last ACK pending.
    LastAck = 6,
    /// TCP TIME_WAIT.
    TimeWait = 7,
    /// TCP closed (RST or fully closed).
    Close = 8,
    /// TCP simultaneous open: SYN seen from both sides.
    SynSent2 = 9,
}

impl SessionState {
    /// Decodes the stored byte; `None` for unknown values.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::SynSent,
            2 => Self::SynReceived,
            3 => Self::Established,
            4 => Self::FinWait,
            5 => Self::CloseWait,
            6 => Self::LastAck,
            7 => Self::TimeWait,
            8 => Self::Close,
            9 => Self::SynSent2,
            _ => return None,
        })
    }

    /// Name as `display session table verbose` and conntrack print it.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::SynSent => "SYN_SENT",
            Self::SynReceived => "SYN_RECV",
            Self::Established => "ESTABLISHED",
            Self::FinWait => "FIN_WAIT",
            Self::CloseWait => "CLOSE_WAIT",
            Self::LastAck => "LAST_ACK",
            Self::TimeWait => "TIME_WAIT",
            Self::Close => "CLOSE",
            Self::SynSent2 => "SYN_SENT2",
        }
    }
}

/// Bits of [`SessionEntry::flags`].
pub mod flags {
    /// The entry supports backup and is replicated to the peer (B11).
    /// Entries without it are local-only: never journaled, sent or digested.
    pub const BACKUP: u8 = 0x01;
    /// [`super::SessionEntry::nat`] holds a translation.
    pub const NAT: u8 = 0x02;
    /// The session has been seen in both directions.
    pub const ASSURED: u8 = 0x04;
}

/// A NAT translation: the addresses and ports after translation.
///
/// For a conntrack entry this is the reply tuple read the other way round:
/// the translated source is where replies go (reply destination), the
/// translated destination is where replies come from (reply source); for
/// ICMP the destination port keeps the original type/code (the reply's type
/// follows from it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Pod, Zeroable, Default, Debug)]
#[repr(C)]
pub struct NatTranslation {
    /// Translated source address (same encoding as the key's).
    pub src_addr: [u8; 16],
    /// Translated destination address.
    pub dst_addr: [u8; 16],
    /// Translated source port.
    pub src_port: u16,
    /// Translated destination port.
    pub dst_port: u16,
}

/// The state of one session. 104 bytes, alignment 8, no padding.
///
/// Times are whole seconds: `created` and `last_seen` are Unix seconds,
/// `timeout` is the idle time after which the entry expires.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Pod, Zeroable, Default, Debug)]
#[repr(C)]
pub struct SessionEntry {
    /// Packets forward (`[0]`, initiator to responder) and reverse (`[1]`).
    pub packets: [u64; 2],
    /// Bytes forward and reverse.
    pub bytes: [u64; 2],
    /// NAT translation, meaningful when [`flags::NAT`] is set.
    pub nat: NatTranslation,
    /// Security policy rule that admitted the session.
    pub policy_id: u32,
    /// Application id from application identification.
    pub app_id: u32,
    /// Creation time, Unix seconds.
    pub created: u32,
    /// Last packet seen, Unix seconds.
    pub last_seen: u32,
    /// Idle timeout in seconds.
    pub timeout: u32,
    /// Conntrack mark (`CTA_MARK`).
    pub mark: u32,
    /// Conntrack status bits (`CTA_STATUS`, the kernel's `IPS_*`), stored as
    /// the kernel reports them.
    pub ct_status: u32,
    /// Source security zone id.
    pub src_zone: u16,
    /// Destination security zone id.
    pub dst_zone: u16,
    /// [`SessionState`] as a byte.
    pub state: u8,
    /// [`flags`] bits.
    pub flags: u8,
    /// TCP window scale of the original (`[0]`) and reply (`[1]`) direction
    /// (`CTA_PROTOINFO_TCP_WSCALE_*`); zero for other protocols.
    pub tcp_wscale: [u8; 2],
}

impl SessionEntry {
    /// Whether the entry is replicated to the peer (B11).
    pub fn is_backup(&self) -> bool {
        self.flags & flags::BACKUP != 0
    }

    /// Whether the entry carries a NAT translation.
    pub fn has_nat(&self) -> bool {
        self.flags & flags::NAT != 0
    }

    /// The entry's bytes, as hashed by the digest.
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }

    /// Whether the entry has been idle past its timeout at `now` (Unix seconds).
    pub fn is_expired(&self, now: u32) -> bool {
        now.saturating_sub(self.last_seen) > self.timeout
    }
}

const _: () = assert!(std::mem::size_of::<SessionKey>() == 42);
const _: () = assert!(std::mem::size_of::<SessionEntry>() == 104);

#[cfg(feature = "arbitrary")]
mod arb {
    use super::*;
    use arbitrary::{Arbitrary, Result, Unstructured};

    impl<'a> Arbitrary<'a> for SessionKey {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            let mut k = Self::zeroed();
            bytemuck::bytes_of_mut(&mut k).copy_from_slice(u.bytes(size_of::<Self>())?);
            Ok(k)
        }
    }

    impl<'a> Arbitrary<'a> for SessionEntry {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            let mut e = Self::zeroed();
            bytemuck::bytes_of_mut(&mut e).copy_from_slice(u.bytes(size_of::<Self>())?);
            Ok(e)
        }
    }
}

/// The current time in the table's unit (Unix seconds).
pub fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}
