//! The request line of an HTTP/1.x request head: all the endpoint reads
//! (headers are ignored; there is no body to a GET).

/// `METHOD PATH` of a well-formed request line.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
}

/// Parses the first line of `head`; `Err` says what is wrong, for the 400 reply.
pub(super) fn parse(head: &[u8]) -> Result<Request<'_>, &'static str> {
    let end = head.windows(2).position(|w| w == b"\r\n").ok_or("no request line")?;
    let line = std::str::from_utf8(&head[..end]).map_err(|_| "request line is not UTF-8")?;
    let mut parts = line.split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("request line is not METHOD PATH VERSION");
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("bad method");
    }
    if !path.starts_with('/') {
        return Err("path must start with /");
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err("only HTTP/1.0 and HTTP/1.1 are served");
    }
    Ok(Request { method, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let ok = parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(ok, Request { method: "GET", path: "/metrics" });
        assert_eq!(parse(b"POST /metrics HTTP/1.0\r\n\r\n").unwrap().method, "POST");
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET /metrics HTTP/2\r\n\r\n",
            b"get /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
            b"\x00\x01\x02\x03",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
