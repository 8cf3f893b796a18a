"""Diagnostics: energy spectra, spectrum errors, RMSE, anomaly correlation, forecast evaluation.

Two spectra, named differently on purpose (formulas and choices: ``docs/diagnostics.md``):

* :func:`spectrum` -- the oceanographic isotropic kinetic-energy spectrum
  ``E(k) = 1/2 sum_{|k| in shell} (|u_hat|^2 + |v_hat|^2)`` with ``u_hat = FFT2(u) / (nx ny)``,
  so that
  ``sum_k E(k) = 1/2 <u^2 + v^2>`` (Parseval; exact without window). Physical wavenumbers from the
  grid (:func:`xequi.fields.grid_spacing`), cycles per unit length by default. Returned values are
  *energy per bin*; ``density=True`` (or :func:`convert_spectrum`) gives the spectral density
  ``E / dk`` whose integral is the kinetic energy.
* :func:`tke_spectrum` -- the paper's (Wang, Walters & Yu 2021) spectrum of the turbulent
  kinetic-energy field ``1/2 (var_t u + var_t v)``: power of its 2-D FFT averaged in integer-radius
  bins (radius 0 dropped). :func:`ese` is the paper's energy spectrum error, the RMSE between the
  log10 of the predicted and true TKE spectra.

Errors: :func:`rmse` (a real root of the mean square; the paper's released code took none, see
``docs/science.md``, "Mistakes of the released code", item 2),
:func:`acc` (anomaly correlation), :func:`spectrum_error` (RMSE of log10 E(k) per frame).
:func:`evaluate` puts them together for a forecast ``(init_time, lead_time, y, x)`` aligned with a
truth dataset on ``valid_time``; :func:`persistence_forecast` builds the no-change reference in
the same layout. Inputs are never modified; user mistakes raise :mod:`xequi.errors` classes.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import xarray as xr

from xequi.errors import (
    GridError,
    MissingDataError,
    ParameterError,
    UnitsError,
    VariableNotFoundError,
)
from xequi.fields import (
    _units_mapping,
    check_real,
    find_axes,
    find_velocity,
    grid_spacing,
    parse_units,
)
from xequi.routing import as_dataset, restore
from xequi.units import registry

__all__ = [
    "METRICS",
    "spectrum",
    "convert_spectrum",
    "tke",
    "tke_spectrum",
    "log_spectrum_rmse",
    "spectrum_error",
    "resolved_k_max",
    "ese",
    "rmse",
    "acc",
    "persistence_forecast",
    "evaluate",
]

#: metrics understood by :func:`evaluate`

_DETRENDS = (None, "constant", "linear")
_LANDS = ("zero", "rectangle", "error")
_CONVENTIONS = {"cycles": "cycles per unit length", "radians": "radians per unit length"}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _cf(unit) -> str:
    s = f"{unit:cf}"
    return "1" if s in ("", "dimensionless") else s


def _units_of(da: xr.DataArray):
    """pint Unit of a variable, or None when it has no units attribute."""
    u = da.attrs.get("units")
    if u is None:
        return None
    return parse_units(str(u), str(da.name))


def _factor(src, dst, name: str) -> float:
    """Multiplicative factor from unit src to dst (1 when either is unknown)."""
    if src is None or dst is None or src == dst:
        return 1.0
    try:
        return float(registry().Quantity(1.0, src).to(dst).magnitude)
    except Exception:
        raise UnitsError(f"units of {name!r} ({src}) cannot be converted to {dst}.",
                         fix=f"give {name!r} units of the same dimensionality") from None


def _spatial(obj, x=None, y=None):
    """(x_dim, y_dim) of obj, without looking at time-like axes."""
    ax = find_axes(obj, x=x, y=y)
    return ax.x, ax.y


def _spatial_grid(obj, x=None, y=None, units=None):
    """GridInfo of the spatial grid only (no time axis checks)."""
    xd, yd = _spatial(obj, x, y)
    if isinstance(obj, xr.Dataset):
        names = [n for n in obj.data_vars if {xd, yd} <= set(obj[n].dims)]
        if not names:
            raise VariableNotFoundError(f"no variable of the dataset has both dims {yd!r}, {xd!r}.",
                                        fix="pass a dataset with 2-D fields")
        obj = obj[names[0]]
    sub = obj.isel({d: 0 for d in obj.dims if d not in (xd, yd)}, drop=True)
    sub = sub.drop_vars([c for c in sub.coords if c not in (xd, yd)])
    units = _units_mapping(units)
    for d in (xd, yd):  # a dimension without coordinate: grid index, non-dimensional spacing 1
        if d not in sub.coords and d not in units:
            units[d] = "1"
    return grid_spacing(sub, x=xd, y=yd, units=units or None)


def _check_same_grid(a, b, xd, yd, what="forecast and truth"):
    for d in (xd, yd):
        if d not in a.dims or d not in b.dims:
            raise GridError(f"{what} do not share the spatial dimension {d!r} "
                            f"(dims {tuple(a.dims)} and {tuple(b.dims)}).",
                            fix="put both on the same grid with the same dimension names")
        if a.sizes[d] != b.sizes[d]:
            raise GridError(f"{what} have different sizes along {d!r}: {a.sizes[d]} and "
                            f"{b.sizes[d]}.", fix="regrid one onto the other (e.g. interp_like)")
        if d in a.coords and d in b.coords:
            ca, cb = np.asarray(a[d].values), np.asarray(b[d].values)
            same = np.array_equal(ca, cb) if not np.issubdtype(ca.dtype, np.floating) else \
                np.allclose(ca, cb, rtol=1e-9, atol=0)
            if not same:
                raise GridError(f"{what} have different {d!r} coordinates.",
                                fix="regrid one onto the other (e.g. forecast.interp_like(truth))")


def _velocity_units(ds, un, vn):
    """(unit of u, factor converting v to u's unit)."""
    uu, vu = _units_of(ds[un]), _units_of(ds[vn])
    if uu is None and vu is not None:
        uu = vu
    return uu, _factor(vu, uu, vn)


# ---------------------------------------------------------------------------------------------
# the KE spectrum
# ---------------------------------------------------------------------------------------------


def _largest_rectangle(ocean: np.ndarray) -> tuple[slice, slice]:
    """Largest all-True axis-aligned rectangle of a 2-D bool array (histogram method)."""
    ny, nx = ocean.shape
    heights = np.zeros(nx, dtype=int)
    best, best_rect = 0, (slice(0, 0), slice(0, 0))
    for i in range(ny):
        heights = np.where(ocean[i], heights + 1, 0)
        stack: list[int] = []
        for j in range(nx + 1):
            h = heights[j] if j < nx else 0
            while stack and heights[stack[-1]] >= h:
                height = heights[stack.pop()]
                left = stack[-1] + 1 if stack else 0
                area = height * (j - left)
                if area > best:
                    best, best_rect = area, (slice(i - height + 1, i + 1), slice(left, j))
            if j < nx:
                stack.append(j)
    return best_rect


def _window_2d(window, ny: int, nx: int) -> np.ndarray | None:
    if window is None:
        return None
    from scipy.signal import get_window

    try:
        wy = get_window(window, ny)  # periodic ("DFT-even") windows
        wx = get_window(window, nx)
    except Exception as err:
        raise ParameterError(f"unknown window {window!r} ({err}).",
                             fix="pass window=None, 'hann', 'tukey' or ('tukey', 0.5)") from None
    return np.outer(wy, wx)


def _detrend(a: np.ndarray, ocean: np.ndarray, kind) -> np.ndarray:
    """Remove the ocean-mean (constant) or the least-squares plane (linear) of each 2-D frame."""
    if kind is None:
        return a
    m = ocean.astype(float)
    if kind == "constant":
        n = m.sum(axis=(-2, -1), keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (a * m).sum(axis=(-2, -1), keepdims=True) / n
        return np.where(ocean, a - np.nan_to_num(mean), 0.0)
    ny, nx = a.shape[-2:]
    yy, xx = np.meshgrid(np.arange(ny) - (ny - 1) / 2, np.arange(nx) - (nx - 1) / 2, indexing="ij")
    basis = np.stack([np.ones_like(xx), xx, yy])  # (3, ny, nx)
    mb = m[..., None, :, :] * basis  # (..., 3, ny, nx)
    A = np.einsum("...iyx,jyx->...ij", mb, basis)
    b = np.einsum("...iyx,...yx->...i", mb, a)
    coef = np.einsum("...ij,...j->...i", np.linalg.pinv(A), b)
    plane = np.einsum("...i,iyx->...yx", coef, basis)
    return np.where(ocean, a - plane, 0.0)


def _shells(*comps, bins: np.ndarray, nbins: int, detrend, win):
    """Energy per shell of 1/2 sum |FFT(c)/N|^2 over components; batched over leading dims."""
    ocean = np.ones(comps[0].shape, dtype=bool)
    for c in comps:
        ocean &= np.isfinite(c)
    ny, nx = comps[0].shape[-2:]
    n = ny * nx
    w = np.ones((ny, nx)) if win is None else win
    norm = (w ** 2 * ocean).mean(axis=(-2, -1))  # window energy x ocean fraction
    power = np.zeros(comps[0].shape)
    for c in comps:
        c = np.where(ocean, c.astype(np.float64), 0.0)
        c = _detrend(c, ocean, detrend)
        ch = np.fft.fft2(c * w) / n
        power += 0.5 * (ch.real ** 2 + ch.imag ** 2)
    lead = power.shape[:-2]
    b = int(np.prod(lead)) if lead else 1
    flat = power.reshape(b, n)
    idx = bins.ravel()[None, :] + nbins * np.arange(b)[:, None]
    out = np.bincount(idx.ravel(), weights=flat.ravel(), minlength=b * nbins).reshape(*lead, nbins)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = out / np.asarray(norm)[..., None]
    return np.where(np.asarray(norm)[..., None] > 0, out, np.nan)


def spectrum(obj: xr.Dataset | xr.DataArray, u: str | None = None, v: str | None = None,
             detrend: str | None = None, window=None, land: str = "zero", density: bool = False,
             convention: str = "cycles", length_units: str | None = "m", dk: float | None = None,
             x: str | None = None, y: str | None = None,
             units: Mapping[str, str] | None = None) -> xr.DataArray:
    """Isotropic kinetic-energy spectrum E(k) over ``(..., wavenumber)``.

    ``E(k_n) = 1/2 sum_{(kx, ky) in shell n} (|u_hat|^2 + |v_hat|^2)``,
    ``u_hat = FFT2(u) / (nx ny)``,
    ``kx = fftfreq(nx, dx)``, ``ky = fftfreq(ny, dy)`` (physical, so dx != dy is handled). Shell
    ``n`` holds ``(n - 1/2) dk <= |k| < (n + 1/2) dk`` with ``dk = max(1/Lx, 1/Ly)``, ``L = n d``
    (the coarser fundamental, so no shell is empty); shells go up to the largest ``|k|`` (the
    grid's corners), shell 0 (the mean flow) is kept, so ``E.sum("wavenumber")`` equals the
    domain-mean kinetic energy ``1/2 <u^2 + v^2>`` exactly (without window). Every non-spatial dim
    (``time``, ``init_time``, ``lead_time``, ...) is kept. A DataArray gives ``1/2 |phi_hat|^2``
    (the spectrum of half its variance, e.g. one velocity component).

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Velocity dataset (components found with :func:`xequi.fields.find_velocity`), or one field.
    u, v : str, optional
        Velocity variable names.
    detrend : {None, "constant", "linear"}
        Remove, per frame and over ocean cells, the mean or the least-squares plane first.
    window : None, "hann", "tukey", ("tukey", alpha), ...
        Taper (scipy ``get_window``, outer product in y and x). The result is divided by
        ``mean(w^2)``, so Parseval holds on average for a homogeneous field.
    land : {"zero", "rectangle", "error"}
        NaN (land) handling: ``"zero"`` (default) sets land to 0 after detrending and divides by
        the ocean fraction, so the sum is the *ocean-mean* KE exactly; ``"rectangle"`` uses the
        largest ocean-only rectangle (land = NaN at any time/sample); ``"error"`` raises
        :class:`~xequi.errors.MissingDataError`. A frame with no ocean gives NaN.
    density : bool
        False: energy per bin (``sum = KE``). True: spectral density ``E / dk`` (``sum E dk = KE``).
    convention : {"cycles", "radians"}
        Wavenumber in cycles (``k = 1/wavelength``) or radians (``2 pi / wavelength``) per unit
        length. Energy per bin is the same; the density differs by the factor ``2 pi``.
    length_units : str or None, default "m"
        Length unit of the wavenumber (``"km"`` -> cycles per km); None keeps the grid's units.
        Ignored on non-dimensional grids.
    dk : float, optional
        Shell width in the output's wavenumber units (default as above).
    x, y : str, optional
        Spatial dimension names.
    units : mapping, optional
        Units of x/y coordinates that lack them (:func:`xequi.fields.grid_spacing`), e.g.
        ``{"x": "km", "y": "km"}``. A dimension without any coordinate is a grid index
        (non-dimensional spacing 1).

    Returns
    -------
    xarray.DataArray
        Named ``"ke_spectrum"``, dims ``(*other dims, "wavenumber")``; coordinate ``n_modes``
        (FFT modes per shell); attrs ``units`` (velocity units squared, times length for a
        density), ``spectral_convention``, ``wavenumber_bin_width``, ``land``, ``detrend``,
        ``window``; the wavenumber's attrs ``units`` and ``convention``.

    Raises
    ------
    VariableNotFoundError
        No velocity (Dataset) or no X/Y axis.
    GridError, UnitsError
        Non-uniform grid, missing coordinate units.
    ParameterError
        Unknown ``detrend``, ``window``, ``land`` or ``convention``.
    MissingDataError
        NaN with ``land="error"``, or no ocean-only rectangle.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = np.arange(16) * 1000.0
    >>> c = {"x": ("x", x, {"units": "m"}), "y": ("y", x, {"units": "m"})}
    >>> ds = xr.Dataset({"u": (("y", "x"), np.cos(2 * np.pi * 3 * x / 16000)[None, :]
    ...                       * np.ones((16, 1)), {"units": "m s-1"}),
    ...                  "v": (("y", "x"), np.zeros((16, 16)), {"units": "m s-1"})}, coords=c)
    >>> E = spectrum(ds)
    >>> float(E.sum()), float(E.wavenumber[int(np.argmax(E.values))] * 16000), E.attrs["units"]
    (0.25, 3.0, 'm2 s-2')
    """
    _check_spectrum_choices(detrend, land, convention)
    comps, uu, what = _spectrum_fields(obj, u, v)
    xd, yd = _spatial(obj, x, y)
    grid = _spatial_grid(obj, xd, yd, units)
    comps = [c.astype(np.float64) if c.dtype.kind != "f" or c.dtype.itemsize < 8 else c
             for c in comps]
    comps = _handle_land(comps, land, grid, xd, yd)
    ny, nx = comps[0].sizes[yd], comps[0].sizes[xd]
    shells = _wavenumber_shells(grid, ny, nx, convention, length_units, dk)
    win = _window_2d(window, ny, nx)
    out = xr.apply_ufunc(
        _shells, *comps, input_core_dims=[[yd, xd]] * len(comps),
        output_core_dims=[["wavenumber"]], dask="parallelized", output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"wavenumber": shells.nbins}},
        kwargs={"bins": shells.bins, "nbins": shells.nbins, "detrend": detrend, "win": win},
        keep_attrs=False)
    out = out.drop_vars([c for c in out.coords if set(out[c].dims) & {xd, yd}])
    klabel = _CONVENTIONS[convention]
    kunits = _cf(shells.length_unit ** -1) if not shells.dimless else "1"
    out = out.assign_coords(
        wavenumber=("wavenumber", np.arange(shells.nbins) * shells.width,
                    {"long_name": "isotropic wavenumber (shell centre)", "units": kunits,
                     "convention": klabel}),
        n_modes=("wavenumber", np.bincount(shells.bins.ravel(), minlength=shells.nbins),
                 {"long_name": "number of FFT modes in the shell"}))
    eunits = uu ** 2 if uu is not None else None
    if density:
        out = out / shells.width
        eunits = eunits * shells.length_unit if eunits is not None else None
    out.attrs = _spectrum_attrs(what, shells, klabel, density, land, detrend, window, grid,
                                eunits)
    return out.rename("ke_spectrum" if isinstance(obj, xr.Dataset) else "spectrum")


