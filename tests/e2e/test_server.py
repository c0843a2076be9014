"""End-to-end tests of the quorumkv server: real processes, real clients
(redis-py and redis-cli), a 3-node cluster on loopback.

    python3 tests/e2e/test_server.py [-v] [TestClass.test_name]
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BINARY, Cluster  # noqa: E402


def wait_until(pred, timeout=10, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            if pred():
                return
        except redis.exceptions.RedisError as e:  # e.g. CLUSTERDOWN while a node starts
            last = e
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s (last error: %s)" % (what, last))


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def test_commands_on_any_node(self):
        c = self.cluster
        leader = c.wait_leader()
        f1, f2 = c.followers()[:2]
        # A write sent to a follower is forwarded to the leader.
        self.assertTrue(f1.client().set("k1", "v1"))
        # A linearizable read on another follower sees it at once.
        self.assertEqual(f2.client().get("k1"), b"v1")
        self.assertEqual(leader.client().get("k1"), b"v1")
        r = f2.client()
        self.assertEqual(r.incr("ctr"), 1)
        self.assertEqual(f1.client().incrby("ctr", 41), 42)
        self.assertEqual(r.decr("ctr"), 41)
        self.assertAlmostEqual(float(r.incrbyfloat("flt", 1.5)), 1.5)
        self.assertEqual(r.append("s", "ab"), 2)
        self.assertEqual(r.append("s", "cd"), 4)
        self.assertEqual(r.strlen("s"), 4)
        self.assertEqual(r.getrange("s", 1, 2), b"bc")
        self.assertEqual(r.setrange("s", 1, "XY"), 4)
        self.assertEqual(r.get("s"), b"aXYd")
        self.assertEqual(r.mset({"m1": "a", "m2": "b"}), True)
        self.assertEqual(r.mget("m1", "m2", "nope"), [b"a", b"b", None])
        self.assertFalse(r.msetnx({"m1": "x", "m3": "y"}))
        self.assertIsNone(r.get("m3"))
        self.assertFalse(r.setnx("m1", "z"))
        self.assertEqual(r.getset("m1", "new"), b"a")
        self.assertEqual(r.getdel("m1"), b"new")
        self.assertEqual(r.exists("m1", "m2"), 1)
        self.assertEqual(r.type("m2"), b"string")
        self.assertEqual(r.type("none"), b"none")
        self.assertTrue(r.rename("m2", "m4"))
        self.assertEqual(r.get("m4"), b"b")
        self.assertEqual(r.delete("m4", "k1", "nokey"), 2)
        # Expiry.
        self.assertTrue(r.set("e1", "x", ex=100))
        self.assertTrue(95 <= r.ttl("e1") <= 100)
        self.assertTrue(r.persist("e1"))
        self.assertEqual(r.ttl("e1"), -1)
        self.assertEqual(r.ttl("missing"), -2)
        self.assertTrue(r.set("e2", "x", px=150))
        wait_until(lambda: r.get("e2") is None, 5, "e2 to expire")
        self.assertTrue(r.pexpire("e1", 100))
        wait_until(lambda: r.exists("e1") == 0, 5, "e1 to expire")
        # The leader deletes expired keys through the log: every node agrees.
        wait_until(lambda: all(n.client().dbsize() == c.nodes[0].client().dbsize()
                               for n in c.nodes), 5, "replicas to agree on dbsize")
        # Our CAS.
        r.set("cas", "1")
        self.assertEqual(r.execute_command("CAS", "cas", "1", "2"), 1)
        self.assertEqual(r.execute_command("CAS", "cas", "1", "3"), 0)
        self.assertEqual(r.get("cas"), b"2")
        # SCAN and KEYS.
        for i in range(30):
            r.set("scan:%d" % i, i)
        self.assertEqual(len(list(r.scan_iter(match="scan:*", count=7))), 30)
        self.assertEqual(len(r.keys("scan:*")), 30)

    def test_connection_and_server_commands(self):
        r = self.cluster.nodes[0].client()
        self.assertTrue(r.ping())
        self.assertEqual(r.echo("hi"), b"hi")
        self.assertTrue(r.execute_command("SELECT", 0))
        with self.assertRaises(redis.ResponseError):
            r.execute_command("SELECT", 1)
        self.assertTrue(r.client_setname("tester"))
        self.assertIn(r.client_getname(), ("tester", b"tester"))
        self.assertGreater(r.client_id(), 0)
        self.assertIn("tester", str(r.execute_command("CLIENT", "LIST")))
        info = r.info("all")
        for key in ("redis_version", "connected_clients", "used_memory", "total_commands_processed",
                    "raft_term", "raft_commit_index", "role"):
            self.assertIn(key, info)
        self.assertGreater(r.command_count(), 50)
        self.assertIn(b"maxclients", r.execute_command("CONFIG", "GET", "maxclients"))
        # RESP3 through HELLO (raw: this redis-py speaks RESP2 only).
        s = socket.create_connection(("127.0.0.1", self.cluster.nodes[1].client_port), timeout=5)
        # A read pipelined behind a write of its own connection sees it.
        s.sendall(b"HELLO 3\r\nSET r3 x\r\nGET r3\r\nPING\r\n")
        data = b""
        while not data.endswith(b"+PONG\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertTrue(data.startswith(b"%7\r\n"), data[:40])  # a RESP3 map
        self.assertIn(b"$5\r\nproto\r\n:3\r\n", data)
        self.assertIn(b"+OK\r\n$1\r\nx\r\n+PONG\r\n", data)
        # redis-cli works unchanged.
        if shutil.which("redis-cli"):
            out = subprocess.run(["redis-cli", "-p", str(self.cluster.nodes[2].client_port), "GET", "r3"],
                                 capture_output=True, text=True, timeout=10)
            self.assertEqual(out.stdout.strip(), "x")

    def test_pipelined_commands_run_in_order(self):
        # Redis runs a connection's commands one after another; so do we,
        # with consecutive reads after one barrier and consecutive writes in
        # one entry (ARCHITECTURE decision 40). On the leader and on a
        # follower (whose writes are forwarded).
        c = self.cluster
        leader = c.wait_leader()
        for node in (leader, c.followers()[0]):
            tag = "po%d" % node.client_port
            s = socket.create_connection(("127.0.0.1", node.client_port), timeout=10)
            f = s.makefile("rb")

            def replies(n):
                out = []
                for _ in range(n):
                    line = f.readline()
                    if line.startswith(b"$") and line != b"$-1\r\n":
                        line = f.read(int(line[1:]) + 2)[:-2]
                    out.append(line.rstrip(b"\r\n") if isinstance(line, bytes) else line)
                return out

            # Reads and writes interleaved: every read sees exactly the
            # writes before it, none after it.
            cmds, expect = [], []
            for i in range(1, 201):
                cmds.append(b"INCR %s:n\r\n" % tag.encode())
                expect.append(b":%d" % i)
                if i % 3 == 0:
                    cmds.append(b"GET %s:n\r\n" % tag.encode())
                    expect.append(str(i).encode())
                if i % 7 == 0:
                    cmds.append(b"SET %s:v %d\r\n" % (tag.encode(), i))
                    expect.append(b"+OK")
                    cmds.append(b"GET %s:v\r\n" % tag.encode())
                    expect.append(str(i).encode())
                    cmds.append(b"PING\r\n")
                    expect.append(b"+PONG")
            s.sendall(b"".join(cmds))
            self.assertEqual(replies(len(expect)), expect)
            # A pipelined run of writes is proposed as few entries, not one
            # per command (the whole burst reaches the server in a few reads).
            before = int(leader.client().info("raft")["raft_commit_index"])
            s.sendall(b"".join(b"SET %s:b%d %d\r\n" % (tag.encode(), i, i) for i in range(300)))
            self.assertEqual(replies(300), [b"+OK"] * 300)
            grew = int(leader.client().info("raft")["raft_commit_index"]) - before
            self.assertLess(grew, 100, "300 pipelined SETs took %d entries" % grew)
            # QUIT behind writes: the writes before it run, what follows it does not.
            s.sendall(b"SET %s:q 1\r\nGET %s:q\r\nQUIT\r\nSET %s:q 2\r\n" % ((tag.encode(),) * 3))
            self.assertEqual(replies(3), [b"+OK", b"1", b"+OK"])
            self.assertEqual(f.read(), b"")  # closed
            s.close()
            self.assertEqual(node.client().get("%s:q" % tag), b"1")
            # Commands received before the client closed still run, in order.
            s = socket.create_connection(("127.0.0.1", node.client_port), timeout=10)
            s.sendall(b"SET %s:c 1\r\nGET %s:c\r\nSET %s:c 2\r\n" % ((tag.encode(),) * 3))
            s.close()
            wait_until(lambda: node.client().get("%s:c" % tag) == b"2", 10, "the last SET")
            # Behind a blocked command they do not (Redis frees a blocked
            # client with what it had not run).
            s = socket.create_connection(("127.0.0.1", node.client_port), timeout=10)
            s.sendall(b"BLPOP %s:l 0\r\nSET %s:after 1\r\n" % ((tag.encode(),) * 2))
            wait_until(lambda: node.client().info("clients")["blocked_clients"] >= 1, 10,
                       "the BLPOP to wait")
            s.close()
            wait_until(lambda: node.client().info("clients")["blocked_clients"] == 0, 10,
                       "the closed client to be unblocked")
            self.assertEqual(node.client().rpush("%s:l" % tag, "e"), 1)
            time.sleep(0.3)
            self.assertEqual(node.client().lrange("%s:l" % tag, 0, -1), [b"e"])
            self.assertEqual(node.client().exists("%s:after" % tag), 0)
            # Errors keep their place in a run.
            r = node.client()
            p = r.pipeline(transaction=False)
            p.set("%s:s" % tag, "x")
            p.incr("%s:s" % tag)
            p.lpush("%s:s" % tag, "y")
            p.append("%s:s" % tag, "y")
            p.get("%s:s" % tag)
            res = p.execute(raise_on_error=False)
            self.assertTrue(res[0])
            self.assertIsInstance(res[1], redis.ResponseError)
            self.assertIsInstance(res[2], redis.ResponseError)
            self.assertEqual(res[3:], [2, b"xy"])

    def test_nothing_runs_after_quit_or_behind_a_blocked_command(self):
        node = self.cluster.nodes[0]
        r = node.client()
        self.assertTrue(r.set("nq:big", b"b" * (2 << 20)))
        # QUIT waits behind replies the client does not read (the close
        # waits for them): a command sent after it must not run.
        s = socket.create_connection(("127.0.0.1", node.client_port), timeout=10)
        s.sendall(b"GET nq:big\r\n" * 4 + b"QUIT\r\n")
        time.sleep(0.5)
        s.sendall(b"SET nq:after-quit 1\r\n")
        time.sleep(0.5)
        self.assertEqual(r.exists("nq:after-quit"), 0)
        got = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        s.close()
        self.assertTrue(got.endswith(b"+OK\r\n"), got[-20:])
        self.assertEqual(r.exists("nq:after-quit"), 0)
        # QUIT queued behind a write, then garbage: still nothing after QUIT.
        s = socket.create_connection(("127.0.0.1", node.client_port), timeout=10)
        s.sendall(b"SET nq:a 1\r\nQUIT\r\nSET nq:after-quit2 1\r\n*x\r\n")
        while s.recv(65536):
            pass
        s.close()
        self.assertEqual(r.get("nq:a"), b"1")
        self.assertEqual(r.exists("nq:after-quit2"), 0)
        # A client that closes: a blocking command that would block drops
        # what came after it (as Redis frees a blocked client); one that
        # finds its element runs and so does the rest.
        for ready in (False, True):
            tag = "nq:%s" % ready
            if ready:
                r.rpush(tag + ":l", "e")
            s = socket.create_connection(("127.0.0.1", node.client_port), timeout=10)
            s.sendall(("SET %s:a 1\r\nBLPOP %s:l 0\r\nSET %s:x 1\r\nLOCK %s:lk me 10000\r\n"
                       "SET %s:y 1\r\n" % ((tag,) * 5)).encode())
            s.close()
            wait_until(lambda: r.get(tag + ":a") == b"1", 10, "the first SET")
            if ready:
                wait_until(lambda: r.get(tag + ":y") == b"1", 10, "the last SET")
                self.assertEqual(r.get(tag + ":x"), b"1")
                self.assertEqual(r.llen(tag + ":l"), 0)
                self.assertEqual(r.execute_command("LOCK.INFO", tag + ":lk")[1], b"me")
            else:
                time.sleep(0.5)
                self.assertEqual(r.exists(tag + ":x", tag + ":y", tag + ":lk"), 0)
                self.assertEqual(r.info("clients")["blocked_clients"], 0)

    def test_connection_io_under_pipelining_and_backpressure(self):
        # The client loop reads only after readiness once a read drained the
        # socket, writes replies directly and falls back to an async write
        # when the socket is full: every path here must keep order and lose
        # nothing.
        node = self.cluster.nodes[0]
        r = node.client()
        blob = b"b" * (2 << 20)
        self.assertTrue(r.set("io-blob", blob))

        def conn():
            s = socket.create_connection(("127.0.0.1", node.client_port), timeout=20)
            return s

        def read_until(s, n_bytes=None, suffix=None):
            data = bytearray()
            while True:
                if n_bytes is not None and len(data) >= n_bytes:
                    break
                if suffix is not None and data.endswith(suffix):
                    break
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
            return bytes(data)

        # 1. Replies far larger than the socket buffers, not read for a while:
        # the server's direct write stops short and the rest goes async.
        s = conn()
        s.sendall(b"GET io-blob\r\n" * 12 + b"PING\r\n")
        time.sleep(0.5)
        one = b"$%d\r\n" % len(blob) + blob + b"\r\n"
        data = read_until(s, n_bytes=12 * len(one) + len(b"+PONG\r\n"))
        self.assertEqual(data, one * 12 + b"+PONG\r\n")
        # The same connection then serves single requests as usual.
        s.sendall(b"ECHO x\r\n")
        self.assertEqual(read_until(s, suffix=b"x\r\n"), b"$1\r\nx\r\n")
        s.close()

        # 2. More requests in one burst than client-pipeline-max (4096): the
        # reader pauses, and must read what arrived meanwhile when it resumes.
        s = conn()
        n = 10000
        s.sendall(b"PING\r\n" * n)
        self.assertEqual(read_until(s, n_bytes=7 * n), b"+PONG\r\n" * n)
        s.close()

        # 3. A command trickled a byte at a time, with pauses: each byte is a
        # readiness event after the socket was drained.
        s = conn()
        for b in b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n":
            s.sendall(bytes([b]))
            time.sleep(0.005)
        self.assertEqual(read_until(s, suffix=b"hi\r\n"), b"$2\r\nhi\r\n")
        s.close()

        # 4. QUIT after a large reply: the reply is written whole, then +OK,
        # then the server closes the connection.
        s = conn()
        s.sendall(b"GET io-blob\r\nQUIT\r\nPING\r\n")
        time.sleep(0.3)
        data = read_until(s)  # to EOF
        self.assertEqual(data, one + b"+OK\r\n")
        s.close()

        # 5. A client that disconnects with replies still coming: the node
        # goes on serving everyone else.
        s = conn()
        s.sendall(b"GET io-blob\r\n" * 20)
        s.close()
        self.assertEqual(r.get("io-blob"), blob)
        self.assertTrue(node.alive())

        # 6. client-output-buffer-limit counts what waits and what an async
        # write still holds: a client that does not read is cut off, the
        # others are not.
        r.config_set("client-output-buffer-limit", 4 << 20)
        try:
            s = conn()
            s.sendall(b"GET io-blob\r\n" * 20)
            time.sleep(1.0)
            got = 0
            try:
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    got += len(chunk)
            except ConnectionResetError:
                pass
            s.close()
            self.assertLess(got, 20 * len(one))  # disconnected before all replies
            self.assertEqual(r.get("io-blob"), blob)
        finally:
            r.config_set("client-output-buffer-limit", 256 << 20)

    def test_bad_input_keeps_node_and_connection(self):
        node = self.cluster.nodes[1]
        r = node.client()
        with self.assertRaisesRegex(redis.ResponseError, "wrong number of arguments for 'get'"):
            r.execute_command("GET")
        with self.assertRaisesRegex(redis.ResponseError, "unknown command"):
            r.execute_command("NOSUCHCMD", "a")
        r.set("notint", "abc")
        with self.assertRaisesRegex(redis.ResponseError, "not an integer"):
            r.incr("notint")
        r.set("big", str(2**63 - 1))
        with self.assertRaisesRegex(redis.ResponseError, "overflow"):
            r.incr("big")
        with self.assertRaisesRegex(redis.ResponseError, "syntax error"):
            r.execute_command("SET", "a", "b", "NX", "XX")
        self.assertTrue(r.ping())  # the same connection still works

        def raw(payload, read=True):
            s = socket.create_connection(("127.0.0.1", node.client_port), timeout=5)
            s.sendall(payload)
            data = b""
            if read:
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except socket.timeout:
                    pass
            return s, data

        # A huge bulk length: protocol error, that connection closed.
        s, data = raw(b"*1\r\n$2000000000000\r\n")
        self.assertIn(b"Protocol error", data)
        s.close()
        # Garbage.
        s, data = raw(b"*2\r\nxx\r\n")
        self.assertIn(b"Protocol error", data)
        s.close()
        # Half a command, then silence: the node keeps serving others.
        stalled, _ = raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk", read=False)
        self.assertTrue(r.set("after-stall", "ok"))
        self.assertEqual(node.client().get("after-stall"), b"ok")
        stalled.close()
        self.assertTrue(node.alive())


class FailoverTest(unittest.TestCase):
    def test_kill_leader_loses_no_acknowledged_write(self):
        with Cluster(3) as c:
            leader = c.wait_leader()
            follower = c.followers()[0]
            acked = []
            r = follower.client(socket_timeout=5)
            for i in range(200):
                r.set("w:%d" % i, i)
                acked.append(i)
            leader.kill(signal.SIGKILL)
            new_leader = c.wait_leader(exclude=leader)
            self.assertIsNot(new_leader, leader)
            # Writes succeed on the new leader (through any live node).
            live = [n for n in c.nodes if n.alive()]
            deadline = time.time() + 10
            while True:
                try:
                    self.assertTrue(live[0].client().set("after", "failover"))
                    break
                except redis.exceptions.ResponseError as e:
                    if "CLUSTERDOWN" not in str(e) or time.time() > deadline:
                        raise
                    time.sleep(0.1)
            for n in live:
                rr = n.client()
                for i in acked:
                    self.assertEqual(rr.get("w:%d" % i), str(i).encode(), "lost w:%d on %s" % (i, n.name))
            # The old leader restarts from its data directory and catches up.
            leader.start()
            wait_until(lambda: leader.client().get("after") == b"failover", 15,
                       "the restarted node to catch up")
            self.assertEqual(leader.client().get("w:199"), b"199")

    def test_stale_reads_only_on_request(self):
        with Cluster(3, extra=["--request-timeout-ms", "1000"]) as c:
            c.wait_leader()
            survivor = c.followers()[0]
            survivor.client().set("stale:k", "v")
            wait_until(lambda: survivor.client().get("stale:k") == b"v", 5, "the write")
            for n in c.nodes:
                if n is not survivor:
                    n.kill()
            # Without a quorum a linearizable read cannot be served...
            with self.assertRaisesRegex(redis.ResponseError, "CLUSTERDOWN"):
                survivor.client().get("stale:k")
            # ...but a connection that asked for stale reads gets the local state.
            conn = survivor.client(single_connection_client=True)
            self.assertTrue(conn.execute_command("READONLY"))
            self.assertEqual(conn.get("stale:k"), b"v")
            self.assertTrue(conn.execute_command("READWRITE"))
            with self.assertRaisesRegex(redis.ResponseError, "CLUSTERDOWN"):
                conn.get("stale:k")
            # A pipelined run of writes (one entry) and one of reads (one
            # barrier) that fail: every command gets its own error, in order,
            # and the connection stays in step.
            p = conn.pipeline(transaction=False)
            p.set("stale:a", 1)
            p.set("stale:b", 2)
            p.get("stale:a")
            p.get("stale:b")
            p.ping()
            res = p.execute(raise_on_error=False)
            self.assertEqual(len(res), 5)
            for r in res[:4]:
                self.assertIsInstance(r, redis.ResponseError)
                self.assertIn("CLUSTERDOWN", str(r))
            self.assertTrue(res[4])
            self.assertTrue(conn.ping())

    def test_restarted_follower_catches_up(self):
        with Cluster(3) as c:
            c.wait_leader()
            f = c.followers()[0]
            f.kill(signal.SIGKILL)
            leader = c.leader()
            r = leader.client()
            for i in range(100):
                r.set("c:%d" % i, i)
            f.start()
            wait_until(lambda: f.client().get("c:99") == b"99", 15, "the follower to catch up")


class MembershipTest(unittest.TestCase):
    def test_learner_catches_up_by_snapshot_and_is_promoted(self):
        quorumctl = os.path.join(os.path.dirname(os.environ.get("QKV_BINARY", "build/quorumkv")),
                                 "quorumctl")

        def ctl(node, *args):
            out = subprocess.run([quorumctl, "-p", str(node.client_port)] + list(args),
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            return out.stdout

        # Snapshot every 50 entries, so the learner cannot catch up by log.
        with Cluster(4, extra=["--snapshot-entries", "50"], start=3) as c:
            n1, n4 = c.nodes[0], c.nodes[3]
            r = n1.client()
            for i in range(300):
                r.set("k:%d" % i, i)
            self.assertGreater(int(n1.info("persistence")["raft_snapshot_index"]), 200)
            n4.start(extra=["--join"])
            # Any node takes the change (a follower forwards it to the leader).
            follower = c.followers()[0]
            ctl(follower, "add-learner", n4.name, "127.0.0.1:%d" % n4.peer_port)
            wait_until(lambda: n4.client().get("k:299") == b"299", 20, "the learner to catch up")
            self.assertIn("role=learner", ctl(n1, "members"))
            ctl(n1, "add-voter", n4.name)
            wait_until(lambda: "learner" not in ctl(n1, "members"), 10, "the promotion")
            self.assertEqual(ctl(n1, "members").count("role=voter"), 4)
            # The new voter takes part: writes still commit with one old node down.
            c.nodes[1].kill()
            wait_until(lambda: n4.client().set("after", "promotion"), 15, "a write with n2 down")
            self.assertEqual(n1.client().get("after"), b"promotion")
            # Leadership transfer to the new voter.
            ctl(n1, "transfer", n4.name)
            wait_until(lambda: n4.info("raft")["raft_role"] == "leader", 10, "n4 to lead")


class MoreCommandsTest(unittest.TestCase):
    def test_rest_of_the_commands_and_wrongtype_through_followers(self):
        with Cluster(3, extra=["--requirepass", "pw"], password="pw") as c:
            c.wait_leader()
            f1, f2 = c.followers()[:2]
            r = f1.client()
            q = f2.client()
            # AUTH: refused without the password, accepted with it.
            with self.assertRaises(redis.exceptions.AuthenticationError):
                f1.client(password=None).get("x")
            raw = f1.client(password=None)
            with self.assertRaises(redis.exceptions.ResponseError):
                raw.execute_command("AUTH", "wrong")
            self.assertTrue(raw.execute_command("AUTH", "pw"))
            self.assertTrue(r.setex("se", 100, "v"))
            self.assertTrue(95000 <= q.pttl("se") <= 100000)
            self.assertTrue(r.psetex("pse", 100000, "v"))
            self.assertEqual(q.getex("pse", persist=True), b"v")
            self.assertEqual(q.ttl("pse"), -1)
            self.assertEqual(q.getex("pse", ex=50), b"v")
            self.assertTrue(45 <= r.ttl("pse") <= 50)
            r.set("n", 10)
            self.assertEqual(q.decrby("n", 4), 6)
            self.assertEqual(r.unlink("n", "nothing"), 1)
            r.set("a", 1)
            r.set("b", 2)
            self.assertFalse(q.renamenx("a", "b"))
            self.assertTrue(q.renamenx("a", "c"))
            self.assertEqual(r.get("c"), b"1")
            self.assertTrue(r.expire("c", 100))
            self.assertTrue(95 <= q.ttl("c") <= 100)
            self.assertTrue(r.expireat("c", int(time.time()) + 200))
            self.assertTrue(190 <= q.ttl("c") <= 200)
            self.assertTrue(r.pexpireat("c", int(time.time() * 1000) + 300000))
            self.assertTrue(290000 <= q.pttl("c") <= 300000)
            self.assertIn(q.randomkey(), (b"se", b"pse", b"b", b"c"))
            docs = q.execute_command("COMMAND DOCS", "get")  # raw reply
            self.assertTrue(docs)
            # Collections through followers, and WRONGTYPE both ways.
            self.assertEqual(r.hset("h", mapping={"f1": "1", "f2": "2"}), 2)
            self.assertEqual(q.hgetall("h"), {b"f1": b"1", b"f2": b"2"})
            self.assertEqual(r.rpush("l", "x", "y", "z"), 3)
            self.assertEqual(q.lrange("l", 0, -1), [b"x", b"y", b"z"])
            self.assertEqual(r.sadd("s", "m1", "m2"), 2)
            self.assertEqual(q.smembers("s"), {b"m1", b"m2"})
            self.assertEqual(q.type("h"), b"hash")
            self.assertEqual(q.type("l"), b"list")
            self.assertEqual(q.type("s"), b"set")
            for call in (lambda: q.get("h"), lambda: r.incr("l"), lambda: r.append("s", "x"),
                         lambda: q.hget("b", "f"), lambda: r.lpush("h", "x"),
                         lambda: r.sadd("l", "x"), lambda: q.strlen("s")):
                with self.assertRaises(redis.exceptions.ResponseError) as e:
                    call()
                self.assertTrue(str(e.exception).startswith("WRONGTYPE"), str(e.exception))
            self.assertEqual(q.lrange("l", 0, -1), [b"x", b"y", b"z"])  # unchanged
            self.assertEqual(len(list(q.scan_iter(_type="hash"))), 1)
            # FLUSHDB and FLUSHALL empty every replica.
            self.assertTrue(r.flushdb())
            self.assertEqual(q.dbsize(), 0)
            r.set("again", 1)
            self.assertTrue(q.flushall())
            self.assertEqual(r.dbsize(), 0)
            # QUIT answers OK and closes the connection.
            s = socket.create_connection(("127.0.0.1", f1.client_port), timeout=5)
            s.sendall(b"AUTH pw\r\nQUIT\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            self.assertEqual(data, b"+OK\r\n+OK\r\n")


class TransactionTest(unittest.TestCase):
    def test_multi_exec_is_atomic_and_isolated_on_every_node(self):
        import threading
        with Cluster(3) as c:
            c.wait_leader()
            f = c.followers()[0]
            r = f.client()
            # redis-py's transactional pipeline (MULTI ... EXEC) through a follower.
            p = r.pipeline(transaction=True)
            p.set("t:a", 0).set("t:b", 0).incr("t:a").get("t:a").hset("t:h", "f", "v")
            self.assertEqual(p.execute(), [True, True, 1, b"1", 1])
            # Run-time errors stay in the array; the other commands run.
            p = r.pipeline(transaction=True)
            p.incr("t:a").hget("t:a", "x").incr("t:b")
            res = p.execute(raise_on_error=False)
            self.assertEqual(res[0], 2)
            self.assertIsInstance(res[1], redis.exceptions.ResponseError)
            self.assertEqual(res[2], 1)
            # Queueing errors abort the whole transaction.
            raw = f.client()
            self.assertEqual(raw.execute_command("MULTI"), b"OK")
            self.assertEqual(raw.execute_command("GETSET", "t:never", "1"), b"QUEUED")
            with self.assertRaises(redis.exceptions.ResponseError):
                raw.execute_command("NOSUCHCMD")
            with self.assertRaises(redis.exceptions.ExecAbortError):  # -EXECABORT
                raw.execute_command("EXEC")
            self.assertIsNone(r.get("t:never"))
            with self.assertRaisesRegex(redis.exceptions.ResponseError, "EXEC without MULTI"):
                raw.execute_command("EXEC")
            self.assertEqual(raw.execute_command("MULTI"), b"OK")
            with self.assertRaisesRegex(redis.exceptions.ResponseError, "nested"):
                raw.execute_command("MULTI")
            self.assertEqual(raw.execute_command("DISCARD"), b"OK")
            with self.assertRaisesRegex(redis.exceptions.ResponseError, "DISCARD without MULTI"):
                raw.execute_command("DISCARD")
            self.assertEqual(raw.execute_command("MULTI"), b"OK")
            self.assertEqual(raw.execute_command("EXEC"), [])

            # Isolation: writers move one unit between two keys in a
            # transaction; readers on every node must always see the total.
            r.mset({"acct:1": 100, "acct:2": 100})
            stop = time.time() + 3
            errors = []

            def writer(node):
                cl = node.client()
                while time.time() < stop:
                    p = cl.pipeline(transaction=True)
                    p.decrby("acct:1", 1).incrby("acct:2", 1)
                    p.execute()

            def reader(node):
                cl = node.client()
                while time.time() < stop:
                    p = cl.pipeline(transaction=True)
                    p.get("acct:1").get("acct:2")
                    a, b = p.execute()
                    if int(a) + int(b) != 200:
                        errors.append((node.name, a, b))

            threads = [threading.Thread(target=writer, args=(n,)) for n in c.nodes]
            threads += [threading.Thread(target=reader, args=(n,)) for n in c.nodes]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            self.assertEqual(int(r.get("acct:1")) + int(r.get("acct:2")), 200)
            self.assertLess(int(r.get("acct:1")), 100)  # the writers did run

    def test_watch_aborts_exec_when_a_watched_key_changed_on_any_node(self):
        import threading
        with Cluster(3) as c:
            c.wait_leader()
            f1, f2 = c.followers()[:2]
            a, b = f1.client(), f2.client()
            a.set("w:k", "1")
            p = a.pipeline(transaction=True)
            p.watch("w:k")
            self.assertEqual(p.get("w:k"), b"1")  # immediate mode after WATCH
            b.set("w:k", "2")  # another client, another node
            p.multi()
            p.set("w:k", "mine")
            with self.assertRaises(redis.exceptions.WatchError):
                p.execute()
            self.assertEqual(a.get("w:k"), b"2")
            # Unchanged keys: EXEC runs; UNWATCH forgets.
            p = a.pipeline(transaction=True)
            p.watch("w:k", "w:other")
            b.set("w:unrelated", "x")
            p.multi()
            p.set("w:k", "3")
            self.assertEqual(p.execute(), [True])
            raw = f1.client()
            raw.execute_command("WATCH", "w:k")
            b.set("w:k", "4")
            raw.execute_command("UNWATCH")
            raw.execute_command("MULTI")
            raw.execute_command("GETSET", "w:k", "5")
            self.assertEqual(raw.execute_command("EXEC"), [b"4"])
            # FLUSHDB changes every watched key.
            raw.execute_command("WATCH", "w:k")
            b.flushdb()
            raw.execute_command("MULTI")
            raw.execute_command("GETSET", "w:k", "6")
            self.assertIsNone(raw.execute_command("EXEC"))

            # No lost update: clients on every node increment one counter with
            # WATCH / GET / MULTI / SET / EXEC (redis-py's transaction()).
            a.set("w:ctr", 0)
            done = []

            def client(node, n):
                cl = node.client()

                def bump(pipe):
                    v = int(pipe.get("w:ctr"))
                    pipe.multi()
                    pipe.set("w:ctr", v + 1)
                for _ in range(n):
                    cl.transaction(bump, "w:ctr")
                done.append(n)

            threads = [threading.Thread(target=client, args=(n, 25)) for n in c.nodes * 2]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(sum(done), 150)
            self.assertEqual(int(a.get("w:ctr")), 150)


    def test_watch_window_over_the_scan_limit_aborts(self):
        with Cluster(1, extra=["--watch-scan-entries-max", "5"]) as c:
            r = c.nodes[0].client()
            self.assertEqual(r.config_get("watch-scan-entries-max"),
                             {"watch-scan-entries-max": "5"})
            for n_writes, aborted in ((2, False), (10, True)):
                raw = c.nodes[0].client()
                raw.execute_command("WATCH", "lim:k")
                for i in range(n_writes):
                    r.set("lim:other%d" % i, i)  # not the watched key
                raw.execute_command("MULTI")
                raw.execute_command("GETSET", "lim:k", "v")
                res = raw.execute_command("EXEC")
                self.assertEqual(res is None, aborted, (n_writes, res))

    def test_rocksdb_memory_settings_reach_the_state_store(self):
        base = ["--state-write-buffer-bytes", "8388608", "--state-write-buffers-max", "4",
                "--state-block-cache-bytes", "33554432"]
        # The memtable representation: ours by default, RocksDB's skip list on request.
        for memtable, extra, factory in (
                ("indexed", [], "QkvKeyIndexedMemTable"),
                ("skiplist", ["--state-memtable", "skiplist"], "SkipListFactory")):
            with Cluster(1, extra=base + extra) as c:
                r = c.nodes[0].client()
                self.assertEqual(r.config_get("state-*"),
                                 {"state-write-buffer-bytes": "8388608",
                                  "state-write-buffers-max": "4",
                                  "state-block-cache-bytes": "33554432",
                                  "state-memtable": memtable})
                for i in range(200):
                    r.set("k%d" % (i % 20), "v%d" % i)
                self.assertEqual(r.get("k19"), b"v199")
                self.assertEqual(len(r.scan(0, count=1000)[1]), 20)
                # RocksDB writes the options it opened with into the store.
                db = os.path.join(c.nodes[0].data_dir, "state", "db")
                options = [f for f in os.listdir(db) if f.startswith("OPTIONS-")]
                self.assertTrue(options)
                with open(os.path.join(db, sorted(options)[-1])) as f:
                    text = f.read()
                self.assertIn("write_buffer_size=8388608\n", text)
                self.assertIn("max_write_buffer_number=4\n", text)
                self.assertIn("memtable_factory=" + factory, text)

class ConfigGetTest(unittest.TestCase):
    def test_config_get_shows_every_setting_by_its_flag_name(self):
        out = subprocess.run([BINARY, "--help"], capture_output=True, text=True,
                             timeout=30)
        flags = set(re.findall(r"^\s+--([a-z0-9-]+)", out.stdout, re.M))
        self.assertIn("wal-segment-bytes", flags)
        # Parsed into other fields (addresses, members) or naming a file.
        flags -= {"config", "listen-client", "listen-peer", "listen-http", "initial-cluster"}
        with Cluster(1, extra=["--client-pipeline-max", "77", "--wal-prefill", "no"]) as c:
            r = c.nodes[0].client()
            got = r.config_get("*")
            self.assertEqual(flags - set(got), set())
            self.assertEqual(got["client-pipeline-max"], "77")
            self.assertEqual(got["wal-prefill"], "no")
            self.assertEqual(got["join"], "no")
            self.assertEqual(got["appendfsync"], "always")  # what Redis clients look for
            r.config_set("maxclients", 123)
            self.assertEqual(r.config_get("maxclients"), {"maxclients": "123"})


def newest_segment_size(node):
    """Bytes in the node's newest WAL segment file."""
    wal = os.path.join(node.data_dir, "wal")
    segs = sorted(f for f in os.listdir(wal) if f.endswith(".wal"))
    return os.path.getsize(os.path.join(wal, segs[-1]))


