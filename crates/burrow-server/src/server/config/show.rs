//! Settings as text, for CONFIG GET: each value written so that the flag
//! (and CONFIG SET) would read it back as the same value. Paths are shown
//! as paths: a secret's file, never its contents.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::{LogFormat, TlsClientAuth};
use crate::persist::FsyncPolicy;
use crate::store::EvictionPolicy;

/// A setting's value as CONFIG GET shows it.
pub(crate) trait Show {
    fn show(&self) -> String;
}

macro_rules! show_by_display {
    ($($t:ty),+) => {$(
        impl Show for $t {
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )+};
}
show_by_display!(IpAddr, u16, u64, usize, bool);

/// Enum settings: the word the flag takes.
macro_rules! show_by_value_enum {
    ($($t:ty),+) => {$(
        impl Show for $t {
            fn show(&self) -> String {
                clap::ValueEnum::to_possible_value(self).map(|v| v.get_name().to_string()).unwrap_or_default()
            }
        }
    )+};
}
show_by_value_enum!(FsyncPolicy, LogFormat, EvictionPolicy, TlsClientAuth);

impl Show for PathBuf {
    fn show(&self) -> String {
        self.display().to_string()
    }
}

/// `--unix-socket-perm`: octal, as the flag reads it.
impl Show for super::FileMode {
    fn show(&self) -> String {
        self.to_string()
    }
}

/// An optional file: `none` when not given (as README's defaults say).
impl Show for Option<PathBuf> {
    fn show(&self) -> String {
        self.as_ref().map_or_else(|| "none".to_string(), Show::show)
    }
}

impl Show for Duration {
    fn show(&self) -> String {
        humantime::format_duration(*self).to_string()
    }
}

/// `--idle-timeout`: `0` = none.
impl Show for Option<Duration> {
    fn show(&self) -> String {
        self.map_or_else(|| "0".to_string(), |d| d.show())
    }
}

/// `--slowlog-threshold`: `off` = none.
impl Show for Option<u64> {
    fn show(&self) -> String {
        self.map_or_else(|| "off".to_string(), |n| n.to_string())
    }
}

/// `--metrics-addr`: `none` = off.
impl Show for Option<SocketAddr> {
    fn show(&self) -> String {
        self.map_or_else(|| "none".to_string(), |a| a.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_flags_read_them() {
        assert_eq!(Duration::from_millis(1500).show(), "1s 500ms");
        assert_eq!(Some(Duration::from_secs(60)).show(), "1m");
        assert_eq!(None::<Duration>.show(), "0");
        assert_eq!(None::<u64>.show(), "off");
        assert_eq!(EvictionPolicy::AllkeysLru.show(), "allkeys-lru");
        assert_eq!(None::<PathBuf>.show(), "none");
        assert_eq!(None::<SocketAddr>.show(), "none");
        assert_eq!(Some(SocketAddr::from(([127, 0, 0, 1], 9440))).show(), "127.0.0.1:9440");
    }
}
