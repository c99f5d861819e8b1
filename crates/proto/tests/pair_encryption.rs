//! The encrypted link (`hrp encryption-key`) over the in-memory pair: it
//! forms and replicates; a peer or a stranger that does not encrypt is
//! refused (no downgrade); tampered, replayed, reflected and
//! cross-connection frames drop the connection, change nothing, are
//! counted, and what they left uncertain is resynced.

use hotsync_proto::testing::{Pair, PairConfig, Side, Stranger};
use hotsync_proto::{ConnKind, Role};
use hotsync_table::{SessionEntry, SessionKey};
use hotsync_wire::{Channel, field};
use std::time::Duration;

const SESSION: ConnKind = ConnKind::Session;

fn encrypted() -> PairConfig {
    let mut cfg = PairConfig::default().with_key();
    cfg.a.encryption_key = Some(b"pair encryption key".to_vec());
    cfg.b.encryption_key = Some(b"pair encryption key".to_vec());
    cfg
}

fn sessions(seed: u64, n: usize) -> Vec<(SessionKey, SessionEntry)> {
    let mut g = hotsync_table::SessionGenerator::new(seed, 0, false, 1000);
    (0..n).map(|_| g.next_session()).collect()
}

/// An established encrypted pair with A active.
fn established() -> Pair {
    let mut p = Pair::new(encrypted());
    p.run_for(Duration::from_millis(350));
    p.establish();
    assert_eq!(p.a.peer.role(), Role::Active);
    p
}

/// Writes `n` sessions on A and lets A put them on the (held) session link.
fn write_held(p: &mut Pair, seed: u64, n: usize) -> Vec<(SessionKey, SessionEntry)> {
    p.hold(SESSION, true);
    let s = sessions(seed, n);
    for (k, e) in &s {
        p.a.table.upsert(k, e).unwrap();
    }
    for _ in 0..4 {
        p.step();
    }
    s
}

/// Cuts a byte stream into whole frames (frames padded to 16 bytes).
fn split_frames(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while bytes.len() >= 48 {
        let payload = u32::from_le_bytes(bytes[field::PAYLOAD_LEN].try_into().unwrap()) as usize;
        let len = (48 + payload).div_ceil(16) * 16;
        frames.push(bytes[..len].to_vec());
        bytes = &bytes[len..];
    }
    frames
}

fn b_has_all(p: &Pair, s: &[(SessionKey, SessionEntry)]) -> bool {
    s.iter().all(|(k, _)| p.b.table.get(k).is_some())
}

/// After a refused frame: reconnects and waits until B holds `s`.
fn reconnects_and_repairs(p: &mut Pair, s: &[(SessionKey, SessionEntry)]) {
    p.hold(SESSION, false);
    p.run_for(Duration::from_millis(5));
    if !p.is_up(SESSION) {
        p.connect(SESSION);
    }
    let ok = p.run_until(Duration::from_secs(2), |p| {
        p.a.peer.is_established() && b_has_all(p, s)
    });
    assert!(
        ok,
        "the sessions the refused frame carried were not resynced"
    );
    assert_eq!(p.a.table.digest(), p.b.table.digest());
}

#[test]
fn an_encrypted_pair_establishes_and_replicates() {
    let mut p = established();
    for n in [&p.a, &p.b] {
        let st = n.peer.state();
        assert!(st.established && st.authenticated && st.encrypted);
    }
    let s = sessions(1, 50);
    for (k, e) in &s {
        p.a.table.upsert(k, e).unwrap();
    }
    assert!(p.run_until(Duration::from_secs(1), |p| b_has_all(p, &s)));
    assert_eq!(p.a.peer.stats().error_total(), 0);
    assert_eq!(p.b.peer.stats().error_total(), 0);
}

#[test]
fn encryption_on_one_side_only_is_refused_on_both_and_says_why() {
    let mut cfg = encrypted();
    cfg.b.encryption_key = None;
    let mut p = Pair::new(cfg);
    p.connect(SESSION);
    p.run_for(Duration::from_millis(20));
    assert!(!p.a.peer.is_established() && !p.b.peer.is_established());
    assert_eq!(p.a.errors("encryption_required"), 1);
    let why = p.a.peer.state().last_failure.unwrap_or_default();
    assert!(why.contains("encryption"), "{why}");
    assert!(
        p.b.errors("no_encryption_key") + p.b.errors("peer_closed") >= 1,
        "the plain side refuses too"
    );
}

