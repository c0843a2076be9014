#!/usr/bin/env python3
"""Linearizability checker for QuorumKV histories (docs/LINEARIZABILITY.md).

    /usr/bin/python3 tests/e2e/lincheck.py history.jsonl [--time-limit S] [--key K]

prints a verdict per key and exits 0 when every key is proven linearizable,
1 when some key is not, 3 when no key failed but some search ran out of time,
2 on unreadable input.

As a library:

    ops = load_history(path)
    results = check_history(ops, time_limit_per_key=60)   # key -> Result
    r = check_key(ops_of_one_key)                          # model chosen from the ops
    r.ok          # True, False, or None (inconclusive: the search hit its time limit)
    r.explanation # why, with a timeline of the operations that cannot be ordered

The search is the Wing & Gong linearization search with Lowe's memoisation of
(set of linearized operations, model state), run per key (P-compositionality),
plus reductions that keep it tractable in CPython, each losing no linearization:
operations whose outcome is unknown never block others and are tried last;
interchangeable unknown operations are linearized in call order only; an ok
operation that cannot hurt by going first (a matching read, a dequeue of the
head) goes at once; a branch is cut as soon as it leaves a value that an op
still waiting needs and nothing can write again, puts queue values in an order
their dequeues contradict, or takes a monotone counter past a value still
needed. The reasons, the formats and how to read a report: docs/LINEARIZABILITY.md.
"""
import argparse
import json
import math
import sys
import time
from collections import defaultdict

INF = math.inf

STATUSES = ("ok", "fail", "unknown")


class Op:
    """One completed operation of the history (one JSON line)."""

    __slots__ = ("index", "client", "key", "f", "input", "output", "call", "ret", "status")

    def __init__(self, client, key, f, input, output, call, ret, status, index=None):
        self.index = index  # 0-based line number in the history file, or position in the list
        self.client = client
        self.key = key
        self.f = f
        self.input = input
        self.output = output
        self.call = call
        self.ret = ret  # INF for an unknown outcome
        self.status = status

    @property
    def unknown(self):
        return self.status == "unknown"

    def as_unknown(self):
        """This operation with its outcome forgotten (pending at a cut of the history)."""
        return Op(self.client, self.key, self.f, self.input, None, self.call, INF, "unknown",
                  self.index)

    def __repr__(self):
        return "Op(#%s c%s %s %s %r -> %r [%s, %s] %s)" % (
            self.index, self.client, self.key, self.f, self.input, self.output, self.call,
            self.ret, self.status)


def _freeze(v):
    """JSON value -> hashable value (lists become tuples)."""
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        raise ValueError("objects are not valid values: %r" % (v,))
    return v


def op_from_dict(d, index=None):
    """Validates one history record (a dict as in the JSON line) and returns an Op."""
    if isinstance(d, Op):
        return d
    if not isinstance(d, dict):
        raise ValueError("record is not an object: %r" % (d,))
    for field in ("client", "key", "f", "call", "status"):
        if field not in d:
            raise ValueError("missing field %r" % field)
    status = d["status"]
    if status not in STATUSES:
        raise ValueError("status must be one of %s, not %r" % (STATUSES, status))
    if not isinstance(d["f"], str):
        raise ValueError("f must be a string")
    if isinstance(d["call"], bool) or not isinstance(d["call"], (int, float)):
        raise ValueError("call must be a number")
    ret = d.get("return")
    if status == "unknown":
        ret = INF  # it may take effect at any time after its call; a given return is ignored
    elif ret is None:
        if status == "ok":
            raise ValueError("an ok operation needs a return time")
        ret = INF
    elif isinstance(ret, bool) or not isinstance(ret, (int, float)):
        raise ValueError("return must be a number or null")
    elif ret < d["call"]:
        raise ValueError("return %r is before call %r" % (ret, d["call"]))
    return Op(d["client"], d["key"], d["f"], _freeze(d.get("input")), _freeze(d.get("output")),
              float(d["call"]), float(ret), status, index)


def load_history(path):
    """Reads a JSON-lines history; raises ValueError naming the bad line."""
    ops = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            line = line.strip()
            if not line:
                continue
            try:
                ops.append(op_from_dict(json.loads(line), index=n))
            except ValueError as e:  # json.JSONDecodeError is a ValueError
                raise ValueError("%s:%d: %s" % (path, n + 1, e)) from None
    return ops


def _as_ops(ops):
    out = []
    for n, o in enumerate(ops):
        op = op_from_dict(o, index=n)
        if op.index is None:
            op.index = n
        out.append(op)
    return out


# -- models -------------------------------------------------------------------

_BAD = object()    # step result: the operation cannot happen in this state
_NOVAL = object()  # no value constraint (see needs/makes in _search)


class _Prepared:
    """The part of one key's history the search sees, and what was done to get it."""

    def __init__(self):
        self.finite = []    # ok operations (they must be linearized before their return)
        self.unknown = []   # unknown operations (linearized at most once, never block)
        self.dropped = 0    # unknown operations that provably cannot matter
        self.violations = []  # (message, [ops]) found without the search
        self.notes = []


