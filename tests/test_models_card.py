"""Tests of xequi.models.card: the one model card, written and read in one place."""

from __future__ import annotations

import doctest
import json
from numbers import Integral

import pytest
import torch

import xequi.models.card as C
from xequi import checkpoint as ck
from xequi.errors import ModelError
from xequi.forecast import model_info
from xequi.models.card import DEFAULT_WINDOW, ModelCard

from conftest import tiny_model

torch.set_num_threads(1)

SHIPPED = ck.available_pretrained()


def _before(card: dict) -> dict:
    """How ``forecast.model_info`` read a card before the card had one home (its fallback
    chains, copied from xequi 0.x): the reference for reading old cards."""
    velocity = card.get("velocity")
    if velocity is None:
        velocity = (card.get("architecture") or {}).get("velocity", True)
    window = card.get("window")
    if window is None:
        window = ((card.get("training") or {}).get("hyperparameters") or {}).get("window")
    if window is None:
        window = DEFAULT_WINDOW
    if isinstance(window, Integral):
        window = (int(window), int(window))
    elif isinstance(window, dict):
        window = tuple(int(v) for v in list(window.values())[-2:])
    grid = card.get("grid") or {}
    return {
        "name": card.get("name") or (card.get("architecture") or {}).get("name") or "unnamed",
        "t_in": int(card.get("t_in")),
        "velocity": bool(velocity),
        "window": tuple(int(v) for v in window),
        "dx": grid.get("dx"), "dy": grid.get("dy", grid.get("dx")), "dt": grid.get("dt"),
        "symmetries": list(card.get("symmetries") or ()),
        "symmetry_group": card.get("symmetry_group") or "",
        "weights_sha256": card.get("weights_sha256"),
    }


def _read(card: ModelCard) -> dict:
    return {"name": card.name, "t_in": card.t_in, "velocity": card.velocity,
            "window": card.window, "dx": card.grid.get("dx"),
            "dy": card.grid.get("dy", card.grid.get("dx")), "dt": card.grid.get("dt"),
            "symmetries": list(card.symmetries), "symmetry_group": card.symmetry_group,
            "weights_sha256": card.weights_sha256}


def test_round_trip_through_dict_and_json():
    card = ModelCard(
        name="rot-resnet", architecture={"name": "rot-resnet", "t_in": 2, "widths": [2]},
        symmetries=("rot90", "translate"), symmetry_group="C4 x translations", t_in=2,
        velocity=True, channels=({"name": "u", "standard_name": None, "units": "m s-1",
                                  "index": 0},
                                 {"name": "v", "standard_name": None, "units": "m s-1",
                                  "index": 1}),
        grid={"dx": "5 km", "dy": "5 km", "dt": "1 h"},
        normalization={"scale": [2.0, 2.0], "offset": [0.0, 0.0], "velocity_scale": 2.0},
        window=(32, 32), training={"data": "test", "hyperparameters": {"window": [8, 8]}},
        metrics={"best_epoch": 1}, weights_sha256="sha256:00", xequi_version="0",
        created="2026-01-01T00:00:00+00:00", format=C.CARD_FORMAT, format_version=1,
        extra={"notes": "a user's own entry"})
    assert ModelCard.from_dict(card.to_dict()) == card
    assert ModelCard.from_json(card.to_json()) == card
    text = card.to_json()
    assert json.loads(text)["notes"] == "a user's own entry"  # unknown keys are kept
    assert json.loads(text)["window"] == [32, 32]  # the card's window wins over training's
    with pytest.raises(AttributeError):  # frozen: change it with .replace
        card.t_in = 3
    assert card.replace(t_in=3).t_in == 3 and card.t_in == 2