def _check_spectrum_choices(detrend, land, convention) -> None:
    if detrend not in _DETRENDS:
        raise ParameterError(f"detrend must be one of {_DETRENDS}, got {detrend!r}.",
                             fix="pass detrend=None, 'constant' or 'linear'")
    if land not in _LANDS:
        raise ParameterError(f"land must be one of {_LANDS}, got {land!r}.",
                             fix="pass land='zero' (fill) or land='rectangle' (crop)")
    if convention not in _CONVENTIONS:
        raise ParameterError(f"convention must be 'cycles' or 'radians', got {convention!r}.",
                             fix="pass convention='cycles' (1/wavelength) or 'radians'")


def _spectrum_fields(obj, u, v):
    """``(fields, their units, what the spectrum is of)``: the velocity components (v in u's
    units) of a Dataset, or the one field of a DataArray."""
    if isinstance(obj, xr.Dataset):
        un, vn = find_velocity(obj, u=u, v=v)
        check_real(obj, (un, vn))
        uu, fv = _velocity_units(obj, un, vn)
        comps = [obj[un], obj[vn] * fv if fv != 1.0 else obj[vn]]
        return comps, uu, f"kinetic energy of ({un}, {vn})"
    if isinstance(obj, xr.DataArray):
        check_real(obj)
        return [obj], _units_of(obj), f"half variance of {obj.name or 'the field'}"
    raise ParameterError(f"spectrum needs an xarray Dataset or DataArray, got "
                         f"{type(obj).__name__}.", fix="wrap the data in xarray")


