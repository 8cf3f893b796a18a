"""Checkpoints: safetensors + model card round trips, version / corruption / pickle refusal."""

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from xequi import checkpoint as ck
from xequi import models
from xequi.errors import CheckpointError, ModelError, ParameterError
from xequi.train import NormalizedModel

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return models.create("resnet", t_in=2, widths=(4,))


@pytest.fixture(scope="module")
def rot_resnet():
    torch.manual_seed(0)
    return models.create("rot-resnet", t_in=2, widths=(2,), group_order=4)


def _x(seed=0):
    return torch.randn(2, 2, 2, 8, 8, generator=torch.Generator().manual_seed(seed))


def _perturb_bn(net):
    """Give BatchNorm running stats non-default values, so a lost buffer would show."""
    with torch.no_grad():
        for name, buf in net.named_buffers():
            if "running_mean" in name or "running_var" in name:
                buf.add_(0.3)
    return net


@pytest.mark.parametrize("which", ["resnet", "rot_resnet"])
def test_round_trip_identical_outputs(tmp_path, request, which):
    net = _perturb_bn(request.getfixturevalue(which)).eval()
    wrapped = NormalizedModel(net, scale=[2.0, 2.0], offset=[0.0, 0.0], velocity_scale=2.0)
    wrapped.card = {"grid": {"dx": "5000 m"}, "channels": [{"name": "u"}, {"name": "v"}]}
    path = ck.save_model(wrapped, tmp_path / "model")
    assert path.name == "model.xequi" and path.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    loaded = ck.load_model(path)
    assert isinstance(loaded, NormalizedModel) and not loaded.training
    x = _x()
    with torch.no_grad():
        assert torch.equal(wrapped(x), loaded(x))
    assert loaded.config == net.config and tuple(loaded.symmetries) == tuple(net.symmetries)
    assert loaded.card["grid"]["dx"] == "5000 m"
    assert str(ck.card_quantity(loaded.card, "dx").to("km")) == "5.0 kilometer"
    assert loaded.card["normalization"]["scale"] == [2.0, 2.0]


def test_card_contents(tmp_path, rot_resnet):
    path = ck.save_model(rot_resnet, tmp_path / "m.xequi", card={"training": {"data": "toy"}})
    card = ck.read_card(path)
    assert card["format"] == "xequi-model-card" and card["format_version"] == ck.FORMAT_VERSION
    assert card["architecture"] == json.loads(json.dumps(rot_resnet.config))
    assert models.create(**card["architecture"]).config == rot_resnet.config
    assert card["name"] == "rot-resnet" and card["t_in"] == 2
    assert "rot90" in card["symmetries"] and "C4" in card["symmetry_group"]
    assert card["training"] == {"data": "toy"}
    assert card["xequi_version"] and card["created"].endswith("+00:00")
    loaded = ck.load_model(path)
    assert card["weights_sha256"] == ck.weights_digest(loaded.model.train().state_dict())
    # derived entries cannot be overridden by the caller's card
    path2 = ck.save_model(rot_resnet, tmp_path / "m2", card={"format_version": 7, "weights_sha256": "x"})
    card2 = ck.read_card(path2)
    assert card2["format_version"] == ck.FORMAT_VERSION and card2["weights_sha256"] == card["weights_sha256"]


def test_refuses_existing_without_overwrite(tmp_path, resnet):
    p = ck.save_model(resnet, tmp_path / "m")
    with pytest.raises(ParameterError, match="already exists.*\n.*overwrite=True"):
        ck.save_model(resnet, p)
    assert ck.save_model(resnet, p, overwrite=True) == p


def _rewrite_card(src: Path, dst: Path, **changes):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    card = json.loads(meta["xequi.model_card"])
    card.update(changes)
    save_file(tensors, str(dst), metadata={"xequi.model_card": json.dumps(card)})


def test_other_format_version(tmp_path, resnet):
    p = ck.save_model(resnet, tmp_path / "m")
    _rewrite_card(p, tmp_path / "new.xequi", format_version=ck.FORMAT_VERSION + 1)
    with pytest.raises(CheckpointError, match=r"format version 2.*reads\s+format version 1(.|\n)*upgrade"):
        ck.load_model(tmp_path / "new.xequi")
    _rewrite_card(p, tmp_path / "old.xequi", format_version=0, xequi_version="0.0.1")
    with pytest.raises(CheckpointError, match=r"format version 0(.|\n)*Fix: .*0\.0\.1.*re-save"):
        ck.read_card(tmp_path / "old.xequi")


