//! Network namespaces for the kernel tests: unique names, removed on drop
//! (also when a test fails), and a skip with a printed reason where the
//! test cannot run (not root, no namespaces, no conntrack).

#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether the kernel tests can run here; prints why not.
pub fn can_run(test: &str) -> bool {
    let uid = Command::new("id").arg("-u").output();
    let root = matches!(&uid, Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        eprintln!("SKIP {test}: needs root (network namespaces, CAP_NET_ADMIN)");
        return false;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        eprintln!("SKIP {test}: `ip` (iproute2) not installed");
        return false;
    }
    true
}

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    /// Its `ip netns` name.
    pub name: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Netns {
    /// Creates `hs-<tag>-<pid>-<n>`; `None` (with the reason printed) when
    /// namespaces are unavailable.
    pub fn new(tag: &str) -> Option<Netns> {
        let name = format!(
            "hs-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip").args(["netns", "add", &name]).output();
        match out {
            Ok(o) if o.status.success() => {
                let ns = Netns { name };
                ns.exec(&["ip", "link", "set", "lo", "up"]);
                Some(ns)
            }
            Ok(o) => {
                eprintln!(
                    "SKIP: cannot create a network namespace: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIP: cannot run ip: {e}");
                None
            }
        }
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("ip netns exec")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Polls `f` every 20 ms for up to `secs` seconds.
pub fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f()
}
