//! A fault-injecting TCP proxy for tests: sits between two nodes (on both
//! the session port and the config port, `port` and `port + 1`) and, on
//! command or on a schedule, cuts connections, stalls them, delays them,
//! splits writes into tiny pieces and corrupts bytes.
//!
//! Each proxied connection runs four threads: a reader and a writer per
//! direction, joined by a bounded channel of timestamped chunks (so a delay
//! adds latency without throttling throughput). Faults apply in the writer.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the proxy does to the bytes passing through. Changes apply to
/// connections already open.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Hold every byte (both directions) while set.
    pub stall: bool,
    /// Added one-way latency.
    pub delay: Duration,
    /// Write what was read in pieces of at most this many bytes.
    pub split: Option<usize>,
    /// Corrupt one byte in every this many forwarded chunks (0: never).
    pub corrupt_every: u64,
    /// Accept and drop new connections at once (the link is down).
    pub refuse: bool,
}

/// One scheduled fault.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Cut every live connection now (both channels).
    Cut,
    /// Cut the live connections of one channel (0 session, 1 config).
    CutChannel(usize),
    /// Replace the fault settings.
    Set(Faults),
    /// Back to a clean link (no faults; connections kept).
    Heal,
}

/// Counters, per channel (index 0 session, 1 config).
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Connections accepted and joined to the upstream.
    pub accepted: [AtomicU64; 2],
    /// Connections accepted and dropped at once (`refuse`) or because the
    /// upstream did not answer.
    pub refused: [AtomicU64; 2],
    /// Live connections the proxy cut.
    pub cut: [AtomicU64; 2],
    /// Connections that ended on their own (an endpoint closed).
    pub ended: [AtomicU64; 2],
    /// Bytes forwarded.
    pub bytes: [AtomicU64; 2],
    /// Bytes corrupted.
    pub corrupted: AtomicU64,
}

impl ProxyStats {
    /// Loads one counter.
    pub fn get(c: &[AtomicU64; 2]) -> [u64; 2] {
        [c[0].load(Ordering::SeqCst), c[1].load(Ordering::SeqCst)]
    }
}

struct Live {
    channel: usize,
    a: TcpStream,
    b: TcpStream,
    closed: Arc<AtomicBool>,
}

struct Shared {
    upstream: SocketAddr,
    faults: Mutex<Faults>,
    live: Mutex<Vec<Live>>,
    stop: AtomicBool,
    stats: ProxyStats,
    chunk_counter: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The proxy. Dropping it stops it and closes every connection.
pub struct Proxy {
    shared: Arc<Shared>,
    port: u16,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("port", &self.port).finish()
    }
}

fn with_port(a: SocketAddr, port: u16) -> SocketAddr {
    SocketAddr::new(a.ip(), port)
}

