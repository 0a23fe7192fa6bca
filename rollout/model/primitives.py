"""Triangle meshes of MuJoCo's geometric primitives, in the geom's own frame, with numpy only.

Every primitive follows MuJoCo's size convention and axis (the long axis of capsules and cylinders
is local z). Faces wind counter-clockwise seen from outside. Vertices at the extremes lie exactly
on the surface (the segment count is a multiple of 4 and every sphere-like shape has an equator
ring), so the mesh's bounding box equals the primitive's.

Written here instead of calling `trimesh.creation`: importing trimesh takes ~0.6 s, building these
takes microseconds, and the Foxglove path needs no trimesh at all.
"""

from __future__ import annotations

import numpy as np

Mesh = tuple[np.ndarray, np.ndarray]  # vertices [V, 3] float64, faces [F, 3] int32


def _revolve(rings: list[tuple[float, float]], segments: int) -> Mesh:
    """Surface of revolution about z through `rings` [(z, radius)] listed bottom to top.

    A ring of radius 0 is a single vertex (a pole); neighbouring rings are joined by quads,
    a ring and a pole by a fan.
    """
    phi = np.arange(segments) * (2.0 * np.pi / segments)
    cos, sin = np.cos(phi), np.sin(phi)
    verts: list[np.ndarray] = []
    starts: list[int] = []
    n = 0
    for z, r in rings:
        starts.append(n)
        if r == 0.0:
            verts.append(np.array([[0.0, 0.0, z]]))
            n += 1
        else:
            verts.append(np.stack([r * cos, r * sin, np.full(segments, z)], axis=1))
            n += segments
    k = np.arange(segments)
    k1 = (k + 1) % segments
    faces: list[np.ndarray] = []
    for i in range(len(rings) - 1):
        a, b = starts[i], starts[i + 1]
        a_pole, b_pole = rings[i][1] == 0.0, rings[i + 1][1] == 0.0
        if a_pole and b_pole:
            continue
        if a_pole:  # fan up from a bottom pole
            faces.append(np.stack([np.full(segments, a), b + k1, b + k], axis=1))
        elif b_pole:  # fan down from a top pole
            faces.append(np.stack([a + k, a + k1, np.full(segments, b)], axis=1))
        else:
            faces.append(np.stack([a + k, a + k1, b + k1], axis=1))
            faces.append(np.stack([a + k, b + k1, b + k], axis=1))
    return np.concatenate(verts), np.concatenate(faces).astype(np.int32)


def _hemisphere_angles(rings: int) -> np.ndarray:
    """Latitudes from the equator (0) up to, not including, the pole, `rings` of them."""
    return np.arange(rings) * (0.5 * np.pi / rings)


def capsule(radius: float, half_length: float, *, segments: int = 16, rings: int = 4) -> Mesh:
    """A capsule along z: cylinder of half-length `half_length` capped by hemispheres of `radius`."""
    lat = _hemisphere_angles(rings)
    bottom = [(-half_length - radius * np.sin(a), radius * np.cos(a)) for a in lat[::-1]]
    top = [(half_length + radius * np.sin(a), radius * np.cos(a)) for a in lat]
    if half_length == 0.0:
        top = top[1:]  # one equator ring, not two on top of each other
    profile = [(-half_length - radius, 0.0), *bottom, *top, (half_length + radius, 0.0)]
    return _revolve(profile, segments)


def sphere(radius: float, *, segments: int = 16, rings: int = 4) -> Mesh:
    """A UV sphere with an equator ring."""
    return capsule(radius, 0.0, segments=segments, rings=rings)


def ellipsoid(radii: np.ndarray, *, segments: int = 16, rings: int = 4) -> Mesh:
    """A sphere scaled by `radii` [3] along x, y, z."""
    v, f = sphere(1.0, segments=segments, rings=rings)
    return v * np.asarray(radii, dtype=np.float64), f


def cylinder(radius: float, half_length: float, *, segments: int = 16) -> Mesh:
    """A closed cylinder along z. The caps are separate pieces so their edges stay sharp."""
    side_v, side_f = _revolve([(-half_length, radius), (half_length, radius)], segments)
    bot_v, bot_f = _revolve([(-half_length, 0.0), (-half_length, radius)], segments)
    top_v, top_f = _revolve([(half_length, radius), (half_length, 0.0)], segments)
    return _concat([(side_v, side_f), (bot_v, bot_f), (top_v, top_f)])


def box(half_extents: np.ndarray) -> Mesh:
    """A box centred at the origin; 4 vertices per side so every side is flat-shaded."""
    hx, hy, hz = (float(x) for x in half_extents)
    sides = []
    # (normal axis, sign): build each side as a quad in the plane axis = sign * half
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u, w = (axis + 1) % 3, (axis + 2) % 3
            quad = np.zeros((4, 3))
            quad[:, axis] = sign
            quad[:, u] = [-1, 1, 1, -1]
            quad[:, w] = [-1, -1, 1, 1]
            faces = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32)
            if sign < 0:  # flip so the normal points outward
                faces = faces[:, ::-1]
            sides.append((quad * [hx, hy, hz], faces))
    return _concat(sides)


def _concat(parts: list[Mesh]) -> Mesh:
    verts, faces, n = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces.append(f + n)
        n += len(v)
    return np.concatenate(verts), np.concatenate(faces).astype(np.int32)
