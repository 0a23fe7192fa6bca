"""The viser_bridge node on a real graph: the replay node and the sim node run as their own
processes, the bridge runs in this process so the test can look at its viewer's scene.

The test process hosts the zenoh router on a private port. Replay: a bag recorded from the MuJoCo
humanoid with `RolloutRecorder`, played by `rollout.nodes.replay` started paused; the page's
controls (set from Python, as a click does) go to the replay's services and the states it
publishes come back drawn. Live: `rollout.nodes.sim` runs the humanoid; the drawn poses equal the
states it published, and the policy switch reaches it. A taken port ends the node in one line.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import rollout.runtime as rt
from rollout import topics
from rollout.bag import Bag
from rollout.model import env_grid_offsets, xyzw_to_wxyz
from rollout.nodes.viser_bridge import ViserBridge
from rollout.policy import make_policy
from rollout.recording import RolloutRecorder
from rollout.runtime import Node
from rollout.runtime.context import get_context
from rollout.sim import make_env
from ports import free_port

STEPS, ENVS = 60, 4


def wait_until(cond, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    env = make_env("mujoco:Humanoid-v5", num_envs=ENVS, seed=0)
    policy = make_policy("random", obs_dim=env.info.obs_dim, act_dim=env.info.act_dim)
    return RolloutRecorder(env, max_steps=STEPS, out=tmp_path_factory.mktemp("bag") / "run.mcap").run(policy)


@pytest.fixture(scope="module")
def poses(bag) -> np.ndarray:
    """[T, N, B, 7] recorded body poses."""
    with Bag(bag) as b:
        return np.stack([b.decode(topics.STATE, i).body_poses.reshape(ENVS, -1, 7).copy() for i in range(STEPS)])


@pytest.fixture(scope="module")
def router():
    endpoint = f"tcp/127.0.0.1:{free_port()}"
    old = os.environ.get("ROLLOUT_ROUTER")
    rt.close()
    os.environ["ROLLOUT_ROUTER"] = endpoint
    rt.init([], as_router=True, signals=False)
    stop = threading.Event()

    def spin() -> None:  # this process's callbacks (the bridge's subscriptions and timers)
        executor = get_context().executor
        while not stop.is_set():
            executor.spin_once(0.05)

    t = threading.Thread(target=spin, daemon=True)
    t.start()
    yield endpoint
    stop.set()
    t.join()
    rt.close()
    if old is None:
        os.environ.pop("ROLLOUT_ROUTER", None)
    else:
        os.environ["ROLLOUT_ROUTER"] = old


def start(router: str, node: str, **params: object) -> subprocess.Popen:
    args = [sys.executable, "-m", f"rollout.nodes.{node}", "--ros-args"]
    for name, value in params.items():
        args += ["-p", f"{name}:={str(value).lower() if isinstance(value, bool) else value}"]
    env = dict(os.environ, ROLLOUT_ROUTER=router)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.communicate(timeout=15)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[1]


@pytest.fixture
def bridge(router):
    node = ViserBridge(["--ros-args", "-p", "port:=0", "-p", "service_timeout:=3.0"])
    yield node
    node.destroy_node()


def drawn(viewer) -> np.ndarray:
    return np.stack([h.batched_positions for h in viewer.scene.body_handles])


def expected(poses: np.ndarray, step: int, spacing: float = 2.0) -> np.ndarray:
    p = poses[step]
    return (p[:, :, :3] + env_grid_offsets(len(p), spacing)[:, None]).transpose(1, 0, 2)


def test_the_page_controls_drive_the_replay_node(router, bridge, bag, poses):
    replay = start(router, "replay", bag=bag, start_paused=True, exit_at_end=False)
    try:
        v = bridge.viewer
        # the replay starts paused without publishing a state: the bridge asks for its first step
        wait_until(lambda: v.replay and v.shown_step == 0, what="the first step of the replay")
        assert len(v.series) == STEPS and v.paused
        np.testing.assert_allclose(drawn(v), expected(poses, 0), atol=1e-5)

        v.step_slider.value = 33  # scrub
        wait_until(lambda: v.shown_step == 33, what="step 33")
        np.testing.assert_allclose(drawn(v), expected(poses, 33), atol=1e-5)
        _, wxyz = v.scene.body_handles[4].batched_positions, v.scene.body_handles[4].batched_wxyzs
        np.testing.assert_allclose(wxyz, xyzw_to_wxyz(poses[33][:, 4, 3:]), atol=1e-6)

        v.step_buttons.value = "+1"
        wait_until(lambda: v.shown_step == 34, what="one step on")
        v.step_buttons.value = "-1"
        wait_until(lambda: v.shown_step == 33, what="one step back")

        v.env_number.value = 2
        v.episode_buttons.value = "next"  # env 2 ends an episode at 35 (see the recording): starts at 36
        with Bag(bag) as b:
            ends = [int(m.step) for m in b.iter_decoded(topics.EPISODES) if 2 in np.asarray(m.env_ids).tolist()]
        want = min(e + 1 for e in ends if e + 1 > 33)
        wait_until(lambda: v.shown_step == want, what=f"the next episode of env 2 (step {want})")

        v.speed_slider.value = 0.1  # the replay reports the rate it took
        wait_until(lambda: abs(v.speed_slider.value - 0.1) < 1e-9 and not v._is_internal(), what="rate 0.1")
        v.play_button.value = True
        wait_until(lambda: not v.paused, what="the replay to play")
        start_step = v.shown_step
        wait_until(lambda: v.shown_step >= start_step + 3, what="the playhead to advance")
        v.play_button.value = True
        wait_until(lambda: v.paused, what="the replay to pause")
    finally:
        err = stop(replay)
    assert "Traceback" not in err, err


def test_a_live_run_is_drawn_as_the_sim_publishes_it_and_the_policy_can_be_switched(router, bridge):
    got: dict[int, np.ndarray] = {}
    policy_flags: list[bool] = []
    watcher = Node("bridge_test_watcher")
    watcher.create_subscription(
        "rollout_msgs/msg/State",
        topics.STATE,
        lambda m: got.__setitem__(int(m.step), m.body_poses.reshape(ENVS, -1, 7).copy()),
        1000,
    )
    watcher.create_subscription(
        "rollout_msgs/msg/Action", topics.ACTION, lambda m: policy_flags.append(bool(m.policy_enabled)), 1000
    )
    sim = start(router, "sim", num_envs=ENVS, policy="random", realtime=True, steps=2000)
    try:
        v = bridge.viewer
        wait_until(lambda: v.shown_step is not None and v.shown_step > 10, what="live states")
        assert not v.replay and "live" in v.info_markdown.content
        wait_until(lambda: v.policy_folder.visible, what="the policy switch (the sim offers the service)")

        v.play_button.value = True  # freeze the view to compare it with what the sim published
        step = v.shown_step
        wait_until(lambda: step in got, what="the watcher to have the same state")
        np.testing.assert_allclose(drawn(v), expected({step: got[step]}, step), atol=1e-5)
        assert v.step_slider.max >= step

        v.policy_checkbox.value = False
        wait_until(lambda: policy_flags and not policy_flags[-1], what="the sim to switch its policy off")
        v.policy_checkbox.value = True
        wait_until(lambda: policy_flags[-1], what="the sim to switch its policy on")
    finally:
        err = stop(sim)
        watcher.destroy_node()
    assert "Traceback" not in err, err


def test_a_taken_port_ends_the_node_with_one_line(router):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = start(router, "viser_bridge", port=port)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [
        f"viser_bridge: error: port {port} is already in use; stop the other viewer or choose another port"
    ]


def test_a_bad_parameter_ends_the_node_with_one_line(router):
    proc = start(router, "viser_bridge", camera="sideways", port=0)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert [line for line in err.splitlines() if line.strip()] == [
        "viser_bridge: error: unknown camera preset 'sideways'; choose one of: top, side, front, follow"
    ]


def test_envs_to_draw_that_cannot_be_read_end_in_one_line():
    from rollout.errors import ParameterError
    from rollout.nodes.viser_bridge import ViserBridgeParams, check_params

    check_params(ViserBridgeParams(envs="0-15,3000"))
    with pytest.raises(ParameterError, match="envs takes env numbers and ranges like 0,3,5-7, not 'a-b'"):
        check_params(ViserBridgeParams(envs="a-b"))