def _handle_land(comps: list, land: str, grid, xd, yd) -> list:
    """NaN handling of ``land=``: refuse (``"error"``), crop to the largest ocean-only rectangle
    (``"rectangle"``), or leave to :func:`_shells` (``"zero"``)."""
    other = [d for d in comps[0].dims if d not in (xd, yd)]
    anymiss = any(bool((~np.isfinite(c)).any()) for c in comps)
    if anymiss and land == "error":
        raise MissingDataError(f"the fields have NaN/inf values (land?) along {yd!r}, {xd!r}.",
                               fix="pass land='zero' (fill after the mask) or land='rectangle'")
    if anymiss and land == "rectangle":
        ocean = np.ones((grid.ny, grid.nx), dtype=bool)
        for c in comps:
            ocean &= np.isfinite(c).all(dim=other).transpose(yd, xd).values
        sy, sx = _largest_rectangle(ocean)
        if sy.stop - sy.start < 2 or sx.stop - sx.start < 2:
            raise MissingDataError("no ocean-only rectangle of at least 2 x 2 cells exists.",
                                   fix="use land='zero', or select a region with more ocean")
        comps = [c.isel({yd: sy, xd: sx}) for c in comps]
    return comps


class _ShellLayout(NamedTuple):
    """The isotropic wavenumber shells of an ``ny`` × ``nx`` grid."""

    bins: np.ndarray  # (ny, nx): shell of each FFT mode
    nbins: int
    width: float  # shell width, in the output's wavenumber units
    length_unit: Any  # pint Unit of the spacings (after ``length_units``)
    dimless: bool  # non-dimensional grid
    dx: float
    dy: float
    scale: float  # 2 pi for radians, 1 for cycles


def _wavenumber_shells(grid, ny: int, nx: int, convention: str, length_units,
                       dk) -> _ShellLayout:
    """Shell ``n`` holds ``(n - 1/2) dk <= |k| < (n + 1/2) dk`` over the grid's FFT modes."""
    ureg = registry()
    dxq, dyq = grid.dx, grid.dy
    dimless = dxq.dimensionality == ureg.Quantity(1, "1").dimensionality
    if not dimless and length_units is not None:
        lu = parse_units(length_units, "length_units", "length")
        dxq, dyq = dxq.to(lu), dyq.to(lu)
    dxm, dym = float(dxq.magnitude), float(dyq.magnitude)
    kx = np.fft.fftfreq(nx, dxm)
    ky = np.fft.fftfreq(ny, dym)
    scale = 2 * math.pi if convention == "radians" else 1.0
    kmag = np.hypot(ky[:, None], kx[None, :]) * scale
    width = float(dk) if dk is not None else max(1.0 / (nx * dxm), 1.0 / (ny * dym)) * scale
    if not width > 0:
        raise ParameterError(f"dk must be > 0, got {dk}.", fix="pass a positive shell width")
    bins = np.floor(kmag / width + 0.5).astype(int)
    return _ShellLayout(bins, int(bins.max()) + 1, width, dxq.units, dimless, dxm, dym, scale)


def _spectrum_attrs(what: str, shells: _ShellLayout, klabel: str, density: bool, land, detrend,
                    window, grid, eunits) -> dict:
    attrs = {
        "long_name": f"isotropic spectrum of the {what}",
        "spectral_convention": ("spectral density: sum(E) * wavenumber_bin_width = KE" if density
                                else "energy per wavenumber bin: sum(E) = domain-mean KE"),
        "wavenumber_bin_width": shells.width,
        "wavenumber_convention": klabel,
        # shells beyond the smaller axis Nyquist wavenumber are only partly filled (grid corners)
        "nyquist_wavenumber": min(0.5 / shells.dx, 0.5 / shells.dy) * shells.scale,
        "normalization": "u_hat = fft2(u) / (nx * ny); E = 0.5 * sum_shell |u_hat|^2 + |v_hat|^2",
        "land": land,
        "detrend": str(detrend),
        "window": str(window),
    }
    if grid.is_latlon:
        attrs["grid_approximation"] = (f"lat/lon grid: dx = R cos(lat0) dlon at the central "
                                       f"latitude lat0 = {grid.central_lat:.4g} degrees_north")
    if eunits is not None:
        attrs["units"] = _cf(eunits)
    return attrs


def convert_spectrum(E: xr.DataArray, to: str) -> xr.DataArray:
    """Convert a :func:`spectrum` result between energy per bin and spectral density.

    Parameters
    ----------
    E : xarray.DataArray
        Output of :func:`spectrum` (uses its ``wavenumber_bin_width`` attribute).
    to : {"density", "energy"}

    Returns
    -------
    xarray.DataArray
        ``E / dk`` (density) or ``E * dk`` (energy per bin), attrs updated.

    Raises
    ------
    ParameterError
        Unknown ``to``, or E is not a :func:`spectrum` result.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.random.default_rng(0).standard_normal((8, 8)), dims=("y", "x"))
    >>> E = spectrum(da)
    >>> D = convert_spectrum(E, "density")
    >>> bool(np.isclose(float((D * D.attrs["wavenumber_bin_width"]).sum()), float(E.sum())))
    True
    """
    if to not in ("density", "energy"):
        raise ParameterError(f"to must be 'density' or 'energy', got {to!r}.",
                             fix="pass to='density' or to='energy'")
    if "wavenumber_bin_width" not in E.attrs:
        raise ParameterError("E has no 'wavenumber_bin_width' attribute; it is not a spectrum() "
                             "result.", fix="compute it with xequi.diagnostics.spectrum")
    is_density = E.attrs.get("spectral_convention", "").startswith("spectral density")
    width = float(E.attrs["wavenumber_bin_width"])
    if (to == "density") == is_density:
        return E.copy()
    out = E / width if to == "density" else E * width
    out.attrs = dict(E.attrs)
    out.attrs["spectral_convention"] = (
        "spectral density: sum(E) * wavenumber_bin_width = KE" if to == "density"
        else "energy per wavenumber bin: sum(E) = domain-mean KE")
    if "units" in E.attrs and "units" in E.wavenumber.attrs and E.wavenumber.attrs["units"] != "1":
        ureg = registry()
        lu = ureg.Unit(E.wavenumber.attrs["units"]) ** -1
        eu = ureg.Unit(E.attrs["units"])
        out.attrs["units"] = _cf(eu * lu if to == "density" else eu / lu)
    return out


# ---------------------------------------------------------------------------------------------
# the paper's TKE spectrum and ESE
# ---------------------------------------------------------------------------------------------


def _time_like(obj, dim):
    if dim is not None:
        if dim not in obj.dims:
            raise VariableNotFoundError(f"dim={dim!r} is not a dimension (dims: "
                                        f"{tuple(obj.dims)}).",
                                        fix="pass dim= the frame dimension, e.g. 'lead_time'")
        return dim
    if "lead_time" in obj.dims:
        return "lead_time"
    try:
        t = find_axes(obj).t
    except Exception:
        t = None
    if t is None:
        raise VariableNotFoundError(f"no time-like dimension among {tuple(obj.dims)}.",
                                    fix="pass dim= the dimension of the predicted frames")
    return t


def tke(ds: xr.Dataset, dim: str | None = None, u: str | None = None,
        v: str | None = None) -> xr.DataArray:
    """Turbulent kinetic energy field ``1/2 (var_dim(u) + var_dim(v))`` per pixel (ddof=0).

    Parameters
    ----------
    ds : xarray.Dataset
    dim : str, optional
        Frame dimension (default ``lead_time`` if present, else the time axis).
    u, v : str, optional
        Velocity names.

    Returns
    -------
    xarray.DataArray
        Named ``"tke"``, units velocity squared; NaN where a pixel has a NaN frame. A variance
        below ``1e-12`` of the mean square (round-off of identical frames) is set to 0.

    Raises
    ------
    VariableNotFoundError

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"u": (("time", "y", "x"),
    ...                        np.array([1., -1.]).reshape(2, 1, 1) * np.ones((2, 2, 2))),
    ...                  "v": (("time", "y", "x"), np.zeros((2, 2, 2)))})
    >>> float(tke(ds).mean())
    0.5
    """
    un, vn = find_velocity(ds, u=u, v=v)
    d = _time_like(ds[un], dim)
    uu, fv = _velocity_units(ds, un, vn)
    parts = []
    for c in (ds[un], ds[vn] * fv if fv != 1.0 else ds[vn]):
        var = c.var(d, skipna=False)
        # constant frames (persistence) give round-off variances ~1e-33: make them exactly 0
        parts.append(var.where(~(var <= 1e-12 * (c ** 2).mean(d, skipna=False)), 0.0))
    out = 0.5 * (parts[0] + parts[1])
    out.attrs = {"long_name": f"turbulent kinetic energy over {d!r}"}
    if uu is not None:
        out.attrs["units"] = _cf(uu ** 2)
    return out.rename("tke")


