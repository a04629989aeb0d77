"""`asyncvla-ros eval`: closed-loop success rates on held-out sim seeds, per condition, in one run.

    asyncvla-ros eval --model main=runs/full/final --model naive=runs/naive/final --seeds 1000:1100 --out eval/

A condition is (model, mode, semantic staleness, disturbance, chunk mode and plan delay), chosen by
name with --conditions (default: the group "ablation") and run for every --model. The ablation runs
SFM only, AsyncVLA and AFM with a random 0.5 mask with synchronous semantics, AsyncVLA and SFM with
the cube moved mid-approach (a disturbance the policy must recover from), and AsyncVLA with stale
semantics (refresh every --stale-period ticks, usable --stale-latency ticks later), which compares
naive cache reuse against history + time-misalignment training when the second model is trained
without them. The group "seams" runs AsyncVLA in every chunk mode (ensemble, latest, continue) at
plan delays 0, 1, 2 and 4 ticks and reports the velocity jumps at chunk switches and the jerk
(evaluation/seams.py); the group "refresh" moves the cube with semantics at 1 Hz, with and without
the confidence trigger, and at 5 Hz, and reports refreshes per episode and how soon one saw the move.
Every condition runs the same seeds, so conditions are compared pair by pair (McNemar's exact test):
within each model (AsyncVLA vs SFM, vs the random mask, stale vs fresh semantics, AsyncVLA vs SFM
with stale semantics and with the cube moved) and each of the first model's conditions against the
same condition of every other model.
Writes results.json (per-episode and per-condition rates with 95 % Wilson intervals, the paired
tests), success_rates.png (and seams.png when seam conditions ran), and prints the tables.
`--merge DIR...` runs nothing: it joins the results.json of earlier runs on the same seeds (one
condition per run, or runs on different machines) into one report, paired tests and plots included.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from asyncvla_ros.evaluation.closed_loop import evaluate_runs
from asyncvla_ros.evaluation.conditions import (ABLATION, CONDITIONS, DISTURB_AT_STEP, PLAN_DELAYS, REFRESH, SEAMS,
                                                conditions, paired_tests, parse_conditions)
from asyncvla_ros.evaluation.seams import summarize as seam_summary
from asyncvla_ros.evaluation.stats import wilson_interval
from asyncvla_ros.sim.task import colour_of


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


class _Outcome(NamedTuple):
    """What the paired tests read from an episode of an earlier run's report."""

    seed: int
    success: bool


def merge(dirs: list[str]) -> tuple[list[dict], list[dict], list[dict]]:
    """The results.json of earlier runs -> (summary, paired tests, episodes) as one run of all their
    conditions would have written them: models in order of first appearance, conditions in catalogue
    order within each."""
    summary, episodes = [], []
    for d in dirs:
        path = Path(d) / "results.json"
        try:
            report = json.loads(path.read_text())
            # What the merge, the tables and the plot read.
            missing = [f"{part}.{key}" for part, keys in (("summary", ("condition", "name", "config", "ci95")),
                                                          ("episodes", ("condition", "seed", "success")))
                       for entry in report[part] for key in keys if key not in entry]
            if missing:
                raise KeyError(", ".join(sorted(set(missing))))
            summary += report["summary"]
            episodes += report["episodes"]
        except FileNotFoundError:
            raise ValueError(f"--merge: {path} does not exist (a directory `asyncvla-ros eval --out` wrote)") from None
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"--merge: {path} is not an eval report ({type(err).__name__}: {err})") from None
    labels = [s["condition"] for s in summary]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"--merge: {repeated} appear in more than one report; merge each condition once")
    models = list(dict.fromkeys(label.partition(": ")[0] for label in labels))
    order = list(CONDITIONS)
    summary.sort(key=lambda s: (models.index(s["condition"].partition(": ")[0]),
                                order.index(s["name"]) if s["name"] in order else len(order)))
    outcomes = {label: [] for label in labels}
    for e in episodes:
        if e["condition"] not in outcomes:
            raise ValueError(f"--merge: an episode of condition {e['condition']!r} has no summary")
        outcomes[e["condition"]].append(_Outcome(e["seed"], bool(e["success"])))
    seed_lists = {tuple(o.seed for o in v) for v in outcomes.values()}
    if len(seed_lists) > 1:
        raise ValueError("--merge: the reports ran different seeds (or counts); paired tests need the same seeds in each")
    runs = [(s["name"], s["condition"], s["condition"].partition(": ")[0], None) for s in summary]
    position = {s["condition"]: i for i, s in enumerate(summary)}
    episodes.sort(key=lambda e: position[e["condition"]])  # stable: each condition's episodes keep their seed order
    return summary, paired_tests(runs, [outcomes[s["condition"]] for s in summary]), episodes


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