impl Proxy {
    /// Listens on 127.0.0.1:`port` and `port + 1`, forwarding to
    /// `upstream` and `upstream + 1`.
    pub fn start(port: u16, upstream: SocketAddr) -> Proxy {
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(Faults::default()),
            live: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            stats: ProxyStats::default(),
            chunk_counter: AtomicU64::new(0),
        });
        let mut threads = Vec::new();
        for channel in 0..2 {
            let l = TcpListener::bind(("127.0.0.1", port + channel as u16))
                .unwrap_or_else(|e| panic!("proxy bind {}: {e}", port + channel as u16));
            l.set_nonblocking(true).unwrap();
            let shared = shared.clone();
            threads.push(std::thread::spawn(move || accept_loop(l, channel, shared)));
        }
        Proxy {
            shared,
            port,
            threads,
        }
    }

    /// The session-channel address to give the dialling node as its peer.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Counters.
    pub fn stats(&self) -> &ProxyStats {
        &self.shared.stats
    }

    /// Replaces the fault settings.
    pub fn set(&self, f: Faults) {
        *lock(&self.shared.faults) = f;
    }

    /// Changes the fault settings in place.
    pub fn update(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut lock(&self.shared.faults));
    }

    /// Cuts every live connection (of `channel`, or all); returns how many.
    pub fn cut(&self, channel: Option<usize>) -> u64 {
        let mut live = lock(&self.shared.live);
        let mut n = 0;
        live.retain(|c| {
            if channel.is_some_and(|ch| ch != c.channel) {
                return true;
            }
            // Only count connections that were still open.
            if !c.closed.swap(true, Ordering::SeqCst) {
                let _ = c.a.shutdown(Shutdown::Both);
                let _ = c.b.shutdown(Shutdown::Both);
                self.shared.stats.cut[c.channel].fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
            false
        });
        n
    }

    /// Live connections now, per channel.
    pub fn live(&self) -> [usize; 2] {
        let live = lock(&self.shared.live);
        let mut n = [0; 2];
        for c in live.iter().filter(|c| !c.closed.load(Ordering::SeqCst)) {
            n[c.channel] += 1;
        }
        n
    }

    /// Applies one fault.
    pub fn apply(&self, f: &Fault) {
        match f {
            Fault::Cut => {
                self.cut(None);
            }
            Fault::CutChannel(ch) => {
                self.cut(Some(*ch));
            }
            Fault::Set(faults) => self.set(faults.clone()),
            Fault::Heal => self.set(Faults::default()),
        }
    }

    /// Runs `steps` (offsets from now) on a thread; join it to wait.
    pub fn schedule(self: &Arc<Self>, steps: Vec<(Duration, Fault)>) -> JoinHandle<()> {
        let p = self.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            for (at, f) in steps {
                let due = t0 + at;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                p.apply(&f);
            }
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut(None);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn accept_loop(l: TcpListener, channel: usize, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match l.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(_) => continue,
        };
        let _ = client.set_nonblocking(false);
        if lock(&shared.faults).refuse {
            shared.stats.refused[channel].fetch_add(1, Ordering::SeqCst);
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let up = with_port(shared.upstream, shared.upstream.port() + channel as u16);
        let server = match TcpStream::connect_timeout(&up, Duration::from_secs(1)) {
            Ok(s) => s,
            Err(_) => {
                shared.stats.refused[channel].fetch_add(1, Ordering::SeqCst);
                let _ = client.shutdown(Shutdown::Both);
                continue;
            }
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let closed = Arc::new(AtomicBool::new(false));
        {
            let mut live = lock(&shared.live);
            live.retain(|c| !c.closed.load(Ordering::SeqCst));
            live.push(Live {
                channel,
                a: client.try_clone().unwrap(),
                b: server.try_clone().unwrap(),
                closed: closed.clone(),
            });
        }
        shared.stats.accepted[channel].fetch_add(1, Ordering::SeqCst);
        for (from, to) in [
            (client.try_clone().unwrap(), server.try_clone().unwrap()),
            (server.try_clone().unwrap(), client.try_clone().unwrap()),
        ] {
            let shared = shared.clone();
            let closed = closed.clone();
            let (a, b) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                pump(from, to, channel, &shared, &closed);
                // One direction ended: end the connection (both sockets),
                // counted once as ended unless it was cut.
                if !closed.swap(true, Ordering::SeqCst) {
                    shared.stats.ended[channel].fetch_add(1, Ordering::SeqCst);
                }
                let _ = a.shutdown(Shutdown::Both);
                let _ = b.shutdown(Shutdown::Both);
            });
        }
    }
}

/// Reader side: reads chunks and hands them to a writer thread with the
/// time each may be delivered.
fn pump(
    mut from: TcpStream,
    to: TcpStream,
    channel: usize,
    shared: &Arc<Shared>,
    closed: &AtomicBool,
) {
    let (tx, rx) = crossbeam_channel::bounded::<(Instant, Vec<u8>)>(64);
    let writer = {
        let shared = shared.clone();
        std::thread::spawn(move || write_side(to, rx, channel, &shared))
    };
    let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if closed.load(Ordering::SeqCst) || shared.stop.load(Ordering::SeqCst) {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let delay = lock(&shared.faults).delay;
                if tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    drop(tx);
    let _ = writer.join();
}

fn write_side(
    mut to: TcpStream,
    rx: crossbeam_channel::Receiver<(Instant, Vec<u8>)>,
    channel: usize,
    shared: &Shared,
) {
    while let Ok((due, mut chunk)) = rx.recv() {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        // Stalled: hold the bytes (the connection stays open).
        loop {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            if !lock(&shared.faults).stall {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let f = lock(&shared.faults).clone();
        if f.corrupt_every > 0 {
            let c = shared.chunk_counter.fetch_add(1, Ordering::SeqCst);
            if c % f.corrupt_every == f.corrupt_every - 1 {
                let at = (c as usize * 7919) % chunk.len();
                chunk[at] ^= 0x5a;
                shared.stats.corrupted.fetch_add(1, Ordering::SeqCst);
            }
        }
        let piece = f.split.unwrap_or(chunk.len()).max(1);
        for p in chunk.chunks(piece) {
            if to.write_all(p).is_err() {
                return;
            }
        }
        shared.stats.bytes[channel].fetch_add(chunk.len() as u64, Ordering::SeqCst);
    }
}
