"""Soak benchmark: the full sim graph at 20 Hz for a long run, separate and co-located, the default policy acting.

    asyncvla-ros soak --duration 1800 --out soak.json      # 30 min per mode, 5 min windows

A JSON report per mode, over the whole run and per window (`--window`, default 300 s):

- control: deadline misses (command periods over 1.5x the target, from the commands' own stamps),
  the period's p50/p99/max, and the plan time's p99 (the action chunks' total_time_ms);
- per process: RSS with its slope in MB/h (a least-squares line through samples every `--sample` s),
  open file descriptors and threads (first, last, max);
- per topic: messages received by a probe in the launcher's process and DDS-level loss, the gaps
  in each publisher's sequence numbers that the probe saw (reliable subscriptions; images are taken
  raw, never deserialized);
- the processes that died, and the topics that never flowed.

Figures, not pass/fail: the machine's load decides them. `test/nodes/test_soak.py` runs it for 60 s
and checks the structure only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from asyncvla_ros.bench.graph import MODES, start_acting
from asyncvla_ros.bench.report import emit
from asyncvla_ros.launch_graph import LaunchArgs
from asyncvla_ros.launcher import Graph, Monitor

DEADLINE_FACTOR = 1.5  # a command period over this many target periods is a missed deadline


def topics():
    """(topic, message class, QoS, taken raw): what the probe counts."""
    from sensor_msgs.msg import Image, JointState

    from asyncvla_ros.msg import ActionChunk, SafetyEvent, SemanticFeatures
    from asyncvla_ros.nodes.qos import FEATURES

    return [("joint_command", JointState, 50, False), ("safe_joint_command", JointState, 50, False),
            ("joint_states", JointState, 50, False), ("action_chunk", ActionChunk, 50, False),
            ("semantic_features", SemanticFeatures, FEATURES, True), ("safety_events", SafetyEvent, 50, False),
            ("front/image_raw", Image, 10, True), ("wrist/image_raw", Image, 10, True)]


class Probe:
    """Receipts per topic (monotonic time, publisher, publication sequence number), plus the command
    stamps and plan times the control figures come from. Callbacks run on the monitor's executor."""

    def __init__(self, node) -> None:
        self.lock = threading.Lock()
        self.receipts: dict[str, list[tuple[float, bytes, int]]] = defaultdict(list)
        self.command_stamps: list[tuple[float, int]] = []  # (receipt, stamp ns)
        self.plan_ms: list[tuple[float, float]] = []
        self.node, self.subs = node, []
        for topic, cls, qos, raw in topics():
            self.subs.append(node.create_subscription(cls, topic, lambda m, info, t=topic: self.on_message(t, m, info), qos, raw=raw))

    def on_message(self, topic: str, msg, info) -> None:
        now = time.monotonic()
        with self.lock:
            self.receipts[topic].append((now, bytes(info["publisher_gid"]["data"]), int(info["publication_sequence_number"] or 0)))
            if topic == "joint_command":
                self.command_stamps.append((now, msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec))
            elif topic == "action_chunk":
                self.plan_ms.append((now, float(msg.total_time_ms)))

    def clear(self) -> None:
        with self.lock:
            self.receipts.clear()
            self.command_stamps.clear()
            self.plan_ms.clear()

    def close(self) -> None:
        for sub in self.subs:
            self.node.destroy_subscription(sub)


def loss(receipts) -> dict:
    """Received and lost messages from (time, publisher, sequence number) receipts: per publisher, the
    sequence numbers between the first and last seen that never arrived."""
    by_pub: dict[bytes, list[int]] = defaultdict(list)
    for _, gid, seq in receipts:
        by_pub[gid].append(seq)
    lost = sum(max(s) - min(s) + 1 - len(set(s)) for s in by_pub.values() if s and min(s) > 0)
    return {"received": len(receipts), "lost": int(lost), "publishers": len(by_pub)}


def control(stamps_ns, plan_ms, period_s: float) -> dict:
    stamps = np.sort(np.asarray(stamps_ns, dtype=np.int64))
    periods = np.diff(stamps) * 1e-6
    out = {"commands": int(stamps.size)}
    if periods.size:
        out.update(deadline_misses=int((periods > DEADLINE_FACTOR * period_s * 1e3).sum()),
                   period_ms_p50=round(float(np.percentile(periods, 50)), 2),
                   period_ms_p99=round(float(np.percentile(periods, 99)), 2), period_ms_max=round(float(periods.max()), 2))
    if len(plan_ms):
        out["plan_ms_p99"] = round(float(np.percentile(plan_ms, 99)), 2)
    return out


