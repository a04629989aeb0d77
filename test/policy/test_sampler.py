"""Algorithm 1: the one sampler behind SFM and AFM."""

import pytest
import torch

from asyncvla_ros.policy.sampler import flow_sample


def test_constant_velocity_is_integrated_exactly():
    noise = torch.randn(2, 5, 3, dtype=torch.float64)
    c = torch.randn(2, 5, 3, dtype=torch.float64)
    out = flow_sample(lambda a, t: c, noise, torch.ones(2, 5, dtype=torch.bool), num_steps=10)
    # Euler on a constant field is exact: a(0) = a(1) - c.
    torch.testing.assert_close(out, noise - c, rtol=0, atol=1e-12)


def test_linear_path_velocity_recovers_the_target_for_any_step_count():
    target = torch.randn(1, 4, 2, dtype=torch.float64)
    noise = torch.randn(1, 4, 2, dtype=torch.float64)
    for steps in (1, 3, 10):
        out = flow_sample(lambda a, t: noise - target, noise, torch.ones(1, 4, dtype=torch.bool), num_steps=steps)
        torch.testing.assert_close(out, target, rtol=0, atol=1e-12)


def test_each_step_sees_tau_on_masked_tokens_and_zero_elsewhere():
    seen = []
    mask = torch.tensor([[True, False, True]])

    def velocity(a, t):
        seen.append(t.clone())
        return torch.zeros_like(a)

    flow_sample(velocity, torch.zeros(1, 3, 1), mask, init=torch.zeros(1, 3, 1), num_steps=4)
    assert [float(t[0, 0]) for t in seen] == [1.0, 0.75, 0.5, 0.25]
    assert all(float(t[0, 1]) == 0.0 for t in seen)


def test_unmasked_tokens_are_bit_identical():
    init = torch.randn(3, 6, 4)
    mask = torch.rand(3, 6) < 0.5
    out = flow_sample(lambda a, t: torch.randn_like(a) * 100, torch.randn(3, 6, 4), mask, init=init)
    assert torch.equal(out[~mask], init[~mask])
    assert not torch.equal(out[mask], init[mask])


def test_all_zero_mask_returns_input_unchanged():
    init = torch.randn(2, 5, 3)
    out = flow_sample(lambda a, t: torch.ones_like(a), torch.randn(2, 5, 3), torch.zeros(2, 5, dtype=torch.bool), init=init)
    assert torch.equal(out, init)


def test_sfm_needs_every_token_masked_without_init():
    with pytest.raises(ValueError, match="init"):
        flow_sample(lambda a, t: a, torch.zeros(1, 2, 1), torch.tensor([[True, False]]))
    with pytest.raises(ValueError, match="num_steps"):
        flow_sample(lambda a, t: a, torch.zeros(1, 2, 1), torch.ones(1, 2), num_steps=0)
