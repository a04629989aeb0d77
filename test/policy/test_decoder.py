"""The cached-prefix decoder path against one transformers forward over the whole sequence."""

import threading

import numpy as np
import torch

from asyncvla_ros.policy.decoder import forward_with_prefix

from .conftest import INSTRUCTIONS, random_images


def _full_sequence_reference(policy, inputs, ctx_tokens, action_tokens, ctx_pos, act_pos):
    """transformers' own forward over [prefix | context | actions] with the design's block mask."""
    bb = policy.backbone
    embeds, pos, attn = bb.embed_prefix(inputs)
    B, T, _ = embeds.shape
    C, L = ctx_tokens.shape[1], action_tokens.shape[1]
    N = T + C + L
    allow = torch.zeros(B, N, N, dtype=torch.bool)
    valid = attn.bool()
    allow[:, :T, :T] = torch.tril(torch.ones(T, T, dtype=torch.bool)) & valid[:, None, :]  # causal prefix
    allow[:, T:, :T] = valid[:, None, :]  # suffix reads the whole prefix
    allow[:, T : T + C, T : T + C] = True  # context block: full attention within
    allow[:, T + C :, T:] = True  # actions: full attention over context and actions
    mask = torch.zeros(B, 1, N, N).masked_fill(~allow[:, None], torch.finfo(torch.float32).min)
    three = lambda p: p.unsqueeze(0).expand(3, -1, -1)  # noqa: E731
    positions = torch.cat([pos, three(ctx_pos), three(act_pos)], dim=2)
    out = bb.text_model(inputs_embeds=torch.cat([embeds, ctx_tokens, action_tokens], 1), position_ids=positions, attention_mask=mask)
    return out.last_hidden_state[:, T + C :]


def test_cached_prefix_equals_full_forward(policy):
    # Two prompts of different lengths, so right-padding and per-sample positions are exercised.
    obs = [(random_images(1), INSTRUCTIONS[0], None), (random_images(2), "put cube", None)]
    inputs = policy.backbone.prepare(obs)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        cond = policy.backbone.encode(inputs)
        state = torch.randn(2, 6, generator=g)
        hist = torch.randn(2, 4, 6, generator=g)
        hv = torch.tensor([[False, True, True, True], [True] * 4])
        ctx = policy.action_context(cond, state, hist, hv)
        a = torch.randn(2, 8, 6, generator=g)
        t = torch.rand(2, 8, generator=g)
        tokens = policy.expert.action_tokens(a, t)
        cached, _, _ = forward_with_prefix(policy.backbone.text_model, tokens, ctx.actions, ctx.keys, ctx.values)
        ctx_tokens = policy.expert.context_tokens(state, hist, hv)
        ctx_pos = ctx.action_positions[:, :1] - ctx_tokens.shape[1] + torch.arange(ctx_tokens.shape[1])
        ref = _full_sequence_reference(policy, inputs, ctx_tokens, tokens, ctx_pos, ctx.action_positions)
    assert (cached - ref).abs().max().item() < 1e-5


def test_action_positions_continue_after_the_largest_3d_position(policy, cond):
    # Image tokens share rotary positions, so max position + 1 is well below the prefix length.
    assert int(cond.next_position[0]) < int(cond.num_prefix_tokens[0])
    inputs = policy.backbone.prepare([(random_images(), INSTRUCTIONS[0], None)])
    _, pos, _ = policy.backbone.embed_prefix(inputs)
    assert int(cond.next_position[0]) == int(pos.max()) + 1


def test_flow_steps_leave_the_cached_prefix_unchanged(policy, cond):
    before = {k: v.clone() for k, v in cond.tensors().items()}
    for mode in ("asyncvla", "random_mask"):
        policy.act(cond, np.zeros(6), np.zeros((2, 6)), mode=mode, seed=0)
    after = cond.tensors()
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), name
    assert cond.keys[0].shape[2] == policy.config.backbone.max_prefix_tokens


def test_concurrent_encode_and_act_match_sequential(policy):
    images = [random_images(s) for s in range(4)]
    expected_cond = [policy.encode(im, INSTRUCTIONS[0]) for im in images]
    expected_act = [policy.act(expected_cond[0], np.full(6, 0.1 * s), seed=s).actions for s in range(4)]
    got_cond, got_act = [None] * 4, [None] * 4

    def semantic():
        for i, im in enumerate(images):
            got_cond[i] = policy.encode(im, INSTRUCTIONS[0])

    def control():
        for s in range(4):
            got_act[s] = policy.act(expected_cond[0], np.full(6, 0.1 * s), seed=s).actions

    threads = [threading.Thread(target=semantic), threading.Thread(target=control)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for exp, got in zip(expected_cond, got_cond):
        assert torch.equal(exp.keys[0], got.keys[0])
    for exp, got in zip(expected_act, got_act):
        np.testing.assert_array_equal(exp, got)
