"""Two-dimensional Rayleigh–Bénard convection: a Boussinesq solver producing CF-labelled datasets.

Numerical method
----------------
Vorticity–streamfunction form of the 2-D Boussinesq equations in free-fall units (length: the
depth H, velocity: U = sqrt(g alpha Delta_T H), time: H/U, temperature: Delta_T), so that
nu = sqrt(Pr/Ra) and kappa = 1/sqrt(Ra Pr)::

    omega_t + u omega_x + v omega_y = nu lap(omega) + theta_x
    theta_t + u theta_x + v theta_y = kappa lap(theta) + v
    lap(psi) = -omega,   u = psi_y,   v = -psi_x

where theta is the temperature deviation from the conduction profile T_c(y) = 1/2 - y (the full
non-dimensional temperature is T = T_c + theta, T = +1/2 on the bottom plate y = 0 and -1/2 on the
top plate y = 1). x is periodic (Fourier, dealiased by the 2/3 rule), y uses second-order centred
finite differences on a node grid whose end nodes are the walls. The streamfunction is obtained per
Fourier mode by a fast sine transform (exact inverse of the discrete Dirichlet Laplacian), the wall
vorticity by Thom's condition (omega_wall = -2 psi_1 / dy^2, no-slip), and the velocity from psi
with the same discrete operators, so the discrete divergence (spectral d/dx + centred d/dy) is zero
to round-off. Time stepping: explicit third-order strong-stability-preserving Runge–Kutta (SSP-RK3)
with an adaptive step limited by advection (CFL) and diffusion, shortened to land on frame times.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time as _time
from typing import Any, NamedTuple

import numpy as np
import scipy.fft as sfft
import xarray as xr

from xequi._version import __version__
from xequi.datasets._cache import cached_simulation, resolve_flags
from xequi.errors import NumericalInstabilityError, ParameterError

__all__ = [
    "rayleigh_benard",
    "nusselt",
    "growth_rate",
    "PRESETS",
    "preset_parameters",
    "estimated_nusselt",
    "NumericalInstabilityError",
    "NusseltEstimate",
    "RA_CRITICAL",
    "K_CRITICAL",
]

#: Critical Rayleigh number and wavenumber (per unit depth) between no-slip plates.
RA_CRITICAL = 1707.76
K_CRITICAL = 3.117

#: Advective and diffusive stability factors of the adaptive time step (SSP-RK3 stability region
#: reaches sqrt(3) on the imaginary axis and ~2.51 on the negative real axis).
CFL_ADVECTION = 1.0
CFL_DIFFUSION = 2.25

#: Minimum number of simulation grid intervals across the thermal boundary layer.
MIN_POINTS_PER_BOUNDARY_LAYER = 3.0

METHOD = (
    "vorticity-streamfunction; Fourier pseudo-spectral in x (2/3-rule dealiasing), second-order "
    "centred finite differences in y on a wall-inclusive node grid; Poisson solve by discrete sine "
    "transform; Thom wall vorticity (no-slip); explicit SSP-RK3"
)
DT_POLICY = (
    f"adaptive: dt = min({CFL_ADVECTION} / (max|u| k_max + max|v| / dy), "
    f"{CFL_DIFFUSION} / (max(nu, kappa) (4 / dy**2 + k_max**2))), shortened to land on frame times"
)


#: Named parameter sets. ``default``: the demo/test dataset, a time-dependent convecting flow on a
#: 64 x 128 grid (two 64 x 64 tiles), generated in well under a minute on 2 CPU cores.
#: ``paper``: the paper's data layout (64 x 448 output = 7 tiles of 64 x 64, 2000 frames) at
#: Ra = 1e6, aspect 7; roughly 15-25 min on 2 CPU cores; cached as zarr.
PRESETS: dict[str, dict[str, Any]] = {
    "default": dict(
        Ra=1e6, Pr=1.0, aspect=2.0, nx=128, ny=64, refine=1, spinup=60.0, frames=200,
        frame_interval=0.5, seed=0, cache=False,
    ),
    "paper": dict(
        Ra=1e6, Pr=1.0, aspect=7.0, nx=448, ny=64, refine=1, spinup=50.0, frames=2000,
        frame_interval=0.4, seed=0, cache=True,
    ),
}

_PARAM_NAMES = ("Ra", "Pr", "aspect", "nx", "ny", "refine", "spinup", "frames", "frame_interval",
                "seed")


def preset_parameters(name: str) -> dict[str, Any]:
    """Parameters of a named preset (a copy).

    Parameters
    ----------
    name : str
        One of ``PRESETS`` (``"default"``, ``"paper"``).

    Returns
    -------
    dict
        Ra, Pr, aspect, nx, ny, refine, spinup, frames, frame_interval, seed, cache.

    Raises
    ------
    xequi.errors.ParameterError
        If the preset is unknown.

    Examples
    --------
    >>> preset_parameters("default")["ny"]
    64
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise ParameterError(
            f"preset must be one of {sorted(PRESETS)}, got {name!r}.",
            fix=f"pass preset='default' or preset='paper' (valid: {sorted(PRESETS)})",
        )
    return dict(PRESETS[name])


def estimated_nusselt(Ra: float) -> float:
    """Rough Nusselt number used for the resolution check: ``max(1, 0.14 Ra**0.3)``.

    Parameters
    ----------
    Ra : float
        Rayleigh number.

    Returns
    -------
    float
        At least 1 (pure conduction).

    Raises
    ------
    TypeError, ValueError
        ``Ra`` not convertible to a float.

    Examples
    --------
    >>> round(estimated_nusselt(1e6), 2)
    8.83
    >>> estimated_nusselt(100.0)
    1.0
    """
    return max(1.0, 0.14 * float(Ra) ** 0.3)


