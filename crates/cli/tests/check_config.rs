//! `hotsync check-config FILE` reports every error of a node file with its
//! position, and `hotsync node` refuses to start with the same messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_hotsync");

const GOOD: &str = "\
sysname FW-A
#
hrp enable
hrp local-address 127.0.0.1 port 1
hrp remote-address 127.0.0.1 port 3
hrp admin-socket /nonexistent/hotsync-check.sock
#
vsys name v1 id 1
vsys name v3 id 3
#
interface GigabitEthernet1/0/1
 ip address 10.0.0.1 255.255.255.0
#
ip address-set web type object
 address 0 10.1.1.10 mask 32
#
";

fn write(tag: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("hotsync-check-{}-{tag}.cfg", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&str], file: &Path) -> Output {
    Command::new(BIN).args(args).arg(file).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_good_file_passes() {
    let f = write("good", GOOD);
    let out = run(&["check-config"], &f);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));
    let _ = std::fs::remove_file(f);
}

#[test]
fn bad_files_are_refused_by_check_config_and_node_alike() {
    let cases: &[(&str, String, &[&str])] = &[
        (
            "typo",
            GOOD.replace("hrp enable\n", "hrp enable\nhrp priorty 120\n"),
            &[":4:5: expected an hrp command"],
        ),
        (
            "ip",
            GOOD.replace("10.0.0.1 255", "10.0.0.300 255"),
            &[":12:13: expected an IPv4 address, found `10.0.0.300`"],
        ),
        (
            "set",
            GOOD.replace("address 0 10.1.1.10", "address 0 10.1.1.999"),
            &[":15:12: expected an IPv4 address, found `10.1.1.999`"],
        ),
        (
            "self",
            GOOD.replace("port 3", "port 1"),
            &[":5:20: `hrp remote-address 127.0.0.1 port 1` is this node's own address"],
        ),
        (
            "enable",
            GOOD.replace("hrp enable\n", ""),
            &["missing `hrp enable`"],
        ),
        (
            "vsys",
            GOOD.replace("v3 id 3", "v3 id 1"),
            &[":9:17: virtual system `v3` has id 1, already the id of `v1` on line 8"],
        ),
        ("empty", String::new(), &[":1:1: the file is empty"]),
        (
            "many",
            GOOD.replace("hrp enable\n", "hrp enable\nhrp priorty 120\n")
                .replace("address 0 10.1.1.10", "address 0 10.1.1.999"),
            &[
                ":4:5: expected an hrp command",
                ":16:12: expected an IPv4 address",
            ],
        ),
    ];
    for (tag, text, wanted) in cases {
        let f = write(tag, text);
        let check = run(&["check-config"], &f);
        let node = run(&["node", "--log-level", "warn", "--config"], &f);
        assert_eq!(check.status.code(), Some(2), "{tag}: {}", stderr(&check));
        assert_eq!(node.status.code(), Some(2), "{tag}: {}", stderr(&node));
        let (c, n) = (stderr(&check), stderr(&node));
        assert_eq!(c, n, "{tag}: check-config and node differ");
        assert_eq!(c.lines().count(), wanted.len(), "{tag}: {c}");
        for (line, w) in c.lines().zip(wanted.iter()) {
            assert!(line.starts_with(&f.display().to_string()), "{tag}: {line}");
            assert!(line.contains(w), "{tag}: wanted {w:?} in {line:?}");
        }
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn an_unknown_log_level_is_refused() {
    let f = write("loglevel", GOOD);
    let out = run(&["node", "--log-level", "loud", "--config"], &f);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid --log-level `loud`"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_file(f);
}