def _radial_mean(f, *, rbins, nb):
    ocean = np.isfinite(f)
    ny, nx = f.shape[-2:]
    valid = ocean.any(axis=(-2, -1))
    g = np.where(ocean, f, 0.0)
    p = np.abs(np.fft.fft2(g) / (ny * nx)) ** 2
    lead = p.shape[:-2]
    b = int(np.prod(lead)) if lead else 1
    idx = rbins.ravel()[None, :] + nb * np.arange(b)[:, None]
    s = np.bincount(idx.ravel(), weights=p.reshape(b, -1).ravel(), minlength=b * nb)
    cnt = np.bincount(rbins.ravel(), minlength=nb)
    out = s.reshape(*lead, nb) / np.maximum(cnt, 1)
    return np.where(valid[..., None], out, np.nan)[..., 1:]


def tke_spectrum(ds: xr.Dataset, dim: str | None = None, u: str | None = None,
                 v: str | None = None, x: str | None = None, y: str | None = None) -> xr.DataArray:
    """The paper's TKE spectrum: radially averaged power of the FFT of the TKE field.

    Per sample (every dim other than ``dim`` and the spatial dims), the TKE field
    ``T = 1/2 (var_dim(u) + var_dim(v))`` (see :func:`tke`), its power ``|FFT2(T) / (nx ny)|^2``,
    averaged over the modes whose index radius ``r = sqrt(i^2 + j^2)`` (signed FFT indices, so in
    cycles per domain length along each axis) satisfies ``n <= r < n + 1``; ``n = 0`` dropped.
    Land (NaN at any frame) is set to 0.

    Parameters
    ----------
    ds : xarray.Dataset
    dim : str, optional
        Frame dimension (default ``lead_time`` if present, else the time axis).
    u, v, x, y : str, optional
        Variable and dimension names.

    Returns
    -------
    xarray.DataArray
        Named ``"tke_spectrum"``, dims ``(*samples, "wavenumber")``, wavenumber = integer radius
        1, 2, ... (attrs ``units: "1"``, ``convention``); units velocity to the 4th power.

    Raises
    ------
    VariableNotFoundError

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> ds = xr.Dataset({n: (("lead_time", "y", "x"), rng.standard_normal((3, 8, 8)))
    ...                  for n in "uv"})
    >>> S = tke_spectrum(ds)
    >>> S.dims, int(S.wavenumber[0])
    (('wavenumber',), 1)
    """
    T = tke(ds, dim=dim, u=u, v=v)
    xd, yd = _spatial(T, x, y)
    ny, nx = T.sizes[yd], T.sizes[xd]
    iy, ix = np.fft.fftfreq(ny) * ny, np.fft.fftfreq(nx) * nx
    rbins = np.floor(np.hypot(iy[:, None], ix[None, :]) + 1e-9).astype(int)
    nb = int(rbins.max()) + 1
    out = xr.apply_ufunc(_radial_mean, T, input_core_dims=[[yd, xd]],
                         output_core_dims=[["wavenumber"]], dask="parallelized",
                         output_dtypes=[np.float64],
                         dask_gufunc_kwargs={"output_sizes": {"wavenumber": nb - 1}},
                         kwargs={"rbins": rbins, "nb": nb})
    out = out.drop_vars([c for c in out.coords if set(out[c].dims) & {xd, yd}])
    out = out.assign_coords(wavenumber=("wavenumber", np.arange(1, nb), {
        "long_name": "integer radius of the 2-D FFT index", "units": "1",
        "convention": "cycles per domain length (index radius, floor), radius 0 dropped"}))
    out.attrs = {"long_name": "radially averaged power spectrum of the TKE field "
                              "(Wang et al. 2021)",
                 "normalization": "|fft2(tke) / (nx * ny)|^2 averaged per integer radius"}
    if "units" in T.attrs:
        out.attrs["units"] = _cf(registry().Unit(T.attrs["units"]) ** 2)
    return out.rename("tke_spectrum")


def _np_log10(a):
    with np.errstate(divide="ignore", invalid="ignore"):  # log10(0) = -inf is meant here
        return np.log10(a)


def _log10(da: xr.DataArray) -> xr.DataArray:
    """log10 that stays quiet about zeros also when dask computes it later, chunk by chunk."""
    return xr.apply_ufunc(_np_log10, da, dask="parallelized", output_dtypes=[da.dtype],
                          keep_attrs=True)


def log_spectrum_rmse(pred: xr.DataArray, true: xr.DataArray, dim: str = "wavenumber",
                      drop_zero: bool = True) -> xr.DataArray:
    """RMSE between log10 spectra: ``sqrt(mean_k (log10 P(k) - log10 T(k))^2)``.

    Bins where either spectrum is negative or NaN, or both are 0, are skipped; a bin where
    exactly one is 0 is an infinite log error, so the result is ``inf`` (e.g. the ESE of a
    forecast without variability). ``drop_zero`` skips the wavenumber-0 bin (the mean flow).

    Parameters
    ----------
    pred, true : xarray.DataArray
        Spectra on the same wavenumbers.
    dim : str
    drop_zero : bool

    Returns
    -------
    xarray.DataArray
        In decades (units ``"1"``), over the remaining dims.

    Raises
    ------
    GridError
        Different wavenumbers.

    Examples
    --------
    >>> import xarray as xr
    >>> k = {"wavenumber": [0., 1., 2.]}
    >>> p = xr.DataArray([5., 10., 1.], dims="wavenumber", coords=k)
    >>> t = xr.DataArray([1., 1., 1.], dims="wavenumber", coords=k)
    >>> round(float(log_spectrum_rmse(p, t)), 6)
    0.707107
    >>> float(log_spectrum_rmse(0 * p, t))
    inf
    """
    for s, nm in ((pred, "pred"), (true, "true")):
        if dim not in s.dims:
            raise VariableNotFoundError(f"{nm} has no {dim!r} dimension.", fix="pass dim=")
    if pred.sizes[dim] != true.sizes[dim] or (
            dim in pred.coords and dim in true.coords
            and not np.allclose(pred[dim].values, true[dim].values)):
        raise GridError("the two spectra have different wavenumbers.",
                        fix="compute both on the same grid with the same options")
    lp = _log10(pred.where(pred >= 0))
    lt = _log10(true.where(true >= 0))
    d2 = ((lp - lt) ** 2).where(~((pred == 0) & (true == 0)))
    if drop_zero and dim in d2.coords:
        d2 = d2.where(d2[dim] != 0)
    out = np.sqrt(d2.mean(dim, skipna=True))
    out.attrs = {"long_name": "RMSE of log10 spectra", "units": "1"}
    return out


def _mask_both(f: xr.Dataset, t: xr.Dataset, names, t_names=None):
    """Copies of f and t with NaN wherever either has NaN in any of names (common land).

    ``t_names``: the truth's names of the same variables, when they differ from ``names``.
    """
    bad = None
    for n, tn in zip(names, names if t_names is None else t_names):
        b = ~np.isfinite(f[n]) | ~np.isfinite(t[tn])
        bad = b if bad is None else bad | b
    return f.where(~bad), t.where(~bad)


def resolved_k_max(E: xr.DataArray) -> float:
    """The largest wavenumber shell of a :func:`spectrum` lying wholly inside the Nyquist circle.

    Shell ``n`` holds ``(n - 1/2) dk <= |k| < (n + 1/2) dk``; the resolved band ends at the last
    shell whose outer edge is at or below the smaller axis Nyquist wavenumber. The shell that
    straddles the Nyquist wavenumber holds only the Nyquist row/column of the 2-D spectrum (its
    cosine phase alone) and the grid corners: a spectral simulation's dealiasing or a smoothed
    product leaves it (nearly) empty -- 1e-14 of the peak in Rayleigh-Benard convection -- so
    its log error would measure that emptiness, not the forecast.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = xr.Dataset({n: (("y", "x"), np.random.default_rng(0).standard_normal((8, 8)))
    ...                 for n in "uv"})
    >>> E = spectrum(t)
    >>> E.attrs["nyquist_wavenumber"], resolved_k_max(E)
    (0.5, 0.375)
    """
    width = float(E.attrs["wavenumber_bin_width"])
    nyq = float(E.attrs["nyquist_wavenumber"])
    k = np.asarray(E["wavenumber"].values, dtype=float)
    inside = k[(k > 0) & (k + 0.5 * width <= nyq * (1 + 1e-9))]
    return float(inside.max()) if inside.size else float(k[k > 0].min())


