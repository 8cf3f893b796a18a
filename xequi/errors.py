"""The exceptions xequi raises for user mistakes.

Every error says what was wrong, where (which parameter, variable or dimension), and how to fix it.
All derive from :class:`XequiError`, so ``except xequi.XequiError`` catches every user-facing
problem; the concrete classes also derive from the matching built-in (``ValueError``,
``KeyError``, ...) so generic handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "XequiError",
    "ParameterError",
    "VariableNotFoundError",
    "GridError",
    "UnitsError",
    "MissingDataError",
    "ModelError",
    "CheckpointError",
    "CacheError",
    "NumericalInstabilityError",
    "DependencyError",
]


class XequiError(Exception):
    """Base class of every error xequi raises on purpose.

    Parameters
    ----------
    problem : str
        What is wrong, naming the culprit (parameter, variable, dimension, file).
    fix : str, optional
        What the user can do about it. Appended to the message as ``Fix: ...``.

    Examples
    --------
    >>> err = ParameterError("Ra must be > 0, got -3.", fix="pass a positive Rayleigh number")
    >>> print(err)
    Ra must be > 0, got -3.
    Fix: pass a positive Rayleigh number
    >>> isinstance(err, XequiError), isinstance(err, ValueError)
    (True, True)
    """

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        message = problem if not fix else f"{problem}\nFix: {fix}"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError subclasses would otherwise quote the message
        return self.args[0] if self.args else ""


class ParameterError(XequiError, ValueError):
    """A function argument is invalid (out of range, wrong type, NaN, unknown choice)."""


class VariableNotFoundError(XequiError, KeyError):
    """A variable or coordinate the operation needs is not in the dataset."""


class GridError(XequiError, ValueError):
    """The grid is unusable: non-uniform, non-monotonic, too small, or inconsistent with a model."""


class UnitsError(XequiError, ValueError):
    """Units are missing, unparseable, or of the wrong dimensionality."""


class MissingDataError(XequiError, ValueError):
    """NaN / inf values where the caller did not choose how to treat them."""


class ModelError(XequiError, ValueError):
    """A model is unknown, or does not match the data it is applied to."""


class CheckpointError(XequiError, ValueError):
    """A checkpoint file is missing, corrupt, unsafe or of another format version."""


class CacheError(XequiError, RuntimeError):
    """A cache location cannot be used."""


class NumericalInstabilityError(ParameterError):
    """A simulation blew up (non-finite or unbounded values, or a collapsing time step).

    A :class:`ParameterError` because the fix is a parameter: more resolution, a smaller time
    step or a lower Rayleigh number.
    """


class DependencyError(XequiError, ImportError):
    """An optional package that this feature needs is not installed."""
