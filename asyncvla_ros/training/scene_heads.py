"""Training-only heads that regress the privileged scene state (observation.environment_state: the
cube pose and the instructed area) from inside the policy, to teach a small policy trained from
scratch to look. Neither is saved with the policy.

- `prefix`: a linear map from the last prefix token as it enters the backbone's last layer (where the
  action tokens read from; see `flow_and_scene_state_losses`).
- `keypoints` (conv encoder only): spatial soft-argmax keypoints (Levine et al. 2016) of the encoder's
  stride-8 feature map, K per camera, then a linear map of every camera's keypoint coordinates. Its
  gradient reaches the convolutions directly, not through the decoder's attention, so the encoder
  learns to find the objects early in training.
- `actions`: a linear map from each action token's decoder output (the input of the expert's velocity
  head), so the action side, not only the backbone, is pushed to hold where the cube and the
  instructed area are. Without it a budget run's action tokens may take 15000 steps or more to start
  using the instruction the backbone already reads.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from asyncvla_ros.policy.action_expert import zero_linear

KEYPOINTS = 16  # per camera
KEYPOINT_STAGE = 4  # ConvImageEncoder.stages index whose output (stride 8) the keypoints read


@contextlib.contextmanager
def last_layer_input(backbone):
    """While open, each prefix encode of `backbone` leaves its hidden states (B, T, d) as they enter the
    decoder's last layer in the yielded dict, under "hidden": where the action tokens read the prefix,
    and what the `prefix` head (and `benchmarks/localisation_probe.py`) read from its last token."""
    captured: dict = {}

    def grab(module, args, kwargs):
        captured["hidden"] = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]

    handle = backbone.text_model.layers[-1].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        yield captured
    finally:
        handle.remove()


def soft_argmax(heatmaps: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) logits -> (N, K, 2) expected (x, y) in [-1, 1] under a softmax over each map."""
    n, k, h, w = heatmaps.shape
    probs = heatmaps.flatten(2).softmax(dim=-1).view(n, k, h, w)
    xs = torch.linspace(-1.0, 1.0, w, device=heatmaps.device, dtype=heatmaps.dtype)
    ys = torch.linspace(-1.0, 1.0, h, device=heatmaps.device, dtype=heatmaps.dtype)
    return torch.stack([(probs.sum(dim=2) * xs).sum(-1), (probs.sum(dim=3) * ys).sum(-1)], dim=-1)


class KeypointHead(nn.Module):
    def __init__(self, channels: int, cameras: int, env_dim: int, keypoints: int = KEYPOINTS) -> None:
        super().__init__()
        self.cameras = cameras
        self.heatmaps = nn.Conv2d(channels, keypoints, 1)
        self.out = nn.Linear(cameras * keypoints * 2, env_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B * cameras, C, H, W) encoder features, cameras of one sample adjacent -> (B, env_dim), in the
        head's dtype (the soft argmax in float32)."""
        dt = self.out.weight.dtype
        points = soft_argmax(self.heatmaps(features.to(dt)).float())  # (B * cameras, K, 2)
        return self.out(points.reshape(-1, self.cameras * points.shape[1] * 2).to(dt))


@contextlib.contextmanager
def action_token_output(expert):
    """While open, each velocity evaluation of `expert` leaves the action tokens' decoder output
    (B, L, d), the velocity head's input, in the yielded dict under "hidden"."""
    captured: dict = {}
    handle = expert.velocity_out.register_forward_pre_hook(lambda module, args: captured.__setitem__("hidden", args[0]))
    try:
        yield captured
    finally:
        handle.remove()


class SceneStateHeads(nn.Module):
    """`prefix` always; `keypoints` with `conv_channels` (the conv encoder's); `actions` with `action_dims`,
    the number of scene-state values it regresses (the first `action_dims`; the others the first `env_dim`)."""

    def __init__(self, hidden_size: int, env_dim: int, conv_channels: int = 0, cameras: int = 0,
                 action_dims: int = 0) -> None:
        super().__init__()
        # Zero-initialised: deterministic, and what they read is reached from step 2 on.
        self.prefix = zero_linear(hidden_size, env_dim)
        self.keypoints = KeypointHead(conv_channels, cameras, env_dim) if conv_channels else None
        self.actions = zero_linear(hidden_size, action_dims) if action_dims else None


def flow_and_scene_state_losses(policy, heads: SceneStateHeads, batch: dict, flow_loss) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`flow_loss(cond)`, the flow-matching loss given the batch's prefix encode, and each head's loss by
    its logged name (`env_state_loss`, `encoder_env_state_loss`, `action_env_state_loss`).

    The heads regress the normalised scene state of the observed frame (`batch["env_state"]`: cube pose,
    the instructed area; each its first values, as many as the head has outputs). The `prefix` head
    reads the last prefix token (it attends to every image and the instruction) as it enters the
    backbone's last layer. That is where the action tokens can read it: they attend to each layer's
    prefix keys and values, and the last layer's are computed from exactly this input, while the
    backbone's final output reaches no action token. The loss gives the backbone a direct signal to
    find the objects and read the instruction, which flow matching alone gives a small policy trained
    from scratch only weakly. The `keypoints` head reads the conv encoder's feature map, the `actions`
    head every action token's decoder output. Each loss is a mean over the rows, as the flow loss is.
    """
    features = {}
    with contextlib.ExitStack() as hooks:  # around the prefix encode only
        if heads.keypoints is not None:
            handle = policy.backbone.conv_vision.stages[KEYPOINT_STAGE].register_forward_hook(
                lambda module, args, output: features.__setitem__("map", output))
            hooks.callback(handle.remove)
        prefix = hooks.enter_context(last_layer_input(policy.backbone))
        cond = policy.backbone.encode(batch["inputs"])
    with action_token_output(policy.expert) if heads.actions is not None else contextlib.nullcontext() as actions:
        loss = flow_loss(cond)
    state = batch["env_state"].float()
    target = state[:, :heads.prefix.out_features]
    hidden = prefix["hidden"]  # (B, T, d)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    last = hidden[rows, cond.num_prefix_tokens.to(hidden.device) - 1]
    # The heads' own dtype in (bf16 where DeepSpeed casts the weights), float32 out.
    dt = heads.prefix.weight.dtype
    terms = {"env_state_loss": F.mse_loss(heads.prefix(last.to(dt)).float(), target)}
    if heads.keypoints is not None:
        terms["encoder_env_state_loss"] = F.mse_loss(heads.keypoints(features["map"]).float(), target)
    if actions is not None:
        per_token = heads.actions(actions["hidden"].to(dt)).float()  # (B, L, action_dims)
        action_target = state[:, None, :heads.actions.out_features]
        terms["action_env_state_loss"] = F.mse_loss(per_token, action_target.expand_as(per_token))
    return loss, terms
