//! A small seedable random source for schedules and simulated networks.

/// splitmix64: small, seedable, the same on every platform and release,
/// so a seed replays the same run everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A source starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 for `n` 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True `per_mille` times in a thousand.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// A connection nonce.
    pub fn nonce(&mut self) -> [u8; 32] {
        let mut n = [0u8; 32];
        for c in n.chunks_mut(8) {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        n
    }
}
