//! Session records: the compact IPv4 and the full form of a key and an
//! entry, and their converters, all generated from one list of fields.
//!
//! Each field names its full type (the table's), its compact form and where
//! it lives in [`SessionKey`] / [`SessionEntry`]. The compact form is one of:
//!
//! - `same`: the full type as is;
//! - `addr`: a 16-byte address reduced to its first 4 bytes (IPv4, the other
//!   12 bytes zero);
//! - `v4`: the family byte, which the compact form implies (`()`, no bytes);
//! - `narrow`: a `u32` that fits in 16 bits (the conntrack status bits do
//!   today; a wider value takes the full form).
//!
//! A record takes the compact form when every field packs losslessly.
//! Fields are listed in the order the archived `repr(C)` structs keep, by
//! alignment, so the archives stay dense.

// rkyv's derive emits public `*Resolver` types without `Debug`.
#![allow(missing_debug_implementations)]

use bytemuck::Zeroable;
use hotsync_table::{IpFamily, SessionEntry, SessionKey};
use rkyv::rend::{u16_le, u32_le, u64_le};
use rkyv::{Archive, Deserialize, Serialize};

/// Why a structurally invalid record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The family byte is neither 4 (IPv4) nor 6 (IPv6).
    #[error("address family {0} is neither IPv4 nor IPv6")]
    UnknownFamily(u8),
    /// An IPv4 record has non-zero bytes past the first four of an address
    /// field, where the format has none (it would be a distinct key that
    /// displays like another).
    #[error("IPv4 address field with non-zero bytes past the fourth")]
    Ipv4TailNonZero,
}

/// Reads an archived value back as the table's native type.
trait Native {
    type Out;
    fn native(&self) -> Self::Out;
}

impl Native for u8 {
    type Out = u8;
    fn native(&self) -> u8 {
        *self
    }
}

impl<const N: usize> Native for [u8; N] {
    type Out = [u8; N];
    fn native(&self) -> [u8; N] {
        *self
    }
}

macro_rules! native_le {
    ($($le:ty => $t:ty),*) => {$(
        impl Native for $le {
            type Out = $t;
            fn native(&self) -> $t {
                self.to_native()
            }
        }
    )*};
}
native_le!(u16_le => u16, u32_le => u32, u64_le => u64);

impl Native for [u64_le; 2] {
    type Out = [u64; 2];
    fn native(&self) -> [u64; 2] {
        [self[0].to_native(), self[1].to_native()]
    }
}

/// The compact forms: `pack` is `None` when the value does not fit.
mod same {
    pub(super) fn pack<T: Copy>(v: &T) -> Option<T> {
        Some(*v)
    }
    pub(super) fn unpack<A: super::Native>(a: &A) -> A::Out {
        a.native()
    }
}

mod addr {
    pub(super) fn pack(a: &[u8; 16]) -> Option<[u8; 4]> {
        super::v4_tail_zero(a).then(|| [a[0], a[1], a[2], a[3]])
    }
    pub(super) fn unpack(a: &[u8; 4]) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(a);
        b
    }
}

mod v4 {
    pub(super) fn pack(family: &u8) -> Option<()> {
        (*family == super::FAMILY_V4).then_some(())
    }
    pub(super) fn unpack(_: &()) -> u8 {
        super::FAMILY_V4
    }
}

mod narrow {
    pub(super) fn pack(v: &u32) -> Option<u16> {
        u16::try_from(*v).ok()
    }
    pub(super) fn unpack(a: &super::u16_le) -> u32 {
        u32::from(a.to_native())
    }
}

const FAMILY_V4: u8 = IpFamily::V4 as u8;

fn v4_tail_zero(a: &[u8; 16]) -> bool {
    a[4..] == [0u8; 12]
}

/// Checks the family byte and, for IPv4, the unused address bytes.
fn check_addrs(family: u8, addrs: &[&[u8; 16]]) -> Result<(), RecordError> {
    match IpFamily::from_u8(family) {
        None => Err(RecordError::UnknownFamily(family)),
        Some(IpFamily::V6) => Ok(()),
        Some(IpFamily::V4) if addrs.iter().all(|a| v4_tail_zero(a)) => Ok(()),
        Some(IpFamily::V4) => Err(RecordError::Ipv4TailNonZero),
    }
}

