//! The remote's side of the harness: connecting, sending frames and
//! handshakes as a peer would, and checking everything the peer sends.

use super::{
    FUZZ_ENCRYPTION_KEY, FUZZ_PSK, FUZZ_SHARDS, Harness, REMOTE_NODE_ID, Remote,
    WRONG_ENCRYPTION_KEY,
};
use crate::auth;
use crate::conn::{ConnKind, Phase};
use crate::handshake::{CAP_AUTH, CAP_ENCRYPT};
use arbitrary::{Arbitrary, Unstructured};
use hotsync_wire::{
    AuthProof, Channel, FORMAT_FINGERPRINT, HEADER_LEN, Hello, Integrity, Message, MessageRef,
    PROTOCOL_VERSION, field,
};

impl Harness {
    pub(super) fn connect(&mut self, kind: ConnKind, peer_is_connector: bool) {
        let now = self.now();
        let nonce = self.nonce();
        let r = &mut self.remotes[kind];
        *r = Remote::new();
        r.open = true;
        r.local_nonce = nonce;
        r.peer_is_connector = peer_is_connector;
        self.peer
            .handle_connected(kind, peer_is_connector, nonce, now);
        self.after_op();
    }

    pub(super) fn disconnect(&mut self, kind: ConnKind) {
        let now = self.now();
        self.flush(kind);
        self.remotes[kind].open = false;
        self.peer.handle_disconnected(kind, now);
        self.after_op();
    }

    /// Feeds bytes to the peer in pieces of `split` bytes, as a socket would.
    pub(super) fn feed(&mut self, kind: ConnKind, bytes: &[u8], split: usize) {
        if !self.remotes[kind].open {
            return;
        }
        let now = self.now();
        let mut failed = false;
        for chunk in bytes.chunks(split.max(1)) {
            if self.peer.handle_bytes(kind, chunk, now).is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            assert_ne!(
                self.phase(kind),
                Phase::Up,
                "an error left the connection up"
            );
        }
    }

    pub(super) fn phase(&self, kind: ConnKind) -> Phase {
        self.peer.state().conn_phase[kind]
    }

    /// Encodes `msg` as the remote's next frame on `kind`.
    pub(super) fn send(
        &mut self,
        kind: ConnKind,
        channel: Channel,
        msg: &Message,
        seq_skew: u64,
        split: usize,
    ) {
        self.send_flipped(kind, channel, msg, seq_skew, split, None);
    }

    /// [`Self::send`], with bit `flip` of the encoded frame inverted (a
    /// tampered frame: header, payload or tag).
    fn send_flipped(
        &mut self,
        kind: ConnKind,
        channel: Channel,
        msg: &Message,
        seq_skew: u64,
        split: usize,
        flip: Option<u32>,
    ) {
        let r = &mut self.remotes[kind];
        if !r.open {
            return;
        }
        r.tx_seq += 1;
        let seq = r.tx_seq.wrapping_add(seq_skew);
        let mut out = Vec::new();
        if msg.encode(&mut r.enc, channel, seq, &mut out).is_err() {
            r.tx_seq -= 1;
            return;
        }
        r.last_sent.clone_from(&out);
        let before = self.phase(kind);
        let hello_nonce = match msg {
            Message::Hello(h) => Some(h.nonce),
            _ => None,
        };
        let is_proof = matches!(msg, Message::AuthProof(_));
        if let Some(bit) = flip {
            let bit = bit as usize % (out.len() * 8);
            out[bit / 8] ^= 1 << (bit % 8);
        }
        self.feed(kind, &out, split);
        let after = self.phase(kind);
        let r = &mut self.remotes[kind];
        if before == Phase::AwaitHello && after != Phase::AwaitHello {
            // Accepted (or accepted, then failed on later bytes): the peer
            // derives its frame key from this nonce.
            if let Some(n) = hello_nonce {
                r.remote_nonce = Some(n);
            }
        }
        // After our proof, we send with frame MACs or encrypted (as a
        // real node does).
        if is_proof && self.psk {
            if let Some(rn) = r.remote_nonce {
                let send = if self.encrypt {
                    let key = if r.wrong_encryption_key {
                        WRONG_ENCRYPTION_KEY
                    } else {
                        FUZZ_ENCRYPTION_KEY
                    };
                    Integrity::Aead(aead_keys(r, &rn, key).0)
                } else {
                    Integrity::Hmac(frame_key(r, &rn))
                };
                r.enc.set_integrity(send);
            }
        }
    }

    /// Operation 15 with link attacks on: 1 replays the remote's last
    /// frame, 2 sends a frame with one bit flipped, 3 reflects the peer's
    /// last frame back to it. False when the input ran out.
    pub(super) fn link_attack(
        &mut self,
        kind: ConnKind,
        attack: u8,
        split: usize,
        u: &mut Unstructured<'_>,
    ) -> bool {
        match attack {
            1 => {
                let frame = self.remotes[kind].last_sent.clone();
                self.feed(kind, &frame, split);
            }
            2 => {
                let Ok(msg) = Message::arbitrary(u) else {
                    return false;
                };
                let channel = if msg.kind().allowed_on(kind.channel()) {
                    kind.channel()
                } else {
                    Channel::Control
                };
                let bit = u32::arbitrary(u).unwrap_or(0);
                self.send_flipped(kind, channel, &msg, 0, split, Some(bit));
            }
            _ => {
                let frame = self.remotes[kind].last_received.clone();
                self.feed(kind, &frame, split);
            }
        }
        true
    }

