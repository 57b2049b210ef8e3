"""A minimal Burrow client in pure Python 3 (standard library only).

Written from protocol.md alone, as a check that the document is enough to
implement a client:

    from burrow_client import Client

``python3 -m burrow_client`` (or the ``burrow-client-check`` command the
package installs) self-checks a running server: see ``selfcheck.py``.
"""

import hashlib
import hmac
import ipaddress
import os
import random
import select
import socket
import ssl
import struct
import time

# --- protocol constants (protocol.md §2-§5) ---------------------------------

REQUEST_MAGIC = 0xB7
RESPONSE_MAGIC = 0xB8
VERSION = 0x01
# magic, version, opcode, flags/status, id, extras len, reserved/body type, key len, value len
HEADER = struct.Struct(">BBBBIBBHI")
assert HEADER.size == 16

OPCODES = {
    "PING": 0x01, "GET": 0x02, "SET": 0x03, "DEL": 0x04, "EXISTS": 0x05,
    "EXPIRE": 0x06, "PERSIST": 0x07, "TTL": 0x08, "TYPE": 0x09,
    "INCR": 0x10, "DECR": 0x11, "INCRBY": 0x12,
    "LPUSH": 0x20, "RPUSH": 0x21, "LPOP": 0x22, "RPOP": 0x23, "LLEN": 0x24, "LRANGE": 0x25,
    "DBSIZE": 0x30, "SCAN": 0x31, "FLUSHALL": 0x32, "INFO": 0x33, "DIGEST": 0x34,
    "WAIT": 0x35, "CLUSTER": 0x36, "HELLO": 0x37, "AUTH": 0x38,
}

STATUS_NAMES = {
    0x00: "OK", 0x01: "BAD_REQUEST", 0x02: "UNKNOWN_OPCODE", 0x03: "WRONGTYPE",
    0x04: "NOT_INTEGER", 0x05: "OVERFLOW", 0x06: "TOO_LARGE", 0x07: "BAD_FRAME",
    0x08: "BUSY", 0x09: "LOADING", 0x0A: "NOT_LEADER", 0x0B: "IO_ERROR", 0x0C: "SHUTTING_DOWN",
    0x0D: "IN_PROGRESS", 0x0E: "NO_QUORUM", 0x0F: "STALE", 0x10: "NO_LEADER", 0x11: "NOAUTH",
    0x13: "OOM",
}
LOADING, NOT_LEADER, NO_LEADER = 0x09, 0x0A, 0x10
# After these the server closes the connection (protocol.md §5).
CLOSING_STATUSES = {"TOO_LARGE", "BAD_FRAME", "BUSY", "SHUTTING_DOWN"}

BODY_NIL, BODY_OK, BODY_BYTES, BODY_INT, BODY_ARRAY, BODY_TEXT = range(6)

FLAG_NX, FLAG_XX, FLAG_KEEPTTL = 0x01, 0x02, 0x04

# Requests that may be re-sent when a connection failed after sending them
# (protocol.md §5.2): running them twice changes nothing more than once.
# SET is idempotent only without NX/XX; everything else (INCR, pushes, pops,
# WAIT, unknown opcodes) is not.
IDEMPOTENT_OPCODES = {OPCODES[n] for n in (
    "PING", "GET", "EXISTS", "TTL", "TYPE", "LLEN", "LRANGE", "DBSIZE", "SCAN", "INFO", "DIGEST",
    "CLUSTER", "DEL", "EXPIRE", "PERSIST", "FLUSHALL")} | {0x40}  # 0x40 SNAPSHOT

# Client authentication (protocol.md §8.12): proofs are HMAC-SHA256 over
# this label, a prover byte (0 client, 1 server), the server's nonce and ours.
AUTH_LABEL = b"burrow-auth-v1/client"


def auth_proof(secret, prover, server_nonce, client_nonce):
    return hmac.new(secret, AUTH_LABEL + bytes([prover]) + server_nonce + client_nonce,
                    hashlib.sha256).digest()


