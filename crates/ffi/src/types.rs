//! The plain C structs of the API and their conversions.
//!
//! These are mirrors, not the table's own types: `hotsync_table` may change
//! its `SessionKey`/`SessionEntry` (and keep its freedom to), while the C
//! layout changes only with [`crate::HOTSYNC_ABI_VERSION`]. Each conversion
//! names every field (struct literals and exhaustive destructuring), so a
//! field added on either side is a compile error here, in one place.
//!
//! Layouts are asserted at compile time below and in the header's trailer
//! (`_Static_assert`), so the two sides cannot drift silently.

use ::hotsync_table::{NatTranslation, SessionEntry, SessionKey};
use hotsync_proto::{JobKind, JobState, JobStatus, Role};
use std::ffi::c_char;
use std::mem::{align_of, offset_of, size_of};

/// `hotsync_session_key.family` of an IPv4 session.
pub const HOTSYNC_FAMILY_IPV4: u8 = 4;
/// `hotsync_session_key.family` of an IPv6 session.
pub const HOTSYNC_FAMILY_IPV6: u8 = 6;

/// `hotsync_session_entry.flags`: the session is replicated to the peer.
/// Sessions without it stay local (never sent, never in the digest).
pub const HOTSYNC_FLAG_BACKUP: u8 = 0x01;
/// `hotsync_session_entry.flags`: `nat` holds a translation.
pub const HOTSYNC_FLAG_NAT: u8 = 0x02;
/// `hotsync_session_entry.flags`: traffic seen in both directions.
pub const HOTSYNC_FLAG_ASSURED: u8 = 0x04;

/// `hotsync_session_entry.state`: no state (UDP/ICMP before a reply).
pub const HOTSYNC_STATE_NONE: u8 = 0;
/// `hotsync_session_entry.state`: TCP SYN seen.
pub const HOTSYNC_STATE_SYN_SENT: u8 = 1;
/// `hotsync_session_entry.state`: TCP SYN+ACK seen.
pub const HOTSYNC_STATE_SYN_RECEIVED: u8 = 2;
/// `hotsync_session_entry.state`: handshake complete, or a flow with replies.
pub const HOTSYNC_STATE_ESTABLISHED: u8 = 3;
/// `hotsync_session_entry.state`: TCP FIN seen from one side.
pub const HOTSYNC_STATE_FIN_WAIT: u8 = 4;
/// `hotsync_session_entry.state`: TCP FIN seen from both sides.
pub const HOTSYNC_STATE_CLOSE_WAIT: u8 = 5;
/// `hotsync_session_entry.state`: TCP last ACK pending.
pub const HOTSYNC_STATE_LAST_ACK: u8 = 6;
/// `hotsync_session_entry.state`: TCP TIME_WAIT.
pub const HOTSYNC_STATE_TIME_WAIT: u8 = 7;
/// `hotsync_session_entry.state`: TCP closed.
pub const HOTSYNC_STATE_CLOSE: u8 = 8;

// The C constants are literals (cbindgen cannot follow paths into other
// crates); these asserts keep them equal to the table's.
const _: () = {
    use ::hotsync_table::{IpFamily, SessionState, flags};
    assert!(HOTSYNC_FAMILY_IPV4 == IpFamily::V4 as u8);
    assert!(HOTSYNC_FAMILY_IPV6 == IpFamily::V6 as u8);
    assert!(HOTSYNC_FLAG_BACKUP == flags::BACKUP);
    assert!(HOTSYNC_FLAG_NAT == flags::NAT);
    assert!(HOTSYNC_FLAG_ASSURED == flags::ASSURED);
    assert!(HOTSYNC_STATE_NONE == SessionState::None as u8);
    assert!(HOTSYNC_STATE_SYN_SENT == SessionState::SynSent as u8);
    assert!(HOTSYNC_STATE_SYN_RECEIVED == SessionState::SynReceived as u8);
    assert!(HOTSYNC_STATE_ESTABLISHED == SessionState::Established as u8);
    assert!(HOTSYNC_STATE_FIN_WAIT == SessionState::FinWait as u8);
    assert!(HOTSYNC_STATE_CLOSE_WAIT == SessionState::CloseWait as u8);
    assert!(HOTSYNC_STATE_LAST_ACK == SessionState::LastAck as u8);
    assert!(HOTSYNC_STATE_TIME_WAIT == SessionState::TimeWait as u8);
    assert!(HOTSYNC_STATE_CLOSE == SessionState::Close as u8);
};

