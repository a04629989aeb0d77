"""`asyncvla-ros soak` for 60 s (the separate-process graph, 20 s windows): structure only, no timing
assertions. No process died, every counted topic flowed, and the report parses with its figures."""

import json
import subprocess
import sys

from ..ros_support import require_ros_messages
from ..sim._support import skip_without_sim


def test_a_one_minute_soak_reports_every_process_and_topic(tmp_path):
    require_ros_messages()
    skip_without_sim()
    out_file = tmp_path / "soak.json"
    out = subprocess.run([sys.executable, "-m", "asyncvla_ros.cli", "soak", "--duration", "60", "--window", "20",
                          "--modes", "separate", "--out", str(out_file)], capture_output=True, text=True, timeout=420)
    assert out.returncode == 0, out.stderr[-3000:]
    (report,) = json.loads(out_file.read_text())
    assert report["died"] == {} and report["silent_topics"] == [], report
    assert len(report["windows"]) == 3
    overall = report["overall"]
    assert overall["control"]["commands"] > 0 and "deadline_misses" in overall["control"] and "plan_ms_p99" in overall["control"]
    for topic, flow in overall["topics"].items():
        assert flow["received"] > 0 and flow["lost"] >= 0 and flow["publishers"] >= 1, (topic, flow)
    assert set(overall["processes"]) >= {"driver", "action", "semantic", "safety_filter"}
    for name, proc in overall["processes"].items():
        assert proc["rss_mb_last"] > 0 and proc["fds"][2] > 0 and proc["threads"][2] > 0, (name, proc)
    print(json.dumps(overall, indent=1)[:3000])
