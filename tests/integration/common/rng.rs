//! A small deterministic RNG, so random-input tests replay exactly: the
//! SplitMix64 the replication state machines take for their jitter.

#[derive(Debug, Clone)]
pub struct SeededRng(burrow_server::replication::SeededRng);

impl SeededRng {
    pub fn new(seed: u64) -> SeededRng {
        SeededRng(burrow_server::replication::SeededRng::new(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform-ish in `lo..hi` (hi exclusive).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
