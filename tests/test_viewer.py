"""The web viewer, driven from Python the way a user drives the page, fed a real recording.

The recording is the MuJoCo humanoid (4 envs, random actions: they move, fall and reset) made with
`RolloutRecorder`. Replays go through the real `rollout.replay.Player`, wired to the viewer's
callbacks in this process exactly as the replay node and the bridge wire them over the network.
Assertions are on what the page would show: the batched meshes' instance poses, the camera sent
to the pages, the slider, the reward table and plot, and the calls the controls make.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rollout import topics
from rollout.bag import Bag
from rollout.codec import deserialize, get_type, serialize
from rollout.errors import PortInUseError
from rollout.export.synthetic import write_synthetic_rollout
from rollout.model import env_grid_offsets, xyzw_to_wxyz
from rollout.nodes.viser_bridge import LatestCall
from rollout.policy import make_policy
from rollout.recording import RolloutRecorder
from rollout.replay import Player, episode_events, timeline
from rollout.runtime import Future
from rollout.sim import make_env
from rollout.viewer import Trails, Viewer, ViewerCallbacks, neighbour_step

STEPS, ENVS = 60, 4
TYPES = {
    topics.ROBOT: "rollout_msgs/msg/RobotDescription",
    topics.STATE: "rollout_msgs/msg/State",
    topics.REWARD_TERMS: "rollout_msgs/msg/RewardTerms",
    topics.EPISODES: "rollout_msgs/msg/EpisodeEvents",
}


@pytest.fixture(scope="module")
def bag_path(tmp_path_factory) -> Path:
    env = make_env("mujoco:Humanoid-v5", num_envs=ENVS, seed=0)
    policy = make_policy("random", obs_dim=env.info.obs_dim, act_dim=env.info.act_dim)
    return RolloutRecorder(env, max_steps=STEPS, out=tmp_path_factory.mktemp("bag") / "run.mcap").run(policy)


@pytest.fixture(scope="module")
def recorded(bag_path) -> dict:
    """Decoded messages: robot, states and reward terms by step, episode events, body poses [T, N, B, 7]."""
    with Bag(bag_path) as b:
        msgs = {
            t: [deserialize(bytes(b.raw(t, i).data), get_type(n)) for i in range(b.count(t))] for t, n in TYPES.items()
        }
        tl = timeline(b)
    states = msgs[topics.STATE]
    return {
        "robot": msgs[topics.ROBOT][0],
        "states": states,
        "rewards": msgs[topics.REWARD_TERMS],
        "episodes": msgs[topics.EPISODES],
        "timeline": tl,
        "poses": np.stack([s.body_poses.reshape(s.num_envs, s.num_bodies, 7) for s in states]),
    }


def drawn(viewer: Viewer) -> tuple[np.ndarray, np.ndarray]:
    """Instance positions [B, E, 3] and wxyzs [B, E, 4] of every body mesh as the page has them."""
    pos = np.stack([h.batched_positions for h in viewer.scene.body_handles])
    wxyz = np.stack([h.batched_wxyzs for h in viewer.scene.body_handles])
    return pos, wxyz


def expected(recorded: dict, step: int) -> tuple[np.ndarray, np.ndarray]:
    poses = recorded["poses"][step]  # [N, B, 7] x y z qx qy qz qw
    offsets = env_grid_offsets(ENVS, recorded["robot"].env_spacing)
    return (poses[:, :, :3] + offsets[:, None]).transpose(1, 0, 2), xyzw_to_wxyz(poses[:, :, 3:]).transpose(1, 0, 2)


def assert_shows_step(viewer: Viewer, recorded: dict, step: int) -> None:
    pos, wxyz = drawn(viewer)
    want_pos, want_wxyz = expected(recorded, step)
    assert viewer.shown_step == step
    np.testing.assert_allclose(pos, want_pos, atol=1e-5)
    np.testing.assert_allclose(wxyz, want_wxyz, atol=1e-6)


class InProcessReplay:
    """A real `Player` on the bag behind a Viewer's callbacks, delivering what it plays to the viewer."""

    def __init__(self, bag_path: Path, *, pace: str = "recorded", **viewer_args) -> None:
        self.lock = threading.RLock()  # the Player is single-threaded; pages call in from viser's threads
        self.bag = Bag(bag_path)
        self.player = Player(self.bag, start_paused=True, episodes=episode_events(self.bag), pace=pace)
        self.calls: list[tuple] = []
        page_ready = viewer_args.pop("page_ready", None)
        self.viewer = Viewer(
            port=0,
            callbacks=ViewerCallbacks(
                seek_step=self.seek_step,
                set_paused=self.set_paused,
                set_rate=self.set_rate,
                set_loop=self.set_loop,
                step=self.step,
                seek_episode=self.seek_episode,
                page_ready=page_ready,
            ),
            **viewer_args,
        )
        self.viewer.on_timeline(timeline(self.bag))
        self.player.seek_step(0)  # paused at the first step, showing it
        self.pump()

    def pump(self) -> None:
        with self.lock:
            self._pump()

    def _pump(self) -> None:
        for item in self.player.due():
            if item.topic in TYPES:
                msg = deserialize(bytes(item.data), get_type(TYPES[item.topic]))
                {
                    topics.ROBOT: self.viewer.on_robot,
                    topics.STATE: self.viewer.on_state,
                    topics.REWARD_TERMS: self.viewer.on_reward_terms,
                    topics.EPISODES: self.viewer.on_episodes,
                }[item.topic](msg)
        s = self.player.status()
        Status = get_type("rollout_msgs/msg/PlaybackStatus")
        self.viewer.on_status(
            Status(step=s.step, first_step=s.first_step, last_step=s.last_step, paused=s.paused, loop=s.loop,
                   rate=s.rate, progress=s.progress, finished=s.finished)
        )  # fmt: skip

    def seek_step(self, step: int) -> None:
        with self.lock:
            self.calls.append(("seek_step", step))
            self.player.seek_step(step)
            self.pump()

    def set_paused(self, paused: bool) -> None:
        with self.lock:
            self.calls.append(("set_paused", paused))
            self.player.pause() if paused else self.player.resume()
            self.pump()

    def set_rate(self, rate: float) -> None:
        with self.lock:
            self.calls.append(("set_rate", rate))
            self.player.set_rate(rate)

    def set_loop(self, loop: bool) -> None:
        with self.lock:
            self.calls.append(("set_loop", loop))
            self.player.set_loop(loop)

    def step(self, delta: int) -> None:
        with self.lock:
            self.calls.append(("step", delta))
            self.player.pause()
            self.seek_step(self.viewer.neighbour_step(delta))

    def seek_episode(self, env: int, direction: int) -> None:
        with self.lock:
            self.calls.append(("seek_episode", env, direction))
            self.player.seek_episode(env, direction)
            self.pump()

    def close(self) -> None:
        self.viewer.close()
        self.bag.close()


