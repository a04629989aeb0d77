"""act(), its modes, input checks, configs and checkpoints."""

import json

import numpy as np
import pytest
import torch

from asyncvla_ros.policy.backbone import InputError, SemanticCondition
from asyncvla_ros.policy.checkpoint import CheckpointError
from asyncvla_ros.policy.config import BackboneConfig, PolicyConfig, RaterConfig
from asyncvla_ros.policy.normalization import FeatureStats, Normalizer
from asyncvla_ros.policy.policy import AsyncVLAPolicy

from .conftest import INSTRUCTIONS, random_images, tiny_config


def test_act_returns_a_complete_chunk_record(policy, cond):
    r = policy.act(cond, np.zeros(6), np.zeros((3, 6)), seed=0)
    L, A = policy.config.expert.chunk_len, policy.config.expert.action_dim
    assert r.actions.shape == r.sfm_actions.shape == (L, A)
    assert r.confidence.shape == r.regenerated.shape == (L,)
    assert np.all((r.confidence > 0) & (r.confidence < 1))
    np.testing.assert_array_equal(r.regenerated, r.confidence < policy.config.rater.threshold)
    # AFM changed exactly the regenerated steps.
    changed = np.any(r.actions != r.sfm_actions, axis=1)
    np.testing.assert_array_equal(changed, r.regenerated)
    assert min(r.sfm_ms, r.rater_ms, r.afm_ms) >= 0 and r.total_ms >= r.sfm_ms
    assert r.semantic_stamp_ns == 123


def test_act_is_deterministic_per_seed_and_modes_share_the_sfm_chunk(policy, cond):
    a = policy.act(cond, np.ones(6), seed=7)
    b = policy.act(cond, np.ones(6), seed=7)
    c = policy.act(cond, np.ones(6), seed=8)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert not np.array_equal(a.sfm_actions, c.sfm_actions)
    sfm = policy.act(cond, np.ones(6), mode="sfm_only", seed=7)
    rnd = policy.act(cond, np.ones(6), mode="random_mask", seed=7)
    np.testing.assert_array_equal(sfm.sfm_actions, a.sfm_actions)
    np.testing.assert_array_equal(sfm.actions, sfm.sfm_actions)
    assert not sfm.regenerated.any() and sfm.afm_ms < 1.0
    keep = ~rnd.regenerated
    np.testing.assert_array_equal(rnd.actions[keep], rnd.sfm_actions[keep])


def test_afm_with_full_mask_from_the_same_noise_equals_sfm(policy, cond):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        ctx = policy.action_context(cond, torch.zeros(1, 6), torch.zeros(1, 4, 6), torch.ones(1, 4, dtype=torch.bool))
        noise = torch.randn(1, 8, 6, generator=g)
        full = torch.ones(1, 8, dtype=torch.bool)
        sfm = policy.sample(ctx, noise, full)
        afm = policy.sample(ctx, noise, full, init=torch.randn(1, 8, 6, generator=g))
        assert torch.equal(sfm, afm)
        none = torch.zeros(1, 8, dtype=torch.bool)
        assert torch.equal(policy.sample(ctx, noise, none, init=sfm), sfm)


@pytest.mark.parametrize("mode", ["asyncvla", "random_mask", "sfm_only"])
def test_continuation_keeps_the_context_steps_bit_for_bit_and_generates_around_them(policy, cond, mode):
    L = policy.config.expert.chunk_len
    rng = np.random.default_rng(3)
    context = rng.normal(0, 0.3, (3, 6)).astype(np.float32)
    r = policy.act(cond, np.zeros(6), np.zeros((2, 6)), mode=mode, seed=4, context=context)
    assert r.actions.dtype == context.dtype
    np.testing.assert_array_equal(r.actions[:3], context)
    np.testing.assert_array_equal(r.sfm_actions[:3], context)
    np.testing.assert_array_equal(r.context, np.arange(L) < 3)
    assert not r.regenerated[:3].any()  # context is never regenerated
    plain = policy.act(cond, np.zeros(6), np.zeros((2, 6)), mode=mode, seed=4)
    assert not np.allclose(r.sfm_actions[3:], plain.sfm_actions[3:])  # the rest is generated around the context


