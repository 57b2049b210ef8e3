"""Self-check of a running Burrow server (or cluster) with this client.

    python3 -m burrow_client --port 7440
    python3 -m burrow_client --hosts 127.0.0.1:7441,127.0.0.1:7442,127.0.0.1:7443

It only touches keys under a per-run prefix and deletes them at the end; it
never runs FLUSHALL. It exits 0 if every check passes, 1 on the first
mismatch, 2 if it cannot talk to the server at all.
"""

import argparse
import os
import sys
import time

from . import BurrowError, Client, ProtocolError, _b


class Mismatch(Exception):
    pass


def _expect(what, got, want):
    if got != want:
        raise Mismatch("%s: got %r, want %r" % (what, got, want))
    print("ok - %s" % what)


def _expect_error(what, status_name, fn, *args):
    try:
        got = fn(*args)
    except BurrowError as e:
        _expect(what, e.status_name, status_name)
        return
    raise Mismatch("%s: got %r, want a %s error" % (what, got, status_name))


def self_check(host, port, hosts=None, secret=None):
    p = "pyclient:%d:" % os.getpid()
    k = lambda name: p + name  # noqa: E731
    if hosts:
        c = Client.cluster(hosts, secret=secret)
    else:
        c = Client(host, port)
        if secret is not None:
            c.auth(secret)  # and again on any reconnect
    with c:
        first = c.addr
        _expect("PING", c.ping(), "PONG")
        if c.last_redirects:
            print("# redirected to leader at %s:%d" % c.addr)
        elif c.addr != first:
            print("# moved to %s:%d" % c.addr)
        _expect("PING with payload", c.ping(b"\x00hi\xff"), b"\x00hi\xff")

        _expect("SET", c.set(k("s"), "alice"), True)
        _expect("GET hit", c.get(k("s")), b"alice")
        _expect("GET miss", c.get(k("missing")), None)
        _expect("SET NX on existing key is refused", c.set(k("s"), "bob", nx=True), False)
        _expect("SET XX on missing key is refused", c.set(k("nope"), "x", xx=True), False)
        _expect("SET XX on existing key", c.set(k("s"), "carol", xx=True), True)
        _expect("binary value round-trips", (c.set(k("bin"), bytes(range(256))), c.get(k("bin"))),
                (True, bytes(range(256))))
        _expect("empty value round-trips", (c.set(k("empty"), b""), c.get(k("empty"))), (True, b""))
        _expect("EXISTS", (c.exists(k("s")), c.exists(k("missing"))), (True, False))
        _expect("TYPE", (c.type(k("s")), c.type(k("missing"))), ("string", "none"))

        _expect("TTL without expiry", c.ttl(k("s")), -1)
        _expect("TTL of missing key", c.ttl(k("missing")), -2)
        _expect("SET NX with TTL", c.set(k("t"), "v", ttl_ms=60000, nx=True), True)
        ttl = c.ttl(k("t"))
        _expect("TTL within (0, 60000] ms", 0 < ttl <= 60000, True)
        _expect("SET KEEPTTL keeps the TTL", (c.set(k("t"), "w", keepttl=True), c.ttl(k("t")) > 0), (True, True))
        _expect("PERSIST", (c.persist(k("t")), c.ttl(k("t")), c.persist(k("t"))), (1, -1, 0))
        _expect("EXPIRE", (c.expire(k("t"), 3600000), 0 < c.ttl(k("t")) <= 3600000), (1, True))
        _expect("EXPIRE <= 0 deletes", (c.expire(k("t"), 0), c.exists(k("t"))), (1, False))
        _expect_error("SET NX+XX is BAD_REQUEST", "BAD_REQUEST", c.set, k("s"), "v", None, True, True)
        _expect_error("SET TTL 0 is BAD_REQUEST", "BAD_REQUEST", c.set, k("s"), "v", 0)

        _expect("INCR on missing key", c.incr(k("n")), 1)
        _expect("INCRBY", c.incrby(k("n"), 41), 42)
        _expect("INCRBY negative", c.incrby(k("n"), -50), -8)
        _expect("DECR", c.decr(k("n")), -9)
        _expect("counter reads back as digits", c.get(k("n")), b"-9")
        c.set(k("max"), str(2 ** 63 - 1))
        _expect_error("INCR past i64 is OVERFLOW", "OVERFLOW", c.incr, k("max"))
        _expect_error("INCR on text is NOT_INTEGER", "NOT_INTEGER", c.incr, k("s"))

        _expect("LPUSH two values", c.lpush(k("l"), "a", "b"), 2)
        _expect("RPUSH", c.rpush(k("l"), "c", ""), 4)
        _expect("LRANGE 0 -1", c.lrange(k("l"), 0, -1), [b"b", b"a", b"c", b""])
        _expect("LRANGE -2 -1", c.lrange(k("l"), -2, -1), [b"c", b""])
        _expect("LRANGE out of range", c.lrange(k("l"), 5, 10), [])
        _expect("LLEN", c.llen(k("l")), 4)
        _expect("LPOP", c.lpop(k("l")), b"b")
        _expect("RPOP count 2", c.rpop(k("l"), 2), [b"", b"c"])
        _expect("LPOP last value deletes the list", (c.lpop(k("l")), c.exists(k("l"))), (b"a", False))
        _expect("LPOP missing key", (c.lpop(k("l")), c.lpop(k("l"), 3)), (None, None))
        _expect_error("LPUSH on a string is WRONGTYPE", "WRONGTYPE", c.lpush, k("s"), "x")
        _expect_error("GET on a list is WRONGTYPE", "WRONGTYPE",
                      lambda: (c.rpush(k("l2"), "x"), c.get(k("l2"))))

        keys = set(c.scan_iter(match=p + "*", count=3))
        want = {_b(k(x)) for x in ("s", "bin", "empty", "n", "max", "l2")}
        _expect("SCAN finds every key under the prefix", keys, want)
        _expect("DBSIZE counts them", c.dbsize() >= len(want), True)
        d = c.digest()
        _expect("DIGEST is 16 hex digits", len(d) == 16 and all(ch in "0123456789abcdef" for ch in d), True)

        _expect_error("unknown opcode 0x7F", "UNKNOWN_OPCODE", c.raw, 0x7F, b"k", b"payload", b"\x01\x02")
        _expect("connection usable after UNKNOWN_OPCODE", c.ping(), "PONG")
        _expect_error("unknown INFO section", "BAD_REQUEST", c.info, "bogus")
        _expect("INFO keyspace", c.info("keyspace").startswith("# keyspace\n"), True)

        view = c.cluster_view()
        _expect("CLUSTER: answered by the leader or a standalone server", view["role"] in ("leader", "standalone"), True)
        if view["role"] == "leader":
            _expect("CLUSTER: the leader names itself and lists every member",
                    (view["leader_id"], view["node_id"] in [m["id"] for m in view["members"]]), (view["node_id"], True))

        # WAIT counts the followers holding this connection's writes
        # (protocol.md §8.10): always 0 on a standalone server; on a leader
        # anywhere from 0 to the number of followers.
        if view["role"] == "standalone":
            _expect("WAIT 0 0", c.wait(0, 0), 0)
            started = time.monotonic()
            n = c.wait(1, 100)
            _expect("WAIT 1 100 gives 0 after the timeout", (n, time.monotonic() - started >= 0.1), (0, True))
        else:
            followers = len(view["members"]) - 1
            n = c.wait(0, 0)
            _expect("WAIT 0 0 counts at most the %d follower(s)" % followers, 0 <= n <= followers, True)
            started = time.monotonic()
            n = c.wait(followers, 2000)
            took = time.monotonic() - started
            _expect("WAIT %d 2000: every follower, or fewer only after the timeout" % followers,
                    n == followers or (n < followers and took >= 2.0), True)

        pipe = c.pipeline()
        for _ in range(100):
            pipe.incr(k("p"))
        pipe.incr(k("s"))  # an error in the middle of a pipeline
        pipe.get(k("p"))
        results = pipe.execute()
        _expect("pipeline of 100 INCR", results[:100], list(range(1, 101)))
        _expect("pipeline error in place", getattr(results[100], "status_name", results[100]), "NOT_INTEGER")
        _expect("pipeline continues after an error", results[101], b"100")

        # Requests and replies both far larger than the socket buffers: the
        # client reads while it writes (protocol.md §6.1).
        big, pipe = b"x" * (1 << 20), c.pipeline()
        for i in range(24):
            pipe.set(k("big%d" % i), big)
            pipe.get(k("big%d" % i))
        results = pipe.execute(raise_on_error=True)
        _expect("a 48 MB pipeline both ways", (results[0], results[-1] == big, len(results)), (True, True, 48))
        want |= {_b(k("big%d" % i)) for i in range(24)}

        removed = c.pipeline()
        for key in sorted(want | {_b(k("p"))}):
            removed.delete(key)
        _expect("cleanup", sum(removed.execute(raise_on_error=True)), len(want) + 1)
    print("all checks passed")