def test_corrupt_files(tmp_path, resnet):
    p = ck.save_model(resnet, tmp_path / "m")
    raw = p.read_bytes()
    (tmp_path / "trunc.xequi").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "tiny.xequi").write_bytes(raw[:5])
    (tmp_path / "junk.xequi").write_bytes(b"not a checkpoint at all" * 10)
    (tmp_path / "empty.xequi").write_bytes(b"")
    for name in ("trunc", "tiny", "junk", "empty"):
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            ck.load_model(tmp_path / f"{name}.xequi")
    # one flipped byte in the weights: caught by the digest
    (n,) = struct.unpack("<Q", raw[:8])
    flipped = bytearray(raw)
    flipped[8 + n + 5] ^= 0xFF
    (tmp_path / "flip.xequi").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="corrupt.*digest"):
        ck.load_model(tmp_path / "flip.xequi")
    # a safetensors file without a card
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(CheckpointError, match="without an xequi model card"):
        ck.load_model(tmp_path / "bare.safetensors")
    with pytest.raises(CheckpointError, match="does not exist"):
        ck.load_model(tmp_path / "missing.xequi")


class _Evil:
    """Unpickling this creates the marker file (stands for arbitrary code execution)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_malicious_pickle_refused(tmp_path):
    marker = tmp_path / "PWNED"
    payload = {"state_dict": {"w": torch.zeros(1)}, "evil": _Evil(marker)}
    plain = tmp_path / "evil.pt"
    with open(plain, "wb") as f:
        pickle.dump(payload, f)
    zipped = tmp_path / "evil_zip.pt"
    torch.save(payload, zipped)
    disguised = tmp_path / "evil.xequi"
    disguised.write_bytes(plain.read_bytes())
    renamed_zip = tmp_path / "evil_zip.xequi"
    renamed_zip.write_bytes(zipped.read_bytes())
    assert not marker.exists()
    for path in (plain, zipped, disguised, renamed_zip):
        with pytest.raises(CheckpointError, match="never unpickles(.|\n)*weights_only=True"):
            ck.load_model(path)
        with pytest.raises(CheckpointError):
            ck.read_card(path)
    assert not marker.exists()
    # sanity: the payload really is malicious when unpickled naively
    with open(plain, "rb") as f:
        pickle.load(f)
    assert marker.exists()


def test_pretrained_lookup(tmp_path, monkeypatch, resnet):
    monkeypatch.setattr(ck, "PRETRAINED_DIR", tmp_path / "pretrained")
    assert ck.available_pretrained() == []
    with pytest.raises(ModelError, match=r"no pretrained weights .*'resnet'.*none in this installation"):
        ck.load_model("resnet")
    ck.save_model(resnet, tmp_path / "pretrained" / "resnet")
    assert ck.available_pretrained() == ["resnet"]
    assert ck.pretrained_path("resnet") == tmp_path / "pretrained" / "resnet.xequi"
    loaded = ck.load_model("resnet")
    x = _x(1)
    with torch.no_grad():
        assert torch.equal(loaded(x), resnet.eval()(x))
    with pytest.raises(ModelError, match=r"'rot-resnet'.*shipped weights: 'resnet'"):
        ck.load_model("rot-resnet")


def test_shipped_pretrained_small():
    """Whatever is shipped stays under 20 MB in total and loads."""
    files = list(ck.PRETRAINED_DIR.glob("*.xequi")) if ck.PRETRAINED_DIR.is_dir() else []
    assert sum(f.stat().st_size for f in files) < 20e6
    for name in ck.available_pretrained():
        card_name = ck.read_card(name)["name"]  # the architecture; "-<data>" for a data-specific model
        assert name == card_name or name.startswith(card_name + "-")


def test_header_length_with_a_0x80_low_byte_is_not_taken_for_a_pickle(tmp_path, resnet):
    """Regression: a safetensors header of 0x..80 bytes starts the file with 0x80, the pickle
    protocol opcode; such a checkpoint must load, not be refused as a pickle."""
    for pad in range(256):  # grow the card until the header length ends in 0x80
        path = ck.save_model(resnet, tmp_path / "m.xequi", card={"notes": "x" * pad},
                             overwrite=True)
        if path.read_bytes()[0] == 0x80:
            break
    else:  # pragma: no cover
        pytest.fail("could not produce a header length ending in 0x80")
    loaded = ck.load_model(path)
    assert loaded.card["notes"] == "x" * pad


def test_scalar_only_model_card_round_trip(tmp_path):
    """A scalar-only model records velocity: false; cards without the key (the shipped ones,
    older files) are velocity models."""
    from xequi.forecast import model_info

    torch.manual_seed(0)
    net = models.create("rot-resnet", t_in=2, n_scalars=1, velocity=False, widths=(2,))
    wrapped = NormalizedModel(net, scale=[2.0], offset=[15.0])
    path = ck.save_model(wrapped, tmp_path / "theta", card={"channels": [
        {"name": "theta", "standard_name": None, "units": "degC", "index": 0}]})
    card = ck.read_card(path)
    assert card["velocity"] is False and card["architecture"]["velocity"] is False
    loaded = ck.load_model(path)
    assert loaded.velocity is False and loaded.channels == 1
    x = torch.randn(1, 2, 1, 8, 8) + 15.0
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), wrapped.eval()(x))
    assert model_info(loaded)["n_velocity"] == 0
    # a card written before the key existed (as the first shipped ones) is a velocity model
    old = _old_style_checkpoint(tmp_path, models.create("rot-resnet", t_in=2, widths=(2,)),
                                drop=("velocity",), card={"channels": [
                                    {"name": n, "standard_name": None, "units": "1", "index": i}
                                    for i, n in enumerate("uv")]})
    shipped = ck.load_model(old)
    assert "velocity" not in shipped.card["architecture"]
    assert model_info(shipped)["velocity"] is True and shipped.velocity is True


def _old_style_checkpoint(tmp_path, net, drop, card=None):
    """A checkpoint of ``net`` whose card lacks the architecture keys ``drop`` (as written by an
    older xequi) and the weights digest; the tensors are those :func:`save_model` wrote."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = ck.save_model(net, tmp_path / f"new-{net.config['name']}", card=card)
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    old_card = ck.read_card(path)
    for key in drop:
        old_card["architecture"].pop(key)
    old_card.pop("weights_sha256", None)
    old = tmp_path / f"old-{net.config['name']}.xequi"
    save_file(tensors, str(old), metadata={ck._CARD_KEY: json.dumps(old_card)})
    return old


