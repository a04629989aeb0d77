import numpy as np
import pytest

from asyncvla_ros.control.ensembling import TemporalEnsembler
from asyncvla_ros.control.history import ActionHistory


def test_single_chunk_is_replayed_step_by_step():
    ens = TemporalEnsembler(chunk_len=3, action_dim=1, decay=0.1)
    ens.add(5, np.array([[1.0], [2.0], [3.0]]))
    assert [float(ens.target(t)[0]) for t in (5, 6, 7)] == [1.0, 2.0, 3.0]
    assert ens.target(8) is None and len(ens) == 0


def test_overlapping_chunks_use_act_weights_oldest_first():
    ens = TemporalEnsembler(chunk_len=3, action_dim=1, decay=0.5)
    ens.add(0, np.array([[0.0], [10.0], [20.0]]))
    ens.add(1, np.array([[100.0], [200.0], [300.0]]))
    ens.add(2, np.array([[1000.0], [2000.0], [3000.0]]))
    w = np.exp(-0.5 * np.arange(3))
    expected = (w * np.array([20.0, 200.0, 1000.0])).sum() / w.sum()
    assert ens.target(2)[0] == pytest.approx(expected)
    # Chunk 0 has expired at tick 3: the remaining two blend with weights 1, e^-0.5.
    assert ens.target(3)[0] == pytest.approx((300.0 + np.exp(-0.5) * 2000.0) / (1 + np.exp(-0.5)))


def test_zero_decay_is_a_plain_mean_and_bad_input_raises():
    ens = TemporalEnsembler(2, 2, decay=0.0)
    ens.add(0, np.array([[0.0, 0.0], [2.0, 4.0]]))
    ens.add(1, np.array([[4.0, 8.0], [0.0, 0.0]]))
    np.testing.assert_allclose(ens.target(1), [3.0, 6.0])
    with pytest.raises(ValueError, match="increase"):
        ens.add(1, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        ens.add(2, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="decay"):
        TemporalEnsembler(2, 2, decay=-1.0)


def test_history_keeps_the_last_k_oldest_first():
    h = ActionHistory(3, 2)
    assert h.array().shape == (0, 2)
    for i in range(5):
        h.append(np.full(2, i))
    np.testing.assert_array_equal(h.array()[:, 0], [2, 3, 4])
    with pytest.raises(ValueError):
        h.append(np.array([np.nan, 0.0]))
    off = ActionHistory(0, 2)
    off.append(np.zeros(2))
    assert len(off) == 0
