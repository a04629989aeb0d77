import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest


def test_help_lists_the_subcommands():
    out = subprocess.run([sys.executable, "-m", "asyncvla_ros.cli", "--help"], capture_output=True, text=True, check=True)
    assert "bench-policy" in out.stdout


def test_unknown_subcommand_fails_with_the_valid_choices():
    out = subprocess.run([sys.executable, "-m", "asyncvla_ros.cli", "bogus"], capture_output=True, text=True)
    assert out.returncode == 2 and "bench-policy" in out.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "--dataset", "/nonexistent", "--out", "{tmp}/run"], "/nonexistent holds no LeRobot dataset"),
    (["train", "--sim-episodes", "1", "--steps", "0", "--out", "{tmp}/run"], "TrainConfig.steps must be a positive int"),
    (["offline-eval", "--model", "{tmp}", "--dataset", "/nonexistent"], "is not a policy checkpoint"),
    (["offline-eval", "--model", "{repo}/asyncvla_ros/models/default", "--dataset", "/nonexistent"], "holds no LeRobot dataset"),
])
def test_bad_input_is_one_error_line_not_a_traceback(tmp_path, args, message):
    pytest.importorskip("torch")
    args = [a.format(tmp=tmp_path, repo=Path(__file__).resolve().parent.parent) for a in args]
    out = subprocess.run([sys.executable, "-m", "asyncvla_ros.cli", *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr
    assert f"asyncvla-ros {args[0]}: error: " in out.stderr and message in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_only_input_errors_lose_their_traceback():
    from asyncvla_ros import cli

    assert not cli.is_input_error(KeyError("x")) and cli.is_input_error(ValueError("TrainConfig.steps ..."))
    assert cli.is_input_error(FileNotFoundError("no such file"))


def test_bench_policy_prints_stage_latencies_per_path_as_json():
    pytest.importorskip("torch")
    out = subprocess.run(
        [sys.executable, "-m", "asyncvla_ros.cli", "bench-policy", "--iters", "3", "--warmup", "1", "--rebuild-iters", "2"],
        capture_output=True, text=True, check=True, timeout=300,
    )
    report = json.loads(out.stdout)
    assert report["encode_ms"]["n"] == 3 and report["encode_ms"]["p50"] > 0
    assert report["paths"]["graphs"] == {"skipped": "CUDA graphs need --device cuda"}
    for path in ("eager", "hf_eager", "static", "rebuild"):
        r = report["paths"][path]
        for stage in ("chunk_ms", "sfm_ms", "rater_ms", "afm_ms"):
            assert r[stage]["n"] == (2 if path == "rebuild" else 3) and r[stage]["p50"] > 0
        # Every path plans the eager path's chunks from the same seeds (CPU, float32).
        assert path == "eager" or r["max_abs_diff_vs_eager"] < 1e-5
    assert report["paths"]["static"]["graphs_captured"] == []
    assert report["prefix_tokens"] > 0 and report["semantic_condition_bytes"] > 0
    assert "encode p50/p99" in out.stderr and "rebuild" in out.stderr


def test_bench_policy_plans_the_3b_shapes_alike_on_the_static_path_on_cpu():
    """Qwen2.5-VL-3B's widths (GQA 16/2 with 128-wide heads, its rotary sections, a 1280-wide vision tower
    over 224 px cameras in windows, the paper's rater) at one layer: what scripts/bench_gpu.sh runs at 36."""
    pytest.importorskip("torch")
    out = subprocess.run(
        [sys.executable, "-m", "asyncvla_ros.cli", "bench-policy", "--size", "3b", "--depth", "1", "--device", "cpu",
         "--iters", "1", "--warmup", "0", "--paths", "eager,static"],
        capture_output=True, text=True, check=True, timeout=600,
    )
    report = json.loads(out.stdout)
    assert (report["size"], report["depth"], report["dtype"]) == ("3b", 1, "float32")
    assert report["prefix_tokens"] > 2 * 64  # two cameras of 64 merged tokens each, and the instruction
    assert report["paths"]["static"]["max_abs_diff_vs_eager"] < 1e-5


@pytest.mark.parametrize("bench", ["policy_latency", "train_throughput"])
def test_bench_size_3b_wants_a_gpu_or_a_depth(bench, capsys):
    pytest.importorskip("torch")
    main = importlib.import_module(f"asyncvla_ros.bench.{bench}").main
    for argv, message in ((["--size", "3b", "--device", "cpu"], "needs --device cuda"),
                          (["--depth", "2"], "--depth is for --size 3b")):
        with pytest.raises(SystemExit) as exit:
            main(argv)
        assert exit.value.code == 2 and message in capsys.readouterr().err


def test_bench_train_prints_samples_per_second_as_json():
    pytest.importorskip("torch")
    out = subprocess.run(
        [sys.executable, "-m", "asyncvla_ros.cli", "bench-train", "--steps", "3", "--warmup", "1", "--batch-size", "2",
         "--gradient-checkpointing", "--num-workers", "1"],
        capture_output=True, text=True, check=True, timeout=300,
    )
    report = json.loads(out.stdout)
    assert report["timed_steps"] == 3 and report["samples_per_s"] > 0 and report["gradient_checkpointing"]
    assert "samples/s" in out.stderr
