"""The Python client against real servers: the whole self-check on a
standalone server and on a 3-node cluster (through the leader, and from a
follower that redirects), and a few behaviours a self-check cannot show.

    PYTHONPATH=examples/python python3 -m unittest discover -s examples/python/tests -t examples/python

(.ci/run runs it after `cargo test`, which builds the server.)
"""

import contextlib
import io
import os
import subprocess
import sys
import unittest

from burrow_client import BurrowError, Client
from burrow_client.selfcheck import main, self_check

from tests.servers import Cluster, Standalone

PACKAGE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def run_self_check(*args, **kwargs):
    """Runs self_check, returning its output lines; a mismatch raises."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        self_check(*args, **kwargs)
    return out.getvalue().splitlines()


class WithServers(unittest.TestCase):
    """Starts ``servers`` (Standalone or Cluster) once for the class's tests,
    as ``self.server``."""

    servers = None

    @classmethod
    def setUpClass(cls):
        cls.server = cls.servers().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)


class StandaloneTest(WithServers):
    servers = Standalone

    def test_self_check_passes(self):
        lines = run_self_check("127.0.0.1", self.server.port)
        self.assertIn("ok - WAIT 0 0", lines)
        self.assertIn("ok - WAIT 1 100 gives 0 after the timeout", lines)
        self.assertEqual(lines[-1], "all checks passed")
        with Client("127.0.0.1", self.server.port) as c:
            self.assertEqual(c.dbsize(), 0, "the self-check cleans up after itself")

    def test_unix_socket_round_trip(self):
        """`unix_socket=`: the same protocol over the server's --unix-socket."""
        with Client(unix_socket=self.server.unix_socket) as c:
            c.set("py:uds", "over a unix socket")
            self.assertEqual(c.addr, self.server.unix_socket)
            with Client("127.0.0.1", self.server.port) as tcp:
                self.assertEqual(tcp.get("py:uds"), b"over a unix socket")
            c.delete("py:uds")

    def test_module_runs_as_a_command(self):
        """`python3 -m burrow_client` (the installed `burrow-client-check`)."""
        env = dict(os.environ, PYTHONPATH=PACKAGE_DIR, PYTHONDONTWRITEBYTECODE="1")
        done = subprocess.run([sys.executable, "-m", "burrow_client", "--port", str(self.server.port)],
                              env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.splitlines()[-1], "all checks passed")

    def test_the_old_script_path_still_runs(self):
        """`python3 examples/python/burrow_client.py` from before the package."""
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPATH", None)
        done = subprocess.run([sys.executable, os.path.join(PACKAGE_DIR, "burrow_client.py"),
                               "--port", str(self.server.port)], env=env, capture_output=True, text=True,
                              timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.splitlines()[-1], "all checks passed")

    def test_error_status_is_raised_and_the_connection_stays_usable(self):
        with Client("127.0.0.1", self.server.port) as c:
            c.set("py:text", "x")
            with self.assertRaises(BurrowError) as e:
                c.incr("py:text")
            self.assertEqual(e.exception.status_name, "NOT_INTEGER")
            self.assertEqual(c.ping(), "PONG")
            c.delete("py:text")


class UnreachableTest(unittest.TestCase):
    def test_self_check_exits_2_when_no_server_answers(self):
        from tests.servers import free_port
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["--port", str(free_port())])
        self.assertEqual(code, 2)
        self.assertIn("cannot talk to 127.0.0.1:", err.getvalue())


class ClusterTest(WithServers):
    servers = Cluster

    def test_self_check_passes_through_the_cluster_client(self):
        lines = run_self_check(None, None, hosts=self.server.hosts)
        self.assertIn("ok - WAIT 0 0 counts at most the 2 follower(s)", lines)
        self.assertIn("ok - WAIT 2 2000: every follower, or fewer only after the timeout", lines)
        self.assertEqual(lines[-1], "all checks passed")

    def test_self_check_started_on_a_follower_is_redirected_to_the_leader(self):
        lines = run_self_check("127.0.0.1", self.server.ports[1])
        # PING is served by the follower; the first SET is redirected, and
        # the rest runs on the leader.
        self.assertIn("ok - CLUSTER: the leader names itself and lists every member", lines)
        self.assertEqual(lines[-1], "all checks passed")

    def test_wait_counts_both_followers(self):
        with Client.cluster(self.server.hosts) as c:
            c.set("py:wait", "v")
            self.assertEqual(c.wait(2, 10000), 2)
            c.delete("py:wait")

    def test_a_follower_refuses_wait_with_not_leader(self):
        with Client("127.0.0.1", self.server.ports[2], max_redirects=0) as c:
            with self.assertRaises(BurrowError) as e:
                c.wait(0, 0)
            self.assertEqual(e.exception.status_name, "NOT_LEADER")
            self.assertEqual(e.exception.message, "127.0.0.1:%d" % self.server.ports[0])


if __name__ == "__main__":
    unittest.main()
