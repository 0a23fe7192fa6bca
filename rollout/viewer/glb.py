"""Robot meshes as GLB with a matte material, for viser's batched GLB nodes.

A glTF primitive without a material gets the loader's default one, which is fully metallic: a
metal reflects only the environment map, so without one the robots render almost black. The
viewer draws without an environment map (viser keeps the canvas nearly transparent until its
HDR image is decoded, which takes seconds in a software-GL browser), so every primitive is given
one dielectric material; the mesh's vertex colours still set its colour.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

_MATTE = {"pbrMetallicRoughness": {"baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0, "roughnessFactor": 0.7}}
_JSON, _HEADER = 0x4E4F534A, struct.Struct("<III")


def matte_glb(mesh: Any, *, tint: tuple[float, float, float, float] | None = None) -> bytes:
    """`mesh` (a trimesh.Trimesh) as GLB bytes whose primitives all use one matte material;
    `tint` (r, g, b, alpha in 0-1) replaces its colours, and an alpha below 1 blends it (a ghost)."""
    with io.BytesIO() as buf:
        mesh.export(buf, file_type="glb")
        glb = buf.getvalue()
    magic, version, _ = _HEADER.unpack_from(glb, 0)
    length, kind = struct.unpack_from("<II", glb, 12)
    if kind != _JSON:
        raise ValueError("GLB does not start with its JSON chunk")
    doc = json.loads(glb[20 : 20 + length])
    material = json.loads(json.dumps(_MATTE))
    if tint is not None:
        material["pbrMetallicRoughness"]["baseColorFactor"] = [float(c) for c in tint]
        if tint[3] < 1.0:
            material["alphaMode"] = "BLEND"
    doc["materials"] = [material]
    for m in doc.get("meshes", []):
        for p in m["primitives"]:
            p["material"] = 0
            if tint is not None:  # one flat colour: tinted vertex colours of a tan robot read as grey
                p.get("attributes", {}).pop("COLOR_0", None)
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned; JSON pads with spaces
    rest = glb[20 + length :]
    body = struct.pack("<II", len(text), _JSON) + text + rest
    return _HEADER.pack(magic, version, _HEADER.size + len(body)) + body
