"""Recording across machines: network namespaces stand in for hosts, zenoh routers link them.

Hosts h1 and h2 each run a sim (namespaces h1, h2) that hosts its own router, linked to h3's
router by an explicit endpoint; h3 runs the recorder. Links are shaped with `tc netem` and
one is cut for a few seconds mid-run. Needs root and iproute2 (CI has both); skipped otherwise.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

from rollout.bag import Bag
from rollout.export.sharded import read_rollout_set
from tests.netns import Hosts, unavailable

why = unavailable()
pytestmark = pytest.mark.skipif(why is not None, reason=why or "")

ENVS = 16
STATE_TOPICS = ("rollout/state", "rollout/action", "rollout/reward_terms")


def _env(hosts: Hosts, k: int, *, links: tuple[int, ...] = (), lease: float | None = None) -> dict[str, str]:
    env = dict(os.environ, ROLLOUT_ROUTER=hosts.endpoint(k), PYTHONUNBUFFERED="1")
    env["ROLLOUT_ROUTERS"] = ",".join(hosts.endpoint(j) for j in links)
    if lease is not None:
        env["ROLLOUT_LEASE"] = str(lease)
    return env


def _sim(hosts: Hosts, k: int, steps: int, *, links: tuple[int, ...], lease: float | None = None) -> subprocess.Popen:
    args = ["run", "sim", "--ros-args", "-p", "env:=synthetic", "-p", f"num_envs:={ENVS}", "-p", f"steps:={steps}",
            "-p", f"namespace:=h{k}", "-p", "realtime:=true", "-p", "wait_for_subscribers:=1", "-p", "wait_timeout:=60",
            "-p", f"seed:={k}"]  # fmt: skip
    return hosts.rollout(k, args, _env(hosts, k, links=links, lease=lease), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _recorder(hosts: Hosts, k: int, out: str, *, topics: str = "", lease: float | None = None, links=()) -> subprocess.Popen:
    args = ["run", "recorder", "--ros-args", "-p", f"out:={out}"] + (["-p", f"topics:={topics}"] if topics else [])
    return hosts.rollout(k, args, _env(hosts, k, links=links, lease=lease), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(procs: list[subprocess.Popen], timeout: float) -> list[str]:
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            raise AssertionError(f"timed out:\n{out.decode(errors='replace')}") from None
        outs.append(out.decode(errors="replace"))
    return outs


def _stop(recorder: subprocess.Popen) -> str:
    recorder.send_signal(signal.SIGINT)
    out = _finish([recorder], 60)[0]
    assert recorder.returncode == 0, out
    return out


def _wait_recording(path, timeout: float = 90.0) -> None:
    """Until the recorder has written a few hundred kB (messages flow across the hosts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and sum(f.stat().st_size for f in path.rglob("*.mcap")) > 300_000:
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing recorded at {path} within {timeout:g} s")


def _sequences(bag: Bag, topic: str) -> np.ndarray:
    return np.array([bag.raw(topic, i).sequence for i in range(bag.count(topic))])


@pytest.fixture
def hosts():
    with Hosts(3) as h:
        yield h


def test_two_hosts_record_on_a_third_losslessly_through_a_link_that_drops(hosts, tmp_path):
    steps = 400
    for k in (1, 2):
        hosts.shape(k, "delay 3ms rate 200mbit")
    rec = _recorder(hosts, 3, str(tmp_path / "bag"))
    sims = [_sim(hosts, k, steps, links=(3,)) for k in (1, 2)]
    _wait_recording(tmp_path / "bag")  # then cut h1's cable for 3 s
    time.sleep(1.5)
    hosts.link(1, up=False)
    time.sleep(3.0)
    hosts.link(1, up=True)
    outs = _finish(sims, 120)
    assert all(p.returncode == 0 for p in sims), outs
    summary = _stop(rec)
    assert "no gaps" in summary, summary
    with Bag(tmp_path / "bag") as bag:
        for k in (1, 2):
            for topic in STATE_TOPICS:
                name = f"/h{k}/{topic}"
                assert bag.count(name) == steps, f"{name}: {bag.count(name)} of {steps}\n{summary}"
                assert np.array_equal(np.sort(_sequences(bag, name)), np.arange(1, steps + 1)), name
            assert f"/h{k}/rollout/state: {steps} messages" in summary
        stalled = np.diff(np.sort(bag.log_times("/h1/rollout/state"))).max() / 1e9
        assert stalled > 2.0, f"h1's messages never paused ({stalled:.2f} s): the link was not cut mid-run"
        state = bag.read_arrays("/h1/rollout/state", ["step"])["step"]
        assert np.array_equal(np.sort(state), np.arange(steps)), "every step of h1, including those sent while its link was down"
    rollout = read_rollout_set([tmp_path / "bag"])
    assert rollout.arrays["obs"].shape[:2] == (steps, 2 * ENVS)  # h1's envs, then h2's


def test_a_drop_longer_than_the_lease_is_reported_as_the_exact_gap(hosts, tmp_path):
    steps, lease = 700, 1.0
    rec = _recorder(hosts, 3, str(tmp_path / "bag"), lease=lease)
    sim = _sim(hosts, 1, steps, links=(3,), lease=lease)
    _wait_recording(tmp_path / "bag")
    time.sleep(1.5)
    hosts.link(1, up=False)  # the link's lease runs out: the routers close it, what is sent meanwhile is lost
    time.sleep(4.0)
    hosts.link(1, up=True)  # h1's router links again by itself
    out = _finish([sim], 120)[0]
    assert sim.returncode == 0, out
    summary = _stop(rec)
    with Bag(tmp_path / "bag") as bag:
        seqs = np.sort(_sequences(bag, "/h1/rollout/state"))
    assert seqs[-1] == steps, f"the run's end arrived after the link came back\n{summary}"
    missing = np.setdiff1d(np.arange(1, steps + 1), seqs)
    assert missing.size > 0, summary
    runs = np.split(missing, np.flatnonzero(np.diff(missing) != 1) + 1)
    spans = ", ".join(f"{r[0]}" if r.size == 1 else f"{r[0]}-{r[-1]}" for r in runs)
    expected = f"gap: /h1/rollout/state is missing {missing.size} messages (sequence numbers {spans})"
    assert expected in summary, summary
    assert "no gaps" not in summary


def test_one_recorder_per_host_gives_shards_that_read_as_one_rollout(hosts, tmp_path):
    steps = 120
    recs = [_recorder(hosts, k, str(tmp_path / f"host{k}"), topics=f"/h{k}/*") for k in (1, 2)]
    sims = [_sim(hosts, k, steps, links=()) for k in (1, 2)]  # each host its own graph
    outs = _finish(sims, 120)
    assert all(p.returncode == 0 for p in sims), outs
    for r in recs:
        _stop(r)
    rollout = read_rollout_set([tmp_path / "host2", tmp_path / "host1"])  # shard order comes from namespaces
    obs = rollout.arrays["obs"]
    assert obs.shape[:2] == (steps, 2 * ENVS)
    for k, half in ((1, slice(0, ENVS)), (2, slice(ENVS, 2 * ENVS))):
        with Bag(tmp_path / f"host{k}") as bag:
            assert set(bag.topics) >= {f"/h{k}/{t}" for t in STATE_TOPICS}
            assert not any(re.match(rf"/h{3 - k}/", t) for t in bag.topics)
            alone = bag.read_arrays(f"/h{k}/rollout/state", ["obs"])["obs"].reshape(steps, ENVS, -1)
        assert np.array_equal(obs[:, half], alone)
    assert any("envs 16-31" in n and "[h2]" in n for n in rollout.notes), rollout.notes
