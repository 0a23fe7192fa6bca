"""Robot-model geometry: meshes for the web viewer, a URDF, /tf and base poses for Foxglove.

    from rollout.model import body_meshes, posed_vertices          # viewer
    from rollout.model import mjcf_to_urdf, tf_transforms           # Foxglove
    from rollout.model import self_contained_mjcf                   # sims: meshes inlined

No middleware here: pure functions over the recorded model text (`RobotDescription.model`)
and pose arrays. Everything that cannot be compiled or converted raises `ModelError`.
"""

from rollout.model.embed import embed_mjcf_files, self_contained_mjcf
from rollout.model.errors import ModelError
from rollout.model.geometry import (
    BodyMesh,
    GroundPlane,
    StaticGeometry,
    body_meshes,
    load_model,
    posed_scene,
    posed_vertices,
    quat_to_matrix,
    robot_body_names,
    robot_body_parents,
    static_geometry,
    transform_points,
    wxyz_to_xyzw,
    xyzw_to_wxyz,
)
from rollout.model.layout import env_grid_offsets
from rollout.model.urdf import (
    frame_names,
    local_poses,
    mjcf_to_urdf,
    pose_array,
    pose_array_cdr,
    tf_transforms,
)

__all__ = [
    "BodyMesh",
    "GroundPlane",
    "ModelError",
    "StaticGeometry",
    "body_meshes",
    "embed_mjcf_files",
    "env_grid_offsets",
    "frame_names",
    "load_model",
    "local_poses",
    "mjcf_to_urdf",
    "pose_array",
    "pose_array_cdr",
    "posed_scene",
    "posed_vertices",
    "quat_to_matrix",
    "robot_body_names",
    "robot_body_parents",
    "self_contained_mjcf",
    "static_geometry",
    "tf_transforms",
    "transform_points",
    "wxyz_to_xyzw",
    "xyzw_to_wxyz",
]