def spectrum_error(forecast: xr.Dataset | xr.DataArray, truth: xr.Dataset | xr.DataArray,
                   u: str | None = None, v: str | None = None, k_max="nyquist",
                   **kwargs) -> xr.DataArray:
    """Kinetic-energy spectrum error: RMSE of ``log10 E(k)`` per frame (wavenumber 0 skipped).

    Both inputs get the union of their NaN masks, then :func:`spectrum` (``**kwargs``: detrend,
    window, land, ...) and :func:`log_spectrum_rmse`. Every non-spatial dim is kept (e.g.
    ``(init_time, lead_time)``).

    Parameters
    ----------
    forecast, truth : xarray.Dataset (velocity) or xarray.DataArray (one component)
        On the same grid, aligned frame by frame.
    u, v : str, optional
    k_max : "nyquist", float or None, default "nyquist"
        Compare shells up to this wavenumber only (in the spectrum's units). ``"nyquist"``: the
        resolved band, every shell wholly inside the smaller axis Nyquist wavenumber
        (:func:`resolved_k_max`) — the shell straddling it and those beyond hold only the
        Nyquist row and the corners of the 2-D spectrum, where a dealiased simulation or a
        smoothed product has almost no energy and the log error measures nothing but that gap.
        ``None``: every shell. The band used is stated in the result's ``band`` attribute.
    **kwargs
        Passed to :func:`spectrum`.

    Returns
    -------
    xarray.DataArray
        Decades (units ``"1"``), named ``"spectrum_error"``.

    Raises
    ------
    GridError, VariableNotFoundError

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(1)
    >>> t = xr.Dataset({n: (("y", "x"), rng.standard_normal((8, 8))) for n in "uv"})
    >>> float(spectrum_error(t, t))
    0.0
    >>> round(float(spectrum_error(t * 10, t)), 6)
    2.0
    """
    if isinstance(forecast, xr.DataArray) and isinstance(truth, xr.DataArray):
        rf, rt = as_dataset(forecast), as_dataset(truth)
        f, t = _mask_both(rf.ds, rt.ds, [rf.var], [rt.var])
        xd, yd = _spatial(truth)
        _check_same_grid(f, t, xd, yd)
        pf, pt = spectrum(restore(rf, f), **kwargs), spectrum(restore(rt, t), **kwargs)
    else:
        un, vn = find_velocity(truth, u=u, v=v)
        fun, fvn = find_velocity(forecast, u=un if un in forecast else None,
                                 v=vn if vn in forecast else None)
        xd, yd = _spatial(truth)
        _check_same_grid(forecast, truth, xd, yd)
        f = forecast[[fun, fvn]].rename({fun: un, fvn: vn}) if (fun, fvn) != (un, vn) \
            else forecast[[un, vn]]
        f, t = _mask_both(f, truth[[un, vn]], [un, vn])
        pf, pt = spectrum(f, u=un, v=vn, **kwargs), spectrum(t, u=un, v=vn, **kwargs)
    if isinstance(k_max, str):
        if k_max != "nyquist":
            raise ParameterError(f"k_max must be 'nyquist', a number or None, got {k_max!r}.",
                                 fix="pass k_max='nyquist' (default), a wavenumber, or None")
        k_max = resolved_k_max(pt)
    if k_max is not None:
        keep = pt["wavenumber"] <= float(k_max) * (1 + 1e-9)
        pf, pt = pf.isel(wavenumber=keep.values), pt.isel(wavenumber=keep.values)
    limit = "all shells" if k_max is None else f"shells up to k = {float(k_max):g}"
    return log_spectrum_rmse(pf, pt).rename("spectrum_error").assign_attrs(
        long_name=f"RMSE of log10 kinetic-energy spectra (wavenumber 0 skipped, {limit})",
        units="1", band=f"wavenumber 0 skipped, {limit}")


def ese(forecast: xr.Dataset, truth: xr.Dataset, dim: str | None = None, u: str | None = None,
        v: str | None = None, sample_dims: str | Sequence[str] | None = None) -> xr.DataArray:
    """The paper's energy spectrum error: RMSE of ``log10`` TKE spectra (:func:`tke_spectrum`).

    ``ESE = sqrt(mean_n (log10 S_pred(n) - log10 S_true(n))^2)``. With ``sample_dims`` the log10
    spectra are first averaged over those dims (e.g. ``"init_time"``), as the released evaluation
    code does (mean log-spectrum of the test set, then the RMSE); otherwise one ESE per sample.

    Parameters
    ----------
    forecast, truth : xarray.Dataset
        Same grid and frames (the truth already aligned with the forecast).
    dim : str, optional
        Frame dimension the TKE is computed over (default ``lead_time``, else time).
    u, v : str, optional
    sample_dims : str or sequence of str, optional
        Dims over which the log10 spectra are averaged before the RMSE.

    Returns
    -------
    xarray.DataArray
        Named ``"ese"``, decades (units ``"1"``), one value per remaining sample
        (e.g. per ``init_time``).

    Raises
    ------
    GridError, VariableNotFoundError

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(2)
    >>> t = xr.Dataset({n: (("time", "y", "x"), rng.standard_normal((4, 8, 8))) for n in "uv"})
    >>> round(float(ese(t * 10, t)), 6)  # TKE x 100, its power x 1e4
    4.0
    """
    un, vn = find_velocity(truth, u=u, v=v)
    fun, fvn = find_velocity(forecast, u=un if un in forecast else None,
                             v=vn if vn in forecast else None)
    f = forecast[[fun, fvn]].rename({fun: un, fvn: vn}) if (fun, fvn) != (un, vn) \
        else forecast[[un, vn]]
    xd, yd = _spatial(truth)
    _check_same_grid(f, truth, xd, yd)
    f, t = _mask_both(f, truth[[un, vn]], [un, vn])
    sf = tke_spectrum(f, dim=dim, u=un, v=vn)
    st = tke_spectrum(t, dim=dim, u=un, v=vn)
    if sample_dims is not None:
        sd = [sample_dims] if isinstance(sample_dims, str) else list(sample_dims)
        with np.errstate(divide="ignore", invalid="ignore"):
            sf = 10 ** _log10(sf.where(sf >= 0)).mean(sd)
            st = 10 ** _log10(st.where(st >= 0)).mean(sd)
    return log_spectrum_rmse(sf, st, drop_zero=False).rename("ese").assign_attrs(
        long_name="energy spectrum error: RMSE of log10 TKE spectra (Wang et al. 2021)",
        units="1")


# ---------------------------------------------------------------------------------------------
# RMSE and ACC
# ---------------------------------------------------------------------------------------------


def _pairs(forecast, truth, u, v):
    """[(output name, forecast DataArrays, truth DataArrays)]: per variable and the vector."""
    if isinstance(forecast, xr.DataArray) and isinstance(truth, xr.DataArray):
        return [(str(truth.name or "field"), [forecast], [truth])]
    if not (isinstance(forecast, xr.Dataset) and isinstance(truth, xr.Dataset)):
        raise ParameterError("forecast and truth must both be Datasets or both DataArrays.",
                             fix="pass matching xarray types")
    names = [n for n in truth.data_vars if n in forecast.data_vars
             and set(truth[n].dims) >= set(_spatial(truth))]
    if not names:
        raise VariableNotFoundError(
            f"forecast and truth share no 2-D variable (forecast: "
            f"{sorted(map(str, forecast.data_vars))}, truth: {sorted(map(str, truth.data_vars))}).",
            fix="give the forecast the truth's variable names")
    for n in names:
        for what, da in (("forecast", forecast[n]), ("truth", truth[n])):
            if not np.issubdtype(da.dtype, np.number) or np.issubdtype(da.dtype,
                                                                       np.complexfloating):
                raise ParameterError(f"variable {n!r} of the {what} is not real numeric "
                                     f"({da.dtype}): it cannot be scored.",
                                     fix=f"convert it, e.g. ds[{n!r}].astype('float64'), or "
                                         "drop it")
    out = [(n, [forecast[n]], [truth[n]]) for n in names]
    try:
        un, vn = find_velocity(truth, u=u, v=v)
    except (VariableNotFoundError, ParameterError):
        un = vn = None
    if un is not None and un in forecast and vn in forecast:
        out.append(("velocity", [forecast[un], forecast[vn]], [truth[un], truth[vn]]))
    return out


def _aligned_units(f: xr.DataArray, t: xr.DataArray):
    tu = _units_of(t)
    fu = _units_of(f)
    k = _factor(fu, tu, str(f.name))
    return (f * k if k != 1.0 else f), tu


