//! `hotsync cli` against hostile or broken admin sockets: a failure is a
//! non-zero exit, and root's client does not talk to a socket another user
//! serves (docs/RELIABILITY.md, "Hostile input").

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hotsync");

/// A private scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("hotsync-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::DirBuilder::new().mode(0o700).create(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_lost_connection_exits_non_zero() {
    let dir = TempDir::new("lost");
    let sock = dir.0.join("a.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    // A node that reads the client's first request and hangs up.
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        line
    });
    let out = Command::new(BIN)
        .args(["cli", "--admin"])
        .arg(&sock)
        .arg("display hrp state")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(server.join().unwrap().starts_with("REQ\t"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("lost the connection"), "{stderr}");
}

#[test]
fn a_missing_socket_exits_non_zero() {
    let dir = TempDir::new("missing");
    let out = Command::new(BIN)
        .args(["cli", "--admin"])
        .arg(dir.0.join("nobody.sock"))
        .arg("display hrp state")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Root's `hotsync cli` refuses a socket whose listening process runs as
/// another user (an impostor bound where the node's socket was expected).
/// Needs root to start a process as another user; skipped otherwise.
#[test]
fn root_does_not_talk_to_a_socket_another_user_serves() {
    if euid() != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = TempDir::new("impostor");
    std::os::unix::fs::chown(&dir.0, Some(65534), Some(65534)).unwrap();
    let sock = dir.0.join("a.sock");
    // The impostor: a real node, run as `nobody`, in a directory of its own.
    let (me, peer) = (free_port_pair(), free_port_pair());
    let cfg = dir.0.join("n.cfg");
    std::fs::write(
        &cfg,
        format!(
            "#\n hrp enable\n hrp node-id 9\n hrp local-address 127.0.0.1 port {me}\n hrp remote-address 127.0.0.1 port {peer}\n hrp admin-socket {}\n",
            sock.display()
        ),
    )
    .unwrap();
    std::os::unix::fs::chown(&cfg, Some(65534), Some(65534)).unwrap();
    let mut impostor = Command::new(BIN)
        .args([
            "node",
            "--log-level",
            "error",
            "--sessions-capacity",
            "1000",
            "--config",
        ])
        .arg(&cfg)
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !sock.exists() {
        if let Ok(Some(status)) = impostor.try_wait() {
            panic!("the impostor node exited: {status}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "impostor never bound"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new(BIN)
        .args(["cli", "--admin"])
        .arg(&sock)
        .arg("display hrp state")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = impostor.kill();
    let _ = impostor.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("runs as uid 65534"), "{stderr}");
}

/// A loopback port `p` with `p + 1` free too (session and config channels).
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let p = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if p < u16::MAX - 1
            && TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok()
            && TcpListener::bind((Ipv4Addr::LOCALHOST, p + 1)).is_ok()
        {
            return p;
        }
    }
    panic!("no free ports");
}

fn euid() -> u32 {
    // The test runs as the same user as `cargo test`; /proc/self tells.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}
