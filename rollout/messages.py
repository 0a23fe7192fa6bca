"""A control step as the graph's messages: what the sim node publishes and a bag stores.

No middleware here. `RolloutMessages` turns an `EnvInfo` and each `StepRecord` into serialized
CDR messages keyed by topic; the sim node publishes them and `RolloutRecorder` writes them to a
bag directly, so both produce the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rollout import __version__, topics
from rollout.codec import get_type, serialize
from rollout.model.layout import env_grid_offsets
from rollout.sim import EnvInfo, Poses, StepRecord

log = logging.getLogger(__name__)

TOPIC_TYPES: dict[str, str] = {
    topics.ROBOT: "rollout_msgs/msg/RobotDescription",
    topics.STATE: "rollout_msgs/msg/State",
    topics.ACTION: "rollout_msgs/msg/Action",
    topics.REWARD_TERMS: "rollout_msgs/msg/RewardTerms",
    topics.EPISODES: "rollout_msgs/msg/EpisodeEvents",
    topics.BASE_POSES: "geometry_msgs/msg/PoseArray",
    topics.TF: "tf2_msgs/msg/TFMessage",
    topics.ROBOT_DESCRIPTION: "std_msgs/msg/String",
}
LATCHED_TOPICS = frozenset({topics.ROBOT, topics.ROBOT_DESCRIPTION})


@dataclass(frozen=True)
class RunIdentity:
    """What makes a recording reproducible: which env, seed and policy."""

    seed: int = 0
    policy: str = ""
    policy_sha256: str = ""


def header(stamp_ns: int, frame_id: str = "") -> object:
    Header, Time = get_type("std_msgs/msg/Header"), get_type("builtin_interfaces/msg/Time")
    return Header(stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=frame_id)


class RolloutMessages:
    """Serialized messages of one run: `latched()` once, `step(rec)` every control step.

    tf_envs: the envs drawn in Foxglove through /tf and /robot_description (a handful, never
    all of them); empty for none. A model that cannot be converted to URDF logs a warning and
    leaves /tf and /robot_description out; everything else is still published.
    """

    def __init__(self, info: EnvInfo, identity: RunIdentity = RunIdentity(), *, tf_envs: Sequence[int] = (0,)) -> None:
        self.info = info
        self.identity = identity
        self.tf_envs = sorted({int(k) for k in tf_envs if 0 <= int(k) < info.num_envs})
        self._types = {topic: get_type(name) for topic, name in TOPIC_TYPES.items()}
        self._urdf: str | None = None
        self._parents: list[int] | None = None
        self._offsets: np.ndarray | None = None
        self._grid = env_grid_offsets(info.num_envs, info.env_spacing)  # where each env is drawn
        if self.tf_envs and info.model_text:
            self._prepare_tf()

    def _prepare_tf(self) -> None:
        from rollout.model import ModelError, load_model, mjcf_to_urdf, robot_body_parents

        info = self.info
        try:
            model = load_model(info.model_text, info.model_format or "mjcf")
            parents = robot_body_parents(model)
            if len(parents) != len(info.body_names):
                raise ModelError(f"the model has {len(parents)} bodies but the env names {len(info.body_names)}")
            offsets = self._grid[self.tf_envs]
            self._urdf = mjcf_to_urdf(model, envs=self.tf_envs, offsets=offsets, model_format=info.model_format or "mjcf")
            self._parents, self._offsets = parents, offsets
        except (ModelError, ValueError) as e:
            log.warning("no /robot_description or /tf: the robot model cannot be converted to URDF (%s)", e)

    @property
    def topic_types(self) -> dict[str, str]:
        """{topic: type name} of every topic this run publishes."""
        out = dict(TOPIC_TYPES)
        if self._urdf is None:
            del out[topics.TF], out[topics.ROBOT_DESCRIPTION]
        return out

    def latched(self, stamp_ns: int) -> list[tuple[str, bytes]]:
        """The robot description (and the URDF when there is one): publish once, latched."""
        info, ident = self.info, self.identity
        robot = self._types[topics.ROBOT](
            header=header(stamp_ns),
            model_format=info.model_format,
            model=info.model_text,
            body_names=list(info.body_names),
            joint_names=list(info.joint_names),
            action_names=list(info.action_names),
            reward_term_names=list(info.reward_term_names),
            dt=info.dt,
            num_envs=info.num_envs,
            obs_dim=info.obs_dim,
            act_dim=info.act_dim,
            env_spacing=info.env_spacing,
            env=info.name,
            seed=ident.seed,
            policy=ident.policy,
            policy_sha256=ident.policy_sha256,
            rollout_version=__version__,
        )
        out = [(topics.ROBOT, serialize(robot))]
        if self._urdf is not None:
            out.append((topics.ROBOT_DESCRIPTION, serialize(self._types[topics.ROBOT_DESCRIPTION](data=self._urdf))))
        return out

    def step(self, rec: StepRecord, stamp_ns: int) -> list[tuple[str, bytes]]:
        """State, action, reward terms, base poses, /tf and (when episodes ended) episode events."""
        info, T = self.info, self._types
        p = rec.poses
        n = info.num_envs
        hdr = header(stamp_ns)
        state = T[topics.STATE](
            header=hdr,
            step=rec.step,
            sim_time=rec.sim_time,
            num_envs=n,
            obs_dim=info.obs_dim,
            num_joints=p.joint_pos.shape[1],
            num_bodies=p.body_poses.shape[1],
            obs=rec.obs,
            base_pos=p.base_pos,
            base_quat=p.base_quat,
            joint_pos=p.joint_pos,
            body_poses=p.body_poses,
            done=rec.done,
            terminated=rec.terminated,
            truncated=rec.truncated,
        )
        action = T[topics.ACTION](
            header=hdr,
            step=rec.step,
            sim_time=rec.sim_time,
            num_envs=n,
            act_dim=info.act_dim,
            policy_enabled=rec.policy_enabled,
            action=rec.action,
        )
        Term = get_type("rollout_msgs/msg/RewardTerm")
        terms = [
            Term(name=name, mean=float(values.mean()) if n else 0.0, value=values)
            for name, values in zip(info.reward_term_names, rec.terms)
        ]
        reward = T[topics.REWARD_TERMS](
            header=hdr,
            step=rec.step,
            sim_time=rec.sim_time,
            terms=terms,
            total_mean=float(rec.reward.mean()) if n else 0.0,
            total=rec.reward,
        )
        out = [
            (topics.STATE, serialize(state)),
            (topics.ACTION, serialize(action)),
            (topics.REWARD_TERMS, serialize(reward)),
        ]
        if len(rec.episodes):
            out.append((topics.EPISODES, self._episode_events(rec, hdr)))
        out.append((topics.BASE_POSES, self._base_poses(p, stamp_ns)))
        if self._urdf is not None:
            from rollout.model import tf_transforms

            tf = tf_transforms(
                p.body_poses,
                self.tf_envs,
                info.body_names,
                stamp_ns,
                parents=self._parents,
                offsets=self._offsets,
            )
            out.append((topics.TF, serialize(tf)))
        return out

    def _episode_events(self, rec: StepRecord, hdr: object) -> bytes:
        """Who ended, with what return and length, why, and where (the terminal pose, when known)."""
        e = rec.episodes
        final = e.final_poses
        return serialize(
            self._types[topics.EPISODES](
                header=hdr,
                step=rec.step,
                sim_time=rec.sim_time,
                env_ids=e.env_ids,
                returns=e.returns,
                lengths=e.lengths,
                terminated=e.terminated,
                reasons=e.reason_names(),
                num_bodies=0 if final is None else final.body_poses.shape[1],
                final_base_pos=_f32(None if final is None else final.base_pos),
                final_base_quat=_f32(None if final is None else final.base_quat),
                final_body_poses=_f32(None if final is None else final.body_poses),
            )
        )

    def _base_poses(self, p: Poses, stamp_ns: int) -> bytes:
        from rollout.model import pose_array_cdr

        return pose_array_cdr(p.base_pos, p.base_quat, stamp_ns, offsets=self._grid)


def _f32(a: np.ndarray | None) -> np.ndarray:
    return np.zeros(0, np.float32) if a is None else np.ascontiguousarray(a, np.float32).reshape(-1)
