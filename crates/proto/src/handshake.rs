//! One connection's handshake: hello, key proof, completion.
//!
//! Everything here works on the connection alone. The remote's claims
//! (node id, priority, role) are kept on the [`Conn`] until its handshake
//! completes; only then does the caller adopt them as the node's view of
//! its peer. A stranger that says hello and never proves the key changes
//! nothing shared: no role, no display, no proof check of the real peer.

use crate::auth;
use crate::conn::{Conn, ConnKind, Phase};
use crate::error::ProtoError;
use crate::event::PeerInfo;
use crate::role::Role;
use crate::settings::ProtoConfig;
use crate::stats::Stats;
use hotsync_wire::{
    ArchivedHello, AuthProof, Channel, FORMAT_FINGERPRINT, Hello, Integrity, PROTOCOL_VERSION,
};
use std::time::Instant;

/// Capability bit: this node requires the pre-shared-key proof.
pub const CAP_AUTH: u32 = 1;
/// Capability bit: this node encrypts every frame after the handshake and
/// talks to no peer that does not.
pub const CAP_ENCRYPT: u32 = 2;

/// Where a handshake got to after a frame.
pub(crate) enum Progress {
    /// Our proof is sent; the remote's is awaited.
    AwaitProof,
    /// The handshake is complete: the connection may go up.
    Complete {
        /// Whether the remote proved the pre-shared key.
        authenticated: bool,
        /// With a key: what the decoder switches to (frame MACs, or
        /// decryption with the remote's direction key).
        receive: Option<Integrity>,
    },
}

/// Our hello for `conn`, announcing this process's `incarnation`.
pub(crate) fn hello(
    conn: &Conn,
    cfg: &ProtoConfig,
    shard_count: usize,
    role: Role,
    incarnation: u64,
) -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        format_fingerprint: FORMAT_FINGERPRINT,
        node_id: cfg.node_id,
        priority: cfg.priority,
        capabilities: capabilities(cfg),
        nonce: conn.nonce,
        channel: conn.kind.channel() as u8,
        shard_count: shard_count as u32,
        role: role.to_u8(),
        preempt: cfg.preempt_delay.is_some(),
        incarnation,
    }
}

/// The capability bits our hello announces.
fn capabilities(cfg: &ProtoConfig) -> u32 {
    let mut caps = 0;
    if cfg.psk.is_some() {
        caps |= CAP_AUTH;
    }
    if cfg.psk.is_some() && cfg.encryption_key.is_some() {
        caps |= CAP_ENCRYPT;
    }
    caps
}

/// Checks the remote's hello, keeps its claims on the connection, and
/// with a key sends our proof.
pub(crate) fn on_hello(
    conn: &mut Conn,
    hello: &ArchivedHello,
    cfg: &ProtoConfig,
    shard_count: usize,
    stats: &mut Stats,
    now: Instant,
) -> Result<Progress, ProtoError> {
    check_compatible(conn, hello, cfg, shard_count)?;
    let role = hello.role()?;
    let peer_caps = hello.capabilities.to_native();
    let peer_requires_auth = peer_caps & CAP_AUTH != 0;
    // No downgrade, either way: both sides encrypt or the link stays down.
    let we_encrypt = capabilities(cfg) & CAP_ENCRYPT != 0;
    match (we_encrypt, peer_caps & CAP_ENCRYPT != 0) {
        (true, false) => return Err(ProtoError::EncryptionRequired),
        (false, true) => return Err(ProtoError::NoEncryptionKey),
        _ => {}
    }
    conn.peer_nonce = hello.nonce;
    conn.claim = Some(PeerInfo {
        node_id: hello.node_id.to_native(),
        priority: hello.priority.to_native(),
        role,
        preempt: hello.preempt,
        incarnation: hello.incarnation.to_native(),
    });
    let Some(psk) = &cfg.psk else {
        if peer_requires_auth {
            return Err(ProtoError::NoKeyConfigured);
        }
        return Ok(Progress::Complete {
            authenticated: false,
            receive: None,
        });
    };
    if !peer_requires_auth {
        return Err(ProtoError::AuthRequired);
    }
    let mac = auth::proof(
        psk,
        conn.is_connector,
        cfg.node_id,
        &conn.nonce,
        &conn.peer_nonce,
    );
    conn.send(Channel::Control, &AuthProof { mac }, stats, now)?;
    // Everything we send after the proof carries a frame MAC, or is
    // encrypted.
    let (send, _) = link_keys(conn, cfg, psk);
    conn.encoder.set_integrity(send);
    conn.phase = Phase::AwaitAuth;
    Ok(Progress::AwaitProof)
}

