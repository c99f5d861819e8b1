//! Sync rules: batch (B5, B7), incremental (B3), exclusions (B8, B10).

use hotsync_config::{
    ApplyError, BatchOutcome, BatchReport, Category, ChangeOp, ConfigChange, ConfigItem,
    ConfigStore, RejectReason, is_syncable,
};
use proptest::prelude::*;

const MULTI_VSYS: &str = include_str!("data/multi_vsys.cfg");

#[test]
fn syncable_rule() {
    for c in Category::ALL {
        let expected = !matches!(
            c,
            Category::Sysname
                | Category::Interface
                | Category::Zone
                | Category::Hrp
                | Category::UserDatabase
                | Category::SslVpn
                | Category::StaticRoute
        );
        assert_eq!(is_syncable(c, false), expected, "{c}");
        assert_eq!(
            is_syncable(c, true),
            expected || c == Category::StaticRoute,
            "{c}"
        );
    }
}

#[test]
fn batch_to_an_empty_peer() {
    let a = ConfigStore::parse(MULTI_VSYS).unwrap();
    let items = a.syncable_items(false);
    // Declarations first.
    assert_eq!(items[0].1.category(), Category::Vsys);
    assert_eq!(items[1].1.category(), Category::Vsys);
    assert!(items.iter().all(|(_, i)| is_syncable(i.category(), false)));
    let mut b = ConfigStore::new();
    let report = b.apply_batch(items.clone(), false, 1);
    assert_eq!(
        report,
        BatchReport {
            sent: items.len() as u64,
            added: items.len() as u64,
            ..Default::default()
        }
    );
    assert_eq!(b.vsys_names().collect::<Vec<_>>(), ["vsysa", "vsysb"]);
    // Nothing node-local, no users, no SSL VPN, no routes crossed.
    for (_, item) in b.all_items() {
        assert!(is_syncable(item.category(), false), "{item}");
    }
    // A second batch is all equal.
    let again = b.apply_batch(items, false, 2);
    assert_eq!(again.equal, again.sent);
    // With static routes on, the 4 routes cross too.
    let with_routes = b.apply_batch(a.syncable_items(true), true, 3);
    assert_eq!(with_routes.added, 4);
    assert!(b.conflicts().is_empty());
}

#[test]
fn batch_is_additive_and_reports_conflicts() {
    let a = ConfigStore::parse(
        "vsys name v\n#\nip address-set web type object\n address 0 10.0.0.1 mask 32\n#\n\
         security-policy\n rule name r1\n  action permit\n rule name r2\n  action deny\n#\n\
         switch vsys v\n#\nip address-set x type object\n",
    )
    .unwrap();
    let mut b = ConfigStore::parse(
        "ip address-set web type object\n address 0 10.0.0.2 mask 32\n#\n\
         security-policy\n rule name r0\n  action permit\n rule name r2\n  action deny\n#\n\
         ip address-set only-on-b type object\n",
    )
    .unwrap();
    let before = b.clone();
    let report = b.apply_batch(a.syncable_items(false), false, 42);
    assert_eq!(report.conflicts, 1);
    assert_eq!(report.added, 3); // vsys v, r1, v/x
    assert_eq!(report.equal, 1); // r2
    // B's extras are still there, its web set untouched.
    for (vsys, item) in before.all_items() {
        assert_eq!(b.get(vsys, &item.identity()), Some(item));
    }
    let c = b.conflicts()[0].clone();
    assert_eq!(
        (c.vsys.as_str(), c.identity.key.as_str(), c.at),
        ("", "web", 42)
    );
    assert!(c.local.contains("10.0.0.2") && c.remote.contains("10.0.0.1"));
    assert!(c.to_string().contains("conflict in root"));
    // A new rule stands where it stands on A relative to the rules both
    // have: r1 is A's first rule, so it goes before r2 (and to the top).
    let rules: Vec<&str> = b
        .items("")
        .unwrap()
        .filter(|i| i.category() == Category::SecurityRule)
        .map(ConfigItem::key)
        .collect();
    assert_eq!(rules, ["r1", "r0", "r2"]);
    // A repeated batch keeps one conflict per identity.
    b.apply_batch(a.syncable_items(false), false, 43);
    assert_eq!(b.conflicts().len(), 1);
    assert_eq!(b.conflicts()[0].at, 43);
    // An incremental change of that item resolves it.
    let web = a.get("", &c.identity.clone()).unwrap().clone();
    b.apply_change(
        &ConfigChange {
            op: ChangeOp::Modify,
            vsys: String::new(),
            item: web,
        },
        false,
    )
    .unwrap();
    assert!(b.conflicts().is_empty());
    b.clear_conflicts();
}

