"""Fuzzed message boundaries: the subscriptions of the safety filter, action, semantic and visualizer
nodes, over real rclpy, with messages that hypothesis generates.

The nodes run in this process (as `policy_node` runs two of them) on one executor thread, built from
config/sim.yaml; a probe node publishes each generated message through DDS and the test waits until
every subscription on that topic has run its callback. For every message:

- the nodes keep running: no exception escapes a callback or rclpy's take (in a node process either
  would end the node);
- a message that is bad by construction is rejected and counted (the node's `rejections`, or a refusal
  in the safety filter's counts), and a good one is not;
- an independent check of everything the filter publishes on `safe_joint_command` finds each command
  inside the joint limits and within one max step of the joint state sent before it;
- sequences of e-stop operations (the topic, true and false; the service, latch and release) with
  commands between them: nothing passes while the e-stop is latched but the one command that holds the
  arm where it is.

Profiles (test/conftest.py): "ci", the default (a bounded number of examples per message type,
derandomized, so a run is repeatable), and "fuzz" (`pytest test/nodes/fuzz --hypothesis-profile fuzz`, many more, random).
The number of generated cases per message type and what each defect kind did is printed.
"""
