"""Client workloads for the fault-injection runs, and the history they record.

Each client is a thread with one connection to one node (reconnecting to the
same node after an error). Every operation it completes becomes one history
record (the format tests/e2e/lincheck.py reads):

    {"client": int, "key": str, "f": str, "input": ..., "output": ...,
     "call": float, "return": float | null, "status": "ok" | "fail" | "unknown"}

plus fields for people: "node" (where it was sent), "error" (the error text, if
any) and, for an unknown outcome, "gave_up" (when the client stopped waiting). call and return are time.monotonic() just before sending and
just after the reply; an unknown outcome has "return": null (it may take
effect at any later time). After an unknown outcome the client continues
under a new client number, so one client number never has two operations
open at once (Jepsen's rule for crashed processes).

Outcome rules:
- a reply: "ok";
- an error reply to a read (GET): "fail" (a read changes nothing);
- an error reply to a write that the server gives before proposing (unknown
  command, wrong arity, syntax, WRONGTYPE): "fail", and counted as unexpected;
- any other error to a write (-CLUSTERDOWN, -TRYAGAIN, -ERR ...), a timeout or
  a lost connection after the request was sent: "unknown" (a read: "fail");
- a connection that cannot be opened: nothing was sent, nothing is recorded.

Workloads (per key model; values are unique per key where the model needs it):
- register: "read" (GET -> int or null), "write" (SET, unique int)
- cas:      "read", "write" (SET, value 0..4), "cas" (CAS key expected new -> true/false)
- counter:  "incr" (INCRBY delta -> new value), "read" (GET -> int or null)
- queue:    "enqueue" (RPUSH unique int), "dequeue" (LPOP -> int or null),
            and after the run one "drain" per key (LRANGE 0 -1 -> list)
- bank:     five accounts per bank key (missing = 0, balances may go negative):
            "transfer" moves an amount between two accounts, either as
            MULTI DECRBY INCRBY EXEC or as WATCH a b, GET a, GET b, MULTI SET a
            SET b EXEC (a null EXEC: "fail", nothing applied); "read_all" is
            MULTI GET x5 EXEC. Checked by sanity_check, not by lincheck: every
            read of all the accounts, and the final one, must total 0.
Keys rotate: a key retires after `ops_per_key` operations and a fresh one
takes its place, so each key's history stays small enough to check.
"""
import json
import random
import threading
import time

import redis
from redis.connection import Connection

WORKLOADS = ("register", "cas", "counter", "queue", "bank")
BANK_ACCOUNTS = 5
FINAL_CLIENT = 1_000_000  # client number of the reads made after the run

_PRE_PROPOSAL_ERRORS = ("unknown command", "wrong number of arguments", "syntax error",
                        "wrongtype")


class History:
    def __init__(self):
        self._lock = threading.Lock()
        self.ops = []

    def add(self, op):
        with self._lock:
            self.ops.append(op)

    def write(self, path):
        with self._lock:
            ops = sorted(self.ops, key=lambda o: o["call"])
        with open(path, "w") as f:
            for op in ops:
                f.write(json.dumps(op, sort_keys=True) + "\n")


class KeyPool:
    """`active` keys of one workload; a key retires after ops_per_key picks."""

    def __init__(self, prefix, active, ops_per_key):
        self._lock = threading.Lock()
        self.prefix = prefix
        self.ops_per_key = ops_per_key
        self.next_gen = 0
        self.active = []
        self.all = []
        self.counts = {}
        for _ in range(active):
            self.active.append(self._new())

    def _new(self):
        k = "%s:%d" % (self.prefix, self.next_gen)
        self.next_gen += 1
        self.all.append(k)
        self.counts[k] = 0
        return k

    def pick(self, rng):
        with self._lock:
            i = rng.randrange(len(self.active))
            k = self.active[i]
            self.counts[k] += 1
            if self.counts[k] >= self.ops_per_key:
                self.active[i] = self._new()
            return k

    def keys(self):
        with self._lock:
            return list(self.all)


class Workload:
    """Generates operations of one model: (f, key, input, command args, is_read)."""

    def __init__(self, name, prefix, active_keys, ops_per_key):
        self.name = name
        self.pool = KeyPool(prefix, active_keys, ops_per_key)
        self._lock = threading.Lock()
        self._next_value = 0

    def unique(self):
        with self._lock:
            self._next_value += 1
            return self._next_value

    def generate(self, rng):
        raise NotImplementedError

    @staticmethod
    def parse(f, reply):
        raise NotImplementedError


