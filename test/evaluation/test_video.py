"""`asyncvla-ros video`: episodes run through the eval's control path, drawn and written."""

import pytest

from ..sim._support import skip_without_sim

skip_without_sim()

from asyncvla_ros.evaluation.video import EVERY, main  # noqa: E402


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_video_writes_every_kept_tick_and_holds_the_outcome(tmp_path, capsys, suffix):
    out = tmp_path / f"episodes{suffix}"
    assert main(["--seeds", "1000", "--max-steps", "6", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "seed 1000: failure after 6 ticks" in printed
    assert f"{6 // EVERY + 10} frames" in printed  # every EVERY-th tick, then the last one held 1 s
    assert out.stat().st_size > 1000


def test_video_refuses_another_format(tmp_path):
    with pytest.raises(SystemExit):
        main(["--seeds", "1000", "--out", str(tmp_path / "episodes.avi")])
