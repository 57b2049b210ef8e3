//! `--unix-socket-perm`: a file mode written in octal, as `chmod` and
//! Redis's `unixsocketperm` take it (`700`, `0770`, `0o660`). In the file a
//! string, or a bare number whose digits are read as octal
//! (`unix_socket_perm = 770`), since TOML allows no leading zero.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Permission bits, at most `0o777`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(u32);

impl FileMode {
    /// The permission bits, for `chmod`.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl FromStr for FileMode {
    type Err = String;

    fn from_str(s: &str) -> Result<FileMode, String> {
        let t = s.trim();
        let digits = t.strip_prefix("0o").unwrap_or(t);
        match u32::from_str_radix(digits, 8) {
            Ok(bits) if bits <= 0o777 && !digits.is_empty() => Ok(FileMode(bits)),
            _ => Err(format!("expected an octal mode between 0 and 0777 such as 0700 or 0770, got {s:?}")),
        }
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ModeVisitor;
        impl Visitor<'_> for ModeVisitor {
            type Value = FileMode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an octal mode such as \"0700\" or 770")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMode, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FileMode, E> {
                // The decimal digits as written, read as octal: 770 is 0o770.
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FileMode, E> {
                v.to_string().parse().map_err(E::custom)
            }
        }
        d.deserialize_any(ModeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_as_chmod_writes_it() {
        for (text, bits) in [("700", 0o700), ("0770", 0o770), ("0o660", 0o660), ("0", 0), ("777", 0o777)] {
            assert_eq!(text.parse::<FileMode>().map(FileMode::bits), Ok(bits), "{text}");
        }
    }

    #[test]
    fn anything_else_is_refused_with_what_is_expected() {
        for text in ["", "800", "1000", "rwx", "-1", "0o"] {
            let e = text.parse::<FileMode>().unwrap_err();
            assert!(e.contains("octal mode"), "{text}: {e}");
        }
    }

    #[test]
    fn a_bare_number_in_the_file_is_read_as_octal() {
        #[derive(Deserialize)]
        struct T {
            m: FileMode,
        }
        let t: T = toml::from_str("m = 770").unwrap();
        assert_eq!(t.m.bits(), 0o770);
        let t: T = toml::from_str("m = \"0700\"").unwrap();
        assert_eq!(t.m.bits(), 0o700);
        assert!(toml::from_str::<T>("m = 778").is_err());
    }
}
