//! Pre-shared-key authentication: HMAC-SHA256 challenge-response over both
//! nonces, and the per-connection frame key derived from it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const AUTH_LABEL: &[u8] = b"hotsync-auth-v1";
const KEY_LABEL: &[u8] = b"hotsync-frame-key-v1";

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// The proof a node sends: binds the key, which side of the TCP connection
/// it is (so a proof cannot be reflected back), its node id, and both
/// nonces (so an old proof cannot be replayed against a fresh nonce).
pub fn proof(
    psk: &[u8],
    prover_is_connector: bool,
    prover_node_id: u64,
    prover_nonce: &[u8; 32],
    verifier_nonce: &[u8; 32],
) -> [u8; 32] {
    hmac(
        psk,
        &[
            AUTH_LABEL,
            &[u8::from(prover_is_connector)],
            &prover_node_id.to_le_bytes(),
            prover_nonce,
            verifier_nonce,
        ],
    )
}

/// Constant-time comparison of two proofs.
pub fn proofs_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Key for the frame MACs of one connection, from both nonces.
pub fn frame_key(psk: &[u8], connector_nonce: &[u8; 32], acceptor_nonce: &[u8; 32]) -> [u8; 32] {
    hmac(psk, &[KEY_LABEL, connector_nonce, acceptor_nonce])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_depends_on_every_input() {
        let base = proof(b"k", true, 1, &[1; 32], &[2; 32]);
        assert!(proofs_equal(
            &base,
            &proof(b"k", true, 1, &[1; 32], &[2; 32])
        ));
        assert!(!proofs_equal(
            &base,
            &proof(b"x", true, 1, &[1; 32], &[2; 32])
        ));
        assert!(!proofs_equal(
            &base,
            &proof(b"k", false, 1, &[1; 32], &[2; 32])
        ));
        assert!(!proofs_equal(
            &base,
            &proof(b"k", true, 2, &[1; 32], &[2; 32])
        ));
        assert!(!proofs_equal(
            &base,
            &proof(b"k", true, 1, &[3; 32], &[2; 32])
        ));
        assert!(!proofs_equal(
            &base,
            &proof(b"k", true, 1, &[1; 32], &[3; 32])
        ));
    }
}