def test_continuation_with_no_context_is_the_plain_plan(policy, cond):
    plain = policy.act(cond, np.ones(6), seed=9)
    empty = policy.act(cond, np.ones(6), seed=9, context=np.zeros((0, 6)))
    np.testing.assert_array_equal(plain.actions, empty.actions)
    np.testing.assert_array_equal(plain.sfm_actions, empty.sfm_actions)
    assert not empty.context.any()


def test_history_changes_the_plan(policy, cond):
    a = policy.act(cond, np.zeros(6), None, seed=1)
    b = policy.act(cond, np.zeros(6), np.full((4, 6), 0.5), seed=1)
    assert not np.allclose(a.sfm_actions, b.sfm_actions)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(state=np.zeros(5)), "state: expected shape"),
        (dict(state=np.array([0, 0, np.nan, 0, 0, 0.0])), "state: contains NaN"),
        (dict(state=np.array([0, 0, np.inf, 0, 0, 0.0])), "state: contains NaN"),
        (dict(history=np.zeros((3, 5))), "history: expected shape"),
        (dict(history=np.zeros((5, 6))), "history: expected shape"),
        (dict(history=np.full((2, 6), np.nan)), "history: contains NaN"),
        (dict(mode="fast"), "mode: expected one of"),
        (dict(context=np.zeros((8, 6))), "context: expected shape"),
        (dict(context=np.zeros((2, 5))), "context: expected shape"),
        (dict(context=np.full((2, 6), np.inf)), "context: contains NaN"),
    ],
)
def test_act_rejects_bad_input_by_name(policy, cond, kwargs, match):
    args = dict(state=np.zeros(6), history=None) | kwargs
    with pytest.raises(InputError, match=match):
        policy.act(cond, **args)


@pytest.mark.parametrize(
    "images, match",
    [
        (random_images(n=1), "expected 2 images"),
        (random_images(n=3), "expected 2 images"),
        (random_images(size=112), "image 'front': expected uint8 array of shape"),
        ([random_images()[0], np.zeros((56, 56, 3), np.float32)], "image 'wrist'"),
        ([random_images()[0], np.zeros((56, 56), np.uint8)], "image 'wrist'"),
    ],
)
def test_encode_rejects_wrong_images_by_name(policy, images, match):
    with pytest.raises(InputError, match=match):
        policy.encode(images, INSTRUCTIONS[0])


def test_encode_rejects_bad_instruction_and_overlong_prompt(policy):
    with pytest.raises(InputError, match="instruction"):
        policy.encode(random_images(), "   ")
    with pytest.raises(InputError, match="max_prefix_tokens"):
        policy.encode(random_images(), " ".join(["cube"] * 200))


