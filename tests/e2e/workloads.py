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
- queue:    "enqueue" (RPUSH unique int), "dequeue" (LPOP, or BLPOP with a 0.2 s
            timeout, -> int or null),
            and after the run one "drain" per key (LRANGE 0 -1 -> list)
- bank:     five accounts per bank key (missing = 0, balances may go negative):
            "transfer" moves an amount between two accounts, either as
            MULTI DECRBY INCRBY EXEC or as WATCH a b, GET a, GET b, MULTI SET a
            SET b EXEC (a null EXEC: "fail", nothing applied); "read_all" is
            MULTI GET x5 EXEC. Checked by sanity_check, not by lincheck: every
            read of all the accounts, and the final one, must total 0.
Keys rotate: a key retires after `ops_per_key` operations and a fresh one
takes its place, so each key's history stays small enough to check.

Pipelines: for the register, cas and counter workloads a client sometimes
sends 2 to 4 operations at once and then reads their replies (the server
proposes consecutive writes as one entry and serves consecutive reads after
one barrier). Each is its own record, all with the same call time, each under
its own client number (they are open at once), marked "pipeline": [id, position].
The server runs a connection's commands in order, so sanity_check also checks
that counter values seen within one pipeline never go backwards.
"""
import json
import random
import threading
import time

import redis
from redis.connection import Connection

WORKLOADS = ("register", "cas", "counter", "queue", "bank", "lock")
BANK_ACCOUNTS = 5
FINAL_CLIENT = 1_000_000  # client number of the reads made after the run
PIPELINE_SHARE = 0.25  # of a pipelining workload's turns: 2 to 4 operations at once

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

    weight = 1.0  # how often a client picks it among several workloads

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
    PIPELINE = True

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
    PIPELINE = True

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
    PIPELINE = True

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
        # As many pushes as pops: lists keep coming back to empty, where pops block.
        if rng.random() < 0.5:
            v = self.unique()
            return "enqueue", k, v, ["RPUSH", k, str(v)], False
        if rng.random() < 0.35:
            # A blocking pop, served from the replicated waiter queue if the list is empty
            # when it arrives (first blocked, first served; kv/waiters.h): the same model as
            # LPOP, linearized when it pops, or, if it times out with nil, when it blocked on
            # the empty list. An unknown one may still pop later, as an unknown LPOP may.
            return "dequeue", k, None, ["BLPOP", k, "0.2"], False
        return "dequeue", k, None, ["LPOP", k], False

    @staticmethod
    def parse(f, reply):
        if f == "dequeue":
            if isinstance(reply, list):  # BLPOP: [key, element]
                return _int_or_raw(reply[1]) if len(reply) == 2 else reply
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


class LockWorkload(Workload):
    """Native locks with fencing tokens (LOCK, LOCK.REFRESH, UNLOCK, LOCK.INFO, FENCE).

    A client runs whole sessions (session()), each with a new owner "c<client>.<attempt>":
    LOCK name owner ttl [WAIT ms]; after an unknown outcome one retry without WAIT (asking
    again while holding returns the same token). While holding, 1-4 steps, each maybe after a
    sleep (short, or past the lease: a paused holder): a guarded write (FENCE name token RPUSH
    name:log "owner:token:n", or FENCE name token INCR name:ctr), LOCK.REFRESH or LOCK.INFO.
    A FENCED reply or a nil refresh ends the holding. Then UNLOCK (most of the time), and
    sometimes one more guarded write after the UNLOCK (a holder that forgot it let go).
    A FENCED reply is a definite answer (status ok, output "FENCED"): nothing ran.
    Lock names are fixed (max(3, keys); with other workloads: keys, and a session is picked
    with weight MIXED_WEIGHT): name, name:log (list), name:ctr (string).
    Checked by check_locks (via sanity_check), not by lincheck."""

    DEFINITE_ERRORS = ("FENCED",)
    MIXED_WEIGHT = 0.015
    TTLS_MS = (300, 600, 1000, 1500)
    WAITS_MS = (None, 100, 300, 600, 900)  # WAIT stays below the client's timeout

    def __init__(self, name, prefix, active_keys, ops_per_key):
        super().__init__(name, prefix, active_keys, ops_per_key)
        self.names = ["%s:%d" % (prefix, i) for i in range(max(3, active_keys))]

    def generate(self, rng):
        raise NotImplementedError("the lock workload runs sessions")

    @staticmethod
    def parse(f, reply):
        if f == "info":
            if reply is None:
                return None
            if isinstance(reply, list):
                reply = dict(zip(reply[0::2], reply[1::2]))
            d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in reply.items()}
            owner = d.get("owner")
            return {"owner": owner.decode(errors="replace") if isinstance(owner, bytes)
                    else owner, "token": _int_or_raw(d.get("token"))}
        return _int_or_raw(reply)  # a token, nil, a list length, a counter, 1/0

    def session(self, c):
        rng, stop = c.rng, c.stop
        name = rng.choice(self.names)
        c.lock_attempts = getattr(c, "lock_attempts", 0) + 1
        owner = "c%d.%d" % (c.index, c.lock_attempts)
        ttl = rng.choice(self.TTLS_MS)
        wait = rng.choice(self.WAITS_MS)
        inp = {"owner": owner, "ttl": ttl, "wait": wait}
        op = c.invoke(self, "acquire", name, inp,
                      ["LOCK", name, owner, ttl] + (["WAIT", wait] if wait else []), False)
        if op["status"] == "unknown":
            if stop.is_set() or c.ensure_connected() is None:
                return
            op = c.invoke(self, "acquire", name, dict(inp, wait=None, retry=True),
                          ["LOCK", name, owner, ttl], False)
        if op["status"] != "ok" or not isinstance(op["output"], int):
            if op["status"] == "ok" and rng.random() < 0.2 and not stop.is_set():
                c.invoke(self, "info", name, None, ["LOCK.INFO", name], True)
            stop.wait(rng.uniform(0, 0.05))
            return
        token = op["output"]

        def guarded(kind):
            if kind == "append":
                v = "%s:%d:%d" % (owner, token, self.unique())
                return c.invoke(self, "append", name, {"owner": owner, "token": token,
                                                       "value": v},
                                ["FENCE", name, token, "RPUSH", name + ":log", v], False)
            return c.invoke(self, "incr", name, {"owner": owner, "token": token},
                            ["FENCE", name, token, "INCR", name + ":ctr"], False)

        for _ in range(rng.randint(1, 4)):
            x = rng.random()
            if x < 0.12:  # a paused holder: wakes after its lease ended
                stop.wait(ttl / 1000.0 + rng.uniform(0.05, 0.3))
            elif x < 0.35:
                stop.wait(rng.uniform(0, ttl / 1000.0 * 0.8))
            if stop.is_set() or c.ensure_connected() is None:
                return
            y = rng.random()
            if y < 0.55:
                op = guarded("append")
            elif y < 0.8:
                op = guarded("incr")
            elif y < 0.92:
                op = c.invoke(self, "refresh", name, {"owner": owner, "ttl": ttl},
                              ["LOCK.REFRESH", name, owner, ttl], False)
            else:
                op = c.invoke(self, "info", name, None, ["LOCK.INFO", name], True)
            if op["status"] == "ok" and op["f"] != "info" and op["output"] in ("FENCED", None):
                break  # the lock is lost
        if stop.is_set() or rng.random() < 0.35 or c.ensure_connected() is None:
            return  # walk away: the lease ends by itself
        c.invoke(self, "unlock", name, {"owner": owner}, ["UNLOCK", name, owner], False)
        if rng.random() < 0.25 and not stop.is_set() and c.ensure_connected() is not None:
            guarded(rng.choice(("append", "incr")))  # must be FENCED


def make_workloads(names, active_keys=3, ops_per_key=250):
    classes = {"register": Register, "cas": CasRegister, "counter": Counter, "queue": Queue,
               "bank": Bank, "lock": LockWorkload}
    prefixes = {"register": "reg", "cas": "cas", "counter": "ctr", "queue": "q", "bank": "bank",
                "lock": "lk"}
    ws = [classes[n](n, prefixes[n], active_keys, ops_per_key) for n in names]
    if len(ws) > 1:
        for w in ws:
            if w.name == "lock":
                # A lock session lasts ~0.5 s (sleeps, WAIT), ~50 single operations of the
                # others: picked this rarely it takes about a fifth of the clients' time, and
                # with `active_keys` locks (not 3) the few sessions at a time still contend.
                w.weight = LockWorkload.MIXED_WEIGHT
                w.names = w.names[:max(1, active_keys)]
    return ws


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
        self.pipelines = 0

    def _connection(self):
        if self.conn is None:
            self.conn = Connection(host=self.node.ip, port=self.node.client_port,
                                   socket_timeout=self.timeout_s,
                                   socket_connect_timeout=self.timeout_s,
                                   retry_on_timeout=False)
        return self.conn

    def ensure_connected(self):
        """The connection, opened if needed; None (counted, after a short pause) if it cannot
        be opened: nothing was sent."""
        conn = self._connection()
        try:
            conn.connect()  # no-op when connected; nothing sent yet
        except (redis.exceptions.RedisError, OSError):
            self.counts["connect_errors"] += 1
            conn.disconnect()
            self.stop.wait(0.1 + self.rng.random() * 0.2)
            return None
        return conn

    def run(self):
        while not self.stop.is_set():
            conn = self.ensure_connected()
            if conn is None:
                continue
            w = self.rng.choices(self.workloads, [x.weight for x in self.workloads])[0]
            if hasattr(w, "session"):  # a multi-operation session (lock): it records its ops
                w.session(self)
            elif getattr(w, "PIPELINE", False) and self.rng.random() < PIPELINE_SHARE:
                self.invoke_pipeline(w, [w.generate(self.rng)
                                         for _ in range(self.rng.randint(2, 4))])
            else:
                f, key, inp, args, is_read = w.generate(self.rng)
                self.invoke(w, f, key, inp, args, is_read)
            if self.think_s:
                self.stop.wait(self.think_s)
        if self.conn is not None:
            self.conn.disconnect()

    def invoke(self, w, f, key, inp, args, is_read, parse=None):
        """Sends one operation on the open connection, records it in the history (with its
        outcome, see the module comment) and returns the record. `parse` (default w.parse)
        turns the reply into the output. A reply starting with one of w.DEFINITE_ERRORS
        (FENCED) is a definite answer: status ok, the output is the error's first word."""
        conn = self._connection()
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
                op["output"] = (parse or w.parse)(f, reply)
            op["status"] = "ok"
        except WatchAborted:
            op["return"] = time.monotonic()
            op["status"] = "fail"  # a null EXEC applied nothing
            conn.disconnect()  # drop any watch state
        except redis.exceptions.ResponseError as e:
            self._error_reply(w, op, e, args, is_read)
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
        return op


    def _error_reply(self, w, op, e, args, is_read):
        op["return"] = time.monotonic()
        op["error"] = str(e)
        definite = getattr(w, "DEFINITE_ERRORS", ())
        if definite and str(e).startswith(definite):
            op["status"] = "ok"
            op["output"] = str(e).split()[0]
        else:
            op["status"] = classify_error(str(e), is_read)
            msg = str(e).lower()
            if any(s in msg for s in _PRE_PROPOSAL_ERRORS) or (
                    not msg.startswith(("clusterdown", "tryagain"))):
                self.unexpected.append({"f": op["f"], "args": args, "error": str(e)})

    def invoke_pipeline(self, w, gen):
        """Sends several operations (w.generate() tuples) at once on the open connection,
        then reads their replies in order; records each (see the module comment)."""
        conn = self._connection()
        ops = []
        self.pipelines += 1
        pid = "%d.%d" % (self.index, self.pipelines)
        for i, (f, key, inp, _args, _is_read) in enumerate(gen):
            ops.append({"client": self.process if i == 0 else self.pids.take(), "key": key,
                        "f": f, "input": inp, "output": None, "node": self.node.name,
                        "pipeline": [pid, i]})
        call = time.monotonic()
        for op in ops:
            op["call"] = call
        broken = None
        try:
            conn.send_packed_command(conn.pack_commands([g[3] for g in gen]))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as e:
            broken = e  # some may have been sent
        for op, (f, _key, _inp, args, is_read) in zip(ops, gen):
            if broken is None:
                try:
                    reply = conn.read_response()
                    op["return"] = time.monotonic()
                    op["output"] = w.parse(f, reply)
                    op["status"] = "ok"
                except redis.exceptions.ResponseError as e:
                    self._error_reply(w, op, e, args, is_read)
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                        OSError) as e:
                    broken = e
            if "status" not in op:
                op["return"] = time.monotonic()
                op["error"] = "%s: %s" % (type(broken).__name__, broken)
                op["status"] = "fail" if is_read else "unknown"
            if op["status"] == "unknown":
                op["gave_up"], op["return"] = op["return"], None
            self.history.add(op)
            self.counts[op["status"]] += 1
        if broken is not None:
            conn.disconnect()
        if any(op["status"] == "unknown" for op in ops):
            self.process = self.pids.take()
        return ops