#[test]
fn a_stranger_that_does_not_encrypt_changes_nothing() {
    let mut p = Pair::new(encrypted());
    let now = p.now;
    let mut s = Stranger::connect(&mut p.a, SESSION, [9; 32], now);
    // Keyed hello, but without the encryption capability.
    s.send(
        &mut p.a,
        Channel::Control,
        &s.hello(2, 65535, 1, 16, true),
        now,
    );
    assert_eq!(p.a.errors("encryption_required"), 1);
    let st = p.a.peer.state();
    assert!(st.peer.is_none() && !st.established);
    assert!(p.a.table.is_empty());
}

#[test]
fn a_tampered_frame_is_refused_and_its_shards_resync() {
    let mut p = established();
    let s = write_held(&mut p, 2, 20);
    p.tamper(Side::A, SESSION, |chunks| {
        // The first payload byte of the first frame in flight.
        chunks[0][48] ^= 0x40;
    });
    p.hold(SESSION, false);
    p.run_for(Duration::from_millis(2));
    assert_eq!(p.b.errors("decrypt_failed"), 1);
    reconnects_and_repairs(&mut p, &s);
}

#[test]
fn a_replayed_frame_is_refused() {
    let mut p = established();
    let s = write_held(&mut p, 3, 20);
    p.tamper(Side::A, SESSION, |chunks| {
        let again = chunks.clone();
        chunks.extend(again);
    });
    p.hold(SESSION, false);
    p.run_for(Duration::from_millis(2));
    assert_eq!(p.b.errors("replayed"), 1);
    reconnects_and_repairs(&mut p, &s);
}

#[test]
fn reordered_frames_are_refused() {
    let mut p = established();
    let s = write_held(&mut p, 4, 300);
    let mut reordered = false;
    p.tamper(Side::A, SESSION, |chunks| {
        let mut frames = split_frames(&chunks.concat());
        if frames.len() >= 2 {
            frames.swap(0, 1);
            reordered = true;
        }
        *chunks = vec![frames.concat()];
    });
    assert!(reordered, "expected at least two frames in flight");
    p.hold(SESSION, false);
    p.run_for(Duration::from_millis(2));
    assert_eq!(
        p.b.errors("out_of_order"),
        1,
        "{:?}",
        p.b.peer.stats().errors
    );
    reconnects_and_repairs(&mut p, &s);
}

#[test]
fn a_reflected_frame_is_refused() {
    let mut p = established();
    let s = write_held(&mut p, 5, 20);
    p.reflect(Side::A, SESSION);
    p.hold(SESSION, false);
    p.run_for(Duration::from_millis(2));
    // Its own frames do not open under the key of the other direction (or,
    // when their numbers are not above what A has received, are refused as
    // replayed before any decryption).
    assert_eq!(
        p.a.errors("decrypt_failed") + p.a.errors("replayed"),
        1,
        "{:?}",
        p.a.peer.stats().errors
    );
    reconnects_and_repairs(&mut p, &s);
}

#[test]
fn a_frame_from_another_connection_is_refused() {
    let mut p = established();
    // Capture what A sends on this connection, and keep it from B.
    let s = write_held(&mut p, 6, 20);
    let mut captured = Vec::new();
    p.tamper(Side::A, SESSION, |chunks| captured = std::mem::take(chunks));
    p.cut(SESSION);
    p.hold(SESSION, false);
    p.connect(SESSION);
    assert!(
        p.run_until(Duration::from_secs(1), |p| p.a.peer.is_established()
            && p.b.peer.is_established())
    );
    // The old connection's frames, injected into the new one.
    p.hold(SESSION, true);
    p.tamper(Side::A, SESSION, |chunks| {
        chunks.clear();
        chunks.extend(captured);
    });
    p.hold(SESSION, false);
    p.run_for(Duration::from_millis(2));
    assert_eq!(p.b.errors("decrypt_failed"), 1);
    reconnects_and_repairs(&mut p, &s);
}