def resources(samples) -> dict:
    """Per process from (time s, rss bytes, fds, threads) samples: RSS first/last and slope (MB/h), fds
    and threads first/last/max."""
    a = np.asarray(samples, dtype=np.float64)
    if len(a) == 0:
        return {}
    t_h, rss_mb = (a[:, 0] - a[0, 0]) / 3600.0, a[:, 1] / 2**20
    slope = float(np.polyfit(t_h, rss_mb, 1)[0]) if len(a) > 2 and t_h[-1] > 0 else None
    return {"rss_mb_first": round(float(rss_mb[0]), 1), "rss_mb_last": round(float(rss_mb[-1]), 1),
            "rss_mb_per_h": None if slope is None else round(slope, 1),
            "fds": [int(a[0, 2]), int(a[-1, 2]), int(a[:, 2].max())], "threads": [int(a[0, 3]), int(a[-1, 3]), int(a[:, 3].max())]}


def sample(procs: Graph) -> dict[str, tuple[float, int, int, int]]:
    import psutil

    now, out = time.monotonic(), {}
    for name, popen in procs.procs.items():
        try:
            p = psutil.Process(popen.pid)
            out[name] = (now, p.memory_info().rss, p.num_fds(), p.num_threads())
        except psutil.Error:  # exited: the report lists it as died
            pass
    return out


def summarize(probe: Probe, samples: dict, t0: float, t1: float, period_s: float) -> dict:
    with probe.lock:
        stamps = [s for t, s in probe.command_stamps if t0 <= t < t1]
        plans = [p for t, p in probe.plan_ms if t0 <= t < t1]
        flows = {topic: loss([r for r in rs if t0 <= r[0] < t1]) for topic, rs in probe.receipts.items()}
    procs = {name: resources([s for s in ss if t0 <= s[0] < t1]) for name, ss in samples.items()}
    return {"seconds": round(t1 - t0, 1), "control": control(stamps, plans, period_s), "topics": flows, "processes": procs}


def run_mode(colocated: bool, duration_s: float, window_s: float, sample_s: float, monitor: Monitor, log_dir: Path) -> dict:
    period_s = 1.0 / 20.0
    probe = Probe(monitor.node)
    samples: dict[str, list] = defaultdict(list)
    died: dict[str, int] = {}
    procs = None
    try:
        procs = start_acting(LaunchArgs(colocated=colocated), monitor, log_dir, lambda: len(probe.plan_ms))
        probe.clear()
        t0 = time.monotonic()
        next_report = t0 + window_s
        while time.monotonic() < t0 + duration_s:
            for name, s in sample(procs).items():
                samples[name].append(s)
            for name in procs.dead():
                died.setdefault(name, procs.procs[name].returncode)
            if time.monotonic() >= next_report:
                print(f"soak {'colocated' if colocated else 'separate'}: {time.monotonic() - t0:.0f} of {duration_s:.0f} s",
                      file=sys.stderr, flush=True)
                next_report += window_s
            time.sleep(min(sample_s, max(0.0, t0 + duration_s - time.monotonic())))
        t1 = time.monotonic()
    finally:
        if procs is not None:
            procs.stop()
        probe.close()
    edges = [*np.arange(t0, t1, window_s), t1]
    windows = [summarize(probe, samples, a, b, period_s) for a, b in zip(edges[:-1], edges[1:]) if b - a > 0.5 * window_s]
    overall = summarize(probe, samples, t0, t1, period_s)
    return {"mode": "colocated" if colocated else "separate", "seconds": round(t1 - t0, 1), "died": died,
            "silent_topics": sorted(t for t, *_ in topics() if overall["topics"].get(t, {}).get("received", 0) == 0),
            "overall": overall, "windows": windows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1800.0, help="measured seconds per mode (after warm-up)")
    parser.add_argument("--window", type=float, default=300.0, help="seconds per reported window")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between process samples (RSS, fds, threads)")
    parser.add_argument("--modes", choices=("both", "separate", "colocated"), default="both")
    parser.add_argument("--out", default="", help="also write the JSON report here")
    opts = parser.parse_args(argv)
    if not (opts.duration > 0 and opts.window > 0 and opts.sample > 0):
        parser.error("--duration, --window and --sample must be > 0")
    monitor = Monitor()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="asyncvla-soak-") as logs:
            for colocated in MODES[opts.modes]:
                results.append(run_mode(colocated, opts.duration, opts.window, opts.sample, monitor, Path(logs)))
    finally:
        monitor.close()
    emit(results, opts.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