# -- after the run: final reads and the local checks -------------------------

def final_reads(workloads, leader, history, attempts=20):
    """Reads every key once more through the leader (linearizable), recording each read in
    the history: the final state the checker must explain. Queues get a "drain" (LRANGE)."""
    conn = leader.client(timeout=5)
    for w in workloads:
        if w.name == "lock":
            _lock_final_reads(w, conn, leader, history, attempts)
            continue
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


def _lock_final_reads(w, conn, leader, history, attempts):
    """Per lock: its guarded log ("read_log", LRANGE name:log) and counter ("read_ctr")."""
    for name in w.names:
        for f in ("read_log", "read_ctr"):
            for attempt in range(attempts):
                op = {"client": FINAL_CLIENT, "key": name, "node": leader.name, "input": None,
                      "f": f, "call": time.monotonic()}
                try:
                    if f == "read_log":
                        out = [x.decode(errors="replace") for x in
                               conn.lrange(name + ":log", 0, -1)]
                    else:
                        out = _int_or_raw(conn.get(name + ":ctr"))
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


LEASE_MARGIN_S = 0.05  # clock granularity (ms stamps) between the leader's clock and ours


def _fence_success(o):
    return (o["f"] in ("append", "incr") and o["status"] == "ok"
            and o["output"] != "FENCED")


