//! Invariants the fuzz harness and the simulator check from outside,
//! asserted in debug builds after every entry point that changes state:
//! a broken one fails the test that broke it, at the call that broke it.

use super::Core;

impl Core {
    /// Checks, in debug builds only: configuration changes marked sent are
    /// ones queued (`config_sent <= config_ops.len()`), no shard's last
    /// sent frame is beyond what the session connection sent
    /// (`last_sent_seq <= tx_seq`), and the resync counters balance with
    /// the shards still uncertain (docs/RELIABILITY.md §2).
    pub(super) fn debug_check(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        self.config_queue.debug_check();
        self.ledger.debug_check(self.conns.session.tx_seq);
        let uncertain = self.ledger.uncertain.len() + usize::from(self.resync.walking());
        debug_assert_eq!(
            self.stats.resync_balance(),
            uncertain as i64,
            "a shard was marked uncertain or repaired without its counter"
        );
    }
}