def test_state_in_prompt_needs_a_valid_state():
    config = tiny_config()
    config.backbone.state_in_prompt = True
    p = AsyncVLAPolicy.build(config, INSTRUCTIONS)
    with pytest.raises(InputError, match="state"):
        p.encode(random_images(), INSTRUCTIONS[0])
    with pytest.raises(InputError, match="state: contains NaN"):
        p.encode(random_images(), INSTRUCTIONS[0], state=np.full(6, np.nan))
    a = p.encode(random_images(), INSTRUCTIONS[0], state=np.zeros(6))
    b = p.encode(random_images(), INSTRUCTIONS[0], state=np.ones(6))
    assert int(a.num_prefix_tokens[0]) > p.backbone.tokens_per_image * 2 + 6
    assert not torch.equal(a.vl_embeddings, b.vl_embeddings)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: BackboneConfig(image_height_px=50), "image_height_px must be a multiple of 28 for the .qwen. vision encoder, got 50"),
        (lambda: BackboneConfig(camera_names=()), "camera_names"),
        (lambda: RaterConfig(threshold=1.5), "threshold must be in"),
        (lambda: RaterConfig(hidden_size=30, num_heads=4), "divisible"),
        (lambda: PolicyConfig(num_flow_steps=0), "num_flow_steps must be a positive int, got 0"),
        (lambda: PolicyConfig(dtype="fp8"), "dtype must be one of"),
        (lambda: tiny_config(history_len=-1), "history_len"),
        (lambda: PolicyConfig.from_dict({"bogus": 1}), "unknown fields"),
    ],
)
def test_configs_name_the_bad_field(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_checkpoint_round_trip_gives_bit_identical_act(tmp_path):
    config = tiny_config()
    p = AsyncVLAPolicy.build(config, INSTRUCTIONS, seed=3).eval()
    p.normalizer = Normalizer(FeatureStats([0.1] * 6, [2.0] * 6), FeatureStats([-0.2] * 6, [0.5] * 6))
    p.save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "asyncvla_policy.json").read_text())
    assert meta["normalization"]["action"]["std"] == [0.5] * 6
    q = AsyncVLAPolicy.from_pretrained(tmp_path)
    images, state, hist = random_images(4), np.linspace(-1, 1, 6), np.ones((4, 6))
    a = p.act(p.encode(images, INSTRUCTIONS[1]), state, hist, seed=11)
    b = q.act(q.encode(images, INSTRUCTIONS[1]), state, hist, seed=11)
    for field in ("actions", "sfm_actions", "confidence", "regenerated"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_image_position_embedding_moves_each_token_and_survives_a_checkpoint(tmp_path):
    config = tiny_config()
    config.backbone.image_position_embedding = True
    p = AsyncVLAPolicy.build(config, INSTRUCTIONS, seed=3).eval()
    plain = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS, seed=3).eval()
    images = random_images(5)
    # Zero-initialised: the prefix is exactly the one without the embedding.
    torch.testing.assert_close(p.encode(images, INSTRUCTIONS[0]).keys[0], plain.encode(images, INSTRUCTIONS[0]).keys[0], rtol=0, atol=0)
    with torch.no_grad():
        p.backbone.image_positions.normal_(generator=torch.Generator().manual_seed(0))
    moved = p.encode(images, INSTRUCTIONS[0])
    assert not torch.equal(moved.keys[0], plain.encode(images, INSTRUCTIONS[0]).keys[0])
    p.save_pretrained(tmp_path / "ckpt")
    q = AsyncVLAPolicy.from_pretrained(tmp_path / "ckpt")
    assert torch.equal(q.backbone.image_positions, p.backbone.image_positions)
    torch.testing.assert_close(q.encode(images, INSTRUCTIONS[0]).keys[0], moved.keys[0], rtol=0, atol=0)
    # A weights file without the tensor the config asks for is refused, naming what is missing.
    from safetensors.torch import load_file, save_file

    weights = load_file(tmp_path / "ckpt" / "action_model.safetensors")
    del weights["backbone.image_positions"]
    save_file(weights, tmp_path / "ckpt" / "action_model.safetensors")
    with pytest.raises(CheckpointError, match="image position embedding"):
        AsyncVLAPolicy.from_pretrained(tmp_path / "ckpt")


def test_loading_a_bare_qwen_directory_and_refusing_other_directories(tmp_path, policy):
    policy.backbone.save_pretrained(tmp_path / "qwen")  # transformers' own layout, as a downloaded model has
    p = AsyncVLAPolicy.from_pretrained(tmp_path / "qwen", dtype="float32")
    assert p.config.backbone.pretrained_dir == str(tmp_path / "qwen")
    for name, t in policy.backbone.state_dict().items():
        assert torch.equal(t, p.backbone.state_dict()[name]), name
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a policy checkpoint"):
        AsyncVLAPolicy.from_pretrained(tmp_path / "empty")


def test_semantic_condition_tensor_round_trip(cond):
    again = SemanticCondition.from_tensors(cond.tensors(), cond.stamp_ns, cond.instruction)
    for name, t in cond.tensors().items():
        assert torch.equal(t, again.tensors()[name])
    with pytest.raises(InputError, match="missing"):
        SemanticCondition.from_tensors({"keys.0": cond.keys[0]})


def _altered(cond, name, tensor):
    tensors = dict(cond.tensors())
    tensors[name] = tensor
    return SemanticCondition.from_tensors(tensors, cond.stamp_ns, cond.instruction)


def test_a_condition_that_does_not_fit_the_policy_is_refused_before_it_is_planned_from(policy, cond):
    policy.check_condition(cond)  # the encoder's own output fits
    k = cond.keys[0]
    valid = cond.key_valid.clone()
    valid[0, :] = True
    cases = {
        "keys.0 of shape": _altered(cond, "keys.0", k[:, :, :-1]),  # another prefix capacity
        "key / ": SemanticCondition.from_tensors({n: t for n, t in cond.tensors().items() if not n.endswith(f".{len(cond.keys) - 1}")}),
        "torch.float64": _altered(cond, "vl_embeddings", cond.vl_embeddings.double()),
        "NaN or inf": _altered(cond, "values.0", torch.full_like(cond.values[0], float("nan"))),
        "prefix tokens": _altered(cond, "num_prefix_tokens", cond.num_prefix_tokens + 10_000),
        "marked valid": _altered(cond, "key_valid", valid),
        "rotary range": _altered(cond, "next_position", cond.next_position * 0 - 3),
    }
    for match, bad in cases.items():
        with pytest.raises(InputError, match=match):
            policy.check_condition(bad)