/// Identity of a session: the 5-tuple inside one virtual system.
///
/// 42 bytes, alignment 2, no padding. Ports are in host byte order. IPv4
/// addresses use the first 4 bytes of the 16-byte fields (network order),
/// the rest zero. For ICMP, `src_port` is the identifier and `dst_port`
/// the type (high byte) and code (low byte).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct hotsync_session_key {
    /// Source address.
    pub src_addr: [u8; 16],
    /// Destination address.
    pub dst_addr: [u8; 16],
    /// Virtual-system id (0 is the root system).
    pub vsys: u16,
    /// Conntrack zone (0 is the default zone): part of the identity.
    pub ct_zone: u16,
    /// Source port, ICMP identifier, or GRE source key.
    pub src_port: u16,
    /// Destination port, ICMP type and code, or GRE destination key.
    pub dst_port: u16,
    /// `HOTSYNC_FAMILY_IPV4` or `HOTSYNC_FAMILY_IPV6`.
    pub family: u8,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    pub protocol: u8,
}

/// A NAT translation: addresses and ports after translation (same encoding
/// as the key's). 36 bytes, alignment 2.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct hotsync_nat {
    /// Translated source address.
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
/// `created` and `last_seen` are Unix seconds; `timeout` is the idle time
/// in seconds after which the session expires.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct hotsync_session_entry {
    /// Packets forward (`[0]`, initiator to responder) and reverse (`[1]`).
    pub packets: [u64; 2],
    /// Bytes forward and reverse.
    pub bytes: [u64; 2],
    /// NAT translation, meaningful with `HOTSYNC_FLAG_NAT`.
    pub nat: hotsync_nat,
    /// Security policy rule that admitted the session.
    pub policy_id: u32,
    /// Application id.
    pub app_id: u32,
    /// Creation time, Unix seconds.
    pub created: u32,
    /// Last packet seen, Unix seconds.
    pub last_seen: u32,
    /// Idle timeout, seconds.
    pub timeout: u32,
    /// Conntrack mark.
    pub mark: u32,
    /// Conntrack status bits (the kernel's `IPS_*`), as the kernel reports
    /// them.
    pub ct_status: u32,
    /// Source security zone id.
    pub src_zone: u16,
    /// Destination security zone id.
    pub dst_zone: u16,
    /// One of the `HOTSYNC_STATE_*` values.
    pub state: u8,
    /// `HOTSYNC_FLAG_*` bits.
    pub flags: u8,
    /// TCP window scale of the original (`[0]`) and reply (`[1]`)
    /// direction; zero for other protocols.
    pub tcp_wscale: [u8; 2],
}

/// Sizes, alignments and offsets the header's `_Static_assert`s repeat.
pub(crate) mod layout {
    use super::*;
    pub const KEY: (usize, usize) = (42, 2);
    pub const NAT: (usize, usize) = (36, 2);
    pub const ENTRY: (usize, usize) = (104, 8);
    pub const JOB_STATUS: (usize, usize) = (224, 8);
    pub const NODE_STATE: (usize, usize) = (56, 8);
    pub const DIGEST: (usize, usize) = (24, 8);
    pub const NODE_OPTIONS: (usize, usize) = (16, 8);
    pub const STATS: (usize, usize) = (160, 8);

