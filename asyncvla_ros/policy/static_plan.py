"""Static-shape action planning, replayed from CUDA graphs on a GPU.

The eager `AsyncVLAPolicy.act` builds as it goes: the state/history block's keys and values are
concatenated onto the prefix, and rotary tables and attention biases are made per call. On a 3B
decoder every flow step is then a few hundred small kernel launches driven from Python, and the
launches, not the arithmetic, set the chunk's latency. Here every tensor a plan reads or writes lives
in buffers allocated once per policy, so the three stages of a plan can be captured once as CUDA
graphs and replayed:

- "sfm":   the state/history block against the prefix (its keys/values written behind the prefix's
           in one buffer), the action tokens' rotary tables and bias, then every SFM flow step;
- "rater": the confidence of the SFM chunk;
- "afm":   every AFM flow step on the regeneration mask; not replayed at all when the mask is empty.

The prefix buffers have the condition's fixed capacity (`max_prefix_tokens`), so one capture serves
every semantic condition: a new one is copied into the buffers, nothing is captured again. The math is
the eager path's, the same functions in the same order (`test/policy/test_static_plan.py` checks them
equal on CPU, where the stages run without graphs), so the eager path stays the reference.

A planner belongs to one policy and plans for one caller at a time (its buffers are its state): the
control thread that calls `act`. `encode` on another thread is unaffected.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, fields
from functools import partial

import torch

from asyncvla_ros.policy.backbone import SemanticCondition
from asyncvla_ros.policy.decoder import NewTokens, forward_with_prefix, place_tokens
from asyncvla_ros.policy.sampler import flow_sample

logger = logging.getLogger(__name__)

STAGES = ("sfm", "rater", "afm")
WARMUP_RUNS = 2  # eager runs on a side stream before capture: lazy initialisation must not land in a graph


@dataclass
class PlanTensors:
    """One plan's inputs, normalised, on the policy's device (batch 1)."""

    state: torch.Tensor  # (1, state_dim)
    history: torch.Tensor | None  # (1, K, action_dim); None when the policy has no history
    history_valid: torch.Tensor | None  # (1, K) bool
    age: torch.Tensor  # (1,) semantic age, s
    sfm_noise: torch.Tensor  # (1, L, A)
    afm_noise: torch.Tensor  # (1, L, A)
    free: torch.Tensor  # (1, L) bool: generated (False = context, carried from `kept`)
    kept: torch.Tensor  # (1, L, A) context actions (zeros where free)


class StaticPlanner:
    """Plans action chunks for `policy` from preallocated buffers, with CUDA graphs where asked.

    Args:
        policy: an `AsyncVLAPolicy` (eval mode; its device and dtype are read once, here).
        cuda_graphs: capture and replay the stages (CUDA only); None = on CUDA, off elsewhere.

    Raises:
        ValueError: cuda_graphs=True on a policy that is not on a CUDA device.
    """

    def __init__(self, policy, cuda_graphs: bool | None = None) -> None:
        dev, dt = policy.device, policy.dtype
        if cuda_graphs is None:
            cuda_graphs = dev.type == "cuda"
        if cuda_graphs and dev.type != "cuda":
            raise ValueError(f"cuda_graphs needs the policy on a CUDA device, it is on {dev}")
        self.policy = policy
        self.cuda_graphs = cuda_graphs
        e, bb = policy.config.expert, policy.config.backbone
        text = policy.backbone.vlm.config.text_config
        P, C, L, A = bb.max_prefix_tokens, policy.expert.num_context_tokens, e.chunk_len, e.action_dim
        kv_heads = text.num_key_value_heads
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        self.prefix_tokens, self.context_tokens = P, C
        z = partial(torch.zeros, device=dev)
        # The semantic condition, copied in by `load`; keys/values hold the prefix then the state/history block.
        self.keys = tuple(z((1, kv_heads, P + C, head_dim), dtype=dt) for _ in range(text.num_hidden_layers))
        self.values = tuple(z((1, kv_heads, P + C, head_dim), dtype=dt) for _ in range(text.num_hidden_layers))
        self.valid = torch.ones((1, P + C), dtype=torch.bool, device=dev)  # prefix part copied per condition
        self.vl_embeddings = z((1, P, policy.backbone.hidden_size), dtype=dt)
        self.next_position = z((1,), dtype=torch.long)
        self.offsets = torch.arange(C + L, device=dev)
        # Per-plan inputs.
        self.inputs = PlanTensors(
            state=z((1, e.state_dim), dtype=dt),
            history=z((1, e.history_len, A), dtype=dt) if e.history_len else None,
            history_valid=z((1, e.history_len), dtype=torch.bool) if e.history_len else None,
            age=z((1,)),
            sfm_noise=z((1, L, A), dtype=dt),
            afm_noise=z((1, L, A), dtype=dt),
            free=torch.ones((1, L), dtype=torch.bool, device=dev),
            kept=z((1, L, A), dtype=dt),
        )
        # Written by the stages.
        self.actions = NewTokens(cos=z((1, L, head_dim), dtype=dt), sin=z((1, L, head_dim), dtype=dt),
                                 bias=z((1, 1, 1, P + C + L), dtype=dt))
        self.sfm = z((1, L, A), dtype=dt)
        self.confidence = z((1, L), dtype=dt)
        self.mask = torch.zeros((1, L), dtype=torch.bool, device=dev)  # AFM's regeneration mask, set by the caller
        self.final = z((1, L, A), dtype=dt)
        self._loaded: SemanticCondition | None = None
        self._graphs: dict[str, torch.cuda.CUDAGraph] = {}
        self._pool = None
        self.capture_errors: dict[str, str] = {}  # stage -> why it could not be captured (it then runs eagerly)
        self.lock = threading.Lock()  # held by the caller across set_inputs .. run("afm")

    # ------------------------------------------------------------------ inputs

    def load(self, cond: SemanticCondition) -> None:
        """Copy a semantic condition into the prefix buffers (nothing is done for the one already loaded)."""
        if cond is self._loaded:
            return
        P = self.prefix_tokens
        for buf, src in zip(self.keys + self.values, cond.keys + cond.values):
            buf[:, :, :P].copy_(src)
        self.valid[:, :P].copy_(cond.key_valid)
        self.vl_embeddings.copy_(cond.vl_embeddings)
        self.next_position.copy_(cond.next_position)
        self._loaded = cond

    def set_inputs(self, given: PlanTensors) -> None:
        """Copy one plan's inputs into the input buffers."""
        mine = self.inputs
        for f in fields(PlanTensors):
            src, dst = getattr(given, f.name), getattr(mine, f.name)
            if dst is not None:
                dst.copy_(src)

    # ------------------------------------------------------------------ stages

    def _velocity(self, noisy_actions: torch.Tensor, token_time: torch.Tensor) -> torch.Tensor:
        p = self.policy
        tokens = p.expert.action_tokens(noisy_actions, token_time)  # (1, L, d)
        hidden, _, _ = forward_with_prefix(p.backbone.text_model, tokens, self.actions, self.keys, self.values)
        return p.expert.velocity(hidden)

    def _sfm(self) -> None:
        p, x = self.policy, self.inputs
        text_model, P, C = p.backbone.text_model, self.prefix_tokens, self.context_tokens
        ctx = p.expert.context_tokens(x.state, x.history, x.history_valid, x.age)  # (1, C, d)
        positions = self.next_position[:, None] + self.offsets  # (1, C + L)
        placed = place_tokens(text_model, positions[:, :C], self.valid[:, :P], ctx.dtype)
        prefix_k = tuple(k[:, :, :P] for k in self.keys)
        prefix_v = tuple(v[:, :, :P] for v in self.values)
        _, ctx_keys, ctx_values = forward_with_prefix(text_model, ctx, placed, prefix_k, prefix_v, return_kv=True)
        for buf, new in zip(self.keys + self.values, ctx_keys + ctx_values):
            buf[:, :, P:].copy_(new)
        actions = place_tokens(text_model, positions[:, C:], self.valid, ctx.dtype)
        for buf, new in ((self.actions.cos, actions.cos), (self.actions.sin, actions.sin), (self.actions.bias, actions.bias)):
            buf.copy_(new)
        # With every token free, where(free, noise, kept) is the noise itself: the plain SFM start.
        self.sfm.copy_(flow_sample(self._velocity, x.sfm_noise, x.free, x.kept, p.config.num_flow_steps))

    def _rater(self) -> None:
        self.confidence.copy_(self.policy.rater(self.vl_embeddings, self.valid[:, :self.prefix_tokens], self.sfm))

    def _afm(self) -> None:
        self.final.copy_(flow_sample(self._velocity, self.inputs.afm_noise, self.mask, self.sfm, self.policy.config.num_flow_steps))

    def run(self, stage: str) -> None:
        """Run one stage on the buffers: replay its graph (captured on first use) or run it eagerly."""
        fn = {"sfm": self._sfm, "rater": self._rater, "afm": self._afm}[stage]
        if not self.cuda_graphs:
            fn()
            return
        if stage in self.capture_errors:
            fn()
            return
        graph = self._graphs.get(stage)
        if graph is None:
            try:
                graph = self._graphs[stage] = self._capture(fn)
            except RuntimeError as err:  # an op that cannot be captured (a host sync): this stage stays eager
                self.capture_errors[stage] = str(err).splitlines()[0]
                logger.warning("the %s stage cannot be captured as a CUDA graph, it runs eagerly: %s", stage, err)
                torch.cuda.synchronize()
                fn()
                return
        graph.replay()

    def _capture(self, fn) -> "torch.cuda.CUDAGraph":
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_RUNS):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            fn()
        logger.info("captured the %s stage as a CUDA graph", fn.__name__.strip("_"))
        return graph

    @property
    def captured(self) -> tuple[str, ...]:
        """The stages captured so far."""
        return tuple(s for s in STAGES if s in self._graphs)
