"""Safe writing of xequi outputs (zarr stores and netCDF files).

Outputs are written to a temporary path beside the target and renamed into place, so an
interrupted write never leaves a half-written store that looks complete, and an existing output
is replaced only when the caller says ``overwrite=True`` (the old one stays intact until the new
one is complete).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import xarray as xr

from xequi.errors import ParameterError

__all__ = ["write_dataset", "output_format", "atomic_path", "move_into_place", "ZARR_WRITE_KWARGS"]

#: How xequi writes zarr: format 2 with consolidated metadata, the layout every Pangeo tool reads
#: (zarr-python 3 warns on consolidated metadata in format 3, and on reading format 3 without it).
ZARR_WRITE_KWARGS = {"zarr_format": 2, "consolidated": True}

_FORMATS = {".zarr": "zarr", ".nc": "netcdf", ".nc4": "netcdf", ".netcdf": "netcdf"}


def output_format(path: str | os.PathLike) -> str:
    """Return ``"zarr"`` or ``"netcdf"`` from the extension of ``path``.

    Parameters
    ----------
    path : str or path-like
        Output path ending in ``.zarr``, ``.nc`` or ``.nc4``.

    Returns
    -------
    str

    Raises
    ------
    ParameterError
        If the extension is not one of those.

    Examples
    --------
    >>> output_format("forecast.zarr"), output_format("out/forecast.nc")
    ('zarr', 'netcdf')
    """
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise ParameterError(
            f"cannot tell the output format of {str(path)!r} from its extension {suffix or '(none)'!r}.",
            fix="end the path with .zarr (zarr store) or .nc (netCDF file)",
        )
    return _FORMATS[suffix]


def _remove(path: str | os.PathLike, *, strict: bool = True) -> None:
    """Delete a file, link or directory tree if it exists (``strict=False``: ignore failures)."""
    path = Path(path)
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError:
        if strict:
            raise


def _temporary(target: Path, tag: str) -> Path:
    return target.parent / f".{target.name}.{tag}-{uuid.uuid4().hex[:8]}"


def move_into_place(src: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Rename ``src`` to ``target`` (same folder), replacing what is there.

    A file is replaced by one :func:`os.replace` (atomic: readers see the old or the new file). A
    directory (a zarr store), or anything replaced by one, cannot be replaced in one step: the old
    one is first renamed aside, put back if the move fails, and deleted once the new one is in
    place.
    """
    src, target = Path(src), Path(target)
    if not (target.exists() or target.is_symlink()) or not (src.is_dir() or target.is_dir()):
        os.replace(src, target)
        return target
    old = _temporary(target, "old")
    os.replace(target, old)  # keep the old output until the new one is in place
    try:
        os.replace(src, target)
    except BaseException:
        os.replace(old, target)
        raise
    _remove(old)
    return target


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Write-to-temporary-then-rename: yield a temporary path beside ``target``.

    Write the file or store at the yielded path inside the ``with`` block; when the block ends
    without an exception it is moved onto ``target`` (:func:`move_into_place`), else it is
    deleted and ``target`` is left as it was. An interrupted write (kill, crash) leaves at most a
    hidden ``.<name>.tmp-<token>`` beside the target, never a half-written target.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with atomic_path(Path(d) / "a.txt") as tmp:
    ...         _ = tmp.write_text("done")
    ...     sorted(p.name for p in Path(d).iterdir()), (Path(d) / "a.txt").read_text()
    (['a.txt'], 'done')
    """
    target = Path(target)
    tmp = _temporary(target, "tmp")
    try:
        yield tmp
        move_into_place(tmp, target)
    finally:
        _remove(tmp, strict=False)


def write_dataset(ds: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``ds`` to ``path`` atomically, as zarr or netCDF by extension.

    Parameters
    ----------
    ds : xarray.Dataset
        What to write. Not modified.
    path : str or path-like
        Target, ending in ``.zarr`` or ``.nc``.
    overwrite : bool, default False
        Replace an existing output. Without it an existing output is an error.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ParameterError
        Unknown extension, existing output without ``overwrite=True``, or a directory that
        cannot be written.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = write_dataset(ds, Path(d) / "out.zarr")
    ...     xr.open_zarr(p)["a"].values.tolist()
    [0.0, 1.0, 2.0]
    """
    fmt = output_format(path)
    target = Path(path)
    if target.exists() and not overwrite:
        raise ParameterError(
            f"output {str(target)!r} already exists.",
            fix="choose another path, or pass overwrite=True (--overwrite on the command line)",
        )
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ParameterError(
            f"cannot create the output directory {str(parent)!r}: {err.strerror}.",
            fix="choose a path in a directory you can write to",
        ) from None
    if not os.access(parent, os.W_OK):
        raise ParameterError(
            f"the output directory {str(parent)!r} is not writable.",
            fix="choose a path in a directory you can write to",
        )
    with atomic_path(target) as tmp:
        if fmt == "zarr":
            # encodings of a dataset read from another store (zarr v3 codecs, netCDF
            # compression) do not carry over to this format: let xarray choose afresh.
            ds.drop_encoding().to_zarr(tmp, mode="w", **ZARR_WRITE_KWARGS)
        else:
            ds.drop_encoding().to_netcdf(tmp)
    return target


#: Seconds between two redraws of a progress bar on a stream that is not a terminal (a log file).
LOG_REDRAW_SECONDS = 60.0


def progress_options(enabled: bool, file=None) -> dict:
    """tqdm keyword arguments of xequi's progress bars (forecast, fit, the simulators, the demo).

    Off when not ``enabled``; on a terminal (or a notebook widget) the usual redraws; on a stream
    that is not a terminal (``make demo > log 2>&1``, a batch job's log) the bar is drawn when it
    starts and ends and redrawn at most every :data:`LOG_REDRAW_SECONDS`, instead of ten times a
    second (hundreds of kB of carriage-return redraws in a log).

    >>> import io
    >>> progress_options(False)
    {'disable': True}
    >>> progress_options(True, file=io.StringIO())
    {'disable': False, 'mininterval': 60.0}
    """
    import sys

    if not enabled:
        return {"disable": True}
    from tqdm.auto import tqdm

    stream = sys.stderr if file is None else file
    isatty = getattr(stream, "isatty", None)
    widget = any(c.__module__.startswith("tqdm.notebook") for c in tqdm.__mro__)
    if widget or (callable(isatty) and isatty()):
        return {"disable": False}
    return {"disable": False, "mininterval": LOG_REDRAW_SECONDS}
