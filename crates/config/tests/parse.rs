//! Parser: a realistic multi-vsys configuration, error positions, round trip.

use hotsync_config::{
    Category, ConfigItem, ConfigStore, Container, HrpSettings, Identity, ParseError, SettingsError,
};
use std::time::Duration;

const MULTI_VSYS: &str = include_str!("data/multi_vsys.cfg");

fn store() -> ConfigStore {
    ConfigStore::parse(MULTI_VSYS).expect("test configuration parses")
}

fn count(store: &ConfigStore, vsys: &str, category: Category) -> usize {
    store
        .items(vsys)
        .expect("vsys exists")
        .filter(|i| i.category() == category)
        .count()
}

fn id(category: Category, container: Option<Container>, key: &str) -> Identity {
    Identity {
        category,
        container,
        key: key.to_owned(),
    }
}

#[test]
fn realistic_configuration_categories() {
    let s = store();
    assert_eq!(s.vsys_names().collect::<Vec<_>>(), ["vsysa", "vsysb"]);
    assert_eq!(count(&s, "", Category::Sysname), 1);
    assert_eq!(count(&s, "", Category::Hrp), 13);
    assert_eq!(count(&s, "", Category::Vsys), 2);
    assert_eq!(count(&s, "", Category::Interface), 4);
    assert_eq!(count(&s, "", Category::Zone), 4);
    assert_eq!(count(&s, "", Category::AddressSet), 3);
    assert_eq!(count(&s, "", Category::ServiceSet), 1);
    assert_eq!(count(&s, "", Category::StaticRoute), 3);
    assert_eq!(count(&s, "", Category::UserDatabase), 3);
    assert_eq!(count(&s, "", Category::SslVpn), 3);
    assert_eq!(count(&s, "", Category::SecurityRule), 3);
    assert_eq!(count(&s, "", Category::NatRule), 2);
    // ftp server disable, vsys enable, 2 x info-center, aaa, snmp-agent,
    // and `default action deny` inside security-policy.
    assert_eq!(count(&s, "", Category::Opaque), 7);
    assert_eq!(count(&s, "vsysa", Category::SecurityRule), 2);
    assert_eq!(count(&s, "vsysa", Category::NatRule), 1);
    assert_eq!(count(&s, "vsysa", Category::StaticRoute), 1);
    assert_eq!(count(&s, "vsysb", Category::ServiceSet), 1);
    assert_eq!(count(&s, "vsysb", Category::UserDatabase), 1);
    assert!(s.items("nope").is_none());
}

#[test]
fn rule_order_and_bodies_preserved() {
    let s = store();
    let rules: Vec<&str> = s
        .items("")
        .unwrap()
        .filter(|i| i.category() == Category::SecurityRule)
        .map(ConfigItem::key)
        .collect();
    assert_eq!(rules, ["allow-web", "office-out", "deny-telnet"]);
    let web = s
        .get(
            "",
            &id(
                Category::SecurityRule,
                Some(Container::SecurityPolicy),
                "allow-web",
            ),
        )
        .unwrap();
    let body: Vec<&str> = web.body().iter().map(|l| l.text()).collect();
    assert_eq!(
        body,
        [
            "source-zone untrust",
            "destination-zone trust",
            "destination-address address-set web-servers",
            "service http",
            "service https",
            "action permit"
        ]
    );
    assert_eq!(web.line(), Some(116));
    assert_eq!(
        web.render(),
        "security-policy\n rule name allow-web\n  source-zone untrust\n  destination-zone trust\n  \
         destination-address address-set web-servers\n  service http\n  service https\n  action permit\n"
    );
    let aaa = s.get("", &id(Category::Opaque, None, "aaa")).unwrap();
    assert_eq!(aaa.body().len(), 6);
    assert_eq!(aaa.body()[3].depth(), 2);
    let default_action = s
        .get(
            "",
            &id(
                Category::Opaque,
                Some(Container::SecurityPolicy),
                "default action deny",
            ),
        )
        .unwrap();
    assert!(default_action.body().is_empty());
}