    const _: () = {
        assert!(size_of::<hotsync_session_key>() == KEY.0);
        assert!(align_of::<hotsync_session_key>() == KEY.1);
        assert!(offset_of!(hotsync_session_key, dst_addr) == 16);
        assert!(offset_of!(hotsync_session_key, vsys) == 32);
        assert!(offset_of!(hotsync_session_key, ct_zone) == 34);
        assert!(offset_of!(hotsync_session_key, src_port) == 36);
        assert!(offset_of!(hotsync_session_key, dst_port) == 38);
        assert!(offset_of!(hotsync_session_key, family) == 40);
        assert!(offset_of!(hotsync_session_key, protocol) == 41);

        assert!(size_of::<hotsync_nat>() == NAT.0);
        assert!(align_of::<hotsync_nat>() == NAT.1);
        assert!(offset_of!(hotsync_nat, src_port) == 32);
        assert!(offset_of!(hotsync_nat, dst_port) == 34);

        assert!(size_of::<hotsync_session_entry>() == ENTRY.0);
        assert!(align_of::<hotsync_session_entry>() == ENTRY.1);
        assert!(offset_of!(hotsync_session_entry, bytes) == 16);
        assert!(offset_of!(hotsync_session_entry, nat) == 32);
        assert!(offset_of!(hotsync_session_entry, policy_id) == 68);
        assert!(offset_of!(hotsync_session_entry, app_id) == 72);
        assert!(offset_of!(hotsync_session_entry, created) == 76);
        assert!(offset_of!(hotsync_session_entry, last_seen) == 80);
        assert!(offset_of!(hotsync_session_entry, timeout) == 84);
        assert!(offset_of!(hotsync_session_entry, mark) == 88);
        assert!(offset_of!(hotsync_session_entry, ct_status) == 92);
        assert!(offset_of!(hotsync_session_entry, src_zone) == 96);
        assert!(offset_of!(hotsync_session_entry, dst_zone) == 98);
        assert!(offset_of!(hotsync_session_entry, state) == 100);
        assert!(offset_of!(hotsync_session_entry, flags) == 101);
        assert!(offset_of!(hotsync_session_entry, tcp_wscale) == 102);

        assert!(size_of::<hotsync_job_status>() == JOB_STATUS.0);
        assert!(align_of::<hotsync_job_status>() == JOB_STATUS.1);
        assert!(offset_of!(hotsync_job_status, kind) == 80);
        assert!(offset_of!(hotsync_job_status, state) == 84);
        assert!(offset_of!(hotsync_job_status, restarts) == 88);
        assert!(offset_of!(hotsync_job_status, message) == 92);

        assert!(size_of::<hotsync_node_state>() == NODE_STATE.0);
        assert!(align_of::<hotsync_node_state>() == NODE_STATE.1);
        assert!(offset_of!(hotsync_node_state, role) == 40);
        assert!(offset_of!(hotsync_node_state, peer_role) == 44);
        assert!(offset_of!(hotsync_node_state, priority) == 48);
        assert!(offset_of!(hotsync_node_state, established) == 52);

        assert!(size_of::<hotsync_digest>() == DIGEST.0);
        assert!(align_of::<hotsync_digest>() == DIGEST.1);

        assert!(size_of::<hotsync_stats>() == STATS.0);
        assert!(align_of::<hotsync_stats>() == STATS.1);

        assert!(size_of::<hotsync_node_options>() == NODE_OPTIONS.0);
        assert!(align_of::<hotsync_node_options>() == NODE_OPTIONS.1);
    };
}

impl From<&hotsync_session_key> for SessionKey {
    #[inline]
    fn from(k: &hotsync_session_key) -> Self {
        SessionKey {
            src_addr: k.src_addr,
            dst_addr: k.dst_addr,
            vsys: k.vsys,
            ct_zone: k.ct_zone,
            src_port: k.src_port,
            dst_port: k.dst_port,
            family: k.family,
            protocol: k.protocol,
        }
    }
}

impl From<&SessionKey> for hotsync_session_key {
    #[inline]
    fn from(k: &SessionKey) -> Self {
        let SessionKey {
            src_addr,
            dst_addr,
            vsys,
            ct_zone,
            src_port,
            dst_port,
            family,
            protocol,
        } = *k;
        hotsync_session_key {
            src_addr,
            dst_addr,
            vsys,
            ct_zone,
            src_port,
            dst_port,
            family,
            protocol,
        }
    }
}

