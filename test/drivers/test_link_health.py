"""LinkHealth: the consecutive-failure rule both hardware backends declare a link lost by."""

from asyncvla_ros.drivers.base import LinkHealth


def test_lost_after_n_failures_in_a_row_or_one_fatal_and_the_first_reason_is_kept():
    link = LinkHealth(3, "calls")
    assert not link.failed("timeout") and not link.failed("timeout")
    link.succeeded()  # a success in between: the count starts over
    assert not link.failed("timeout") and not link.failed("timeout") and link.error is None
    assert link.failed("checksum")
    assert link.error == "checksum (3 failed calls in a row)"
    assert link.failed("later") and link.error == "checksum (3 failed calls in a row)"  # stays lost, first reason kept
    link.reset()
    assert link.error is None and link.failed("port closed", fatal=True)
    assert link.error == "port closed"
