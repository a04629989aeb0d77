"""QoS profiles shared by publishers and subscribers that must match."""

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy

# Latched: a late subscriber still gets the last instruction.
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)

# The semantic publisher asserts its liveliness by hand every SEMANTIC_HEARTBEAT_S, independent of
# the (slow, irregular) encodes, with a lease of two 20 Hz control periods: when the semantic process
# dies or is cut off, an action node in another process learns it within 0.1 s and holds, instead of
# acting on for up to max_semantic_age_s (a co-located one ignores it: see ActionNode). (AUTOMATIC
# liveliness was asserted only with the samples here, so a lease shorter than the refresh period
# flapped between "gone" and "back".)
SEMANTIC_LIVELINESS_S = 0.1
SEMANTIC_HEARTBEAT_S = 0.025
FEATURES = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE, liveliness=LivelinessPolicy.MANUAL_BY_TOPIC,
                      liveliness_lease_duration=Duration(seconds=SEMANTIC_LIVELINESS_S))