@pytest.fixture
def replay(bag_path):
    r = InProcessReplay(bag_path)
    yield r
    r.close()


@pytest.fixture
def live():
    calls: list[tuple] = []
    v = Viewer(port=0, trail_length=5, callbacks=ViewerCallbacks(set_policy_enabled=lambda on: calls.append(("policy", on))))
    v.calls = calls
    yield v
    v.close()


def feed_live(viewer: Viewer, recorded: dict, steps: range) -> None:
    ends = {int(e.step): e for e in recorded["episodes"]}
    for k in steps:
        viewer.on_state(recorded["states"][k])
        viewer.on_reward_terms(recorded["rewards"][k])
        if k in ends:
            viewer.on_episodes(ends[k])


# ----------------------------------------------------------------------------- scene


def test_every_env_is_drawn_at_its_recorded_body_poses(live, recorded):
    live.on_robot(recorded["robot"])
    assert len(live.scene.body_handles) == len(recorded["robot"].body_names) == 13  # one batched mesh per body
    feed_live(live, recorded, range(40))
    assert_shows_step(live, recorded, 39)
    assert all(h.batched_positions.shape == (ENVS, 3) for h in live.scene.body_handles)  # one instance per env
    pos, _ = drawn(live)
    torso = pos[0]
    assert np.linalg.norm(torso[0] - torso[1]) > 1.0  # envs share an origin in the recording: laid out apart
    assert "live" in live.info_markdown.content and "mujoco:Humanoid-v5" in live.info_markdown.content


