#!/usr/bin/python3
"""Fault-injection runs against a real quorumkv cluster (Jepsen style).

    /usr/bin/python3 tests/e2e/jepsen.py --nodes 3 --workload all --nemesis all \\
        --time 60 --runs 10 --clients 10 --seed 1

Each run: start a cluster (each node in its own network namespace), run
`--clients` clients against random nodes for `--time` seconds while the
nemesis injects faults, then heal everything, wait for a leader and for every
node to apply the same index, read every key through the leader (the final
reads go into the history), and check:
  1. each key's history is linearizable (tests/e2e/lincheck.py);
  2. no acknowledged write is lost (the final reads are part of the histories;
     plus cheap independent checks in workloads.sanity_check);
  3. every replica has the same state (RAFT DIGEST when the server has it,
     and a digest of each node's local state read with READONLY).
The run's folder (history.jsonl, nemesis.log, node logs, summary.json) is
kept and printed when something fails (or always with --keep). Exit status:
0 when every run passed, 1 on any violation or failure.
Set QKV_BINARY to the server binary (default build/quorumkv).
"""
import argparse
import faulthandler
import json
import os
import random
import shutil
import signal
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import netcluster  # noqa: E402
from nemesis import KINDS, Nemesis  # noqa: E402
from workloads import (WORKLOADS, Client, History, ProcessIds, final_reads,  # noqa: E402
                       lock_stats, make_workloads, sanity_check)

try:
    import lincheck  # noqa: E402
except ImportError:
    lincheck = None


class Interrupted(BaseException):
    pass


def _on_signal(signum, frame):
    raise Interrupted("signal %d" % signum)


def nemesis_kinds(name, partitions_available):
    kinds = list(KINDS) if name == "all" else [name]
    if not partitions_available and "partition" in kinds:
        if os.environ.get("QKV_E2E_NO_NETNS") == "1":
            kinds.remove("partition")
    return kinds


def check_histories(ops, time_limit):
    """{key: (ok True/False/None, model, explanation)}; None when no checker exists."""
    if lincheck is None:
        return None
    # Bank keys hold transactions over several accounts: sanity_check checks
    # their totals; lincheck's per-key models do not apply. Nor to locks
    # (workloads.check_locks, through sanity_check).
    ops = [o for o in ops if not o["key"].startswith(("bank:", "lk:"))]
    results = lincheck.check_history(ops, time_limit_per_key=time_limit)
    return {k: (r.ok, getattr(r, "model", "?"), getattr(r, "explanation", ""))
            for k, r in results.items()}


def lists_supported(cluster):
    try:
        cluster.nodes[0].client(5).lrange("qkv-probe", 0, -1)
        return True
    except netcluster.redis.exceptions.ResponseError as e:
        if "unknown command" in str(e).lower():
            return False
        raise


def locks_supported(cluster):
    try:
        cluster.nodes[0].client(5).execute_command("LOCK.INFO", "qkv-probe")
        return True
    except netcluster.redis.exceptions.ResponseError as e:
        if "unknown command" in str(e).lower():
            return False
        raise


def digests(cluster):
    """Per node: state digest via READONLY reads, and RAFT DIGEST if served."""
    out = {}
    for n in cluster.nodes:
        term_before = n.info_raft()["raft_term"]
        before, dig, nkeys, after = netcluster.state_digest(n)
        rd = netcluster.raft_digest(n)
        term_after = n.info_raft()["raft_term"]
        out[n.name] = {"applied_before": before, "applied_after": after, "keys": nkeys,
                       "digest": dig, "raft_digest": rd, "terms": (term_before, term_after)}
    return out