#[test]
fn identities() {
    let s = store();
    // Static routes: prefix/len and next hop; the mask is canonical (dotted).
    let r = s
        .get(
            "",
            &id(
                Category::StaticRoute,
                None,
                "10.60.0.0/16 GigabitEthernet1/0/2 10.1.1.253",
            ),
        )
        .unwrap();
    assert_eq!(
        r.header(),
        "ip route-static 10.60.0.0 255.255.0.0 GigabitEthernet1/0/2 10.1.1.253"
    );
    let r = s
        .get(
            "",
            &id(Category::StaticRoute, None, "10.50.0.0/16 10.1.1.254"),
        )
        .unwrap();
    assert!(
        r.header()
            .ends_with("preference 70 description branch-office")
    );
    assert!(
        s.get(
            "vsysa",
            &id(Category::StaticRoute, None, "0.0.0.0/0 172.16.0.1")
        )
        .is_some()
    );
    assert!(s.get("", &id(Category::Zone, None, "heartbeat")).is_some());
    assert!(s.get("", &id(Category::Zone, None, "trust")).is_some());
    assert!(
        s.get("", &id(Category::Interface, None, "GigabitEthernet1/0/7"))
            .is_some()
    );
    assert!(
        s.get("", &id(Category::AddressSet, None, "all-internal"))
            .is_some()
    );
    assert!(s.get("", &id(Category::Vsys, None, "vsysb")).is_some());
    assert!(
        s.get("", &id(Category::UserDatabase, None, "user alice"))
            .is_some()
    );
    assert!(
        s.get(
            "",
            &id(Category::UserDatabase, None, "group /default/staff")
        )
        .is_some()
    );
    assert!(s.get("", &id(Category::Hrp, None, "priority")).is_some());
    assert!(
        s.get(
            "",
            &id(Category::Hrp, None, "auto-sync config static-route")
        )
        .is_some()
    );
    assert!(
        s.get("", &id(Category::Hrp, None, "mirror session enable"))
            .is_some()
    );
    assert!(s.get("", &id(Category::Sysname, None, "")).is_some());
    assert!(s.static_route_sync());
}

#[test]
fn hrp_settings() {
    let h = HrpSettings::from_store(&store()).unwrap();
    assert!(h.enabled);
    assert_eq!(h.node_id, Some(1));
    let local = h.local.unwrap();
    assert_eq!(local.session_addr().to_string(), "10.10.0.1:18514");
    assert_eq!(local.config_addr().to_string(), "10.10.0.1:18515");
    assert_eq!(h.remote.unwrap().port, 18514);
    assert_eq!(h.priority, 120);
    assert_eq!(h.preempt, Some(Duration::from_secs(30)));
    assert_eq!(h.hello_interval, Duration::from_millis(500));
    assert_eq!(h.dead_count, 4);
    assert_eq!(h.dead_interval(), Duration::from_millis(2000));
    assert_eq!(h.authentication_key.as_deref(), Some("s3cret-Key"));
    assert!(!format!("{h:?}").contains("s3cret"));
    assert_eq!(
        h.admin_socket.as_deref(),
        Some(std::path::Path::new("/run/hotsync/admin.sock"))
    );
    assert!(h.auto_sync_static_route);
    assert!(!h.auto_sync_on_establish);
    assert!(h.standby_config_enable);

    let d = HrpSettings::from_store(&ConfigStore::new()).unwrap();
    assert_eq!(d, HrpSettings::default());
    assert_eq!(d.priority, 100);
    assert_eq!(d.hello_interval, Duration::from_millis(1000));
    assert_eq!(d.dead_count, 3);
    assert_eq!(d.preempt, None);
    assert!(!d.auto_sync_static_route && !d.enabled);

    let p = ConfigStore::parse("hrp preempt\nhrp auto-sync on-establish\n").unwrap();
    let p = HrpSettings::from_store(&p).unwrap();
    assert_eq!(p.preempt, Some(Duration::from_secs(60)));
    assert!(p.auto_sync_on_establish);
}

#[test]
fn hrp_settings_errors_carry_lines() {
    // Parse validates hrp values already, with the exact column.
    let e = ConfigStore::parse("#\n hrp enable\n hrp priority high\n").unwrap_err();
    assert_eq!((e.line(), e.column()), (3, 15));
    assert!(
        matches!(
            e,
            ParseError::Expected {
                expected: "a priority 0-65535",
                ..
            }
        ),
        "{e}"
    );
    let e = ConfigStore::parse("hrp local-address 10.0.0.1 port 65535\n").unwrap_err();
    assert_eq!((e.line(), e.column()), (1, 33));
    let e = ConfigStore::parse("hrp timer hello 5\n").unwrap_err();
    assert_eq!((e.line(), e.column()), (1, 17));
    let e = ConfigStore::parse("hrp local-address 10.0.0.1 18514\n").unwrap_err();
    assert!(
        matches!(
            e,
            ParseError::Expected {
                expected: "port",
                column: 28,
                ..
            }
        ),
        "{e}"
    );
    // A store built at run time reports line 0 (no file) — but invalid hrp
    // commands are refused by `execute` already.
    let mut s = ConfigStore::new();
    assert!(s.execute(None, "hrp dead-count 0").is_err());
    s.execute(None, "hrp dead-count 9").unwrap();
    let h: Result<HrpSettings, SettingsError> = HrpSettings::from_store(&s);
    assert_eq!(h.unwrap().dead_count, 9);
}

