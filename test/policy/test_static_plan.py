"""The static planner (static_plan.py) against the eager reference: on CPU the stages run without
graphs, so these tests check the buffers and the math that a CUDA graph replays."""

import numpy as np
import pytest

from test.policy.conftest import INSTRUCTIONS, random_images, tiny_config

torch = pytest.importorskip("torch")

from asyncvla_ros.policy.config import ActionExpertConfig, BackboneConfig, PolicyConfig, tiny_vlm_config  # noqa: E402
from asyncvla_ros.policy.policy import AsyncVLAPolicy  # noqa: E402

TOL = 1e-5


def mid_config() -> PolicyConfig:
    """8 decoder layers of width 512, the issue's mid-size shape, with the semantic-age input."""
    backbone = BackboneConfig(vlm_config=tiny_vlm_config(hidden_size=512, num_layers=8), max_prefix_tokens=96)
    return PolicyConfig(backbone=backbone, expert=ActionExpertConfig(history_len=20, chunk_len=10, semantic_age_max_s=1.0))


def pair(config: PolicyConfig):
    """Two copies of one policy: one eager, one on the static path."""
    eager = AsyncVLAPolicy.build(config, INSTRUCTIONS, seed=3).eval()
    static = AsyncVLAPolicy.build(config, INSTRUCTIONS, seed=3).eval()
    static.set_plan_path("static")
    return eager, static


def calls(policy, rng):
    """Plans over two semantic conditions, every mode, with and without context and history."""
    e = policy.config.expert
    conds = [policy.encode(random_images(seed), INSTRUCTIONS[seed % 2], stamp_ns=seed) for seed in (0, 1)]
    out = []
    for i, mode in enumerate(["asyncvla", "random_mask", "sfm_only", "asyncvla", "random_mask", "asyncvla"]):
        k = [0, 3, e.history_len, 1, e.history_len, 2][i]
        d = [0, 0, 2, 1, 0, e.chunk_len - 1][i]
        state = rng.normal(size=e.state_dim).astype(np.float32)
        history = rng.normal(size=(k, e.action_dim)).astype(np.float32)
        context = rng.normal(size=(d, e.action_dim)).astype(np.float32) if d else None
        out.append((conds[i % 2], state, history, mode, 100 + i, context, 0.1 * i))
    return out


@pytest.mark.parametrize("make", [lambda: tiny_config(), mid_config], ids=["tiny", "8x512"])
def test_static_path_equals_eager(make):
    eager, static = pair(make())
    for cond, state, history, mode, seed, context, age in calls(eager, np.random.default_rng(0)):
        want = eager.act(cond, state, history, mode=mode, seed=seed, context=context, semantic_age_s=age)
        got = static.act(cond, state, history, mode=mode, seed=seed, context=context, semantic_age_s=age)
        for name in ("actions", "sfm_actions", "confidence"):
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=0, atol=TOL, err_msg=f"{mode}: {name}")
        np.testing.assert_array_equal(got.regenerated, want.regenerated)
        np.testing.assert_array_equal(got.context, want.context)
        if context is not None:
            np.testing.assert_array_equal(got.actions[: len(context)], context)


def test_static_path_reloads_a_new_condition_and_only_then():
    _, static = pair(tiny_config())
    planner = static._planner
    e = static.config.expert
    a, b = (static.encode(random_images(s), INSTRUCTIONS[0], stamp_ns=s) for s in (0, 1))
    state = np.zeros(e.state_dim, np.float32)
    static.act(a, state, seed=1)
    keys_a = planner.keys[0].clone()
    static.act(b, state, seed=1)
    assert not torch.equal(planner.keys[0][:, :, : planner.prefix_tokens], keys_a[:, :, : planner.prefix_tokens])
    torch.testing.assert_close(planner.keys[0][:, :, : planner.prefix_tokens], b.keys[0], rtol=0, atol=0)
    # Going back to the first condition plans from it again, not from what the buffers last held.
    want = pair(tiny_config())[0].act(a, state, seed=1)
    np.testing.assert_allclose(static.act(a, state, seed=1).actions, want.actions, rtol=0, atol=TOL)


def test_an_empty_regeneration_mask_runs_no_afm():
    _, static = pair(tiny_config())
    planner = static._planner
    ran = []
    original = planner.run
    planner.run = lambda stage: (ran.append(stage), original(stage))[1]
    cond = static.encode(random_images(), INSTRUCTIONS[0])
    r = static.act(cond, np.zeros(static.config.expert.state_dim, np.float32), mode="sfm_only", seed=0)
    assert ran == ["sfm", "rater"] and not r.regenerated.any()
    np.testing.assert_array_equal(r.actions, r.sfm_actions)
    static.act(cond, np.zeros(static.config.expert.state_dim, np.float32), mode="random_mask", seed=0)
    assert ran[-1] == "afm"


def test_plan_paths_are_checked():
    policy = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS, seed=0).eval()
    with pytest.raises(ValueError, match="plan path must be one of"):
        policy.set_plan_path("fast")
    with pytest.raises(ValueError, match="CUDA device"):
        policy.set_plan_path("graphs")
    policy.set_plan_path("auto")
    assert policy.plan_path == "eager" and policy._planner is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU (scripts/bench_gpu.sh runs this there)")
@pytest.mark.parametrize("make", [lambda: tiny_config(), mid_config], ids=["tiny", "8x512"])
def test_cuda_graphs_equal_eager_on_a_gpu(make):
    eager = AsyncVLAPolicy.build(make(), INSTRUCTIONS, seed=3).eval().cuda()
    graphs = AsyncVLAPolicy.build(make(), INSTRUCTIONS, seed=3).eval().cuda()
    graphs.set_plan_path("graphs")
    for cond, state, history, mode, seed, context, age in calls(eager, np.random.default_rng(0)):
        want = eager.act(cond, state, history, mode=mode, seed=seed, context=context, semantic_age_s=age)
        got = graphs.act(cond, state, history, mode=mode, seed=seed, context=context, semantic_age_s=age)
        np.testing.assert_allclose(got.actions, want.actions, rtol=0, atol=TOL, err_msg=mode)
        np.testing.assert_array_equal(got.regenerated, want.regenerated)
    assert graphs._planner.capture_errors == {} and set(graphs._planner.captured) == {"sfm", "rater", "afm"}
