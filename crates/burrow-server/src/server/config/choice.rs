//! Settings that take one of a few words (`--fsync`, `--persistence`,
//! `--log-format`, the cluster's `replication`). Each is a `clap::ValueEnum`,
//! so `--help` lists the words and a wrong one is refused by name; the
//! config file and the declared defaults accept exactly the same words,
//! through the `FromStr` and `Deserialize` impls made here.

use clap::ValueEnum;

/// `FromStr` from a `ValueEnum`'s names and aliases, ignoring case (as the
/// flags do), with an error listing the words.
macro_rules! from_str_by_value_enum {
    ($($t:ty),+) => {$(
        impl ::std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$t as ::clap::ValueEnum>::from_str(s.trim(), true)
                    .map_err(|_| $crate::server::config::expected_one_of::<$t>(s))
            }
        }
    )+};
}
pub(crate) use from_str_by_value_enum;

/// `Deserialize` from a string, through the type's `FromStr` (so a file
/// says `fsync = "always"` exactly as the flag says `--fsync always`).
macro_rules! deserialize_by_from_str {
    ($($t:ty),+) => {$(
        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    )+};
}
pub(crate) use deserialize_by_from_str;

/// "expected always, everysec or no, got \"sometimes\"".
pub(crate) fn expected_one_of<T: ValueEnum>(got: &str) -> String {
    let names: Vec<String> = T::value_variants()
        .iter()
        .filter_map(|v| v.to_possible_value())
        .map(|p| p.get_name().to_string())
        .collect();
    let list = match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    format!("expected {list}, got {got:?}")
}

/// `--persistence`: a switch spelled as Redis spells its own (`on`/`off`);
/// `true`/`false` and `yes`/`no` keep working, as they always did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnOff {
    #[value(alias = "true", alias = "yes")]
    On,
    #[value(alias = "false", alias = "no")]
    Off,
}

impl OnOff {
    pub(crate) fn is_on(self) -> bool {
        self == OnOff::On
    }
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// For people: one line per event, coloured only on a terminal.
    #[default]
    Text,
    /// For machines: one JSON object per line.
    Json,
}

/// `--tls-client-auth`: whether the TLS port asks for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum TlsClientAuth {
    /// `Optional` with a CA file, else `None`.
    #[default]
    Auto,
    /// Not asked for.
    None,
    /// Asked for and verified when presented; clients without one still connect.
    Optional,
    /// A connection without a verified certificate fails its handshake.
    Required,
}

impl TlsClientAuth {
    /// `Auto` made definite by whether a CA file is given.
    pub(crate) fn resolve(self, have_ca: bool) -> TlsClientAuth {
        match self {
            TlsClientAuth::Auto if have_ca => TlsClientAuth::Optional,
            TlsClientAuth::Auto => TlsClientAuth::None,
            m => m,
        }
    }
}

from_str_by_value_enum!(
    OnOff,
    LogFormat,
    TlsClientAuth,
    crate::persist::FsyncPolicy,
    crate::store::EvictionPolicy
);
deserialize_by_from_str!(LogFormat, TlsClientAuth, crate::persist::FsyncPolicy, crate::store::EvictionPolicy);

/// A switch in the file is a word (`persistence = "off"`) or a TOML
/// boolean (`protected_mode = false`).
impl<'de> serde::Deserialize<'de> for OnOff {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Given {
            Bool(bool),
            Word(String),
        }
        match Given::deserialize(d)? {
            Given::Bool(true) => Ok(OnOff::On),
            Given::Bool(false) => Ok(OnOff::Off),
            Given::Word(w) => w.parse().map_err(<D::Error as serde::de::Error>::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::FsyncPolicy;

    #[test]
    fn words_are_read_alike_from_flags_files_and_defaults() {
        assert_eq!("on".parse(), Ok(OnOff::On));
        assert_eq!("YES".parse(), Ok(OnOff::On));
        assert_eq!("false".parse(), Ok(OnOff::Off));
        assert_eq!("maybe".parse::<OnOff>(), Err("expected on or off, got \"maybe\"".to_string()));
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("xml".parse::<LogFormat>(), Err("expected text or json, got \"xml\"".to_string()));
        assert_eq!(expected_one_of::<FsyncPolicy>("x"), "expected always, everysec or no, got \"x\"");

        #[derive(serde::Deserialize)]
        struct T {
            fsync: FsyncPolicy,
            persistence: OnOff,
        }
        let t: T = toml::from_str("fsync = \"Always\"\npersistence = \"off\"\n").unwrap();
        assert_eq!((t.fsync, t.persistence), (FsyncPolicy::Always, OnOff::Off));
        // A switch may be a TOML boolean too (`protected_mode = false`).
        let t: T = toml::from_str("fsync = \"no\"\npersistence = true\n").unwrap();
        assert_eq!(t.persistence, OnOff::On);
        let err = toml::from_str::<T>("fsync = \"sometimes\"\npersistence = \"on\"\n").err().unwrap();
        assert!(err.to_string().contains("expected always, everysec or no, got \"sometimes\""), "{err}");
    }
}
