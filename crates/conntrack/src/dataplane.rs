//! The kernel table as a hotsync data plane: a source thread feeding the
//! session table from a dump and from events, and the sink that commits
//! the table to the kernel on takeover.

use crate::codec::CtEntry;
use crate::filter::Filter;
use crate::mirror::{MIRROR_INTERVAL_MS, Mirror};
use crate::socket::{Counts, CtError, CtSocket, Event, Membership, Subscribe};
use hotsync_table::{SessionEntry, SessionKey, SessionTable, unix_now};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Smallest timeout a committed entry gets: an entry whose replicated
/// expiry has passed may still be live (the kernel refreshes timeouts on
/// every packet without an event), so it gets this long to see a packet.
pub const MIN_COMMIT_TIMEOUT: u32 = 60;

/// Seconds between the active's refresh dumps. The kernel refreshes an
/// entry's timeout on every packet without an event, so the table's copy
/// would age out while the flow lives: every `REFRESH_SECS` a dump renews
/// the entries close to their expiry in the table (and so on the peer).
pub const REFRESH_SECS: u32 = 60;

/// Smallest timeout a kernel entry gets in the table: two refresh periods,
/// so no live entry ages out between refreshes. Entries leave the table by
/// the kernel's destroy events, not by this timeout.
pub const MIN_TABLE_TIMEOUT: u32 = 2 * REFRESH_SECS;

/// How the standby's kernel receives the replicated entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Keep them in hotsync's table and commit them all when this node
    /// becomes active (conntrackd's external cache and commit).
    #[default]
    Commit,
    /// Write them to the standby's kernel continuously (and keep their
    /// kernel timeouts refreshed), so a takeover has almost nothing left
    /// to commit (`crate::mirror`).
    Mirror,
}

/// The data plane's settings (`hrp data-plane conntrack ...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConntrackConfig {
    /// Sink mode.
    pub mode: Mode,
    /// Network namespace to open the netlink sockets in (`ip netns` name).
    pub netns: Option<String>,
    /// Entries that stay local-only.
    pub filter: Filter,
    /// Virtual-system id given to every kernel entry.
    pub vsys: u16,
    /// Kernel receive buffer of the event socket in bytes; `None`: 32 MiB
    /// (room for bursts of about 100,000 events). Overruns are counted
    /// and repaired by a re-dump.
    pub event_buffer: Option<i32>,
}

/// Counters, readable while the data plane runs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Full dumps completed.
    pub dumps: AtomicU64,
    /// Entries read by dumps.
    pub dumped: AtomicU64,
    /// Upsert events applied.
    pub events_upsert: AtomicU64,
    /// Destroy events applied.
    pub events_destroy: AtomicU64,
    /// Events caused by this node's own commits, not fed back (echo).
    pub events_echo: AtomicU64,
    /// Events seen while standby, not fed to the table (the active's
    /// entries are the replicated ones).
    pub events_standby: AtomicU64,
    /// `ENOBUFS` reports: events lost, repaired by a re-dump and resync.
    pub events_lost: AtomicU64,
    /// Table entries removed by a resync because the kernel no longer had them.
    pub resync_removed: AtomicU64,
    /// Dumps restarted (interrupted by the kernel, or a socket error).
    pub dump_restarts: AtomicU64,
    /// Kernel messages the codec refused.
    pub malformed: AtomicU64,
    /// Entries the session table had no room for.
    pub table_full: AtomicU64,
    /// Entries committed to the kernel.
    pub committed: AtomicU64,
    /// Entries the kernel refused on commit.
    pub commit_refused: AtomicU64,
    /// Of those, refused for a full kernel table (each retried once).
    pub commit_table_full: AtomicU64,
    /// Mirror mode: entries deleted from the standby's kernel because they
    /// left the table.
    pub mirror_deleted: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

