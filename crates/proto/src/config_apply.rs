//! Applying the peer's configuration: the work the protocol hands out, in
//! arrival order, and the results it takes back.
//!
//! Parsing and applying a configuration item costs far more than applying
//! a session record, so where it runs is the driver's choice: inline
//! through the [`ConfigSink`] given to [`crate::Peer::new`], or anywhere
//! else (the node runs it on a low-priority thread of its own) through
//! [`crate::Peer::poll_config_work`] and [`crate::Peer::handle_config_done`].
//! The core stays free of threads either way: it keeps the order (B3), the
//! batch counts (B5, B7), and the bound on what is received but not yet
//! applied. While that bound is reached the config connection is not read
//! ([`ConfigApply::is_full`]): unapplied configuration waits in the socket
//! buffers under TCP back-pressure, not in memory.

use crate::config_queue::{ConfigOpKind, ConfigSink, ItemOutcome};
use crate::conn::Conn;
use crate::error::ProtoError;
use crate::event::{Event, Events};
use crate::jobs::{ConfigOutcome, JobKind};
use crate::stats::Stats;
use hotsync_wire::{
    ArchivedConfigItemBatch, ArchivedConfigOp, Channel, ConfigBatchResult, ConfigItem, ConfigOp,
};
use std::collections::VecDeque;
use std::time::Instant;

/// Items received and not yet applied at which the config connection stops
/// being read (a change counts as one item): eight of the sender's frames,
/// enough to keep an applying thread busy between two turns of the loop.
pub const CONFIG_BACKLOG_ITEMS: usize = 1024;
/// Text bytes received and not yet applied at which the config connection
/// stops being read. Memory held for unapplied configuration stays below
/// this plus one frame.
pub const CONFIG_BACKLOG_BYTES: usize = 1 << 20;

/// Configuration from the peer to apply, in the order it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigWork {
    /// Items of a batch sync (B1): each added if missing, found equal, or
    /// reported as a conflict (B5, B7).
    Items(Vec<ConfigItem>),
    /// One incremental change (B3); its op code was checked on receipt.
    Op(ConfigOp),
}

/// What applying one [`ConfigWork`] gave; handed back in the same order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigDone {
    /// The counts of [`ConfigWork::Items`].
    Items(ConfigOutcome),
    /// The result of [`ConfigWork::Op`].
    Op(Result<(), String>),
}

impl ConfigWork {
    /// Applies it with `sink`, on whatever thread the driver chose.
    pub fn apply(&self, sink: &mut dyn ConfigSink) -> ConfigDone {
        match self {
            ConfigWork::Items(items) => {
                let mut out = ConfigOutcome::default();
                for item in items {
                    match sink.apply_batch_item(&item.vsys, &item.text) {
                        ItemOutcome::Added => out.added += 1,
                        ItemOutcome::Equal => out.equal += 1,
                        ItemOutcome::Conflict => out.conflicts += 1,
                        ItemOutcome::Rejected => out.rejected += 1,
                    }
                }
                ConfigDone::Items(out)
            }
            ConfigWork::Op(op) => ConfigDone::Op(sink.apply_op(op.op, &op.vsys, &op.text)),
        }
    }

    /// Items it holds (a change is one).
    fn items(&self) -> usize {
        match self {
            ConfigWork::Items(items) => items.len(),
            ConfigWork::Op(_) => 1,
        }
    }

    /// Text bytes it holds.
    fn bytes(&self) -> usize {
        match self {
            ConfigWork::Items(items) => items.iter().map(|i| i.vsys.len() + i.text.len()).sum(),
            ConfigWork::Op(op) => op.vsys.len() + op.text.len(),
        }
    }
}

/// Work received and not yet done.
struct Pending {
    /// `None` once handed to the driver.
    work: Option<ConfigWork>,
    items: usize,
    bytes: usize,
    /// The generation of the batch its counts belong to, stamped on
    /// arrival (items inside a batch only).
    batch: Option<u64>,
}

