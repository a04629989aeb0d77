"""Run the sim graph for a while and print its timing figures as JSON, separate and co-located.

    asyncvla-ros bench-graph --duration 60

Per mode: control-loop period p50/p99 and jitter (from the commands' own stamps, i.e. when each
tick ran, with no DDS in between), plan latency (SFM/rater/AFM and the whole tick), semantic
refresh rate and age, and the semantic hand-over: DDS transport time of the SemanticFeatures
message (publish -> receive in the action node, from the samples' timestamps), decode time and
payload size. Inline carries the tensors in the message; co-located hands them over in memory and
sends only the metadata. And what decides AFM's work: regenerated steps per chunk in each 5 s of the
run, and how close the rater's confidences sit to its 0.5 threshold.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from asyncvla_ros.bench.report import emit
from asyncvla_ros.launch_graph import LaunchArgs, graph, params_file_for
from asyncvla_ros.launcher import Graph, Monitor


def _stats(values, scale: float = 1.0) -> dict:
    a = np.asarray(values, dtype=np.float64) * scale
    if a.size == 0:
        return {"n": 0}
    return {"p50": round(float(np.percentile(a, 50)), 3), "p99": round(float(np.percentile(a, 99)), 3),
            "mean": round(float(a.mean()), 3), "n": int(a.size)}


def _num(diag: dict, key: str) -> float | None:
    """A diagnostics value (text on the wire) as a number; None when absent or not measured."""
    try:
        value = float(diag[key])
    except (KeyError, ValueError):
        return None
    return None if np.isnan(value) else value


WINDOW_S = 5.0  # regeneration is reported per window of this much graph time


def _rater_figures(chunks) -> dict:
    """What decides AFM's work: regenerated steps per chunk in each WINDOW_S of the run (the episode's
    phases differ), and how close the rater's confidences sit to the threshold (0.5)."""
    if not chunks:
        return {}
    t = np.array([c.header.stamp.sec + c.header.stamp.nanosec * 1e-9 for c in chunks])
    window = ((t - t[0]) // WINDOW_S).astype(int)
    regen = np.array([sum(c.regenerated) for c in chunks], dtype=np.float64)
    conf = np.concatenate([np.asarray(c.confidence, np.float64) for c in chunks])
    return {
        f"regenerated_steps_per_{WINDOW_S:g}s": [round(float(regen[window == w].mean()), 2) for w in range(window.max() + 1)],
        "confidence_p10_p50_p90": [round(float(np.percentile(conf, q)), 3) for q in (10, 50, 90)],
        "confidence_share_within_0.05_of_threshold": round(float(np.mean(np.abs(conf - 0.5) < 0.05)), 3),
    }


MODES = {"both": (False, True), "separate": (False,), "colocated": (True,)}  # --modes -> colocated values
WARMUP_CHUNKS = 40  # chunks before measuring starts: models loaded, semantics flowing


def start_acting(args: LaunchArgs, monitor: Monitor, log_dir: Path, chunks, timeout_s: float = 180.0) -> Graph:
    """Start the graph of `args` with its driver active, and return it once `chunks()` (the count of
    action chunks a probe received) reaches WARMUP_CHUNKS.

    Raises:
        RuntimeError: it did not act within `timeout_s`, or a process died (the graph is stopped).
    """
    procs = Graph(graph(args), params_file_for(args), log_dir / ("colocated" if args.colocated else "separate"))
    try:
        procs.start()
        monitor.transition("driver", "configure")
        monitor.transition("driver", "activate")
        deadline = time.monotonic() + timeout_s
        while chunks() < WARMUP_CHUNKS:
            if time.monotonic() > deadline or procs.dead():
                raise RuntimeError(f"the graph did not start acting; dead: {procs.dead()}; logs in {procs.log_dir}")
            time.sleep(0.2)
    except BaseException:
        procs.stop()
        raise
    return procs


def run_mode(colocated: bool, duration_s: float, monitor: Monitor, log_dir: Path) -> dict:
    from sensor_msgs.msg import JointState

    from asyncvla_ros.msg import ActionChunk, SemanticFeatures
    from asyncvla_ros.nodes.conversions import from_time
    from asyncvla_ros.nodes.qos import FEATURES

    recording = {"cmd": [], "chunk": [], "features": []}
    node = monitor.node
    subs = [
        node.create_subscription(JointState, "joint_command", lambda m: recording["cmd"].append(from_time(m.header.stamp)), 100),
        node.create_subscription(ActionChunk, "action_chunk", lambda m: recording["chunk"].append(m), 100),
        node.create_subscription(SemanticFeatures, "semantic_features", lambda m: recording["features"].append(time.monotonic()), FEATURES),
    ]
    procs = None
    try:
        procs = start_acting(LaunchArgs(colocated=colocated), monitor, log_dir, lambda: len(recording["chunk"]))
        for values in recording.values():
            values.clear()
        t0 = time.monotonic()
        time.sleep(duration_s)
        elapsed = time.monotonic() - t0
        diag = dict(monitor.status.get("action", ("", {}))[1])
    finally:
        if procs is not None:
            procs.stop()
        for sub in subs:
            node.destroy_subscription(sub)

    stamps = np.asarray(sorted(recording["cmd"]), dtype=np.int64)
    periods_ms = np.diff(stamps) * 1e-6
    nominal_ms = 1e3 / 20.0
    chunks = recording["chunk"]
    return {
        "mode": "colocated (in-process hand-over)" if colocated else "separate processes (inline payload)",
        "seconds": round(elapsed, 1),
        "control_period_ms": _stats(periods_ms),
        "control_jitter_ms": {"std": round(float(periods_ms.std()), 3) if periods_ms.size else None,
                              "p99_abs_deviation": round(float(np.percentile(np.abs(periods_ms - nominal_ms), 99)), 3) if periods_ms.size else None},
        "commands_hz": round(len(stamps) / elapsed, 2),
        "plan_ms": _stats([c.total_time_ms for c in chunks]),
        "sfm_ms": _stats([c.sfm_time_ms for c in chunks]),
        "rater_ms": _stats([c.rater_time_ms for c in chunks]),
        "afm_ms": _stats([c.afm_time_ms for c in chunks]),
        "regenerated_steps_mean": round(float(np.mean([sum(c.regenerated) for c in chunks])), 2) if chunks else None,
        **_rater_figures(chunks),
        "semantic_refresh_hz": round(len(recording["features"]) / elapsed, 2),
        "semantic_age_s": _stats([c.semantic_age_s for c in chunks]),
        "semantic_dds_transport_ms": {"p50": _num(diag, "semantic_transport_ms_p50"), "p99": _num(diag, "semantic_transport_ms_p99")},
        "semantic_decode_ms_p50": _num(diag, "semantic_decode_ms_p50"),
        "semantic_payload_bytes": _num(diag, "semantic_payload_bytes"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros bench-graph", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per mode (after warm-up)")
    parser.add_argument("--modes", choices=("both", "separate", "colocated"), default="both")
    opts = parser.parse_args(argv)
    monitor = Monitor()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="asyncvla-bench-") as logs:
            for colocated in MODES[opts.modes]:
                results.append(run_mode(colocated, opts.duration, monitor, Path(logs)))
    finally:
        monitor.close()
    emit(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
