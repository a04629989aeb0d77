import json
import subprocess
import sys

import pytest


def test_help_lists_the_subcommands():
    out = subprocess.run([sys.executable, "-m", "asyncvla_ros.cli", "--help"], capture_output=True, text=True, check=True)
    assert "bench-policy" in out.stdout


def test_unknown_subcommand_fails_with_the_valid_choices():
    out = subprocess.run([sys.executable, "-m", "asyncvla_ros.cli", "bogus"], capture_output=True, text=True)
    assert out.returncode == 2 and "bench-policy" in out.stderr


def test_bench_policy_prints_stage_latencies_as_json():
    pytest.importorskip("torch")
    out = subprocess.run(
        [sys.executable, "-m", "asyncvla_ros.cli", "bench-policy", "--iters", "3", "--warmup", "1"],
        capture_output=True, text=True, check=True, timeout=300,
    )
    report = json.loads(out.stdout)
    for stage in ("encode_ms", "act_ms", "sfm_ms", "rater_ms", "afm_ms"):
        assert report[stage]["n"] == 3 and report[stage]["p50"] > 0
    assert report["prefix_tokens"] > 0 and report["semantic_condition_bytes"] > 0
