"""Tests of xequi.windows: window plans, extraction, stitching, the training dataset, splits."""

from __future__ import annotations

import doctest
import sys
import types

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import xequi.windows as windows
from xequi.errors import GridError, ParameterError, XequiError
from xequi.windows import (
    WindowDataset,
    extract,
    iter_windows,
    plan_windows,
    split_by_time,
    stitch,
)

DIMS = ("time", "channel", "y", "x")


def frame(ny, nx, nt=2, nc=2, seed=0, dims=DIMS):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((nt, nc, ny, nx)).astype("float32")
    return xr.DataArray(
        data, dims=dims, name="w", attrs={"units": "m s-1"},
        coords={dims[0]: np.arange(nt), dims[2]: np.linspace(0, 1, ny),
                dims[3]: np.arange(nx) * 2.0},
    )


def rot_rects(rects, n):
    """Rectangles [y0, y1, x0, x1) after np.rot90 (counter-clockwise) of an n x n domain."""
    return {(n - x1, n - x0, y0, y1) for y0, y1, x0, x1 in map(tuple, rects)}


# ------------------------------------------------------------------------------------------
# round trips and coverage
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(200, 333), (128, 128), (64, 64), (65, 130), (30, 20)])
@pytest.mark.parametrize("periodic", [(False, False), (True, False), (False, True), (True, True)])
def test_identity_round_trip_is_exact(shape, periodic):
    da = frame(*shape)
    spec = plan_windows(da, window=(64, 64), periodic=periodic)
    rects = spec.rectangles()
    covered = np.zeros(shape, dtype=bool)
    for y0, y1, x0, x1 in rects:
        covered[max(y0, 0):y1, max(x0, 0):x1] = True
    assert covered.all()
    # padding split evenly on both sides
    assert all(b == a for b, a in spec.pad_width)
    win = extract(da, spec)
    assert win.shape == (spec.n_windows, 2, 2, 64, 64) and win.dtype == np.float32
    out = stitch(win, spec)
    assert out.dims == da.dims and out.name == "w" and out.attrs == da.attrs
    np.testing.assert_array_equal(out.values, da.values)  # bit-for-bit
    xr.testing.assert_identical(out, da)


@pytest.mark.parametrize("overlap", [0, 7, 16, (6, 11)])
@pytest.mark.parametrize("pad", [True, False])
def test_round_trip_overlaps_and_no_padding(overlap, pad):
    da = frame(97, 150)
    spec = plan_windows(da, window=(32, 48), overlap=overlap, pad=pad)
    if not pad:
        r = spec.rectangles()
        assert r[:, 0].min() == 0 and r[:, 1].max() == 97 and r[:, 3].max() == 150
    np.testing.assert_array_equal(stitch(extract(da, spec), spec).values, da.values)


def test_blend_round_trip_and_weights():
    da = frame(90, 70)
    spec = plan_windows(da, window=32, overlap=12, mode="blend", periodic=(True, False))
    out = stitch(extract(da, spec), spec)
    np.testing.assert_allclose(out.values, da.values, rtol=1e-6, atol=1e-6)
    for axis in (0, 1):  # the per-axis weights of all windows sum to one at every cell
        starts, lo, hi, wts = spec._axis_weights(axis)
        total = np.zeros(spec.shape[axis])
        for a, l, h, wt in zip(starts, lo, hi, wts):
            total[a + l:a + h] += wt
        np.testing.assert_allclose(total, 1.0)


def test_pointwise_model_commutes_and_streaming():
    da = frame(200, 333, nt=3)
    spec = plan_windows(da, window=64, overlap=16, periodic=(False, True))
    f = lambda x: x * 2 + 1  # noqa: E731
    streamed = stitch(((f(b), i) for b, i in iter_windows(da, spec, batch_size=7)), spec)
    np.testing.assert_array_equal(streamed.values, f(da).values)
    # torch outputs are accepted too
    import torch

    t = stitch(torch.from_numpy(extract(da, spec)), spec)
    np.testing.assert_array_equal(t.values, da.values)