def plot_seams(summary: list[dict], path: Path) -> None:
    """Per plan delay, the mean velocity jump around a chunk switch (tick 0) for each chunk mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from asyncvla_ros.evaluation.seams import PROFILE_TICKS

    seams = [s for s in summary if s["name"] in SEAMS]
    delays = sorted({s["config"]["plan_delay_ticks"] for s in seams})
    fig, axes = plt.subplots(1, len(delays), figsize=(3.6 * len(delays), 3.4), sharey=True, squeeze=False)
    offsets = list(range(-PROFILE_TICKS, PROFILE_TICKS + 1))
    for ax, d in zip(axes[0], delays):
        for s in (s for s in seams if s["config"]["plan_delay_ticks"] == d):
            profile = [float("nan") if v is None else v for v in s["seams"]["jump_profile_rad_s"]]
            ax.plot(offsets, profile, marker="o", label=s["config"]["chunk_mode"])
        ax.axvline(0, color="grey", lw=0.8, ls=":")
        ax.set_title(f"plan delay {d} ticks")
        ax.set_xlabel("ticks from a chunk switch")
    axes[0][0].set_ylabel("velocity jump |v_k - v_(k-1)|, rad/s")
    axes[0][-1].legend()
    fig.suptitle(f"commanded arm joints around chunk switches, {seams[0]['episodes']} episodes per condition")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asyncvla-ros eval", description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="LABEL=DIR or DIR; repeat for more models")
    parser.add_argument("--merge", nargs="+", metavar="DIR", default=[],
                        help="run nothing: join the reports (results.json) that earlier runs on the same seeds wrote "
                             "into these directories into one, with the paired tests and plots, in --out")
    parser.add_argument("--seeds", default="1000:1100", help="held-out episode seeds: start:stop or a,b,c")
    parser.add_argument("--max-steps", type=int, default=300, help="ticks per episode (20 Hz)")
    parser.add_argument("--conditions", default="ablation",
                        help="comma list of the conditions to run, or the groups 'ablation' (the default: "
                             f"{', '.join(ABLATION)}) and 'seams' (every chunk mode at plan delays {PLAN_DELAYS}): "
                             + "; ".join(f"{k}: {v}" for k, v in CONDITIONS.items()))
    parser.add_argument("--stale-period", type=int, default=4, help="stale conditions: refresh semantics every N ticks")
    parser.add_argument("--stale-latency", type=int, default=4, help="stale conditions: a refresh is usable N ticks later")
    parser.add_argument("--disturb-at", type=int, default=DISTURB_AT_STEP,
                        help="the tick at which the disturbed and refresh conditions move the cube (unless the arm "
                             "already touches it)")
    parser.add_argument("--trigger-drop", type=float, default=0.05,
                        help="refresh_1hz_trigger: the confidence drop below its recent median that asks for a refresh")
    parser.add_argument("--out", default="eval", help="output directory")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (one torch thread each); 1 = this process")
    parser.add_argument("--camera-map", nargs="+", default=[], metavar="POLICY:=SIM",
                        help="for a model trained on other camera names: the sim camera each reads, e.g. top:=front")
    opts = parser.parse_args(argv)
    if opts.merge:
        if opts.model:
            parser.error("--merge joins earlier reports; it takes no --model")
        try:
            summary, paired, episodes = merge(opts.merge)
        except ValueError as err:
            parser.error(str(err))
        return report(summary, paired, episodes, Path(opts.out))
    if not opts.model:
        parser.error("--model is required (or --merge DIR...)")
    try:
        seeds = parse_seeds(opts.seeds)
        models = parse_models(opts.model)
        names = parse_conditions(opts.conditions)
        if opts.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {opts.jobs}")
        if opts.disturb_at < 1:
            raise ValueError(f"--disturb-at must be a tick >= 1, got {opts.disturb_at}")
    except ValueError as err:
        parser.error(str(err))
    Path(opts.out).mkdir(parents=True, exist_ok=True)  # a bad --out fails now, not after the episodes
    runs = conditions(models, names, opts.stale_period, opts.stale_latency, opts.max_steps, opts.trigger_drop, opts.disturb_at)
    runs = [(name, label, model, dataclasses.replace(config, camera_map=tuple(opts.camera_map))) for name, label, model, config in runs]
    summary, episodes = [], []
    with tqdm(total=len(runs) * len(seeds), desc="episodes", unit="ep") as bar:
        all_results = evaluate_runs([(models[model], config) for _, _, model, config in runs], seeds,
                                    jobs=opts.jobs, device=opts.device, progress=bar)
    for (name, label, model, config), results in zip(runs, all_results):
        wins = sum(r.success for r in results)
        summary.append({"condition": label, "name": name, "model": models[model], "config": dataclasses.asdict(config),
                        "episodes": len(results), "successes": wins, "success_rate": wins / len(results),
                        "ci95": wilson_interval(wins, len(results)),
                        "lift_rate": sum(r.cube_lifted for r in results) / len(results),
                        "wrong_area_rate": sum(_in_wrong_area(r) for r in results) / len(results),
                        "mean_final_target_distance_m": sum(r.final_target_distance_m for r in results) / len(results),
                        "mean_steps": sum(r.steps for r in results) / len(results),
                        "mean_regenerated_per_chunk": sum(r.mean_regenerated for r in results) / len(results),
                        "disturbed_episodes": sum(r.disturbed for r in results),
                        "disturbed_successes": sum(r.disturbed and r.success for r in results),
                        "seams": seam_summary([r.seams for r in results]),
                        "mean_refreshes": sum(r.refreshes for r in results) / len(results),
                        "mean_triggered_refreshes": sum(r.triggered_refreshes for r in results) / len(results),
                        "disturbance_seen_after_s_median": _median([r.disturbance_seen_after_s for r in results])})
        episodes += [{"condition": label, **dataclasses.asdict(r)} for r in results]
    return report(summary, paired_tests(runs, all_results), episodes, Path(opts.out))


def report(summary: list[dict], paired: list[dict], episodes: list[dict], out: Path) -> int:
    """Writes results.json and the plots into `out`, and prints the results."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"summary": summary, "paired_tests": paired, "episodes": episodes}, indent=2))
    plot(summary, out / "success_rates.png")
    if any(s["name"] in SEAMS for s in summary):
        plot_seams(summary, out / "seams.png")
    print(json.dumps({"summary": summary, "paired_tests": paired}, indent=2))
    print(table(summary, paired))
    return 0