impl From<&hotsync_session_entry> for SessionEntry {
    #[inline]
    fn from(e: &hotsync_session_entry) -> Self {
        SessionEntry {
            packets: e.packets,
            bytes: e.bytes,
            nat: NatTranslation {
                src_addr: e.nat.src_addr,
                dst_addr: e.nat.dst_addr,
                src_port: e.nat.src_port,
                dst_port: e.nat.dst_port,
            },
            policy_id: e.policy_id,
            app_id: e.app_id,
            created: e.created,
            last_seen: e.last_seen,
            timeout: e.timeout,
            mark: e.mark,
            ct_status: e.ct_status,
            src_zone: e.src_zone,
            dst_zone: e.dst_zone,
            state: e.state,
            flags: e.flags,
            tcp_wscale: e.tcp_wscale,
        }
    }
}

impl From<&SessionEntry> for hotsync_session_entry {
    #[inline]
    fn from(e: &SessionEntry) -> Self {
        let SessionEntry {
            packets,
            bytes,
            nat:
                NatTranslation {
                    src_addr,
                    dst_addr,
                    src_port,
                    dst_port,
                },
            policy_id,
            app_id,
            created,
            last_seen,
            timeout,
            mark,
            ct_status,
            src_zone,
            dst_zone,
            state,
            flags,
            tcp_wscale,
        } = *e;
        hotsync_session_entry {
            packets,
            bytes,
            nat: hotsync_nat {
                src_addr,
                dst_addr,
                src_port,
                dst_port,
            },
            policy_id,
            app_id,
            created,
            last_seen,
            timeout,
            mark,
            ct_status,
            src_zone,
            dst_zone,
            state,
            flags,
            tcp_wscale,
        }
    }
}

/// Sizing of a node's (or a stand-alone) session table. Zero fields take
/// the defaults; pass NULL for all defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct hotsync_node_options {
    /// Most sessions the table holds (storage is reserved, and pre-faulted,
    /// up front). 0: 1,048,576.
    pub max_sessions: u64,
    /// Shard count, a power of two up to 4096; both nodes of a pair must
    /// use the same. 0: 16 per core, at least 16.
    pub shards: u32,
    /// Change-journal capacity per shard, in keys. 0: 16,384.
    pub journal_capacity: u32,
}

/// A node's HRP role.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum hotsync_role {
    /// Just started: no peer heard yet.
    Initial = 0,
    /// Serving traffic; its sessions are authoritative.
    Active = 1,
    /// Holding replicated state, ready to take over.
    Standby = 2,
}

impl From<Role> for hotsync_role {
    fn from(r: Role) -> Self {
        match r {
            Role::Initial => hotsync_role::Initial,
            Role::Active => hotsync_role::Active,
            Role::Standby => hotsync_role::Standby,
        }
    }
}

/// What a batch-sync job synchronizes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum hotsync_job_kind {
    /// `hrp sync connection-status`: the session table.
    ConnectionStatus = 0,
    /// `hrp sync config`: the configuration.
    Config = 1,
}

/// Where a batch-sync job is.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum hotsync_job_state {
    /// Sending, or waiting for the peer's acknowledgements.
    Running = 0,
    /// Done: every item sent was acknowledged by the peer.
    Done = 1,
    /// Gave up; `message` says why. Batch syncs are additive: run it again.
    Failed = 2,
}

/// Progress and result of one batch-sync job. 224 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct hotsync_job_status {
    /// Job id, unique per node.
    pub id: u64,
    /// Items (sessions or configuration items) to send.
    pub total: u64,
    /// Items sent so far.
    pub sent: u64,
    /// Items the peer acknowledged: progress is `acked / total`.
    pub acked: u64,
    /// Milliseconds since the job started (until it ended, once it has).
    pub elapsed_ms: u64,
    /// Config jobs, once done: items the peer lacked and added.
    pub config_added: u64,
    /// Config jobs, once done: items the peer already had, equal.
    pub config_equal: u64,
    /// Config jobs, once done: items that conflict with the peer's (not
    /// applied; listed on the peer).
    pub config_conflicts: u64,
    /// Config jobs, once done: items the peer refused.
    pub config_rejected: u64,
    /// Reserved, zero.
    pub reserved: u64,
    /// What the job syncs.
    pub kind: hotsync_job_kind,
    /// Running, done or failed.
    pub state: hotsync_job_state,
    /// Times the job resumed after the connection dropped.
    pub restarts: u32,
    /// Why the job failed (NUL-terminated, possibly truncated); empty
    /// otherwise.
    pub message: [c_char; 132],
}

