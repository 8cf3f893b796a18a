"""A zarr cache for generated datasets (simulations), keyed by a hash of all parameters.

Location: ``$XEQUI_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/xequi``, else ``~/.cache/xequi``.
Each entry is a zarr store ``<name>-<hash>.zarr``, the hash covering every parameter and the xequi
version. A store is written to a temporary directory next to the target, a completion marker
(``xequi-complete.json``, holding the key and the size of every file of the store) is written
last, and the directory is renamed into place, so an interrupted write never leaves a store that
looks complete. On reading, a store without the marker, with a marker or attributes for other
parameters / another version, with a file missing, added or of another size (truncated chunk),
or that zarr cannot read is treated as stale or corrupt: it is deleted and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import xarray as xr

from xequi._version import __version__
from xequi.errors import CacheError, ParameterError
from xequi.io import ZARR_WRITE_KWARGS, _remove, atomic_path

__all__ = ["cache_dir", "cache_key", "cache_path", "cached_simulation", "clear_cache", "MARKER"]

MARKER = "xequi-complete.json"
_KEY_ATTR = "xequi_cache_key"


def cache_dir() -> Path:
    """The cache directory (not created).

    Returns
    -------
    pathlib.Path
        ``$XEQUI_CACHE_DIR``, else ``$XDG_CACHE_HOME/xequi``, else ``~/.cache/xequi``.

    Examples
    --------
    >>> isinstance(cache_dir(), Path)
    True
    """
    env = os.environ.get("XEQUI_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "xequi"
    return Path.home() / ".cache" / "xequi"


def _canonical(params: dict[str, Any]) -> str:
    try:
        return json.dumps({"params": params, "xequi_version": __version__}, sort_keys=True,
                          default=repr)
    except (TypeError, ValueError) as exc:  # pragma: no cover - default=repr handles most
        raise ParameterError(f"cache parameters are not serializable: {exc}",
                             fix="pass plain numbers, strings, lists and dicts") from exc


def cache_key(params: dict[str, Any]) -> str:
    """SHA-256 hex digest (first 16 characters) of the parameters and the xequi version.

    Parameters
    ----------
    params : dict
        JSON-serializable simulation parameters (key order does not matter).

    Returns
    -------
    str
        16 hexadecimal characters.

    Raises
    ------
    ParameterError
        Parameters that cannot be serialized.

    Examples
    --------
    >>> cache_key({"Ra": 1e6, "nx": 64}) == cache_key({"nx": 64, "Ra": 1e6})
    True
    >>> len(cache_key({"Ra": 1e6}))
    16
    """
    return hashlib.sha256(_canonical(params).encode()).hexdigest()[:16]


def cache_path(name: str, params: dict[str, Any]) -> Path:
    """Path of the zarr store for ``name`` and ``params``.

    Parameters
    ----------
    name : str
        Simulator name, e.g. ``"rayleigh_benard"`` (no slashes).
    params : dict
        Simulation parameters (see :func:`cache_key`).

    Returns
    -------
    pathlib.Path
        ``<cache_dir()>/<name>-<cache_key(params)>.zarr`` (it need not exist).

    Raises
    ------
    ParameterError
        An empty name or one with slashes.

    Examples
    --------
    >>> p = cache_path("rayleigh_benard", {"Ra": 1e6})
    >>> p.name.startswith("rayleigh_benard-"), p.suffix
    (True, '.zarr')
    """
    if not isinstance(name, str) or not name or any(c in name for c in "/\\"):
        raise ParameterError(f"cache name must be a non-empty string without slashes, got {name!r}.",
                             fix="pass a simple name such as 'rayleigh_benard'")
    return cache_dir() / f"{name}-{cache_key(params)}.zarr"


def _manifest(path: Path) -> dict[str, int]:
    """{relative file path: size} of every file of a store but the completion marker."""
    return {p.relative_to(path).as_posix(): p.stat().st_size
            for p in sorted(path.rglob("*")) if p.is_file() and p.name != MARKER}


def _valid(path: Path, key: str) -> xr.Dataset | None:
    """Open the store if it is complete and belongs to ``key``; else None."""
    marker = path / MARKER
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if info.get("key") != key or info.get("xequi_version") != __version__:
        return None
    if "files" in info and _manifest(path) != info["files"]:
        return None  # a chunk missing, truncated or extra: interrupted copy, full disk, ...
    try:
        with warnings.catch_warnings():
            # zarr notes that the marker file is not part of the hierarchy: expected
            warnings.filterwarnings("ignore", message=".*not recognized as a component.*")
            ds = xr.open_zarr(path, consolidated=True)
            if ds.attrs.get(_KEY_ATTR) != key:
                return None
            # touch one element of every variable: catches missing / unreadable chunks
            for var in ds.data_vars.values():
                var.isel({d: 0 for d in var.dims}).values
    except Exception:  # noqa: BLE001 - any failure to read means corrupt
        return None
    return ds


def cached_simulation(name: str, params: dict[str, Any],
                      build: Callable[[], xr.Dataset]) -> xr.Dataset:
    """Return the cached dataset for ``(name, params)``, building and storing it if needed.

    Parameters
    ----------
    name : str
        Kind of dataset (part of the file name), e.g. ``"rayleigh_benard"``.
    params : dict
        Every parameter that determines the result (JSON-serializable). Hashed together with
        the xequi version.
    build : callable
        Called without arguments to produce the dataset when there is no valid entry.

    Returns
    -------
    xarray.Dataset
        The dataset, opened lazily from the zarr store.

    Raises
    ------
    xequi.errors.CacheError
        If the cache directory cannot be created or written.

    Examples
    --------
    >>> import os, tempfile, xarray as xr
    >>> old = os.environ.get("XEQUI_CACHE_DIR")
    >>> os.environ["XEQUI_CACHE_DIR"] = tempfile.mkdtemp()
    >>> ds = cached_simulation("demo", {"a": 1}, lambda: xr.Dataset({"x": ("t", [1.0, 2.0])}))
    >>> float(ds.x.sum())
    3.0
    >>> _ = os.environ.pop("XEQUI_CACHE_DIR") if old is None else os.environ.update(XEQUI_CACHE_DIR=old)
    """
    key = cache_key(params)
    path = cache_path(name, params)
    ds = _valid(path, key) if path.exists() else None
    if ds is not None:
        return ds
    if path.exists():
        warnings.warn(f"xequi cache entry {path} is incomplete, stale or corrupt; rebuilding it.",
                      stacklevel=2)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cannot create the cache directory {path.parent}: {exc}",
                         fix="set XEQUI_CACHE_DIR to a writable directory") from exc
    result = build()
    out = result.copy()
    out.attrs = dict(result.attrs)
    out.attrs[_KEY_ATTR] = key
    try:
        with atomic_path(path) as tmp:  # a stale entry stays until the new one is complete
            out.drop_encoding().to_zarr(tmp, mode="w", **ZARR_WRITE_KWARGS)
            (tmp / MARKER).write_text(json.dumps(
                {"key": key, "xequi_version": __version__, "name": name, "files": _manifest(tmp),
                 "params": json.loads(_canonical(params))["params"]}, sort_keys=True))
    except OSError as exc:
        raise CacheError(f"cannot write the cache entry {path}: {exc}",
                         fix="set XEQUI_CACHE_DIR to a writable directory with free space") from exc
    ds = _valid(path, key)
    if ds is None:  # pragma: no cover - just written
        raise CacheError(f"the cache entry {path} could not be read back after writing.",
                         fix="check the file system, or set XEQUI_CACHE_DIR elsewhere")
    return ds


def clear_cache(name: str | None = None) -> int:
    """Delete cache entries (all, or those of one ``name``).

    Parameters
    ----------
    name : str, optional
        Only the entries of this simulator (e.g. ``"rayleigh_benard"``); default all.

    Returns
    -------
    int
        How many entries were removed (leftover temporary stores are removed too, uncounted).

    Raises
    ------
    OSError
        Only if the cache directory cannot be listed.

    Examples
    --------
    >>> import os, tempfile
    >>> old = os.environ.get("XEQUI_CACHE_DIR")
    >>> os.environ["XEQUI_CACHE_DIR"] = tempfile.mkdtemp()
    >>> clear_cache("rayleigh_benard")
    0
    >>> _ = os.environ.pop("XEQUI_CACHE_DIR") if old is None else os.environ.update(XEQUI_CACHE_DIR=old)
    """
    root = cache_dir()
    if not root.is_dir():
        return 0
    n = 0
    for entry in root.iterdir():
        if entry.name.endswith(".zarr") and (name is None or entry.name.startswith(f"{name}-")):
            _remove(entry, strict=False)
            n += 1
        elif ".zarr.tmp-" in entry.name or ".zarr.old-" in entry.name:
            _remove(entry, strict=False)
    return n


def resolve_flags(progress, cache, preset_cache: bool) -> bool:
    """Check a simulator's ``progress`` and ``cache`` arguments; return whether to use the cache.

    Parameters
    ----------
    progress : bool
        Show a progress bar.
    cache : bool or None
        Use the zarr cache; ``None`` takes the preset's choice ``preset_cache``.
    preset_cache : bool
        The preset's default.

    Returns
    -------
    bool

    Raises
    ------
    ParameterError
        Either flag of the wrong type.

    Examples
    --------
    >>> resolve_flags(True, None, preset_cache=True), resolve_flags(False, False, True)
    (True, False)
    """
    if not isinstance(progress, bool):
        raise ParameterError(f"progress must be True or False, got {progress!r}.",
                             fix="pass progress=False to silence the progress bar")
    use_cache = preset_cache if cache is None else cache
    if not isinstance(use_cache, bool):
        raise ParameterError(f"cache must be True, False or None, got {cache!r}.",
                             fix="pass cache=True to reuse a stored simulation")
    return use_cache
