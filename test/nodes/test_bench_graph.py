import json
import subprocess
import sys


from ..sim._support import skip_without_sim
from ..ros_support import require_ros_messages


def test_bench_graph_prints_control_and_semantic_figures():
    require_ros_messages()
    skip_without_sim()
    out = subprocess.run([sys.executable, "-m", "asyncvla_ros.cli", "bench-graph", "--duration", "4", "--modes", "colocated"],
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    (report,) = json.loads(out.stdout)
    # Structure, not speed: the figures are the benchmark's output (a loaded machine moves them; a fresh
    # clone's run once measured a 75 ms p50 period). That the control loop ticked and was timed:
    assert report["control_period_ms"]["n"] > 20
    assert 0.0 < report["control_period_ms"]["p50"] <= report["control_period_ms"]["p99"]
    assert report["semantic_refresh_hz"] > 0 and report["semantic_age_s"]["n"] > 0
    assert report["semantic_payload_bytes"] == 0  # co-located: the tensors never go on the wire
    assert report["semantic_dds_transport_ms"]["p50"] is not None
