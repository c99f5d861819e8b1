//! Resident memory per session of the session table, against a pre-sized
//! bare `DashMap<SessionKey, SessionEntry>`.
//!
//! `table-memory --sessions 10000000` re-executes itself once per structure
//! (`--only table`, `--only dashmap`) so that each is measured in a fresh
//! process: RSS does not reliably shrink after a drop. Each child reads RSS
//! from `/proc/self/statm` before creating the structure and after filling
//! it with generated sessions (streamed from the generator, never held in a
//! separate vector).

use clap::{Parser, ValueEnum};
use hotsync_bench::{PAYLOAD_BYTES, bare_map, drain_all, generator, page_size, rss_bytes};
use hotsync_table::{SessionTable, ShardSet, TableConfig};
use std::process::{Command, ExitCode};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Only {
    Table,
    Dashmap,
}

#[derive(Parser, Debug)]
#[command(about = "Bytes per session of the session table vs a bare DashMap")]
struct Args {
    /// Sessions to insert.
    #[arg(long, default_value_t = 1_000_000)]
    sessions: usize,
    /// Measure one structure in this process (used by the parent run).
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// Table shard count (default: from the core count, as the table picks).
    #[arg(long)]
    shards: Option<usize>,
    /// Table journal capacity per shard, in keys (default: the table's).
    #[arg(long)]
    journal_capacity: Option<usize>,
    /// Drain the journals after this many inserts (0: never; the journals
    /// then fill to capacity and overflow, which touches all their memory).
    #[arg(long, default_value_t = 8192)]
    drain_every: usize,
}

fn report(what: &str, n: usize, before: u64, after: u64, extra: &str) {
    let delta = after.saturating_sub(before);
    let per = delta as f64 / n as f64;
    println!(
        "{what:<8} sessions={n} rss_before={before} rss_after={after} delta={delta} \
         bytes/session={per:.1} payload={PAYLOAD_BYTES} ratio={:.3}{extra}",
        per / PAYLOAD_BYTES as f64
    );
}

fn measure_table(args: &Args) {
    let n = args.sessions;
    let mut config = TableConfig::with_capacity(n);
    if let Some(s) = args.shards {
        config.shards = s;
    }
    if let Some(j) = args.journal_capacity {
        config.journal_capacity = j;
    }
    let mut g = generator(7);
    let mut out = Vec::with_capacity(args.drain_every.max(1) * 2);
    let before = rss_bytes();
    let table = SessionTable::new(config.clone());
    let after_new = rss_bytes();
    for i in 0..n {
        let (k, e) = g.next_session();
        table
            .upsert(&k, &e)
            .expect("table pre-sized for --sessions");
        if args.drain_every != 0 && (i + 1) % args.drain_every == 0 {
            drain_all(&table, &mut out);
        }
    }
    drain_all(&table, &mut out);
    let mut overflowed = ShardSet::new(table.shard_count());
    let overflows = table.take_overflowed(&mut overflowed);
    let after = rss_bytes();
    assert_eq!(table.len(), n);

    // What the layout should cost, to compare with what RSS says.
    let shards = config.shards;
    let per_shard = n.div_ceil(shards);
    let cap = per_shard + (per_shard as f64).sqrt() as usize * 6 + 64;
    // 1.5 index words per slot, rounded up to a multiple of 8.
    let buckets = (cap + cap / 2).max(cap + 2).next_multiple_of(8);
    // Key and entry in whole words + bookkeeping (sequence word, aux) +
    // the kept digest contribution.
    let slot = std::mem::size_of::<hotsync_table::SessionKey>().next_multiple_of(8)
        + std::mem::size_of::<hotsync_table::SessionEntry>().next_multiple_of(8)
        + 16;
    let slab = n * slot;
    let index = shards * buckets * 8;
    let journal =
        shards * config.journal_capacity * std::mem::size_of::<hotsync_table::SessionKey>();
    let expected = slab + index + journal;
    report(
        "table",
        n,
        before,
        after,
        &format!(
            " (after new: +{}) shards={shards} overflowed_shards={overflows} | layout: slot={slot} B, \
             slab={slab} index={index} ({buckets} buckets/shard) journals={journal} \
             -> expected {:.1} B/session, ratio {:.3}",
            after_new.saturating_sub(before),
            expected as f64 / n as f64,
            expected as f64 / n as f64 / PAYLOAD_BYTES as f64
        ),
    );
    std::hint::black_box(&table);
}

fn measure_dashmap(args: &Args) {
    let n = args.sessions;
    let mut g = generator(7);
    let before = rss_bytes();
    let map = bare_map(n);
    let after_new = rss_bytes();
    for _ in 0..n {
        let (k, e) = g.next_session();
        map.insert(k, e);
    }
    let after = rss_bytes();
    assert_eq!(map.len(), n);
    let shards = map.shards().len();
    let per_shard = n.div_ceil(shards);
    let buckets = (per_shard * 8 / 7).next_power_of_two();
    let expected = shards * buckets * (PAYLOAD_BYTES + 1);
    report(
        "dashmap",
        n,
        before,
        after,
        &format!(
            " (after new: +{}) shards={shards} | layout: {buckets} buckets/shard x {} B \
             -> expected {:.1} B/session, ratio {:.3}",
            after_new.saturating_sub(before),
            PAYLOAD_BYTES + 1,
            expected as f64 / n as f64,
            expected as f64 / n as f64 / PAYLOAD_BYTES as f64
        ),
    );
    std::hint::black_box(&map);
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.only {
        Some(Only::Table) => measure_table(&args),
        Some(Only::Dashmap) => measure_dashmap(&args),
        None => {
            println!(
                "page size {} B; key+entry payload {PAYLOAD_BYTES} B",
                page_size()
            );
            let exe = match std::env::current_exe() {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("cannot find own executable: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let passthrough: Vec<String> = std::env::args().skip(1).collect();
            for only in ["table", "dashmap"] {
                let status = Command::new(&exe)
                    .args(&passthrough)
                    .args(["--only", only])
                    .status();
                match status {
                    Ok(s) if s.success() => {}
                    Ok(s) => {
                        eprintln!("--only {only} failed: {s}");
                        return ExitCode::FAILURE;
                    }
                    Err(e) => {
                        eprintln!("cannot run --only {only}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    ExitCode::SUCCESS
}