def decode_hello(body):
    """HELLO's BYTES reply: tagged fields -> {tag: value bytes}."""
    fields, at = {}, 0
    while at < len(body):
        if len(body) - at < 3:
            raise ProtocolError("HELLO reply: truncated field")
        tag, n = body[at], struct.unpack(">H", body[at + 1:at + 3])[0]
        if len(body) - at - 3 < n:
            raise ProtocolError("HELLO reply: field 0x%02x runs past the end" % tag)
        fields[tag] = bytes(body[at + 3:at + 3 + n])
        at += 3 + n
    if 0x02 not in fields or len(fields.get(0x03, b"")) != 16:
        raise ProtocolError("HELLO reply without the auth flag or a 16-byte nonce")
    return fields


# Largest response this client accepts (responses are not bounded by the
# server's request limits, protocol.md §7).
MAX_RESPONSE = 512 * 1024 * 1024


class BurrowError(Exception):
    """The server answered with a non-OK status."""

    def __init__(self, status, message, opcode=0, request_id=0):
        self.status = status
        self.status_name = STATUS_NAMES.get(status, "UNKNOWN_STATUS_0x%02X" % status)
        self.message = message
        self.opcode = opcode
        self.request_id = request_id
        super().__init__("%s: %s" % (self.status_name, message))


class ProtocolError(Exception):
    """The byte stream does not follow protocol.md; the connection is unusable."""


class RedirectError(ConnectionError):
    """A NOT_LEADER reply named a leader that could not be reached. The
    client stays connected to the server that sent it."""

    def __init__(self, leader, cause):
        self.leader = leader
        super().__init__("redirect to the leader at %s:%d failed: %s" % (leader[0], leader[1], cause))


class OutcomeUnknownError(ConnectionError):
    """A cluster client's connection failed after it sent a request that is
    not idempotent: it may or may not have run, and it was not re-sent so
    that it cannot run twice (protocol.md §5.2). ``unknown`` lists the
    positions (in the call's commands) of unknown outcome."""

    def __init__(self, addr, name, unknown, cause):
        self.addr, self.unknown = addr, unknown
        super().__init__("outcome unknown: the connection to %s:%d failed after %s was sent "
                         "(not idempotent, so not retried): %s" % (addr[0], addr[1], name, cause))


class UnavailableError(ConnectionError):
    """A cluster client found no node to serve the call within its deadline;
    ``last`` is the last failure."""

    def __init__(self, after, attempts, last):
        self.last = last
        super().__init__("no node served the request within %.1f s (%d attempts): %s" % (after, attempts, last))


def is_idempotent(cmd):
    if cmd.opcode == OPCODES["SET"]:
        return not cmd.flags & (FLAG_NX | FLAG_XX)
    return cmd.opcode in IDEMPOTENT_OPCODES


def parse_leader(text):
    """The (host, port) in a NOT_LEADER message ("127.0.0.1:7441",
    "[::1]:7441"), or None when it is empty (no leader known) or not an
    ip:port (protocol.md §5.1)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host, int(port)


def _b(x):
    """Keys and values may be given as str (UTF-8) or bytes."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    if isinstance(x, str):
        return x.encode("utf-8")
    raise TypeError("expected str or bytes, got %r" % type(x).__name__)


def encode_array(items):
    """ARRAY body: u32 count, then per item u32 length + bytes (protocol.md §3.2)."""
    out = [struct.pack(">I", len(items))]
    for item in items:
        item = _b(item)
        out.append(struct.pack(">I", len(item)))
        out.append(item)
    return b"".join(out)