def one_run(args, run_index, run_dir):
    """Returns the summary dict of one run; summary["failures"] lists what went wrong."""
    seed = args.seed + run_index
    rng = random.Random(seed)
    wl_names = list(WORKLOADS) if args.workload == "all" else [args.workload]
    summary = {"run": run_index, "seed": seed, "nodes": args.nodes, "workloads": wl_names,
               "nemesis": args.nemesis, "time_s": args.time, "failures": [], "dir": run_dir,
               "read_mode": args.read_mode or "server default",
               "server_args": args.server_arg}
    os.makedirs(run_dir, exist_ok=True)
    history = History()
    cluster = netcluster.NetCluster(args.nodes, tick_ms=args.tick_ms,
                                    extra=["--request-timeout-ms", str(args.request_timeout_ms)] +
                                    (["--read-mode", args.read_mode] if args.read_mode else []) +
                                    list(args.server_arg),
                                    workdir=os.path.join(run_dir, "cluster"))
    summary["netns"] = cluster.partitions_available
    if not cluster.partitions_available:
        print("  WARNING: no network namespaces (%s): partitions are unavailable" %
              cluster.no_netns_reason)
    kinds = nemesis_kinds(args.nemesis, cluster.partitions_available)
    summary["nemesis_kinds"] = kinds
    if not kinds:
        summary["skipped"] = "partition nemesis without namespaces (QKV_E2E_NO_NETNS=1)"
        cluster.stop()
        return summary
    clients, nemesis = [], None
    stop = threading.Event()
    t0 = time.monotonic()
    try:
        cluster.start()
        if "queue" in wl_names and not lists_supported(cluster):
            if args.workload == "queue":
                raise RuntimeError("the server does not serve lists (RPUSH/LPOP/LRANGE): the "
                                   "queue workload cannot run")
            wl_names.remove("queue")
            summary["workloads"] = wl_names
            summary["warnings"] = ["queue workload NOT run: the server lacks lists"]
        if "lock" in wl_names and not locks_supported(cluster):
            if args.workload == "lock":
                raise RuntimeError("the server does not serve LOCK/FENCE: the lock workload "
                                   "cannot run")
            wl_names.remove("lock")
            summary["workloads"] = wl_names
            summary.setdefault("warnings", []).append(
                "lock workload NOT run: the server lacks LOCK/FENCE")
        workloads = make_workloads(wl_names, args.keys, args.ops_per_key)
        pids = ProcessIds(args.clients)
        for i in range(args.clients):
            node = rng.choice(cluster.nodes)
            clients.append(Client(i, node, workloads, history, stop, rng.getrandbits(64), pids,
                                  timeout_s=args.client_timeout))
        nemesis = Nemesis(cluster, kinds, rng.getrandbits(64), os.path.join(run_dir, "nemesis.log"),
                          fault_s=(args.fault_min, args.fault_max),
                          heal_s=(args.heal_min, args.heal_max), t0=t0)
        for c in clients:
            c.start()
        nemesis.start()
        time.sleep(args.time)
        # Stop the faults first (the one in progress is healed), then the clients.
        try:
            nemesis.stop()
        except Exception as e:  # noqa: BLE001
            summary["failures"].append("healing the last fault failed: %s" % e)
        stop.set()
        for c in clients:
            c.join(timeout=args.client_timeout * 4 + 5)
            if c.is_alive():
                summary["failures"].append("client %d did not stop" % c.index)
        summary["faults"] = dict(nemesis.counts)
        summary["nemesis_errors"] = list(nemesis.errors)
        if nemesis.errors:
            summary["failures"].extend("nemesis: %s" % e for e in nemesis.errors)
        # Heal everything that might still be broken, then converge.
        cluster.heal()
        for n in cluster.nodes:
            if n.paused:
                n.resume()
            if not n.alive():
                n.start()
        t_heal = time.monotonic()
        try:
            summary["applied_index"] = cluster.wait_converged(timeout=args.converge_timeout)
            summary["converge_s"] = round(time.monotonic() - t_heal, 2)
        except RuntimeError as e:
            summary["failures"].append("no convergence after healing: %s" % e)
            raise
        leader = cluster.wait_leader()
        final_reads(workloads, leader, history)
        # Compare replicas at one applied index. An entry may still arrive after the clients
        # stopped (a new leader's no-op, a forwarded write delivered late by TCP after a
        # partition healed): then converge and digest again, noting it.
        for attempt in range(5):
            cluster.wait_converged(timeout=args.converge_timeout)
            dg = digests(cluster)
            summary["digests"] = dg
            applied = ({v["applied_before"] for v in dg.values()} |
                       {v["applied_after"] for v in dg.values()})
            if len(applied) == 1:
                break
            summary.setdefault("notes", []).append(
                "applied index moved while digesting (attempt %d): %s" % (
                    attempt + 1, {k: (v["applied_before"], v["applied_after"], v["terms"])
                                  for k, v in dg.items()}))
            time.sleep(1)
        else:
            summary["failures"].append("the applied index never held still for a digest: %s"
                                       % dg)
        if len(applied) == 1 and len({v["digest"] for v in dg.values()}) != 1:
            summary["failures"].append("replicas diverged (state digests differ): %s" % dg)
        rds = {name: v["raft_digest"] for name, v in dg.items() if v["raft_digest"] is not None}
        if rds and (len(set(rds.values())) != 1 or len(rds) != len(dg)):
            summary["failures"].append("replicas diverged (RAFT DIGEST differs): %s" % rds)
        summary["convergence"] = "ok" if not [f for f in summary["failures"]
                                              if "diverged" in f or "held still" in f] else "FAILED"
    except Interrupted:
        summary["failures"].append("interrupted")
        raise
    except Exception as e:  # noqa: BLE001 - a failed run keeps its folder
        summary["failures"].append("run error: %s" % e)
        summary["traceback"] = traceback.format_exc()
    finally:
        stop.set()
        if nemesis is not None and nemesis.is_alive():
            try:
                nemesis.stop()
            except Exception:  # noqa: BLE001
                pass
        for c in clients:
            c.join(timeout=5)
        history.write(os.path.join(run_dir, "history.jsonl"))
        cluster.stop(keep_dir=True)
        # Data directories are big and not needed to read a failure: keep the logs.
        for n in cluster.nodes:
            shutil.rmtree(n.dir, ignore_errors=True)

    ops = history.ops
    counts = {"ok": 0, "fail": 0, "unknown": 0}
    for op in ops:
        counts[op["status"]] += 1
    summary["ops"] = counts
    summary["ops_per_s"] = round(len(ops) / max(args.time, 1), 1)
    unexpected = [u for c in clients for u in c.unexpected]
    summary["unexpected_errors"] = unexpected[:20]
    if unexpected:
        summary["failures"].append("%d error replies no correct server gives, e.g. %s" %
                                   (len(unexpected), unexpected[0]))
    problems = sanity_check(ops)
    summary["sanity"] = problems
    if "lock" in summary["workloads"]:
        summary["lock"] = lock_stats(ops)
    summary["failures"].extend("lost/invalid: %s" % p for p in problems)
    t = time.monotonic()
    print("  checking %d operations on %d keys..." % (len(ops), len({o["key"] for o in ops})))
    sys.stdout.flush()
    try:
        verdicts = check_histories(ops, args.check_time_limit)
    except Exception as e:  # noqa: BLE001 - a checker crash must not lose the run
        verdicts = None
        summary["failures"].append("the checker crashed: %r" % e)
        summary["checker_traceback"] = traceback.format_exc()
    summary["check_s"] = round(time.monotonic() - t, 2)
    if verdicts is None:
        summary["checker"] = "lincheck.py not found: linearizability NOT checked"
        if args.require_checker:
            summary["failures"].append("no linearizability checker (tests/e2e/lincheck.py)")
    else:
        bad = {k: v for k, v in verdicts.items() if v[0] is False}
        unknown = {k: v for k, v in verdicts.items() if v[0] is None}
        summary["checker"] = {"keys": len(verdicts), "linearizable": sum(
            1 for v in verdicts.values() if v[0] is True), "violations": len(bad),
            "inconclusive": len(unknown)}
        summary["violations"] = {k: {"model": v[1], "explanation": v[2]} for k, v in bad.items()}
        summary["inconclusive"] = {k: v[2] for k, v in unknown.items()}
        for k, v in bad.items():
            summary["failures"].append("NOT LINEARIZABLE %s (%s): %s" % (k, v[1], v[2]))
        if unknown and args.strict:
            summary["failures"].append("inconclusive keys: %s" % sorted(unknown))
    return summary


