"""Where message definitions come from, and what is derived from them.

A `TypeStore` finds `.msg`/`.srv` files on a search path (this package's standard definitions,
the project's `msgs/` interface package, and any ROS 2 install on `AMENT_PREFIX_PATH`), or takes
definitions out of a bag's schemas, and derives from each type:

- its message class with CDR (de)serializers (`rollout.codec.cdr`);
- its RIHS01 type hash (REP-2016), which rmw_zenoh keys and rosbag2 metadata carry;
- its `ros2msg` schema text: the definition followed by every dependency, as rosbag2 writes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollout.codec import cdr
from rollout.codec.idl import Field, FieldType, MsgSpec, normalize_type_name, parse_msg, split_srv
from rollout.errors import MessageDefinitionError, UnknownTypeError

_HERE = Path(__file__).resolve().parent
STANDARD_DEFINITIONS = _HERE.parent / "interfaces"
# the project's own interface package: installed beside the standard ones by setup.py, or the
# source tree's msgs/ when running from a checkout
PROJECT_PACKAGE = "rollout_msgs"
_PROJECT_SOURCE = _HERE.parents[1] / "msgs"

SCHEMA_SEPARATOR = "=" * 80

_TYPE_IDS = {
    "int8": 2, "uint8": 3, "int16": 4, "uint16": 5, "int32": 6, "uint32": 7, "int64": 8, "uint64": 9,
    "float32": 10, "float64": 11, "char": 3, "bool": 15, "byte": 16,
}  # fmt: skip
_ARRAY_OFFSET = {"": 0, "fixed": 48, "bounded": 96, "unbounded": 144}


@dataclass(frozen=True)
class ServiceType:
    """A service: its name ("pkg/srv/Name"), request and response classes, and type hash."""

    name: str
    Request: type[cdr.Message]
    Response: type[cdr.Message]
    hash: str


class TypeStore:
    """Message definitions by full name, and the classes, hashes and schemas made from them."""

    def __init__(self, roots: list[Path] | None = None, packages: dict[str, Path] | None = None) -> None:
        """`roots` hold `<pkg>/msg/*.msg` like a ROS share dir; `packages` name single package dirs."""
        self._roots = list(roots) if roots is not None else default_roots()
        self._packages = dict(packages) if packages is not None else default_packages()
        self._specs: dict[str, MsgSpec] = {}
        self._classes: dict[str, type[cdr.Message]] = {}
        self._services: dict[str, ServiceType] = {}
        self._lock = threading.RLock()

    # -- definitions

    def spec(self, name: str) -> MsgSpec:
        """The parsed definition of `name` ("pkg/msg/Name", "pkg/Name" or "pkg/srv/Name_Request")."""
        name = normalize_type_name(name)
        with self._lock:
            if name not in self._specs:
                self._load(name)
            return self._specs[name]

    def _load(self, name: str) -> None:
        pkg, kind, type_name = name.split("/")
        if kind == "srv":
            for suffix in ("_Request", "_Response"):
                if type_name.endswith(suffix):
                    self._load_service_text(f"{pkg}/srv/{type_name[: -len(suffix)]}")
                    return
            raise UnknownTypeError(f"{name} is a service; use service() for it")
        path = self._find(pkg, "msg", f"{type_name}.msg")
        self._specs[name] = parse_msg(name, path.read_text())

    def _load_service_text(self, name: str) -> None:
        pkg, _, type_name = name.split("/")
        request, response = split_srv(self._find(pkg, "srv", f"{type_name}.srv").read_text())
        self._specs[f"{name}_Request"] = parse_msg(f"{name}_Request", request)
        self._specs[f"{name}_Response"] = parse_msg(f"{name}_Response", response)

    def _find(self, pkg: str, kind: str, filename: str) -> Path:
        dirs = [self._packages[pkg]] if pkg in self._packages else []
        for package_dir in dirs + [root / pkg for root in self._roots]:
            path = package_dir / kind / filename
            if path.is_file():
                return path
        raise UnknownTypeError(f"no definition of {pkg}/{kind}/{filename.rsplit('.', 1)[0]} on the message search path")

    def add_definition(self, name: str, text: str) -> None:
        """Register a message definition given as text, unless the type is already loaded.

        To decode exactly what a bag holds, give its schemas to a store with no search path:
        `TypeStore(roots=[], packages={})`.
        """
        name = normalize_type_name(name)
        with self._lock:
            if name not in self._specs:
                self._specs[name] = parse_msg(name, text)

    def add_schema(self, name: str, schema_text: str) -> None:
        """Register the types in a `ros2msg` schema (as stored in MCAP files) that are not known yet."""
        blocks = schema_text.split("\n" + SCHEMA_SEPARATOR + "\n")
        self.add_definition(name, blocks[0])
        for block in blocks[1:]:
            header, _, text = block.partition("\n")
            if not header.startswith("MSG: "):
                raise MessageDefinitionError(f"schema of {name}: expected 'MSG: pkg/Type', got {header!r}")
            self.add_definition(header[5:].strip(), text)

    # -- classes

    def get(self, name: str) -> type[cdr.Message]:
        """The message class of `name`."""
        name = normalize_type_name(name)
        with self._lock:
            cls = self._classes.get(name)
            if cls is None:
                cls = self._classes[name] = cdr.build_class(self.spec(name), self.get)
            return cls

    def service(self, name: str) -> ServiceType:
        """The request/response classes and type hash of service `name` ("pkg/srv/Name")."""
        pkg, _, type_name = name.replace("/srv/", "/").partition("/")
        name = f"{pkg}/srv/{type_name}"
        with self._lock:
            if name not in self._services:
                self._services[name] = ServiceType(
                    name, self.get(f"{name}_Request"), self.get(f"{name}_Response"), self.service_hash(name)
                )
            return self._services[name]

    # -- hashes and schemas

    def closure(self, name: str) -> list[str]:
        """Every type `name` depends on, depth-first in field order, once each (not `name` itself)."""
        seen: dict[str, None] = {}

        def visit(n: str) -> None:
            for dep in self.spec(n).dependencies():
                if dep not in seen:
                    seen[dep] = None
                    visit(dep)

        visit(normalize_type_name(name))
        return list(seen)

    def type_hash(self, name: str) -> str:
        """RIHS01 hash of a message type, as REP-2016 defines it."""
        name = normalize_type_name(name)
        refs = {n: _description(self.spec(n)) for n in self.closure(name)}
        return _rihs01(_description(self.spec(name)), refs)

    def service_hash(self, name: str) -> str:
        """RIHS01 hash of a service type: a struct of request, response and event messages."""
        request, response, event = f"{name}_Request", f"{name}_Response", f"{name}_Event"
        event_spec = MsgSpec(
            event,
            (
                Field("info", FieldType("service_msgs/msg/ServiceEventInfo")),
                Field("request", FieldType(request, "bounded", 1)),
                Field("response", FieldType(response, "bounded", 1)),
            ),
            (),
            "",
        )
        top = MsgSpec(
            name,
            tuple(Field(f"{kind}_message", FieldType(t)) for kind, t in
                  (("request", request), ("response", response), ("event", event))),
            (),
            "",
        )  # fmt: skip
        refs = {request: _description(self.spec(request)), response: _description(self.spec(response))}
        refs[event] = _description(event_spec)
        for dep in ["service_msgs/msg/ServiceEventInfo", *self.closure(request), *self.closure(response)]:
            refs[dep] = _description(self.spec(dep))
            for sub in self.closure(dep):
                refs[sub] = _description(self.spec(sub))
        return _rihs01(_description(top), refs)

    def schema_text(self, name: str) -> str:
        """The `ros2msg` schema of `name`: its text, then `MSG:` blocks for every dependency."""
        name = normalize_type_name(name)
        blocks = [self.spec(name).text.rstrip("\n")]
        for dep in self.closure(name):
            pkg, _, type_name = dep.split("/")
            blocks.append(f"{SCHEMA_SEPARATOR}\nMSG: {pkg}/{type_name}\n{self.spec(dep).text.rstrip(chr(10))}")
        return "\n".join(blocks) + "\n"


def _field_description(f: Field) -> dict[str, Any]:
    t = f.type
    if t.is_nested:
        type_id = 1
    elif t.is_string:
        type_id = (21 if t.string_bound else 17) if t.base == "string" else (22 if t.string_bound else 18)
    else:
        type_id = _TYPE_IDS[t.base]
    return {
        "name": f.name,
        "type": {
            "type_id": type_id + _ARRAY_OFFSET[t.array],
            "capacity": t.length,
            "string_capacity": t.string_bound,
            "nested_type_name": t.base if t.is_nested else "",
        },
    }


def _description(spec: MsgSpec) -> dict[str, Any]:
    fields = [_field_description(f) for f in spec.fields]
    if not fields:  # rosidl gives empty structs one placeholder member
        fields = [_field_description(Field("structure_needs_at_least_one_member", FieldType("uint8")))]
    return {"type_name": spec.name, "fields": fields}


def _rihs01(top: dict[str, Any], refs: dict[str, dict[str, Any]]) -> str:
    doc = {"type_description": top, "referenced_type_descriptions": [refs[k] for k in sorted(refs)]}
    return "RIHS01_" + hashlib.sha256(json.dumps(doc, separators=(", ", ": ")).encode()).hexdigest()


def default_roots() -> list[Path]:
    """Search path: our standard definitions, then any sourced ROS 2 install."""
    prefixes = filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep))
    return [STANDARD_DEFINITIONS, *(Path(p) / "share" for p in prefixes)]


def default_packages() -> dict[str, Path]:
    """Our own interface package: installed beside the standard definitions, or the checkout's msgs/."""
    installed = STANDARD_DEFINITIONS / PROJECT_PACKAGE
    return {PROJECT_PACKAGE: installed if installed.is_dir() else _PROJECT_SOURCE}
