"""End-to-end tests of keyspace notifications and CLIENT TRACKING: real
processes, a 3-node cluster on loopback, redis-py (RESP2) and raw sockets
(RESP3 pushes). Every node computes the events of its own applies, so a
client of one node hears about writes made through any other.

    /usr/bin/python3 tests/e2e/test_notify.py [-v] [TestClass.test_name]
"""
import os
import signal
import socket
import sys
import time
import unittest

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster  # noqa: E402


def wait_until(pred, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def data_messages(ps, n, timeout=10):
    """The next n (p)message payloads of a redis-py PubSub as tuples."""
    out = []
    deadline = time.time() + timeout
    while len(out) < n and time.time() < deadline:
        m = ps.get_message(timeout=0.2)
        if m and m["type"] in ("message", "pmessage"):
            out.append((m["channel"], m["data"]))
    if len(out) < n:
        raise AssertionError("got %d of %d messages: %r" % (len(out), n, out))
    return out


def no_message(ps, wait=0.5):
    deadline = time.time() + wait
    while time.time() < deadline:
        m = ps.get_message(timeout=0.1)
        if m and m["type"] in ("message", "pmessage"):
            return m
    return None


class Resp3:
    """A raw RESP3 connection: sends commands, reads replies and pushes."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.pushes = []
        hello = self.call("HELLO", "3")
        assert isinstance(hello, dict), hello

    def close(self):
        self.sock.close()

    def send(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)

    def call(self, *args):
        """Sends a command and returns its reply; pushes read meanwhile are kept."""
        self.send(*args)
        while True:
            v, push = self.read()
            if not push:
                return v
            self.pushes.append(v)

    def next_push(self, timeout=10):
        if self.pushes:
            return self.pushes.pop(0)
        self.sock.settimeout(timeout)
        try:
            v, push = self.read()
        finally:
            self.sock.settimeout(10)
        assert push, "a reply where a push was expected: %r" % (v,)
        return v

    def no_push(self, wait=0.5):
        if self.pushes:
            return self.pushes[0]
        self.sock.settimeout(wait)
        try:
            v, push = self.read()
            return v
        except (socket.timeout, TimeoutError):
            return None
        finally:
            self.sock.settimeout(10)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        """(value, is_push)."""
        line = self.line()
        t, rest = line[:1], line[1:]
        if t in (b"+",):
            return rest.decode(), False
        if t == b"-":
            return redis.exceptions.ResponseError(rest.decode()), False
        if t == b":":
            return int(rest), False
        if t == b"_":
            return None, False
        if t == b"$":
            n = int(rest)
            return (None if n < 0 else self.exact(n)), False
        if t in (b"*", b">", b"~"):
            n = int(rest)
            if n < 0:
                return None, False
            return [self.read()[0] for _ in range(n)], t == b">"
        if t == b"%":
            return {self.read()[0]: self.read()[0] for _ in range(int(rest))}, False
        if t == b"#":
            return rest == b"t", False
        raise AssertionError("unexpected RESP3 type %r" % line)


class KeyspaceNotificationTest(unittest.TestCase):
    def test_events_reach_subscribers_of_every_node(self):
        with Cluster(3) as c:
            leader = c.wait_leader()
            b, w = c.followers()[:2]  # subscriber on b, writes through w
            # Off by default; CONFIG SET is node-local (as in Redis Cluster).
            self.assertEqual(b.client().config_get("notify-keyspace-events"),
                             {"notify-keyspace-events": ""})
            self.assertTrue(b.client().config_set("notify-keyspace-events", "KEA"))
            self.assertEqual(b.client().config_get("notify-keyspace-events"),
                             {"notify-keyspace-events": "AKE"})
            ps = b.client().pubsub()
            ps.psubscribe("__keyspace@0__:*")
            ps.subscribe("__keyevent@0__:del")
            for _ in range(2):
                ps.get_message(timeout=5)
            wc = w.client()
            wc.set("k", "v")
            wc.lpush("l", "a", "b")
            wc.rpop("l")
            wc.delete("k")
            got = data_messages(ps, 5)
            self.assertEqual(got, [
                (b"__keyspace@0__:k", b"set"),
                (b"__keyspace@0__:l", b"lpush"),
                (b"__keyspace@0__:l", b"rpop"),
                (b"__keyspace@0__:k", b"del"),
                (b"__keyevent@0__:del", b"k"),
            ])
            # The leader's expiry deletion: "expired", on the other nodes too.
            wc.set("e", "1", px=200)
            self.assertEqual(data_messages(ps, 1), [(b"__keyspace@0__:e", b"set")])
            self.assertEqual(data_messages(ps, 1), [(b"__keyspace@0__:e", b"expire")])
            self.assertEqual(data_messages(ps, 1, timeout=10), [(b"__keyspace@0__:e", b"expired")])
            # Nothing is delivered on a node that did not ask for notifications.
            other = [n for n in c.nodes if n is not b][0]
            ps2 = other.client().pubsub()
            ps2.psubscribe("__key*")
            ps2.get_message(timeout=5)
            leader.client().set("k2", "v")
            self.assertEqual(data_messages(ps, 1), [(b"__keyspace@0__:k2", b"set")])
            self.assertIsNone(no_message(ps2))
            ps2.close()
            ps.close()

    def test_config_values_and_classes(self):
        with Cluster(1) as c:
            n = c.nodes[0]
            r = n.client()
            for given, shown in [("KEg$", "g$KE"), ("Elshx", "lshxE"), ("AKE", "AKE"),
                                 ("KA", "AK"), ("Kn", "nK"), ("Em", "Em"), ("", "")]:
                r.config_set("notify-keyspace-events", given)
                self.assertEqual(r.config_get("notify-keyspace-events")["notify-keyspace-events"],
                                 shown, given)
            with self.assertRaises(redis.exceptions.ResponseError) as e:
                r.config_set("notify-keyspace-events", "KEQ")
            self.assertIn("Invalid event class character", str(e.exception))
            self.assertEqual(r.config_get("notify-keyspace-events")["notify-keyspace-events"], "")
            # Only the classes asked for: Kl gets list events, not string ones.
            r.config_set("notify-keyspace-events", "Kl")
            ps = r.pubsub()
            ps.psubscribe("__key*__:*")
            ps.get_message(timeout=5)
            r.set("s", "1")
            r.rpush("l", "x")
            self.assertEqual(data_messages(ps, 1), [(b"__keyspace@0__:l", b"rpush")])
            self.assertIsNone(no_message(ps))
            # E only: the keyevent channel, with the key as the message; n: "new".
            r.config_set("notify-keyspace-events", "En$")
            r.set("fresh", "1")
            self.assertEqual(data_messages(ps, 2), [(b"__keyevent@0__:new", b"fresh"),
                                                    (b"__keyevent@0__:set", b"fresh")])
            ps.close()

    def test_config_flag(self):
        with Cluster(1, extra=["--notify-keyspace-events", "KEx"]) as c:
            r = c.nodes[0].client()
            self.assertEqual(r.config_get("notify-keyspace-events")["notify-keyspace-events"],
                             "xKE")
            ps = r.pubsub()
            ps.subscribe("__keyevent@0__:expired")
            ps.get_message(timeout=5)
            r.set("a", "1", px=100)
            self.assertEqual(data_messages(ps, 1), [(b"__keyevent@0__:expired", b"a")])
            ps.close()


class TrackingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3).__enter__()
        cls.cluster.wait_leader()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def nodes(self):
        """(a, c): the tracking client's node and the writer's, two different nodes."""
        a, b, c = self.cluster.nodes
        return a, c

    def test_resp3_default_mode(self):
        a, w = self.nodes()
        wc = w.client()
        wc.set("t:k", "v1")
        t = Resp3(a.client_port)
        try:
            self.assertEqual(t.call("CLIENT", "TRACKING", "ON"), "OK")
            self.assertEqual(t.call("CLIENT", "GETREDIR"), 0)
            self.assertEqual(t.call("GET", "t:k"), b"v1")
            self.assertEqual(t.call("GET", "t:other"), None)
            wc.set("t:k", "v2")  # through another node
            self.assertEqual(t.next_push(), [b"invalidate", [b"t:k"]])
            # Forgotten after one invalidation, until read again.
            wc.set("t:k", "v3")
            self.assertIsNone(t.no_push())
            self.assertEqual(t.call("MGET", "t:k", "t:m"), [b"v3", None])
            wc.delete("t:k")
            self.assertEqual(t.next_push(), [b"invalidate", [b"t:k"]])
            wc.set("t:m", "x")
            self.assertEqual(t.next_push(), [b"invalidate", [b"t:m"]])
            # A write of its own is invalidated too (NOLOOP has no effect here).
            self.assertEqual(t.call("HGET", "t:h", "f"), None)
            self.assertEqual(t.call("HSET", "t:h", "f", "1"), 1)
            self.assertEqual(t.next_push(), [b"invalidate", [b"t:h"]])
            # Expiry by the leader invalidates as well.
            wc.set("t:e", "1", px=300)
            self.assertEqual(t.call("GET", "t:e"), b"1")
            self.assertEqual(t.next_push(), [b"invalidate", [b"t:e"]])
            info = t.call("CLIENT", "TRACKINGINFO")
            self.assertEqual(info[b"flags"], [b"on"])
            self.assertEqual(info[b"redirect"], 0)
            self.assertEqual(t.call("CLIENT", "TRACKING", "OFF"), "OK")
            self.assertEqual(t.call("CLIENT", "GETREDIR"), -1)
            self.assertEqual(t.call("GET", "t:k"), None)
            wc.set("t:k", "v4")
            self.assertIsNone(t.no_push())
        finally:
            t.close()

    def test_optin_optout(self):
        a, w = self.nodes()
        wc = w.client()
        t = Resp3(a.client_port)
        try:
            self.assertEqual(t.call("CLIENT", "TRACKING", "ON", "OPTIN"), "OK")
            t.call("GET", "o:1")  # not tracked: no CLIENT CACHING YES
            self.assertEqual(t.call("CLIENT", "CACHING", "YES"), "OK")
            t.call("GET", "o:2")
            t.call("GET", "o:3")  # CACHING YES covered the previous command only
            wc.mset({"o:1": "x", "o:2": "x", "o:3": "x"})
            self.assertEqual(t.next_push(), [b"invalidate", [b"o:2"]])
            self.assertIsNone(t.no_push())
            err = t.call("CLIENT", "CACHING", "NO")
            self.assertIn("only valid when tracking is enabled in OPTOUT mode", str(err))
            err = t.call("CLIENT", "TRACKING", "ON", "OPTOUT")
            self.assertIn("You can't switch OPTIN/OPTOUT mode", str(err))
            t.call("CLIENT", "TRACKING", "OFF")
            self.assertEqual(t.call("CLIENT", "TRACKING", "ON", "OPTOUT"), "OK")
            t.call("CLIENT", "CACHING", "NO")
            info = t.call("CLIENT", "TRACKINGINFO")
            self.assertEqual(info[b"flags"], [b"on", b"optout", b"caching-no"])
            t.call("GET", "o:1")  # not tracked
            t.call("GET", "o:2")
            wc.mset({"o:1": "y", "o:2": "y"})
            self.assertEqual(t.next_push(), [b"invalidate", [b"o:2"]])
            self.assertIsNone(t.no_push())
        finally:
            t.close()

    def test_errors(self):
        a, _ = self.nodes()
        r = a.client(single_connection_client=True)
        cases = [
            (["CLIENT", "TRACKING", "ON", "PREFIX", "x"],
             "PREFIX option requires BCAST mode to be enabled"),
            (["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"],
             "You can't specify both OPTIN mode and OPTOUT mode"),
            (["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"],
             "OPTIN and OPTOUT are not compatible with BCAST"),
            (["CLIENT", "TRACKING", "ON", "REDIRECT", "999999"],
             "The client ID you want redirect to does not exist"),
            (["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "ab"],
             "Prefix 'a' overlaps with another provided prefix 'ab'"),
            (["CLIENT", "TRACKING", "MAYBE"], "syntax error"),
            (["CLIENT", "CACHING", "YES"], "CLIENT CACHING can be called only when"),
        ]
        for args, msg in cases:
            with self.assertRaises(redis.exceptions.ResponseError, msg=args) as e:
                r.execute_command(*args)
            self.assertIn(msg, str(e.exception), args)
        self.assertEqual(r.execute_command("CLIENT", "GETREDIR"), -1)
        self.assertEqual(r.execute_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a"), b"OK")
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            r.execute_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "abc")
        self.assertIn("Prefix 'abc' overlaps with an existing prefix 'a'", str(e.exception))
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            r.execute_command("CLIENT", "TRACKING", "ON")
        self.assertIn("You can't switch BCAST mode on/off", str(e.exception))
        r.execute_command("CLIENT", "TRACKING", "OFF")

    def test_resp2_redirect(self):
        a, w = self.nodes()
        wc = w.client()
        wc.set("r:k", "1")
        # The RESP2 way: a second connection, subscribed to __redis__:invalidate,
        # receives the invalidations as pub/sub messages.
        raw = socket.create_connection(("127.0.0.1", a.client_port), timeout=10)
        buf = [b""]

        def read_until(want, timeout=10):
            """Reads until `want`; returns what came before it."""
            deadline = time.time() + timeout
            while want not in buf[0] and time.time() < deadline:
                raw.settimeout(max(0.05, deadline - time.time()))
                try:
                    chunk = raw.recv(4096)
                except (socket.timeout, TimeoutError):
                    break
                if not chunk:
                    break
                buf[0] += chunk
            self.assertIn(want, buf[0])
            before, buf[0] = buf[0].split(want, 1)
            return before

        message = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
        try:
            raw.sendall(b"CLIENT SETNAME invsub\r\nCLIENT ID\r\n"
                        b"SUBSCRIBE __redis__:invalidate\r\n")
            read_until(b"+OK\r\n")
            sub_id = int(read_until(b"\r\n")[1:])
            read_until(b"__redis__:invalidate\r\n:1\r\n")
            tracker = a.client(single_connection_client=True)
            self.assertEqual(
                tracker.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", sub_id), b"OK")
            self.assertEqual(tracker.execute_command("CLIENT", "GETREDIR"), sub_id)
            self.assertEqual(tracker.get("r:k"), b"1")
            wc.set("r:k", "2")
            read_until(message + b"*1\r\n$3\r\nr:k\r\n")
            # FLUSHALL: a null invalidation (everything), in the tracker's RESP2.
            tracker.get("r:k")
            wc.flushall()
            read_until(message + b"$-1\r\n")
            # The redirect target goes away: the redirect is reported broken.
            raw.close()
            wait_until(lambda: all(cl.get("name") != "invsub" for cl in a.client().client_list()),
                       what="the subscriber's connection to close")
            tracker.get("r:k")
            wc.set("r:k", "3")
            wait_until(lambda: b"broken_redirect" in
                       tracker.execute_command("CLIENT", "TRACKINGINFO")[1],
                       what="broken_redirect")
            tracker.close()
        finally:
            raw.close()

    def test_bcast_prefixes_and_flush(self):
        a, w = self.nodes()
        wc = w.client()
        t = Resp3(a.client_port)
        try:
            self.assertEqual(t.call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:",
                                    "PREFIX", "cfg:"), "OK")
            info = t.call("CLIENT", "TRACKINGINFO")
            self.assertEqual(info[b"flags"], [b"on", b"bcast"])
            self.assertEqual(sorted(info[b"prefixes"]), [b"cfg:", b"user:"])
            # Keys never read are sent too; other prefixes are not.
            wc.set("user:1", "a")
            self.assertEqual(t.next_push(), [b"invalidate", [b"user:1"]])
            wc.set("other:1", "a")
            wc.mset({"cfg:x": "1", "user:2": "2", "zzz": "3"})
            self.assertEqual(t.next_push(), [b"invalidate", [b"cfg:x", b"user:2"]])
            self.assertIsNone(t.no_push())
            wc.flushall()
            self.assertEqual(t.next_push(), [b"invalidate", None])
        finally:
            t.close()

    def test_table_bound_and_closed_connections(self):
        a, w = self.nodes()
        wc = w.client()
        r = a.client()
        self.assertEqual(r.config_get("tracking-table-max-keys"),
                         {"tracking-table-max-keys": "1000000"})
        r.config_set("tracking-table-max-keys", "2")
        try:
            t = Resp3(a.client_port)
            t.call("CLIENT", "TRACKING", "ON")
            t.call("GET", "b:1")
            t.call("GET", "b:2")
            t.call("GET", "b:3")  # the oldest (b:1) is invalidated early
            self.assertEqual(t.next_push(), [b"invalidate", [b"b:1"]])
            wc.mset({"b:1": "x", "b:2": "x", "b:3": "x"})
            got = [t.next_push()[1][0], t.next_push()[1][0]]
            self.assertEqual(sorted(got), [b"b:2", b"b:3"])
            self.assertIsNone(t.no_push())
            # A tracking connection that closes: later writes of its keys and
            # flushes are fine, and the other tracking clients still get theirs.
            t.call("GET", "b:1")
            t.close()
            t2 = Resp3(a.client_port)
            t2.call("CLIENT", "TRACKING", "ON")
            t2.call("GET", "b:2")
            wc.mset({"b:1": "y", "b:2": "y"})
            self.assertEqual(t2.next_push(), [b"invalidate", [b"b:2"]])
            wc.flushall()
            self.assertEqual(t2.next_push(), [b"invalidate", None])
            self.assertTrue(r.ping())
            t2.close()
        finally:
            r.config_set("tracking-table-max-keys", "1000000")


class SnapshotInvalidationTest(unittest.TestCase):
    def test_a_snapshot_install_invalidates_everything(self):
        # A node far behind catches up by installing a snapshot, which has no
        # apply events: its tracking clients are told to drop everything.
        with Cluster(3, extra=["--snapshot-entries", "50"]) as c:
            leader = c.wait_leader()
            lagging = c.followers()[0]
            leader.client().set("snap:k", "1")
            t = Resp3(lagging.client_port)
            try:
                t.call("CLIENT", "TRACKING", "ON")
                self.assertEqual(t.call("GET", "snap:k"), b"1")
                lagging.kill(signal.SIGSTOP)
                r = leader.client()
                r.set("snap:k", "2")
                # One by one: each write its own MsgApp, so the paused node's
                # in-flight window (256 messages) fills and the leader, which
                # compacts every 50 entries, must send it a snapshot. (Pipelined
                # writes leave in a few coalesced messages that the paused node
                # finds in its socket buffer when it wakes.)
                for i in range(400):
                    r.set("snap:%d" % i, "x")
                lagging.kill(signal.SIGCONT)
                wait_until(lambda: int(lagging.info("raft")["snapshots_installed"]) >= 1, 30,
                           "the snapshot to be installed")
                # (Entries the leader still had may come first, as usual.)
                deadline = time.time() + 10
                while True:
                    push = t.next_push(timeout=max(0.1, deadline - time.time()))
                    self.assertEqual(push[0], b"invalidate")
                    if push[1] is None:
                        break
                self.assertEqual(t.call("GET", "snap:k"), b"2")
            finally:
                lagging.kill(signal.SIGCONT)
                t.close()


if __name__ == "__main__":
    unittest.main()
