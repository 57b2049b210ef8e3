//! Reading INFO text (`# section` headers and `key:value` lines). A field
//! that is missing is a test failure naming it, never a default value: a
//! renamed field must not let an assertion pass by accident.

/// The value of `key`; panics with the whole text if INFO has no such field.
pub fn info_field(info: &str, key: &str) -> String {
    burrow_client::parse_info(info)
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| panic!("INFO has no field {key:?}:\n{info}"))
}

/// The numeric value of `key`; panics if it is missing or not a number.
pub fn info_u64(info: &str, key: &str) -> u64 {
    let v = info_field(info, key);
    v.parse().unwrap_or_else(|e| panic!("INFO field {key:?} is not a number ({v:?}: {e}):\n{info}"))
}

/// `(calls, errors)` of one command from INFO's stats section, `None` for a
/// command never called (INFO lists only those that were). Panics if the
/// text has no stats section at all.
pub fn cmd_stats(info: &str, cmd: &str) -> Option<(u64, u64)> {
    info_u64(info, "total_commands_processed");
    let key = format!("cmd_{cmd}");
    let (_, v) = burrow_client::parse_info(info).into_iter().find(|(k, _)| *k == key)?;
    let number = |name: &str| -> u64 {
        v.split(',')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("INFO {key}:{v} has no numeric {name}"))
    };
    Some((number("calls"), number("errors")))
}
