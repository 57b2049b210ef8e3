//! CONFIG GET / SET (protocol.md §8.14).
//!
//! GET shows every `[server]` setting whose flag name (`slowlog-threshold`)
//! matches the glob, as it is now; files are shown by path, never read.
//! SET changes only settings declared `runtime true` (README's table says
//! which): today the SLOWLOG pair and `maxmemory`, whose state is atomic.
//! The others are refused with the reason: sizes of structures built at
//! start (shards, limits the codec and budgets were made with), the
//! listener, the data directory and persistence, TLS and auth material, or
//! limits read on the hot path from the immutable config (the eviction
//! policy, idle timeout, output limits) that would need atomics there
//! first. A refused SET changes nothing.

use super::Replier;
use crate::server::{Config, Shared};
use crate::store::glob_match;
use burrow_proto::Status;

/// A setting's name as users write it (`slowlog-threshold`, any case;
/// `slowlog_threshold` too) as the `[server]` key.
fn key(name: &[u8]) -> String {
    String::from_utf8_lossy(name).to_ascii_lowercase().replace('-', "_")
}

pub(super) fn get(shared: &Shared, pattern: &[u8], r: &mut Replier<'_>) {
    let pattern = pattern.to_ascii_lowercase();
    let entries = shared.settings.lock().unwrap_or_else(|p| p.into_inner()).entries();
    let mut items = Vec::new();
    for (name, value) in entries {
        let flag = name.replace('_', "-");
        if pattern.is_empty()
            || glob_match(&pattern, flag.as_bytes())
            || glob_match(&pattern, name.as_bytes())
        {
            items.push(flag.into_bytes());
            items.push(value.into_bytes());
        }
    }
    r.array(&[], &items)
}

pub(super) fn set(shared: &Shared, name: &[u8], value: &[u8], r: &mut Replier<'_>) {
    match try_set(shared, name, value) {
        Ok(()) => r.ok(),
        Err(message) => {
            tracing::debug!("{message}");
            r.error(Status::BadRequest, &message)
        }
    }
}