def _int_or_raw(v):
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    try:
        return int(v)
    except (TypeError, ValueError):
        return v  # not what we wrote: the checker will say so


class Register(Workload):
    def generate(self, rng):
        k = self.pool.pick(rng)
        if rng.random() < 0.5:
            return "read", k, None, ["GET", k], True
        v = self.unique()
        return "write", k, v, ["SET", k, str(v)], False

    @staticmethod
    def parse(f, reply):
        if f == "read":
            return _int_or_raw(reply)
        return None


class CasRegister(Workload):
    def generate(self, rng):
        k = self.pool.pick(rng)
        x = rng.random()
        if x < 0.4:
            return "read", k, None, ["GET", k], True
        if x < 0.6:
            v = rng.randrange(5)
            return "write", k, v, ["SET", k, str(v)], False
        e, n = rng.randrange(5), rng.randrange(5)
        return "cas", k, [e, n], ["CAS", k, str(e), str(n)], False

    @staticmethod
    def parse(f, reply):
        if f == "read":
            return _int_or_raw(reply)
        if f == "cas":
            return bool(int(reply)) if reply in (0, 1) else reply
        return None


class Counter(Workload):
    def generate(self, rng):
        k = self.pool.pick(rng)
        if rng.random() < 0.3:
            return "read", k, None, ["GET", k], True
        d = rng.randint(1, 5)
        return "incr", k, d, ["INCRBY", k, str(d)], False

    @staticmethod
    def parse(f, reply):
        return _int_or_raw(reply)


class Queue(Workload):
    def generate(self, rng):
        k = self.pool.pick(rng)
        if rng.random() < 0.55:
            v = self.unique()
            return "enqueue", k, v, ["RPUSH", k, str(v)], False
        return "dequeue", k, None, ["LPOP", k], False

    @staticmethod
    def parse(f, reply):
        if f == "dequeue":
            return _int_or_raw(reply)
        return None


def bank_accounts(key):
    return ["%s:a%d" % (key, i) for i in range(BANK_ACCOUNTS)]


class Bank(Workload):
    """MULTI/EXEC and WATCH transactions: the total of a bank's accounts is always 0."""

    def generate(self, rng):
        k = self.pool.pick(rng)
        accts = bank_accounts(k)
        if rng.random() < 0.4:
            return "read_all", k, None, None, True
        a, b = rng.sample(accts, 2)
        amount = rng.randint(1, 10)
        style = "multi" if rng.random() < 0.5 else "watch"
        return "transfer", k, [a, b, amount, style], None, False

    @staticmethod
    def execute(conn, f, key, inp):
        """Runs one operation on a raw connection; returns the output. A null EXEC of a
        WATCH transfer raises WatchAborted (nothing was applied)."""
        def cmd(*args):
            conn.send_command(*args)
            return conn.read_response()
        if f == "read_all":
            accts = bank_accounts(key)
            for c in [("MULTI",)] + [("GET", x) for x in accts] + [("EXEC",)]:
                conn.send_command(*c)
            replies = [conn.read_response() for _ in range(len(accts) + 2)]
            return [_int_or_raw(v) or 0 for v in replies[-1]]
        a, b, amount, style = inp
        if style == "multi":
            for c in (("MULTI",), ("DECRBY", a, amount), ("INCRBY", b, amount), ("EXEC",)):
                conn.send_command(*c)
            replies = [conn.read_response() for _ in range(4)]
            return replies[-1]
        cmd("WATCH", a, b)
        va = _int_or_raw(cmd("GET", a)) or 0
        vb = _int_or_raw(cmd("GET", b)) or 0
        for c in (("MULTI",), ("SET", a, va - amount), ("SET", b, vb + amount), ("EXEC",)):
            conn.send_command(*c)
        replies = [conn.read_response() for _ in range(4)]
        if replies[-1] is None:
            raise WatchAborted()
        return replies[-1]

    @staticmethod
    def parse(f, reply):
        return reply


class WatchAborted(Exception):
    """EXEC answered null: a WATCHed key changed; the transaction did nothing."""


def make_workloads(names, active_keys=3, ops_per_key=250):
    classes = {"register": Register, "cas": CasRegister, "counter": Counter, "queue": Queue,
               "bank": Bank}
    prefixes = {"register": "reg", "cas": "cas", "counter": "ctr", "queue": "q", "bank": "bank"}
    return [classes[n](n, prefixes[n], active_keys, ops_per_key) for n in names]


