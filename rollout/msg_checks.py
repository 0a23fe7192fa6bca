"""Do a decoded message's declared sizes agree with the arrays it carries? For consumers (the
viewer, the video encoder, replay, to_npz) to call before they size anything from a message.

A message from a bag or the network declares counts (`num_envs`, `obs_dim`, `num_bodies`, ...)
next to flat arrays. A bit flip or a hostile file can make them disagree, or make a count huge
while the arrays stay small; sizing buffers from the count then costs gigabytes or crashes.
Each function returns why a message is unusable, or None, in one line (ros2bag's style: an
error string, not an exception), and never allocates more than the message already holds.

    if (err := state_error(state)) is not None:
        log.error(err); return                 # drop it, keep running
"""

from __future__ import annotations

from typing import Any

MAX_TERMS = 4096
"""Reward terms per message: far above any real env, far below what makes a replay run out of memory."""
MAX_NAMES = 1 << 16
"""Bodies, joints or actions named in a robot description."""


def _size(msg: Any, name: str) -> int:
    return int(getattr(getattr(msg, name), "size", len(getattr(msg, name))))


def state_error(state: Any) -> str | None:
    """Why a rollout_msgs/State cannot be drawn: its arrays' sizes must be num_envs times the
    per-env dims it declares (done/terminated/truncated: num_envs or empty)."""
    n = int(state.num_envs)
    if n == 0:
        return "State declares num_envs 0"
    want = {
        "obs": n * int(state.obs_dim),
        "base_pos": n * 3,
        "base_quat": n * 4,
        "joint_pos": n * int(state.num_joints),
        "body_poses": n * int(state.num_bodies) * 7,
    }
    for name, size in want.items():
        have = _size(state, name)
        if have != size:
            return f"State at step {state.step}: {name} has {have} values, but num_envs {n} needs {size}"
    for name in ("done", "terminated", "truncated"):
        have = _size(state, name)
        if have not in (0, n):
            return f"State at step {state.step}: {name} has {have} flags for {n} envs"
    return None


def action_error(action: Any) -> str | None:
    """Why a rollout_msgs/Action's action array disagrees with num_envs × act_dim."""
    n, a = int(action.num_envs), int(action.act_dim)
    have = _size(action, "action")
    if n == 0 or have != n * a:
        return f"Action at step {action.step}: action has {have} values, but num_envs {n} × act_dim {a} is {n * a}"
    return None


def reward_terms_error(msg: Any, num_envs: int | None = None) -> str | None:
    """Why a rollout_msgs/RewardTerms is unusable: too many terms, or a term (or the total) whose
    length is not the run's env count."""
    n = _size(msg, "total") if num_envs is None else int(num_envs)
    if len(msg.terms) > MAX_TERMS:
        return f"RewardTerms at step {msg.step} has {len(msg.terms)} terms; at most {MAX_TERMS} are supported"
    if _size(msg, "total") != n:
        return f"RewardTerms at step {msg.step}: total has {_size(msg, 'total')} values for {n} envs"
    for term in msg.terms:
        if term.value.size != n:
            return f"RewardTerms at step {msg.step}: term {term.name!r} has {term.value.size} values for {n} envs"
    return None


def robot_error(robot: Any, state: Any | None = None) -> str | None:
    """Why a rollout_msgs/RobotDescription cannot be used (with the run's first State, when
    given: num_envs and dims must agree with it, since only the State's arrays back them)."""
    for name in ("body_names", "joint_names", "action_names", "reward_term_names"):
        if len(getattr(robot, name)) > MAX_NAMES:
            return f"RobotDescription names {len(getattr(robot, name))} {name.split('_')[0]}s; at most {MAX_NAMES}"
    if len(robot.reward_term_names) > MAX_TERMS:
        return f"RobotDescription names {len(robot.reward_term_names)} reward terms; at most {MAX_TERMS} are supported"
    if not robot.dt > 0 or robot.dt != robot.dt:
        return f"RobotDescription has dt {robot.dt}; it must be a positive number of seconds"
    if state is not None:
        if (err := state_error(state)) is not None:
            return err
        if int(robot.num_envs) != int(state.num_envs):
            return f"RobotDescription declares num_envs {robot.num_envs}, but the States carry {state.num_envs}"
        if robot.body_names and len(robot.body_names) != int(state.num_bodies):
            return f"RobotDescription names {len(robot.body_names)} bodies, but the States carry {state.num_bodies}"
    return None
