//! A ctnetlink socket: open (optionally in a named network namespace),
//! dump, receive events, commit batches.

use crate::codec::{CodecError, CtEntry, Encoder, Messages, decode_entry};
use crate::consts::*;
use crate::sys;
use hotsync_table::{SessionEntry, SessionKey};
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// `SOL_NETLINK` and `NETLINK_CAP_ACK` (`linux/netlink.h`).
const SOL_NETLINK: i32 = 270;
const NETLINK_CAP_ACK: i32 = 10;
/// `NETLINK_ADD_MEMBERSHIP` and `NETLINK_DROP_MEMBERSHIP`.
const NETLINK_ADD_MEMBERSHIP: i32 = 1;
const NETLINK_DROP_MEMBERSHIP: i32 = 2;
/// The conntrack event groups an event socket joins.
const EVENT_GROUPS: [u32; 3] = [
    NFNLGRP_CONNTRACK_NEW,
    NFNLGRP_CONNTRACK_UPDATE,
    NFNLGRP_CONNTRACK_DESTROY,
];

/// Receive buffer: larger than the kernel's biggest dump datagram (32 KiB).
const RECV_BUF: usize = 256 << 10;
/// Bytes of `IPCTNL_MSG_CT_NEW` messages per `send` (under the default
/// socket send buffer of 208 KiB).
const SEND_BATCH: usize = 128 << 10;
/// Kernel receive buffer asked for event sockets (`SO_RCVBUFFORCE`): room
/// for bursts of about 100,000 events before `ENOBUFS`.
const EVENT_RCVBUF: i32 = 32 << 20;

/// Why a conntrack operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CtError {
    /// The process lacks `CAP_NET_ADMIN` (or `CAP_SYS_ADMIN` to enter a
    /// network namespace).
    #[error("{what}: operation not permitted (needs {cap})")]
    Permission {
        /// What was attempted.
        what: &'static str,
        /// The capability it needs.
        cap: &'static str,
    },
    /// The named network namespace does not exist.
    #[error("network namespace {name:?} not found ({path})")]
    NoNamespace {
        /// The name given.
        name: String,
        /// Where it was looked for.
        path: String,
    },
    /// ctnetlink is not available (`nf_conntrack_netlink` not loaded and
    /// not loadable).
    #[error("ctnetlink unavailable: {0} (is the nf_conntrack_netlink module loaded?)")]
    Unavailable(io::Error),
    /// Events were lost (`ENOBUFS`): the caller re-dumps and resyncs.
    #[error("conntrack events lost (ENOBUFS)")]
    EventsLost,
    /// The kernel flagged the dump as interrupted by concurrent changes.
    #[error("dump interrupted")]
    DumpInterrupted,
    /// The kernel answered a request with an error.
    #[error("kernel refused the request: {0}")]
    Kernel(io::Error),
    /// Any other system call error.
    #[error("netlink: {0}")]
    Io(#[from] io::Error),
}

fn permission_or(e: io::Error, what: &'static str, cap: &'static str) -> CtError {
    if e.raw_os_error() == Some(libc::EPERM) || e.raw_os_error() == Some(libc::EACCES) {
        CtError::Permission { what, cap }
    } else {
        CtError::Io(e)
    }
}

/// Which multicast groups a socket joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribe {
    /// None: requests only (dump, commit).
    Nothing,
    /// New, update and destroy events.
    Events,
}

/// What a dump or a commit counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Entries read or committed.
    pub ok: u64,
    /// Messages refused by the codec (counted, skipped).
    pub malformed: u64,
    /// Entries the kernel refused (commit).
    pub refused: u64,
    /// Of those, refused for a full table (`ENOMEM`/`ENOSPC`), retried once.
    pub table_full: u64,
    /// The errno of the first refusal, for the log.
    pub first_errno: Option<i32>,
}

impl Counts {
    /// Adds another pass's counts (the first refusal stays the first).
    pub fn add(&mut self, o: &Counts) {
        self.ok += o.ok;
        self.malformed += o.malformed;
        self.refused += o.refused;
        self.table_full += o.table_full;
        self.first_errno = self.first_errno.or(o.first_errno);
    }
}

