"""Message classes and CDR (XCDR1, little-endian) serializers generated from parsed `.msg` specs.

Each message type gets a `__slots__` class and two generated functions, `_ser(msg, parts, pos)`
and `_des(view, pos)`, written as Python source once per type so the hot path has no
interpretation of the spec left in it:

- runs of scalar fields pack and unpack with one precompiled `struct` per run, chosen by the
  current alignment (`pos & 7`), so padding costs nothing at run time;
- primitive arrays go out as the array's own buffer (one copy, in `b"".join`) and come back as
  zero-copy `np.frombuffer` views into the received bytes;
- strings and nested messages are the only per-element work.

`pos` counts from the start of the CDR payload, after the 4-byte encapsulation header, which is
what CDR alignment is relative to.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, ClassVar

import numpy as np

from rollout.codec.idl import PRIMITIVES, Field, FieldType, MsgSpec
from rollout.errors import MessageDefinitionError, SerializationError

CDR_LE_HEADER = b"\x00\x01\x00\x00"
_ZEROS = bytes(8)
_U32 = struct.Struct("<I")

# numpy dtype per primitive (little-endian, as CDR_LE is)
DTYPES: dict[str, np.dtype] = {
    name: np.dtype("?" if name == "bool" else "<" + code) for name, (code, _) in PRIMITIVES.items()
}


class Message:
    """Base of every generated message class: equality, repr and conversion to plain data."""

    __slots__ = ()
    __msgtype__: ClassVar[str]
    __fields__: ClassVar[tuple[str, ...]]
    __spec__: ClassVar[MsgSpec]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_values_equal(getattr(self, n), getattr(other, n)) for n in self.__fields__)

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={_short_repr(getattr(self, n))}" for n in self.__fields__)
        return f"{type(self).__name__}({inner})"

    def to_dict(self) -> dict[str, Any]:
        """Plain Python data (nested dicts, lists of numbers), e.g. for JSON or YAML."""
        return {n: _plain(getattr(self, n)) for n in self.__fields__}


def _values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a).ravel(), np.asarray(b).ravel())
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b))
    return a == b


def _short_repr(v: Any) -> str:
    if isinstance(v, np.ndarray) and v.size > 8:
        return f"array(shape={v.shape}, dtype={v.dtype})"
    return repr(v)


def _plain(v: Any) -> Any:
    if isinstance(v, Message):
        return v.to_dict()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


# ---------------------------------------------------------------- helpers the generated code calls


def _pad(pos: int, align: int) -> int:
    return -pos & (align - 1)


def _check_length(n: int, ftype: FieldType, name: str) -> None:
    if ftype.array == "fixed" and n != ftype.length:
        raise SerializationError(f"field {name!r} needs exactly {ftype.length} elements, got {n}")
    if ftype.array == "bounded" and n > ftype.length:
        raise SerializationError(f"field {name!r} takes at most {ftype.length} elements, got {n}")


def _ser_string(s: str, parts: list, pos: int, bound: int = 0, name: str = "") -> int:
    pad = -pos & 3
    if pad:
        parts.append(_ZEROS[:pad])
    data = s.encode()
    if bound and len(data) > bound:
        raise SerializationError(f"field {name!r} takes at most {bound} characters, got {len(data)}")
    parts.append(_U32.pack(len(data) + 1))
    parts.append(data + b"\x00")
    return pos + pad + 5 + len(data)


def _des_string(mv: memoryview, pos: int) -> tuple[str, int]:
    pos += -pos & 3
    (n,) = _U32.unpack_from(mv, pos)
    pos += 4
    end = pos + n
    if end > len(mv):
        raise SerializationError(f"string of {n} bytes runs past the end of the message")
    # n counts the terminating NUL; a writer that sends 0 for "" is tolerated
    return str(mv[pos : end - 1 if n else end], "utf-8"), end


def _ser_array(v: Any, dtype: np.dtype, ftype: FieldType, name: str, parts: list, pos: int) -> int:
    a = np.ascontiguousarray(v, dtype=dtype)
    n = a.size
    _check_length(n, ftype, name)
    if ftype.array != "fixed":
        pad = -pos & 3
        if pad:
            parts.append(_ZEROS[:pad])
        parts.append(_U32.pack(n))
        pos += pad + 4
    if n:
        pad = -pos & (dtype.itemsize - 1)
        if pad:
            parts.append(_ZEROS[:pad])
        parts.append(a.reshape(-1))
        pos += pad + a.nbytes
    return pos


def _des_array(mv: memoryview, pos: int, dtype: np.dtype, fixed: int) -> tuple[np.ndarray, int]:
    if fixed:
        n = fixed
    else:
        pos += -pos & 3
        (n,) = _U32.unpack_from(mv, pos)
        pos += 4
    if n:
        pos += -pos & (dtype.itemsize - 1)
    end = pos + n * dtype.itemsize
    if end > len(mv):
        raise SerializationError(f"array of {n} elements runs past the end of the message")
    return np.frombuffer(mv, dtype, n, pos), end


def _ser_count(n: int, ftype: FieldType, name: str, parts: list, pos: int) -> int:
    _check_length(n, ftype, name)
    if ftype.array == "fixed":
        return pos
    pad = -pos & 3
    if pad:
        parts.append(_ZEROS[:pad])
    parts.append(_U32.pack(n))
    return pos + pad + 4


def _des_count(mv: memoryview, pos: int) -> tuple[int, int]:
    pos += -pos & 3
    (n,) = _U32.unpack_from(mv, pos)
    if n > len(mv):  # every element takes at least one byte
        raise SerializationError(f"sequence of {n} elements cannot fit in {len(mv)} bytes")
    return n, pos + 4


# ---------------------------------------------------------------- code generation


class _Run:
    """Consecutive scalar primitive fields packed with one struct per starting alignment."""

    def __init__(self, fields: list[Field]) -> None:
        self.fields = fields
        self.structs = [self._struct(start) for start in range(8)]

    def _struct(self, start: int) -> struct.Struct:
        fmt, pos = "<", start
        for f in self.fields:
            code, size = PRIMITIVES[f.type.base]
            pad = _pad(pos, size)
            fmt += "x" * pad + code
            pos += pad + size
        return struct.Struct(fmt)


def _group(fields: tuple[Field, ...]) -> list[Field | _Run]:
    groups: list[Field | _Run] = []
    run: list[Field] = []
    for f in fields:
        if f.type.is_primitive and not f.type.array:
            run.append(f)
            continue
        if run:
            groups.append(_Run(run))
            run = []
        groups.append(f)
    if run:
        groups.append(_Run(run))
    return groups


def _default_expr(f: Field, ns: dict[str, Any], class_of: Callable[[str], type]) -> str:
    """Source for a field's default value; constants it needs are put in `ns`."""
    t = f.type
    key = f"_d_{f.name}"
    if t.array:
        if t.is_primitive:
            if f.default is not None:
                ns[key] = np.asarray(f.default, dtype=DTYPES[t.base])
                return f"{key}.copy()"
            if t.array == "fixed":
                ns[key] = np.zeros(t.length, dtype=DTYPES[t.base])
                return f"{key}.copy()"
            ns[key] = np.zeros(0, dtype=DTYPES[t.base])
            return key  # empty arrays are immutable in practice; share one
        if t.is_string:
            ns[key] = list(f.default or ([""] * t.length if t.array == "fixed" else []))
            return f"list({key})"
        ns[key] = class_of(t.base)
        return f"[{key}() for _ in range({t.length})]" if t.array == "fixed" else "[]"
    if t.is_nested:
        ns[key] = class_of(t.base)
        return f"{key}()"
    if f.default is not None:
        return repr(f.default)
    if t.is_string:
        return '""'
    return {"bool": "False", "float32": "0.0", "float64": "0.0"}.get(t.base, "0")