def kill_all_and_restart(c):
    """kill -9 of every node, then all started again; the new leader's client."""
    for n in c.nodes:
        n.kill()
    for n in c.nodes:
        n.start()
    c.wait_leader()
    return c.leader().client()


class WalPrefillTest(unittest.TestCase):
    def test_nodes_move_to_zero_filled_segments_and_recover_from_them(self):
        # Past 4 MiB of the first WAL segment each node makes a zero-filled
        # spare (64 MiB) and moves into it at its next write; after a kill -9
        # of every node the cluster restarts from those segments intact.
        value = b"w" * (1 << 20)
        with Cluster(3) as c:
            r = c.nodes[0].client()
            self.assertEqual(r.config_get("wal-prefill"), {"wal-prefill": "yes"})
            leader = c.leader().client()
            for i in range(6):
                self.assertTrue(leader.set("big:%d" % i, value))
            deadline = time.time() + 60
            while time.time() < deadline:
                if all(http_metrics(n)["quorumkv_wal_spares_made_total"] >= 1 for n in c.nodes):
                    break
                time.sleep(0.2)
            for i in range(50):
                self.assertTrue(leader.set("small:%d" % i, "s%d" % i))
            for n in c.nodes:
                m = http_metrics(n)
                self.assertEqual(m["quorumkv_wal_spares_used_total"], 1, n.name)
                self.assertEqual(m["quorumkv_wal_spare_failures_total"], 0, n.name)
                self.assertGreaterEqual(m["quorumkv_wal_segments_created_total"], 2, n.name)
                # The segment in use was the spare: its full length is written.
                self.assertEqual(newest_segment_size(n), 64 << 20, n.name)
            leader = kill_all_and_restart(c)
            for i in range(6):
                self.assertEqual(leader.get("big:%d" % i), value)
            for i in range(50):
                self.assertEqual(leader.get("small:%d" % i), b"s%d" % i)
            self.assertTrue(leader.set("after", "restart"))
            self.assertEqual(leader.get("after"), b"restart")

    def test_segment_size_and_prefill_start_are_settings(self):
        # 1 MiB segments, the first spare made after 256 KiB: 4 MiB of writes
        # rotate each node through several spares, and a kill -9 of every
        # node finds everything in them.
        extra = ["--wal-segment-bytes", "1048576", "--wal-prefill-start-bytes", "262144"]
        value = b"m" * (100 << 10)
        with Cluster(3, extra=extra) as c:
            r = c.nodes[0].client()
            self.assertEqual(r.config_get("wal-segment-bytes"), {"wal-segment-bytes": "1048576"})
            self.assertEqual(r.config_get("wal-prefill-start-bytes"),
                             {"wal-prefill-start-bytes": "262144"})
            leader = c.leader().client()
            for i in range(40):
                self.assertTrue(leader.set("m:%d" % i, value))
                time.sleep(0.02)  # lets the spare threads keep up
            for n in c.nodes:
                m = http_metrics(n)
                self.assertGreaterEqual(m["quorumkv_wal_spares_used_total"], 2, n.name)
                self.assertGreaterEqual(m["quorumkv_wal_segments_created_total"], 4, n.name)
                self.assertEqual(m["quorumkv_wal_spare_failures_total"], 0, n.name)
                # Segments of the set size (64 MiB with the default).
                self.assertLessEqual(newest_segment_size(n), 1 << 20, n.name)
            leader = kill_all_and_restart(c)
            for i in range(40):
                self.assertEqual(leader.get("m:%d" % i), value)

    def test_prefill_off_makes_no_spare(self):
        with Cluster(1, extra=["--wal-prefill", "no"]) as c:
            n = c.nodes[0]
            r = n.client()
            self.assertEqual(r.config_get("wal-prefill"), {"wal-prefill": "no"})
            for i in range(6):
                self.assertTrue(r.set("big:%d" % i, b"n" * (1 << 20)))
            time.sleep(1)
            self.assertTrue(r.set("k", "v"))
            m = http_metrics(n)
            self.assertEqual(m["quorumkv_wal_spares_made_total"], 0)
            self.assertEqual(m["quorumkv_wal_segments_created_total"], 1)
            self.assertFalse(os.path.exists(os.path.join(n.data_dir, "wal", "spare.wal.tmp")))


