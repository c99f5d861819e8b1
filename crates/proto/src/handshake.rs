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

/// Where a handshake got to after a frame.
pub(crate) enum Progress {
    /// Our proof is sent; the remote's is awaited.
    AwaitProof,
    /// The handshake is complete: the connection may go up.
    Complete {
        /// Whether the remote proved the pre-shared key.
        authenticated: bool,
        /// With a key: the frame-MAC key the decoder switches to.
        frame_key: Option<[u8; 32]>,
    },
}

/// Our hello for `conn`.
pub(crate) fn hello(conn: &Conn, cfg: &ProtoConfig, shard_count: usize, role: Role) -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        format_fingerprint: FORMAT_FINGERPRINT,
        node_id: cfg.node_id,
        priority: cfg.priority,
        capabilities: if cfg.psk.is_some() { CAP_AUTH } else { 0 },
        nonce: conn.nonce,
        channel: conn.kind.channel() as u8,
        shard_count: shard_count as u32,
        role: role.to_u8(),
        preempt: cfg.preempt_delay.is_some(),
    }
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
    let peer_requires_auth = hello.capabilities.to_native() & CAP_AUTH != 0;
    conn.peer_nonce = hello.nonce;
    conn.claim = Some(PeerInfo {
        node_id: hello.node_id.to_native(),
        priority: hello.priority.to_native(),
        role: Role::from_u8(hello.role),
        preempt: hello.preempt,
    });
    let Some(psk) = &cfg.psk else {
        if peer_requires_auth {
            return Err(ProtoError::NoKeyConfigured);
        }
        return Ok(Progress::Complete {
            authenticated: false,
            frame_key: None,
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
    // Everything we send after the proof carries a frame MAC.
    let key = frame_key(conn, psk);
    conn.encoder.set_integrity(Integrity::Hmac(key));
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
        frame_key: Some(frame_key(conn, psk)),
    })
}

fn frame_key(conn: &Conn, psk: &[u8]) -> [u8; 32] {
    let (connector, acceptor) = if conn.is_connector {
        (&conn.nonce, &conn.peer_nonce)
    } else {
        (&conn.peer_nonce, &conn.nonce)
    };
    auth::frame_key(psk, connector, acceptor)
}