def _in_wrong_area(result) -> bool:
    return result.final_area is not None and result.final_area != colour_of(result.instruction)


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def table(summary: list[dict], paired: list[dict]) -> str:
    """The results as Markdown tables (the README's)."""
    lines = ["| condition | successes | success rate (95 % CI) | cube lifted | cube in another area | "
             "final cube-to-area distance | AFM-regenerated steps per chunk |", "|---|---|---|---|---|---|---|"]
    for s in summary:
        lo, hi = s["ci95"]
        lines.append(f"| {s['condition']} | {s['successes']}/{s['episodes']} | {100 * s['success_rate']:.0f} % "
                     f"({100 * lo:.1f}-{100 * hi:.1f} %) | {100 * s['lift_rate']:.0f} % | "
                     f"{100 * s['wrong_area_rate']:.0f} % | {s['mean_final_target_distance_m']:.3f} m | {s['mean_regenerated_per_chunk']:.1f} |")
    if paired:
        lines += ["", "| paired (same seeds) | both solved | only the first | only the baseline | neither | McNemar exact p |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {p['condition']} vs {p['baseline']} | {p['both']} | {p['a_only']} | {p['b_only']} | {p['neither']} | "
                  f"{p['p_value']:.3g} |" for p in paired]
    moved = [s for s in summary if s["config"]["disturb_at_step"]]
    if moved:
        lines += ["", "| condition | episodes with the cube moved (the arm did not touch it yet) | solved of those |", "|---|---|---|"]
        lines += [f"| {s['condition']} | {s['disturbed_episodes']}/{s['episodes']} | {s.get('disturbed_successes', '-')} |" for s in moved]
    seams = [s for s in summary if s["name"] in SEAMS]
    if seams:
        def f(x) -> str:
            return "-" if x is None else f"{x:g}"

        lines += ["", "| condition | velocity jump at switches p99 / max (rad/s) | elsewhere p99 (rad/s) | mean abs jerk (rad/s³) | "
                  "success rate (95 % CI) |", "|---|---|---|---|---|"]
        for s in seams:
            m, (lo, hi) = s["seams"], s["ci95"]
            lines.append(f"| {s['condition']} | {f(m['switch_jump_p99_rad_s'])} / {f(m['switch_jump_max_rad_s'])} | "
                         f"{f(m['other_jump_p99_rad_s'])} | {f(m['mean_abs_jerk_rad_s3'])} | "
                         f"{100 * s['success_rate']:.0f} % ({100 * lo:.1f}-{100 * hi:.1f} %) |")
    refresh = [s for s in summary if s["name"] in REFRESH]
    if refresh:
        lines += ["", "| condition | success rate (95 % CI) | refreshes per episode (triggered) | "
                  "disturbance to first refresh showing it, median |", "|---|---|---|---|"]
        for s in refresh:
            lo, hi = s["ci95"]
            seen = s["disturbance_seen_after_s_median"]
            lines.append(f"| {s['condition']} | {100 * s['success_rate']:.0f} % ({100 * lo:.1f}-{100 * hi:.1f} %) | "
                         f"{s['mean_refreshes']:.1f} ({s['mean_triggered_refreshes']:.1f}) | "
                         f"{'-' if seen is None else f'{seen:.2f} s'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
