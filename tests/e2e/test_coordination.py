"""End-to-end tests of the coordination primitives on a 3-node cluster of
real processes: blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH) and
blocking stream reads (XREAD, XREADGROUP ... BLOCK) served
first blocked first served whichever node the clients use and across a
leader change; native locks (LOCK ... WAIT, UNLOCK, FENCE) with FIFO
waiters; python3-redis's own Lock class (Lua scripts) used as its
documentation shows.

    python3 tests/e2e/test_coordination.py [-v] [TestClass.test_name]
"""
import os
import sys
import threading
import time
import unittest

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Cluster  # noqa: E402


def wait_until(pred, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except redis.exceptions.RedisError as e:
            last = e
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s (last error: %s)" % (what, last))


class Call(threading.Thread):
    """Runs fn() on its own thread; .result / .error once joined."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn = fn
        self.result = None
        self.error = None
        self.start()

    def run(self):
        try:
            self.result = self.fn()
        except Exception as e:  # noqa: BLE001 (reported by the test)
            self.error = e

    def get(self, timeout=20):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("call still blocked after %ss" % timeout)
        if self.error is not None:
            raise self.error
        return self.result


def waiters(node, n=1):
    """Waits until `node` has n clients queued in the replicated state
    (INFO clients, blocked_clients)."""
    wait_until(lambda: node.client().info("clients")["blocked_clients"] >= n,
               what="%d blocked client(s) on %s" % (n, node.name))


class BlockingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3, extra=("--block-lease-ms", "1500")).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def client(self, node, **kw):
        return node.client(socket_timeout=30, **kw)

    def test_blpop_served_first_blocked_first_served_across_nodes(self):
        c = self.cluster
        leader = c.wait_leader()
        f1, f2 = c.followers()[:2]
        first = Call(lambda: self.client(f1).blpop(["q1"], timeout=0))
        waiters(f1)
        second = Call(lambda: self.client(f2).blpop(["q1"], timeout=0))
        waiters(f2)
        third = Call(lambda: self.client(leader).brpop(["q1"], timeout=0))
        waiters(leader)
        self.assertEqual(self.client(f2).rpush("q1", "a", "b", "c"), 3)
        self.assertEqual(first.get(), (b"q1", b"a"))
        self.assertEqual(second.get(), (b"q1", b"b"))
        self.assertEqual(third.get(), (b"q1", b"c"))
        self.assertEqual(self.client(leader).exists("q1"), 0)

    def test_pipelined_push_serves_a_blocked_client_before_the_next_command(self):
        # As in Redis: a push serves the clients blocked on that list before
        # the pusher's next pipelined command runs, although the run of
        # writes is one entry (kvpb.KvBatch.pipeline). Inside MULTI the
        # transaction's own commands go first, and waiters after EXEC.
        c = self.cluster
        f = c.followers()[0]
        for transaction, key, ops, replies, served in (
                (False, "qp", [("lpush", "a"), ("lpop",), ("lpush", "b"), ("lpop",)],
                 [1, None, 1, b"b"], b"a"),
                (True, "qt", [("lpush", "a"), ("lpop",), ("lpush", "c")], [1, b"a", 1], b"c")):
            blocked = Call(lambda key=key: self.client(f).blpop([key], timeout=0))
            waiters(f)
            p = self.client(c.followers()[1]).pipeline(transaction=transaction)
            for op, *args in ops:
                getattr(p, op)(key, *args)
            self.assertEqual(p.execute(), replies)
            self.assertEqual(blocked.get(), (key.encode(), served))

    def test_watch_sees_a_key_changed_by_serving_a_blocked_move(self):
        # A push that serves a blocked BLMOVE changes its destination,
        # which the push itself does not name: EXEC of a transaction that
        # WATCHed the destination must still abort.
        c = self.cluster
        f1, f2 = c.followers()[:2]
        for cmd in (("BLMOVE", "wsrc", "wdst", "LEFT", "RIGHT", 0),
                    ("BRPOPLPUSH", "wsrc", "wdst", 0)):
            mover = Call(lambda cmd=cmd: self.client(f1).execute_command(*cmd))
            waiters(f1)
            w = self.client(f2)
            p = w.pipeline(transaction=True)
            p.watch("wdst")
            before = p.lrange("wdst", 0, -1)
            self.assertEqual(self.client(c.leader()).rpush("wsrc", "e"), 1)
            self.assertEqual(mover.get(), b"e")
            p.multi()
            p.delete("wdst")
            with self.assertRaises(redis.WatchError):
                p.execute()
            self.assertEqual(self.client(f2).lrange("wdst", 0, -1), before + [b"e"])

    def test_commandstats_survive_a_reset_while_a_command_waits(self):
        # A command counts itself when it replies, in the table as it is
        # then (CONFIG RESETSTAT may have cleared it meanwhile).
        f = self.cluster.followers()[0]
        blocked = Call(lambda: self.client(f).blpop(["qs"], timeout=0))
        waiters(f)
        self.assertTrue(self.client(f).config_resetstat())
        self.client(f).rpush("qs", "x")
        self.assertEqual(blocked.get(), (b"qs", b"x"))
        stats = self.client(f).info("commandstats")
        self.assertEqual(stats["cmdstat_blpop"]["calls"], 1, stats)

    def test_timeout_gives_nil_and_pops_nothing_later(self):
        c = self.cluster
        f = c.followers()[0]
        t0 = time.monotonic()
        self.assertIsNone(self.client(f).blpop(["q2"], timeout=0.5))
        self.assertGreaterEqual(time.monotonic() - t0, 0.45)
        self.client(c.wait_leader()).rpush("q2", "x")
        time.sleep(0.3)
        self.assertEqual(self.client(f).lrange("q2", 0, -1), [b"x"])

    def test_blmove_reliable_queue_and_brpoplpush(self):
        c = self.cluster
        f1, f2 = c.followers()[:2]
        mover = Call(lambda: self.client(f1).blmove("jobs", "work", 0, "LEFT", "RIGHT"))
        waiters(f1)
        self.client(f2).rpush("jobs", "j1")
        self.assertEqual(mover.get(), b"j1")
        self.assertEqual(self.client(f2).lrange("work", 0, -1), [b"j1"])
        self.client(f2).rpush("jobs", "j2")
        self.assertEqual(self.client(f1).brpoplpush("jobs", "work", timeout=1), b"j2")
        # Inside MULTI a blocking pop answers at once.
        p = self.client(f1).pipeline(transaction=True)
        p.blpop(["nothing-here"], timeout=0)
        self.assertEqual(p.execute(), [None])

    def test_blocked_client_survives_a_leader_change(self):
        c = self.cluster
        leader = c.wait_leader()
        f = c.followers()[0]
        popper = Call(lambda: self.client(f).blpop(["q3"], timeout=0))
        waiters(f)
        leader.kill()
        new_leader = c.wait_leader(exclude=[leader])
        # Longer than a block lease: renewals go to the new leader.
        time.sleep(2.0)
        self.assertTrue(popper.is_alive(), "the blocked client was answered early")
        self.client(new_leader).rpush("q3", "after-failover")
        self.assertEqual(popper.get(), (b"q3", b"after-failover"))
        leader.start()
        wait_until(lambda: leader.client().ping(), what="restarted node")

    def test_xread_and_xreadgroup_block_until_an_entry_is_added(self):
        c = self.cluster
        f1, f2 = c.followers()[:2]
        self.client(f2).xadd("events", {"n": "0"}, id="1-1")
        self.client(f2).xgroup_create("events", "workers", id="$")
        reader = Call(lambda: self.client(f1).xread({"events": "$"}, block=0))
        waiters(f1)
        worker = Call(lambda: self.client(f2).xreadgroup("workers", "w1", {"events": ">"}, block=5000))
        waiters(f2)
        self.client(c.wait_leader()).xadd("events", {"n": "1"}, id="2-1")
        self.assertEqual(reader.get(), [[b"events", [(b"2-1", {b"n": b"1"})]]])
        self.assertEqual(worker.get(), [[b"events", [(b"2-1", {b"n": b"1"})]]])
        self.assertEqual(self.client(f1).xpending("events", "workers")["pending"], 1)
        self.assertIsNone(self.client(f1).xread({"events": "$"}, block=300) or None)

    def test_closed_connection_leaves_no_waiter(self):
        c = self.cluster
        f = c.followers()[0]
        r = self.client(f)
        conn = r.connection_pool.get_connection("BLPOP")
        conn.send_command("BLPOP", "q4", 0)
        time.sleep(0.3)
        conn.disconnect()
        time.sleep(0.5)
        self.client(c.wait_leader()).rpush("q4", "kept")
        time.sleep(0.3)
        self.assertEqual(self.client(f).lrange("q4", 0, -1), [b"kept"])

    def test_restarted_node_drops_its_old_waiters(self):
        c = self.cluster
        leader = c.wait_leader()
        f = c.followers()[0]
        Call(lambda: self.client(f).blpop(["q5"], timeout=0))
        waiters(f)
        f.kill()
        f.start()
        wait_until(lambda: f.client().ping(), what="restarted follower")
        time.sleep(1.0)
        self.client(leader).rpush("q5", "kept")
        time.sleep(0.3)
        self.assertEqual(self.client(leader).lrange("q5", 0, -1), [b"kept"])


class SettingsTest(unittest.TestCase):
    def test_state_machine_limits_are_settings(self):
        with Cluster(1, extra=("--script-instructions-max", "100000",
                               "--block-lease-ms", "900")) as c:
            r = c.wait_leader().client()
            self.assertEqual(r.config_get("script-instructions-max"),
                             {"script-instructions-max": "100000"})
            self.assertEqual(r.config_get("block-lease-ms"), {"block-lease-ms": "900"})
            with self.assertRaises(redis.exceptions.ResponseError) as e:
                r.eval("while true do end", 0)
            self.assertIn("script-instructions-max", str(e.exception))
            with self.assertRaises(redis.exceptions.ResponseError):
                r.config_set("script-instructions-max", "5")
            self.assertEqual(r.eval("return 1", 0), 1)


class LockTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def client(self, node):
        return node.client(socket_timeout=30)

    def test_lock_wait_fifo_and_fencing(self):
        c = self.cluster
        leader = c.wait_leader()
        f1, f2 = c.followers()[:2]
        t1 = self.client(f1).execute_command("LOCK", "res", "alice", 10000)
        self.assertIsInstance(t1, int)
        self.assertIsNone(self.client(f2).execute_command("LOCK", "res", "bob", 1000))
        bob = Call(lambda: self.client(f2).execute_command("LOCK", "res", "bob", 5000, "WAIT", 20000))
        waiters(f2)
        carol = Call(lambda: self.client(leader).execute_command("LOCK", "res", "carol", 5000, "WAIT", 20000))
        waiters(leader)
        info = self.client(leader).execute_command("LOCK.INFO", "res")
        self.assertEqual(info[info.index(b"waiters") + 1], 2)
        self.assertEqual(self.client(f1).execute_command("FENCE", "res", t1, "SET", "guarded", "alice"), b"OK")
        self.assertEqual(self.client(f1).execute_command("UNLOCK", "res", "alice"), 1)
        t2 = bob.get()
        self.assertGreater(t2, t1)
        self.assertTrue(carol.is_alive(), "only the first waiter is woken")
        # Alice's token no longer fences anything.
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            self.client(f1).execute_command("FENCE", "res", t1, "SET", "guarded", "late")
        self.assertIn("FENCED", str(e.exception))
        self.assertEqual(self.client(leader).get("guarded"), b"alice")
        self.assertEqual(self.client(f2).execute_command("UNLOCK", "res", "bob"), 1)
        t3 = carol.get()
        self.assertGreater(t3, t2)

    def test_lease_expiry_hands_the_lock_to_the_waiter(self):
        c = self.cluster
        f1, f2 = c.followers()[:2]
        t1 = self.client(f1).execute_command("LOCK", "exp", "paused-client", 600)
        t0 = time.monotonic()
        t2 = self.client(f2).execute_command("LOCK", "exp", "next", 5000, "WAIT", 10000)
        self.assertGreater(t2, t1)
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        self.assertIsNone(self.client(f1).execute_command("LOCK.REFRESH", "exp", "paused-client", 1000))

    def test_wait_times_out_with_nil(self):
        c = self.cluster
        f1, f2 = c.followers()[:2]
        self.client(f1).execute_command("LOCK", "busy", "holder", 10000)
        t0 = time.monotonic()
        self.assertIsNone(self.client(f2).execute_command("LOCK", "busy", "w", 1000, "WAIT", 400))
        self.assertGreaterEqual(time.monotonic() - t0, 0.35)
        self.assertEqual(self.client(f1).execute_command("UNLOCK", "busy", "holder"), 1)
        self.assertIsNone(self.client(f1).execute_command("LOCK.INFO", "busy"))

    def test_watch_sees_a_lease_end_and_a_blocking_pop(self):
        """WATCH through any node: EXEC gives nil when a lock's lease ended (the
        leader's `timers` entry) or a blocking pop took from a watched list,
        and only then."""
        c = self.cluster
        f1, f2 = c.followers()[:2]
        self.client(f2).execute_command("LOCK", "wl", "a", 400)

        def exec_after(watch, action):
            p = self.client(f1).pipeline()
            p.watch(*watch)
            action()
            p.multi()
            p.set("wx", "1")
            try:
                return p.execute()
            except redis.exceptions.WatchError:
                return None
            finally:
                p.reset()
        self.assertIsNone(exec_after(["wl"], lambda: time.sleep(1.2)))
        self.client(f2).execute_command("LOCK", "wl2", "a", 400)
        self.assertEqual(exec_after(["other"], lambda: time.sleep(1.2)), [True])
        self.client(f2).rpush("wq", "e")
        popped = []
        self.assertIsNone(exec_after(["wq"], lambda: popped.append(self.client(f2).blpop("wq", 5))))
        self.assertEqual(popped, [(b"wq", b"e")])

    def test_python_redis_lock_class(self):
        # As redis-py's documentation shows: a context manager, blocking
        # acquire with a timeout, extend, and release by Lua scripts.
        c = self.cluster
        f1, f2 = c.followers()[:2]
        r1, r2 = self.client(f1), self.client(f2)
        with r1.lock("pylock", timeout=5, blocking_timeout=5) as lock:
            self.assertTrue(lock.owned())
            other = r2.lock("pylock", timeout=5, blocking_timeout=0.3)
            self.assertFalse(other.acquire())
            self.assertTrue(lock.extend(5))
            self.assertGreater(r2.pttl("pylock"), 5000)
        self.assertIsNone(r2.get("pylock"))
        lock = r2.lock("pylock", timeout=0.5)
        self.assertTrue(lock.acquire(blocking=False))
        time.sleep(0.8)  # expired: another may take it, the old owner cannot release
        lock2 = r1.lock("pylock", timeout=5)
        self.assertTrue(lock2.acquire(blocking=False))
        with self.assertRaises(redis.exceptions.LockNotOwnedError):
            lock.release()
        lock2.release()


if __name__ == "__main__":
    unittest.main()