def test_a_state_before_the_robot_description_is_drawn_once_it_arrives(live, recorded):
    live.on_state(recorded["states"][7])
    assert live.shown_step is None and not live.scene.body_handles
    live.on_robot(recorded["robot"])
    assert_shows_step(live, recorded, 7)


def test_the_robot_description_again_after_a_seek_keeps_the_scene(live, recorded):
    live.on_robot(recorded["robot"])
    handles = list(live.scene.body_handles)
    live.on_robot(recorded["robot"])  # a replay republishes latched topics after every seek
    assert live.scene.body_handles == handles and all(not h._impl.removed for h in handles)


def test_a_model_without_geometry_is_drawn_as_one_sphere_per_body(tmp_path):
    rec = write_synthetic_rollout(tmp_path / "syn.mcap", steps=5, num_envs=3, num_bodies=4)  # model "<mujoco/>"
    with Bag(tmp_path / "syn.mcap") as b, Viewer(port=0) as v:
        v.on_robot(b.decode(topics.ROBOT, 0))
        v.on_state(b.decode(topics.STATE, 3))
        assert len(v.scene.body_handles) == 4
        pos, wxyz = drawn(v)
        offsets = env_grid_offsets(3, 2.0)
        np.testing.assert_allclose(pos, (rec.body_poses[3, :, :, :3] + offsets[:, None]).transpose(1, 0, 2), atol=1e-5)
        np.testing.assert_allclose(wxyz, xyzw_to_wxyz(rec.body_poses[3, :, :, 3:]).transpose(1, 0, 2), atol=1e-6)


def test_trails_keep_a_bounded_number_of_base_positions(live, recorded):
    live.on_robot(recorded["robot"])
    feed_live(live, recorded, range(30))
    seg = live.scene.trail_handle.points
    assert seg.shape == ((5 - 1) * ENVS, 2, 3)  # trail_length 5 -> 4 segments per env
    bases = recorded["poses"][25:30, :, 0, :3] + env_grid_offsets(ENVS, 2.0)[None]
    np.testing.assert_allclose(seg.reshape(4, ENVS, 2, 3)[:, :, 0], bases[:-1], atol=1e-5)
    live.trails_checkbox.value = False
    assert not live.scene.trail_handle.visible


def test_a_trail_does_not_draw_the_jump_of_a_reset():
    t = Trails(10, 1, max_jump=0.5)
    for k, x in enumerate([0.0, 0.01, 0.02, 3.0, 3.01]):
        t.push(k, np.array([[x, 0.0, 0.0]]))
    seg = t.segments()
    lengths = np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1)
    np.testing.assert_allclose(lengths, [0.01, 0.01, 0.0, 0.01], atol=1e-6)
    t.push(2, np.zeros((1, 3)))  # a step backwards (a seek) starts over
    assert t.count == 1 and len(t.segments()) == 0


# ----------------------------------------------------------------------------- live timeline


def test_a_live_view_grows_and_can_be_paused_scrubbed_and_resumed(live, recorded):
    live.on_robot(recorded["robot"])
    feed_live(live, recorded, range(30))
    assert (live.step_slider.min, live.step_slider.max, live.step_slider.value) == (0, 29, 29)

    live.play_button.value = True  # pause: the view freezes while the run goes on, and says so
    assert live.paused and live.play_button.label == "Resume live view"
    assert "view paused at step 29; the sim keeps running" in live.info_markdown.content
    feed_live(live, recorded, range(30, 40))
    assert live.shown_step == 29 and live.step_slider.max == 39

    live.step_slider.value = 12  # scrub back through the kept states
    assert_shows_step(live, recorded, 12)
    live.step_buttons.value = "+1"
    assert_shows_step(live, recorded, 13)
    live.step_buttons.value = "-1"
    live.step_buttons.value = "-1"
    assert_shows_step(live, recorded, 11)

    ends = episode_ends(recorded, env=2)
    live.env_number.value = 2
    live.episode_buttons.value = "next"  # next start of env 2's episodes after step 11
    assert_shows_step(live, recorded, int(ends[ends >= 11][0]) + 1)

    live.play_button.value = True  # play: back to the newest state
    assert not live.paused and live.play_button.label == "Pause view"
    assert "paused" not in live.info_markdown.content
    assert_shows_step(live, recorded, 39)
    feed_live(live, recorded, range(40, 45))
    assert_shows_step(live, recorded, 44)


