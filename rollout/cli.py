"""`rollout`: the command line, shaped like the ros2 CLI.

    rollout launch record.launch.py num_envs:=16 steps:=200
    rollout run to_npz BAG -o out.npz
    rollout node list | rollout topic list -t | rollout topic echo /rollout/reward_terms --once
    rollout topic hz /rollout/state | rollout bag info BAG | rollout bag repair BAG
    rollout bag check BAG | rollout bag to-npz BAG -o out.npz | rollout bag from-npz run.npz
    rollout bag share BAG -o run.html
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from rollout.cli_errors import fail
from rollout.errors import RolloutError
from rollout.suggest import did_you_mean

DISCOVERY_WAIT = 0.5  # seconds for liveliness tokens already out there to arrive


def node_names() -> list[str]:
    import rollout.nodes

    return sorted(m.name for m in pkgutil.iter_modules(rollout.nodes.__path__) if not m.name.startswith("_"))


def cmd_run(ns: argparse.Namespace) -> int:
    if ns.node not in node_names():
        fail(f"no node {ns.node!r}{did_you_mean(ns.node, node_names())}; available: {', '.join(node_names())}")
    module = importlib.import_module(f"rollout.nodes.{ns.node}")
    sys.argv = [ns.node, *ns.args]
    result = module.main(list(ns.args))
    return int(result or 0)


def cmd_launch(ns: argparse.Namespace) -> int:
    from rollout.launching import launch

    return launch(ns.file, ns.args, join=ns.join)


def _cli_node() -> object:
    import os

    from rollout import runtime

    runtime.init([], signals=True)
    node = runtime.Node(f"_rollout_cli_{os.getpid()}")
    runtime.get_context().graph.wait_for(lambda: False, DISCOVERY_WAIT)
    return node


def cmd_node_list(ns: argparse.Namespace) -> int:
    from rollout import runtime

    _cli_node()
    names = {e.node_fqn for e in runtime.get_context().graph.entities("NN") if not e.node.startswith("_")}
    print("\n".join(sorted(names)))
    return 0


def cmd_topic_list(ns: argparse.Namespace) -> int:
    node = _cli_node()
    for name, types in node.get_topic_names_and_types():  # type: ignore[attr-defined]
        print(f"{name} [{', '.join(types)}]" if ns.show_types else name)
    return 0


def _publisher_of(topic: str, timeout: float):
    """The type and offered QoS of a topic's publisher, waiting for one to appear."""
    from rollout import runtime
    from rollout.runtime.names import validate_name
    from rollout.runtime.qos import QoSProfile

    validate_name(topic)
    graph = runtime.get_context().graph
    if not graph.wait_for(lambda: graph.count("MP", topic) > 0, timeout):
        raise RolloutError(f"no publisher on {topic} within {timeout:g} s (see `rollout topic list`)")
    pub = next(e for e in graph.entities("MP") if e.name == topic)
    qos = QoSProfile.from_rmw_zenoh_string(pub.qos)
    return pub.type_name, QoSProfile(depth=max(qos.depth, 10), durability=qos.durability)


def format_message(msg: object, indent: str = "") -> str:
    """A message as YAML-like text; arrays print like numpy, shortened when long."""
    lines = []
    for name in getattr(msg, "__slots__", ()):
        value = getattr(msg, name)
        if hasattr(value, "__slots__"):
            lines.append(f"{indent}{name}:\n{format_message(value, indent + '  ')}")
        elif isinstance(value, list) and value and hasattr(value[0], "__slots__"):
            lines.append(f"{indent}{name}:")
            for item in value:
                body = format_message(item, indent + "  ")
                lines.append(f"{indent}- {body.lstrip()}")
        elif isinstance(value, np.ndarray):
            text = np.array2string(value, threshold=16, edgeitems=3, separator=", ", max_line_width=100)
            lines.append(f"{indent}{name}: {text}")
        else:
            lines.append(f"{indent}{name}: {value!r}" if isinstance(value, str) else f"{indent}{name}: {value}")
    return "\n".join(lines)


def cmd_topic_echo(ns: argparse.Namespace) -> int:
    from rollout import runtime

    node = _cli_node()
    type_name, qos = _publisher_of(ns.topic, ns.timeout)
    seen = 0

    def show(msg: object) -> None:
        nonlocal seen
        print(format_message(msg) + "\n---", flush=True)
        seen += 1
        if ns.once or (ns.count and seen >= ns.count):
            runtime.shutdown()

    node.create_subscription(type_name, ns.topic, show, qos)  # type: ignore[attr-defined]
    runtime.spin()
    return 0


def cmd_topic_hz(ns: argparse.Namespace) -> int:
    from rollout import runtime

    node = _cli_node()
    type_name, qos = _publisher_of(ns.topic, ns.timeout)
    stamps: list[float] = []
    last_report = time.monotonic()

    def tick(_: bytes) -> None:
        nonlocal last_report
        stamps.append(time.monotonic())
        del stamps[: -ns.window]
        if stamps[-1] - last_report >= 1.0 and len(stamps) > 1:
            last_report = stamps[-1]
            gaps = np.diff(stamps)
            print(
                f"average rate: {1.0 / gaps.mean():.3f}\n"
                f"\tmin: {gaps.min():.3f}s max: {gaps.max():.3f}s std dev: {gaps.std():.5f}s window: {len(stamps)}",
                flush=True,
            )

    node.create_subscription(type_name, ns.topic, tick, qos, raw=True)  # type: ignore[attr-defined]
    runtime.spin()
    return 0