class Model:
    """A sequential specification. step() returns the next state or _BAD.

    eager(op): an ok op that, when possible in a state, can be linearized right there
        without losing any linearization (a read that matches the state, say).
    need(op)/make(op): for value models, the state value an ok op requires / an op may set.
    priority(op): when `prioritized`, the order in which the search tries ok ops.
    forceable(op)/force_unknown(state): an unknown op that may be linearized at once in
        such a state without losing any linearization.
    """
    name = "?"
    fs = frozenset()
    init = None
    values = False  # need/make pruning applies
    prioritized = False

    def step(self, state, op):
        raise NotImplementedError

    def eager(self, op):
        return False

    def priority(self, op):
        return 0

    def forceable(self, op):
        return False

    def force_unknown(self, state):
        return False

    def fate(self, op):
        return None

    def floor(self, op):
        """For a model whose state only grows: the state an ok op needs, else None."""
        return None

    def need(self, op):
        return _NOVAL

    def make(self, op):
        return _NOVAL

    def check_values(self, op):
        pass

    def prepare(self, ops):
        """Splits ops into finite/unknown, drops what cannot matter, runs the cheap checks."""
        p = _Prepared()
        for op in ops:
            if op.status == "fail":
                continue
            self.check_values(op)
            if op.unknown:
                if self.no_effect(op):
                    p.dropped += 1
                else:
                    p.unknown.append(op)
            else:
                p.finite.append(op)
        self.refine(p)
        return p

    def no_effect(self, op):
        """An unknown op that changes nothing whatever the state (a read)."""
        return op.f in ("read", "drain")

    def refine(self, p):
        pass


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class RegisterModel(Model):
    """GET/SET register: read -> value or null (missing), write(value)."""
    name = "register"
    fs = frozenset(("read", "write"))
    values = True

    def step(self, state, op):
        if op.f == "write":
            return op.input
        return state if op.output == state else _BAD

    def eager(self, op):
        return op.f == "read"

    def need(self, op):
        return op.output if op.f == "read" and not op.unknown else _NOVAL

    def make(self, op):
        return op.input if op.f == "write" else _NOVAL

    def check_values(self, op):
        if op.f == "write" and op.input is None:
            raise ValueError("a write needs a value (line %s)" % _line(op))

    def refine(self, p):
        written = defaultdict(list)
        for op in p.finite + p.unknown:
            v = self.make(op)
            if v is not _NOVAL:
                written[v].append(op)
        for op in p.finite:
            if op.f == "read" and op.output is not None:
                ws = written.get(op.output)
                if not ws:
                    p.violations.append(("read of a value that was never written", [op]))
                elif all(w.call > op.ret for w in ws):
                    p.violations.append(("read of a value whose every write started after the "
                                         "read returned", [op] + ws[:3]))
        self.drop_unobserved(p)

    def drop_unobserved(self, p):
        # An unknown write of a value no ok read returns can be left out: wherever it is
        # linearized, the state it sets until the next write is read by nobody.
        read = {op.output for op in p.finite if op.f == "read"}
        keep = []
        for op in p.unknown:
            if op.f == "write" and op.input not in read:
                p.dropped += 1
            else:
                keep.append(op)
        p.unknown = keep


class CasRegisterModel(RegisterModel):
    """Register with CAS key expected new -> true/false (a missing key matches nothing)."""
    name = "cas-register"
    fs = frozenset(("read", "write", "cas"))

    def step(self, state, op):
        f = op.f
        if f == "cas":
            expected, new = op.input
            if state is not None and state == expected:
                return new if (op.unknown or op.output is True) else _BAD
            return state if (op.unknown or op.output is False) else _BAD
        if f == "write":
            return op.input
        return state if op.output == state else _BAD

    def eager(self, op):
        return op.f == "read" or (op.f == "cas" and op.output is False)

    def need(self, op):
        if op.unknown:
            return _NOVAL
        if op.f == "read":
            return op.output
        if op.f == "cas" and op.output is True:
            return op.input[0]
        return _NOVAL

    def make(self, op):
        if op.f == "write":
            return op.input
        if op.f == "cas" and (op.unknown or op.output is True):
            return op.input[1]
        return _NOVAL

    def check_values(self, op):
        if op.f == "cas":
            if not (isinstance(op.input, tuple) and len(op.input) == 2):
                raise ValueError("cas input must be [expected, new] (line %s)" % _line(op))
            if op.status == "ok":
                if op.output in (1, 0) and not isinstance(op.output, bool):
                    op.output = bool(op.output)
                if not isinstance(op.output, bool):
                    raise ValueError("cas output must be true/false (line %s)" % _line(op))
        super().check_values(op)

    def drop_unobserved(self, p):
        # Sound only when no ok CAS failed: a failed CAS can need some write to have
        # overwritten its expected value. Otherwise an unknown write/CAS setting a value
        # that no ok read returns and no CAS expects is invisible, as for the register.
        if any(op.f == "cas" and op.output is False for op in p.finite):
            return
        observed = {op.output for op in p.finite if op.f == "read"}
        observed |= {op.input[0] for op in p.finite + p.unknown if op.f == "cas"}
        keep = []
        for op in p.unknown:
            v = self.make(op)
            if v is not _NOVAL and v not in observed:
                p.dropped += 1
            else:
                keep.append(op)
        p.unknown = keep


class CounterModel(Model):
    """INCRBY counter: incr(delta) -> new value, read -> value (null = 0)."""
    name = "counter"
    fs = frozenset(("incr", "read"))
    init = 0

    def step(self, state, op):
        if op.f == "incr":
            n = state + op.input
            return n if (op.unknown or op.output == n) else _BAD
        out = op.output if op.output is not None else 0
        return state if out == state else _BAD

    def eager(self, op):
        return op.f == "read" or (op.f == "incr" and op.input == 0)

    monotone = False

    def refine(self, p):
        self.monotone = all(op.input > 0 for op in p.finite + p.unknown if op.f == "incr")

    def floor(self, op):
        # With only positive deltas the counter never goes back: an ok op needing a
        # value below the current state can never happen any more.
        if not self.monotone or op.unknown:
            return None
        if op.f == "incr":
            return op.output - op.input
        return op.output if op.output is not None else 0

    def check_values(self, op):
        if op.f == "incr" and not _is_int(op.input):
            raise ValueError("incr input must be an integer (line %s)" % _line(op))
        if op.status == "ok" and op.output is not None and not _is_int(op.output):
            raise ValueError("counter output must be an integer or null (line %s)" % _line(op))
        if op.status == "ok" and op.f == "incr" and op.output is None:
            raise ValueError("an ok incr needs its output (line %s)" % _line(op))


