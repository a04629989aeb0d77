"""`asyncvla-ros eval`: closed-loop success rates on held-out sim seeds, per condition, in one run.

    asyncvla-ros eval --model main=runs/full/final --model naive=runs/naive/final --seeds 1000:1100 --out eval/

A condition is (model, mode, semantic staleness). By default the first model runs SFM only, AsyncVLA
and AFM with a random 0.5 mask with synchronous semantics, and every model runs AsyncVLA with stale
semantics (refresh every --stale-period ticks, usable --stale-latency ticks later), which compares
naive cache reuse against history + time-misalignment training when the second model is trained
without them. Writes results.json (per-episode and per-condition rates with 95 % Wilson intervals)
and success_rates.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from tqdm import tqdm

from asyncvla_ros.evaluation.closed_loop import EvalConfig, evaluate_runs, wilson_interval


def parse_seeds(text: str) -> list[int]:
    """"1000:1100" (half-open range) or "3,5,8"."""
    try:
        if ":" in text:
            lo, hi = (int(x) for x in text.split(":"))
            seeds = list(range(lo, hi))
        else:
            seeds = [int(x) for x in text.split(",") if x]
    except ValueError:
        raise ValueError(f"--seeds: expected 'start:stop' or a comma list of ints, got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise ValueError(f"--seeds: need at least one non-negative seed, got {text!r}")
    return seeds


def parse_models(items: list[str]) -> dict[str, str]:
    models = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep:
            label, path = Path(item).name or "model", item
        if not Path(path).is_dir():
            raise ValueError(f"--model {item!r}: {path} is not a directory")
        models[label] = path
    return models


def conditions(models: dict[str, str], stale_period: int, stale_latency: int, max_steps: int) -> list[tuple[str, str, EvalConfig]]:
    """(label, model label, config) for every condition of the run."""
    first = next(iter(models))
    out = [(f"{first}: {mode}", first, EvalConfig(mode=mode, max_steps=max_steps))
           for mode in ("sfm_only", "asyncvla", "random_mask")]
    stale = dict(semantic_period_steps=stale_period, semantic_latency_steps=stale_latency, max_steps=max_steps)
    out += [(f"{label}: asyncvla, stale semantics", label, EvalConfig(mode="asyncvla", **stale)) for label in models]
    return out


def plot(summary: list[dict], path: Path) -> None:
    """Success rate with its 95 % interval, and the share of episodes that lifted the cube, per condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [s["condition"] for s in summary]
    x = range(len(labels))
    rates = [100 * s["success_rate"] for s in summary]
    lo = [100 * (s["success_rate"] - s["ci95"][0]) for s in summary]
    hi = [100 * (s["ci95"][1] - s["success_rate"]) for s in summary]
    lifted = [100 * s["lift_rate"] for s in summary]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(max(8, 2.6 * len(labels)), 4.2))
    ax.bar(x, rates, yerr=[lo, hi], capsize=4, color="#4a78b5")
    ax.set_ylabel("success rate (%), 95 % CI")
    # Low rates stay readable: the axis ends a little above the highest interval, 100 at most.
    ax.set_ylim(0, min(100, max(10, 1.2 * max(r + h for r, h in zip(rates, hi)))))
    ax2.bar(x, lifted, color="#b5804a")
    ax2.set_ylabel("episodes that lifted the cube (%)")
    ax2.set_ylim(0, min(100, max(10, 1.2 * max(lifted))))
    for a in (ax, ax2):
        a.set_xticks(list(x), labels, rotation=25, ha="right", fontsize=8)
    fig.suptitle(f"closed loop on {summary[0]['episodes']} held-out seeds per condition")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros eval", description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="LABEL=DIR or DIR; repeat for more models")
    parser.add_argument("--seeds", default="1000:1100", help="held-out episode seeds: start:stop or a,b,c")
    parser.add_argument("--max-steps", type=int, default=300, help="ticks per episode (20 Hz)")
    parser.add_argument("--stale-period", type=int, default=4, help="stale conditions: refresh semantics every N ticks")
    parser.add_argument("--stale-latency", type=int, default=4, help="stale conditions: a refresh is usable N ticks later")
    parser.add_argument("--out", default="eval", help="output directory")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (one torch thread each); 1 = this process")
    opts = parser.parse_args(argv)
    try:
        seeds = parse_seeds(opts.seeds)
        models = parse_models(opts.model)
        if opts.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {opts.jobs}")
    except ValueError as err:
        parser.error(str(err))
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = conditions(models, opts.stale_period, opts.stale_latency, opts.max_steps)
    summary, episodes = [], []
    with tqdm(total=len(runs) * len(seeds), desc="episodes", unit="ep") as bar:
        all_results = evaluate_runs([(models[model], config) for _, model, config in runs], seeds,
                                    jobs=opts.jobs, device=opts.device, progress=bar)
    for (label, model, config), results in zip(runs, all_results):
        wins = sum(r.success for r in results)
        summary.append({"condition": label, "model": models[model], "config": dataclasses.asdict(config),
                        "episodes": len(results), "successes": wins, "success_rate": wins / len(results),
                        "ci95": wilson_interval(wins, len(results)),
                        "lift_rate": sum(r.cube_lifted for r in results) / len(results),
                        "mean_final_target_distance_m": sum(r.final_target_distance_m for r in results) / len(results),
                        "mean_steps": sum(r.steps for r in results) / len(results)})
        episodes += [{"condition": label, **dataclasses.asdict(r)} for r in results]
    (out / "results.json").write_text(json.dumps({"summary": summary, "episodes": episodes}, indent=2))
    plot(summary, out / "success_rates.png")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