class PubSubTest(unittest.TestCase):
    def test_messages_reach_subscribers_on_every_node(self):
        with Cluster(3) as c:
            c.wait_leader()
            n1, n2, n3 = c.nodes
            subs = []
            for n in (n1, n2):
                ps = n.client().pubsub()
                ps.subscribe("news")
                ps.psubscribe("log.*")
                # The two confirmations.
                for _ in range(2):
                    m = ps.get_message(timeout=5)
                    self.assertIn(m["type"], ("subscribe", "psubscribe"))
                subs.append(ps)
            pub = n3.client()
            self.assertEqual(pub.publish("news", "hello"), 0)  # no subscriber on n3 itself
            self.assertEqual(n1.client().publish("log.disk", "full"), 1)  # n1's own subscriber

            def next_data(ps):
                deadline = time.time() + 5
                while time.time() < deadline:
                    m = ps.get_message(timeout=0.5)
                    if m and m["type"] in ("message", "pmessage"):
                        return m
                self.fail("no message")
            for ps in subs:
                m = next_data(ps)
                self.assertEqual((m["type"], m["channel"], m["data"]), ("message", b"news", b"hello"))
                m = next_data(ps)
                self.assertEqual((m["type"], m["pattern"], m["channel"], m["data"]),
                                 ("pmessage", b"log.*", b"log.disk", b"full"))
            # Order is kept for one publisher.
            for i in range(50):
                pub.publish("news", str(i))
            got = [next_data(subs[0])["data"] for _ in range(50)]
            self.assertEqual(got, [str(i).encode() for i in range(50)])
            # PUBSUB introspection (this node's subscribers).
            self.assertEqual(n1.client().pubsub_numsub("news"), [(b"news", 1)])
            self.assertIn(b"news", n1.client().pubsub_channels())
            # RESP2 subscribed mode refuses other commands; UNSUBSCRIBE leaves it.
            s = socket.create_connection(("127.0.0.1", n2.client_port), timeout=5)
            s.sendall(b"SUBSCRIBE a\r\nGET x\r\nUNSUBSCRIBE\r\nGET x\r\n")
            data = b""
            while not data.endswith(b"$-1\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            self.assertIn(b"only (P)SUBSCRIBE", data)
            self.assertTrue(data.startswith(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"), data)
            self.assertIn(b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n", data)
            for ps in subs:
                ps.close()


class LeaseReadTest(unittest.TestCase):
    def test_lease_reads_are_served_everywhere_and_stay_fresh_across_failover(self):
        with Cluster(3, extra=["--read-mode", "lease"]) as c:
            leader = c.leader()
            self.assertEqual(leader.client().config_get("read-mode"), {"read-mode": "lease"})
            for i in range(50):
                c.nodes[i % 3].client().set("l:%d" % i, i)
            # Every node reads what was written through any node, at once.
            for n in c.nodes:
                self.assertEqual(n.client().get("l:49"), b"49")
                self.assertEqual(n.client().mget(["l:0", "l:25"]), [b"0", b"25"])
            # The leader dies: the new one must not serve a read its lease
            # does not cover, and no node may return the old value after the
            # new write is acknowledged.
            leader.kill()
            new = c.wait_leader(exclude=leader)
            wait_until(lambda: new.client().set("l:49", "after"), 15, "a write on the new leader")
            for n in c.nodes:
                if n.alive():
                    self.assertEqual(n.client().get("l:49"), b"after")
            # A restarted old leader serves no stale value either.
            leader.start()
            self.assertEqual(leader.client().get("l:49"), b"after")


def http_metrics(node):
    """The node's /metrics as {name: value}."""
    url = "http://127.0.0.1:%d/metrics" % node.http_port
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = resp.read().decode()
    values = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


class InfoTest(unittest.TestCase):
    def test_metrics_and_health_over_http(self):
        with Cluster(1) as c:
            n = c.nodes[0]
            r = n.client()
            for i in range(100):
                r.set("m:%d" % i, "v" * 100)
            self.assertEqual(r.get("m:7"), b"v" * 100)  # fills the read cache

            def fetch(path):
                url = "http://127.0.0.1:%d%s" % (n.http_port, path)
                with urllib.request.urlopen(url, timeout=10) as resp:
                    return resp.status, resp.read().decode()

            status, body = fetch("/health")
            self.assertEqual((status, body), (200, "ok\n"))
            values = http_metrics(n)
            self.assertEqual(values['quorumkv_raft_is_leader{group="1"}'], 1)
            self.assertGreaterEqual(values['quorumkv_raft_applied_index{group="1"}'], 100)
            self.assertGreaterEqual(values["quorumkv_wal_fsync_seconds_count"], 1)
            self.assertGreater(values["quorumkv_wal_fsync_seconds_sum"], 0)
            # Each SET was one proposal, applied here: counted once, in a
            # histogram whose buckets only grow.
            self.assertGreaterEqual(values["quorumkv_proposal_seconds_count"], 100)
            self.assertGreater(values["quorumkv_proposal_seconds_sum"], 0)
            buckets = [v for k, v in values.items() if k.startswith("quorumkv_proposal_seconds_bucket")]
            self.assertEqual(len(buckets), 13)
            self.assertEqual(buckets, sorted(buckets))
            self.assertEqual(buckets[-1], values["quorumkv_proposal_seconds_count"])
            self.assertGreater(values["quorumkv_state_memtables_bytes"], 100 * 100)
            self.assertGreater(values["quorumkv_state_read_cache_bytes"], 0)
            for name in ("quorumkv_state_block_cache_bytes", "quorumkv_state_table_readers_bytes"):
                self.assertGreaterEqual(values[name], 0)
            with self.assertRaises(urllib.error.HTTPError) as e:
                fetch("/nothing-here")
            self.assertEqual(e.exception.code, 404)

    def test_info_has_the_fields_redis_tools_read(self):
        with Cluster(1) as c:
            r = c.nodes[0].client()
            r.set("k", "v")
            info = r.info("everything")
            for field in ["redis_version", "redis_mode", "os", "arch_bits", "run_id", "process_id",
                          "tcp_port", "uptime_in_seconds", "connected_clients", "maxclients",
                          "blocked_clients", "used_memory", "used_memory_human", "used_memory_rss",
                          "used_memory_peak", "maxmemory", "maxmemory_policy", "loading",
                          "aof_enabled", "rdb_changes_since_last_save", "rdb_bgsave_in_progress",
                          "aof_rewrite_in_progress", "total_connections_received",
                          "total_commands_processed", "expired_keys", "role", "connected_slaves",
                          "master_repl_offset", "raft_role", "raft_term", "raft_commit_index",
                          "raft_applied_index", "db0", "state_memtables_bytes",
                          "state_block_cache_bytes", "state_table_readers_bytes",
                          "state_read_cache_bytes"]:
                self.assertIn(field, info)
            self.assertGreater(info["state_memtables_bytes"], 0)  # the SET is in a memtable
            self.assertEqual(info["role"], "master")
            self.assertEqual(info["db0"]["keys"], 1)
            self.assertEqual(len(info["run_id"]), 40)
            self.assertIn("cmdstat_set", r.info("commandstats"))
            # redis-cli prints sections too.
            out = subprocess.run(["redis-cli", "-p", str(c.nodes[0].client_port), "INFO", "server"],
                                 capture_output=True, text=True, timeout=10).stdout
            self.assertIn("# Server", out)
            self.assertIn("redis_version:", out)


def assert_replicas_agree(test, cluster, timeout=15):
    """Every live node reaches the same applied index with the same RAFT DIGEST."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        ds = [n.client().execute_command("RAFT", "DIGEST") for n in cluster.nodes if n.alive()]
        last = ds
        if len({(d[0], d[1]) for d in ds}) == 1:
            return ds[0]
        time.sleep(0.1)
    test.fail("replicas disagree: %s" % last)


def dump_readonly(node, keys):
    """The values of keys as `node` holds them (stale local reads)."""
    r = node.client()
    r.execute_command("READONLY")
    return [r.get(k) for k in keys]


class SnapshotTransferTest(unittest.TestCase):
    def test_snapshot_from_a_restarted_leader_carries_the_whole_state(self):
        # Regression: log compaction kept a snapshot's data only in memory,
        # so a leader restarted after compacting sent a follower an empty
        # state. Snapshot files are now written from the state store when a
        # follower needs one.
        with Cluster(3, extra=["--snapshot-entries", "50"]) as c:
            lagging = c.followers()[0]
            lagging.kill()
            r = c.leader().client()
            keys = ["s:%d" % i for i in range(400)]
            for k in keys:
                r.set(k, k * 3)
            for n in c.nodes:
                if n is not lagging:
                    n.kill()
            for n in c.nodes:
                if n is not lagging:
                    n.start()
            leader = c.wait_leader()
            self.assertGreater(int(leader.info("persistence")["raft_snapshot_index"]), 300)
            wait_until(lambda: leader.client().set("after", "restart"), 15, "a write")
            lagging.start()
            wait_until(lambda: dump_readonly(lagging, ["after"]) == [b"restart"], 20,
                       "the lagging node to catch up")
            self.assertEqual(dump_readonly(lagging, keys), [k.encode() * 3 for k in keys])
            d = assert_replicas_agree(self, c)
            self.assertGreater(d[2], 400)  # records
            info = lagging.info("raft")
            self.assertGreaterEqual(int(info["snapshots_installed"]), 1)
            self.assertIn("receiving the snapshot", lagging.log())

    def test_a_node_serves_fresh_values_after_a_snapshot_replaced_what_its_read_cache_held(self):
        # A follower's read cache holds values it applied and read; it is
        # frozen while the others change those keys and compact their logs
        # past it, so it catches up by installing a snapshot while alive,
        # cache and all.
        for fill in ("no", "yes"):
            with self.subTest(read_cache_fill_on_write=fill), Cluster(
                    3, extra=["--snapshot-entries", "50", "--read-cache-fill-on-write", fill]) as c:
                r = c.leader().client()
                keys = ["c:%d" % i for i in range(100)]
                for k in keys:
                    r.set(k, "old")
                r.hset("h", "f", "old")
                lagging = c.followers()[0]
                lr = lagging.client()
                self.assertEqual(lr.config_get("read-cache-bytes"), {"read-cache-bytes": str(64 << 20)})
                self.assertEqual(lr.config_get("read-cache-fill-on-write"),
                                 {"read-cache-fill-on-write": fill})
                last = int(c.leader().info("raft")["raft_last_index"])
                wait_until(lambda: int(lagging.info("raft")["raft_applied_index"]) >= last, 10,
                           "the follower to apply the writes")
                hits = int(lagging.info("stats")["read_cache_hits"])
                self.assertEqual([lr.get(k) for k in keys], [b"old"] * 100)
                self.assertEqual(lr.hget("h", "f"), b"old")
                # With fill-on-write, what it applied filled its cache before
                # any read (the cache has room); without, the reads missed.
                first_hits = int(lagging.info("stats")["read_cache_hits"]) - hits
                if fill == "yes":
                    self.assertGreaterEqual(first_hits, 101)
                else:
                    self.assertEqual(first_hits, 0)
                for _ in range(2):
                    self.assertEqual([lr.get(k) for k in keys], [b"old"] * 100)
                    self.assertEqual(lr.hget("h", "f"), b"old")
                    self.assertIsNone(lr.get("absent"))
                stats = lagging.info("stats")
                self.assertGreaterEqual(int(stats["read_cache_hits"]), 100)
                self.assertGreaterEqual(int(stats["read_cache_entries"]), 100)
                installed = int(lagging.info("raft")["snapshots_installed"])
                lagging.kill(signal.SIGSTOP)
                try:
                    for k in keys[:50]:
                        r.set(k, "new")
                    r.delete(*keys[50:])
                    r.hset("h", "f", "new")
                    r.set("absent", "now here")
                    for i in range(300):
                        r.set("filler:%d" % i, i)
                finally:
                    lagging.kill(signal.SIGCONT)
                wait_until(lambda: dump_readonly(lagging, ["filler:299"]) == [b"299"], 20,
                           "the frozen node to catch up")
                self.assertGreater(int(lagging.info("raft")["snapshots_installed"]), installed)
                lr = lagging.client()
                self.assertEqual([lr.get(k) for k in keys], [b"new"] * 50 + [None] * 50)
                self.assertEqual(lr.hget("h", "f"), b"new")
                self.assertEqual(lr.get("absent"), b"now here")
                # Writes applied after the install reach the cached keys too.
                r.set("c:0", "newer")
                self.assertEqual(lr.get("c:0"), b"newer")
                assert_replicas_agree(self, c)

    def test_large_snapshot_resumes_after_the_receiver_is_killed(self):
        # About 12 MiB of state, received at 2 MB/s in 256 KiB chunks: the
        # receiver is killed mid-transfer and resumes from its partial file.
        # (A pipeline's writes go in few entries: snapshots every 5 entries.)
        extra = ["--snapshot-entries", "5", "--snapshot-chunk-bytes", "262144",
                 "--snapshot-recv-bytes-per-sec", "2000000"]
        with Cluster(3, extra=extra) as c:
            lagging = c.followers()[0]
            lagging.kill()
            r = c.leader().client()
            value = "v" * 1000
            p = r.pipeline(transaction=False)
            for i in range(12000):
                p.set("big:%d" % i, "%d:%s" % (i, value))
                if i % 500 == 499:
                    p.execute()
            p.execute()
            lagging.start()

            def receiving():
                info = lagging.info("raft")
                done = int(info.get("snapshot_recv_bytes", 0))
                total = int(info.get("snapshot_recv_total_bytes", 0))
                return total > 0 and total // 4 < done < total * 3 // 4
            wait_until(receiving, 30, "the transfer to be under way")
            lagging.kill()
            lagging.start()
            wait_until(lambda: int(lagging.info("raft")["snapshots_installed"]) >= 1, 60,
                       "the snapshot to be installed")
            log = lagging.log()
            self.assertIn("resuming at byte", log)
            wait_until(lambda: lagging.info("keyspace").get("db0", {}).get("keys") == 12000, 20,
                       "every key")
            sample = ["big:%d" % i for i in range(0, 12000, 997)]
            self.assertEqual(dump_readonly(lagging, sample),
                             [("%d:%s" % (int(k[4:]), value)).encode() for k in sample])
            assert_replicas_agree(self, c)
            # Progress was reported while it ran.
            self.assertRegex(log, r"receiving snapshot at index \d+ \(node \d+\): [0-9.]+ MiB of")


if __name__ == "__main__":
    unittest.main()
