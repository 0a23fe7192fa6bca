"""Skip a ROS 2 test where ROS 2 is not installed, or fail it where CI said it must run
(`ROLLOUT_REQUIRE_ROS2=1`: .ci/run installs ROS 2, so a skip there would hide a broken install)."""

from __future__ import annotations

import os

import pytest


def missing(reason: str) -> None:
    if os.environ.get("ROLLOUT_REQUIRE_ROS2") == "1":
        pytest.fail(f"ROS 2 is required here (ROLLOUT_REQUIRE_ROS2=1): {reason}")
    pytest.skip(reason)
