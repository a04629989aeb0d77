"""One small demonstration dataset per session (3 episodes at 48 px), shared by the data tests."""

import pytest

IMAGE_SIZE_PX = 48
EPISODES = 3
SEED = 0


@pytest.fixture(scope="session")
def recorded(tmp_path_factory):
    """(dataset root, record_demos report); skips when no headless OpenGL works."""
    from asyncvla_ros.data import record_demos
    from asyncvla_ros.sim import GLBackendError

    root = tmp_path_factory.mktemp("demos") / "pick_place"
    try:
        report = record_demos(root, EPISODES, SEED, image_size_px=IMAGE_SIZE_PX)
    except GLBackendError as exc:
        pytest.skip(f"no headless OpenGL backend: {exc}")
    return root, report
