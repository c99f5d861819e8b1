//! Times the receive path alone: `apply_upserts` of N generated sessions,
//! in shard-ordered chunks of 4096 as a batch sync delivers them, into a
//! pre-faulted table sized for N. `cargo run --release -p hotsync-table
//! --example apply-timing -- 10000000`
use hotsync_table::{SessionGenerator, SessionTable, TableConfig};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let mut g = SessionGenerator::new(7, 0, false, 1_700_000_000);
    let mut recs: Vec<_> = (0..n).map(|_| g.next_session()).collect();
    let t = SessionTable::new(TableConfig::with_capacity(n));
    let t0 = Instant::now();
    t.prefault();
    let prefault = t0.elapsed();
    recs.sort_by_key(|(k, _)| t.shard_of(k));
    let t0 = Instant::now();
    for chunk in recs.chunks(4096) {
        t.apply_upserts(chunk.iter().copied());
    }
    let apply = t0.elapsed();
    let t0 = Instant::now();
    let mut found = 0usize;
    for (k, _) in recs.iter().step_by(7) {
        found += usize::from(t.get(k).is_some());
    }
    let get = t0.elapsed();
    println!(
        "n={n} prefault {:.2} s, apply {:.1} ns/entry ({:.2} M/s), get {:.1} ns ({found} found)",
        prefault.as_secs_f64(),
        apply.as_nanos() as f64 / n as f64,
        n as f64 / apply.as_secs_f64() / 1e6,
        get.as_nanos() as f64 / found as f64,
    );
}
