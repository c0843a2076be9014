"""A cluster of real quorumkv processes, each in its own network namespace.

    with NetCluster(3) as c:
        c.wait_leader()
        c.isolate([c.nodes[0]], c.nodes[1:])   # iptables in the nodes' namespaces
        c.heal()

Network layout (when run as root with `ip` and `iptables`): one Linux bridge in
the root namespace holding 10.X.Y.1/24, and per node a namespace
`qkv<pid>-<tag>-<i>` joined to the bridge by a veth pair, with address
10.X.Y.(10+i). The subnet and the tag are chosen per cluster so concurrent
runs do not collide. Every node listens on fixed ports inside its own
namespace (nothing else can be there); clients connect from the root
namespace. A partition is a set of `iptables -A INPUT -s PEER -j DROP` rules
inside the nodes' namespaces: client traffic (from 10.X.Y.1) is never cut.

Without namespaces (not root, tools missing, or QKV_E2E_NO_NETNS=1) the nodes
run on 127.0.0.1 with free ports and `partitions_available` is False: every
partition call raises PartitionUnavailable.

Cleanup: processes are killed by pid, then namespaces and the bridge are
deleted and the temporary folder removed, on normal exit, on an exception,
at interpreter exit and on SIGINT/SIGTERM (callers that install their own
handlers should raise from them so `stop()` runs). Namespaces left by a
harness process that died (kill -9) are removed by the next NetCluster.
"""
import atexit
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time

import redis

from harness import BINARY, free_ports

CLIENT_PORT = 7379
PEER_PORT = 7380
HTTP_PORT = 7480

_live_clusters = []


class PartitionUnavailable(RuntimeError):
    pass


def _run(args, check=True, timeout=10):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr.strip()))
    return r


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def netns_unavailable_reason():
    """None if network namespaces can be used here, else why not."""
    if os.environ.get("QKV_E2E_NO_NETNS") == "1":
        return "QKV_E2E_NO_NETNS=1"
    if os.geteuid() != 0:
        return "not root (network namespaces and iptables need CAP_NET_ADMIN)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return "%s not installed (Debian packages iproute2, iptables)" % tool
    return None


_NS_RE = re.compile(r"^qkv(\d+)-([0-9a-f]{6})-\d+$")