def check_locks(ops):
    """The lock workload's safety checks (docs/TESTING_FAULTS.md): returns a list of
    problems (empty: none found). Ops of keys "lk:N"; grants are totally ordered by token
    (one counter per cluster), and a FENCEd command runs only for the current unexpired grant.

    1. One token, one grant: a token is never seen with two owners or two locks (grants,
       refreshes, LOCK.INFO, the guarded log's entries); an owner seen anywhere asked for it.
    2. Grants follow real time: a grant acknowledged before another grant's first LOCK was sent
       has the smaller token (any locks).
    3. No use of a dead grant: once token t of lock L is known to be no longer current (a FENCED
       reply for t, an UNLOCK or a nil LOCK.REFRESH by t's owner sent after t was acknowledged,
       any sign of a larger token of L, or t's lease ended with no unknown LOCK/LOCK.REFRESH of
       its owner that could have extended it), nothing invoked later succeeds with t (a FENCEd
       write, LOCK/LOCK.REFRESH answering t, LOCK.INFO showing t).
    4. The guarded log (read at the end): entries unique, each from a guarded write that did not
       get FENCED (an unknown one may or may not be there), every acknowledged one at the index
       its RPUSH answered, in real-time order, and tokens never decreasing: an older token after
       a newer one means the old holder wrote while the newer one held the lock.
    5. The guarded counter: acknowledged INCR values distinct and in real-time order, the final
       value between the acknowledged INCRs and those plus the unknown ones.
    """
    lops = [o for o in ops if o["key"].split(":")[0] == "lk"]
    if not lops:
        return []
    problems = []

    def brief(o):
        return "%s %s client %s in %r out %r call %.3f return %s" % (
            o["key"], o["f"], o["client"], o.get("input"), o.get("output"), o["call"],
            "%.3f" % o["return"] if o.get("return") is not None else "unknown")

    acquires_of = {}  # owner -> acquire ops (any status)
    unknown_ext = set()  # owners with an unknown LOCK or LOCK.REFRESH
    for o in lops:
        if o["f"] in ("acquire", "refresh"):
            own = o["input"]["owner"]
            if o["f"] == "acquire":
                acquires_of.setdefault(own, []).append(o)
            if o["status"] == "unknown":
                unknown_ext.add(own)

    # -- 1. tokens tied to owners and locks; observations of each token -------------------
    tie = {}  # token -> {(owner, lock): first evidence}
    seen = {}  # token -> ok ops showing t current (time-stamped evidence)

    def bind(token, owner, lock, evidence):
        if not isinstance(token, int) or isinstance(token, bool):
            problems.append("lock %s: token %r is not an integer (%s)" % (lock, token, evidence))
            return
        tie.setdefault(token, {}).setdefault((owner, lock), evidence)

    for o in lops:
        if o["status"] != "ok":
            continue
        f, out = o["f"], o["output"]
        if f in ("acquire", "refresh") and out is not None:
            bind(out, o["input"]["owner"], o["key"], brief(o))
            seen.setdefault(out, []).append(o)
        elif f == "info" and out is not None:
            if not isinstance(out, dict):
                problems.append("lock: LOCK.INFO answered %r (%s)" % (out, brief(o)))
                continue
            bind(out["token"], out["owner"], o["key"], brief(o))
            seen.setdefault(out["token"], []).append(o)
        elif _fence_success(o):
            bind(o["input"]["token"], o["input"]["owner"], o["key"], brief(o))
            seen.setdefault(o["input"]["token"], []).append(o)
    logs = {o["key"]: o for o in lops if o["f"] == "read_log" and o["status"] == "ok"}
    entries = {}  # lock -> [(owner, token, value)]
    for lock, o in logs.items():
        parsed = []
        for v in o["output"]:
            parts = v.rsplit(":", 2)
            try:
                owner, token = parts[0], int(parts[1])
            except (IndexError, ValueError):
                problems.append("lock %s: log entry %r is not owner:token:n" % (lock, v))
                continue
            parsed.append((owner, token, v))
            bind(token, owner, lock, "log entry %r" % v)
        entries[lock] = parsed
    for token, who in sorted(tie.items()):
        if len({ow for ow, _ in who}) > 1 or len({lk for _, lk in who}) > 1:
            problems.append("lock: token %d granted to %d owners/locks at once: %s" % (
                token, len(who), "; ".join("%s on %s (%s)" % (ow, lk, ev)
                                          for (ow, lk), ev in sorted(who.items()))))
    owner_of = {t: next(iter(who))[0] for t, who in tie.items() if len(who) == 1}
    lock_of = {t: next(iter(who))[1] for t, who in tie.items() if len(who) == 1}
    for token, (owner, lock) in ((t, next(iter(w))) for t, w in tie.items() if len(w) == 1):
        if not any(a["key"] == lock for a in acquires_of.get(owner, ())):
            problems.append("lock %s: token %d held by %r, who never asked for %s" % (
                lock, token, owner, lock))
    # A refresh answers the owner's token (unless an unknown LOCK may have granted another).
    for o in lops:
        if o["f"] == "refresh" and o["status"] == "ok" and isinstance(o["output"], int):
            own = o["input"]["owner"]
            mine = {a["output"] for a in acquires_of.get(own, ())
                    if a["status"] == "ok" and isinstance(a["output"], int)}
            if all(a["status"] == "ok" for a in acquires_of.get(own, ())) and mine and \
                    o["output"] not in mine:
                problems.append("lock %s: LOCK.REFRESH by %s answered token %d, its grant "
                                "was %s (%s)" % (o["key"], own, o["output"], sorted(mine),
                                                 brief(o)))

    # -- 2. grants in real-time order (one counter for every lock) ------------------------
    acked = {}  # token -> earliest return of an ok op showing it current
    for t, obs in seen.items():
        if isinstance(t, int):
            acked[t] = min(x["return"] for x in obs)
    starts = {}  # token -> earliest LOCK sent by its owner for its lock
    for t, own in owner_of.items():
        calls = [a["call"] for a in acquires_of.get(own, ()) if a["key"] == lock_of[t]]
        if calls:
            starts[t] = min(calls)
    by_ack = sorted((ret, t) for t, ret in acked.items())
    best, j = None, 0  # the largest token acknowledged before each start
    for start, t in sorted((s_, t) for t, s_ in starts.items()):
        while j < len(by_ack) and by_ack[j][0] < start:
            if best is None or by_ack[j][1] > best:
                best = by_ack[j][1]
            j += 1
        if best is not None and t <= best:
            problems.append("lock: grant order: token %d (%s on %s, first LOCK sent at %.3f) "
                            "is not larger than token %d, acknowledged at %.3f (%s on %s) "
                            "before it" % (t, owner_of[t], lock_of[t], start, best, acked[best],
                                           owner_of.get(best), lock_of.get(best)))

    # -- 3. no success with a dead token ----------------------------------------------------
    dead = {}  # token -> (time, why)

    def died(t, when, why):
        if t not in dead or when < dead[t][0]:
            dead[t] = (when, why)

    by_lock_tokens = {}
    for t, lk in lock_of.items():
        by_lock_tokens.setdefault(lk, []).append(t)
    for o in lops:
        if o["status"] != "ok":
            continue
        if o["f"] in ("append", "incr") and o["output"] == "FENCED":
            died(o["input"]["token"], o["return"], "FENCED reply: " + brief(o))
        elif (o["f"] == "unlock" or (o["f"] == "refresh" and o["output"] is None)):
            own = o["input"]["owner"]
            for t, ow in owner_of.items():
                if ow == own and lock_of[t] == o["key"] and t in acked and \
                        acked[t] < o["call"]:
                    died(t, o["return"], "%s: %s" % (o["f"], brief(o)))
    for lk, toks in by_lock_tokens.items():
        toks = sorted(t for t in toks if t in acked)
        # each token dies once a larger token of the same lock is seen current
        later_min = None
        for t in reversed(toks):
            if later_min is not None:
                died(t, later_min[0], "token %d of the same lock seen at %.3f" %
                     (later_min[1], later_min[0]))
            if later_min is None or acked[t] < later_min[0]:
                later_min = (acked[t], t)
    for t, own in owner_of.items():
        if own in unknown_ext or t not in seen:
            continue
        ext = sorted((x for x in seen[t] if x["f"] in ("acquire", "refresh")),
                     key=lambda x: x["call"])
        end = None
        for x in ext:
            if end is not None and x["call"] > end + LEASE_MARGIN_S:
                break  # answered after the lease ended: flagged below as a use of a dead token
            e = x["return"] + x["input"]["ttl"] / 1000.0
            end = e if end is None else max(end, e)
        if end is not None:
            died(t, end + LEASE_MARGIN_S, "the lease ended (%s's last LOCK/LOCK.REFRESH "
                 "answered by %.3f; ttl + %.0f ms margin)" % (own, end, LEASE_MARGIN_S * 1000))
    for t, obs in seen.items():
        if t not in dead:
            continue
        when, why = dead[t]
        for x in obs:
            if x["call"] > when:
                problems.append("lock %s: token %d used after it stopped being the lock's "
                                "grant (%s) by: %s" % (x["key"], t, why, brief(x)))
                break

    # -- 4. the guarded logs -----------------------------------------------------------------
    appends = {}  # value -> op
    for o in lops:
        if o["f"] == "append":
            appends[o["input"]["value"]] = o
    for lock, parsed in sorted(entries.items()):
        values = [v for _, _, v in parsed]
        index = {}
        for i, v in enumerate(values):
            if v in index:
                problems.append("lock %s: log entry %r appears twice (at %d and %d)" %
                                (lock, v, index[v], i))
            index.setdefault(v, i)
            o = appends.get(v)
            if o is None or o["key"] != lock:
                problems.append("lock %s: log entry %r that no guarded write sent" % (lock, v))
            elif o["status"] == "ok" and o["output"] == "FENCED":
                problems.append("lock %s: log entry %r from a write answered FENCED (%s)" %
                                (lock, v, brief(o)))
            elif o["status"] == "fail":
                problems.append("lock %s: log entry %r from a write that failed (%s)" %
                                (lock, v, brief(o)))
        for i in range(1, len(parsed)):
            if parsed[i][1] < parsed[i - 1][1]:
                problems.append("lock %s: guarded log goes back from token %d (%s) to token "
                                "%d (%s) at index %d: the old holder wrote while a newer one "
                                "held the lock" % (lock, parsed[i - 1][1], parsed[i - 1][2],
                                                   parsed[i][1], parsed[i][2], i))
        acked_appends = [o for o in appends.values() if o["key"] == lock and _fence_success(o)]
        for o in acked_appends:
            v, n = o["input"]["value"], o["output"]
            if v not in index:
                problems.append("lock %s: acknowledged guarded write %r lost from the log "
                                "(%s)" % (lock, v, brief(o)))
            elif not isinstance(n, int) or index[v] != n - 1:
                problems.append("lock %s: guarded write %r answered length %r but is at "
                                "index %d" % (lock, v, n, index[v]))
        problems.extend(_realtime_order(lock, "guarded log", acked_appends,
                                        lambda o: index.get(o["input"]["value"]), brief))

    # -- 5. the guarded counters -------------------------------------------------------------
    finals = {o["key"]: o["output"] for o in lops if o["f"] == "read_ctr" and o["status"] == "ok"}
    for lock in sorted({o["key"] for o in lops}):
        incrs = [o for o in lops if o["key"] == lock and o["f"] == "incr"]
        ok = [o for o in incrs if _fence_success(o)]
        unknown = sum(1 for o in incrs if o["status"] == "unknown")
        vals = [o["output"] for o in ok]
        if any(not isinstance(v, int) for v in vals):
            problems.append("lock %s: guarded INCR answered %r" % (lock, vals))
            continue
        if len(set(vals)) != len(vals):
            problems.append("lock %s: guarded INCR answered one value twice: %s" % (
                lock, sorted(v for v in set(vals) if vals.count(v) > 1)[:10]))
        problems.extend(_realtime_order(lock, "guarded counter", ok, lambda o: o["output"],
                                        brief))
        if lock in finals:
            final = finals[lock] or 0
            if not isinstance(final, int) or not len(ok) <= final <= len(ok) + unknown:
                problems.append("lock %s: guarded counter ends at %r, %d acknowledged and %d "
                                "unknown INCRs" % (lock, final, len(ok), unknown))
            elif vals and max(vals) > final:
                problems.append("lock %s: guarded INCR answered %d, above the final %d" % (
                    lock, max(vals), final))
    return problems