@pytest.mark.parametrize("mode", ["crop", "blend"])
def test_crop_ignores_garbage_at_window_edges(mode):
    """A model whose outer 3 cells are garbage (NaN) -- like a CNN's padding-corrupted border --
    leaves no trace with cropped centres and overlap 8 (each cell is >= 4 cells interior)."""
    da = frame(90, 121, nt=1)
    spec = plan_windows(da, window=32, overlap=8, mode=mode, periodic=(False, True))
    win = extract(da, spec)
    win[..., :3, :] = win[..., -3:, :] = win[..., :, :3] = win[..., :, -3:] = np.nan
    out = stitch(win, spec)
    if mode == "crop":
        np.testing.assert_array_equal(out.values, da.values)
    else:  # the taper gives the edges positive weight: NaN spreads (documented)
        assert np.isnan(out.values).any()


def test_other_dim_names_extra_leading_dims_and_new_leading_shape():
    da = frame(70, 90, dims=("t", "var", "lat", "lon")).expand_dims(member=3).copy()
    da = da + xr.DataArray(np.arange(3.0, dtype="float32"), dims="member")
    da = da.transpose("member", "t", "lat", "var", "lon")  # spatial dims not last
    spec = plan_windows(da, window=32, dims=("lat", "lon"))
    win = extract(da, spec)
    assert win.shape == (spec.n_windows, 3, 2, 2, 32, 32)  # (n, member, t, var, wy, wx)
    out = stitch(win, spec)
    assert out.dims == da.dims
    np.testing.assert_array_equal(out.values, da.values)
    # a model returning one step of one channel: leading shape differs from the input's
    one = stitch(win[:, :, :1, :1], spec, dims=("member", "lead_time", "var"))
    assert one.dims == ("member", "lead_time", "var", "lat", "lon")
    np.testing.assert_array_equal(one.values, da.transpose("member", "t", "var", "lat", "lon")
                                  .values[:, :1, :1])
    assert "lon" in one.coords and "t" not in one.coords


def test_numpy_input_and_shape_plan():
    x = np.random.default_rng(1).standard_normal((3, 45, 61)).astype("float32")
    spec = plan_windows(x.shape, window=16)
    out = stitch(extract(x, spec), spec)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, x)


def test_inputs_not_modified():
    da = frame(50, 60)
    before = da.copy(deep=True)
    spec = plan_windows(da, window=32)
    win = extract(da, spec)
    win += 1  # the windows are copies, not views into the data
    stitch(win, spec)
    xr.testing.assert_identical(da, before)


