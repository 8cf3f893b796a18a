"""Simulators that produce CF-labelled velocity datasets."""

from __future__ import annotations

__all__: list[str] = []