class QueueModel(Model):
    """A list used as a FIFO queue: enqueue(v) = RPUSH, dequeue = LPOP -> v or null,
    drain = LRANGE 0 -1 after everything else (read-only)."""
    name = "queue"
    fs = frozenset(("enqueue", "dequeue", "drain"))
    init = ()

    def __init__(self):
        self.needed = frozenset()
        self.unique = False
        self.consumed = {}
        self.unseen = (INF, 0)
        self.drain_pos = {}
        self.deq_call = {}
        self.deq_ret = {}

    def step(self, state, op):
        f = op.f
        if f == "enqueue":
            v = op.input
            if self.unique and state:
                # Values are unique and the queue order never changes, so an order that
                # contradicts how the values left is dead now, not when they leave:
                # behind a value still there in the drain only later-drained values fit,
                # and v cannot queue behind a value whose dequeue began after v's ended.
                dpos = self.drain_pos
                if max(map(dpos.__getitem__, state)) > dpos[v]:
                    return _BAD
                cret = self.deq_ret.get(v)
                if cret is not None and max(map(self.deq_call.__getitem__, state)) > cret:
                    return _BAD
            return state + (v,)
        if f == "dequeue":
            if op.unknown:
                if not state:
                    return state
                # A value some ok dequeue or the drain returns cannot be taken by an
                # unknown dequeue (values are unique), so that branch is dead.
                return _BAD if state[0] in self.needed else state[1:]
            if op.output is None:
                return state if not state else _BAD
            return state[1:] if state and state[0] == op.output else _BAD
        # drain: the whole remaining list
        return state if op.output == state else _BAD

    def eager(self, op):
        # A dequeue that matches the head can go now: with unique values nothing else
        # can remove that value, and only enqueues (at the tail) could come before it.
        return op.f == "drain" or (op.f == "dequeue" and (op.output is None or self.unique))

    def priority(self, op):
        # Try first the enqueue whose value was consumed first: the FIFO order says so.
        # A value nobody sees left through an unknown dequeue, so it was ahead of every
        # drained value: it goes after the dequeued values and before the drained ones.
        if op.f == "enqueue":
            return self.consumed.get(op.input, self.unseen)
        return (op.call, 0)

    def forceable(self, op):
        return op.f == "dequeue" and self.unique

    def fate(self, op):
        """For the search's order pruning: what became of an enqueued value."""
        if op.f != "enqueue" or not self.unique:
            return None
        v = op.input
        if v in self.deq_ret:
            return ("dequeued", self.deq_call[v], self.deq_ret[v])
        if self.drain_pos.get(v, -1) >= 0:
            return ("drained", self.drain_pos[v])
        return ("lost",)

    def force_unknown(self, state):
        # A head value that no ok op ever sees can only leave through an unknown dequeue,
        # and nothing but enqueues can happen before it does: take it now.
        return bool(state) and state[0] not in self.needed

    def check_values(self, op):
        if op.f == "drain" and op.status == "ok" and not isinstance(op.output, tuple):
            raise ValueError("drain output must be a list (line %s)" % _line(op))
        if op.f == "enqueue" and op.input is None:
            raise ValueError("an enqueue needs a value (line %s)" % _line(op))

    def refine(self, p):
        enq = [op for op in p.finite + p.unknown if op.f == "enqueue"]
        values = [op.input for op in enq]
        unique = len(set(values)) == len(values)
        self.needed = frozenset()
        self.unique = unique
        self.prioritized = unique
        self.consumed = {}
        if not unique:
            p.notes.append("enqueued values are not unique: only the search applies")
            return
        self.drain_pos = dict.fromkeys(values, -1)
        self.deq_call = dict.fromkeys(values, -INF)
        self.deq_ret = {}
        for op in p.finite:
            if op.f == "dequeue" and op.output is not None:
                self.consumed.setdefault(op.output, (op.call, 0))
                if op.output in self.deq_call:
                    self.deq_call[op.output] = op.call
                    self.deq_ret[op.output] = op.ret
            elif op.f == "drain":
                for i, v in enumerate(op.output):
                    self.consumed.setdefault(v, (op.call, i + 1))
                    if v in self.drain_pos:
                        self.drain_pos[v] = i
        self.needed = frozenset(self.consumed)
        drains = [op.call for op in p.finite if op.f == "drain"]
        self.unseen = (min(drains), 0) if drains else (INF, 0)
        # An unknown enqueue of a value nobody ever sees may be left out (it may not have
        # happened; if it did, only unknown dequeues can have removed it).
        keep = []
        for op in p.unknown:
            if op.f == "enqueue" and op.input not in self.needed:
                p.dropped += 1
            else:
                keep.append(op)
        p.unknown = keep


MODELS = (QueueModel, CounterModel, CasRegisterModel, RegisterModel)


def choose_model(ops):
    fs = {op.f for op in ops}
    if "drain" in fs or "enqueue" in fs or "dequeue" in fs:
        cls = QueueModel
    elif "incr" in fs:
        cls = CounterModel
    elif "cas" in fs:
        cls = CasRegisterModel
    else:
        cls = RegisterModel
    extra = fs - cls.fs
    if extra:
        raise ValueError("operations %s do not belong to the %s model" %
                         (sorted(extra), cls.name))
    return cls()


def _model_by_name(name):
    for cls in MODELS:
        if cls.name == name:
            return cls()
    raise ValueError("unknown model %r (one of %s)" % (name, [c.name for c in MODELS]))


# -- the search -----------------------------------------------------------------

class _TimeUp(Exception):
    pass


class _Outcome:
    def __init__(self, ok, explored, block_rank, block_op, block_states, order):
        self.ok = ok                  # True, False, None (time limit)
        self.explored = explored      # distinct configurations visited
        self.block_rank = block_rank  # furthest return (rank among ok ops) no config passed
        self.block_op = block_op
        self.block_states = block_states
        self.order = order            # ok ops sorted by return


