//! Frame encryption (`hrp encryption-key`): AES-256-GCM over each frame's
//! payload, keyed per connection and per direction.
//!
//! - **Key schedule** ([`derive_keys`]): HKDF-SHA256 with both handshake
//!   nonces as the salt and the encryption key and the authentication key as
//!   the input keying material, expanded once per direction. Every
//!   connection draws fresh nonces, so no key is ever used on two
//!   connections, before or after a restart.
//! - **Nonce**: four zero bytes and the frame's sequence number, big-endian.
//!   The frame cipher (`FrameCipher`) refuses to seal a sequence number
//!   that is not above the last one it sealed, so a key and nonce pair is
//!   never used twice.
//! - **Associated data**: the 48-byte header with its tag field zeroed; the
//!   GCM tag then goes into that field. Padding stays zero and in clear.
//! - **Replay and reordering**: after its first encrypted frame, the opening
//!   side accepts only the next sequence number: a lower one is a replay, a
//!   higher one a reordering or a dropped frame. The header (with the
//!   sequence number) is authenticated, so it cannot be rewritten.
//! - **Reflection**: the two directions have different keys, so a frame sent
//!   back to its sender does not open.
//! - **Wrap**: sequence numbers stop at [`SEQ_LIMIT`]; the sender must
//!   reconnect (fresh nonces, fresh keys) before then.

use crate::error::{DecodeError, EncodeError};
use crate::frame::HEADER_LEN;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use ring::hkdf;

/// First sequence number that may not be sealed: far beyond any connection's
/// life (2^48 frames is nine years at a million frames a second), and well
/// inside GCM's limits for one key with counter nonces.
pub const SEQ_LIMIT: u64 = 1 << 48;

/// HKDF label of the connector-to-acceptor key.
const LABEL_FROM_CONNECTOR: &[u8] = b"hotsync-aead-v1 connector to acceptor";
/// HKDF label of the acceptor-to-connector key.
const LABEL_FROM_ACCEPTOR: &[u8] = b"hotsync-aead-v1 acceptor to connector";

/// The two frame keys of one connection.
#[derive(Clone, PartialEq, Eq)]
pub struct DirectionKeys {
    /// Seals what the connecting side sends (and opens it on the acceptor).
    pub from_connector: [u8; 32],
    /// Seals what the accepting side sends.
    pub from_acceptor: [u8; 32],
}

impl std::fmt::Debug for DirectionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectionKeys(<redacted>)")
    }
}

impl DirectionKeys {
    /// `(send, receive)` keys for the side that connected (`true`) or
    /// accepted (`false`).
    pub fn for_side(&self, connector: bool) -> ([u8; 32], [u8; 32]) {
        if connector {
            (self.from_connector, self.from_acceptor)
        } else {
            (self.from_acceptor, self.from_connector)
        }
    }
}

