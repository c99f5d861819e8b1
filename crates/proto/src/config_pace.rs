//! How fast a config batch sync goes while incremental changes flow: the
//! config channel's token bucket.
//!
//! Every configuration item sent costs CPU on both nodes: encoding on this
//! one's event loop, decoding on the peer's, and above all parsing and
//! applying on the peer's configuration thread (about 0.7 µs an item). At
//! full speed (some 700k items/s) that is half a core, and on a two-core
//! pair it is taken from the threads that replicate sessions, whatever
//! their priority: the session threads then wait for a core. So while
//! incremental changes flow (the same signal that shrinks the bulk window,
//! `bulk_window::incremental_busy`), batch items leave at most at
//! [`BUSY_ITEMS_PER_SEC`], a frame at a time; otherwise at full speed.
//! 100,000 rules then take about a second under load, a tenth of the CPU.
//!
//! Incremental configuration changes (`hrp` commands, B3) are not paced:
//! they are few, and an operator waits for them.

use std::time::{Duration, Instant};

/// Batch items per second at most while incremental changes flow.
pub(crate) const BUSY_ITEMS_PER_SEC: u32 = 100_000;

/// Sending time one item uses up.
const ITEM_COST: Duration = Duration::from_nanos(1_000_000_000 / BUSY_ITEMS_PER_SEC as u64);

/// The schedule of batch frames (a GCRA token bucket of depth one frame).
#[derive(Debug, Default)]
pub(crate) struct ConfigPace {
    /// When the next frame is due while paced; `None`: at once.
    next: Option<Instant>,
    /// The last fill stopped at the pace, not at the connection's room or
    /// the job's end: the driver must come back at `next`.
    waiting: bool,
}

impl ConfigPace {
    /// Whether a frame may go now (`busy`: incremental changes flow).
    /// Refusing records that the caller waits for [`Self::deadline`].
    pub fn may_send(&mut self, busy: bool, now: Instant) -> bool {
        let ok = !busy || self.next.is_none_or(|t| t <= now);
        self.waiting = !ok;
        ok
    }

    /// A frame of `items` went out at `now`.
    pub fn sent(&mut self, items: usize, busy: bool, now: Instant) {
        self.next = busy.then(|| {
            let from = self.next.map_or(now, |t| t.max(now));
            from + ITEM_COST * items as u32
        });
    }

    /// When the fill that stopped at the pace may send again.
    pub fn deadline(&self) -> Option<Instant> {
        self.next.filter(|_| self.waiting)
    }

    /// The config connection dropped, or the job ended: nothing to wait for.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_only_while_busy() {
        let t = Instant::now();
        let mut p = ConfigPace::default();
        assert!(p.may_send(true, t), "the first frame goes at once");
        p.sent(128, true, t);
        assert!(!p.may_send(true, t), "the next waits its turn");
        assert_eq!(p.deadline(), Some(t + ITEM_COST * 128));
        assert!(p.may_send(false, t), "no incremental traffic: full speed");
        assert_eq!(p.deadline(), None, "nothing to wait for");
        assert!(p.may_send(true, t + ITEM_COST * 128));
    }

    #[test]
    fn rate_is_bounded_while_busy() {
        let t0 = Instant::now();
        let mut p = ConfigPace::default();
        let mut items = 0u64;
        // Asked every 100 µs for one simulated second.
        for step in 0..10_000u32 {
            let now = t0 + Duration::from_micros(100) * step;
            if p.may_send(true, now) {
                p.sent(128, true, now);
                items += 128;
            }
        }
        // A frame due between two asks waits for the next one: at most
        // 100 µs lost per 1.28 ms frame.
        let per_sec = u64::from(BUSY_ITEMS_PER_SEC);
        assert!(
            items <= per_sec + 128 && items >= per_sec * 9 / 10,
            "{items} items in one second"
        );
    }

    #[test]
    fn a_late_frame_earns_no_burst() {
        let t = Instant::now();
        let mut p = ConfigPace::default();
        p.sent(128, true, t);
        // Long after its slot: the schedule restarts from now.
        let late = t + Duration::from_secs(1);
        assert!(p.may_send(true, late));
        p.sent(128, true, late);
        assert!(!p.may_send(true, late));
    }
}