# ----------------------------------------------------------------------------------------------
# validation helpers


def _check_real(name: str, value: Any, *, low: float | None = None, low_inclusive: bool = False,
                hint: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name} must be a real number, got {value!r} ({type(value).__name__}).",
                             fix=f"pass a finite float for {name}{hint}")
    value = float(value)
    if not math.isfinite(value):
        raise ParameterError(f"{name} must be finite, got {value!r}.",
                             fix=f"pass a finite value for {name}{hint}")
    if low is not None:
        ok = value >= low if low_inclusive else value > low
        if not ok:
            rel = ">=" if low_inclusive else ">"
            raise ParameterError(f"{name} must be {rel} {low:g}, got {value!r}.",
                                 fix=f"pass {name} {rel} {low:g}{hint}")
    return value


def _check_int(name: str, value: Any, *, low: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(
            f"{name} must be an integer >= {low}, got {value!r} ({type(value).__name__}).",
            fix=f"pass an int >= {low} for {name}{hint}")
    value = int(value)
    if value < low:
        raise ParameterError(f"{name} must be an integer >= {low}, got {value}.",
                             fix=f"pass {name} >= {low}{hint}")
    return value


@dataclasses.dataclass(frozen=True)
class _Params:
    Ra: float
    Pr: float
    aspect: float
    nx: int
    ny: int
    refine: int
    spinup: float
    frames: int
    frame_interval: float
    seed: int
    amplitude: float

    @property
    def nx_sim(self) -> int:
        return self.nx * self.refine

    @property
    def ny_sim(self) -> int:
        return self.ny * self.refine


def _validate(Ra, Pr, aspect, nx, ny, refine, spinup, frames, frame_interval, seed, amplitude,
              check_resolution: bool = True) -> _Params:
    Ra = _check_real("Ra", Ra, low=0.0, hint=" (Rayleigh number, e.g. Ra=1e6)")
    Pr = _check_real("Pr", Pr, low=0.0, hint=" (Prandtl number, e.g. Pr=1.0)")
    aspect = _check_real("aspect", aspect, low=0.0, hint=" (domain width / depth, e.g. 2.0)")
    nx = _check_int("nx", nx, low=8, hint=" (output columns)")
    ny = _check_int("ny", ny, low=8, hint=" (output rows)")
    refine = _check_int("refine", refine, low=1, hint=" (simulation grid refinement factor)")
    spinup = _check_real("spinup", spinup, low=0.0, low_inclusive=True,
                         hint=" (simulated time before the first frame)")
    frames = _check_int("frames", frames, low=1, hint=" (number of output frames)")
    frame_interval = _check_real("frame_interval", frame_interval, low=0.0,
                                 hint=" (time between frames)")
    seed = _check_int("seed", seed, low=0, hint=" (random seed of the initial perturbation)")
    amplitude = _check_real("amplitude", amplitude, low=0.0,
                            hint=" (initial temperature perturbation amplitude, e.g. 0.01)")
    p = _Params(Ra, Pr, aspect, nx, ny, refine, spinup, frames, frame_interval, seed, amplitude)
    if check_resolution:
        nu_est = estimated_nusselt(Ra)
        delta = 1.0 / (2.0 * nu_est)
        points = delta * p.ny_sim
        if points < MIN_POINTS_PER_BOUNDARY_LAYER:
            need = math.ceil(MIN_POINTS_PER_BOUNDARY_LAYER * 2.0 * nu_est / refine)
            raise ParameterError(
                f"ny={ny} (x refine={refine}) is too coarse for Ra={Ra:g}: the thermal boundary "
                f"layer delta = 1/(2 Nu) with Nu ~ 0.14 Ra^0.3 = {nu_est:.3g} holds only "
                f"{points:.2f} grid intervals; at least {MIN_POINTS_PER_BOUNDARY_LAYER:g} are "
                "required (ny * refine >= 6 Nu).",
                fix=f"use ny >= {need} (with refine={refine}), a larger refine, or a smaller Ra")
        dx = aspect / p.nx_sim
        dy = 1.0 / p.ny_sim
        if dx > 2.0 * dy * (1 + 1e-9):
            need = math.ceil(aspect * p.ny_sim / 2.0 / refine)
            raise ParameterError(
                f"nx={nx} is too coarse for aspect={aspect:g} and ny={ny}: the x spacing "
                f"{dx:.4g} exceeds twice the y spacing {dy:.4g} (valid: nx >= aspect * ny / 2).",
                fix=f"use nx >= {need}")
    return p


# ----------------------------------------------------------------------------------------------
# the solver


class _Solver:
    """Pseudo-spectral / finite-difference Boussinesq solver on interior nodes.

    State: hat-omega and hat-theta, complex arrays (ny_sim - 1, M) of the retained (dealiased)
    Fourier modes along x at the interior nodes y_j = j dy, j = 1 .. ny_sim - 1.
    """

    def __init__(self, Ra: float, Pr: float, aspect: float, nx: int, ny: int):
        self.nu = math.sqrt(Pr / Ra)
        self.kappa = 1.0 / math.sqrt(Ra * Pr)
        self.Lx = aspect
        self.Nx = nx
        self.Ny = ny  # number of intervals; walls are nodes 0 and Ny
        self.dy = 1.0 / ny
        m = np.arange(nx // 2 + 1)
        keep = m < nx / 3.0  # 2/3 rule: |m| < N/3
        self.M = int(keep.sum())
        self.k = 2 * np.pi / aspect * m[: self.M]
        self.kmax = float(self.k[-1])
        self.ik = 1j * self.k
        self.k2 = self.k**2
        p = np.arange(1, ny)
        lam = (4.0 / self.dy**2) * np.sin(p * np.pi / (2 * ny)) ** 2  # -eigenvalues of D2
        denom = lam[:, None] + self.k2[None, :]  # (Ny-1, M), all > 0
        # dst type 1 round trip: idst(dst(x)) = x with norm="ortho"
        self._inv_denom = 1.0 / denom
        self.y_nodes = np.arange(ny + 1) * self.dy
        self.x = np.arange(nx) * (aspect / nx)

    # spectral helpers ------------------------------------------------------------------------
    def _to_phys(self, a: np.ndarray) -> np.ndarray:
        return sfft.irfft(a, n=self.Nx, axis=-1) * self.Nx

    def _to_spec(self, a: np.ndarray) -> np.ndarray:
        return sfft.rfft(a, axis=-1)[..., : self.M] / self.Nx

    def streamfunction(self, w: np.ndarray) -> np.ndarray:
        """Solve (D2 - k^2) psi = -omega with psi = 0 on the walls, per mode (DST-I)."""
        wr = np.ascontiguousarray(w).view(np.float64).reshape(w.shape[0], self.M, 2)
        s = sfft.dst(wr, type=1, axis=0, norm="ortho")
        s *= self._inv_denom[:, :, None]
        psi = sfft.idst(s, type=1, axis=0, norm="ortho")
        return psi.reshape(w.shape[0], 2 * self.M).view(np.complex128)

    def _pad(self, a: np.ndarray, bottom, top) -> np.ndarray:
        out = np.empty((a.shape[0] + 2,) + a.shape[1:], dtype=a.dtype)
        out[1:-1] = a
        out[0] = bottom
        out[-1] = top
        return out

    def velocity_spec(self, psi: np.ndarray):
        pp = self._pad(psi, 0.0, 0.0)
        u = (pp[2:] - pp[:-2]) / (2 * self.dy)
        v = -self.ik * psi
        return u, v

    def wall_vorticity(self, psi: np.ndarray):
        return -2.0 * psi[0] / self.dy**2, -2.0 * psi[-1] / self.dy**2

    def rhs(self, w: np.ndarray, th: np.ndarray):
        dy = self.dy
        psi = self.streamfunction(w)
        u, v = self.velocity_spec(psi)
        wb, wt = self.wall_vorticity(psi)
        wp = self._pad(w, wb, wt)
        tp = self._pad(th, 0.0, 0.0)
        w_y = (wp[2:] - wp[:-2]) / (2 * dy)
        t_y = (tp[2:] - tp[:-2]) / (2 * dy)
        w_x = self.ik * w
        t_x = self.ik * th
        phys = self._to_phys(np.stack([u, v, w_x, w_y, t_x, t_y]))
        up, vp = phys[0], phys[1]
        nl = np.stack([up * phys[2] + vp * phys[3], up * phys[4] + vp * phys[5]])
        nl = self._to_spec(nl)
        lap_w = (wp[2:] - 2 * wp[1:-1] + wp[:-2]) / dy**2 - self.k2 * w
        lap_t = (tp[2:] - 2 * tp[1:-1] + tp[:-2]) / dy**2 - self.k2 * th
        dw = -nl[0] + self.nu * lap_w + t_x
        dt_ = -nl[1] + self.kappa * lap_t + v
        umax = float(np.abs(up).max())
        vmax = float(np.abs(vp).max())
        return dw, dt_, umax, vmax

    def dt_limit(self, umax: float, vmax: float) -> float:
        adv = umax * self.kmax + vmax / self.dy
        dt_adv = CFL_ADVECTION / adv if adv > 0 else np.inf
        diff = max(self.nu, self.kappa) * (4.0 / self.dy**2 + self.kmax**2)
        return min(dt_adv, CFL_DIFFUSION / diff)

    def step(self, w, th, t_remaining: float, dt_max: float = np.inf):
        """One SSP-RK3 step of adaptive length (<= t_remaining). Returns (w, th, dt)."""
        k1w, k1t, umax, vmax = self.rhs(w, th)
        dt = min(self.dt_limit(umax, vmax), dt_max)
        if dt >= t_remaining * (1 - 1e-12):
            dt = t_remaining
        elif dt > 0.5 * t_remaining:  # avoid a tiny last step
            dt = 0.5 * t_remaining
        w1 = w + dt * k1w
        t1 = th + dt * k1t
        k2w, k2t, _, _ = self.rhs(w1, t1)
        w2 = 0.75 * w + 0.25 * (w1 + dt * k2w)
        t2 = 0.75 * th + 0.25 * (t1 + dt * k2t)
        k3w, k3t, _, _ = self.rhs(w2, t2)
        w3 = (w + 2.0 * (w2 + dt * k3w)) / 3.0
        t3 = (th + 2.0 * (t2 + dt * k3t)) / 3.0
        return w3, t3, dt

    def initial_state(self, seed: int, amplitude: float):
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((self.Ny - 1, self.Nx))
        th = self._to_spec(noise)
        th[:, 0] = 0.0  # no horizontal-mean perturbation
        env = np.sin(np.pi * self.y_nodes[1:-1])[:, None]
        th = th * env
        rms = math.sqrt(float(np.mean(self._to_phys(th) ** 2))) or 1.0
        th *= amplitude / rms
        w = np.zeros_like(th)
        return w, th

    # diagnostics -----------------------------------------------------------------------------
    def fields(self, w, th):
        """Physical u, v, T on the full node grid (Ny+1, Nx), walls included."""
        psi = self.streamfunction(w)
        u, v = self.velocity_spec(psi)
        phys = self._to_phys(np.stack([u, v, th]))
        zeros = np.zeros((1, self.Nx))
        full = [np.concatenate([zeros, a, zeros]) for a in phys]
        full[2] = full[2] + (0.5 - self.y_nodes)[:, None]
        return full[0], full[1], full[2]

    def kinetic_energy(self, w) -> float:
        """Domain-mean kinetic energy (trapezoid in y, exact mean in x)."""
        psi = self.streamfunction(w)
        u, v = self.velocity_spec(psi)
        weights = np.where(self.k == 0, 1.0, 2.0)
        e = (np.abs(u) ** 2 + np.abs(v) ** 2) * weights
        return 0.5 * float(e.sum()) * self.dy  # interior nodes; wall values are 0

    def wall_nusselt(self, th) -> float:
        """Nu from the wall temperature gradients (mean of both walls, 2nd-order one-sided)."""
        t0 = th[:, 0].real  # horizontal means of theta at interior nodes
        dy = self.dy
        # d theta/dy at walls (theta = 0 there); T_y = -1 + theta_y; Nu = -<T_y>
        gb = (4 * t0[0] - t0[1]) / (2 * dy)
        gt = -(4 * t0[-1] - t0[-2]) / (2 * dy)
        return 0.5 * ((1 - gb) + (1 - gt))


# ----------------------------------------------------------------------------------------------
# running


def _progress(total: float, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    from xequi.io import progress_options

    return tqdm(total=total, desc=desc, unit="t.u.", leave=False, **progress_options(True),
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} [{elapsed}<{remaining}]")


def _check_finite(solver: _Solver, w, th, t: float, p: _Params | None = None):
    bad = not (np.isfinite(w).all() and np.isfinite(th).all())
    if not bad:
        # the maximum principle bounds T in [-1/2, 1/2], hence theta in [-1, 1]
        tmax = float(np.abs(solver._to_phys(th)).max())
        bad = tmax > 2.0
    if bad:
        raise NumericalInstabilityError(
            f"the simulation became unstable at t={t:.4g} (non-finite or unbounded temperature).",
            fix="increase the resolution (ny, nx, refine) or lower Ra; the adaptive time step "
                "could not keep the run stable")


def _coarsen(full: np.ndarray, r: int) -> np.ndarray:
    """Node field (Ny+1, Nx) -> cell-centred block averages (Ny/r, Nx/r).

    In y, the average over each block of r intervals of the piecewise-linear interpolant
    (trapezoid weights); in x, the mean of r consecutive points.
    """
    cells = 0.5 * (full[1:] + full[:-1])  # (Ny, Nx) interval averages
    ny, nx = cells.shape
    return cells.reshape(ny // r, r, nx // r, r).mean(axis=(1, 3))


def _simulate(p: _Params, progress: bool, desc: str = "rayleigh_benard"):
    with np.errstate(over="ignore", invalid="ignore"):
        return _simulate_inner(p, progress, desc)


def _simulate_inner(p: _Params, progress: bool, desc: str):
    solver = _Solver(p.Ra, p.Pr, p.aspect, p.nx_sim, p.ny_sim)
    w, th = solver.initial_state(p.seed, p.amplitude)
    out = np.empty((3, p.frames, p.ny, p.nx), dtype=np.float32)
    nus = np.empty(p.frames)
    nusv = np.empty(p.frames)
    times = p.spinup + p.frame_interval * np.arange(p.frames)
    total = times[-1]
    bar = _progress(total, progress, desc)
    t = 0.0
    nsteps = 0
    dt_min = np.inf
    dt_sum = 0.0
    try:
        for i, target in enumerate(times):
            while t < target - 1e-12 * max(1.0, target):
                w, th, dt = solver.step(w, th, target - t)
                t = target if abs(target - t - dt) < 1e-12 * max(1.0, target) else t + dt
                nsteps += 1
                dt_sum += dt
                dt_min = min(dt_min, dt)
                if bar is not None:
                    bar.update(dt)
                if nsteps % 100 == 0:
                    _check_finite(solver, w, th, t, p)
                    if dt < 1e-7:
                        raise NumericalInstabilityError(
                            f"the adaptive time step collapsed to {dt:.3g} at t={t:.4g}.",
                            fix="increase the resolution (ny, nx, refine) or lower Ra")
            _check_finite(solver, w, th, t, p)
            u, v, T = solver.fields(w, th)
            out[0, i] = _coarsen(u, p.refine)
            out[1, i] = _coarsen(v, p.refine)
            out[2, i] = _coarsen(T, p.refine)
            nus[i] = solver.wall_nusselt(th)
            # volume average <v T> on nodes (trapezoid; v = 0 at walls)
            nusv[i] = 1.0 + math.sqrt(p.Ra * p.Pr) * float(np.mean(v[1:-1] * T[1:-1])) * (
                (solver.Ny - 1) / solver.Ny)
    finally:
        if bar is not None:
            bar.close()
    stats = dict(steps=nsteps, dt_mean=dt_sum / max(nsteps, 1), dt_min=float(dt_min),
                 nusselt_wall=float(nus.mean()), nusselt_volume=float(nusv.mean()))
    return out, times, stats


# ----------------------------------------------------------------------------------------------
# physical (dimensional) parameters

_PHYSICAL_KEYS = ("depth", "delta_T", "nu", "kappa", "alpha", "g", "T_mean")


def _physical_scales(physical: Any, Ra, Pr):
    if not isinstance(physical, dict):
        raise ParameterError(f"physical must be a dict, got {type(physical).__name__}.",
                             fix="pass physical=dict(depth=..., delta_T=..., nu=..., kappa=..., "
                                 "alpha=..., g=9.81, T_mean=293.15) in SI units")
    unknown = set(physical) - set(_PHYSICAL_KEYS)
    if unknown:
        raise ParameterError(f"physical has unknown keys {sorted(unknown)}; valid keys are "
                             f"{list(_PHYSICAL_KEYS)}.", fix="remove or rename these keys")
    required = ("depth", "delta_T", "nu", "kappa", "alpha")
    missing = [k for k in required if k not in physical]
    if missing:
        raise ParameterError(f"physical is missing {missing} (required: {list(required)}; "
                             "optional: g=9.81 m s-2, T_mean=293.15 K).",
                             fix="pass all of depth [m], delta_T [K], nu [m2 s-1], "
                                 "kappa [m2 s-1], alpha [K-1]")
    vals = {k: _check_real(f"physical[{k!r}]", physical[k], low=0.0)
            for k in required}
    vals["g"] = _check_real("physical['g']", physical.get("g", 9.81), low=0.0)
    vals["T_mean"] = _check_real("physical['T_mean']", physical.get("T_mean", 293.15), low=0.0)
    Ra_p = vals["g"] * vals["alpha"] * vals["delta_T"] * vals["depth"] ** 3 / (vals["nu"] * vals["kappa"])
    Pr_p = vals["nu"] / vals["kappa"]
    for name, given, derived in (("Ra", Ra, Ra_p), ("Pr", Pr, Pr_p)):
        if given is not None:
            g = _check_real(name, given, low=0.0)
            if abs(g - derived) > 1e-6 * derived:
                raise ParameterError(
                    f"{name}={g:g} contradicts physical, which gives {name}={derived:.6g}.",
                    fix=f"omit {name} (it is derived from physical) or make them consistent")
    U = math.sqrt(vals["g"] * vals["alpha"] * vals["delta_T"] * vals["depth"])
    scales = dict(length=vals["depth"], velocity=U, time=vals["depth"] / U,
                  temperature=vals["delta_T"], temperature_offset=vals["T_mean"])
    return Ra_p, Pr_p, vals, scales


# ----------------------------------------------------------------------------------------------
# dataset assembly


class _Scales(NamedTuple):
    """What one non-dimensional unit is in the output (all 1, offset 0, when non-dimensional)."""

    dimensional: bool
    length: float
    velocity: float
    time: float
    temperature: float
    temperature_offset: float

    @classmethod
    def of(cls, scales: dict | None) -> "_Scales":
        if scales is None:
            return cls(False, 1.0, 1.0, 1.0, 1.0, 0.0)
        return cls(True, scales["length"], scales["velocity"], scales["time"],
                   scales["temperature"], scales["temperature_offset"])


def _build_dataset(p: _Params, data, times, stats, scales, physical_vals, preset_label: str,
                   elapsed: float) -> xr.Dataset:
    sc = _Scales.of(scales)
    ds = xr.Dataset(_output_variables(data, sc), coords=_output_coords(p, times, sc))
    ds.attrs.update(_output_attrs(p, stats, sc, physical_vals, preset_label, elapsed))
    return ds


def _output_coords(p: _Params, times, sc: _Scales) -> dict:
    """time, y (cell centres, walls excluded) and x (periodic) with CF attrs."""
    dy = 1.0 / p.ny
    x = (np.arange(p.nx) * p.refine + (p.refine - 1) / 2.0) * (p.aspect / p.nx_sim)
    y = (np.arange(p.ny) + 0.5) * dy
    lu = "m" if sc.dimensional else "1"
    tu = "s" if sc.dimensional else "1"
    return {
        "time": ("time", times * sc.time, dict(
            standard_name="time", long_name="time since the start of the simulation",
            units=tu, axis="T")),
        "y": ("y", (y * sc.length), dict(
            standard_name="height", long_name="height above the bottom plate", units=lu,
            axis="Y", positive="up",
            comment="cell centres; the walls (y=0 and y=depth) are not grid points of the output")),
        "x": ("x", (x * sc.length), dict(
            standard_name="projection_x_coordinate", long_name="horizontal position (periodic)",
            units=lu, axis="X", comment="periodic in x with period aspect * depth")),
    }


def _output_variables(data, sc: _Scales) -> dict:
    """u, v (float32) and the temperature (absolute in K when dimensional) with CF attrs."""
    dim = sc.dimensional
    vu = "m s-1" if dim else "1"
    Tu = "K" if dim else "1"
    u_attrs = dict(standard_name="sea_water_x_velocity", long_name="horizontal velocity (along x)",
                   units=vu)
    v_attrs = dict(standard_name="sea_water_y_velocity",
                   long_name="vertical (upward) velocity, along y", units=vu)
    if dim:
        T_attrs = dict(standard_name="sea_water_temperature", long_name="temperature", units=Tu)
        T_data = data[2].astype(np.float64) * sc.temperature + sc.temperature_offset
    else:
        T_attrs = dict(long_name="temperature deviation from the mean plate temperature, "
                                 "non-dimensional (in units of the plate temperature difference)",
                       units=Tu)
        T_data = data[2]
    if not dim:
        u_attrs["comment"] = v_attrs["comment"] = "in units of the free-fall velocity sqrt(g alpha dT H)"
    dims = ("time", "y", "x")
    return {
        "u": (dims, (data[0] * sc.velocity).astype(np.float32), u_attrs),
        "v": (dims, (data[1] * sc.velocity).astype(np.float32), v_attrs),
        # absolute temperatures in K need float64: a small delta_T on ~293 K would lose
        # its resolution in float32
        "temperature": (dims, np.asarray(T_data, dtype=np.float64 if dim else np.float32),
                        T_attrs),
    }


def _output_attrs(p: _Params, stats, sc: _Scales, physical_vals, preset_label: str,
                  elapsed: float) -> dict:
    """Global attrs: provenance, parameters, run statistics, scales (and physical inputs)."""
    L, U, tau, dT, T0 = sc.length, sc.velocity, sc.time, sc.temperature, sc.temperature_offset
    attrs = dict(
        title="Two-dimensional Rayleigh–Bénard convection",
        source=f"xequi Rayleigh–Bénard simulator (xequi {__version__}): {METHOD}",
        Conventions="CF-1.10",
        history=f"simulated by xequi.datasets.rayleigh_benard in {elapsed:.1f} s",
        preset=preset_label,
        Ra=p.Ra, Pr=p.Pr, aspect=p.aspect, nx=p.nx, ny=p.ny, refine=p.refine,
        nx_simulation=p.nx_sim, ny_simulation_intervals=p.ny_sim,
        spinup=p.spinup, frames=p.frames, frame_interval=p.frame_interval, seed=p.seed,
        initial_amplitude=p.amplitude,
        dt_policy=DT_POLICY, method=METHOD, xequi_version=__version__,
        time_steps=stats["steps"], dt_mean=stats["dt_mean"], dt_min=stats["dt_min"],
        nusselt=stats["nusselt_wall"], nusselt_wall=stats["nusselt_wall"],
        nusselt_volume=stats["nusselt_volume"],
        nusselt_comment="time mean over the output frames, computed on the simulation grid: "
                        "nusselt_wall from the wall temperature gradients (mean of both plates), "
                        "nusselt_volume = 1 + sqrt(Ra Pr) <v T>",
        grid="output: cell centres (walls excluded); simulation: node grid of "
             f"{p.ny_sim} intervals in y with walls as nodes, {p.nx_sim} points in x; output = "
             "block averages over refine x refine simulation cells",
        boundary_conditions="no-slip, fixed temperature plates (bottom hot, top cold); periodic in x",
        nondimensionalization="free-fall: length H, velocity sqrt(g alpha dT H), time H/U, "
                              "temperature dT; nu = sqrt(Pr/Ra), kappa = 1/sqrt(Ra Pr)",
        dimensional=int(sc.dimensional),
        length_scale=L, velocity_scale=U, time_scale=tau, temperature_scale=dT,
        temperature_offset=T0,
        temperature_bottom=T0 + 0.5 * dT, temperature_top=T0 - 0.5 * dT,
    )
    if physical_vals is not None:
        for k, val in physical_vals.items():
            attrs[f"physical_{k}"] = val
    return attrs


def rayleigh_benard(
    preset: str = "default",
    *,
    Ra: float | None = None,
    Pr: float | None = None,
    aspect: float | None = None,
    nx: int | None = None,
    ny: int | None = None,
    refine: int | None = None,
    spinup: float | None = None,
    frames: int | None = None,
    frame_interval: float | None = None,
    seed: int | None = None,
    amplitude: float = 0.01,
    physical: dict | None = None,
    cache: bool | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Simulate 2-D Rayleigh–Bénard convection and return the frames as a CF-labelled Dataset.

    A real solver of the 2-D Boussinesq equations (no-slip, fixed-temperature plates at y = 0
    (hot) and y = 1 (cold), periodic in x); see the module docstring for the numerical method.
    Parameters not given are taken from the preset.

    Presets (see ``PRESETS``):

    ``"default"``
        Ra = 1e6, Pr = 1, aspect 2, output and simulation grid 64 x 128 (two 64 x 64 tiles),
        spin-up 60, 200 frames every 0.5 free-fall times: a time-dependent, convecting flow.
        About 30-40 s on 2 CPU cores; not cached by default.
    ``"paper"``
        Like the paper's data layout: Ra = 1e6, Pr = 1, aspect 7, simulated directly on the
        output grid 64 x 448 (seven 64 x 64 tiles; ``refine=1``), spin-up 50, 2000 frames every
        0.4 free-fall times (849.6 time units, about 1e5 time steps of dt ~ 0.008). Estimated
        cost from short timed runs: 14-23 minutes on 2 shared CPU cores depending on load
        (``benchmarks/simulate.py`` prints the estimate); about 690 MB of float32 data before compression. Cached as zarr
        (``cache=True``) so it is generated once. The paper simulated a more turbulent flow at
        256 x 1792 and subsampled by 4; a Ra = 1e7 run at 128 x 896 (``refine=2``) would need
        several hours here.

    Parameters
    ----------
    preset : str, default "default"
        Named parameter set providing every parameter not given explicitly.
    Ra : float, optional
        Rayleigh number, > 0. Derived from ``physical`` when that is given.
    Pr : float, optional
        Prandtl number, > 0. Derived from ``physical`` when that is given.
    aspect : float, optional
        Domain width / depth, > 0.
    nx, ny : int, optional
        Output grid columns (x) and rows (y), each >= 8. Resolution criterion: the simulation
        grid (``ny * refine`` intervals) must put at least 3 intervals across the thermal
        boundary layer delta = 1 / (2 Nu), Nu estimated as ``max(1, 0.14 Ra**0.3)``
        (i.e. ``ny * refine >= 6 Nu``), and the x spacing may be at most twice the y spacing.
    refine : int, optional
        The simulation runs on a grid ``refine`` times finer in x and y and is block-averaged to
        the output grid, >= 1.
    spinup : float, optional
        Simulated time before the first frame (free-fall units), >= 0.
    frames : int, optional
        Number of output frames, >= 1.
    frame_interval : float, optional
        Time between frames (free-fall units), > 0.
    seed : int, optional
        Seed of the random initial temperature perturbation, >= 0. The output is deterministic
        for a given seed (and machine / library versions).
    amplitude : float, default 0.01
        RMS amplitude of the initial temperature perturbation (non-dimensional), > 0.
    physical : dict, optional
        Dimensional parameters in SI units: ``depth`` [m], ``delta_T`` [K], ``nu`` [m2 s-1],
        ``kappa`` [m2 s-1], ``alpha`` [K-1], optional ``g`` [m s-2] (default 9.81) and
        ``T_mean`` [K] (default 293.15). Ra and Pr are derived from them (an explicit Ra or Pr
        that disagrees by more than 1e-6 relative is an error) and the output is in m, s, m s-1
        and K (temperature = T_mean + delta_T * T'). ``spinup`` and ``frame_interval`` stay in
        free-fall time units H / U; the time coordinate is converted to seconds.
    cache : bool, optional
        Store / reuse the result in the zarr cache (see :mod:`xequi.datasets._cache`). Default:
        the preset's choice (True for ``"paper"``, False for ``"default"``).
    progress : bool, default True
        Show a tqdm progress bar; ``False`` prints nothing.

    Returns
    -------
    xarray.Dataset
        Variables ``u`` (horizontal velocity), ``v`` (vertical velocity along y, upward) and
        ``temperature``, dims ``("time", "y", "x")``, float32 (dimensional temperature in K:
        float64); coordinates ``time``, ``y`` (cell
        centres, walls excluded, increasing upward from the bottom plate) and ``x``, with CF
        attributes. Non-dimensional quantities have units ``"1"``. Global attributes record all
        parameters, the method, the time-step policy and the measured Nusselt number.

    Raises
    ------
    xequi.errors.ParameterError
        For an unknown preset, a non-finite, non-positive or wrongly typed parameter, sizes
        below the minimum, or a grid too coarse for Ra (see ``nx, ny``).
    NumericalInstabilityError
        (a ``ParameterError``) if the run blows up; the message suggests a finer grid.

    Examples
    --------
    >>> ds = rayleigh_benard(Ra=3e3, aspect=2.0, nx=16, ny=10, spinup=1.0, frames=2,
    ...                      frame_interval=0.5, progress=False)
    >>> ds.u.dims
    ('time', 'y', 'x')
    >>> ds.temperature.shape
    (2, 10, 16)
    """
    base = preset_parameters(preset)
    given = dict(Ra=Ra, Pr=Pr, aspect=aspect, nx=nx, ny=ny, refine=refine, spinup=spinup,
                 frames=frames, frame_interval=frame_interval, seed=seed)
    overridden = [k for k, v in given.items() if v is not None and v != base.get(k)]
    scales = physical_vals = None
    if physical is not None:
        Ra_p, Pr_p, physical_vals, scales = _physical_scales(physical, Ra, Pr)
        given["Ra"], given["Pr"] = Ra_p, Pr_p
        overridden += ["physical"]
    merged = {k: (given[k] if given[k] is not None else base[k]) for k in _PARAM_NAMES}
    p = _validate(**merged, amplitude=amplitude)
    use_cache = resolve_flags(progress, cache, preset_cache=bool(base.get("cache", False)))
    label = preset if not overridden else f"{preset} (modified: {', '.join(sorted(overridden))})"

    def build() -> xr.Dataset:
        t0 = _time.perf_counter()
        data, times, stats = _simulate(p, progress, desc=f"rayleigh_benard[{preset}]")
        return _build_dataset(p, data, times, stats, scales, physical_vals, label,
                              _time.perf_counter() - t0)

    if not use_cache:
        return build()

    key = dataclasses.asdict(p)
    key["physical"] = physical_vals
    key["preset"] = label
    return cached_simulation("rayleigh_benard", key, build)


# ----------------------------------------------------------------------------------------------
# diagnostics


class NusseltEstimate(NamedTuple):
    """Nusselt number estimates (time and horizontal means)."""

    wall: float
    """Mean of the bottom and top wall-gradient estimates."""
    volume: float
    """1 + <v T> / (kappa dT / H), volume and time mean."""
    bottom: float
    """Bottom-plate wall-gradient estimate."""
    top: float
    """Top-plate wall-gradient estimate."""

    def items(self):
        """``(name, value)`` pairs, as for a dict: ``dict(est.items())``."""
        return self._asdict().items()

    def keys(self):
        """Names of the estimates: wall, volume, bottom, top."""
        return self._asdict().keys()

    def __getitem__(self, key):  # also index by name: est["wall"]
        if isinstance(key, str):
            return getattr(self, key)
        return tuple.__getitem__(self, key)


def nusselt(ds: xr.Dataset) -> NusseltEstimate:
    """Nusselt number of a :func:`rayleigh_benard` dataset, by two independent estimates.

    ``wall``: minus the mean vertical temperature gradient at the plates (in units of
    dT / H), from a second-order one-sided difference through the known wall temperature and the
    two nearest cell-centred rows, averaged over x, time and both plates. ``volume``:
    ``1 + sqrt(Ra Pr) <v T>`` (free-fall units), averaged over the whole domain and time. Both
    equal Nu in a statistically steady state.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`rayleigh_benard` (dimensional or not); the scales are read from its
        attributes. Not modified.

    Returns
    -------
    NusseltEstimate
        Named tuple ``(wall, volume, bottom, top)`` of floats; also usable like a dict
        (``est["wall"]``, ``est.items()``).

    Raises
    ------
    xequi.errors.ParameterError
        If ``ds`` lacks the variables or attributes written by :func:`rayleigh_benard`.

    Examples
    --------
    >>> ds = rayleigh_benard(Ra=3e3, nx=16, ny=10, spinup=1.0, frames=2, progress=False)
    >>> est = nusselt(ds)
    >>> abs(est.wall - 1.0) < 0.5
    True
    """
    needed = ("Ra", "Pr", "velocity_scale", "temperature_scale", "temperature_offset",
              "length_scale")
    missing = [a for a in needed if a not in ds.attrs]
    missing += [v for v in ("v", "temperature") if v not in ds.variables]
    if missing or "y" not in ds.coords:
        raise ParameterError(f"ds lacks {missing or ['y']} needed for the Nusselt number.",
                             fix="pass a Dataset returned by xequi.datasets.rayleigh_benard")
    a = ds.attrs
    T = (ds["temperature"].values.astype(np.float64) - a["temperature_offset"]) / a["temperature_scale"]
    v = ds["v"].values.astype(np.float64) / a["velocity_scale"]
    y = ds["y"].values.astype(np.float64) / a["length_scale"]
    h = float(y[1] - y[0])
    Tm = T.mean(axis=(0, 2))  # mean profile over time and x
    # quadratic through (0, +1/2), (h/2, T0), (3h/2, T1)
    gb = (-8 * 0.5 + 9 * Tm[0] - Tm[1]) / (3 * h)
    gt = (8 * (-0.5) - 9 * Tm[-1] + Tm[-2]) / (3 * h)
    bottom, top = -gb, -gt
    volume = 1.0 + math.sqrt(a["Ra"] * a["Pr"]) * float(np.mean(v * T))
    return NusseltEstimate(float(0.5 * (bottom + top)), float(volume), float(bottom), float(top))


def growth_rate(Ra: float, *, Pr: float = 1.0, aspect: float = 2 * np.pi / K_CRITICAL,
                nx: int = 16, ny: int = 16, t_start: float = 30.0, t_end: float = 120.0,
                amplitude: float = 1e-4, seed: int = 0, samples: int = 40) -> float:
    """Exponential growth rate of the kinetic energy of a small perturbation.

    Runs the solver from a small random temperature perturbation and fits
    ``log KE = a + rate * t`` by least squares over ``t_start <= t <= t_end`` (free-fall time
    units), after the fast-decaying transients. Positive above the onset of convection
    (Ra_c = 1707.76 between no-slip plates, for a domain admitting k_c = 3.117), negative below.
    The energy growth rate is twice the amplitude growth rate.

    Parameters
    ----------
    Ra, Pr : float
        Rayleigh and Prandtl numbers, > 0.
    aspect : float, default 2 pi / 3.117
        Domain width / depth (the default holds exactly one critical wavelength).
    nx, ny : int, default 16
        Simulation grid (no refinement).
    t_start, t_end : float
        Fit window, 0 <= t_start < t_end.
    amplitude : float
        RMS amplitude of the initial temperature perturbation.
    seed : int
        Random seed of the perturbation.
    samples : int
        Number of kinetic-energy samples in the fit window, >= 3.

    Returns
    -------
    float
        d(log KE)/dt in inverse free-fall time units.

    Raises
    ------
    xequi.errors.ParameterError
        For invalid arguments.

    Examples
    --------
    >>> growth_rate(3000.0, nx=8, ny=8, t_start=5.0, t_end=10.0, samples=5) > 0
    True
    """
    p = _validate(Ra, Pr, aspect, nx, ny, 1, 0.0, 1, 1.0, seed, amplitude, check_resolution=False)
    t_start = _check_real("t_start", t_start, low=0.0, low_inclusive=True)
    t_end = _check_real("t_end", t_end, low=t_start)
    samples = _check_int("samples", samples, low=3)
    solver = _Solver(p.Ra, p.Pr, p.aspect, p.nx, p.ny)
    w, th = solver.initial_state(seed, amplitude)
    ts = np.linspace(t_start, t_end, samples)
    ke = np.empty(samples)
    t = 0.0
    for i, target in enumerate(ts):
        while t < target - 1e-12 * max(1.0, target):
            w, th, dt = solver.step(w, th, target - t)
            t = target if abs(target - t - dt) < 1e-12 * max(1.0, target) else t + dt
        _check_finite(solver, w, th, t)
        ke[i] = solver.kinetic_energy(w)
    if not (ke > 0).all():
        raise NumericalInstabilityError("kinetic energy vanished; cannot fit a growth rate.",
                                        fix="increase amplitude or shorten the fit window")
    rate, _ = np.polyfit(ts, np.log(ke), 1)
    return float(rate)
