"""Starts and stops real quorumkv processes for end-to-end tests.

Every test cluster binds 127.0.0.1 on free ports, keeps its data in its own
temporary folder, bounds every wait, and kills the processes it started (by
pid) when it stops, even after a failure.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("QKV_BINARY", os.path.join(ROOT, "build", "quorumkv"))


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (bound then released)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Node:
    def __init__(self, cluster, name, client_port, peer_port, http_port):
        self.cluster = cluster
        self.name = name
        self.client_port = client_port
        self.peer_port = peer_port
        self.http_port = http_port
        self.data_dir = os.path.join(cluster.dir, name)
        self.log_path = os.path.join(cluster.dir, name + ".log")
        self.proc = None

    def start(self, extra=()):
        args = [BINARY, "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client", "127.0.0.1:%d" % self.client_port,
                "--listen-peer", "127.0.0.1:%d" % self.peer_port,
                "--listen-http", "127.0.0.1:%d" % self.http_port,
                "--initial-cluster", self.cluster.initial_cluster(self),
                "--tick-ms", str(self.cluster.tick_ms)] + list(self.cluster.extra) + list(extra)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("node %s exited: %s" % (self.name, self.log()))
            try:
                if self.client().ping():
                    return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("node %s did not start: %s" % (self.name, self.log()))

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.proc.wait(timeout=10)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self, **kw):
        kw.setdefault("socket_timeout", 10)
        kw.setdefault("password", self.cluster.password)
        return redis.Redis(host="127.0.0.1", port=self.client_port, **kw)

    def info(self, section="raft"):
        return self.client().info(section)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-3000:]
        except OSError:
            return ""


class Cluster:
    """A local cluster of n quorumkv processes."""

    def __init__(self, n=3, tick_ms=20, extra=(), start=None, password=None):
        self.dir = tempfile.mkdtemp(prefix="qkv-e2e-")
        self.password = password  # given with --requirepass in extra
        self.tick_ms = tick_ms
        self.extra = list(extra)
        ports = free_ports(3 * n)
        self.nodes = [Node(self, "n%d" % (i + 1), ports[3 * i], ports[3 * i + 1], ports[3 * i + 2])
                      for i in range(n)]
        # The founding members: the first `start` nodes (the rest join later).
        self.founders = self.nodes[:start] if start else self.nodes

    def initial_cluster(self, node=None):
        members = list(self.founders)
        if node is not None and node not in members:
            members.append(node)  # a joining node lists the founders and itself
        return ",".join("%s=127.0.0.1:%d" % (x.name, x.peer_port) for x in members)

    def __enter__(self):
        try:
            for node in self.founders:
                node.start()
            self.wait_leader()
        except Exception:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        for node in self.nodes:
            try:
                node.kill()
            except Exception:
                pass
        if os.environ.get("QKV_E2E_KEEP"):
            print("e2e data kept in", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def leader(self):
        """The node every live node agrees leads, or None."""
        for node in self.nodes:
            if not node.alive():
                continue
            try:
                if node.info("raft").get("raft_role") == "leader":
                    return node
            except redis.exceptions.RedisError:
                pass
        return None

    def wait_leader(self, timeout=15, exclude=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            leader = self.leader()
            if leader is not None and leader is not exclude:
                return leader
            time.sleep(0.05)
        raise RuntimeError("no leader within %ss; logs:\n%s" %
                           (timeout, "\n".join(n.name + ": " + n.log() for n in self.nodes)))

    def followers(self):
        leader = self.leader()
        return [n for n in self.nodes if n is not leader and n.alive()]