def test_a_missing_window_is_the_training_window_else_the_default():
    assert ModelCard().window == (DEFAULT_WINDOW, DEFAULT_WINDOW)
    trained = ModelCard(training={"hyperparameters": {"window": [16, 24]}})
    assert trained.window == (16, 24)
    assert ModelCard(window=8).window == (8, 8)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_pretrained_card_reads(name):
    raw = ck.read_card(name)
    card = ModelCard.from_dict(raw)
    assert card.format == C.CARD_FORMAT and card.format_version == ck.FORMAT_VERSION
    # a shipped file is named after its architecture, or architecture + "-<data>" (the
    # GlobCurrent model: um-resnet-globcurrent)
    arch = card.architecture["name"]
    assert card.t_in and len(card.channels) >= 2 and (name == arch or name.startswith(arch + "-"))
    assert card.velocity is True and card.n_velocity == 2  # written before `velocity` existed
    assert _read(card) == _before(raw)
    assert card.quantity("dx") is not None and card.quantity("dt") is not None
    # writing it back keeps every stored entry
    back = card.to_dict()
    for key, value in raw.items():
        assert back[key] == value, key


def test_shipped_cards_exist():
    assert len(SHIPPED) >= 6


@pytest.mark.parametrize("raw", [
    {"architecture": {"name": "resnet"}, "t_in": 4, "channels": [{}, {}]},  # no velocity key
    {"architecture": {"name": "x", "velocity": False}, "t_in": "3", "channels": [{"name": "T"}],
     "grid": {"dx": "2 km"}, "training": {"hyperparameters": {"window": {"y": 8, "x": 12}}}},
    {"name": "mine", "t_in": 2, "velocity": False, "window": 16, "channels": [{"name": "T"}]},
])
def test_an_old_card_reads_with_the_values_model_info_gave(raw):
    card = ModelCard.from_dict(raw)
    assert _read(card) == _before(raw)

    class Holder(torch.nn.Module):
        pass

    holder = Holder()
    holder.card = raw
    info = model_info(holder)
    expected = _before(raw)
    for key in ("name", "t_in", "velocity", "window", "symmetries", "symmetry_group",
                "weights_sha256"):
        assert info[key] == expected[key], key
    for key in ("dx", "dy", "dt"):
        assert (info[key] is None) == (expected[key] is None), key
    assert info["n_velocity"] == (2 if expected["velocity"] else 0)


def test_model_info_of_a_card_without_channels_or_t_in_is_refused():
    class Holder(torch.nn.Module):
        pass

    holder = Holder()
    holder.card = {"t_in": 2, "channels": [{"name": "u"}]}
    with pytest.raises(ModelError, match="channel"):
        model_info(holder)
    holder.card = {"t_in": "two", "channels": [{}, {}]}
    with pytest.raises(ModelError, match="t_in"):
        model_info(holder)
    with pytest.raises(ModelError, match="grid entry"):
        ModelCard(grid={"dx": "5 furlongs per blorg"}).quantity("dx")


def test_the_three_writers_write_the_same_card_layout(cf_dataset, tmp_path):
    from xequi.train import fit

    m = tiny_model("resnet")  # as_forecast_model
    p = ck.save_model(m, tmp_path / "m.xequi")  # save_model
    ds = cf_dataset(nt=12, ny=8, nx=8)
    fitted, _ = fit("resnet", ds, t_in=2, rollout_steps=1, epochs=1, batch_size=4, window=8,
                    val_fraction=0.3,
                    model_kwargs={"widths": (2,)}, progress=False)  # fit
    keys = set(ModelCard().to_dict())  # the entries every card has
    for card in (m.card, ck.read_card(p), fitted.card):
        assert keys <= set(card), sorted(keys - set(card))
        assert ModelCard.from_dict(card).to_dict() == card
    assert fitted.card["window"] == [8, 8]
    assert ck.read_card(p)["grid"] == m.card["grid"] == {"dx": "10 km", "dy": "10 km",
                                                          "dt": "1 h"}


def test_doctests():
    assert doctest.testmod(C).failed == 0
