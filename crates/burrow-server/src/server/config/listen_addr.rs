//! An optional `IP:PORT` to listen on (`--metrics-addr`): `none` (or empty)
//! is off, as the path settings spell it.

use std::net::SocketAddr;
use std::str::FromStr;

use super::choice::deserialize_by_from_str;

/// `none` or a socket address (`127.0.0.1:9440`, `[::1]:9440`; port 0 = any free port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListenAddr(pub Option<SocketAddr>);

impl ListenAddr {
    pub(crate) fn get(self) -> Option<SocketAddr> {
        self.0
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() || t == "none" {
            return Ok(ListenAddr(None));
        }
        t.parse()
            .map(|a| ListenAddr(Some(a)))
            .map_err(|_| format!("expected IP:PORT such as 127.0.0.1:9440, or none, got {s:?}"))
    }
}

deserialize_by_from_str!(ListenAddr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_or_an_address() {
        assert_eq!("none".parse::<ListenAddr>(), Ok(ListenAddr(None)));
        assert_eq!("".parse::<ListenAddr>(), Ok(ListenAddr(None)));
        assert_eq!("127.0.0.1:0".parse::<ListenAddr>().unwrap().get(), Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!("[::1]:9440".parse::<ListenAddr>().unwrap().get(), Some("[::1]:9440".parse().unwrap()));
        assert!("localhost:9440".parse::<ListenAddr>().unwrap_err().contains("IP:PORT"));
        assert!("127.0.0.1".parse::<ListenAddr>().is_err(), "a port is required");
    }
}
