"""Burrow servers for the tests: a standalone one and a 3-node cluster,
started from the built binaries as child processes on 127.0.0.1, with
persistence off and data in a temporary directory.

The binary is $BURROW_BIN_DIR/burrow-server if that is set, else the
repository's target/debug (what `cargo build` or `cargo test` made), else
burrow-server on PATH (`cargo install --path .`).
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from burrow_client import BurrowError, Client

# How long a server may take to answer, on a loaded machine.
DEADLINE = 60.0
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def server_binary():
    candidates = []
    if os.environ.get("BURROW_BIN_DIR"):
        candidates.append(os.path.join(os.environ["BURROW_BIN_DIR"], "burrow-server"))
    candidates.append(os.path.join(REPO, "target", "debug", "burrow-server"))
    on_path = shutil.which("burrow-server")
    if on_path:
        candidates.append(on_path)
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    raise RuntimeError("no burrow-server binary: build it (cargo build), set BURROW_BIN_DIR, "
                       "or install it (cargo install --path .); looked at %s" % ", ".join(candidates))


def free_port():
    """A port nothing listens on now (the server binds it a moment later;
    a start that loses the race is retried with another)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, deadline=DEADLINE):
    """Polls ``check`` until it returns a true value (which is returned) or
    the deadline passes."""
    end, pause = time.monotonic() + deadline, 0.01
    while True:
        try:
            got = check()
            if got:
                return got
        except (OSError, BurrowError):
            pass
        if time.monotonic() > end:
            raise AssertionError("timed out after %.0f s waiting for %s" % (deadline, what))
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


class Node:
    """One burrow-server child process."""

    def __init__(self, args, log_path, port):
        self.port, self.log_path = port, log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([server_binary()] + args, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def answers(self):
        if self.proc.poll() is not None:
            raise RuntimeError("burrow-server exited with %s:\n%s" % (self.proc.returncode, self.log()))
        with Client("127.0.0.1", self.port, timeout=2.0) as c:
            return c.ping() == "PONG"

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def _bound_elsewhere(node):
    """The node exited because another process took its port first."""
    return node.proc.poll() is not None and "in use" in node.log()


class Standalone:
    """A standalone server: ``with Standalone() as s: Client("127.0.0.1", s.port)``,
    also on a Unix socket: ``Client(unix_socket=s.unix_socket)``."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="burrow-py-")
        for attempt in range(5):
            port = free_port()
            self.unix_socket = os.path.join(self.dir, "burrow.sock")
            self.node = Node(["--bind", "127.0.0.1", "--port", str(port), "--persistence", "off",
                              "--data-dir", os.path.join(self.dir, "data"), "--unix-socket", self.unix_socket],
                             os.path.join(self.dir, "server-%d.log" % attempt), port)
            try:
                wait_for("the server on port %d" % port, self.node.answers)
                break
            except RuntimeError:
                if not _bound_elsewhere(self.node) or attempt == 4:
                    raise
        self.port = self.node.port
        return self

    def __exit__(self, *exc):
        self.node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


CLUSTER_FILE = """[cluster]
initial_leader = 1
replication = "async"
heartbeat_ms = 50
"""


class Cluster:
    """Three nodes on 127.0.0.1; node 1 campaigns at once and leads. Entered
    once every follower's link is up as the leader sees it."""

    def __enter__(self):
        for attempt in range(5):
            try:
                return self._start()
            except RuntimeError:
                lost_race = any(_bound_elsewhere(n) for n in self.nodes)
                self.__exit__()
                if not lost_race or attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _start(self):
        self.dir = tempfile.mkdtemp(prefix="burrow-py-cluster-")
        self.ports = [free_port() for _ in range(3)]
        text = CLUSTER_FILE + "".join(
            '\n[[node]]\nid = %d\naddr = "127.0.0.1:%d"\ndata_dir = "%s"\n'
            % (i + 1, port, os.path.join(self.dir, "node%d" % (i + 1))) for i, port in enumerate(self.ports))
        config = os.path.join(self.dir, "cluster.toml")
        with open(config, "w") as f:
            f.write(text)
        self.nodes = [Node(["--config", config, "--node-id", str(i + 1), "--persistence", "off"],
                           os.path.join(self.dir, "node%d.log" % (i + 1)), port)
                      for i, port in enumerate(self.ports)]
        try:
            for node in self.nodes:
                wait_for("node on port %d" % node.port, node.answers)
            wait_for("node 1 to lead with both followers' links up", self._all_up)
        except AssertionError:
            self.__exit__()
            raise
        return self

    def _all_up(self):
        with Client("127.0.0.1", self.ports[0], timeout=2.0) as c:
            view = c.cluster_view()
        links = [m["link"] for m in view["members"] if m["id"] != view["node_id"]]
        return view["role"] == "leader" and links == ["up", "up"]

    @property
    def hosts(self):
        return [("127.0.0.1", port) for port in self.ports]

    def __exit__(self, *exc):
        for node in getattr(self, "nodes", []):
            node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