fn try_set(shared: &Shared, name: &[u8], value: &[u8]) -> Result<(), String> {
    let key = key(name);
    let shown = key.replace('_', "-");
    match Config::runtime_settable(&key) {
        None => return Err(format!("CONFIG SET: unknown setting '{}'", String::from_utf8_lossy(name))),
        Some(false) => {
            return Err(format!(
                "CONFIG SET: {shown} cannot change while the server runs; restart with --{shown} \
                 (README's settings table says which settings CONFIG SET changes)"
            ))
        }
        Some(true) => {}
    }
    let text =
        std::str::from_utf8(value).map_err(|_| format!("CONFIG SET {shown}: the value is not UTF-8"))?;
    let mut settings = shared.settings.lock().unwrap_or_else(|p| p.into_inner());
    let new = settings.with_setting(&key, text).map_err(|e| format!("CONFIG SET {shown}: {e}"))?;
    shared.slowlog.set_threshold(new.slowlog_threshold);
    shared.slowlog.set_max_len(new.slowlog_max_len);
    // From the next write on; a lower limit evicts (or refuses) as writes come.
    shared.maxmemory.store(new.maxmemory, std::sync::atomic::Ordering::Relaxed);
    *settings = new;
    tracing::info!(setting = %shown, value = %text, "CONFIG SET");
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::server::dispatch::execute;
    use crate::server::dispatch::tests::shared;
    use crate::server::{Config, Shared};
    use burrow_proto::{Reply, Request, Status};
    use bytes::{Bytes, BytesMut};

    fn run(s: &Shared, req: Request) -> Reply {
        let mut out = BytesMut::new();
        execute(s, &req.to_frame(1).as_ref(), 0, &mut out);
        let mut codec = burrow_proto::Codec::client(Default::default());
        let frame = tokio_util::codec::Decoder::decode(&mut codec, &mut out).unwrap().expect("one reply");
        Reply::from_frame(&frame).unwrap()
    }

    fn get(pattern: &str) -> Request {
        Request::ConfigGet { pattern: Bytes::copy_from_slice(pattern.as_bytes()) }
    }

    fn set(name: &str, value: &str) -> Request {
        Request::ConfigSet {
            name: Bytes::copy_from_slice(name.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
        }
    }

    fn pairs(reply: Reply) -> Vec<(String, String)> {
        let Reply::Array(items) = reply else { panic!("not an ARRAY: {reply:?}") };
        let text = |b: &Bytes| String::from_utf8(b.to_vec()).unwrap();
        items.chunks(2).map(|p| (text(&p[0]), text(&p[1]))).collect()
    }

    #[test]
    fn every_value_shown_reads_back_as_the_same_setting() {
        let c = Config::default();
        for (name, value) in c.entries() {
            assert_eq!(c.with_setting(name, &value).as_ref(), Ok(&c), "{name} = {value}");
        }
    }

    #[test]
    fn get_matches_a_glob_over_flag_names() {
        let s = shared();
        let all = pairs(run(&s, get("")));
        assert_eq!(all.len(), crate::server::SETTINGS.len());
        assert!(all.contains(&("auth-secret-file".into(), "none".into())), "{all:?}");
        let slow = pairs(run(&s, get("SLOWLOG-*")));
        assert_eq!(
            slow,
            [("slowlog-threshold".into(), "10000".into()), ("slowlog-max-len".into(), "128".into())]
        );
        assert_eq!(pairs(run(&s, get("nothing*"))), []);
    }

    #[test]
    fn set_changes_runtime_settings_and_a_refused_set_changes_nothing() {
        let s = shared();
        assert_eq!(run(&s, set("slowlog-threshold", "off")), Reply::Ok);
        assert_eq!(s.slowlog.threshold(), None);
        assert_eq!(run(&s, set("SLOWLOG_MAX_LEN", "7")), Reply::Ok);
        assert_eq!(
            pairs(run(&s, get("slowlog*"))),
            [("slowlog-threshold".into(), "off".into()), ("slowlog-max-len".into(), "7".into())]
        );
        let before = pairs(run(&s, get("")));
        for (name, value, want) in [
            ("port", "1", "port cannot change while the server runs"),
            ("colour", "red", "unknown setting 'colour'"),
            ("slowlog-max-len", "-3", "CONFIG SET slowlog-max-len: invalid digit"),
            ("slowlog-threshold", "soon", "expected microseconds"),
            ("maxmemory-samples", "100", "cannot change while the server runs"),
        ] {
            match run(&s, set(name, value)) {
                Reply::Error { status: Status::BadRequest, message } => {
                    assert!(message.contains(want), "{name}: {message}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        assert_eq!(pairs(run(&s, get(""))), before);
        assert_eq!(s.slowlog.threshold(), None);
    }

    #[test]
    fn maxmemory_set_at_run_time_limits_the_next_write() {
        let s = shared();
        let put = |k: &str| Request::Set {
            key: Bytes::copy_from_slice(k.as_bytes()),
            value: Bytes::from(vec![b'v'; 4096]),
            ttl_ms: None,
            condition: burrow_proto::SetCondition::Always,
            keep_ttl: false,
        };
        assert_eq!(run(&s, put("a")), Reply::Ok, "no limit yet");
        // A refused value changes nothing.
        assert!(matches!(run(&s, set("maxmemory", "lots")), Reply::Error { status: Status::BadRequest, .. }));
        assert_eq!(s.maxmemory.load(std::sync::atomic::Ordering::Relaxed), 0);
        assert_eq!(run(&s, set("maxmemory", "1KiB")), Reply::Ok);
        assert_eq!(pairs(run(&s, get("maxmemory"))), [("maxmemory".into(), "1024".into())]);
        match run(&s, put("b")) {
            Reply::Error { status: Status::Oom, .. } => {}
            other => panic!("a write past the new limit: {other:?}"),
        }
        let info = run(&s, Request::Info { section: Bytes::from_static(b"memory") });
        assert!(format!("{info:?}").contains("maxmemory:1024"), "{info:?}");
        assert_eq!(run(&s, set("maxmemory", "0")), Reply::Ok);
        assert_eq!(run(&s, put("b")), Reply::Ok, "0 lifts the limit again");
    }
}