/// Derives the connection's two frame keys (see the module docs).
///
/// The keys are length-prefixed in the input keying material so that no two
/// different (encryption key, authentication key) pairs give the same input.
pub fn derive_keys(
    encryption_key: &[u8],
    authentication_key: &[u8],
    connector_nonce: &[u8; 32],
    acceptor_nonce: &[u8; 32],
) -> DirectionKeys {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(connector_nonce);
    salt[32..].copy_from_slice(acceptor_nonce);
    let mut ikm = Vec::with_capacity(8 + encryption_key.len() + authentication_key.len());
    for part in [encryption_key, authentication_key] {
        // Configuration keys are short text; a length over u32 is impossible.
        ikm.extend_from_slice(&(part.len() as u32).to_le_bytes());
        ikm.extend_from_slice(part);
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(&ikm);
    let expand = |label: &[u8]| {
        let mut key = [0u8; 32];
        let info = [label];
        // 32 bytes is far below HKDF-SHA256's 255 * 32 limit: neither call
        // can fail.
        if let Ok(okm) = prk.expand(&info, &AES_256_GCM) {
            let _ = okm.fill(&mut key);
        }
        key
    };
    DirectionKeys {
        from_connector: expand(LABEL_FROM_CONNECTOR),
        from_acceptor: expand(LABEL_FROM_ACCEPTOR),
    }
}

/// One direction's AES-256-GCM state: the expanded key and the last
/// sequence number it sealed or opened.
pub(crate) struct FrameCipher {
    key: LessSafeKey,
    last_seq: Option<u64>,
}

fn nonce(seq: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&seq.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

impl FrameCipher {
    pub(crate) fn new(key: &[u8; 32], last_seq: Option<u64>) -> Self {
        // AES-256-GCM takes exactly 32-byte keys: construction cannot fail.
        let unbound = UnboundKey::new(&AES_256_GCM, key).unwrap_or_else(|_| unreachable!());
        Self {
            key: LessSafeKey::new(unbound),
            last_seq,
        }
    }

    /// Encrypts `payload` in place; returns the tag.
    pub(crate) fn seal(
        &mut self,
        seq: u64,
        header: &[u8; HEADER_LEN],
        payload: &mut [u8],
    ) -> Result<[u8; 16], EncodeError> {
        if seq >= SEQ_LIMIT {
            return Err(EncodeError::RekeyRequired { seq });
        }
        if self.last_seq.is_some_and(|last| seq <= last) {
            return Err(EncodeError::SequenceReused { seq });
        }
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(seq), Aad::from(&header[..]), payload)
            .map_err(|_| EncodeError::RekeyRequired { seq })?;
        self.last_seq = Some(seq);
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Checks and decrypts `payload` in place. `header` has its tag zeroed.
    pub(crate) fn open(
        &mut self,
        seq: u64,
        header: &[u8; HEADER_LEN],
        payload: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), DecodeError> {
        if let Some(last) = self.last_seq {
            if seq <= last {
                return Err(DecodeError::Replayed { seq, last });
            }
            if seq != last + 1 {
                return Err(DecodeError::OutOfOrder {
                    seq,
                    expected: last + 1,
                });
            }
        }
        let tag = Tag::from(*tag);
        self.key
            .open_in_place_separate_tag(nonce(seq), Aad::from(&header[..]), tag, payload, 0..)
            .map_err(|_| DecodeError::DecryptFailed)?;
        self.last_seq = Some(seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_direction_nonce_and_each_secret() {
        let base = derive_keys(b"enc", b"auth", &[1; 32], &[2; 32]);
        assert_ne!(base.from_connector, base.from_acceptor);
        for other in [
            derive_keys(b"enX", b"auth", &[1; 32], &[2; 32]),
            derive_keys(b"enc", b"autX", &[1; 32], &[2; 32]),
            derive_keys(b"enc", b"auth", &[3; 32], &[2; 32]),
            derive_keys(b"enc", b"auth", &[1; 32], &[3; 32]),
            // Length prefixes: moving a byte between the secrets changes the keys.
            derive_keys(b"enca", b"uth", &[1; 32], &[2; 32]),
        ] {
            assert_ne!(base.from_connector, other.from_connector);
            assert_ne!(base.from_acceptor, other.from_acceptor);
        }
        assert_eq!(base, derive_keys(b"enc", b"auth", &[1; 32], &[2; 32]));
    }

    #[test]
    fn seal_refuses_reused_and_exhausted_sequence_numbers() {
        let mut c = FrameCipher::new(&[7; 32], None);
        let h = [0u8; HEADER_LEN];
        let mut p = [1u8; 32];
        assert!(c.seal(5, &h, &mut p).is_ok());
        assert_eq!(
            c.seal(5, &h, &mut p),
            Err(EncodeError::SequenceReused { seq: 5 })
        );
        assert_eq!(
            c.seal(4, &h, &mut p),
            Err(EncodeError::SequenceReused { seq: 4 })
        );
        assert_eq!(
            c.seal(SEQ_LIMIT, &h, &mut p),
            Err(EncodeError::RekeyRequired { seq: SEQ_LIMIT })
        );
    }

    #[test]
    fn open_refuses_replay_wrong_key_and_tampered_header() {
        let h = [9u8; HEADER_LEN];
        let plain = *b"sixteen byte msg";
        let mut sealed = plain;
        let tag = FrameCipher::new(&[7; 32], None)
            .seal(3, &h, &mut sealed)
            .unwrap();
        assert_ne!(sealed, plain);

        let mut wrong_key = sealed;
        assert_eq!(
            FrameCipher::new(&[8; 32], None).open(3, &h, &mut wrong_key, &tag),
            Err(DecodeError::DecryptFailed)
        );
        let mut other_header = h;
        other_header[5] ^= 1;
        let mut tampered = sealed;
        assert_eq!(
            FrameCipher::new(&[7; 32], None).open(3, &other_header, &mut tampered, &tag),
            Err(DecodeError::DecryptFailed)
        );
        let mut wrong_seq = sealed;
        assert_eq!(
            FrameCipher::new(&[7; 32], None).open(4, &h, &mut wrong_seq, &tag),
            Err(DecodeError::DecryptFailed)
        );

        let mut rx = FrameCipher::new(&[7; 32], None);
        let mut once = sealed;
        rx.open(3, &h, &mut once, &tag).unwrap();
        assert_eq!(once, plain);
        let mut again = sealed;
        assert_eq!(
            rx.open(3, &h, &mut again, &tag),
            Err(DecodeError::Replayed { seq: 3, last: 3 })
        );
    }
}
