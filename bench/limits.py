#!/usr/bin/env python3
"""Issue 11's resource figures against a running copy of burrow-server.

  bench/limits.py input BIN [server flags...]   64 clients each send 8 MiB of a 16 MiB SET: server RSS
  bench/limits.py scan BIN KEYS COUNT           PING latency beside a client looping SCAN COUNT
  bench/limits.py lrange BIN ITEMS              PING latency beside a client looping LRANGE 0 -1
  bench/limits.py lrange-shard BIN ITEMS        GET latency of another key of the list's shard, beside
                                                the same LRANGEs (--threads 2 --shards 16: the GET's
                                                connection on the other thread, so it waits only for the lock)
  bench/limits.py get-shard BIN BYTES           the same GET beside a client looping GET of a BYTES-long value

BIN is the server binary (target/release/burrow-server); it is started on a
free port with --persistence off --threads 1 (all clients on one runtime)
and killed at the end. Latencies: 10 s of PINGs, one per millisecond.
"""
import multiprocessing, os, re, socket, struct, subprocess, sys, tempfile, time


def start(binary, flags, threads=1):
    d = tempfile.mkdtemp()
    p = subprocess.Popen([binary, "--port", "0", "--persistence", "off", "--threads", str(threads), "--data-dir", d]
                         + flags,
                         stderr=subprocess.PIPE, env=dict(os.environ, NO_COLOR="1"))
    while True:
        line = p.stderr.readline().decode()
        m = re.search(r"127.0.0.1:(\d+)", line)
        if m and "listening" in line:
            return p, int(m.group(1))
        if not line:
            sys.exit("server exited before listening")


def conn(port):
    s = socket.socket()
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def frame(op, i, extras=b"", key=b"", val=b""):
    return struct.pack(">BBBBIBBHI", 0xB7, 1, op, 0, i, len(extras), 0, len(key), len(val)) + extras + key + val


def read_reply(s, buf):
    buf = bytearray(buf)
    while True:
        if len(buf) >= 16:
            total = 16 + buf[8] + struct.unpack(">I", bytes(buf[12:16]))[0]
            if len(buf) >= total:
                return bytes(buf[:total]), bytes(buf[total:])
        b = s.recv(1 << 20)
        if not b:
            raise EOFError("server closed")
        buf += b


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024


def input_rss(port, pid):
    value = 16 * 1024 * 1024 - 64
    socks = []
    for i in range(64):
        s = conn(port)
        s.setblocking(False)
        s.send(struct.pack(">BBBBIBBHI", 0xB7, 1, 3, 0, i + 1, 0, 0, 1, value) + b"k")
        socks.append([s, 8 << 20])
    chunk = b"v" * (1 << 20)
    deadline = time.time() + 20
    while time.time() < deadline and any(x[1] > 0 for x in socks):
        moved = False
        for x in socks:
            if x[1] > 0:
                try:
                    x[1] -= x[0].send(chunk[: min(len(chunk), x[1])])
                    moved = True
                except BlockingIOError:
                    pass
        if not moved:
            time.sleep(0.05)
    time.sleep(1)
    c = conn(port)
    c.sendall(frame(0x33, 99, key=b"clients"))
    info, _ = read_reply(c, b"")
    fields = [l for l in info[16:].decode().splitlines() if "input" in l]
    sent = sum((8 << 20) - x[1] for x in socks) >> 20
    print(f"RSS {rss_mb(pid)} MB; clients sent {sent} MiB; " + " ".join(fields))


def loop_requests(port, req):
    c = conn(port)
    buf = b""
    while True:
        c.sendall(req())
        _, buf = read_reply(c, buf)


def shard_for(key, shards):
    """The server's `store::shard_for`: FNV-1a over 8-byte little-endian words, then fmix64."""
    m = (1 << 64) - 1
    h = 0xCBF29CE484222325 ^ len(key)
    for i in range(0, len(key), 8):
        h = ((h ^ int.from_bytes(key[i:i + 8].ljust(8, b"\0"), "little")) * 0x100000001B3) & m
    for mul in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):
        h = ((h ^ (h >> 33)) * mul) & m
    return (h ^ (h >> 33)) & (shards - 1)


def ping_latency(port, label, probe=None):
    """PINGs (or `probe` frames), one per millisecond for 10 s: p50, p99, max."""
    pc = conn(port)
    buf = b""
    lat = []
    end = time.time() + 10
    while time.time() < end:
        t0 = time.perf_counter()
        pc.sendall(probe or frame(1, 7))
        _, buf = read_reply(pc, buf)
        lat.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.001)
    lat.sort()
    print(f"{label}: {len(lat)} {'probes' if probe else 'PINGs'}, p50 {lat[len(lat) // 2]:.2f} ms, p99 {lat[int(len(lat) * 0.99)]:.2f} ms, "
          f"max {lat[-1]:.2f} ms")


def scan_loop(port, count):
    c = conn(port)
    buf = b""
    cursor = 0
    while True:
        c.sendall(frame(0x31, 1, extras=struct.pack(">QI", cursor, count)))
        r, buf = read_reply(c, buf)
        cursor = struct.unpack(">Q", r[16:24])[0]


def main():
    mode, binary = sys.argv[1], sys.argv[2]
    flags = sys.argv[3:] if mode == "input" else []
    if mode in ("lrange-shard", "get-shard"):
        p, port = start(binary, ["--shards", "16"], threads=2)
    else:
        p, port = start(binary, flags)
    probe = None
    try:
        if mode == "input":
            input_rss(port, p.pid)
            return
        s = conn(port)
        buf = b""
        n = int(sys.argv[3])
        if mode == "scan":
            for first in range(0, n, 10000):
                last = min(n, first + 10000)
                s.sendall(b"".join(frame(3, 1, key=b"key:%d" % k, val=b"v") for k in range(first, last)))
                for _ in range(last - first):
                    _, buf = read_reply(s, buf)
            count = int(sys.argv[4])
            worker = multiprocessing.Process(target=scan_loop, args=(port, count))
            label = f"SCAN COUNT {count} over {n} keys"
        elif mode in ("lrange", "lrange-shard"):
            item = b"x" * 16
            for first in range(0, n, 100000):
                k = min(n, first + 100000) - first
                body = struct.pack(">I", k) + b"".join(struct.pack(">I", len(item)) + item for _ in range(k))
                s.sendall(frame(0x21, 1, key=b"big", val=body))
                _, buf = read_reply(s, buf)
            worker = multiprocessing.Process(
                target=loop_requests, args=(port, lambda: frame(0x25, 1, extras=struct.pack(">qq", 0, -1), key=b"big")))
            label = f"LRANGE 0 -1 of {n} items"
        elif mode == "get-shard":
            s.sendall(frame(3, 1, key=b"big", val=b"x" * n))
            _, buf = read_reply(s, buf)
            worker = multiprocessing.Process(target=loop_requests, args=(port, lambda: frame(2, 1, key=b"big")))
            label = f"GET of a {n}-byte value"
        else:
            sys.exit(f"unknown mode {mode}")
        if mode in ("lrange-shard", "get-shard"):
            near = next(b"k%d" % i for i in range(1000) if shard_for(b"k%d" % i, 16) == shard_for(b"big", 16))
            s.sendall(frame(3, 1, key=near, val=b"v"))
            _, buf = read_reply(s, buf)
            probe = frame(2, 7, key=near)
            label += f"; GET {near.decode()} (same shard)"
        worker.start()
        try:
            ping_latency(port, label, probe)
        finally:
            worker.terminate()
            worker.join()
    finally:
        p.kill()


if __name__ == "__main__":
    main()
