//! How much bulk (batch-sync and resync chunks) may be on its way to the
//! peer: incremental changes go ahead of bulk.
//!
//! Every frame leaves in one ordered byte stream, so an incremental batch
//! waits behind each bulk chunk queued before it: in our send queue, in
//! both kernels' socket buffers (several MiB on loopback) and in the
//! peer's apply. Chunks are therefore encoded only when the window has
//! room, counting the chunks sent and not yet acknowledged (the peer
//! acknowledges a frame once applied), and while incremental changes flow
//! the window is small and the chunks short: an incremental batch then
//! finds at most [`BUSY_FRAMES`] chunks of [`BUSY_CHUNK_RECORDS`] ahead of
//! it. With no incremental traffic the window is wide and the chunks
//! full-size, so a batch sync alone runs as fast as before.
//!
//! Encoding at send time is also what keeps each key's order: a chunk
//! reads the table when it is encoded, so any change made later is
//! journaled and sent behind it in the same stream (docs/PROTOCOL.md,
//! "Per-key order").

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bulk chunks in flight while incremental changes flow.
pub(crate) const BUSY_FRAMES: usize = 2;
/// Records per bulk chunk while incremental changes flow: about 0.1 ms
/// of the receiver's apply. 512 had put `during-bulk`'s p99 at 2.6x the
/// load alone once the event loop stopped sleeping blind (256: 1.4x, the
/// batch sync 36% slower under that load; docs/PERFORMANCE.md).
pub(crate) const BUSY_CHUNK_RECORDS: usize = 256;
/// Bulk chunks in flight otherwise: more than the kernels' buffers hold,
/// so it never limits a batch sync alone; it bounds this queue.
const IDLE_FRAMES: usize = 64;
/// How long after the last incremental batch the window stays small: longer
/// than the gaps of a data plane that writes in bursts. At 5 ms, the demo's
/// writer (a burst every 10 ms) let 64 full chunks out between bursts, and
/// its markers waited behind them (p90 2-3 ms during the batch sync; 0.4-0.6
/// ms at 50 ms, the batch sync 20-30% slower beside that traffic).
pub(crate) const BUSY_HOLD: Duration = Duration::from_millis(50);

/// The sequence numbers of bulk chunks sent and not yet acknowledged.
#[derive(Default)]
pub(crate) struct BulkWindow {
    unacked: VecDeque<u64>,
}

/// How much bulk the next step may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pace {
    /// Chunks in flight at most.
    pub frames: usize,
    /// Records per chunk at most.
    pub chunk_records: usize,
}

impl Pace {
    /// The pace for now: small while incremental changes flow (`busy`).
    pub fn new(busy: bool, batch_records: usize) -> Self {
        if busy {
            Pace {
                frames: BUSY_FRAMES,
                chunk_records: BUSY_CHUNK_RECORDS.min(batch_records),
            }
        } else {
            Pace {
                frames: IDLE_FRAMES,
                chunk_records: batch_records,
            }
        }
    }
}

impl BulkWindow {
    /// Whether another chunk may go, the peer having acknowledged up to
    /// `peer_acked`.
    pub fn has_room(&mut self, peer_acked: u64, pace: Pace) -> bool {
        while self.unacked.front().is_some_and(|&s| s <= peer_acked) {
            self.unacked.pop_front();
        }
        self.unacked.len() < pace.frames
    }

    /// A bulk step sent frames up to `seq`.
    pub fn sent(&mut self, seq: u64) {
        if self.unacked.back() != Some(&seq) {
            self.unacked.push_back(seq);
        }
    }

    /// The session connection dropped: its sequence numbers start over.
    pub fn clear(&mut self) {
        self.unacked.clear();
    }
}

/// Whether incremental changes flow: pending in the journals, drained and
/// not sent, or a batch sent within [`BUSY_HOLD`].
pub(crate) fn incremental_busy(pending: bool, last_batch: Option<Instant>, now: Instant) -> bool {
    pending || last_batch.is_some_and(|t| now.saturating_duration_since(t) < BUSY_HOLD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_opens_as_the_peer_acknowledges() {
        let pace = Pace::new(true, 4096);
        let mut w = BulkWindow::default();
        assert!(w.has_room(0, pace));
        w.sent(3);
        w.sent(7);
        assert!(!w.has_room(2, pace), "two chunks in flight");
        assert!(w.has_room(3, pace), "the first one acknowledged");
        w.sent(9);
        assert!(!w.has_room(3, pace));
        assert!(w.has_room(9, pace));
    }

    #[test]
    fn busy_pace_is_small_idle_pace_full_size() {
        assert_eq!(Pace::new(true, 4096).chunk_records, BUSY_CHUNK_RECORDS);
        assert_eq!(Pace::new(true, 100).chunk_records, 100);
        assert_eq!(Pace::new(false, 4096).chunk_records, 4096);
        assert!(Pace::new(false, 4096).frames > BUSY_FRAMES);
        let t = Instant::now();
        assert!(incremental_busy(true, None, t));
        assert!(incremental_busy(false, Some(t), t + BUSY_HOLD / 2));
        assert!(!incremental_busy(false, Some(t), t + BUSY_HOLD));
        assert!(!incremental_busy(false, None, t));
    }
}