def test_the_policy_switch_is_offered_live_and_reports_the_choice(live, recorded):
    live.on_robot(recorded["robot"])
    assert live.policy_folder.visible
    live.policy_checkbox.value = False
    live.policy_checkbox.value = True
    assert live.calls == [("policy", False), ("policy", True)]
    live.on_timeline(recorded["timeline"])  # a replay: no policy to switch
    assert not live.policy_folder.visible


def episode_ends(recorded: dict, env: int) -> np.ndarray:
    return np.array(sorted(int(e.step) for e in recorded["episodes"] if env in np.asarray(e.env_ids).tolist()))


# ----------------------------------------------------------------------------- replay controls


def test_scrubbing_a_replay_seeks_and_draws_that_step(replay, recorded):
    v = replay.viewer
    assert v.replay and (v.step_slider.min, v.step_slider.max) == (0, STEPS - 1)
    assert_shows_step(v, recorded, 0)  # paused at the start: the first state is shown
    v.step_slider.value = 30
    assert replay.calls == [("seek_step", 30)]
    assert_shows_step(v, recorded, 30)
    v.step_slider.value = 7
    assert_shows_step(v, recorded, 7)
    assert replay.calls[-1] == ("seek_step", 7)


def test_play_speed_loop_and_step_buttons_reach_the_player(replay, recorded):
    v = replay.viewer
    assert v.paused and v.play_button.label == "Play"
    v.speed_slider.value = 4.0
    assert replay.calls[-1] == ("set_rate", 4.0) and replay.player.rate == 4.0
    v.loop_checkbox.value = True
    assert replay.calls[-1] == ("set_loop", True) and replay.player.loop

    v.play_button.value = True
    assert replay.calls[-1] == ("set_paused", False) and not replay.player.paused
    assert v.play_button.label == "Pause"
    time.sleep(0.25)  # 4x: about 60 steps of 15 ms would be due; the status moves the slider
    replay.pump()
    assert v.shown_step > 5 and v.step_slider.value == replay.player.status().step

    v.play_button.value = True
    assert replay.calls[-1] == ("set_paused", True) and replay.player.paused
    v.step_slider.value = 20
    v.step_buttons.value = "+1"
    assert replay.calls[-2] == ("step", 1)
    assert_shows_step(v, recorded, 21)
    v.step_buttons.value = "-1"
    v.step_buttons.value = "-1"
    assert_shows_step(v, recorded, 19)


def test_previous_and_next_episode_jump_to_episode_starts_of_the_selected_env(replay, recorded):
    v = replay.viewer
    ends = episode_ends(recorded, env=3)
    assert len(ends) >= 2
    v.env_number.value = 3
    v.episode_buttons.value = "next"
    assert replay.calls[-1] == ("seek_episode", 3, 1)
    assert_shows_step(v, recorded, int(ends[0]) + 1)
    v.episode_buttons.value = "next"
    assert_shows_step(v, recorded, int(ends[1]) + 1)
    v.step_slider.value = int(ends[1]) + 5  # inside an episode, "previous" goes to its start ...
    v.episode_buttons.value = "previous"
    assert_shows_step(v, recorded, int(ends[1]) + 1)
    v.episode_buttons.value = "previous"  # ... and from there to the one before
    assert replay.calls[-1] == ("seek_episode", 3, -1)
    assert_shows_step(v, recorded, int(ends[0]) + 1)


def test_status_from_the_player_updates_the_controls_without_echoing_back(replay):
    v = replay.viewer
    n = len(replay.calls)
    Status = get_type("rollout_msgs/msg/PlaybackStatus")
    v.on_status(Status(step=42, first_step=0, last_step=STEPS - 1, paused=False, loop=True, rate=2.5))
    assert (v.step_slider.value, v.loop_checkbox.value, v.speed_slider.value) == (42, True, 2.5)
    assert not v.paused and v.play_button.label == "Pause"
    assert len(replay.calls) == n  # the viewer's own updates are not user actions


def play_to_the_end(replay) -> None:
    v = replay.viewer
    v.speed_slider.value = 4.0
    v.step_slider.value = min(v.shown_step or 0, STEPS - 5)
    v.play_button.value = True
    deadline = time.monotonic() + 10
    while not replay.player.finished and time.monotonic() < deadline:
        time.sleep(0.02)
        replay.pump()