def test_card_quantities_combine_with_the_users_application_registry_quantities(tmp_path):
    import pint

    from xequi.forecast import as_forecast_model
    from xequi.units import registry

    app = pint.get_application_registry()
    dx = app.Quantity(5, "km")  # what a user makes with pint's default (application) registry
    m = as_forecast_model(models.create("resnet", t_in=2, widths=(4,)), dx=dx,
                          dt=app.Quantity(1, "h"))
    card = ck.read_card(ck.save_model(m, tmp_path / "m.xequi"))
    q = ck.card_quantity(card, "dx")
    assert q == dx and str((q + dx).to("m")) == "10000.0 meter"
    # and with xequi's registry loaded (a forecast does), all three registries agree
    registry()
    q, dx = ck.card_quantity(card, "dx"), app.Quantity(5, "km")
    assert str((q + dx + registry().Quantity("5 km")).to("m")) == "15000.0 meter"


def test_cards_without_residual_rebuild_full_state_models(tmp_path):
    """Cards written before increment prediction (no ``residual`` in the architecture, like the
    first shipped checkpoints) must rebuild the full-state network: the weights would load into
    a residual one just the same, and its forecasts would be silently wrong."""
    torch.manual_seed(0)
    old_net = models.create("resnet", t_in=2, widths=(4,), residual=False)
    old = _old_style_checkpoint(tmp_path, old_net, drop=("residual",))
    assert "residual" not in ck.read_card(old)["architecture"]  # stored as written
    net = ck.load_model(old)
    assert net.config["residual"] is False
    x = torch.randn(1, 2, 2, 16, 16)
    old_net.eval()
    net.eval()
    with torch.no_grad():
        np.testing.assert_allclose(net.model(x).numpy(), old_net(x).numpy(), atol=1e-6)
