//! Configuration from an untrusted peer is checked like a command typed on
//! this node: what a peer may not push is refused, and the store is left
//! exactly as it was (docs/RELIABILITY.md, "Hostile input").

use hotsync_config::{
    ApplyError, BatchOutcome, Category, ChangeOp, CommandError, ConfigChange, ConfigItem,
    ConfigStore, MAX_COMMAND_BYTES, MAX_LINE_BYTES, MAX_NAME_CHARS, ParseError, RejectReason,
    printable,
};

const MULTI_VSYS: &str = include_str!("data/multi_vsys.cfg");

/// A receiving node with users, an SSL VPN, hrp settings and two vsys.
fn receiver() -> ConfigStore {
    let mut s = ConfigStore::parse(MULTI_VSYS).unwrap();
    s.execute(None, "user-manage user alice").unwrap();
    s.execute(None, "hrp authentication-key secret-Key-1")
        .unwrap();
    s
}

/// Offers `text` to `store` as a batch item and as each incremental
/// operation, as the node's sink does (parse, then apply); returns whether
/// anything was accepted.
fn offer(store: &mut ConfigStore, vsys: &str, text: &str) -> bool {
    let mut accepted = false;
    if let Ok(item) = ConfigItem::parse(text) {
        accepted |= !matches!(
            store.apply_batch_item(vsys, item, true, 7),
            BatchOutcome::Rejected(_)
        );
    }
    for op in [ChangeOp::Add, ChangeOp::Modify, ChangeOp::Delete] {
        if let Ok(change) = ConfigChange::from_wire(op.code(), vsys, text) {
            accepted |= store.apply_change(&change, true).is_ok();
        }
    }
    accepted
}

fn assert_refused_unchanged(vsys: &str, text: &str) {
    let mut store = receiver();
    let before = store.clone();
    let rendered = store.render();
    assert!(!offer(&mut store, vsys, text), "accepted: {text:?}");
    assert!(store == before, "the store changed after {text:?}");
    assert_eq!(store.render(), rendered);
    assert!(store.conflicts().is_empty());
}

#[test]
fn undo_of_a_named_or_local_item_from_the_peer_is_refused() {
    for text in [
        "undo sysname",
        "undo sysname FW-B",
        "undo hrp authentication-key",
        "undo hrp enable",
        "undo user-manage user alice",
        "undo user-manage group staff",
        "undo sslvpn enable",
        "undo v-gateway gw1",
        "undo interface GigabitEthernet1/0/1",
        "undo firewall zone trust",
        "undo vsys name vsysa",
        "undo ip address-set web",
        "undo ip route-static 10.0.0.0 8 192.168.1.1",
        "undo undo sysname",
        "undo",
        "security-policy\n undo rule name allow-web",
    ] {
        assert!(
            ConfigItem::parse(text).is_err(),
            "{text:?} parsed as an item"
        );
        assert_refused_unchanged("", text);
    }
}

#[test]
fn undo_of_an_opaque_default_still_crosses() {
    let mut store = receiver();
    let item = ConfigItem::parse("undo info-center enable").unwrap();
    assert_eq!(
        store.apply_batch_item("", item, false, 1),
        BatchOutcome::Added
    );
}

#[test]
fn undo_typed_locally_deletes_and_is_never_stored() {
    let mut store = receiver();
    let before = store.render();
    // Not present: refused, not stored as an opaque `undo ...` item.
    for line in [
        "undo user-manage user mallory",
        "undo v-gateway nowhere",
        "undo ip address-set nowhere",
    ] {
        let r = store.execute(None, line);
        assert!(
            matches!(r, Err(CommandError::NotFound { .. })),
            "{line}: {r:?}"
        );
    }
    assert_eq!(store.render(), before);
    // Present: deleted.
    let change = store.execute(None, "undo user-manage user alice").unwrap();
    assert_eq!(change.op, ChangeOp::Delete);
    assert!(!store.render().contains("alice"));
}

