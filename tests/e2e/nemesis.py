"""The nemesis: faults injected into a NetCluster on a schedule.

One fault at a time: wait a heal interval (uniform in `heal_s`), inject a fault
of a kind drawn from `kinds`, hold it for a fault interval (uniform in
`fault_s`), heal it, and so on until stopped; `stop()` heals the fault in
progress. Every injection and heal is one JSON line in the nemesis log:

    {"t": seconds since the run began, "wall": unix time, "event": "inject"|"heal"|"error",
     "kind": ..., "detail": ...}

Kinds:
  kill         kill -9 a random running node; heal: restart it on its data.
  leader-kill  kill -9 the leader; heal: restart it on its data.
  pause        SIGSTOP a node (the leader half of the time); heal: SIGCONT.
  partition    one of (heal: flush every rule):
                 majority-minority  random halves, floor(n/2) nodes against the rest
                 isolated-leader    the leader against everyone else
                 bridge             two halves sharing one node, which sees both
                 one-way            a node (the leader half of the time) stops receiving from
                                    1..n-1 peers; it can still send to them
                 random             every pair of nodes cut with probability 1/2
  membership   RAFT REMOVE a node (the leader a quarter of the time), kill it and wipe
               its data; heal: restart it empty with --join, RAFT ADD-LEARNER, wait for it
               to catch up (bounded), RAFT ADD-VOTER.
"""
import json
import random
import threading
import time

import redis

KINDS = ("kill", "leader-kill", "pause", "partition", "membership")
PARTITIONS = ("majority-minority", "isolated-leader", "bridge", "one-way", "random")


class NemesisError(RuntimeError):
    pass


def members(node, timeout=3.0):
    """{node id: role} from RAFT MEMBERS on `node`."""
    out = {}
    for line in node.client(timeout).execute_command("RAFT", "MEMBERS"):
        fields = dict(f.split("=", 1) for f in line.decode().split() if "=" in f)
        out[int(fields["id"])] = fields.get("role", "?")
    return out


