"""The scripted expert as a teleoperation source for the node graph (no rclpy).

The sim driver publishes its world's pose after every update (`sim/world_state`). `ExpertTeleop` keeps a
mirror of that world (a `SimArm` of the same scene that renders nothing, put into each published pose)
and gives the joint targets the scripted expert would command from it, exactly as in `asyncvla-ros demos`
but through the graph: the targets go out on `joint_command`, the safety filter passes or clamps them,
and the driver moves the arm. Recording the graph (`asyncvla-ros record`) then records demonstrations,
and `asyncvla-ros bag-to-dataset` turns them into a LeRobotDataset.

A new episode starts when the world's episode seed or instruction changes, or its sim time goes back
(the driver restarted or reset the scene). While the driver is not active the expert holds still and
starts over, so that time spent waiting for activation does not run out its phase timers.

Several episodes in one graph run (`ExpertEpisodesConfig.episodes` > 1): once an episode has ended
(solved, or given up after `timeout_s` of sim time) and `pause_s` more have passed, `next_episode()`
names the seed of the next scene (this one's + 1), which the node asks the sim driver to reset to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from asyncvla_ros.parameters import check_fields, param

if TYPE_CHECKING:
    from asyncvla_ros.sim.render import PoseSnapshot  # imports MuJoCo

logger = logging.getLogger(__name__)

REASK_S = 2.0  # sim time after which an unanswered request for the next scene is repeated


@dataclass
class ExpertEpisodesConfig:
    episodes: int = param(1, "expert: episodes to demonstrate in one run, each on the next scene seed (the sim "
                             "driver resets the world in place between them)", low=1, high=1_000_000)
    timeout_s: float = param(30.0, "expert: sim time after which an unsolved episode is given up, s", low=1.0, high=3600.0)
    pause_s: float = param(1.0, "expert: sim time from an episode's end to the next reset, s (the recording shows "
                                "the result)", low=0.0, high=60.0)

    def __post_init__(self) -> None:
        check_fields(self)


class ExpertTeleop:
    def __init__(self, config: ExpertEpisodesConfig | None = None) -> None:
        from asyncvla_ros.sim import SimArm, SimArmConfig

        self.config = config or ExpertEpisodesConfig()
        self.arm = SimArm(SimArmConfig(cameras=()))
        self.expert = None
        self._episode: tuple[int, str] | None = None
        self._time_s = -1.0
        self._solved = False  # this episode's success is counted
        self._ended_at_s: float | None = None  # sim time this episode was solved or given up
        self._asked_at_s: float | None = None  # sim time the next scene was asked for
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
            self._ended_at_s, self._asked_at_s = None, None
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
            self._ended_at_s = snapshot.time_s
            logger.info("expert: episode %d solved at sim time %.2f s", self.episodes, snapshot.time_s)
        elif self._ended_at_s is None and snapshot.time_s >= self.config.timeout_s:
            self._ended_at_s = snapshot.time_s
            logger.warning("expert: episode %d not solved in %.0f s of sim time; given up", self.episodes, self.config.timeout_s)
        return target

    def next_episode(self) -> int | None:
        """The seed of the scene to reset to now; None until this episode has ended and `pause_s` passed,
        and once the run's `episodes` have all started. Asked once, and again every REASK_S of sim time
        while the world stays in this episode (a lost request does not stall the run)."""
        if self._ended_at_s is None or self.episodes >= self.config.episodes or self._time_s - self._ended_at_s < self.config.pause_s:
            return None
        if self._asked_at_s is not None and self._time_s - self._asked_at_s < REASK_S:
            return None
        self._asked_at_s = self._time_s
        return self._episode[0] + 1

    @property
    def phase(self) -> str:
        return self.expert.phase.name if self.expert is not None else "none"

    def close(self) -> None:
        self.arm.close()
