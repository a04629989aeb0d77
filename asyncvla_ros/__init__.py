"""asyncvla_ros: AsyncVLA policies on ROS 2 arms.

The package is split so that robot-side code runs without torch:
  policy/  the AsyncVLA model, sampler, rater, losses, checkpoints (torch, no rclpy)
  sim/     the embedded MuJoCo arm (no torch, no rclpy)
  nodes/   thin rclpy shells over the core
"""

__version__ = "0.1.0"
