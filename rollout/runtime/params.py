"""Parameters: declared from a frozen dataclass, overridden from `--ros-args -p name:=value`.

The dataclass is the only place a parameter's name, type, default and help are written: the help
text is the docstring under each field (read from the source, as tyro does).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import textwrap
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rollout.errors import ParameterError
from rollout.suggest import did_you_mean

ParamValue = bool | int | float | str | list


@dataclass
class RosArgs:
    """What `--ros-args` said: parameter overrides, remappings, node name and namespace."""

    params: dict[str, str] = field(default_factory=dict)
    remaps: dict[str, str] = field(default_factory=dict)
    node_name: str | None = None
    namespace: str | None = None
    log_level: str | None = None
    params_files: list[str] = field(default_factory=list)
    """`--params-file` YAML files (what launch_ros hands a node), in order; `-p` wins over them."""

    def file_params(self, node_fqn: str) -> dict[str, Any]:
        """The values the params files give the node `node_fqn` ('/**' entries, then its own)."""
        out: dict[str, Any] = {}
        for path in self.params_files:
            out.update(read_params_file(path, node_fqn))
        return out


def read_params_file(path: str, node_fqn: str) -> dict[str, Any]:
    """`{'/**' or '/ns/node' or 'node': {'ros__parameters': {...}}}` -> this node's values."""
    import yaml

    try:
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
    except OSError as e:
        raise ParameterError(f"cannot read the parameter file {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ParameterError(f"the parameter file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise ParameterError(f"the parameter file {path} is not a mapping of node names")
    out: dict[str, Any] = {}
    name = node_fqn.rsplit("/", 1)[-1]
    for key in ("/**", name, node_fqn):
        entry = doc.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("ros__parameters"), dict):
            out.update(entry["ros__parameters"])
    return out


def split_name_value(text: str, what: str = "argument") -> tuple[str, str]:
    """`name:=value` -> (name, value); anything else is a user error."""
    name, sep, value = text.partition(":=")
    if not sep or not name or not name.replace("_", "").replace(".", "").replace("/", "").isalnum():
        raise ParameterError(f"malformed {what} {text!r}: expected name:=value")
    return name, value


def parse_ros_args(argv: list[str]) -> tuple[RosArgs, list[str]]:
    """Split `argv` into ROS arguments (between `--ros-args` and `--`/end) and the rest."""
    ros, rest = RosArgs(), []
    i, inside = 0, False
    while i < len(argv):
        arg = argv[i]
        if arg == "--ros-args":
            inside = True
        elif arg == "--" and inside:
            inside = False
        elif not inside:
            rest.append(arg)
        elif arg in ("-p", "--param", "-r", "--remap", "--log-level", "--params-file"):
            if i + 1 >= len(argv):
                raise ParameterError(f"{arg} needs a value")
            value = argv[i + 1]
            i += 1
            if arg in ("-p", "--param"):
                name, text = split_name_value(value, "parameter")
                ros.params[name] = text
            elif arg == "--log-level":
                ros.log_level = value
            elif arg == "--params-file":
                ros.params_files.append(value)
            else:
                source, target = split_name_value(value, "remapping")
                if source == "__node":
                    ros.node_name = target
                elif source == "__ns":
                    ros.namespace = target
                else:
                    ros.remaps[source] = target
        else:
            raise ParameterError(f"unknown ROS argument {arg!r} (expected -p name:=value or -r from:=to)")
        i += 1
    return ros, rest


def parse_env_ids(text: str, what: str = "envs") -> list[int]:
    """'0,3,5-7' -> [0, 3, 5, 6, 7] (order kept, repeats dropped); a `ParameterError` otherwise."""
    out: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in str(text).split(","))):
            lo, sep, hi = part.partition("-")
            out += range(int(lo), int(hi) + 1) if sep else [int(lo)]
    except ValueError:
        raise ParameterError(f"{what} takes env numbers and ranges like 0,3,5-7, not {text!r}") from None
    if out and min(out) < 0:
        raise ParameterError(f"{what}: env numbers start at 0, got {text!r}")
    return list(dict.fromkeys(out))


def parse_value(text: str) -> ParamValue:
    """A command-line value as YAML would read it: true/false, numbers, [lists], else a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    if text.strip().startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    return text


def coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert `value` (command-line text, or already a Python value) to the declared type of
    parameter `name`, or say why it cannot be."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if value in (None, "") and type(None) in typing.get_args(annotation):
            return None
        for option in (a for a in typing.get_args(annotation) if a is not type(None)):
            try:
                return coerce(name, value, option)
            except ParameterError:
                continue
        raise ParameterError(f"parameter {name!r}: {value!r} is not a {annotation}")
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (bool, int, float)):  # YAML typed what was meant as text: `-p tf_envs:=0`
            return str(value).lower() if isinstance(value, bool) else str(value)
        raise ParameterError(f"parameter {name!r}: {value!r} is not a string")
    if isinstance(value, str):
        value = parse_value(value)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ParameterError(f"parameter {name!r}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            value = [value]
        item = (typing.get_args(annotation) or (Any,))[0]
        items = [coerce(name, v, item) for v in value]
        return tuple(items) if origin is tuple else items
    if annotation not in _SCALARS:
        return value
    expected, accepts = _SCALARS[annotation]
    if not accepts(value):
        raise ParameterError(f"parameter {name!r}: {value!r} is not {expected}")
    return annotation(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_SCALARS: dict[type, tuple[str, Any]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: _is_number(v) and float(v).is_integer()),
    float: ("a number", _is_number),
}


@lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass, by field name."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def resolve(cls: type, overrides: dict[str, Any]) -> Any:
    """An instance of the parameter dataclass `cls` with command-line `overrides` applied."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ParameterError(
            f"unknown parameter {unknown[0]!r}{did_you_mean(unknown[0], known)}; this node takes: {', '.join(sorted(known))}"
        )
    values = {name: coerce(name, text, hints[name]) for name, text in overrides.items()}
    return cls(**values)


def describe(cls: type) -> str:
    """A help table: name, type, default and help text of every parameter."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    lines = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        type_name = getattr(hints[f.name], "__name__", str(hints[f.name]).replace("typing.", ""))
        lines.append(f"  {f.name} ({type_name}, default {default!r})")
        if docs.get(f.name):
            lines.append(textwrap.indent(docs[f.name], "      "))
    return "\n".join(lines)
