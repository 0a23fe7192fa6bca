"""Parse ROS 2 `.msg` and `.srv` text into field lists.

The grammar is rosidl's: `type name [default]` fields, `TYPE NAME=value` constants, `#` comments,
`type[]`, `type[N]`, `type[<=N]` arrays, `string<=N` bounded strings, and nested types written as
`pkg/Type`, `pkg/msg/Type` or `Type` (same package).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Literal

from rollout.errors import MessageDefinitionError

# name -> (struct code, size in bytes); the size is also the CDR alignment
PRIMITIVES: dict[str, tuple[str, int]] = {
    "bool": ("?", 1),
    "byte": ("B", 1),
    "char": ("B", 1),
    "int8": ("b", 1),
    "uint8": ("B", 1),
    "int16": ("h", 2),
    "uint16": ("H", 2),
    "int32": ("i", 4),
    "uint32": ("I", 4),
    "int64": ("q", 8),
    "uint64": ("Q", 8),
    "float32": ("f", 4),
    "float64": ("d", 8),
}
STRINGS = ("string", "wstring")
# ROS 1 spellings that still appear in .msg files
ALIASES = {
    "time": "builtin_interfaces/msg/Time",
    "duration": "builtin_interfaces/msg/Duration",
    "Header": "std_msgs/msg/Header",
}

ArrayKind = Literal["", "fixed", "bounded", "unbounded"]

_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CONST_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_CONST_LINE = re.compile(r"^(\w+)\s*=(.*)$")
_TYPE = re.compile(r"^(?P<base>[A-Za-z][\w/]*)(?:<=(?P<sbound>\d+))?(?:\[(?P<arr><=\d+|\d+|)\])?$")


@dataclass(frozen=True)
class FieldType:
    """The type of one field: a primitive, a string or a nested message, maybe in an array."""

    base: str  # primitive or string name, or a full nested name "pkg/msg/Name"
    array: ArrayKind = ""
    length: int = 0  # fixed size or bound; 0 when unbounded or not an array
    string_bound: int = 0

    @property
    def is_primitive(self) -> bool:
        return self.base in PRIMITIVES

    @property
    def is_string(self) -> bool:
        return self.base in STRINGS

    @property
    def is_nested(self) -> bool:
        return not (self.is_primitive or self.is_string)


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    default: object = None  # parsed default value, None when the .msg gives none


@dataclass(frozen=True)
class Constant:
    name: str
    type: str
    value: object


@dataclass(frozen=True)
class MsgSpec:
    """One message type: its full name ("pkg/msg/Name"), fields, constants and source text."""

    name: str
    fields: tuple[Field, ...]
    constants: tuple[Constant, ...]
    text: str

    @property
    def package(self) -> str:
        return self.name.split("/")[0]

    def dependencies(self) -> list[str]:
        """Names of the nested types this message uses directly, in field order, once each."""
        return list(dict.fromkeys(f.type.base for f in self.fields if f.type.is_nested))


def normalize_type_name(name: str, package: str = "") -> str:
    """`pkg/Type`, `pkg/msg/Type` or `Type` (in `package`) -> `pkg/msg/Type`."""
    if name in ALIASES:
        return ALIASES[name]
    parts = name.split("/")
    if len(parts) == 1:
        if not package:
            raise MessageDefinitionError(f"type {name!r} needs a package name (pkg/{name})")
        return f"{package}/msg/{name}"
    if len(parts) == 2:
        return f"{parts[0]}/msg/{parts[1]}"
    if len(parts) == 3 and parts[1] in ("msg", "srv", "action"):
        return name
    raise MessageDefinitionError(f"malformed type name {name!r}")


def parse_type(text: str, package: str) -> FieldType:
    m = _TYPE.match(text)
    if not m:
        raise MessageDefinitionError(f"malformed type {text!r}")
    base, sbound, arr = m["base"], m["sbound"], m["arr"]
    if sbound is not None and base not in STRINGS:
        raise MessageDefinitionError(f"only strings take a <=N bound, not {base!r}")
    if base not in PRIMITIVES and base not in STRINGS:
        base = normalize_type_name(base, package)
    if arr is None:
        kind, length = "", 0
    elif arr == "":
        kind, length = "unbounded", 0
    elif arr.startswith("<="):
        kind, length = "bounded", int(arr[2:])
    else:
        kind, length = "fixed", int(arr)
    return FieldType(base, kind, length, int(sbound or 0))


def _strip_comment(line: str) -> str:
    """Cut a `#` comment, leaving `#` inside quoted strings alone."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _parse_value(ftype: FieldType, text: str, where: str) -> object:
    text = text.strip()
    try:
        if ftype.is_string and not ftype.array:
            if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
                return ast.literal_eval(text)
            return text
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if ftype.base == "bool" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise MessageDefinitionError(f"{where}: cannot parse value {text!r}") from None
    if ftype.array:
        return list(value)
    if ftype.base == "bool":
        return bool(value)
    if ftype.base in ("float32", "float64"):
        return float(value)
    return value


def parse_msg(name: str, text: str) -> MsgSpec:
    """Parse the text of one message definition named `pkg/msg/Name`."""
    package = name.split("/")[0]
    fields: list[Field] = []
    constants: list[Constant] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        where = f"{name} line {lineno}"
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        type_text, _, rest = line.partition(" ")
        const = _CONST_LINE.match(rest.strip())
        if const:
            # constant: the value runs to the end of the line (a string value keeps its '#')
            const_name, value_text = const.groups()
            if type_text not in STRINGS:
                value_text = _strip_comment(value_text)
            if not _CONST_NAME.match(const_name) or type_text not in PRIMITIVES and type_text not in STRINGS:
                raise MessageDefinitionError(f"{where}: malformed constant {line!r}")
            constants.append(Constant(const_name, type_text, _parse_value(FieldType(type_text), value_text, where)))
            continue
        line = _strip_comment(line).strip()
        parts = line.split(None, 2)
        if len(parts) < 2:
            raise MessageDefinitionError(f"{where}: expected 'type name', got {raw.strip()!r}")
        ftype = parse_type(parts[0], package)
        if not _FIELD_NAME.match(parts[1]):
            raise MessageDefinitionError(f"{where}: field name {parts[1]!r} must be lowercase snake_case")
        default = _parse_value(ftype, parts[2], where) if len(parts) == 3 else None
        fields.append(Field(parts[1], ftype, default))
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise MessageDefinitionError(f"{name}: duplicate field names")
    return MsgSpec(name, tuple(fields), tuple(constants), text)


def split_srv(text: str) -> tuple[str, str]:
    """Split `.srv` text at its `---` line into request and response text."""
    parts = re.split(r"^---[ \t]*$", text, flags=re.M)
    if len(parts) != 2:
        raise MessageDefinitionError("a .srv definition needs exactly one '---' line")
    request, response = (part.strip("\n") for part in parts)
    return request + "\n" if request else "", response + "\n" if response else ""