#[test]
fn defensive_receiver() {
    let mut b = ConfigStore::new();
    for text in [
        "sysname EVIL",
        "hrp priority 65535",
        "interface GigabitEthernet1/0/1\n ip address 1.2.3.4 32",
        "firewall zone trust\n add interface GigabitEthernet1/0/9",
        "user-manage user mallory\n password x",
        "v-gateway sslvpn\n basic",
        "sslvpn session-timeout 1",
    ] {
        let item = ConfigItem::parse(text).unwrap();
        let cat = item.category();
        assert_eq!(
            b.apply_batch_item("", item.clone(), true, 0),
            BatchOutcome::Rejected(RejectReason::NotSyncable(cat))
        );
        let change = ConfigChange {
            op: ChangeOp::Add,
            vsys: String::new(),
            item,
        };
        assert_eq!(
            b.apply_change(&change, true),
            Err(ApplyError::NotSyncable { category: cat })
        );
    }
    let route = ConfigItem::parse("ip route-static 0.0.0.0 0 1.1.1.1").unwrap();
    assert!(matches!(
        b.apply_batch_item("", route.clone(), false, 0),
        BatchOutcome::Rejected(RejectReason::NotSyncable(Category::StaticRoute))
    ));
    assert_eq!(b.apply_batch_item("", route, true, 0), BatchOutcome::Added);
    let rule = ConfigItem::parse("security-policy\n rule name r\n  action permit").unwrap();
    assert_eq!(
        b.apply_batch_item("ghost", rule.clone(), true, 0),
        BatchOutcome::Rejected(RejectReason::UnknownVsys("ghost".into()))
    );
    let decl = ConfigItem::parse("vsys name ghost").unwrap();
    assert!(matches!(
        b.apply_batch_item("other", decl.clone(), true, 0),
        BatchOutcome::Rejected(RejectReason::VsysOutsideRoot(_))
    ));
    assert_eq!(b.apply_batch_item("", decl, true, 0), BatchOutcome::Added);
    assert_eq!(
        b.apply_batch_item("ghost", rule, true, 0),
        BatchOutcome::Added
    );
    assert_eq!(b.len(), 3);
}

