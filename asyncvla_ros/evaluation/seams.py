"""Seam figures: how smoothly an action loop's commands run across chunk switches.

From one episode's per-tick commands (the action loop's, before the safety filter's clamps, so a jump
the filter would hide still counts) and the ticks where a chunk took effect (`TickResult.switched`):

- velocity jump at tick k: max over joints of |v_k - v_(k-1)|, v_k = (c_k - c_(k-1)) / dt, rad/s;
  at switch ticks, and at the other ticks as the baseline (with no plan delay every tick switches);
- mean absolute jerk: |c_k - 3 c_(k-1) + 3 c_(k-2) - c_(k-3)| / dt^3 over joints and ticks, rad/s^3;
- the jump profile: the mean velocity jump PROFILE_TICKS before to PROFILE_TICKS after a switch.

Only runs of acting ticks count (a hold, and the first plan's landing from it, start a new run), and
only the arm joints: the gripper's open/close is a step on purpose.
"""

from __future__ import annotations

import numpy as np

PROFILE_TICKS = 4


def episode_seams(commands: list[np.ndarray | None], switched: list[bool], period_s: float, joints: np.ndarray) -> dict:
    """Per-episode raw figures: jumps at switches, jumps elsewhere, and the jerk sum and count.

    Args:
        commands: per tick, the loop's command, or None on a tick that sent nothing or held.
        switched: per tick, whether a chunk took effect.
        period_s: control period.
        joints: indices of the joints to measure.
    """
    at_switch, elsewhere, jerk_sum, jerk_n = [], [], 0.0, 0
    jumps: list[float | None] = []  # per tick
    run: list[np.ndarray] = []
    for command, switch in zip(commands, switched):
        jump = None
        if command is None:
            run = []
        else:
            run.append(np.asarray(command, dtype=np.float64)[joints])
        if len(run) >= 3:
            v1, v0 = (run[-1] - run[-2]) / period_s, (run[-2] - run[-3]) / period_s
            jump = float(np.abs(v1 - v0).max())
            (at_switch if switch else elsewhere).append(jump)
        if len(run) >= 4:
            jerk = (run[-1] - 3 * run[-2] + 3 * run[-3] - run[-4]) / period_s**3
            jerk_sum, jerk_n = jerk_sum + float(np.abs(jerk).sum()), jerk_n + len(jerk)
        jumps.append(jump)
    offsets = range(-PROFILE_TICKS, PROFILE_TICKS + 1)
    profile_sum, profile_n = [0.0] * len(offsets), [0] * len(offsets)
    for k, switch in enumerate(switched[:len(jumps)]):
        if not switch or jumps[k] is None:
            continue
        for i, o in enumerate(offsets):
            if 0 <= k + o < len(jumps) and jumps[k + o] is not None:
                profile_sum[i] += jumps[k + o]
                profile_n[i] += 1
    return {"jumps_at_switch": at_switch, "jumps_elsewhere": elsewhere, "jerk_sum": jerk_sum, "jerk_n": jerk_n,
            "profile_sum": profile_sum, "profile_n": profile_n}


def summarize(episodes: list[dict]) -> dict:
    """Pooled over episodes: p99 and max velocity jump at switches (and p99 elsewhere), mean |jerk|, and
    the jump profile around switches (offsets -PROFILE_TICKS .. PROFILE_TICKS)."""
    at = np.concatenate([e["jumps_at_switch"] for e in episodes] + [np.zeros(0)])
    other = np.concatenate([e["jumps_elsewhere"] for e in episodes] + [np.zeros(0)])
    n = sum(e["jerk_n"] for e in episodes)

    def pct(x: np.ndarray, q: float) -> float | None:
        return round(float(np.percentile(x, q)), 4) if len(x) else None

    return {
        "switches": int(len(at)),
        "switch_jump_p50_rad_s": pct(at, 50),
        "switch_jump_p99_rad_s": pct(at, 99),
        "switch_jump_max_rad_s": round(float(at.max()), 4) if len(at) else None,
        "other_jump_p50_rad_s": pct(other, 50),
        "other_jump_p99_rad_s": pct(other, 99),
        "mean_abs_jerk_rad_s3": round(sum(e["jerk_sum"] for e in episodes) / n, 2) if n else None,
        "jump_profile_rad_s": [round(s_ / n_, 4) if n_ else None for s_, n_ in
                               zip(np.sum([e["profile_sum"] for e in episodes], 0), np.sum([e["profile_n"] for e in episodes], 0))],
    }