impl From<&JobStatus> for hotsync_job_status {
    fn from(j: &JobStatus) -> Self {
        let mut out = hotsync_job_status {
            id: j.id,
            total: j.total,
            sent: j.sent,
            acked: j.acked,
            elapsed_ms: j.elapsed(std::time::Instant::now()).as_millis() as u64,
            config_added: 0,
            config_equal: 0,
            config_conflicts: 0,
            config_rejected: 0,
            reserved: 0,
            kind: match j.kind {
                JobKind::ConnectionStatus => hotsync_job_kind::ConnectionStatus,
                JobKind::Config => hotsync_job_kind::Config,
            },
            state: match j.state {
                JobState::Running => hotsync_job_state::Running,
                JobState::Done => hotsync_job_state::Done,
                JobState::Failed(_) => hotsync_job_state::Failed,
            },
            restarts: j.restarts,
            message: [0; 132],
        };
        if let Some(c) = j.config {
            out.config_added = c.added;
            out.config_equal = c.equal;
            out.config_conflicts = c.conflicts;
            out.config_rejected = c.rejected;
        }
        if let JobState::Failed(why) = &j.state {
            copy_c_string(why, &mut out.message);
        }
        out
    }
}

/// Copies `s` into `buf` NUL-terminated, truncated at a character boundary
/// to fit.
fn copy_c_string(s: &str, buf: &mut [c_char]) {
    let mut n = s.len().min(buf.len().saturating_sub(1));
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    for (d, b) in buf.iter_mut().zip(&s.as_bytes()[..n]) {
        *d = *b as c_char;
    }
    if let Some(end) = buf.get_mut(n) {
        *end = 0;
    }
}

/// A snapshot of a node's relationship. 56 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct hotsync_node_state {
    /// This node's id.
    pub node_id: u64,
    /// The peer's id, 0 until it has been heard.
    pub peer_node_id: u64,
    /// Connection attempts made to the peer.
    pub connect_attempts: u64,
    /// Shards waiting for a resync.
    pub uncertain_shards: u64,
    /// Configuration changes queued for the peer.
    pub config_queue: u64,
    /// This node's role.
    pub role: hotsync_role,
    /// The role the peer last claimed (`HOTSYNC_ROLE_INITIAL` until heard).
    pub peer_role: hotsync_role,
    /// This node's HRP priority.
    pub priority: u16,
    /// The peer's priority, 0 until heard.
    pub peer_priority: u16,
    /// Whether the hot-standby relationship is established.
    pub established: bool,
    /// Whether the link is authenticated with the pre-shared key.
    pub authenticated: bool,
    /// Reserved, zero.
    pub reserved: [u8; 2],
}

/// The table digest: equal on both nodes once they are in step (over the
/// sessions with `HOTSYNC_FLAG_BACKUP`). 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct hotsync_digest {
    /// One value over every shard's digest.
    pub combined: u64,
    /// Backup-capable sessions counted.
    pub entries: u64,
    /// Number of shards.
    pub shards: u64,
}

