"""Names and index arrays that turn MuJoCo state into `Poses` (shared by the MuJoCo envs).

MuJoCo stores quaternions w, x, y, z; everything this module returns is x, y, z, w.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from rollout.sim.protocol import Poses, wxyz_to_xyzw

_ONE_DOF = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


def _name(model: mujoco.MjModel, kind: mujoco.mjtObj, i: int, prefix: str) -> str:
    # Ant-v5 and others leave bodies unnamed: fall back to a stable made-up name
    return mujoco.mj_id2name(model, kind, i) or f"{prefix}_{i}"


@dataclass(frozen=True)
class MjLayout:
    """Which parts of a MuJoCo model's state a `Poses` holds, and their names."""

    body_names: tuple[str, ...]
    """Bodies 1..nbody-1 (the world body, 0, is left out)."""
    joint_names: tuple[str, ...]
    """Hinge and slide joints, in model order (free and ball joints are left out)."""
    joint_qposadr: np.ndarray
    """[J] index of each joint in qpos."""
    base_qposadr: int
    """qpos index of the first free joint (position then w, x, y, z), or -1 if none."""
    action_names: tuple[str, ...]
    action_low: np.ndarray | None
    action_high: np.ndarray | None

    @classmethod
    def of(cls, model: mujoco.MjModel) -> MjLayout:
        """Read the layout of `model`."""
        bodies = tuple(_name(model, mujoco.mjtObj.mjOBJ_BODY, i, "body") for i in range(1, model.nbody))
        jtype = np.asarray(model.jnt_type)
        one_dof = np.flatnonzero(np.isin(jtype, _ONE_DOF))
        joints = tuple(_name(model, mujoco.mjtObj.mjOBJ_JOINT, int(i), "joint") for i in one_dof)
        free = np.flatnonzero(jtype == int(mujoco.mjtJoint.mjJNT_FREE))
        actions = tuple(_name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i, "actuator") for i in range(model.nu))
        low = high = None
        limited = np.asarray(model.actuator_ctrllimited, dtype=bool)
        if model.nu and limited.any():
            ranges = np.asarray(model.actuator_ctrlrange, dtype=np.float32)
            low = np.where(limited, ranges[:, 0], -np.inf).astype(np.float32)
            high = np.where(limited, ranges[:, 1], np.inf).astype(np.float32)
        return cls(
            body_names=bodies,
            joint_names=joints,
            joint_qposadr=np.asarray(model.jnt_qposadr)[one_dof].astype(np.intp),
            base_qposadr=int(model.jnt_qposadr[free[0]]) if free.size else -1,
            action_names=actions,
            action_low=low,
            action_high=high,
        )

    def poses(self, qpos: np.ndarray, xpos: np.ndarray, xquat: np.ndarray) -> Poses:
        """Poses from stacked state: qpos [N, nq], xpos [N, nbody, 3], xquat [N, nbody, 4] (w first).

        `xpos`/`xquat` must be the kinematics of `qpos`. Returns new float32 arrays.
        """
        n = qpos.shape[0]
        body_poses = np.empty((n, xpos.shape[1] - 1, 7), np.float32)
        body_poses[:, :, :3] = xpos[:, 1:]
        body_poses[:, :, 3:6] = xquat[:, 1:, 1:]
        body_poses[:, :, 6] = xquat[:, 1:, 0]
        if self.base_qposadr >= 0:
            a = self.base_qposadr
            base_pos = qpos[:, a : a + 3].astype(np.float32)
            q = qpos[:, a + 3 : a + 7]
            # qpos quaternions need not be unit (Gymnasium's reset noise); MuJoCo normalizes them when
            # it uses them, and so do we, so base_quat and the body quaternions agree
            base_quat = wxyz_to_xyzw(q / np.linalg.norm(q, axis=1, keepdims=True))
        elif xpos.shape[1] > 1:  # fixed-base model: body 1 stands in for the base
            base_pos = body_poses[:, 0, :3].copy()
            base_quat = body_poses[:, 0, 3:].copy()
        else:
            return Poses.empty(n)
        return Poses(
            base_pos=base_pos,
            base_quat=base_quat,
            joint_pos=qpos[:, self.joint_qposadr].astype(np.float32),
            body_poses=body_poses,
        )