/// The peer's config batch being received.
struct Batch {
    generation: u64,
    received: u64,
    counts: ConfigOutcome,
    /// Its `BatchEnd` arrived: (job id, work issued before it). The answer
    /// goes out once all of that is done.
    end: Option<(u64, u64)>,
    /// Its start was seen on this connection: it carried the whole
    /// configuration, not the tail of one cut short.
    whole: bool,
}

/// What finishing work needs to answer a batch.
pub(crate) struct Answer<'a> {
    pub conn: &'a mut Conn,
    pub stats: &'a mut Stats,
    pub events: &'a mut Events,
    pub now: Instant,
}

/// Configuration received and not yet applied, and the batch under way.
pub(crate) struct ConfigApply {
    /// Inline: applied as it arrives. `None`: the driver applies it.
    sink: Option<Box<dyn ConfigSink>>,
    /// In arrival order: `pending[..handed]` are with the driver, the rest
    /// wait to be handed out.
    pending: VecDeque<Pending>,
    handed: usize,
    /// Items and text bytes in `pending`.
    items: usize,
    bytes: usize,
    /// Work issued (received) and done since the start.
    issued: u64,
    done: u64,
    /// Bumped by each batch start and each disconnect, so results of work
    /// from an abandoned batch never count towards another.
    generation: u64,
    batch: Option<Batch>,
    /// A whole batch was answered since [`Self::take_whole_answered`].
    whole_answered: bool,
}

impl ConfigApply {
    pub fn new(sink: Option<Box<dyn ConfigSink>>) -> Self {
        Self {
            sink,
            pending: VecDeque::new(),
            handed: 0,
            items: 0,
            bytes: 0,
            issued: 0,
            done: 0,
            generation: 0,
            batch: None,
            whole_answered: false,
        }
    }

    /// Whether the backlog is at its bound: the config connection is not
    /// read, nor its buffered frames decoded, until work is done.
    pub fn is_full(&self) -> bool {
        self.items >= CONFIG_BACKLOG_ITEMS || self.bytes >= CONFIG_BACKLOG_BYTES
    }

    /// Items received and not yet applied.
    pub fn backlog(&self) -> usize {
        self.items
    }

    /// The next piece of work, for a driver that applies it itself.
    pub fn poll_work(&mut self) -> Option<ConfigWork> {
        if self.sink.is_some() {
            return None;
        }
        self.hand_out()
    }

    fn hand_out(&mut self) -> Option<ConfigWork> {
        let work = self.pending.get_mut(self.handed)?.work.take();
        self.handed += 1;
        work
    }

    /// The peer starts a config batch.
    pub fn batch_start(&mut self) {
        self.generation += 1;
        self.batch = Some(Batch {
            generation: self.generation,
            received: 0,
            counts: ConfigOutcome::default(),
            end: None,
            whole: true,
        });
    }

    /// A config batch frame arrived.
    pub fn items(&mut self, b: &ArchivedConfigItemBatch, cx: Answer<'_>) -> Result<(), ProtoError> {
        let items: Vec<ConfigItem> = b
            .items
            .iter()
            .map(|i| ConfigItem {
                vsys: i.vsys.as_str().to_owned(),
                text: i.text.as_str().to_owned(),
            })
            .collect();
        let n = items.len() as u64;
        cx.stats.config_items_rx += n;
        let batch = self.batch.as_mut().map(|b| {
            b.received += n;
            b.generation
        });
        self.issue(ConfigWork::Items(items), batch, cx)
    }

    /// An incremental change arrived (`what`: its op code, checked).
    pub fn op(
        &mut self,
        what: ConfigOpKind,
        op: &ArchivedConfigOp,
        cx: Answer<'_>,
    ) -> Result<(), ProtoError> {
        cx.stats.config_ops_rx += 1;
        let work = ConfigWork::Op(ConfigOp {
            op: what.to_wire(),
            vsys: op.vsys.as_str().to_owned(),
            text: op.text.as_str().to_owned(),
        });
        self.issue(work, None, cx)
    }