def decode_array(body):
    if len(body) < 4:
        raise ProtocolError("ARRAY body shorter than its count")
    (count,) = struct.unpack_from(">I", body, 0)
    pos, items = 4, []
    for i in range(count):
        if len(body) - pos < 4:
            raise ProtocolError("ARRAY item %d truncated" % i)
        (n,) = struct.unpack_from(">I", body, pos)
        pos += 4
        if len(body) - pos < n:
            raise ProtocolError("ARRAY item %d truncated" % i)
        items.append(bytes(body[pos:pos + n]))
        pos += n
    if pos != len(body):
        raise ProtocolError("%d bytes after the last ARRAY item" % (len(body) - pos))
    return items


# CLUSTER's roles and link states (protocol.md §8.11); unknown values read as "unknown".
CLUSTER_ROLES = {0: "unknown", 1: "leader", 2: "follower", 3: "candidate", 4: "standalone"}
CLUSTER_LINKS = {1: "up", 2: "down", 3: "syncing"}


def _fields(item, i):
    """One CLUSTER item: tag (u8), length (u16), value, repeated -> {tag: value}."""
    fields, pos = {}, 0
    while pos < len(item):
        if len(item) - pos < 3:
            raise ProtocolError("CLUSTER item %d: field header truncated" % i)
        tag, n = item[pos], struct.unpack_from(">H", item, pos + 1)[0]
        if len(item) - pos - 3 < n:
            raise ProtocolError("CLUSTER item %d: field 0x%02x runs past the item" % (i, tag))
        if tag in fields:
            raise ProtocolError("CLUSTER item %d: field 0x%02x twice" % (i, tag))
        fields[tag] = item[pos + 3:pos + 3 + n]
        pos += 3 + n
    return fields


def decode_cluster(items):
    """CLUSTER's ARRAY items as a dict: this node's fields and a list of
    members, each a dict whose unknown fields are None (protocol.md §8.11)."""
    if not items:
        raise ProtocolError("CLUSTER reply without the node's own item")

    def get(fields, i, tag, kind, required=False):
        v = fields.get(tag)
        if v is None:
            if required:
                raise ProtocolError("CLUSTER item %d: field 0x%02x missing" % (i, tag))
            return None
        size = {"u64": 8, "u8": 1}.get(kind)
        if size is not None and len(v) != size:
            raise ProtocolError("CLUSTER item %d: field 0x%02x must be %d bytes" % (i, tag, size))
        if kind == "u64":
            return struct.unpack(">Q", v)[0]
        if kind == "u8":
            return v[0]
        return v.decode("utf-8")

    me = _fields(items[0], 0)
    view = {
        "node_id": get(me, 0, 0x01, "u64", True),
        "role": CLUSTER_ROLES.get(get(me, 0, 0x02, "u8", True), "unknown"),
        "term": get(me, 0, 0x03, "u64", True),
        "leader_id": get(me, 0, 0x04, "u64", True),
        "commit_index": get(me, 0, 0x05, "u64", True),
        "members": [],
    }
    for i, item in enumerate(items[1:], 1):
        f = _fields(item, i)
        link = get(f, i, 0x11, "u8")
        view["members"].append({
            "id": get(f, i, 0x01, "u64", True),
            "role": CLUSTER_ROLES.get(get(f, i, 0x02, "u8", True), "unknown"),
            "addr": get(f, i, 0x10, "text", True),
            "link": CLUSTER_LINKS.get(link, "unknown") if link is not None else None,
            "match_index": get(f, i, 0x12, "u64"),
            "lag": get(f, i, 0x13, "u64"),
            "last_contact_ms": get(f, i, 0x14, "u64"),
        })
    return view


