"""The eval's conditions: the catalogue `--conditions` names (and its groups), the EvalConfig each name
runs for a model, and the pairs of conditions McNemar's exact test compares (evaluation/cli.py runs
them and writes the report)."""

from __future__ import annotations

from asyncvla_ros.control.action_loop import CHUNK_MODES
from asyncvla_ros.evaluation.closed_loop import EvalConfig
from asyncvla_ros.evaluation.stats import mcnemar_exact

DISTURB_AT_STEP = 40  # the default tick (2 s, mid-approach) at which conditions that move the cube move it (--disturb-at)

PLAN_DELAYS = (0, 1, 2, 4)  # the seam conditions' plan delays, ticks (a 3B plan takes 100-200 ms at 20 Hz)

# name -> what it runs (each for every --model).
ABLATION = {
    "sfm_only": "SFM only, synchronous semantics",
    "asyncvla": "SFM -> rater -> AFM, synchronous semantics",
    "random_mask": "AFM on a random 0.5 mask, synchronous semantics",
    "stale": "AsyncVLA with stale semantics",
    "stale_sfm_only": "SFM only with stale semantics",
    "disturbed": "AsyncVLA, the cube moved at tick --disturb-at",
    "disturbed_sfm_only": "SFM only, the cube moved at tick --disturb-at",
}
SEAMS = {f"{mode}_d{d}": f"AsyncVLA, chunk mode {mode}, plan delay {d} ticks" for mode in CHUNK_MODES for d in PLAN_DELAYS}
# Semantic refresh, the cube moved at DISTURB_AT_STEP plus 0-19 ticks by seed (any phase of a 1 Hz
# refresh): (semantic period in ticks, confidence trigger on).
REFRESH_SPREAD_STEPS = 19
REFRESH_SETUPS = {"refresh_1hz": (20, False), "refresh_1hz_trigger": (20, True), "refresh_5hz": (4, False)}
_MOVED = f"the cube moved at tick --disturb-at plus 0-{REFRESH_SPREAD_STEPS}"
REFRESH = {"refresh_1hz": f"AsyncVLA, semantics at 1 Hz, {_MOVED}",
           "refresh_1hz_trigger": "as refresh_1hz, plus a refresh whenever the chunk confidence drops (--trigger-drop)",
           "refresh_5hz": f"AsyncVLA, semantics at 5 Hz, {_MOVED}"}
CONDITIONS = ABLATION | SEAMS | REFRESH
GROUPS = {"ablation": list(ABLATION), "seams": list(SEAMS), "refresh": list(REFRESH)}
# Paired comparisons reported when both conditions ran: (condition, baseline).
PAIRS = (("asyncvla", "sfm_only"), ("asyncvla", "random_mask"), ("stale", "asyncvla"), ("stale", "stale_sfm_only"),
         ("disturbed", "disturbed_sfm_only"))


def parse_conditions(text: str) -> list[str]:
    """"asyncvla,sfm_only" -> the named conditions, in catalogue order; a group name ("ablation",
    "seams") stands for its conditions."""
    names = [m for n in text.split(",") if n.strip() for m in GROUPS.get(n.strip(), [n.strip()])]
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown or not names:
        raise ValueError(f"--conditions: unknown {unknown or names}; choose from {', '.join(CONDITIONS)}")
    return [n for n in CONDITIONS if n in names]


def conditions(models: dict[str, str], names: list[str], stale_period: int, stale_latency: int,
               max_steps: int, trigger_drop: float = 0.05,
               disturb_at: int = DISTURB_AT_STEP) -> list[tuple[str, str, str, EvalConfig]]:
    """(condition name, label, model label, config) for every condition of the run, for every model, in
    model order (the first model's conditions first)."""
    out = []
    for label in models:
        for name in names:
            if name in ("sfm_only", "asyncvla", "random_mask"):
                out.append((name, f"{label}: {name}", label, EvalConfig(mode=name, max_steps=max_steps)))
            elif name in SEAMS:
                mode, d = name.rsplit("_d", 1)
                out.append((name, f"{label}: {mode}, plan delay {d}", label,
                            EvalConfig(mode="asyncvla", max_steps=max_steps, chunk_mode=mode, plan_delay_ticks=int(d))))
            elif name in REFRESH:
                period, triggered = REFRESH_SETUPS[name]
                out.append((name, f"{label}: semantics every {period} ticks{', confidence trigger' if triggered else ''}, cube moved",
                            label, EvalConfig(mode="asyncvla", max_steps=max_steps, semantic_period_steps=period,
                                              disturb_at_step=disturb_at, disturb_spread_steps=REFRESH_SPREAD_STEPS,
                                              trigger_drop=trigger_drop if triggered else 0.0)))
            elif name in ("stale", "stale_sfm_only"):
                mode = "sfm_only" if name == "stale_sfm_only" else "asyncvla"
                out.append((name, f"{label}: {mode}, stale semantics", label,
                            EvalConfig(mode=mode, semantic_period_steps=stale_period, semantic_latency_steps=stale_latency,
                                       max_steps=max_steps)))
            else:
                mode = "sfm_only" if name == "disturbed_sfm_only" else "asyncvla"
                out.append((name, f"{label}: {mode}, cube moved at tick {disturb_at}", label,
                            EvalConfig(mode=mode, max_steps=max_steps, disturb_at_step=disturb_at)))
    return out


def paired_tests(runs: list[tuple[str, str, str, EvalConfig]], results: list[list]) -> list[dict]:
    """McNemar's exact test (same seeds) for each PAIRS entry that ran, within each model, and for each
    condition of the first model against the same condition of each other model."""
    first = runs[0][2] if runs else ""
    out = []
    for (name_a, label_a, model_a, _), res_a in zip(runs, results):
        for (name_b, label_b, model_b, _), res_b in zip(runs, results):
            within = model_a == model_b and (name_a, name_b) in PAIRS
            across = name_a == name_b and model_a == first and model_b != first
            if within or across:
                assert [r.seed for r in res_a] == [r.seed for r in res_b], "paired conditions run the same seeds"
                out.append({"condition": label_a, "baseline": label_b,
                            **mcnemar_exact([r.success for r in res_a], [r.success for r in res_b])})
    return out