    /// A complete, valid handshake on `kind` (with a wrong pre-shared key
    /// when `wrong_key`, a wrong encryption key when
    /// `wrong_encryption_key`), as a real peer would do it.
    pub(super) fn handshake(
        &mut self,
        kind: ConnKind,
        role: u8,
        priority: u16,
        wrong_key: bool,
        wrong_encryption_key: bool,
        split: usize,
    ) {
        let nonce = {
            let mut n = self.nonce();
            n[0] ^= 0x80; // never equal to a local nonce
            n
        };
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            format_fingerprint: FORMAT_FINGERPRINT,
            node_id: REMOTE_NODE_ID,
            priority,
            capabilities: match (self.psk, self.encrypt) {
                (true, true) => CAP_AUTH | CAP_ENCRYPT,
                (true, false) => CAP_AUTH,
                _ => 0,
            },
            nonce,
            channel: kind.channel() as u8,
            shard_count: FUZZ_SHARDS as u32,
            role,
            preempt: priority % 2 == 0,
            // Two incarnations: the fuzzer reaches both a resumed and a
            // new relationship after a reconnect.
            incarnation: u64::from(priority % 3 == 0),
        };
        self.send(kind, Channel::Control, &Message::Hello(hello), 0, split);
        self.remotes[kind].wrong_encryption_key = wrong_encryption_key;
        if self.psk {
            let r = &self.remotes[kind];
            let key: &[u8] = if wrong_key { b"not-the-key" } else { FUZZ_PSK };
            let mac = auth::proof(
                key,
                !r.peer_is_connector,
                REMOTE_NODE_ID,
                &nonce,
                &r.local_nonce,
            );
            if !wrong_key && r.remote_nonce == Some(nonce) {
                self.sent_valid_proof = true;
                self.sent_openable_handshake |= !wrong_encryption_key;
            }
            self.send(
                kind,
                Channel::Control,
                &Message::AuthProof(AuthProof { mac }),
                0,
                split,
            );
        }
    }

    /// Takes everything the peer wants to send on `kind` and checks it.
    pub(super) fn flush(&mut self, kind: ConnKind) {
        let now = self.now();
        let mut rounds = 0;
        while let Some(bytes) = self.peer.poll_transmit(kind, now) {
            let bytes = bytes.to_vec();
            self.peer.consume(kind, bytes.len());
            self.check_output(kind, &bytes);
            rounds += 1;
            if rounds > 64 {
                break; // a long batch: enough for one op
            }
        }
    }

    /// Everything the peer sends must decode.
    pub(super) fn check_output(&mut self, kind: ConnKind, bytes: &[u8]) {
        let (psk, encrypt) = (self.psk, self.encrypt);
        let r = &mut self.remotes[kind];
        if r.closed || !r.open {
            return;
        }
        if bytes.len() >= HEADER_LEN {
            let mut len_field = [0u8; 4];
            len_field.copy_from_slice(&bytes[field::PAYLOAD_LEN]);
            let payload = u32::from_le_bytes(len_field);
            let len = (HEADER_LEN + payload as usize).div_ceil(16) * 16;
            r.last_received.clear();
            r.last_received
                .extend_from_slice(&bytes[..len.min(bytes.len())]);
        }
        let mut data = bytes;
        while !data.is_empty() {
            let buf = r.dec.read_buf();
            assert!(!buf.is_empty(), "peer output: decoder full without a frame");
            let n = buf.len().min(data.len());
            buf[..n].copy_from_slice(&data[..n]);
            r.dec.commit(n);
            data = &data[n..];
            loop {
                let frame = match r.dec.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => panic!("the peer sent an undecodable frame: {e}"),
                };
                assert_eq!(frame.header.seq, r.rx_seq + 1, "peer output sequence");
                r.rx_seq = frame.header.seq;
                let msg = frame
                    .message()
                    .unwrap_or_else(|e| panic!("the peer sent an invalid payload: {e}"));
                let switch = match msg {
                    MessageRef::Close(_) => {
                        r.closed = true;
                        return;
                    }
                    MessageRef::AuthProof(_) => psk,
                    _ => false,
                };
                if switch {
                    assert!(!r.rx_keyed, "second proof from the peer");
                    let rn = r.remote_nonce.expect("proof before a hello was accepted");
                    // Checked with the right key whatever the remote used:
                    // the peer must encrypt under it, never send in clear.
                    let receive = if encrypt {
                        Integrity::Aead(aead_keys(r, &rn, FUZZ_ENCRYPTION_KEY).1)
                    } else {
                        Integrity::Hmac(frame_key(r, &rn))
                    };
                    r.dec.set_integrity(receive);
                    r.rx_keyed = true;
                }
            }
        }
    }
}

fn frame_key(r: &Remote, remote_nonce: &[u8; 32]) -> [u8; 32] {
    if r.peer_is_connector {
        auth::frame_key(FUZZ_PSK, &r.local_nonce, remote_nonce)
    } else {
        auth::frame_key(FUZZ_PSK, remote_nonce, &r.local_nonce)
    }
}

/// The remote's `(send, receive)` encryption keys on `r` under
/// `encryption_key` (the peer derives its own with the right one).
fn aead_keys(r: &Remote, remote_nonce: &[u8; 32], encryption_key: &[u8]) -> ([u8; 32], [u8; 32]) {
    let remote_is_connector = !r.peer_is_connector;
    let (connector, acceptor) = if remote_is_connector {
        (remote_nonce, &r.local_nonce)
    } else {
        (&r.local_nonce, remote_nonce)
    };
    hotsync_wire::aead::derive_keys(encryption_key, FUZZ_PSK, connector, acceptor)
        .for_side(remote_is_connector)
}
