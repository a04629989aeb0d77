import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the policy core needs torch (pip install .[policy])")

from asyncvla_ros.policy.config import ActionExpertConfig, PolicyConfig  # noqa: E402
from asyncvla_ros.policy.policy import AsyncVLAPolicy  # noqa: E402

INSTRUCTIONS = ["put the red cube in the blue area", "put the red cube in the green area"]


def tiny_config(**expert) -> PolicyConfig:
    return PolicyConfig(expert=ActionExpertConfig(**{"history_len": 4, "chunk_len": 8, **expert}))


def random_images(seed: int = 0, n: int = 2, size: int = 56) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def policy() -> AsyncVLAPolicy:
    return AsyncVLAPolicy.build(tiny_config(), INSTRUCTIONS, seed=0).eval()


@pytest.fixture(scope="module")
def cond(policy):
    return policy.encode(random_images(), INSTRUCTIONS[0], stamp_ns=123)
