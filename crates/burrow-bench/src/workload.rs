//! What to send: the test kinds, the per-request operations, key numbers and
//! a tiny seeded RNG.
//!
//! Keys are `key:` (or `counter:` for INCR) plus a 12-digit zero-padded
//! number, as redis-benchmark's `key:__rand_int__`, so a SET/GET key is
//! exactly 16 bytes and every request of one kind has the same length: the
//! wire encoders build one template per operation and patch the digits in.

use std::fmt;
use std::str::FromStr;

/// Digits in a key number; bounds the keyspace to 10^12.
pub(crate) const KEY_DIGITS: usize = 12;
/// Largest `--keyspace` the fixed-width key format can express.
pub const MAX_KEYSPACE: u64 = 1_000_000_000_000;
/// Key prefix of SET, GET and mixed.
pub(crate) const KEY_PREFIX: &[u8] = b"key:";
/// Key prefix of INCR (redis-benchmark's `counter:__rand_int__`).
pub(crate) const COUNTER_PREFIX: &[u8] = b"counter:";
/// The one list LPUSH and LPOP work on, as in redis-benchmark.
pub(crate) const LIST_KEY: &[u8] = b"mylist";

/// One benchmark, as named on the command line (`-t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKind {
    Ping,
    Set,
    Get,
    Incr,
    LPush,
    LPop,
    /// SET and GET interleaved at random in the `--ratio SET:GET` proportion.
    Mixed,
}

impl TestKind {
    pub const ALL: [TestKind; 7] = [
        TestKind::Ping,
        TestKind::Set,
        TestKind::Get,
        TestKind::Incr,
        TestKind::LPush,
        TestKind::LPop,
        TestKind::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TestKind::Ping => "ping",
            TestKind::Set => "set",
            TestKind::Get => "get",
            TestKind::Incr => "incr",
            TestKind::LPush => "lpush",
            TestKind::LPop => "lpop",
            TestKind::Mixed => "mixed",
        }
    }

    /// The single operation this test sends, or `None` for `mixed`.
    pub(crate) fn op(self) -> Option<Op> {
        match self {
            TestKind::Ping => Some(Op::Ping),
            TestKind::Set => Some(Op::Set),
            TestKind::Get => Some(Op::Get),
            TestKind::Incr => Some(Op::Incr),
            TestKind::LPush => Some(Op::LPush),
            TestKind::LPop => Some(Op::LPop),
            TestKind::Mixed => None,
        }
    }
}

impl fmt::Display for TestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TestKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        TestKind::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| {
            let known: Vec<&str> = TestKind::ALL.iter().map(|t| t.name()).collect();
            format!("unknown test '{s}' (known: {})", known.join(", "))
        })
    }
}

/// One request on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Ping,
    Set,
    Get,
    Incr,
    LPush,
    LPop,
}

impl Op {
    pub(crate) const ALL: [Op; 6] = [Op::Ping, Op::Set, Op::Get, Op::Incr, Op::LPush, Op::LPop];

    /// The command's name, as both protocols spell it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Ping => "PING",
            Op::Set => "SET",
            Op::Get => "GET",
            Op::Incr => "INCR",
            Op::LPush => "LPUSH",
            Op::LPop => "LPOP",
        }
    }

    /// Index into per-operation tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The key prefix, or `None` when the operation uses no key or a fixed one.
    pub(crate) fn key_prefix(self) -> Option<&'static [u8]> {
        match self {
            Op::Set | Op::Get => Some(KEY_PREFIX),
            Op::Incr => Some(COUNTER_PREFIX),
            Op::Ping | Op::LPush | Op::LPop => None,
        }
    }
}

/// SET:GET proportion of the `mixed` test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub set: u32,
    pub get: u32,
}

impl Default for Ratio {
    /// 1:10, the read-heavy mix memtier_benchmark defaults to.
    fn default() -> Self {
        Ratio { set: 1, get: 10 }
    }
}