def cleanup_stale():
    """Deletes namespaces (and their bridge) whose owning harness process is gone."""
    r = _run(["ip", "netns", "list"], check=False)
    tags = set()
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NS_RE.match(name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        # Processes left inside belong to that dead harness run: kill them by pid.
        pids = _run(["ip", "netns", "pids", name], check=False).stdout.split()
        for p in pids:
            try:
                os.kill(int(p), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        _run(["ip", "netns", "del", name], check=False)
        tags.add(m.group(2))
    links = _run(["ip", "-o", "link"], check=False).stdout
    for tag in tags:
        for m in re.finditer(r"\b(qk%sh\d+)@" % tag, links):
            _run(["ip", "link", "del", m.group(1)], check=False)
        _run(["ip", "link", "del", "qkb" + tag], check=False)


class Network:
    """The bridge, the namespaces and the veth pairs of one cluster."""

    def __init__(self, n):
        self.n = n
        rnd = random.Random("%d-%d-%f" % (os.getpid(), id(self), time.time()))
        existing = _run(["ip", "-o", "link"], check=False).stdout
        routes = _run(["ip", "-4", "route"], check=False).stdout + \
            _run(["ip", "-4", "addr"], check=False).stdout
        for _ in range(1000):
            self.tag = "%06x" % rnd.getrandbits(24)
            a, b = 100 + rnd.randrange(140), rnd.randrange(256)
            prefix = "10.%d.%d" % (a, b)
            if ("qkb" + self.tag) not in existing and (prefix + ".") not in routes:
                break
        else:
            raise RuntimeError("no free 10.x.y.0/24 subnet")
        self.prefix = prefix
        self.host_ip = prefix + ".1"
        self.bridge = "qkb" + self.tag
        self.ns = ["qkv%d-%s-%d" % (os.getpid(), self.tag, i + 1) for i in range(n)]
        self.ips = ["%s.%d" % (prefix, 10 + i + 1) for i in range(n)]
        self.created_ns = []
        self.bridge_created = False

    def setup(self):
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        self.bridge_created = True
        _run(["ip", "addr", "add", self.host_ip + "/24", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])
        for i in range(self.n):
            ns = self.ns[i]
            host_end, node_end = "qk%sh%d" % (self.tag, i + 1), "qk%sn%d" % (self.tag, i + 1)
            _run(["ip", "netns", "add", ns])
            self.created_ns.append(ns)
            _run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
            _run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", node_end])
            _run(["ip", "link", "set", node_end, "netns", ns])
            _run(["ip", "link", "set", host_end, "master", self.bridge])
            _run(["ip", "link", "set", host_end, "up"])
            _run(["ip", "netns", "exec", ns, "ip", "addr", "add", self.ips[i] + "/24", "dev",
                  node_end])
            _run(["ip", "netns", "exec", ns, "ip", "link", "set", node_end, "up"])

    def teardown(self):
        # The host ends are deleted explicitly (which destroys each pair): a deleted
        # namespace can outlive `ip netns del` for a while, and its veth with it.
        for i in range(self.n):
            _run(["ip", "link", "del", "qk%sh%d" % (self.tag, i + 1)], check=False)
        for ns in self.created_ns:
            _run(["ip", "netns", "del", ns], check=False)
        self.created_ns = []
        if self.bridge_created:
            _run(["ip", "link", "del", self.bridge], check=False)
            self.bridge_created = False

    def iptables(self, i, *args):
        _run(["ip", "netns", "exec", self.ns[i], "iptables", "-w", "5"] + list(args))

    def drop_input(self, i, src_ips):
        for ip in src_ips:
            self.iptables(i, "-A", "INPUT", "-s", ip, "-j", "DROP")

    def rules(self, i):
        return _run(["ip", "netns", "exec", self.ns[i], "iptables", "-w", "5", "-S", "INPUT"],
                    check=False).stdout

    def heal(self):
        for i in range(self.n):
            self.iptables(i, "-F", "INPUT")


class NetNode:
    def __init__(self, cluster, index):
        self.cluster = cluster
        self.index = index
        self.name = "n%d" % (index + 1)
        self.dir = os.path.join(cluster.dir, self.name)
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(cluster.dir, self.name + ".log")
        net = cluster.net
        if net:
            self.ip = net.ips[index]
            self.client_port, self.peer_port, self.http_port = CLIENT_PORT, PEER_PORT, HTTP_PORT
        else:
            self.ip = "127.0.0.1"
            self.client_port, self.peer_port, self.http_port = free_ports(3)
        self.proc = None
        self.paused = False
        self.incarnation = 0
        self.id = None

    def __repr__(self):
        return self.name

    @property
    def peer_addr(self):
        return "%s:%d" % (self.ip, self.peer_port)

    def start(self, join=False, wait=True):
        """Starts the process (in the node's namespace); waits until it answers PING."""
        assert not self.alive(), "%s is running" % self.name
        os.makedirs(self.dir, exist_ok=True)
        self.incarnation += 1
        args = [BINARY, "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client", "%s:%d" % (self.ip, self.client_port),
                "--listen-peer", "%s:%d" % (self.ip, self.peer_port),
                "--listen-http", "%s:%d" % (self.ip, self.http_port),
                "--initial-cluster", self.cluster.initial_cluster(),
                "--tick-ms", str(self.cluster.tick_ms)] + list(self.cluster.extra)
        if join:
            args.append("--join")
        if self.cluster.net:
            args = ["ip", "netns", "exec", self.cluster.net.ns[self.index]] + args
        with open(self.log_path, "ab") as log:
            log.write(("\n==== %s start #%d at %.3f: %s\n" % (
                self.name, self.incarnation, time.time(), " ".join(args))).encode())
            log.flush()
            # `ip netns exec` execs the binary: the pid is the server's own.
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.paused = False
        if not wait:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("node %s exited (%s): %s" % (self.name, self.proc.returncode,
                                                               self.log_tail()))
            try:
                if self.client(timeout=1).ping():
                    return
            except redis.exceptions.RedisError:
                time.sleep(0.05)
        raise RuntimeError("node %s did not start: %s" % (self.name, self.log_tail()))

    def kill(self, sig=signal.SIGKILL):
        if self.proc is None or self.proc.poll() is not None:
            return
        if sig in (signal.SIGKILL, signal.SIGTERM) and self.paused:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.paused = False

    def pause(self):
        self.kill(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def wipe(self):
        assert not self.alive()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self, timeout=2.0, **kw):
        return redis.Redis(host=self.ip, port=self.client_port, socket_timeout=timeout,
                           socket_connect_timeout=timeout, **kw)

    def info_raft(self, timeout=2.0):
        return self.client(timeout).info("raft")

    def status(self, timeout=2.0):
        """RAFT STATUS as a dict of str to int/str."""
        r = self.client(timeout).execute_command("RAFT", "STATUS")
        if isinstance(r, list):
            r = dict(zip(r[0::2], r[1::2]))
        return {(k.decode() if isinstance(k, bytes) else k):
                (v.decode() if isinstance(v, bytes) else v) for k, v in r.items()}

    def log_tail(self, n=3000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-n:]
        except OSError:
            return ""


class NetCluster:
    """n quorumkv processes; partitions when network namespaces are available."""

    def __init__(self, n=3, tick_ms=20, extra=(), workdir=None, use_netns=True):
        self.n = n
        self.tick_ms = tick_ms
        self.extra = list(extra)
        self.dir = workdir or tempfile.mkdtemp(prefix="qkv-net-")
        os.makedirs(self.dir, exist_ok=True)
        self.own_dir = workdir is None
        self.net = None
        reason = netns_unavailable_reason() if use_netns else "not asked for"
        if reason is None:
            try:
                cleanup_stale()
                self.net = Network(n)
                self.net.setup()
            except Exception as e:  # noqa: BLE001 - any failure means: no namespaces
                if self.net:
                    self.net.teardown()
                self.net = None
                reason = "cannot create network namespaces: %s" % e
        self.no_netns_reason = reason
        self.partitions_available = self.net is not None
        self.nodes = [NetNode(self, i) for i in range(n)]
        self.members = list(self.nodes)  # voters we believe are in the configuration
        self._stopped = False
        _live_clusters.append(self)

    # -- lifecycle

    def initial_cluster(self):
        return ",".join("%s=%s" % (x.name, x.peer_addr) for x in self.nodes)

    def start(self):
        try:
            for node in self.nodes:
                node.start(wait=False)
            for node in self.nodes:
                self._wait_ping(node)
            for node in self.nodes:
                node.id = int(node.status()["id"])
            self.wait_leader()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ping(self, node, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.proc.poll() is not None:
                raise RuntimeError("node %s exited: %s" % (node.name, node.log_tail()))
            try:
                if node.client(timeout=1).ping():
                    return
            except redis.exceptions.RedisError:
                time.sleep(0.05)
        raise RuntimeError("node %s did not start: %s" % (node.name, node.log_tail()))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def stop(self, keep_dir=False):
        if self._stopped:
            return
        self._stopped = True
        for node in self.nodes:
            try:
                node.kill()
            except Exception:  # noqa: BLE001 - keep cleaning up
                pass
        if self.net:
            self.net.teardown()
        if self in _live_clusters:
            _live_clusters.remove(self)
        if os.environ.get("QKV_E2E_KEEP"):
            print("cluster files kept in", self.dir)
        elif self.own_dir and not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def node_by_id(self, node_id):
        for n in self.nodes:
            if n.id == node_id:
                return n
        return None

    # -- leaders and convergence

    def leader(self, candidates=None):
        """The live, unpaused node that reports itself leader with the highest term."""
        best = None
        for node in candidates or self.nodes:
            if not node.alive() or node.paused:
                continue
            try:
                info = node.info_raft(timeout=1)
            except redis.exceptions.RedisError:
                continue
            if info.get("raft_role") == "leader":
                if best is None or info.get("raft_term", 0) > best[0]:
                    best = (info.get("raft_term", 0), node)
        return best[1] if best else None

    def wait_leader(self, timeout=20, candidates=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader(candidates)
            if leader is not None:
                return leader
            time.sleep(0.1)
        raise RuntimeError("no leader within %ss" % timeout)

    def wait_converged(self, timeout=60):
        """Waits until every node of the cluster is a voter, runs, and all have applied the
        same index, equal to the commit index. Returns that index."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                leader = self.leader()
                if leader is None:
                    last = "no leader"
                    time.sleep(0.2)
                    continue
                members = leader.client(2).execute_command("RAFT", "MEMBERS")
                members = [m.decode() for m in members]
                voters = [m for m in members if "role=voter " in m + " "]
                if len(voters) != self.n or len(members) != self.n:
                    last = "members: %s" % members
                    time.sleep(0.2)
                    continue
                infos = {n.name: n.info_raft(timeout=2) for n in self.nodes}
                applied = {k: v["raft_applied_index"] for k, v in infos.items()}
                commit = {k: v["raft_commit_index"] for k, v in infos.items()}
                if len(set(applied.values())) == 1 and set(applied.values()) == set(commit.values()):
                    return next(iter(applied.values()))
                last = "applied %s commit %s" % (applied, commit)
            except redis.exceptions.RedisError as e:
                last = "error: %s" % e
            time.sleep(0.2)
        raise RuntimeError("the cluster did not converge within %ss (last: %s)" % (timeout, last))

    # -- partitions

    def need_partitions(self):
        if not self.net:
            raise PartitionUnavailable("partitions are unavailable: %s" % self.no_netns_reason)

    def drop(self, dst, srcs):
        """dst stops receiving packets from every node in srcs (one way)."""
        self.need_partitions()
        self.net.drop_input(dst.index, [s.ip for s in srcs if s is not dst])

    def isolate(self, side_a, side_b):
        """Cuts every link between the two groups, both ways."""
        for a in side_a:
            self.drop(a, side_b)
        for b in side_b:
            self.drop(b, side_a)

    def partition(self, groups):
        """Nodes talk only to nodes of their own group (groups may share nodes: a bridge)."""
        self.need_partitions()
        for node in self.nodes:
            mine = set()
            for g in groups:
                if node in g:
                    mine.update(g)
            self.drop(node, [x for x in self.nodes if x not in mine])

    def heal(self):
        if self.net:
            self.net.heal()

    def rules(self):
        if not self.net:
            return {}
        return {n.name: self.net.rules(n.index) for n in self.nodes}


def _stop_all():
    for c in list(_live_clusters):
        try:
            c.stop()
        except Exception:  # noqa: BLE001
            pass


atexit.register(_stop_all)


def state_digest(node, timeout=5.0, readonly=True):
    """(applied_index_before, digest, keys, applied_index_after) of one node's state, read
    with a READONLY connection (local state, no read barrier): SCAN, then a type-specific
    read of every key. Equal digests at equal applied indexes mean equal states."""
    conn = redis.Redis(host=node.ip, port=node.client_port, socket_timeout=timeout,
                       single_connection_client=True)
    try:
        before = conn.info("raft")["raft_applied_index"]
        if readonly:
            conn.execute_command("READONLY")
        keys = []
        cursor = 0
        while True:
            cursor, batch = conn.scan(cursor, count=1000)
            keys.extend(batch)
            if int(cursor) == 0:
                break
        h = hashlib.sha256()
        for k in sorted(keys):
            t = conn.type(k)
            if t == b"string":
                v = [conn.get(k)]
            elif t == b"list":
                v = conn.lrange(k, 0, -1)
            elif t == b"hash":
                v = sorted(conn.hgetall(k).items())
            elif t == b"set":
                v = sorted(conn.smembers(k))
            else:
                v = [b"?"]
            h.update(repr((k, t, v)).encode())
        after = conn.info("raft")["raft_applied_index"]
        return before, h.hexdigest(), len(keys), after
    finally:
        conn.close()


def raft_digest(node, timeout=5.0):
    """(applied_index, hex digest) from `RAFT DIGEST`, or None if the server lacks it."""
    try:
        r = node.client(timeout).execute_command("RAFT", "DIGEST")
    except redis.exceptions.ResponseError as e:
        if "unknown subcommand" in str(e).lower() or "unknown command" in str(e).lower():
            return None
        raise
    idx, dig = r[0], r[1]
    return int(idx), dig.decode() if isinstance(dig, bytes) else str(dig)
