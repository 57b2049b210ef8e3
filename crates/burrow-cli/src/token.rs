//! Splitting a command line into arguments, with redis-cli's quoting rules.
//!
//! Arguments are separated by whitespace. A double-quoted argument understands
//! `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\a` and `\xHH` (so `"\x00\xff"` is the
//! two bytes 0x00 0xFF); any other escaped character stands for itself. A
//! single-quoted argument is literal except for `\'`. As in redis-cli, a
//! closing quote must be followed by whitespace or the end of the line, so a
//! stray quote is reported instead of silently gluing arguments together.
//! Arguments are bytes, not strings: keys and values may be binary.

use thiserror::Error;

/// Why a line could not be split into arguments.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum TokenizeError {
    #[error("unterminated {} quote", quote_name(*.0))]
    UnterminatedQuote(u8),
    #[error("closing {} quote must be followed by a space", quote_name(*.0))]
    QuoteNotFollowedBySpace(u8),
    #[error("\\x must be followed by two hex digits")]
    BadHexEscape,
}

fn quote_name(q: u8) -> &'static str {
    if q == b'"' {
        "double"
    } else {
        "single"
    }
}

/// Splits `line` into arguments. An empty or all-blank line gives no arguments.
pub(crate) fn tokenize(line: &[u8]) -> Result<Vec<Vec<u8>>, TokenizeError> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == line.len() {
            return Ok(args);
        }
        let mut arg = Vec::new();
        while i < line.len() && !line[i].is_ascii_whitespace() {
            match line[i] {
                q @ (b'"' | b'\'') => {
                    i = quoted(line, i + 1, q, &mut arg)?;
                    if i < line.len() && !line[i].is_ascii_whitespace() {
                        return Err(TokenizeError::QuoteNotFollowedBySpace(q));
                    }
                }
                b => {
                    arg.push(b);
                    i += 1;
                }
            }
        }
        args.push(arg);
    }
}

/// Reads a quoted section starting just after the opening quote `q`; returns
/// the index just after the closing quote.
fn quoted(line: &[u8], mut i: usize, q: u8, arg: &mut Vec<u8>) -> Result<usize, TokenizeError> {
    while i < line.len() {
        let b = line[i];
        if b == q {
            return Ok(i + 1);
        }
        if b != b'\\' || i + 1 == line.len() {
            arg.push(b);
            i += 1;
            continue;
        }
        let e = line[i + 1];
        i += 2;
        if q == b'\'' {
            // Single quotes: only `\'` is special.
            if e != b'\'' {
                arg.push(b'\\');
            }
            arg.push(e);
            continue;
        }
        arg.push(match e {
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'b' => 0x08,
            b'a' => 0x07,
            b'x' => {
                let hex = line.get(i..i + 2).ok_or(TokenizeError::BadHexEscape)?;
                let hex = std::str::from_utf8(hex).map_err(|_| TokenizeError::BadHexEscape)?;
                i += 2;
                u8::from_str_radix(hex, 16).map_err(|_| TokenizeError::BadHexEscape)?
            }
            other => other,
        });
    }
    Err(TokenizeError::UnterminatedQuote(q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Vec<Vec<u8>> {
        tokenize(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn strs(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn splits_on_any_whitespace() {
        assert_eq!(ok("SET  k\tv  "), strs(&["SET", "k", "v"]));
        assert_eq!(ok(""), Vec::<Vec<u8>>::new());
        assert_eq!(ok("   \t "), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn double_quotes_group_and_unescape() {
        let cases: &[(&str, &[&[u8]])] = &[
            (r#"SET k "a b""#, &[b"SET", b"k", b"a b"]),
            (r#""""#, &[b""]),
            (r#""\x00\xff""#, &[b"\x00\xff"]),
            (r#""\xAb""#, &[b"\xab"]),
            (r#""say \"hi\"""#, &[b"say \"hi\""]),
            (r#""back\\slash""#, &[b"back\\slash"]),
            (r#""\n\r\t\b\a""#, &[b"\n\r\t\x08\x07"]),
            (r#""\q""#, &[b"q"]),
            (r#""it's""#, &[b"it's"]),
            (r#"pre"fix""#, &[b"prefix"]),
        ];
        for (i, (line, want)) in cases.iter().enumerate() {
            let want: Vec<Vec<u8>> = want.iter().map(|a| a.to_vec()).collect();
            assert_eq!(ok(line), want, "case {i}: {line}");
        }
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(ok(r"'a b'"), strs(&["a b"]));
        assert_eq!(ok(r"'\x00\n'"), strs(&[r"\x00\n"]));
        assert_eq!(ok(r"'it\'s'"), strs(&["it's"]));
        assert_eq!(ok(r#"'say "hi"'"#), strs(&[r#"say "hi""#]));
    }

    #[test]
    fn non_ascii_bytes_pass_through() {
        assert_eq!(ok("SET clé ü"), vec![b"SET".to_vec(), "clé".into(), "ü".into()]);
        assert_eq!(tokenize(b"a \xff").unwrap(), vec![b"a".to_vec(), vec![0xff]]);
    }

    #[test]
    fn errors_are_precise() {
        let cases = [
            (r#"SET k "abc"#, TokenizeError::UnterminatedQuote(b'"')),
            (r#"SET k "abc\""#, TokenizeError::UnterminatedQuote(b'"')),
            ("SET k 'abc", TokenizeError::UnterminatedQuote(b'\'')),
            (r#""a"b"#, TokenizeError::QuoteNotFollowedBySpace(b'"')),
            ("'a'b", TokenizeError::QuoteNotFollowedBySpace(b'\'')),
            (r#""\x4""#, TokenizeError::BadHexEscape),
            (r#""\xzz""#, TokenizeError::BadHexEscape),
            (r#""\x"#, TokenizeError::BadHexEscape),
        ];
        for (i, (line, want)) in cases.into_iter().enumerate() {
            assert_eq!(tokenize(line.as_bytes()), Err(want), "case {i}: {line}");
        }
        assert_eq!(TokenizeError::UnterminatedQuote(b'"').to_string(), "unterminated double quote");
    }
}
