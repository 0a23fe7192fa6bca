"""`rollout bag <verb>`: the offline tools, one module per verb, shaped like ros2bag's verbs.

Each verb module has `add_arguments(parser)` and `main(args) -> int`; the `to_npz` and
`from_npz` nodes (`ros2 run rollout to_npz`) are the same verbs under their own names.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

# verb on the command line -> (module, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "info": ("info", "what is in a bag (like ros2 bag info), with a rollout summary"),
    "check": ("check", "read every message of a bag and say whether it is whole"),
    "repair": ("repair", "rebuild a bag whose recorder was killed"),
    "merge": ("merge", "write a set of shards (per-rank bags) as one bag of one rollout"),
    "to-npz": ("to_npz", "convert a bag into an .npz (obs, act, rew, info, base_pos, base_quat)"),
    "from-npz": ("from_npz", "convert an .npz rollout into a bag that replays"),
    "share": ("share", "a rollout (or a step range) as one HTML file that plays offline"),
}


def verb_module(verb: str) -> ModuleType:
    return importlib.import_module(f"rollout.bag_cli.{VERBS[verb][0]}")


def add_verbs(sub: argparse._SubParsersAction) -> None:
    """One subparser per verb; the verb's module is imported when the verb runs."""
    for verb, (module, help_) in VERBS.items():
        mod = verb_module(verb)
        p = sub.add_parser(verb, help=help_, description=mod.__doc__.split("\n\n")[0], epilog=_examples(mod),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(func=mod.main)


def _examples(mod: ModuleType) -> str:
    """The indented command lines of a verb module's docstring, as its --help epilog."""
    lines = [line.strip() for line in (mod.__doc__ or "").splitlines() if line.startswith("    rollout ")]
    return "examples:\n" + "\n".join("  " + line for line in lines) if lines else ""