#[test]
fn an_hrp_line_hidden_in_a_block_is_refused() {
    for text in [
        "info-center\n hrp authentication-key forged-Key-1",
        "info-center\n loghost 10.0.0.1\n  hrp priority 65535",
        "aaa\n undo hrp enable",
        "aaa\n user-manage user eve password x",
        "security-policy\n rule name allow-web\n  hrp priority 1",
    ] {
        let item = ConfigItem::parse(text).unwrap();
        let mut store = receiver();
        let before = store.clone();
        assert!(
            matches!(
                store.apply_batch_item("", item.clone(), true, 1),
                BatchOutcome::Rejected(RejectReason::ForbiddenSubCommand(_))
            ),
            "{text:?}"
        );
        let change = ConfigChange {
            op: ChangeOp::Add,
            vsys: String::new(),
            item,
        };
        assert!(matches!(
            store.apply_change(&change, true),
            Err(ApplyError::ForbiddenSubCommand { .. })
        ));
        assert!(store == before, "{text:?} changed the store");
        assert_refused_unchanged("", text);
    }
}

/// A block of a category with a sub-command grammar (rules, sets, vsys
/// declarations) from the peer holds only that grammar's sub-commands,
/// as when typed here; opaque blocks (no grammar) only refuse what may
/// never cross.
#[test]
fn a_sub_command_outside_its_categorys_grammar_is_refused() {
    for (category, text) in [
        (
            Category::SecurityRule,
            "security-policy\n rule name allow-web\n  action permit\n  interface GigabitEthernet1/0/1",
        ),
        (
            Category::NatRule,
            "nat-policy\n rule name n1\n  rule name nested",
        ),
        (
            Category::AddressSet,
            "ip address-set evil type object\n address 0 10.9.9.9 mask 32\n ip address 10.0.0.1 24",
        ),
        (
            Category::ServiceSet,
            "ip service-set evil type object\n undo shutdown",
        ),
        (Category::Vsys, "vsys name vsysz id 9\n set priority 100"),
    ] {
        let item = ConfigItem::parse(text).unwrap();
        assert_eq!(item.category(), category, "{text:?}");
        let mut store = receiver();
        let before = store.clone();
        let outcome = store.apply_batch_item("", item.clone(), true, 1);
        assert!(
            matches!(
                &outcome,
                BatchOutcome::Rejected(RejectReason::UnknownSubCommand(c, _)) if *c == category
            ),
            "{text:?}: {outcome:?}"
        );
        for op in [ChangeOp::Add, ChangeOp::Modify] {
            let change = ConfigChange {
                op,
                vsys: String::new(),
                item: item.clone(),
            };
            let r = store.apply_change(&change, true);
            assert!(
                matches!(r, Err(ApplyError::UnknownSubCommand { category: c, .. }) if c == category),
                "{text:?}: {r:?}"
            );
        }
        assert!(store == before, "{text:?} changed the store");
        assert_refused_unchanged("", text);
    }
    // What the grammar has still crosses, `undo` forms and deeper lines
    // included; an opaque block keeps any sub-command that may cross.
    let mut store = receiver();
    for text in [
        "security-policy\n rule name new-rule\n  undo description\n  action permit",
        "ip address-set fresh type object\n description x\n address 0 10.2.2.2 mask 32",
        "snmp-agent\n community read ops\n  acl 2000",
    ] {
        let item = ConfigItem::parse(text).unwrap();
        assert_eq!(
            store.apply_batch_item("", item, true, 1),
            BatchOutcome::Added,
            "{text:?}"
        );
    }
}

const CONTROL: &[&str] = &[
    "\u{1b}[2J",
    "\u{1b}]0;x\u{7}",
    "\0",
    "\r",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "\u{2029}",
    "\u{202e}",
    "\u{200b}",
    "\u{feff}",
    "\u{9b}",
];

#[test]
fn control_characters_are_refused_from_the_peer() {
    for c in CONTROL {
        for text in [
            format!("security-policy\n rule name a{c}b\n  action permit"),
            format!("security-policy\n rule name ab\n  description x{c}y"),
            format!("ip address-set s{c} type object"),
            format!("info-center loghost 10.0.0.1{c}x"),
            format!("{c}info-center enable"),
            format!("vsys name v{c}w"),
        ] {
            let r = ConfigItem::parse(&text);
            assert!(
                matches!(r, Err(ParseError::ForbiddenChar { .. })),
                "{text:?}: {r:?}"
            );
            assert_refused_unchanged("", &text);
        }
    }
}

