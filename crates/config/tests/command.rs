//! One-line commands (`ConfigStore::execute`).

use hotsync_config::{
    Category, ChangeOp, CommandError, ConfigItem, ConfigStore, Container, Identity, ParseError,
};

fn rule_id(name: &str) -> Identity {
    Identity {
        category: Category::SecurityRule,
        container: Some(Container::SecurityPolicy),
        key: name.to_owned(),
    }
}

#[test]
fn flattened_security_rule() {
    let mut s = ConfigStore::new();
    let c = s
        .execute(
            None,
            "security-policy rule name web source-zone trust destination-zone untrust \
             destination-address 10.0.0.0 8 service http service https action permit",
        )
        .unwrap();
    assert_eq!(c.op, ChangeOp::Add);
    assert_eq!(c.vsys, "");
    assert!(c.is_syncable(false));
    assert_eq!(
        c.item.render(),
        "security-policy\n rule name web\n  source-zone trust\n  destination-zone untrust\n  \
         destination-address 10.0.0.0 8\n  service http\n  service https\n  action permit\n"
    );
    // Same identity, other parameters: replaced whole.
    let c = s
        .execute(None, "security-policy rule name web action deny")
        .unwrap();
    assert_eq!(c.op, ChangeOp::Modify);
    assert_eq!(s.get("", &rule_id("web")).unwrap().body().len(), 1);
    // Rules keep their order; new ones go to the end of the section.
    s.execute(
        None,
        "ip address-set a type object address 10.0.0.1 mask 32",
    )
    .unwrap();
    s.execute(None, "security-policy rule name second action permit")
        .unwrap();
    s.execute(None, "security-policy rule name web action permit")
        .unwrap();
    let rules: Vec<&str> = s
        .items("")
        .unwrap()
        .filter(|i| i.category() == Category::SecurityRule)
        .map(ConfigItem::key)
        .collect();
    assert_eq!(rules, ["web", "second"]);
    let text = s.render();
    assert_eq!(text.matches("security-policy").count(), 1, "{text}");
    // Delete.
    let c = s
        .execute(None, "undo security-policy rule name web")
        .unwrap();
    assert_eq!(c.op, ChangeOp::Delete);
    assert_eq!(c.item.key(), "web");
    assert!(s.get("", &rule_id("web")).is_none());
    assert!(matches!(
        s.execute(None, "undo security-policy rule name web"),
        Err(CommandError::NotFound { .. })
    ));
    assert_eq!(ConfigStore::parse(&s.render()).unwrap(), s);
}

#[test]
fn other_block_commands() {
    let mut s = ConfigStore::new();
    let c = s
        .execute(None, "nat-policy rule name n1 source-zone trust egress-interface GigabitEthernet1/0/1 action source-nat easy-ip")
        .unwrap();
    assert_eq!(c.item.category(), Category::NatRule);
    assert_eq!(
        c.item.body().last().unwrap().text(),
        "action source-nat easy-ip"
    );
    let c = s
        .execute(
            None,
            "ip address-set web type object address 10.1.1.0 mask 24 address 10.1.2.0 mask 24",
        )
        .unwrap();
    assert_eq!(
        c.item.render(),
        "ip address-set web type object\n address 10.1.1.0 mask 24\n address 10.1.2.0 mask 24\n"
    );
    let c = s
        .execute(
            None,
            "ip service-set web-ports type object service protocol tcp destination-port 8080",
        )
        .unwrap();
    assert_eq!(c.item.category(), Category::ServiceSet);
    let c = s
        .execute(
            None,
            "interface GigabitEthernet1/0/1 undo shutdown ip address 10.0.0.1 24",
        )
        .unwrap();
    assert_eq!(c.item.body()[0].text(), "undo shutdown");
    assert!(!c.is_syncable(true));
    let c = s
        .execute(
            None,
            "firewall zone name dmz2 id 5 set priority 60 add interface GigabitEthernet1/0/3",
        )
        .unwrap();
    assert_eq!(c.item.key(), "dmz2");
    assert_eq!(c.item.body().len(), 2);
    let c = s
        .execute(None, "security-policy default action permit")
        .unwrap();
    assert_eq!(c.item.category(), Category::Opaque);
    assert_eq!(c.item.container(), Some(Container::SecurityPolicy));
    let e = s
        .execute(None, "ip address-set web type object adress 1.1.1.1")
        .unwrap_err();
    assert_eq!(
        e,
        CommandError::Syntax(ParseError::Expected {
            line: 1,
            column: 32,
            expected: "a sub-command keyword",
            found: "`adress`".into()
        })
    );
    assert_eq!(ConfigStore::parse(&s.render()).unwrap(), s);
}

