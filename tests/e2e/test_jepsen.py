"""Short fault-injection runs (docs/TESTING_FAULTS.md): every workload under every nemesis on
a 3-node cluster, one 5-node run with every nemesis, and checks that the checks catch what
they claim to (a lost write, diverged replicas, a cut link).

    /usr/bin/python3 tests/e2e/test_jepsen.py -v

Needs root for network namespaces. Without them the partition tests fail, unless
QKV_E2E_NO_NETNS=1 asks to skip them. QKV_JEPSEN_TIME sets the seconds of load per run.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import netcluster  # noqa: E402
from workloads import FINAL_CLIENT, check_locks, sanity_check  # noqa: E402

try:
    import lincheck  # noqa: E402
except ImportError:
    lincheck = None

RUN_S = float(os.environ.get("QKV_JEPSEN_TIME", "12"))
NO_NETNS = os.environ.get("QKV_E2E_NO_NETNS") == "1"


def jepsen(*args, timeout=300):
    """Runs jepsen.py; returns (exit status, output, run folder). A run still going after
    `timeout` seconds dumps its threads' stacks (SIGUSR1) and is stopped with SIGTERM (it
    cleans up), then SIGKILL."""
    out = tempfile.mkdtemp(prefix="qkv-jepsen-test-")
    cmd = [sys.executable, os.path.join(HERE, "jepsen.py"), "--out", out, "--keep",
           "--fault-min", "1", "--fault-max", "3", "--heal-min", "0.5", "--heal-max", "2",
           "--time", str(RUN_S)] + list(args)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = p.communicate(timeout=timeout)
        return p.returncode, output, out
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGUSR1)
        time.sleep(1)
        p.terminate()
        try:
            output, _ = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            output, _ = p.communicate()
        return -1, "HUNG for %ds, stopped:\n%s" % (timeout, output), out


def load_summary(out):
    with open(os.path.join(out, "run-000", "summary.json")) as f:
        return json.load(f)


def load_ops(out):
    with open(os.path.join(out, "run-000", "history.jsonl")) as f:
        return [json.loads(line) for line in f]


class ShortRuns(unittest.TestCase):
    """One run per nemesis, every workload at once (--workload all)."""

    def run_nemesis(self, nemesis, nodes=3, seed=None, workload="all", read_mode=None):
        seed = seed if seed is not None else int(time.time()) % 100000
        rc, output, out = jepsen("--nemesis", nemesis, "--workload", workload, "--nodes",
                                 str(nodes), "--seed", str(seed),
                                 *(["--read-mode", read_mode] if read_mode else []))
        print("\n" + output, file=sys.stderr)
        self.assertEqual(rc, 0, "jepsen run failed (artifacts in %s):\n%s" % (out, output))
        s = load_summary(out)
        if s.get("skipped"):
            self.skipTest(s["skipped"])
        # The run did real work under real faults, and every check ran.
        self.assertGreater(s["ops"]["ok"], 300 if workload == "lock" else 500, output)
        self.assertGreater(sum(s["faults"].values()), 0, "no fault injected:\n" + output)
        self.assertIsInstance(s["checker"], dict, output)
        self.assertEqual(s["checker"]["violations"], 0, output)
        self.assertEqual(s["convergence"], "ok", output)
        return out, s

    def tearDown(self):
        pass

    def test_kill(self):
        out, s = self.run_nemesis("kill")
        self.assertIn("kill", s["faults"])
        self.check_detects_lost_writes(out)
        self.check_detects_pipeline_disorder(out)

    def test_leader_kill(self):
        # ReadIndex reads (the other runs use the servers' default, lease reads).
        out, s = self.run_nemesis("leader-kill", read_mode="readindex")
        self.assertEqual(s["read_mode"], "readindex")

    def test_pause(self):
        self.run_nemesis("pause")

    def test_partition(self):
        if NO_NETNS:
            self.skipTest("QKV_E2E_NO_NETNS=1: no partitions")
        self.run_nemesis("partition")

    def test_membership(self):
        self.run_nemesis("membership")

    def test_five_nodes_partition(self):
        """Five nodes: the bridge and 2|3 partitions exist only here."""
        if NO_NETNS:
            self.skipTest("QKV_E2E_NO_NETNS=1: no partitions")
        self.run_nemesis("partition", nodes=5)

    def test_five_nodes_all(self):
        if NO_NETNS:
            self.skipTest("QKV_E2E_NO_NETNS=1: no partitions")
        self.run_nemesis("all", nodes=5)

    def test_lock(self):
        """Only the lock workload (more contention on its locks than in --workload all), every
        nemesis; then the lock checker must catch a corrupted copy of the history."""
        out, s = self.run_nemesis("all", workload="lock")
        st = s["lock"]
        self.assertGreater(st["grants"], 20, st)
        self.assertGreater(st["guarded_ok"], 20, st)
        self.assertGreater(st["fenced"], 0, "no stale holder was ever FENCED: %s" % st)
        self.assertGreater(st["log_entries"], 10, st)
        self.check_detects_lock_violations(load_ops(out))

    def check_detects_lock_violations(self, ops):
        """A real lock history passes check_locks; corrupted copies must not."""
        self.assertEqual(check_locks(ops), [])
        logs = [o for o in ops if o["f"] == "read_log" and
                len({e.split(":")[1] for e in o["output"]}) >= 2]
        self.assertTrue(logs, "no guarded log with two tokens")
        log = max(logs, key=lambda o: len(o["output"]))

        def with_log(entries):
            return [dict(o, output=entries) if o is log else o for o in ops]
        # An older holder's entry moved after a newer holder's.
        toks = [int(e.split(":")[1]) for e in log["output"]]
        i = next(i for i in range(1, len(toks)) if toks[i] > toks[i - 1])
        swapped = list(log["output"])
        swapped[i - 1], swapped[i] = swapped[i], swapped[i - 1]
        problems = check_locks(with_log(swapped))
        self.assertTrue(any("goes back" in p for p in problems), problems)
        # One token with two owners: an entry rewritten under another owner.
        forged = list(log["output"])
        forged.append("c999.1:%d:999999" % toks[-1])
        problems = check_locks(with_log(forged))
        self.assertTrue(any("owners/locks at once" in p for p in problems), problems)
        # A grant whose token is not larger than one acknowledged before it was asked for.
        grants = sorted((o for o in ops if o["f"] == "acquire" and o["status"] == "ok"
                         and isinstance(o["output"], int) and "retry" not in o["input"]),
                        key=lambda o: o["call"])
        late = grants[-1]
        self.assertTrue(any(g["return"] < late["call"] for g in grants), grants[:3])
        bad = [dict(o, output=0) if o is late else o for o in ops]  # tokens start at 1
        problems = check_locks(bad)
        self.assertTrue(any("grant order" in p for p in problems), problems)
        # Every guarded write answered FENCED, had it succeeded instead, is a stale holder's
        # write the checker must see. When the history shows the token dead before the write
        # was sent (a newer grant acknowledged, an UNLOCK, the lease's end) it is a "used
        # after"; when the newer grant was still in flight (the FENCED reply was the only
        # sign) the write would have been linearizable before it, and what gives it away is
        # the log its RPUSH claims an index in (CI once drew such a case: token 24 FENCED by
        # a token 30 acknowledged after the append was sent).
        fenced = [o for o in ops if o["f"] in ("append", "incr") and o["output"] == "FENCED"]
        self.assertTrue(fenced)
        used_after = 0
        for f in fenced:
            bad = [dict(o, output=10 ** 6) if o is f else o for o in ops]
            problems = check_locks(bad)
            self.assertTrue(problems, "a stale holder's write passed: %s" % f)
            used_after += any("used after" in p for p in problems)
        self.assertGreater(used_after, 0, "no FENCED write was caught as a use of a dead token")

    def check_detects_pipeline_disorder(self, out):
        """Two operations of one pipeline on one counter, their results swapped, must be
        reported as run out of order."""
        ops = load_ops(out)
        pairs = {}
        for o in ops:
            if ("pipeline" in o and o["status"] == "ok" and o["f"] == "incr"
                    and o["key"].startswith("ctr:")):
                pairs.setdefault((o["pipeline"][0], o["key"]), []).append(o)
        pairs = [p for p in pairs.values() if len(p) >= 2]
        self.assertTrue(pairs, "no pipeline with two increments of one counter")
        a, b = sorted(pairs[0], key=lambda o: o["pipeline"][1])[:2]
        bad = [dict(o, output=b["output"]) if o is a else
               dict(o, output=a["output"]) if o is b else o for o in ops]
        self.assertTrue(any("out of order" in p for p in sanity_check(bad)), sanity_check(bad))

    def check_detects_lost_writes(self, out):
        """The history of a passing run, with one acknowledged write made to vanish from the
        final state, must fail both the sanity checks and the linearizability checker."""
        ops = load_ops(out)
        self.assertEqual(sanity_check(ops), [])
        if any(o["key"].startswith("lk:") for o in ops):
            self.assertTrue(any(o["f"] == "read_log" for o in ops), "no final lock log")
        finals = {o["key"]: o for o in ops if o["client"] == FINAL_CLIENT}
        # A counter whose final value loses the last acknowledged increment.
        # (The counter workload's: the lock workload's guarded "incr" has a dict input.)
        incrs = [o for o in ops if o["f"] == "incr" and o["status"] == "ok"
                 and isinstance(o["input"], int)]
        self.assertTrue(incrs)
        key = incrs[-1]["key"]
        bad = [dict(o) for o in ops if o["key"] == key]
        for o in bad:
            if o["client"] == FINAL_CLIENT:
                o["output"] = (o["output"] or 0) - incrs[-1]["input"] - \
                    sum(x["input"] for x in bad if x["f"] == "incr" and x["status"] == "unknown")
        self.assertTrue(any("lost" in p for p in sanity_check(bad)), sanity_check(bad))
        if lincheck is not None:
            r = lincheck.check_history(bad, time_limit_per_key=30)[key]
            self.assertIs(r.ok, False, r.explanation)
        # A register whose final read returns a value overwritten long before.
        writes = [o for o in ops if o["f"] == "write" and o["key"].startswith("reg:")
                  and o["status"] == "ok"]
        by_key = {}
        for w in writes:
            by_key.setdefault(w["key"], []).append(w)
        key = max(by_key, key=lambda k: len(by_key[k]))
        self.assertGreaterEqual(len(by_key[key]), 3)
        self.assertIn(key, finals)
        stale = min(by_key[key], key=lambda w: w["call"])["input"]
        bad = [dict(o) for o in ops if o["key"] == key]
        for o in bad:
            if o["client"] == FINAL_CLIENT:
                o["output"] = stale
        if lincheck is not None:
            r = lincheck.check_history(bad, time_limit_per_key=30)[key]
            self.assertIs(r.ok, False, "a stale final read passed: %s" % r.explanation)
        # A bank read that saw a transfer half done, or a final state that lost one side.
        reads = [o for o in ops if o["f"] == "read_all" and o["status"] == "ok"]
        self.assertTrue(reads, "no bank reads: the bank workload did not run")
        self.assertTrue(any(o["client"] == FINAL_CLIENT for o in reads), "no final bank read")
        self.assertTrue(any(o["f"] == "transfer" and o["status"] == "ok" for o in ops),
                        "no transfer succeeded")
        for victim in (reads[0], [o for o in reads if o["client"] == FINAL_CLIENT][0]):
            bad = [dict(o) for o in ops if o["key"] == victim["key"]]
            for o in bad:
                if o is not None and o["call"] == victim["call"] and o["client"] == victim["client"]:
                    o["output"] = list(o["output"])
                    o["output"][0] -= 7
            self.assertTrue(any("total 0" in p for p in sanity_check(bad)), sanity_check(bad))
        # A queue that loses an acknowledged element, or delivers one twice.
        drains = [o for o in ops if o["f"] == "drain" and o["output"]]
        if not drains:
            self.assertFalse(any(o["f"] == "enqueue" for o in ops), "queue keys but no drain")
            return  # the server has no lists yet: the run said so
        for d in drains:
            kops = [o for o in ops if o["key"] == d["key"]]
            acked = {o["input"] for o in kops if o["f"] == "enqueue" and o["status"] == "ok"}
            # Each unknown dequeue could excuse one missing element: lose one more.
            unknown_deq = sum(1 for o in kops if o["f"] == "dequeue" and o["status"] == "unknown")
            victims = [x for x in d["output"] if x in acked][:unknown_deq + 1]
            if len(victims) < unknown_deq + 1:
                continue
            for change in ("lose", "duplicate"):
                bad = [dict(o) for o in kops]
                for o in bad:
                    if o["f"] == "drain":
                        o["output"] = ([x for x in o["output"] if x not in victims]
                                       if change == "lose" else o["output"] + victims[:1])
                problems = sanity_check(bad)
                self.assertTrue(problems, "a %sd element passed the sanity check" % change)
                if lincheck is not None:
                    r = lincheck.check_history(bad, time_limit_per_key=30)[d["key"]]
                    self.assertIs(r.ok, False, "a %sd element passed: %s" % (change,
                                                                            r.explanation))
            return
        self.fail("no queue key with enough acknowledged elements left to corrupt")


def _op(client, key, f, inp, out, call, ret, status="ok"):
    return {"client": client, "key": key, "f": f, "input": inp, "output": out, "call": call,
            "return": ret if status != "unknown" else None, "status": status}


class LockCheckerCanFail(unittest.TestCase):
    """check_locks on small made-up histories: a correct one passes; each kind of violation
    the lock workload looks for is caught (no cluster needed)."""

    @staticmethod
    def history():
        """c0.1 holds lk:0 (token 5), writes, unlocks; c1.1 gets it (token 9) and writes;
        c2.1 gets lk:1 (token 12); a stale write of c0.1 is FENCED."""
        a, b, c = {"owner": "c0.1", "ttl": 1000, "wait": None}, \
            {"owner": "c1.1", "ttl": 1000, "wait": 300}, {"owner": "c2.1", "ttl": 600, "wait": None}
        return [
            _op(0, "lk:0", "acquire", a, 5, 0.00, 0.01),
            _op(1, "lk:0", "acquire", b, None, 0.005, 0.012),  # denied... later asks again
            _op(0, "lk:0", "append", {"owner": "c0.1", "token": 5, "value": "c0.1:5:1"}, 1,
                0.02, 0.03),
            _op(0, "lk:0", "incr", {"owner": "c0.1", "token": 5}, 1, 0.031, 0.035),
            _op(0, "lk:0", "unlock", {"owner": "c0.1"}, 1, 0.04, 0.05),
            _op(1, "lk:0", "acquire", dict(b, owner="c1.1"), 9, 0.045, 0.06),
            _op(0, "lk:0", "append", {"owner": "c0.1", "token": 5, "value": "c0.1:5:2"},
                "FENCED", 0.07, 0.08),
            _op(1, "lk:0", "append", {"owner": "c1.1", "token": 9, "value": "c1.1:9:3"}, 2,
                0.09, 0.10),
            _op(1, "lk:0", "refresh", {"owner": "c1.1", "ttl": 1000}, 9, 0.11, 0.12),
            _op(1, "lk:0", "append", {"owner": "c1.1", "token": 9, "value": "c1.1:9:4"}, None,
                0.13, None, "unknown"),
            _op(3, "lk:0", "info", None, {"owner": "c1.1", "token": 9}, 0.14, 0.15),
            _op(2, "lk:1", "acquire", c, 12, 0.2, 0.21),
            _op(2, "lk:1", "incr", {"owner": "c2.1", "token": 12}, 1, 0.22, 0.23),
            _op(FINAL_CLIENT, "lk:0", "read_log", None, ["c0.1:5:1", "c1.1:9:3", "c1.1:9:4"],
                5.0, 5.01),
            _op(FINAL_CLIENT, "lk:0", "read_ctr", None, 1, 5.02, 5.03),
            _op(FINAL_CLIENT, "lk:1", "read_log", None, [], 5.04, 5.05),
            _op(FINAL_CLIENT, "lk:1", "read_ctr", None, 1, 5.06, 5.07),
        ]

    def changed(self, i, **kw):
        h = self.history()
        h[i] = dict(h[i], **kw)
        return h

    def assertCaught(self, ops, words):
        problems = check_locks(ops)
        self.assertTrue(any(words in p for p in problems),
                        "expected %r among %s" % (words, problems))

    def test_correct_history_passes(self):
        self.assertEqual(check_locks(self.history()), [])
        self.assertEqual(sanity_check(self.history()), [])
        # The unknown write may also be missing.
        self.assertEqual(check_locks(self.changed(13, output=["c0.1:5:1", "c1.1:9:3"])), [])

    def test_decreasing_token_in_log(self):
        self.assertCaught(self.changed(13, output=["c1.1:9:3", "c0.1:5:1", "c1.1:9:4"]),
                          "goes back")
        # The unknown write of the old token landing after the newer holder's write.
        h = self.history()
        h.insert(7, _op(0, "lk:0", "append", {"owner": "c0.1", "token": 5, "value": "c0.1:5:7"},
                        None, 0.035, None, "unknown"))
        h[14] = dict(h[14], output=["c0.1:5:1", "c1.1:9:3", "c0.1:5:7", "c1.1:9:4"])
        self.assertCaught(h, "goes back")

    def test_same_token_two_owners(self):
        self.assertCaught(self.changed(5, output=5), "owners/locks at once")
        self.assertCaught(self.changed(10, output={"owner": "c0.1", "token": 9}),
                          "owners/locks at once")
        self.assertCaught(self.changed(11, output=9), "owners/locks at once")  # another lock

    def test_grant_not_larger_than_earlier_grant(self):
        # c2.1 asked for lk:1 after token 9 (lk:0) was acknowledged: its token must be larger.
        self.assertCaught(self.changed(11, output=7), "grant order")

    def test_old_token_used_after_newer_grant(self):
        # The stale write after the UNLOCK succeeded (it was FENCED).
        h = self.changed(6, output=3)
        h[13] = dict(h[13], output=["c0.1:5:1", "c1.1:9:3", "c1.1:9:4", "c0.1:5:2"])
        self.assertCaught(h, "used after")
        # LOCK.INFO shows token 5 after token 9 was granted.
        self.assertCaught(self.changed(10, output={"owner": "c0.1", "token": 5}), "used after")

    def test_write_after_lease_end(self):
        # c2.1's lease (600 ms) ended long before this write: it must have been FENCED.
        self.assertCaught(self.changed(12, call=1.5, **{"return": 1.51}), "lease ended")

    def test_log_and_counter_accounting(self):
        self.assertCaught(self.changed(13, output=["c0.1:5:1", "c1.1:9:4"]), "lost")
        self.assertCaught(self.changed(13, output=["c0.1:5:1", "c0.1:5:2", "c1.1:9:3"]),
                          "answered FENCED")
        self.assertCaught(self.changed(13, output=["c0.1:5:1", "c1.1:9:3", "c1.1:9:3"]),
                          "twice")
        self.assertCaught(self.changed(13, output=["c0.1:5:1", "c1.1:9:3", "c1.1:9:99"]),
                          "no guarded write sent")
        self.assertCaught(self.changed(14, output=0), "guarded counter ends at")
        self.assertCaught(self.changed(14, output=2), "guarded counter ends at")


@unittest.skipIf(NO_NETNS, "QKV_E2E_NO_NETNS=1: no partitions")
class ChecksCanFail(unittest.TestCase):
    def test_partition_cuts_and_digests_differ(self):
        """An isolated follower misses writes (the partition is real) and its digest differs
        (the convergence check can fail); after healing, all digests agree."""
        with netcluster.NetCluster(3) as c:
            self.assertTrue(c.partitions_available, c.no_netns_reason)
            leader = c.wait_leader()
            follower = [n for n in c.nodes if n is not leader][0]
            leader.client().set("before", "1")
            c.wait_converged(timeout=20)
            c.isolate([follower], [n for n in c.nodes if n is not follower])
            for i in range(20):
                leader.client().set("during:%d" % i, i)
            time.sleep(0.5)
            d = {n.name: netcluster.state_digest(n)[1] for n in c.nodes}
            others = {d[n.name] for n in c.nodes if n is not follower}
            self.assertEqual(len(others), 1, d)
            self.assertNotIn(d[follower.name], others, "the isolated follower got the writes")
            rd = {n.name: netcluster.raft_digest(n) for n in c.nodes}
            if None not in rd.values():  # the server serves RAFT DIGEST
                self.assertEqual(len({rd[n.name] for n in c.nodes if n is not follower}), 1, rd)
                self.assertNotEqual(rd[follower.name][1], rd[leader.name][1], rd)
            # Linearizable reads on the isolated follower cannot be served.
            with self.assertRaises(netcluster.redis.exceptions.RedisError):
                follower.client(timeout=3).get("before")
            c.heal()
            c.wait_converged(timeout=30)
            d = {n.name: netcluster.state_digest(n)[1] for n in c.nodes}
            self.assertEqual(len(set(d.values())), 1, d)
            rd = {n.name: netcluster.raft_digest(n) for n in c.nodes}
            self.assertEqual(len(set(rd.values())), 1, rd)

    def test_one_way_drop_is_one_way(self):
        """drop(a, [b]) puts a rule in a's namespace only: packets from b no longer reach a;
        a's packets still reach b (b's replies are what a drops)."""
        with netcluster.NetCluster(3) as c:
            a, b = c.nodes[0], c.nodes[1]
            c.drop(a, [b])
            rules = c.rules()
            self.assertIn("-s %s/32 -j DROP" % b.ip, rules[a.name])
            self.assertNotIn("DROP", rules[b.name])
            # From b's namespace, a's client port is unreachable; from a's, b's is reachable.
            def reach(src, dst):
                code = ("import socket,sys\ns=socket.socket();s.settimeout(1)\n"
                        "try:\n s.connect((%r,%d));print('yes')\nexcept OSError:\n print('no')"
                        % (dst.ip, dst.client_port))
                return subprocess.run(["ip", "netns", "exec", c.net.ns[src.index],
                                       sys.executable, "-c", code], capture_output=True,
                                      text=True, timeout=10).stdout.strip()
            self.assertEqual(reach(b, a), "no")
            # a's SYN reaches b but b's SYN-ACK is dropped by a: no connection either way
            # over TCP, which is what a one-way cut does to a connection.
            self.assertEqual(reach(a, b), "no")
            self.assertEqual(reach(c.nodes[2], a), "yes")
            c.heal()
            self.assertEqual(reach(b, a), "yes")


class LeaseReads(unittest.TestCase):
    def test_a_paused_leader_serves_no_read_on_a_lease_that_ended_while_it_slept(self):
        """Lease reads. The leader is paused (SIGSTOP) and cut off from the others, who elect a
        new leader and write. A GET sent to the old leader while it sleeps is read when it
        resumes, still cut off: its lease ended in real time, so the old value must not come
        back (an error does). Its tick timer fired once in all that time; raft time must follow
        the clock, not the timer."""
        if NO_NETNS:
            self.skipTest("QKV_E2E_NO_NETNS=1: no partitions")
        with netcluster.NetCluster(3, extra=["--read-mode", "lease"]) as c:
            self.assertTrue(c.partitions_available, c.no_netns_reason)
            for trial in range(3):
                leader = c.wait_leader()
                others = [n for n in c.nodes if n is not leader]
                key = "lease:%d" % trial
                leader.client().set(key, "old")
                self.assertEqual(leader.client().get(key), b"old")  # served on the lease
                s = socket.create_connection((leader.ip, leader.client_port), timeout=10)
                leader.pause()
                try:
                    c.isolate([leader], others)
                    new = c.wait_leader(candidates=others)
                    new.client().set(key, "new")
                    s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key.encode()))
                    time.sleep(0.2)
                finally:
                    leader.resume()
                # One reply: an error or nil (one line), or a bulk string (two).
                f = s.makefile("rb")
                try:
                    reply = f.readline()
                    if reply.startswith(b"$") and reply != b"$-1\r\n":
                        reply += f.readline()
                except socket.timeout:
                    reply = b"(no reply)"
                f.close()
                s.close()
                self.assertNotIn(b"old", reply, "trial %d: a stale read from an ended lease" % trial)
                c.heal()
                c.wait_converged(timeout=30)
                self.assertEqual(c.wait_leader().client().get(key), b"new")
                self.assertGreater(int(leader.info_raft()["raft_ticks_late"]), 0)


if __name__ == "__main__":
    unittest.main()