#[test]
fn round_trip_realistic() {
    let s = store();
    let text = s.render();
    let back = ConfigStore::parse(&text).unwrap();
    assert_eq!(s, back);
    assert_eq!(back.render(), text, "rendering is a fixed point");
    assert!(text.ends_with("#\nreturn\n"));
    assert!(text.contains("#\nswitch vsys vsysb\n"));
    // Each item alone.
    for (_, item) in s.all_items() {
        let one = ConfigItem::parse(&item.render()).unwrap();
        assert_eq!(&one, item);
    }
    // One vsys alone parses back (as a root system) to the same items.
    let a = ConfigStore::parse(&s.render_vsys("vsysa").unwrap()).unwrap();
    assert!(a.items("").unwrap().eq(s.items("vsysa").unwrap()));
    assert!(s.render_vsys("nope").is_none());
}

#[test]
fn vrp_layout_details() {
    // Comments, CRLF, blank lines, extra blanks, merged repeated blocks,
    // `quit` back to the root, `return` optional.
    let text = "!comment\r\n#\r\n sysname  A\r\n\r\ninterface GigabitEthernet1/0/1\r\n ip address 10.0.0.1 24\r\n#\n\
                interface GigabitEthernet1/0/1\n description up  link\n#\nvsys name v id 3\n#\nswitch vsys v\n\
                ip address-set x type object\n quit-not\nquit\n ftp server enable\n";
    let s = ConfigStore::parse(text).unwrap();
    let i = s
        .get("", &id(Category::Interface, None, "GigabitEthernet1/0/1"))
        .unwrap();
    let body: Vec<&str> = i.body().iter().map(|l| l.text()).collect();
    assert_eq!(body, ["ip address 10.0.0.1 24", "description up link"]);
    assert_eq!(
        s.get("", &id(Category::Sysname, None, ""))
            .unwrap()
            .header(),
        "sysname A"
    );
    assert_eq!(count(&s, "v", Category::AddressSet), 1);
    assert!(
        s.get("", &id(Category::Opaque, None, "ftp server enable"))
            .is_some()
    );
    assert_eq!(ConfigStore::parse(&s.render()).unwrap(), s);
}

fn err(text: &str) -> ParseError {
    ConfigStore::parse(text).unwrap_err()
}

#[test]
fn error_positions() {
    // Too deep.
    let e = err("aaa\n authentication-scheme default\n   level 15\n");
    assert_eq!(
        e,
        ParseError::TooDeep {
            line: 3,
            column: 4,
            found: 3,
            max: 2
        }
    );
    // Tab in indentation.
    let e = err("aaa\n\tlevel 15\n");
    assert!(
        matches!(
            e,
            ParseError::BadIndentation {
                line: 2,
                column: 1,
                ..
            }
        ),
        "{e}"
    );
    // Sub-command with no parent.
    let e = err("#\n  action permit\n");
    assert_eq!(e, ParseError::Orphan { line: 2, column: 3 });
    // Bad static route: mask.
    let e = err("#\nip route-static 10.0.0.0 255.0.255.0 1.1.1.1\n");
    assert_eq!((e.line(), e.column()), (2, 26));
    assert!(e.to_string().contains("expected a mask"), "{e}");
    // Bad next hop address.
    let e = err("ip route-static 10.0.0.0 8 300.1.1.1\n");
    assert_eq!((e.line(), e.column()), (1, 28));
    // Missing next hop.
    let e = err("ip route-static 10.0.0.0 8 preference 5\n");
    assert!(
        matches!(
            e,
            ParseError::Expected {
                line: 1,
                column: 28,
                expected: "a next hop (address or interface)",
                ..
            }
        ),
        "{e}"
    );
    // Rule without a name: column of the end of line.
    let e = err("security-policy\n rule name\n  action permit\n");
    assert!(
        matches!(&e, ParseError::Expected { line: 2, column: 11, expected: "a rule name", found } if found == "end of line"),
        "{e}"
    );
    // Address set with a bad type.
    let e = err("ip address-set web type objet\n");
    assert!(
        matches!(&e, ParseError::Expected { line: 1, column: 25, found, .. } if found == "`objet`"),
        "{e}"
    );
    // Unknown vsys.
    let e = err("vsys name a\n#\nswitch vsys b\n");
    assert_eq!(
        e,
        ParseError::UnknownVsys {
            line: 3,
            column: 13,
            name: "b".into()
        }
    );
    // switch vsys without a name.
    let e = err("switch vsys\n");
    assert_eq!((e.line(), e.column()), (1, 12));
    // Root-only commands inside a vsys.
    let e = err("vsys name a\nswitch vsys a\nhrp enable\n");
    assert!(matches!(e, ParseError::RootOnly { line: 3, .. }), "{e}");
    // The same identity with other parameters.
    let e = err(
        "ip route-static 10.0.0.0 8 1.1.1.1\nip route-static 10.0.0.0 8 1.1.1.1 preference 9\n",
    );
    assert!(
        matches!(
            e,
            ParseError::Duplicate {
                line: 2,
                first_line: 1,
                ..
            }
        ),
        "{e}"
    );
    // Garbage after return.
    let e = err("return now\n");
    assert_eq!((e.line(), e.column()), (1, 8));
    // Columns count characters, not bytes.
    let e = err("ip address-set é type x\n");
    assert_eq!(e.column(), 23);
}