/// Cumulative counters of a node (`display hrp statistics`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct hotsync_stats {
    /// Frames sent.
    pub frames_tx: u64,
    /// Frames received.
    pub frames_rx: u64,
    /// Bytes sent.
    pub bytes_tx: u64,
    /// Bytes received.
    pub bytes_rx: u64,
    /// Session batches sent.
    pub batches_tx: u64,
    /// Session batches received and applied.
    pub batches_rx: u64,
    /// Session records sent.
    pub records_tx: u64,
    /// Session records applied.
    pub records_rx: u64,
    /// Deletions sent.
    pub deletes_tx: u64,
    /// Deletions applied.
    pub deletes_rx: u64,
    /// Shards resent whole because the peer's copy was uncertain.
    pub shards_resynced: u64,
    /// Journal overflows seen (each makes its shard uncertain).
    pub journal_overflows: u64,
    /// Records the table refused because it was full.
    pub apply_table_full: u64,
    /// Configuration changes sent incrementally.
    pub config_ops_tx: u64,
    /// Configuration changes applied.
    pub config_ops_rx: u64,
    /// Configuration items received in batch syncs.
    pub config_items_rx: u64,
    /// Connections established.
    pub connections: u64,
    /// Connections lost.
    pub disconnects: u64,
    /// Protocol errors, all kinds.
    pub errors: u64,
    /// Sessions in the table now.
    pub sessions: u64,
}

impl hotsync_stats {
    pub(crate) fn new(s: &hotsync_proto::Stats, sessions: usize) -> Self {
        hotsync_stats {
            frames_tx: s.frames_tx,
            frames_rx: s.frames_rx,
            bytes_tx: s.bytes_tx,
            bytes_rx: s.bytes_rx,
            batches_tx: s.batches_tx,
            batches_rx: s.batches_rx,
            records_tx: s.records_tx,
            records_rx: s.records_rx,
            deletes_tx: s.deletes_tx,
            deletes_rx: s.deletes_rx,
            shards_resynced: s.shards_resynced,
            journal_overflows: s.journal_overflows,
            apply_table_full: s.apply_table_full,
            config_ops_tx: s.config_ops_tx,
            config_ops_rx: s.config_ops_rx,
            config_items_rx: s.config_items_rx,
            connections: s.connections,
            disconnects: s.disconnects,
            errors: s.error_total(),
            sessions: sessions as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_entry_round_trip_field_by_field() {
        let mut k = SessionKey::new(
            7,
            6,
            "10.1.2.3".parse().unwrap(),
            40000,
            "2001:db8::1".parse().unwrap(),
            443,
        );
        k.ct_zone = 9;
        let c = hotsync_session_key::from(&k);
        assert_eq!((c.vsys, c.ct_zone), (7, 9));
        assert_eq!(c.dst_port, 443);
        assert_eq!(SessionKey::from(&c), k);

        let mut e = SessionEntry {
            packets: [1, 2],
            bytes: [3, 4],
            policy_id: 5,
            app_id: 6,
            created: 7,
            last_seen: 8,
            timeout: 9,
            src_zone: 10,
            dst_zone: 11,
            mark: 12,
            ct_status: 13,
            state: 3,
            flags: 0x07,
            tcp_wscale: [7, 8],
            ..SessionEntry::default()
        };
        e.nat.src_port = 12;
        e.nat.dst_addr[15] = 13;
        let c = hotsync_session_entry::from(&e);
        assert_eq!((c.nat.src_port, c.nat.dst_addr[15], c.flags), (12, 13, 7));
        assert_eq!(SessionEntry::from(&c), e);
    }

    #[test]
    fn mirrors_have_the_table_layout_today() {
        // Not required (conversions are field by field), but while it
        // holds the conversions compile to plain copies.
        assert_eq!(size_of::<SessionKey>(), size_of::<hotsync_session_key>());
        assert_eq!(
            size_of::<SessionEntry>(),
            size_of::<hotsync_session_entry>()
        );
    }

    #[test]
    fn job_failure_text_is_truncated_and_terminated() {
        let mut buf = [1 as c_char; 8];
        copy_c_string("abcdéfghij", &mut buf);
        // 7 bytes fit; 'é' spans bytes 4..6, so the cut lands after it.
        let got: Vec<u8> = buf.iter().map(|&c| c as u8).collect();
        assert_eq!(&got[..7], "abcdéf".as_bytes());
        assert_eq!(got[7], 0);
        // Here the 8th byte would split 'é': cut before it.
        copy_c_string("abcdefé", &mut buf);
        let got: Vec<u8> = buf.iter().map(|&c| c as u8).collect();
        assert_eq!(&got[..7], b"abcdef\0");
    }
}
