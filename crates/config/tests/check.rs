//! `check_node_file`: node files that must not start (issue 14), each
//! error with its line and column.

use hotsync_config::{Diagnostic, check_node_file};

/// A complete, valid node file; tests append or replace lines.
const GOOD: &str = "\
sysname FW-A
#
hrp enable
hrp local-address 10.10.0.1 port 18514
hrp remote-address 10.10.0.2 port 18514
hrp admin-socket /run/hotsync/admin.sock
hrp mirror session enable
#
vsys name v1 1
vsys name v2 id 2
#
interface GigabitEthernet1/0/1
 ip address 10.0.0.1 255.255.255.0
#
ip address-set web type object
 address 0 10.1.1.10 mask 32
#
";

fn errors(text: &str) -> Vec<Diagnostic> {
    match check_node_file(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

fn one(text: &str) -> Diagnostic {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:?}");
    e.into_iter().next().unwrap()
}

#[test]
fn good_file_passes() {
    let f = check_node_file(GOOD).expect("valid");
    assert!(f.settings.enabled);
    assert_eq!(f.settings.priority, 100);
}

#[test]
fn hrp_typo_is_refused_where_it_is() {
    let d = one(&GOOD.replace("hrp enable\n", "hrp enable\nhrp priorty 120\n"));
    assert_eq!((d.line, d.column), (4, 5), "{d}");
    assert!(d.message.contains("found `priorty`"), "{d}");
    assert!(d.message.contains("priority"), "{d}");
}

#[test]
fn invalid_interface_address_is_refused() {
    let d = one(&GOOD.replace("ip address 10.0.0.1 ", "ip address 10.0.0.300 "));
    assert_eq!((d.line, d.column), (13, 13), "{d}");
    assert!(
        d.message.contains("IPv4 address, found `10.0.0.300`"),
        "{d}"
    );
}

#[test]
fn invalid_address_set_member_is_refused() {
    let d = one(&GOOD.replace(
        "address 0 10.1.1.10 mask 32",
        "address 0 10.1.1.999 mask 32",
    ));
    assert_eq!((d.line, d.column), (16, 12), "{d}");
    assert!(d.message.contains("`10.1.1.999`"), "{d}");
    let d = one(&GOOD.replace("address 0 10.1.1.10 mask 32", "address 0 10.1.1.9 mask 33"));
    assert_eq!((d.line, d.column), (16, 26), "{d}");
}

#[test]
fn remote_address_equal_to_local_is_refused() {
    let d = one(&GOOD.replace("10.10.0.2 port 18514", "10.10.0.1 port 18514"));
    assert_eq!((d.line, d.column), (5, 20), "{d}");
    assert!(d.message.contains("this node's own address"), "{d}");
    // The config channel (port + 1) overlaps too.
    let d = one(&GOOD.replace("10.10.0.2 port 18514", "10.10.0.1 port 18515"));
    assert_eq!(d.line, 5, "{d}");
    // Same host, ports apart: a loopback pair, fine.
    check_node_file(&GOOD.replace("10.10.0.2 port 18514", "10.10.0.1 port 18516"))
        .expect("loopback pair");
}

#[test]
fn missing_hrp_enable_is_refused() {
    let d = one(&GOOD.replace("hrp enable\n", ""));
    assert!(d.message.contains("missing `hrp enable`"), "{d}");
}

#[test]
fn duplicate_vsys_id_is_refused() {
    let d = one(&GOOD.replace("vsys name v2 id 2", "vsys name v2 id 1"));
    assert_eq!((d.line, d.column), (10, 17), "{d}");
    assert!(
        d.message
            .contains("`v2` has id 1, already the id of `v1` on line 9"),
        "{d}"
    );
}

#[test]
fn empty_file_says_empty() {
    for text in ["", "\n\n", "#\n!comment\n#\n"] {
        let d = one(text);
        assert_eq!((d.line, d.column), (1, 1));
        assert!(d.message.starts_with("the file is empty"), "{d}");
    }
}

#[test]
fn every_error_is_reported_in_line_order() {
    let text = GOOD
        .replace("hrp enable\n", "hrp enable\nhrp priorty 120\n")
        .replace("ip address 10.0.0.1 ", "ip address 10.0.0.300 ")
        .replace(
            "address 0 10.1.1.10 mask 32",
            "address 0 10.1.1.999 mask 32",
        );
    let lines: Vec<u32> = errors(&text).iter().map(|d| d.line).collect();
    assert_eq!(lines, [4, 14, 17]);
}

#[test]
fn admin_socket_is_optional() {
    // The node has a default socket (see docs/COMMANDS.md).
    check_node_file(&GOOD.replace("hrp admin-socket /run/hotsync/admin.sock\n", ""))
        .expect("valid");
}

#[test]
fn metrics_listen_is_read() {
    let f =
        check_node_file(&format!("{GOOD}hrp metrics listen 127.0.0.1 port 9465\n")).expect("valid");
    assert_eq!(
        f.settings.metrics_listen,
        Some("127.0.0.1:9465".parse().unwrap())
    );
    let d = one(&format!("{GOOD}hrp metrics listen 127.0.0.1 9465\n"));
    assert!(d.message.contains("expected port"), "{d}");
}

#[test]
fn role_control_external_is_read() {
    assert!(
        !check_node_file(GOOD)
            .unwrap()
            .settings
            .role_control_external
    );
    let f = check_node_file(&format!("{GOOD}hrp role-control external\n")).expect("valid");
    assert!(f.settings.role_control_external);
    let d = one(&format!("{GOOD}hrp role-control keepalived\n"));
    assert!(
        d.message.contains("expected external, found `keepalived`"),
        "{d}"
    );
}
