"""rclpy node shells. Each node: ROS parameters -> one typed config -> one core object -> topics."""