#[test]
fn static_routes_and_undo() {
    let mut s = ConfigStore::new();
    let c = s
        .execute(None, "ip route-static 10.0.0.0 255.0.0.0 192.168.1.1")
        .unwrap();
    assert_eq!(c.op, ChangeOp::Add);
    assert!(!c.is_syncable(false));
    assert!(c.is_syncable(true));
    // Same route, length mask: same identity, same parameters.
    let c = s
        .execute(None, "ip route-static 10.0.0.0 8 192.168.1.1")
        .unwrap();
    assert_eq!(c.op, ChangeOp::Modify);
    let c = s
        .execute(None, "ip route-static 10.0.0.0 8 192.168.1.1 preference 80")
        .unwrap();
    assert_eq!(c.op, ChangeOp::Modify);
    // Another next hop is another route.
    let c = s
        .execute(None, "ip route-static 10.0.0.0 8 192.168.1.2")
        .unwrap();
    assert_eq!(c.op, ChangeOp::Add);
    let c = s
        .execute(None, "undo ip route-static 10.0.0.0 255.0.0.0 192.168.1.1")
        .unwrap();
    assert_eq!(c.op, ChangeOp::Delete);
    assert!(c.item.header().ends_with("preference 80"));
    assert_eq!(s.len(), 1);
    let e = s
        .execute(None, "ip route-static 10.0.0.0 33 1.1.1.1")
        .unwrap_err();
    assert!(
        matches!(
            e,
            CommandError::Syntax(ParseError::Expected { column: 26, .. })
        ),
        "{e}"
    );
}

#[test]
fn hrp_commands_are_node_local() {
    let mut s = ConfigStore::new();
    assert!(!s.static_route_sync());
    let c = s
        .execute(None, "hrp auto-sync config static-route")
        .unwrap();
    assert_eq!(c.item.category(), Category::Hrp);
    assert!(!c.is_syncable(true));
    assert!(s.static_route_sync());
    assert!(s.clone().apply_change(&c, true).is_err());
    let c = s
        .execute(None, "undo hrp auto-sync config static-route")
        .unwrap();
    assert_eq!(c.op, ChangeOp::Delete);
    assert!(!s.static_route_sync());
    s.execute(None, "hrp priority 150").unwrap();
    assert_eq!(
        s.execute(None, "hrp priority 160").unwrap().op,
        ChangeOp::Modify
    );
    assert_eq!(
        s.execute(None, "undo hrp priority").unwrap().op,
        ChangeOp::Delete
    );
    assert!(matches!(
        s.execute(None, "hrp sync config"),
        Err(CommandError::NotAConfigCommand { .. })
    ));
    assert!(matches!(
        s.execute(None, "hrp priority x"),
        Err(CommandError::Syntax(ParseError::Expected {
            column: 14,
            ..
        }))
    ));
}

#[test]
fn vsys_commands() {
    let mut s = ConfigStore::new();
    assert!(matches!(
        s.execute(Some("v1"), "ip address-set a type object"),
        Err(CommandError::UnknownVsys { .. })
    ));
    let c = s
        .execute(
            None,
            "vsys name v1 id 1 assign interface GigabitEthernet1/0/3",
        )
        .unwrap();
    assert_eq!(c.item.category(), Category::Vsys);
    assert!(s.has_vsys("v1"));
    let c = s
        .execute(Some("v1"), "security-policy rule name r action permit")
        .unwrap();
    assert_eq!(c.vsys, "v1");
    assert!(matches!(
        s.execute(Some("v1"), "hrp enable"),
        Err(CommandError::RootOnly { .. })
    ));
    assert!(matches!(
        s.execute(Some("v1"), "vsys name v2"),
        Err(CommandError::RootOnly { .. })
    ));
    assert_eq!(ConfigStore::parse(&s.render()).unwrap(), s);
    // Deleting the declaration deletes the vsys.
    s.execute(None, "undo vsys name v1").unwrap();
    assert!(!s.has_vsys("v1"));
    assert!(s.is_empty());
}

#[test]
fn opaque_and_refusals() {
    let mut s = ConfigStore::new();
    let c = s.execute(None, "info-center enable").unwrap();
    assert_eq!(c.item.category(), Category::Opaque);
    assert_eq!(
        s.execute(None, "undo info-center enable").unwrap().op,
        ChangeOp::Delete
    );
    // `undo X` of an absent opaque X is itself a command.
    let c = s.execute(None, "undo ftp server enable").unwrap();
    assert_eq!(
        (c.op, c.item.header()),
        (ChangeOp::Add, "undo ftp server enable")
    );
    for line in [
        "",
        "   ",
        "return",
        "quit",
        "switch vsys a",
        "display current-configuration",
        "#",
        "!x",
    ] {
        assert!(s.execute(None, line).is_err(), "{line:?}");
    }
    assert_eq!(s.execute(None, "").unwrap_err(), CommandError::Empty);
    assert!(matches!(
        s.execute(None, "security-policy"),
        Err(CommandError::Syntax(_))
    ));
    assert!(matches!(
        s.execute(None, "undo"),
        Err(CommandError::Syntax(_))
    ));
    assert!(matches!(
        s.execute(None, "undo sysname"),
        Err(CommandError::NotFound { .. })
    ));
    s.execute(None, "sysname FW-B").unwrap();
    assert_eq!(
        s.execute(None, "undo sysname").unwrap().op,
        ChangeOp::Delete
    );
    // User database and SSL VPN: local only.
    let c = s
        .execute(
            None,
            "user-manage user dave parent-group /default password x",
        )
        .unwrap();
    assert_eq!(c.item.body().len(), 2);
    assert!(!c.is_syncable(true));
    let c = s.execute(None, "sslvpn session-timeout 20").unwrap();
    assert!(!c.is_syncable(true));
    assert_eq!(ConfigStore::parse(&s.render()).unwrap(), s);
}