def rmse(forecast: xr.Dataset | xr.DataArray, truth: xr.Dataset | xr.DataArray,
         dims: Sequence[str] | None = None, u: str | None = None, v: str | None = None,
         x: str | None = None, y: str | None = None) -> xr.Dataset | xr.DataArray:
    """Root-mean-square error over space: ``sqrt(mean((f - t)^2))``, land ignored.

    A real root (the paper's released code reported an MSE: ``docs/science.md``, item 2 of its
    released-code mistakes). The mean is over the cells
    where both are finite (NaN/inf = land, skipped); a frame with no valid cell gives NaN. For
    Datasets: one variable per shared data variable, plus ``velocity`` when a velocity pair is
    found: ``sqrt(1/2 mean(du^2 + dv^2))``, the RMS over both components (the paper's RMSE over
    channels). The forecast is converted to the truth's units when they differ.

    Parameters
    ----------
    forecast, truth : xarray.Dataset or xarray.DataArray
        Same grid; other dims broadcast (e.g. ``(init_time, lead_time)``).
    dims : sequence of str, optional
        Dims to average over (default the spatial X, Y dims).
    u, v, x, y : str, optional
        Velocity and spatial dimension names.

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        Units of the variable.

    Raises
    ------
    GridError
        Different grids.
    VariableNotFoundError
        No shared variable.
    UnitsError
        Incompatible units.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = xr.DataArray(np.zeros((2, 2)), dims=("y", "x"), attrs={"units": "m s-1"}, name="u")
    >>> f = xr.DataArray([[3., 3.], [np.nan, 3.]], dims=("y", "x"), attrs={"units": "m s-1"})
    >>> r = rmse(f, t)
    >>> float(r), r.attrs["units"]
    (3.0, 'm s-1')
    """
    xd, yd = _spatial(truth, x, y)
    _check_same_grid(forecast, truth, xd, yd)
    dims = [xd, yd] if dims is None else list(dims)
    out = {}
    for name, fs, ts in _pairs(forecast, truth, u, v):
        sq, valid = 0.0, True
        tu = None
        for f, t in zip(fs, ts):
            f, tu_i = _aligned_units(f, t)
            tu = tu or tu_i
            valid = valid & np.isfinite(f) & np.isfinite(t)
            sq = sq + (f - t) ** 2
        n = valid.sum(dims)
        mse = sq.where(valid, 0.0).sum(dims) / n.where(n > 0) / len(fs)
        r = np.sqrt(mse)
        r.attrs = {"long_name": f"root-mean-square error of {name}",
                   "cell_methods": f"{' '.join(dims)}: root_mean_square (land/NaN skipped)"}
        if tu is not None:
            r.attrs["units"] = _cf(tu)
        out[name] = r.rename(name)
    if isinstance(truth, xr.DataArray):
        return next(iter(out.values()))
    return xr.Dataset(out, attrs={"title": "RMSE"})


def acc(forecast: xr.Dataset | xr.DataArray, truth: xr.Dataset | xr.DataArray,
        climatology: xr.Dataset | xr.DataArray, dims: Sequence[str] | None = None,
        u: str | None = None, v: str | None = None) -> xr.Dataset | xr.DataArray:
    """Anomaly correlation coefficient ``sum f'a' / sqrt(sum f'^2 sum a'^2)`` over space.

    Anomalies ``f' = f - c``, ``a' = t - c`` relative to ``climatology`` (uncentred ACC); land
    skipped. ``velocity`` sums over both components.

    Parameters
    ----------
    forecast, truth : xarray.Dataset or xarray.DataArray
    climatology : same type, on the same grid (e.g. the truth's time mean)
    dims : sequence of str, optional
        Default: spatial dims.
    u, v : str, optional

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        Dimensionless (units ``"1"``).

    Raises
    ------
    GridError, VariableNotFoundError

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = xr.DataArray(np.arange(4.).reshape(2, 2), dims=("y", "x"), name="u")
    >>> float(acc(2 * t, t, climatology=xr.zeros_like(t)))
    1.0
    """
    xd, yd = _spatial(truth)
    _check_same_grid(forecast, truth, xd, yd)
    dims = [xd, yd] if dims is None else list(dims)
    if isinstance(climatology, xr.DataArray) and isinstance(truth, xr.Dataset):
        raise ParameterError("climatology must be a Dataset when truth is a Dataset.",
                             fix="pass e.g. truth.mean('time')")
    out = {}
    clim = climatology if isinstance(climatology, xr.Dataset) else None
    for name, fs, ts in _pairs(forecast, truth, u, v):
        num = sf = st = 0.0
        valid = True
        for f, t in zip(fs, ts):
            c = climatology if clim is None else clim[t.name]
            f, _ = _aligned_units(f, t)
            fa, ta = f - c, t - c
            valid = valid & np.isfinite(fa) & np.isfinite(ta)
            num, sf, st = num + fa * ta, sf + fa ** 2, st + ta ** 2
        z = (lambda a: a.where(valid, 0.0).sum(dims))
        den = np.sqrt(z(sf) * z(st))
        r = z(num) / den.where(den > 0)
        r.attrs = {"long_name": f"anomaly correlation coefficient of {name}", "units": "1"}
        out[name] = r.rename(name)
    if isinstance(truth, xr.DataArray):
        return next(iter(out.values()))
    return xr.Dataset(out)


# ---------------------------------------------------------------------------------------------
# forecasts: persistence and evaluation
# ---------------------------------------------------------------------------------------------


def _time_dim(ds, time):
    if time is not None:
        if time not in ds.dims:
            raise VariableNotFoundError(f"time={time!r} is not a dimension of the truth "
                                        f"(dims: {tuple(ds.dims)}).", fix="pass time= its name")
        return time
    t = find_axes(ds).t
    if t is None:
        raise VariableNotFoundError(f"the truth has no time dimension (dims: {tuple(ds.dims)}).",
                                    fix="pass time= the name of its time dimension")
    if t in ds.indexes and not ds.indexes[t].is_unique:
        dup = ds.indexes[t][ds.indexes[t].duplicated()][:3]
        raise GridError(f"the time coordinate {t!r} has duplicate values (e.g. "
                        f"{[str(d) for d in dup]}): times cannot be looked up.",
                        fix=f"drop the duplicates, e.g. ds.drop_duplicates({t!r})")
    return t


def _lead_units(ct: xr.DataArray) -> str | None:
    u = ct.attrs.get("units")
    if u is None:
        return None
    return str(u).split(" since ")[0].strip()


def persistence_forecast(ds: xr.Dataset, init_time, steps: int | None = None, lead_time=None,
                         time: str | None = None, variables: Sequence[str] | None = None
                         ) -> xr.Dataset:
    """The persistence (no-change) forecast: the frame at each init time, repeated.

    Same layout as a model forecast: dims ``(init_time, lead_time, <y>, <x>)``, ``lead_time``
    (timedelta64 for datetime times, numbers in the time unit otherwise, ``standard_name:
    forecast_period``), ``init_time`` (``forecast_reference_time``), ``valid_time(init_time,
    lead_time) = init_time + lead_time``. Valid times may lie beyond the dataset's end.

    Parameters
    ----------
    ds : xarray.Dataset
        Truth with a time dimension.
    init_time : scalar or array-like
        Initialization time(s), each present in ``ds``'s time coordinate.
    steps : int, optional
        Lead times ``dt, 2 dt, ..., steps dt`` with ``dt`` the dataset's time step.
    lead_time : array-like, optional
        Explicit lead times instead of ``steps`` (e.g. a model forecast's ``lead_time``).
    time : str, optional
        Time dimension name.
    variables : sequence of str, optional
        Variables to persist (default all data variables with the time dimension).

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    MissingDataError
        An init time is not in ``ds``.
    ParameterError
        Neither or both of ``steps`` and ``lead_time``, or steps < 1.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.datetime64("2020-01-01", "ns") + np.arange(5) * np.timedelta64(1, "h")
    >>> ds = xr.Dataset({"u": (("time", "y", "x"), np.random.rand(5, 2, 3))}, coords={"time": t})
    >>> p = persistence_forecast(ds, t[1:3], steps=2)
    >>> p.u.dims, str(p.valid_time.values[1, 1])[:19]
    (('init_time', 'lead_time', 'y', 'x'), '2020-01-01T04:00:00')
    """
    if not isinstance(ds, xr.Dataset):
        raise ParameterError(f"ds must be a Dataset, got {type(ds).__name__}.",
                             fix="pass a Dataset, e.g. da.to_dataset(name='u')")
    t = _time_dim(ds, time)
    ct = ds[t]
    if (steps is None) == (lead_time is None):
        raise ParameterError("pass exactly one of steps= and lead_time=.",
                             fix="e.g. steps=10, or lead_time=forecast.lead_time")
    if lead_time is None:
        if int(steps) < 1:
            raise ParameterError(f"steps must be >= 1, got {steps}.", fix="pass steps=1 or more")
        if ct.size < 2:
            raise GridError("the time coordinate has one value: no time step to make lead times.",
                            fix="pass lead_time= explicitly")
        dtv = (ct.values[1] - ct.values[0])
        leads = np.arange(1, int(steps) + 1) * dtv
    else:
        leads = np.asarray(getattr(lead_time, "values", lead_time))
        leads = np.atleast_1d(leads)
    inits = np.atleast_1d(np.asarray(getattr(init_time, "values", init_time)))
    if np.issubdtype(ct.dtype, np.datetime64):
        inits = inits.astype(ct.dtype)
    missing = [i for i in inits if i not in set(ct.values.tolist()) and not np.isin(i, ct.values)]
    if missing:
        raise MissingDataError(f"init time(s) {[str(m) for m in missing[:5]]} are not in the "
                               f"dataset's {t!r} coordinate.",
                               fix="choose init times among ds[time] values")
    names = list(variables) if variables is not None else \
        [n for n in ds.data_vars if t in ds[n].dims]
    frames = ds[names].sel({t: inits}).rename({t: "init_time"})
    frames = frames.drop_vars([c for c in frames.coords
                               if c != "init_time" and "init_time" in frames[c].dims])
    out = frames.expand_dims(lead_time=len(leads), axis=1).copy(deep=True)
    lead_attrs = {"standard_name": "forecast_period", "long_name": "lead time"}
    lu = _lead_units(ct)
    if lu and not np.issubdtype(leads.dtype, np.timedelta64):
        lead_attrs["units"] = lu
    init_attrs = {"standard_name": "forecast_reference_time", "long_name": "initialization time"}
    init_attrs.update({k: v for k, v in ct.attrs.items() if k == "units"})
    out = out.assign_coords(lead_time=("lead_time", leads, lead_attrs),
                            init_time=("init_time", inits, init_attrs))
    out = out.assign_coords(valid_time=out.init_time + out.lead_time)
    out["valid_time"].attrs = {"standard_name": "time", "long_name": "valid time"}
    if "units" in ct.attrs and not np.issubdtype(ct.dtype, np.datetime64):
        out["valid_time"].attrs["units"] = ct.attrs["units"]
    for n in names:
        out[n].attrs = dict(ds[n].attrs)
    out.attrs = {"title": "persistence forecast", "model": "persistence",
                 "comment": "the frame at init_time repeated for every lead time"}
    return out


