"""Which backend `rollout.runtime` picks (zenoh by default, rclpy with ROS 2 sourced); the behaviour of both: test_runtime_backends.py."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

HAS_RCLPY = importlib.util.find_spec("rclpy") is not None


def backend_of(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import rollout.runtime as r; print(r.backend(), r.Node.__module__)"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=60,
    )


def test_zenoh_is_the_default_without_ros() -> None:
    p = backend_of({"ROS_DISTRO": "", "ROLLOUT_BACKEND": ""})
    assert p.stdout.split() == ["zenoh", "rollout.runtime.node"]


@pytest.mark.skipif(HAS_RCLPY, reason="rclpy is installed: forcing it would succeed")
def test_forcing_rclpy_without_ros_is_one_clear_line() -> None:
    p = backend_of({"ROLLOUT_BACKEND": "rclpy"})
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert p.stderr.strip().startswith("rollout: error: the rclpy backend needs ROS 2 sourced")


def test_an_unknown_backend_is_one_clear_line() -> None:
    p = backend_of({"ROLLOUT_BACKEND": "dds"})
    assert p.returncode != 0 and p.stderr.strip() == "rollout: error: ROLLOUT_BACKEND must be zenoh or rclpy, not 'dds'"


@pytest.mark.skipif(not HAS_RCLPY, reason="rclpy does not import here (ROS 2 Jazzy not installed; .ci/run installs it)")
def test_rclpy_nodes_move_our_cdr_bytes() -> None:
    import rclpy  # noqa: F401

    p = backend_of({"ROLLOUT_BACKEND": "rclpy"})
    assert p.stdout.split() == ["rclpy", "rollout.runtime.ros"]
    from rollout.runtime.ros import rcl_qos
    from rollout.runtime.qos import LATCHED

    assert rcl_qos(LATCHED).durability == 1