class Nemesis(threading.Thread):
    def __init__(self, cluster, kinds, seed, log_path, fault_s=(1.0, 5.0), heal_s=(1.0, 5.0),
                 t0=None):
        super().__init__(name="nemesis", daemon=True)
        self.cluster = cluster
        self.kinds = list(kinds)
        self.rng = random.Random(seed)
        self.log_file = open(log_path, "a")
        self.fault_s = fault_s
        self.heal_s = heal_s
        self.t0 = t0 if t0 is not None else time.monotonic()
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self.current = None  # the fault in progress: (kind, heal function, detail)
        self.counts = {}
        self.errors = []

    # -- log

    def log(self, event, kind, detail):
        line = {"t": round(time.monotonic() - self.t0, 3), "wall": round(time.time(), 3),
                "event": event, "kind": kind, "detail": detail}
        with self._lock:
            self.log_file.write(json.dumps(line, sort_keys=True) + "\n")
            self.log_file.flush()

    # -- schedule

    def run(self):
        try:
            while not self._stop_event.wait(self.rng.uniform(*self.heal_s)):
                kind = self.rng.choice(self.kinds)
                try:
                    self.inject(kind)
                except Exception as e:  # noqa: BLE001 - logged, and the run reports it
                    self.errors.append("inject %s: %s" % (kind, e))
                    self.log("error", kind, "inject failed: %s" % e)
                    self.heal_current()
                    continue
                self._stop_event.wait(self.rng.uniform(*self.fault_s))
                self.heal_current()
        except Exception:  # noqa: BLE001 - a heal failed (in self.errors): the cluster is in
            return         # an unknown state, so no more faults; the run reports the error

    def stop(self):
        """Stops the schedule and heals the fault in progress."""
        self._stop_event.set()
        self.join(timeout=120)
        if self.is_alive():
            raise NemesisError("the nemesis did not stop within 120 s")
        self.heal_current()
        self.log_file.close()

    def heal_current(self):
        with self._lock:
            cur, self.current = self.current, None
        if cur is None:
            return
        kind, heal, detail = cur
        try:
            heal()
            self.log("heal", kind, detail)
        except Exception as e:  # noqa: BLE001
            self.errors.append("heal %s (%s): %s" % (kind, detail, e))
            self.log("error", kind, "heal failed: %s (%s)" % (e, detail))
            raise

    # -- faults

    def _running(self):
        return [n for n in self.cluster.nodes if n.alive() and not n.paused]

    def _leader(self, timeout=5):
        try:
            return self.cluster.wait_leader(timeout=timeout)
        except RuntimeError:
            return None

    def inject(self, kind):
        if kind in ("kill", "leader-kill"):
            node = self._leader() if kind == "leader-kill" else None
            if node is None:
                node = self.rng.choice(self._running())
            self._set(kind, "kill -9 %s (pid %d)" % (node.name, node.proc.pid),
                      lambda: self._restart(node))
            node.kill()
        elif kind == "pause":
            node = self._leader() if self.rng.random() < 0.5 else None
            if node is None:
                node = self.rng.choice(self._running())
            self._set(kind, "SIGSTOP %s (pid %d)" % (node.name, node.proc.pid), node.resume)
            node.pause()
        elif kind == "partition":
            self._partition()
        elif kind == "membership":
            self._remove_member()
        else:
            raise ValueError("unknown nemesis kind %r" % kind)
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def _restart(self, node):
        node.start()
        self.log("heal", "restart", "%s restarted (pid %d)" % (node.name, node.proc.pid))

    def _set(self, kind, detail, heal):
        with self._lock:
            self.current = (kind, heal, detail)
        self.log("inject", kind, detail)

    def _partition(self):
        c = self.cluster
        c.need_partitions()
        nodes = list(c.nodes)
        sub = self.rng.choice(PARTITIONS)
        self.rng.shuffle(nodes)
        n = len(nodes)
        if sub == "majority-minority":
            groups = [nodes[:n // 2], nodes[n // 2:]]
            c.partition(groups)
            detail = "%s | %s" % (groups[0], groups[1])
        elif sub == "isolated-leader":
            leader = self._leader() or nodes[0]
            rest = [x for x in c.nodes if x is not leader]
            c.isolate([leader], rest)
            detail = "leader %s | %s" % (leader.name, rest)
        elif sub == "bridge":
            mid = n // 2
            groups = [nodes[:mid + 1], nodes[mid:]]
            c.partition(groups)
            detail = "%s | %s (bridge %s)" % (groups[0], groups[1], nodes[mid].name)
        elif sub == "one-way":
            target = (self._leader() if self.rng.random() < 0.5 else None) or nodes[0]
            peers = [x for x in c.nodes if x is not target]
            srcs = self.rng.sample(peers, self.rng.randint(1, len(peers)))
            c.drop(target, srcs)
            detail = "%s hears nothing from %s" % (target.name, srcs)
        else:
            cuts = []
            for i in range(n):
                for j in range(i + 1, n):
                    if self.rng.random() < 0.5:
                        cuts.append((c.nodes[i], c.nodes[j]))
            if not cuts:
                cuts.append((c.nodes[0], c.nodes[1]))
            for a, b in cuts:
                c.isolate([a], [b])
            detail = "cut %s" % ", ".join("%s-%s" % (a.name, b.name) for a, b in cuts)
        self._set("partition", "%s: %s" % (sub, detail), c.heal)

    # -- membership

    def _admin(self, *args, timeout=10.0):
        """Runs a RAFT change through the leader (any running node if none is known)."""
        node = self._leader(timeout=5) or self.rng.choice(self._running())
        return node.client(timeout).execute_command("RAFT", *args)

    def _wait_members(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            leader = self._leader(timeout=2)
            if leader is not None:
                try:
                    m = members(leader)
                    if pred(m):
                        return m
                    last = m
                except redis.exceptions.RedisError as e:
                    last = e
            time.sleep(0.1)
        raise NemesisError("timed out waiting for %s (last: %s)" % (what, last))

    def _change(self, args, pred, what, timeout=30.0):
        """Asks for a membership change until `pred(members)` holds: an error reply or a
        timeout may hide a change that happened, so the configuration is the judge."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            leader = self._leader(timeout=3)
            try:
                if leader is not None and pred(members(leader)):
                    return
                self._admin(*args)
            except redis.exceptions.RedisError as e:
                last = e
            try:
                self._wait_members(pred, 3, what)
                return
            except NemesisError as e:
                last = last or e
        raise NemesisError("%s: not done within %ss (last error: %s)" % (what, timeout, last))

    def _remove_member(self):
        leader = self._leader()
        if leader is None:
            raise NemesisError("no leader to remove a member through")
        if self.rng.random() < 0.25:
            node = leader
        else:
            node = self.rng.choice([x for x in self._running() if x is not leader] or [leader])
        self.log("inject", "membership", "RAFT REMOVE %s (leader %s)" % (node.name, leader.name))
        # From here on the fault is in progress: its heal re-adds the node whatever happens.
        with self._lock:
            self.current = ("membership", lambda: self._readd(node), "re-add %s" % node.name)
        self._change(("REMOVE", node.name), lambda m: node.id not in m,
                     "%s to leave the configuration" % node.name)
        node.kill()
        node.wipe()
        self.log("inject", "membership", "%s removed, killed and wiped" % node.name)

    def _readd(self, node):
        m = self._wait_members(lambda m: True, 30, "the configuration")
        if node.id in m and m[node.id] != "voter":
            raise NemesisError("%s is a %s, neither a voter nor gone" % (node.name, m[node.id]))
        if node.id in m:
            # The removal never happened: the node is still a member and keeps its data
            # (wiping a member's log is not a fault Raft tolerates).
            if not node.alive():
                node.start()
            self.log("heal", "membership", "%s was never removed (%s)" % (node.name, m[node.id]))
            return
        if node.alive():
            node.kill()
        node.wipe()  # a member that left comes back empty
        node.start(join=True)
        self.log("heal", "membership", "%s restarted empty with --join" % node.name)
        self._change(("ADD-LEARNER", node.name, node.peer_addr), lambda m: node.id in m,
                     "%s to join as a learner" % node.name)
        self.log("heal", "membership", "%s is a learner" % node.name)
        # Let the learner catch up (bounded) before it becomes a voter.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                leader = self._leader(timeout=2)
                if leader is not None:
                    commit = leader.info_raft()["raft_commit_index"]
                    if node.info_raft()["raft_applied_index"] >= commit:
                        break
            except redis.exceptions.RedisError:
                pass
            time.sleep(0.1)
        self._change(("ADD-VOTER", node.name), lambda m: m.get(node.id) == "voter",
                     "%s to become a voter" % node.name)
        self.log("heal", "membership", "%s is a voter again" % node.name)
