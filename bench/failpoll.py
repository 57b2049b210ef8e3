#!/usr/bin/env python3
"""The measuring client of bench/failover.sh: plain sockets, Burrow's binary
protocol (protocol.md §2) or Redis's RESP2, one connection per node kept
open, so the times measure the servers and not this interpreter.

  failpoll.py kill PROTO TIMEOUT_S PORT:PID,PORT:PID,... [SIGNAL]
      Finds the node that accepts writes, writes to it (one SET at a time,
      each waiting for its reply, a ~2 ms pause between: a light load) for
      about a second, sends it SIGNAL (KILL by default; TERM: a graceful
      stop), and from that instant writes to every other node in turn until
      one acknowledges a write. Prints "KILLED_PORT MS" (signal -> first
      acknowledged write, in ms), or "KILLED_PORT none" when no node took a
      write within TIMEOUT_S.
  failpoll.py healthy PROTO TIMEOUT_S PORTS [SENTINEL_PORTS]
      Waits until exactly one node accepts writes and every other one
      streams from it (Burrow: INFO link_status:up, loading:0; Redis:
      master_link_status:up and the master counts them all), and every
      sentinel names that master and knows every replica as healthy.
      Prints the master's port; exit 1 on timeout.

A write is acknowledged when Burrow answers OK (in quorum mode: a majority
holds it) or Redis answers +OK. NOT_LEADER, NO_QUORUM, LOADING, -READONLY,
-LOADING, a refused or reset connection: not yet.
"""
import os
import signal
import struct
import sys
import time

from replpoll import Burrow, Resp

SET = 0x03


class Node:
    """One node, reconnected on demand; every failure reads as 'not now'."""

    def __init__(self, proto, port):
        self.cls, self.port, self.conn = (Burrow if proto == "burrow" else Resp), port, None

    def _do(self, f):
        try:
            if self.conn is None:
                self.conn = self.cls(self.port)
            return f(self.conn)
        except (OSError, ConnectionError, ValueError, struct.error):
            if self.conn is not None:
                self.conn.sock.close()
            self.conn = None
            return None

    def write(self, n):
        key, value = "failover:%d" % (n % 1000), str(n)
        if self.cls is Burrow:
            return self._do(lambda c: c.call(SET, key.encode(), value.encode())[0] == 0) or False
        return self._do(lambda c: c.call("SET", key, value) == b"OK") or False

    def info(self):
        return self._do(lambda c: c.info()) or {}


def kill(proto, timeout, spec, sig):
    nodes = {}
    for item in spec.split(","):
        port, pid = item.split(":")
        nodes[int(port)] = (Node(proto, int(port)), int(pid))
    leader = None
    deadline = time.monotonic() + timeout
    n = 0
    while leader is None:
        for port, (node, _) in nodes.items():
            n += 1
            if node.write(n):
                leader = port
                break
        if time.monotonic() > deadline:
            print("- none")
            return
    node, pid = nodes[leader]
    warm_until = time.monotonic() + 1.0
    while time.monotonic() < warm_until:
        n += 1
        node.write(n)
        time.sleep(0.002)
    t0 = time.monotonic()
    os.kill(pid, sig)
    others = [nd for port, (nd, _) in nodes.items() if port != leader]
    while time.monotonic() - t0 < timeout:
        for nd in others:
            n += 1
            if nd.write(n):
                print("%d %.1f" % (leader, (time.monotonic() - t0) * 1000))
                return
        time.sleep(0.001)
    print("%d none" % leader)


def sentinel_agrees(sentinel, master, replicas):
    """The sentinel names `master` and knows at least `replicas` healthy
    replicas of it (one it never saw would be left behind by a failover)."""
    addr = sentinel._do(lambda c: c.call("SENTINEL", "get-master-addr-by-name", "mymaster"))
    if not (isinstance(addr, list) and len(addr) == 2 and addr[1] == str(master).encode()):
        return False
    known = sentinel._do(lambda c: c.call("SENTINEL", "replicas", "mymaster")) or []
    flags = [dict(zip(r[::2], r[1::2])).get(b"flags") for r in known if isinstance(r, list)]
    return flags.count(b"slave") >= replicas


def healthy(proto, timeout, ports, sentinels):
    deadline = time.monotonic() + timeout
    nodes = [Node(proto, p) for p in ports]
    sentinel_nodes = [Node("redis", p) for p in sentinels]
    while time.monotonic() < deadline:
        infos = [nd.info() for nd in nodes]
        if proto == "burrow":
            leaders = [p for p, i in zip(ports, infos) if i.get("role") == "leader"]
            synced = all(
                i.get("role") == "leader" or (i.get("link_status") == "up" and i.get("loading") == "0") for i in infos
            )
        else:
            leaders = [p for p, i in zip(ports, infos) if i.get("role") == "master"]
            synced = all(i.get("role") == "master" or i.get("master_link_status") == "up" for i in infos) and all(
                i.get("connected_slaves") == str(len(ports) - 1) for i in infos if i.get("role") == "master"
            )
        agreed = len(leaders) == 1 and all(sentinel_agrees(nd, leaders[0], len(ports) - 1) for nd in sentinel_nodes)
        if synced and agreed:
            print(leaders[0])
            return 0
        time.sleep(0.02)
    print("not healthy within %ss" % timeout, file=sys.stderr)
    return 1


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, proto, timeout = argv[1], argv[2], float(argv[3])
    if cmd == "kill":
        kill(proto, timeout, argv[4], getattr(signal, "SIG" + (argv[5] if len(argv) > 5 else "KILL")))
    elif cmd == "healthy":
        ports = [int(p) for p in argv[4].split(",")]
        sentinels = [int(p) for p in argv[5].split(",")] if len(argv) > 5 and argv[5] else []
        return healthy(proto, timeout, ports, sentinels)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