def test_semantic_age_input_starts_silent_then_reads_the_clipped_age_and_survives_a_checkpoint(tmp_path):
    p = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS, seed=3).eval()
    images, state, hist = random_images(6), np.linspace(-1, 1, 6), np.ones((4, 6))
    cond = p.encode(images, INSTRUCTIONS[0])
    before = p.act(cond, state, hist, seed=2).actions
    p.add_semantic_age_input(0.5)
    assert p.config.expert.semantic_age_max_s == 0.5 and p.expert.config is p.config.expert
    # Zero-initialised: any age plans exactly what the policy planned without the input.
    np.testing.assert_array_equal(p.act(cond, state, hist, seed=2, semantic_age_s=0.3).actions, before)
    with pytest.raises(ValueError, match="already reads"):
        p.add_semantic_age_input(0.5)
    with torch.no_grad():
        p.expert.age_in.weight.normal_(generator=torch.Generator().manual_seed(0))
    plan = lambda age: p.act(cond, state, hist, seed=2, semantic_age_s=age).actions  # noqa: E731
    assert not np.array_equal(plan(0.0), plan(0.25))
    np.testing.assert_array_equal(plan(0.0), plan(-0.05))  # clipped to [0, max]: a frame a little after the state
    np.testing.assert_array_equal(plan(0.5), plan(3.0))
    with pytest.raises(InputError, match="semantic_age_s"):
        p.act(cond, state, hist, semantic_age_s=float("nan"))
    p.save_pretrained(tmp_path / "ckpt")
    q = AsyncVLAPolicy.from_pretrained(tmp_path / "ckpt")
    assert q.config.expert.semantic_age_max_s == 0.5
    np.testing.assert_array_equal(q.act(q.encode(images, INSTRUCTIONS[0]), state, hist, seed=2, semantic_age_s=0.25).actions, plan(0.25))
    # A policy without the input ignores the age.
    plain = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS, seed=3).eval()
    np.testing.assert_array_equal(plain.act(cond, state, hist, seed=2, semantic_age_s=0.4).actions, before)


def test_the_semantic_age_embedding_is_smooth_between_control_ticks():
    """A graph's ages fall anywhere between the ticks trained on: they must embed between them."""
    from asyncvla_ros.policy.action_expert import ActionExpert

    expert = ActionExpert(tiny_config(semantic_age_max_s=0.5).expert, 64)
    with torch.no_grad():
        expert.age_in.weight.normal_(generator=torch.Generator().manual_seed(0))
    ages = torch.linspace(0.0, 0.5, 101)  # ticks of 50 ms are every 10th
    tokens = expert.context_tokens(torch.zeros(101, 6), torch.zeros(101, 4, 6), torch.ones(101, 4, dtype=torch.bool), ages)[:, 0]
    steps = (tokens[1:] - tokens[:-1]).norm(dim=1)
    tick = (tokens[10:] - tokens[:-10]).norm(dim=1)
    assert float(steps.max()) < 0.25 * float(tick.min())  # a 5 ms change moves it far less than a tick does


def test_gradient_checkpointing_encodes_the_same_condition_with_gradients():
    """transformers runs checkpointed layers without a cache: the keys/values come from each layer's input."""
    policy = AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS, seed=0).train()
    inputs = policy.backbone.prepare([(random_images(s), INSTRUCTIONS[s], None) for s in (0, 1)])
    want = policy.backbone.encode(inputs)
    sum(k.sum() for k in want.keys + want.values).backward()
    grads = {n: p.grad.clone() for n, p in policy.backbone.named_parameters() if p.grad is not None}
    policy.zero_grad()
    policy.backbone.vlm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    got = policy.backbone.encode(inputs)
    for a, b in zip(want.keys + want.values + (want.vl_embeddings,), got.keys + got.values + (got.vl_embeddings,)):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    sum(k.sum() for k in got.keys + got.values).backward()
    checked = [(p.grad, grads[n]) for n, p in policy.backbone.named_parameters() if n in grads]
    assert checked and all(torch.allclose(g, want_g, rtol=1e-5, atol=1e-5) for g, want_g in checked)