def _valid_time(fc: xr.Dataset, init_dim, lead_dim):
    if "valid_time" in fc.coords:
        return fc["valid_time"]
    return (fc[init_dim] + fc[lead_dim]).rename("valid_time")


def _align_truth(fc, truth, tdim, init_dim, lead_dim, names):
    vt = _valid_time(fc, init_dim, lead_dim)
    have = truth[tdim].values
    flat = np.asarray(vt.values).ravel()
    if np.issubdtype(have.dtype, np.floating) and have.size > 1 and \
            np.issubdtype(flat.dtype, np.number):
        # Float time axes (non-dimensional simulations) are built by repeated addition, so a
        # valid time init + lead can differ from the truth's label in the last bits: match to the
        # nearest label within a millionth of the time step.
        order = np.argsort(have)
        srt = have[order]
        pos = np.clip(np.searchsorted(srt, flat), 1, srt.size - 1)
        near = np.where(np.abs(srt[pos - 1] - flat) <= np.abs(srt[pos] - flat), pos - 1, pos)
        tol = 1e-6 * float(np.median(np.abs(np.diff(srt))))
        ok = np.abs(srt[near] - flat) <= tol
        snapped = np.where(ok, srt[near], flat).reshape(np.shape(vt.values))
        vt = vt.copy(data=snapped)
        flat = snapped.ravel()
    miss = flat[~np.isin(flat, have)]
    if miss.size:
        first = [str(m) for m in np.unique(miss)[:5]]
        raise MissingDataError(
            f"{np.unique(miss).size} forecast valid time(s) are not in the truth's {tdim!r} "
            f"coordinate, e.g. {first} (truth covers {have.min()} .. {have.max()}).",
            fix="extend the truth to cover init_time + lead_time, or select fewer lead/init "
                "times, e.g. forecast.sel(lead_time=forecast.lead_time[:n])")
    idx = vt.drop_vars([c for c in vt.coords if c not in vt.dims]) \
        if isinstance(vt, xr.DataArray) else vt
    tr = truth[names].sel({tdim: idx})
    tr = tr.drop_vars([c for c in tr.coords if c == tdim or c == "valid_time"], errors="ignore")
    return tr.assign_coords({init_dim: fc[init_dim], lead_dim: fc[lead_dim]})


class _Scoring(NamedTuple):
    """What a metric of :func:`evaluate` needs besides the fields it scores."""

    clim: xr.Dataset | None
    keep_init: bool
    init_dim: str
    lead_dim: str
    spec_kw: dict
    x: str
    y: str


def _one(arrays):
    """One DataArray, or the Dataset of several (the velocity pair)."""
    return arrays[0] if len(arrays) == 1 else xr.Dataset({a.name: a for a in arrays})


def _score_rmse(fs, ts, sc: _Scoring) -> xr.DataArray:
    if sc.keep_init:
        return rmse(_one(fs), _one(ts))
    return rmse(_one(fs), _one(ts), dims=[sc.x, sc.y, sc.init_dim])


def _score_acc(fs, ts, sc: _Scoring) -> xr.DataArray:
    cl = sc.clim[ts[0].name] if len(ts) == 1 else sc.clim[[t.name for t in ts]]
    return acc(_one(fs), _one(ts), cl)


def _score_spectrum_error(fs, ts, sc: _Scoring) -> xr.DataArray:
    if len(fs) == 1:
        return spectrum_error(fs[0], ts[0], **sc.spec_kw)
    return spectrum_error(_one(fs), _one(ts), u=ts[0].name, v=ts[1].name, **sc.spec_kw)


def _score_ese(fc, tr, u, v, sc: _Scoring) -> xr.DataArray:
    return ese(fc, tr, dim=sc.lead_dim, u=u, v=v, sample_dims=None if sc.keep_init else sc.init_dim)


#: The metrics of :func:`evaluate` scored per variable (the velocity pair as one):
#: ``name -> f(forecast fields, truth fields, scoring) -> DataArray over lead time``. Adding a
#: metric is one function and one entry here (or in :data:`WHOLE_FORECAST_METRICS`).
PER_VARIABLE_METRICS = {"rmse": _score_rmse, "acc": _score_acc,
                        "spectrum_error": _score_spectrum_error}
#: The metrics of :func:`evaluate` scored on the whole forecast, each its own output variable:
#: ``name -> f(forecast, truth, u, v, scoring) -> DataArray``.
WHOLE_FORECAST_METRICS = {"ese": _score_ese}
#: every metric name :func:`evaluate` accepts
METRICS = (*PER_VARIABLE_METRICS, *WHOLE_FORECAST_METRICS)


def _evaluate_one(fc, tr, metrics, u, v, clim, keep_init, init_dim, lead_dim, spec_kw):
    xd, yd = _spatial(tr)
    sc = _Scoring(clim, keep_init, init_dim, lead_dim, spec_kw, xd, yd)
    rows: dict[str, dict[str, xr.DataArray]] = {}
    units: dict[str, dict[str, str]] = {}
    extra = {m: WHOLE_FORECAST_METRICS[m](fc, tr, u, v, sc) for m in metrics
             if m in WHOLE_FORECAST_METRICS}
    pairs = _pairs(fc, tr, u, v)
    for m in (m for m in metrics if m in PER_VARIABLE_METRICS):
        for name, fs, ts in pairs:
            val = PER_VARIABLE_METRICS[m](fs, ts, sc)
            if isinstance(val, xr.Dataset):
                val = val["velocity"] if "velocity" in val else val[list(val.data_vars)[0]]
            if not keep_init and init_dim in val.dims:
                val = val.mean(init_dim, keep_attrs=True)
            rows.setdefault(name, {})[m] = val
            units.setdefault(name, {})[m] = val.attrs.get("units", "")
    per_lead = [m for m in metrics if m in PER_VARIABLE_METRICS]
    data = {}
    for name, d in rows.items():
        da = xr.concat([d[m].drop_attrs() if hasattr(d[m], "drop_attrs") else d[m]
                        for m in per_lead],
                       dim=xr.DataArray(per_lead, dims="metric", name="metric"),
                       coords="minimal", compat="override")
        attrs = {"long_name": f"forecast metrics of {name}"}
        for m in per_lead:
            attrs[f"units_{m}"] = units[name][m]
        if len({units[name][m] for m in per_lead}) == 1:
            attrs["units"] = units[name][per_lead[0]]
        data[name] = da.assign_attrs(attrs)
    out = xr.Dataset(data)
    for k, val in extra.items():
        out[k] = val
    return out


