"""Latency of encode() and act() (SFM / rater / AFM) on each plan path, as JSON and a table.

    asyncvla-ros bench-policy                      # tiny config on CPU
    asyncvla-ros bench-policy --size 3b --device cuda --dtype bfloat16 --out bench.json

Paths, each timed on the same condition, state and seeds (so each plans the same chunks): "hf_eager"
(every flow step through transformers' forward with a DynamicCache), "eager" (the reference,
`forward_with_prefix`), "static" (buffers allocated once), "graphs" (static, replayed from CUDA graphs)
and "rebuild" (the prefix encoded again at every flow step, as the paper's SFM is timed in its Tab. 6).

The "3b" size is Qwen2.5-VL-3B-Instruct's shape (36 layers, width 2048, GQA 16/2, vision depth 32)
with random weights and the paper's rater (4 layers, 32 heads, FFN 6144); it needs a GPU to be useful.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch

from asyncvla_ros.bench.report import emit
from asyncvla_ros.bench.reference_paths import REFERENCE_PATHS, max_abs_diff, reference_path
from asyncvla_ros.policy.config import ActionExpertConfig, BackboneConfig, PolicyConfig, RaterConfig, tiny_vlm_config
from asyncvla_ros.policy.policy import AsyncVLAPolicy

INSTRUCTION = "put the red cube in the blue area"


def qwen25_vl_3b_config(depth: int | None = None) -> dict:
    """Qwen2.5-VL-3B-Instruct's published architecture (random weights here). `depth`: that many decoder
    layers and vision blocks of the 3B widths instead of 36 and 32 (the last vision block attends over
    the whole image, as every 8th does in the model), which runs on a CPU."""
    config = {
        "text_config": {
            "hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
            "num_attention_heads": 16, "num_key_value_heads": 2, "max_position_embeddings": 128000,
            "rms_norm_eps": 1e-6, "vocab_size": 151936,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
        },
        "vision_config": {
            "depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
            "out_hidden_size": 2048, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
        },
        "tie_word_embeddings": True,
    }
    if depth is not None:
        config["text_config"]["num_hidden_layers"] = depth
        config["vision_config"].update(depth=depth, fullatt_block_indexes=[depth - 1])
    return config


def make_config(size: str, dtype: str, depth: int | None = None) -> PolicyConfig:
    """The bench's policy: "tiny", or "3b" (with `depth`, fewer layers of the 3B widths)."""
    if size == "tiny":
        backbone = BackboneConfig(vlm_config=tiny_vlm_config(), image_height_px=56, image_width_px=56, max_prefix_tokens=128)
        return PolicyConfig(backbone=backbone, expert=ActionExpertConfig(chunk_len=10, history_len=20), dtype=dtype)
    if size == "3b":
        backbone = BackboneConfig(vlm_config=qwen25_vl_3b_config(depth), image_height_px=224, image_width_px=224, max_prefix_tokens=256)
        rater = RaterConfig(num_layers=4, num_heads=32, hidden_size=2048, ffn_size=6144)
        return PolicyConfig(backbone=backbone, expert=ActionExpertConfig(chunk_len=10, history_len=20), rater=rater, dtype=dtype, model_id="qwen2.5-vl-3b-shape-random")
    raise ValueError(f"--size must be 'tiny' or '3b', got {size!r}")


PATHS = ("eager", "hf_eager", "static", "graphs", "rebuild")  # eager first: the others are compared with it