EXAMPLES = """\
examples:
  rollout launch record.launch.py num_envs:=16 steps:=1000 policy:=demo view:=true
  rollout launch replay.launch.py bag:=latest
  rollout launch replay.launch.py bag:=latest video:=run.mp4
  rollout bag info latest
  rollout bag to-npz latest -o run.npz
  rollout run sim --help
  rollout topic echo /rollout/reward_terms --once

`rollout launch --help` lists the launch files, `rollout run --help` the nodes,
`rollout launch FILE --show-args` a launch file's arguments."""


def first_doc_line(path: str | None) -> str:
    """The first line of a Python file's docstring, read without running the file."""
    import ast
    from pathlib import Path

    try:
        doc = ast.get_docstring(ast.parse(Path(path or "").read_text()))
    except (OSError, SyntaxError, ValueError):
        return ""
    return (doc or "").strip().splitlines()[0] if doc else ""


def _listing(title: str, rows: list[tuple[str, str]]) -> str:
    width = max((len(name) for name, _ in rows), default=0) + 2
    return title + "\n" + "\n".join(f"  {name:<{width}}{line}" for name, line in rows)


def launch_files_epilog() -> str:
    from rollout.launching.runner import find_launch_file, launch_file_names

    rows = [(name, first_doc_line(str(find_launch_file(name)))) for name in launch_file_names()]
    return _listing("launch files:", rows) + "\n\n`rollout launch FILE --show-args` lists a file's arguments."


def nodes_epilog() -> str:
    rows = [(n, first_doc_line(importlib.util.find_spec(f"rollout.nodes.{n}").origin)) for n in node_names()]
    return _listing("nodes:", rows) + "\n\n`rollout run NODE --help` lists a node's parameters."


def parser() -> argparse.ArgumentParser:
    from rollout.bag_cli import add_verbs

    raw = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="rollout", description="Record, replay, inspect and export policy rollouts.", epilog=EXAMPLES,
        formatter_class=raw,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    launch = sub.add_parser("launch", help="run a launch file (like ros2 launch)", epilog=launch_files_epilog(),
                            formatter_class=raw)
    launch.add_argument("file", nargs="?", help="a launch file path or name, e.g. record.launch.py")
    launch.add_argument("--join", action="store_true",
                        help="run in the graph at ROLLOUT_ROUTER (default: a graph of its own)")  # fmt: skip
    launch.add_argument("args", nargs=argparse.REMAINDER, help="name:=value launch arguments")
    launch.set_defaults(func=cmd_launch, needs="file", help_of=launch)

    run = sub.add_parser("run", help="run one node (like ros2 run)", epilog=nodes_epilog(), formatter_class=raw)
    run.add_argument("node", nargs="?", help="node executable, e.g. to_npz")
    run.add_argument("args", nargs=argparse.REMAINDER, help="its arguments, --ros-args -p name:=value ...")
    run.set_defaults(func=cmd_run, needs="node", help_of=run)

    node = sub.add_parser("node", help="nodes in the graph").add_subparsers(dest="verb", required=True)
    node.add_parser("list", help="list running nodes").set_defaults(func=cmd_node_list)

    topic = sub.add_parser("topic", help="topics in the graph").add_subparsers(dest="verb", required=True)
    tl = topic.add_parser("list", help="list topics")
    tl.add_argument("-t", "--show-types", action="store_true", help="show each topic's type")
    tl.set_defaults(func=cmd_topic_list)
    for verb, func, help_ in (("echo", cmd_topic_echo, "print messages"), ("hz", cmd_topic_hz, "print the rate")):
        t = topic.add_parser(verb, help=help_)
        t.add_argument("topic")
        t.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a publisher")
        if verb == "echo":
            t.add_argument("--once", action="store_true", help="print one message and exit")
            t.add_argument("-n", "--count", type=int, default=0, help="exit after this many messages")
        else:
            t.add_argument("-w", "--window", type=int, default=100, help="messages in the averaging window")
        t.set_defaults(func=func)

    bag = sub.add_parser("bag", help="offline tools for bags: info, check, repair, to-npz, from-npz, share")
    bag.set_defaults(needs="verb", help_of=bag)
    add_verbs(bag.add_subparsers(dest="verb", metavar="VERB"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `rollout topic echo ... | head`: the reader has what it wanted; end quietly. (Not
        # SIGPIPE's default: it would also kill the process for a library's own closed pipe, as
        # viser's event loop has when its server stops.)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    p = parser()
    ns = p.parse_args(argv)
    if ns.command is None:  # bare `rollout`: what it can do, not a usage error
        p.print_help()
        return 0
    if getattr(ns, "needs", None) and getattr(ns, ns.needs) is None:  # bare `rollout launch`, `run`, `bag`
        ns.help_of.print_help()
        return 0
    try:
        code = ns.func(ns)
    except RolloutError as e:
        fail(str(e))
    except KeyboardInterrupt:
        code = 0
    finally:
        if "rollout.runtime" in sys.modules:
            sys.modules["rollout.runtime"].close()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
