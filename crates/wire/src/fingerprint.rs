//! [`FORMAT_FINGERPRINT`]: catches a peer built with another rkyv release,
//! other format features or another archived layout, which would otherwise
//! fail (or worse, pass) validation frame by frame.

use crate::frame::{HEADER_LEN, PROTOCOL_VERSION};
use crate::messages::ARCHIVED_LAYOUTS;

/// The rkyv release the format is pinned to (the workspace pins `=0.8.18`;
/// a test checks the two agree).
pub const RKYV_VERSION: &str = "0.8.18";

/// The rkyv format features the workspace enables.
const RKYV_FEATURES: &str = "little_endian,aligned,pointer_width_32";

// Compile-time proof the features are really in effect: these coercions only
// type-check with little-endian, 32-bit-offset, aligned primitives.
const _: fn(rkyv::Archived<u32>) -> rkyv::rend::u32_le = |x| x;
const _: fn(rkyv::Archived<usize>) -> rkyv::rend::u32_le = |x| x;
const _: () = assert!(align_of::<rkyv::Archived<u64>>() == 8);

const fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

const fn fnv1a_u64(h: u64, v: u64) -> u64 {
    fnv1a(h, &v.to_le_bytes())
}

const fn compute() -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325;
    h = fnv1a(h, b"rkyv=");
    h = fnv1a(h, RKYV_VERSION.as_bytes());
    h = fnv1a(h, RKYV_FEATURES.as_bytes());
    h = fnv1a_u64(h, PROTOCOL_VERSION as u64);
    h = fnv1a_u64(h, HEADER_LEN as u64);
    h = fnv1a_u64(h, align_of::<rkyv::Archived<u64>>() as u64);
    h = fnv1a_u64(h, size_of::<rkyv::Archived<usize>>() as u64);
    let mut i = 0;
    while i < ARCHIVED_LAYOUTS.len() {
        let (name, size, align) = ARCHIVED_LAYOUTS[i];
        h = fnv1a(h, name.as_bytes());
        h = fnv1a_u64(h, size as u64);
        h = fnv1a_u64(h, align as u64);
        i += 1;
    }
    h
}

/// Hash of the rkyv version, format features, protocol version and the size
/// and alignment of every archived message and record type. Exchanged in
/// [`crate::Hello`]; peers with different values must not talk.
pub const FORMAT_FINGERPRINT: u64 = compute();
