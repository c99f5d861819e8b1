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
