"""An exponential moving average of the weights stage 1 trains (`TrainConfig.ema_decay`).

Flow-matching and diffusion policies are commonly deployed with averaged weights (Diffusion Policy,
Chi et al. 2023; openpi's training config): at small batches a single step's weights carry the
noise of its last few gradients. The update rule is torch's (`swa_utils.get_ema_multi_avg_fn`, one
fused lerp over the parameters); this class keeps the average beside the live parameters, swaps it in
for saving and hands it over at the end of stage 1.
"""

from __future__ import annotations

import contextlib

import torch
from torch.optim.swa_utils import get_ema_multi_avg_fn


class WeightAverage:
    """The average of `module`'s parameters that require gradients when it is made, starting from their
    current values.

    Args:
        module: the policy being trained (its trainable parameters are averaged; the rest are left alone).
        decay: the weight of the old average at each update (TrainConfig checks its range).
    """

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        trained = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in trained]
        self._live = [p for _, p in trained]
        self.average = [p.detach().clone() for p in self._live]
        self._update = get_ema_multi_avg_fn(decay)  # one fused lerp, under no_grad

    def update(self) -> None:
        """Fold the live parameters in (after each optimizer step). The average keeps the dtype the
        parameters had when it was made: DeepSpeed's bf16 casts the live ones to bf16 after that."""
        live = [p if p.dtype == a.dtype else p.to(a.dtype) for p, a in zip(self._live, self.average)]
        self._update(self.average, live, None)

    @contextlib.contextmanager
    def swapped_in(self):
        """The module holds the average inside the block and its live weights again after it."""
        live = [p.detach().clone() for p in self._live]
        self.copy_to_module()
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self._live, live)

    @torch.no_grad()
    def copy_to_module(self) -> None:
        """Replace the module's live parameters by the average (for good: the end of stage 1)."""
        torch._foreach_copy_(self._live, self.average)

    def live_state(self) -> dict[str, torch.Tensor]:
        """The live parameters by name, on the CPU (a checkpoint's policy holds the average)."""
        return {n: p.detach().contiguous().cpu() for n, p in zip(self.names, self._live)}

    @torch.no_grad()
    def load_live_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the live parameters `live_state` saved (resuming a run).

        Raises:
            ValueError: the saved names are not this module's averaged parameters.
        """
        self._check_names(state, "training weights")
        for name, p in zip(self.names, self._live):
            p.copy_(state[name])

    def finer_than_live(self) -> bool:
        """Whether the average is kept at a higher precision than the live parameters (float32 under
        DeepSpeed's bf16), so that a checkpoint's policy holds only its rounding."""
        return any(a.dtype != p.dtype for a, p in zip(self.average, self._live))

    def average_state(self) -> dict[str, torch.Tensor]:
        """The average by name, on the CPU, at its own precision."""
        return {n: a.contiguous().cpu() for n, a in zip(self.names, self.average)}

    def load_average_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the average `average_state` saved, at the precision it was saved at (resuming a run).

        Raises:
            ValueError: the saved names are not this module's averaged parameters.
        """
        self._check_names(state, "weight average")
        self.average = [state[n].to(p.device) for n, p in zip(self.names, self._live)]

    def _check_names(self, state: dict[str, torch.Tensor], what: str) -> None:
        if sorted(state) != sorted(self.names):
            missing, extra = sorted(set(self.names) - set(state)), sorted(set(state) - set(self.names))
            raise ValueError(f"the saved {what} do not match the model (missing {missing[:3]}, unexpected {extra[:3]})")
