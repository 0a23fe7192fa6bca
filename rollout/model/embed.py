"""A self-contained MJCF: mesh files inlined, so a recording draws on a machine without them.

    text = self_contained_mjcf("assets/mjcf/g1.xml")   # what EnvInfo.model_text should hold

MJCF can carry a mesh's triangles in the model text itself (`<mesh vertex="..." face="..."/>`),
which MuJoCo compiles exactly as it compiles the file (same triangles, so the same volume,
inertia and drawing). Inlining them keeps the robot description one string: the viewer, the
video encoder and the Foxglove URDF (which embeds each mesh as a GLB data URI) all read it
without any new message field or file beside the bag. Text costs about 33 bytes per triangle
(vertices shared, 7 significant digits, float32's precision) against 50 in a binary STL.

Handled: `<include file=...>` (inlined), `<compiler meshdir/assetdir>`, STL and OBJ meshes
(read with trimesh; `scale`, `refpos` and the rest of the mesh's attributes are kept). Texture
files cannot be inlined in MJCF: they are dropped with their materials' `texture` reference
(the viewer ignores textures anyway) and named in `EmbedReport.dropped`.
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rollout.model.errors import ModelError

log = logging.getLogger(__name__)

MESH_SUFFIXES = (".stl", ".obj")


@dataclass
class EmbedReport:
    """What `embed_mjcf_files` did."""

    meshes: list[str] = field(default_factory=list)
    """Mesh files inlined, as the model names them."""
    triangles: int = 0
    """Triangles inlined in all."""
    dropped: list[str] = field(default_factory=list)
    """Files that could not be inlined and were left out (textures)."""


def self_contained_mjcf(path: str | os.PathLike[str]) -> str:
    """The MJCF at `path` as one string that needs no other file (see the module docstring).

    A model without file references comes back unchanged, byte for byte. Raises `ModelError`
    naming the file when a mesh is missing or unreadable (e.g. a Git LFS pointer).
    """
    path = Path(path)
    text = path.read_text()
    if "file=" not in text:
        return text
    out, report = embed_mjcf_files(text, path.parent)
    if report.dropped:
        log.warning("left out of the recorded model (not inlinable): %s", ", ".join(report.dropped))
    return out


def embed_mjcf_files(text: str, base_dir: str | os.PathLike[str]) -> tuple[str, EmbedReport]:
    """Inline the includes and meshes of MJCF `text`, whose relative paths start at `base_dir`."""
    base_dir = Path(base_dir)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ModelError(f"the MJCF model is not valid XML: {e}") from None
    _inline_includes(root, base_dir, depth=0)
    compiler = root.find("compiler")
    asset_dir = base_dir / (compiler.get("assetdir", "") if compiler is not None else "")
    mesh_dir = base_dir / compiler.get("meshdir") if compiler is not None and compiler.get("meshdir") else asset_dir
    report = EmbedReport()
    for mesh in root.iter("mesh"):
        name = mesh.get("file")
        if name:
            vertices, faces = read_mesh_file(mesh_dir / name)
            del mesh.attrib["file"]
            mesh.set("name", mesh.get("name") or Path(name).stem)  # MuJoCo names file meshes by their stem
            mesh.set("vertex", " ".join(map("{:.7g}".format, vertices.reshape(-1).tolist())))
            mesh.set("face", " ".join(map(str, faces.reshape(-1).tolist())))
            report.meshes.append(name)
            report.triangles += len(faces)
    _drop_textures(root, report)
    for c in root.iter("compiler"):
        for key in ("meshdir", "assetdir", "texturedir"):
            c.attrib.pop(key, None)
    return ET.tostring(root, encoding="unicode"), report


def read_mesh_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices [V, 3] float32 and faces [F, 3] int32 of an STL or OBJ file, vertices shared."""
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise ModelError(f"mesh {path.name}: only STL and OBJ meshes can be embedded")
    if not path.is_file():
        raise ModelError(f"mesh file {path} does not exist")
    with path.open("rb") as f:
        if f.read(40).startswith(b"version https://git-lfs"):
            raise ModelError(f"mesh file {path} is a Git LFS pointer, not the mesh (run git lfs pull)")
    import trimesh

    try:
        mesh = trimesh.load(str(path), force="mesh", process=False)
    except Exception as e:  # trimesh raises many kinds for a bad file
        raise ModelError(f"cannot read mesh file {path}: {e}") from None
    vertices = np.asarray(mesh.vertices, np.float32)
    faces = np.asarray(mesh.faces, np.int64)
    if len(faces) == 0:
        raise ModelError(f"mesh file {path} has no triangles")
    # STL repeats every corner; share equal vertices (MuJoCo's STL reader does the same). Rows
    # compared as 12-byte keys (4x faster than np.unique(axis=0)); + 0.0 turns -0.0 into 0.0
    vertices = np.ascontiguousarray(vertices + np.float32(0.0))
    keys = vertices.view(np.dtype((np.void, vertices.itemsize * 3))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return vertices[first], inverse.reshape(-1)[faces].astype(np.int32)


def _inline_includes(parent: ET.Element, base_dir: Path, depth: int) -> None:
    if depth > 16:
        raise ModelError("MJCF includes nest more than 16 deep")
    for i, child in enumerate(list(parent)):
        if child.tag == "include":
            file = base_dir / child.get("file", "")
            try:
                included = ET.fromstring(file.read_text())
            except (OSError, ET.ParseError) as e:
                raise ModelError(f"cannot read the MJCF include {file}: {e}") from None
            _inline_includes(included, file.parent, depth + 1)
            parent.remove(child)
            # an included file's root is <mujoco>; its children take the include's place
            for k, grandchild in enumerate(list(included) if included.tag == "mujoco" else [included]):
                parent.insert(i + k, grandchild)
        else:
            _inline_includes(child, base_dir, depth)


def _drop_textures(root: ET.Element, report: EmbedReport) -> None:
    dropped = set()
    for asset in root.iter("asset"):
        for tex in list(asset.findall("texture")):
            if tex.get("file") or any(tex.get(k) for k in ("fileright", "fileleft", "fileup", "filedown", "filefront", "fileback")):
                asset.remove(tex)
                dropped.add(tex.get("name", ""))
                report.dropped.append(tex.get("file") or tex.get("name", "texture"))
    if dropped:
        for mat in root.iter("material"):
            if mat.get("texture") in dropped:
                del mat.attrib["texture"]