/// Everything in a hello that refuses the remote before any claim is kept.
fn check_compatible(
    conn: &Conn,
    hello: &ArchivedHello,
    cfg: &ProtoConfig,
    shard_count: usize,
) -> Result<(), ProtoError> {
    let version = hello.protocol_version.to_native();
    if version != PROTOCOL_VERSION {
        return Err(ProtoError::VersionMismatch {
            local: PROTOCOL_VERSION,
            peer: version,
        });
    }
    let fp = hello.format_fingerprint.to_native();
    if fp != FORMAT_FINGERPRINT {
        return Err(ProtoError::FormatMismatch {
            local: FORMAT_FINGERPRINT,
            peer: fp,
        });
    }
    let shards = hello.shard_count.to_native();
    if shards as usize != shard_count {
        return Err(ProtoError::ShardCountMismatch {
            local: shard_count as u32,
            peer: shards,
        });
    }
    let node_id = hello.node_id.to_native();
    if node_id == cfg.node_id {
        return Err(ProtoError::SameNodeId(node_id));
    }
    if ConnKind::from_wire(hello.channel) != Some(conn.kind) {
        return Err(ProtoError::WrongChannel {
            expected: conn.kind.name(),
            got: "other",
        });
    }
    if hello.nonce == conn.nonce {
        return Err(ProtoError::NonceReflected);
    }
    Ok(())
}

/// Checks the remote's proof against the node id it claimed on this
/// same connection.
pub(crate) fn on_proof(
    conn: &Conn,
    mac: &[u8; 32],
    cfg: &ProtoConfig,
) -> Result<Progress, ProtoError> {
    let Some(psk) = &cfg.psk else {
        return Err(ProtoError::NoKeyConfigured);
    };
    let peer_id = conn.claim.map_or(0, |p| p.node_id);
    let expected = auth::proof(
        psk,
        !conn.is_connector,
        peer_id,
        &conn.peer_nonce,
        &conn.nonce,
    );
    if !auth::proofs_equal(&expected, mac) {
        return Err(ProtoError::AuthFailed);
    }
    Ok(Progress::Complete {
        authenticated: true,
        receive: Some(link_keys(conn, cfg, psk).1),
    })
}

/// `(send, receive)` frame protection of this connection once the key is
/// proven: one HMAC key for both directions, or (with an encryption key)
/// one AES-256-GCM key per direction, all from this connection's nonces.
fn link_keys(conn: &Conn, cfg: &ProtoConfig, psk: &[u8]) -> (Integrity, Integrity) {
    let (connector, acceptor) = if conn.is_connector {
        (&conn.nonce, &conn.peer_nonce)
    } else {
        (&conn.peer_nonce, &conn.nonce)
    };
    match &cfg.encryption_key {
        Some(enc) => {
            let keys = hotsync_wire::aead::derive_keys(enc, psk, connector, acceptor);
            let (send, receive) = keys.for_side(conn.is_connector);
            (Integrity::Aead(send), Integrity::Aead(receive))
        }
        None => {
            let key = auth::frame_key(psk, connector, acceptor);
            (Integrity::Hmac(key), Integrity::Hmac(key))
        }
    }
}
