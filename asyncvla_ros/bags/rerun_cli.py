"""`asyncvla-ros rerun BAG --model DIR`: re-run the policy on a bag offline; write a bag and a report."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from asyncvla_ros.policy.config import ACT_MODES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="asyncvla-ros rerun",
        description="Drive the semantic and action code over a bag's recorded observations, deterministically "
                    "(seeded, in bag time), and write a bag with the recomputed chunks beside the recorded ones "
                    "plus a report (PNG plots, Markdown and HTML).")
    parser.add_argument("bag", help="recorded bag directory")
    parser.add_argument("--model", default="", help="policy checkpoint directory; empty = the embedded default policy")
    parser.add_argument("--out", default="", help="output directory (default <bag>-rerun); holds bag/ and report files")
    parser.add_argument("--seed", type=int, default=None, help="noise seed base; default: the recorded action node's")
    parser.add_argument("--no-afm", action="store_true", help="plan with SFM only (switch AFM off)")
    parser.add_argument("--mode", default="", choices=["", *ACT_MODES], help="act() mode; default: the recorded chunks'")
    parser.add_argument("--semantic-rate-hz", type=float, default=0.0,
                        help="re-encode the bag's frames at this rate instead of using the recorded refreshes (stale semantics)")
    parser.add_argument("--semantic-latency-s", type=float, default=0.0, help="simulated refreshes are usable this much later, s")
    parser.add_argument("--control-rate-hz", type=float, default=20.0, help="tick rate when the bag has no recorded chunks")
    parser.add_argument("--max-semantic-age-s", type=float, default=1.0, help="hold on older semantics, as the action node")
    parser.add_argument("--instruction", default="", help="override the recorded instruction")
    parser.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"], help="storage of the output bag")
    parser.add_argument("--camera-map", nargs="+", default=[], metavar="POLICY:=GRAPH",
                        help="for a model trained on other camera names: the bag's camera each reads, e.g. top:=front")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="CPU threads for torch (default 1, as the sim nodes: results can differ in the last bits with another count)")
    opts = parser.parse_args(argv)

    from asyncvla_ros.bags.reader import open_bag
    from asyncvla_ros.bags.types import BagError

    open_bag(opts.bag).close()  # a wrong path fails here, before torch and the model load
    import torch

    from asyncvla_ros.bags.recording import load
    from asyncvla_ros.control.joint_space import parse_camera_map
    from asyncvla_ros.bags.report import write_report
    from asyncvla_ros.bags.rerun import RerunConfig, run_rerun
    from asyncvla_ros.bags.rerun_bag import write_rerun_bag
    from asyncvla_ros.policy.default import load_policy

    config = RerunConfig(seed=opts.seed, afm=not opts.no_afm, mode=opts.mode, semantic_rate_hz=opts.semantic_rate_hz,
                         semantic_latency_s=opts.semantic_latency_s, control_rate_hz=opts.control_rate_hz,
                         max_semantic_age_s=opts.max_semantic_age_s, instruction=opts.instruction)
    bag = Path(opts.bag).expanduser()
    out = Path(opts.out or f"{bag.resolve()}-rerun").expanduser()
    if (out / "bag").exists():
        raise BagError(f"{out / 'bag'} exists: choose another --out or remove it")
    if opts.model and not Path(opts.model).expanduser().is_dir():
        raise BagError(f"--model {opts.model} is not a directory")
    if opts.torch_threads > 0:
        torch.set_num_threads(opts.torch_threads)
    policy, model_id = load_policy(str(Path(opts.model).expanduser()) if opts.model else "", opts.device)
    t0 = time.perf_counter()
    cameras = policy.config.backbone.camera_names
    rec = load(bag, cameras, parse_camera_map(opts.camera_map, cameras))
    print(f"asyncvla-ros rerun: {bag}: {len(rec.states)} joint states, "
          f"{sum(len(f) for f in rec.frames.values())} frames, {len(rec.semantics)} semantic refreshes, "
          f"{len(rec.chunks)} chunks (loaded in {time.perf_counter() - t0:.1f} s)", flush=True)
    result = run_rerun(policy, model_id, rec, config)
    out.mkdir(parents=True, exist_ok=True)
    counts = write_rerun_bag(result, out / "bag", opts.storage)
    summary = write_report(result, out)
    print(json.dumps(summary, indent=2))
    print(f"asyncvla-ros rerun: {len(result.ticks)} ticks in {result.wall_s:.1f} s; bag {out / 'bag'} "
          f"({counts.get('/rerun/action_chunk', 0)} recomputed chunks); report {out / 'report.html'}", flush=True)
    return 0