/// Generates the four record structs and their converters from one list.
///
/// `head` and `tail` fields live in the entry at the given path, `key`
/// fields in the key under the same name; a record is head, key, tail.
macro_rules! session_records {
    (
        head { $($(#[$hm:meta])* $h:ident: $ht:ty => $hk:ident $hc:ty = $($hp:ident).+,)* }
        key { $($(#[$km:meta])* $k:ident: $kt:ty => $kk:ident $kc:ty,)* }
        tail { $($(#[$tm:meta])* $t:ident: $tt:ty => $tk:ident $tc:ty = $($tp:ident).+,)* }
    ) => {
        /// A session in the compact IPv4 form (see the module doc).
        #[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
        #[rkyv(derive(Debug))]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub struct CompactRecordV4 {
            $($(#[$hm])* pub $h: $hc,)*
            $($(#[$km])* pub $k: $kc,)*
            $($(#[$tm])* pub $t: $tc,)*
        }

        /// A session in the general form: every field of the key and entry.
        #[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
        #[rkyv(derive(Debug))]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub struct FullRecord {
            $($(#[$hm])* pub $h: $ht,)*
            $($(#[$km])* pub $k: $kt,)*
            $($(#[$tm])* pub $t: $tt,)*
        }

        /// A session key in the compact IPv4 form.
        #[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
        #[rkyv(derive(Debug))]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub struct CompactKeyV4 {
            $($(#[$km])* pub $k: $kc,)*
        }

        /// A session key in the general form.
        #[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
        #[rkyv(derive(Debug))]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub struct FullKey {
            $($(#[$km])* pub $k: $kt,)*
        }

        impl CompactKeyV4 {
            /// The compact form, when it represents `k` exactly.
            pub fn from_key(k: &SessionKey) -> Option<Self> {
                Some(Self { $($k: $kk::pack(&k.$k)?,)* })
            }
        }

        impl FullKey {
            /// The general form of `k`.
            pub fn from_key(k: &SessionKey) -> Self {
                Self { $($k: k.$k,)* }
            }
        }

        impl CompactRecordV4 {
            /// The compact form, when it represents `(k, e)` exactly.
            pub fn from_session(k: &SessionKey, e: &SessionEntry) -> Option<Self> {
                Some(Self {
                    $($h: $hk::pack(&e.$($hp).+)?,)*
                    $($k: $kk::pack(&k.$k)?,)*
                    $($t: $tk::pack(&e.$($tp).+)?,)*
                })
            }
        }

        impl FullRecord {
            /// The general form of `(k, e)`.
            pub fn from_session(k: &SessionKey, e: &SessionEntry) -> Self {
                Self {
                    $($h: e.$($hp).+,)*
                    $($k: k.$k,)*
                    $($t: e.$($tp).+,)*
                }
            }
        }

        impl ArchivedCompactKeyV4 {
            /// The table key this archived record names.
            pub fn to_key(&self) -> SessionKey {
                let mut k = SessionKey::zeroed();
                $(k.$k = $kk::unpack(&self.$k);)*
                k
            }
        }

        impl ArchivedFullKey {
            /// The table key this archived record names.
            pub fn to_key(&self) -> SessionKey {
                let mut k = SessionKey::zeroed();
                $(k.$k = self.$k.native();)*
                k
            }
        }

        impl ArchivedCompactRecordV4 {
            /// The table key and entry, read straight from the archive.
            pub fn to_session(&self) -> (SessionKey, SessionEntry) {
                let mut k = SessionKey::zeroed();
                let mut e = SessionEntry::zeroed();
                $(e.$($hp).+ = $hk::unpack(&self.$h);)*
                $(k.$k = $kk::unpack(&self.$k);)*
                $(e.$($tp).+ = $tk::unpack(&self.$t);)*
                (k, e)
            }
        }

        impl ArchivedFullRecord {
            /// The table key and entry, read straight from the archive.
            pub fn to_session(&self) -> (SessionKey, SessionEntry) {
                let mut k = SessionKey::zeroed();
                let mut e = SessionEntry::zeroed();
                $(e.$($hp).+ = self.$h.native();)*
                $(k.$k = self.$k.native();)*
                $(e.$($tp).+ = self.$t.native();)*
                (k, e)
            }
        }
    };
}

session_records! {
    head {
        /// Packets forward (initiator to responder), reverse.
        packets: [u64; 2] => same [u64; 2] = packets,
        /// Bytes forward, reverse.
        bytes: [u64; 2] => same [u64; 2] = bytes,
        /// Entry conntrack mark.
        mark: u32 => same u32 = mark,
        /// Entry policy id.
        policy_id: u32 => same u32 = policy_id,
        /// Entry application id.
        app_id: u32 => same u32 = app_id,
        /// Entry creation time.
        created: u32 => same u32 = created,
        /// Entry last-seen time.
        last_seen: u32 => same u32 = last_seen,
        /// Entry idle timeout.
        timeout: u32 => same u32 = timeout,
        /// Entry conntrack status bits (16 bits in the compact form).
        ct_status: u32 => narrow u16 = ct_status,
    }
    key {
        /// Key source address.
        src_addr: [u8; 16] => addr [u8; 4],
        /// Key destination address.
        dst_addr: [u8; 16] => addr [u8; 4],
        /// Key virtual system.
        vsys: u16 => same u16,
        /// Key conntrack zone.
        ct_zone: u16 => same u16,
        /// Key source port (ICMP id, GRE key).
        src_port: u16 => same u16,
        /// Key destination port (ICMP type/code, GRE key).
        dst_port: u16 => same u16,
        /// Key family byte (implied IPv4 in the compact form).
        family: u8 => v4 (),
        /// Key IP protocol.
        protocol: u8 => same u8,
    }
    tail {
        /// NAT translated source address.
        nat_src_addr: [u8; 16] => addr [u8; 4] = nat.src_addr,
        /// NAT translated destination address.
        nat_dst_addr: [u8; 16] => addr [u8; 4] = nat.dst_addr,
        /// NAT translated source port.
        nat_src_port: u16 => same u16 = nat.src_port,
        /// NAT translated destination port.
        nat_dst_port: u16 => same u16 = nat.dst_port,
        /// Entry source zone.
        src_zone: u16 => same u16 = src_zone,
        /// Entry destination zone.
        dst_zone: u16 => same u16 = dst_zone,
        /// Entry state byte (any value: a kernel may report new states).
        state: u8 => same u8 = state,
        /// Entry flag bits.
        flags: u8 => same u8 = flags,
        /// Entry TCP window scale, original and reply.
        tcp_wscale: [u8; 2] => same [u8; 2] = tcp_wscale,
    }
}

impl ArchivedFullKey {
    /// Refuses a family other than IPv4/IPv6 and bytes where IPv4 has none.
    pub fn check(&self) -> Result<(), RecordError> {
        check_addrs(self.family, &[&self.src_addr, &self.dst_addr])
    }
}

impl ArchivedFullRecord {
    /// Refuses a family other than IPv4/IPv6 and bytes where IPv4 has none.
    /// The compact form needs no check: every byte pattern is a valid
    /// IPv4 session.
    pub fn check(&self) -> Result<(), RecordError> {
        check_addrs(
            self.family,
            &[
                &self.src_addr,
                &self.dst_addr,
                &self.nat_src_addr,
                &self.nat_dst_addr,
            ],
        )
    }
}

impl FullKey {
    /// [`ArchivedFullKey::check`] on the owned form.
    pub fn check(&self) -> Result<(), RecordError> {
        check_addrs(self.family, &[&self.src_addr, &self.dst_addr])
    }
}

impl FullRecord {
    /// [`ArchivedFullRecord::check`] on the owned form.
    pub fn check(&self) -> Result<(), RecordError> {
        check_addrs(
            self.family,
            &[
                &self.src_addr,
                &self.dst_addr,
                &self.nat_src_addr,
                &self.nat_dst_addr,
            ],
        )
    }
}

// The compact record must stay within the 96-byte budget per IPv4 session.
const _: () = assert!(size_of::<ArchivedCompactRecordV4>() == 96);
const _: () = assert!(size_of::<ArchivedFullRecord>() == 152);
const _: () = assert!(size_of::<ArchivedCompactKeyV4>() == 18);
const _: () = assert!(size_of::<ArchivedFullKey>() == 42);