def test_play_at_the_end_starts_over_and_the_end_is_announced(replay):
    v = replay.viewer
    play_to_the_end(replay)
    assert replay.player.finished and v.shown_step == STEPS - 1
    assert v.paused and v.play_button.label == "Play"  # nothing plays: the button offers Play
    assert v.notices[-1][0] == "Replay ended" and f"step {STEPS - 1}" in v.notices[-1][1]
    v.speed_slider.value = 0.1  # slow enough that it is still near the start when looked at
    v.play_button.value = True
    assert replay.calls[-2:] == [("seek_step", 0), ("set_paused", False)]
    assert not replay.player.paused and not replay.player.finished
    assert v.shown_step < STEPS // 2 and v.play_button.label == "Pause"  # from the start, playing


def test_the_episode_panel_follows_the_playhead(replay, recorded):
    v = replay.viewer
    ends = episode_ends(recorded, env=3)
    events = {int(e.step): e for e in recorded["episodes"]}
    v.env_number.value = 3
    v.step_slider.value = int(ends[-1])
    last = events[int(ends[-1])]
    k = np.asarray(last.env_ids).tolist().index(3)
    how = "terminated" if last.terminated[k] else "truncated"
    assert f"return {float(last.returns[k]):.2f}, {int(last.lengths[k])} steps, {how} at step {int(ends[-1])}" in (
        v.rewards_markdown.content
    )
    v.step_slider.value = STEPS - 1
    assert f"{how} at step {int(ends[-1])}" in v.rewards_markdown.content
    v.step_slider.value = int(ends[0])  # seek back: the panel shows the episode that ended by then
    assert f"at step {int(ends[0])}" in v.rewards_markdown.content
    assert f"at step {int(ends[-1])}" not in v.rewards_markdown.content
    v.step_slider.value = max(int(ends[0]) - 1, 0)  # before the first end: no last episode
    assert "last episode" not in v.rewards_markdown.content


def test_a_live_view_stays_and_says_so_when_the_recording_ends(live, recorded):
    live.on_robot(recorded["robot"])
    feed_live(live, recorded, range(30))
    assert live.source_lost() == "sim node"
    assert live.notices[-1][0] == "Recording ended" and "step 29" in live.notices[-1][1]
    assert "recording ended at step 29; the page stays open" in live.info_markdown.content
    live.step_slider.value = 10  # what was kept can still be scrubbed
    assert_shows_step(live, recorded, 10)
    live.source_back()
    assert "ended" not in live.info_markdown.content


def test_a_notice_reaches_every_open_page(replay):
    # no page is open in this test: the notice is kept and nothing breaks
    replay.viewer.notify("Not done", "env 3 has no next episode", color="orange")
    assert replay.viewer.notices[-1] == ("Not done", "env 3 has no next episode")


def test_the_four_presets_look_from_clearly_different_directions(replay):
    from rollout.cameras import CAMERA_PRESETS

    v = replay.viewer
    v.follow_checkbox.value = False
    poses = {name: v.apply_camera(name) for name in CAMERA_PRESETS}
    for a in CAMERA_PRESETS:
        for b in CAMERA_PRESETS:
            if a < b:
                cos = float(poses[a].forward @ poses[b].forward)
                assert np.degrees(np.arccos(np.clip(cos, -1, 1))) > 20, (a, b)
    np.testing.assert_allclose(poses["follow"].look_at[:2], v.scene.bases[0, :2], atol=1e-6)  # on one robot


def test_one_floor_lies_under_every_env_of_the_layout(live, recorded):
    live.on_robot(recorded["robot"])
    feed_live(live, recorded, range(2))
    grids = [h for name, h in live.server.scene._handle_from_node_name.items() if type(h).__name__ == "GridHandle"]
    assert len(grids) == 1
    g = grids[0]
    offsets = env_grid_offsets(ENVS, recorded["robot"].env_spacing)
    centre = (offsets.min(axis=0) + offsets.max(axis=0)) / 2
    np.testing.assert_allclose(np.asarray(g.position)[:2], centre[:2], atol=1e-6)
    assert g.cell_size == g.section_size  # one line spacing: no second grid seen through the first
    assert g.width >= np.ptp(offsets[:, 0]) + 2 and g.height >= np.ptp(offsets[:, 1]) + 2


