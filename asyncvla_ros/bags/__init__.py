"""Offline debugging with rosbag2 files: record the graph's topics, replay them, re-run the policy on them.

Plain Python on `rosbags` (no rclpy, no rosbag2 install): `types` (typestore with this package's
messages), `topics` (what the graph publishes), `writer` (the recorder's storage side), `reader`
(opening bags and the replay schedule), `rerun` + `report` (deterministic re-run and its report).
The ROS side lives in the thin nodes `asyncvla_ros.nodes.bag_recorder_node` and `bag_player_node`.
"""