def _search(model, finite, unknown, deadline, skip_need=None, states_max=16):
    """Is there a linearization of `finite` (all of them) and any subset of `unknown`?

    Configurations are (bitset of linearized ops, model state), as in Lowe's cache. The
    ok operations live in a doubly linked list of call and return entries sorted by time
    (a call before a return at equal times: touching intervals count as concurrent); an
    op can be linearized while its call entry comes before the first return entry still
    in the list (the frontier). Unknown operations have no return entry: they can be
    linearized at any point after their call, or never, and are tried after the ok ones.
    """
    finite = sorted(finite, key=lambda o: (o.call, o.ret))
    unknown = sorted(unknown, key=lambda o: o.call)
    m, u = len(finite), len(unknown)
    ops = finite + unknown
    bits = [1 << g for g in range(m + u)]
    step = model.step
    eager = [(not op.unknown) and model.eager(op) for op in ops]
    prio = [model.priority(op) for op in ops] if model.prioritized else None
    forceable = [model.forceable(op) for op in unknown]
    force_unknown = model.force_unknown if any(forceable) else None

    # Interchangeable unknown ops (same f and input) are linearized in call order only.
    usym = []
    last = {}
    for j, op in enumerate(unknown):
        k = (op.f, op.input)
        usym.append(last.get(k, -1))
        last[k] = m + j
    ucall = [op.call for op in unknown]

    # Value pruning: needs[v] = ok ops not yet linearized that require state == v,
    # makes[v] = ops not yet linearized that may set v. Leaving a state v while
    # needs[v] > 0 == makes[v] is a dead end.
    values = model.values
    needv = [_NOVAL] * (m + u)
    makev = [_NOVAL] * (m + u)
    needs = defaultdict(int)
    makes = defaultdict(int)
    # An unknown op setting v is only tried when something can observe it: an op that
    # needs v, an unknown CAS expecting v, or an ok failed CAS expecting the current
    # state (which needs the state to change). Otherwise, until the next write, nobody
    # sees v, so leaving the op out loses no linearization.
    xexpv = [_NOVAL] * (m + u)  # unknown CAS: expected value; ok failed CAS: expected
    uexp = defaultdict(int)
    fexp = defaultdict(int)
    if values:
        for g, op in enumerate(ops):
            if op.f == "cas" and (op.unknown or op.output is False):
                xexpv[g] = op.input[0]
                (uexp if op.unknown else fexp)[op.input[0]] += 1
        for g, op in enumerate(ops):
            if op is not skip_need:
                needv[g] = model.need(op)
                if needv[g] is not _NOVAL:
                    needs[needv[g]] += 1
            makev[g] = model.make(op)
            if makev[g] is not _NOVAL:
                makes[makev[g]] += 1

    # Queue order pruning: every enqueue still to be linearized goes behind the ones
    # linearized so far. So a dequeued value cannot be enqueued while a value whose
    # dequeue ended before its dequeue began is still waiting, and a value still there
    # at the drain cannot be enqueued while a value that leaves, or one drained before
    # it, is still waiting. cons: waiting dequeued values by dequeue return (lo_c: all
    # before it are linearized); drn: drained values by position.
    fates = [model.fate(op) for op in ops]
    ordered = any(fates)
    cons = sorted((g for g in range(m + u) if fates[g] and fates[g][0] == "dequeued"),
                  key=lambda g: fates[g][2])
    drn = sorted((g for g in range(m + u) if fates[g] and fates[g][0] == "drained"),
                 key=lambda g: fates[g][1])
    cpos = {g: i for i, g in enumerate(cons)}
    dposi = {g: i for i, g in enumerate(drn)}
    waiting = [sum(1 for f in fates if f and f[0] != "drained")]  # dequeued or lost
    low = [0, 0]  # lo_c, lo_d

    def order_ok(g, newlin):
        fate = fates[g]
        kind = fate[0]
        if kind == "dequeued":
            i = low[0]
            while i < len(cons) and newlin & bits[cons[i]]:
                i += 1
            low[0] = i
            return i == len(cons) or fates[cons[i]][2] >= fate[1]
        if kind == "drained":
            if waiting[0] > 0:
                return False
            i = low[1]
            while i < len(drn) and newlin & bits[drn[i]]:
                i += 1
            low[1] = i
            return i == len(drn) or fates[drn[i]][1] >= fate[1]
        return True

    def order_done(g, sign):
        """Counts enqueue g as linearized (sign -1) or not (sign +1, with the pointers)."""
        fate = fates[g]
        if fate[0] != "drained":
            waiting[0] += sign
        if sign > 0:
            if fate[0] == "dequeued":
                low[0] = min(low[0], cpos[g])
            elif fate[0] == "drained":
                low[1] = min(low[1], dposi[g])

    # Monotone pruning (counter with positive deltas): floors of the ok ops not yet
    # linearized, sorted; lo_f: every one before it is linearized.
    floors = [None if op is skip_need else model.floor(op) for op in ops]
    monotone = any(f is not None for f in floors)
    fl = sorted((g for g in range(m + u) if floors[g] is not None), key=floors.__getitem__)
    flpos = {g: i for i, g in enumerate(fl)}
    lo_f = [0]

    def floor_ok(newlin, ns):
        i = lo_f[0]
        while i < len(fl) and newlin & bits[fl[i]]:
            i += 1
        lo_f[0] = i
        return i == len(fl) or floors[fl[i]] >= ns

    # Entries: 2g = call of finite op g, 2g+1 = its return; HEAD is the sentinel.
    times = []
    for op in finite:
        times.append(op.call)
        times.append(op.ret)
    HEAD, END = 2 * m, -1
    nxt = [END] * (2 * m + 1)
    prv = [END] * (2 * m + 1)
    order = sorted(range(2 * m), key=lambda e: (times[e], e & 1, e >> 1))
    prev = HEAD
    rank = [0] * m
    r = 0
    for e in order:
        nxt[prev] = e
        prv[e] = prev
        prev = e
        if e & 1:
            rank[e >> 1] = r
            r += 1
    by_return = [finite[e >> 1] for e in order if e & 1]

    lin = 0
    state = model.init
    cache = set()
    # frames: (g, state before, forced, candidates, next candidate, frontier)
    stack = []
    best_rank, best_states = -1, []
    iterations = 0
    fresh = True
    cands, ci, frontier = [], 0, END

    def allowed(g, old, ns):
        """Counts op g as linearized (old -> ns) unless the pruning forbids it."""
        if monotone and ns != old and not floor_ok(lin | bits[g], ns):
            if g in flpos:
                lo_f[0] = min(lo_f[0], flpos[g])
            return False
        if ordered and fates[g] is not None:
            if not order_ok(g, lin | bits[g]):
                order_done(g, +1)  # restores the pointers that may have passed g
                waiting[0] -= fates[g][0] != "drained"
                return False
            order_done(g, -1)
        if values:
            nv, mv = needv[g], makev[g]
            if g >= m and ns != old and needs[ns] == 0 and uexp[ns] == 0 and fexp[old] == 0:
                if ordered and fates[g] is not None:
                    order_done(g, +1)
                return False
            xv = xexpv[g]
            if xv is not _NOVAL:
                (uexp if g >= m else fexp)[xv] -= 1
            if nv is not _NOVAL:
                needs[nv] -= 1
            if mv is not _NOVAL:
                makes[mv] -= 1
            if ns != old and needs[old] > 0 and makes[old] == 0:
                if ordered and fates[g] is not None:
                    order_done(g, +1)
                if xv is not _NOVAL:
                    (uexp if g >= m else fexp)[xv] += 1
                if nv is not _NOVAL:
                    needs[nv] += 1
                if mv is not _NOVAL:
                    makes[mv] += 1
                return False
        return True

    while True:
        iterations += 1
        if iterations & 1023 == 0 and deadline is not None and time.monotonic() > deadline:
            return _Outcome(None, len(cache), best_rank, None, best_states, by_return)
        if nxt[HEAD] == END:
            return _Outcome(True, len(cache), best_rank, None, best_states, by_return)
        dead = False
        if fresh:
            # Pass 1: an "eager" op that is possible now may be linearized now without
            # loss of generality (e.g. a read that matches: moving it earlier changes
            # nothing), so this configuration lives or dies with that one child.
            e = nxt[HEAD]
            cands = []
            forced = -1
            while not e & 1:
                g = e >> 1
                if eager[g]:
                    ns = step(state, ops[g])
                    if ns is not _BAD:
                        forced = g
                        break
                else:
                    cands.append(g)
                e = nxt[e]
            if forced < 0:
                frontier = e
                if force_unknown is not None and force_unknown(state):
                    tf = times[e]
                    for j in range(u):
                        if ucall[j] > tf:
                            break
                        g = m + j
                        if forceable[j] and not lin & bits[g]:
                            ns = step(state, ops[g])
                            if ns is not _BAD:
                                forced = g
                            break
            if forced >= 0:
                key = (lin | bits[forced], ns)
                if key in cache or not allowed(forced, state, ns):
                    dead = True
                else:
                    stack.append((forced, state, True, None, 0, END))
                    lin, state = key
                    cache.add(key)
                    if forced < m:
                        c, rr = 2 * forced, 2 * forced + 1
                        nxt[prv[c]] = nxt[c]
                        prv[nxt[c]] = prv[c]
                        nxt[prv[rr]] = nxt[rr]
                        if nxt[rr] != END:
                            prv[nxt[rr]] = prv[rr]
                    continue
            else:
                # The unknown ops called by now join the candidates (after the ok ones,
                # unless the model orders them). An unknown op that would change nothing
                # here is never needed here: that is the same as it not happening.
                tf = times[e]
                for j in range(u):
                    if ucall[j] > tf:
                        break
                    g = m + j
                    if not lin & bits[g] and (usym[j] < 0 or lin & bits[usym[j]]):
                        cands.append(g)
                if prio is not None:
                    cands.sort(key=prio.__getitem__)
                ci = 0
                fresh = False

        if not dead:
            # Pass 2: branch on the candidates.
            progressed = False
            nc = len(cands)
            while ci < nc:
                g = cands[ci]
                ci += 1
                ns = step(state, ops[g])
                if ns is _BAD or (g >= m and ns == state):
                    continue
                key = (lin | bits[g], ns)
                if key not in cache and allowed(g, state, ns):
                    stack.append((g, state, False, cands, ci, frontier))
                    lin, state = key
                    cache.add(key)
                    if g < m:
                        c, rr = 2 * g, 2 * g + 1
                        nxt[prv[c]] = nxt[c]
                        prv[nxt[c]] = prv[c]
                        nxt[prv[rr]] = nxt[rr]
                        if nxt[rr] != END:
                            prv[nxt[rr]] = prv[rr]
                    progressed = True
                    break
            if progressed:
                fresh = True
                continue
            # This configuration is exhausted: nothing gets past its frontier.
            fr = rank[frontier >> 1]
            if fr > best_rank:
                best_rank, best_states = fr, [state]
            elif fr == best_rank and len(best_states) < states_max and state not in best_states:
                best_states.append(state)

        # Backtrack; a configuration whose forced child failed fails with it.
        while True:
            if not stack:
                block = by_return[best_rank] if best_rank >= 0 else None
                return _Outcome(False, len(cache), best_rank, block, best_states, by_return)
            g, state, forced, cands, ci, frontier = stack.pop()
            lin &= ~bits[g]
            if monotone and g in flpos:
                lo_f[0] = min(lo_f[0], flpos[g])
            if ordered and fates[g] is not None:
                order_done(g, +1)
            if values:
                if xexpv[g] is not _NOVAL:
                    (uexp if g >= m else fexp)[xexpv[g]] += 1
                if needv[g] is not _NOVAL:
                    needs[needv[g]] += 1
                if makev[g] is not _NOVAL:
                    makes[makev[g]] += 1
            if g < m:
                c, rr = 2 * g, 2 * g + 1
                nxt[prv[rr]] = rr
                if nxt[rr] != END:
                    prv[nxt[rr]] = rr
                nxt[prv[c]] = c
                prv[nxt[c]] = c
            if not forced:
                break
        fresh = False


