import os

# Every test session gets its own DDS domain, kept on this machine, so parallel runs and other graphs
# on the same host never hear each other. Set before any test starts a node or imports rclpy.
os.environ["ROS_DOMAIN_ID"] = str(20 + os.getpid() % 80)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
