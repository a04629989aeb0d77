"""Latency of encode() and act() (SFM / rater / AFM), printed as JSON.

    asyncvla-ros bench-policy                      # tiny config on CPU
    asyncvla-ros bench-policy --size 3b --device cuda --dtype bfloat16

The "3b" size is Qwen2.5-VL-3B-Instruct's shape (36 layers, width 2048, GQA 16/2, vision depth 32)
with random weights and the paper's rater (4 layers, 32 heads, FFN 6144); it needs a GPU to be useful.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from asyncvla_ros.policy.config import ActionExpertConfig, BackboneConfig, PolicyConfig, RaterConfig, tiny_vlm_config
from asyncvla_ros.policy.policy import AsyncVLAPolicy

INSTRUCTION = "put the red cube in the blue area"


def qwen25_vl_3b_config() -> dict:
    """Qwen2.5-VL-3B-Instruct's published architecture (random weights here)."""
    return {
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


def make_config(size: str, dtype: str) -> PolicyConfig:
    if size == "tiny":
        backbone = BackboneConfig(vlm_config=tiny_vlm_config(), image_height_px=56, image_width_px=56, max_prefix_tokens=128)
        return PolicyConfig(backbone=backbone, expert=ActionExpertConfig(chunk_len=10, history_len=20), dtype=dtype)
    if size == "3b":
        backbone = BackboneConfig(vlm_config=qwen25_vl_3b_config(), image_height_px=224, image_width_px=224, max_prefix_tokens=256)
        rater = RaterConfig(num_layers=4, num_heads=32, hidden_size=2048, ffn_size=6144)
        return PolicyConfig(backbone=backbone, expert=ActionExpertConfig(chunk_len=10, history_len=20), rater=rater, dtype=dtype, model_id="qwen2.5-vl-3b-shape-random")
    raise ValueError(f"--size must be 'tiny' or '3b', got {size!r}")


def percentiles(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p99": round(float(np.percentile(a, 99)), 3), "n": len(a)}


def run(size: str, device: str, dtype: str, iters: int, warmup: int, mode: str) -> dict:
    config = make_config(size, dtype)
    t = time.perf_counter()
    policy = AsyncVLAPolicy.build(config, [INSTRUCTION]).to(device).eval()
    build_s = time.perf_counter() - t
    rng = np.random.default_rng(0)
    h, w = config.backbone.image_height_px, config.backbone.image_width_px
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in config.backbone.camera_names]
    e = config.expert
    state, history = np.zeros(e.state_dim), np.zeros((e.history_len, e.action_dim))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    encode_ms = []
    for i in range(warmup + iters):
        sync()
        t = time.perf_counter()
        cond = policy.encode(images, INSTRUCTION)
        sync()
        if i >= warmup:
            encode_ms.append((time.perf_counter() - t) * 1e3)
    stages: dict[str, list[float]] = {"act": [], "sfm": [], "rater": [], "afm": []}
    regenerated = []
    for i in range(warmup + iters):
        r = policy.act(cond, state, history, mode=mode, seed=i)
        if i >= warmup:
            for key, value in (("act", r.total_ms), ("sfm", r.sfm_ms), ("rater", r.rater_ms), ("afm", r.afm_ms)):
                stages[key].append(value)
            regenerated.append(int(r.regenerated.sum()))
    return {
        "size": size,
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu",
        "dtype": dtype,
        "torch_threads": torch.get_num_threads(),
        "params_million": round(sum(p.numel() for p in policy.parameters()) / 1e6, 2),
        "prefix_tokens": int(cond.num_prefix_tokens[0]),
        "semantic_condition_bytes": cond.nbytes(),
        "chunk_len": e.chunk_len,
        "flow_steps": config.num_flow_steps,
        "mode": mode,
        "mean_regenerated_tokens": round(float(np.mean(regenerated)), 2),
        "build_s": round(build_s, 2),
        "encode_ms": percentiles(encode_ms),
        **{f"{k}_ms": percentiles(v) for k, v in stages.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros bench-policy", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "3b"), default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default=None, help="default: bfloat16 on cuda, else float32")
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--mode", choices=("asyncvla", "sfm_only", "random_mask"), default="random_mask",
                        help="random_mask makes AFM run on about half the tokens even with an untrained rater")
    args = parser.parse_args(argv)
    dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    if args.size == "3b" and not args.device.startswith("cuda"):
        parser.error("--size 3b needs --device cuda (a 3B model in float32 on CPU takes minutes per chunk)")
    print(json.dumps(run(args.size, args.device, dtype, args.iters, args.warmup, args.mode), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