/// One event: a session created or changed, or destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `IPCTNL_MSG_CT_NEW`: created or updated.
    Upsert(CtEntry),
    /// `IPCTNL_MSG_CT_DELETE`: destroyed.
    Destroy(SessionKey),
}

/// Joins and leaves the conntrack event groups of an event socket. With
/// no listener in a namespace the kernel generates no conntrack events at
/// all (`nf_conntrack_events` 2, the default): leaving during a bulk
/// commit spares the kernel an event per committed entry.
#[derive(Debug)]
pub struct Membership(OwnedFd);

impl Membership {
    /// Joins (`true`) or leaves the new, update and destroy groups.
    pub fn set(&self, joined: bool) -> Result<(), CtError> {
        let op = if joined {
            NETLINK_ADD_MEMBERSHIP
        } else {
            NETLINK_DROP_MEMBERSHIP
        };
        for g in EVENT_GROUPS {
            sys::set_int_opt(&self.0, SOL_NETLINK, op, g as i32)?;
        }
        Ok(())
    }
}

/// A netlink socket speaking ctnetlink.
#[derive(Debug)]
pub struct CtSocket {
    fd: OwnedFd,
    port_id: u32,
    buf: Vec<u8>,
    enc: Encoder,
    seq: u32,
}

impl CtSocket {
    /// Opens a socket in the current network namespace, or in the named
    /// one (`ip netns` names, `/run/netns/NAME`) when `netns` is given.
    pub fn open(netns: Option<&str>, subscribe: Subscribe) -> Result<Self, CtError> {
        let fd = match netns {
            None => sys::netlink_socket(NETLINK_NETFILTER)
                .map_err(|e| permission_or(e, "netlink socket", "CAP_NET_ADMIN"))?,
            Some(name) => open_in_netns(name)?,
        };
        // Errors then carry only the request's header, not its payload: a
        // refused batch cannot overflow the receive queue.
        let _ = sys::set_int_opt(&fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
        let groups = match subscribe {
            Subscribe::Nothing => 0,
            Subscribe::Events => {
                // Best effort: without CAP_NET_ADMIN the default buffer stays.
                let _ = sys::set_int_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, EVENT_RCVBUF);
                EVENT_GROUPS.iter().fold(0, |m, g| m | 1 << (g - 1))
            }
        };
        let port_id = sys::bind(&fd, groups)
            .map_err(|e| permission_or(e, "conntrack event subscription", "CAP_NET_ADMIN"))?;
        Ok(Self {
            fd,
            port_id,
            buf: vec![0; RECV_BUF],
            enc: Encoder::new(),
            seq: 1,
        })
    }

    /// The kernel-assigned port id: events this socket's requests cause
    /// carry it (echo suppression).
    pub fn port_id(&self) -> u32 {
        self.port_id
    }

    /// A handle that joins and leaves this socket's event groups from
    /// another thread (it shares the socket).
    pub fn membership(&self) -> Result<Membership, CtError> {
        Ok(Membership(self.fd.try_clone()?))
    }

    /// Sets the kernel receive buffer (`SO_RCVBUFFORCE`, `CAP_NET_ADMIN`).
    pub fn set_recv_buffer(&self, bytes: i32) -> Result<(), CtError> {
        Ok(sys::set_int_opt(
            &self.fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            bytes,
        )?)
    }

