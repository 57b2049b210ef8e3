//! Opcodes: byte 2 of every frame.

/// Every opcode this build understands. Unknown bytes stay raw in [`super::Frame`]
/// and are answered with `UNKNOWN_OPCODE`, keeping the connection open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    Ping = 0x01,
    Get = 0x02,
    Set = 0x03,
    Del = 0x04,
    Exists = 0x05,
    Expire = 0x06,
    Persist = 0x07,
    Ttl = 0x08,
    Type = 0x09,
    Incr = 0x10,
    Decr = 0x11,
    IncrBy = 0x12,
    LPush = 0x20,
    RPush = 0x21,
    LPop = 0x22,
    RPop = 0x23,
    LLen = 0x24,
    LRange = 0x25,
    DbSize = 0x30,
    Scan = 0x31,
    FlushAll = 0x32,
    Info = 0x33,
    Digest = 0x34,
    Wait = 0x35,
    Cluster = 0x36,
    /// Connection start: whether AUTH is needed, and the challenge (protocol.md §8.12).
    Hello = 0x37,
    /// Proof of the client secret over HELLO's challenge (protocol.md §8.12).
    Auth = 0x38,
    Snapshot = 0x40,
    /// Slow commands: GET, LEN, RESET (protocol.md §8.13).
    SlowLog = 0x41,
    /// Connected clients: LIST, ID, KILL (protocol.md §8.15).
    Client = 0x42,
    /// The connection becomes a stream of every command others run (protocol.md §8.16).
    Monitor = 0x43,
    /// Settings: GET pattern, SET name value (protocol.md §8.14).
    Config = 0x44,
}

/// [`Opcode::from_u8`]'s table, built from [`Opcode::ALL`] at compile time.
const BY_BYTE: [Option<Opcode>; 256] = {
    let mut t = [None; 256];
    let mut i = 0;
    while i < Opcode::ALL.len() {
        t[Opcode::ALL[i] as usize] = Some(Opcode::ALL[i]);
        i += 1;
    }
    t
};

impl Opcode {
    /// All known opcodes, in wire order.
    pub const ALL: [Opcode; 32] = [
        Opcode::Ping,
        Opcode::Get,
        Opcode::Set,
        Opcode::Del,
        Opcode::Exists,
        Opcode::Expire,
        Opcode::Persist,
        Opcode::Ttl,
        Opcode::Type,
        Opcode::Incr,
        Opcode::Decr,
        Opcode::IncrBy,
        Opcode::LPush,
        Opcode::RPush,
        Opcode::LPop,
        Opcode::RPop,
        Opcode::LLen,
        Opcode::LRange,
        Opcode::DbSize,
        Opcode::Scan,
        Opcode::FlushAll,
        Opcode::Info,
        Opcode::Digest,
        Opcode::Wait,
        Opcode::Cluster,
        Opcode::Hello,
        Opcode::Auth,
        Opcode::Snapshot,
        Opcode::SlowLog,
        Opcode::Client,
        Opcode::Monitor,
        Opcode::Config,
    ];

    /// The opcode of byte `b`: one indexed load (every request calls it; a
    /// search of `ALL` cost ~6 instructions a command, `bench/callgrind.sh`).
    #[inline]
    pub fn from_u8(b: u8) -> Option<Opcode> {
        BY_BYTE[b as usize]
    }

    /// The command's name as users type it (and as INFO reports it).
    pub fn name(self) -> &'static str {
        match self {
            Opcode::Ping => "PING",
            Opcode::Get => "GET",
            Opcode::Set => "SET",
            Opcode::Del => "DEL",
            Opcode::Exists => "EXISTS",
            Opcode::Expire => "EXPIRE",
            Opcode::Persist => "PERSIST",
            Opcode::Ttl => "TTL",
            Opcode::Type => "TYPE",
            Opcode::Incr => "INCR",
            Opcode::Decr => "DECR",
            Opcode::IncrBy => "INCRBY",
            Opcode::LPush => "LPUSH",
            Opcode::RPush => "RPUSH",
            Opcode::LPop => "LPOP",
            Opcode::RPop => "RPOP",
            Opcode::LLen => "LLEN",
            Opcode::LRange => "LRANGE",
            Opcode::DbSize => "DBSIZE",
            Opcode::Scan => "SCAN",
            Opcode::FlushAll => "FLUSHALL",
            Opcode::Info => "INFO",
            Opcode::Digest => "DIGEST",
            Opcode::Wait => "WAIT",
            Opcode::Cluster => "CLUSTER",
            Opcode::Hello => "HELLO",
            Opcode::Auth => "AUTH",
            Opcode::Snapshot => "SNAPSHOT",
            Opcode::SlowLog => "SLOWLOG",
            Opcode::Client => "CLIENT",
            Opcode::Monitor => "MONITOR",
            Opcode::Config => "CONFIG",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_maps_to_the_opcode_it_encodes_or_none() {
        for b in 0..=255u8 {
            let listed = Opcode::ALL.iter().copied().find(|op| *op as u8 == b);
            assert_eq!(Opcode::from_u8(b), listed, "byte 0x{b:02x}");
        }
    }
}
