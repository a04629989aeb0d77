"""The confidence trigger on synthetic confidences: fires on a drop, not on noise, and holds off."""

import numpy as np
import pytest

from asyncvla_ros.control.refresh_trigger import RefreshTrigger, RefreshTriggerConfig

MS = 1_000_000


def feed(trigger, levels, start_ns=0, period_ms=50):
    fired = []
    for i, level in enumerate(levels):
        out = trigger.observe(start_ns + i * period_ms * MS, np.full(10, level))
        if out is not None:
            fired.append((i, out))
    return fired


def test_fires_on_a_drop_below_the_recent_median_and_not_on_noise():
    trigger = RefreshTrigger(RefreshTriggerConfig(trigger_drop=0.1, trigger_window=10, trigger_hold_off_s=1.0))
    rng = np.random.default_rng(0)
    steady = list(0.7 + rng.uniform(-0.04, 0.04, 30))
    assert feed(trigger, steady) == []
    fired = feed(trigger, [0.55, 0.55], start_ns=30 * 50 * MS)
    assert [i for i, _ in fired] == [0] and trigger.fired == 1
    info = fired[0][1]
    assert info.confidence == pytest.approx(0.55) and info.recent == pytest.approx(0.7, abs=0.04)
    assert "mean confidence 0.55 < recent median 0.7" in info.reason


def test_holds_off_after_firing_and_fires_again_after_the_hold_off():
    trigger = RefreshTrigger(RefreshTriggerConfig(trigger_drop=0.1, trigger_window=4, trigger_hold_off_s=1.0))
    # Drops at chunks 4, 8 (0.2 s later: held off) and 25 (1.05 s after the first).
    levels = [0.8] * 4 + [0.5] + [0.8] * 3 + [0.5] + [0.8] * 16 + [0.5]
    assert [i for i, _ in feed(trigger, levels)] == [4, 25]


def test_off_by_default_needs_a_full_window_and_can_use_the_minimum():
    assert feed(RefreshTrigger(RefreshTriggerConfig()), [0.9] * 30 + [0.1]) == []
    early = RefreshTrigger(RefreshTriggerConfig(trigger_drop=0.1, trigger_window=5))
    assert feed(early, [0.9, 0.9, 0.1]) == []  # no recent level yet
    low_step = RefreshTrigger(RefreshTriggerConfig(trigger_drop=0.2, trigger_window=3, trigger_statistic="min"))
    for _ in range(3):
        low_step.observe(0, np.full(10, 0.8))
    one_bad_step = np.full(10, 0.8)
    one_bad_step[7] = 0.3
    assert low_step.observe(10 * MS, one_bad_step) is not None
    with pytest.raises(ValueError, match="trigger_statistic must be one of"):
        RefreshTriggerConfig(trigger_statistic="max")
