"""A ROS 2 client of a running replay graph (started by tests/test_ros2_graph.py with ROS 2 sourced):
waits for the state the viewer asks the paused player for, then calls the player's services itself.
Prints one JSON line: what it saw."""

from __future__ import annotations

import json
import time

from rollout import runtime
from rollout.runtime import LOSSLESS


def main() -> None:
    runtime.init([], signals=False)
    node = runtime.Node("_player_check")
    steps: list[int] = []
    node.create_subscription("rollout_msgs/msg/State", "/rollout/state", lambda m: steps.append(int(m.step)), LOSSLESS)
    out: dict = {}

    def spin_until(done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            runtime.spin_once(timeout_sec=0.05)
        return done()

    # the replay starts paused and publishes nothing: a state comes only when the viewer seeks for it
    out["viewer_seeked"] = spin_until(lambda: bool(steps), 60)
    out["first_steps"] = list(steps)
    is_paused = node.create_client("rosbag2_interfaces/srv/IsPaused", "/replay/is_paused")
    out["paused"] = bool(is_paused.call(is_paused.srv_type.Request(), timeout_sec=20).paused)
    resume = node.create_client("rosbag2_interfaces/srv/Resume", "/replay/resume")
    resume.call(resume.srv_type.Request(), timeout_sec=20)
    n = len(steps)
    out["played_after_resume"] = spin_until(lambda: len(steps) >= n + 5, 60)
    out["paused_after_resume"] = bool(is_paused.call(is_paused.srv_type.Request(), timeout_sec=20).paused)
    print(json.dumps(out), flush=True)
    node.destroy_node()
    runtime.close()


if __name__ == "__main__":
    main()