def print_summary(s):
    ops = s.get("ops", {})
    print("run %d seed %d: %s, nemesis %s, %d nodes" % (
        s["run"], s["seed"], "+".join(s["workloads"]), s["nemesis"], s["nodes"]))
    if s.get("skipped"):
        print("  SKIPPED: %s" % s["skipped"])
        return
    print("  ops: %d ok, %d fail, %d unknown (%.0f/s)" % (
        ops.get("ok", 0), ops.get("fail", 0), ops.get("unknown", 0), s.get("ops_per_s", 0)))
    print("  faults: %s" % (", ".join("%s=%d" % kv for kv in sorted(s.get("faults", {}).items()))
                            or "none"))
    ch = s.get("checker")
    if isinstance(ch, dict):
        print("  checker: %d keys, %d linearizable, %d violations, %d inconclusive (%.1f s)" % (
            ch["keys"], ch["linearizable"], ch["violations"], ch["inconclusive"],
            s.get("check_s", 0)))
        for k, why in sorted(s.get("inconclusive", {}).items()):
            print("    inconclusive %s: %s" % (k, why))
    else:
        print("  checker: %s" % ch)
    if s.get("lock"):
        print("  lock: %s" % ", ".join("%s=%d" % kv for kv in s["lock"].items()))
    dg = s.get("digests") or {}
    if dg:
        one = next(iter(dg.values()))
        print("  convergence: %s at applied index %s (%s keys, converged %.1f s after healing)%s"
              % (s.get("convergence"), one["applied_after"], one["keys"], s.get("converge_s", 0),
                 ", RAFT DIGEST compared" if one["raft_digest"] is not None else ""))
    for w in s.get("warnings", []):
        print("  WARNING: %s" % w)
    for w in s.get("notes", []):
        print("  note: %s" % w)
    if s.get("unexpected_errors"):
        print("  unexpected error replies: %s" % s["unexpected_errors"][:3])
    for f in s["failures"]:
        print("  FAILURE: %s" % f[:2000])
    if s["failures"]:
        print("  artifacts: %s" % s["dir"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    p.add_argument("--workload", default="all", choices=list(WORKLOADS) + ["all"])
    p.add_argument("--nemesis", default="all", choices=list(KINDS) + ["all"])
    p.add_argument("--time", type=float, default=60, help="seconds of load per run")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keys", type=int, default=1,
                   help="active keys per workload (few keys: more clients per key)")
    p.add_argument("--ops-per-key", type=int, default=300, help="operations before a key retires")
    p.add_argument("--fault-min", type=float, default=1.0)
    p.add_argument("--fault-max", type=float, default=5.0)
    p.add_argument("--heal-min", type=float, default=1.0)
    p.add_argument("--heal-max", type=float, default=5.0)
    p.add_argument("--tick-ms", type=int, default=20)
    p.add_argument("--request-timeout-ms", type=int, default=1000)
    p.add_argument("--read-mode", default=None, choices=("readindex", "lease"),
                   help="the servers' read-mode (default: the server's default)")
    p.add_argument("--server-arg", action="append", default=[],
                   help="one more argument for every server (repeat for more), e.g. "
                        "--server-arg=--read-cache-fill-on-write --server-arg=yes")
    p.add_argument("--client-timeout", type=float, default=1.5, help="socket timeout (s)")
    p.add_argument("--converge-timeout", type=float, default=60)
    p.add_argument("--check-time-limit", type=float, default=30,
                   help="seconds the checker may spend on one key")
    p.add_argument("--strict", action="store_true", help="an inconclusive key fails the run")
    p.add_argument("--no-require-checker", dest="require_checker", action="store_false",
                   help="pass runs even without tests/e2e/lincheck.py")
    p.add_argument("--out", default=None, help="folder for the runs (default: a new temp folder)")
    p.add_argument("--keep", action="store_true", help="keep every run's folder, not just failed")
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    if not os.path.exists(netcluster.BINARY):
        print("no server binary at %s (set QKV_BINARY)" % netcluster.BINARY)
        return 2
    out = args.out or os.path.join("/tmp", "qkv-jepsen-%s-%d" % (
        time.strftime("%Y%m%d-%H%M%S"), os.getpid()))
    os.makedirs(out, exist_ok=True)
    print("jepsen: %d runs, seed %d, binary %s, output %s" % (args.runs, args.seed,
                                                              netcluster.BINARY, out))
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1: where is it stuck?
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    failed, total = [], {"ok": 0, "fail": 0, "unknown": 0}
    faults = {}
    try:
        for i in range(args.runs):
            run_dir = os.path.join(out, "run-%03d" % i)
            os.makedirs(run_dir, exist_ok=True)
            # A run that takes far longer than it should is a hang: dump every thread's
            # stack into the run's folder (the run goes on; the report names the file).
            stuck = open(os.path.join(run_dir, "stuck-threads.txt"), "w")
            faulthandler.dump_traceback_later(args.time + args.converge_timeout * 2 + 120,
                                              file=stuck)
            try:
                s = one_run(args, i, run_dir)
            finally:
                faulthandler.cancel_dump_traceback_later()
                stuck.close()
            if os.path.getsize(os.path.join(run_dir, "stuck-threads.txt")) == 0:
                os.remove(os.path.join(run_dir, "stuck-threads.txt"))
            else:
                s["failures"].append("the run hung: thread stacks in stuck-threads.txt")
            with open(os.path.join(run_dir, "summary.json"), "w") as f:
                json.dump(s, f, indent=1, sort_keys=True, default=str)
            print_summary(s)
            sys.stdout.flush()
            for k, v in s.get("ops", {}).items():
                total[k] += v
            for k, v in s.get("faults", {}).items():
                faults[k] = faults.get(k, 0) + v
            if s["failures"]:
                failed.append(run_dir)
            elif not args.keep:
                shutil.rmtree(run_dir, ignore_errors=True)
    except Interrupted as e:
        print("interrupted (%s); cleaned up" % e)
        return 130
    print("total: %d runs, %d failed; ops %d ok, %d fail, %d unknown; faults %s" % (
        args.runs, len(failed), total["ok"], total["fail"], total["unknown"],
        ", ".join("%s=%d" % kv for kv in sorted(faults.items())) or "none"))
    if failed:
        print("failed runs kept in: %s" % " ".join(failed))
        return 1
    if not args.keep:
        try:
            os.rmdir(out)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