#[test]
fn single_item_parse_errors() {
    assert!(matches!(
        ConfigItem::parse(""),
        Err(ParseError::NotOneItem { found: 0, .. })
    ));
    assert!(matches!(
        ConfigItem::parse("security-policy\n"),
        Err(ParseError::NotOneItem { found: 0, .. })
    ));
    assert!(matches!(
        ConfigItem::parse("sysname a\nsysname b\n"),
        Err(ParseError::NotOneItem {
            line: 2,
            found: 2,
            ..
        })
    ));
    assert!(matches!(
        ConfigItem::parse("return\n"),
        Err(ParseError::UnexpectedControl { line: 1, .. })
    ));
    let item =
        ConfigItem::parse("#\nnat-policy\n rule name n\n  action source-nat easy-ip\n").unwrap();
    assert_eq!(item.category(), Category::NatRule);
    assert_eq!(item.container(), Some(Container::NatPolicy));
}

#[test]
fn never_panics_on_odd_text() {
    for text in [
        "",
        "\n\n",
        "#",
        "return",
        " x",
        "\u{2028}",
        "a\u{85}b",
        "security-policy\n\u{a0}x",
        "vsys name\n",
        "vsys name a id\n",
        "vsys name a 99999999999\n",
        "ipv6 route-static ::1 129 ::2\n",
        "ipv6 route-static 2001:DB8::1 32 fe80::1\n",
        "firewall zone name\n",
        "interface\n",
        "sysname\n",
        "hrp\n",
        "switch vsys a b\n",
        "ip route-static vpn-instance\n",
    ] {
        if let Ok(s) = ConfigStore::parse(text) {
            assert_eq!(ConfigStore::parse(&s.render()).unwrap(), s, "{text:?}");
        }
        let _ = ConfigItem::parse(text);
        hotsync_config::fuzzing::parse(text.as_bytes());
    }
    let v6 = ConfigStore::parse("ipv6 route-static 2001:DB8::1 32 FE80::1\n").unwrap();
    let r = v6.items("").unwrap().next().unwrap();
    assert_eq!(r.header(), "ipv6 route-static 2001:db8:: 32 fe80::1");
    assert_eq!(r.key(), "ipv6 2001:db8::/32 fe80::1");
}

mod fuzz_like {
    use proptest::prelude::*;

    const WORDS: &[&str] = &[
        "security-policy",
        "nat-policy",
        "rule",
        "name",
        "r1",
        "action",
        "permit",
        "undo",
        "#",
        "return",
        "quit",
        "switch",
        "vsys",
        "v1",
        "ip",
        "route-static",
        "10.0.0.0",
        "8",
        "255.0.0.0",
        "1.1.1.1",
        "address-set",
        "service-set",
        "type",
        "object",
        "group",
        "address",
        "hrp",
        "priority",
        "enable",
        "timer",
        "hello",
        "1000",
        "sysname",
        "interface",
        "GigabitEthernet1/0/1",
        "firewall",
        "zone",
        "trust",
        "user-manage",
        "user",
        "v-gateway",
        "sslvpn",
        "!x",
        "id",
        "1",
        "description",
        "preference",
        "auto-sync",
        "config",
        "static-route",
        "ipv6",
        "::",
        "é",
        "source-zone",
        "\t",
        "vpn-instance",
    ];