def build_class(spec: MsgSpec, class_of: Callable[[str], type]) -> type[Message]:
    """Generate the class for `spec`; `class_of(name)` returns the class of a nested type."""
    if any(f.type.base == "wstring" for f in spec.fields):
        raise MessageDefinitionError(f"{spec.name}: wstring fields are not supported")
    ns: dict[str, Any] = {
        "np": np,
        "_ZEROS": _ZEROS,
        "_ser_string": _ser_string,
        "_des_string": _des_string,
        "_ser_array": _ser_array,
        "_des_array": _des_array,
        "_ser_count": _ser_count,
        "_des_count": _des_count,
    }
    names = [f.name for f in spec.fields]
    init = [f"def __init__(self, {''.join(f'{n}=None, ' for n in names)}):"]
    for f in spec.fields:
        init.append(f"    self.{f.name} = {_default_expr(f, ns, class_of)} if {f.name} is None else {f.name}")
    if not names:
        init.append("    pass")

    ser = ["def _ser(m, parts, pos):"]
    des = ["def _des(mv, pos):", "    m = _cls.__new__(_cls)"]
    if not spec.fields:  # CDR writes one placeholder byte for an empty struct
        ser += ["    parts.append(_ZEROS[:1])", "    return pos + 1"]
        des += ["    return m, pos + 1"]
    for i, g in enumerate(_group(spec.fields)):
        if isinstance(g, _Run):
            ns[f"_run{i}"] = [s for s in g.structs]
            ns[f"_runsize{i}"] = [s.size for s in g.structs]
            args = ", ".join(f"m.{f.name}" for f in g.fields)
            ser += [
                f"    parts.append(_run{i}[pos & 7].pack({args}))",
                f"    pos += _runsize{i}[pos & 7]",
            ]
            targets = ", ".join(f"m.{f.name}" for f in g.fields) + ("," if len(g.fields) == 1 else "")
            des += [
                f"    s = _run{i}[pos & 7]",
                f"    {targets} = s.unpack_from(mv, pos)",
                "    pos += s.size",
            ]
            continue
        f, t = g, g.type
        ns[f"_t{i}"] = t
        if t.array and t.is_primitive:
            ns[f"_dt{i}"] = DTYPES[t.base]
            fixed = t.length if t.array == "fixed" else 0
            ser.append(f"    pos = _ser_array(m.{f.name}, _dt{i}, _t{i}, {f.name!r}, parts, pos)")
            des.append(f"    m.{f.name}, pos = _des_array(mv, pos, _dt{i}, {fixed})")
        elif t.array:
            ser += [
                f"    seq = m.{f.name}",
                f"    pos = _ser_count(len(seq), _t{i}, {f.name!r}, parts, pos)",
                "    for x in seq:",
            ]
            if t.array == "fixed":
                des.append(f"    n = {t.length}")
            else:
                des.append("    n, pos = _des_count(mv, pos)")
            des.append("    seq = []")
            des.append("    for _ in range(n):")
            if t.is_string:
                ser.append(f"        pos = _ser_string(x, parts, pos, {t.string_bound}, {f.name!r})")
                des.append("        x, pos = _des_string(mv, pos)")
            else:
                ns[f"_c{i}"] = class_of(t.base)
                ser.append(f"        pos = _c{i}._ser(x, parts, pos)")
                des.append(f"        x, pos = _c{i}._des(mv, pos)")
            des += ["        seq.append(x)", f"    m.{f.name} = seq"]
        elif t.is_string:
            ser.append(f"    pos = _ser_string(m.{f.name}, parts, pos, {t.string_bound}, {f.name!r})")
            des.append(f"    m.{f.name}, pos = _des_string(mv, pos)")
        else:
            ns[f"_c{i}"] = class_of(t.base)
            ser.append(f"    pos = _c{i}._ser(m.{f.name}, parts, pos)")
            des.append(f"    m.{f.name}, pos = _c{i}._des(mv, pos)")
    if spec.fields:
        ser.append("    return pos")
        des.append("    return m, pos")

    source = "\n".join(init + [""] + ser + [""] + des) + "\n"
    exec(compile(source, f"<cdr {spec.name}>", "exec"), ns)  # noqa: S102 - our own generated source
    cls_name = spec.name.split("/")[-1]
    attrs: dict[str, Any] = {
        "__slots__": tuple(names),
        "__msgtype__": spec.name,
        "__fields__": tuple(names),
        "__spec__": spec,
        "__init__": ns["__init__"],
        "_ser": staticmethod(ns["_ser"]),
        "_des": staticmethod(ns["_des"]),
        "__module__": "rollout.codec.types",
        "__qualname__": cls_name,
        "__doc__": f"{spec.name}\n\n{spec.text}",
    }
    for c in spec.constants:
        attrs[c.name] = c.value
    cls = type(cls_name, (Message,), attrs)
    ns["_cls"] = cls
    return cls


def serialize(msg: Message) -> bytes:
    """CDR bytes of `msg`, with the little-endian encapsulation header."""
    parts: list = [CDR_LE_HEADER]
    try:
        type(msg)._ser(msg, parts, 0)
    except (struct.error, TypeError, ValueError, AttributeError) as e:
        raise SerializationError(f"cannot serialize {type(msg).__msgtype__}: {e}") from None
    return b"".join(parts)


def deserialize(data: bytes | bytearray | memoryview, cls: type[Message]) -> Message:
    """Decode CDR bytes into an instance of `cls`; arrays are read-only views into `data`."""
    mv = memoryview(data)
    if len(mv) < 4 or mv[1] != 1:
        kind = "big-endian CDR" if len(mv) >= 4 and mv[1] == 0 else "not CDR"
        raise SerializationError(f"cannot decode {cls.__msgtype__}: payload is {kind} (header {bytes(mv[:4]).hex()})")
    try:
        msg, _ = cls._des(mv[4:], 0)
    except struct.error:
        raise SerializationError(f"cannot decode {cls.__msgtype__}: the message ends early (truncated)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise SerializationError(f"cannot decode {cls.__msgtype__}: {e}") from None
    return msg
