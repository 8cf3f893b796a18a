"""Symmetry-equivariant next-frame models (plain, UM, Mag, Rot, Scale families; ResNet, U-net;
mirror averaging, :mod:`xequi.models.mirror`).

Every model maps ``x`` of shape ``(batch, t_in, C, H, W)`` (model frame, channels
``[u, v, *scalars]``) to the next frame ``(batch, C, H, W)``, and carries ``model.config``
(``create(**model.config)`` rebuilds it) and ``model.symmetries`` (kind names of
:mod:`xequi.symmetry`). ``model.export()`` gives a plain-torch copy for inference.

Examples
--------
>>> import torch
>>> from xequi import models
>>> net = models.create("rot-resnet", t_in=2, widths=(2,), group_order=4)
>>> x = torch.randn(1, 2, 2, 8, 8)
>>> models.rollout(net.eval(), x, 2).shape
torch.Size([1, 2, 2, 8, 8])
>>> models.equivariance_error(net, x, "rot90", k=1) < 1e-4
True
"""

from xequi.models.backbones import EquiModel, ResNet, UNet
from xequi.models.card import ModelCard
from xequi.models.equivariance import equivariance_error, rollout
from xequi.models.normalized import NormalizedModel, compute_normalization
from xequi.models.registry import available, create, parameter_count, size_table

__all__ = ["create", "available", "rollout", "equivariance_error", "EquiModel", "ResNet", "UNet",
           "NormalizedModel", "compute_normalization", "ModelCard", "parameter_count", "size_table"]