# ----------------------------------------------------------------------------- camera


def test_camera_presets_move_the_camera_of_every_page(replay):
    v = replay.viewer
    ic = v.server.initial_camera
    bases = v.scene.bases  # drawn base positions [E, 3]
    centre = (bases.min(axis=0) + bases.max(axis=0)) / 2

    v.camera_buttons.value = "Top"  # event.client is None: a programmatic press still applies
    top = np.array(ic.position)
    assert top[2] - v.camera.look_at[2] > 2.0 and np.allclose(top[:2], centre[:2], atol=1e-6)
    np.testing.assert_allclose(ic.up, [0, 1, 0], atol=1e-9)  # image up is +y

    v.camera_buttons.value = "Side"
    side = np.array(ic.position)
    assert side[1] < centre[1] - 1.0 and abs(side[0] - centre[0]) < 1e-6
    np.testing.assert_allclose(ic.look_at[:2], centre[:2], atol=1e-6)

    v.camera_buttons.value = "Front"
    front = np.array(ic.position)
    assert front[0] > centre[0] + 1.0

    # every robot is inside the view of each preset
    from rollout.cameras import project_points

    for name in ("Top", "Side", "Front"):
        pose = v.apply_camera(name)
        px, ahead = project_points(bases, pose, 1600, 900)
        assert ahead.all() and (px >= 0).all() and (px[:, 0] <= 1600).all() and (px[:, 1] <= 900).all()


def test_follow_keeps_the_selected_env_in_the_middle(replay, recorded):
    v = replay.viewer
    v.camera_buttons.value = "Follow"
    assert v.follow_checkbox.value
    np.testing.assert_allclose(v.camera.look_at[:2], v.scene.bases[0, :2], atol=1e-6)
    v.env_number.value = 2
    np.testing.assert_allclose(v.camera.look_at[:2], v.scene.bases[2, :2], atol=1e-6)
    offset = v.camera.eye - v.camera.look_at
    moved = np.linalg.norm(recorded["poses"][:, 2, 0, :2] - recorded["poses"][0, 2, 0, :2], axis=1)
    far = int(moved.argmax())
    assert moved[far] > 0.05
    v.step_slider.value = far  # the robot moved: the camera moved with it, keeping its angle
    np.testing.assert_allclose(v.camera.look_at[:2], v.scene.bases[2, :2], atol=1e-6)
    np.testing.assert_allclose(v.camera.eye - v.camera.look_at, offset, atol=1e-9)


# ----------------------------------------------------------------------------- rewards


def test_the_reward_table_and_plot_show_every_term_of_the_selected_env(replay, recorded):
    v = replay.viewer
    v.env_number.value = 2
    v.step_slider.value = 25
    msg = recorded["rewards"][25]
    table = v.rewards_markdown.content
    assert "step 25" in table and "env 2" in table
    assert f"| **total** | {float(msg.total[2]):+.4f} |" in table
    for term in msg.terms:
        assert f"| {term.name} | {float(term.value[2]):+.4f} |" in table

    data = v.rewards_plot.data
    labels = [s["label"] for s in v.rewards_plot.series]
    assert labels[:2] == ["step", "total"] and labels[2:6] == list(recorded["robot"].reward_term_names)
    np.testing.assert_array_equal(data[0], np.arange(STEPS))
    totals = np.array([float(m.total[2]) for m in recorded["rewards"]])
    np.testing.assert_allclose(data[1], totals, rtol=1e-6)
    marker = data[-1]
    assert np.flatnonzero(~np.isnan(marker)).tolist() == [25] and marker[25] == pytest.approx(totals[25])


def test_a_live_plot_grows_with_the_steps_seen(live, recorded):
    live.on_robot(recorded["robot"])
    feed_live(live, recorded, range(12))
    np.testing.assert_array_equal(live.rewards_plot.data[0], np.arange(12))
    feed_live(live, recorded, range(12, 20))
    data = live.rewards_plot.data
    np.testing.assert_array_equal(data[0], np.arange(20))
    assert np.flatnonzero(~np.isnan(data[-1])).tolist() == [19]


# ----------------------------------------------------------------------------- bridge helpers, errors