# -- results and explanations ------------------------------------------------------

class Result:
    """The verdict for one key.

    ok: True (a linearization was found), False (proven not linearizable), None
    (inconclusive: a search ran out of time; never a pass that was not proven).
    """

    def __init__(self, key, model, ok, explanation, stats, culprit=None, window=None):
        self.key = key
        self.model = model
        self.ok = ok
        self.explanation = explanation
        self.stats = stats
        self.culprit = culprit  # the op whose return no linearization reaches
        self.window = window or []  # the ops shown in the explanation

    @property
    def verdict(self):
        return {True: "OK", False: "VIOLATION", None: "INCONCLUSIVE"}[self.ok]

    def summary(self):
        s = self.stats
        extra = ""
        if s.get("possibly_lost"):
            extra = " possibly-lost=%d" % s["possibly_lost"]
        return "%-12s key=%s model=%s ops=%d unknown=%d dropped=%d states=%d %.2fs%s" % (
            self.verdict, self.key, self.model, s.get("ops", 0), s.get("unknown", 0),
            s.get("dropped", 0), s.get("states", 0), s.get("seconds", 0.0), extra)

    def __repr__(self):
        return "Result(%s)" % self.summary()


def _line(o):
    """1-based line of the op in the history file (position in the list + 1)."""
    return "?" if o.index is None else str(o.index + 1)


