//! Sizes and durations as people write them — `512MiB`, `1GB`, `64KiB`,
//! `1.5s`, `200ms` — in flags and in the config file alike. A plain number
//! keeps the unit the setting always had (bytes; seconds for
//! `--idle-timeout`, milliseconds for the cluster's `*_ms` keys), so old
//! command lines and files still mean the same.
//!
//! The unit grammars are the crates' (`bytesize`: `KB` = 1000, `KiB` =
//! 1024, case-insensitive; `humantime`: `ms`, `s`, `m`, `h`, fractions and
//! sums like `1m 30s`); only the plain number is handled here.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A number of bytes: `4096`, `64KiB`, `512MiB`, `1GB`, `1.5GiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size(pub u64);

impl Size {
    pub(crate) fn bytes(self) -> u64 {
        self.0
    }

    /// As a `usize`, saturating (a setting's own check then refuses it).
    pub(crate) fn usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Size, String> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Size(n));
        }
        t.parse::<bytesize::ByteSize>()
            .map(|b| Size(b.as_u64()))
            .map_err(|_| format!("expected a size such as 4096 (bytes), 64KiB, 512MiB or 1GB, got {s:?}"))
    }
}

/// The unit a plain number of a duration setting is in.
pub(crate) trait PlainUnit {
    /// For error messages: "seconds", "milliseconds".
    const NAME: &'static str;
    fn duration(n: u64) -> Duration;
}

/// Plain numbers are seconds (`--idle-timeout 30`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Secs;

impl PlainUnit for Secs {
    const NAME: &'static str = "seconds";
    fn duration(n: u64) -> Duration {
        Duration::from_secs(n)
    }
}

/// Plain numbers are milliseconds (`heartbeat_ms = 100`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ms;

impl PlainUnit for Ms {
    const NAME: &'static str = "milliseconds";
    fn duration(n: u64) -> Duration {
        Duration::from_millis(n)
    }
}

/// A duration: `1.5s`, `200ms`, `2m`, `1h 30m`, or a plain number in `U`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span<U> {
    pub duration: Duration,
    unit: PhantomData<U>,
}

/// A duration whose plain numbers are seconds.
pub(super) type Seconds = Span<Secs>;
/// A duration whose plain numbers are milliseconds.
pub(crate) type Millis = Span<Ms>;

impl<U> Span<U> {
    pub(crate) fn new(duration: Duration) -> Self {
        Span { duration, unit: PhantomData }
    }

    pub(crate) fn get(self) -> Duration {
        self.duration
    }

    /// `None` for zero, which the settings use for "never".
    pub(crate) fn non_zero(self) -> Option<Duration> {
        (!self.duration.is_zero()).then_some(self.duration)
    }
}

impl<U: PlainUnit> FromStr for Span<U> {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Span::new(U::duration(n)));
        }
        humantime::parse_duration(t).map(Span::new).map_err(|_| {
            format!("expected a duration such as 1.5s, 200ms or 2m, or a number of {}, got {s:?}", U::NAME)
        })
    }
}

/// A slow-command threshold in microseconds, as Redis's
/// `slowlog-log-slower-than`: `0` logs every command; `off` or a negative
/// number logs none (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Threshold(pub Option<u64>);

impl Threshold {
    pub(crate) fn get(self) -> Option<u64> {
        self.0
    }
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(s: &str) -> Result<Threshold, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("off") {
            return Ok(Threshold(None));
        }
        t.parse::<i64>()
            .map(|n| Threshold(u64::try_from(n).ok()))
            .map_err(|_| format!("expected microseconds (0 = every command) or off, got {s:?}"))
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Threshold;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("microseconds or \"off\"")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Threshold, E> {
                Ok(Threshold(u64::try_from(n).ok()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Threshold, E> {
                Ok(Threshold(Some(n)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Threshold, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A TOML integer (in the plain unit) or string (with a unit), parsed as
/// the flag would be.
struct NumberOrText<T>(PhantomData<T>);

impl<T> Visitor<'_> for NumberOrText<T>
where
    T: FromStr<Err = String>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a non-negative number or a string with a unit")
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        n.to_string().parse().map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        match u64::try_from(n) {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(E::invalid_value(de::Unexpected::Signed(n), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        s.parse().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberOrText(PhantomData))
    }
}

impl<'de, U: PlainUnit> Deserialize<'de> for Span<U> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberOrText(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units_and_plain_numbers_are_bytes() {
        let cases = [
            ("0", 0),
            ("4096", 4096),
            (" 4096 ", 4096),
            ("64KiB", 64 << 10),
            ("64kib", 64 << 10),
            ("512MiB", 512 << 20),
            ("512 MiB", 512 << 20),
            ("1GB", 1_000_000_000),
            ("1.5GiB", 3 << 29),
            ("16KB", 16_000),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Size>(), Ok(Size(want)), "{text:?}");
        }
        for bad in ["", "-1", "1.5", "12 parsecs", "MiB", "0x10", "1,024"] {
            let err = bad.parse::<Size>().unwrap_err();
            assert!(err.starts_with("expected a size such as 4096 (bytes), 64KiB"), "{bad:?}: {err}");
            assert!(err.ends_with(&format!("got {bad:?}")), "{bad:?}: {err}");
        }
    }

    #[test]
    fn durations_take_units_and_plain_numbers_keep_their_unit() {
        let secs = |t: &str| t.parse::<Seconds>().map(Span::get);
        let ms = |t: &str| t.parse::<Millis>().map(Span::get);
        assert_eq!(secs("30"), Ok(Duration::from_secs(30)));
        assert_eq!(ms("30"), Ok(Duration::from_millis(30)));
        assert_eq!(secs("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(ms("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(secs("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(secs("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(secs("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(secs("0"), Ok(Duration::ZERO));
        let err = secs("soon").unwrap_err();
        assert_eq!(
            err,
            "expected a duration such as 1.5s, 200ms or 2m, or a number of seconds, got \"soon\""
        );
        let err = ms("-5").unwrap_err();
        assert!(err.ends_with("or a number of milliseconds, got \"-5\""), "{err}");
        assert_eq!(Seconds::new(Duration::ZERO).non_zero(), None);
        for (text, want) in [("0", Some(0)), ("10000", Some(10000)), ("-1", None), ("OFF", None)] {
            assert_eq!(text.parse::<Threshold>(), Ok(Threshold(want)), "{text}");
        }
        assert!("fast".parse::<Threshold>().is_err());
        assert_eq!(Seconds::new(Duration::from_secs(1)).non_zero(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn toml_takes_a_number_in_the_plain_unit_or_a_string_with_a_unit() {
        #[derive(Deserialize)]
        struct T {
            size: Size,
            after: Millis,
        }
        let t: T = toml::from_str("size = 4096\nafter = 250\n").unwrap();
        assert_eq!((t.size, t.after.get()), (Size(4096), Duration::from_millis(250)));
        let t: T = toml::from_str("size = \"64KiB\"\nafter = \"1.5s\"\n").unwrap();
        assert_eq!((t.size, t.after.get()), (Size(64 << 10), Duration::from_millis(1500)));
        let err = toml::from_str::<T>("size = -1\nafter = 1\n").err().unwrap().to_string();
        assert!(err.contains("a non-negative number or a string with a unit"), "{err}");
        let err = toml::from_str::<T>("size = 1\nafter = \"soon\"\n").err().unwrap().to_string();
        assert!(err.contains("expected a duration such as 1.5s"), "{err}");
        let err = toml::from_str::<T>("size = true\nafter = 1\n").err().unwrap().to_string();
        assert!(err.contains("invalid type: boolean"), "{err}");
    }
}