def test_a_taken_port_is_one_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} is already in use.*viewer"):
            Viewer(port=port)


def test_step_buttons_move_between_recorded_steps():
    steps = np.array([0, 1, 2, 5, 6, 10])
    assert neighbour_step(steps, 2, 1) == 5 and neighbour_step(steps, 5, -1) == 2
    assert neighbour_step(steps, 3, 1) == 5 and neighbour_step(steps, 3, -1) == 2  # between two recorded steps
    assert neighbour_step(steps, 10, 1) == 10 and neighbour_step(steps, 0, -1) == 0  # clamped
    assert neighbour_step(np.zeros(0, np.int64), 4, -1) == 3


def test_scrubbing_fast_sends_one_call_at_a_time_and_the_newest_last():
    started: list[int] = []
    futures: list[Future] = []

    def start(k: int):
        def go():
            started.append(k)
            futures.append(Future())
            return futures[-1]

        return go

    channel = LatestCall(report=lambda line: None, timeout=5.0)
    for k in range(10):  # ten slider moves while the first call is in flight
        channel.submit(start(k))
    assert started == [0]
    futures[0].set_result(None)
    assert started == [0, 9]  # the ones in between were stale
    futures[1].set_result(None)
    channel.submit(start(10))
    assert started == [0, 9, 10]


# ----------------------------------------------------------------------------- hostile input, other sites


def test_a_state_whose_num_envs_disagrees_with_its_arrays_is_skipped_with_one_line(live, recorded, caplog):
    live.on_robot(recorded["robot"])
    live.on_state(recorded["states"][3])
    bad = deserialize(serialize(recorded["states"][4]), get_type(TYPES[topics.STATE]))
    bad.num_envs = 200_000_000  # as a corrupt or hostile bag may declare
    with caplog.at_level("WARNING"):
        live.on_state(bad)
        live.on_state(bad)
    lines = [r.getMessage() for r in caplog.records if "skipping the state of step 4" in r.getMessage()]
    assert len(lines) == 1 and "num_envs 200000000" in lines[0]
    assert_shows_step(live, recorded, 3)  # still drawing what was fine
    live.on_state(recorded["states"][5])
    assert_shows_step(live, recorded, 5)


def _handshake(url: str, origin: str | None):
    from websockets.sync.client import connect

    return connect(url, origin=origin, open_timeout=10, subprotocols=["viser-v" + __import__("viser").__version__])


def test_a_page_from_another_site_cannot_open_the_viewers_websocket(live, recorded):
    from websockets.exceptions import InvalidStatus

    live.on_robot(recorded["robot"])
    live.on_state(recorded["states"][0])
    ws = f"ws://127.0.0.1:{live.port}"
    for foreign in ("http://evil.example", f"http://evil.example:{live.port}", "null", "http://localhost:1"):
        with pytest.raises(InvalidStatus) as refused:
            _handshake(ws, foreign)
        assert refused.value.response.status_code == 403, foreign
    # the viewer's own page and a client without an Origin (the CLI, scripts) get the scene stream
    for own in (f"http://127.0.0.1:{live.port}", None):
        with _handshake(ws, own) as conn:
            assert len(conn.recv(timeout=10)) > 0
    with _handshake(f"ws://localhost:{live.port}", f"http://localhost:{live.port}") as conn:
        assert len(conn.recv(timeout=10)) > 0
    assert live.server.get_clients() is not None  # the server is still up after the refusals


def test_the_find_panel_lists_the_runs_moments_and_a_pick_seeks_there(replay, recorded):
    v = replay.viewer
    assert v.find.moments, "the Find panel is empty on a replay"
    assert {m.env for m in v.find.moments} == {0}  # the selected env's
    v.find.scope.value = "all envs"
    moments = v.find.moments
    first_end = min(int(e.step) for e in recorded["episodes"] if any(e.terminated))
    assert moments[0].kind == "termination" and moments[0].step == first_end
    target = next(m for m in moments if m.kind == "lowest")
    v.show_moment(target)
    assert ("seek_step", target.step) in replay.calls
    assert v.shown_step == target.step and v.selected_env == target.env
    assert v.follow_checkbox.value  # the view goes to that env
    assert v.step_slider.value == target.step
    assert f"env {target.env}" in v.rewards_markdown.content