struct Shared {
    cfg: ConntrackConfig,
    table: Arc<SessionTable>,
    stats: Stats,
    active: AtomicBool,
    stop: AtomicBool,
    resync: AtomicBool,
    /// Port id of the commit socket: events carrying it are echoes.
    echo_port: AtomicU32,
    /// The event socket's groups: left during the takeover commit, and
    /// while a mirroring standby.
    membership: Membership,
    /// What mirror mode has written to the kernel.
    mirror: Mutex<Mirror>,
    commit: Mutex<CtSocket>,
}

/// A running conntrack data plane.
pub struct DataPlane {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane")
            .field("cfg", &self.shared.cfg)
            .field("active", &self.shared.active.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl DataPlane {
    /// Opens the sockets (errors here name the missing capability or
    /// module), subscribes to events, then starts the source thread, which
    /// dumps the kernel table into `table` when `active` and follows events.
    pub fn start(
        cfg: ConntrackConfig,
        table: Arc<SessionTable>,
        active: bool,
    ) -> Result<DataPlane, CtError> {
        let netns = cfg.netns.as_deref();
        // Subscribe before the first dump, so no flow created meanwhile is
        // missed (events exist only while a listener is subscribed).
        let events = CtSocket::open(netns, Subscribe::Events)?;
        if let Some(bytes) = cfg.event_buffer {
            events.set_recv_buffer(bytes)?;
        }
        events.set_recv_timeout_ms(100)?;
        let commit = CtSocket::open(netns, Subscribe::Nothing)?;
        commit.set_recv_timeout_ms(1000)?;
        // Probe the module and the capability now, not on the thread.
        let mut probe = CtSocket::open(netns, Subscribe::Nothing)?;
        probe.set_recv_timeout_ms(1000)?;
        probe.probe()?;
        drop(probe);
        let shared = Arc::new(Shared {
            echo_port: AtomicU32::new(commit.port_id()),
            membership: events.membership()?,
            commit: Mutex::new(commit),
            mirror: Mutex::new(Mirror::default()),
            cfg,
            table,
            stats: Stats::default(),
            active: AtomicBool::new(active),
            stop: AtomicBool::new(false),
            resync: AtomicBool::new(active),
        });
        if shared.cfg.mode == Mode::Mirror && !active {
            // A mirroring standby ignores kernel events (its entries are
            // the active's, and its own writes would echo): leave.
            shared.membership.set(false)?;
        }
        let dump = CtSocket::open(shared.cfg.netns.as_deref(), Subscribe::Nothing)?;
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("hotsync-conntrack".into())
            .spawn(move || source_loop(&s, events, dump))?;
        Ok(DataPlane {
            shared,
            thread: Some(thread),
        })
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Whether the node is active (kernel events feed the table).
    pub fn is_active(&self) -> bool {
        self.shared.active.load(Ordering::Acquire)
    }

    /// Takes over (`true`) or steps down. Taking over commits the table to
    /// the kernel, most recently active entries first, and returns once
    /// every entry is in; only then do kernel events feed the table. The
    /// event socket leaves its groups during the commit: with no listener
    /// on the host the kernel builds no event per committed entry (about
    /// half the commit's cost, `examples/listener_cost.rs`); what the
    /// kernel created meanwhile comes in by the re-dump that follows. Stepping down stops feeding events.
    pub fn set_active(&self, active: bool) -> Result<Counts, CtError> {
        let mirror = self.shared.cfg.mode == Mode::Mirror;
        if !active {
            let was = self.shared.active.swap(false, Ordering::AcqRel);
            if mirror && was {
                self.shared.membership.set(false)?;
            }
            return Ok(Counts::default());
        }
        if self.is_active() {
            return Ok(Counts::default());
        }
        // Best effort: on failure the commit's events are echoes, dropped.
        // (A mirroring standby has left already.)
        let left = mirror || self.shared.membership.set(false).is_ok();
        let counts = if mirror {
            // What the last pass has not written yet.
            let c = mirror_pass(&self.shared).map(|p| p.committed);
            lock(&self.shared.mirror).clear();
            c
        } else {
            self.commit_table()
        };
        if left {
            // Without the groups no event would feed the table: an error.
            self.shared.membership.set(true)?;
        }
        let counts = counts?;
        self.shared.active.store(true, Ordering::Release);
        // Pick up what the kernel had beyond the table.
        self.shared.resync.store(true, Ordering::Release);
        Ok(counts)
    }

    /// Commits every backup entry of the table to the kernel now, most
    /// recently active first. The [`COMMIT_HEAD`] most recent go first,
    /// picked in linear time, before the rest is sorted: with a million
    /// entries the sort alone would keep live flows out of the kernel for
    /// a TCP retransmission or two.
    pub fn commit_table(&self) -> Result<Counts, CtError> {
        let mut sessions = backup_entries(&self.shared.table, self.shared.cfg.vsys);
        let head = COMMIT_HEAD.min(sessions.len());
        if sessions.len() > head {
            sessions.select_nth_unstable_by_key(head, recency);
        }
        sessions[..head].sort_unstable_by_key(recency);
        let now = unix_now();
        let mut sock = self
            .shared
            .commit
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut counts = sock.commit(&sessions[..head], |e| commit_timeout(e, now))?;
        sessions[head..].sort_unstable_by_key(recency);
        counts.add(&sock.commit(&sessions[head..], |e| commit_timeout(e, now))?);
        let st = &self.shared.stats;
        add(&st.committed, counts.ok);
        add(&st.commit_refused, counts.refused);
        add(&st.commit_table_full, counts.table_full);
        Ok(counts)
    }

    /// Stops the source thread.
    pub fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The timeout to commit an entry with: what is left of its replicated
/// timeout, at least [`MIN_COMMIT_TIMEOUT`].
pub fn commit_timeout(e: &SessionEntry, now: u32) -> u32 {
    e.last_seen
        .saturating_add(e.timeout)
        .saturating_sub(now)
        .max(MIN_COMMIT_TIMEOUT)
}

/// Entries a takeover commits ahead of the sort of the rest.
pub const COMMIT_HEAD: usize = 4096;

/// Commit order: most recently active first (last seen, then the latest
/// expiry: established flows before short-lived ones), so live flows are
/// in the kernel soonest.
fn recency(s: &(SessionKey, SessionEntry)) -> std::cmp::Reverse<(u32, u32)> {
    let e = &s.1;
    std::cmp::Reverse((e.last_seen, e.last_seen.saturating_add(e.timeout)))
}

/// The table's backup entries of `vsys`, in no order.
fn backup_entries(table: &SessionTable, vsys: u16) -> Vec<(SessionKey, SessionEntry)> {
    let mut v = Vec::with_capacity(table.backup_len());
    for shard in 0..table.shard_count() {
        table.for_each_in_shard(shard, |k, e| {
            if k.vsys == vsys && e.is_backup() {
                v.push((*k, *e));
            }
        });
    }
    v
}

/// The table's backup entries of `vsys` in commit order.
pub fn ordered_for_commit(table: &SessionTable, vsys: u16) -> Vec<(SessionKey, SessionEntry)> {
    let mut v = backup_entries(table, vsys);
    v.sort_unstable_by_key(recency);
    v
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One mirror pass (mirror mode), counted.
fn mirror_pass(s: &Shared) -> Result<crate::mirror::Pass, CtError> {
    let mut m = lock(&s.mirror);
    let mut sock = lock(&s.commit);
    let p = m.pass(&s.table, s.cfg.vsys, &mut sock, unix_now())?;
    add(&s.stats.committed, p.committed.ok);
    add(&s.stats.commit_refused, p.committed.refused);
    add(&s.stats.commit_table_full, p.committed.table_full);
    add(&s.stats.mirror_deleted, p.deleted);
    Ok(p)
}

fn source_loop(s: &Shared, mut events: CtSocket, mut dump: CtSocket) {
    let echo = s.echo_port.load(Ordering::Relaxed);
    let mut malformed = 0u64;
    let mut next_refresh = unix_now().saturating_add(REFRESH_SECS);
    let mirror_every = std::time::Duration::from_millis(MIRROR_INTERVAL_MS);
    let mut next_mirror = std::time::Instant::now();
    while !s.stop.load(Ordering::Acquire) {
        if s.cfg.mode == Mode::Mirror
            && !s.active.load(Ordering::Acquire)
            && std::time::Instant::now() >= next_mirror
        {
            next_mirror = std::time::Instant::now() + mirror_every;
            if let Err(e) = mirror_pass(s) {
                tracing::warn!("conntrack mirror: {e}");
            }
        }
        let now = unix_now();
        if now >= next_refresh {
            next_refresh = now.saturating_add(REFRESH_SECS);
            if s.active.load(Ordering::Acquire) {
                s.resync.store(true, Ordering::Release);
            }
        }
        if s.resync.swap(false, Ordering::AcqRel) {
            resync(&s.feed(), &mut dump);
        }
        let active = s.active.load(Ordering::Acquire);
        let r = events.recv_events(unix_now(), false, &mut malformed, |ev, origin| {
            if origin == echo && origin != 0 {
                add(&s.stats.events_echo, 1);
            } else if !active {
                add(&s.stats.events_standby, 1);
            } else {
                apply_event(s, ev);
            }
        });
        match r {
            Ok(_) => {}
            Err(CtError::EventsLost) => {
                add(&s.stats.events_lost, 1);
                tracing::warn!("conntrack events lost (ENOBUFS): re-dumping");
                // The kernel reports the overrun before the events still
                // queued, which are older than the re-dump: applied after
                // it they would bring back entries whose destroy event was
                // the one lost. Discard them; the dump has their state.
                discard_queued(&mut events, &mut malformed);
                if s.active.load(Ordering::Acquire) {
                    s.resync.store(true, Ordering::Release);
                }
            }
            Err(e) => {
                tracing::warn!("conntrack events: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        if malformed != 0 {
            add(&s.stats.malformed, std::mem::take(&mut malformed));
        }
    }
}

/// Datagrams [`discard_queued`] reads at most (a storm keeps the queue
/// full: the re-dump must start anyway).
const DISCARD_MAX: u32 = 4096;

/// Reads and drops the events queued on the socket.
fn discard_queued(events: &mut CtSocket, malformed: &mut u64) {
    for _ in 0..DISCARD_MAX {
        match events.recv_events(unix_now(), true, malformed, |_, _| {}) {
            Ok(true) | Err(CtError::EventsLost) => {}
            Ok(false) | Err(_) => return,
        }
    }
}

fn prepare(cfg: &ConntrackConfig, c: &CtEntry) -> (SessionKey, SessionEntry) {
    let mut key = c.key;
    key.vsys = cfg.vsys;
    let mut entry = c.entry;
    entry.timeout = entry.timeout.max(MIN_TABLE_TIMEOUT);
    cfg.filter.apply(&key, &mut entry);
    (key, entry)
}

/// Whether a dumped entry adds nothing to the table's copy: the same but
/// for times and counters, and not due for renewal before the next refresh.
fn unchanged(old: &SessionEntry, new: &SessionEntry, now: u32) -> bool {
    let mut a = *old;
    let mut b = *new;
    for e in [&mut a, &mut b] {
        e.created = 0;
        e.last_seen = 0;
        e.timeout = 0;
        e.packets = [0; 2];
        e.bytes = [0; 2];
    }
    a == b && old.last_seen.saturating_add(old.timeout) >= now.saturating_add(MIN_TABLE_TIMEOUT)
}

fn apply_event(s: &Shared, ev: Event) {
    match ev {
        Event::Upsert(c) => {
            let (k, e) = prepare(&s.cfg, &c);
            if s.table.upsert(&k, &e).is_err() {
                add(&s.stats.table_full, 1);
            }
            add(&s.stats.events_upsert, 1);
        }
        Event::Destroy(mut k) => {
            k.vsys = s.cfg.vsys;
            s.table.remove(&k);
            add(&s.stats.events_destroy, 1);
        }
    }
}

/// What a resync fills: the table, the settings it applies, the counters.
struct Feed<'a> {
    cfg: &'a ConntrackConfig,
    table: &'a SessionTable,
    stats: &'a Stats,
}

impl Shared {
    fn feed(&self) -> Feed<'_> {
        Feed {
            cfg: &self.cfg,
            table: &self.table,
            stats: &self.stats,
        }
    }
}

/// Where a resync reads the kernel table from (a [`CtSocket`]; a scripted
/// source in the tests, to fail a dump half-way).
trait DumpSource {
    fn dump(&mut self, now: u32, f: &mut dyn FnMut(CtEntry)) -> Result<Counts, CtError>;
}

impl DumpSource for CtSocket {
    fn dump(&mut self, now: u32, f: &mut dyn FnMut(CtEntry)) -> Result<Counts, CtError> {
        CtSocket::dump(self, now, f)
    }
}

/// Attempts of one resync before it gives up until the next trigger.
const DUMP_ATTEMPTS: u32 = 5;

/// Dumps the kernel table into the session table, then removes the table's
/// entries the kernel no longer has: the first fill, the resync after lost
/// events, and the periodic refresh. A dump the kernel interrupts or a
/// socket error restarts it (bounded); only a complete dump removes
/// entries.
fn resync(s: &Feed<'_>, dump: &mut impl DumpSource) {
    for _attempt in 0..DUMP_ATTEMPTS {
        let mut seen: hashbrown::HashSet<SessionKey, foldhash::fast::RandomState> =
            hashbrown::HashSet::with_capacity_and_hasher(s.table.len(), Default::default());
        let now = unix_now();
        let r = dump.dump(now, &mut |c| {
            let (k, e) = prepare(s.cfg, &c);
            seen.insert(k);
            if s.table.get(&k).is_some_and(|old| unchanged(&old, &e, now)) {
                return;
            }
            if s.table.upsert(&k, &e).is_err() {
                add(&s.stats.table_full, 1);
            }
        });
        match r {
            Ok(counts) => {
                add(&s.stats.dumps, 1);
                add(&s.stats.dumped, counts.ok);
                add(&s.stats.malformed, counts.malformed);
                let mut gone = Vec::new();
                for shard in 0..s.table.shard_count() {
                    s.table.for_each_in_shard(shard, |k, _| {
                        if k.vsys == s.cfg.vsys && !seen.contains(k) {
                            gone.push(*k);
                        }
                    });
                }
                for k in &gone {
                    s.table.remove(k);
                }
                add(&s.stats.resync_removed, gone.len() as u64);
                return;
            }
            Err(e) => {
                add(&s.stats.dump_restarts, 1);
                tracing::warn!("conntrack dump: {e}; restarting");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::CtTuple;
    use hotsync_table::{TableConfig, flags, ip_proto};
    use std::net::{IpAddr, Ipv4Addr};

    fn entry(i: u8) -> CtEntry {
        CtEntry {
            key: SessionKey::new(
                0,
                ip_proto::TCP,
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
                1000,
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                443,
            ),
            entry: SessionEntry {
                timeout: 3600,
                last_seen: unix_now(),
                state: 3,
                mark: u32::from(i),
                flags: flags::BACKUP,
                ..SessionEntry::default()
            },
            reply: CtTuple::default(),
        }
    }

    /// A kernel whose dumps fail half-way (a socket error) `failures`
    /// times before one completes.
    struct Flaky {
        kernel: Vec<CtEntry>,
        failures: u32,
        dumps: u32,
    }

    impl DumpSource for Flaky {
        fn dump(&mut self, _now: u32, f: &mut dyn FnMut(CtEntry)) -> Result<Counts, CtError> {
            self.dumps += 1;
            if self.failures > 0 {
                self.failures -= 1;
                self.kernel[..self.kernel.len() / 2]
                    .iter()
                    .for_each(|c| f(*c));
                return Err(CtError::Io(std::io::Error::from_raw_os_error(
                    libc::ECONNRESET,
                )));
            }
            self.kernel.iter().for_each(|c| f(*c));
            Ok(Counts {
                ok: self.kernel.len() as u64,
                ..Counts::default()
            })
        }
    }

    fn setup() -> (ConntrackConfig, SessionTable, Stats) {
        let table = SessionTable::new(TableConfig::with_capacity(1000));
        // An entry the kernel no longer has (its destroy event was lost).
        let stale = entry(200);
        table.upsert(&stale.key, &stale.entry).unwrap();
        (ConntrackConfig::default(), table, Stats::default())
    }

    #[test]
    fn a_socket_error_mid_dump_restarts_it_and_the_complete_dump_resyncs() {
        let (cfg, table, stats) = setup();
        let kernel: Vec<CtEntry> = (1..=100).map(entry).collect();
        let mut src = Flaky {
            kernel: kernel.clone(),
            failures: 2,
            dumps: 0,
        };
        let feed = Feed {
            cfg: &cfg,
            table: &table,
            stats: &stats,
        };
        resync(&feed, &mut src);
        assert_eq!(src.dumps, 3);
        assert_eq!(stats.dump_restarts.load(Ordering::Relaxed), 2);
        assert_eq!(stats.dumps.load(Ordering::Relaxed), 1);
        // The table is the kernel's: every entry, and the stale one gone.
        assert_eq!(table.len(), 100);
        for c in &kernel {
            assert_eq!(table.get(&c.key).map(|e| e.mark), Some(c.entry.mark));
        }
        assert!(table.get(&entry(200).key).is_none());
        assert_eq!(stats.resync_removed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn dumps_that_never_complete_remove_nothing_and_are_counted() {
        let (cfg, table, stats) = setup();
        let mut src = Flaky {
            kernel: (1..=100).map(entry).collect(),
            failures: u32::MAX,
            dumps: 0,
        };
        let feed = Feed {
            cfg: &cfg,
            table: &table,
            stats: &stats,
        };
        resync(&feed, &mut src);
        assert_eq!(src.dumps, DUMP_ATTEMPTS);
        assert_eq!(
            stats.dump_restarts.load(Ordering::Relaxed),
            u64::from(DUMP_ATTEMPTS)
        );
        assert_eq!(stats.dumps.load(Ordering::Relaxed), 0);
        // A partial dump proves nothing absent: the stale entry stays
        // until a complete dump.
        assert!(table.get(&entry(200).key).is_some());
        assert_eq!(stats.resync_removed.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_commit_head_is_the_most_recent_in_order() {
        let table = SessionTable::new(TableConfig::with_capacity(20_000));
        for i in 0..10_000u32 {
            let mut c = entry((i % 250) as u8 + 1);
            c.key.src_port = (i / 250) as u16;
            c.entry.last_seen = 1_000_000 + (i * 7919) % 10_000;
            table.upsert(&c.key, &c.entry).unwrap();
        }
        let full = ordered_for_commit(&table, 0);
        let mut v = backup_entries(&table, 0);
        v.select_nth_unstable_by_key(COMMIT_HEAD, recency);
        v[..COMMIT_HEAD].sort_unstable_by_key(recency);
        let seen =
            |x: &[(SessionKey, SessionEntry)]| x.iter().map(|s| s.1.last_seen).collect::<Vec<_>>();
        assert_eq!(seen(&v[..COMMIT_HEAD]), seen(&full[..COMMIT_HEAD]));
        assert!(
            full.windows(2)
                .all(|w| w[0].1.last_seen >= w[1].1.last_seen)
        );
    }
}