class Reply:
    """One decoded response frame."""

    __slots__ = ("opcode", "status", "request_id", "body_type", "extras", "value")

    def __init__(self, opcode, status, request_id, body_type, extras, value):
        self.opcode = opcode
        self.status = status
        self.request_id = request_id
        self.body_type = body_type
        self.extras = extras
        self.value = value

    def result(self):
        """The reply as a Python value, or raise BurrowError for an error status."""
        if self.status != 0:
            text = self.value.decode("utf-8", "replace") if self.body_type == BODY_TEXT else ""
            raise BurrowError(self.status, text, self.opcode, self.request_id)
        t, v = self.body_type, self.value
        if t in (BODY_NIL, BODY_OK):
            if v:
                raise ProtocolError("NIL/OK body with %d value bytes" % len(v))
            return None if t == BODY_NIL else True
        if t == BODY_BYTES:
            return v
        if t == BODY_INT:
            if len(v) != 8:
                raise ProtocolError("INT body of %d bytes" % len(v))
            return struct.unpack(">q", v)[0]
        if t == BODY_ARRAY:
            items = decode_array(v)
            if self.opcode == OPCODES["SCAN"]:
                if len(self.extras) != 8:
                    raise ProtocolError("SCAN reply without an 8-byte cursor")
                return struct.unpack(">Q", self.extras)[0], items
            if self.opcode == OPCODES["CLUSTER"]:
                return decode_cluster(items)
            return items
        if t == BODY_TEXT:
            return v.decode("utf-8")
        raise ProtocolError("unknown body type 0x%02x" % t)


class _Command:
    """A request ready to send, plus how to turn its reply into a result."""

    __slots__ = ("opcode", "flags", "extras", "key", "value", "convert")

    def __init__(self, opcode, key=b"", value=b"", extras=b"", flags=0, convert=None):
        self.opcode, self.flags, self.extras = opcode, flags, extras
        self.key, self.value, self.convert = _b(key), _b(value), convert

    def encode(self, request_id):
        if len(self.extras) > 255 or len(self.key) > 0xFFFF or len(self.value) > 0xFFFFFFFF:
            raise ValueError("request field too long for the frame header")
        header = HEADER.pack(REQUEST_MAGIC, VERSION, self.opcode, self.flags, request_id,
                             len(self.extras), 0, len(self.key), len(self.value))
        return b"".join((header, self.extras, self.key, self.value))


def _set_result(r):
    # OK = written, NIL = refused by NX/XX.
    return r is True


