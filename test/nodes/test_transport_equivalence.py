"""Separate processes and co-located give the same chunk for the same inputs, bit for bit.

One observation of the sim (both cameras, the joint state, the instruction) is encoded once by the
semantic node's `SemanticLoop`. The action side gets that semantic condition two ways:
- co-located: the `SemanticItem` the semantic node commits to the shared store (the tensors themselves);
- separate: the inline SemanticFeatures message as DDS carries it (serialised to CDR bytes and back by
  rclpy), taken in by a real `ActionNode`'s subscription callback and decoded into its store.
Both then drive an `ActionLoop` over the same recorded states: every tensor of the condition, and
every chunk (final, SFM, confidence, mask) and command, are identical.
"""

import numpy as np
import pytest

from ..ros_support import require_ros_messages
from ..sim._support import skip_without_sim

TICKS = 30


@pytest.fixture(scope="module")
def recorded_inputs():
    """One observation and 30 joint states of the sim arm, from a scripted-expert episode."""
    skip_without_sim()
    pytest.importorskip("torch")
    from asyncvla_ros.evaluation.closed_loop import make_arm
    from asyncvla_ros.policy.default import load_policy

    policy, model_id = load_policy("", "cpu")
    arm = make_arm(policy)
    try:
        obs = arm.reset(seed=1234)
        states = [obs.joint_positions_rad]
        for k in range(TICKS - 1):
            obs_k = arm.step(obs.joint_positions_rad + 0.01 * np.sin(np.arange(6) + 0.2 * k))
            states.append(obs_k.joint_positions_rad)
        return policy, model_id, obs, states
    finally:
        arm.close()


def test_inline_message_and_in_process_hand_over_give_the_same_chunks(recorded_inputs):
    require_ros_messages()
    import rclpy
    from rclpy.serialization import deserialize_message, serialize_message

    from asyncvla_ros.control.action_loop import ActionLoop, ActionLoopConfig
    from asyncvla_ros.control.semantic_loop import SemanticLoop, SemanticLoopConfig
    from asyncvla_ros.msg import SemanticFeatures
    from asyncvla_ros.nodes.action_node import ActionNode
    from asyncvla_ros.nodes.semantic_transport import to_message

    policy, model_id, obs, states = recorded_inputs
    cameras = tuple(policy.config.backbone.camera_names)
    semantic = SemanticLoop(policy, SemanticLoopConfig(camera_names=cameras))
    semantic.set_instruction(obs.instruction)
    t0 = 1_000_000_000_000
    for camera in cameras:
        semantic.add_frame(camera, t0, obs.images[camera])
    item = semantic.step(t0)  # what the co-located semantic node commits

    wire = serialize_message(to_message(item.condition, item.seq, model_id, item.encode_ms, inline=True,
                                        frame_stamps_ns=item.frame_stamps_ns))
    rclpy.init(args=[], domain_id=96)
    try:
        from rclpy.parameter import Parameter

        joints = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
        node = ActionNode(policy=policy, model_id=model_id, parameter_overrides=[Parameter("joint_names", value=joints)])
        try:
            node.on_features(deserialize_message(wire, SemanticFeatures), {"received_timestamp": 1, "source_timestamp": 0})
            received = node.store.latest()  # what the separate action node plans from
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown()
    assert received is not None and received.seq == item.seq and received.stamp_ns == item.stamp_ns
    a, b = item.condition.tensors(), received.condition.tensors()
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert bool((a[name] == b[name]).all()), f"{name} differs after the inline transport"

    loops = [ActionLoop(policy, ActionLoopConfig(max_semantic_age_s=5.0)) for _ in range(2)]  # one observation for 1.5 s
    regenerated = 0
    for k, state in enumerate(states):
        now = t0 + (k + 1) * 50_000_000
        r_local, r_wire = (loop.tick(now, sem, state, now) for loop, sem in zip(loops, (item, received)))
        assert not r_local.holding and not r_wire.holding, (r_local.reason, r_wire.reason)
        for x, y in ((r_local.chunk.actions, r_wire.chunk.actions), (r_local.chunk.sfm_actions, r_wire.chunk.sfm_actions),
                     (r_local.chunk.confidence, r_wire.chunk.confidence), (r_local.chunk.regenerated, r_wire.chunk.regenerated),
                     (r_local.command, r_wire.command)):
            assert np.array_equal(x, y), f"tick {k}"
        regenerated += int(r_local.chunk.regenerated.sum())
    print(f"{TICKS} ticks identical through both transports; {regenerated / TICKS:.2f} regenerated steps per chunk")


def test_the_action_node_puts_what_the_safety_filter_let_through_in_its_history(recorded_inputs):
    """The node's command goes out on joint_command; the filter's answer, stamped as that command and
    taken in by the node's safe_joint_command callback, replaces it in the executed-action history."""
    require_ros_messages()
    import rclpy
    from rclpy.parameter import Parameter

    from asyncvla_ros.control.semantic_store import SemanticItem
    from asyncvla_ros.nodes.action_node import ActionNode
    from asyncvla_ros.nodes.conversions import joint_state

    policy, model_id, obs, states = recorded_inputs
    joints = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    rclpy.init(args=[], domain_id=96)
    try:
        node = ActionNode(policy=policy, model_id=model_id, parameter_overrides=[Parameter("joint_names", value=joints)])
        try:
            now = node.get_clock().now().nanoseconds
            images = [obs.images[c] for c in policy.config.backbone.camera_names]
            node.store.commit(SemanticItem(policy.encode(images, obs.instruction, stamp_ns=now), 1, now, obs.instruction))
            node.state, node.state_stamp_ns = np.asarray(states[0]), now
            sent = []
            node.cmd_pub.publish = sent.append  # what goes to the safety filter
            node.on_tick()
            assert len(sent) == 1 and len(node.loop.history) == 1
            command = np.asarray(sent[0].position)
            np.testing.assert_array_equal(node.loop.history.array()[0], command.astype(np.float32))
            clamped = command - 0.02
            node.on_safe_command(joint_state(joints[::-1], clamped[::-1], sent[0].header.stamp.sec * 10**9
                                             + sent[0].header.stamp.nanosec))  # any joint order
            np.testing.assert_array_equal(node.loop.history.array()[0], clamped.astype(np.float32))
            before = node.rejections.count
            node.on_safe_command(joint_state(joints[:5], clamped[:5], now))  # a malformed one is refused, counted
            assert node.rejections.count == before + 1
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown()
