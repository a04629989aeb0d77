"""The scripted expert as a teleoperation source for the node graph (no rclpy).

The sim driver publishes its world's pose after every update (`sim/world_state`). `ExpertTeleop` keeps a
mirror of that world (a `SimArm` of the same scene that renders nothing, put into each published pose)
and gives the joint targets the scripted expert would command from it, exactly as in `asyncvla-ros demos`
but through the graph: the targets go out on `joint_command`, the safety filter passes or clamps them,
and the driver moves the arm. Recording the graph (`asyncvla-ros record`) then records demonstrations,
and `asyncvla-ros bag-to-dataset` turns them into a LeRobotDataset.

A new episode starts when the world's episode seed or instruction changes, or its sim time goes back
(the driver restarted). While the driver is not active the expert holds still and starts over, so that
time spent waiting for activation does not run out its phase timers.
"""

from __future__ import annotations

import logging

import numpy as np

from asyncvla_ros.sim.render import PoseSnapshot

logger = logging.getLogger(__name__)


class ExpertTeleop:
    def __init__(self) -> None:
        from asyncvla_ros.sim import SimArm, SimArmConfig

        self.arm = SimArm(SimArmConfig(cameras=()))
        self.expert = None
        self._episode: tuple[int, str] | None = None
        self._time_s = -1.0
        self._solved = False  # this episode's success is counted
        self.episodes = 0  # episodes started
        self.solved = 0  # episodes the expert finished with the task solved

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.arm.joint_names

    def command(self, snapshot: PoseSnapshot, episode_seed: int, instruction: str, driver_active: bool = True) -> np.ndarray | None:
        """The expert's joint targets (rad, `joint_names` order) for the world in `snapshot`; None while the
        driver is not active (nothing to command).

        Raises:
            ValueError: a snapshot of another scene, or an instruction the task does not know.
        """
        from asyncvla_ros.sim import ScriptedExpert

        self.arm.set_pose(snapshot, instruction)
        episode = (int(episode_seed), instruction)
        new_episode = self.expert is None or episode != self._episode or snapshot.time_s < self._time_s
        if new_episode:
            self.episodes += 1
            self._episode, self._solved = episode, False
            logger.info("expert: episode %d (seed %d, %r)", self.episodes, episode_seed, instruction)
        if new_episode or not driver_active:
            self.expert = ScriptedExpert(self.arm)  # from where the arm is now
        self._time_s = snapshot.time_s
        if not driver_active:
            return None
        target = self.expert.act()
        if self.expert.done and not self._solved and self.arm.is_success():
            self._solved = True
            self.solved += 1
            logger.info("expert: episode %d solved at sim time %.2f s", self.episodes, snapshot.time_s)
        return target

    @property
    def phase(self) -> str:
        return self.expert.phase.name if self.expert is not None else "none"

    def close(self) -> None:
        self.arm.close()
