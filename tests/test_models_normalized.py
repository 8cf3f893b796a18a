"""Tests of xequi.models.normalized: the normalized model and its statistics (inference side)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

import xequi.models.normalized as N
from xequi import models, train
from xequi.errors import ModelError, ParameterError
from xequi.models.normalized import NormalizedModel, compute_normalization, resolve_device

torch.set_num_threads(1)


def test_training_re_exports_the_same_objects():
    assert train.NormalizedModel is NormalizedModel
    assert train.compute_normalization is compute_normalization
    assert models.NormalizedModel is NormalizedModel and models.ModelCard is not None


def test_wrapper_normalizes_around_the_network_and_exports():
    torch.manual_seed(0)
    net = models.create("resnet", t_in=2, widths=(4,))
    m = NormalizedModel(net, scale=[2.0, 2.0], offset=[0.0, 0.0], velocity_scale=2.0).eval()
    m.card = {"t_in": 2}
    x = torch.randn(1, 2, 2, 8, 8)
    with torch.no_grad():
        np.testing.assert_allclose(m(x), net.eval()(x / 2.0) * 2.0, rtol=1e-6, atol=1e-6)
        exported = m.export()
        np.testing.assert_allclose(exported(x), m(x), rtol=1e-5, atol=1e-5)
    assert exported.card == m.card and exported.card is not m.card
    assert m.config["t_in"] == 2 and m.normalization_card()["velocity_scale"] == 2.0
    with pytest.raises(ModelError, match="channels"):
        m(torch.zeros(1, 2, 3, 8, 8))
    with pytest.raises(ParameterError, match="positive"):
        NormalizedModel(net, scale=[0.0, 1.0])


def test_statistics_of_scalar_only_data():
    x = np.zeros((4, 1, 2, 2))
    x[:, 0] = 3.0
    n = compute_normalization(x, n_velocity=0)
    assert n["velocity_scale"] is None and n["method"] == "scalar_standard"
    assert n["offset"] == [3.0] and n["scale"] == [1.0]  # zero std: scale 1
    m = compute_normalization(x, symmetries=("magnitude",), n_velocity=0)
    assert m["offset"] == [0.0] and m["scale"] == [3.0]


def test_device_rule():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ParameterError, match="unknown device"):
        resolve_device("no-such-device")


def test_doctests():
    assert doctest.testmod(N).failed == 0
