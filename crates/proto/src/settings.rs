//! Protocol settings.

use std::time::Duration;

/// What one node's protocol instance needs to know about itself.
#[derive(Clone)]
pub struct ProtoConfig {
    /// This node's id; must differ from the peer's. Breaks priority ties
    /// (the lower id wins).
    pub node_id: u64,
    /// HRP priority: the higher becomes active.
    pub priority: u16,
    /// Preemption: when set, a higher-priority node that finds the peer
    /// active takes over after this delay. When unset, the active node
    /// stays active until it fails.
    pub preempt_delay: Option<Duration>,
    /// Heartbeat interval (`hrp timer hello`).
    pub hello_interval: Duration,
    /// Missed heartbeats before the peer is declared dead.
    pub dead_count: u32,
    /// Pre-shared key. With a key, no state is exchanged with a peer that
    /// cannot prove it; without one the link is unauthenticated.
    pub psk: Option<Vec<u8>>,
    /// `hrp encryption-key`: with it (and a pre-shared key), every frame
    /// after the handshake is encrypted, and a peer that does not encrypt is
    /// refused (no downgrade).
    pub encryption_key: Option<Vec<u8>>,
    /// Run both batch syncs when the relationship forms (opt-in; B4).
    pub auto_sync_on_establish: bool,
    /// `hrp role-control external`: the role changes only by
    /// [`crate::Peer::set_role_external`] (keepalived's notify script);
    /// this node's own election (agreement, split-brain rule, preemption,
    /// dead-peer takeover) is off. Never both authorities at once.
    pub external_role: bool,
    /// Largest frame sent or accepted.
    pub max_frame_len: usize,
    /// Session records per batch frame.
    pub batch_records: usize,
    /// Received bulk chunks of at least this many records are applied by
    /// two threads: this one decodes and hashes the records while a worker
    /// thread of the protocol instance applies them, block by block, in
    /// order (`hotsync_table::ApplyWorker`). The chunk is whole in the
    /// table before the next message is handled, exactly as applied by one
    /// thread. 0 (the default) never starts the worker; nor does a machine
    /// with a single core.
    pub parallel_apply_min_records: usize,
    /// How long a drained change may wait for more to join its batch
    /// (default 100 µs: under load, batches of hundreds instead of dozens,
    /// for a fraction of the latency budget). Zero sends as soon as the
    /// driver polls.
    pub flush_interval: Duration,
    /// Bytes queued for a connection beyond which no more bulk data is
    /// generated (back-pressure from the socket reaches the journals).
    pub tx_high_water: usize,
    /// Configuration changes queued for the peer before they are dropped
    /// (and counted, with a warning to run `hrp sync config`).
    pub config_queue_limit: usize,
}

impl Default for ProtoConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            priority: 100,
            preempt_delay: None,
            hello_interval: Duration::from_secs(1),
            dead_count: 3,
            psk: None,
            encryption_key: None,
            auto_sync_on_establish: false,
            external_role: false,
            max_frame_len: hotsync_wire::DEFAULT_MAX_FRAME_LEN,
            batch_records: 4096,
            parallel_apply_min_records: 0,
            flush_interval: Duration::from_micros(100),
            tx_high_water: 4 << 20,
            config_queue_limit: 100_000,
        }
    }
}

impl ProtoConfig {
    /// Silence after which the peer is dead.
    pub fn dead_interval(&self) -> Duration {
        self.hello_interval * self.dead_count.max(1)
    }
}

/// Keys never appear in `Debug` output (nor, through it, in any log).
impl std::fmt::Debug for ProtoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |k: &Option<Vec<u8>>| k.as_ref().map(|_| "<redacted>");
        f.debug_struct("ProtoConfig")
            .field("node_id", &self.node_id)
            .field("priority", &self.priority)
            .field("preempt_delay", &self.preempt_delay)
            .field("hello_interval", &self.hello_interval)
            .field("dead_count", &self.dead_count)
            .field("psk", &redacted(&self.psk))
            .field("encryption_key", &redacted(&self.encryption_key))
            .field("auto_sync_on_establish", &self.auto_sync_on_establish)
            .field("external_role", &self.external_role)
            .field("max_frame_len", &self.max_frame_len)
            .field("batch_records", &self.batch_records)
            .field("flush_interval", &self.flush_interval)
            .field("tx_high_water", &self.tx_high_water)
            .field("config_queue_limit", &self.config_queue_limit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_key() {
        let cfg = ProtoConfig {
            psk: Some(b"secret-psk-value".to_vec()),
            encryption_key: Some(b"secret-enc-value".to_vec()),
            ..ProtoConfig::default()
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("secret") && !shown.contains("115, 101, 99"));
        assert!(shown.contains("<redacted>"));
    }
}
