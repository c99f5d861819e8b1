//! The decoder fuzz target's body, shared by `fuzz/` and the corpus replay
//! test: any bytes as a received datagram must decode or be refused with a
//! typed error, never panic, and a decoded entry must re-encode to a
//! message that decodes to the same session.

use crate::codec::{Encoder, Messages, decode_entry};

/// Feeds `data` to the datagram and entry decoders.
pub fn decode_datagram(data: &[u8]) {
    let mut enc = Encoder::new();
    for m in Messages::new(data) {
        let Ok(m) = m else { break };
        let _ = m.error();
        let Ok(c) = decode_entry(m.payload, 1_000) else {
            continue;
        };
        enc.clear();
        enc.commit(&c.key, &c.entry, c.entry.timeout, 1, false, true);
        let Some(Ok(again)) = Messages::new(enc.bytes()).next() else {
            panic!("own message does not frame");
        };
        let back = decode_entry(again.payload, 1_000).expect("own message decodes");
        assert_eq!(back.key, c.key);
        assert_eq!(back.entry.nat, c.entry.nat);
        assert_eq!(back.entry.mark, c.entry.mark);
    }
}