    fn line() -> impl Strategy<Value = String> {
        (
            0..4usize,
            prop::collection::vec(prop::sample::select(WORDS), 0..7),
        )
            .prop_map(|(indent, words)| format!("{}{}", " ".repeat(indent), words.join(" ")))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// The fuzz entry point on grammar-shaped noise: never panics, round
        /// trip holds whenever it parses.
        #[test]
        fn noise(lines in prop::collection::vec(line(), 0..40)) {
            hotsync_config::fuzzing::parse(lines.join("\n").as_bytes());
        }

        #[test]
        fn bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
            hotsync_config::fuzzing::parse(&data);
        }
    }
}

#[test]
fn hrp_data_plane_conntrack() {
    let text = "#\n hrp data-plane conntrack mode commit netns fw-a\n hrp data-plane conntrack ignore address 10.0.0.1\n hrp data-plane conntrack ignore address fd00::1\n hrp data-plane conntrack ignore protocol 17\n hrp data-plane conntrack ignore state syn_sent\n#\nreturn\n";
    let h = HrpSettings::from_store(&ConfigStore::parse(text).unwrap()).unwrap();
    let ct = h.conntrack.expect("data plane configured");
    assert!(!ct.mirror);
    assert_eq!(ct.netns.as_deref(), Some("fw-a"));
    assert_eq!(
        ct.ignore_addresses,
        vec![
            "10.0.0.1".parse::<std::net::IpAddr>().unwrap(),
            "fd00::1".parse().unwrap()
        ]
    );
    assert_eq!(ct.ignore_protocols, vec![17]);
    assert_eq!(ct.ignore_tcp_states, vec![1]);
    let mirror = "#\n hrp data-plane conntrack mode mirror\n#\nreturn\n";
    let h = HrpSettings::from_store(&ConfigStore::parse(mirror).unwrap()).unwrap();
    assert!(h.conntrack.unwrap().mirror);
    assert_eq!(HrpSettings::default().conntrack, None);
    for bad in [
        " hrp data-plane conntrack mode fast",
        " hrp data-plane conntrack netns a/b",
        " hrp data-plane conntrack ignore state BOGUS",
        " hrp data-plane conntrack ignore protocol 300",
        " hrp data-plane conntrack ignore port 22",
        " hrp data-plane iptables",
    ] {
        let text = format!("#\n{bad}\n#\nreturn\n");
        let parsed = ConfigStore::parse(&text).map_err(|e| e.to_string());
        let refused = match parsed {
            Err(_) => true,
            Ok(s) => HrpSettings::from_store(&s).is_err(),
        };
        assert!(refused, "{bad} accepted");
    }
}

#[test]
fn hrp_table_shards_is_a_power_of_two_up_to_4096() {
    assert_eq!(HrpSettings::default().table_shards, None);
    let p = ConfigStore::parse("hrp table shards 64\n").unwrap();
    assert_eq!(HrpSettings::from_store(&p).unwrap().table_shards, Some(64));
    for bad in ["3", "0", "8192", "many"] {
        let e = ConfigStore::parse(&format!("hrp table shards {bad}\n")).unwrap_err();
        assert!(
            matches!(
                e,
                ParseError::Expected {
                    expected: "a shard count: a power of two 1-4096",
                    column: 18,
                    ..
                }
            ),
            "{bad}: {e}"
        );
    }
}

/// A character or length error on an indented line points at the column
/// on the line as written, indentation counted, whichever check finds it.
#[test]
fn errors_on_indented_lines_count_the_indentation() {
    let bell = "security-policy\n rule name a\n  action p\u{7}ermit\n";
    let e = ConfigStore::parse(bell).unwrap_err();
    assert!(matches!(e, ParseError::ForbiddenChar { .. }), "{e:?}");
    assert_eq!((e.line(), e.column()), (3, 11));

    let long = format!(
        "security-policy\n rule name a\n  description {}\n",
        "x".repeat(5000)
    );
    let e = ConfigStore::parse(&long).unwrap_err();
    assert!(matches!(e, ParseError::TooLong { .. }), "{e:?}");
    // The 4096 bytes of text a line may hold end at column 2 + 4096 + 1.
    assert_eq!((e.line(), e.column()), (3, 4099));
}

/// Blanks outside ASCII separate words as spaces do (the ASCII fast path
/// of the tokenizer must not change that).
#[test]
fn a_non_ascii_blank_separates_words_like_a_space() {
    let spaced =
        ConfigStore::parse("security-policy\n rule name a\n  source-zone trust\n  action permit\n")
            .unwrap();
    let ideographic = ConfigStore::parse(
        "security-policy\n rule name a\n  source-zone\u{3000}trust\n  action permit\n",
    )
    .unwrap();
    let a: Vec<_> = spaced.items("").unwrap().cloned().collect();
    let b: Vec<_> = ideographic.items("").unwrap().cloned().collect();
    assert_eq!(a, b);
}
