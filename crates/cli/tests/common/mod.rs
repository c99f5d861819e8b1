//! Helpers the two-process CLI tests share.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Two consecutive free loopback ports from `base .. base + span`. Taken
/// below the ephemeral range (so no outgoing connection grabs them) and from
/// a per-process sequence (so two tests of one binary never pick the same
/// pair); each test binary passes its own range.
pub fn free_ports(base: u16, span: u32, avoid: &[u16]) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = (std::process::id() % 1000) * 14;
    for _ in 0..2000 {
        let step = NEXT.fetch_add(2, Ordering::Relaxed);
        let p = base + ((offset + step) % span) as u16;
        if !avoid.iter().any(|a| a.abs_diff(p) <= 1)
            && TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok()
            && TcpListener::bind((Ipv4Addr::LOCALHOST, p + 1)).is_ok()
        {
            return p;
        }
    }
    panic!("no free ports");
}

/// Polls `f` every 50 ms until it returns a value; fails after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private scratch directory (mode 0700: the node refuses an admin socket
/// others could replace), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "hotsync-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&p)
            .unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