def _show(v):
    if isinstance(v, tuple):
        return json.dumps(list(v))
    return json.dumps(v)


def _fmt_state(model, state):
    if state is None and model.name in ("register", "cas-register"):
        return "missing (null)"
    return _show(state)


def timeline(ops, marks=None, width=40):
    """A table of ops sorted by call, with times relative to the first call and bars."""
    ops = sorted(ops, key=lambda o: (o.call, o.ret))
    if not ops:
        return ""
    marks = marks or {}
    t0 = min(o.call for o in ops)
    finite_ends = [o.ret for o in ops if o.ret != INF] + [o.call for o in ops]
    t1 = max(finite_ends)
    span = (t1 - t0) or 1e-9
    rows = [("", "line", "client", "f", "input", "output", "call ms", "return ms", "status", "")]
    for o in ops:
        a = int((o.call - t0) / span * (width - 1))
        if o.ret == INF:
            bar = " " * a + "[" + "-" * (width - 1 - a) + ">"
        else:
            b = int((o.ret - t0) / span * (width - 1))
            bar = " " * a + ("[" + "=" * max(0, b - a - 1) + "]" if b > a else "|")
            bar = bar.ljust(width + 1)
        out = "?" if o.unknown else _show(o.output)
        if o.f in ("write", "enqueue") and not o.unknown:
            out = "-"
        rows.append((marks.get(id(o), ""), _line(o), str(o.client), o.f,
                     "-" if o.input is None else _show(o.input), out,
                     "%.3f" % ((o.call - t0) * 1e3),
                     "never" if o.ret == INF else "%.3f" % ((o.ret - t0) * 1e3), o.status,
                     "|" + bar + "|"))
    cols = len(rows[0])
    w = [max(len(r[i]) for r in rows) for i in range(cols)]
    w = [min(x, 24) for x in w[:-1]] + [w[-1]]  # long values are cut with ~
    lines = []
    for r in rows:
        cells = []
        for i, c in enumerate(r):
            if i < cols - 1 and len(c) > w[i]:
                c = c[:w[i] - 1] + "~"
            cells.append(c.rjust(w[i]) if i in (1, 2, 6, 7) else c.ljust(w[i]))
        lines.append("  ".join(cells).rstrip())
    return "time 0 = %.6f (monotonic seconds)\n" % t0 + "\n".join(lines)


def _prefix(ops_all, by_return, k):
    """H(k): the first k+1 ok ops by return, and every other op called by then, pending."""
    cut = by_return[k].ret
    keep = {id(o) for o in by_return[:k + 1]}
    out = []
    for o in ops_all:
        if o.status == "fail" or o.call > cut:
            continue
        out.append(o if id(o) in keep else (o if o.unknown else o.as_unknown()))
    return out


def _window(model, culprit, ops_all, states, limit=24):
    """The ops to show around the culprit: the ones concurrent with it, the last ones
    that returned before it was called, and the writes of the values involved."""
    live = [o for o in ops_all if o.status != "fail" and o is not culprit]
    conc = [o for o in live if o.call <= culprit.ret and o.ret >= culprit.call]
    conc.sort(key=lambda o: abs(o.call - culprit.call))
    before = sorted((o for o in live if o.ret < culprit.call), key=lambda o: o.ret)[-6:]
    related = []
    vals = set()
    if model.name in ("register", "cas-register"):
        for v in (model.need(culprit), culprit.output if culprit.f == "read" else _NOVAL):
            if v is not _NOVAL:
                vals.add(v)
        for s in states:
            vals.add(s)
        for v in vals:
            ws = [o for o in live if model.make(o) == v and o.call <= culprit.ret]
            related += sorted(ws, key=lambda o: o.call)[-2:]
    elif model.name == "queue" and culprit.f == "dequeue" and culprit.output is not None:
        related += [o for o in live if o.f == "enqueue" and o.input == culprit.output]
    # Unknown ops overlap everything after their call: show the old ones only when
    # they write a value involved.
    start = min([o.call for o in before + conc if not o.unknown] + [culprit.call])
    rel = {id(o) for o in related}
    conc = [o for o in conc if not o.unknown or o.call >= start or id(o) in rel]
    chosen = []
    seen = set()
    for o in [culprit] + related + before + conc:
        if id(o) not in seen:
            seen.add(id(o))
            chosen.append(o)
    return chosen[:limit]