    fn issue(
        &mut self,
        work: ConfigWork,
        batch: Option<u64>,
        cx: Answer<'_>,
    ) -> Result<(), ProtoError> {
        let (items, bytes) = (work.items(), work.bytes());
        self.items += items;
        self.bytes += bytes;
        self.issued += 1;
        self.pending.push_back(Pending {
            work: Some(work),
            items,
            bytes,
            batch,
        });
        self.run_inline(cx)
    }

    /// Inline mode: applies everything waiting now.
    fn run_inline(&mut self, cx: Answer<'_>) -> Result<(), ProtoError> {
        let Some(mut sink) = self.sink.take() else {
            return Ok(());
        };
        let Answer {
            conn,
            stats,
            events,
            now,
        } = cx;
        let mut res = Ok(());
        while let Some(work) = self.hand_out() {
            let done = work.apply(sink.as_mut());
            let cx = Answer {
                conn: &mut *conn,
                stats: &mut *stats,
                events: &mut *events,
                now,
            };
            res = self.done(done, cx);
            if res.is_err() {
                break;
            }
        }
        self.sink = Some(sink);
        res
    }

    /// The peer's batch ended: answered with our counts once everything
    /// received before the end is applied.
    pub fn batch_end(&mut self, job_id: u64, cx: Answer<'_>) -> Result<(), ProtoError> {
        // An end without a start is answered with zero counts, as before.
        if self.batch.is_none() {
            self.batch_start();
            if let Some(b) = &mut self.batch {
                b.whole = false;
            }
        }
        if let Some(b) = &mut self.batch {
            b.end = Some((job_id, self.issued));
        }
        self.answer_if_done(cx)
    }

    /// The driver finished the oldest work it was handed. A result with no
    /// work handed out (a driver bug) is counted and ignored.
    pub fn done(&mut self, done: ConfigDone, cx: Answer<'_>) -> Result<(), ProtoError> {
        if self.handed == 0 {
            cx.stats.count_error("config_done_unexpected");
            return Ok(());
        }
        let Some(p) = self.pending.pop_front() else {
            return Ok(());
        };
        self.handed -= 1;
        self.items -= p.items;
        self.bytes -= p.bytes;
        self.done += 1;
        match done {
            ConfigDone::Items(c) => {
                if let Some(b) = self
                    .batch
                    .as_mut()
                    .filter(|b| Some(b.generation) == p.batch)
                {
                    b.counts.added += c.added;
                    b.counts.equal += c.equal;
                    b.counts.conflicts += c.conflicts;
                    b.counts.rejected += c.rejected;
                }
            }
            ConfigDone::Op(Ok(())) => {}
            ConfigDone::Op(Err(e)) => {
                cx.stats.count_error("config_op_rejected");
                cx.events.push_back(Event::Warning(format!(
                    "configuration change from peer not applied: {e}"
                )));
            }
        }
        self.answer_if_done(cx)
    }

    fn answer_if_done(&mut self, cx: Answer<'_>) -> Result<(), ProtoError> {
        let Some(b) = &self.batch else {
            return Ok(());
        };
        let Some((job_id, issued_before)) = b.end else {
            return Ok(());
        };
        if self.done < issued_before {
            return Ok(());
        }
        let r = ConfigBatchResult {
            job_id,
            added: b.counts.added,
            equal: b.counts.equal,
            conflicts: b.counts.conflicts,
            rejected: b.counts.rejected,
        };
        let received = b.received;
        self.whole_answered |= b.whole;
        self.batch = None;
        cx.conn.send(Channel::Config, &r, cx.stats, cx.now)?;
        cx.events.push_back(Event::PeerBatchFinished {
            kind: JobKind::Config,
            received,
        });
        Ok(())
    }

    /// The config connection dropped: the batch under way is abandoned (the
    /// sender starts it again). Work already received is still applied,
    /// in order: changes the peer saw acknowledged must not be lost.
    /// Whether a whole batch from the peer was applied and answered since
    /// the last call (the relationship then holds a configuration sync).
    pub fn take_whole_answered(&mut self) -> bool {
        std::mem::take(&mut self.whole_answered)
    }

    /// The config connection is gone: a batch cut short is never answered.
    pub fn on_disconnect(&mut self) {
        self.generation += 1;
        self.batch = None;
    }
}
