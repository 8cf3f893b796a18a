"""The intake catalog shipped with xequi."""

from __future__ import annotations


def catalog():
    """Return xequi's intake catalog (placeholder until the catalog issue lands)."""
    raise NotImplementedError