def _describe(o):
    s = "client %s %s" % (o.client, o.f)
    if o.input is not None:
        s += " %s" % _show(o.input)
    if not o.unknown and o.f not in ("write", "enqueue"):
        s += " -> %s" % _show(o.output)
    return s + " (line %s)" % _line(o)


def _explain_search(model, ops_all, full, deadline):
    """Finds the shortest non-linearizable prefix and the states just before it."""
    by_return = full.order
    m = len(by_return)
    lo = max(full.block_rank, 0)  # every config of the full search got stuck at or before
    exact = False
    k = m - 1
    try:
        # H(k) is monotone in k: once not linearizable, it stays so. The pruned full
        # search's furthest frontier is a lower bound; probe upward, then bisect.
        good, bad = lo - 1, None
        step_k = 1
        probe = lo
        while probe < m - 1:
            out = _check_prepared(model, _prefix(ops_all, by_return, probe), deadline)
            if out.ok is None:
                raise _TimeUp()
            if out.ok:
                good = probe
                probe = min(m - 1, probe + step_k)
                step_k *= 2
            else:
                bad = probe
                break
        if bad is None:
            bad = m - 1
        while bad - good > 1:
            mid = (good + bad) // 2
            out = _check_prepared(model, _prefix(ops_all, by_return, mid), deadline)
            if out.ok is None:
                raise _TimeUp()
            if out.ok:
                good = mid
            else:
                bad = mid
        k = bad
        culprit = by_return[k]
        # The states every config reaches when only the culprit is left to linearize
        # (the culprit's own requirement does not prune these configs).
        hk = _prefix(ops_all, by_return, k)
        p = model.prepare(hk)
        out = _search(model, p.finite, p.unknown, deadline, skip_need=culprit)
        if out.ok is None:
            raise _TimeUp()
        states = out.block_states if out.block_op is culprit else []
        exact = True
    except _TimeUp:
        culprit = full.block_op
        states = full.block_states
    return culprit, states, exact


def _check_prepared(model, ops, deadline):
    p = model.prepare(ops)
    if p.violations:
        return _Outcome(False, 0, -1, None, [], [])
    return _search(model, p.finite, p.unknown, deadline)


def _queue_checks(ops):
    """The cheap queue invariants: violations (message, ops) and the possibly-lost count.

    Sound without the search: each listed pattern is impossible in any FIFO queue."""
    out = []
    ok = [o for o in ops if o.status == "ok"]
    enq = [o for o in ops if o.f == "enqueue" and o.status != "fail"]
    enq_by_val = {}
    for o in enq:
        if o.input in enq_by_val:
            return out, 0, False
        enq_by_val[o.input] = o
    deqs = [o for o in ok if o.f == "dequeue" and o.output is not None]
    drains = [o for o in ok if o.f == "drain"]
    if len(drains) > 1:
        out.append(("more than one drain", drains))
    removed_by = {}  # value -> the ok dequeue that returned it
    for d in deqs:
        v = d.output
        if v in removed_by:
            out.append(("value %s dequeued twice" % _show(v), [enq_by_val.get(v), removed_by[v], d]))
            continue
        removed_by[v] = d
        e = enq_by_val.get(v)
        if e is None:
            out.append(("dequeued value %s was never enqueued" % _show(v), [d]))
        elif d.ret < e.call:
            out.append(("value %s dequeued before its enqueue started" % _show(v), [e, d]))
    drained = {}
    for dr in drains:
        for v in dr.output:
            if v in drained:
                out.append(("value %s twice in the drain" % _show(v), [dr]))
            drained[v] = dr
            if v in removed_by:
                out.append(("value %s dequeued and still in the drain" % _show(v),
                            [enq_by_val.get(v), removed_by[v], dr]))
            elif v not in enq_by_val:
                out.append(("drained value %s was never enqueued" % _show(v), [dr]))
    possibly_lost = 0
    if drains:
        unknown_deq = sum(1 for o in ops if o.f == "dequeue" and o.unknown)
        missing = [e for e in enq if e.status == "ok" and e.input not in removed_by
                   and e.input not in drained]
        if len(missing) > unknown_deq:
            out.append(("%d ok-enqueued values neither dequeued nor drained, and only %d "
                        "unknown dequeues could have taken them" % (len(missing), unknown_deq),
                        missing[:8]))
        else:
            possibly_lost = len(missing)
    # FIFO order: a's enqueue returned before b's was called, so a is ahead of b; b was
    # dequeued, yet a was dequeued only after b's dequeue returned, or a is still there.
    def removal_start(v):
        if v in removed_by:
            return removed_by[v].call
        if v in drained:
            return INF
        return None  # unknown: an unknown dequeue may have taken it
    okenq = sorted((e for e in enq if e.status == "ok"), key=lambda e: e.ret)
    removable = [(e, removal_start(e.input)) for e in okenq]
    fifo = []
    by_call = sorted((e for e in enq if e.input in removed_by), key=lambda e: e.call)
    i, best, witness = 0, -INF, None
    for b in by_call:
        while i < len(removable) and removable[i][0].ret < b.call:
            a, start = removable[i]
            if start is not None and start > best:
                best, witness = start, a
            i += 1
        if witness is not None and best > removed_by[b.input].ret:
            a = witness
            fifo.append(("FIFO order violated: %s was enqueued before %s, but %s" % (
                _show(a.input), _show(b.input),
                "was still there in the drain" if a.input not in removed_by else
                "was dequeued after it"), [a, b, removed_by.get(a.input), removed_by[b.input]]))
    # An empty dequeue while some value was surely in the queue the whole time.
    empties = sorted((o for o in ok if o.f == "dequeue" and o.output is None), key=lambda o: o.call)
    i, best, witness = 0, -INF, None
    for d in empties:
        while i < len(removable) and removable[i][0].ret < d.call:
            a, start = removable[i]
            if start is not None and start > best:
                best, witness = start, a
            i += 1
        if witness is not None and best > d.ret:
            fifo.append(("dequeue returned empty while %s was surely in the queue" %
                         _show(witness.input), [witness, d, removed_by.get(witness.input)]))
    out += fifo
    out = [(msg, [o for o in group if o is not None]) for msg, group in out]
    return out, possibly_lost, True


