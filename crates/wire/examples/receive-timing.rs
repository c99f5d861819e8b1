//! Times the receiver's work per entry of a batch sync without the network
//! or the sender: N generated sessions in shard order, encoded as bulk
//! chunks of 4096 (as the sender's snapshot walk makes them), fed through a
//! `FrameDecoder` and applied to a pre-faulted table, by one thread
//! (`apply_upserts`) and by two (`ApplyWorker`). Prints wall and CPU ns per
//! entry (the calling thread's, and the whole process's).
//! `cargo run --release -p hotsync-wire --example receive-timing -- 2000000`
use hotsync_table::{ApplyWorker, SessionGenerator, SessionTable, TableConfig};
use hotsync_wire::{
    ArchivedSessionUpsertBatch, Channel, FrameDecoder, FrameEncoder, MessageRef, SessionUpsertBatch,
};
use std::sync::Arc;
use std::time::Instant;

/// CPU ns of this thread (`/proc/thread-self/schedstat`) and of the whole
/// process (`/proc/self/schedstat` is the main thread's; sum the tasks).
fn cpu_ns() -> (u64, u64) {
    let read = |p: &str| -> u64 {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let me = read("/proc/thread-self/schedstat");
    let all = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .map(|t| read(&format!("{}/schedstat", t.path().display())))
                .sum()
        })
        .unwrap_or(0);
    (me, all)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let max_frame = hotsync_wire::DEFAULT_MAX_FRAME_LEN;
    let mut g = SessionGenerator::new(7, 0, false, 1_700_000_000);
    let mut recs: Vec<_> = (0..n).map(|_| g.next_session()).collect();
    let shape = SessionTable::new(TableConfig::with_capacity(n));
    recs.sort_by_key(|(k, _)| shape.shard_of(k));
    let mut enc = FrameEncoder::new(max_frame);
    let mut frames = Vec::new();
    let mut batch = SessionUpsertBatch::default();
    for (i, chunk) in recs
        .chunk_by(|a, b| shape.shard_of(&a.0) == shape.shard_of(&b.0))
        .flat_map(|c| c.chunks(4096))
        .enumerate()
    {
        batch.clear();
        chunk.iter().for_each(|(k, e)| batch.push(k, e));
        let mut out = Vec::new();
        enc.encode(Channel::Session, i as u64, &batch, &mut out)
            .expect("a chunk fits a frame");
        frames.push(out);
    }
    drop((recs, shape));

    let receive = |apply: &mut dyn FnMut(&ArchivedSessionUpsertBatch)| {
        let mut dec = FrameDecoder::new(max_frame);
        let (t0, (me0, all0)) = (Instant::now(), cpu_ns());
        for f in &frames {
            dec.feed(f).expect("valid frame");
            while let Some(frame) = dec.next_frame().expect("valid frame") {
                match frame.message().expect("valid message") {
                    MessageRef::SessionUpsertBatch(b) => apply(b),
                    _ => unreachable!("only upsert batches were encoded"),
                }
            }
        }
        let (me, all) = cpu_ns();
        format!(
            "{:.1} ns/entry wall, CPU {:.1} this thread, {:.1} in all",
            t0.elapsed().as_nanos() as f64 / n as f64,
            (me - me0) as f64 / n as f64,
            (all - all0) as f64 / n as f64,
        )
    };
    println!("n={n}");
    println!(
        "frames alone: {}",
        receive(&mut |b| {
            std::hint::black_box(b);
        })
    );
    let fresh = || {
        let t = Arc::new(SessionTable::new(TableConfig::with_capacity(n)));
        t.prefault();
        t
    };
    let t = fresh();
    let line = receive(&mut |b| {
        t.apply_upserts(b.iter());
    });
    println!("one thread (apply_upserts): {line} ({} sessions)", t.len());
    drop(t);
    let t = fresh();
    let w = ApplyWorker::spawn(Arc::clone(&t)).expect("spawn the worker");
    let line = receive(&mut |b| {
        w.apply_upserts(b.iter());
    });
    println!("two threads (ApplyWorker): {line} ({} sessions)", t.len());
}
