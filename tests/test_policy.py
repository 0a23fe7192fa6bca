"""Every policy format loads and acts like the module it came from; bad checkpoints fail in one line."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from rollout.errors import PolicyError
from rollout.policy import MLPConfig, build_mlp, detect_format, export_policy, make_policy, save_mlp_checkpoint, sha256_file

OBS, ACT = 12, 5
# the TorchScript file is made with torch.jit.script, deprecated but still what legacy users have
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def one_line(e: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(e.value)
    assert "\n" not in text and text, text
    return text


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One MLP with observation normalisation, saved in every format."""
    d = tmp_path_factory.mktemp("policies")
    rng = np.random.default_rng(0)
    cfg = MLPConfig(
        obs_dim=OBS,
        act_dim=ACT,
        hidden=(32, 16),
        activation="tanh",
        obs_mean=tuple(rng.normal(size=OBS).tolist()),
        obs_std=tuple(rng.uniform(0.5, 2.0, size=OBS).tolist()),
        obs_clip=3.0,
    )
    torch.manual_seed(0)
    module = build_mlp(cfg).eval()
    obs = rng.normal(size=(7, OBS)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(obs)).numpy()
    pt2 = export_policy(module, d / "policy.pt2", obs_dim=OBS)
    state, _ = save_mlp_checkpoint(module, d / "policy.pt", cfg)
    ts = d / "policy.ts"
    torch.jit.script(module).save(str(ts))
    return {"dir": d, "cfg": cfg, "module": module, "obs": obs, "expected": expected, "pt2": pt2, "state": state, "ts": ts}


@pytest.mark.parametrize("kind", ["pt2", "state", "ts"])
def test_each_format_acts_like_the_original_module(files: dict, kind: str) -> None:
    policy = make_policy(str(files[kind]), obs_dim=OBS, act_dim=ACT)
    actions = policy(files["obs"])
    assert actions.dtype == np.float32 and actions.shape == (7, ACT)
    np.testing.assert_allclose(actions, files["expected"], rtol=1e-5, atol=1e-6)
    # dynamic batch: any number of envs, including one
    assert policy(files["obs"][:1]).shape == (1, ACT)
    assert policy.sha256 == sha256_file(files[kind]) and len(policy.sha256) == 64
    assert (policy.obs_dim, policy.act_dim) == (OBS, ACT)


def test_format_is_read_from_content_not_name(files: dict, tmp_path: Path) -> None:
    renamed = tmp_path / "weights.bin"
    shutil.copy(files["pt2"], renamed)
    assert detect_format(renamed) == "pt2"
    np.testing.assert_allclose(make_policy(str(renamed), obs_dim=OBS)(files["obs"]), files["expected"], rtol=1e-5, atol=1e-6)
    assert detect_format(files["ts"]) == "torchscript"
    assert detect_format(files["state"]) == "pickle"


def test_sizes_come_from_the_file_when_the_env_gives_none(files: dict) -> None:
    for kind in ("pt2", "state", "ts"):
        policy = make_policy(str(files[kind]))
        assert (policy.obs_dim, policy.act_dim) == (OBS, ACT)


@pytest.mark.parametrize("kind", ["pt2", "state", "ts"])
def test_observation_size_mismatch_names_both_sizes(files: dict, kind: str) -> None:
    with pytest.raises(PolicyError) as e:
        make_policy(str(files[kind]), obs_dim=OBS + 3, act_dim=ACT)
    msg = one_line(e)
    assert str(OBS) in msg and str(OBS + 3) in msg and "observations" in msg


@pytest.mark.parametrize("kind", ["pt2", "state", "ts"])
def test_action_size_mismatch_names_both_sizes(files: dict, kind: str) -> None:
    with pytest.raises(PolicyError) as e:
        make_policy(str(files[kind]), obs_dim=OBS, act_dim=ACT + 1)
    msg = one_line(e)
    assert f"size {ACT}" in msg and f"takes {ACT + 1}" in msg