class _Commands:
    """Typed command methods shared by Client (runs now) and Pipeline (queues)."""

    def _run(self, cmd):
        raise NotImplementedError

    def ping(self, payload=None):
        return self._run(_Command(OPCODES["PING"], value=b"" if payload is None else payload))

    def get(self, key):
        return self._run(_Command(OPCODES["GET"], key))

    def set(self, key, value, ttl_ms=None, nx=False, xx=False, keepttl=False):
        """True if written, False if NX/XX refused it."""
        flags = (FLAG_NX if nx else 0) | (FLAG_XX if xx else 0) | (FLAG_KEEPTTL if keepttl else 0)
        extras = b"" if ttl_ms is None else struct.pack(">Q", ttl_ms)
        return self._run(_Command(OPCODES["SET"], key, value, extras, flags, _set_result))

    def delete(self, key):
        return self._run(_Command(OPCODES["DEL"], key))

    def exists(self, key):
        return self._run(_Command(OPCODES["EXISTS"], key, convert=bool))

    def expire(self, key, ttl_ms):
        return self._run(_Command(OPCODES["EXPIRE"], key, extras=struct.pack(">q", ttl_ms)))

    def persist(self, key):
        return self._run(_Command(OPCODES["PERSIST"], key))

    def ttl(self, key):
        """Milliseconds left; -1 no expiry; -2 no such key."""
        return self._run(_Command(OPCODES["TTL"], key))

    def type(self, key):
        return self._run(_Command(OPCODES["TYPE"], key))

    def incr(self, key):
        return self._run(_Command(OPCODES["INCR"], key))

    def decr(self, key):
        return self._run(_Command(OPCODES["DECR"], key))

    def incrby(self, key, delta):
        return self._run(_Command(OPCODES["INCRBY"], key, extras=struct.pack(">q", delta)))

    def lpush(self, key, *values):
        return self._run(_Command(OPCODES["LPUSH"], key, encode_array(values)))

    def rpush(self, key, *values):
        return self._run(_Command(OPCODES["RPUSH"], key, encode_array(values)))

    def lpop(self, key, count=None):
        extras = b"" if count is None else struct.pack(">I", count)
        return self._run(_Command(OPCODES["LPOP"], key, extras=extras))

    def rpop(self, key, count=None):
        extras = b"" if count is None else struct.pack(">I", count)
        return self._run(_Command(OPCODES["RPOP"], key, extras=extras))

    def llen(self, key):
        return self._run(_Command(OPCODES["LLEN"], key))

    def lrange(self, key, start, stop):
        return self._run(_Command(OPCODES["LRANGE"], key, extras=struct.pack(">qq", start, stop)))

    def dbsize(self):
        return self._run(_Command(OPCODES["DBSIZE"]))

    def scan(self, cursor=0, match=b"", count=0):
        """One SCAN step: (next cursor, keys). Cursor 0 back means done."""
        return self._run(_Command(OPCODES["SCAN"], match, extras=struct.pack(">QI", cursor, count)))

    def flushall(self):
        return self._run(_Command(OPCODES["FLUSHALL"]))

    def digest(self):
        """Hash of the whole dataset as 16 hex digits (protocol.md §8.9)."""
        return self._run(_Command(OPCODES["DIGEST"]))

    def info(self, section=""):
        return self._run(_Command(OPCODES["INFO"], section))

    def wait(self, numreplicas, timeout_ms):
        """How many followers hold this connection's last write, waiting up
        to timeout_ms (0: no limit) for numreplicas of them (protocol.md §8.10)."""
        return self._run(_Command(OPCODES["WAIT"], extras=struct.pack(">IQ", numreplicas, timeout_ms)))

    def cluster_view(self):
        """CLUSTER: the cluster as the connected node sees it (protocol.md
        §8.11), as a dict (node_id, role, term, leader_id, commit_index,
        members). Named so because ``Client.cluster(seeds)`` opens a
        cluster client."""
        return self._run(_Command(OPCODES["CLUSTER"]))

    def raw(self, opcode, key=b"", value=b"", extras=b"", flags=0):
        """Any opcode, e.g. one newer than this client."""
        return self._run(_Command(opcode, key, value, extras, flags))


