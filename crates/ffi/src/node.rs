//! The control plane behind the exported calls, in safe Rust: starting a
//! node from configuration text, jobs, state. The handles C holds are
//! boxes of the types here.

use crate::error::{fail, hotsync_status};
use crate::types::{
    hotsync_digest, hotsync_job_status, hotsync_node_options, hotsync_node_state, hotsync_role,
    hotsync_stats,
};
use ::hotsync_node::{Node, NodeConfig, NodeError, NodeHandle};
use ::hotsync_table::{MAX_SHARDS, SessionTable, TableConfig, default_shard_count};
use hotsync_config::ConfigStore;
use hotsync_proto::RequestError;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A running (or stopped) node. Opaque to C.
#[derive(Debug)]
pub struct hotsync_node {
    pub(crate) handle: NodeHandle,
}

/// A session table handle for data-plane threads. Opaque to C. It keeps
/// the table alive on its own: valid after its node is freed.
#[derive(Debug)]
pub struct hotsync_table {
    pub(crate) table: Arc<SessionTable>,
}

/// A failed control-plane call: its status, message already recorded.
pub(crate) type Failed = hotsync_status;

/// Largest configuration file read (as `hotsync node`).
const MAX_CONFIG_FILE: u64 = 256 << 20;

/// Largest `max_sessions` accepted: slots are numbered with `u32` per shard,
/// and anything near it is more memory than a firewall has.
const MAX_SESSIONS: u64 = 1 << 31;

/// The table sizing `options` asks for (defaults for zero fields).
pub(crate) fn table_config(options: Option<&hotsync_node_options>) -> Result<TableConfig, Failed> {
    let o = options.copied().unwrap_or_default();
    if o.max_sessions > MAX_SESSIONS {
        return Err(fail(
            hotsync_status::InvalidArgument,
            format_args!("max_sessions {} is above {MAX_SESSIONS}", o.max_sessions),
        ));
    }
    let shards = match o.shards {
        0 => default_shard_count(),
        n if n.is_power_of_two() && n as usize <= MAX_SHARDS => n as usize,
        n => {
            return Err(fail(
                hotsync_status::InvalidArgument,
                format_args!("shards must be a power of two up to {MAX_SHARDS}, not {n}"),
            ));
        }
    };
    let mut cfg = TableConfig::with_capacity(match o.max_sessions {
        0 => 1 << 20,
        n => n as usize,
    });
    cfg.shards = shards;
    if o.journal_capacity != 0 {
        cfg.journal_capacity = o.journal_capacity as usize;
    }
    Ok(cfg)
}

/// `hotsync_table_new`: a table of its own, pre-faulted.
pub(crate) fn new_table(options: Option<&hotsync_node_options>) -> Result<hotsync_table, Failed> {
    let table = SessionTable::new(table_config(options)?);
    table.prefault();
    Ok(hotsync_table {
        table: Arc::new(table),
    })
}

/// Parses `text` (the `hotsync node` configuration file format) and starts
/// the node it describes.
pub(crate) fn start(
    text: &str,
    options: Option<&hotsync_node_options>,
) -> Result<hotsync_node, Failed> {
    let table = table_config(options)?;
    let store = ConfigStore::parse(text).map_err(|e| fail(hotsync_status::Config, e))?;
    let cfg = NodeConfig::from_store(store, table).map_err(node_failure)?;
    let handle = Node::start(cfg).map_err(node_failure)?;
    Ok(hotsync_node { handle })
}

/// Reads the configuration file at `path` (at most 256 MiB) and starts it.
pub(crate) fn start_file(
    path: &Path,
    options: Option<&hotsync_node_options>,
) -> Result<hotsync_node, Failed> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_FILE + 1).read_to_string(&mut text))
        .map_err(|e| {
            fail(
                hotsync_status::Io,
                format_args!("{}: cannot read: {e}", path.display()),
            )
        })?;
    if text.len() as u64 > MAX_CONFIG_FILE {
        return Err(fail(
            hotsync_status::Config,
            format_args!(
                "{}: larger than {} MiB; refusing to load it",
                path.display(),
                MAX_CONFIG_FILE >> 20
            ),
        ));
    }
    start(&text, options).map_err(|status| {
        // Say which file.
        crate::error::with_last_message(|m| {
            fail(
                status,
                format_args!("{}: {}", path.display(), m.to_string_lossy()),
            )
        })
    })
}

