//! Response status codes: byte 3 of every response.

/// Outcome of a request. Anything but `Ok` carries a short text message as
/// the response value (body type TEXT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// The command ran; the body holds its result.
    Ok = 0x00,
    /// Arguments malformed: wrong extras length, bad flags, bad array body.
    BadRequest = 0x01,
    /// The opcode is not known to this server; the connection stays open.
    UnknownOpcode = 0x02,
    /// The key holds a value of another type (e.g. LPUSH on a string).
    WrongType = 0x03,
    /// INCR/DECR/INCRBY on a value that is not a signed 64-bit integer.
    NotInteger = 0x04,
    /// INCR/DECR/INCRBY would overflow a signed 64-bit integer.
    Overflow = 0x05,
    /// A declared length is over a limit; the connection is closed after it.
    TooLarge = 0x06,
    /// Bad magic or unsupported version; the connection is closed after it.
    BadFrame = 0x07,
    /// The server is at its connection limit; the connection is closed.
    Busy = 0x08,
    /// A follower is replacing its dataset with the leader's snapshot (full
    /// resync); retry shortly. (A starting server opens its port only once
    /// recovery is complete, so recovery never sends it.)
    Loading = 0x09,
    /// This node is a follower and the command writes (or WAIT); the value
    /// is the leader's client address as text (`127.0.0.1:7441`). (Servers
    /// before `NoLeader` existed sent it empty when they knew no leader.)
    NotLeader = 0x0A,
    /// The write could not be made durable (WAL write or fsync failed);
    /// while the WAL is failing every write is refused with it.
    IoError = 0x0B,
    /// The server is shutting down and no longer takes requests.
    ShuttingDown = 0x0C,
    /// A background snapshot was asked for while one is being written.
    InProgress = 0x0D,
    /// `replication = "quorum"`: the write was applied on the leader but a
    /// majority did not hold it durably within the quorum timeout. It is
    /// not reported as done: it may or may not survive a failover.
    NoQuorum = 0x0E,
    /// A follower configured with `max_stale_ms` refuses reads: its link to
    /// the leader has been down longer than that.
    Stale = 0x0F,
    /// The node knows no leader (an election is under way, or it lost its
    /// leader) and the command needs one (a write, or WAIT): nothing ran.
    /// Retry after a short pause, here or at another node.
    NoLeader = 0x10,
    /// The server requires authentication and this connection has not
    /// authenticated (nothing ran), or an AUTH failed (protocol.md §8.12).
    NoAuth = 0x11,
    /// The server is at its memory limit (`--maxmemory`) and the write
    /// would grow the data set: nothing ran. Reads, DEL, LPOP/RPOP,
    /// EXPIRE, PERSIST and FLUSHALL still work.
    Oom = 0x13,
}

impl Status {
    pub const ALL: [Status; 19] = [
        Status::Ok,
        Status::BadRequest,
        Status::UnknownOpcode,
        Status::WrongType,
        Status::NotInteger,
        Status::Overflow,
        Status::TooLarge,
        Status::BadFrame,
        Status::Busy,
        Status::Loading,
        Status::NotLeader,
        Status::IoError,
        Status::ShuttingDown,
        Status::InProgress,
        Status::NoQuorum,
        Status::Stale,
        Status::NoLeader,
        Status::NoAuth,
        Status::Oom,
    ];

    pub fn from_u8(b: u8) -> Option<Status> {
        Status::ALL.iter().copied().find(|s| *s as u8 == b)
    }

    /// The name used in protocol.md and printed by the CLI (`(error) WRONGTYPE …`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "BAD_REQUEST",
            Status::UnknownOpcode => "UNKNOWN_OPCODE",
            Status::WrongType => "WRONGTYPE",
            Status::NotInteger => "NOT_INTEGER",
            Status::Overflow => "OVERFLOW",
            Status::TooLarge => "TOO_LARGE",
            Status::BadFrame => "BAD_FRAME",
            Status::Busy => "BUSY",
            Status::Loading => "LOADING",
            Status::NotLeader => "NOT_LEADER",
            Status::IoError => "IO_ERROR",
            Status::ShuttingDown => "SHUTTING_DOWN",
            Status::InProgress => "IN_PROGRESS",
            Status::NoQuorum => "NO_QUORUM",
            Status::Stale => "STALE",
            Status::NoLeader => "NO_LEADER",
            Status::NoAuth => "NOAUTH",
            Status::Oom => "OOM",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