def _hosts(text):
    """--hosts: comma-separated host:port (IPv6 hosts in brackets)."""
    out = []
    for item in text.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise argparse.ArgumentTypeError("%r is not host:port" % item)
        out.append((host.strip("[]"), int(port)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Self-check a running Burrow server.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7440)
    ap.add_argument("--hosts", type=_hosts, help="a cluster's nodes, host:port,host:port,... "
                    "(instead of --host and --port): find the leader and follow it")
    ap.add_argument("--auth-file", help="file holding the client secret (default: $BURROW_AUTH_FILE)")
    args = ap.parse_args(argv)
    auth_file = args.auth_file or os.environ.get("BURROW_AUTH_FILE")
    try:
        secret = None
        if auth_file:
            with open(auth_file, "rb") as f:
                secret = f.read()
        self_check(args.host, args.port, args.hosts, secret)
    except Mismatch as e:
        print("MISMATCH: %s" % e, file=sys.stderr)
        return 1
    except (BurrowError, ProtocolError) as e:
        print("MISMATCH: unexpected %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    except OSError as e:
        where = ",".join("%s:%d" % h for h in args.hosts) if args.hosts else "%s:%d" % (args.host, args.port)
        print("cannot talk to %s: %s" % (where, e), file=sys.stderr)
        return 2
    return 0

