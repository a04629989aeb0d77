"""Control-loop logic shared by the nodes: ensembling, history, latest-semantics store, frame sync,
the action loop and the safety filter. Imports neither rclpy nor (except the action loop's policy) torch."""
