"""The intake catalog shipped with xequi, and the intake sources it names.

The catalog file lives in ``catalogs/xequi.yaml`` (installed with the package as
``xequi/catalogs/xequi.yaml``). It uses intake's v1 YAML layout, which intake 2.x still reads
through :func:`intake.open_catalog`; entries that xequi generates (simulations) use the
:class:`RayleighBenardSource` driver defined here, which simulates on first use and caches the
result as zarr; :class:`QGOceanSource` does the same for the QG ocean simulator, and
:class:`GlobCurrentSource` opens real current files with :func:`xequi.open_dataset` (folder from
the ``path`` parameter, default ``$XEQUI_GLOBCURRENT_DIR``).
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

from intake.source.base import DataSource, Schema

from xequi.errors import ParameterError

__all__ = ["catalog", "catalog_path", "RayleighBenardSource", "GlobCurrentSource", "QGOceanSource"]

# intake 2.0.x warns "Shell command not executed due to getshell=False" for EVERY parameter default
# it expands, even those with no shell(...) in them. Not executing shell commands from catalogs is
# exactly what we want (catalog text never reaches a shell), so that one message is pure noise.
warnings.filterwarnings("ignore", message="Shell command not executed due to getshell=False",
                        category=UserWarning, module="intake.catalog.utils")


def catalog_path() -> Path:
    """Path of the catalog file shipped with xequi.

    Returns
    -------
    pathlib.Path
        The YAML file that :func:`catalog` opens.

    Examples
    --------
    >>> catalog_path().name
    'xequi.yaml'
    """
    return Path(str(resources.files("xequi") / "catalogs" / "xequi.yaml"))


def catalog():
    """Open xequi's intake catalog.

    Returns
    -------
    intake.catalog.Catalog
        The same catalog as ``intake.open_catalog(xequi.catalog_path())``.

    Examples
    --------
    >>> cat = catalog()
    >>> "rayleigh_benard" in list(cat)
    True
    """
    import intake

    return intake.open_catalog(str(catalog_path()))


class _XarraySource(DataSource):
    """Common behaviour of xequi's intake sources: a whole xarray Dataset, one partition."""

    container = "xarray"
    version = "1"
    partition_access = False

    def _get_schema(self):
        return Schema(datashape=None, dtype=None, shape=None, npartitions=1, extra_metadata={})

    def _load(self, chunks):  # pragma: no cover - overridden
        raise NotImplementedError

    def read(self):
        """Return the dataset, loaded into memory."""
        return self._load(chunks=None).load()

    def to_dask(self):
        """Return the dataset, lazily backed by dask arrays."""
        return self._load(chunks={})

    discover = to_dask


class RayleighBenardSource(_XarraySource):
    """Intake source for xequi's Rayleigh–Bénard simulations, cached as zarr.

    Parameters
    ----------
    preset : str
        Simulator preset, see :func:`xequi.datasets.rayleigh_benard`.
    seed : int
        Seed of the initial perturbation.
    metadata : dict, optional
        Intake metadata.
    """

    name = "xequi_rayleigh_benard"

    def __init__(self, preset: str = "default", seed: int = 0, metadata=None, **kwargs):
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise ParameterError(f"seed must be an integer, got {seed!r}.", fix="pass seed=0") from None
        self.preset = str(preset)
        self.seed = seed
        self.kwargs = kwargs
        super().__init__(metadata=metadata)

    def _load(self, chunks):
        from xequi.datasets import rayleigh_benard

        ds = rayleigh_benard(preset=self.preset, seed=self.seed, cache=True, **self.kwargs)
        return ds.chunk(chunks) if chunks is not None else ds


class QGOceanSource(_XarraySource):
    """Intake source for :func:`xequi.datasets.qg_ocean` (two-layer QG turbulence, pyqg-jax).

    Parameters
    ----------
    preset : str
        ``"default"`` (small, not cached unless ``cache=True``), ``"experiment"``, ``"new_domain"``.
    seed : int, optional
        Seed of the initial condition (default: the preset's).
    metadata : dict, optional
    """

    name = "xequi_qg_ocean"

    def __init__(self, preset: str = "default", seed=None, cache=None, metadata=None, **kwargs):
        if seed is not None and seed != "":
            try:
                seed = int(seed)
            except (TypeError, ValueError):
                raise ParameterError(f"seed must be an integer, got {seed!r}.",
                                     fix="pass seed=0") from None
        else:
            seed = None
        self.preset = str(preset)
        self.seed = seed
        self.cache = cache
        self.kwargs = kwargs
        super().__init__(metadata=metadata)

    def _load(self, chunks):
        from xequi.datasets import qg_ocean

        ds = qg_ocean(preset=self.preset, seed=self.seed, cache=self.cache, **self.kwargs)
        return ds.chunk(chunks) if chunks is not None else ds


class GlobCurrentSource(_XarraySource):
    """Intake source for real current files opened with :func:`xequi.open_dataset`.

    Parameters
    ----------
    path : str
        Folder of the files. Empty: ``$XEQUI_GLOBCURRENT_DIR``, else the shared folder beside
        the repository (:func:`xequi.ocean.globcurrent_dir`).
    pattern : str, default "*.nc"
        File name pattern inside the folder.
    drop_duplicate_times : {"report", "drop", "error"}
        Passed to :func:`xequi.open_dataset`.
    metadata : dict, optional
    """

    name = "xequi_globcurrent"

    def __init__(self, path: str = "", pattern: str = "*.nc",
                 drop_duplicate_times: str = "report", metadata=None, **kwargs):
        self.path = str(path or "")
        self.pattern = str(pattern or "*.nc")
        self.drop_duplicate_times = str(drop_duplicate_times)
        self.kwargs = kwargs
        super().__init__(metadata=metadata)

    def _load(self, chunks):
        from xequi.ocean import globcurrent_dir, open_dataset

        folder = globcurrent_dir(self.path or None)
        return open_dataset(str(folder / self.pattern),
                            drop_duplicate_times=self.drop_duplicate_times,
                            chunks=chunks if chunks else None, **self.kwargs)

    def read(self):
        """Return the dataset, loaded into memory."""
        return self._load(chunks=None).load()
