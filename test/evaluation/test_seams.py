"""Seam figures on hand-made command sequences (the seam conditions run in test_closed_loop)."""

import numpy as np
import pytest

from asyncvla_ros.evaluation.seams import episode_seams, summarize

DT = 0.05
ARM = np.array([0, 1])  # joint 2 plays the gripper: not measured


def ramp(n, v=0.2):
    return [np.array([v * DT * k, 0.0, 0.0]) for k in range(n)]


def test_a_jump_at_a_switch_is_counted_there_and_the_smooth_ticks_are_the_baseline():
    commands = ramp(8)
    commands[5] = commands[5] + np.array([0.01, 0.0, 0.5])  # a 0.01 rad step on joint 0; the gripper's step is ignored
    switched = [k in (2, 5) for k in range(8)]
    f = episode_seams(commands, switched, DT, ARM)
    # Tick 5: v jumps by 0.01 / DT = 0.2 rad/s; tick 6 back by 2 x 0.2 (the step is undone), seen elsewhere.
    assert f["jumps_at_switch"] == pytest.approx([0.0, 0.2])
    assert max(f["jumps_elsewhere"]) == pytest.approx(0.4)
    s = summarize([f, f])
    assert s["switches"] == 4 and s["switch_jump_max_rad_s"] == pytest.approx(0.2)
    assert s["mean_abs_jerk_rad_s3"] > 0


def test_a_hold_starts_a_new_run_and_a_smooth_ramp_has_no_jerk():
    commands = ramp(4) + [None] + ramp(4, v=1.0)  # the restart after the hold is no jump
    f = episode_seams(commands, [True] * 9, DT, ARM)
    assert f["jumps_at_switch"] == pytest.approx([0.0] * 4)
    assert f["jerk_sum"] == pytest.approx(0.0, abs=1e-6) and f["jerk_n"] == 4
    assert summarize([episode_seams([], [], DT, ARM)])["switch_jump_p99_rad_s"] is None
