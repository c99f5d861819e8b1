//! Rule order across the pair: a synchronized security or NAT rule stands
//! where it stands on the sender (after the same predecessor), and what
//! cannot be placed so, or stands in another order, is reported.

use hotsync_config::{
    Category, ChangeOp, ConfigChange, ConfigItem, ConfigStore, ConflictKind, Placement,
};

fn store(rules: &[&str]) -> ConfigStore {
    let mut text = String::from("security-policy\n");
    for r in rules {
        text.push_str(&format!(" rule name {r}\n  action permit\n"));
    }
    text.push_str("#\nnat-policy\n rule name n1\n  action no-nat\n#\nreturn\n");
    ConfigStore::parse(&text).unwrap()
}

fn rules(s: &ConfigStore) -> Vec<String> {
    s.items("")
        .unwrap()
        .filter(|i| i.category() == Category::SecurityRule)
        .map(|i| i.key().to_owned())
        .collect()
}

/// The batch as it crosses the wire: rendered with placements, parsed back.
fn send_batch(from: &ConfigStore, to: &mut ConfigStore) {
    for (vsys, text) in from.syncable_rendered(false) {
        let (item, placement) = ConfigItem::parse_placed(&text).unwrap();
        to.apply_batch_item_placed(&vsys, item, placement.as_ref(), false, 1);
    }
}

#[test]
fn a_batch_places_rules_after_the_same_predecessor() {
    let a = store(&["r1", "r2", "r3"]);
    let mut b = store(&["r1", "b-only", "r3"]);
    send_batch(&a, &mut b);
    // r2 follows r1 as on the sender, not after r3 at the end.
    assert_eq!(rules(&b), ["r1", "r2", "b-only", "r3"]);
    assert!(b.conflicts().is_empty(), "{:?}", b.conflicts());

    // A rule with nothing before it goes to the top.
    let a = store(&["r0", "r1"]);
    let mut b = store(&["r1"]);
    send_batch(&a, &mut b);
    assert_eq!(rules(&b), ["r0", "r1"]);

    // The in-memory batch API infers the same from the sender's order.
    let mut b = store(&["r1", "b-only", "r3"]);
    b.apply_batch(store(&["r1", "r2", "r3"]).syncable_items(false), false, 1);
    assert_eq!(rules(&b), ["r1", "r2", "b-only", "r3"]);
}

#[test]
fn rules_in_another_order_are_reported_not_moved() {
    let a = store(&["x", "y"]);
    let mut b = store(&["y", "x"]);
    send_batch(&a, &mut b);
    assert_eq!(
        rules(&b),
        ["y", "x"],
        "a batch never moves what exists (B5)"
    );
    let order: Vec<_> = b
        .conflicts()
        .iter()
        .filter(|c| c.kind == ConflictKind::Order)
        .collect();
    assert_eq!(order.len(), 1, "{:?}", b.conflicts());
    assert_eq!(order[0].identity.key, "y");
    let shown = order[0].to_string();
    assert!(shown.contains("order differs"), "{shown}");
    assert!(shown.contains("`y` stands before `x`"), "{shown}");
    assert!(shown.contains("`y` follows `x`"), "{shown}");

    // Once the order agrees, the next batch clears the report.
    b.execute(None, "undo security-policy rule name y").unwrap();
    b.execute(None, "security-policy rule name y action permit")
        .unwrap();
    send_batch(&a, &mut b);
    assert_eq!(rules(&b), ["x", "y"]);
    assert!(b.conflicts().is_empty(), "{:?}", b.conflicts());
}

#[test]
fn incremental_changes_keep_the_senders_order() {
    let mut a = store(&["r1", "r2"]);
    let mut b = store(&["r1", "b-only"]);
    let change = a
        .execute(None, "security-policy rule name r3 action deny")
        .unwrap();
    // r3 lands at the end on the sender, after r2 — which B lacks.
    let text = change
        .item
        .render_placed(a.placement("", &change.item).as_ref());
    assert!(text.ends_with(" rule move r3 after r2\n"), "{text}");
    let (c, p) = ConfigChange::from_wire_placed(change.op.code(), "", &text).unwrap();
    b.apply_change_placed(&c, p.as_ref(), false, 5).unwrap();
    assert_eq!(rules(&b), ["r1", "b-only", "r3"]);
    let conflict = &b.conflicts()[0];
    assert_eq!(conflict.kind, ConflictKind::Order);
    assert!(
        conflict.local.contains("`r2` does not exist here"),
        "{conflict}"
    );

    // Placed after a predecessor both have: right after it.
    let change = ConfigChange {
        op: ChangeOp::Add,
        vsys: String::new(),
        item: ConfigItem::parse("security-policy\n rule name r1b\n  action permit\n").unwrap(),
    };
    let after_r1 = Placement::After("r1".into());
    b.apply_change_placed(&change, Some(&after_r1), false, 6)
        .unwrap();
    assert_eq!(rules(&b), ["r1", "r1b", "b-only", "r3"]);

    // Deleting the rule clears its order report.
    let del = ConfigChange {
        op: ChangeOp::Delete,
        ..c
    };
    b.apply_change_placed(&del, None, false, 7).unwrap();
    assert!(b.conflicts().is_empty(), "{:?}", b.conflicts());
}

#[test]
fn placements_cross_the_wire_and_nothing_else_does() {
    let a = store(&["r1", "r2"]);
    let sent = a.syncable_rendered(false);
    let texts: Vec<&str> = sent.iter().map(|(_, t)| t.as_str()).collect();
    assert!(
        texts.iter().any(|t| t.ends_with(" rule move r1 top\n")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.ends_with(" rule move r2 after r1\n")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.ends_with(" rule move n1 top\n")),
        "{texts:?}"
    );
    // A plain item has no placement; a `rule move` for another rule, or a
    // second item, is not one item.
    let (_, p) = ConfigItem::parse_placed("ip address-set x type object\n").unwrap();
    assert_eq!(p, None);
    assert!(
        ConfigItem::parse_placed(
            "security-policy\n rule name a\n  action permit\n rule move b after a\n"
        )
        .is_err()
    );
    assert!(
        ConfigItem::parse_placed(
            "security-policy\n rule name a\n rule move a after b\n rule move a top\n"
        )
        .is_err()
    );
    // The placement is not configuration: the receiver stores the rule only.
    let mut b = ConfigStore::new();
    send_batch(&a, &mut b);
    assert_eq!(b, a);
    assert!(!b.render().contains("rule move"));
}
