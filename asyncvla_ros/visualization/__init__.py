"""Views of predicted action chunks: end-effector paths by forward kinematics, confidence colours,
regenerated steps. No rclpy and no torch; the visualizer node turns these into RViz messages."""