def evaluate(forecast: xr.Dataset | xr.DataArray, truth: xr.Dataset | xr.DataArray,
             metrics: Sequence[str] = ("rmse", "acc", "spectrum_error", "ese"),
             u: str | None = None, v: str | None = None, reference: str | None = None,
             keep_init_time: bool = False, climatology: xr.Dataset | None = None,
             time: str | None = None, init_dim: str = "init_time", lead_dim: str = "lead_time",
             spectrum_kwargs: Mapping | None = None) -> xr.Dataset:
    """Score a forecast against the truth: a Dataset over ``(metric, lead_time)``.

    The forecast (dims ``(init_time, lead_time, <y>, <x>)``, coordinate ``valid_time`` or
    ``init_time + lead_time``) is aligned with the truth by selecting the truth at each valid
    time. Metrics per data variable shared by both, plus ``velocity`` (the vector: RMSE over both
    components, ACC over both, the KE spectrum error): ``"rmse"`` (:func:`rmse`, pooled over
    init times: ``sqrt`` of the mean square over space and init times), ``"acc"``
    (:func:`acc`, climatology = the truth's time mean unless given; mean over init times),
    ``"spectrum_error"`` (:func:`spectrum_error`; a single component uses ``1/2 |u_hat|^2``; mean
    over init times), ``"ese"`` (:func:`ese`, the paper's TKE spectrum error over all lead times:
    a separate variable ``ese`` without ``lead_time``; log10 spectra averaged over init times
    before the RMSE, as the released code did).

    Parameters
    ----------
    forecast : xarray.Dataset or xarray.DataArray
    truth : xarray.Dataset or xarray.DataArray
        With a time dimension and the forecast's variable names and grid. Two DataArrays (one
        scalar field, e.g. from ``da.equi.forecast`` with a scalar-only model) are scored as one
        variable named after them.
    metrics : sequence of str
        Among :data:`METRICS`.
    u, v : str, optional
        Velocity names (found otherwise).
    reference : {None, "persistence"}
        Also score :func:`persistence_forecast` (same init and lead times); adds a ``model``
        dimension ``["forecast", "persistence"]``.
    keep_init_time : bool
        Keep ``init_time`` (RMSE per init time) instead of averaging.
    climatology : xarray.Dataset, optional
        For ACC (default ``truth.mean(time)``).
    time : str, optional
        The truth's time dimension.
    init_dim, lead_dim : str
        Forecast dimension names.
    spectrum_kwargs : mapping, optional
        Passed to :func:`spectrum` (``detrend``, ``window``, ``land``), and ``k_max`` to
        :func:`spectrum_error`.

    Returns
    -------
    xarray.Dataset
        Variables per data variable and ``velocity`` over ``(metric, lead_time)`` (attrs
        ``units_<metric>``; ``units`` when all agree), and ``ese`` if asked.

    Raises
    ------
    ParameterError
        Unknown metric or reference, forecast without init/lead dims.
    MissingDataError
        A valid time is not in the truth.
    GridError, VariableNotFoundError, UnitsError

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.datetime64("2020-01-01", "ns") + np.arange(6) * np.timedelta64(1, "h")
    >>> rng = np.random.default_rng(0)
    >>> truth = xr.Dataset({n: (("time", "y", "x"), rng.standard_normal((6, 8, 8)),
    ...                         {"units": "m s-1"}) for n in "uv"}, coords={"time": t})
    >>> fc = persistence_forecast(truth, t[:2], steps=3)
    >>> ev = evaluate(fc, truth, metrics=["rmse"])
    >>> ev.velocity.dims, ev.velocity.attrs["units"]
    (('metric', 'lead_time'), 'm s-1')
    """
    metrics = _checked_metrics(metrics, reference)
    forecast, truth = _scored_datasets(forecast, truth)
    for d in (init_dim, lead_dim):
        if d not in forecast.dims:
            raise ParameterError(f"the forecast has no {d!r} dimension (dims "
                                 f"{tuple(forecast.dims)}).",
                                 fix="pass a forecast with dims (init_time, lead_time, y, x), or "
                                     "init_dim=/lead_dim=")
    tdim = _time_dim(truth, time)
    xd, yd = _spatial(truth)
    if len({init_dim, lead_dim, xd, yd}) < 4:
        raise ParameterError(f"init_dim={init_dim!r} and lead_dim={lead_dim!r} must be two "
                             f"dims of the forecast other than its spatial dims {yd!r}, {xd!r}.",
                             fix="pass the forecast's init and lead time dims")
    _check_evaluate_options(climatology, spectrum_kwargs)
    _check_same_grid(forecast, truth, xd, yd)
    names = [n for n in truth.data_vars if n in forecast.data_vars
             and {xd, yd} <= set(truth[n].dims)]
    if not names:
        raise VariableNotFoundError(
            f"forecast and truth share no 2-D variable (forecast: "
            f"{sorted(map(str, forecast.data_vars))}, truth: {sorted(map(str, truth.data_vars))}).",
            fix="give the forecast the truth's variable names")
    if "ese" in metrics or "spectrum_error" in metrics:
        find_velocity(truth, u=u, v=v)
    clim = None
    if "acc" in metrics:
        clim = climatology if climatology is not None else truth[names].mean(tdim, keep_attrs=True)
    spec_kw = dict(spectrum_kwargs or {})
    models = {"forecast": forecast}
    if reference == "persistence":
        models["persistence"] = persistence_forecast(truth, forecast[init_dim].values,
                                                     lead_time=forecast[lead_dim].values,
                                                     time=tdim, variables=names)
    results = []
    for label, fc in models.items():
        tr = _align_truth(fc, truth, tdim, init_dim, lead_dim, names)
        f = fc[names].drop_vars([c for c in fc.coords if c == "valid_time"])
        results.append(_evaluate_one(f, tr, metrics, u, v, clim, keep_init_time, init_dim,
                                     lead_dim, spec_kw))
    out = _stack_models(results, list(models))
    if lead_dim in out.coords:
        out[lead_dim].attrs = dict(forecast[lead_dim].attrs)
    out.attrs = {"title": "forecast evaluation", "metrics": ", ".join(metrics),
                 "aggregation": ("per init_time" if keep_init_time else
                                 "rmse pooled over space and init_time; acc, spectrum_error "
                                 "averaged over init_time; ese of the init_time-mean log10 "
                                 "TKE spectra"),
                 "n_init_time": int(forecast.sizes[init_dim])}
    if "model" in forecast.attrs:
        out.attrs["model"] = str(forecast.attrs["model"])
    return out


def _checked_metrics(metrics, reference) -> list[str]:
    """``metrics`` as a list of known metric names; ``reference`` checked."""
    if isinstance(metrics, str):
        metrics = [metrics]
    metrics = list(metrics)
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        raise ParameterError(f"unknown metric(s) {bad}; valid metrics: {list(METRICS)}.",
                             fix=f"pass metrics= a subset of {list(METRICS)}")
    if reference not in (None, "persistence"):
        raise ParameterError(f"reference must be None or 'persistence', got {reference!r}.",
                             fix="pass reference='persistence'")
    return metrics


def _scored_datasets(forecast, truth) -> tuple[xr.Dataset, xr.Dataset]:
    """Forecast and truth as Datasets: two DataArrays (one scalar field, e.g. a scalar-only
    model's forecast) become one variable named after them (else ``"field"``).

    Not :func:`xequi.routing.as_dataset`: both must share one name, and the result is a table
    of scores, not the field given back."""
    if isinstance(forecast, xr.DataArray) and isinstance(truth, xr.DataArray):
        name = next((str(n) for n in (forecast.name, truth.name) if n is not None), "field")
        forecast, truth = forecast.to_dataset(name=name), truth.to_dataset(name=name)
    for nm, obj in (("forecast", forecast), ("truth", truth)):
        if not isinstance(obj, xr.Dataset):
            raise ParameterError(f"{nm} must be an xarray.Dataset, got {type(obj).__name__}.",
                                 fix="pass two Datasets, or two DataArrays (one scalar field)")
    return forecast, truth


def _check_evaluate_options(climatology, spectrum_kwargs) -> None:
    """``climatology`` is a Dataset (or None); ``spectrum_kwargs`` names spectrum() arguments."""
    if climatology is not None and not isinstance(climatology, xr.Dataset):
        raise ParameterError(f"climatology must be an xarray.Dataset with the truth's variables,"
                             f" got {type(climatology).__name__}.",
                             fix="pass e.g. truth.mean('time') (a Dataset), or None")
    if spectrum_kwargs is not None:
        import inspect

        allowed = (set(inspect.signature(spectrum).parameters) - {"obj", "u", "v"}) | {"k_max"}
        wrong = sorted(map(str, set(spectrum_kwargs) - allowed)) \
            if isinstance(spectrum_kwargs, Mapping) else None
        if wrong is None or wrong:
            raise ParameterError(f"spectrum_kwargs must be a mapping of spectrum() arguments, got "
                                 f"{spectrum_kwargs!r}" + (f" (unknown: {wrong})" if wrong else "")
                                 + ".", fix=f"use keys among {sorted(allowed)}")


def _stack_models(results: list[xr.Dataset], labels: list[str]) -> xr.Dataset:
    """One model's scores as they are; several stacked along a ``model`` dim (attrs kept)."""
    if len(results) == 1:
        return results[0]
    out = xr.concat(results, dim=xr.DataArray(labels, dims="model", name="model"),
                    coords="minimal", compat="override")
    for k in results[0].data_vars:
        out[k].attrs = results[0][k].attrs
    return out