class Client(_Commands):
    """One connection to a Burrow server. Not thread-safe.

    A NOT_LEADER reply naming a leader is followed (protocol.md §5.1): the
    client connects there, re-sends the refused requests and stays with the
    leader, at most max_redirects times per call; then the NOT_LEADER is
    raised (or returned in place, in a pipeline). ``addr`` is the server the
    client is connected to, ``last_redirects`` the leaders the last call
    moved to.
    """

    def __init__(self, host="127.0.0.1", port=7440, timeout=10.0, max_redirects=3, secret=None, ssl_context=None,
                 unix_socket=None):
        # ssl_context: an ssl.SSLContext for a TLS port (protocol.md §13),
        # e.g. ssl.create_default_context(cafile="ca.pem"); None: plain TCP.
        # unix_socket: the path of the server's --unix-socket, used instead
        # of host and port (same protocol; never TLS).
        self._ssl = ssl_context
        self._timeout = timeout
        self._secret = None if secret is None else _b(secret).rstrip()
        self.max_redirects = max_redirects
        self.last_redirects = []
        self.seeds = []
        self._next_id = 1
        if unix_socket is not None:
            self._connect(os.fspath(unix_socket))
        elif host is not None:
            self._connect((host, port))

    @classmethod
    def cluster(cls, seeds, deadline=10.0, timeout=10.0, max_redirects=3, secret=None, ssl_context=None):
        """A client of a cluster given by (host, port) seeds. It finds the
        leader and rides out leader changes (protocol.md §5.2): it follows
        NOT_LEADER; on NO_LEADER, LOADING or a failed connection it pauses
        (10 ms doubling to 200 ms, jittered) and tries the next seed, until
        ``deadline`` seconds per call, then raises UnavailableError (or the
        last refusal). A connection lost after sending re-sends only
        idempotent requests; otherwise OutcomeUnknownError."""
        c = cls(None, None, timeout, max_redirects, secret, ssl_context)
        c.seeds, c.deadline, c._seed, c._sock, c._broken = list(seeds), deadline, 0, None, "not connected"
        c.addr = c.seeds[0]
        c._exchange_failover([])  # connects, within the deadline
        return c
    def _connect(self, addr, timeout=None):
        if isinstance(addr, str):
            # A Unix socket path: the server serves it plain only.
            if self._ssl is not None:
                raise ValueError("TLS does not apply to a Unix socket (the server serves it plain)")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout or self._timeout)
            try:
                sock.connect(addr)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection(addr, timeout=timeout or self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_hostname=addr[0])
        sock.settimeout(self._timeout)
        if getattr(self, "_sock", None) is not None:
            self._sock.close()
        self._sock = sock
        self.addr = addr
        self._buf = bytearray()
        self._broken = None
        if self._secret is not None:
            self._authenticate()

    def auth(self, secret):
        """Authenticates this connection with the client secret (the
        contents of the server's --auth-secret-file; trailing whitespace is
        not part of it), and every connection the client opens from now on
        (redirects, reconnects). Raises BurrowError (NOAUTH) for a wrong
        secret, ProtocolError if the server cannot prove it holds it."""
        self._secret = _b(secret).rstrip()
        self._authenticate()

    def _authenticate(self):
        hello = decode_hello(self._send_and_read([_Command(OPCODES["HELLO"])])[0].result())
        if hello[0x02] == b"\x00":
            raise ProtocolError("the server requires no authentication, so it cannot prove it holds the secret")
        server_nonce, client_nonce = hello[0x03], os.urandom(16)
        proof = auth_proof(self._secret, 0, server_nonce, client_nonce)
        cmd = _Command(OPCODES["AUTH"], extras=client_nonce, value=proof)
        theirs = self._send_and_read([cmd])[0].result()
        if not hmac.compare_digest(theirs, auth_proof(self._secret, 1, server_nonce, client_nonce)):
            self._broken = "the server's AUTH proof is wrong"
            raise ProtocolError("the server's proof is wrong: it does not hold this secret")

    def close(self):
        if self._sock is not None:
            self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def pipeline(self):
        return Pipeline(self)

    def scan_iter(self, match=b"", count=100):
        cursor = 0
        while True:
            cursor, keys = self.scan(cursor, match, count)
            for k in keys:
                yield k
            if cursor == 0:
                return

    def _alloc_id(self):
        # 0 is what the server uses for replies tied to no request (BUSY, bad magic).
        i = self._next_id
        self._next_id = i % 0xFFFFFFFF + 1
        return i

    def _run(self, cmd):
        return self._exchange([cmd], raise_on_error=True)[0]

    def _exchange(self, cmds, raise_on_error):
        self.last_redirects = []
        replies = self._exchange_failover(cmds) if self.seeds else self._exchange_redirects(cmds)
        results = []
        for cmd, reply in zip(cmds, replies):
            try:
                value = reply.result()
                results.append(cmd.convert(value) if cmd.convert else value)
            except BurrowError as e:
                if e.status_name in CLOSING_STATUSES:
                    self._broken = e.status_name
                if raise_on_error:
                    raise
                results.append(e)
        return results

    def _exchange_redirects(self, cmds):
        replies = self._send_and_read(cmds)
        # Follow NOT_LEADER: re-send only the refused requests, in order, to
        # the leader the last of them names (protocol.md §5.1).
        while len(self.last_redirects) < self.max_redirects:
            refused = [i for i, r in enumerate(replies) if r.status == NOT_LEADER]
            leaders = [parse_leader(replies[i].value.decode("utf-8", "replace")) for i in refused]
            leaders = [a for a in leaders if a is not None]
            if not leaders:
                break
            old = (self._sock, self.addr)
            try:
                self._connect(leaders[-1])
            except OSError as e:
                self._sock, self.addr = old
                raise RedirectError(leaders[-1], e) from e
            old[0].close()
            self.last_redirects.append(self.addr)
            for i, reply in zip(refused, self._send_and_read([cmds[i] for i in refused])):
                replies[i] = reply
        return replies

    def _exchange_failover(self, cmds):
        """A cluster client's call: replies for every command, or raises
        OutcomeUnknownError / UnavailableError (protocol.md §5.2)."""
        start = time.monotonic()
        deadline = start + self.deadline
        replies, pending = [None] * len(cmds), list(range(len(cmds)))
        pause, hops, again_at, attempts = 0.01, 0, None, 0
        while True:
            attempts += 1
            left = max(deadline - time.monotonic(), 0.001)
            try:
                if self._broken or self._closed_by_peer():
                    target = again_at or self.seeds[self._seed % len(self.seeds)]
                    if again_at is None:
                        self._seed += 1
                    again_at = None
                    self._connect(target, min(self._timeout, left))
                got = []
                try:
                    self._sock.settimeout(min(self._timeout, left))
                    self._send_and_read(cmds=[cmds[i] for i in pending], got=got)
                except (OSError, ProtocolError, BurrowError) as e:
                    rest = pending[len(got):]
                    for i, r in zip(pending, got):
                        replies[i] = r
                    self._broken = self._broken or "connection lost"
                    # A refusal at accept (BUSY) comes before any request is read.
                    unsafe = [] if isinstance(e, BurrowError) else [i for i in rest if not is_idempotent(cmds[i])]
                    if unsafe:
                        name = next((n for n, o in OPCODES.items() if o == cmds[unsafe[0]].opcode), "opcode")
                        raise OutcomeUnknownError(self.addr, name, rest, e) from e
                    again_at, pending = self.addr, rest
                    raise
                for i, r in zip(pending, got):
                    replies[i] = r
                # Refusals: nothing ran, every request may go again.
                leader, why, keep = None, None, []
                for i in pending:
                    r = replies[i]
                    named = parse_leader(r.value.decode("utf-8", "replace")) if r.status == NOT_LEADER else None
                    if named:
                        leader = named
                    elif r.status in (NOT_LEADER, NO_LEADER, LOADING):
                        why = BurrowError(r.status, r.value.decode("utf-8", "replace"), r.opcode, r.request_id)
                    else:
                        continue
                    keep.append(i)
                pending = keep
                if not pending:
                    return replies
                if leader and hops < self.max_redirects:
                    hops += 1
                    try:
                        self._connect(leader, min(self._timeout, left))
                        self.last_redirects.append(self.addr)
                        continue
                    except OSError as e:
                        hops, self._broken, why = 0, "leader unreachable", RedirectError(leader, e)
                elif leader:
                    hops, why = 0, BurrowError(NOT_LEADER, "%s:%d" % leader)
                else:
                    self._broken = "no leader here"  # ask the next node
            except (OSError, ProtocolError, BurrowError) as e:
                if isinstance(e, OutcomeUnknownError):
                    raise
                why = e
            wait = pause / 2 + random.uniform(0, pause / 2)
            pause = min(pause * 2, 0.2)
            if time.monotonic() + wait >= deadline:
                if isinstance(why, BurrowError) and all(replies[i] is not None for i in pending):
                    return replies  # the last refusals are the answer
                raise UnavailableError(time.monotonic() - start, attempts, why)
            time.sleep(wait)

    def _closed_by_peer(self):
        """True if the server closed the connection (or sent something
        unasked) while it was idle, as a killed server's kernel does: seen
        before writing, nothing was sent, so any request may go elsewhere."""
        if self._buf:
            return True
        try:
            self._sock.setblocking(False)
            self._sock.recv(1, socket.MSG_PEEK)
            return True  # b"" (closed) or unasked bytes
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            self._sock.settimeout(self._timeout)

    def _send_and_read(self, cmds, got=None):
        """Sends cmds in one write; their replies (error statuses included),
        in order, also appended to ``got`` as they come."""
        if self._broken:
            raise ProtocolError("connection unusable: %s" % self._broken)
        got = [] if got is None else got
        ids = [self._alloc_id() for _ in cmds]
        self._send_reading(b"".join(c.encode(i) for c, i in zip(cmds, ids)))
        # Replies arrive in request order, each with its request's id.
        while len(got) < len(ids):
            reply = self._read_reply()
            if reply.request_id != ids[len(got)]:
                if reply.status != 0:
                    # A connection-level refusal (BUSY, BAD_FRAME with id 0).
                    self._broken = STATUS_NAMES.get(reply.status, "closed")
                    reply.result()
                self._broken = "unexpected reply id %d" % reply.request_id
                raise ProtocolError(self._broken)
            got.append(reply)
        return got

    def _send_reading(self, data):
        """Sends data, reading into the buffer what arrives meanwhile: the
        server stops reading while its replies go unread (protocol.md §6.1),
        so a pipeline whose requests and replies both outgrow the socket
        buffers would deadlock if written whole before reading."""
        if len(data) <= 65536:
            self._sock.sendall(data)
            return
        view, sent, timeout = memoryview(data), 0, self._sock.gettimeout()
        self._sock.setblocking(False)
        try:
            while sent < len(view):
                readable, writable, _ = select.select([self._sock], [self._sock], [], timeout)
                if not readable and not writable:
                    raise socket.timeout("timed out sending a pipeline")
                if readable:
                    try:
                        chunk = self._sock.recv(262144)
                    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        chunk = None
                    if chunk == b"":
                        self._broken = "connection closed by the server"
                        raise ProtocolError(self._broken)
                    if chunk:
                        self._buf += chunk
                if writable:
                    try:
                        sent += self._sock.send(view[sent:sent + 262144])
                    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        pass
        finally:
            self._sock.settimeout(timeout)

    def _read_exact(self, n):
        while len(self._buf) < n:
            chunk = self._sock.recv(max(65536, n - len(self._buf)))
            if not chunk:
                self._broken = "connection closed by the server"
                raise ProtocolError(self._broken)
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _read_reply(self):
        magic, version, opcode, status, rid, elen, body, klen, vlen = HEADER.unpack(self._read_exact(16))
        if magic != RESPONSE_MAGIC or version != VERSION:
            self._broken = "bad response header"
            raise ProtocolError("bad response magic 0x%02x / version %d" % (magic, version))
        if elen + klen + vlen > MAX_RESPONSE:
            self._broken = "response too large"
            raise ProtocolError("response of %d bytes over the client limit" % (elen + klen + vlen))
        extras = self._read_exact(elen)
        self._read_exact(klen)  # always empty in v1; skipped if not (protocol.md §6.3)
        value = self._read_exact(vlen)
        return Reply(opcode, status, rid, body, extras, value)


class Pipeline(_Commands):
    """Queues commands, sends them in one write, and reads all replies."""

    def __init__(self, client):
        self._client = client
        self._cmds = []

    def _run(self, cmd):
        self._cmds.append(cmd)
        return self

    def execute(self, raise_on_error=False):
        """Results in command order; error replies appear as BurrowError
        instances unless raise_on_error, which raises the first one (after
        every reply has been read, so the connection stays in step)."""
        cmds, self._cmds = self._cmds, []
        results = self._client._exchange(cmds, raise_on_error=False)
        if raise_on_error:
            for r in results:
                if isinstance(r, BurrowError):
                    raise r
        return results
