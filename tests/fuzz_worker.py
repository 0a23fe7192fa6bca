"""Runs seeded fuzz cases in one process under a memory cap; the test_fuzz_* tests start it.

    python tests/fuzz_worker.py bags|npz SEED WORKDIR RESULT.json

Each case is an input (a corrupted or crafted bag or NPZ) and a target (`bag info`, `bag check`,
`to_npz`, replay, `from_npz`). Outcomes: "same" (it worked and gave what the pristine input
gives), "warned" (`bag info` described what is readable and said the file is damaged), "error"
(a one-line RolloutError), "traceback" (any other exception), "hang" (over the per-case
alarm), "wrong" (it worked but gave something else: silent wrong output). The address space is
capped (RLIMIT_AS), so a size an input declares and we trust shows as a MemoryError traceback
instead of taking the machine. Before each case its name goes to WORKDIR/current, so a crash
of the whole process still names the input.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import struct
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASE_SECONDS = 10
MEMORY_CAP = 3 << 30  # address space; python + numpy + zenoh-free imports need ~1 GiB of it


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang()


# ------------------------------------------------------------------ targets


def t_info(path: Path, work: Path) -> str:
    from rollout.bag import info

    text = info(path)
    # a damaged file may be described from what is readable, but must then say so
    return "warned" if "Warning" in text else hashlib.sha256(text.replace(str(path), "BAG").encode()).hexdigest()


def t_to_npz(path: Path, work: Path) -> str:
    from rollout.export.to_npz import bag_to_npz

    out = work / "out.npz"
    out.unlink(missing_ok=True)
    bag_to_npz(path, out, extras=("flags",))
    with np.load(out, allow_pickle=False) as z:
        digest = hashlib.sha256()
        for key in sorted(k for k in z.files if k != "info"):
            digest.update(key.encode() + z[key].tobytes())
    return digest.hexdigest()


def t_check(path: Path, work: Path) -> str:
    """`rollout bag check`: a clean report, or the first problem as the error."""
    from rollout.bag import check
    from rollout.errors import BagError

    report = check(path)
    if not report.ok:
        raise BagError(next(p for f in report.files for p in f.problems))
    return "clean"


def t_replay(path: Path, work: Path) -> str:
    """What the replay node does with a bag: play every message (rate 0), build the timeline,
    and decode what the viewer decodes, through the checks it calls (msg_checks)."""
    from rollout import topics as T
    from rollout.bag import Bag
    from rollout.errors import BagError
    from rollout.msg_checks import action_error, reward_terms_error, robot_error, state_error
    from rollout.replay.player import Player
    from rollout.replay.timeline import timeline

    digest = hashlib.sha256()
    with Bag(path) as bag:
        player = Player(bag, rate=0)
        classes = {t: bag.message_class(t) for t in (T.STATE, T.ACTION, T.ROBOT, T.REWARD_TERMS) if t in bag.topics}
        first_state = None
        robot = None
        while not player.finished:
            for item in player.due(limit=64):
                digest.update(item.topic.encode() + bytes(item.data))
                cls = classes.get(item.topic)
                if cls is None:
                    continue
                m = bag._decode(cls, item.topic, item.data)
                err = None
                if item.topic == T.STATE:
                    err = state_error(m)
                    first_state = first_state or m
                elif item.topic == T.ROBOT:
                    robot = m
                elif item.topic == T.ACTION:
                    err = action_error(m)
                else:
                    err = reward_terms_error(m)
                if err is None and robot is not None and first_state is not None:
                    err = robot_error(robot, first_state)
                if err is not None:
                    raise BagError(err)
        tl = timeline(bag)
        digest.update(np.asarray(tl.total).tobytes() + np.asarray(tl.terms).tobytes())
    return digest.hexdigest()


def t_from_npz(path: Path, work: Path) -> str:
    """`from_npz --allow-pickle`, then what a viewer and to_npz would do with the bag."""
    import shutil

    from rollout.export.from_npz import npz_to_bag

    out = work / "from_npz_bag"
    shutil.rmtree(out, ignore_errors=True)
    npz_to_bag(path, out, allow_pickle=True, start_time=1_750_000_000_000_000_000)
    replayed = t_replay(out, work)  # raises when a message is one the viewer would refuse
    converted = t_to_npz(out, work)
    return hashlib.sha256((replayed + converted).encode()).hexdigest()


# ------------------------------------------------------------------ inputs


def pristine_bags(work: Path) -> list[Path]:
    from rollout.export.synthetic import write_synthetic_rollout

    out = []
    for compression in ("none", "lz4", "zstd"):
        p = work / f"pristine_{compression}.mcap"
        write_synthetic_rollout(p, steps=30, num_envs=3, compression=compression, chunk_size=4096)
        out.append(p)
    return out


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    b = bytearray(data)
    kind = rng.integers(5)
    if kind == 0:
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(len(b)))
            b[at] ^= 1 << int(rng.integers(8))
        return "bit flips", bytes(b)
    if kind == 1:
        at = int(rng.integers(len(b)))
        n = int(rng.integers(1, 17))
        b[at : at + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        return "random bytes", bytes(b)
    if kind == 2:
        return "truncated", bytes(b[: int(rng.integers(len(b)))])
    if kind == 3:  # a length-like field: 4 bytes set to a huge value
        at = int(rng.integers(len(b) - 8))
        b[at : at + 4] = struct.pack("<I", int(rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 200_000_000, 1 << 24])))
        return "huge uint32", bytes(b)
    at = int(rng.integers(len(b) - 8))
    b[at : at + 8] = struct.pack("<Q", int(rng.choice([2**63 - 1, 2**40, 2**32 + 7])))
    return "huge uint64", bytes(b)


def crafted_bags(work: Path) -> list[tuple[str, Path, Path | None]]:
    """Bags whose records are all well-formed (CRCs right) but whose messages lie about sizes."""
    from rollout.bag import BagWriter
    from rollout.codec import get_type, serialize
    from rollout.export.synthetic import write_synthetic_rollout
    from rollout.topics import ACTION, REWARD_TERMS, ROBOT, STATE

    State = get_type("rollout_msgs/msg/State")
    Action = get_type("rollout_msgs/msg/Action")
    Robot = get_type("rollout_msgs/msg/RobotDescription")
    Rewards = get_type("rollout_msgs/msg/RewardTerms")
    Term = get_type("rollout_msgs/msg/RewardTerm")
    t0 = 1_750_000_000_000_000_000
    out = []

    def bag(name: str, robot: object, states: list, rewards: list, actions: list | None = None) -> None:
        p = work / f"crafted_{name}.mcap"
        with BagWriter(p) as w:
            for topic, kind in ((ROBOT, Robot), (STATE, State), (ACTION, Action), (REWARD_TERMS, Rewards)):
                w.add_topic(topic, kind.__msgtype__, latched=topic == ROBOT)
            w.write(ROBOT, serialize(robot), t0)
            for k, (s, r) in enumerate(zip(states, rewards)):
                w.write(STATE, serialize(s) if not isinstance(s, bytes) else s, t0 + 10 + k * 1000)
                a = actions[k] if actions else Action(step=s.step if not isinstance(s, bytes) else k, num_envs=2, act_dim=1, action=np.zeros(2, np.float32))
                w.write(ACTION, serialize(a), t0 + 11 + k * 1000)
                w.write(REWARD_TERMS, serialize(r), t0 + 12 + k * 1000)
        out.append((name, p, None))

    def state(k: int, n: int = 2, **kw: object) -> object:
        args = dict(step=k, num_envs=n, obs_dim=3, obs=np.zeros(n * 3, np.float32), base_pos=np.zeros(n * 3, np.float32),
                    base_quat=np.tile(np.float32([0, 0, 0, 1]), n), done=np.zeros(n, bool), terminated=np.zeros(n, bool),
                    truncated=np.zeros(n, bool))  # fmt: skip
        args.update(kw)
        return State(**args)

    def rew(k: int, n: int = 2, terms: int = 1) -> object:
        return Rewards(step=k, terms=[Term(name=f"t{j}", value=np.zeros(n, np.float32)) for j in range(terms)],
                       total=np.zeros(n, np.float32))  # fmt: skip

    robot = Robot(num_envs=2, obs_dim=3, act_dim=1, dt=0.02, model="<mujoco/>", reward_term_names=["t0"])
    bag("robot_num_envs_200M", Robot(num_envs=200_000_000, obs_dim=3, act_dim=1, dt=0.02, model="<mujoco/>"),
        [state(k) for k in range(3)], [rew(k) for k in range(3)])  # fmt: skip
    bag("robot_num_envs_2^32-1", Robot(num_envs=2**32 - 1, obs_dim=3, act_dim=1, dt=0.02, model="<mujoco/>"),
        [state(k) for k in range(3)], [rew(k) for k in range(3)])  # fmt: skip
    bag("state_num_envs_2^32-1", robot, [state(k, num_envs=2**32 - 1) for k in range(3)], [rew(k) for k in range(3)])
    bag("state_obs_dim_lies", robot, [state(k, obs_dim=10**9) for k in range(3)], [rew(k) for k in range(3)])
    bag("state_num_bodies_lies", robot, [state(k, num_bodies=2**31) for k in range(3)], [rew(k) for k in range(3)])
    bag("300k_reward_terms", robot, [state(k) for k in range(2)], [rew(k, terms=300_000) for k in range(2)])
    bag("term_value_too_short", robot, [state(k) for k in range(3)],
        [Rewards(step=k, terms=[Term(name="t0", value=np.zeros(1, np.float32))], total=np.zeros(2, np.float32)) for k in range(3)])  # fmt: skip
    bag("action_act_dim_lies", robot, [state(k) for k in range(3)], [rew(k) for k in range(3)],
        [Action(step=k, num_envs=2, act_dim=2**31, action=np.zeros(2, np.float32)) for k in range(3)])  # fmt: skip
    bag("robot_dt_nan", Robot(num_envs=2, obs_dim=3, act_dim=1, dt=float("nan"), model="<mujoco/>"),
        [state(k) for k in range(3)], [rew(k) for k in range(3)])  # fmt: skip
    # a CDR sequence length far beyond the message: every count is checked against the bytes
    raw = bytearray(serialize(state(0)))
    at = raw.index(struct.pack("<I", 6))  # obs: 6 floats
    raw[at : at + 4] = struct.pack("<I", 0x7FFFFFFF)
    bag("cdr_sequence_2^31", robot, [bytes(raw)] * 3, [rew(k) for k in range(3)])
    # a chunk that declares a huge uncompressed size (CRC recomputed: only the size lies)
    p = work / "crafted_chunk_size_2^40.mcap"
    write_synthetic_rollout(p, steps=5, num_envs=2, compression="zstd", chunk_size=4096)
    intact = work / "intact_chunk_size.mcap"
    intact.write_bytes(p.read_bytes())
    data = bytearray(p.read_bytes())
    at = data.index(b"\x06", 8)  # the first chunk record
    struct.pack_into("<Q", data, at + 9 + 16, 2**40)
    p.write_bytes(bytes(data))
    out.append(("chunk_size_2^40", p, intact))  # only the chunk that lies must be refused
    return out


def pristine_npz(work: Path) -> Path:
    from rollout.export.synthetic import write_synthetic_rollout
    from rollout.export.to_npz import bag_to_npz

    bag = work / "npz_source.mcap"
    write_synthetic_rollout(bag, steps=12, num_envs=3, compression="none")
    out = work / "pristine.npz"
    bag_to_npz(bag, out, extras=("flags", "reward_terms"))
    return out


def npz_with(work: Path, name: str, base: dict, **changes: object) -> Path:
    arrays = {k: v for k, v in base.items() if k not in changes or changes[k] is not None}
    arrays.update({k: v for k, v in changes.items() if v is not None})
    p = work / f"npz_{name}.npz"
    np.savez(p, **arrays)  # type: ignore[arg-type]
    return p


def crafted_npzs(work: Path, pristine: Path) -> list[tuple[str, Path]]:
    with np.load(pristine, allow_pickle=True) as z:
        base = {k: z[k] for k in z.files}
    T, N = base["rew"].shape
    info = base["info"]
    marker = work / "UNPICKLED"

    class Payload:  # unpickling it creates `marker`: a member other than info must never be unpickled
        def __reduce__(self) -> tuple:
            return (open, (str(marker), "w"))

    def info_with(**kv: object) -> np.ndarray:
        out = np.empty(T, object)
        for t in range(T):
            d = dict(info[t])
            d.update(kv)
            out[t] = d
        return out

    cases = {
        "dt_nan": dict(dt=np.float64("nan")),
        "dt_array": dict(dt=np.ones(3)),
        "dt_string": dict(dt=np.array("fast")),
        "step_float": dict(step=np.linspace(0, 1, T)),
        "step_shape": dict(step=np.zeros((T, 2), np.int64)),
        "sim_time_string": dict(sim_time=np.array(["a"] * T)),
        "sim_time_inf": dict(sim_time=np.full(T, np.inf)),
        "obs_strings": dict(obs=np.full(base["obs"].shape, "x")),
        "obs_2d": dict(obs=base["obs"][:, :, 0]),
        "obs_N0": dict(obs=base["obs"][:, :0], act=base["act"][:, :0], rew=base["rew"][:, :0],
                       base_pos=base["base_pos"][:, :0], base_quat=base["base_quat"][:, :0]),  # fmt: skip
        "obs_T0": dict(obs=base["obs"][:0], act=base["act"][:0], rew=base["rew"][:0], base_pos=base["base_pos"][:0],
                       base_quat=base["base_quat"][:0], info=info[:0]),  # fmt: skip
        "act_wrong_N": dict(act=base["act"][:, :1]),
        "rew_3d": dict(rew=base["rew"][:, :, None]),
        "base_quat_5": dict(base_quat=np.zeros((T, N, 5), np.float32)),
        "body_poses_5": dict(body_poses=np.zeros((T, N, 2, 5), np.float32)),
        "body_poses_B0": dict(body_poses=np.zeros((T, N, 0, 7), np.float32)),
        "joint_pos_2d": dict(joint_pos=np.zeros((T, N), np.float32)),
        "term_wrong_shape": dict(term_reward_forward=np.zeros((T + 1, N), np.float32)),
        "term_strings": dict(term_reward_forward=np.full((T, N), "x")),
        "done_wrong_shape": dict(done=np.zeros((T, N + 1), bool)),
        "complex_obs": dict(obs=base["obs"].astype(np.complex64)),
        "info_not_dicts": dict(info=np.array([1] * T, object)),
        "info_wrong_length": dict(info=info[:-1]),
        "info_terms_300k": dict(info=info_with(reward_terms={f"t{j}": np.zeros(N, np.float32) for j in range(300_000)})),
        "info_term_wrong_N": dict(info=info_with(reward_terms={"reward_forward": np.zeros(N + 2, np.float32)})),
        "info_term_strings": dict(info=info_with(reward_terms={"reward_forward": "high"})),
        "info_step_string": dict(info=info_with(step="seven")),
        "info_sim_time_nan": dict(info=info_with(sim_time=float("nan"))),
        "info_done_wrong_N": dict(info=info_with(done=np.zeros(N + 1, bool))),
        "robot_model_array": dict(robot_model=np.zeros(3)),
        "action_names_wrong_count": dict(action_names=np.array(["a"] * 99)),
        "pickle_in_obs": dict(obs=np.array([Payload()], object)),
    }
    out = [(name, npz_with(work, name, base, **kw)) for name, kw in cases.items()]
    # an .npy header that declares 1.36 PiB for a few bytes
    p = work / "npz_header_1.36PiB.npz"
    with zipfile.ZipFile(pristine) as src, zipfile.ZipFile(p, "w") as dst:
        for m in src.infolist():
            data = src.read(m)
            if m.filename == "obs.npy":
                text = data[10 : 10 + struct.unpack("<H", data[8:10])[0]].decode()
                start, end = text.index("(") + 1, text.index(")")
                text = text[:start] + "200000000000, 1000, 1000" + text[end:]
                header = text.encode().ljust(len(data[10 : 10 + struct.unpack("<H", data[8:10])[0]]))
                data = data[:8] + struct.pack("<H", len(header)) + header + data[10 + struct.unpack("<H", data[8:10])[0] :]
            dst.writestr(m, data)
    out.append(("header_1.36PiB", p))
    return out


# ------------------------------------------------------------------ running


def run_case(fn: Callable[[Path, Path], str], path: Path, work: Path) -> tuple[str, str]:
    from rollout.errors import RolloutError

    signal.alarm(CASE_SECONDS)
    try:
        return "ok", fn(path, work)
    except Hang:
        return "hang", ""
    except RolloutError as e:
        line = str(e)
        return ("error", line) if "\n" not in line and line else ("traceback", f"multi-line error: {line[:200]!r}")
    except Exception as e:  # noqa: BLE001  (counting them is the point)
        return "traceback", f"{type(e).__name__}: {str(e)[:200]}"
    finally:
        signal.alarm(0)


def main() -> None:
    suite, seed, work, result_path = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    n_mutants = int(os.environ.get("ROLLOUT_FUZZ_MUTANTS", "30"))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    signal.signal(signal.SIGALRM, _alarm)
    rng = np.random.default_rng(seed)
    work.mkdir(parents=True, exist_ok=True)
    cases: list[tuple[str, str, Path, Callable[[Path, Path], str], str | None]] = []  # target, input, path, fn, expected
    if suite == "bags":
        targets = {"bag info": t_info, "bag check": t_check, "to_npz": t_to_npz, "replay": t_replay}
        for pristine in pristine_bags(work):
            expected = {name: fn(pristine, work) for name, fn in targets.items()}
            for name, fn in targets.items():  # the intact input itself: the baseline must come out
                cases.append((name, f"{pristine.stem} intact", pristine, fn, expected[name]))
            data = pristine.read_bytes()
            for k in range(n_mutants):
                kind, mutated = mutate(data, rng)
                p = work / f"{pristine.stem}_{k}.mcap"
                p.write_bytes(mutated)
                for name, fn in targets.items():
                    cases.append((name, f"{pristine.stem} {kind} #{k}", p, fn, expected[name]))
        for name, p, intact in crafted_bags(work):
            for target, fn in targets.items():
                # info and check look at records, not at what messages say: these files are well-formed
                want = fn(intact, work) if intact is not None else "*" if target in ("bag info", "bag check") else None
                cases.append((target, f"crafted {name}", p, fn, want))
    else:
        pristine = pristine_npz(work)
        expected = t_from_npz(pristine, work)
        cases.append(("from_npz", "npz intact", pristine, t_from_npz, expected))
        data = pristine.read_bytes()
        for k in range(n_mutants):
            kind, mutated = mutate(data, rng)
            p = work / f"npz_mutant_{k}.npz"
            p.write_bytes(mutated)
            cases.append(("from_npz", f"npz {kind} #{k}", p, t_from_npz, expected))
        for name, p in crafted_npzs(work, pristine):
            cases.append(("from_npz", f"crafted {name}", p, t_from_npz, None))
    results = []
    t_start = time.monotonic()
    for target, label, path, fn, expected in cases:
        (work / "current").write_text(f"{target}: {label}")
        t_case = time.monotonic()
        outcome, detail = run_case(fn, path, work)
        t_case = time.monotonic() - t_case
        if outcome == "ok":
            # a crafted input is built to be refused: accepting it is a wrong output; a mutant
            # must give exactly what the pristine input gives (or say it is damaged)
            outcome = "same" if expected is not None and (expected == "*" or detail == expected) else "wrong"
            if detail == "warned" and expected is not None:
                outcome = "warned"
        results.append({"target": target, "input": label, "outcome": outcome, "detail": detail, "seconds": t_case})
    if suite == "bags":  # a clean `bag check` promises that reading gives the pristine output
        same = {(r["input"], r["target"]) for r in results if r["outcome"] == "same"}
        for r in results:
            if r["target"] == "bag check" and r["outcome"] == "same" and not r["input"].startswith("crafted"):
                if not all((r["input"], t) in same for t in ("to_npz", "replay")):
                    r["outcome"], r["detail"] = "wrong", "check passed a bag that does not read back as recorded"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    unpickled = (work / "UNPICKLED").exists()  # a payload outside `info` ran
    result_path.write_text(json.dumps({"results": results, "peak_rss": peak, "seconds": time.monotonic() - t_start,
                                       "unpickled": unpickled}))  # fmt: skip


if __name__ == "__main__":
    main()