def classify_error(message, is_read):
    """'fail' or 'unknown' for an error reply (see the module comment)."""
    m = message.lower()
    if is_read:
        return "fail"
    if any(s in m for s in _PRE_PROPOSAL_ERRORS):
        return "fail"
    return "unknown"


class ProcessIds:
    """Hands out client numbers: a client that saw an unknown outcome takes a new one."""

    def __init__(self, start):
        self._lock = threading.Lock()
        self._next = start

    def take(self):
        with self._lock:
            n = self._next
            self._next += 1
            return n


class Client(threading.Thread):
    def __init__(self, index, node, workloads, history, stop, seed, pids, timeout_s=1.5,
                 think_s=0.0):
        super().__init__(name="client-%d" % index, daemon=True)
        self.index = index
        self.node = node
        self.workloads = workloads
        self.history = history
        self.stop = stop
        self.rng = random.Random(seed)
        self.pids = pids
        self.process = index
        self.timeout_s = timeout_s
        self.think_s = think_s
        self.counts = {"ok": 0, "fail": 0, "unknown": 0, "connect_errors": 0}
        self.unexpected = []  # error replies no correct server should give
        self.conn = None

    def _connection(self):
        if self.conn is None:
            self.conn = Connection(host=self.node.ip, port=self.node.client_port,
                                   socket_timeout=self.timeout_s,
                                   socket_connect_timeout=self.timeout_s,
                                   retry_on_timeout=False)
        return self.conn

    def run(self):
        while not self.stop.is_set():
            conn = self._connection()
            try:
                conn.connect()  # no-op when connected; nothing sent yet
            except (redis.exceptions.RedisError, OSError):
                self.counts["connect_errors"] += 1
                conn.disconnect()
                self.stop.wait(0.1 + self.rng.random() * 0.2)
                continue
            w = self.rng.choice(self.workloads)
            f, key, inp, args, is_read = w.generate(self.rng)
            op = {"client": self.process, "key": key, "f": f, "input": inp, "output": None,
                  "node": self.node.name}
            op["call"] = time.monotonic()
            try:
                if args is None:  # a multi-command operation (bank)
                    out = w.execute(conn, f, key, inp)
                    op["return"] = time.monotonic()
                    op["output"] = out if f == "read_all" else None
                else:
                    conn.send_command(*args)
                    reply = conn.read_response()
                    op["return"] = time.monotonic()
                    op["output"] = w.parse(f, reply)
                op["status"] = "ok"
            except WatchAborted:
                op["return"] = time.monotonic()
                op["status"] = "fail"  # a null EXEC applied nothing
                conn.disconnect()  # drop any watch state
            except redis.exceptions.ResponseError as e:
                op["return"] = time.monotonic()
                op["error"] = str(e)
                op["status"] = classify_error(str(e), is_read)
                msg = str(e).lower()
                if any(s in msg for s in _PRE_PROPOSAL_ERRORS) or (
                        not msg.startswith(("clusterdown", "tryagain"))):
                    self.unexpected.append({"f": f, "args": args, "error": str(e)})
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                    OSError) as e:
                op["return"] = time.monotonic()
                op["error"] = "%s: %s" % (type(e).__name__, e)
                op["status"] = "fail" if is_read else "unknown"
                conn.disconnect()
            if args is None and op["status"] != "ok":
                conn.disconnect()  # a transaction cut short leaves MULTI state behind
            if op["status"] == "unknown":
                op["gave_up"], op["return"] = op["return"], None
            self.history.add(op)
            self.counts[op["status"]] += 1
            if op["status"] == "unknown":
                self.process = self.pids.take()
            if self.think_s:
                self.stop.wait(self.think_s)
        if self.conn is not None:
            self.conn.disconnect()


# -- after the run: final reads and the local checks -------------------------

def final_reads(workloads, leader, history, attempts=20):
    """Reads every key once more through the leader (linearizable), recording each read in
    the history: the final state the checker must explain. Queues get a "drain" (LRANGE)."""
    conn = leader.client(timeout=5)
    for w in workloads:
        for k in w.pool.keys():
            for attempt in range(attempts):
                op = {"client": FINAL_CLIENT, "key": k, "node": leader.name, "input": None}
                op["f"] = {"queue": "drain", "bank": "read_all"}.get(w.name, "read")
                op["call"] = time.monotonic()
                try:
                    if w.name == "queue":
                        out = [_int_or_raw(x) for x in conn.lrange(k, 0, -1)]
                    elif w.name == "bank":
                        out = [_int_or_raw(x) or 0 for x in conn.mget(bank_accounts(k))]
                    else:
                        out = _int_or_raw(conn.get(k))
                except redis.exceptions.RedisError:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(0.2)
                    continue
                op["return"] = time.monotonic()
                op["output"] = out
                op["status"] = "ok"
                history.add(op)
                break


