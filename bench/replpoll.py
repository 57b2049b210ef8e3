#!/usr/bin/env python3
"""Pollers for bench/replication.sh: they keep one connection per server,
so polling every 1-10 ms measures the servers, not process start-up.

  replpoll.py spawn-sync KIND PIDFILE LOG PORT TARGET_INDEX KEYS -- SERVER ARGS...
      Starts the follower (stdout and stderr appended to LOG, its pid
      written to PIDFILE) and prints the seconds from just before its start
      until it holds the leader's dataset, polled every 10 ms. KIND burrow:
      INFO replication shows full_resyncs >= 1 and applied_index >=
      TARGET_INDEX, and DBSIZE == KEYS. KIND redis: master_link_status:up,
      master_sync_in_progress:0 and DBSIZE == KEYS (TARGET_INDEX unused).
      Spawning from here keeps this interpreter's start-up out of the time.
  replpoll.py wait-cluster PROTO LEADER FOLLOWER...
      Until every follower streams from the leader (10 s deadline).
  replpoll.py run-lag PROTO LEADER FOLLOWERS OUT -- BENCH ARGS...
      Runs the load (its stdout goes to OUT), then at once reads the
      leader's position and each follower's, and polls every ~1 ms until
      all followers have reached it. FOLLOWERS is comma-separated ports, or
      "-" for none. Prints "LAG1,LAG2 MS1,MS2 MS_ALL BENCH_CPU_S" (lag in
      records for Burrow, bytes for Redis; "-" without followers; the last
      field is the load generator's user+sys CPU seconds).
"""
import resource
import socket
import struct
import subprocess
import sys
import time


class Burrow:
    """A minimal client of Burrow's binary protocol (protocol.md §2)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rid = 0

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def call(self, opcode, key=b"", value=b""):
        """(status, body) of one request."""
        self.rid += 1
        hdr = struct.pack(">BBBBIBBHI", 0xB7, 1, opcode, 0, self.rid, 0, 0, len(key), len(value))
        self.sock.sendall(hdr + key + value)
        hdr = self._read(16)
        status, extras, klen, vlen = hdr[3], hdr[8], struct.unpack(">H", hdr[10:12])[0], struct.unpack(">I", hdr[12:16])[0]
        body = self._read(extras + klen + vlen)[extras + klen:]
        return status, body

    def info(self, section="replication"):
        status, body = self.call(0x33, section.encode())
        if status != 0:
            return {}
        return parse_info(body.decode())

    def dbsize(self):
        status, body = self.call(0x30)
        return struct.unpack(">q", body)[0] if status == 0 else -1


class Resp:
    """A minimal RESP2 client, enough for INFO, DBSIZE, SET and SENTINEL."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def call(self, *args):
        out = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args)
        self.sock.sendall(out)
        return self._reply()

    def _reply(self):
        """Bytes (bulk or simple string), int, list, or None (nil, or an
        error such as -LOADING or -READONLY)."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                self.buf += chunk
            body, self.buf = self.buf[:n], self.buf[n + 2:]
            return body
        if kind == b"*":
            return [self._reply() for _ in range(max(int(rest), 0))]
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest
        return None

    def info(self, section="replication"):
        body = self.call("INFO", section)
        return parse_info(body.decode()) if body is not None else {}

    def dbsize(self):
        n = self.call("DBSIZE")
        return n if isinstance(n, int) else -1


def parse_info(text):
    out = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def connect(cls, port, deadline):
    """Connects, retrying every ms while the server is not listening yet."""
    while True:
        try:
            return cls(port)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.001)


def num(d, key):
    try:
        return int(d.get(key, "-1"))
    except ValueError:
        return -1


def sync(kind, t0, port, keys, target, deadline_s):
    """Polls every 10 ms until the follower holds the leader's dataset."""
    deadline = time.time() + deadline_s
    cls = Burrow if kind == "burrow" else Resp
    c = None
    while time.time() < deadline:
        try:
            if c is None:
                c = connect(cls, port, deadline)
            i = c.info()
            if kind == "burrow":
                ready = num(i, "full_resyncs") >= 1 and num(i, "applied_index") >= target
            else:
                ready = i.get("master_link_status") == "up" and i.get("master_sync_in_progress") == "0"
            if ready and c.dbsize() == keys:
                print("%.3f" % (time.time() - t0))
                return 0
        except (OSError, ConnectionError):
            c = None
        time.sleep(0.01)
    print("follower on port %d did not sync within %d s" % (port, deadline_s), file=sys.stderr)
    return 1