impl FromStr for Ratio {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("ratio must be SET:GET with whole numbers, not both zero (got '{s}')");
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        let set: u32 = a.trim().parse().map_err(|_| bad())?;
        let get: u32 = b.trim().parse().map_err(|_| bad())?;
        if set == 0 && get == 0 {
            return Err(bad());
        }
        Ok(Ratio { set, get })
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.set, self.get)
    }
}

impl Ratio {
    /// Picks SET or GET from a uniformly random `r`.
    pub(crate) fn pick(self, r: u64) -> Op {
        let total = self.set as u64 + self.get as u64;
        if below(r, total) < self.set as u64 {
            Op::Set
        } else {
            Op::Get
        }
    }
}

/// The load generator's seeded RNG (fastrand's WyRand): the same seed picks
/// the same operations and keys, so a run can be repeated exactly.
#[derive(Debug, Clone)]
pub(crate) struct Rng(fastrand::Rng);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(fastrand::Rng::with_seed(seed))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.u64(..)
    }
}

/// Maps a uniform `r` onto `0..n` without a division (Lemire's multiply-shift).
pub(crate) fn below(r: u64, n: u64) -> u64 {
    ((r as u128 * n as u128) >> 64) as u64
}

/// Writes `n` as exactly [`KEY_DIGITS`] zero-padded decimal digits.
/// `n` must be below [`MAX_KEYSPACE`].
pub(crate) fn write_digits(dst: &mut [u8], mut n: u64) {
    debug_assert!(n < MAX_KEYSPACE);
    for slot in dst[..KEY_DIGITS].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The key for key number `n` of operation `op`, for tests to compare
/// with (the hot path patches templates instead).
#[cfg(test)]
pub(crate) fn key_for(op: Op, n: u64) -> Vec<u8> {
    match op.key_prefix() {
        Some(prefix) => {
            let mut k = prefix.to_vec();
            k.resize(prefix.len() + KEY_DIGITS, b'0');
            write_digits(&mut k[prefix.len()..], n);
            k
        }
        None if matches!(op, Op::LPush | Op::LPop) => LIST_KEY.to_vec(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sixteen_bytes_and_zero_padded() {
        assert_eq!(key_for(Op::Set, 42), b"key:000000000042");
        assert_eq!(key_for(Op::Get, MAX_KEYSPACE - 1), b"key:999999999999");
        assert_eq!(key_for(Op::Set, 0).len(), 16);
        assert_eq!(key_for(Op::Incr, 7), b"counter:000000000007");
        assert_eq!(key_for(Op::LPush, 7), b"mylist");
        assert!(key_for(Op::Ping, 7).is_empty());
    }

    #[test]
    fn test_names_round_trip() {
        for t in TestKind::ALL {
            assert_eq!(t.name().parse::<TestKind>().unwrap(), t);
        }
        assert_eq!(" SET ".parse::<TestKind>().unwrap(), TestKind::Set);
        assert!("hset".parse::<TestKind>().unwrap_err().contains("unknown test"));
    }

    #[test]
    fn ratio_parses_and_picks_in_proportion() {
        assert_eq!("3:7".parse::<Ratio>().unwrap(), Ratio { set: 3, get: 7 });
        assert!("0:0".parse::<Ratio>().is_err());
        assert!("1".parse::<Ratio>().is_err());
        assert!("a:b".parse::<Ratio>().is_err());
        let r = Ratio { set: 1, get: 3 };
        let mut rng = Rng::new(9);
        let sets = (0..40_000).filter(|_| r.pick(rng.next_u64()) == Op::Set).count();
        assert!((9_000..11_000).contains(&sets), "{sets}");
        let only_get = Ratio { set: 0, get: 1 };
        assert!((0..1000).all(|_| only_get.pick(rng.next_u64()) == Op::Get));
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(1);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = below(rng.next_u64(), 10);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(below(u64::MAX, 1), 0);
    }

    #[test]
    fn splitmix_is_deterministic_per_seed() {
        let a: Vec<u64> = {
            let mut r = Rng::new(5);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let mut r = Rng::new(5);
        assert!(a.iter().all(|v| *v == r.next_u64()));
        assert_ne!(Rng::new(6).next_u64(), a[0]);
    }
}
