"""SO100 follower arm through LeRobot's own driver (`lerobot.robots.so_follower`) and calibration files."""