def sanity_check(ops):
    """Cheap necessary conditions on a finished history, independent of the linearizability
    checker: nothing read that nobody wrote, no acknowledged increment or element lost, no
    element delivered twice. Returns a list of problems (empty: none found)."""
    by_key = {}
    for op in ops:
        by_key.setdefault(op["key"], []).append(op)
    problems = []
    for key, kops in by_key.items():
        model = key.split(":")[0]
        ok = [o for o in kops if o["status"] == "ok"]
        unknown = [o for o in kops if o["status"] == "unknown"]
        final = [o for o in ok if o["client"] == FINAL_CLIENT]
        if model in ("reg", "cas"):
            written = {o["input"] for o in kops if o["f"] == "write" and o["status"] != "fail"}
            written |= {o["input"][1] for o in kops if o["f"] == "cas" and o["status"] != "fail"}
            for o in ok:
                if o["f"] == "read" and o["output"] is not None and o["output"] not in written:
                    problems.append("%s: read %r that no write could have written" %
                                    (key, o["output"]))
            if model == "reg" and final:
                # A write W that every other write could only precede (each returned
                # before W was called) must be what the final read sees.
                writes = [o for o in kops if o["f"] == "write" and o["status"] != "fail"]
                for w in writes:
                    if w["status"] != "ok":
                        continue
                    after = [x for x in writes if x is not w and
                             (x["return"] is None or x["return"] > w["call"])]
                    if not after and final[-1]["output"] != w["input"]:
                        problems.append("%s: acknowledged write %r lost (final read %r)" %
                                        (key, w["input"], final[-1]["output"]))
        elif model == "ctr":
            lo = sum(o["input"] for o in ok if o["f"] == "incr")
            hi = lo + sum(o["input"] for o in unknown if o["f"] == "incr")
            for o in ok:
                v = o["output"] or 0
                if o["f"] in ("read", "incr") and not isinstance(v, int):
                    problems.append("%s: non-integer value %r" % (key, v))
                elif v > hi:
                    problems.append("%s: value %d above every increment attempted (%d)" %
                                    (key, v, hi))
            for o in final:
                v = o["output"] or 0
                if isinstance(v, int) and v < lo:
                    problems.append("%s: final value %d below the acknowledged increments "
                                    "(%d): an acknowledged increment was lost" % (key, v, lo))
        elif model == "bank":
            for o in ok:
                if o["f"] != "read_all":
                    continue
                v = o["output"]
                if not all(isinstance(x, int) for x in v) or sum(v) != 0:
                    problems.append("%s: accounts %r do not total 0 (%s): a transfer was seen "
                                    "half done, or lost one of its sides" %
                                    (key, v, "final read" if o["client"] == FINAL_CLIENT
                                     else "read by client %d" % o["client"]))
        elif model == "q":
            enq_ok = {o["input"] for o in ok if o["f"] == "enqueue"}
            enq_any = enq_ok | {o["input"] for o in unknown if o["f"] == "enqueue"}
            deq = [o["output"] for o in ok if o["f"] == "dequeue" and o["output"] is not None]
            drained = [x for o in final if o["f"] == "drain" for x in o["output"]]
            seen = deq + drained
            dups = {x for x in seen if seen.count(x) > 1}
            if dups:
                problems.append("%s: elements delivered twice: %s" % (key, sorted(dups)[:10]))
            ghosts = [x for x in seen if x not in enq_any]
            if ghosts:
                problems.append("%s: elements nobody enqueued: %s" % (key, ghosts[:10]))
            if final:
                missing = enq_ok - set(seen)
                unknown_deq = sum(1 for o in unknown if o["f"] == "dequeue")
                if len(missing) > unknown_deq:
                    problems.append("%s: %d acknowledged elements lost (%d unknown dequeues "
                                    "could explain only %d): %s" %
                                    (key, len(missing), unknown_deq, unknown_deq,
                                     sorted(missing)[:10]))
    return problems