#[test]
fn incremental_mirrors_the_active() {
    let mut a = ConfigStore::new();
    let mut b = ConfigStore::new();
    let lines = [
        (None, "vsys name v1"),
        (Some("v1"), "security-policy rule name r1 action permit"),
        (None, "security-policy rule name x action deny"),
        (None, "security-policy rule name x action permit"),
        (None, "ip route-static 10.0.0.0 8 1.1.1.1"),
        (None, "hrp priority 10"),
        (None, "sysname A"),
        (
            Some("v1"),
            "ip address-set s type object address 1.1.1.1 mask 32",
        ),
        (None, "undo security-policy rule name x"),
        (Some("v1"), "undo security-policy rule name r1"),
    ];
    for (vsys, line) in lines {
        let change = a.execute(vsys, line).unwrap();
        // What crosses the wire: op, vsys, text.
        let wire =
            ConfigChange::from_wire(change.op.code(), &change.vsys, &change.item.render()).unwrap();
        assert_eq!(wire, change);
        if change.is_syncable(false) {
            b.apply_change(&wire, false).unwrap();
        } else {
            assert!(b.apply_change(&wire, false).is_err());
        }
    }
    // B equals A's syncable part.
    let want: Vec<(String, ConfigItem)> = a.syncable_items(false);
    let have: Vec<(String, ConfigItem)> = b
        .all_items()
        .map(|(v, i)| (v.to_owned(), i.clone()))
        .collect();
    assert_eq!(want, have);
    // Deleting the vsys declaration deletes the vsys.
    let change = a.execute(None, "undo vsys name v1").unwrap();
    b.apply_change(&change, false).unwrap();
    assert!(!b.has_vsys("v1"));
    assert!(b.is_empty());
    // Deleting what is not there is fine (the wanted state).
    b.apply_change(&change, false).unwrap();
}

// ---------------------------------------------------------------------------
// Property tests on generated configurations.

/// One generated command: (vsys index: 0 root, 1-2 = v1/v2; line).
fn command() -> impl Strategy<Value = (usize, String)> {
    let zone = prop_oneof![Just("trust"), Just("untrust"), Just("dmz")];
    let action = prop_oneof![Just("permit"), Just("deny")];
    let line = prop_oneof![
        (0..12u8, zone.clone(), zone, action.clone()).prop_map(|(n, s, d, a)| format!(
            "security-policy rule name r{n} source-zone {s} destination-zone {d} action {a}"
        )),
        (0..4u8, 0..3u8).prop_map(|(n, g)| format!(
            "nat-policy rule name n{n} source-address 10.{g}.0.0 mask 16 action source-nat easy-ip"
        )),
        (0..6u8, 0..4u8).prop_map(|(n, x)| format!(
            "ip address-set a{n} type object address 10.1.{x}.0 mask 24"
        )),
        (0..4u8, 0..3u8).prop_map(|(n, p)| format!(
            "ip service-set s{n} type object service protocol tcp destination-port {}",
            8000 + u16::from(p)
        )),
        (0..4u8, 1..3u8, prop::option::of(60..62u8)).prop_map(|(n, h, p)| {
            let pref = p.map(|p| format!(" preference {p}")).unwrap_or_default();
            format!("ip route-static 10.{n}.0.0 255.255.0.0 192.168.0.{h}{pref}")
        }),
        (0..3u8).prop_map(|n| format!("info-center loghost 10.0.0.{n}")),
        (0..2u8).prop_map(|n| format!(
            "security-policy default action {}",
            ["permit", "deny"][n as usize]
        )),
        (0..3u8).prop_map(|n| format!("sysname FW{n}")),
        (0..3u8, 0..3u8).prop_map(|(n, x)| format!(
            "interface GigabitEthernet1/0/{n} ip address 10.9.{x}.1 24"
        )),
        (0..3u8).prop_map(|n| format!("firewall zone trust set priority {}", 80 + n)),
        (0..3u8, 0..2u8)
            .prop_map(|(n, g)| format!("user-manage user u{n} parent-group /default/g{g}")),
        (0..3u8).prop_map(|n| format!("sslvpn session-timeout {}", 10 + n)),
        (0..3u8).prop_map(|n| format!("hrp priority {}", 100 + u16::from(n))),
        Just("hrp auto-sync config static-route".to_owned()),
        (0..12u8).prop_map(|n| format!("undo security-policy rule name r{n}")),
    ];
    (0..3usize, line)
}

const VSYS: [&str; 3] = ["", "v1", "v2"];

