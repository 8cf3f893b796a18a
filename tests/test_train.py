"""fit(): rollout loss, best-epoch weights, determinism, resuming, normalization, augmentation,
the training recipe (schedule, clipping, curriculum, pushforward, noise, guard, time budget)."""

import copy
import json
import time

import numpy as np
import pytest
import torch
import xarray as xr

from xequi import checkpoint as ck
from xequi import models, symmetry
from xequi.errors import CheckpointError, GridError, MissingDataError, ModelError, ParameterError
from xequi.train import BEST_FILE, STATE_FILE, NormalizedModel, compute_normalization, fit, rollout_loss

torch.set_num_threads(1)

TINY = dict(t_in=2, rollout_steps=2, batch_size=4, model_kwargs={"widths": (4,)}, val_fraction=0.3,
            progress=False, window=16, device="cpu")


def _advect(T=14, H=16, W=16, seed=0, n_scalars=0):
    """A smooth field advected by one cell per step (learnable next-frame dynamics)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(2 + n_scalars, H, W))
    k = np.fft.fftfreq(H)[:, None] ** 2 + np.fft.fftfreq(W)[None, :] ** 2
    base = np.real(np.fft.ifft2(np.fft.fft2(base) * np.exp(-40 * k)))
    base /= base.std()
    frames = np.stack([np.roll(base, t, axis=-1) for t in range(T)]) * 3.0 + 0.5
    return xr.DataArray(frames.astype("float32"), dims=("time", "channel", "y", "x"),
                        coords={"channel": ["u", "v"] + [f"s{i}" for i in range(n_scalars)]},
                        attrs={"units": "u: m/s, v: m/s", "dx": "5000 m", "dy": "5000 m", "dt": "3600 s",
                               "description": "advected noise"})


@pytest.fixture(scope="module")
def data():
    return _advect()


def _weights(model):
    net = model.model if isinstance(model, NormalizedModel) else model
    mode = net.training
    state = {k: v.detach().clone() for k, v in net.train().state_dict().items()}
    net.train(mode)
    return state


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fit_returns_model_history_and_card(data):
    before = data.copy(deep=True)
    # schedule="exponential": the paper's per-epoch decay (the default is warmup + cosine)
    model, hist = fit("resnet", data, epochs=2, schedule="exponential", **TINY)
    xr.testing.assert_identical(data, before)  # the caller's data are untouched
    assert isinstance(model, NormalizedModel) and not model.training
    assert hist["epoch"] == [1, 2] and len(hist["val_loss"]) == 2 and hist["lr"] == pytest.approx([1e-3, 9.5e-4])
    assert hist["best_val_loss"] == min(hist["val_loss"])
    card = model.card
    assert card["grid"] == {"dx": "5000 m", "dy": "5000 m", "dt": "3600 s"}
    assert [c["units"] for c in card["channels"]] == ["m/s", "m/s"]
    assert card["training"]["data"] == "advected noise"
    assert card["metrics"]["best_epoch"] == hist["best_epoch"]
    assert card["architecture"] == model.config and card["name"] == "resnet" and card["t_in"] == 2
    assert card["weights_sha256"] == ck.weights_digest(_weights(model))
    # normalization from the training split only (time 0..9 of 14), one velocity scale, no offset
    train = data.values[:10]
    assert card["normalization"]["velocity_scale"] == pytest.approx(
        float(np.sqrt((train[:, :2] ** 2).sum(1).mean())), rel=1e-6)
    assert card["normalization"]["offset"] == [0.0, 0.0]
    x = torch.from_numpy(data.values[None, :2])
    assert model(x).shape == (1, 2, 16, 16)


def test_rollout_loss_feeds_predictions_back():
    class AddOne(torch.nn.Module):
        def forward(self, x):
            return x[:, -1] + 1

    hist = torch.zeros(1, 2, 2, 4, 4)
    target = torch.stack([torch.full((2, 4, 4), float(k + 1)) for k in range(3)])[None]
    assert float(rollout_loss(AddOne(), hist, target)) == 0.0  # 1, 2, 3: only if fed back
    assert float(rollout_loss(AddOne(), hist, torch.ones(1, 3, 2, 4, 4))) == pytest.approx(0 + 1 + 4)


def test_best_weights_kept_and_early_stopping(data):
    """Defect 5: the returned weights are those of the best validation epoch, not the last."""
    snapshots = {}

    def record_then_sabotage(epoch, net, logs):
        snapshots[epoch] = _weights(net)
        if epoch == 1:  # wreck the weights: every later validation loss is worse than epoch 1's
            with torch.no_grad():
                for p in net.parameters():
                    p.mul_(40.0).add_(3.0)

    # guard=None: the divergence guard would restore epoch 1's weights after the sabotage
    model, hist = fit("resnet", data, epochs=4, patience=2, guard=None,
                      callbacks=[record_then_sabotage], **TINY)
    assert hist["best_epoch"] == 1 and hist["val_loss"][1] > hist["val_loss"][0]
    assert hist["stopped_early"] and hist["epoch"] == [1, 2, 3]  # patience 2 after epoch 1
    assert _same(_weights(model), snapshots[1])
    assert not _same(_weights(model), snapshots[3])
    assert model.card["metrics"]["best_epoch"] == 1


def test_deterministic_on_cpu(data):
    a, ha = fit("resnet", data, epochs=2, seed=3, augment=("rot90",), **TINY)
    b, hb = fit("resnet", data, epochs=2, seed=3, augment=("rot90",), **TINY)
    c, _ = fit("resnet", data, epochs=2, seed=4, augment=("rot90",), **TINY)
    assert _same(_weights(a), _weights(b)) and ha == hb
    assert not _same(_weights(a), _weights(c))
    # fit leaves the caller's global RNG alone
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fit("resnet", data, epochs=1, **TINY)
    assert torch.equal(torch.rand(3), expected)


class _Interrupt(Exception):
    pass


def test_resume_is_bit_identical(tmp_path, data):
    # the exponential schedule and no curriculum: their horizon does not depend on epochs, so
    # that a finished run extended by one epoch equals a longer run (see below)
    kw = dict(epochs=3, seed=1, augment=("um",), patience=None, schedule="exponential",
              curriculum=0, **TINY)
    full, hfull = fit("resnet", data, checkpoint_dir=tmp_path / "full", **kw)

    def stop_after_first(epoch, net, logs):
        if epoch == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        fit("resnet", data, checkpoint_dir=tmp_path / "run", callbacks=[stop_after_first], **kw)
    assert (tmp_path / "run" / STATE_FILE).is_file() and not (tmp_path / "run" / BEST_FILE).exists()
    resumed, hres = fit("resnet", data, checkpoint_dir=tmp_path / "run", **kw)
    assert hres == hfull
    assert _same(_weights(resumed), _weights(full))
    # the finished run is saved as a loadable checkpoint, and calling again just returns it
    loaded = ck.load_model(tmp_path / "run" / BEST_FILE)
    x = torch.from_numpy(data.values[None, :2])
    with torch.no_grad():
        assert torch.equal(loaded(x), resumed(x))
    again, hagain = fit("resnet", data, checkpoint_dir=tmp_path / "run", **kw)
    assert hagain == hfull and _same(_weights(again), _weights(full))
    # a finished run can be extended: 3 + 1 epochs equal 4 epochs in one go
    four, h4 = fit("resnet", data, checkpoint_dir=tmp_path / "four", **{**kw, "epochs": 4})
    more, hmore = fit("resnet", data, checkpoint_dir=tmp_path / "run", **{**kw, "epochs": 4})
    assert hmore == h4 and _same(_weights(more), _weights(four))
    # a different run in the same directory is refused
    with pytest.raises(CheckpointError, match="different run"):
        fit("resnet", data, checkpoint_dir=tmp_path / "run", **{**kw, "seed": 2})
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]


def test_progress_false_is_silent(data, capfd):
    fit("resnet", data, epochs=1, **TINY)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    fit("resnet", data, epochs=1, **{**TINY, "progress": True})
    out, err = capfd.readouterr()
    assert "fit resnet" in err and "train=" in err


def test_normalization_wrapper_keeps_equivariance():
    """One velocity scale outside the network keeps rot90 / UM / Mag equivariance."""
    torch.manual_seed(0)
    net = models.create("um-mag-rot-resnet", t_in=2, widths=(2,), group_order=4).eval()
    wrapped = NormalizedModel(net, scale=[3.7, 3.7], offset=[0.0, 0.0]).eval()
    x = torch.randn(2, 2, 2, 8, 8, dtype=torch.float64).float() * 2
    with torch.no_grad():
        y = wrapped(x)
        rel = lambda a, b: float((a - b).abs().max() / b.abs().max())  # noqa: E731
        assert rel(wrapped(symmetry.rot90(x, 1)), symmetry.rot90(y, 1)) < 1e-4
        assert rel(wrapped(symmetry.magnitude(x, 0.37)), symmetry.magnitude(y, 0.37)) < 1e-4
        c = (1.5, -0.8)
        assert rel(wrapped(symmetry.uniform_motion(x, c)), symmetry.uniform_motion(y, c)) < 1e-4
        # a per-component scale (u and v standardised separately) breaks rotation equivariance
        bad = NormalizedModel(net, scale=[1.0, 6.0], offset=[0.0, 0.0]).eval()
        assert rel(bad(symmetry.rot90(x, 1)), symmetry.rot90(bad(x), 1)) > 1e-2


def test_compute_normalization_respects_symmetries():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3, 4, 4)) + np.array([1.0, -2.0, 30.0])[None, :, None, None]
    n = compute_normalization(x)
    assert n["scale"][0] == n["scale"][1] == n["velocity_scale"] and n["offset"][:2] == [0.0, 0.0]
    assert n["offset"][2] == pytest.approx(x[:, 2].mean())
    m = compute_normalization(x, symmetries=("magnitude",))
    assert m["offset"] == [0.0, 0.0, 0.0] and m["scale"][2] == pytest.approx(np.sqrt((x[:, 2] ** 2).mean()))


def test_augmentation_path_runs(data):
    plain, _ = fit("resnet", data, epochs=1, **TINY)
    for aug in (("rot90", "uniform_motion"), ("magnitude",), ("scale",)):
        aug_model, hist = fit("resnet", data, epochs=1, augment=aug, **TINY)
        assert np.isfinite(hist["train_loss"][0])
        assert not _same(_weights(aug_model), _weights(plain))
        assert aug_model.card["training"]["hyperparameters"]["augment"] == list(aug)
    with pytest.raises(ParameterError, match="unknown augmentation"):
        fit("resnet", data, epochs=1, augment=("flip",), **TINY)


def test_e2cnn_model_trains_and_round_trips(tmp_path, data):
    model, _ = fit("rot-resnet", data, epochs=1, **{**TINY, "model_kwargs": {"widths": (2,)}})
    path = ck.save_model(model, tmp_path / "rot")
    loaded = ck.load_model(path)
    x = torch.from_numpy(data.values[None, :2])
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.card["metrics"]["history"]["epoch"] == [1]
    assert loaded.card["normalization"]["velocity_scale"] == model.card["normalization"]["velocity_scale"]


def test_fit_on_cf_dataset(cf_dataset):
    ds = cf_dataset(nt=12, ny=8, nx=8, units="cm s-1", xy_units="km", spacing=5.0, scalars=("temp",))
    kw = {**TINY, "window": 8}
    model, _ = fit("resnet", ds, epochs=1, fields_kwargs={"target_units": "m/s", "scalars": ["temp"]}, **kw)
    card = model.card
    assert model.config["n_scalars"] == 1
    assert [c["name"] for c in card["channels"]] == ["u", "v", "temp"]
    assert [c["standard_name"] for c in card["channels"]] == [
        "eastward_sea_water_velocity", "northward_sea_water_velocity", "sea_water_temperature"]
    assert [c["units"] for c in card["channels"]] == ["m/s", "m/s", "degC"]
    assert str(ck.card_quantity(card, "dx").to("m")) == "5000.0 meter"
    assert ck.card_quantity(card, "dt").to("s").magnitude == pytest.approx(3600)
    assert card["training"]["data"] == "synthetic xequi test data"
    norm = card["normalization"]
    assert norm["velocity_scale"] < 0.05  # converted to m/s before the statistics
    assert norm["offset"][:2] == [0.0, 0.0] and norm["offset"][2] == pytest.approx(15, abs=0.5)
    bad = ds.copy(deep=True)
    bad["u"][0, 0, 0] = np.nan
    with pytest.raises(MissingDataError, match="(?s)NaN.*fields_kwargs=\\{'fill': 'zero'\\}"):
        fit("resnet", bad, epochs=1, **kw)
    fit("resnet", bad, epochs=1, fields_kwargs={"fill": "zero"}, **kw)


def test_bad_inputs_raise_xequi_errors(data):
    with pytest.raises(ModelError, match="takes 3 channels.*data have 2(.|\n)*n_scalars=0"):
        fit(models.create("resnet", t_in=2, n_scalars=1, widths=(4,)), data, epochs=1,
            **{k: v for k, v in TINY.items() if k not in ("t_in", "model_kwargs")})
    with pytest.raises(ModelError, match="t_in=3 was passed but the model takes t_in=2"):
        fit(models.create("resnet", t_in=2, widths=(4,)), data, epochs=1, t_in=3, progress=False)
    with pytest.raises(ParameterError, match="validation range.*fewer than(.|\n)*val_fraction"):
        fit("resnet", data.isel(time=slice(0, 8)), epochs=1, **TINY)
    nan = data.copy(deep=True)
    nan[3, 1, 2, 2] = np.nan
    with pytest.raises(MissingDataError, match="1 NaN"):
        fit("resnet", nan, epochs=1, **TINY)
    with pytest.raises(GridError, match="dims"):
        fit("resnet", data.rename(channel="var"), epochs=1, **TINY)
    with pytest.raises(ParameterError, match="must be an xarray.Dataset"):
        fit("resnet", data.values, epochs=1, **TINY)
    with pytest.raises(ModelError, match="unknown model"):
        fit("no-such-net", data, epochs=1, **TINY)
    with pytest.raises(ParameterError, match="lr_decay"):
        fit("resnet", data, epochs=1, lr_decay=1.5, **TINY)
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="CUDA is not available"):
            fit("resnet", data, epochs=1, **{**TINY, "device": "cuda"})


@pytest.mark.gpu
def test_fit_on_gpu_with_bf16(data):
    """Run on a CUDA machine with `make test-gpu` (CI has no GPU and does not select it)."""
    model, hist = fit("rot-resnet", data, epochs=2, amp=True,
                      **{**TINY, "model_kwargs": {"widths": (2,)}, "device": "auto"})
    assert next(model.parameters()).is_cuda and np.isfinite(hist["val_loss"]).all()
    assert model.card["training"]["hyperparameters"]["amp"] is True


def _scalar_field(T=14, H=16, W=16):
    """One advected scalar field as a CF DataArray (time, y, x) in kelvin: no velocity."""
    frames = _advect(T, H, W, n_scalars=1).values[:, 2]
    t = np.datetime64("2020-01-01", "ns") + np.arange(T) * np.timedelta64(1, "h")
    return xr.DataArray(
        frames + 280.0, dims=("time", "y", "x"), name="theta",
        coords={"time": t, "y": ("y", np.arange(H) * 5.0, {"units": "km", "axis": "Y"}),
                "x": ("x", np.arange(W) * 5.0, {"units": "km", "axis": "X"})},
        attrs={"units": "K", "standard_name": "sea_water_potential_temperature"})


def test_fit_on_a_lone_scalar_field_builds_a_scalar_only_model(tmp_path):
    da = _scalar_field()
    before = da.copy(deep=True)
    model, hist = fit("rot-resnet", da, epochs=2, **{**TINY, "model_kwargs": {"widths": (2,)}})
    xr.testing.assert_identical(da, before)
    assert model.config["velocity"] is False and model.config["n_scalars"] == 1
    card = model.card
    assert card["velocity"] is False
    assert card["channels"] == [{"name": "theta", "standard_name": "sea_water_potential_temperature",
                                 "units": "K", "index": 0}]
    assert str(ck.card_quantity(card, "dx").to("m")) == "5000.0 meter"
    norm = card["normalization"]
    assert norm["method"] == "scalar_standard" and norm["velocity_scale"] is None
    assert norm["offset"][0] == pytest.approx(280.5, abs=0.5)
    assert np.isfinite(hist["val_loss"]).all()
    # the fitted model (with its normalization) keeps the rotation symmetry of its channel
    x = torch.from_numpy(da.values[None, :2, None].astype("float32"))
    assert models.equivariance_error(model, x, "rot90", k=1) < 1e-5
    loaded = ck.load_model(ck.save_model(model, tmp_path / "theta"))
    assert loaded.card["velocity"] is False and loaded.velocity is False
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_fit_scalar_only_errors_and_model_frame_input(data):
    da = _scalar_field()
    with pytest.raises(ParameterError, match="uniform_motion(.|\n)*no velocity"):
        fit("resnet", da, epochs=1, augment=("um",), **TINY)
    fit("resnet", da, epochs=1, augment=("rot90", "mag"), **TINY)  # these act on scalars
    with pytest.raises(ModelError, match="uniform-motion"):
        fit("um-resnet", da, epochs=1, **TINY)
    with pytest.raises(ModelError, match="takes the velocity(.|\n)*no velocity channels"):
        fit(models.create("resnet", t_in=2, n_scalars=1, widths=(4,)), da, epochs=1,
            **{k: v for k, v in TINY.items() if k not in ("t_in", "model_kwargs")})
    scalar_net = models.create("resnet", t_in=2, n_scalars=2, velocity=False, widths=(4,))
    with pytest.raises(ModelError, match="scalar-only(.|\n)*start with the velocity"):
        fit(scalar_net, data, epochs=1,
            **{k: v for k, v in TINY.items() if k not in ("t_in", "model_kwargs")})
    with pytest.raises(ModelError, match="scalar-only and takes 2 channel(.|\n)*n_scalars=1, velocity=False"):
        fit(scalar_net, da, epochs=1,
            **{k: v for k, v in TINY.items() if k not in ("t_in", "model_kwargs")})
    with pytest.raises(ParameterError, match="'u'(.|\n)*lone scalar field"):
        fit("resnet", da, epochs=1, fields_kwargs={"u": "u"}, **TINY)
    with pytest.raises(ModelError, match="model_kwargs velocity=True"):
        fit("resnet", da, epochs=1, **{**TINY, "model_kwargs": {"widths": (4,), "velocity": True}})
    # model-frame data marked scalar-only (attrs["n_velocity"] = 0): two scalar channels
    frame = data.assign_attrs(n_velocity=0, units="a: K, b: psu").assign_coords(channel=["a", "b"])
    model, _ = fit(scalar_net, frame, epochs=1,
                   **{k: v for k, v in TINY.items() if k not in ("t_in", "model_kwargs")})
    assert [c["units"] for c in model.card["channels"]] == ["K", "psu"]
    assert model.card["velocity"] is False
    with pytest.raises(GridError, match="n_velocity=1"):
        fit("resnet", data.assign_attrs(n_velocity=1), epochs=1, **TINY)


# --------------------------------------------------------------------------------------------
# the training recipe: schedule, clipping, curriculum, pushforward, noise, validation score,
# divergence guard, time budget, resuming
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_data():
    return _advect(T=20)


def _n_batches(model):
    return -(-model.card["training"]["train_samples"] // TINY["batch_size"])


def test_lr_warmup_then_cosine_per_iteration(data):
    model, hist = fit("resnet", data, epochs=6, warmup=0.3, patience=None, guard=None, **TINY)
    n, E, lr = _n_batches(model), 6, 1e-3
    expected = []
    for e in range(1, E + 1):  # the lr of an epoch's first iteration
        p = ((e - 1) * n + 1) / (E * n)
        f = p / 0.3 if p < 0.3 else 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * (p - 0.3) / 0.7))
        expected.append(lr * f)
    assert hist["lr"] == pytest.approx(expected, rel=1e-6)
    assert hist["lr"][0] < hist["lr"][1] and hist["lr"][2:] == sorted(hist["lr"][2:], reverse=True)
    hyper = model.card["training"]["hyperparameters"]
    assert hyper["schedule"] == "cosine" and hyper["warmup"] == 0.3 and hyper["optimizer"] == "adamw"
    assert hyper["weight_decay"] == 1e-2  # AdamW's default decoupled weight decay
    assert "cosine" in model.card["training"]["optimizer"]
    # the paper's schedule stays selectable, with Adam and its L2 weight decay
    _, old = fit("resnet", data, epochs=2, schedule="exponential", optimizer="adam", **TINY)
    assert old["lr"] == pytest.approx([1e-3, 9.5e-4])


def test_gradient_clipping_bounds_the_global_norm(data):
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    def wreck(epoch, net, logs):  # huge gradients in the next epoch
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(30.0).add_(2.0)

    def norms_at_step(**kw):
        norms = []

        def hook(opt, args, kwargs):
            grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
            norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

        handle = register_optimizer_step_pre_hook(hook)
        try:
            fit("resnet", data, epochs=2, guard=None, callbacks=[wreck], **TINY, **kw)
        finally:
            handle.remove()
        return norms

    clipped, free = norms_at_step(clip_grad=0.5), norms_at_step(clip_grad=None)
    assert max(clipped) <= 0.5 * (1 + 1e-5)
    assert max(free) > 10.0  # the same batches unclipped


def test_curriculum_lengths_per_epoch(long_data):
    kw = {**TINY, "rollout_steps": 3}
    _, hist = fit("resnet", long_data, epochs=6, curriculum=0.5, patience=None, guard=None, **kw)
    assert hist["rollout"] == [1, 1, 2, 3, 3, 3]  # 1 + floor(2 (e - 1) / 6 / 0.5)
    model, hist = fit("resnet", long_data, epochs=2, curriculum=0, **kw)
    assert hist["rollout"] == [3, 3]
    assert model.card["training"]["hyperparameters"]["curriculum"] == 0


def _record_calls(calls):
    """A callback that, after epoch 1, records every forward call of the network."""
    def cb(epoch, net, logs):
        if epoch == 1:
            net.register_forward_pre_hook(lambda mod, args: calls.append(
                (mod.training, torch.is_grad_enabled(), args[0].detach().clone())))
    return cb


def test_pushforward_steps_carry_no_gradient(long_data):
    calls = []
    fit("resnet", long_data, epochs=2, pushforward=1, curriculum=0, guard=None,
        callbacks=[_record_calls(calls)], **TINY)
    train = [grad for training, grad, _ in calls if training]
    assert train and len(train) % 3 == 0
    assert train == [False, True, True] * (len(train) // 3)  # 1 pushforward + 2 rollout steps
    assert not any(grad for training, grad, _ in calls if not training)  # validation


def _shift_consistent(x):
    """Frames of the advected data are shifts of one another (exactly, without noise)."""
    return bool(torch.equal(x[:, 1], torch.roll(x[:, 0], 1, dims=-1)))


def test_noise_only_in_training(data):
    for noise, noisy in ((0.1, True), (0.0, False)):
        calls = []
        model, _ = fit("resnet", data, epochs=2, noise=noise, curriculum=0, guard=None,
                       callbacks=[_record_calls(calls)], **TINY)
        first_calls = [x for training, _, x in calls if training][::TINY["rollout_steps"]]
        assert all(_shift_consistent(x) != noisy for x in first_calls)
        val_steps = model.card["training"]["hyperparameters"]["val_steps"]
        val_first = [x for training, _, x in calls if not training][::val_steps]
        assert val_first and all(_shift_consistent(x) for x in val_first)  # clean
    assert "noise" in model.card["training"]["hyperparameters"]


def test_validation_score_is_the_rollout_rmse_in_data_units(data):
    nets = {}
    model, hist = fit("resnet", data, epochs=1, callbacks=[
        lambda epoch, net, logs: nets.setdefault(epoch, copy.deepcopy(net))], **TINY)
    card = model.card
    norm, (v0, v1) = card["normalization"], card["training"]["val_time_index"]
    V, t_in = card["training"]["hyperparameters"]["val_steps"], TINY["t_in"]
    assert V == min(3 * TINY["rollout_steps"], v1 - v0 - t_in)
    wrapped = NormalizedModel(nets[1], norm["scale"], norm["offset"], norm["velocity_scale"]).eval()
    x = torch.from_numpy(data.values)
    sq, n = 0.0, 0
    with torch.no_grad():
        for s in range(v0, v1 - t_in - V + 1):
            window = x[None, s:s + t_in]
            for k in range(V):
                pred = wrapped(window)
                sq += float(((pred.double() - x[s + t_in + k].double()) ** 2).sum())
                n += pred.numel()
                window = torch.cat([window[:, 1:], pred[:, None]], dim=1)
    assert hist["val_loss"][0] == pytest.approx(np.sqrt(sq / n), rel=1e-5)
    assert "RMSE" in card["training"]["validation"]


def test_guard_restores_the_best_weights_and_stops_after_three(data):
    snaps = {}

    def nan_after_each_epoch(epoch, net, logs):
        snaps[epoch] = _weights(net)
        with torch.no_grad():
            next(net.parameters()).fill_(float("nan"))

    model, hist = fit("resnet", data, epochs=8, schedule="exponential",
                      callbacks=[nan_after_each_epoch], **TINY)
    assert hist["epoch"] == [1, 2, 3, 4] and hist["stop_reason"] == "diverged"
    assert [r["epoch"] for r in hist["restored"]] == [2, 3, 4]
    assert all("NaN/inf" in r["reason"] and r["to_epoch"] == 1 for r in hist["restored"])
    assert _same(snaps[2], snaps[1]) and _same(snaps[4], snaps[1])  # restored before the callback
    assert _same(_weights(model), snaps[1]) and hist["best_epoch"] == 1
    # the learning rate halves at each restore (and decays x 0.95 per epoch)
    assert hist["lr"] == pytest.approx([1e-3, 9.5e-4, 9.5e-4 * 0.95 * 0.5, 9.5e-4 * 0.95 ** 2 * 0.25])
    assert model.card["metrics"]["restored"] == hist["restored"]
    # diverging in every epoch, with no good epoch to go back to, is an error
    with pytest.raises(ParameterError, match="(?s)diverged in every epoch.*NaN/inf.*lower lr"):
        fit("resnet", data, epochs=1, lr=1e30, **TINY)


def test_guard_on_the_validation_score(data):
    snaps = {}

    def wreck_once(epoch, net, logs):
        snaps[epoch] = _weights(net)
        if epoch == 1:
            with torch.no_grad():
                for p in net.parameters():
                    p.mul_(40.0).add_(3.0)

    _, hist = fit("resnet", data, epochs=3, guard=1.5, callbacks=[wreck_once], **TINY)
    assert [r["epoch"] for r in hist["restored"]] == [2]
    assert "validation score" in hist["restored"][0]["reason"]
    assert _same(snaps[2], snaps[1]) and hist["stop_reason"] == "epochs"


def test_max_time_stops_and_returns_the_best_weights(data):
    snaps = {}

    def slow(epoch, net, logs):
        snaps[epoch] = _weights(net)
        time.sleep(0.3)

    model, hist = fit("resnet", data, epochs=1000, max_time=3.0, patience=None, callbacks=[slow],
                      **TINY)
    assert 2 <= len(hist["epoch"]) < 50 and hist["stop_reason"] == "max_time"
    assert _same(_weights(model), snaps[hist["best_epoch"]])
    budget = model.card["training"]["budget"]
    assert budget["seconds"] >= 3.0 and budget["epochs_run"] == len(hist["epoch"])
    assert budget["device"] == "cpu" and budget["max_time"] == 3.0
    # the schedule follows the time budget, not the 1000 epochs: the warmup (5 % of 3 s) is over
    # by epoch 2 (by iterations it would still be at 3e-5), and the lr decays from there
    assert hist["lr"][1] > 3e-4 and hist["lr"][-1] <= hist["lr"][1]
    # a budget crossed within the first batch ends the epoch there
    _, short = fit("resnet", data, epochs=5, max_time=1e-3, **TINY)
    assert short["epoch"] == [1] and short["stop_reason"] == "max_time" and short["best_epoch"] == 1


def test_cpu_budget_clock_does_not_count_time_spent_waiting(data):
    """budget_clock='cpu' counts the CPU seconds of the process: a callback that sleeps 0.3 s per
    epoch (another job holding the core, as it were) uses no budget, so a 0.5 s CPU budget runs
    far longer than 0.5 s on the wall clock; 'wall' stops at the wall-clock budget."""
    def nap(epoch, net, logs):
        time.sleep(0.3)

    t0 = time.perf_counter()
    model, cpu = fit("resnet", data, epochs=6, max_time=0.5, budget_clock="cpu", patience=None,
                     callbacks=[nap], **TINY)
    waited = time.perf_counter() - t0
    _, wall = fit("resnet", data, epochs=6, max_time=0.5, patience=None, callbacks=[nap], **TINY)
    assert len(cpu["epoch"]) > len(wall["epoch"]) and waited > 0.3 * len(cpu["epoch"])
    assert model.card["training"]["budget"]["clock"] == "cpu"
    with pytest.raises(ParameterError, match="budget_clock"):
        fit("resnet", data, max_time=1.0, budget_clock="gpu", **TINY)


def test_resume_mid_run_with_the_new_recipe(tmp_path, long_data):
    def nan_once(epoch, net, logs):  # a guard restore before the interruption
        if epoch == 1:
            with torch.no_grad():
                next(net.parameters()).fill_(float("nan"))

    def stop_after_second(epoch, net, logs):
        if epoch == 2:
            raise _Interrupt

    kw = dict(epochs=5, seed=2, noise=0.05, pushforward=1, rollout_steps=2, patience=None,
              **{k: v for k, v in TINY.items() if k != "rollout_steps"})
    full, hfull = fit("resnet", long_data, checkpoint_dir=tmp_path / "full",
                      callbacks=[nan_once], **kw)
    with pytest.raises(_Interrupt):
        fit("resnet", long_data, checkpoint_dir=tmp_path / "run",
            callbacks=[nan_once, stop_after_second], **kw)
    resumed, hres = fit("resnet", long_data, checkpoint_dir=tmp_path / "run", **kw)
    assert hres == hfull and [r["epoch"] for r in hfull["restored"]] == [2]
    assert _same(_weights(resumed), _weights(full))
    assert hfull["rollout"] == [1, 1, 1, 2, 2]  # 1 + floor((e - 1) / 5 / 0.5)
    # another recipe is another run
    with pytest.raises(CheckpointError, match="recipe"):
        fit("resnet", long_data, checkpoint_dir=tmp_path / "run", **{**kw, "noise": 0.1})


def test_states_saved_before_the_recipe_still_resume(tmp_path, data):
    legacy = dict(epochs=3, patience=None, schedule="exponential", optimizer="adam",
                  clip_grad=None, curriculum=0, **TINY)

    def stop_after_first(epoch, net, logs):
        if epoch == 1:
            raise _Interrupt

    full, _ = fit("resnet", data, checkpoint_dir=tmp_path / "full", **legacy)
    with pytest.raises(_Interrupt):
        fit("resnet", data, checkpoint_dir=tmp_path / "run", callbacks=[stop_after_first], **legacy)
    path = tmp_path / "run" / STATE_FILE
    st = torch.load(path, weights_only=True)
    for key in ("recipe", "best_optimizer", "lr_scale", "elapsed"):
        del st[key]
    h = json.loads(st["history"])
    st["history"] = json.dumps({k: h[k] for k in ("epoch", "train_loss", "val_loss", "lr",
                                                  "best_epoch", "best_val_loss", "stopped_early")})
    torch.save(st, path)
    with pytest.raises(CheckpointError, match="different run"):
        fit("resnet", data, checkpoint_dir=tmp_path / "run", **{**legacy, "optimizer": "adamw"})
    resumed, hist = fit("resnet", data, checkpoint_dir=tmp_path / "run", **legacy)
    assert hist["epoch"] == [1, 2, 3] and _same(_weights(resumed), _weights(full))


@pytest.mark.parametrize("kwargs, match", [
    ({"schedule": "linear"}, "schedule must be one of"),
    ({"optimizer": "sgd"}, "optimizer must be one of"),
    ({"clip_grad": 0}, "clip_grad"),
    ({"curriculum": 1.5}, "curriculum"),
    ({"noise": -0.1}, "noise"),
    ({"pushforward": -1}, "pushforward"),
    ({"guard": 0.5}, "guard"),
    ({"max_time": 0}, "max_time"),
    ({"warmup": 0.9}, "warmup"),
    ({"val_steps": 50}, "val_steps=50"),
])
def test_recipe_settings_are_checked(data, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        fit("resnet", data, epochs=1, **TINY, **kwargs)
