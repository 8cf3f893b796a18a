"""Simulators that produce CF-labelled velocity datasets."""

from __future__ import annotations

from xequi.datasets._cache import cache_dir, cached_simulation, clear_cache
from xequi.datasets.qg_ocean import QG_PRESETS, qg_ocean, qg_preset_parameters
from xequi.datasets.rayleigh_benard import (
    K_CRITICAL,
    PRESETS,
    RA_CRITICAL,
    NumericalInstabilityError,
    NusseltEstimate,
    estimated_nusselt,
    growth_rate,
    nusselt,
    preset_parameters,
    rayleigh_benard,
)

__all__ = [
    "rayleigh_benard",
    "qg_ocean",
    "QG_PRESETS",
    "qg_preset_parameters",
    "nusselt",
    "growth_rate",
    "PRESETS",
    "preset_parameters",
    "estimated_nusselt",
    "NumericalInstabilityError",
    "NusseltEstimate",
    "RA_CRITICAL",
    "K_CRITICAL",
    "cache_dir",
    "cached_simulation",
    "clear_cache",
]
