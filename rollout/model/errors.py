"""The one error this package raises."""

from __future__ import annotations

from rollout.errors import RolloutError


class ModelError(RolloutError):
    """A robot model that cannot be compiled or converted (bad XML, a mesh file that is missing, ...).

    Callers that only decorate a recording with the model (the Foxglove URDF, the viewer's meshes)
    catch this, warn in one line and go on without the geometry.
    """
