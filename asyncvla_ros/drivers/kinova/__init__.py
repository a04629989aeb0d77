"""Kinova Gen2 (JACO2/MICO2) arms: velocity streaming at 100 Hz, through the Gen2 SDK's C library (ctypes)
or through an already running Gen2 ROS driver's topics."""