/// Records a node error's message and returns its status.
pub(crate) fn node_failure(e: NodeError) -> Failed {
    let status = match &e {
        NodeError::Config(_) => hotsync_status::Config,
        NodeError::Bind { .. } | NodeError::Io(_) => hotsync_status::Io,
        NodeError::Request(RequestError::NotEstablished) => hotsync_status::NotEstablished,
        NodeError::Request(RequestError::AlreadyRunning(_)) => hotsync_status::AlreadyRunning,
        NodeError::Command(_) => hotsync_status::InvalidArgument,
        NodeError::Stopped => hotsync_status::Stopped,
        _ => hotsync_status::Refused,
    };
    fail(status, e)
}

impl hotsync_node {
    pub(crate) fn job(&self, id: u64) -> Result<hotsync_job_status, Failed> {
        self.handle
            .job(id)
            .map(|j| hotsync_job_status::from(&j))
            .ok_or_else(|| no_job(id))
    }

    pub(crate) fn wait_job(&self, id: u64, timeout_ms: u32) -> Result<hotsync_job_status, Failed> {
        self.handle
            .wait_job(id, Duration::from_millis(timeout_ms.into()))
            .map(|j| hotsync_job_status::from(&j))
            .ok_or_else(|| no_job(id))
    }

    pub(crate) fn state(&self) -> hotsync_node_state {
        let s = self.handle.state();
        let peer = s.peer.peer;
        hotsync_node_state {
            node_id: s.node_id,
            peer_node_id: peer.map_or(0, |p| p.node_id),
            connect_attempts: s.connect_attempts,
            uncertain_shards: s.peer.uncertain_shards as u64,
            config_queue: s.peer.config_queue as u64,
            role: s.peer.role.into(),
            peer_role: peer.map_or(hotsync_role::Initial, |p| p.role.into()),
            priority: s.priority,
            peer_priority: peer.map_or(0, |p| p.priority),
            established: s.peer.established,
            authenticated: s.peer.authenticated,
            reserved: [0; 2],
        }
    }

    pub(crate) fn stats(&self) -> hotsync_stats {
        let s = self.handle.state();
        hotsync_stats::new(&s.peer.stats, self.handle.table().len())
    }
}

fn no_job(id: u64) -> Failed {
    fail(
        hotsync_status::NotFound,
        format_args!("no job {id} on this node (or the node is stopped)"),
    )
}

impl hotsync_table {
    pub(crate) fn digest(&self) -> hotsync_digest {
        let d = self.table.digest();
        hotsync_digest {
            combined: d.combined(),
            entries: d.entries,
            shards: d.shards.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_before_anything_is_reserved() {
        let bad_shards = hotsync_node_options {
            shards: 12,
            ..Default::default()
        };
        assert_eq!(
            table_config(Some(&bad_shards)).unwrap_err(),
            hotsync_status::InvalidArgument
        );
        let huge = hotsync_node_options {
            max_sessions: u64::MAX,
            ..Default::default()
        };
        assert_eq!(
            table_config(Some(&huge)).unwrap_err(),
            hotsync_status::InvalidArgument
        );
        let cfg = table_config(None).unwrap();
        assert_eq!(cfg.max_sessions, 1 << 20);
        assert_eq!(cfg.shards, default_shard_count());
    }

    #[test]
    fn configuration_errors_say_where() {
        let err = start("hrp enable\nhrp local-address 127.0.0.1\n", None).unwrap_err();
        assert_eq!(err, hotsync_status::Config);
        let msg = crate::error::with_last_message(|m| m.to_string_lossy().into_owned());
        assert!(msg.contains("line 2"), "{msg}");
    }
}
