"""Group actions of the Navier–Stokes symmetries on torch tensors and on xarray objects.

One object per group, registered by name (:mod:`xequi.symmetry.registry`): it owns the group's
names and aliases, its action on tensors and on xarray data, its random and inverse parameters
and its label. Test sets, augmentation, equivariance errors, models and checkpoints all read it
(``xequi.symmetry.get("rot")``, :data:`KINDS`, :func:`groups`). Two layers share one
implementation:

* **tensor kernels** (:func:`rot90`, :func:`rotate`, :func:`uniform_motion`, :func:`magnitude`,
  :func:`translate`, :func:`scale`, :func:`apply`, :func:`random_params`,
  :func:`inverse_params`) act on torch tensors laid out ``(..., C, H, W)`` in the *model frame*
  (``docs/architecture.md``): row 0 is the largest y, column index increases with x, channel
  ``vector[0]`` is the component along +x and ``vector[1]`` the component along +y (toward
  row 0). Tensors keep their dtype and device; inputs are never modified in place.
* **xarray actions** (:func:`transform`, forwarded by ``ds.equi.transform``) map a Dataset or
  DataArray into the model frame with :mod:`xequi.fields`, call the same tensor kernels, and map
  the result back (coordinates, orientation, units and attrs restored), so the code that builds
  transformed test sets is the code the equivariance tests exercise.

Conventions (see each function for details)
-------------------------------------------
* rotation: counter-clockwise by a positive angle, about the centre of the grid;
* uniform motion ``w -> w + c`` (velocity channels only, scalars untouched);
* magnitude ``w -> λ w`` (``channels=None``: all channels, scalars included);
* scale ``w(x, t) -> λ w(λx, λ²t)`` about the grid centre (space) and frame 0 (time). The paper's
  test-set recipe "resample by s in space and s² in time and divide by s" is ``λ = 1/s``.

Adding a group: one module with its actions and a :class:`Symmetry` subclass, and one
``register`` line below.
"""

from __future__ import annotations

from xequi.symmetry.magnitudes import Magnitude, magnitude
from xequi.symmetry.motion import Galilean, UniformMotion, uniform_motion
from xequi.symmetry.on_xarray import transform
from xequi.symmetry.reflection import Mirror, mirror
from xequi.symmetry.registry import (KINDS, Symmetry, _canonical, apply, canonical, get, groups,
                                     inverse_params, markdown_table, random_params, register,
                                     test_params, xarray_kinds)
from xequi.symmetry.rotation import Rot90, Rotate, rot90, rotate
from xequi.symmetry.scaling import Scale, scale, scale_factor
from xequi.symmetry.translation import Translate, translate

__all__ = [
    "KINDS",
    "rot90",
    "rotate",
    "uniform_motion",
    "magnitude",
    "translate",
    "scale",
    "apply",
    "random_params",
    "inverse_params",
    "transform",
    "scale_factor",
    "XARRAY_KINDS",
    "Symmetry",
    "get",
    "canonical",
    "groups",
    "register",
    "test_params",
    "markdown_table",
    "mirror",
]

# the registry, in order (one line per group)
register(Rot90())
register(Rotate())
register(UniformMotion())
register(Galilean())
register(Magnitude())
register(Scale())
register(Mirror())
register(Translate())

#: kinds accepted by :func:`transform` (tensor kinds plus the Galilean boost)
XARRAY_KINDS = xarray_kinds()