def test_selecting_an_env_lists_its_moments(replay):
    v = replay.viewer
    v.select_env(2)
    assert v.env_number.value == 2 and {m.env for m in v.find.moments} == {2}
    v.select_env(99)  # clamped to the drawn envs
    assert v.selected_env == ENVS - 1


# ----------------------------------------------------------------------------- a 4,096-env run

BIG = 4096


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> dict:
    """A recorded synthetic humanoid run of 4,096 envs x 12 steps, env 3000 pushing hard at its
    6th step (the lowest total of the run); its robot, states by step and timeline."""
    env = make_env("synthetic:humanoid", num_envs=BIG, seed=0)
    calls = [0]

    def policy(obs: np.ndarray) -> np.ndarray:
        calls[0] += 1
        a = np.zeros((BIG, env.info.act_dim), np.float32)
        a[3000] = 3.0 if calls[0] == 6 else 0.0
        return a

    path = RolloutRecorder(env, max_steps=12, out=tmp_path_factory.mktemp("big") / "run.mcap").run(policy)
    with Bag(path) as b:
        states = {m.step: m for m in b.iter_decoded(topics.STATE)}
        return {"robot": next(b.iter_decoded(topics.ROBOT)), "states": states, "timeline": timeline(b)}


def test_a_4096_env_replay_draws_the_chosen_envs_and_finds_in_all_of_them(big):
    seeks: list[int] = []
    with Viewer(port=0, max_envs=8, env_ids=[5, 3, 5, 9999], callbacks=ViewerCallbacks(seek_step=seeks.append)) as v:
        v.on_robot(big["robot"])
        v.on_timeline(big["timeline"])
        first = min(big["states"])
        v.on_state(big["states"][first])
        # the envs asked for that the run has, then nothing more: 2 drawn side by side
        assert v.scene.env_ids.tolist() == [5, 3]
        assert all(h.batched_positions.shape == (2, 3) for h in v.scene.body_handles if h is not None)
        assert "4096 envs (drawing 2)" in v.info_markdown.content
        v.find.scope.value = "all envs"
        assert "in all 4096 envs" in v.find.markdown.content
        low = next(m for m in v.find.moments if m.kind == "lowest")
        assert low.env == 3000
        v.show_moment(low)  # not drawn: drawn now, in the last slot
        assert seeks[-1] == low.step and v.selected_env == 3000
        v.on_state(big["states"][low.step])  # the replay answers the seek
        slot = v.scene.slot_of(3000)
        assert slot == 1 and v.scene.env_ids.tolist() == [5, 3000]
        poses = np.asarray(big["states"][low.step].body_poses).reshape(BIG, -1, 7)
        torso = v.scene.body_handles[1].batched_positions[slot]
        np.testing.assert_allclose(torso, poses[3000, 1, :3] + v.scene.offsets[slot], atol=1e-5)
        assert not any(title == "Not drawn" for title, _ in v.notices)
        # its total is in the table and the plot though only 64 envs have per-term series
        total = float(np.asarray(big["timeline"].total_all).reshape(-1, BIG)[low.step - first, 3000])
        assert f"{total:+.4f}" in v.rewards_markdown.content and "env 3000" in v.rewards_markdown.content
        v.select_env(4001)  # the Env box: drawn in the next slot back
        assert v.scene.env_ids.tolist() == [4001, 3000] and v.selected_env == 4001


def test_one_update_per_body_keeps_what_a_later_page_gets_and_skips_unchanged_poses():
    import viser

    from rollout.viewer.updates import send_arrays

    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    try:
        identity = np.tile(np.array([1.0, 0, 0, 0], np.float32), (3, 1))
        h = server.scene.add_batched_axes(
            "/axes", batched_wxyzs=identity, batched_positions=np.zeros((3, 3), np.float32)
        )
        pos = np.arange(9, dtype=np.float32).reshape(3, 3)
        assert send_arrays(h, batched_positions=pos, batched_wxyzs=identity) == 1  # orientations unchanged
        np.testing.assert_array_equal(h.batched_positions, pos)  # the props a new page is sent
        assert send_arrays(h, batched_positions=pos.copy(), batched_wxyzs=identity) == 0
        h.remove()
        assert send_arrays(h, batched_positions=pos + 1) == 0  # a removed node is left alone
    finally:
        server.stop()
