import os

# Every test session gets its own DDS domain, kept on this machine, so parallel runs and other graphs
# on the same host never hear each other. Set before any test starts a node or imports rclpy.
os.environ["ROS_DOMAIN_ID"] = str(20 + os.getpid() % 80)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

# Property-based tests (hypothesis): "ci" is the default, bounded and derandomized so a run repeats;
# `pytest --hypothesis-profile fuzz` runs many more random examples.
try:
    from hypothesis import HealthCheck, settings

    _common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.register_profile("ci", max_examples=100, derandomize=True, print_blob=True, **_common)
    settings.register_profile("fuzz", max_examples=1000, **_common)
    settings.load_profile("ci")
except ImportError:
    pass