def position(kind, c, leader):
    """The leader's last index / the follower's applied index (Burrow), or
    the master's / replica's replication offset in bytes (Redis)."""
    i = c.info()
    if kind == "burrow":
        return num(i, "last_index" if leader else "applied_index")
    return num(i, "master_repl_offset" if leader else "slave_repl_offset")


def wait_cluster(kind, leader, followers):
    deadline = time.time() + 10
    cls = Burrow if kind == "burrow" else Resp
    lc = connect(cls, leader, deadline)
    fcs = [connect(cls, p, deadline) for p in followers]
    while time.time() < deadline:
        li = lc.info()
        if kind == "burrow":
            ok = sum("state=streaming" in v for k, v in li.items() if k.startswith("follower")) == len(followers)
            ok = ok and all(f.info().get("link_status") == "up" for f in fcs)
        else:
            ok = num(li, "connected_slaves") == len(followers)
            ok = ok and all(f.info().get("master_link_status") == "up" for f in fcs)
        if ok:
            return 0
        time.sleep(0.01)
    print("followers %s never streamed from %d" % (followers, leader), file=sys.stderr)
    return 1


def run_lag(kind, leader, followers, out, bench):
    cls = Burrow if kind == "burrow" else Resp
    deadline = time.time() + 10
    lc = connect(cls, leader, deadline)
    fcs = [connect(cls, p, deadline) for p in followers]
    with open(out, "wb") as f:
        rc = subprocess.run(bench, stdout=f).returncode
    if rc != 0:
        print("load generator failed: %s" % rc, file=sys.stderr)
        return 1
    t_end = time.perf_counter()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = "%.3f" % (ru.ru_utime + ru.ru_stime)
    if not fcs:
        print("- - - " + cpu)
        return 0
    target = position(kind, lc, True)
    lags = [target - position(kind, c, False) for c in fcs]
    ms = [None] * len(fcs)
    for n, lag in enumerate(lags):
        if lag <= 0:
            ms[n] = 0.0
    limit = time.perf_counter() + 60
    while None in ms and time.perf_counter() < limit:
        time.sleep(0.001)
        for n, c in enumerate(fcs):
            if ms[n] is None and position(kind, c, False) >= target:
                ms[n] = (time.perf_counter() - t_end) * 1000
    if None in ms:
        print("followers did not catch up within 60 s: %s" % ms, file=sys.stderr)
        return 1
    print("%s %s %.1f %s" % (",".join(map(str, lags)), ",".join("%.1f" % m for m in ms), max(ms), cpu))
    return 0


def main(argv):
    mode = argv[1]
    if mode == "spawn-sync":
        sep = argv.index("--")
        kind, pidfile, log = argv[2], argv[3], argv[4]
        port, target, keys = int(argv[5]), int(argv[6]), int(argv[7])
        with open(log, "ab") as out:
            t0 = time.time()
            child = subprocess.Popen(argv[sep + 1:], stdout=out, stderr=out)
        with open(pidfile, "w") as f:
            f.write("%d\n" % child.pid)
        return sync(kind, t0, port, keys, target, 300)
    if mode == "wait-cluster":
        return wait_cluster(argv[2], int(argv[3]), [int(p) for p in argv[4:]])
    if mode == "run-lag":
        sep = argv.index("--")
        kind, leader, fl, out = argv[2], int(argv[3]), argv[4], argv[5]
        followers = [] if fl == "-" else [int(p) for p in fl.split(",")]
        return run_lag(kind, leader, followers, out, argv[sep + 1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