def percentiles(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p99": round(float(np.percentile(a, 99)), 3), "n": len(a)}


def gpu_memory_mb(device: str) -> dict[str, float]:
    if not device.startswith("cuda"):
        return {}
    return {"allocated_mb": round(torch.cuda.memory_allocated() / 2**20, 1),
            "peak_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
            "reserved_mb": round(torch.cuda.memory_reserved() / 2**20, 1)}


def time_path(policy, path: str, cond, obs: dict, iters: int, warmup: int, mode: str) -> tuple[dict, list]:
    """Plan `warmup + iters` chunks on one path; the stage figures and the chunks planned (seed = index)."""
    if path in REFERENCE_PATHS:
        policy.set_plan_path("eager")
        scope = reference_path(policy, path, obs["images"], INSTRUCTION, obs["state"], obs["history"])
    else:
        policy.set_plan_path(path)
        scope = nullcontext()
    stages: dict[str, list[float]] = {"chunk": [], "sfm": [], "rater": [], "afm": []}
    chunks, regenerated = [], []
    with scope:
        for i in range(warmup + iters):
            r = policy.act(cond, obs["state"], obs["history"], mode=mode, seed=i)
            chunks.append(r.actions)
            if i >= warmup:
                for key, value in (("chunk", r.total_ms), ("sfm", r.sfm_ms), ("rater", r.rater_ms), ("afm", r.afm_ms)):
                    stages[key].append(value)
                regenerated.append(int(r.regenerated.sum()))
    report = {f"{k}_ms": percentiles(v) for k, v in stages.items()}
    report["mean_regenerated_tokens"] = round(float(np.mean(regenerated)), 2)
    if path in ("static", "graphs"):
        report["graphs_captured"] = list(policy._planner.captured)
        report["graphs_failed"] = dict(policy._planner.capture_errors)
    policy.set_plan_path("eager")
    return report, chunks


def run(size: str, device: str, dtype: str, iters: int, warmup: int, mode: str, paths: list[str], rebuild_iters: int,
        depth: int | None = None) -> dict:
    config = make_config(size, dtype, depth)
    t = time.perf_counter()
    with torch.device(device):  # initialised where it runs: a 3B model built on the CPU takes minutes
        policy = AsyncVLAPolicy.build(config, [INSTRUCTION]).to(device).eval()
    build_s = time.perf_counter() - t
    rng = np.random.default_rng(0)
    h, w = config.backbone.image_height_px, config.backbone.image_width_px
    e = config.expert
    obs = {"images": [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in config.backbone.camera_names],
           "state": np.zeros(e.state_dim, np.float32), "history": np.zeros((e.history_len, e.action_dim), np.float32)}
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    encode_ms = []
    for i in range(warmup + iters):
        sync()
        t = time.perf_counter()
        cond = policy.encode(obs["images"], INSTRUCTION)
        sync()
        if i >= warmup:
            encode_ms.append((time.perf_counter() - t) * 1e3)
    results, reference = {}, None
    for path in sorted(paths, key=PATHS.index):
        if path == "graphs" and not device.startswith("cuda"):
            results[path] = {"skipped": "CUDA graphs need --device cuda"}
            continue
        n = rebuild_iters if path == "rebuild" else iters
        report, chunks = time_path(policy, path, cond, obs, n, min(warmup, n), mode)
        if path == "eager":
            reference = chunks
        elif reference is not None:  # the same seeds plan the same chunks on every path, up to the dtype's rounding
            report["max_abs_diff_vs_eager"] = round(max(max_abs_diff(a, b) for a, b in zip(chunks, reference)), 6)
        report["gpu_memory"] = gpu_memory_mb(device)
        results[path] = report
    chunk_p50 = {p: r["chunk_ms"]["p50"] for p, r in results.items() if "chunk_ms" in r}
    fastest = min(chunk_p50, key=chunk_p50.get) if chunk_p50 else None
    return {
        "size": size,
        "depth": depth,
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu",
        "torch": torch.__version__,
        "dtype": dtype,
        "torch_threads": torch.get_num_threads(),
        "params_million": round(sum(p.numel() for p in policy.parameters()) / 1e6, 2),
        "prefix_tokens": int(cond.num_prefix_tokens[0]),
        "semantic_condition_bytes": cond.nbytes(),
        "chunk_len": e.chunk_len,
        "flow_steps": config.num_flow_steps,
        "mode": mode,
        "build_s": round(build_s, 2),
        "encode_ms": percentiles(encode_ms),
        "paths": results,
        "fastest_path": fastest,
        # How many times slower each path's chunk is than the fastest one's (p50).
        "slowdown_vs_fastest": {p: round(v / chunk_p50[fastest], 2) for p, v in chunk_p50.items()} if fastest else {},
        "gpu_memory": gpu_memory_mb(device),
    }


def check_depth(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--depth: only for --size 3b, at least 1; the whole 3B model wants a GPU (minutes per chunk on a CPU)."""
    if args.depth is not None and (args.size != "3b" or args.depth < 1):
        parser.error("--depth is for --size 3b, and at least 1")
    if args.size == "3b" and args.depth is None and not args.device.startswith("cuda"):
        parser.error("--size 3b needs --device cuda (a 3B model takes minutes per chunk on a CPU), or a --depth")


def table(report: dict) -> str:
    """A short text table of the report: p50 / p99 per stage and path, ms."""
    size = report["size"] + (f" (depth {report['depth']})" if report.get("depth") else "")
    rows = [f"{size} on {report['device']} ({report['dtype']}): encode p50/p99 "
            f"{report['encode_ms']['p50']:.1f} / {report['encode_ms']['p99']:.1f} ms",
            f"{'path':<10}{'chunk':>18}{'sfm':>18}{'rater':>16}{'afm':>18}  regen  x fastest"]
    for path, r in report["paths"].items():
        if "skipped" in r:
            rows.append(f"{path:<10}  skipped: {r['skipped']}")
            continue
        cells = "".join(f"{r[f'{k}_ms']['p50']:>9.2f} /{r[f'{k}_ms']['p99']:>7.2f}" for k in ("chunk", "sfm", "rater", "afm"))
        rows.append(f"{path:<10}{cells}  {r['mean_regenerated_tokens']:>5.1f}  {report['slowdown_vs_fastest'].get(path, float('nan')):>6.2f}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros bench-policy", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "3b"), default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default=None, help="default: bfloat16 on cuda, else float32")
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, of {', '.join(PATHS)}")
    parser.add_argument("--rebuild-iters", type=int, default=10, help="chunks timed on the rebuild path (the slowest)")
    parser.add_argument("--mode", choices=("asyncvla", "sfm_only", "random_mask"), default="random_mask",
                        help="random_mask makes AFM run on about half the tokens even with an untrained rater")
    parser.add_argument("--depth", type=int, default=None,
                        help="--size 3b with this many decoder layers and vision blocks (a check of the 3B shapes on a CPU)")
    parser.add_argument("--out", default="", help="also write the JSON report here")
    args = parser.parse_args(argv)
    dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    check_depth(parser, args)
    paths = [p for p in args.paths.split(",") if p]
    unknown = sorted(set(paths) - set(PATHS))
    if unknown or not paths:
        parser.error(f"--paths: unknown {unknown}; choose from {', '.join(PATHS)}")
    report = run(args.size, args.device, dtype, args.iters, args.warmup, args.mode, paths, args.rebuild_iters, args.depth)
    print(table(report), file=sys.stderr)
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
