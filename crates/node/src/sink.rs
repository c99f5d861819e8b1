//! Configuration from the peer, applied to this node's store.

use crate::Shared;
use hotsync_config::{BatchOutcome, ConfigChange, ConfigItem};
use hotsync_proto::{ConfigSink, ItemOutcome};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Applies the peer's configuration with the sync rules of the config
/// crate: batches are additive with conflicts reported (B5, B7), changes
/// are replayed (B3); what may not cross is refused on arrival too (B8,
/// B10), so a peer cannot push node-local settings or user data.
pub(crate) struct StoreSink {
    pub shared: Arc<Shared>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ConfigSink for StoreSink {
    fn apply_batch_item(&mut self, vsys: &str, text: &str) -> ItemOutcome {
        // A rule carries where it stands on the sender (`rule move`).
        let Ok((item, placement)) = ConfigItem::parse_placed(text) else {
            return ItemOutcome::Rejected;
        };
        let mut store = self.shared.store();
        let routes = store.static_route_sync();
        match store.apply_batch_item_placed(vsys, item, placement.as_ref(), routes, unix_now()) {
            BatchOutcome::Added => ItemOutcome::Added,
            BatchOutcome::Equal => ItemOutcome::Equal,
            BatchOutcome::Conflict => ItemOutcome::Conflict,
            _ => ItemOutcome::Rejected,
        }
    }

    fn apply_op(&mut self, op: u8, vsys: &str, text: &str) -> Result<(), String> {
        let (change, placement) =
            ConfigChange::from_wire_placed(op, vsys, text).map_err(|e| e.to_string())?;
        let mut store = self.shared.store();
        let routes = store.static_route_sync();
        store
            .apply_change_placed(&change, placement.as_ref(), routes, unix_now())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotsync_config::ConfigStore;
    use hotsync_table::{SessionTable, TableConfig};

    fn sink() -> StoreSink {
        let store = ConfigStore::parse(
            "#\n sysname FW-B\n hrp authentication-key local-Key-1\n#\nuser-manage user alice\n#\nvsys name sales\n#\nsecurity-policy\n rule name web\n  action permit\n",
        )
        .unwrap();
        StoreSink {
            shared: Arc::new(Shared::new(
                Arc::new(SessionTable::new(TableConfig::with_capacity(16))),
                store,
            )),
        }
    }

    /// What a peer may not push is refused by the sink (the protocol counts
    /// a refused batch item as `rejected`, a refused change as
    /// `config_op_rejected`), its error text is safe to log, and the store
    /// is unchanged.
    #[test]
    fn a_peer_cannot_push_what_a_local_operator_could_not_type() {
        let mut sink = sink();
        let before = sink.shared.store().render();
        let hostile = [
            "undo sysname",
            "undo hrp authentication-key",
            "undo user-manage user alice",
            "undo sslvpn enable",
            "info-center\n hrp authentication-key forged-Key-1",
            "security-policy\n rule name a\u{1b}[2Jb\n  action permit",
            "ip address-set web\u{2028} type object",
            "info-center loghost 10.0.0.1\u{0}",
            &format!("vsys name {}", "v".repeat(200_000)),
            &format!("info-center {}", "x".repeat(3_900_000)),
        ];
        for text in hostile {
            assert_eq!(
                sink.apply_batch_item("", text),
                ItemOutcome::Rejected,
                "{:.60}",
                text
            );
            for op in 0..=2 {
                let e = sink.apply_op(op, "", text).unwrap_err();
                assert!(!e.chars().any(hotsync_config::is_forbidden_char), "{e:?}");
                assert!(e.len() < 1024, "{} bytes of error", e.len());
            }
        }
        let e = sink
            .apply_op(0, "\u{1b}]0;pwned\u{7}", "ip address-set s type object")
            .unwrap_err();
        assert!(!e.chars().any(hotsync_config::is_forbidden_char), "{e:?}");
        assert_eq!(sink.shared.store().render(), before);
    }
}
