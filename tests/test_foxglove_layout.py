"""foxglove/rollout_layout.json fits what we record: its panels are all laid out, every plot's
message path picks exactly one number from each message of a real recording (the value the
README promises), and the 3D panel follows a frame that /tf publishes.

Message paths are evaluated the way Foxglove's grammar reads them (`.field`, `[i]`, `[:]`,
`{field=='text'}`) over our decoded messages, which test_foxglove_decode.py shows are the values
Foxglove's own decoder produces."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from rollout.bag import Bag
from rollout.model import env_grid_offsets
from recordings import record_humanoid

LAYOUT = Path(__file__).parents[1] / "foxglove" / "rollout_layout.json"
TOPIC = re.compile(r"(/[A-Za-z0-9_/-]+)")
PART = re.compile(
    r"\.(?P<name>[A-Za-z0-9_-]+)"
    r"|\[(?P<index>-?\d+)\]"
    r"|\[(?P<all>:)\]"
    r"|\{(?P<field>[A-Za-z0-9_.]+)==(?:'(?P<s1>[^']*)'|\"(?P<s2>[^\"]*)\"|(?P<num>-?\d+))\}"
)


def evaluate(path: str, message: dict) -> list:
    """Values a Foxglove message path picks out of one decoded message (topic already matched)."""
    rest = path[TOPIC.match(path).end() :]
    values: list = [message]
    pos = 0
    while pos < len(rest):
        m = PART.match(rest, pos)
        assert m, f"cannot read {rest[pos:]!r} in {path!r}"
        pos = m.end()
        if m["name"]:
            values = [v[m["name"]] for v in values]
        elif m["index"]:
            values = [v[int(m["index"])] for v in values if int(m["index"]) < len(v)]
        elif m["all"]:
            values = [x for v in values for x in v]
        else:
            want = m["s1"] if m["s1"] is not None else m["s2"] if m["s2"] is not None else int(m["num"])

            def field(v: dict, names: list[str]) -> object:
                for n in names:
                    v = v[n]
                return v

            values = [v for v in values if field(v, m["field"].split(".")) == want]
    return values


def leaves(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    assert set(node) >= {"first", "second", "direction"} and node["direction"] in ("row", "column")
    return leaves(node["first"]) + leaves(node["second"])


@pytest.fixture(scope="module")
def layout() -> dict:
    return json.loads(LAYOUT.read_text())


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory):
    path = record_humanoid(tmp_path_factory.mktemp("bags") / "run", num_envs=4, steps=15, seed=4, tf_envs=(0,))
    with Bag(path) as b:
        yield b


def plot_paths(layout: dict) -> list[str]:
    return [p["value"] for pid, cfg in layout["configById"].items() if pid.startswith("Plot!") for p in cfg["paths"]]


def test_every_panel_is_laid_out_once(layout: dict) -> None:
    assert set(layout) >= {"configById", "layout", "globalVariables", "userNodes", "playbackConfig"}
    placed = leaves(layout["layout"])
    assert sorted(placed) == sorted(layout["configById"]) and len(set(placed)) == len(placed)
    assert {pid.split("!")[0] for pid in placed} == {"3D", "Plot", "RawMessages"}


def test_every_plot_path_gives_one_number_per_message(layout: dict, bag: Bag) -> None:
    paths = plot_paths(layout)
    assert len(paths) >= 6
    for path in paths:
        topic = TOPIC.match(path)[1]
        assert topic in bag.topics, path
        for i in range(bag.count(topic)):
            values = evaluate(path, bag.decode(topic, i).to_dict())
            assert len(values) == 1 and isinstance(values[0], float) and math.isfinite(values[0]), (path, i, values)


def test_plotted_values_are_the_recorded_ones(layout: dict, bag: Bag) -> None:
    robot = bag.decode("/rollout/robot", 0)
    offsets = env_grid_offsets(robot.num_envs, robot.env_spacing)
    paths = plot_paths(layout)
    for name in robot.reward_term_names:
        path = f"/rollout/reward_terms.terms[:]{{name=='{name}'}}.mean"
        assert path in paths
        for i in range(bag.count("/rollout/reward_terms")):
            msg = bag.decode("/rollout/reward_terms", i)
            (term,) = (t for t in msg.terms if t.name == name)
            assert evaluate(path, msg.to_dict()) == [pytest.approx(float(np.mean(term.value)), abs=1e-6)]
    msg = bag.decode("/rollout/reward_terms", 5)
    assert evaluate("/rollout/reward_terms.total_mean", msg.to_dict()) == [
        pytest.approx(float(msg.total.mean()), abs=1e-6)
    ]
    assert evaluate('/rollout/reward_terms.terms[:]{name=="reward_forward"}.value[0]', msg.to_dict()) == [
        float(msg.terms[robot.reward_term_names.index("reward_forward")].value[0])
    ]
    assert (
        evaluate("/rollout/reward_terms.terms[:]{name=='reward_fwd'}.mean", msg.to_dict()) == []
    )  # a typo picks nothing
    state, poses = bag.decode("/rollout/state", 5), bag.decode("/rollout/base_poses", 5).to_dict()
    for k in (0, 1):
        z = evaluate(f"/rollout/base_poses.poses[{k}].position.z", poses)
        assert z == [pytest.approx(float(state.base_pos.reshape(-1, 3)[k, 2] + offsets[k, 2]), abs=1e-6)]


def test_3d_panel_follows_a_recorded_frame_and_shows_recorded_topics(layout: dict, bag: Bag) -> None:
    (three_d,) = (cfg for pid, cfg in layout["configById"].items() if pid.startswith("3D!"))
    frames = {t.child_frame_id for t in bag.decode("/tf", 0).transforms}
    parents = {t.header.frame_id for t in bag.decode("/tf", 0).transforms} - frames
    assert three_d["followTf"] in frames and three_d["followMode"] == "follow-position"
    assert {layer["frameId"] for layer in three_d["layers"].values()} <= parents == {"world"}
    types = {
        "/robot_description": "std_msgs/msg/String",
        "/tf": "tf2_msgs/msg/TFMessage",
        "/rollout/base_poses": "geometry_msgs/msg/PoseArray",
    }
    assert {t: bag.topics[t].type for t in three_d["topics"]} == types
    assert all(cfg["visible"] for cfg in three_d["topics"].values())
    raw = [cfg["topicPath"] for pid, cfg in layout["configById"].items() if pid.startswith("RawMessages!")]
    assert raw and all(TOPIC.match(p)[1] in bag.topics for p in raw)
