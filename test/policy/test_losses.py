"""Algorithm 2's unified loss, Eq. 6's pseudo-labels and the stale-semantics helpers."""

import pytest
import torch

from asyncvla_ros.policy.losses import (
    misaligned_index,
    noise_chunks,
    perturb_history,
    rater_loss,
    rater_pseudo_labels,
    sample_semantic_delay,
    unified_flow_loss,
)


def test_pseudo_labels_span_0_01_to_0_99_by_error_rank():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(4, 10, 3, generator=g)
    sfm = target + torch.randn(4, 10, 3, generator=g) * torch.linspace(0.1, 2, 10)[None, :, None]
    q = rater_pseudo_labels(sfm, target)
    assert q.min() >= 0.01 - 1e-6 and q.max() <= 0.99 + 1e-6
    err = (sfm - target).square().mean(-1)
    rows = torch.arange(4)
    torch.testing.assert_close(q[rows, err.argmin(1)], torch.full((4,), 0.99))
    torch.testing.assert_close(q[rows, err.argmax(1)], torch.full((4,), 0.01), atol=1e-5, rtol=0)
    # Higher error, lower label, within each chunk.
    order = err.argsort(dim=1)
    assert (q.gather(1, order).diff(dim=1) <= 1e-7).all()


def test_pseudo_labels_hand_computed_and_invalid_tokens_ignored():
    target = torch.zeros(1, 4, 1)
    sfm = torch.tensor([[[0.0], [1.0], [2.0], [100.0]]])  # errors 0, 1, 4, 10000
    valid = torch.tensor([[True, True, True, False]])
    q = rater_pseudo_labels(sfm, target, valid)
    expected = torch.tensor([[0.99, 0.99 - 0.98 * 1 / (4 + 1e-6), 0.99 - 0.98 * 4 / (4 + 1e-6), 0.99]])
    torch.testing.assert_close(q, expected)


def test_unified_loss_has_no_gradient_from_unmasked_tokens():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(3, 8, 4, generator=g, requires_grad=True)
    u = torch.randn(3, 8, 4, generator=g)
    mask = torch.rand(3, 8, generator=g) < 0.5
    valid = torch.ones(3, 8, dtype=torch.bool)
    valid[0, -2:] = False
    unified_flow_loss(v, u, mask, valid).backward()
    assert torch.all(v.grad[~mask] == 0)
    assert torch.all(v.grad[~valid] == 0)
    assert torch.all(v.grad[mask & valid] != 0)


def test_unified_loss_with_all_ones_mask_is_the_plain_sfm_loss():
    g = torch.Generator().manual_seed(2)
    v, u = torch.randn(2, 5, 3, generator=g), torch.randn(2, 5, 3, generator=g)
    ones = torch.ones(2, 5, dtype=torch.bool)
    torch.testing.assert_close(unified_flow_loss(v, u, ones), torch.nn.functional.mse_loss(v, u))


def test_noising_follows_algorithm_2():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(4096, 6, 2, generator=g)
    n = noise_chunks(a, torch.Generator().manual_seed(4))
    m = n.mask.unsqueeze(-1)
    # Unmasked tokens are the clean actions, and carry time 0.
    assert torch.equal(n.noisy_actions[~n.mask], a[~n.mask])
    assert torch.all(n.token_time[~n.mask] == 0)
    # noise = u + a, and masked tokens sit on the straight path a - tau (a - noise).
    noise = n.target_velocity + a
    tau = n.token_time.amax(dim=1)  # every masked token of a sample shares tau
    has = n.mask.any(1)
    expected = a - tau[:, None, None] * (a - noise) * m
    torch.testing.assert_close(n.noisy_actions[has], expected[has])
    # tau ~ Beta(1.5, 1): mean 0.6; mask rate ~ U(0, 1) per sample: mean 0.5.
    assert abs(tau[n.mask.all(1)].mean().item() - 0.6) < 0.05
    assert abs(n.mask.float().mean().item() - 0.5) < 0.03
    assert noise_chunks(a[:8], sfm_only=True).mask.all()


