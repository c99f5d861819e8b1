//! `hotsync cli --json`: `display hrp state`, `display hrp statistics` and
//! `display hrp sync-status` as JSON objects for scripts. The keys are
//! stable (documented in docs/COMMANDS.md); a key is never renamed, new
//! ones may appear.

use std::time::{Instant, SystemTime};

use hotsync_node::NodeState;
use hotsync_proto::{ConnKind, Phase, Stats};
use serde_json::{Value, json};

use crate::display::JobView;

fn seconds_ago(t: SystemTime) -> f64 {
    SystemTime::now()
        .duration_since(t)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `display hrp state`.
pub fn hrp_state(st: &NodeState, sysname: &str, now: Instant) -> Value {
    let p = &st.peer;
    let peer = p.peer.as_ref();
    json!({
        "sysname": sysname,
        "node_id": st.node_id,
        "role": p.role.to_string(),
        "role_reason": p.role_reason,
        "role_seconds": now.saturating_duration_since(p.role_since).as_secs_f64(),
        "established": p.established,
        "authenticated": p.authenticated,
        "peer_up": p.conn_phase[ConnKind::Session] == Phase::Up,
        "peer": {
            "address": st.peer_addr.to_string(),
            "heard": peer.is_some(),
            "node_id": peer.map(|x| x.node_id),
            "priority": peer.map(|x| x.priority),
            "role": peer.map(|x| x.role.to_string()),
            "preempt": peer.map(|x| x.preempt),
        },
        "connect_error": if p.established { None } else { st.connect_error.clone() },
        "connect_attempts": st.connect_attempts,
        "channels": {
            "session": p.conn_phase[ConnKind::Session].name(),
            "config": p.conn_phase[ConnKind::Config].name(),
        },
        "local": {
            "address": st.listen.to_string(),
            "config_port": st.listen.port().wrapping_add(1),
        },
        "priority": st.priority,
        "preempt_delay_seconds": st.preempt_delay.map(|d| d.as_secs()),
        "hello_interval_ms": st.hello_interval.as_millis() as u64,
        "dead_count": st.dead_count,
        "auto_sync_on_establish": st.auto_sync_on_establish,
        "static_route_sync": st.static_route_sync,
        "standby_config_enable": st.standby_config_enable,
        "uncertain_shards": p.uncertain_shards,
        "config_queue": p.config_queue,
        "config_backlog": p.config_backlog,
        "peer_incomplete": p.peer_unsynced.any(),
        "peer_incomplete_syncs": unsynced_names(p.peer_unsynced),
        "heartbeat_age_seconds": st.io.last_heartbeat
            .map(|t| now.saturating_duration_since(t).as_secs_f64()),
        "state_changes": st.state_changes.iter().map(|(t, what)| json!({
            "seconds_ago": seconds_ago(*t),
            "what": what,
        })).collect::<Vec<_>>(),
    })
}

/// The batch syncs a new relationship still lacks, by job kind name.
fn unsynced_names(u: hotsync_proto::Unsynced) -> Vec<&'static str> {
    let mut v = Vec::new();
    if u.connection_status {
        v.push(hotsync_proto::JobKind::ConnectionStatus.name());
    }
    if u.config {
        v.push(hotsync_proto::JobKind::Config.name());
    }
    v
}

/// `display hrp statistics`: every counter of the protocol, by its name.
pub fn statistics(s: &Stats) -> Value {
    let mut v = json!({
        "frames_tx": s.frames_tx,
        "frames_rx": s.frames_rx,
        "bytes_tx": s.bytes_tx,
        "bytes_rx": s.bytes_rx,
        "batches_tx": s.batches_tx,
        "batches_rx": s.batches_rx,
        "records_tx": s.records_tx,
        "records_rx": s.records_rx,
        "deletes_tx": s.deletes_tx,
        "deletes_rx": s.deletes_rx,
        "acks_tx": s.acks_tx,
        "acks_rx": s.acks_rx,
        "heartbeats_tx": s.heartbeats_tx,
        "heartbeats_rx": s.heartbeats_rx,
        "shards_resynced": s.shards_resynced,
        "resync_overflow": s.resync_overflow,
        "resync_disconnect": s.resync_disconnect,
        "resync_request": s.resync_request,
        "resync_aborted": s.resync_aborted,
        "resync_requested": s.resync_requested,
        "resync_step_down": s.resync_step_down,
        "step_down_lost_shards": s.step_down_lost_shards,
        "split_brain_kept_own": s.split_brain_kept_own,
        "resync_table_full": s.resync_table_full,
        "resync_removed": s.resync_removed,
        "journal_overflows": s.journal_overflows,
        "changes_before_establish": s.changes_before_establish,
        "apply_table_full": s.apply_table_full,
        "config_ops_tx": s.config_ops_tx,
        "config_ops_rx": s.config_ops_rx,
        "config_ops_dropped": s.config_ops_dropped,
        "relationships_resumed": s.relationships_resumed,
        "peer_restarts": s.peer_restarts,
        "outage_changes_dropped": s.outage_changes_dropped,
        "outage_shards_dropped": s.outage_shards_dropped,
        "outage_config_ops_dropped": s.outage_config_ops_dropped,
        "config_items_rx": s.config_items_rx,
        "connections": s.connections,
        "disconnects": s.disconnects,
        "errors": s.errors,
        "error_total": s.error_total(),
    });
    // Past `json!`'s recursion limit in one literal.
    v["resync_crossed"] = json!(s.resync_crossed);
    v["step_down_walks_cancelled"] = json!(s.step_down_walks_cancelled);
    v["standby_batch_kept_own"] = json!(s.standby_batch_kept_own);
    v
}

/// `display hrp sync-status`: running jobs, then recent finished ones.
pub fn sync_status(jobs: &[JobView]) -> Value {
    let jobs: Vec<Value> = jobs
        .iter()
        .map(|j| {
            json!({
                "id": j.id,
                "kind": j.kind,
                "state": j.state,
                "error": (!j.error.is_empty()).then_some(&j.error),
                "total": j.total,
                "sent": j.sent,
                "acked": j.acked,
                "restarts": j.restarts,
                "elapsed_seconds": j.elapsed.as_secs_f64(),
                "rate_per_second": j.rate(),
                "config": j.config.map(|[added, equal, conflicts, rejected]| json!({
                    "added": added,
                    "equal": equal,
                    "conflicts": conflicts,
                    "rejected": rejected,
                })),
            })
        })
        .collect();
    json!({ "jobs": jobs })
}
