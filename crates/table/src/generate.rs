//! Deterministic synthetic sessions for demos, tests and benchmarks.

use crate::model::{NatTranslation, SessionEntry, SessionKey, SessionState, flags, ip_proto};

/// Produces realistic, distinct sessions from a seed: the same seed gives
/// the same sequence on every machine (splitmix64, no external RNG).
#[derive(Debug, Clone)]
pub struct SessionGenerator {
    state: u64,
    counter: u64,
    vsys: u16,
    ipv6: bool,
    now: u32,
    /// One session in this many is local-only (not backup-capable); 0: none.
    pub local_only_every: u64,
    /// One session in this many carries a NAT translation; 0: none.
    pub nat_every: u64,
}

impl SessionGenerator {
    /// Sessions of virtual system `vsys`, IPv6 when `ipv6`, created around
    /// `now` (Unix seconds).
    pub fn new(seed: u64, vsys: u16, ipv6: bool, now: u32) -> Self {
        Self {
            state: seed ^ 0x9e37_79b9_7f4a_7c15,
            counter: 0,
            vsys,
            ipv6,
            now,
            local_only_every: 0,
            nat_every: 4,
        }
    }

    /// A pseudo-random 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next session. Keys are distinct for the first 2^32 calls of one
    /// generator (the counter is encoded in the source address and port).
    pub fn next_session(&mut self) -> (SessionKey, SessionEntry) {
        let n = self.counter;
        self.counter += 1;
        let r = self.next_u64();
        let mut key = SessionKey {
            vsys: self.vsys,
            family: if self.ipv6 { 6 } else { 4 },
            protocol: match r % 10 {
                0..=6 => ip_proto::TCP,
                7..=8 => ip_proto::UDP,
                _ => {
                    if self.ipv6 {
                        ip_proto::ICMPV6
                    } else {
                        ip_proto::ICMP
                    }
                }
            },
            src_port: 1024 + (n % 64_000) as u16,
            dst_port: [80u16, 443, 53, 22, 8080, 3389][(r >> 8) as usize % 6],
            ..SessionKey::default()
        };
        // Source: 10.x.y.z (or fd00::/8) from the counter; destination: random.
        let id = (n / 64_000) as u32;
        let dst = (r >> 16) as u32;
        if self.ipv6 {
            key.src_addr[0] = 0xfd;
            key.src_addr[12..16].copy_from_slice(&id.to_be_bytes());
            key.dst_addr[0] = 0x20;
            key.dst_addr[1] = 0x01;
            key.dst_addr[12..16].copy_from_slice(&dst.to_be_bytes());
        } else {
            key.src_addr[0] = 10;
            key.src_addr[1..4].copy_from_slice(&id.to_be_bytes()[1..4]);
            key.src_addr[0] = 10u8.wrapping_add((id >> 24) as u8);
            key.dst_addr[..4].copy_from_slice(&dst.to_be_bytes());
        }
        let state = if key.protocol == ip_proto::TCP {
            SessionState::Established
        } else {
            SessionState::None
        };
        let mut f = flags::BACKUP | flags::ASSURED;
        if self.local_only_every != 0 && n % self.local_only_every == self.local_only_every - 1 {
            f &= !flags::BACKUP;
        }
        let mut nat = NatTranslation::default();
        if self.nat_every != 0 && n % self.nat_every == 0 {
            f |= flags::NAT;
            nat.src_addr = key.src_addr;
            if !self.ipv6 {
                nat.src_addr[..4].copy_from_slice(&[203, 0, 113, (r >> 40) as u8]);
            }
            nat.src_port = 20_000 + (r >> 48) as u16 % 40_000;
            nat.dst_addr = key.dst_addr;
            nat.dst_port = key.dst_port;
        }
        let packets = (r >> 32) & 0xffff;
        let entry = SessionEntry {
            packets: [packets, packets / 2],
            bytes: [packets * 700, packets * 350],
            nat,
            policy_id: (r % 500) as u32,
            app_id: (r >> 20) as u32 % 4000,
            created: self.now.saturating_sub((r % 600) as u32),
            last_seen: self.now,
            timeout: if key.protocol == ip_proto::TCP {
                1200
            } else {
                60
            },
            src_zone: 1,
            dst_zone: 2,
            state: state as u8,
            flags: f,
            mark: 0,
            ct_status: 0,
            tcp_wscale: [0; 2],
        };
        (key, entry)
    }

    /// A data-plane style update of an existing entry: counters up, seen now.
    pub fn touch(&mut self, entry: &mut SessionEntry, now: u32) {
        let r = self.next_u64();
        let p = 1 + (r & 7);
        entry.packets[0] += p;
        entry.bytes[0] += p * 600;
        if r & 8 != 0 {
            entry.packets[1] += 1;
            entry.bytes[1] += 1400;
        }
        entry.last_seen = now;
    }
}