/// A node built from commands; `vsys_decls` says which of v1/v2 exist.
fn node() -> impl Strategy<Value = ConfigStore> {
    (
        prop::bool::ANY,
        prop::bool::ANY,
        prop::collection::vec(command(), 0..60),
    )
        .prop_map(|(v1, v2, cmds)| {
            let mut s = ConfigStore::new();
            if v1 {
                s.execute(None, "vsys name v1 id 1").unwrap();
            }
            if v2 {
                s.execute(None, "vsys name v2 id 2").unwrap();
            }
            for (v, line) in cmds {
                let vsys = VSYS[v];
                if s.has_vsys(vsys) {
                    let _ = s.execute(Some(vsys), &line);
                }
            }
            s
        })
}

fn snapshot(s: &ConfigStore) -> Vec<(String, ConfigItem)> {
    s.all_items()
        .map(|(v, i)| (v.to_owned(), i.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(a in node()) {
        let text = a.render();
        let back = ConfigStore::parse(&text).unwrap();
        prop_assert_eq!(&back, &a);
        for (_, item) in a.all_items() {
            prop_assert_eq!(&ConfigItem::parse(&item.render()).unwrap(), item);
        }
    }

    #[test]
    fn batch_properties(a in node(), b in node(), static_routes in prop::bool::ANY) {
        let mut b2 = b.clone();
        // The sender offers everything it has; the receiver sorts it out.
        let mut offered: Vec<(String, ConfigItem)> = a.syncable_items(static_routes);
        offered.extend(snapshot(&a));
        let report = b2.apply_batch(offered, static_routes, 7);
        prop_assert_eq!(report.sent, report.received());

        // 1. Never removes or changes anything of B (B5).
        for (vsys, item) in snapshot(&b) {
            prop_assert_eq!(b2.get(&vsys, &item.identity()), Some(&item));
        }
        // 2. Every syncable item of A is on B, equal, or listed as a conflict (B7).
        for (vsys, item) in a.syncable(static_routes) {
            let on_b = b2.get(vsys, &item.identity());
            let conflict = b2.conflicts().iter().any(|c| c.vsys == vsys && c.identity == item.identity());
            prop_assert!(on_b == Some(item) || (on_b.is_some() && conflict), "{vsys}: {item}");
        }
        // 3. Excluded categories never cross; static routes only when enabled.
        for (vsys, item) in snapshot(&b2) {
            if !is_syncable(item.category(), static_routes) {
                prop_assert_eq!(b.get(&vsys, &item.identity()), Some(&item));
            }
        }
        // 4. Nothing of B's node-local, user or SSL VPN data is touched, and
        //    with static routes off B's routes are exactly what they were.
        let routes = |s: &ConfigStore| -> Vec<(String, ConfigItem)> {
            snapshot(s).into_iter().filter(|(_, i)| i.category() == Category::StaticRoute).collect()
        };
        if !static_routes {
            prop_assert_eq!(routes(&b2), routes(&b));
        }
        // 5. A second identical batch adds nothing.
        let again = b2.apply_batch(a.syncable_items(static_routes), static_routes, 8);
        prop_assert_eq!(again.added, 0);
        prop_assert_eq!(ConfigStore::parse(&b2.render()).unwrap(), b2);
    }

    #[test]
    fn incremental_converges(cmds in prop::collection::vec(command(), 0..80), static_routes in prop::bool::ANY) {
        let mut a = ConfigStore::new();
        let mut b = ConfigStore::new();
        a.execute(None, "vsys name v1").unwrap();
        a.execute(None, "vsys name v2").unwrap();
        b.execute(None, "vsys name v1").unwrap();
        b.execute(None, "vsys name v2").unwrap();
        for (v, line) in cmds {
            if let Ok(change) = a.execute(Some(VSYS[v]), &line) {
                let sent = change.is_syncable(static_routes);
                prop_assert_eq!(b.apply_change(&change, static_routes).is_ok(), sent);
            }
        }
        let want = a.syncable_items(static_routes);
        let have: Vec<(String, ConfigItem)> = snapshot(&b);
        prop_assert_eq!(want, have);
    }
}