    /// Makes blocked receives return after `ms` milliseconds.
    pub fn set_recv_timeout_ms(&self, ms: u32) -> Result<(), CtError> {
        Ok(sys::set_recv_timeout(&self.fd, i64::from(ms) * 1000)?)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Checks that ctnetlink answers and the capability suffices, without
    /// reading the table (a request for its global counters).
    pub fn probe(&mut self) -> Result<(), CtError> {
        let seq = self.next_seq();
        self.enc.clear();
        self.enc.stats_request(seq);
        sys::send(&self.fd, self.enc.bytes())
            .map_err(|e| permission_or(e, "conntrack probe", "CAP_NET_ADMIN"))?;
        let mut waits = 0;
        loop {
            let n = match sys::recv(&self.fd, &mut self.buf, false) {
                Ok(Some(n)) => n,
                // A receive timeout (if set): the kernel answers at once.
                Ok(None) if waits < 5 => {
                    waits += 1;
                    continue;
                }
                Ok(None) => {
                    return Err(CtError::Io(io::Error::from(io::ErrorKind::TimedOut)));
                }
                Err(e) => return Err(CtError::Io(e)),
            };
            for m in Messages::new(&self.buf[..n]) {
                let Ok(m) = m else { continue };
                if m.seq != seq || m.ty != NLMSG_ERROR {
                    continue;
                }
                let (errno, _) = m.error().unwrap_or((-libc::EIO, seq));
                return match -errno {
                    0 => Ok(()),
                    libc::EPERM => Err(CtError::Permission {
                        what: "conntrack probe",
                        cap: "CAP_NET_ADMIN",
                    }),
                    e @ (libc::EOPNOTSUPP | libc::ENOENT | libc::EPROTONOSUPPORT) => {
                        Err(CtError::Unavailable(io::Error::from_raw_os_error(e)))
                    }
                    e => Err(CtError::Kernel(io::Error::from_raw_os_error(e))),
                };
            }
        }
    }

    /// Dumps the whole table (both families), calling `f` for each entry.
    /// `now` stamps `created`/`last_seen` of entries without a timestamp.
    pub fn dump(&mut self, now: u32, mut f: impl FnMut(CtEntry)) -> Result<Counts, CtError> {
        let seq = self.next_seq();
        self.enc.clear();
        self.enc.dump_request(seq);
        sys::send(&self.fd, self.enc.bytes())
            .map_err(|e| permission_or(e, "conntrack dump", "CAP_NET_ADMIN"))?;
        let mut counts = Counts::default();
        let mut interrupted = false;
        loop {
            let n = match sys::recv(&self.fd, &mut self.buf, false) {
                Ok(Some(n)) => n,
                Ok(None) => continue,
                Err(e) => return Err(CtError::Io(e)),
            };
            for m in Messages::new(&self.buf[..n]) {
                let m = match m {
                    Ok(m) => m,
                    Err(_) => {
                        counts.malformed += 1;
                        break;
                    }
                };
                if m.seq != seq {
                    continue; // a late answer to an earlier request
                }
                if m.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match m.ty {
                    NLMSG_DONE => {
                        return if interrupted {
                            Err(CtError::DumpInterrupted)
                        } else {
                            Ok(counts)
                        };
                    }
                    NLMSG_ERROR => {
                        let (errno, _) = m.error().unwrap_or((-libc::EIO, seq));
                        if errno != 0 {
                            let e = io::Error::from_raw_os_error(-errno);
                            return Err(match -errno {
                                libc::EPERM => CtError::Permission {
                                    what: "conntrack dump",
                                    cap: "CAP_NET_ADMIN",
                                },
                                libc::EOPNOTSUPP | libc::ENOENT | libc::EPROTONOSUPPORT => {
                                    CtError::Unavailable(e)
                                }
                                _ => CtError::Kernel(e),
                            });
                        }
                    }
                    _ => match decode_entry(m.payload, now) {
                        Ok(c) => {
                            counts.ok += 1;
                            f(c);
                        }
                        Err(_) => counts.malformed += 1,
                    },
                }
            }
        }
    }

    /// Receives one datagram of events, calling `f(event, origin port id)`
    /// for each; `Ok(false)` when nothing arrived (timeout or, with
    /// `nonblocking`, nothing queued). Malformed messages are counted in
    /// `malformed` and skipped.
    pub fn recv_events(
        &mut self,
        now: u32,
        nonblocking: bool,
        malformed: &mut u64,
        mut f: impl FnMut(Event, u32),
    ) -> Result<bool, CtError> {
        let n = match sys::recv(&self.fd, &mut self.buf, nonblocking) {
            Ok(Some(n)) => n,
            Ok(None) => return Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Err(CtError::EventsLost),
            Err(e) => return Err(CtError::Io(e)),
        };
        for m in Messages::new(&self.buf[..n]) {
            let Ok(m) = m else {
                *malformed += 1;
                break;
            };
            let event = match m.ct_type() {
                Some(IPCTNL_MSG_CT_NEW) => decode_entry(m.payload, now).map(Event::Upsert),
                Some(IPCTNL_MSG_CT_DELETE) => {
                    decode_entry(m.payload, now).map(|c| Event::Destroy(c.key))
                }
                _ => continue,
            };
            match event {
                Ok(ev) => f(ev, m.pid),
                Err(CodecError::UnsupportedFamily(_)) | Err(_) => *malformed += 1,
            }
        }
        Ok(true)
    }

    /// Commits `sessions` to the kernel in order, many `IPCTNL_MSG_CT_NEW`
    /// per `send`, each with the timeout `timeout_of` gives. Returns once
    /// the kernel has processed every message (the last one asks for an
    /// acknowledgement). Entries refused for a full table are retried once
    /// at the end; an existing entry refusing a NAT setup (the kernel sets
    /// NAT up only on creation) is retried as an update without it; other
    /// refusals are counted.
    pub fn commit(
        &mut self,
        sessions: &[(SessionKey, SessionEntry)],
        timeout_of: impl Fn(&SessionEntry) -> u32,
    ) -> Result<Counts, CtError> {
        let mut counts = Counts::default();
        let mut retry = Vec::new();
        let first = |s: &(SessionKey, SessionEntry)| (s.0, s.1, true);
        self.commit_pass(sessions, first, &timeout_of, &mut counts, Some(&mut retry))?;
        if !retry.is_empty() {
            let again: Vec<_> = retry
                .iter()
                .map(|&(i, nat)| (sessions[i].0, sessions[i].1, nat))
                .collect();
            counts.refused -= again.len() as u64;
            self.commit_pass(&again, |s| *s, &timeout_of, &mut counts, None)?;
        }
        Ok(counts)
    }

    /// Deletes the kernel entries of `keys` (absent ones are counted as
    /// refused), returning once the kernel has processed every message.
    pub fn delete(&mut self, keys: &[SessionKey]) -> Result<Counts, CtError> {
        let mut counts = Counts::default();
        if keys.is_empty() {
            return Ok(counts);
        }
        let base = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(keys.len() as u32 + 1);
        let last = keys.len() - 1;
        let mut refused = 0u64;
        self.enc.clear();
        for (i, k) in keys.iter().enumerate() {
            self.enc.delete(k, base.wrapping_add(i as u32), i == last);
            if self.enc.len() >= SEND_BATCH || i == last {
                sys::send(&self.fd, self.enc.bytes())
                    .map_err(|e| permission_or(e, "conntrack delete", "CAP_NET_ADMIN"))?;
                self.enc.clear();
                if self.drain_errors(base, last, &mut counts, &mut refused, None, i == last)? {
                    break;
                }
            }
        }
        counts.ok = keys.len() as u64 - refused;
        Ok(counts)
    }

    fn commit_pass<T>(
        &mut self,
        sessions: &[T],
        get: impl Fn(&T) -> (SessionKey, SessionEntry, bool),
        timeout_of: &impl Fn(&SessionEntry) -> u32,
        counts: &mut Counts,
        mut retry: Option<&mut Vec<(usize, bool)>>,
    ) -> Result<(), CtError> {
        if sessions.is_empty() {
            return Ok(());
        }
        // Sequence numbers: base + index, so an error names its session.
        let base = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(sessions.len() as u32 + 1);
        let last = sessions.len() - 1;
        let mut refused = 0u64;
        self.enc.clear();
        for (i, s) in sessions.iter().enumerate() {
            let seq = base.wrapping_add(i as u32);
            let (k, e, nat) = get(s);
            self.enc.commit(&k, &e, timeout_of(&e), seq, i == last, nat);
            if self.enc.len() >= SEND_BATCH || i == last {
                sys::send(&self.fd, self.enc.bytes())
                    .map_err(|e| permission_or(e, "conntrack commit", "CAP_NET_ADMIN"))?;
                self.enc.clear();
                // Errors are queued synchronously by the send: collect them
                // now so the receive queue never fills.
                let done = self.drain_errors(
                    base,
                    last,
                    counts,
                    &mut refused,
                    retry.as_deref_mut(),
                    i == last,
                )?;
                if done {
                    break;
                }
            }
        }
        counts.ok += sessions.len() as u64 - refused;
        Ok(())
    }

    /// Reads acknowledgements and errors; with `wait_last`, blocks until
    /// the acknowledgement of the last message. `true` once it arrived.
    fn drain_errors(
        &mut self,
        base: u32,
        last: usize,
        counts: &mut Counts,
        refused: &mut u64,
        mut retry: Option<&mut Vec<(usize, bool)>>,
        wait_last: bool,
    ) -> Result<bool, CtError> {
        let last_seq = base.wrapping_add(last as u32);
        loop {
            let got = sys::recv(&self.fd, &mut self.buf, !wait_last)?;
            let Some(n) = got else {
                if wait_last {
                    continue; // receive timeout: keep waiting for the ack
                }
                return Ok(false);
            };
            let mut done = false;
            for m in Messages::new(&self.buf[..n]) {
                let Ok(m) = m else {
                    counts.malformed += 1;
                    break;
                };
                if m.ty != NLMSG_ERROR {
                    continue;
                }
                let Ok((errno, seq)) = m.error() else {
                    counts.malformed += 1;
                    continue;
                };
                let idx = seq.wrapping_sub(base) as usize;
                if idx > last {
                    continue; // an earlier request's answer
                }
                if errno != 0 {
                    counts.first_errno.get_or_insert(-errno);
                    *refused += 1;
                    counts.refused += 1;
                    if -errno == libc::EPERM {
                        return Err(CtError::Permission {
                            what: "conntrack commit",
                            cap: "CAP_NET_ADMIN",
                        });
                    }
                    if -errno == libc::ENOMEM || -errno == libc::ENOSPC {
                        counts.table_full += 1;
                        if let Some(r) = retry.as_deref_mut() {
                            r.push((idx, true));
                        }
                    } else if -errno == libc::EOPNOTSUPP {
                        if let Some(r) = retry.as_deref_mut() {
                            r.push((idx, false));
                        }
                    }
                }
                if seq == last_seq {
                    done = true;
                }
            }
            if done {
                return Ok(true);
            }
        }
    }
}

/// Where `ip netns` keeps named namespaces.
fn netns_path(name: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(name)
}

/// Runs `f` on a short-lived thread inside the named network namespace and
/// returns its result: sockets it creates stay in that namespace (tests
/// and tools open listeners and connections there this way).
pub fn in_netns<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T, CtError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(CtError::NoNamespace {
            name: name.to_owned(),
            path: "(not a namespace name)".into(),
        });
    }
    let path = netns_path(name);
    let ns: OwnedFd = std::fs::File::open(&path)
        .map_err(|_| CtError::NoNamespace {
            name: name.to_owned(),
            path: path.display().to_string(),
        })?
        .into();
    std::thread::scope(|s| {
        s.spawn(|| {
            sys::setns_net(&ns).map_err(|e| permission_or(e, "setns", "CAP_SYS_ADMIN"))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(CtError::Io(io::Error::other("netns thread panicked"))))
    })
}

/// Opens the socket on a short-lived thread that first enters the named
/// namespace: the socket stays in that namespace, this thread's does not
/// change.
fn open_in_netns(name: &str) -> Result<OwnedFd, CtError> {
    in_netns(name, || {
        sys::netlink_socket(NETLINK_NETFILTER)
            .map_err(|e| permission_or(e, "netlink socket", "CAP_NET_ADMIN"))
    })?
}