def _realtime_order(lock, what, acked, position, brief):
    """Acknowledged ops whose positions must follow real time: if A returned before B was
    sent, position(A) < position(B)."""
    items = [(o["return"], o["call"], position(o), o) for o in acked if position(o) is not None]
    by_ret = sorted(items, key=lambda x: x[0])
    out, j, best = [], 0, None
    for ret, call, pos, o in sorted(items, key=lambda x: x[1]):
        while j < len(by_ret) and by_ret[j][0] < call:
            if best is None or by_ret[j][2] > best[2]:
                best = by_ret[j]
            j += 1
        if best is not None and pos <= best[2]:
            out.append("lock %s: %s out of real-time order: %s (position %s) was sent after %s "
                       "(position %s) was acknowledged" % (lock, what, brief(o), pos,
                                                           brief(best[3]), best[2]))
            if len(out) >= 5:
                break
    return out


def lock_stats(ops):
    """Counts for the report: what the lock workload did."""
    s = {"grants": 0, "denied": 0, "guarded_ok": 0, "fenced": 0, "unlocks": 0, "unknown": 0,
         "log_entries": 0}
    for o in ops:
        if o["key"].split(":")[0] != "lk":
            continue
        if o["status"] == "unknown":
            s["unknown"] += 1
        elif o["status"] != "ok":
            continue
        elif o["f"] == "acquire":
            s["grants" if isinstance(o["output"], int) else "denied"] += 1
        elif o["f"] in ("append", "incr"):
            s["fenced" if o["output"] == "FENCED" else "guarded_ok"] += 1
        elif o["f"] == "unlock" and o["output"] == 1:
            s["unlocks"] += 1
        elif o["f"] == "read_log":
            s["log_entries"] += len(o["output"])
    return s


