//! In-memory nodes for tests: no sockets, no threads, no real time, so a
//! test runs in microseconds and the same way every time.
//!
//! - [`Pair`]: two [`Node`]s, a clock that moves only when told, and one
//!   [`Link`] per connection that can be cut, held, tampered with or given
//!   a latency. The targeted tests (`tests/pair_*.rs`) drive it.
//! - [`sim::Sim`]: the same nodes and links under the deterministic
//!   simulator's seeded network (random latencies and read splits,
//!   crashes, pauses, mangled segments, strangers); `tests/simulator.rs`
//!   keeps only its fault schedules and property checks.
//! - [`Stranger`]: a third party that speaks the wire format but is not
//!   the peer (no key, or a forged identity).
//!
//! ```ignore
//! let mut p = Pair::new(PairConfig::default());
//! p.establish();
//! p.a.table.upsert(&k, &e).unwrap();
//! p.run_for(Duration::from_millis(10));
//! assert_eq!(p.a.table.digest(), p.b.table.digest());
//! ```

mod link;
mod node;
mod pair;
mod rng;
pub mod sim;
mod stranger;

pub use link::{Link, Mangle, Side};
pub use node::{BATCH_ITEM, ConfigLog, Node, RecordingSink};
pub use pair::{Pair, PairConfig, TEST_PSK};
pub use rng::Rng;
pub use stranger::Stranger;
