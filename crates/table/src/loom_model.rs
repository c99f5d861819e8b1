//! Loom model of the lock-free read protocol: a reader (`Shard::get`, the
//! snapshot's `Slot::read`) racing the shard's writer, over every
//! interleaving and every value the memory model lets a load see.
//!
//! `RUSTFLAGS="--cfg loom" cargo test -p hotsync-table --release --lib loom`
//!
//! The shard is tiny (2 slots, 8 index words) and the hashes are chosen so
//! that keys collide on one home bucket: removals then shift words back over
//! a running probe. The racing writer calls the slot and index operations
//! the shard's writer uses, in the order it uses them (it holds the writer
//! lock, which no reader takes, so the lock is left out of the model).

use crate::index::Index;
use crate::model::{SessionEntry, SessionKey};
use crate::shard::Shard;
use crate::slot::key_words;
use loom::thread;
use std::sync::Arc;

/// Hashes whose probes start at bucket 3 of the 8 (tag * 8 >> 32 == 3).
const HOME3: u64 = 3 << 29;
const HA: u64 = HOME3 + 1;
const HB: u64 = HOME3 + 2;
const HC: u64 = HOME3 + 3;

fn key(n: u16) -> SessionKey {
    SessionKey {
        src_port: n,
        family: 4,
        ..SessionKey::default()
    }
}

fn entry(v: u64) -> SessionEntry {
    SessionEntry {
        packets: [v, v],
        bytes: [v, v],
        policy_id: v as u32,
        ..SessionEntry::default()
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(1);
    b.check(f);
}

/// A lookup racing an in-place rewrite returns the old or the new entry,
/// whole; a snapshot read likewise.
#[test]
fn loom_lookup_racing_a_rewrite_is_old_or_new() {
    model(|| {
        let s = Arc::new(Shard::new(2, 4));
        let (idx, _) = s.lock().upsert_slot(HA, &key(1), &entry(1), 0, 0).unwrap();
        let writer = {
            let s = s.clone();
            thread::spawn(move || s.slots[idx as usize].write_entry(&entry(2), 0))
        };
        let got = s.get(HA, &key_words(&key(1))).expect("present throughout");
        assert!(got == entry(1) || got == entry(2), "torn: {got:?}");
        let (k, e) = s.slots[idx as usize].read().expect("live");
        assert_eq!(k, key(1));
        assert!(e == entry(1) || e == entry(2), "torn: {e:?}");
        writer.join().unwrap();
        assert_eq!(s.get(HA, &key_words(&key(1))), Some(entry(2)));
    });
}

/// A lookup of a key that a removal shifts back over the lookup's probe
/// still finds it.
#[test]
fn loom_lookup_racing_a_shifting_removal_finds_the_key() {
    model(|| {
        let ix = Arc::new(Index::new(2));
        for (h, slot) in [(HB, 1), (HA, 0)] {
            let pos = ix.find(h, |_| false).unwrap_err();
            ix.insert_at(pos, h, slot);
        }
        let (pos_b, _) = ix.find(HB, |s| s == 1).unwrap();
        let writer = {
            let ix = ix.clone();
            thread::spawn(move || ix.remove_at(pos_b))
        };
        assert_eq!(ix.lookup(HA, |s| (s == 0).then_some(s)), Some(0));
        writer.join().unwrap();
        assert_eq!(ix.lookup(HB, |s| (s == 1).then_some(s)), None);
    });
}

/// A lookup racing the removal of its key and the reuse of the slot by
/// another key returns the removed entry or nothing, never the newcomer's.
#[test]
fn loom_lookup_racing_slot_reuse_never_returns_another_key() {
    model(|| {
        let s = Arc::new(Shard::new(2, 4));
        let (ia, _) = s.lock().upsert_slot(HA, &key(1), &entry(1), 0, 0).unwrap();
        let writer = {
            let s = s.clone();
            thread::spawn(move || {
                // `Locked::free` then `Locked::upsert_slot` of a new key.
                let (pos, _) = s.index.find(HA, |x| x == ia).unwrap();
                s.index.remove_at(pos);
                let slot = &s.slots[ia as usize];
                slot.free(u32::MAX);
                slot.fill(&key_words(&key(3)), &entry(3), 0, 0);
                let pos = s.index.find(HC, |_| false).unwrap_err();
                s.index.insert_at(pos, HC, ia);
            })
        };
        let a = s.get(HA, &key_words(&key(1)));
        assert!(a.is_none() || a == Some(entry(1)), "wrong entry: {a:?}");
        writer.join().unwrap();
        assert_eq!(s.get(HC, &key_words(&key(3))), Some(entry(3)));
    });
}