def check_pipeline_order(ops):
    """Within one pipeline the server runs the commands in order: a counter's value as seen
    by its later operations (an increment's result, a read) never goes below what an earlier
    one saw, and an increment always moves it up."""
    pipes = {}
    for o in ops:
        if "pipeline" in o and o["status"] == "ok" and o["key"].startswith("ctr:"):
            pipes.setdefault(o["pipeline"][0], []).append(o)
    problems = []
    for pid, pops in pipes.items():
        pops.sort(key=lambda o: o["pipeline"][1])
        seen = {}
        for o in pops:
            v = o["output"] or 0
            if not isinstance(v, int):
                continue
            prev = seen.get(o["key"])
            if prev is not None and (v < prev or (o["f"] == "incr" and v <= prev)):
                problems.append("%s: pipeline %s: %s at position %d saw %d after %d earlier in "
                                "the same pipeline (run out of order)" %
                                (o["key"], pid, o["f"], o["pipeline"][1], v, prev))
            seen[o["key"]] = v
    return problems


def sanity_check(ops):
    """Cheap necessary conditions on a finished history, independent of the linearizability
    checker: nothing read that nobody wrote, no acknowledged increment or element lost, no
    element delivered twice. Returns a list of problems (empty: none found)."""
    by_key = {}
    for op in ops:
        by_key.setdefault(op["key"], []).append(op)
    problems = check_locks(ops) + check_pipeline_order(ops)
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
