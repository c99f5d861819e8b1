//! One node of a test: a [`Peer`], its table, and a configuration sink
//! that records what it was asked.

use crate::config_apply::ConfigWork;
use crate::config_queue::{ConfigSink, ItemOutcome};
use crate::event::{Action, Event};
use crate::peer::Peer;
use crate::settings::ProtoConfig;
use hotsync_table::{SessionTable, TableConfig};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the configuration sink of a test node was asked, in order.
pub type ConfigLog = Arc<Mutex<Vec<(u8, String, String)>>>;

/// The op code under which [`RecordingSink`] logs a batch item.
pub const BATCH_ITEM: u8 = 255;

/// A sink that records every change and adds every batch item (or, for an
/// item whose text starts with `conflict`, reports a conflict).
#[derive(Debug, Default)]
pub struct RecordingSink {
    /// Batch items (op [`BATCH_ITEM`]) and changes (op 0..2), in order.
    pub log: ConfigLog,
}

impl ConfigSink for RecordingSink {
    fn apply_batch_item(&mut self, vsys: &str, text: &str) -> ItemOutcome {
        if let Ok(mut l) = self.log.lock() {
            l.push((BATCH_ITEM, vsys.to_owned(), text.to_owned()));
        }
        if text.starts_with("conflict") {
            ItemOutcome::Conflict
        } else {
            ItemOutcome::Added
        }
    }
    fn apply_op(&mut self, op: u8, vsys: &str, text: &str) -> Result<(), String> {
        if op > 2 {
            return Err(format!("unknown op {op}"));
        }
        if let Ok(mut l) = self.log.lock() {
            l.push((op, vsys.to_owned(), text.to_owned()));
        }
        Ok(())
    }
}

/// One node: a peer, its table and its recording sink.
pub struct Node {
    /// Its protocol instance.
    pub peer: Peer,
    /// Its table.
    pub table: Arc<SessionTable>,
    /// What its config sink received.
    pub config: ConfigLog,
    /// Every event a [`super::Pair`] polled from it, in order.
    pub events: Vec<Event>,
    /// Every action a [`super::Pair`] polled from it, in order.
    pub actions: Vec<Action>,
    /// Configuration applied by the driver (see [`Self::apply_config`]):
    /// its sink; `None` for a node that applies inline.
    driver_sink: Option<RecordingSink>,
    /// Work taken from the peer, not yet applied, as a thread's channel
    /// would hold it.
    pub config_taken: VecDeque<ConfigWork>,
}

impl Node {
    /// A node with a fresh table, applying configuration inline.
    pub fn new(cfg: ProtoConfig, table: TableConfig, seed: u64, now: Instant) -> Self {
        Self::build(cfg, Arc::new(SessionTable::new(table)), false, seed, now)
    }

    /// A node with a fresh table whose driver applies configuration
    /// itself ([`Peer::with_config_in_driver`]), when
    /// [`Self::apply_config`] says.
    pub fn with_config_in_driver(
        cfg: ProtoConfig,
        table: TableConfig,
        seed: u64,
        now: Instant,
    ) -> Self {
        Self::build(cfg, Arc::new(SessionTable::new(table)), true, seed, now)
    }

    /// A node over `table` (a fresh one, or the one a restarted process
    /// kept), applying configuration in its driver or inline.
    pub fn build(
        cfg: ProtoConfig,
        table: Arc<SessionTable>,
        config_in_driver: bool,
        seed: u64,
        now: Instant,
    ) -> Self {
        let sink = RecordingSink::default();
        let config = sink.log.clone();
        let (peer, driver_sink) = if config_in_driver {
            let peer = Peer::with_config_in_driver(cfg, table.clone(), seed, now);
            (peer, Some(sink))
        } else {
            (
                Peer::new(cfg, table.clone(), Box::new(sink), seed, now),
                None,
            )
        };
        Self {
            peer,
            table,
            config,
            events: Vec::new(),
            actions: Vec::new(),
            driver_sink,
            config_taken: VecDeque::new(),
        }
    }

    /// Takes all the configuration work the peer hands out, then applies
    /// at most `n` pieces and gives the results back, as an applying
    /// thread would between two turns of the event loop. Inline nodes
    /// have none.
    pub fn apply_config(&mut self, n: usize, now: Instant) {
        let Some(sink) = &mut self.driver_sink else {
            return;
        };
        while let Some(w) = self.peer.poll_config_work() {
            self.config_taken.push_back(w);
        }
        for _ in 0..n {
            let Some(w) = self.config_taken.pop_front() else {
                break;
            };
            let done = w.apply(sink);
            self.peer.handle_config_done(done, now);
        }
    }

    /// The texts of the configuration changes (not batch items) its sink
    /// applied, in order.
    pub fn changes_applied(&self) -> Vec<String> {
        let log = self.config.lock().map(|l| l.clone()).unwrap_or_default();
        log.into_iter()
            .filter(|(op, _, _)| *op != BATCH_ITEM)
            .map(|(_, _, text)| text)
            .collect()
    }

    /// Whether it reported an event matching `f`.
    pub fn saw(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(f)
    }

    /// Whether it asked its driver for an action matching `f`.
    pub fn did(&self, f: impl Fn(&Action) -> bool) -> bool {
        self.actions.iter().any(f)
    }

    /// How often the error `kind` was counted.
    pub fn errors(&self, kind: &str) -> u64 {
        self.peer.stats().errors.get(kind).copied().unwrap_or(0)
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer", &self.peer)
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}