# ------------------------------------------------------------------------------------------
# rotation consistency (square domains)
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,window,overlap,pad", [
    (n, w, o, pad)
    for n in (64, 65, 100, 128, 129, 200, 31)
    for w, o in ((64, 16), (32, 0), (32, 5), (17, 4))
    for pad in (True, False)
    if pad or w <= n  # without padding the window must fit
])
def test_window_layout_invariant_under_rotation(n, window, overlap, pad):
    spec = plan_windows((n, n), window=window, overlap=overlap, pad=pad)
    rects = {tuple(r) for r in spec.rectangles()}
    assert rot_rects(rects, n) == rects


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 150), w=st.integers(1, 70), data=st.data(), pad=st.booleans())
def test_layout_properties(n, w, data, pad):
    """Any domain: rotation-invariant rectangles, full coverage, even padding and, with padding,
    every cell owned by a window in which it has >= overlap // 2 cells of context."""
    o = data.draw(st.integers(0, w - 1))
    if not pad and w > n:
        with pytest.raises(GridError):
            plan_windows((n, n), w, o, pad=pad)
        return
    spec = plan_windows((n, n), w, o, pad=pad)
    rects = {tuple(r) for r in spec.rectangles()}
    assert rot_rects(rects, n) == rects
    assert spec.pad_width[0][0] == spec.pad_width[0][1]
    assert spec.overlap[0] >= o and (not pad or spec.overlap[0] <= o + 1)
    starts, lo, hi, wts = spec._axis_weights(0)
    context = np.full(n, -1)
    for a, l, h, wt in zip(starts, lo, hi, wts):
        loc = np.arange(l, h)
        np.maximum.at(context, a + loc, np.minimum(loc, w - 1 - loc))
        assert np.all(wt > 0)
    assert context.min() >= (min(o // 2, (w - 1) // 2) if pad else 0)


def test_rectangular_layout_rotates_with_the_domain():
    a = plan_windows((70, 133), window=(32, 48), overlap=(8, 12))
    b = plan_windows((133, 70), window=(48, 32), overlap=(12, 8))  # the rotated domain
    rotated = {(133 - x1, 133 - x0, y0, y1) for y0, y1, x0, x1 in map(tuple, a.rectangles())}
    assert rotated == {tuple(r) for r in b.rectangles()}


def _window_model(w):
    """Rotation-equivariant but window-dependent 'model': Laplacian with zero padding at the
    window edge plus a radial weighting about the window centre."""
    wy, wx = w.shape[-2:]
    r = np.hypot(np.arange(wy)[:, None] - (wy - 1) / 2, np.arange(wx)[None, :] - (wx - 1) / 2)
    p = np.pad(w, [(0, 0)] * (w.ndim - 2) + [(1, 1), (1, 1)])
    lap = p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:] - 4 * w
    return (lap + w * (1 + r / wy)).astype(np.float32)


@pytest.mark.parametrize("n,mode", [(100, "crop"), (129, "crop"), (64, "crop"), (77, "blend")])
def test_forecast_commutes_with_rotation(n, mode):
    da = frame(n, n, nt=1, nc=1)
    x = da.values
    spec = plan_windows(x.shape, window=32, overlap=8, mode=mode, periodic=(True, False))
    forecast = stitch(_window_model(extract(x, spec)), spec)
    xr_ = np.rot90(x, 1, axes=(-2, -1)).copy()
    spec_r = plan_windows(xr_.shape, window=32, overlap=8, mode=mode, periodic=(False, True))
    forecast_r = stitch(_window_model(extract(xr_, spec_r)), spec_r)
    np.testing.assert_allclose(forecast_r, np.rot90(forecast, 1, axes=(-2, -1)), rtol=0, atol=1e-5)
    # the same model on an asymmetric (xbatcher-style, all padding at the end) layout would not
    # commute: check that the test can fail
    bad = np.pad(x, [(0, 0), (0, 0), (0, 32), (0, 32)], mode="reflect")[..., :((n + 31) // 32) * 32,
                                                                       :((n + 31) // 32) * 32]
    tiles = lambda a: _window_model(np.lib.stride_tricks.sliding_window_view(  # noqa: E731
        a, (32, 32), axis=(-2, -1))[..., ::32, ::32, :, :])
    t1 = tiles(bad)[..., 0, 0, :, :]
    bad_r = np.pad(xr_, [(0, 0), (0, 0), (0, 32), (0, 32)], mode="reflect")[..., :bad.shape[-2],
                                                                            :bad.shape[-1]]
    t2 = tiles(bad_r)
    rotated_corner = np.rot90(t2[..., -1, 0, :, :], -1, axes=(-2, -1))  # where tile (0, 0) went
    assert n % 32 == 0 or not np.allclose(t1, rotated_corner, atol=1e-5)


# ------------------------------------------------------------------------------------------
# xbatcher, dask and zarr
# ------------------------------------------------------------------------------------------
def test_windows_are_xbatchers_windows_of_the_padded_array():
    import xbatcher

    da = frame(70, 90, nt=1, nc=1)
    spec = plan_windows(da, window=32, overlap=8, periodic=(False, True))
    (py0, py1), (px0, px1) = spec.pad_width
    padded = np.pad(da.values, [(0, 0), (0, 0), (py0, py1), (0, 0)], mode="reflect")
    padded = np.pad(padded, [(0, 0), (0, 0), (0, 0), (px0, px1)], mode="wrap")
    pda = xr.DataArray(padded[0, 0], dims=("y", "x"))
    gen = xbatcher.BatchGenerator(pda, input_dims={"y": 32, "x": 32},
                                  input_overlap={"y": spec.overlap[0], "x": spec.overlap[1]})
    ours = extract(da, spec)[:, 0, 0]
    assert len(gen) == spec.n_windows
    for i in (0, 1, spec.grid[1], spec.n_windows - 1):
        np.testing.assert_array_equal(gen[i].values, ours[i])


def test_dask_and_zarr_inputs_give_the_same_windows(tmp_path):
    pytest.importorskip("dask")
    da = frame(100, 77, nt=3)
    spec = plan_windows(da, window=32, overlap=8, periodic=(True, False))
    ref = extract(da, spec)
    lazy = da.chunk({"time": 1, "y": 37, "x": 50})
    before = lazy.data.npartitions
    np.testing.assert_array_equal(extract(lazy, spec), ref)
    batches = list(iter_windows(lazy, spec, batch_size=5))
    np.testing.assert_array_equal(np.concatenate([b for b, _ in batches]), ref)
    assert lazy.data.npartitions == before  # not loaded / rechunked in place
    pytest.importorskip("zarr")
    da.to_dataset().to_zarr(tmp_path / "w.zarr", mode="w", consolidated=False)
    opened = xr.open_zarr(tmp_path / "w.zarr", consolidated=False)["w"]
    np.testing.assert_array_equal(extract(opened, spec), ref)


# ------------------------------------------------------------------------------------------
# WindowDataset and split_by_time
# ------------------------------------------------------------------------------------------
def test_split_by_time_ranges():
    tr, va, te = split_by_time(100, (0.7, 0.15, 0.15), t_in=4, t_out=2, gap=3)
    assert tr.start == 0 and te.stop == 100
    assert tr.stop + 3 == va.start and va.stop + 3 == te.start
    assert all(len(r) >= 6 for r in (tr, va, te))
    with pytest.raises(ParameterError, match="validation range along time"):
        split_by_time(20, (0.8, 0.1, 0.1), t_in=4, t_out=1)
    with pytest.raises(ParameterError, match="sum to 1"):
        split_by_time(20, (0.8, 0.1))


@pytest.mark.parametrize("gap", [0, 2])
def test_no_sample_crosses_a_split(gap):
    da = frame(40, 40, nt=50, nc=2)
    t_in, t_out = 5, 3
    splits = split_by_time(50, (0.6, 0.2, 0.2), t_in=t_in, t_out=t_out, gap=gap)
    used = []
    for rng in splits:
        ds = WindowDataset(da, t_in, t_out, window=20, time_index=rng)
        assert len(ds) == (len(rng) - t_in - t_out + 1) * 4
        steps = set()
        for i in range(len(ds)):
            info = ds.sample_info(i)
            assert info["time"].start >= rng.start and info["time"].stop <= rng.stop
            steps.update(info["time"])
        used.append(steps)
    assert not (used[0] & used[1]) and not (used[1] & used[2]) and not (used[0] & used[2])


def test_window_dataset_shapes_values_and_loader():
    import torch

    da = frame(48, 100, nt=12, nc=2)
    ds = WindowDataset(da, t_in=3, t_out=2, window=(32, 40), stride=(16, 30))
    assert ds.spec.grid == (2, 3)
    x, y = ds[7]
    assert x.shape == (3, 2, 32, 40) and y.shape == (2, 2, 32, 40) and x.dtype == torch.float32
    info = ds.sample_info(7)
    y0, y1, x0, x1 = info["rectangle"]
    t = info["time"]
    ref = da.values[t.start:t.stop, :, y0:y1, x0:x1]
    np.testing.assert_array_equal(torch.cat([x, y]).numpy(), ref)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    bx, by = next(iter(loader))
    assert bx.shape == (4, 3, 2, 32, 40) and by.shape == (4, 2, 2, 32, 40)
    # dask-backed data gives the same samples
    lazy = WindowDataset(da.chunk({"time": 4}), t_in=3, t_out=2, window=(32, 40), stride=(16, 30))
    for a, b in zip(lazy[7], ds[7]):
        assert torch.equal(a, b)


def test_window_dataset_extra_leading_dims_padding_and_pickle():
    import pickle

    import torch

    da = frame(20, 24, nt=6, nc=2).expand_dims(member=2).copy()
    da[1] += 10.0
    ds = WindowDataset(da, 2, 1, window=(20, 32), pad=True, periodic=(False, True))
    assert ds.spec.grid == (1, 1) and len(ds) == 2 * 4
    info = ds.sample_info(len(ds) - 1)
    assert tuple(info["lead"]) == (1,) and info["time"] == range(3, 6)
    x, y = ds[len(ds) - 1]
    assert x.shape == (2, 2, 20, 32) and float(x.mean()) > 5  # member 1
    # the padded columns wrap around (periodic x): column j of the window is x = (j - 4) % 24
    np.testing.assert_array_equal(x[0, 0, :, 0].numpy(), da.values[1, 3, 0, :, 20])
    clone = pickle.loads(pickle.dumps(ds))  # DataLoader workers receive a pickled copy
    assert all(torch.equal(a, b) for a, b in zip(clone[3], ds[3]))


def test_window_dataset_augmentation_deterministic(monkeypatch):
    import torch

    calls = []
    fake = types.SimpleNamespace(
        KINDS={"rot90": "rot90"},
        random_params=lambda kind, gen: {"k": int(gen.integers(0, 4))},
        apply=lambda x, kind, vector=(0, 1), **p: (calls.append((kind, p["k"])),
                                                   torch.rot90(x, p["k"], dims=(-2, -1)))[1],
    )
    monkeypatch.setitem(sys.modules, "xequi.symmetry", fake)
    da = frame(32, 32, nt=6, nc=2)
    a = WindowDataset(da, 2, 1, window=32, augment=["rot90"], seed=3)
    b = WindowDataset(da, 2, 1, window=32, augment=["rot90"], seed=3)
    for i in range(len(a)):
        for u, v in zip(a[i], b[i]):
            assert torch.equal(u, v)
    assert calls and all(kind == "rot90" for kind, _ in calls)
    # history and target get the same group element
    plain = WindowDataset(da, 2, 1, window=32)
    ks = {int(np.random.default_rng([3, 0, i]).integers(0, 4)) for i in range(len(a))}
    for i in range(len(a)):
        k = int(np.random.default_rng([3, 0, i]).integers(0, 4))
        assert torch.equal(a[i][1], torch.rot90(plain[i][1], k, dims=(-2, -1)))
    assert len(ks) >= 1
    a.set_epoch(1)  # another epoch draws differently but deterministically
    assert all(torch.equal(u, v) for u, v in zip(a[0], a[0]))


def test_window_dataset_with_real_symmetry_module():
    symmetry = pytest.importorskip("xequi.symmetry")
    import torch

    da = frame(16, 16, nt=5, nc=2)
    plain = WindowDataset(da, 2, 1, window=16)
    ds = WindowDataset(da, 2, 1, window=16, augment=["rot90"], seed=1)
    for i in range(len(ds)):
        x, y = ds[i]
        x2, y2 = WindowDataset(da, 2, 1, window=16, augment=["rot90"], seed=1)[i]
        assert torch.equal(x, x2) and torch.equal(y, y2)
        # one group element (vector channels rotated too) for history and target together
        px, py = plain[i]
        assert any(torch.equal(x, symmetry.rot90(px, k)) and torch.equal(y, symmetry.rot90(py, k))
                   for k in range(4))
    x, y = WindowDataset(da, 2, 1, window=16, augment=["um", "mag", "scale"], seed=2)[0]
    assert x.shape == (2, 2, 16, 16) and y.shape == (1, 2, 16, 16) and torch.isfinite(x).all()


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------
def test_errors_name_the_culprit_and_the_fix():
    da = frame(40, 50)
    with pytest.raises(ParameterError, match="window along 'x' must be positive") as e:
        plan_windows(da, window=(32, 0))
    assert "Fix:" in str(e.value)
    with pytest.raises(ParameterError, match="overlap along 'y'"):
        plan_windows(da, window=32, overlap=32)
    with pytest.raises(GridError, match="larger than the domain.*'y'|'y'.*larger") as e:
        plan_windows(da, window=64, pad=False)
    assert "pad=True" in str(e.value)
    with pytest.raises(ParameterError, match="mode"):
        plan_windows(da, mode="average")
    with pytest.raises(GridError, match="no dimension 'lat'"):
        plan_windows(da, dims=("lat", "lon"))
    spec = plan_windows(da, window=32)
    with pytest.raises(GridError, match="plan"):
        extract(frame(41, 50), spec)
    with pytest.raises(ParameterError, match="one entry per window"):
        stitch(np.zeros((spec.n_windows - 1, 2, 2, 32, 32), "float32"), spec)
    with pytest.raises(ParameterError, match="window"):
        stitch(np.zeros((spec.n_windows, 2, 2, 30, 32), "float32"), spec)
    with pytest.raises(ParameterError, match="no output for windows"):
        stitch([(np.zeros((1, 2, 2, 32, 32), "float32"), [0])], spec)
    with pytest.raises(ParameterError, match="'time'.*t_in \\+ t_out = 5") as e:
        WindowDataset(frame(32, 32, nt=4), t_in=3, t_out=2, window=32)
    assert isinstance(e.value, XequiError)
    with pytest.raises(GridError, match="'x'"):
        WindowDataset(frame(64, 30, nt=4), t_in=1, t_out=1, window=32)
    with pytest.raises(ParameterError, match="pairs"):
        stitch([np.zeros((2, 2, 32, 32), "float32")] * 2, spec)
    with pytest.raises(ParameterError, match="batch_size"):
        next(iter_windows(da, spec, batch_size=0))


def test_doctests():
    result = doctest.testmod(windows, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