def test_rater_loss_ignores_invalid_tokens():
    conf = torch.tensor([[0.5, 0.9]])
    labels = torch.tensor([[0.5, 0.1]])
    assert rater_loss(conf, labels, torch.tensor([[True, False]])).item() == 0.0
    assert rater_loss(conf, labels).item() == pytest.approx(0.32)


def test_misalignment_pairs_a_target_with_semantics_up_to_one_chunk_older():
    delay = sample_semantic_delay(10000, 10, torch.Generator().manual_seed(5))
    assert delay.min() == 0 and delay.max() == 10
    step = torch.tensor([25, 3, 40])
    start = torch.tensor([20, 0, 0])
    idx = misaligned_index(step, start, torch.tensor([8, 2, 0]))
    assert idx.tolist() == [20, 1, 40]


def test_perturbed_history_has_the_requested_noise():
    h = torch.zeros(20000, 3)
    p = perturb_history(h, 0.05, torch.Generator().manual_seed(6))
    assert abs(p.std().item() - 0.05) < 0.002
    assert torch.equal(perturb_history(h, 0.0), h)
    with pytest.raises(ValueError, match="std"):
        perturb_history(h, -1.0)


def test_normalizer_statistics_from_data_round_trip():
    import numpy as np

    from asyncvla_ros.policy.normalization import FeatureStats, Normalizer

    data = np.random.default_rng(0).normal([1.0, -2.0, 0.5], [0.5, 2.0, 0.0], size=(1000, 3))
    stats = FeatureStats.from_data(data)
    assert stats.std[2] == 0.01  # a constant dimension gets the floor, not a division by zero
    norm = Normalizer(state=stats, action=stats)
    z = norm.normalize_action(data.astype(np.float32))
    assert abs(z[:, :2].mean()) < 0.05 and abs(z[:, :2].std() - 1) < 0.05
    np.testing.assert_allclose(norm.unnormalize_action(z), data, atol=1e-5)
    t = torch.as_tensor(data[:4], dtype=torch.float32)
    torch.testing.assert_close(norm.unnormalize_action(norm.normalize_action(t)), t)
    with pytest.raises(ValueError, match="finite"):
        FeatureStats.from_data(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="std must be finite and > 0"):
        FeatureStats(mean=[0.0], std=[0.0])


def test_sfm_fraction_adds_fully_masked_samples():
    a = torch.randn(4096, 10, 2, generator=torch.Generator().manual_seed(5))
    full = lambda n: n.mask.all(1).float().mean().item()  # noqa: E731
    plain = noise_chunks(a, torch.Generator().manual_seed(6))
    # Algorithm 2 alone masks a whole chunk with probability 1/(L+1).
    assert abs(full(plain) - 1 / 11) < 0.02
    mixed = noise_chunks(a, torch.Generator().manual_seed(6), sfm_fraction=0.5)
    assert abs(full(mixed) - (0.5 + 0.5 / 11)) < 0.03
    assert noise_chunks(a[:16], torch.Generator().manual_seed(6), sfm_fraction=1.0).mask.all()


def test_prefix_fraction_gives_clean_prefixes_up_to_max_prefix_and_the_rest_masked():
    a = torch.randn(4096, 10, 2, generator=torch.Generator().manual_seed(5))
    n = noise_chunks(a, torch.Generator().manual_seed(6), prefix_fraction=0.5, max_prefix=4)
    m = n.mask
    clean_prefix = (~m).cumprod(1).sum(1)  # leading unmasked steps
    is_prefix = m.sum(1) == 10 - clean_prefix  # clean prefix, then every step masked
    shaped = is_prefix & (clean_prefix >= 1) & (clean_prefix <= 4)
    # Half the samples are prefix masks (a few of Alg. 2's own draws look like one too).
    assert 0.47 < shaped.float().mean().item() < 0.6
    lengths = clean_prefix[shaped]
    assert set(lengths.tolist()) == {1, 2, 3, 4}
    torch.testing.assert_close(n.noisy_actions[~m], a[~m])  # the prefix is the clean actions
    assert noise_chunks(a[:64], torch.Generator().manual_seed(6), prefix_fraction=1.0, max_prefix=3).mask[:, 3:].all()
    with pytest.raises(ValueError, match="max_prefix must be in"):
        noise_chunks(a[:4], prefix_fraction=0.5, max_prefix=0)
