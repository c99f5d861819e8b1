//! A third party that speaks the wire format but is not the peer.

use super::Node;
use crate::conn::ConnKind;
use crate::handshake::CAP_AUTH;
use hotsync_wire::{
    Channel, FORMAT_FINGERPRINT, FrameEncoder, Hello, PROTOCOL_VERSION, WireMessage,
};
use std::time::Instant;

/// A third party on one of A's connections: it speaks the wire format and
/// says what it likes, but holds no key.
pub struct Stranger {
    kind: ConnKind,
    encoder: FrameEncoder,
    seq: u64,
    /// Its nonce.
    pub nonce: [u8; 32],
    /// The nonce the node was given for the connection.
    local: [u8; 32],
}

impl Stranger {
    /// Opens `kind` on `node` from a stranger (the node accepts).
    pub fn connect(node: &mut Node, kind: ConnKind, nonce: [u8; 32], now: Instant) -> Self {
        let mut local = nonce;
        local[0] ^= 0xff;
        Self::accepted(node, kind, nonce, local, now)
    }

    /// Opens `kind` on `node` from a stranger whose hello will carry
    /// `nonce`, the node being given `local_nonce` for the connection.
    pub fn accepted(
        node: &mut Node,
        kind: ConnKind,
        nonce: [u8; 32],
        local_nonce: [u8; 32],
        now: Instant,
    ) -> Self {
        node.peer.handle_connected(kind, false, local_nonce, now);
        Self {
            kind,
            encoder: FrameEncoder::new(hotsync_wire::DEFAULT_MAX_FRAME_LEN),
            seq: 0,
            nonce,
            local: local_nonce,
        }
    }

    /// The nonce the node was given for this connection (a hello carrying
    /// it is a reflection).
    pub fn local_nonce(&self) -> [u8; 32] {
        self.local
    }

    /// Skips `n` sequence numbers (the next frame arrives out of order).
    pub fn skip_seq(&mut self, n: u64) {
        self.seq += n;
    }

    /// A hello claiming `node_id`, `priority` and `role` (wire code), for a
    /// table of `shards` shards, announcing a key when `auth`.
    pub fn hello(&self, node_id: u64, priority: u16, role: u8, shards: u32, auth: bool) -> Hello {
        Hello {
            protocol_version: PROTOCOL_VERSION,
            format_fingerprint: FORMAT_FINGERPRINT,
            node_id,
            priority,
            capabilities: if auth { CAP_AUTH } else { 0 },
            nonce: self.nonce,
            channel: self.kind.channel() as u8,
            shard_count: shards,
            role,
            preempt: false,
            incarnation: 0x0057_5241_4e47_4552,
        }
    }

    /// Sends `msg` as its next frame (on the control channel for handshake
    /// and connection messages, else on the connection's own).
    pub fn send<M: WireMessage>(
        &mut self,
        node: &mut Node,
        channel: Channel,
        msg: &M,
        now: Instant,
    ) {
        let mut out = Vec::new();
        if self.encode(channel, msg, &mut out) {
            let _ = node.peer.handle_bytes(self.kind, &out, now);
        }
        while let Some(ev) = node.peer.poll_event() {
            node.events.push(ev);
        }
        while let Some(action) = node.peer.poll_action() {
            node.actions.push(action);
        }
    }
}

impl Stranger {
    /// Appends `msg` as its next frame to `out`, to be delivered later
    /// (several frames in one read). False if it does not encode.
    pub fn encode<M: WireMessage>(&mut self, channel: Channel, msg: &M, out: &mut Vec<u8>) -> bool {
        self.seq += 1;
        self.encoder.encode(channel, self.seq, msg, out).is_ok()
    }
}

impl std::fmt::Debug for Stranger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stranger")
            .field("kind", &self.kind)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}