def check_key(ops, model=None, time_limit=None, key=None):
    """Checks the history of one key. ops: Op objects or record dicts (fail ops allowed)."""
    t_start = time.monotonic()
    ops = _as_ops(ops)
    if key is None and ops:
        key = ops[0].key
    if isinstance(model, str):
        model = _model_by_name(model)
    elif model is None:
        model = choose_model(ops)
    deadline = None if time_limit is None else t_start + time_limit
    stats = {"ops": len(ops), "ok": sum(o.status == "ok" for o in ops),
             "unknown": sum(o.unknown for o in ops), "fail": sum(o.status == "fail" for o in ops)}
    p = model.prepare(ops)
    stats["dropped"] = p.dropped
    notes = list(p.notes)
    violations = list(p.violations)
    if model.name == "queue":
        qv, lost, unique = _queue_checks(ops)
        violations += qv
        stats["possibly_lost"] = lost
        if lost:
            notes.append("%d ok-enqueued values are neither dequeued nor drained; as many "
                         "unknown dequeues may have taken them (possibly lost)" % lost)
        if not any(o.f == "drain" and o.status == "ok" for o in ops):
            notes.append("no drain: lost values are not checked")

    def done(ok, text, culprit=None, window=None):
        stats["seconds"] = time.monotonic() - t_start
        head = "key %s (%s): %s" % (_show(key), model.name, {
            True: "linearizable", False: "NOT linearizable",
            None: "inconclusive"}[ok])
        body = [head] + (["  note: " + n for n in notes]) + ([text] if text else [])
        return Result(key, model.name, ok, "\n".join(body), stats, culprit, window)

    if violations:
        parts = []
        window = []
        for msg, group in violations[:10]:
            parts.append("  " + msg + ":")
            parts += ["    " + line for line in timeline(group).splitlines()]
            window += [o for o in group if o not in window]
        if len(violations) > 10:
            parts.append("  ... and %d more" % (len(violations) - 10))
        stats["states"] = 0
        return done(False, "\n".join(parts), violations[0][1][0] if violations[0][1] else None,
                    window)

    out = _search(model, p.finite, p.unknown, deadline)
    stats["states"] = out.explored
    if out.ok is True:
        return done(True, "")
    if out.ok is None:
        return done(None, "  the search exceeded its time limit (%.1fs) after %d states; "
                    "nothing was proven" % (time_limit, out.explored))
    budget = max(10.0, time_limit or 30.0)
    culprit, states, exact = _explain_search(model, ops, out, time.monotonic() + budget)
    window = _window(model, culprit, ops, states) if culprit is not None else []
    marks = {id(culprit): ">>"} if culprit is not None else {}
    lines = []
    if culprit is not None:
        if exact:
            lines.append("  The history up to the return of this operation cannot be "
                         "linearized (every shorter prefix can):")
        else:
            lines.append("  (explanation search timed out: approximate) No linearization "
                         "gets past the return of:")
        lines.append("    " + _describe(culprit))
        if states:
            try:
                states = sorted(states)
            except TypeError:
                pass
            shown = ", ".join(_fmt_state(model, s) for s in states[:8])
            more = " (and more)" if len(states) > 8 else ""
            lines.append("  With every operation that returned before it linearized, the "
                         "state can only be: " + shown + more)
        lines.append("  Operations around it (>> marks it; an unknown op may take effect "
                     "anywhere from its call on):")
        lines += ["    " + line for line in timeline(window, marks).splitlines()]
    return done(False, "\n".join(lines), culprit, window)


def check_history(ops, time_limit_per_key=None):
    """Checks every key of a history separately: dict key -> Result."""
    ops = _as_ops(ops)
    by_key = defaultdict(list)
    for o in ops:
        by_key[o.key].append(o)
    return {k: check_key(v, time_limit=time_limit_per_key, key=k) for k, v in by_key.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check a JSON-lines history for linearizability, "
                                             "key by key.")
    ap.add_argument("history")
    ap.add_argument("--time-limit", type=float, default=60.0,
                    help="seconds per key for the search (0: no limit); default 60")
    ap.add_argument("--key", action="append", help="check only this key (repeatable)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only keys that fail")
    args = ap.parse_args(argv)
    try:
        ops = load_history(args.history)
    except (OSError, ValueError) as e:
        print("lincheck: %s" % e, file=sys.stderr)
        return 2
    by_key = defaultdict(list)
    for o in ops:
        by_key[o.key].append(o)
    keys = args.key if args.key else list(by_key)
    counts = {True: 0, False: 0, None: 0}
    t0 = time.monotonic()
    for k in keys:
        try:
            r = check_key(by_key.get(k, []), time_limit=args.time_limit or None, key=k)
        except ValueError as e:
            print("lincheck: key %s: %s" % (_show(k), e), file=sys.stderr)
            return 2
        counts[r.ok] += 1
        if r.ok is not True or not args.quiet:
            print(r.summary())
        if r.ok is not True:
            print(r.explanation)
        sys.stdout.flush()
    print("%d keys, %d ops: %d linearizable, %d violations, %d inconclusive (%.1fs)" % (
        len(keys), len(ops), counts[True], counts[False], counts[None], time.monotonic() - t0))
    if counts[False]:
        return 1
    if counts[None]:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