#[test]
fn control_characters_are_refused_typed_and_in_files() {
    for c in CONTROL {
        let mut store = receiver();
        let before = store.clone();
        for line in [
            format!("security-policy rule name a{c}b action permit"),
            format!("info-center loghost 10.0.0.1 {c}"),
            format!("sysname FW{c}"),
        ] {
            let r = store.execute(None, &line);
            assert!(
                matches!(
                    r,
                    Err(CommandError::Syntax(ParseError::ForbiddenChar { .. }))
                ),
                "{line:?}: {r:?}"
            );
        }
        assert!(store == before);
        let file = format!("#\n sysname FW\n#\nsecurity-policy\n rule name x{c}y\n");
        let r = ConfigStore::parse(&file);
        assert!(
            matches!(r, Err(ParseError::ForbiddenChar { line: 5, .. })),
            "{file:?}: {r:?}"
        );
    }
    // A CRLF file, a leading byte-order mark and tabs between words load.
    let s = ConfigStore::parse("\u{feff}#\r\n sysname FW\r\n#\r\ninfo-center\tenable\r\n").unwrap();
    assert_eq!(
        s.render(),
        ConfigStore::parse("#\n sysname FW\n#\ninfo-center enable\n")
            .unwrap()
            .render()
    );
}

#[test]
fn the_error_text_of_a_peer_vsys_is_escaped_and_short() {
    let mut store = receiver();
    let vsys = format!("\u{1b}[31m{}", "v".repeat(200_000));
    let item = ConfigItem::parse("ip address-set s type object").unwrap();
    let BatchOutcome::Rejected(reason) = store.apply_batch_item(&vsys, item.clone(), true, 1)
    else {
        panic!("accepted an item for a vsys that does not exist");
    };
    let shown = reason.to_string();
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    assert!(shown.len() < 400, "{} bytes", shown.len());
    let change = ConfigChange {
        op: ChangeOp::Add,
        vsys,
        item,
    };
    let shown = store.apply_change(&change, true).unwrap_err().to_string();
    assert!(!shown.contains('\u{1b}') && shown.len() < 400, "{shown:?}");
    assert_eq!(printable("\u{1b}[2J"), "\\u{1b}[2J");
}

#[test]
fn oversized_names_and_lines_are_refused_from_the_peer() {
    let long = |n: usize| "n".repeat(n);
    let cases = [
        format!("vsys name {}", long(200_000)),
        format!("ip address-set {} type object", long(1 << 20)),
        format!("info-center {}", long(3_900_000)),
        format!(
            "security-policy\n rule name {}\n  action permit",
            long(MAX_NAME_CHARS + 1)
        ),
        format!("ip service-set {} type object", long(MAX_NAME_CHARS + 1)),
        format!(
            "security-policy\n rule name ok\n  description {}",
            long(MAX_LINE_BYTES)
        ),
        format!("info-center {}", long(MAX_LINE_BYTES - "info-center".len())),
    ];
    for text in &cases {
        let r = ConfigItem::parse(text);
        assert!(r.is_err(), "accepted {} bytes", text.len());
        assert_refused_unchanged("", text);
    }
    // At the limits: accepted.
    let at_limit = [
        format!(
            "security-policy\n rule name {}\n  action permit",
            "é".repeat(MAX_NAME_CHARS)
        ),
        format!(
            "info-center {}",
            long(MAX_LINE_BYTES - "info-center ".len())
        ),
    ];
    for text in &at_limit {
        let mut store = receiver();
        let item = ConfigItem::parse(text).unwrap();
        assert_eq!(
            store.apply_batch_item("", item, true, 1),
            BatchOutcome::Added
        );
    }
}

#[test]
fn oversized_names_and_lines_are_refused_typed() {
    let mut store = receiver();
    let before = store.clone();
    for line in [
        format!("vsys name {}", "v".repeat(200_000)),
        format!(
            "ip address-set {} type object",
            "a".repeat(MAX_NAME_CHARS + 1)
        ),
        format!(
            "security-policy rule name {} action permit",
            "r".repeat(70_000)
        ),
        format!(
            "security-policy rule name r description {}",
            "d".repeat(MAX_LINE_BYTES)
        ),
        format!("info-center {}", "x".repeat(MAX_COMMAND_BYTES)),
        format!("sysname {}", "h".repeat(MAX_NAME_CHARS + 1)),
        // Stored as `undo <line>`: five bytes more than typed.
        format!("undo {}", "x".repeat(MAX_LINE_BYTES - 2)),
    ] {
        assert!(
            store.execute(None, &line).is_err(),
            "accepted {} bytes",
            line.len()
        );
    }
    assert!(store == before);
    store
        .execute(
            None,
            &format!("ip address-set {} type object", "a".repeat(MAX_NAME_CHARS)),
        )
        .unwrap();
}