def test_pickled_module_is_refused_without_being_unpickled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a module class whose unpickling would leave a mark on disk
    mark = tmp_path / "unpickled"
    (tmp_path / "evil_policy.py").write_text(
        textwrap.dedent(
            f"""
            import torch
            class Evil(torch.nn.Linear):
                def __setstate__(self, state):
                    open({str(mark)!r}, "w").close()
                    super().__setstate__(state)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import evil_policy  # noqa: PLC0415 - made above

    path = tmp_path / "whole.pt"
    torch.save(evil_policy.Evil(OBS, ACT), path)
    sys.modules.pop("evil_policy")
    with pytest.raises(PolicyError) as e:
        make_policy(str(path), obs_dim=OBS, act_dim=ACT)
    msg = one_line(e)
    assert "pickled" in msg and "evil_policy.Evil" in msg
    assert not mark.exists()


def test_state_dict_needs_its_json(files: dict, tmp_path: Path) -> None:
    lone = tmp_path / "lone.pt"
    shutil.copy(files["state"], lone)
    with pytest.raises(PolicyError) as e:
        make_policy(str(lone))
    assert "lone.json" in one_line(e)
    # an explicit config works from anywhere
    policy = make_policy(str(lone), config=files["dir"] / "policy.json")
    np.testing.assert_allclose(policy(files["obs"]), files["expected"], rtol=1e-5, atol=1e-6)


def test_state_dict_with_other_names_prefix_and_normaliser_tensors(files: dict, tmp_path: Path) -> None:
    """An actor-critic checkpoint: actor weights under a prefix, normaliser in the state_dict."""
    module, cfg = files["module"], files["cfg"]
    sd = module.state_dict()
    ckpt = {
        "critic.0.weight": torch.zeros(1, OBS),
        "critic.0.bias": torch.zeros(1),
        "actor.obs_mean": sd["obs_mean"],
        "actor.obs_var": sd["obs_std"] ** 2,
        "actor.mu.l0.weight": sd["net.0.weight"],
        "actor.mu.l0.bias": sd["net.0.bias"],
        "actor.mu.l1.weight": sd["net.2.weight"],
        "actor.mu.l1.bias": sd["net.2.bias"],
        "actor.mu.out.weight": sd["net.4.weight"],
        "actor.mu.out.bias": sd["net.4.bias"],
    }
    torch.save({"model": ckpt, "epoch": 3}, tmp_path / "ac.pt")
    raw = json.loads((files["dir"] / "policy.json").read_text())
    raw.update(prefix="actor.", obs_mean=None, obs_std=None)
    (tmp_path / "ac.json").write_text(json.dumps(raw))
    policy = make_policy(str(tmp_path / "ac.pt"), obs_dim=OBS, act_dim=ACT)
    np.testing.assert_allclose(policy(files["obs"]), files["expected"], rtol=1e-5, atol=1e-5)
    assert cfg.hidden == (32, 16)


def test_json_that_disagrees_with_the_weights_is_one_line(files: dict, tmp_path: Path) -> None:
    shutil.copy(files["state"], tmp_path / "p.pt")
    raw = json.loads((files["dir"] / "policy.json").read_text())
    raw["hidden"] = [64]
    (tmp_path / "p.json").write_text(json.dumps(raw))
    with pytest.raises(PolicyError) as e:
        make_policy(str(tmp_path / "p.pt"))
    assert "config describes" in one_line(e)


def test_missing_and_garbage_checkpoints_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as e:
        make_policy(str(tmp_path / "nope.pt2"), obs_dim=OBS, act_dim=ACT)
    assert "does not exist" in one_line(e)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(PolicyError) as e:
        make_policy(str(junk))
    assert "not a torch checkpoint" in one_line(e)


def test_zero_and_random_builtins(files: dict) -> None:
    zero = make_policy("zero", obs_dim=OBS, act_dim=ACT)
    assert zero.sha256 == "" and not zero(files["obs"]).any()
    low, high = np.full(ACT, -0.4), np.full(ACT, 0.4)
    a = make_policy("random", act_dim=ACT, seed=3, action_low=low, action_high=high)(files["obs"])
    b = make_policy("random", act_dim=ACT, seed=3, action_low=low, action_high=high)(files["obs"])
    c = make_policy("random", act_dim=ACT, seed=4, action_low=low, action_high=high)(files["obs"])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= -0.4 and a.max() <= 0.4 and a.std() > 0.1
    with pytest.raises(PolicyError) as e:
        make_policy("zero")
    one_line(e)


def test_module_callable_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_policies.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            import torch

            def numpy_policy(act_dim):
                return lambda obs: np.full((obs.shape[0], act_dim), 0.25, np.float32)

            def torch_policy(obs_dim, act_dim, seed):
                torch.manual_seed(seed)
                return torch.nn.Linear(obs_dim, act_dim)

            def wrong_size(**kwargs):
                return lambda obs: np.zeros((obs.shape[0], 2), np.float32)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    obs = np.ones((3, OBS), np.float32)
    p = make_policy("my_policies:numpy_policy", obs_dim=OBS, act_dim=ACT)
    assert p.format == "callable" and p.sha256 == "" and (p(obs) == 0.25).all()
    t = make_policy("my_policies:torch_policy", obs_dim=OBS, act_dim=ACT, seed=1)
    torch.manual_seed(1)
    ref = torch.nn.Linear(OBS, ACT)
    with torch.no_grad():
        np.testing.assert_allclose(t(obs), ref(torch.from_numpy(obs)).numpy(), rtol=1e-6)
    with pytest.raises(PolicyError) as e:
        make_policy("my_policies:wrong_size", obs_dim=OBS, act_dim=ACT)
    assert "size 2" in one_line(e)
    with pytest.raises(PolicyError) as e:
        make_policy("no_such_module_xyz:make", obs_dim=OBS, act_dim=ACT)
    assert "no_such_module_xyz" in one_line(e)
    with pytest.raises(PolicyError) as e:
        make_policy("my_policies:absent", obs_dim=OBS, act_dim=ACT)
    assert "absent" in one_line(e)


def test_runs_with_one_torch_thread(files: dict) -> None:
    make_policy(str(files["pt2"]), obs_dim=OBS)
    assert torch.get_num_threads() == 1


def test_pt2_with_a_pickled_payload_is_not_unpickled(files: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.export.load would unpickle a .pt2's sample inputs with weights_only=False when a
    weights-only load fails; a planted object must not run."""
    import zipfile

    mark = tmp_path / "unpickled"
    (tmp_path / "evil_payload.py").write_text(
        textwrap.dedent(
            f"""
            class Evil:
                def __reduce__(self):
                    return (open, ({str(mark)!r}, "w"))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import evil_payload  # noqa: PLC0415 - made above

    planted = tmp_path / "planted.pt"
    torch.save((evil_payload.Evil(),), planted)
    bad = tmp_path / "bad.pt2"
    with zipfile.ZipFile(files["pt2"]) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("sample_inputs/model.pt"):
                data = planted.read_bytes()
            dst.writestr(item, data)
    with pytest.raises(PolicyError) as e:
        make_policy(str(bad), obs_dim=OBS, act_dim=ACT)
    assert "pickled" in one_line(e)
    assert not mark.exists()
