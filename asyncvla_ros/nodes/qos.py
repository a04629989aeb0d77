"""QoS profiles shared by publishers and subscribers that must match."""

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, LivelinessPolicy, QoSProfile, ReliabilityPolicy

# Latched: a late subscriber still gets the last instruction.
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)

# Semantic features assert liveliness automatically with a short lease, so the action node learns
# within ~0.1 s that the semantic publisher died and holds, instead of waiting for the age limit.
SEMANTIC_LIVELINESS_S = 0.1
FEATURES = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE, liveliness=LivelinessPolicy.AUTOMATIC,
                      liveliness_lease_duration=Duration(seconds=SEMANTIC_LIVELINESS_S))
